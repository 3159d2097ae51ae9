"""Selective scan with one entry point and interchangeable backends.

``selective_scan`` has mamba_ssm's ``selective_scan_fn`` signature. Backends:
  ref      sequential loop, the oracle (scan_ref.py)
  chunked  fast pure PyTorch, CPU default and GPU fallback (scan_chunked.py)
  cuda     mamba_ssm's kernels, only where they import and the tensors are on CUDA (scan_cuda.py)
  auto     cuda where usable, else chunked; ``set_default_backend`` (or the ABLATE_SCAN_BACKEND variable)
           makes ``auto`` mean one fixed backend instead, e.g. ``ref`` for a whole model under test.
"""
import os

import torch

from .scan_chunked import selective_scan_chunked
from .scan_cuda import load_cuda_scan, selective_scan_cuda
from .scan_ref import selective_scan_ref

BACKENDS = {"ref": selective_scan_ref, "chunked": selective_scan_chunked, "cuda": selective_scan_cuda}
_default = {"backend": os.environ.get("ABLATE_SCAN_BACKEND", "auto")}


def _check(name):
    if name != "auto" and name not in BACKENDS:
        raise ValueError(f"unknown scan backend {name!r}; valid: auto, {', '.join(BACKENDS)}")
    return name


def set_default_backend(name: str) -> None:
    _default["backend"] = _check(name)


def get_default_backend() -> str:
    return _check(_default["backend"])


def resolve_backend(name: str, on_cuda: bool, vmapped: bool = False) -> str:
    """The backend that ``name`` means for tensors on CUDA (or not). Under vmap (the fused seeds' trainer) ``auto``
    is the chunked scan: it has a vmap rule, mamba_ssm's kernel has none."""
    name = _check(name)
    if name == "auto":
        name = get_default_backend()
    if name != "auto":
        return name
    return "cuda" if on_cuda and not vmapped and load_cuda_scan() is not None else "chunked"


def available_backends(on_cuda: bool = False) -> list:
    """Backends that can run here: cuda only with mamba_ssm and CUDA tensors."""
    names = ["ref", "chunked"]
    if on_cuda and load_cuda_scan() is not None:
        names.append("cuda")
    return names


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend="auto"):
    """u, delta, z: (batch, dim, L); A: (dim, N); B, C: (batch, N, L) or (batch, G, N, L); D, delta_bias:
    (dim,). Returns y (batch, dim, L) in u's dtype, and the last state (batch, dim, N) when asked. Inputs in
    fp16/bf16 (from autocast) are scanned in fp32."""
    scan = BACKENDS[resolve_backend(backend, u.is_cuda, torch._C._functorch.is_batchedtensor(u))]
    # Every backend scans in fp32 whatever autocast is on (as mamba_ssm's kernel does): autocast would run
    # the chunked scan's matmuls in bf16 forward and then meet fp32 tensors in its backward.
    with torch.autocast(u.device.type, enabled=False):
        return scan(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                    return_last_state=return_last_state)


def scan_macs(batch: int, dim: int, length: int, d_state: int) -> int:
    """Multiply-adds of one selective scan, the one convention used everywhere (analytic counts and the
    fvcore handle): per (batch, channel, step, state) delta*A, delta*u*B, a*h + b and C*h are 4. The D skip
    and the z gate are elementwise, like exp, softplus and SiLU, and are not counted (fvcore counts no
    elementwise op either)."""
    return batch * dim * length * 4 * d_state
