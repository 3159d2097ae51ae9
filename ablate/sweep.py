"""Ray Tune wiring: one trial = one proxy training of one (design, seed).

- Grid spaces run every pending (design, seed) once; search spaces let Optuna (TPE, NSGA-II, random) propose
  designs, the known ones first. ASHA stops weak trials by epoch where the space's scheduler says so.
- Each trial checks params and MACs against the budget before training (over budget: rejected_budget, not
  trained) and skips an (architecture, seed) that already has a row.
- The driver writes one row per trial as it ends (ablate.results, atomic), so a killed sweep loses nothing
  finished; resume=true runs only the (design, seed) pairs without a row. Ray's own experiment state is not
  used for resuming: the rows are the truth.
- Throughput is measured after all training, in the driver, one design at a time, so no training trial
  disturbs it.
"""
import functools
import dataclasses
import json
import os
import time
from pathlib import Path

from .config import SweepConfig
from .plan import concurrent_trials, record_correction, recorded_correction
from .preflight import (SMOKE, PreflightError, apply_smoke, check_dataset, check_designs, describe_smoke, design_proxy,
                        proxy_model, trial_proxy)
from .results import (METRIC_COLUMNS, TRAINED, architecture_id, fingerprint, log_session, read_rows, trial_key,
                      write_row, write_table)
from .train import ProxyConfig, data_seed


class SweepError(RuntimeError):
    pass


def base_proxy(cfg: SweepConfig) -> dict:
    proxy = ProxyConfig(model=cfg.model, data=cfg.data, trainer=cfg.trainer)
    proxy.trainer.threads = max(1, int(cfg.resources.cpus_per_trial))
    proxy.trainer.device = "cuda" if cfg.resources.gpus_per_trial > 0 else "cpu"
    return dataclasses.asdict(proxy)


def design_of(config: dict) -> dict:
    """The (pattern, spec, knobs, seed) a trial trains: from the grid, or from Optuna's proposal."""
    if "design" in config:
        return dict(config["design"])
    return {"pattern": "search", "spec": config["spec"], "knobs": "{}", "seed": 0}


def design_key(design: dict) -> str:
    return architecture_id(design["spec"], design["knobs"])


