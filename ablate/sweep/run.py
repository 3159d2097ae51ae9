"""run_sweep: check everything, lock the run, train what is pending under Ray Tune, then measure throughput and
write the table. The report is written by the caller (run_sweep.py), one layer up."""
import dataclasses
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..calibration import concurrent_trials, record_correction, recorded_correction
from ..config import SMOKE, SweepConfig, apply_smoke, describe_smoke, save_run_config
from ..preflight import DatasetSize, PreflightError, check_dataset, check_designs, check_device
from ..progress import Progress
from ..results import FAILED, ResultRow, fingerprint, log_session, write_table
from ..space import Design, Space, get_space
from ..spec import SpecError, parse_spec
from .planning import check_gpu_memory, design_estimates, plan_markdown, resolve_gpu_share
from .resolutions import run_resolutions
from .store import RunStore, SweepError
from .throughput import measure_throughput


# Tune writes its trial directories (Tune's CSV and JSON logs, TensorBoard's event files) in its session's staging
# directory and copies them into runs/<name>/ray/ at most this often (Ray's default: 5 minutes), and at the end.
TUNE_SYNC_S = 30


@dataclasses.dataclass
class Sweep:
    """A checked sweep: its config, space, designs, dataset size and run directory."""
    cfg: SweepConfig
    space: Space
    designs: List[Design]
    size: DatasetSize
    store: RunStore

    @property
    def name(self) -> str:
        return self.store.run_dir.name


def run_sweep(cfg: SweepConfig, command: str = "") -> Optional[Path]:
    """Train every pending trial, measure throughput and write the results table; returns the run directory
    (None for plan=true, which prints the plan and trains nothing). With resolutions=, one sub-sweep per size."""
    if cfg.resolutions:
        return run_resolutions(cfg, command, run_sweep)
    sweep = prepare(cfg)
    if cfg.plan:
        print(plan_markdown(sweep.cfg, sweep.designs, sweep.size, sweep.store.rows(), sweep.store.run_dir))
        return None
    sweep.store.check_writable()
    sweep.cfg, packing = resolve_gpu_share(sweep.cfg, sweep.designs)
    if packing:
        print(packing, flush=True)
    check_gpu_memory(sweep.cfg, sweep.designs)
    sweep.store.lock()
    try:
        started, commit = time.time(), git_commit()      # the code as it was when the sweep started
        done_rows = resumable_rows(sweep)
        save_run_config(sweep.store.run_dir, sweep.cfg)
        tracking = train(sweep, done_rows)
        measure_throughput(sweep.store, sweep.cfg)
        table = write_table(sweep.store.run_dir)
        log_session(sweep.store.run_dir, {
            "command": command or repr(sweep.cfg), "wall_s": round(time.time() - started, 1),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)), "cpus": os.cpu_count(),
            "trials_before": len(done_rows), "trials_after": len(table), "commit": commit, "tracking": tracking,
            **fingerprint()})
    finally:
        sweep.store.unlock()
    return sweep.store.run_dir


def prepare(cfg: SweepConfig) -> Sweep:
    """Every check a trial would fail on, before any Ray call: smoke's changes said, every design built on the
    meta device, the dataset loaded."""
    if cfg.smoke:
        print(describe_smoke(cfg), flush=True)
        cfg = apply_smoke(cfg)
    space = get_space(cfg.space)
    try:
        designs = space.designs(cfg)
    except ValueError as error:                     # a SpecError, or a pattern the spec cannot take
        raise SweepError(f"model.spec={cfg.model.spec!r}: {error}") from None
    designs = _chosen(designs, cfg.designs)
    designs = designs[:SMOKE["designs"]] if cfg.smoke else designs
    base = cfg.trial_proxy()
    try:
        check_device(base, local=cfg.ray.address is None, plan=cfg.plan)
        size = check_dataset(base)                  # first: a design's head needs the dataset's classes
        check_designs(base, designs)
    except PreflightError as error:
        raise SweepError(str(error)) from None
    run_dir = (Path(cfg.runs_dir) / (cfg.name or cfg.space)).resolve()
    return Sweep(cfg, space, designs, size, RunStore(run_dir))


def _chosen(designs: list, requested: List[str]) -> list:
    """The designs named by ``designs=``: a label of the space's designs, or a spec (a design a search found:
    the space's own design with that spec, else a new one labelled 'search'); all of them when none is named."""
    if not requested:
        return designs
    by_label, by_spec = {d.pattern: d for d in designs}, {d.spec: d for d in designs}
    chosen = []
    for entry in requested:
        if entry in by_label:
            chosen.append(by_label[entry])
            continue
        try:
            spec = parse_spec(entry).canonical
        except SpecError:
            raise SweepError(f"designs: {entry!r} is neither a design of the space nor a spec; valid labels: "
                             f"{', '.join(by_label)}") from None
        chosen.append(by_spec.get(spec) or Design.make("search", spec))
    return chosen


