"""The estimate behind plan=true and the progress line's ETA: what one trial of a design costs on this machine.

Calibrated here: the trial's own training step (ablate.train.train_step: its optimizer, autocast, label smoothing
and clipping), timed once after one untimed step in the process, and one timed evaluation batch, per design, at
the trial's batch size and threads, scaled by the trial's steps and evaluations. Calibrations are cached per
machine and design ($ABLATE_CACHE/plan_calibration.json), so a second plan is instant. Trials are then packed onto
the slots the sweep would run at once, slowest first, as the sweep orders them; after a sweep, the ratio of its
measured to its estimated trial time is kept per machine, concurrency and proxy, and corrects the next estimate.
"""
import dataclasses
import functools
import gc
import heapq
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .build import epoch_steps, proxy_model, resolve_device
from .data.base import cache_dir
from .files import write_atomic
from .ladder import ladder_cost
from .proxy import ProxyConfig, TrainerConfig
from .step_graph import WARMUP_STEPS
from .train import Diverged, make_optimizer, mixed_precision, step_runner, trial_rungs, trunk_evaluations
from .timing import synchronize

RAY_START_S = 15.0          # Ray's start-up and shutdown around the trials, as seen in the default run's log
# What a trial's process holds on its GPU besides its tensors (CUDA context and kernels), which the allocator's
# figures do not count: an allowance, not measured here (no GPU has been lent to measure it with this code); the
# gpu_feed report saw 3.3 GiB per process in all for the CIFAR-100 proxy.
CUDA_CONTEXT_MB = 600
_warmed_up = set()          # the devices this process has already run a training step on


@functools.lru_cache(maxsize=None)
def machine_id() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} | {os.cpu_count()} cpus | torch {torch.__version__}"


def _calibration_key(proxy: ProxyConfig, seeds: int = 1) -> str:
    t = proxy.trainer
    key = [machine_id(), dataclasses.asdict(proxy.model), t.batch_size, t.threads, t.device, t.channels_last,
           proxy.data.image_size] + (["cuda graph"] if t.cuda_graph and t.device == "cuda" else [])
    return json.dumps(key + ([seeds] if seeds > 1 else []), sort_keys=True)


def _memory_format(proxy: ProxyConfig):
    import torch
    return torch.channels_last if proxy.trainer.channels_last else torch.contiguous_format


def timed_steps(step: Callable[[str], object], device, steps: int) -> List[float]:
    """Seconds of each of ``steps`` calls of ``step`` (the trial's own training step, given where it is)."""
    times = []
    for index in range(steps):
        start = time.perf_counter()
        try:
            step(f"calibration step {index + 1}")
        except Diverged:        # a diverging trial stops at this step too: what ran so far is its cost
            pass
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def calibration_batch(proxy: ProxyConfig, device):
    """A batch of the trial's size, shape and memory format: random images (B, 3, H, W) and labels."""
    import torch
    t, size = proxy.trainer, proxy.data.image_size
    x = torch.randn(t.batch_size, 3, size, size, device=device).contiguous(memory_format=_memory_format(proxy))
    return x, torch.randint(0, 2, (t.batch_size,), device=device)


def trial_step(proxy: ProxyConfig, seeds: int, device):
    """A trial's training step and its evaluation forward, each a callable on one random batch of the trial's
    shape, what they train, and the StepRunner that steps it: one model (train.train_step), or, for ``seeds`` > 1,
    the fused seeds (fused.StackedModels) on that batch for each seed; a CUDA graph of either where the trial's
    would be one."""
    t = proxy.trainer
    x, y = calibration_batch(proxy, device)
    if seeds == 1:
        model = proxy_model(proxy).to(device, memory_format=_memory_format(proxy))
        runner = step_runner(model, make_optimizer(model, t), proxy, device)
        return (lambda where: runner.step(x, y, t.lr, where), lambda: model.eval()(x), model, runner)
    from .fused import StackedModels
    stack = StackedModels([proxy_model(proxy).to(device) for _ in range(seeds)], t)
    xs, ys = x.expand(seeds, *x.shape).contiguous(), y.expand(seeds, *y.shape)       # (S, B, 3, H, W), (S, B)
    runner = stack.runner()
    return (lambda where: runner.step(xs, ys, t.lr, where), lambda: (stack.module.eval(), stack.forward(xs)), stack,
            runner)