def expected_cost(spec: str, cfg: SweepConfig) -> int:
    """A rough cost to start the slowest trials first (so no long trial runs alone at the end): the tokens
    that SSM blocks scan, which dominate CPU time at proxy scale, plus one unit per block."""
    from .spec import parse_spec
    side = cfg.data.image_size // cfg.model.stem_stride
    cost = 0
    for index, stage in enumerate(parse_spec(spec).stages):
        tokens = (side // 2 ** index) ** 2
        cost += sum(tokens for letter in stage if letter in "MSBXP") + len(stage)
    return cost


def static_measures(proxy: dict) -> dict:
    """Params and MACs of the proxy model at its resolution, before training."""
    from .measure import count_macs, count_params
    model, cfg = proxy_model(proxy)
    macs = count_macs(model, (1, 3, cfg.data.image_size, cfg.data.image_size))
    return {"params": count_params(model), "macs_total": macs["macs_total"], "macs_scan": macs["macs_scan"]}


def over_budget(measures: dict, budget: dict) -> str:
    if budget.get("max_params") is not None and measures["params"] > budget["max_params"]:
        return f"params {measures['params']:,} > budget.max_params {budget['max_params']:,}"
    if budget.get("max_macs") is not None and measures["macs_total"] > budget["max_macs"]:
        return f"MACs {measures['macs_total']:,} > budget.max_macs {budget['max_macs']:,}"
    return ""


def run_trial(config, base=None, budget=None, run_dir=None):
    """The Ray Tune trainable: budget check, duplicate check, train_proxy, reporting each epoch."""
    from ray import tune

    from .train import train_proxy
    design = design_of(config)
    key = trial_key(design_key(design), design["seed"])
    existing = Path(run_dir) / "trials" / f"{key}.json"
    if existing.is_file():                    # the same architecture and seed was trained already: reuse it
        row = json.loads(existing.read_text())
        tune.report({"epoch": row["epochs_done"] or 0, "val_acc": row["val_acc_best"] or 0.0, "final": 1,
                     "macs_total": row["macs_total"] or 0, "duplicate_of": key})
        return
    proxy = trial_proxy(base, design)
    try:
        measures = static_measures(proxy)
    except Exception as error:               # a spec or knob that does not build: a failed trial, not a crash
        return final_report({"status": "failed", "error": f"{type(error).__name__}: {error}"}, {})
    reason = over_budget(measures, budget)
    if reason:
        return final_report({"status": "rejected_budget", "error": reason}, measures)
    result = train_proxy(proxy, report=lambda metrics: tune.report({**metrics, **measures}))
    final_report(result, measures)


def final_report(result: dict, measures: dict) -> None:
    """A trial's last report: its whole result as JSON, from which the driver writes the row."""
    from ray import tune
    result = {"epochs_done": 0, **result}
    tune.report({"epoch": result["epochs_done"], "val_acc": result.get("val_acc_final") or 0.0, "final": 1,
                 "macs_total": 0, **measures, "result_json": json.dumps(result)})


def _make_search(cfg: SweepConfig, space, known, done_rows):
    """Tune's search algorithm, scheduler and param_space for this space and algorithm."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler_name = space.SCHEDULER if cfg.scheduler == "auto" else cfg.scheduler
    scheduler = None
    if scheduler_name == "asha":
        # max_t one past the last epoch: a trial that trains to the end must not be "stopped" at its last
        # epoch report, before its final report (the full result) arrives.
        scheduler = ASHAScheduler(metric="val_acc", mode="max", time_attr="epoch", max_t=cfg.trainer.epochs + 1,
                                  grace_period=1, reduction_factor=2)
    if cfg.search.algo == "grid":
        seeds = range(cfg.seeds)
        done = {row["trial_id"] for row in done_rows}
        pending = [{"pattern": d.pattern, "spec": d.spec, "knobs": d.knobs, "seed": s}
                   for d in sorted(known, key=lambda d: -expected_cost(d.spec, cfg)) for s in seeds
                   if trial_key(d.key, s) not in done]
        return None, scheduler, {"design": tune.grid_search(pending)} if pending else None, 1, len(pending)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    samplers = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
                "random": optuna.samplers.RandomSampler}
    multi = cfg.search.algo == "nsga2"      # accuracy and MACs (throughput is measured after training)
    finished = {row["spec"]: row for row in done_rows if row["status"] in TRAINED}
    first = [space.params_of(d.spec) for d in known if d.spec not in finished]
    searcher = OptunaSearch(space=functools.partial(space.suggest, cfg=cfg),
                            metric=["val_acc", "macs_total"] if multi else "val_acc",
                            mode=["max", "min"] if multi else "max",
                            points_to_evaluate=first or None, sampler=samplers[cfg.search.algo](seed=cfg.search.seed))
    remaining = max(0, cfg.search.num_samples - len(finished))
    return searcher, scheduler, {}, remaining, remaining


def run_sweep(cfg: SweepConfig, command: str = "") -> Path:
    """Train every pending trial, measure throughput, write the table and the report; returns report.md."""
    import ray
    from ray import tune
    from search_spaces import SPACES

    from .progress import Progress, RowWriter

    if cfg.smoke:
        print(describe_smoke(cfg), flush=True)
        cfg = apply_smoke(cfg)
    space = SPACES[cfg.space]
    known, size = _checked_designs(cfg, space)
    name = cfg.name or cfg.space
    run_dir = (Path(cfg.runs_dir) / name).resolve()
    done_rows = read_rows(run_dir)
    if cfg.plan:
        print(plan_markdown(cfg, known, size, done_rows, run_dir))
        return None
    if done_rows and not cfg.resume:
        raise SweepError(f"run {name!r} already has {len(done_rows)} finished trials in {run_dir}; "
                         f"add resume=true to finish it, or choose another name=")
    run_dir.mkdir(parents=True, exist_ok=True)
    started, commit = time.time(), git_commit()     # the code as it was when the sweep started
    from omegaconf import OmegaConf
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    searcher, scheduler, param_space, num_samples, total = _make_search(cfg, space, known, done_rows)
    patterns = {d.key: d.pattern for d in known}
    if param_space is not None and num_samples > 0:
        ray.init(address=cfg.ray.address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
        trainable = tune.with_parameters(run_trial, base=base_proxy(cfg), budget=dataclasses.asdict(cfg.budget),
                                         run_dir=str(run_dir))
        trainable = tune.with_resources(trainable, {"cpu": cfg.resources.cpus_per_trial,
                                                    "gpu": cfg.resources.gpus_per_trial})
        estimates = design_estimates(cfg, known, size) if cfg.search.algo == "grid" else {}
        pending = ([estimates[architecture_id(d["spec"], d["knobs"])] for d in param_space["design"]["grid_search"]]
                   if estimates else None)
        past = recorded_correction(cfg) if pending else None
        progress = Progress(name, total, cfg.trainer.epochs, pending=pending, slots=concurrent_trials(cfg),
                            correction=past["ratio"] if past else 1.0)
        writer = RowWriter(run_dir, run_name=name, space=cfg.space, cfg=cfg, patterns=patterns, progress=progress,
                           estimates=estimates)
        progress.show("started" + (": ETA from the plan's calibration" if pending else ""))
        # reuse_actors: one worker process serves trial after trial, instead of importing torch for each.
        tuner = tune.Tuner(trainable, param_space=param_space,
                           tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                                       num_samples=num_samples, reuse_actors=True),
                           run_config=tune.RunConfig(name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}",
                                                     storage_path=str(run_dir / "ray"), verbose=0,
                                                     callbacks=[writer]))
        tuner.fit()
        progress.finish()
        record_correction(cfg, progress.measured, progress.estimated, progress.timed, name)
        # The design timed first (always the same one: rows are read in a fixed order) came out a third slower
        # than its equals in every run while Ray's workers lingered and the first timing paid one-off costs;
        # with Ray shut down and an untimed first pass it times like its equals (1106 vs 1073-1094 img/s).
        ray.shutdown()
    measure_throughput(run_dir, cfg)
    table = write_table(run_dir)
    log_session(run_dir, {"command": command or repr(cfg),
                          "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                          "wall_s": round(time.time() - started, 1), "cpus": os.cpu_count(),
                          "trials_before": len(done_rows), "trials_after": len(table), "commit": commit,
                          **fingerprint()})
    from .report import write_report
    return write_report(run_dir)


def _checked_designs(cfg: SweepConfig, space):
    """The space's designs and the dataset's size, after every check a trial would fail on has passed
    (before any Ray call)."""
    try:
        known = space.designs(cfg)
    except ValueError as error:                     # a SpecError, or a pattern the spec cannot take
        raise SweepError(f"model.spec={cfg.model.spec!r}: {error}") from None
    known = known[:SMOKE["designs"]] if cfg.smoke else known
    base = base_proxy(cfg)
    try:
        size = check_dataset(base)                  # first: a design's head needs the dataset's classes
        check_designs(base, known)
    except PreflightError as error:
        raise SweepError(str(error)) from None
    return known, size


def design_estimates(cfg: SweepConfig, known, size) -> dict:
    """{design key: estimated seconds of one trial}, calibrated on this machine (cached per design)."""
    from .plan import cached_calibration, trial_seconds
    base = base_proxy(cfg)
    return {d.key: trial_seconds(cached_calibration(design_proxy(base, d.spec, d.knobs)), size.n_train,
                                 size.n_val, base["trainer"]) for d in known}


def plan_markdown(cfg: SweepConfig, known, size, done_rows, run_dir) -> str:
    """What plan=true prints: every design with its cost, the trials to run, and the estimated wall time."""
    from .plan import RAY_START_S, makespan
    base, done = base_proxy(cfg), {row["trial_id"] for row in done_rows}
    estimates = design_estimates(cfg, known, size)
    seeds = range(cfg.seeds) if cfg.search.algo == "grid" else range(1)
    lines = [f"# Plan: {cfg.space} -> {run_dir}", "",
             "| design | spec | params | MMACs | seeds to train | already in the run | est. s per trial | budget |",
             "|---|---|---|---|---|---|---|---|"]
    durations = []
    for design in sorted(known, key=lambda d: -expected_cost(d.spec, cfg)):
        measures = static_measures(design_proxy(base, design.spec, design.knobs))
        reason = over_budget(measures, dataclasses.asdict(cfg.budget))
        seconds = estimates[design.key]
        pending = [s for s in seeds if trial_key(design.key, s) not in done]
        durations += [] if reason else [seconds] * len(pending)
        lines.append(f"| {design.pattern} | `{design.spec}` | {measures['params']:,} | "
                     f"{measures['macs_total'] / 1e6:.1f} | {len(pending)} | {len(seeds) - len(pending)} | "
                     f"{seconds:.0f} | {reason or 'ok'} |")
    if cfg.search.algo != "grid":
        mean = sum(durations) / max(1, len(durations))
        durations += [mean] * max(0, cfg.search.num_samples - len(known))
    slots = concurrent_trials(cfg)
    past = recorded_correction(cfg)
    ratio = past["ratio"] if past else 1.0
    wall = makespan(durations, slots) * ratio + (RAY_START_S if durations else 0.0)
    correction = (f" Corrected by x{ratio:.2f}: the last sweep on this machine with {slots} at once (run "
                  f"{past['run']!r}, {past['trials']} trials, {past['when']}) took that much longer than calibrated."
                  if past else f" Not yet corrected: no sweep has run on this machine with {slots} at once, and "
                  "trials sharing the cores (and Ray's own processes) take longer than one step alone (x1.21 "
                  "with 2 at once on the project's 2-core machine); the progress line corrects it as trials end.")
    lines += ["", f"- {len(durations)} trials to train, {slots} at once ({cfg.resources.cpus_per_trial:g} CPUs and "
              f"{cfg.resources.gpus_per_trial:g} GPUs per trial, {os.cpu_count()} CPUs here); "
              f"{sum(durations):,.0f} trial-seconds.",
              f"- Estimated wall time of the training: **{wall / 60:.1f} min** (then the throughput phase and "
              f"the report). Calibrated on this machine: one training step and one evaluation batch per "
              f"design, scaled by {size.n_train // cfg.trainer.batch_size} steps per epoch x "
              f"{cfg.trainer.epochs} epochs and the evaluations." + correction +
              ("" if cfg.search.algo == "grid" else f" {cfg.search.algo}: {cfg.search.num_samples} designs at the "
               "known designs' mean cost; ASHA may stop some early, so this is an upper bound.") +
              (" On a Ray cluster (ray.address) the slots are the cluster's, not these." if cfg.ray.address else "")]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    """The checkout's commit (with +dirty when files differ), so a report says which code made it."""
    import subprocess
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


def measure_throughput(run_dir: Path, cfg: SweepConfig) -> None:
    """After training: img/s (and CUDA peak memory) of each trained design, one at a time, all cores."""
    import torch

    from .measure import peak_memory, throughput
    rows = read_rows(run_dir)
    device = "cuda" if cfg.resources.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    dtype = "bf16" if device == "cuda" else "fp32"
    measured = {}
    for row in rows:
        if row["status"] not in TRAINED or row["throughput_img_s"] is not None:
            continue
        key = (row["spec"], row["knobs"])
        if key not in measured:
            # the model its trials trained: the sweep's mixer knobs under the design's, as trial_proxy merges them
            model, _ = proxy_model(design_proxy(base_proxy(cfg), row["spec"], row["knobs"]))
            size = row["image_size"] or cfg.data.image_size
            # the first timing of a process pays one-off costs: the first design gets 8 more untimed passes
            speed = throughput(model, batch=cfg.throughput_batch, resolution=size, device=device, dtype=dtype,
                               channels_last=device == "cuda", warmup=11 if not measured else 3, iters=10)
            memory = peak_memory(model, batch=cfg.throughput_batch, resolution=size, device=device, dtype=dtype)
            measured[key] = {"throughput_img_s": speed["throughput_img_s"], "throughput_batch": speed["batch"],
                             "throughput_device": speed["device"], "throughput_dtype": dtype,
                             "peak_mem_mb": memory["peak_mem_mb"] if device == "cuda" else None}
        write_row(run_dir, {**row, **measured[key]})


def row_from_trial(run_name, space, cfg, design, patterns, last_result):
    """A results row from a finished Tune trial: its design and the last thing it reported."""
    result = json.loads(last_result["result_json"]) if "result_json" in last_result else None
    if result is None:      # stopped by ASHA between epochs: its last epoch report is its record
        result = {"status": "stopped_early", "epochs_done": last_result.get("epoch"),
                  "val_acc_best": last_result.get("val_acc_best"), "val_acc_final": last_result.get("val_acc"),
                  "val_loss_final": last_result.get("val_loss"), "train_loss": last_result.get("train_loss"),
                  "train_time_s": last_result.get("train_time_s")}
    key = design_key(design)
    return {
        "run": run_name, "trial_id": trial_key(key, design["seed"]), "space": space, "spec": design["spec"],
        "pattern": patterns.get(key, design["pattern"]), "knobs": design["knobs"], "seed": design["seed"],
        "data_seed": data_seed(ProxyConfig(data=cfg.data, seed=design["seed"])), "dataset": cfg.data.name,
        "image_size": cfg.data.image_size, "epochs_done": result.get("epochs_done"), "status": result.get("status"),
        "error": result.get("error"), **{metric: result.get(metric) for metric in METRIC_COLUMNS},
        "train_loss": result.get("train_loss"), "params": last_result.get("params"),
        "macs_total": last_result.get("macs_total"), "macs_scan": last_result.get("macs_scan"),
        "train_time_s": result.get("train_time_s"), "history": result.get("history"),
        "data_digest": result.get("data_digest"), **fingerprint(),
    }
