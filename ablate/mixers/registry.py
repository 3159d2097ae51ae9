"""Letter -> block family. Filled at import by the modules of this package; the builder has no per-letter code.

Every block is built as ``entry.build(dim, num_heads=, mlp_ratio=, drop_path=, layer_scale=, **knobs)`` and
is called as ``block(x, hw)``: image blocks take (B, C, H, W), token blocks (B, L, C) with ``hw`` the
(height, width) of the window the L tokens come from. ``block.layout`` says which.
"""
import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import torch.nn as nn

from ..layers import DropPath, Mlp, layer_scale_or_identity
from ..spec import LETTERS, VALID


@dataclasses.dataclass(frozen=True)
class BlockEntry:
    letter: str
    name: str
    label: str                   # plot legend
    color: str                   # plot colour (spec ribbons, markers)
    build: Callable[..., nn.Module]
    macs: Callable[..., Tuple[int, int]]  # (dim, tokens, window_tokens, num_heads=, mlp_ratio=, **knobs) -> (total, scan) per image
    knobs: Dict[str, Any] = dataclasses.field(default_factory=dict)       # name -> default
    choices: Dict[str, tuple] = dataclasses.field(default_factory=dict)   # name -> allowed values
    needs_cuda: bool = False

    @property
    def scans(self) -> bool:
        """Whether the block runs a selective scan: its analytic count (at its default knobs) has scan MACs."""
        return self.macs(8, 4, 4, num_heads=1, mlp_ratio=1.0, **self.knobs)[1] > 0

    def resolve_knobs(self, knobs: Optional[dict]) -> dict:
        """Defaults overlaid with ``knobs``; an unknown name or a value outside its choices is a ValueError."""
        knobs = dict(knobs or {})
        unknown = sorted(set(knobs) - set(self.knobs))
        if unknown:
            valid = ", ".join(self.knobs) or "none"
            raise ValueError(f"unknown knob(s) {', '.join(unknown)} for block {self.letter!r} ({self.name}); "
                             f"valid: {valid}")
        for name, value in knobs.items():
            allowed = self.choices.get(name)
            if allowed is not None and value not in allowed:
                raise ValueError(f"knob {name}={value!r} for block {self.letter!r} is not valid; "
                                 f"choose one of {', '.join(map(repr, allowed))}")
        return {**self.knobs, **knobs}


REGISTRY: Dict[str, BlockEntry] = {}


def register(entry: BlockEntry) -> BlockEntry:
    if entry.letter not in LETTERS:
        raise ValueError(f"{entry.letter!r} is not a letter of the spec grammar ({VALID}); add it to spec.LETTERS")
    if entry.letter in REGISTRY:
        raise ValueError(f"block letter {entry.letter!r} is registered twice")
    REGISTRY[entry.letter] = entry
    return entry


def get_entry(letter: str) -> BlockEntry:
    if letter not in REGISTRY:
        raise ValueError(f"no block registered for {letter!r}; valid: {' '.join(sorted(REGISTRY))}")
    return REGISTRY[letter]


def build_block(letter, dim, *, num_heads, mlp_ratio=4.0, drop_path=0.0, layer_scale=None, knobs=None):
    entry = get_entry(letter)
    return entry.build(dim, num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path=drop_path,
                       layer_scale=layer_scale, **entry.resolve_knobs(knobs))


class TokenBlock(nn.Module):
    """x + DropPath(g1 * Mixer(LN(x))), then x + DropPath(g2 * MLP(LN(x))). No mixer: the MLP half alone."""

    layout = "tokens"

    def __init__(self, dim, mixer: Optional[nn.Module], mlp_ratio, drop_path, layer_scale):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim) if mixer is not None else None
        self.mixer = mixer
        self.ls1 = layer_scale_or_identity(dim, layer_scale) if mixer is not None else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = layer_scale_or_identity(dim, layer_scale)
        self.drop_path = DropPath(drop_path)

    def forward(self, x, hw):                                  # x: (B, L, C)
        if self.mixer is not None:
            x = x + self.drop_path(self.ls1(self.mixer(self.norm1(x), hw)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


def token_block_macs(dim, tokens, mlp_ratio, has_mixer=True):
    """Multiply-adds of a TokenBlock outside its mixer: the MLP and its LayerNorms (5 per element, as fvcore
    counts an affine LayerNorm). Elementwise work (residual adds, layer scale, GELU) is not counted."""
    hidden = int(dim * mlp_ratio)
    norms = (2 if has_mixer else 1) * 5 * tokens * dim
    return 2 * tokens * dim * hidden + norms


def register_token_mixer(letter, name, label, color, mixer, mixer_macs, knobs=None, choices=None,
                         needs_cuda=False):
    """Register a letter whose block is a TokenBlock around ``mixer(dim, num_heads=, **knobs)``."""

    def build(dim, *, num_heads, mlp_ratio, drop_path, layer_scale, **knob_values):
        module = mixer(dim, num_heads=num_heads, **knob_values) if mixer is not None else None
        return TokenBlock(dim, module, mlp_ratio, drop_path, layer_scale)

    def macs(dim, tokens, window_tokens, *, num_heads, mlp_ratio, **knob_values):
        total, scan = (0, 0) if mixer_macs is None else mixer_macs(dim, tokens, window_tokens,
                                                                   num_heads=num_heads, **knob_values)
        return total + token_block_macs(dim, tokens, mlp_ratio, mixer is not None), scan

    return register(BlockEntry(letter, name, label, color, build, macs, dict(knobs or {}), dict(choices or {}),
                               needs_cuda))
