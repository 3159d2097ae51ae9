"""The proxy's ranking of the paper's designs next to the paper's own: ranks, rank agreement with bootstrap
intervals, the seed-noise floor and a verdict per pair (reproduction_section.py writes it as the report's section)."""
import dataclasses
import math
from typing import Dict, Tuple

import numpy as np
from scipy import stats as scipy_stats

from ..results import PRIMARY
from .stats import (BootstrapAgreement, NoiseFloor, PairDifference, RankAgreement, bootstrap_rank_agreement,
                    noise_floor, pairwise, rank_agreement)

AGREES, DISAGREES, INSIDE_NOISE, PAPER_TIE = "agrees", "disagrees", "inside the noise", "paper: tie"


@dataclasses.dataclass(frozen=True)
class PaperPair(PairDifference):
    """A pair the paper ranks (a above b, by paper_diff of top-1): the proxy's difference (PairDifference, higher is
    better), the verdict and the seeds per design at which the difference would clear the noise floor."""
    paper_diff: float
    verdict: str
    seeds_needed: float


@dataclasses.dataclass(frozen=True, eq=False)     # eq=False: numpy arrays have no single truth value
class Reproduction:
    """The paper's designs this run trained (names, in the paper's order), those it did not (missing); per name the
    proxy mean (the metric's own units), the paper's top-1, both ranks (1 the best) and the trained seeds; the rank
    agreement with its bootstrap intervals, the noise floor and every pair."""
    table: str
    names: Tuple[str, ...]
    missing: Tuple[str, ...]
    proxy: np.ndarray
    paper: np.ndarray
    proxy_rank: np.ndarray
    paper_rank: np.ndarray
    agreement: RankAgreement
    bootstrap: BootstrapAgreement
    floor: NoiseFloor
    pairs: Tuple[PaperPair, ...]
    seeds: Dict[str, int]


def reproduction(seeds: dict, paper: dict, table_name: str, n_boot: int = 2000) -> Reproduction:
    """Everything the section says, as numbers: ranks, tau/rho with bootstrap intervals, pairs, verdict.

    seeds holds the primary metric per seed; it is compared turned so that higher is better (a loss negated),
    as the paper's top-1 is, and the proxy means are given back in the metric's own units."""
    names = [name for name in sorted(paper, key=lambda n: -paper[n]) if name in seeds and len(seeds[name])]
    missing = [name for name in paper if name not in names]
    seeds = {name: PRIMARY.oriented(seeds[name]) for name in names}
    proxy = np.array([seeds[name].mean() for name in names])
    floor = noise_floor(seeds)
    pairs = []
    for pair in pairwise(seeds, names, n_boot):       # the paper ranks a above b (names are in the paper's order)
        paper_diff = paper[pair.a] - paper[pair.b]
        pairs.append(PaperPair(**vars(pair), paper_diff=paper_diff, verdict=_verdict(pair, paper_diff, floor.floor),
                               seeds_needed=seeds_to_resolve(pair.diff, floor.pooled_std)))
    return Reproduction(
        table=table_name, names=tuple(names), missing=tuple(missing), proxy=PRIMARY.oriented(proxy),
        paper=np.array([paper[n] for n in names]), proxy_rank=scipy_stats.rankdata(-proxy),
        paper_rank=scipy_stats.rankdata([-paper[n] for n in names]),
        agreement=rank_agreement(proxy, [paper[n] for n in names]),
        bootstrap=bootstrap_rank_agreement(seeds, paper, n_boot), floor=floor, pairs=tuple(pairs),
        seeds={n: len(seeds[n]) for n in names})


def seeds_to_resolve(difference: float, pooled_std: float, z: float = 1.959964) -> float:
    """Seeds per design at which a difference this large would clear the noise floor: 2 (z std / diff)^2."""
    if math.isnan(pooled_std) or pooled_std == 0:
        return 1.0 if difference else math.inf
    return math.inf if difference == 0 else math.ceil(2 * (z * pooled_std / difference) ** 2)


def _verdict(pair: PairDifference, paper_diff: float, floor: float) -> str:
    """Resolved (the interval excludes zero and the difference is outside the noise floor) with the paper or
    against it; else inside the noise."""
    if paper_diff == 0:
        return PAPER_TIE
    resolved = (pair.low > 0 or pair.high < 0) and not abs(pair.diff) < floor
    if not resolved:
        return INSIDE_NOISE
    return AGREES if (pair.diff > 0) == (paper_diff > 0) else DISAGREES
