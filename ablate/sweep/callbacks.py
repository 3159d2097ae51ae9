"""The driver's Tune callback: a row per trial as it ends (finished, stopped or crashed), and the progress line;
and the stopper that ends the sweep when a row cannot be written."""
from ray.tune import Callback
from ray.tune.stopper import Stopper

from ..progress import Progress
from ..results import FAILED, architecture_id
from .rows import row_from_trial
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

    def _write(self, trials, trial, last_result, error=None):
        if self.failure is not None:        # the sweep is stopping: trials ended by the stop are not results
            return
        if error is None and not last_result.get("final") and not self.early_stopping:
            return
        row = row_from_trial(self.run_name, self.space, self.cfg, trial.config, self.patterns, last_result)
        if error is not None:
            row.status, row.error = FAILED, error
        try:
            self.store.write_row(row)
        except SweepError as failure:       # Tune logs a callback's error and goes on: StopOnFailure ends it
            self.failure = failure
            return
        running = sum(1 for t in trials if t.status == "RUNNING" and t is not trial)
        self.progress.finished(row, running, self.estimates.get(architecture_id(row.spec, row.knobs)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trials, trial, trial.last_result or {})

    def on_trial_error(self, iteration, trials, trial, **info):
        error = trial.get_error() if hasattr(trial, "get_error") else None
        message = str(error).strip().splitlines()[-1] if error else "the trial process crashed"
        self._write(trials, trial, trial.last_result or {}, error=f"crashed: {message}")


class StopOnFailure(Stopper):
    """Ends the whole sweep once the RowWriter could not write a row (the driver then reports why)."""

    def __init__(self, writer: RowWriter):
        self.writer = writer

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.writer.failure is not None
