"""Non-dominated sets for any number of objectives, each maximised or minimised; and the report's fronts: the mean
primary metric against each cost in OBJECTIVES, which the report's text lists and its figures draw."""
import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from ..results import PRIMARY

DIRECTIONS = {"max": 1.0, "min": -1.0}


@dataclasses.dataclass(frozen=True)
class Objective:
    """A cost a front is drawn against: the design summary's column, its better direction, its spread column (None
    where it is measured once per design), the figure's axis label and the unit its axis is divided by, and the
    cost's name in the figure's caption."""
    column: str
    direction: str
    spread: Optional[str]
    axis_label: str
    unit: float
    caption: str


# The one list of fronts: the text names each front's designs, a figure draws it (pareto_<name>.png) and the text
# shows the figure.
OBJECTIVES = {
    "throughput": Objective("throughput", "max", "throughput_std", "throughput (img/s, this machine)", 1.0,
                            "throughput"),
    "macs": Objective("macs_total", "min", None, "MMACs per image (scan included)", 1e6, "MACs"),
    "params": Objective("params", "min", None, "parameters (M)", 1e6, "params"),
}


@dataclasses.dataclass(frozen=True)
class Front:
    """The designs on the front of the mean primary metric against one objective (by its name in OBJECTIVES)."""
    objective: str
    designs: Tuple[str, ...]


def pareto_mask(values, directions: Sequence[str]) -> np.ndarray:
    """True for each point that no other point dominates.

    values: (n, k), one column per objective; directions: "max" or "min" per column. A point dominates
    another when it is at least as good in every objective and strictly better in one, so duplicates do not
    dominate each other (both stay on the front). Points with a NaN objective are never on the front.
    """
    points = np.asarray(values, dtype=float)
    if points.ndim != 2 or points.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}) for directions {list(directions)}, "
                         f"got shape {points.shape}")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown directions {unknown}; valid: {sorted(DIRECTIONS)}")
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    better_is_up = points * np.array([DIRECTIONS[d] for d in directions])        # (n, k): larger is better
    valid = ~np.isnan(better_is_up).any(axis=1)
    filled = np.where(np.isnan(better_is_up), -np.inf, better_is_up)
    at_least = (filled[:, None, :] >= filled[None, :, :]).all(axis=2)            # (n, n): i >= j everywhere
    strictly = (filled[:, None, :] > filled[None, :, :]).any(axis=2)             # (n, n): i > j somewhere
    dominates = at_least & strictly & valid[:, None]                             # i dominates j
    return valid & ~dominates.any(axis=0)


def front_of(summary, objective: Objective):
    """(the designs of the summary with the mean metric and the cost measured, True for each on the front)."""
    data = summary.dropna(subset=["metric_mean", objective.column])
    values = data[["metric_mean", objective.column]].to_numpy(float)
    return data, pareto_mask(values, [PRIMARY.direction, objective.direction])


def fronts(summary) -> Tuple[Front, ...]:
    """Every objective's front, in the order of OBJECTIVES."""
    found = []
    for name, objective in OBJECTIVES.items():
        data, on_front = front_of(summary, objective)
        found.append(Front(name, tuple(data["design"][on_front])))
    return tuple(found)
