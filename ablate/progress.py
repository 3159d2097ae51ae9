"""A compact live view of a sweep: one line per event. Plain Python: no Ray needed to use it."""
import sys
import time

from .results import FAILED, OK, PRIMARY, REJECTED_BUDGET, STATUSES, STOPPED_EARLY, TRAINED, ResultRow


class Progress:
    """One line per event: done/running/stopped/failed counts, best so far, elapsed and ETA.

    With ``pending`` (the estimated seconds of each trial to run, from plan.py's calibration) the ETA is the
    plan's from the first line, packed onto ``slots`` and scaled by ``correction`` (the last sweep's ratio on this
    machine), then by how long this sweep's finished trials took against their estimates; without it, it
    extrapolates from the trials done."""

    def __init__(self, name, total, epochs, stream=sys.stdout, pending=None, slots=1, correction=1.0):
        self.name, self.total, self.epochs, self.stream = name, total, epochs, stream
        self.pending, self.slots, self.correction = list(pending or []), slots, correction
        self.measured = self.estimated = 0.0
        self.timed = 0                      # finished trials with both a measured time and an estimate
        self.start = time.time()
        self.counts = dict.fromkeys(STATUSES, 0)
        self.running = 0
        self.best = None

    def finished(self, row: ResultRow, running: int, estimate=None):
        self.running = running
        if estimate is not None and estimate in self.pending:
            self.pending.remove(estimate)
            if row.train_time_s:
                self.measured, self.estimated = self.measured + row.train_time_s, self.estimated + estimate
                self.timed += 1
        self.counts[row.status] = self.counts.get(row.status, 0) + 1
        score = getattr(row, PRIMARY.column)
        if row.status in TRAINED and score is not None:
            if self.best is None or PRIMARY.oriented(score) > PRIMARY.oriented(self.best[0]):
                self.best = (score, row.pattern, row.seed)
        # the design's label, not its spec: the mixer space has designs that share a spec and differ in knobs
        self.show(f"{row.pattern} seed {row.seed}: {row.status}" + (f" {score:.3f}" if score is not None else "")
                  + (f" ({row.error})" if row.error else ""))

    def show(self, event=""):
        done = sum(self.counts.values())
        elapsed = time.time() - self.start
        eta = self.eta(elapsed, done)
        best = f"best {self.best[0]:.3f} {self.best[1]} s{self.best[2]}" if self.best else "best -"
        print(f"[{self.name}] {done}/{self.total} done ({self.counts[OK]} ok, {self.counts[STOPPED_EARLY]} "
              f"stopped, {self.counts[FAILED]} failed, {self.counts[REJECTED_BUDGET]} over budget), "
              f"{self.running} running | {best} | {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min"
              + (f" | {event}" if event else ""), file=self.stream, flush=True)

    def eta(self, elapsed, done) -> float:
        if self.pending or (self.estimated and done >= self.total):
            from .calibration import makespan
            correction = self.measured / self.estimated if self.estimated else self.correction
            return makespan(self.pending, self.slots) * correction
        return elapsed / done * (self.total - done) if done else float("nan")

    def finish(self):
        self.show("finished")
