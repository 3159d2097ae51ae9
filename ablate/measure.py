"""Honest measurement: parameters, multiply-adds with the selective scan counted, throughput, peak memory.

Convention: MACs are multiply-accumulates (one multiply-add = 1), not FLOPs (= 2 per multiply-add). This is
fvcore's convention, and the one the published "GFLOPs" of MambaVision actually use. fvcore counts convs,
linears, matmuls, einsum and norms; it skips elementwise ops and, unless given handles, the selective scan
and scaled_dot_product_attention. We add both handles: the scan's count is ``ablate.ops.scan_macs``
(4 per batch x channel x step x state), attention's is 2 * L * S * head_dim per head (QK^T and AV).
"""
import contextlib
from typing import Optional, Sequence

import torch

from .ops import get_default_backend, scan_macs, set_default_backend
from .timing import ThroughputConfig, autocast, default_warmup_s, interleaved_throughput

SCAN_OPS = ("prim::PythonOp.SelectiveScanCore",    # ablate's chunked scan
            "prim::PythonOp.SelectiveScanFn")       # mamba_ssm's CUDA scan
ATTENTION_OP = "aten::scaled_dot_product_attention"


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _shape(value):
    return value.type().sizes()


def _scan_handle(inputs, outputs):
    u, A = _shape(inputs[0]), _shape(inputs[2])     # u: (..., channels), all steps; A: (..., d_state)
    elements = 1
    for size in u:
        elements *= size
    return scan_macs(elements, 1, 1, A[-1])


def _conv_mode_handle(inputs, outputs):
    """aten::_convolution_mode (a conv with padding='same'): output elements x (C_in / groups) x kernel."""
    out, weight = _shape(outputs[0]), _shape(inputs[1])
    elements = 1
    for size in out + weight[1:]:
        elements *= size
    return elements


def _sdpa_handle(inputs, outputs):
    q, k = _shape(inputs[0]), _shape(inputs[1])     # (B, heads, L, d), (B, heads, S, d)
    batch_heads = 1
    for size in q[:-2]:
        batch_heads *= size
    return 2 * batch_heads * q[-2] * k[-2] * q[-1]


@contextlib.contextmanager
def _scan_backend(name):
    previous = get_default_backend()
    set_default_backend(name)
    try:
        yield
    finally:
        set_default_backend(previous)


def count_macs(model: torch.nn.Module, input_shape: Sequence[int]) -> dict:
    """MACs of one forward pass at ``input_shape`` (batch included) in eval mode: ``macs_total`` (scan
    included), ``macs_scan``, ``macs_no_scan``, ``macs_attention`` (the QK^T and AV part, which fvcore's
    defaults and the published MambaVision numbers leave out), and the ops fvcore saw but did not count
    (all elementwise)."""
    from fvcore.nn import FlopCountAnalysis

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    images = torch.zeros(*input_shape, device=device)
    backend = "auto" if device.type == "cuda" else "chunked"   # the scan must be one traced op to be counted
    try:
        with _scan_backend(backend), torch.no_grad():
            analysis = FlopCountAnalysis(model, images)
            analysis.set_op_handle(**{op: _scan_handle for op in SCAN_OPS},
                                   **{ATTENTION_OP: _sdpa_handle, "aten::_convolution_mode": _conv_mode_handle})
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            by_operator = analysis.by_operator()
            total = analysis.total()
            unsupported = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    # by_operator names ops without their "aten::"/"prim::" prefix.
    scan = sum(v for k, v in by_operator.items() if any(op.endswith(k) for op in SCAN_OPS))
    attention = by_operator.get(ATTENTION_OP.split("::")[1], 0)
    return {"macs_total": int(total), "macs_scan": int(scan), "macs_no_scan": int(total - scan),
            "macs_attention": int(attention), "unsupported_ops": unsupported}


def throughput(model: torch.nn.Module, batch: int = 64, resolution: int = 224, device="cpu",
               dtype: str = "fp32", channels_last: bool = False, warmup: int = 3, iters: int = 10,
               in_chans: int = 3, warmup_s: Optional[float] = None) -> dict:
    """Images per second of eval forward passes under no_grad, for one model: ``iters`` synchronised passes after a
    warm-up of ``warmup`` passes and at least ``warmup_s`` seconds (default: ``default_warmup_s``); the median with
    its 95% interval (NaN with fewer than 6 passes), the spread (min and max) and the settings used. Several models
    to compare are timed together in interleaved rounds: ablate.timing.interleaved_throughput, which this calls
    with one model and one pass per round."""
    settings = ThroughputConfig(batch=batch, passes=1, warmup=warmup, min_rounds=iters, max_rounds=iters)
    timings = interleaved_throughput({"model": model}, settings, resolution, device=device, dtype=dtype,
                                     channels_last=channels_last, in_chans=in_chans, warmup_s=warmup_s)
    timed = timings.models["model"]
    return {"throughput_img_s": timed.speed.median, "throughput_lo": timed.speed.low,
            "throughput_hi": timed.speed.high, "throughput_min": min(timed.rates),
            "throughput_max": max(timed.rates), "batch": batch, "resolution": resolution, "device": str(device),
            "dtype": dtype, "channels_last": channels_last, "iters": iters, "threads": torch.get_num_threads(),
            "warmup_passes": timings.warmup_passes,
            "warmup_s": default_warmup_s(device) if warmup_s is None else warmup_s}


def peak_memory(model: torch.nn.Module, batch: int = 64, resolution: int = 224, device="cpu",
                training: bool = False, in_chans: int = 3, dtype: str = "fp32") -> dict:
    """Peak memory of one forward pass (and backward with ``training``), in MB. On CUDA: the allocator's
    peak above what was allocated before. On CPU: the process's peak resident set size (ru_maxrss), an upper
    bound that includes everything the process has touched so far. ``dtype``: fp32, or fp16/bf16 autocast."""
    device = torch.device(device)
    model = model.to(device).train(training)
    images = torch.randn(batch, in_chans, resolution, resolution, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    context = contextlib.nullcontext() if training else torch.no_grad()
    with context, autocast(device, dtype):
        out = model(images)
        if training:
            out.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        kind = "cuda_allocator_peak"
    else:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kind = "process_max_rss"
    return {"peak_mem_mb": peak, "kind": kind, "batch": batch, "resolution": resolution,
            "training": training, "device": str(device), "dtype": dtype}
