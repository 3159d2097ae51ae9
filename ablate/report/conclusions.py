"""Per pair of designs, whether the comparison is settled, as a researcher would quote it.

The input is the primary metric on a budget ladder: every trial evaluated at fractions of its steps (e.g. 0.5 and
1.0), one designs x seeds table per fraction, oriented so that higher is better (the caller negates a loss). At every
budget the designs are compared on the seeds every design ran (complete blocks), and only designs present at every
budget take part. A pair's verdict (alpha = 0.05 unless told):

- better: Tukey's HSD on the residual of the two-way design + seed analysis (design_anova, then tukey_pairs, as the
  decisiveness section does; the whole family of pairs keeps the error rate) resolves the pair at the largest
  budget; at the next largest budget (where the ladder has one) the difference has the same sign, resolved or not;
  and no budget resolves it the other way.
- moving: resolved at some budget, but not better (reversed, or unresolved, at another budget).
- equivalent: resolved at no budget, and within +-margin at the largest budget by TOST (two one-sided tests,
  H0: |true difference| >= margin) on the pooled residual variance, Holm-adjusted over all pairs, p < alpha.
- undecided: none of those; with the number of seeds per design at which the measured difference and spread would
  settle it (Tukey resolves it, or TOST at the Bonferroni level shows it equivalent).
"""
import dataclasses
import functools
import itertools
import math
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from .decisive import ALPHA, DesignAnova, complete_blocks, design_anova, tukey_pairs

BETTER, EQUIVALENT, MOVING, UNDECIDED = "better", "equivalent", "moving", "undecided"
VERDICTS = (BETTER, EQUIVALENT, MOVING, UNDECIDED)
MAX_SEEDS = 1000                  # seeds_needed looks no further: beyond it a pair is "more than 1000 seeds"


@dataclasses.dataclass(frozen=True)
class BudgetComparison:
    """One pair at one budget: diff = mean(a) - mean(b) on the complete blocks (oriented, higher is better), Tukey's
    adjusted p (NaN with fewer than two complete seeds) and whether it is below alpha."""
    budget: float
    diff: float
    tukey_p: float
    resolved: bool

    def flipped(self) -> "BudgetComparison":
        """The same comparison seen from b: b - a."""
        return dataclasses.replace(self, diff=-self.diff)


@dataclasses.dataclass(frozen=True)
class PairConclusion:
    """A pair's verdict (one of VERDICTS). For "better", a is the better design (difference > 0); otherwise a and b
    are in the table's row order. difference: a - b at the largest budget (oriented); tost_p: the Holm-adjusted
    TOST p at the largest budget; budgets: the comparison at every budget, smallest first; seeds_needed: for an
    undecided pair, the seeds per design that would settle it at the measured spread (None otherwise, or when
    more than MAX_SEEDS or not measurable)."""
    a: str
    b: str
    verdict: str
    difference: float
    margin: float
    tost_p: float
    budgets: Tuple[BudgetComparison, ...]
    seeds_needed: Optional[int]

    @property
    def largest(self) -> BudgetComparison:
        """The comparison at the largest budget."""
        return self.budgets[-1]


@dataclasses.dataclass(frozen=True)
class DesignEffect(DesignAnova):
    """The two-way analysis (value ~ design + seed, ablate.report.decisive) at one budget, on its complete blocks."""
    budget: float = math.nan


@dataclasses.dataclass(frozen=True)
class Conclusions:
    """Every pair's conclusion (in the order of itertools.combinations over the designs), the designs (row order
    of the largest budget's table), the budgets (smallest first), the complete seeds and design effect at each
    budget, the margin and alpha."""
    pairs: Tuple[PairConclusion, ...]
    designs: Tuple[str, ...]
    budgets: Tuple[float, ...]
    seeds: Tuple[int, ...]
    effects: Tuple[DesignEffect, ...]
    margin: float
    alpha: float

    def count(self, verdict: str) -> int:
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; the verdicts are {VERDICTS}")
        return sum(p.verdict == verdict for p in self.pairs)

    def with_verdict(self, verdict: str) -> Tuple[PairConclusion, ...]:
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; the verdicts are {VERDICTS}")
        return tuple(p for p in self.pairs if p.verdict == verdict)


