"""The report's conclusions, for its top: per pair of designs, whether the comparison is settled (better, equivalent,
moving with the budget, or undecided), in sentences a researcher would quote and a table of every pair."""
import math
import statistics
from typing import List

import pandas as pd

from ..results import Metric
from .conclusions import (BETTER, EQUIVALENT, MAX_SEEDS, MOVING, UNDECIDED, VERDICTS, Conclusions,
                          equivalence_groups)
from .table import fmt


def conclusions_frame(result: Conclusions, metric: Metric) -> pd.DataFrame:
    """One row per pair: a, b, verdict, difference (a - b at the largest budget, in the metric's own units), margin,
    metric (its column); then the Holm-adjusted TOST p, Tukey's p at the largest budget, the seeds needed (undecided
    pairs) and diff_<budget>, a - b at each budget in the metric's units."""
    rows = []
    for pair in result.pairs:
        row = {"a": pair.a, "b": pair.b, "verdict": pair.verdict, "difference": _raw(pair.difference, metric),
               "margin": pair.margin, "metric": metric.column, "tost_p": pair.tost_p, "tukey_p": pair.largest.tukey_p,
               "seeds_needed": pair.seeds_needed}
        row.update({f"diff_{_budget(c.budget)}": _raw(c.diff, metric) for c in pair.budgets})
        rows.append(row)
    columns = ["a", "b", "verdict", "difference", "margin", "metric", "tost_p", "tukey_p", "seeds_needed"] + \
        [f"diff_{_budget(b)}" for b in result.budgets]
    frame = pd.DataFrame(rows, columns=columns)
    frame["seeds_needed"] = frame["seeds_needed"].astype("Int64")
    return frame


def conclusions_markdown(result: Conclusions, metric: Metric) -> str:
    """The "## Conclusions" section: the count of each verdict, what the verdicts mean, the sentences (winners,
    equivalence groups, pairs that move with the budget, the undecided and the seeds they would need) and a table
    of every pair."""
    lines = ["## Conclusions", "", _headline(result, metric), "", _definitions(result), ""]
    for sentences in (_winners(result), _equivalences(result), _moving(result, metric), _undecided(result)):
        if sentences:
            lines += sentences + [""]
    lines += [_pair_table(result, metric), ""]
    return "\n".join(lines)


def _headline(result: Conclusions, metric: Metric) -> str:
    counts = ", ".join(f"{result.count(v)} {v}" for v in VERDICTS)
    budgets = _and([_budget(b) for b in result.budgets])
    if len(set(result.seeds)) == 1:
        seeds = f"{result.seeds[0]} complete seed{'s' if result.seeds[0] != 1 else ''}"
        seeds += " at every budget" if len(result.budgets) > 1 else ""
    else:
        seeds = "complete seeds " + ", ".join(f"{s} at {_budget(b)}" for b, s in zip(result.budgets, result.seeds))
    ladder = (f"budgets {budgets} of each trial's steps" if len(result.budgets) > 1
              else f"one budget ({budgets} of each trial's steps)")
    return (f"**Of {len(result.pairs)} design pairs on {metric.label}: {counts}** "
            f"({len(result.designs)} designs; equivalence margin {_margin(result.margin)}; {ladder}; {seeds}).")


def _definitions(result: Conclusions) -> str:
    level = f"{100 * result.alpha:g}%"
    ladder = ("the difference has the same sign at the next largest budget, and no budget resolves it the other way"
              if len(result.budgets) > 1 else "(one budget: no ladder to check)")
    return (f"*better*: Tukey's HSD at {level} on the residual of the two-way design + seed analysis (family-wise over "
            f"all pairs) resolves the pair at the largest budget, {ladder}; *moving*: resolved at some budget but not "
            f"better; *equivalent*: resolved at no budget, and within ±{_margin(result.margin)} at the largest budget "
            f"by TOST (two one-sided tests on the pooled residual variance, Holm-adjusted over all pairs, p < "
            f"{result.alpha:g}); *undecided*: none of these.")


def _winners(result: Conclusions) -> List[str]:
    better = result.with_verdict(BETTER)
    order = {d: i for i, d in enumerate(result.designs)}
    winners = sorted({p.a for p in better}, key=lambda d: (-sum(p.a == d for p in better), order[d]))
    how = ("resolved at the largest budget, in the same direction at the next; never reversed"
           if len(result.budgets) > 1 else "resolved by Tukey's HSD; a single budget, so no ladder to check")
    sentences = []
    for winner in winners:
        losers = sorted((p.b for p in better if p.a == winner), key=order.__getitem__)
        sentences.append(f"{_name(winner)} beats {', '.join(map(_name, losers))} ({how}).")
    return sentences