def calibrate(proxy: ProxyConfig, seeds: int = 1) -> Dict[str, Optional[float]]:
    """Seconds of one training step and of evaluating one image, timed on this machine (after a warm-up step),
    and on CUDA the training's peak memory (MiB the caching allocator reserved: the weights, the optimizer's
    state and the step's activations); of a trial of one seed, or of ``seeds`` fused."""
    import torch
    t = proxy.trainer
    torch.set_num_threads(t.threads)
    device = resolve_device(t.device)
    if device.type == "cuda":               # from what this design holds, not what an earlier one left cached
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step, forward, _, runner = trial_step(proxy, seeds, device)
    # A process's first step pays one-off costs (thread pools, kernels); a later model's first step does not
    # (measured: within the step-to-step spread), so only the process's first calibration steps twice. A CUDA
    # graph's steps are timed once captured: its eager warm-up steps and the capture first.
    untimed = WARMUP_STEPS + 1 if runner.graphed else 0
    times = timed_steps(step, device, untimed + (1 if device.type in _warmed_up else 2))
    _warmed_up.add(device.type)
    peak_mb = torch.cuda.max_memory_reserved(device) / 2 ** 20 if device.type == "cuda" else None
    with torch.no_grad(), mixed_precision(device.type == "cuda"):
        start = time.perf_counter()
        forward()
        synchronize(device)
        eval_s = (time.perf_counter() - start) / t.batch_size
    if device.type == "cuda":               # the trials, in other processes, get the GPU's memory back
        del step, forward, _, runner        # the model or stack, and the graph with its memory pool
        gc.collect()
        torch.cuda.empty_cache()
    return {"step_s": times[-1], "eval_s_per_image": eval_s, "peak_train_mb": peak_mb}


def cached_calibration(proxy: ProxyConfig, seeds: int = 1) -> Dict[str, float]:
    """calibrate(proxy, seeds), cached per machine, design and trial shape."""
    path = cache_dir() / "plan_calibration.json"
    cache = json.loads(path.read_text()) if path.is_file() else {}
    key = _calibration_key(proxy, seeds)
    if "peak_train_mb" not in cache.get(key, {}):          # absent, or calibrated before peaks were recorded
        cache[key] = calibrate(proxy, seeds)
        write_atomic(path, json.dumps(cache))
    return cache[key]


def trial_seconds(calibration: dict, n_train: int, n_val: int, trainer: TrainerConfig) -> float:
    """One trial: the training steps of its budget ladder (the trunk and the branches' cooldowns) and its
    evaluations (after each epoch and each budget's late evaluations)."""
    steps_per_epoch = epoch_steps(n_train, trainer.batch_size)
    rungs = trial_rungs(trainer, steps_per_epoch)
    evaluations = (len(trunk_evaluations(rungs, steps_per_epoch, trainer.epochs))
                   + sum(len(rung.late) for rung in rungs[:-1]))
    return ladder_cost(rungs) * calibration["step_s"] + evaluations * n_val * calibration["eval_s_per_image"]


def makespan(durations: List[float], slots: int) -> float:
    """Wall time of trials started longest first, each on the first free slot."""
    finish = [0.0] * max(1, slots)
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(finish, finish[0] + duration)
    return max(finish)


