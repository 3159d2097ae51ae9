"""How decisive a sweep is: does the design matter beyond the seed noise, and which designs does it separate?

- The design effect: a two-way analysis of variance with designs as treatments and seeds as blocks (every
  design of a seed trains on the same data in the same order, so a seed's outcomes go together): F, p, and
  the design's share of the total sum of squares (statsmodels).
- The pairs resolved: Tukey's HSD on the residual mean square of that analysis, so the whole family of
  pairwise comparisons keeps a 5% error rate (scipy's studentized range).
- For named pairs (the ones the paper orders), the probability of improvement P(A > B): the chance that a
  run of A beats a run of B, over all pairs of runs, with a percentile interval from resampling the seeds.

Every function takes a table of one metric with designs as rows and seeds as columns, oriented so that higher
is better (negate a loss first); designs are compared on the seeds every design ran (complete blocks). Results are
frozen dataclasses (the report's decisiveness section, the token-count report and benchmarks/tasks.py read them).
"""
import dataclasses
import itertools
import math
from typing import Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class DesignAnova:
    """The two-way analysis value ~ design + seed: F and p of the design effect, the design's share of the total sum
    of squares, the residual mean square (mse) and the degrees of freedom; NaN with fewer than two designs or
    seeds."""
    designs: int
    seeds: int
    F: float
    p: float
    share: float
    mse: float
    df_design: int
    df_resid: int


@dataclasses.dataclass(frozen=True)
class TukeyPair:
    """Two designs (rows a and b of the table): the difference of means a - b, Tukey's adjusted p, and whether it is
    below alpha."""
    a: str
    b: str
    diff: float
    p: float
    resolved: bool


@dataclasses.dataclass(frozen=True)
class NamedPair:
    """A pair named in advance (A the design expected better): P(A > B) with its interval over resampled seeds, the
    difference of means A - B, Tukey's p for the pair (NaN without a residual) and whether it is resolved."""
    a: str
    b: str
    p_improvement: float
    low: float
    high: float
    diff: float
    tukey_p: float
    resolved: bool


@dataclasses.dataclass(frozen=True)
class Decisiveness:
    """The design effect, every pair by Tukey's HSD, and the named pairs whose designs are both in the table."""
    anova: DesignAnova
    pairs: Tuple[TukeyPair, ...]
    named: Tuple[NamedPair, ...]

    @property
    def resolved(self) -> int:
        """How many pairs Tukey's HSD resolves."""
        return sum(p.resolved for p in self.pairs)

    @property
    def agree(self) -> int:
        """Named pairs resolved in their order (A better)."""
        return sum(n.resolved and n.diff > 0 for n in self.named)

    @property
    def against(self) -> int:
        """Named pairs resolved against their order."""
        return sum(n.resolved and n.diff < 0 for n in self.named)


def complete_blocks(table: pd.DataFrame) -> pd.DataFrame:
    """The seeds (columns) that every design (row) has a value for; designs without any value are dropped."""
    table = table.dropna(how="all")
    return table.loc[:, table.notna().all(axis=0)]


def design_anova(table: pd.DataFrame) -> DesignAnova:
    """Two-way analysis without interaction, value ~ design + seed: F and p of the design effect, the design's
    share of the total sum of squares, the residual mean square and its degrees of freedom. NaN where the
    table has fewer than two designs or two seeds (no residual to test against)."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    designs, seeds = table.shape
    result = DesignAnova(designs=designs, seeds=seeds, F=math.nan, p=math.nan, share=math.nan, mse=math.nan,
                         df_design=designs - 1, df_resid=(designs - 1) * (seeds - 1))
    if designs < 2 or seeds < 2:
        return result
    long = pd.DataFrame({"value": table.to_numpy(float).ravel(),
                         "design": np.repeat(np.arange(designs), seeds), "seed": np.tile(np.arange(seeds), designs)})
    anova = anova_lm(ols("value ~ C(design) + C(seed)", data=long).fit(), typ=2)
    ss = anova["sum_sq"]
    residual = ss["Residual"] / anova.loc["Residual", "df"]
    return dataclasses.replace(result, F=float(anova.loc["C(design)", "F"]), p=float(anova.loc["C(design)", "PR(>F)"]),
                               share=float(ss["C(design)"] / ss.sum()), mse=float(residual))


def tukey_pairs(table: pd.DataFrame, mse: float, df_resid: int, alpha: float = ALPHA) -> Tuple[TukeyPair, ...]:
    """Every pair of designs: the difference of means (row A - row B), Tukey's adjusted p-value
    P(q > |diff| / sqrt(mse / seeds)) for as many means as designs, and whether it is below alpha."""
    means, seeds = table.mean(axis=1), table.shape[1]
    scale = math.sqrt(mse / seeds) if mse > 0 else 0.0
    pairs = []
    for a, b in itertools.combinations(table.index, 2):
        diff = float(means[a] - means[b])
        if scale == 0.0:
            p = 0.0 if diff else 1.0
        else:
            p = float(stats.studentized_range.sf(abs(diff) / scale, len(means), df_resid))
        pairs.append(TukeyPair(a, b, diff, p, p < alpha))
    return tuple(pairs)


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(A > B): the fraction of pairs (run of A, run of B) that A wins, ties counting half."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    return float(np.mean((a > b) + 0.5 * (a == b)))


def improvement_interval(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0,
                         level: float = 0.95) -> Tuple[float, float]:
    """Percentile interval of P(A > B) when the seeds are resampled; A and B are the same seeds' runs, so a
    resample draws seeds, not runs of each design separately."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    draws = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    values = [probability_of_improvement(a[d], b[d]) for d in draws]
    return float(np.percentile(values, 50 * (1 - level))), float(np.percentile(values, 50 * (1 + level)))


def decisiveness(table: pd.DataFrame, named_pairs: Sequence[Tuple[str, str]] = ()) -> Decisiveness:
    """The design effect, the Tukey-resolved pairs, P(A > B) with its interval for each named pair (A, B) whose
    designs are both in the table, and how many named pairs are resolved in their order (agree) and against it.
    ``table``: designs x seeds, higher is better."""
    table = complete_blocks(table)
    anova = design_anova(table)
    pairs = () if math.isnan(anova.mse) else tukey_pairs(table, anova.mse, anova.df_resid)
    named = []
    for a, b in named_pairs:
        if a in table.index and b in table.index:
            low, high = improvement_interval(table.loc[a], table.loc[b])
            tukey = next((p for p in pairs if {p.a, p.b} == {a, b}), None)
            named.append(NamedPair(a=a, b=b, p_improvement=probability_of_improvement(table.loc[a], table.loc[b]),
                                   low=low, high=high, diff=float(table.loc[a].mean() - table.loc[b].mean()),
                                   tukey_p=tukey.p if tukey else math.nan, resolved=bool(tukey and tukey.resolved)))
    return Decisiveness(anova, pairs, tuple(named))
