"""The report of a resolutions= sweep: one front per token count, and whether the ranking of the designs changes
with the number of tokens stage 3 mixes.

Each size is a sub-sweep in runs/<name>/resolutions/<size>px/ with its own full report. This report compares
them: per size, stage 3's token count, how decisive the size is (the design effect's F test with seeds as blocks),
the best design and the front of accuracy against img/s measured at that size; across sizes, the rank agreement
of the designs (Kendall tau, Spearman rho, top-k overlap, bootstrap intervals over seeds) and its verdict.
token_comparison gathers and computes (decisive.py, stats.py), tokens_markdown writes.
"""
import dataclasses
import itertools
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd

from ..results import PRIMARY
from ..sweep.resolutions import RESOLUTIONS_DIR, stage_sides
from .decisive import Decisiveness, decisiveness
from .decisive_section import metric_table
from .figures import SEED_COLOURS, plt, save
from .pareto import OBJECTIVES, Front, front, front_of
from .stats import RungAgreement, paired_scores, rung_agreement, rung_verdict
from .table import design_summary, fmt, has_results, load_results, oriented_scores, seed_scores

@dataclasses.dataclass(frozen=True, eq=False)     # eq=False: data frames have no single truth value
class SizeResult:
    """One size: its label (with stage 3's token count), its design table (best first), its decisiveness on the
    primary metric and its front of the metric against img/s (with the designs tied with it)."""
    label: str
    summary: pd.DataFrame
    decisive: Decisiveness
    front: Front


@dataclasses.dataclass(frozen=True)
class SizePair:
    """Two sizes' rank agreement on the designs and seeds both trained; None with fewer than two such designs."""
    low: str
    high: str
    agreement: Optional[RungAgreement]


@dataclasses.dataclass(frozen=True, eq=False)
class TokenComparison:
    """The run's name, each size (smallest image first) and every pair of sizes."""
    name: str
    sizes: Tuple[SizeResult, ...]
    pairs: Tuple[SizePair, ...]


def sub_runs(run_dir: Path) -> List[Path]:
    """The sizes' run directories, smallest image first."""
    found = [p for p in (run_dir / RESOLUTIONS_DIR).glob("*px") if has_results(p)]
    return sorted(found, key=lambda p: int(p.name[:-2]))


def tokens_of(frame, stem_stride: int) -> int:
    return stage_sides(int(frame["image_size"].iloc[0]), stem_stride)[0] ** 2


def fronts_figure(summaries: dict):
    """Accuracy against img/s, one colour per token count, each size's front drawn as a line."""
    figure, ax = plt.subplots(figsize=(7, 5))
    for colour, (label, summary) in zip(SEED_COLOURS, summaries.items()):
        points = front_of(summary, OBJECTIVES["throughput"])
        x, y = points.data["throughput"].to_numpy(float), points.data["metric_mean"].to_numpy(float)
        ax.scatter(x, y, color=colour, label=label, alpha=0.8)
        on_front = points.on_front
        order = np.argsort(x[on_front])
        ax.plot(x[on_front][order], y[on_front][order], color=colour, linewidth=1.5)
        for design, xi, yi in zip(points.data["design"][on_front], x[on_front], y[on_front]):   # name the front's
            ax.annotate(design, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=6, color=colour)
    ax.set(xlabel="img/s at that size (this machine)", ylabel=PRIMARY.label, xscale="log",
           title="one front per token count")
    ax.legend(fontsize=8)
    return figure


def token_comparison(run_dir: Path, runs: List[Path], stem_stride: int) -> TokenComparison:
    """Every size and every pair of sizes; ``runs``: the sizes' run directories (sub_runs)."""
    frames = {run.name: load_results(run) for run in runs}
    labels = {name: f"{name} ({tokens_of(frame, stem_stride)} tokens in stage 3)" for name, frame in frames.items()}
    sizes = tuple(_size(labels[name], frame) for name, frame in frames.items())
    scores = {name: seed_scores(frame) for name, frame in frames.items()}
    pairs = []
    for low, high in itertools.combinations(frames, 2):
        paired = paired_scores(scores[low], scores[high])
        agreement = (rung_agreement(*map(oriented_scores, paired), k=min(3, len(paired[0]) - 1))
                     if len(paired[0]) >= 2 else None)
        pairs.append(SizePair(labels[low], labels[high], agreement))
    return TokenComparison(run_dir.name, sizes, tuple(pairs))