def gpu_memory_misfit(peaks_mb: Dict[str, Optional[float]], gpus_per_trial: float, gpu_mb: float,
                      gpu_name: str) -> str:
    """Why the trials that share one GPU would not fit in its memory, or "" when they do. `peaks_mb`: each design's
    calibrated peak training memory; Ray packs int(1 / gpus_per_trial) trials on a GPU, in the worst case all of
    the design that needs the most, each with its process's CUDA context."""
    known = {design: peak for design, peak in peaks_mb.items() if peak is not None}
    if not known:
        return ""
    design = max(known, key=known.get)
    per_trial = known[design] + CUDA_CONTEXT_MB
    per_gpu = max(1, int(1 / gpus_per_trial + 1e-9))
    if per_gpu * per_trial <= gpu_mb:
        return ""
    fits = int(gpu_mb // per_trial)
    change = "lower trainer.batch_size or model.dim: one trial alone does not fit"
    if fits >= 1:
        share = math.floor(1e4 / fits) / 1e4    # rounded down, so that Ray packs `fits` trials, not one fewer
        change = f"raise resources.gpus_per_trial to {share:g} ({fits} per GPU fit) or lower trainer.batch_size"
    trials = f"{per_gpu} trial{'s' if per_gpu > 1 else ''}"
    return (f"resources.gpus_per_trial={gpus_per_trial:g} puts {trials} on each GPU, and design {design!r} "
            f"needs {per_gpu} x ({known[design]:,.0f} MiB peak in training + {CUDA_CONTEXT_MB} MiB CUDA context) = "
            f"{per_gpu * per_trial:,.0f} MiB, over the {gpu_mb:,.0f} MiB of the {gpu_name}: {change}")


# resources.gpus_per_trial=auto: how many trials share a GPU, from what the plan calibrates on this machine's GPU.
GPU_MEMORY_FILL = 0.9        # of a GPU's memory the packed trials may plan to hold (the allocator fragments)
MAX_TRIALS_PER_GPU = 8
SPEED_PROBE = MAX_TRIALS_PER_GPU   # the speed bound times a stack of this many trials' seeds against one trial's


@dataclasses.dataclass
class GpuPacking:
    """Trials per GPU for resources.gpus_per_trial=auto: the fewest that memory, the CPUs and the GPU's speed allow."""
    trials: int
    bounds: Dict[str, int]   # memory, cpus, speed -> trials per GPU each allows
    why: Dict[str, str]      # the same keys -> the figures behind each bound

    @property
    def share(self) -> float:
        """The gpus_per_trial Ray packs ``trials`` with (rounded down, so that it packs that many, not one fewer)."""
        return math.floor(1e4 / self.trials) / 1e4

    def describe(self) -> str:
        bounds = "; ".join(f"{name} {self.bounds[name]} ({self.why[name]})" for name in self.bounds)
        return (f"resources.gpus_per_trial=auto: {self.trials} trials per GPU (gpus_per_trial={self.share:g}), the "
                f"fewest of {bounds}; at most {MAX_TRIALS_PER_GPU}")


def speed_bound(step_s: float, probe_step_s: Optional[float]) -> Optional[int]:
    """Trials a GPU can run side by side before its arithmetic, not their kernel launches, is the limit. A stack of
    SPEED_PROBE trials' seeds keeps the GPU busier than one trial: the GPU time one trial's step needs is at most
    probe_step_s / SPEED_PROBE, so one trial leaves it idle for the rest of its step_s, and about
    step_s / (probe_step_s / SPEED_PROBE) trials fill it. None when the probe could not run (out of memory)."""
    if probe_step_s is None:
        return None
    return max(1, min(SPEED_PROBE, int(step_s * SPEED_PROBE / probe_step_s)))


def packing_calibration(proxy: ProxyConfig, seeds: int) -> dict:
    """What gpu_packing needs of a design on this GPU: its trial's calibration (of ``seeds`` fused, or one) and the
    step of a stack of SPEED_PROBE trials' seeds (None where that does not fit: speed is then not the bound)."""
    import torch
    trial = cached_calibration(proxy, seeds)
    try:
        probe = cached_calibration(proxy, seeds * SPEED_PROBE)["step_s"]
    except torch.cuda.OutOfMemoryError:
        probe = None
        torch.cuda.empty_cache()
    return {**trial, "probe_step_s": probe}


def gpu_packing(designs: Dict[str, dict], gpu_mb: float, cpus_per_gpu: float) -> GpuPacking:
    """``designs``: name -> {"peak_train_mb", "step_s", "probe_step_s"} of one trial on this GPU (a fused trial
    where seeds are fused). The trials a GPU holds: the hungriest design's must fit GPU_MEMORY_FILL of its memory
    (each with its CUDA context), each needs its CPUs, and the slowest design to saturate the GPU sets the speed
    bound (the worst case: every trial on the GPU may be of that design)."""
    hungriest = max(designs, key=lambda name: designs[name]["peak_train_mb"])
    per_trial = designs[hungriest]["peak_train_mb"] + CUDA_CONTEXT_MB
    bounds = {"memory": int(GPU_MEMORY_FILL * gpu_mb // per_trial), "cpus": int(cpus_per_gpu)}
    why = {"memory": f"{GPU_MEMORY_FILL:.0%} of {gpu_mb:,.0f} MiB / ({designs[hungriest]['peak_train_mb']:,.0f} MiB "
                     f"peak of {hungriest} + {CUDA_CONTEXT_MB} MiB CUDA context)",
           "cpus": f"{cpus_per_gpu:g} CPUs per GPU for the trials"}
    speeds = {name: speed_bound(d["step_s"], d.get("probe_step_s")) for name, d in designs.items()}
    known = {name: bound for name, bound in speeds.items() if bound is not None}
    if known:
        name = min(known, key=known.get)
        d = designs[name]
        bounds["speed"] = known[name]
        why["speed"] = (f"{name}: a trial's step {d['step_s'] * 1e3:.1f} ms, {SPEED_PROBE} trials' seeds stacked "
                        f"{d['probe_step_s'] * 1e3:.1f} ms")
    trials = max(1, min(MAX_TRIALS_PER_GPU, *bounds.values()))
    return GpuPacking(trials, bounds, why)


def concurrent_trials(cfg) -> int:
    """How many trials a local Ray runs at once: the CPUs (or GPUs) divided by what each trial asks for (an
    unresolved gpus_per_trial=auto counts one trial per GPU)."""
    slots = int((os.cpu_count() or 1) // cfg.resources.cpus_per_trial)
    if cfg.uses_gpu():
        import torch
        share = 1.0 if cfg.resources.gpus_per_trial == "auto" else cfg.resources.gpus_per_trial
        slots = min(slots, int(torch.cuda.device_count() / share))
    return max(1, slots)


def _correction_key(cfg) -> str:
    """This machine, this many trials at once, and this proxy (model, data, trainer, resources): trials of another
    size have other fixed costs (a smoke trial is mostly start-up), so their ratio says nothing here."""
    setup = {part: dataclasses.asdict(getattr(cfg, part)) for part in ("model", "data", "trainer", "resources")}
    return json.dumps([machine_id(), concurrent_trials(cfg), setup], sort_keys=True)


def _corrections_path() -> Path:
    return cache_dir() / "plan_corrections.json"


def record_correction(cfg, measured_s: float, estimated_s: float, trials: int, run: str) -> None:
    """After a sweep: how long its trials took against their calibrated estimates, on this machine with this many
    trials at once and this proxy (what one step alone cannot see: start-up, trials and Ray's own processes
    sharing the cores)."""
    if trials == 0 or estimated_s <= 0:
        return
    path = _corrections_path()
    corrections = json.loads(path.read_text()) if path.is_file() else {}
    corrections[_correction_key(cfg)] = {"ratio": measured_s / estimated_s, "trials": trials, "run": run,
                                         "when": time.strftime("%Y-%m-%d %H:%M")}
    write_atomic(path, json.dumps(corrections, indent=1))


def recorded_correction(cfg) -> Optional[dict]:
    """The last sweep's measured/estimated ratio on this machine at this concurrency and proxy, or None."""
    path = _corrections_path()
    return json.loads(path.read_text()).get(_correction_key(cfg)) if path.is_file() else None
