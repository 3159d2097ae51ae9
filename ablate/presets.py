"""The released MambaVision models as specs + widths, and loading of their official checkpoints.

Nothing is downloaded: ``load_official`` takes a state dict (or a checkpoint dict) the user already has.
"""
import argparse
import dataclasses
import pickle
import re
from typing import Dict, Optional, Tuple

import torch

from .model import Backbone, build_model
from .spec import spec_from_depths


@dataclasses.dataclass(frozen=True)
class Preset:
    depths: Tuple[int, ...]
    dim: int
    in_dim: int
    num_heads: Tuple[int, ...]
    drop_path_rate: float
    layer_scale: Optional[float] = None
    window_size: Tuple[int, ...] = (8, 8, 14, 7)
    mlp_ratio: float = 4

    @property
    def spec(self) -> str:
        """Conv stages 1-2, then the paper's placement: first ceil(N/2) MambaVision mixers, last floor(N/2) attention."""
        return spec_from_depths(self.depths).canonical

    def build_kwargs(self) -> dict:
        return dict(dim=self.dim, in_dim=self.in_dim, num_heads=self.num_heads, window_size=self.window_size,
                    mlp_ratio=self.mlp_ratio, drop_path_rate=self.drop_path_rate, layer_scale=self.layer_scale)


PRESETS: Dict[str, Preset] = {
    "mambavision_t": Preset((1, 3, 8, 4), 80, 32, (2, 4, 8, 16), 0.2),
    "mambavision_t2": Preset((1, 3, 11, 4), 80, 32, (2, 4, 8, 16), 0.2),
    "mambavision_s": Preset((3, 3, 7, 5), 96, 64, (2, 4, 8, 16), 0.2),
    "mambavision_b": Preset((3, 3, 10, 5), 128, 64, (2, 4, 8, 16), 0.3, 1e-5),
    "mambavision_l": Preset((3, 3, 10, 5), 196, 64, (4, 8, 16, 32), 0.3, 1e-5),
    "mambavision_l2": Preset((3, 3, 12, 5), 196, 64, (4, 8, 16, 32), 0.3, 1e-5),
}


def create_model(name: str, **overrides) -> Backbone:
    """A released model by name; ``overrides`` replace any build_model argument (``spec`` too, for a variant
    with the same widths, e.g. ``create_model("mambavision_t", spec="C|CCC|SSSSTTTT|SSTT")``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    kwargs = {"spec": preset.spec, **preset.build_kwargs(), **overrides}
    return build_model(kwargs.pop("spec"), **kwargs)


# Official key -> our key, applied in order. Our names: stem.{0,1,3,4}, stages.i.blocks.j, mixer.conv_x,
# mixer.ssm.{x_proj,dt_proj,A_log,D}, ls1/ls2.gamma, stages.i.downsample, head_norm, head.
OFFICIAL_KEY_RULES = [
    (r"^patch_embed\.conv_down\.", "stem."),
    (r"^levels\.", "stages."),
    (r"\.downsample\.reduction\.0\.", ".downsample."),
    (r"\.mixer\.conv1d_x\.", ".mixer.conv_x."),
    (r"\.mixer\.conv1d_z\.", ".mixer.conv_z."),
    (r"\.mixer\.(x_proj|dt_proj)\.", r".mixer.ssm.\1."),
    (r"\.mixer\.(A_log|D)$", r".mixer.ssm.\1"),
    (r"\.gamma_1$", ".ls1.gamma"),
    (r"\.gamma_2$", ".ls2.gamma"),
    (r"\.blocks\.(\d+)\.gamma$", r".blocks.\1.ls.gamma"),
    (r"^norm\.", "head_norm."),
]


def official_to_ours(key: str) -> str:
    for pattern, replacement in OFFICIAL_KEY_RULES:
        key = re.sub(pattern, replacement, key)
    return key


def convert_official_state_dict(state_dict: dict) -> dict:
    """Rename the published checkpoint keys (NVlabs/MambaVision) to this package's module names."""
    for wrapper in ("state_dict", "model"):
        if wrapper in state_dict and isinstance(state_dict[wrapper], dict):
            state_dict = state_dict[wrapper]
    return {official_to_ours(key.removeprefix("module.")): value for key, value in state_dict.items()}


def load_official(model: Backbone, state_dict: dict, strict: bool = True):
    """Load an official MambaVision checkpoint into a model from ``create_model``. With ``strict``, every key
    must match both ways; a mismatch raises with the keys that did not."""
    converted = convert_official_state_dict(state_dict)
    result = model.load_state_dict(converted, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise KeyError(f"official checkpoint does not fit {model.spec}: missing {result.missing_keys[:8]}, "
                       f"unexpected {result.unexpected_keys[:8]} (first 8 of each)")
    return result


# What a published checkpoint holds besides tensors, containers, numbers and strings: the training script's
# arguments (timm's train.py saves them as an argparse.Namespace). Anything else is refused.
CHECKPOINT_GLOBALS = (argparse.Namespace,)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded safely: the message names the file and what it held."""


def read_checkpoint(path) -> dict:
    """A checkpoint file's contents, unpickled with torch's weights-only unpickler: tensors, containers, numbers,
    strings and CHECKPOINT_GLOBALS only, so a crafted file cannot run code on the machine that reads it."""
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in CHECKPOINT_GLOBALS}
        found = [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in allowed]
        if not found:
            raise CheckpointError(f"{path}: not readable as weights: {str(error).strip().splitlines()[-1]}") from None
        raise CheckpointError(
            f"{path}: refused, not loaded: it holds {', '.join(found)} beside the weights, which a checkpoint does "
            f"not need and which could run code when unpickled (allowed: tensors, containers, numbers, strings, "
            f"{', '.join(sorted(allowed))})") from None


def load_official_file(model: Backbone, path, strict: bool = True):
    """``load_official`` from a local ``.pth.tar`` (as published; read on CPU, never downloaded, never unpickling
    anything but weights and the training arguments: read_checkpoint)."""
    return load_official(model, read_checkpoint(path), strict=strict)
