"""The results table: one row per trial, written as each trial ends, so a killed sweep loses nothing finished.

Each finished trial is one JSON file, runs/<name>/trials/<trial_key>.json, written atomically (temp file,
then rename). results.parquet and results.csv are rebuilt from those files, also atomically. The report reads
only this table.
"""
import dataclasses
import hashlib
import json
import platform
from pathlib import Path
from typing import Dict, List

from .files import atomic_path, write_atomic

COLUMNS = [
    "run", "trial_id", "space", "spec", "pattern", "knobs", "seed", "data_seed", "dataset", "image_size",
    "epochs_done", "status", "error", "val_acc_best", "val_acc_final", "val_acc_late", "val_loss_best",
    "val_loss_final", "val_loss_late", "train_loss", "params", "macs_total", "macs_scan",
    "throughput_img_s", "throughput_batch", "throughput_device", "throughput_dtype", "peak_mem_mb",
    "train_time_s", "history", "data_digest", "torch_version", "device", "host",
]


@dataclasses.dataclass(frozen=True)
class Metric:
    """A validation metric of a trial: its column, how a report names it, and which way is better."""
    column: str
    label: str
    higher_is_better: bool

    def oriented(self, values):
        """The values turned so that higher is better (a loss is negated)."""
        return values if self.higher_is_better else -values

    @property
    def direction(self) -> str:
        """"max" or "min": which way a Pareto front or a ranking wants this metric."""
        return "max" if self.higher_is_better else "min"

    @property
    def bounds(self):
        """Where the metric's values end (an interval is cut there): [0, 1] for an accuracy, [0, inf) for a loss."""
        return (0.0, 1.0) if self.higher_is_better else (0.0, float("inf"))


# A trial's validation metrics: accuracy and loss (NLL, no label smoothing), best and final, and the late mean
# over the evaluations in the last quarter of training, where the learning curve is flat.
METRICS: Dict[str, Metric] = {m.column: m for m in (
    Metric("val_acc_late", "val acc (late mean)", True),
    Metric("val_loss_late", "val loss (late mean)", False),
    Metric("val_acc_final", "val acc (final)", True),
    Metric("val_loss_final", "val loss (final)", False),
    Metric("val_acc_best", "val acc (best)", True),
    Metric("val_loss_best", "val loss (best)", False),
)}
METRIC_COLUMNS = tuple(METRICS)
# The metric a report ranks designs by (tables, fronts, the paper comparison) and the decisiveness section leads
# with: chosen by measured decisiveness on the candidate proxies (reports/proxy_search/README.md), where the late
# means separated designs better than the final and best values.
PRIMARY_METRIC = "val_acc_late"
PRIMARY = METRICS[PRIMARY_METRIC]
STATUSES = ("ok", "stopped_early", "failed", "rejected_budget")
TRAINED = ("ok", "stopped_early")            # statuses whose row has a validation accuracy


def architecture_id(spec: str, knobs: str = "{}") -> str:
    """The canonical spec, plus the mixer knobs (sorted JSON) when there are any: one id per architecture."""
    return spec if knobs == "{}" else f"{spec} {knobs}"


def trial_key(design_key: str, seed: int) -> str:
    """Stable id of (architecture, seed): the unit that is trained once and never twice."""
    return hashlib.sha1(f"{design_key}|seed={seed}".encode()).hexdigest()[:12]


def fingerprint() -> Dict[str, str]:
    import torch
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"torch_version": torch.__version__, "device": device, "host": platform.node()}


def log_session(run_dir: Path, session: dict) -> None:
    """Append one sweep session (command, machine, start, wall time) to runs/<name>/sessions.json."""
    path = Path(run_dir) / "sessions.json"
    sessions = json.loads(path.read_text()) if path.exists() else []
    write_atomic(path, json.dumps(sessions + [session], indent=1).encode())


def read_sessions(run_dir: Path) -> List[dict]:
    path = Path(run_dir) / "sessions.json"
    return json.loads(path.read_text()) if path.exists() else []


def write_row(run_dir: Path, row: dict) -> None:
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not result columns: {sorted(unknown)}")
    full = {column: row.get(column) for column in COLUMNS}
    write_atomic(Path(run_dir) / "trials" / f"{row['trial_id']}.json",
                       json.dumps(full, indent=1, default=str).encode())


def read_rows(run_dir: Path) -> List[dict]:
    rows = []
    for path in sorted((Path(run_dir) / "trials").glob("*.json")):
        rows.append(json.loads(path.read_text()))
    return rows


def write_table(run_dir: Path):
    """Rebuild results.parquet and results.csv from the per-trial files."""
    import pandas as pd
    frame = pd.DataFrame(read_rows(run_dir), columns=COLUMNS)
    frame["history"] = frame["history"].map(lambda h: json.dumps(h) if not isinstance(h, str) else h)
    run_dir = Path(run_dir)
    with atomic_path(run_dir / "results.parquet") as parquet:
        frame.to_parquet(parquet, index=False)
    write_atomic(run_dir / "results.csv", frame.to_csv(index=False).encode())
    return frame
