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
from typing import Dict, List, Optional

from .files import atomic_path, write_atomic


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
# The metric a report ranks designs by (tables, fronts, the paper comparison) and the decisiveness section leads
# with: chosen by measured decisiveness on the candidate proxies (reports/proxy_search/README.md), where the late
# means separated designs better than the final and best values.
PRIMARY_METRIC = "val_acc_late"
PRIMARY = METRICS[PRIMARY_METRIC]
OK, STOPPED_EARLY, FAILED, REJECTED_BUDGET = "ok", "stopped_early", "failed", "rejected_budget"
STATUSES = (OK, STOPPED_EARLY, FAILED, REJECTED_BUDGET)
TRAINED = (OK, STOPPED_EARLY)               # statuses whose row has a validation accuracy
NO_KNOBS = "{}"                             # a design without mixer knobs, as its row holds them (sorted JSON)
# How the error of a trial whose process or node was lost begins (Tune retried it resources.max_retries times): an
# infrastructure fault, which resume=true trains again; a trial's own failure (a diverged loss, a spec that does not
# build, unreadable data) is deterministic and ends in a failed row with its reason, never retried.
CRASHED = "crashed: "


@dataclasses.dataclass
class BudgetResult:
    """A trial's metrics at one budget of its ladder (ablate/ladder.py): the model whose learning rate was decayed
    to zero at that fraction of the trial's steps. The metric fields are named as the trial's own (METRICS)."""
    fraction: float
    steps: int
    val_acc_best: Optional[float] = None
    val_acc_final: Optional[float] = None
    val_acc_late: Optional[float] = None
    val_loss_best: Optional[float] = None
    val_loss_final: Optional[float] = None
    val_loss_late: Optional[float] = None


@dataclasses.dataclass
class TrialResult:
    """What one proxy training returns (train_proxy), and what a trial reports to the driver after each epoch."""
    spec: Optional[str] = None               # canonical, once the model is built
    seed: Optional[int] = None
    data_seed: Optional[int] = None
    dataset: Optional[str] = None
    image_size: Optional[int] = None
    epochs_done: Optional[int] = 0
    status: Optional[str] = OK
    error: Optional[str] = None
    val_acc_best: Optional[float] = None
    val_acc_final: Optional[float] = None
    val_acc_late: Optional[float] = None     # the mean over the evaluations of the last quarter of the steps
    val_loss_best: Optional[float] = None
    val_loss_final: Optional[float] = None
    val_loss_late: Optional[float] = None
    train_loss: Optional[float] = None
    params: Optional[int] = None
    train_time_s: Optional[float] = 0.0      # a fused seed's: its share, its trial's seconds / fused_seeds
    history: Optional[List[dict]] = dataclasses.field(default_factory=list)   # one entry per evaluation
    data_digest: Optional[str] = None        # the images, labels and order the trial saw
    # each budget of the ladder reached so far, smallest first; the last budget's metrics are also the fields above
    budgets: Optional[List[BudgetResult]] = dataclasses.field(default_factory=list)
    # the epochs done at each checkpoint the trial went on from after its process was lost (empty: never lost)
    resumed_from: Optional[List[int]] = dataclasses.field(default_factory=list)
    fused_seeds: Optional[int] = 1           # the seeds trained together as one model in its trial (ablate/fused.py)
    step_mode: Optional[str] = None          # "cuda graph", or "eager" (with why not a graph: ablate/step_graph.py)

    def __post_init__(self):
        # rows read back from JSON, Ray or a table carry the budgets as plain dicts
        self.budgets = [b if isinstance(b, BudgetResult) else BudgetResult(**b) for b in self.budgets or []]

    def rung_score(self) -> Optional[float]:
        """What ASHA compares trials by: the primary metric of the largest budget reached (a finished model; every
        trial of a sweep reaches the same budgets at the same epoch), else the trunk's so far."""
        return getattr(self.budgets[-1] if self.budgets else self, PRIMARY_METRIC)


@dataclasses.dataclass
class ResultRow(TrialResult):
    """One row of the results table: a trial's result, the design and run it belongs to, its cost and where it
    ran. The table's columns are this class's fields, so a new column is one new field (here or in TrialResult)."""
    run: Optional[str] = None
    trial_id: Optional[str] = None           # trial_key(architecture, seed)
    space: Optional[str] = None
    pattern: Optional[str] = None            # the design's label in its space
    knobs: Optional[str] = NO_KNOBS          # the design's mixer knobs as sorted JSON (Design.knobs_json)
    attempts: Optional[int] = 1              # the trial's runs: 1, plus one per retry after an infrastructure fault
    macs_total: Optional[float] = None
    macs_scan: Optional[float] = None
    # img/s: the median over the throughput phase's interleaved rounds, with its confidence interval (ablate/timing.py)
    throughput_img_s: Optional[float] = None
    throughput_lo: Optional[float] = None
    throughput_hi: Optional[float] = None
    throughput_rounds: Optional[int] = None
    throughput_stop: Optional[str] = None    # why the rounds ended: intervals narrow, time cap, round cap
    throughput_batch: Optional[int] = None
    throughput_device: Optional[str] = None
    throughput_dtype: Optional[str] = None
    peak_mem_mb: Optional[float] = None      # CUDA only: the median over the rounds, with its interval
    peak_mem_lo: Optional[float] = None
    peak_mem_hi: Optional[float] = None
    torch_version: Optional[str] = None
    device: Optional[str] = None
    host: Optional[str] = None

    @classmethod
    def from_dict(cls, values: dict) -> "ResultRow":
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"not result columns: {sorted(unknown)}; the columns are {COLUMNS}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def crashed(self) -> bool:
        """An infrastructure fault outlasted the retries: resume=true trains this trial again."""
        return self.status == FAILED and (self.error or "").startswith(CRASHED)


COLUMNS = [field.name for field in dataclasses.fields(ResultRow)]
NESTED_COLUMNS = ("history", "budgets", "resumed_from")     # lists, stored in the table as JSON


def architecture_id(spec: str, knobs: str = NO_KNOBS) -> str:
    """The canonical spec, plus the mixer knobs (sorted JSON) when there are any: one id per architecture."""
    return spec if knobs == NO_KNOBS else f"{spec} {knobs}"


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


def write_row(run_dir: Path, row: ResultRow) -> Path:
    """The row's file, runs/<name>/trials/<trial_id>.json, written atomically; returns its path."""
    path = Path(run_dir) / "trials" / f"{row.trial_id}.json"
    write_atomic(path, json.dumps(row.to_dict(), indent=1, default=str))
    return path


def read_rows(run_dir: Path) -> List[ResultRow]:
    return [ResultRow.from_dict(json.loads(path.read_text()))
            for path in sorted((Path(run_dir) / "trials").glob("*.json"))]


def write_table(run_dir: Path):
    """Rebuild results.parquet and results.csv from the per-trial files."""
    import pandas as pd
    frame = pd.DataFrame([row.to_dict() for row in read_rows(run_dir)], columns=COLUMNS)
    for nested in NESTED_COLUMNS:
        frame[nested] = frame[nested].map(lambda h: json.dumps(h) if not isinstance(h, str) else h)
    run_dir = Path(run_dir)
    with atomic_path(run_dir / "results.parquet") as parquet:
        frame.to_parquet(parquet, index=False)
    write_atomic(run_dir / "results.csv", frame.to_csv(index=False).encode())
    return frame
