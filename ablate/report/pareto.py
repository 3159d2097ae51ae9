"""Non-dominated sets for any number of objectives, each maximised or minimised."""
from typing import Sequence

import numpy as np

DIRECTIONS = {"max": 1.0, "min": -1.0}


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
