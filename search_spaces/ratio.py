"""Attention fraction from 0 to 1 in stages 3-4: evenly spaced (Megatron/Nemotron-H style) vs at the end."""
from ablate.space import Design, Space, register_space

RATIOS = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


def designs(cfg):
    from ablate.spec import apply_pattern
    rows = {}
    for placement in ("even", "last"):
        for ratio in RATIOS:
            spec = apply_pattern(cfg.model.spec, placement, ratio=ratio).canonical
            rows.setdefault(spec, Design.make(f"{placement} {ratio:g}", spec))   # ratio 0 and 1 coincide
    return list(rows.values())


SPACE = register_space(Space(name="ratio", description=__doc__, designs=designs, scheduler="asha"))