def _equivalences(result: Conclusions) -> List[str]:
    groups = equivalence_groups(result.pairs)
    margin = _margin(result.margin)
    sentences = [f"{_and([_name(d) for d in group])} are equivalent within {margin} "
                 f"({'every pair, ' if len(group) > 2 else ''}TOST, Holm-adjusted)." for group in groups]
    grouped = {d: i for i, group in enumerate(groups) for d in group}
    across = [p for p in result.with_verdict(EQUIVALENT)
              if p.a not in grouped or p.b not in grouped or grouped[p.a] != grouped[p.b]]
    if across:
        sentences.append(f"Also equivalent within {margin} (TOST, Holm-adjusted): "
                         + "; ".join(f"{_name(p.a)} and {_name(p.b)}" for p in across) + ".")
    return sentences


def _moving(result: Conclusions, metric: Metric) -> List[str]:
    sentences = []
    for pair in result.with_verdict(MOVING):
        a, b, ladder = pair.a, pair.b, pair.budgets
        if ladder[-1].diff - ladder[0].diff < 0:              # the one whose difference grows with the budget first
            a, b, ladder = b, a, tuple(c.flipped() for c in ladder)
        steps = " -> ".join(f"{_raw(c.diff, metric):+.4f} at {_budget(c.budget)}{' (resolved)' if c.resolved else ''}"
                            for c in ladder)
        sentences.append(f"{_name(a)} gains on {_name(b)} as the budget grows ({_name(a)} - {_name(b)}: {steps}).")
    return sentences


def _undecided(result: Conclusions) -> List[str]:
    undecided = result.with_verdict(UNDECIDED)
    if not undecided:
        return []
    count = f"{len(undecided)} pair{'s' if len(undecided) != 1 else ''} undecided"
    if math.isnan(result.effects[-1].mse):
        return [f"{count}: fewer than two complete seeds at the largest budget, so no spread to measure."]
    needed = [p.seeds_needed if p.seeds_needed is not None else math.inf for p in undecided]
    median = statistics.median_high(needed)
    need = f"more than {MAX_SEEDS}" if math.isinf(median) else f"{median}"
    beyond = sum(math.isinf(n) for n in needed)
    who = "the median pair would need" if len(undecided) > 1 else "it would need"
    sentence = (f"{count}: at the measured spread {who} {need} seeds per design (now {result.seeds[-1]}) to be "
                f"resolved by Tukey's HSD or shown equivalent within {_margin(result.margin)}")
    if beyond and len(undecided) > 1:
        sentence += f"; {beyond} would need more than {MAX_SEEDS}"
    return [sentence + ".", _seed_curve(result, needed)]


def _seed_curve(result: Conclusions, needed: List[float]) -> str:
    """Where the wall is: the pairs with a conclusion (better or equivalent) now, and at 2x, 4x and 10x the seeds if
    the measured differences and spread held (a rough guide: the undecided pairs' own differences, not new ones)."""
    seeds = result.seeds[-1]
    settled = result.count(BETTER) + result.count(EQUIVALENT)
    steps = [f"{seeds} seeds: {settled}"] + [f"{k * seeds}: {settled + sum(n <= k * seeds for n in needed)}"
                                              for k in (2, 4, 10)]
    return (f"Pairs with a conclusion at the measured differences and spread, by seeds per design: "
            f"{'; '.join(steps)} of {len(result.pairs)}.")


def _pair_table(result: Conclusions, metric: Metric) -> str:
    largest = _budget(result.budgets[-1])
    header = (["a", "b", "verdict", f"difference ({metric.label}, a - b)"]
              + [f"diff at {_budget(b)}" for b in result.budgets]
              + [f"Tukey p at {largest}", "TOST p", "seeds needed"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rank = {v: i for i, v in enumerate(VERDICTS)}
    for pair in sorted(result.pairs, key=lambda p: (rank[p.verdict], -abs(p.difference))):
        cells = ([_cell(pair.a), _cell(pair.b), pair.verdict, f"{_raw(pair.difference, metric):+.4f}"]
                 + [f"{_raw(c.diff, metric):+.4f}" for c in pair.budgets]
                 + [_p(pair.largest.tukey_p), _p(pair.tost_p), fmt(pair.seeds_needed, "d")])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _raw(value: float, metric: Metric) -> float:
    """An oriented difference (higher is better) back in the metric's own units (a loss un-negated)."""
    return float(value) if metric.higher_is_better else -float(value) + 0.0       # + 0.0: no -0.0


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _budget(budget: float) -> str:
    return format(budget, "g")


def _margin(margin: float) -> str:
    return format(margin, ".4g")


def _name(design) -> str:
    return f"`{design}`"


def _cell(design) -> str:
    return str(design).replace("|", "\\|")


def _and(items: List[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["conclusions_frame", "conclusions_markdown"]
