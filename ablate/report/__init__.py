"""Reports of a sweep: `python -m ablate.report runs/<name>` reads only the results table and writes
runs/<name>/report/ (Pareto fronts, spec ribbons, training curves, report.md, tables for a paper)."""
import json
import math
from pathlib import Path
from typing import Optional

from ..results import FAILED, NESTED_COLUMNS, PRIMARY, REJECTED_BUDGET, read_sessions
from .attribution import attribution_markdown
from .audit_section import audit_markdown
from .budgets import budget_figure, budget_tables, conclusions_of
from .conclusions import Conclusions
from .conclusions_section import conclusions_frame, conclusions_markdown
from .decisive_section import decisiveness_markdown
from .figures import pareto_figure, save, spec_ribbons, training_curves
from .pareto import pareto_mask
from .reproduction import reproduction, reproduction_markdown
from .tokens import sub_runs, tokens_markdown
from .table import (ReportError, design_labels, design_summary, has_results, latex_table, load_results,
                    markdown_table, seed_scores)

__all__ = ["ReportError", "pareto_mask", "write_report"]

FRONTS = {"throughput": ("throughput", "max"), "macs": ("macs_total", "min"), "params": ("params", "min")}


def write_report(run_dir, out=None, equivalence: Optional[float] = None) -> Path:
    """Write the report of runs/<name> into out (default runs/<name>/report); returns report.md's path.
    ``equivalence``: the margin of the conclusions (default: the run's report.equivalence)."""
    run_dir = Path(run_dir)
    if sub_runs(run_dir) and not has_results(run_dir):
        return _write_tokens_report(run_dir, out, equivalence)
    frame = load_results(run_dir)
    if frame.empty:
        raise ReportError(f"the results table of {run_dir} has no rows")
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = design_summary(frame)
    found = conclusions_of(frame, equivalence_margin(run_dir, equivalence))
    for objective in FRONTS:
        save(pareto_figure(summary, objective, reference=objective != "macs"), out / f"pareto_{objective}")
    colours, labels = _registry_style()
    save(spec_ribbons(summary, colours, labels), out / "spec_ribbons")
    save(training_curves(frame, design_labels(frame), list(summary["design"])), out / "training_curves")
    # the lists back to JSON, so this results.csv is a results table that the report can be made from again
    frame.assign(**{c: frame[c].map(json.dumps) for c in NESTED_COLUMNS}).to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "designs.csv", index=False)
    (out / "table.md").write_text(markdown_table(summary) + "\n")
    if found is not None:
        conclusions_frame(found, PRIMARY).to_csv(out / "conclusions.csv", index=False)
        save(budget_figure(budget_tables(frame, PRIMARY), PRIMARY), out / "budgets")
    (out / "table.tex").write_text(latex_table(summary))
    path = out / "report.md"
    path.write_text(report_markdown(run_dir, frame, summary, out, found))
    return path


def equivalence_margin(run_dir: Path, given: Optional[float]) -> float:
    """The margin given, else the run's report.equivalence (its config.yaml), else the default."""
    from ..config import ConfigError, ReportConfig, load_run_config
    if given is not None:
        return given
    try:
        return load_run_config(run_dir).report.equivalence
    except ConfigError:                   # a committed report folder: no config.yaml
        return ReportConfig().equivalence


def _write_tokens_report(run_dir: Path, out, equivalence=None) -> Path:
    """A resolutions= run: each size's own report, then the comparison across token counts."""
    from ..config import load_run_config
    runs = sub_runs(run_dir)
    for run in runs:
        write_report(run, equivalence=equivalence)
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    stem_stride = load_run_config(runs[0]).model.stem_stride
    text, table = tokens_markdown(run_dir, runs, out, stem_stride)
    (out / "table.md").write_text(table + "\n")
    path = out / "report.md"
    path.write_text(text)
    return path


def _registry_style():
    from ..mixers import REGISTRY
    return {l: e.color for l, e in REGISTRY.items()}, {l: e.label for l, e in REGISTRY.items()}


def _paper_reference(space: str):
    from ..space import SPACES
    known = SPACES.get(space)
    return (known.paper_top1, known.paper_table) if known else (None, "")


