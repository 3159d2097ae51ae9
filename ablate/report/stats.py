"""Statistics over seeds: intervals, rank agreement with the paper, pairwise comparisons, the noise floor.

Every function takes plain arrays or {design: array of per-seed accuracies}, so tests can feed tables with
known answers; a result of several numbers is a frozen dataclass, so a reader names the field it reads.
"""
import dataclasses
import itertools
import math
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import stats


Interval = Tuple[float, float]


@dataclasses.dataclass(frozen=True)
class RankAgreement:
    """Kendall tau-b and Spearman rho of two orders of the same designs; NaN where either side has no order."""
    kendall_tau: float
    spearman_rho: float


@dataclasses.dataclass(frozen=True)
class BootstrapAgreement:
    """Percentile intervals of tau and rho over resamples of the seeds; ``undefined`` of the ``n_boot`` resamples
    ranked nothing (all means equal) and are left out of the intervals."""
    kendall_tau: Interval
    spearman_rho: Interval
    undefined: int
    n_boot: int


@dataclasses.dataclass(frozen=True)
class PairDifference:
    """A - B of two designs' means over seeds: its bootstrap interval and permutation p; and, on the seeds both ran
    (paired_n of them, 0 when they share fewer than two), the paired difference and its sign-flip p."""
    a: str
    b: str
    diff: float
    low: float
    high: float
    p: float
    paired_n: int
    paired_diff: float
    paired_p: float


@dataclasses.dataclass(frozen=True)
class NoiseFloor:
    """The pooled within-design std over seeds, the smallest difference of two means outside the noise at the
    typical seed count (seeds), both NaN when no design has two seeds."""
    pooled_std: float
    floor: float
    seeds: int


@dataclasses.dataclass(frozen=True)
class RungAgreement:
    """How far the ranking at one rung survives at another: tau, rho and the top-k overlap of the designs' means,
    each with its percentile bootstrap interval; ``undefined`` of the ``n_boot`` resamples ranked nothing."""
    kendall_tau: float
    spearman_rho: float
    kendall_tau_interval: Interval
    spearman_rho_interval: Interval
    top_k: int
    top_k_overlap: float
    top_k_overlap_interval: Interval
    designs: int
    undefined: int
    n_boot: int


