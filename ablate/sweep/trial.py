"""One trial: the config it trains (built from the sweep's config, which it never changes), its cost before
training, and the Ray Tune trainable. The trainable runs on any node of a cluster: it reads nothing from the run
directory (the driver decides what to train) and sends its whole result back in its reports, each epoch's with a
checkpoint through Tune's API (so it reaches the driver's storage without a shared disk), from which Tune restarts
the trial when its process or node is lost."""
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from ..build import proxy_model
from ..config import BudgetConfig, SweepConfig
from ..mixers import REGISTRY
from ..proxy import ProxyConfig
from ..results import FAILED, PRIMARY, REJECTED_BUDGET, TrialResult, trial_key
from ..space import Design
from ..spec import parse_spec


class TrialDesign(NamedTuple):
    """What one trial trains: a design at its seeds, one row each. More than one seed: fused into one model
    (ablate/fused.py, resources.fuse_seeds)."""
    design: Design
    seeds: Tuple[int, ...]

    @property
    def keys(self) -> List[str]:
        """The trial ids of its rows, one per seed."""
        return [trial_key(self.design.key, seed) for seed in self.seeds]

    @property
    def key(self) -> str:
        """The trial's id: its row's, for one seed."""
        return "+".join(self.keys)

    @property
    def seed_label(self) -> str:
        return f"seed {self.seeds[0]}" if len(self.seeds) == 1 else f"seeds {','.join(map(str, self.seeds))}"

    def tune_config(self) -> dict:
        """The trial's entry in Tune's param_space: scalars, because Tune shows the config to the experiment
        trackers as the trial's parameters (design/spec, design/seed: its first seed, design/seeds: all of them,
        comma-separated). design_of reads it back."""
        d = self.design
        return {"pattern": d.pattern, "spec": d.spec, "knobs": d.knobs_json, "seed": self.seeds[0],
                "seeds": ",".join(map(str, self.seeds))}


def design_of(config: dict) -> TrialDesign:
    """The design and seeds a trial trains, from its Tune config: the grid's entry, or Optuna's proposal (a spec,
    at seed 0). The one place the config's scalars become types again."""
    if "design" not in config:
        return TrialDesign(Design.make("search", config["spec"]), (0,))
    entry = config["design"]
    seeds = tuple(int(seed) for seed in str(entry["seeds"]).split(","))
    return TrialDesign(Design(entry["pattern"], entry["spec"], json.loads(entry["knobs"])), seeds)


