"""One trial: the config it trains (built from the sweep's config, which it never changes), its cost before
training, and the Ray Tune trainable. The trainable runs on any node of a cluster: it reads nothing from the run
directory (the driver decides what to train) and sends its whole result back in its reports."""
import dataclasses

from ..config import SweepConfig
from ..mixers import REGISTRY
from ..preflight import design_proxy, proxy_model, trial_proxy
from ..results import FAILED, PRIMARY, REJECTED_BUDGET, TrialResult
from ..space import Design
from ..spec import parse_spec
from ..train import ProxyConfig


def trial_base(cfg: SweepConfig) -> dict:
    """The proxy config every trial starts from: the sweep's model, data and trainer, with the threads and device
    its resources give. A new dict: the sweep's config is not changed."""
    trainer = dataclasses.replace(cfg.trainer, threads=max(1, int(cfg.resources.cpus_per_trial)),
                                  device="cuda" if cfg.resources.gpus_per_trial > 0 else "cpu")
    return dataclasses.asdict(ProxyConfig(model=cfg.model, data=cfg.data, trainer=trainer))


def trial_config(cfg: SweepConfig, design: Design, seed: int = 0) -> dict:
    """The proxy config one trial of ``design`` trains (seed 0: the design outside any trial, to build, measure
    or calibrate it)."""
    return design_proxy(trial_base(cfg), design, seed)


def design_dict(design: Design, seed: int) -> dict:
    """A (design, seed) as the plain dict a trial's config carries through Ray."""
    return {"pattern": design.pattern, "spec": design.spec, "knobs": design.knobs, "seed": seed}


def design_of(config: dict) -> dict:
    """The (pattern, spec, knobs, seed) a trial trains: from the grid, or from Optuna's proposal."""
    if "design" in config:
        return dict(config["design"])
    return {"pattern": "search", "spec": config["spec"], "knobs": "{}", "seed": 0}


def expected_cost(spec: str, cfg: SweepConfig) -> int:
    """A rough cost to start the slowest trials first (so no long trial runs alone at the end): the tokens
    that scanning blocks scan, which dominate CPU time at proxy scale, plus one unit per block."""
    side = cfg.data.image_size // cfg.model.stem_stride
    cost = 0
    for index, stage in enumerate(parse_spec(spec).stages):
        tokens = (side // 2 ** index) ** 2
        cost += sum(tokens for letter in stage if REGISTRY[letter].scans) + len(stage)
    return cost


def static_measures(proxy: dict) -> dict:
    """Params and MACs of the proxy model at its resolution, before training."""
    from ..measure import count_macs, count_params
    model, cfg = proxy_model(proxy)
    macs = count_macs(model, (1, 3, cfg.data.image_size, cfg.data.image_size))
    return {"params": count_params(model), "macs_total": macs["macs_total"], "macs_scan": macs["macs_scan"]}


def over_budget(measures: dict, budget: dict) -> str:
    if budget.get("max_params") is not None and measures["params"] > budget["max_params"]:
        return f"params {measures['params']:,} > budget.max_params {budget['max_params']:,}"
    if budget.get("max_macs") is not None and measures["macs_total"] > budget["max_macs"]:
        return f"MACs {measures['macs_total']:,} > budget.max_macs {budget['max_macs']:,}"
    return ""


# The scalars a report carries for the experiment trackers (tracking=...), the epoch first: Tune's logger callbacks
# are shown these alone (ablate/sweep/tracking.py), not the nested result and measures the driver's row is built from.
# Each epoch's scalars beyond epoch and val_acc: the name a tracker shows -> the TrialResult field it holds.
EPOCH_SCALARS = {"val_loss": "val_loss_final", "val_acc_best": "val_acc_best", "val_loss_best": "val_loss_best",
                 "val_acc_late": "val_acc_late", "val_loss_late": "val_loss_late", "train_loss": "train_loss",
                 "train_time_s": "train_time_s"}
TRACKED = ("epoch", "val_acc", *EPOCH_SCALARS)
RUNG_SCORE = "rung_score"     # ASHA's metric: TrialResult.rung_score
WORST_SCORE = float("-inf") if PRIMARY.higher_is_better else float("inf")     # a trial with nothing measured


def tune_metrics(result: TrialResult, measures: dict, final: bool) -> dict:
    """A report to Tune: what the scheduler and searcher read (epoch, the rung score, val_acc, macs_total), the
    epoch's metrics as
    scalars (TRACKED; val_acc and val_loss are the last evaluation's, a metric not measured yet is left out), and
    the trial's whole result as structured data, from which the driver writes the row."""
    scalars = {name: getattr(result, field) for name, field in EPOCH_SCALARS.items()}
    score = result.rung_score()
    return {"epoch": result.epochs_done or 0, "val_acc": result.val_acc_final or 0.0,
            RUNG_SCORE: score if score is not None else WORST_SCORE,
            **{key: value for key, value in scalars.items() if value is not None},
            "macs_total": measures.get("macs_total", 0), "final": int(final),
            "result": dataclasses.asdict(result), "measures": measures}


def run_trial(config, base=None, budget=None):
    """The Ray Tune trainable: budget check, train_proxy, a report after each epoch and a final one."""
    from ray import tune

    from ..train import train_proxy
    proxy = trial_proxy(base, design_of(config))
    try:
        measures = static_measures(proxy)
    except Exception as error:               # a spec or knob that does not build: a failed trial, not a crash
        result = TrialResult(status=FAILED, error=f"{type(error).__name__}: {error}")
        return tune.report(tune_metrics(result, {}, final=True))
    reason = over_budget(measures, budget)
    if reason:
        return tune.report(tune_metrics(TrialResult(status=REJECTED_BUDGET, error=reason), measures, final=True))
    result = train_proxy(proxy, report=lambda epoch: tune.report(tune_metrics(epoch, measures, final=False)))
    tune.report(tune_metrics(result, measures, final=True))
