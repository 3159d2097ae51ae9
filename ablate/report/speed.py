"""How far the throughput figures can be trusted: the width of each design's interval, and how far apart designs that
do the same work (equal parameters and MACs) came out: a measured noise floor of the machine's timings."""
import dataclasses
import itertools
import math
from typing import Tuple

import pandas as pd

from ..timing import MedianInterval


@dataclasses.dataclass(frozen=True)
class EqualCost:
    """Designs with equal parameters and MACs: their medians' range and the pairs whose intervals do not overlap
    (identical work that came out different)."""
    designs: Tuple[str, ...]
    params: float
    macs: float
    slowest: float
    fastest: float
    separated: Tuple[Tuple[str, str], ...]

    @property
    def ratio(self) -> float:
        return self.fastest / self.slowest


@dataclasses.dataclass(frozen=True)
class ThroughputNoise:
    """The throughput phase's rounds and why they stopped (as many as the table holds), the narrowest, median and
    widest interval half-width (a fraction of the median) and the groups of equal-cost designs. ``timed`` counts
    the designs with an interval; a table from before interleaved rounds has none."""
    timed: int
    rounds: Tuple[int, ...]
    stops: Tuple[str, ...]
    widths: Tuple[float, float, float]
    groups: Tuple[EqualCost, ...]


def throughput_noise(summary: pd.DataFrame, frame: pd.DataFrame) -> ThroughputNoise:
    data = summary.dropna(subset=["throughput", "throughput_low", "throughput_high"])
    intervals = {row["design"]: MedianInterval(row["throughput"], row["throughput_low"], row["throughput_high"])
                 for _, row in data.iterrows()}
    widths = sorted(interval.half_width for interval in intervals.values())
    groups = []
    for (params, macs), group in data.groupby(["params", "macs_total"], sort=False):
        if len(group) < 2:
            continue
        names = tuple(group["design"])
        separated = tuple((a, b) for a, b in itertools.combinations(names, 2)
                          if not intervals[a].overlaps(intervals[b]))
        groups.append(EqualCost(names, params, macs, float(group["throughput"].min()),
                                float(group["throughput"].max()), separated))
    return ThroughputNoise(
        timed=len(intervals),
        rounds=tuple(sorted(int(r) for r in data["throughput_rounds"].dropna().unique())),
        stops=tuple(sorted(frame["throughput_stop"].dropna().unique())),
        widths=(widths[0], widths[len(widths) // 2], widths[-1]) if widths else (math.nan,) * 3,
        groups=tuple(groups))
