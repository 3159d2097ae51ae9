"""The report's "Proxy audit" section: each audit of the run (python -m ablate.audit) against the run itself.

An audit is a sweep in runs/<name>/audit/<rung>x<scale>/ (a task audit's: task_<dataset>/) with an audit.json
saying what it changed and how to label both sides. It is compared with the run on the designs and seeds both
trained: rank agreement of the designs' means (Kendall tau, Spearman rho, top-k overlap) with bootstrap intervals
over seeds, each design's rank at each rung, a rank-vs-rank figure and the verdict in words. audits_of gathers and
computes (the statistics are stats.rung_agreement and recheck.recheck), audit_markdown writes.
"""
import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..files import AUDIT_DIR, AUDIT_FILE
from ..results import PRIMARY, read_sessions
from .budgets import conclusions_of
from .conclusions import Conclusions
from .figures import plt, save
from .recheck import Recheck, counts, recheck
from .stats import RungAgreement, paired_scores, rung_agreement, rung_verdict
from .table import load_results, oriented_scores, seed_scores


@dataclasses.dataclass(frozen=True)
class AuditRecheck:
    """The run's settled pairs among the audited designs, each against the audit's own conclusions (checks), the
    run's equivalence margin and the audit's budgets (none when the audit concludes nothing)."""
    margin: float
    budgets: Tuple[float, ...]
    checks: Tuple[Recheck, ...]


@dataclasses.dataclass(frozen=True, eq=False)     # eq=False: arrays have no single truth value
class AuditComparison:
    """One audit against the run: its folder's name and audit.json, both sides' labels, and the per-seed scores of
    the designs both trained (paired by seed). With two designs or more: the rank agreement, each side's ranks, the
    audit's cost in minutes, its seeds in words and the recheck (None when the run has no conclusions)."""
    name: str
    record: dict
    low_name: str
    high_name: str
    low: Dict[str, np.ndarray]
    high: Dict[str, np.ndarray]
    agreement: Optional[RungAgreement] = None
    low_ranks: Dict[str, int] = dataclasses.field(default_factory=dict)
    high_ranks: Dict[str, int] = dataclasses.field(default_factory=dict)
    minutes: float = 0.0
    seeds: str = ""
    recheck: Optional[AuditRecheck] = None


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


def audits_of(run_dir: Path, frame, found: Optional[Conclusions] = None) -> Tuple[AuditComparison, ...]:
    """Every audit of the run compared with it; ``found``: the run's conclusions, rechecked on each audit."""
    base = seed_scores(frame)
    return tuple(_compare(audit_dir, base, found) for audit_dir in find_audits(run_dir))


def _compare(audit_dir: Path, base: dict, found: Optional[Conclusions]) -> AuditComparison:
    record = json.loads((audit_dir / AUDIT_FILE).read_text())
    audit_frame = load_results(audit_dir)
    audit_scores = seed_scores(audit_frame)
    low, high = paired_scores(base, audit_scores)
    comparison = AuditComparison(audit_dir.name, record, *rung_labels(record), low, high)
    if len(low) < 2:                   # nothing to rank: the section says so
        return comparison
    oriented_low, oriented_high = oriented_scores(low), oriented_scores(high)
    return dataclasses.replace(
        comparison, agreement=rung_agreement(oriented_low, oriented_high, k=min(3, len(low) - 1)),
        low_ranks=ranks(oriented_low), high_ranks=ranks(oriented_high),
        minutes=sum(session["wall_s"] for session in read_sessions(audit_dir)) / 60,
        seeds=_seed_note(base, audit_scores), recheck=_recheck(found, audit_frame))


def _seed_note(base: dict, audit: dict) -> str:
    run_seeds = {int(s) for v in base.values() for s in v.index}
    audit_seeds = sorted({int(s) for v in audit.values() for s in v.index})
    fresh = "fresh seeds" if not run_seeds & set(audit_seeds) else "the run's seeds"
    return f"{fresh} ({', '.join(map(str, audit_seeds))})"


def _recheck(found: Optional[Conclusions], audit_frame) -> Optional[AuditRecheck]:
    """The run's settled pairs (better, equivalent) among the audited designs, each against the audit's own
    conclusions over its ladder (family-wise over the audit's pairs)."""
    if found is None:
        return None
    audit = conclusions_of(audit_frame, found.margin)
    if audit is None:
        return AuditRecheck(found.margin, (), ())
    return AuditRecheck(found.margin, audit.budgets, tuple(recheck(found, audit)))


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


