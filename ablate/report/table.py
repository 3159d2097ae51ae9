"""The results table, one row per design: accuracy over seeds with intervals, cost, status counts."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import COLUMNS, NESTED_COLUMNS, NO_KNOBS, PRIMARY, STATUSES, TRAINED, Metric
from .stats import t_interval


class ReportError(ValueError):
    pass


RESULT_FILES = {"results.parquet": pd.read_parquet, "results.csv": pd.read_csv}   # a committed report has the csv


def has_results(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).is_file() for name in RESULT_FILES)


def load_results(run_dir: Path) -> pd.DataFrame:
    """results.parquet (or results.csv) of a run; history and budgets decoded to lists."""
    run_dir = Path(run_dir)
    for name, reader in RESULT_FILES.items():
        if (run_dir / name).exists():
            frame = reader(run_dir / name)
            break
    else:
        raise ReportError(f"no results table in {run_dir}: expected results.parquet or results.csv "
                          f"(written by run_sweep.py)")
    missing = [c for c in ("spec", "pattern", "seed", "status", PRIMARY.column) if c not in frame.columns]
    if missing:
        raise ReportError(f"{run_dir} has a results table without the columns {missing}; "
                          f"expected the schema {COLUMNS}")
    frame = frame.reindex(columns=COLUMNS)
    frame["knobs"] = frame["knobs"].fillna(NO_KNOBS)
    for nested in NESTED_COLUMNS:
        frame[nested] = frame[nested].map(_decode_list)
    return frame


def _decode_list(value):
    if isinstance(value, str):
        return json.loads(value) or []
    return list(value) if isinstance(value, (list, np.ndarray)) else []


def design_labels(frame: pd.DataFrame) -> pd.Series:
    """The pattern name of each row, with its spec added where one name covers several designs."""
    designs = frame[["pattern", "spec", "knobs"]].drop_duplicates()
    shared = designs["pattern"].value_counts()
    return frame.apply(lambda r: r["pattern"] if shared.get(r["pattern"], 0) == 1
                       else f"{r['pattern']} {r['spec']}" + ("" if r["knobs"] == NO_KNOBS else f" {r['knobs']}"),
                       axis=1)


def seed_scores(frame: pd.DataFrame) -> dict:
    """{design label: the primary metric of its trained seeds, a Series indexed by seed (so designs can be
    paired)}."""
    trained = frame[frame["status"].isin(TRAINED)]
    labels = design_labels(frame)[trained.index]
    return {label: group.set_index("seed")[PRIMARY.column].astype(float) for label, group in trained.groupby(labels)}


def oriented_scores(scores: dict, metric: Metric = PRIMARY) -> dict:
    """seed_scores turned so that higher is better (a loss negated): what rankings and top-k sets take."""
    return {label: metric.oriented(values) for label, values in scores.items()}


def design_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per design, best first: the primary metric's mean/std/95% interval over seeds, params, MACs, img/s."""
    labels = design_labels(frame)
    rows = []
    for label, group in frame.groupby(labels, sort=False):
        trained = group[group["status"].isin(TRAINED)]
        values = trained[PRIMARY.column].astype(float).to_numpy()
        mean, (low, high) = t_interval(values) if len(values) else (math.nan, (math.nan, math.nan))
        low, high = max(low, PRIMARY.bounds[0]), min(high, PRIMARY.bounds[1])      # it ends where the metric does
        timed = trained.dropna(subset=["throughput_img_s"])      # every row of a design holds its design's timing
        speed = timed.iloc[0] if len(timed) else None
        first = group.iloc[0]
        macs_total, macs_scan = _number(first["macs_total"]), _number(first["macs_scan"])
        rows.append({
            "design": label, "pattern": first["pattern"], "spec": first["spec"], "knobs": first["knobs"],
            "seeds": len(trained), "metric_mean": mean,
            "metric_std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "metric_low": low, "metric_high": high, "params": _number(first["params"]),
            "macs_total": macs_total, "macs_scan": macs_scan, "macs_no_scan": macs_total - macs_scan,
            **_throughput(speed),
            "epochs": int(trained["epochs_done"].max()) if len(trained) else 0,
            **{status: int((group["status"] == status).sum()) for status in STATUSES},
        })
    summary = pd.DataFrame(rows)
    best_first = summary.sort_values("metric_mean", ascending=not PRIMARY.higher_is_better, na_position="last")
    return best_first.reset_index(drop=True)


def _throughput(row) -> dict:
    """A design's img/s (the median over the throughput phase's rounds), its interval and the rounds run."""
    columns = {"throughput": "throughput_img_s", "throughput_low": "throughput_lo", "throughput_high": "throughput_hi",
               "throughput_rounds": "throughput_rounds"}
    return {name: math.nan if row is None else _number(row.get(column)) for name, column in columns.items()}


def _number(value) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def fmt(value, spec: str = ".3f") -> str:
    """A number in the given format, or "-" where there is none (None or NaN)."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def speed_text(row) -> str:
    """img/s with its interval where it has one: "540 [521, 560]"."""
    if math.isnan(row["throughput_low"]) or math.isnan(row["throughput_high"]):
        return fmt(row["throughput"], ".0f")
    return f"{row['throughput']:.0f} [{row['throughput_low']:.0f}, {row['throughput_high']:.0f}]"


def _status_counts(row) -> str:
    return ", ".join(f"{row[s]} {s}" for s in STATUSES if row[s])


def markdown_table(summary: pd.DataFrame) -> str:
    lines = [f"| design | spec | seeds | {PRIMARY.label}: mean ± std | 95% interval | params | MMACs | MMACs no scan | "
             "img/s [95% interval] | trials |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append(
            f"| {r['design']} | `{r['spec'].replace('|', chr(92) + '|')}` | {r['seeds']} | {fmt(r['metric_mean'], '.3f')} ± "
            f"{fmt(r['metric_std'], '.3f')} | [{fmt(r['metric_low'], '.3f')}, {fmt(r['metric_high'], '.3f')}] | "
            f"{fmt(r['params'], ',.0f')} | {fmt(r['macs_total'] / 1e6, '.1f')} | "
            f"{fmt(r['macs_no_scan'] / 1e6, '.1f')} | {speed_text(r)} | {_status_counts(r)} |")
    return "\n".join(lines)


def latex_table(summary: pd.DataFrame) -> str:
    """A booktabs table for a paper."""
    def escape(text):
        return str(text).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%") \
            .replace("_", r"\_").replace("#", r"\#").replace("|", r"\textbar{}")
    lines = [r"\begin{tabular}{llrrrrr}", r"\toprule",
             f"Design & Spec & {escape(PRIMARY.label)} & Params (K) & MMACs & MMACs (no scan) & img/s \\\\",
             r"\midrule"]
    for _, r in summary.iterrows():
        value = (f"{r['metric_mean']:.3f} $\\pm$ {r['metric_std']:.3f}" if not math.isnan(r["metric_std"])
                 else fmt(r["metric_mean"], ".3f"))
        lines.append(f"{escape(r['design'])} & \\texttt{{{escape(r['spec'])}}} & {value} & "
                     f"{fmt(r['params'] / 1e3, ',.0f')} & {fmt(r['macs_total'] / 1e6, '.1f')} & "
                     f"{fmt(r['macs_no_scan'] / 1e6, '.1f')} & {fmt(r['throughput'], '.0f')} \\\\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
