"""Fast pure-PyTorch selective scan (CPU default, GPU fallback).

The recurrence h_l = a_l * h_{l-1} + b_l is cut into K chunks of T steps (T ~ sqrt(L)). Time is stored
chunk-major, as (T, K, ...): step t of every chunk is one contiguous slice, so

  1. one Python loop of T steps scans all K chunks at once from a zero state,
  2. one loop of K steps carries the end state of each chunk into the next,
  3. one vectorised update adds each carry, decayed by the running product of a, to its chunk.

That is about 2*sqrt(L) small ops instead of L, and every exponent is of a non-positive number (products
of a in [0, 1]), so nothing overflows however large delta or |A| is. The backward pass is the adjoint scan
run in reverse (hand-written, so no per-step graph is kept and the reductions are matmuls). Semantics match ``scan_ref``.
"""
import contextlib
import math

import torch
import torch.nn.functional as F

from .scan_ref import bc_groups


def _chunk_len(length: int) -> int:
    return max(1, math.isqrt(length - 1) + 1) if length > 1 else 1


def _scan_forward(a, b):
    """h over (T, K, *S) chunk-major time, zero initial state."""
    steps, chunks = a.shape[0], a.shape[1]
    h = torch.empty_like(b)
    h[0] = b[0]
    for t in range(1, steps):
        torch.addcmul(b[t], a[t], h[t - 1], out=h[t])
    if chunks > 1:
        decay = torch.empty_like(a)                           # (T, K, *S) product of a since chunk start
        decay[0] = a[0]
        for t in range(1, steps):
            torch.mul(decay[t - 1], a[t], out=decay[t])
        carry = torch.zeros_like(h[0])                        # (K, *S) state entering each chunk
        for k in range(1, chunks):
            torch.addcmul(h[-1, k - 1], decay[-1, k - 1], carry[k - 1], out=carry[k])
        h[:, 1:].addcmul_(decay[:, 1:], carry[1:])
    return h


def _scan_reverse(a, dh):
    """g_l = dh_l + a_{l+1} g_{l+1} over (T, K, *S) chunk-major time (the adjoint of _scan_forward)."""
    steps, chunks = a.shape[0], a.shape[1]
    g = torch.empty_like(dh)
    g[-1] = dh[-1]
    for t in range(steps - 2, -1, -1):
        torch.addcmul(dh[t], a[t + 1], g[t + 1], out=g[t])
    if chunks > 1:
        decay = torch.empty_like(a)                           # (T, K, *S) product of a after t, within the chunk
        decay[-1] = 1
        for t in range(steps - 2, -1, -1):
            torch.mul(decay[t + 1], a[t + 1], out=decay[t])
        # carry[k]: gradient arriving at the end of chunk k from chunk k+1, already multiplied by a there.
        carry = torch.zeros_like(g[0])                        # (K, *S)
        for k in range(chunks - 2, -1, -1):
            start_of_next = torch.addcmul(g[0, k + 1], decay[0, k + 1], carry[k + 1])
            torch.mul(a[0, k + 1], start_of_next, out=carry[k])
        g[:, :-1].addcmul_(decay[:, :-1], carry[:-1])
    return g


@contextlib.contextmanager
def _tracing_off():
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