def tost_p(diff: float, mse: float, df: float, seeds: int, margin: float) -> float:
    """Two one-sided tests of H0: |true difference| >= margin for the mean of a pair's per-seed differences, with
    the residual mean square of the two-way analysis (df degrees of freedom) as the pooled variance: under the
    additive design + seed model a per-seed difference has variance 2 * mse, so se = sqrt(2 * mse / seeds).
    The larger of the two one-sided p-values; NaN where there is nothing to test against (diff or mse NaN, fewer
    than two seeds, no residual degree of freedom); with mse == 0, 0 if |diff| < margin else 1."""
    if math.isnan(diff) or math.isnan(mse) or seeds < 2 or not df >= 1:
        return math.nan
    if mse <= 0:
        return 0.0 if abs(diff) < margin else 1.0
    se = math.sqrt(2 * mse / seeds)
    p_low = stats.t.sf((diff + margin) / se, df)          # H0: diff <= -margin
    p_high = stats.t.cdf((diff - margin) / se, df)        # H0: diff >= +margin
    return float(max(p_low, p_high))


def seeds_needed(diff: float, mse: float, designs: int, margin: float, pairs: int,
                 alpha: float = ALPHA) -> Optional[int]:
    """The smallest number of seeds per design n (2..MAX_SEEDS) at which, if the measured difference and residual
    mean square held, the pair would be settled: Tukey resolves it, |diff| / sqrt(mse / n) >
    studentized_range.ppf(1 - alpha, designs, (designs - 1)(n - 1)), or TOST at the Bonferroni level shows it
    equivalent, |diff| + t.ppf(1 - alpha / pairs, (designs - 1)(n - 1)) * sqrt(2 mse / n) < margin. None when
    more than MAX_SEEDS would be needed, or when diff or mse is NaN."""
    if math.isnan(diff) or math.isnan(mse):
        return None
    if designs < 2 or pairs < 1:
        raise ValueError(f"seeds_needed needs at least two designs and one pair, got {designs} and {pairs}")
    diff, mse = abs(diff), max(mse, 0.0)
    n = np.arange(2, MAX_SEEDS + 1)
    df = (designs - 1) * (n - 1)
    # TOST, vectorised over n (t.ppf is cheap).
    equivalent = diff + stats.t.ppf(1 - alpha / pairs, df) * np.sqrt(2 * mse / n) < margin
    n_tost = int(n[np.argmax(equivalent)]) if equivalent.any() else None
    # Tukey, only below the TOST answer: its critical value is slow to compute exactly, so a fast approximation
    # finds the neighbourhood and the exact test decides where the two are close.
    upper = (n_tost - 1) if n_tost is not None else MAX_SEEDS
    n_tukey = _tukey_seeds(diff, mse, designs, alpha, upper) if upper >= 2 else None
    found = [v for v in (n_tost, n_tukey) if v is not None]
    return min(found) if found else None


def _tukey_seeds(diff: float, mse: float, designs: int, alpha: float, upper: int) -> Optional[int]:
    """The smallest n in 2..upper at which Tukey would resolve |diff| with residual mean square mse; None if none."""
    if diff == 0:
        return None
    if mse == 0:
        return 2
    n = np.arange(2, upper + 1)
    stat = diff * np.sqrt(n / mse)
    df = (designs - 1) * (n - 1)
    approx = _approx_q(1 - alpha, designs)[:len(n)]

    @functools.lru_cache(maxsize=None)
    def resolves(count: int) -> bool:
        i = count - 2
        if not math.isnan(approx[i]):
            if stat[i] > approx[i] * (1 + _Q_TOLERANCE):
                return True
            if stat[i] < approx[i] * (1 - _Q_TOLERANCE):
                return False
        # stat > ppf(1 - alpha) exactly when sf(stat) < alpha, and sf is an order of magnitude cheaper than ppf.
        return bool(stats.studentized_range.sf(stat[i], designs, df[i]) < alpha)

    above = stat > np.nan_to_num(approx, nan=0.0)
    guess = int(n[np.argmax(above)]) if above.any() else upper
    return _smallest_true(resolves, 2, upper, guess)


# statsmodels' table-based quantile of the studentized range is within 0.32% of scipy's (checked over 2..150
# means, 1..100000 df, p 0.9..0.999); where a statistic is closer than this to it, the exact test decides.
_Q_TOLERANCE = 0.01