def report_markdown(run_dir: Path, frame, summary, out: Path, found: Optional[Conclusions] = None) -> str:
    space = str(frame["space"].dropna().iloc[0]) if frame["space"].notna().any() else "?"
    top = [conclusions_markdown(found, PRIMARY), "![the primary metric by budget](budgets.png)", ""] if found else []
    sections = [_header(run_dir, frame, space), *top, *_tracking(run_dir), "## Designs", "",
                f"Sorted by the mean {PRIMARY.label}, best first (the primary metric; a late mean averages the "
                "evaluations over the last quarter of training). The interval is a t-interval over seeds, cut to the "
                "metric's range; MACs are "
                "multiply-adds per image with the selective scan counted (and without it); img/s is measured "
                "after training, one design at a time (see the header for the device).", "",
                markdown_table(summary), "", _fronts(summary)]
    seeds = seed_scores(frame)
    sections.append(_noise(seeds))
    paper, table_name = _paper_reference(space)
    sections.append(decisiveness_markdown(frame, paper))
    if paper:
        sections.append(reproduction_markdown(reproduction(seeds, paper, table_name)))
    sections.append(audit_markdown(run_dir, frame, out, found))
    sections.append(attribution_markdown(frame, out))
    sections += [_problems(frame), "## Figures", "",
                 "![accuracy vs throughput](pareto_throughput.png)", "", "![accuracy vs MACs](pareto_macs.png)",
                 "", "![accuracy vs params](pareto_params.png)", "", "![spec ribbons](spec_ribbons.png)", "",
                 "![training curves](training_curves.png)", "",
                 "Tables: `table.md`, `table.tex` (booktabs), `designs.csv` (per design), `results.csv` "
                 "(per trial), `conclusions.csv` (per pair of designs).", ""]
    return "\n".join(sections)


def _header(run_dir, frame, space) -> str:
    first = frame.iloc[0]
    lines = [f"# Report: {run_dir.name} (space `{space}`)", "",
             f"- Data: `{first['dataset']}` at {first['image_size']} px; up to "
             f"{int(frame['epochs_done'].max()) if frame['epochs_done'].notna().any() else 0} epochs; "
             f"{frame['seed'].nunique()} seeds; {len(frame)} trials; "
             f"{frame[['spec', 'knobs']].drop_duplicates().shape[0]} designs; {_data_seeds(frame)}.",
             f"- Trained with torch {first['torch_version']} on `{first['device']}` (host {first['host']}); "
             f"throughput on `{first['throughput_device']}`, {first['throughput_dtype']}, batch "
             f"{_int(first['throughput_batch'])}."]
    for session in read_sessions(run_dir):
        lines.append(f"- `{session['command']}`: started {session['started']}, {session['wall_s'] / 60:.1f} min "
                     f"wall on {session['cpus']} CPUs ({session['device']}), trials "
                     f"{session['trials_before']} -> {session['trials_after']}, code at commit "
                     f"{session.get('commit', 'unknown')}.")
    return "\n".join(lines + [""])


def _tracking(run_dir) -> list:
    """Where the sweep's experiment trackers (tracking=...) put the trials' runs, as each session recorded it."""
    views = {}
    for session in read_sessions(run_dir):
        for name, view in (session.get("tracking") or {}).items():
            views.setdefault((name, view), None)
    if not views:
        return []
    return ["## Tracking", "", "Each trial's config and per-epoch metrics:", "",
            *(f"- {name}: {view}" for name, view in views), ""]


def _data_seeds(frame) -> str:
    """Whether the seeds shared one dataset or each had its own (designs of a seed always share theirs)."""
    pairs = frame[["seed", "data_seed"]].dropna().drop_duplicates()
    if pairs.empty:
        return "data seed not recorded"
    if pairs["data_seed"].nunique() == 1 and frame["seed"].nunique() > 1:
        return f"one dataset (data seed {int(pairs['data_seed'].iloc[0])}) shared by every seed"
    return "each seed its own dataset"


def _int(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _fronts(summary) -> str:
    lines = ["## Pareto fronts", "", f"Non-dominated designs (mean {PRIMARY.label} and the cost, each in its better direction). "
             "The fronts are computed on means: two designs whose values differ by less than the seed-noise "
             "floor below are not separated by this run, whichever of them the front keeps.", ""]
    for objective, (column, direction) in FRONTS.items():
        data = summary.dropna(subset=["metric_mean", column])
        mask = pareto_mask(data[["metric_mean", column]].to_numpy(float), [PRIMARY.direction, direction])
        lines.append(f"- {PRIMARY.label} vs {objective}: {', '.join(data['design'][mask]) or 'none measured'}")
    return "\n".join(lines + [""])


def _noise(seeds: dict) -> str:
    from .stats import noise_floor
    floor = noise_floor(seeds)
    if math.isnan(floor["pooled_std"]):
        return "## Seed noise\n\nOne seed per design: no estimate of the seed noise; run seeds>=2.\n"
    return (f"## Seed noise\n\nPooled std of the {PRIMARY.label} over seeds, across designs: "
            f"{floor['pooled_std']:.3f}. At {floor['seeds']} seeds a difference between two designs' means "
            f"below {floor['floor']:.3f} is inside the noise (95%, normal approximation).\n")


def _problems(frame) -> str:
    bad = frame[frame["status"].isin([FAILED, REJECTED_BUDGET])]
    if bad.empty:
        return "## Failed and rejected trials\n\nNone.\n"
    lines = ["## Failed and rejected trials", ""]
    for _, row in bad.iterrows():
        lines.append(f"- {row['status']}: `{row['spec']}` seed {row['seed']}: {row['error']}")
    return "\n".join(lines + [""])
