"""Throughput of several models timed in interleaved rounds, each model's figure a median with a confidence interval.

One timing of a model on a shared CPU moves by about 20% from one repetition to the next (clock frequency, caches,
other tenants drift), so timing each design once, one after another, lets whichever design ran in a fast moment look
faster. Here every model is timed once in each of several rounds, in a rotated order (ABC, BCA, CAB, ...), so a slow
moment falls on all of them alike; a model's figure is the median of its rounds, with the distribution-free
(order-statistic) confidence interval of that median from scipy.stats.quantile_test. The rounds go on until every
interval is narrow enough, or a time cap or a round cap is reached; the Timings say which.

No torch at import: the sweep's config holds a ThroughputConfig and is read without torch.
"""
import dataclasses
import math
import time
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

if TYPE_CHECKING:
    import torch

STOP_NARROW, STOP_TIME, STOP_ROUNDS = "intervals narrow", "time cap", "round cap"   # why the rounds ended
CUDA_WARMUP_S = 2.0   # on the H100, the first rows after idle ran at a third of their settled speed


@dataclasses.dataclass
class ThroughputConfig:
    """How the sweep's throughput phase times its designs (keys throughput.*)."""
    batch: int = 64
    passes: int = 2             # timed forward passes per model per round; the round's figure is their mean rate
    warmup: int = 3             # untimed passes per model before the first round
    # the fewest rounds: 6 is the fewest whose extremes bound the median with 95% confidence (1 - 2 / 2**6 = 0.97)
    min_rounds: int = 6
    max_rounds: int = 40
    max_seconds: float = 40.0   # timed rounds stop once this has passed (after min_rounds), narrow or not
    target: float = 0.05        # stop once every interval's half-width is at most this fraction of its median
    confidence: float = 0.95


def rounds_for(confidence: float) -> int:
    """The fewest rounds whose median has a two-sided interval at ``confidence``: the smallest n with
    1 - 2 / 2**n >= confidence (the interval from the smallest to the largest of n values)."""
    return max(1, math.ceil(math.log2(2 / (1 - confidence))))


def check_throughput(settings: ThroughputConfig) -> None:
    """Raise ValueError naming the first bad throughput.* setting and what is valid."""
    fewest = rounds_for(settings.confidence) if 0 < settings.confidence < 1 else None
    checks = [
        (settings.batch >= 1, f"throughput.batch={settings.batch}; need at least 1"),
        (settings.passes >= 1, f"throughput.passes={settings.passes}; need at least 1"),
        (settings.warmup >= 0, f"throughput.warmup={settings.warmup}; need 0 or more"),
        (fewest is not None, f"throughput.confidence={settings.confidence}; need a level between 0 and 1, e.g. 0.95"),
        (fewest is None or settings.min_rounds >= fewest,
         f"throughput.min_rounds={settings.min_rounds}; a median's {settings.confidence:.0%} interval needs at least "
         f"{fewest} rounds"),
        (settings.max_rounds >= settings.min_rounds,
         f"throughput.max_rounds={settings.max_rounds}; need at least throughput.min_rounds={settings.min_rounds}"),
        (settings.max_seconds > 0, f"throughput.max_seconds={settings.max_seconds}; must be > 0"),
        (settings.target > 0, f"throughput.target={settings.target}; must be > 0 (a fraction of the median, "
                              f"e.g. 0.05)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class MedianInterval:
    """The median of some values and its confidence interval (NaN bounds where there are too few values)."""
    median: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """The interval's larger half, as a fraction of the median (NaN without an interval)."""
        return max(self.median - self.low, self.high - self.median) / self.median

    def overlaps(self, other: "MedianInterval") -> bool:
        return self.low <= other.high and other.low <= self.high


def median_interval(values, confidence: float = 0.95) -> MedianInterval:
    """The median and its distribution-free confidence interval: the order statistics around the median that
    scipy.stats.quantile_test gives at ``confidence`` (exact for any continuous distribution of the values)."""
    import numpy as np
    from scipy import stats

    values = np.asarray(values, dtype=float)
    median = float(np.median(values))
    interval = stats.quantile_test(values, q=median, p=0.5).confidence_interval(confidence)
    return MedianInterval(median, float(interval.low), float(interval.high))


@dataclasses.dataclass(frozen=True)
class Timed:
    """One model's timings: img/s in each round (in round order), their median with its interval, and on CUDA the
    allocator's peak memory above the model's resting memory in each round (MB), else None."""
    rates: Tuple[float, ...]
    speed: MedianInterval
    peak_mem_mb: Optional[MedianInterval]


@dataclasses.dataclass(frozen=True)
class Timings:
    """Every model's Timed, the rounds run, why they stopped, and the seconds the rounds took (warm-up not
    included)."""
    models: Dict[str, Timed]
    rounds: int
    stop: str
    seconds: float
    warmup_passes: int


def default_warmup_s(device) -> float:
    """Seconds of warm-up at least: CUDA_WARMUP_S on CUDA, none on CPU."""
    import torch
    return CUDA_WARMUP_S if torch.device(device).type == "cuda" else 0.0


# the dtypes timed and measured, each with the torch dtype autocast runs in (named: no torch at import)
AUTOCAST_DTYPES = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


def autocast(device, dtype: str):
    """Autocast to ``dtype`` (fp16/bf16), or a no-op for fp32."""
    import torch
    chosen = AUTOCAST_DTYPES[dtype]
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, chosen) if chosen else None,
                          enabled=chosen is not None)


