"""mamba_ssm's CUDA selective scan, when it can be imported (the optional ``cuda`` extra)."""
import functools

import torch


@functools.lru_cache(maxsize=1)
def load_cuda_scan():
    """mamba_ssm's selective_scan_fn, or None where it cannot be imported (no CUDA build, no GPU)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or the missing compiled selective_scan_cuda on CPU-only machines
        return None
    return selective_scan_fn


class _LastStateWithoutGradient(torch.autograd.Function):
    """Identity on the last state that refuses a gradient: mamba_ssm's backward drops the last state's
    gradient, so a loss that uses it would get silently wrong gradients for u, delta, A, B and delta_bias."""

    @staticmethod
    def forward(ctx, last):
        return last.view_as(last)

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backend 'cuda' (mamba_ssm) does not backpropagate through the last state; "
                           "use backend='chunked' for a loss that depends on it")


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                        delta_softplus=False, return_last_state=False):
    scan = load_cuda_scan()
    if scan is None:
        raise RuntimeError("backend 'cuda' needs mamba_ssm (pip install 'ablate[cuda]') on a CUDA machine")
    if not u.is_cuda:
        raise RuntimeError("backend 'cuda' needs CUDA tensors; use backend='auto' or 'chunked' on CPU")
    # The kernel wants contiguous last dims; fp32 A/D/delta_bias as mamba's own modules pass them.
    args = [t.contiguous() if t is not None else None for t in (u, delta, A, B, C, D, z, delta_bias)]
    out = scan(*args, delta_softplus=delta_softplus, return_last_state=return_last_state)
    if not return_last_state:
        return out
    y, last = out
    return y, _LastStateWithoutGradient.apply(last)
