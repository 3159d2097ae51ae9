"""After training: img/s (and CUDA peak memory) of each trained design, in the driver, one design at a time with
all cores, so no training trial disturbs it."""
import dataclasses
import os

from ..config import SweepConfig
from ..build import proxy_model
from ..results import TRAINED, read_rows
from ..space import Design
from .store import RunStore


def measure_throughput(store: RunStore, cfg: SweepConfig) -> None:
    import torch

    from ..measure import peak_memory, throughput
    device = "cuda" if cfg.resources.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    dtype = "bf16" if device == "cuda" else "fp32"
    measured = {}
    for row in read_rows(store.run_dir):
        if row.status not in TRAINED or row.throughput_img_s is not None:
            continue
        key = (row.spec, row.knobs)
        if key not in measured:
            # the model its trials trained: the sweep's mixer knobs under the design's, as for_design merges them
            model = proxy_model(cfg.trial_proxy().for_design(Design.of_row(row)))
            size = row.image_size or cfg.data.image_size
            # the first timing of a process pays one-off costs: the first design gets 8 more untimed passes
            speed = throughput(model, batch=cfg.throughput_batch, resolution=size, device=device, dtype=dtype,
                               channels_last=device == "cuda", warmup=11 if not measured else 3, iters=10)
            memory = peak_memory(model, batch=cfg.throughput_batch, resolution=size, device=device, dtype=dtype)
            measured[key] = {"throughput_img_s": speed["throughput_img_s"], "throughput_batch": speed["batch"],
                             "throughput_device": speed["device"], "throughput_dtype": dtype,
                             "peak_mem_mb": memory["peak_mem_mb"] if device == "cuda" else None}
        store.write_row(dataclasses.replace(row, **measured[key]))
