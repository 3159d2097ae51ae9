"""ablate: build, train and measure hybrid Mamba-Transformer vision backbones from spec strings."""
from .model import build_model
from .presets import PRESETS, create_model, load_official
from .spec import PATTERNS, Spec, SpecError, apply_pattern, parse_spec, stage_pattern

__all__ = ["build_model", "create_model", "load_official", "parse_spec", "Spec", "SpecError", "stage_pattern",
           "apply_pattern", "PATTERNS", "PRESETS"]