def t_interval(values: Sequence[float], level: float = 0.95):
    """Mean and the t-interval for it; one value gives an interval of (nan, nan)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, (math.nan, math.nan)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def rank_agreement(proxy: Sequence[float], paper: Sequence[float]) -> RankAgreement:
    """Kendall tau-b (ties counted as ties) and Spearman rho; nan when either side is constant."""
    proxy, paper = np.asarray(proxy, dtype=float), np.asarray(paper, dtype=float)
    if len(proxy) < 2 or np.ptp(proxy) == 0 or np.ptp(paper) == 0:
        return RankAgreement(math.nan, math.nan)
    return RankAgreement(kendall_tau=float(stats.kendalltau(proxy, paper).statistic),
                         spearman_rho=float(stats.spearmanr(proxy, paper).statistic))


def rank_agreements(proxy: np.ndarray, paper: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """rank_agreement for many proxy orders at once (rows of ``proxy``, resamples x designs): Kendall tau-b from
    the signs of every pair, Spearman rho as the Pearson correlation of scipy's average ranks; NaN for a constant
    row. The fast path of the bootstrap (a scipy call per resample took seconds per report); tests/test_report.py
    checks it against rank_agreement, row by row, ties included."""
    proxy, paper = np.atleast_2d(np.asarray(proxy, dtype=float)), np.asarray(paper, dtype=float)
    if proxy.shape[1] < 2:                                    # one design or none: no order to compare
        return np.full(len(proxy), math.nan), np.full(len(proxy), math.nan)
    upper = np.triu_indices(proxy.shape[1], k=1)                                  # every pair i < j once
    sign_proxy = np.sign(proxy[:, :, None] - proxy[:, None, :])[:, upper[0], upper[1]]    # (rows, pairs)
    sign_paper = np.sign(paper[:, None] - paper[None, :])[upper]                          # (pairs,)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sign_proxy @ sign_paper) / np.sqrt((sign_proxy ** 2).sum(1) * (sign_paper ** 2).sum())
        ranks, paper_ranks = stats.rankdata(proxy, axis=1), stats.rankdata(paper)
        ranks, paper_ranks = ranks - ranks.mean(1, keepdims=True), paper_ranks - paper_ranks.mean()
        rho = (ranks @ paper_ranks) / np.sqrt((ranks ** 2).sum(1) * (paper_ranks ** 2).sum())
    constant = (np.ptp(proxy, axis=1) == 0) | (np.ptp(paper) == 0)
    tau[constant], rho[constant] = math.nan, math.nan
    return tau, rho


def bootstrap_rank_agreement(seeds: Dict[str, np.ndarray], paper: Dict[str, float], n_boot: int = 2000,
                             seed: int = 0, level: float = 0.95) -> BootstrapAgreement:
    """Percentile intervals of tau and rho when each design's seeds are resampled with replacement.

    Resamples whose proxy means are all equal have no ranking; they are counted in `undefined` and left out
    of the intervals.
    """
    names = [name for name in paper if name in seeds]
    rng = np.random.default_rng(seed)
    means = np.array([[rng.choice(seeds[name], size=len(seeds[name])).mean() for name in names]
                      for _ in range(n_boot)]).reshape(n_boot, len(names))                # resamples x designs
    taus, rhos = rank_agreements(means, [paper[name] for name in names])
    defined = ~np.isnan(taus)
    return BootstrapAgreement(percentile_interval(taus[defined], level), percentile_interval(rhos[defined], level),
                              int((~defined).sum()), n_boot)


def percentile_interval(values: Sequence[float], level: float = 0.95):
    """The central ``level`` percentile interval of bootstrap values; (nan, nan) for none."""
    if not len(values):
        return math.nan, math.nan
    return float(np.percentile(values, 50 * (1 - level))), float(np.percentile(values, 50 * (1 + level)))


def permutation_p(a: Sequence[float], b: Sequence[float], max_exact: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of the difference of means under random relabelling of the pooled seeds.

    Exact (every split) when there are at most max_exact splits, else 10,000 random ones. With three seeds
    per side there are 20 splits, so the smallest attainable p is 0.10.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pooled, n = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    if math.comb(len(pooled), n) <= max_exact:
        splits = (list(c) for c in itertools.combinations(range(len(pooled)), n))
    else:
        rng = np.random.default_rng(seed)
        splits = (rng.choice(len(pooled), n, replace=False) for _ in range(10000))
    hits = total = 0
    for index in splits:
        mask = np.zeros(len(pooled), dtype=bool)
        mask[index] = True
        hits += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed - 1e-12
        total += 1
    return hits / total


def bootstrap_difference(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile interval of mean(a) - mean(b), seeds of each side resampled independently."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    diffs = rng.choice(a, (n_boot, len(a))).mean(1) - rng.choice(b, (n_boot, len(b))).mean(1)
    return float(np.percentile(diffs, 50 * (1 - level))), float(np.percentile(diffs, 50 * (1 + level)))


def sign_flip_p(differences: Sequence[float], max_exact: int = 16, seed: int = 0) -> float:
    """Two-sided p-value of a mean paired difference: every sign flip of the differences (10,000 random ones
    past max_exact pairs). With n pairs the smallest attainable p is 2 / 2^n."""
    d = np.asarray(differences, dtype=float)
    if len(d) <= max_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(10000, len(d)))
    return float(np.mean(np.abs((signs * d).mean(axis=1)) >= abs(d.mean()) - 1e-12))


def pairwise(seeds: Dict[str, np.ndarray], order: Sequence[str], n_boot: int = 2000) -> Tuple[PairDifference, ...]:
    """For each pair (A before B in `order`): the difference of means, its interval, and a p-value; and, where
    both designs ran the same seeds (Series indexed by seed), the paired difference and its sign-flip p."""
    rows = []
    for first, second in itertools.combinations(order, 2):
        a, b = seeds[first], seeds[second]
        low, high = bootstrap_difference(a, b, n_boot)
        paired = (0, math.nan, math.nan)
        common = a.index.intersection(b.index) if hasattr(a, "index") and hasattr(b, "index") else []
        if len(common) >= 2:
            d = (a[common] - b[common]).to_numpy(float)
            paired = (len(common), float(d.mean()), sign_flip_p(d))
        rows.append(PairDifference(first, second, float(np.mean(a) - np.mean(b)), low, high, permutation_p(a, b),
                                   *paired))
    return tuple(rows)


def noise_floor(seeds: Dict[str, np.ndarray], level: float = 0.95) -> NoiseFloor:
    """The seed noise: the pooled within-design std, and the half-width of a normal interval on the
    difference of two designs' means at the typical seed count. A difference below it is inside the noise."""
    groups = [np.asarray(v, dtype=float) for v in seeds.values() if len(v) > 1]
    if not groups:
        return NoiseFloor(math.nan, math.nan, 1)
    dof = sum(len(g) - 1 for g in groups)
    pooled = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)
    n = int(np.median([len(g) for g in groups]))
    floor = stats.norm.ppf(0.5 + level / 2) * pooled * math.sqrt(2 / n)
    return NoiseFloor(pooled, floor, n)


