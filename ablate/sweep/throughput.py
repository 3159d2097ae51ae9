"""After training: img/s (and CUDA peak memory) of the trained designs, in the driver with all cores, so no training
trial disturbs it. The designs are timed together in interleaved rounds (ablate/timing.py), each one's figure a
median with its confidence interval."""
import dataclasses
import os
from collections import defaultdict
from typing import Dict, List, Tuple

from ..build import proxy_model
from ..config import SweepConfig
from ..results import TRAINED, ResultRow, read_rows
from ..space import Design
from ..timing import Timed, Timings, interleaved_throughput
from .store import RunStore


def measure_throughput(store: RunStore, cfg: SweepConfig) -> None:
    """Time every trained design whose rows have no throughput yet, one image size at a time, and write the
    figures into its rows."""
    import torch

    device = "cuda" if cfg.uses_gpu() and torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    dtype = "bf16" if device == "cuda" else "fp32"
    for size, designs in pending_designs(read_rows(store.run_dir), cfg.data.image_size).items():
        base = cfg.trial_proxy()
        # the models their trials trained: the sweep's mixer knobs under the design's, as for_design merges them
        models = {key: proxy_model(base.for_design(Design.of_row(rows[0]))) for key, rows in designs.items()}
        timings = interleaved_throughput({_name(key): model for key, model in models.items()}, cfg.throughput,
                                         size, device=device, dtype=dtype, channels_last=device == "cuda")
        print(timings_line(timings, size))
        for key, rows in designs.items():
            figures = row_figures(timings.models[_name(key)], timings, cfg.throughput.batch, device, dtype)
            for row in rows:
                store.write_row(dataclasses.replace(row, **figures))


DesignKey = Tuple[str, str]      # (spec, knobs): one architecture


def pending_designs(rows: List[ResultRow], default_size: int) -> Dict[int, Dict[DesignKey, List[ResultRow]]]:
    """{image size: {design: its trained rows without a throughput}}, in the rows' order."""
    pending: Dict[int, Dict[DesignKey, List[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.status in TRAINED and row.throughput_img_s is None:
            pending[row.image_size or default_size][(row.spec, row.knobs)].append(row)
    return pending


def _name(key: DesignKey) -> str:
    return f"{key[0]} {key[1]}"


def row_figures(timed: Timed, timings: Timings, batch: int, device: str, dtype: str) -> dict:
    """The throughput columns of a design's rows."""
    memory = timed.peak_mem_mb
    return {"throughput_img_s": timed.speed.median, "throughput_lo": timed.speed.low,
            "throughput_hi": timed.speed.high, "throughput_rounds": timings.rounds, "throughput_stop": timings.stop,
            "throughput_batch": batch, "throughput_device": device, "throughput_dtype": dtype,
            "peak_mem_mb": memory.median if memory else None, "peak_mem_lo": memory.low if memory else None,
            "peak_mem_hi": memory.high if memory else None}


def timings_line(timings: Timings, size: int) -> str:
    widest = max(timed.speed.half_width for timed in timings.models.values())
    return (f"throughput: {len(timings.models)} designs at {size}px, {timings.rounds} interleaved rounds in "
            f"{timings.seconds:.0f} s (stopped: {timings.stop}); widest interval ±{widest:.1%} of its median")
