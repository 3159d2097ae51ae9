"""What a sweep runs: a grid of pending (design, seed) trials, or an Optuna search, each with its scheduler.

Duplicates are decided here, in the driver, before a trial is launched: a grid leaves out the trials that have a
row, and a search never launches a design the run has already trained (Optuna is told that design's result
instead). A trial on another node of a cluster therefore needs nothing from the driver's disk. A search's Optuna
study lives in the run directory (Optuna's journal file), so a killed search resumes with its sampler aware of
every trial it finished. (This module imports Ray: the driver imports it only to train.)
"""
import dataclasses
import functools
from pathlib import Path
from typing import Dict, List, Optional

from ray.tune.search import Searcher

from ..config import SweepConfig, seed_range
from ..results import PRIMARY, TRAINED, ResultRow, architecture_id, trial_key
from ..space import Design, Space
from .trial import RUNG_SCORE, TrialDesign, design_of, expected_cost

STUDY_FILE = "optuna.journal"
MAX_PROPOSALS = 100        # proposals in a row that are all trained already: the sampler has nothing new to offer


@dataclasses.dataclass
class SearchPlan:
    """What Tune runs: the param_space, the search algorithm (None for a grid), the scheduler, how many samples
    Tune draws, how many trials that makes, and a grid's trials in their order (a search's are not known yet)."""
    param_space: Optional[dict]
    search_alg: object
    scheduler: object
    num_samples: int
    trials: int                 # rows to come: a fused trial of S seeds counts S
    grid: List[TrialDesign] = dataclasses.field(default_factory=list)


def make_scheduler(cfg: SweepConfig, space: Space):
    from ray.tune.schedulers import ASHAScheduler
    name = space.scheduler if cfg.scheduler == "auto" else cfg.scheduler
    if name != "asha":
        return None
    # max_t one past the last epoch: a trial that trains to the end must not be "stopped" at its last epoch
    # report, before its final report (the full result) arrives.
    # the score: the primary metric of the largest budget each trial has finished (ablate/ladder.py)
    return ASHAScheduler(metric=RUNG_SCORE, mode=PRIMARY.direction, time_attr="epoch", max_t=cfg.trainer.epochs + 1,
                         grace_period=1, reduction_factor=2)


def grid_plan(cfg: SweepConfig, space: Space, known: List[Design], done_rows: List[ResultRow]) -> SearchPlan:
    """Every (design, seed) without a row, slowest designs first: a trial each, or, fusing seeds
    (cfg.fuses_seeds()), one trial per design with its pending seeds. ``trials`` counts the rows to come."""
    from ray import tune
    done = {row.trial_id for row in done_rows if not row.crashed}     # a crashed trial is trained again
    pending = []
    for design in sorted(known, key=lambda d: -expected_cost(d.spec, cfg)):
        seeds = [seed for seed in seed_range(cfg) if trial_key(design.key, seed) not in done]
        pending += [TrialDesign(design, group) for group in cfg.seed_groups(seeds)]
    param_space = {"design": tune.grid_search([trial.tune_config() for trial in pending])} if pending else None
    rows = sum(len(trial.seeds) for trial in pending)
    return SearchPlan(param_space, None, make_scheduler(cfg, space), 1, rows, pending)