def synchronize(device) -> None:
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def rotated(keys: List[str], round_index: int) -> List[str]:
    """The order of one round: the keys rotated by the round's index (ABC, BCA, CAB, ...), so each model is timed
    in every position over len(keys) rounds."""
    shift = round_index % len(keys)
    return keys[shift:] + keys[:shift]


def interleaved_throughput(models: Mapping[str, "torch.nn.Module"], settings: ThroughputConfig, resolution: int,
                           device="cpu", dtype: str = "fp32", channels_last: bool = False, in_chans: int = 3,
                           warmup_s: Optional[float] = None) -> Timings:
    """Images per second of eval forward passes under no_grad, every model in every round. Each model first runs
    ``settings.warmup`` untimed passes (and the first model runs until ``warmup_s`` seconds have passed, default
    ``default_warmup_s``: an idle GPU needs a second or two before its clocks settle). A round times
    ``settings.passes`` passes of each model, synchronised; rounds run until ``settings.min_rounds``, then on until
    every median's interval is within ``settings.target`` of it, ``settings.max_seconds`` have passed or
    ``settings.max_rounds`` are done."""
    import torch

    if not models:
        raise ValueError("interleaved_throughput needs at least one model")
    device = torch.device(device)
    images = torch.randn(settings.batch, in_chans, resolution, resolution, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    ready = {key: _ready(model, device, channels_last) for key, model in models.items()}
    rates: Dict[str, List[float]] = {key: [] for key in ready}
    peaks: Dict[str, List[float]] = {key: [] for key in ready}
    with torch.no_grad(), autocast(device, dtype):
        warmup_passes = _warm_up(ready, images, settings.warmup,
                                 default_warmup_s(device) if warmup_s is None else warmup_s)
        started, stop, done = time.perf_counter(), None, 0
        while stop is None:
            for key in rotated(list(ready), done):
                seconds, peak = _timed_passes(ready[key], images, settings.passes, device)
                rates[key].append(settings.batch * settings.passes / seconds)
                if peak is not None:
                    peaks[key].append(peak)
            done += 1
            stop = _stop(rates, settings, done, time.perf_counter() - started)
        seconds = time.perf_counter() - started
    timed = {key: Timed(tuple(rates[key]), median_interval(rates[key], settings.confidence),
                        median_interval(peaks[key], settings.confidence) if peaks[key] else None) for key in ready}
    return Timings(timed, done, stop, seconds, warmup_passes)


def _stop(rates: Dict[str, List[float]], settings: ThroughputConfig, done: int, elapsed: float) -> Optional[str]:
    """Why the rounds end after ``done`` of them, or None to go on."""
    if done < min(settings.min_rounds, settings.max_rounds):
        return None
    if all(median_interval(r, settings.confidence).half_width <= settings.target for r in rates.values()):
        return STOP_NARROW
    if elapsed >= settings.max_seconds:
        return STOP_TIME
    return STOP_ROUNDS if done >= settings.max_rounds else None


def _ready(model, device, channels_last: bool):
    model = model.to(device).eval()
    if channels_last:
        import torch
        model = model.to(memory_format=torch.channels_last)
    return model


def _warm_up(models: Mapping[str, "torch.nn.Module"], images, passes: int, seconds: float) -> int:
    """Run every model ``passes`` times, then the first until ``seconds`` have passed; returns the passes run."""
    warm_until, count = time.perf_counter() + seconds, 0
    for model in models.values():
        for _ in range(passes):
            model(images)
            count += 1
    first = next(iter(models.values()))
    while time.perf_counter() < warm_until:
        first(images)
        count += 1
    return count


def _timed_passes(model, images, passes: int, device) -> Tuple[float, Optional[float]]:
    """(seconds of ``passes`` synchronised forward passes, the CUDA allocator's peak above the resting memory in MB,
    or None on CPU)."""
    import torch
    cuda = device.type == "cuda"
    synchronize(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        resting = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    for _ in range(passes):
        model(images)
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) - resting) / 2 ** 20 if cuda else None
    return seconds, peak
