"""The driver's side of a trial: its row in the results table, built from what the trial reported."""
import dataclasses
from typing import List

from ..config import SweepConfig
from ..results import COLUMNS, STOPPED_EARLY, ResultRow, TrialResult, fingerprint
from .trial import design_of

TRIAL_FIELDS = {field.name for field in dataclasses.fields(TrialResult)}


def rows_from_trial(run_name: str, space: str, cfg: SweepConfig, config: dict, patterns: dict,
                    last_result: dict) -> List[ResultRow]:
    """The results rows of a finished Tune trial, one per seed: its design and the last result it reported. A trial
    whose last report is not its final one was stopped between epochs by the scheduler: its last epoch is its
    record. A trial that reported nothing (its process lost before its first epoch) still gets a row per seed."""
    trial = design_of(config)
    design = trial.design
    reported = last_result.get("results") or [{} for _ in trial.seeds]
    measures = {k: v for k, v in last_result.get("measures", {}).items() if k in COLUMNS}
    base = cfg.trial_proxy()
    rows = []
    for seed, key, values in zip(trial.seeds, trial.keys, reported):
        result = TrialResult(**{k: v for k, v in values.items() if k in TRIAL_FIELDS})
        if not last_result.get("final"):
            result.status = STOPPED_EARLY
        row = {**dataclasses.asdict(result), **measures,
               "run": run_name, "trial_id": key, "space": space, "spec": design.spec,
               "pattern": patterns.get(design.key, design.pattern), "knobs": design.knobs_json, "seed": seed,
               "data_seed": base.for_design(design, seed).data_seed,
               "dataset": cfg.data.name, "image_size": cfg.data.image_size, **fingerprint()}
        rows.append(ResultRow.from_dict(row))
    return rows
