"""The driver's side of a trial: its row in the results table, built from what the trial reported."""
import dataclasses

from ..config import SweepConfig
from ..results import COLUMNS, STOPPED_EARLY, ResultRow, TrialResult, fingerprint
from .trial import design_of

TRIAL_FIELDS = {field.name for field in dataclasses.fields(TrialResult)}


def row_from_trial(run_name: str, space: str, cfg: SweepConfig, config: dict, patterns: dict,
                   last_result: dict) -> ResultRow:
    """A results row from a finished Tune trial: its design and the last result it reported. A trial whose last
    report is not its final one was stopped between epochs by the scheduler: its last epoch is its record."""
    trial = design_of(config)
    design = trial.design
    result = TrialResult(**{k: v for k, v in last_result.get("result", {}).items() if k in TRIAL_FIELDS})
    if not last_result.get("final"):
        result.status = STOPPED_EARLY
    measures = last_result.get("measures", {})
    values = {**dataclasses.asdict(result), **{k: v for k, v in measures.items() if k in COLUMNS},
              "run": run_name, "trial_id": trial.key, "space": space, "spec": design.spec,
              "pattern": patterns.get(design.key, design.pattern), "knobs": design.knobs_json, "seed": trial.seed,
              "data_seed": cfg.trial_proxy().for_design(design, trial.seed).data_seed,
              "dataset": cfg.data.name, "image_size": cfg.data.image_size, **fingerprint()}
    return ResultRow.from_dict(values)
