"""The report's "Proxy audit" section: each audit of the run (python -m ablate.audit) against the run itself.

An audit is a sweep in runs/<name>/audit/<rung>x<scale>/ (a task audit's: task_<dataset>/) with an audit.json
saying what it changed and how to label both sides. It is compared with the run on the designs and seeds both
trained: rank agreement of the designs' means (Kendall tau, Spearman rho, top-k overlap) with bootstrap intervals
over seeds, each design's rank at each rung, a rank-vs-rank figure and the verdict in words.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..results import PRIMARY, read_sessions
from .budgets import conclusions_of
from .conclusions import Conclusions
from .figures import plt, save
from .recheck import counts, recheck
from .stats import paired_scores, rung_agreement, rung_verdict
from .table import load_results, oriented_scores, seed_scores

AUDIT_DIR, AUDIT_FILE = "audit", "audit.json"


def find_audits(run_dir: Path) -> List[Path]:
    return sorted(path.parent for path in (run_dir / AUDIT_DIR).glob(f"*/{AUDIT_FILE}"))


def rung_labels(record: dict) -> Tuple[str, str]:
    """(the run's label, the audit's label): "1x" and "2x epochs", or a task audit's "fractal" and
    "fashion_mnist". The audit writes both; records written before it did name a scale and a rung."""
    return record.get("low", "1x"), record.get("high") or f"{record['scale']:g}x {record['rung']}"


def ranks(oriented: Dict[str, np.ndarray]) -> Dict[str, int]:
    """1 for the best mean of scores turned so that higher is better (oriented_scores); ties broken by name."""
    order = sorted(oriented, key=lambda d: (-float(np.mean(oriented[d])), d))
    return {design: i + 1 for i, design in enumerate(order)}


def rank_figure(low_ranks: Dict[str, int], high_ranks: Dict[str, int], low: str, high: str):
    figure, ax = plt.subplots(figsize=(5, 5))
    n = len(low_ranks)
    ax.plot([1, n], [1, n], color="0.7", linestyle="--", linewidth=1, label="same rank")
    for design, rank in low_ranks.items():
        ax.scatter(rank, high_ranks[design], color="tab:blue", zorder=3)
        ax.annotate(design, (rank, high_ranks[design]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set(xlabel=f"rank at {low} (1 = best)", ylabel=f"rank at {high}", xlim=(n + 0.5, 0.5), ylim=(n + 0.5, 0.5),
           title=f"{PRIMARY.label}: rank at {low} vs {high}")
    ax.legend(loc="lower right", fontsize=7)
    return figure


def audit_markdown(run_dir: Path, frame, out: Path, found: Optional[Conclusions] = None) -> str:
    """The section, or "" when the run has no audit. ``found``: the run's conclusions, rechecked on each audit."""
    audits = find_audits(run_dir)
    if not audits:
        return ""
    base = seed_scores(frame)
    parts = ["## Proxy audit", "",
             f"Does the ranking by {PRIMARY.label} survive a bigger budget, or another dataset? Each audit "
             "re-trained a stratified subset of the designs (evenly spaced in this run's ranking, and the default "
             "design) at a higher rung or on another task, on the same seeds. Intervals: 95% percentile bootstrap "
             "over seeds, each resample drawing the same seeds of a design on both sides (paired by seed: at a budget "
             "rung the same data and initialisation); with three seeds such an interval is narrower than the true "
             "uncertainty.", ""]
    for audit_dir in audits:
        parts.append(_one_audit(audit_dir, base, out, found))
    return "\n".join(parts)


