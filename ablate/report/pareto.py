"""Non-dominated sets for any number of objectives, each maximised or minimised; and the report's fronts: the mean
primary metric against each cost in OBJECTIVES, which the report's text lists and its figures draw.

A front knows its noise: two designs whose intervals overlap on both axes (the metric's 95% t-interval over seeds,
and the cost's interval where it is measured, as throughput is) are tied, and a tie does not dominate. A design
that only a tied design dominates is kept beside the front and listed as tied with it."""
import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from ..results import PRIMARY

DIRECTIONS = {"max": 1.0, "min": -1.0}
METRIC_INTERVAL = ("metric_low", "metric_high")     # the design summary's 95% t-interval of the primary metric


@dataclasses.dataclass(frozen=True)
class Objective:
    """A cost a front is drawn against: the design summary's column, its better direction, the columns of its
    interval's ends (None where it is exact, as MACs and params are), the figure's axis label and the unit its axis
    is divided by, and the cost's name in the figure's caption."""
    column: str
    direction: str
    interval: Optional[Tuple[str, str]]
    axis_label: str
    unit: float
    caption: str


# The one list of fronts: the text names each front's designs, a figure draws it (pareto_<name>.png) and the text
# shows the figure.
OBJECTIVES = {
    "throughput": Objective("throughput", "max", ("throughput_low", "throughput_high"),
                            "throughput (img/s, this machine; median over rounds, 95% interval)", 1.0, "throughput"),
    "macs": Objective("macs_total", "min", None, "MMACs per image (scan included)", 1e6, "MACs"),
    "params": Objective("params", "min", None, "parameters (M)", 1e6, "params"),
}


@dataclasses.dataclass(frozen=True)
class Tie:
    """A design kept beside a front: only designs tied with it dominate it; ``front`` names the front's designs it
    ties with."""
    design: str
    front: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Front:
    """The designs on the front of the mean primary metric against one objective (by its name in OBJECTIVES), and
    the designs tied with them."""
    objective: str
    designs: Tuple[str, ...]
    ties: Tuple[Tie, ...] = ()


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
    valid = ~np.isnan(points).any(axis=1)
    return valid & ~dominance(points, directions).any(axis=0)


def dominance(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n, n): True where point i dominates point j; a point with a NaN dominates nothing."""
    better_is_up = points * np.array([DIRECTIONS[d] for d in directions])        # (n, k): larger is better
    valid = ~np.isnan(better_is_up).any(axis=1)
    filled = np.where(np.isnan(better_is_up), -np.inf, better_is_up)
    at_least = (filled[:, None, :] >= filled[None, :, :]).all(axis=2)            # (n, n): i >= j everywhere
    strictly = (filled[:, None, :] > filled[None, :, :]).any(axis=2)             # (n, n): i > j somewhere
    return at_least & strictly & valid[:, None]


def overlapping(lows, highs) -> np.ndarray:
    """(n, n): True where interval i and interval j share a point (an exact value is an interval of one point)."""
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    return (lows[:, None] <= highs[None, :]) & (lows[None, :] <= highs[:, None])


def _ends(data, columns: Optional[Tuple[str, str]], values: np.ndarray):
    """The interval's ends from the summary's columns; a design without an interval (one seed, an older table, an
    exact cost) is the point of its value."""
    if columns is None:
        return values, values
    low, high = (data[c].to_numpy(float) for c in columns)
    return np.where(np.isnan(low), values, low), np.where(np.isnan(high), values, high)


@dataclasses.dataclass(frozen=True)
class FrontPoints:
    """The designs of a summary with the metric and the cost measured (``data``), and per design: on the front of
    the point values, or kept beside it for a tie (``tied``; ``ties`` names the front designs for each)."""
    data: object
    on_front: np.ndarray
    tied: np.ndarray
    ties: Tuple[Tie, ...]


def front_of(summary, objective: Objective) -> FrontPoints:
    """The front of the mean primary metric against ``objective``, with its ties: designs whose metric interval
    and cost interval both overlap those of each design that dominates them."""
    data = summary.dropna(subset=["metric_mean", objective.column])
    values = data[["metric_mean", objective.column]].to_numpy(float)
    directions = [PRIMARY.direction, objective.direction]
    metric_ends = _ends(data, METRIC_INTERVAL, values[:, 0])
    cost_ends = _ends(data, objective.interval, values[:, 1])
    tied_pairs = overlapping(*metric_ends) & overlapping(*cost_ends)
    dominates = dominance(values, directions)                # no NaN here: the rows without a value were dropped
    on_front = ~dominates.any(axis=0)
    kept = ~(dominates & ~tied_pairs).any(axis=0) & ~on_front   # dominated only by designs tied with it
    names = list(data["design"])
    ties = tuple(Tie(names[j], tuple(names[i] for i in np.flatnonzero(on_front & dominates[:, j] & tied_pairs[:, j])))
                 for j in np.flatnonzero(kept))
    return FrontPoints(data, on_front, kept, ties)


def front(summary, name: str) -> Front:
    """The front of the objective OBJECTIVES[name], with its ties."""
    points = front_of(summary, OBJECTIVES[name])
    return Front(name, tuple(points.data["design"][points.on_front]), points.ties)


def fronts(summary) -> Tuple[Front, ...]:
    """Every objective's front with its ties, in the order of OBJECTIVES."""
    return tuple(front(summary, name) for name in OBJECTIVES)
