"""Reports of a sweep: `python -m ablate.report runs/<name>` reads only the results table and writes
runs/<name>/report/ (Pareto fronts, spec ribbons, training curves, report.md, tables for a paper).

The package's layout: statistics modules compute from tables and return frozen dataclasses (stats, pareto, decisive,
conclusions, reproduction, attribution, recheck, budgets); section modules write report.md's text from those
results (sections.py puts them in order; *_section.py, one larger section each; tokens.py, the report across token
counts); figures.py draws; table.py reads the results table and writes the design table."""
import json
from pathlib import Path
from typing import Optional

from ..results import NESTED_COLUMNS, PRIMARY
from .budgets import budget_tables, conclusions_of
from .conclusions_section import conclusions_frame
from .figures import budget_figure, pareto_figure, save, spec_ribbons, training_curves
from .pareto import OBJECTIVES, pareto_mask
from .sections import report_markdown
from .table import ReportError, design_labels, design_summary, has_results, latex_table, load_results, markdown_table
from .tokens import sub_runs, token_comparison, tokens_markdown

__all__ = ["ReportError", "pareto_mask", "write_report"]


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
    for objective in OBJECTIVES:
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
    text, table = tokens_markdown(token_comparison(run_dir, runs, stem_stride), out)
    (out / "table.md").write_text(table + "\n")
    path = out / "report.md"
    path.write_text(text)
    return path


def _registry_style():
    """Each mixer letter's colour and label, for the spec ribbons."""
    from ..mixers import REGISTRY
    return {l: e.color for l, e in REGISTRY.items()}, {l: e.label for l, e in REGISTRY.items()}