def optuna_plan(cfg: SweepConfig, space: Space, known: List[Design], done_rows: List[ResultRow],
                run_dir: Path) -> SearchPlan:
    """Optuna proposes designs (the space's known ones first) until search.num_samples designs are trained."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch
    samplers = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
                "random": optuna.samplers.RandomSampler}
    multi = cfg.search.algo == "nsga2"      # accuracy and MACs (throughput is measured after training)
    metric, mode = (["val_acc", "macs_total"], ["max", "min"]) if multi else ("val_acc", "max")
    finished = {row.spec: row for row in done_rows if row.status in TRAINED}
    study_path = run_dir / STUDY_FILE
    resuming = study_path.exists()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(study_path)))
    if resuming:
        close_interrupted_trials(storage, space, done_rows, metric)
    # a new study is seeded with the known designs; a resumed one still holds those it has not asked for yet
    first = [] if resuming else [space.params_of(d.spec) for d in known if d.spec not in finished]
    optuna_search = OptunaSearch(space=functools.partial(space.suggest, cfg=cfg), metric=metric, mode=mode,
                                 points_to_evaluate=first or None, study_name="search", storage=storage,
                                 sampler=samplers[cfg.search.algo](seed=cfg.search.seed))
    remaining = max(0, cfg.search.num_samples - len(finished))
    done = {trial_key(architecture_id(row.spec, row.knobs), row.seed): optuna_result(row) for row in done_rows}
    return SearchPlan({}, NewDesignsOnly(optuna_search, done), make_scheduler(cfg, space), remaining, remaining)


def optuna_result(row: ResultRow) -> dict:
    """What Optuna is told of a trained design: what its trial reported last (0 for a failed one, as then)."""
    return {"val_acc": row.val_acc_final or 0.0, "macs_total": row.macs_total or 0}


def close_interrupted_trials(storage, space: Space, done_rows: List[ResultRow], metric) -> None:
    """Trials a killed driver left RUNNING in the study: complete with the row's result where the trial got one
    (killed after the row was written), failed otherwise, so the sampler does not wait on them."""
    import optuna
    from optuna.trial import TrialState
    study = optuna.load_study(study_name="search", storage=storage)
    rows = {row.spec: row for row in done_rows}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        row = next((r for spec, r in rows.items() if space.params_of(spec) == trial.params), None)
        if row is None:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        else:
            result = optuna_result(row)
            values = [result[m] for m in metric] if isinstance(metric, list) else [result[metric]]
            storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, values)


class NewDesignsOnly(Searcher):
    """A Tune search algorithm around OptunaSearch that launches only designs the run has not trained: a design
    with a row is told to Optuna at once with that row's result, and one proposed again while it runs is told the
    running trial's result when that ends."""

    def __init__(self, searcher, done: Dict[str, dict]):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.done = searcher, dict(done)
        self.inner_id: Dict[str, str] = {}       # Tune's trial id -> the id Optuna knows it by
        self.running: Dict[str, str] = {}        # trial key -> Tune's trial id
        self.waiting: Dict[str, List[str]] = {}  # trial key -> Optuna ids proposed again while it ran
        self.skipped = 0                         # proposals not launched: trained or running already

    def set_search_properties(self, metric, mode, config, **spec):
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    # Nothing for Tune to checkpoint: the study's journal in the run directory is the search's state.
    def save(self, checkpoint_path):
        pass

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict):
        pass

    def suggest(self, trial_id):
        for attempt in range(MAX_PROPOSALS):
            inner = trial_id if attempt == 0 else f"{trial_id}_again{attempt}"
            config = self.searcher.suggest(inner)
            if not isinstance(config, dict):        # None (wait) or Searcher.FINISHED
                return config
            key = design_of(config).key
            if key in self.done:
                self.searcher.on_trial_complete(inner, result=self.done[key])
            elif key in self.running:
                self.waiting.setdefault(key, []).append(inner)
            else:
                self.running[key], self.inner_id[trial_id] = trial_id, inner
                return config
            self.skipped += 1
        return Searcher.FINISHED

    def on_trial_result(self, trial_id, result):
        if trial_id in self.inner_id:
            self.searcher.on_trial_result(self.inner_id[trial_id], result)

    def on_trial_complete(self, trial_id, result=None, error=False):
        if trial_id not in self.inner_id:
            return
        self.searcher.on_trial_complete(self.inner_id.pop(trial_id), result=result, error=error)
        key = next((k for k, t in self.running.items() if t == trial_id), None)
        if key is None:
            return
        del self.running[key]
        if result is not None and not error:
            self.done[key] = result
        for inner in self.waiting.pop(key, []):
            self.searcher.on_trial_complete(inner, result=result, error=error)
