"""Experiment tracking, tracking=tensorboard,mlflow,wandb: Ray Tune's own logger callbacks, one run per trial with
the trial's config (design and seed) as its parameters and each epoch's scalar metrics (trial.TRACKED) at step =
epoch. The callbacks run in the driver, so their files are on the driver's machine whatever node trains.

- tensorboard: Tune's TBXLoggerCallback writes each trial's event file into the trial's directory,
  runs/<name>/ray/tune-<time>/<trial>/, so `tensorboard --logdir runs/<name>` shows one run per trial; the design
  and seed are its hparams.
- mlflow: Ray's MLflowLoggerCallback, experiment <name>, in a local store in the run directory,
  sqlite:///runs/<name>/mlflow.db (MLflow 3 refuses to start a file store), unless mlflow_uri= or
  $MLFLOW_TRACKING_URI names another.
- wandb: Ray's WandbLoggerCallback, project $WANDB_PROJECT or <name>, offline into runs/<name>/wandb/ unless
  $WANDB_API_KEY is set ($WANDB_MODE, where set, decides).

Tune's automatic loggers are turned off while the sweep runs (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS): they would add a
TensorBoard writer to every trial whatever tracking= says. Its CSV and JSON trial logs are added back as before.
"""
import contextlib
import dataclasses
import functools
import os
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, TBXLoggerCallback
from ray.tune.result import TRAINING_ITERATION

from .trial import TRACKED, design_of


@dataclasses.dataclass
class Tracker:
    """One tracker of a sweep: its Tune callback, where to look at its runs (markdown, for the report) and the
    environment it needs in the driver while Tune runs."""
    callback: LoggerCallback
    view: str
    env: Dict[str, str] = dataclasses.field(default_factory=dict)


class EpochScalars:
    """Mixed into a Tune logger callback: it sees each per-epoch report as the scalars in TRACKED at step = epoch.
    Not the final report, which repeats the last epoch with the trial's bookkeeping (Tune's own step,
    training_iteration, counts it as one more), and not the nested result and measures the driver's row is built
    from (the history, a list of dicts, is no metric)."""

    def log_trial_result(self, iteration: int, trial, result: Dict):
        if result.get("final"):
            return
        scalars = {key: result[key] for key in TRACKED if key in result}
        super().log_trial_result(iteration, trial, {**scalars, TRAINING_ITERATION: result["epoch"]})


@functools.lru_cache(maxsize=None)
def epoch_scalars(callback: type) -> type:
    """The Tune logger callback class ``callback`` with EpochScalars mixed in (made on demand: importing Ray's
    MLflow integration imports mlflow, 1.5 s)."""
    return type(callback.__name__, (EpochScalars, callback), {"__module__": __name__})


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the working directory when inside it (runs/<name>)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def tensorboard(sweep) -> Tracker:
    logdir = _shown(sweep.store.run_dir)
    return Tracker(epoch_scalars(TBXLoggerCallback)(),
                   f"`tensorboard --logdir {logdir}`: one run per trial, under `{logdir}/ray/`")


def mlflow_uri(sweep) -> str:
    """mlflow_uri=, else $MLFLOW_TRACKING_URI, else the local store in the run directory."""
    return (sweep.cfg.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{sweep.store.run_dir / 'mlflow.db'}")


def mlflow(sweep) -> Tracker:
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    uri = mlflow_uri(sweep)
    callback = epoch_scalars(MLflowLoggerCallback)(uri, experiment_name=sweep.name,
                                                   tags={"sweep": sweep.name, "space": sweep.cfg.space})
    local = uri == f"sqlite:///{sweep.store.run_dir / 'mlflow.db'}"
    where = (f"`mlflow ui --backend-store-uri sqlite:///{_shown(sweep.store.run_dir / 'mlflow.db')}`" if local
             else f"tracking URI `{uri}`")
    return Tracker(callback, f"{where}, experiment `{sweep.name}`: one run per trial")


def wandb(sweep) -> Tracker:
    from ray.air.integrations.wandb import WandbLoggerCallback
    project = os.environ.get("WANDB_PROJECT") or sweep.name
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    # wandb.init(dir=D) writes into D/wandb/; Ray asks for an API key unless $WANDB_MODE says offline
    callback = epoch_scalars(WandbLoggerCallback)(project=project, mode=mode, dir=str(sweep.store.run_dir))
    offline = _shown(sweep.store.run_dir / "wandb")
    view = (f"offline runs in `{offline}`, uploaded by `wandb sync {offline}/offline-run-*`" if mode == "offline"
            else f"project `{project}` ({mode})")
    return Tracker(callback, view, {"WANDB_MODE": mode})


# tracking=NAME -> its tracker (none: no tracker). The names and the packages they need are ablate.config.TRACKERS,
# checked before Ray starts.
BUILDERS: Dict[str, Callable[..., Optional[Tracker]]] = {
    "none": lambda sweep: None,
    "tensorboard": tensorboard,
    "mlflow": mlflow,
    "wandb": wandb,
}


def make_trackers(sweep) -> Dict[str, Tracker]:
    """The trackers tracking= names, each once, by name."""
    built = {name: BUILDERS[name](sweep) for name in dict.fromkeys(sweep.cfg.tracking)}
    return {name: tracker for name, tracker in built.items() if tracker is not None}


def logger_callbacks(trackers: Dict[str, Tracker]) -> List[LoggerCallback]:
    """Tune's CSV and JSON trial logs (as with its automatic loggers) and the trackers' callbacks."""
    return [CSVLoggerCallback(), JsonLoggerCallback(), *(tracker.callback for tracker in trackers.values())]


@contextlib.contextmanager
def tune_environment(trackers: Dict[str, Tracker]) -> Iterator[None]:
    """The driver's environment while Tune runs: no automatic loggers, and what the trackers need; restored after."""
    values = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    for tracker in trackers.values():
        values.update(tracker.env)
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def trial_name(trial) -> str:
    """A trial's name and directory: its design, seed and Tune id, e.g. last_N_2_default-seed0-3169f_00001 (the
    name of its run in TensorBoard, MLflow and W&B)."""
    design, seeds = design_of(trial.config)
    label = design.spec if design.pattern == "search" else design.pattern
    return f"{re.sub(r'[^A-Za-z0-9.]+', '_', label).strip('_')}-seed{'_'.join(map(str, seeds))}-{trial.trial_id}"