@functools.lru_cache(maxsize=16)
def _approx_q(p: float, designs: int) -> np.ndarray:
    """Approximate studentized range quantiles for n = 2..MAX_SEEDS seeds, df = (designs - 1)(n - 1): NaN where
    the approximation does not reach. The same for every pair of a table, so computed once (read-only)."""
    from statsmodels.stats.libqsturng import qsturng
    df = ((designs - 1) * (np.arange(2, MAX_SEEDS + 1) - 1)).astype(float)
    try:
        q = np.broadcast_to(np.asarray(qsturng(p, designs, df), dtype=float), df.shape).copy()
    except Exception:  # noqa: BLE001 (outside its table: p, designs; the exact test then decides everywhere)
        q = np.full(df.shape, math.nan)
    q.flags.writeable = False
    return q


def _smallest_true(predicate: Callable[[int], bool], low: int, high: int, guess: int) -> Optional[int]:
    """The smallest n in low..high where a monotone predicate (False, ..., False, True, ..., True) holds, or None:
    a galloping search out from a guess, then bisection, so a good guess costs two evaluations."""
    guess = min(max(guess, low), high)
    step = 1
    if predicate(guess):
        true_at = guess
        while True:
            if true_at == low:
                return low
            probe = max(low, true_at - step)
            if not predicate(probe):
                false_at = probe
                break
            true_at, step = probe, step * 2
    else:
        false_at = guess
        while True:
            if false_at == high:
                return None
            probe = min(high, false_at + step)
            if predicate(probe):
                true_at = probe
                break
            false_at, step = probe, step * 2
    while true_at - false_at > 1:
        middle = (true_at + false_at) // 2
        if predicate(middle):
            true_at = middle
        else:
            false_at = middle
    return true_at