def resumable_rows(sweep: Sweep) -> List[ResultRow]:
    """The rows already in the run: refused without resume=true, so no finished trial is mixed up by accident."""
    rows = sweep.store.rows()
    if rows and not sweep.cfg.resume:
        raise SweepError(f"run {sweep.name!r} already has {len(rows)} finished trials in {sweep.store.run_dir}; "
                         f"add resume=true to finish it, or choose another name=")
    crashed = sum(row.crashed for row in rows)
    failed = sum(row.status == FAILED and not row.crashed for row in rows)
    if crashed or failed:
        print(f"resume=true: {crashed} trials that crashed (their process or node lost past the retries) are trained "
              f"again; {failed} that failed on their own (diverged, a bad spec or data) are left as they are",
              flush=True)
    return rows


def train(sweep: Sweep, done_rows: List[ResultRow]) -> Dict[str, str]:
    """Every pending trial under Ray Tune, a row written by the driver as each ends; returns where each tracker
    (tracking=...) put its runs, by name."""
    import ray
    from ray import tune

    from .callbacks import RowWriter, StopOnFailure
    from .driver_disk import start_driver_disk
    from .search import grid_plan, optuna_plan
    from .tracking import logger_callbacks, make_trackers, trial_name, tune_environment
    from .trial import run_trial
    cfg = sweep.cfg
    grid = cfg.search.algo == "grid"
    plan = (grid_plan(cfg, sweep.space, sweep.designs, done_rows) if grid
            else optuna_plan(cfg, sweep.space, sweep.designs, done_rows, sweep.store.run_dir))
    if plan.param_space is None or plan.num_samples == 0:
        return {}
    trackers = make_trackers(sweep)
    ray.init(address=cfg.ray.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    disk, filesystem = start_driver_disk(cluster=cfg.ray.address is not None)   # the handle keeps it alive
    trainable = tune.with_parameters(run_trial, base=cfg.trial_proxy(), budget=cfg.budget)
    trainable = tune.with_resources(trainable, {"cpu": cfg.resources.cpus_per_trial,
                                                "gpu": cfg.resources.gpus_per_trial, **cfg.resources.custom})
    progress, estimates = start_progress(sweep, plan, grid)
    writer = RowWriter(sweep.store, sweep.name, cfg.space, cfg, {d.key: d.pattern for d in sweep.designs},
                       progress, estimates, early_stopping=plan.scheduler is not None)
    # reuse_actors: one worker process serves trial after trial, instead of importing torch for each.
    tuner = tune.Tuner(trainable, param_space=plan.param_space,
                       tune_config=tune.TuneConfig(search_alg=plan.search_alg, scheduler=plan.scheduler,
                                                   num_samples=plan.num_samples, reuse_actors=True,
                                                   trial_name_creator=trial_name, trial_dirname_creator=trial_name),
                       run_config=tune.RunConfig(name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}",
                                                 storage_path=str(sweep.store.run_dir / "ray"),
                                                 storage_filesystem=filesystem, verbose=0,
                                                 callbacks=[writer, *logger_callbacks(trackers)],
                                                 stop=StopOnFailure(writer), sync_config=tune.SyncConfig(
                                                     sync_period=TUNE_SYNC_S),
                                                 failure_config=tune.FailureConfig(
                                                     max_failures=cfg.resources.max_retries)))
    try:
        with tune_environment(trackers):
            tuner.fit()
    finally:
        # The design timed first came out a third slower than its equals while Ray's workers lingered; with Ray
        # shut down (and an untimed first pass) it times like its equals (1106 vs 1073-1094 img/s).
        ray.shutdown()
    if writer.failure is not None:
        raise writer.failure
    progress.finish()
    record_correction(cfg, progress.measured, progress.estimated, progress.timed, sweep.name)
    return {name: tracker.view for name, tracker in trackers.items()}


def start_progress(sweep: Sweep, plan, grid: bool) -> Tuple[Progress, dict]:
    """The progress line, its ETA from the plan's calibration for a grid (and the last sweep's correction)."""
    cfg = sweep.cfg
    estimates = design_estimates(cfg, sweep.designs, sweep.size) if grid else {}
    pending = [estimates[trial.design.key] for trial in plan.grid for _ in trial.seeds] if estimates else None
    past = recorded_correction(cfg) if pending else None
    progress = Progress(sweep.name, plan.trials, cfg.trainer.epochs, pending=pending, slots=concurrent_trials(cfg),
                        correction=past["ratio"] if past else 1.0)
    progress.show("started" + (": ETA from the plan's calibration" if pending else ""))
    return progress, estimates


def git_commit() -> str:
    """The checkout's commit (with +dirty when files differ), so a report says which code made it."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"