def audit_markdown(audits: Tuple[AuditComparison, ...], out: Path) -> str:
    """The section (each audit's rank figure saved into ``out``), or "" when the run has no audit."""
    if not audits:
        return ""
    parts = ["## Proxy audit", "",
             f"Does the ranking by {PRIMARY.label} survive a bigger budget, or another dataset? Each audit "
             "re-trained a stratified subset of the designs (evenly spaced in this run's ranking, and the default "
             "design) at a higher rung or on another task, on the same seeds. Intervals: 95% percentile bootstrap "
             "over seeds, each resample drawing the same seeds of a design on both sides (paired by seed: at a budget "
             "rung the same data and initialisation); with three seeds such an interval is narrower than the true "
             "uncertainty.", ""]
    return "\n".join(parts + [_one_audit(audit, out) for audit in audits])


def _one_audit(audit: AuditComparison, out: Path) -> str:
    low, high, low_name, high_name, stats = audit.low, audit.high, audit.low_name, audit.high_name, audit.agreement
    if stats is None:
        return f"### {high_name}\n\nFewer than two designs trained at both rungs: nothing to rank.\n"
    stem = f"audit_{audit.name}"
    save(rank_figure(audit.low_ranks, audit.high_ranks, low_name, high_name), out / stem)
    changes = ", ".join(f"`{key}` {old} -> {new}" for key, (old, new) in audit.record["changes"].items())
    seeds = sorted({len(v) for v in low.values()})
    rows = [f"| {d} | {np.mean(low[d]):.3f} | {audit.low_ranks[d]} | {np.mean(high[d]):.3f} | {audit.high_ranks[d]} |"
            for d in sorted(low, key=audit.low_ranks.get)]
    tau, rho = stats.kendall_tau, stats.spearman_rho
    t_low, t_high = stats.kendall_tau_interval
    r_low, r_high = stats.spearman_rho_interval
    o_low, o_high = stats.top_k_overlap_interval
    return "\n".join([
        f"### {high_name}: {audit.record['description']}", "",
        f"- Changed: {changes}; {len(low)} designs x {'/'.join(map(str, seeds))} seeds; the audit took "
        f"{audit.minutes:.1f} min (`{audit.record.get('command') or 'python -m ablate.audit'}`), in `{audit.name}/`.",
        f"- Kendall tau {tau:.2f} [{t_low:.2f}, {t_high:.2f}]; Spearman rho {rho:.2f} [{r_low:.2f}, {r_high:.2f}]; "
        f"top-{stats.top_k} overlap {stats.top_k_overlap:.2f} [{o_low:.2f}, {o_high:.2f}] "
        f"({stats.undefined} of {stats.n_boot} resamples ranked nothing).",
        f"- Verdict: {rung_verdict(tau, (t_low, t_high), low_name, high_name)}.", "",
        f"| design | {low_name} mean | {low_name} rank | {high_name} mean | {high_name} rank |",
        "|---|---|---|---|---|", *rows, "",
        f"![rank at {low_name} vs {high_name}]({stem}.png)", "",
        *_recheck_lines(audit.recheck, audit.seeds)])


def _recheck_lines(result: Optional[AuditRecheck], seeds: str) -> List[str]:
    if result is None:
        return []
    checks = result.checks
    if not checks:
        return ["No pair the run settled (better or equivalent) has both designs in this audit.", ""]
    held, reversed_, unconfirmed = counts(checks)
    rows = [f"| {c.a} | {c.b} | {c.before} | {c.after} | {PRIMARY.oriented(c.after_difference):+.4f} | {c.outcome} |"
            for c in checks]
    return [f"Conclusions rechecked on this audit's own verdicts ({seeds}; its budgets "
            f"{', '.join(f'{b:g}' for b in result.budgets)} of its steps; margin {result.margin:g}): of {len(checks)} "
            f"pairs the run settled among these designs, **{held} hold, {reversed_} reversed, {unconfirmed} not "
            "confirmed**.", "",
            f"| a | b | run | audit | audit a - b ({PRIMARY.label}) | outcome |", "|---|---|---|---|---|---|",
            *rows, ""]
