"""The report's decisiveness section: for every metric, does the design matter beyond the seed noise, and which
pairs are resolved; for the paper's pairs, P(A > B). decisiveness_of gathers it from the results table
(decisive.py computes), decisiveness_markdown writes it."""
import dataclasses
from typing import Dict, Tuple

from ..results import METRICS, PRIMARY_METRIC, TRAINED
from .decisive import Decisiveness, decisiveness
from .table import design_labels, fmt


@dataclasses.dataclass(frozen=True)
class MetricsDecisiveness:
    """The decisiveness of each metric the results table has (by column, in the order of METRICS), and the pairs
    the paper orders (A the better; none without the paper's numbers)."""
    metrics: Dict[str, Decisiveness]
    paper_pairs: Tuple[Tuple[str, str], ...]


def metric_table(frame, column):
    """designs x seeds of one metric over the trained trials (rows: design labels, columns: seeds)."""
    trained = frame[frame["status"].isin(TRAINED)].copy()
    trained["design"] = design_labels(frame)[trained.index]
    return trained.pivot_table(index="design", columns="seed", values=column, aggfunc="first")


def paper_pairs(paper) -> list:
    """(A, B) for every pair the paper orders, A the better."""
    paper = paper or {}
    return [(a, b) for a in paper for b in paper if paper[a] > paper[b]]


def decisiveness_of(frame, paper=None) -> MetricsDecisiveness:
    """Every metric's decisiveness over the trained trials, oriented so that higher is better; ``paper``: the
    paper's top-1 by design label, whose ordered pairs are compared."""
    named = paper_pairs(paper)
    results = {}
    for column, metric in METRICS.items():
        table = metric_table(frame, column)
        if not table.empty:
            results[column] = decisiveness(metric.oriented(table), named)
    return MetricsDecisiveness(results, tuple(named))


def decisiveness_markdown(result: MetricsDecisiveness) -> str:
    lines = ["## Decisiveness", "",
             "Does the design matter beyond the seed noise? A two-way analysis of variance with designs as "
             "treatments and seeds as blocks (every design of a seed trains on the same images in the same order), on "
             "the seeds every design ran; pairs resolved by Tukey's HSD at 5% on its residual, so the whole "
             f"family of comparisons keeps a 5% error rate. The report's primary metric is "
             f"{METRICS[PRIMARY_METRIC].label}.", "",
             "| metric | F (df) | p | design share of variance | pairs resolved | paper pairs resolved "
             "(agree / against) |", "|---|---|---|---|---|---|"]
    for column, found in result.metrics.items():
        lines.append(_metric_row(column, found, bool(result.paper_pairs)))
    primary = result.metrics.get(PRIMARY_METRIC)
    if primary is None or not primary.pairs:
        return "\n".join(lines + ["", "Fewer than two designs or two complete seeds: nothing to compare.", ""])
    lines += ["", _verdict(primary), "", _resolved_pairs(primary, METRICS[PRIMARY_METRIC])]
    if primary.named:
        lines += ["", _named_pairs(primary, METRICS[PRIMARY_METRIC])]
    return "\n".join(lines + [""])


def _metric_row(column: str, found: Decisiveness, has_paper: bool) -> str:
    anova, agree, against = found.anova, found.agree, found.against
    paper_cell = f"{agree + against} of {len(found.named)} ({agree} / {against})" if has_paper else "-"
    return (f"| {METRICS[column].label}{' (primary)' if column == PRIMARY_METRIC else ''} | "
            f"{fmt(anova.F, '.2f')} ({anova.df_design}, {anova.df_resid}) | {fmt(anova.p, '.2g')} "
            f"| {fmt(anova.share, '.2f')} | {found.resolved} of {len(found.pairs)} | {paper_cell} |")


def _verdict(result: Decisiveness) -> str:
    anova = result.anova
    effect = ("the design effect is significant" if anova.p < 0.05 else "the design effect is not significant")
    return (f"On the primary metric {effect} (p = {anova.p:.2g}, {anova.seeds} complete seeds); "
            f"{result.resolved} of {len(result.pairs)} design pairs are resolved after correction.")


def _resolved_pairs(result: Decisiveness, metric) -> str:
    resolved = sorted((p for p in result.pairs if p.resolved), key=lambda p: p.p)
    if not resolved:
        return "No pair is resolved."
    lines = [f"Resolved pairs (the better design first; difference of the means of {metric.label}, Tukey-adjusted p):",
             "", "| better | worse | difference | p |", "|---|---|---|---|"]
    for p in resolved:
        better, worse = (p.a, p.b) if p.diff > 0 else (p.b, p.a)
        raw = abs(p.diff) if metric.higher_is_better else -abs(p.diff)
        lines.append(f"| {better} | {worse} | {raw:+.4f} | {p.p:.2g} |")
    return "\n".join(lines)


def _named_pairs(result: Decisiveness, metric) -> str:
    lines = ["The paper's pairs (A is ranked above B by the paper): P(A > B) is the chance that a run of A beats a "
             "run of B on the primary metric, over all pairs of runs, with a 95% interval from resampling the seeds.",
             "", "| A | B | P(A > B) | interval | proxy A - B | Tukey p | verdict |", "|---|---|---|---|---|---|---|"]
    for n in result.named:
        raw = n.diff if metric.higher_is_better else -n.diff
        verdict = ("inside the noise" if not n.resolved else "agrees" if n.diff > 0 else "disagrees")
        lines.append(f"| {n.a} | {n.b} | {n.p_improvement:.2f} | [{n.low:.2f}, {n.high:.2f}] | "
                     f"{raw:+.4f} | {fmt(n.tukey_p, '.2g')} | {verdict} |")
    return "\n".join(lines)


__all__ = ["MetricsDecisiveness", "decisiveness_markdown", "decisiveness_of", "metric_table", "paper_pairs"]
