"""plan=true: the sweep as it would run, what each design costs, and the estimated wall time (no Ray, no
training). The per-design estimates also start the progress line's ETA."""
import dataclasses
import os
from pathlib import Path
from typing import Dict, List, Tuple

from ..calibration import (RAY_START_S, cached_calibration, concurrent_trials, gpu_memory_misfit, gpu_packing,
                           makespan, packing_calibration, recorded_correction, trial_seconds)
from ..config import SweepConfig, seed_range
from ..preflight import DatasetSize
from ..results import ResultRow, trial_key
from ..space import Design
from .store import SweepError
from .trial import expected_cost, static_measures


def trial_seeds(cfg: SweepConfig) -> int:
    """The seeds one trial trains: all of a design's when they are fused (cfg.fuses_seeds()), else one."""
    return cfg.seeds if cfg.fuses_seeds() else 1


def design_estimates(cfg: SweepConfig, known: List[Design], size: DatasetSize) -> Dict[str, float]:
    """{design key: estimated seconds of one seed's row}, calibrated on this machine (cached per design): a
    trial's, or a fused trial's share per seed."""
    base, seeds = cfg.trial_proxy(), trial_seeds(cfg)
    return {d.key: trial_seconds(cached_calibration(base.for_design(d), seeds), size.n_train, size.n_val,
                                 base.trainer) / seeds for d in known}


def resolve_gpu_share(cfg: SweepConfig, designs: List[Design]) -> Tuple[SweepConfig, str]:
    """resources.gpus_per_trial=auto made a number from each design's trial calibrated on this machine's GPU
    (calibration.gpu_packing), with the line that says why; any other config as it is, with no line."""
    import torch
    if cfg.resources.gpus_per_trial != "auto":
        return cfg, ""
    if not torch.cuda.is_available():
        raise SweepError("resources.gpus_per_trial=auto is chosen from a calibration on this machine's GPU, and it has "
                         "none; give the share, e.g. resources.gpus_per_trial=0.25 for four trials per GPU")
    base, seeds = cfg.trial_proxy(), trial_seeds(cfg)
    calibrated = {f"{d.pattern} ({d.spec})": packing_calibration(base.for_design(d), seeds) for d in designs}
    gpu = torch.cuda.get_device_properties(0)
    cpus_per_gpu = (os.cpu_count() or 1) / cfg.resources.cpus_per_trial / torch.cuda.device_count()
    packing = gpu_packing(calibrated, gpu.total_memory / 2 ** 20, cpus_per_gpu)
    resources = dataclasses.replace(cfg.resources, gpus_per_trial=packing.share)
    return dataclasses.replace(cfg, resources=resources), packing.describe()


def check_gpu_memory(cfg: SweepConfig, designs: List[Design]) -> None:
    """Refuse, before Ray starts, a sweep whose trials sharing a GPU would not fit in its memory (each design's
    peak calibrated on this machine's GPU, for a trial of its fused seeds where they are fused; with a cluster and
    no GPU here nothing is known, and nothing checked)."""
    import torch
    base = cfg.trial_proxy()
    if base.trainer.device != "cuda" or not torch.cuda.is_available():
        return
    gpu = torch.cuda.get_device_properties(0)
    peaks = {f"{d.pattern} ({d.spec})": cached_calibration(base.for_design(d), trial_seeds(cfg))["peak_train_mb"]
             for d in designs}
    misfit = gpu_memory_misfit(peaks, cfg.resources.gpus_per_trial, gpu.total_memory / 2 ** 20, gpu.name)
    if misfit:
        raise SweepError(misfit)


def plan_markdown(cfg: SweepConfig, known: List[Design], size: DatasetSize, done_rows: List[ResultRow],
                  run_dir: Path) -> str:
    """What plan=true prints: every design with its cost, the trials to run, and the estimated wall time."""
    cfg, packing = resolve_gpu_share(cfg, known)
    check_gpu_memory(cfg, known)
    done = {row.trial_id for row in done_rows}
    estimates = design_estimates(cfg, known, size)
    seeds = seed_range(cfg) if cfg.search.algo == "grid" else range(1)
    lines = [f"# Plan: {cfg.space} -> {run_dir}", "",
             "| design | spec | params | MMACs | seeds to train | already in the run | est. s per seed | budget |",
             "|---|---|---|---|---|---|---|---|"]
    durations = []
    for design in sorted(known, key=lambda d: -expected_cost(d.spec, cfg)):
        measures = static_measures(cfg.trial_proxy().for_design(design))
        reason = measures.over(cfg.budget)
        seconds = estimates[design.key]
        pending = [s for s in seeds if trial_key(design.key, s) not in done]
        durations += [] if reason else [seconds * len(group) for group in cfg.seed_groups(pending)]
        lines.append(f"| {design.pattern} | `{design.spec}` | {measures.params:,} | "
                     f"{measures.macs_total / 1e6:.1f} | {len(pending)} | {len(seeds) - len(pending)} | "
                     f"{seconds:.0f} | {reason or 'ok'} |")
    if cfg.search.algo != "grid":
        mean = sum(durations) / max(1, len(durations))
        durations += [mean] * max(0, cfg.search.num_samples - len(known))
    packed = [f"- {packing}"] if packing else []
    return "\n".join(lines + [""] + packed + _wall_time_lines(cfg, durations, size)) + "\n"


def _wall_time_lines(cfg: SweepConfig, durations: List[float], size: DatasetSize) -> List[str]:
    slots = concurrent_trials(cfg)
    past = recorded_correction(cfg)
    ratio = past["ratio"] if past else 1.0
    wall = makespan(durations, slots) * ratio + (RAY_START_S if durations else 0.0)
    correction = (f" Corrected by x{ratio:.2f}: the last sweep of this proxy on this machine with {slots} at once "
                  f"(run {past['run']!r}, {past['trials']} trials, {past['when']}) took that much longer than "
                  "calibrated." if past else
                  f" Not yet corrected: no sweep of this proxy has run on this machine with {slots} at once, and "
                  "trials take longer than one step alone shows (start-up, trials and Ray's own processes sharing "
                  "the cores: x1.08-1.21 for the default sweep on the project's 2-core machine, x1.5 for smoke's "
                  "tiny trials); the progress line corrects it as trials end.")
    search = ("" if cfg.search.algo == "grid" else f" {cfg.search.algo}: {cfg.search.num_samples} designs at the "
              "known designs' mean cost; ASHA may stop some early, so this is an upper bound.")
    cluster = " On a Ray cluster (ray.address) the slots are the cluster's, not these." if cfg.ray.address else ""
    fused = f" (each a design's {cfg.seeds} seeds fused into one model)" if cfg.fuses_seeds() else ""
    return [f"- {len(durations)} trials to train{fused}, {slots} at once ({cfg.resources.cpus_per_trial:g} CPUs and "
            f"{cfg.resources.gpus_per_trial:g} GPUs per trial, {os.cpu_count()} CPUs here); "
            f"{sum(durations):,.0f} trial-seconds.",
            f"- Estimated wall time of the training: **{wall / 60:.1f} min** (then the throughput phase, whose "
            f"timed rounds stop after {cfg.throughput.max_seconds:g} s at most once {cfg.throughput.min_rounds} have "
            f"run, and the report). Calibrated on this machine: one training step and one evaluation batch per design, scaled "
            f"by {size.n_train // cfg.trainer.batch_size} steps per epoch x {cfg.trainer.epochs} epochs and the "
            f"evaluations." + correction + search + cluster]