def conclude(tables: Mapping[float, pd.DataFrame], margin: float, alpha: float = ALPHA) -> Conclusions:
    """Every pair's verdict from the primary metric on a budget ladder: {budget fraction: designs x seeds table,
    higher is better}; margin: the equivalence margin in the metric's units. See the module's docstring."""
    if not tables:
        raise ValueError("no tables: expected {budget fraction: designs x seeds table of the primary metric}")
    try:
        positive = float(margin) > 0 and not math.isinf(float(margin))
    except (TypeError, ValueError):
        positive = False
    if not positive:
        raise ValueError(f"the equivalence margin must be a positive number in the metric's units, got {margin!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    budgets = sorted(tables)
    present = [set(tables[b].dropna(how="all").index) for b in budgets]
    designs = [d for d in tables[budgets[-1]].dropna(how="all").index if all(d in p for p in present)]
    if len(designs) < 2:
        raise ValueError(f"fewer than two designs have values at every budget ({', '.join(map(_budget, budgets))}): "
                         f"{designs}; nothing to compare")
    blocks = {b: complete_blocks(tables[b].loc[designs]) for b in budgets}
    for b, block in blocks.items():
        if block.shape[1] == 0:
            raise ValueError(f"at budget {_budget(b)} no seed has a value for all {len(designs)} designs; "
                             "drop that budget or the designs missing there")
    effects, per_budget = [], []
    for b in budgets:
        effect, comparisons = _compare(blocks[b], float(b), alpha)
        effects.append(effect)
        per_budget.append(comparisons)
    pairs = list(itertools.combinations(designs, 2))
    ladders = [tuple(comparisons[i] for comparisons in per_budget) for i in range(len(pairs))]
    last = effects[-1]
    raw = [tost_p(ladder[-1].diff, last.mse, last.df_resid, last.seeds, margin) for ladder in ladders]
    adjusted = _holm(raw, alpha)
    conclusions = []
    for (a, b), ladder, p in zip(pairs, ladders, adjusted):
        verdict = _verdict(ladder, p, alpha)
        if verdict == BETTER and ladder[-1].diff < 0:
            a, b, ladder = b, a, tuple(c.flipped() for c in ladder)
        needed = (seeds_needed(ladder[-1].diff, last.mse, len(designs), margin, len(pairs), alpha)
                  if verdict == UNDECIDED else None)
        conclusions.append(PairConclusion(a=a, b=b, verdict=verdict, difference=ladder[-1].diff, margin=float(margin),
                                          tost_p=p, budgets=ladder, seeds_needed=needed))
    return Conclusions(pairs=tuple(conclusions), designs=tuple(designs), budgets=tuple(float(b) for b in budgets),
                       seeds=tuple(e.seeds for e in effects), effects=tuple(effects), margin=float(margin),
                       alpha=float(alpha))


def conclusions(tables: Mapping[float, pd.DataFrame], margin: float, alpha: float = ALPHA) -> List[PairConclusion]:
    """Every pair's conclusion (see conclude, which also returns the budgets, seeds and design effects)."""
    return list(conclude(tables, margin, alpha).pairs)


def _compare(block: pd.DataFrame, budget: float, alpha: float) -> Tuple[DesignEffect, List[BudgetComparison]]:
    """The design effect and every pair's comparison at one budget (pairs in itertools.combinations order)."""
    anova = design_anova(block)
    effect = DesignEffect(**dataclasses.asdict(anova), budget=budget)
    if math.isnan(effect.mse):          # one seed: differences, but no residual to resolve them against
        means = block.mean(axis=1)
        return effect, [BudgetComparison(budget, float(means[a] - means[b]), math.nan, False)
                        for a, b in itertools.combinations(block.index, 2)]
    return effect, [BudgetComparison(budget, pair.diff, pair.p, pair.resolved)
                    for pair in tukey_pairs(block, effect.mse, effect.df_resid, alpha)]


def _holm(p_values: Sequence[float], alpha: float) -> List[float]:
    """Holm-adjusted p-values over the family of the finite ones; NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, math.nan)
    finite = ~np.isnan(p_values)
    if finite.any():
        adjusted[finite] = multipletests(p_values[finite], alpha=alpha, method="holm")[1]
    return [float(p) for p in adjusted]


def _verdict(ladder: Sequence[BudgetComparison], tost_adjusted: float, alpha: float) -> str:
    """The rules of the module's docstring, on one pair's comparisons (smallest budget first)."""
    last = ladder[-1]
    sign = np.sign(last.diff)
    reversed_somewhere = any(c.resolved and np.sign(c.diff) == -sign for c in ladder)
    same_at_next = len(ladder) < 2 or np.sign(ladder[-2].diff) == sign
    if last.resolved and same_at_next and not reversed_somewhere:
        return BETTER
    if any(c.resolved for c in ladder):
        return MOVING
    if tost_adjusted < alpha:            # False for NaN
        return EQUIVALENT
    return UNDECIDED


def equivalence_groups(conclusions: Iterable[PairConclusion]) -> List[List[str]]:
    """Groups of designs in which every pair is equivalent: greedy maximal cliques of the "equivalent" graph,
    largest first (ties: the group whose designs come first), each design in at most one group; sets of three or
    more, then pairs. Designs in a group are in the order they first appear in the conclusions."""
    conclusions = list(conclusions)
    order: Dict[str, int] = {}
    for c in conclusions:
        order.setdefault(c.a, len(order))
        order.setdefault(c.b, len(order))
    neighbours: Dict[str, set] = {}
    for c in conclusions:
        if c.verdict == EQUIVALENT and c.a != c.b:
            neighbours.setdefault(c.a, set()).add(c.b)
            neighbours.setdefault(c.b, set()).add(c.a)
    remaining = set(neighbours)
    groups = []
    while remaining:
        graph = {d: neighbours[d] & remaining for d in remaining}
        cliques = [sorted(c, key=order.__getitem__) for c in _maximal_cliques(graph)]
        best = min(cliques, key=lambda c: (-len(c), [order[d] for d in c]))
        if len(best) < 2:
            break
        groups.append(best)
        remaining -= set(best)
    return groups


def _maximal_cliques(graph: Dict[str, set]) -> List[set]:
    """Every maximal clique of an undirected graph {node: neighbours} (Bron-Kerbosch with a pivot)."""
    cliques: List[set] = []

    def extend(clique: set, candidates: set, excluded: set) -> None:
        if not candidates and not excluded:
            cliques.append(clique)
            return
        pivot = max(candidates | excluded, key=lambda d: len(graph[d] & candidates))
        for node in list(candidates - graph[pivot]):
            extend(clique | {node}, candidates & graph[node], excluded & graph[node])
            candidates = candidates - {node}
            excluded = excluded | {node}

    extend(set(), set(graph), set())
    return cliques


def _budget(budget: float) -> str:
    return format(budget, "g")


__all__ = ["BETTER", "EQUIVALENT", "MOVING", "UNDECIDED", "VERDICTS", "BudgetComparison", "Conclusions",
           "DesignEffect", "PairConclusion", "conclude", "conclusions", "equivalence_groups", "seeds_needed",
           "tost_p"]