def top_k_overlap(low: Dict[str, float], high: Dict[str, float], k: int) -> float:
    """The share of the k best designs by ``low`` that are also among the k best by ``high`` (ties broken by
    name, so the answer is fixed)."""
    def best(scores):
        return set(sorted(scores, key=lambda name: (-scores[name], name))[:k])
    return len(best(low) & best(high)) / k


def paired_scores(low: Dict[str, object], high: Dict[str, object]
                  ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """The designs both sides trained, each on the seeds both trained, in the same seed order: {design: per-seed
    scores} at each side. Inputs are {design: a Series of scores indexed by seed}. Where the sides share no seed
    (an audit on fresh seeds) each side's seeds are taken in order, as many as the smaller side has: independent
    seeds, so pairing them by position changes nothing but lets a resample draw both sides alike."""
    paired_low, paired_high = {}, {}
    for design in sorted(set(low) & set(high)):
        seeds = sorted(set(low[design].index) & set(high[design].index))
        if seeds:
            paired_low[design] = low[design].loc[seeds].to_numpy(float)
            paired_high[design] = high[design].loc[seeds].to_numpy(float)
        else:
            count = min(len(low[design]), len(high[design]))
            paired_low[design] = low[design].sort_index().to_numpy(float)[:count]
            paired_high[design] = high[design].sort_index().to_numpy(float)[:count]
    return paired_low, paired_high


def rung_agreement(low: Dict[str, np.ndarray], high: Dict[str, np.ndarray], k: int = 3, n_boot: int = 2000,
                   seed: int = 0, level: float = 0.95) -> RungAgreement:
    """How far the ranking of designs by their mean over seeds at a cheap rung (``low``) survives at a dearer one
    (``high``), both turned so that higher is better: Kendall tau-b, Spearman rho and the top-k overlap of the
    means, with percentile bootstrap intervals. A design's seeds are paired across rungs (same data, same
    initialisation), so each resample draws the same seeds at both. Resamples in which either side has no ranking
    (all means equal) are counted in ``undefined`` and left out. With few seeds the percentile interval is narrower
    than the true uncertainty."""
    names = sorted(name for name in low if name in high)
    low_means = {name: float(np.mean(low[name])) for name in names}
    high_means = {name: float(np.mean(high[name])) for name in names}
    point = rank_agreement([low_means[n] for n in names], [high_means[n] for n in names])
    rng = np.random.default_rng(seed)
    taus, rhos, overlaps, undefined = [], [], [], 0
    for _ in range(n_boot):
        draws = {n: rng.integers(0, len(low[n]), len(low[n])) for n in names}
        a = {n: low[n][draws[n]].mean() for n in names}
        b = {n: high[n][draws[n]].mean() for n in names}
        agreement = rank_agreement([a[n] for n in names], [b[n] for n in names])
        if math.isnan(agreement.kendall_tau):
            undefined += 1
            continue
        taus.append(agreement.kendall_tau)
        rhos.append(agreement.spearman_rho)
        overlaps.append(top_k_overlap(a, b, k))
    return RungAgreement(point.kendall_tau, point.spearman_rho, percentile_interval(taus, level),
                         percentile_interval(rhos, level), k, top_k_overlap(low_means, high_means, k),
                         percentile_interval(overlaps, level), len(names), undefined, n_boot)


HOLDS_TAU = 0.6    # the NAS literature's reduced-training proxies rank at tau 0.6-0.8 against full training


def rung_verdict(tau: float, interval, low: str, high: str) -> str:
    """The audit's answer in words: the ranking holds (tau at least HOLDS_TAU and its interval above 0), holds in
    part (the interval above 0, tau below HOLDS_TAU), is reversed (the interval below 0), or does not hold."""
    if math.isnan(tau):
        return f"cannot say whether the {low} ranking holds at {high}: one of the rungs does not rank the designs"
    if interval[0] > 0 and tau >= HOLDS_TAU:
        return (f"the {low} proxy ranking holds at {high} (tau {tau:.2f}, at least {HOLDS_TAU}, with its interval "
                f"above 0)")
    if interval[0] > 0:
        return (f"the {low} proxy ranking holds only in part at {high}: tau {tau:.2f}, its bootstrap interval above 0, "
                f"is below {HOLDS_TAU}, the low end of what reduced-training proxies reach")
    if interval[1] < 0:
        return (f"the {low} proxy ranking is reversed at {high}: tau {tau:.2f}, its 95% interval "
                f"[{interval[0]:.2f}, {interval[1]:.2f}] below 0")
    return (f"the {low} proxy ranking does not hold at {high}: tau {tau:.2f}, and its 95% interval "
            f"[{interval[0]:.2f}, {interval[1]:.2f}] includes 0")
