"""The spec grammar: ``C|CCC|MMMMTTTT|MMTT`` is four stages, one letter per block.

No torch here, so configs, search spaces and reports can parse and generate specs cheaply. The letters are
fixed in ``LETTERS``; the mixer registry (ablate.mixers) supplies a block for each of them.
"""
import dataclasses
import random
from typing import Callable, Dict, Optional, Sequence, Tuple

LETTERS: Dict[str, str] = {
    "B": "bidirectional SSM (Vim style) + MLP",
    "C": "residual conv block",
    "G": "gated CNN, no SSM (MambaOut style) + MLP",
    "I": "identity mixer, MLP only",
    "M": "MambaVision mixer + MLP",
    "P": "attention and SSM in parallel (Hymba style) + MLP",
    "S": "vanilla Mamba mixer + MLP",
    "T": "multi-head self-attention + MLP",
    "X": "2D cross-scan SSM (VMamba style) + MLP",
}
VALID = " ".join(sorted(LETTERS))
STAGE_SEP = "|"


class SpecError(ValueError):
    """A spec string that does not parse; the message names the position and what is valid."""


@dataclasses.dataclass(frozen=True)
class Spec:
    stages: Tuple[str, ...]

    @property
    def depths(self) -> Tuple[int, ...]:
        return tuple(len(stage) for stage in self.stages)

    @property
    def canonical(self) -> str:
        """The architecture id: run names, caches, dedup and plot labels use it."""
        return STAGE_SEP.join(self.stages)

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"Spec({self.canonical!r})"

    def with_stage(self, index: int, stage: str) -> "Spec":
        stages = list(self.stages)
        stages[index] = stage
        return parse_spec(STAGE_SEP.join(stages), num_stages=len(stages))


def parse_spec(text, num_stages: Optional[int] = None) -> Spec:
    """Parse a spec string (a Spec passes through). Whitespace is ignored; anything else that is not a
    block letter or '|' is a SpecError naming its 1-based column and stage."""
    if isinstance(text, Spec):
        text = text.canonical
    if not isinstance(text, str):
        raise SpecError(f"a spec must be a string like 'C|CCC|MMMMTTTT|MMTT', got {type(text).__name__}")
    if not text.strip():
        raise SpecError("empty spec: give stages of block letters separated by '|', "
                        f"e.g. 'C|CCC|MMMMTTTT|MMTT'; valid letters: {VALID}")
    stages, current, stage_start = [], [], 1
    for column, char in enumerate(text + STAGE_SEP, start=1):
        if char.isspace():
            continue
        if char == STAGE_SEP:
            if not current:
                raise SpecError(f"stage {len(stages) + 1} is empty (column {stage_start}): every stage needs "
                                f"at least one block letter; valid: {VALID}")
            stages.append("".join(current))
            current, stage_start = [], column + 1
        elif char in LETTERS:
            current.append(char)
        else:
            raise SpecError(f"{char!r} at column {column} (stage {len(stages) + 1}) is not a block letter; "
                            f"valid: {VALID}")
    if num_stages is not None and len(stages) != num_stages:
        raise SpecError(f"spec {STAGE_SEP.join(stages)!r} has {len(stages)} stages but the model is given "
                        f"widths for {num_stages} (num_heads and window_size have one entry per stage)")
    return Spec(tuple(stages))


# ----- placement generators: a stage string for a depth N ---------------------------------------------------
# Each takes (depth, mamba, attention, **options); mamba/attention are the two letters being placed.

def _last(depth, count, mamba, attention):
    return mamba * (depth - count) + attention * count


def last(depth, mamba="M", attention="T", ratio=0.5):
    """round(ratio*N) attention blocks at the end (last_half is ratio 0.5 rounded down)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"last: ratio must be in [0, 1], got {ratio}")
    return _last(depth, round(ratio * depth), mamba, attention)


def last_half(depth, mamba="M", attention="T"):
    """The paper's rule: the last floor(N/2) blocks are attention."""
    return _last(depth, depth // 2, mamba, attention)


def last_quarter(depth, mamba="M", attention="T"):
    return _last(depth, depth // 4, mamba, attention)


def first_half(depth, mamba="M", attention="T"):
    return attention * (depth // 2) + mamba * (depth - depth // 2)


def alternate_am(depth, mamba="M", attention="T"):
    return "".join(attention if i % 2 == 0 else mamba for i in range(depth))


def alternate_ma(depth, mamba="M", attention="T"):
    return "".join(mamba if i % 2 == 0 else attention for i in range(depth))


def random_half(depth, mamba="M", attention="T", seed=0):
    """floor(N/2) attention blocks at positions drawn with ``seed`` (the paper's 'random' row)."""
    chosen = set(random.Random(seed).sample(range(depth), depth // 2))
    return "".join(attention if i in chosen else mamba for i in range(depth))


def even(depth, mamba="M", attention="T", ratio=0.25):
    """round(ratio*N) attention blocks spread evenly, away from both ends where possible (Megatron/Nemotron-H
    style): block floor(i*N/(k+1)) for i = 1..k, which never repeats a position for k <= N."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"even: ratio must be in [0, 1], got {ratio}")
    count = round(ratio * depth)
    chosen = {(i * depth) // (count + 1) for i in range(1, count + 1)}
    return "".join(attention if i in chosen else mamba for i in range(depth))


def all_mamba(depth, mamba="M", attention="T"):
    return mamba * depth


def all_attention(depth, mamba="M", attention="T"):
    return attention * depth


PATTERNS: Dict[str, Callable[..., str]] = {
    "last_half": last_half,
    "last": last,
    "last_quarter": last_quarter,
    "first_half": first_half,
    "alternate_am": alternate_am,
    "alternate_ma": alternate_ma,
    "random": random_half,
    "even": even,
    "all_mamba": all_mamba,
    "all_attention": all_attention,
}


def stage_pattern(name: str, depth: int, mamba: str = "M", attention: str = "T", **options) -> str:
    """The stage string that pattern ``name`` gives for ``depth`` blocks (options: seed, ratio)."""
    if name not in PATTERNS:
        raise ValueError(f"unknown placement pattern {name!r}; valid: {', '.join(PATTERNS)}")
    if depth < 1:
        raise ValueError(f"a stage needs at least one block, got depth {depth}")
    for letter in (mamba, attention):
        if letter not in LETTERS:
            raise SpecError(f"{letter!r} is not a block letter; valid: {VALID}")
    return PATTERNS[name](depth, mamba=mamba, attention=attention, **options)


def apply_pattern(base, name: str, stages: Sequence[int] = (2, 3), **options) -> Spec:
    """``base`` with the given stages (0-based; default: 3 and 4) rewritten by pattern ``name`` at their depths."""
    spec = parse_spec(base)
    for index in stages:
        if not -len(spec.stages) <= index < len(spec.stages):
            raise ValueError(f"stage index {index} is out of range for {spec.canonical!r}")
        spec = spec.with_stage(index, stage_pattern(name, len(spec.stages[index]), **options))
    return spec


def spec_from_depths(depths: Sequence[int], conv_stages: int = 2, pattern: str = "last_half", **options) -> Spec:
    """The MambaVision layout for ``depths``: conv blocks in the first stages, ``pattern`` in the rest."""
    stages = ["C" * d if i < conv_stages else stage_pattern(pattern, d, **options) for i, d in enumerate(depths)]
    return parse_spec(STAGE_SEP.join(stages))
