"""Ray Tune wiring: one trial = one proxy training of one (design, seed).

- Grid spaces run every pending (design, seed) once; search spaces let Optuna (TPE, NSGA-II, random) propose
  designs, the known ones first. ASHA stops weak trials by epoch where the space's scheduler says so.
- The driver decides what to train (search.py): a (design, seed) with a row is never launched again, so a trial
  on a cluster node needs nothing from the driver's disk. Each trial checks params and MACs against the budget
  before training (over budget: rejected_budget, not trained) and reports its whole result back (trial.py).
- The driver writes one row per trial as it ends (callbacks.py, store.py), so a killed sweep loses nothing
  finished; resume=true runs only the (design, seed) pairs without a row, and a search resumes its Optuna study
  from the run directory. One driver per run (a lock). Ray's own experiment state is not used for resuming: the
  rows are the truth.
- Throughput is measured after all training, in the driver, the designs timed together in interleaved rounds
  (throughput.py, ablate/timing.py).
"""
from .planning import design_estimates, plan_markdown
from .run import run_sweep
from .store import RunStore, SweepError
from .trial import StaticMeasures, TrialDesign, expected_cost, static_measures

__all__ = ["run_sweep", "SweepError", "RunStore", "plan_markdown", "design_estimates", "expected_cost",
           "StaticMeasures", "static_measures", "TrialDesign"]
