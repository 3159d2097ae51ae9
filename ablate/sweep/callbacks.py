"""The driver's Tune callback: a row per trial as it ends (finished, stopped or crashed), and the progress line;
and the stopper that ends the sweep when a row cannot be written."""
import shutil
from pathlib import Path

from ray.tune import Callback
from ray.tune.stopper import Stopper

from ..progress import Progress
from ..results import CRASHED, FAILED, architecture_id
from .rows import rows_from_trial
from .trial import design_of
from .store import RunStore, SweepError


class RowWriter(Callback):
    def __init__(self, store: RunStore, run_name: str, space: str, cfg, patterns: dict, progress: Progress,
                 estimates=None, early_stopping=False):
        self.store, self.run_name, self.space, self.cfg = store, run_name, space, cfg
        self.patterns, self.progress, self.estimates = patterns, progress, estimates or {}
        # Whether a scheduler may stop trials between epochs. Without one, a trial that ends without its final
        # report was interrupted (Ctrl-C): it gets no row, so resume=true trains it again.
        self.early_stopping = early_stopping
        self.failure = None                 # a row that could not be written: the sweep stops with it
        self.retries = {}                   # trial id -> times Tune restarted it after its process was lost

    def _write(self, trials, trial, last_result, error=None):
        if self.failure is not None:        # the sweep is stopping: trials ended by the stop are not results
            return
        if error is None and not last_result.get("final") and not self.early_stopping:
            return
        rows = rows_from_trial(self.run_name, self.space, self.cfg, trial.config, self.patterns, last_result)
        for row in rows:
            if error is not None:
                row.status, row.error = FAILED, error
            row.attempts = 1 + self.retries.get(trial.trial_id, 0)
            try:
                self.store.write_row(row)
            except SweepError as failure:   # Tune logs a callback's error and goes on: StopOnFailure ends it
                self.failure = failure
                return
        remove_checkpoints(trial)           # the rows hold the result now: the checkpoints served their purpose
        running = sum(1 for t in trials if t.status == "RUNNING" and t is not trial)
        for row in rows:
            self.progress.finished(row, running, self.estimates.get(architecture_id(row.spec, row.knobs)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trials, trial, trial.last_result or {})

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        """Keep a trial's newest checkpoint only, the one Tune restarts it from. (Tune's own
        CheckpointConfig(num_to_keep) would also force a sync of the experiment's whole state after every checkpoint:
        work that grows with the trials already run, which made a 300-trial search slow down as it went.)"""
        remove_checkpoints(trial, keep=checkpoint.path)

    def on_trial_recover(self, iteration, trials, trial, **info):
        """Tune restarts the trial (from its last checkpoint) after its process or node was lost."""
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        print(f"[{self.run_name}] {trial_label(trial)}: its process was lost after epoch "
              f"{(trial.last_result or {}).get('epoch', 0)}; retry {self.retries[trial.trial_id]} of "
              f"{self.cfg.resources.max_retries}, from its last checkpoint", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        """The retries ran out: a failed row that says so (resume=true trains it again)."""
        error = trial.get_error() if hasattr(trial, "get_error") else None
        message = str(error).strip().splitlines()[-1] if error else "the trial process crashed"
        self._write(trials, trial, trial.last_result or {}, error=f"{CRASHED}{message} "
                                                                  f"(after {self.retries.get(trial.trial_id, 0)} retries)")


def trial_label(trial) -> str:
    entry = design_of(trial.config)
    return f"{entry.design.pattern} {entry.seed_label}"


def remove_checkpoints(trial, keep=None) -> None:
    """Delete a trial's checkpoints in the run's Tune storage (on the driver's disk), all of them or all but `keep`."""
    folder = trial.path                 # the trial's folder in the run's storage, where Tune keeps its checkpoints
    if folder and Path(folder).is_dir():
        for checkpoint in Path(folder).glob("checkpoint_*"):
            if keep is None or checkpoint != Path(keep):
                shutil.rmtree(checkpoint, ignore_errors=True)


class StopOnFailure(Stopper):
    """Ends the whole sweep once the RowWriter could not write a row (the driver then reports why)."""

    def __init__(self, writer: RowWriter):
        self.writer = writer

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.writer.failure is not None