class SelectiveScanCore(torch.autograd.Function):
    """The scan proper on chunk-major fp32 tensors, with a hand-written backward.

    u, delta: (T, K, b, G, dg); A: (G, dg, n); B, C: (T, K, b, G, 1, n). Returns y (T, K, b, G, dg) and
    the state after the last real step, (b, G, dg, n), at chunk-major index (last_step, last_chunk).
    """

    @staticmethod
    def forward(u, delta, A, B, C, last_step, last_chunk):
        # Under torch.jit.trace (fvcore's MAC counting) this Function is recorded as one opaque op; its body
        # must not be traced too, or the slice writes with out= break the tracer.
        with _tracing_off():
            a = torch.exp(delta[..., None] * A)                   # (T, K, b, G, dg, n)
            du = delta * u                                        # (T, K, b, G, dg)
            b = du[..., None] * B                                 # (T, K, b, G, dg, n)
            h = _scan_forward(a, b)
            y = torch.matmul(h, C.transpose(-1, -2)).squeeze(-1)  # (T, K, b, G, dg)
            return y, h[last_step, last_chunk].clone(), a, b, h

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, delta, A, B, C, last_step, last_chunk = inputs
        _, _, a, b, h = output
        ctx.save_for_backward(u, delta, A, B, C, a, b, h)
        ctx.last = (last_step, last_chunk)
        ctx.mark_non_differentiable(a, b, h)
        ctx.set_materialize_grads(False)   # else every backward gets three zero tensors the size of a, b and h

    @staticmethod
    def vmap(info, in_dims, u, delta, A, B, C, last_step, last_chunk):
        """The scan of stacked models (the fused seeds' trainer): the stacked dim S becomes more groups,
        (S, ..., G, ...) -> (..., S*G, ...), so one scan runs all of them; groups never mix."""
        size = info.batch_size
        def fold(x, dim, groups_at):                              # groups_at: the G axis of the unbatched x
            x = x.expand(size, *x.shape) if dim is None else x.movedim(dim, 0)
            return x.movedim(0, groups_at).flatten(groups_at, groups_at + 1)
        outputs = SelectiveScanCore.apply(fold(u, in_dims[0], 3), fold(delta, in_dims[1], 3),
                                          fold(A, in_dims[2], 0), fold(B, in_dims[3], 3),
                                          fold(C, in_dims[4], 3), last_step, last_chunk)
        y, last, a, b, h = outputs
        unfold = [(y, 3), (last, 1), (a, 3), (b, 3), (h, 3)]
        return tuple(x.unflatten(at, (size, -1)).movedim(at, 0) for x, at in unfold), (0,) * 5

    @staticmethod
    def backward(ctx, dy, dlast, _da, _db, _dh):
        # Gradients are not materialised: dy or dlast is None when the loss does not use it (dlast mostly).
        u = ctx.saved_tensors[0]
        dy = torch.zeros_like(u) if dy is None else dy
        # A backward called inside an autocast region (CPU runs it on the caller's thread) stays in fp32 too.
        with torch.autocast(dy.device.type, enabled=False):
            return SelectiveScanCore._backward(ctx, dy.float(), None if dlast is None else dlast.float())

    @staticmethod
    def _backward(ctx, dy, dlast):
        u, delta, A, B, C, a, b, h = ctx.saved_tensors
        dy = dy.contiguous()
        dh = dy[..., None] * C                                # (T, K, b, G, dg, n)
        if dlast is not None:
            dh[ctx.last] += dlast
        g = _scan_reverse(a, dh)                              # (T, K, b, G, dg, n) dL/db
        dC = torch.matmul(dy[..., None, :], h)                # (T, K, b, G, 1, n)
        ddu = torch.matmul(g, B.transpose(-1, -2)).squeeze(-1)  # (T, K, b, G, dg)
        du = delta * u
        dB = torch.matmul(du[..., None, :], g)                # (T, K, b, G, 1, n)
        # dL/d(delta*A) = g_l * a_l * h_{l-1} = g_l * (h_l - b_l): no shifted copy of h needed.
        dlog = torch.sub(h, b).mul_(g)                        # (T, K, b, G, dg, n)
        ddelta = ddu * u + (dlog * A).sum(-1)                 # (T, K, b, G, dg)
        dA = (dlog * delta[..., None]).flatten(0, 2).sum(0)   # (G, dg, n)
        return ddu * delta, ddelta, dA, dB, dC, None, None


def _to_chunks(x, steps, chunks):
    """(batch, ..., L) -> (T, K, batch, ...), zero-padded to K*T steps."""
    x = F.pad(x, (0, steps * chunks - x.shape[-1]))
    x = x.unflatten(-1, (chunks, steps))                        # (batch, ..., K, T)
    # Contiguous, or the big tensors computed from these inherit permuted strides and every slice copies.
    return x.movedim((-1, -2), (0, 1)).contiguous()             # (T, K, batch, ...)


def _from_chunks(x, length):
    """(T, K, batch, ...) -> (batch, ..., L)."""
    x = x.movedim((0, 1), (-1, -2))                             # (batch, ..., K, T)
    return x.flatten(-2)[..., :length]


def selective_scan_chunked(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                           delta_softplus=False, return_last_state=False):
    dtype_in = u.dtype
    batch, dim, length = u.shape
    u, delta, A = u.float(), delta.float(), A.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    groups, c_groups = bc_groups(B, dim), bc_groups(C, dim)
    if c_groups != groups:
        raise ValueError(f"B has {groups} groups and C has {c_groups}; the chunked scan needs the same")
    per_group = dim // groups
    steps = _chunk_len(length)
    chunks = -(-length // steps)
    # Channels are split as (G, d/G) so grouped B and C broadcast without copies.
    delta_c = _to_chunks(delta.view(batch, groups, per_group, length), steps, chunks)  # (T, K, b, G, dg)
    u_c = _to_chunks(u.view(batch, groups, per_group, length), steps, chunks)          # (T, K, b, G, dg)
    B_c = _to_chunks(B.float().reshape(batch, groups, 1, -1, length), steps, chunks)      # (T, K, b, G, 1, n)
    C_c = _to_chunks(C.float().reshape(batch, groups, 1, -1, length), steps, chunks)      # (T, K, b, G, 1, n)
    A_g = A.view(groups, per_group, -1)                                                # (G, dg, n)
    y, last, *_ = SelectiveScanCore.apply(u_c, delta_c, A_g, B_c, C_c, (length - 1) % steps, (length - 1) // steps)
    y = _from_chunks(y, length).reshape(batch, dim, length)
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(dtype_in)
    if not return_last_state:
        return y
    return y, last.reshape(batch, dim, -1)                                             # (b, d, n)
