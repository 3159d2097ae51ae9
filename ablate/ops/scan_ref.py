"""Sequential selective scan: the oracle every other backend is tested against.

Semantics are mamba_ssm's ``selective_scan_fn`` (and its ``selective_scan_ref``):

    delta = softplus(delta + delta_bias)            (when asked)
    h_t   = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t   = <C_t, h_t> + D * u_t,  then  y_t *= silu(z_t)   (when z is given)

Written for clarity, one time step per loop iteration; autograd gives the gradients.
"""
import torch
import torch.nn.functional as F


def bc_groups(BC: torch.Tensor, dim: int) -> int:
    """How many channel groups B or C has (1 for (batch, N, L)); a ValueError for any other layout."""
    if BC.dim() == 3:
        return 1
    if BC.dim() == 4:
        groups = BC.shape[1]
        if dim % groups:
            raise ValueError(f"B/C have {groups} groups, which does not divide the {dim} channels of u")
        return groups
    raise ValueError(f"B and C must be (batch, N, L) or (batch, G, N, L); got shape {tuple(BC.shape)}")


def expand_groups(BC: torch.Tensor, dim: int) -> torch.Tensor:
    """(batch, N, L) or (batch, G, N, L) -> (batch, dim, N, L), one row per channel."""
    groups = bc_groups(BC, dim)
    if BC.dim() == 3:
        return BC.unsqueeze(1).expand(-1, dim, -1, -1)
    return BC.repeat_interleave(dim // groups, dim=1)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                       delta_softplus=False, return_last_state=False):
    dtype_in = u.dtype
    u, delta, A = u.float(), delta.float(), A.float()
    dim = u.shape[1]
    B = expand_groups(B.float(), dim)  # (b, d, n, l)
    C = expand_groups(C.float(), dim)  # (b, d, n, l)
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    # Precomputed over all steps, as mamba_ssm's selective_scan_ref does, so the loop is the recurrence alone.
    decay = torch.exp(delta[..., None] * A[:, None, :])                   # (b, d, l, n)
    drive = (delta * u)[..., None] * B.transpose(-1, -2)                  # (b, d, l, n)
    # unbind, not indexing: the backward of x[:, :, t] would zero-fill a full-size gradient at every step.
    steps = zip(decay.unbind(2), drive.unbind(2), C.unbind(-1))
    h = u.new_zeros(u.shape[0], dim, A.shape[1])                          # (b, d, n)
    ys = []
    for decay_t, drive_t, C_t in steps:
        h = decay_t * h + drive_t
        ys.append((h * C_t).sum(-1))                                      # (b, d)
    y = torch.stack(ys, dim=-1)                                           # (b, d, l)
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y