def expected_cost(spec: str, cfg: SweepConfig) -> int:
    """A rough cost to start the slowest trials first (so no long trial runs alone at the end): the tokens
    that scanning blocks scan, which dominate CPU time at proxy scale, plus one unit per block."""
    side = cfg.data.image_size // cfg.model.stem_stride
    cost = 0
    for index, stage in enumerate(parse_spec(spec).stages):
        tokens = (side // 2 ** index) ** 2
        cost += sum(tokens for letter in stage if REGISTRY[letter].scans) + len(stage)
    return cost


@dataclasses.dataclass
class StaticMeasures:
    """A design's cost before training, at the proxy's resolution: parameters and MACs per image, scan included."""
    params: int
    macs_total: int
    macs_scan: int

    def over(self, budget: BudgetConfig) -> str:
        """Why the design is over the sweep's budget, or "" when it is within it."""
        if budget.max_params is not None and self.params > budget.max_params:
            return f"params {self.params:,} > budget.max_params {budget.max_params:,}"
        if budget.max_macs is not None and self.macs_total > budget.max_macs:
            return f"MACs {self.macs_total:,} > budget.max_macs {budget.max_macs:,}"
        return ""


def static_measures(proxy: ProxyConfig) -> StaticMeasures:
    """Params and MACs of the proxy model at its resolution, before training."""
    from ..measure import count_macs, count_params
    model = proxy_model(proxy)
    macs = count_macs(model, (1, 3, proxy.data.image_size, proxy.data.image_size))
    return StaticMeasures(count_params(model), macs["macs_total"], macs["macs_scan"])


# The scalars a report carries for the experiment trackers (tracking=...), the epoch first: Tune's logger callbacks
# are shown these alone (ablate/sweep/tracking.py), not the nested result and measures the driver's row is built from.
# Each epoch's scalars beyond epoch and val_acc: the name a tracker shows -> the TrialResult field it holds.
EPOCH_SCALARS = {"val_loss": "val_loss_final", "val_acc_best": "val_acc_best", "val_loss_best": "val_loss_best",
                 "val_acc_late": "val_acc_late", "val_loss_late": "val_loss_late", "train_loss": "train_loss",
                 "train_time_s": "train_time_s"}
TRACKED = ("epoch", "val_acc", *EPOCH_SCALARS)
RUNG_SCORE = "rung_score"     # ASHA's metric: TrialResult.rung_score
WORST_SCORE = float("-inf") if PRIMARY.higher_is_better else float("inf")     # a trial with nothing measured


def tune_metrics(results: List[TrialResult], measures: Optional[StaticMeasures], final: bool) -> dict:
    """A report to Tune: what the scheduler and searcher read (epoch, the rung score, val_acc, macs_total), the
    epoch's metrics as scalars (TRACKED; val_acc and val_loss are the last evaluation's, a metric not measured yet
    is left out), and each seed's whole result as structured data, from which the driver writes the rows. A fused
    trial's scalars are the means over its seeds that have them: ASHA keeps or stops the design as a whole."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None
    trained = [r for r in results if r.status != FAILED] or results
    scalars = {name: mean(getattr(r, field) for r in trained) for name, field in EPOCH_SCALARS.items()}
    score = mean(r.rung_score() for r in trained)
    return {"epoch": max(r.epochs_done or 0 for r in results), "val_acc": mean(r.val_acc_final for r in trained) or 0.0,
            RUNG_SCORE: score if score is not None else WORST_SCORE,
            **{key: value for key, value in scalars.items() if value is not None},
            "macs_total": measures.macs_total if measures else 0, "final": int(final),
            "results": [dataclasses.asdict(r) for r in results],
            "measures": dataclasses.asdict(measures) if measures else {}}


def run_trial(config, base: ProxyConfig, budget: BudgetConfig):
    """The Ray Tune trainable: budget check, train_proxy (or train_fused for several seeds), a report after each
    epoch and a final one."""
    from ray import tune

    trial = design_of(config)
    proxies = [base.for_design(trial.design, seed) for seed in trial.seeds]
    try:
        measures = static_measures(proxies[0])
    except Exception as error:               # a spec or knob that does not build: a failed trial, not a crash
        message = f"{type(error).__name__}: {error}"
        failed = [TrialResult(seed=seed, status=FAILED, error=message) for seed in trial.seeds]
        return tune.report(tune_metrics(failed, None, final=True))
    reason = measures.over(budget)
    if reason:
        rejected = [TrialResult(seed=seed, status=REJECTED_BUDGET, error=reason) for seed in trial.seeds]
        return tune.report(tune_metrics(rejected, measures, final=True))
    start = last_checkpoint()
    if start is not None:
        for result in (start.result if isinstance(start.result, list) else [start.result]):
            result["resumed_from"] = [*result.get("resumed_from", []), start.epochs_done]

    def report(epoch, state):
        with tempfile.TemporaryDirectory() as folder:      # Tune copies it into the run's storage, then it goes
            state.save(Path(folder) / STATE_FILE)
            tune.report(tune_metrics(as_list(epoch), measures, final=False),
                        checkpoint=tune.Checkpoint.from_directory(folder))

    tune.report(tune_metrics(as_list(train_seeds(proxies, report, start)), measures, final=True))


def last_checkpoint():
    """The TrainState of this trial's last epoch when Tune restarted it after its process was lost, else None."""
    from ray import tune

    from ..train import TrainState
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return TrainState.load(Path(folder) / STATE_FILE)


def as_list(results) -> List[TrialResult]:
    return results if isinstance(results, list) else [results]


def train_seeds(proxies: List[ProxyConfig], report, start):
    """The seeds' results: one trained alone (train_proxy), several fused into one model (train_fused)."""
    if len(proxies) == 1:
        from ..train import train_proxy
        return train_proxy(proxies[0], report=report, start=start)
    from ..fused import train_fused
    return train_fused(proxies, report=report, start=start)


STATE_FILE = "train_state.pt"