def _one_audit(audit_dir: Path, base: dict, out: Path, found: Optional[Conclusions]) -> str:
    record = json.loads((audit_dir / AUDIT_FILE).read_text())
    low_name, high_name = rung_labels(record)
    audit_frame = load_results(audit_dir)
    audit_scores = seed_scores(audit_frame)
    low, high = paired_scores(base, audit_scores)
    if len(low) < 2:
        return f"### {high_name}\n\nFewer than two designs trained at both rungs: nothing to rank.\n"
    oriented_low, oriented_high = oriented_scores(low), oriented_scores(high)
    stats = rung_agreement(oriented_low, oriented_high, k=min(3, len(low) - 1))
    low_ranks, high_ranks = ranks(oriented_low), ranks(oriented_high)
    stem = f"audit_{audit_dir.name}"
    save(rank_figure(low_ranks, high_ranks, low_name, high_name), out / stem)
    changes = ", ".join(f"`{key}` {old} -> {new}" for key, (old, new) in record["changes"].items())
    cost = sum(session["wall_s"] for session in read_sessions(audit_dir)) / 60
    seeds = sorted({len(v) for v in low.values()})
    rows = [f"| {d} | {np.mean(low[d]):.3f} | {low_ranks[d]} | {np.mean(high[d]):.3f} | {high_ranks[d]} |"
            for d in sorted(low, key=low_ranks.get)]
    tau, rho = stats["kendall_tau"], stats["spearman_rho"]
    t_low, t_high = stats["kendall_tau_interval"]
    r_low, r_high = stats["spearman_rho_interval"]
    o_low, o_high = stats["top_k_overlap_interval"]
    return "\n".join([
        f"### {high_name}: {record['description']}", "",
        f"- Changed: {changes}; {len(low)} designs x {'/'.join(map(str, seeds))} seeds; the audit took "
        f"{cost:.1f} min (`{record.get('command') or 'python -m ablate.audit'}`), in `{audit_dir.name}/`.",
        f"- Kendall tau {tau:.2f} [{t_low:.2f}, {t_high:.2f}]; Spearman rho {rho:.2f} [{r_low:.2f}, {r_high:.2f}]; "
        f"top-{stats['top_k']} overlap {stats['top_k_overlap']:.2f} [{o_low:.2f}, {o_high:.2f}] "
        f"({stats['undefined']} of {stats['n_boot']} resamples ranked nothing).",
        f"- Verdict: {rung_verdict(tau, (t_low, t_high), low_name, high_name)}.", "",
        f"| design | {low_name} mean | {low_name} rank | {high_name} mean | {high_name} rank |",
        "|---|---|---|---|---|", *rows, "",
        f"![rank at {low_name} vs {high_name}]({stem}.png)", "",
        *_recheck_lines(found, audit_frame, _seed_note(base, audit_scores))])


def _seed_note(base: dict, audit: dict) -> str:
    run_seeds = {int(s) for v in base.values() for s in v.index}
    audit_seeds = sorted({int(s) for v in audit.values() for s in v.index})
    fresh = "fresh seeds" if not run_seeds & set(audit_seeds) else "the run's seeds"
    return f"{fresh} ({', '.join(map(str, audit_seeds))})"


def _recheck_lines(found: Optional[Conclusions], audit_frame, seeds: str) -> List[str]:
    """The run's settled pairs (better, equivalent) among the audited designs, each against the audit's own
    conclusions over its ladder (family-wise over the audit's pairs)."""
    if found is None:
        return []
    audit = conclusions_of(audit_frame, found.margin)
    checks = recheck(found, audit) if audit is not None else []
    if not checks:
        return ["No pair the run settled (better or equivalent) has both designs in this audit.", ""]
    held, reversed_, unconfirmed = counts(checks)
    rows = [f"| {c.a} | {c.b} | {c.before} | {c.after} | {PRIMARY.oriented(c.after_difference):+.4f} | {c.outcome} |"
            for c in checks]
    return [f"Conclusions rechecked on this audit's own verdicts ({seeds}; its budgets "
            f"{', '.join(f'{b:g}' for b in audit.budgets)} of its steps; margin {found.margin:g}): of {len(checks)} "
            f"pairs the run settled among these designs, **{held} hold, {reversed_} reversed, {unconfirmed} not "
            "confirmed**.", "",
            f"| a | b | run | audit | audit a - b ({PRIMARY.label}) | outcome |", "|---|---|---|---|---|---|",
            *rows, ""]