def _size(label: str, frame) -> SizeResult:
    """One size: its design table, its decisiveness and its front."""
    summary = design_summary(frame)
    return SizeResult(label, summary, decisiveness(PRIMARY.oriented(metric_table(frame, PRIMARY.column))),
                      front(summary, "throughput"))


def tokens_markdown(result: TokenComparison, out: Path) -> Tuple[str, str]:
    """The report's text and its design-by-size table; the fronts' figure is saved into ``out``."""
    summaries = {size.label: size.summary for size in result.sizes}
    save(fronts_figure(summaries), out / "fronts_by_tokens")
    parts = [f"# Report: {result.name}, one sweep at {len(result.sizes)} token counts", "",
             "Each size is a sweep of its own with its full report (`resolutions/<size>px/report/report.md`); "
             "stages 3 and 4 use windows as large as their maps, so attention and the scan stay global and only "
             "the number of tokens changes.", "",
             "Decisiveness per size, as in each size's report: the design effect's F test with seeds as blocks "
             "(and the design's share of the variance), and the design pairs Tukey's HSD resolves at 5%.", "",
             f"| size | best design ({PRIMARY.label}) | design effect F (df), p, share | pairs resolved | "
             "front (accuracy vs img/s) |",
             "|---|---|---|---|---|", *map(_size_row, result.sizes), "",
             "![fronts by token count](fronts_by_tokens.png)", "",
             "## Does the ranking change with the number of tokens?", "",
             "Rank agreement of the designs' means between two sizes, on the seeds both trained; 95% bootstrap "
             "intervals over seeds, each resample drawing the same seeds of a design at both sizes.", "",
             *map(_pair_line, result.pairs)]
    table = _rank_table(summaries)
    return "\n".join(parts + ["", "Each design's mean and rank at each size:", "", table, ""]), table


def _size_row(size: SizeResult) -> str:
    """One size: its best design, its decisiveness and its front."""
    summary, decisive = size.summary, size.decisive
    anova = decisive.anova
    return (f"| {size.label} | {summary['design'].iloc[0]} ({summary['metric_mean'].iloc[0]:.3f}) | "
            f"{fmt(anova.F, '.2f')} ({anova.df_design}, {anova.df_resid}), p {fmt(anova.p, '.2g')}, "
            f"share {fmt(anova.share, '.2f')} | {decisive.resolved} of {len(decisive.pairs)} | "
            f"{_front_text(size.front)} |")


def _front_text(found: Front) -> str:
    ties = ", ".join(tie.design for tie in found.ties)
    return ", ".join(found.designs) + (f" (tied with it: {ties})" if ties else "")


def _pair_line(pair: SizePair) -> str:
    stats = pair.agreement
    if stats is None:
        return f"- {pair.low} -> {pair.high}: fewer than two designs trained at both sizes."
    tau, interval = stats.kendall_tau, stats.kendall_tau_interval
    verdict = rung_verdict(tau, interval, pair.low, pair.high).replace("proxy ranking", "ranking")
    return (f"- {pair.low} -> {pair.high}: Kendall tau {tau:.2f} [{interval[0]:.2f}, {interval[1]:.2f}], "
            f"Spearman rho {stats.spearman_rho:.2f}, top-{stats.top_k} overlap {stats.top_k_overlap:.2f}. "
            f"{verdict[0].upper()}{verdict[1:]}.")


def _rank_table(summaries: dict) -> str:
    """Each design's mean and rank (its place in the size's summary, best first) at each size."""
    names = list(summaries)
    cells = {name: {design: f"{mean:.3f} (#{place})" for place, (design, mean)
                    in enumerate(zip(summary["design"], summary["metric_mean"]), start=1)}
             for name, summary in summaries.items()}
    lines = ["| design | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for design in summaries[names[0]]["design"]:
        lines.append(f"| {design} | " + " | ".join(cells[name].get(design, "-") for name in names) + " |")
    return "\n".join(lines)
