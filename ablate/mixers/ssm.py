"""The selective-SSM core shared by every SSM letter (M, S, B, X, P), and its multiply-add count."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import scan_macs, selective_scan


def causal_or_same_conv1d(x, conv: nn.Conv1d, causal: bool):
    """Depthwise 1-D conv over L of (B, D, L): causal pads on the left only (Mamba); 'same' as MambaVision."""
    if causal:
        return conv(F.pad(x, (conv.kernel_size[0] - 1, 0)))
    return F.conv1d(x, conv.weight, conv.bias, padding="same", groups=conv.groups)


def depthwise_conv1d(channels, kernel):
    return nn.Conv1d(channels, channels, kernel, groups=channels, bias=False)


class SSM(nn.Module):
    """x_proj -> (dt, B, C), dt_proj, A = -exp(A_log), D: the selective scan of a (B, D, L) sequence.

    As in MambaVision's code, dt_proj is applied with its bias and the same bias is passed again as the
    scan's delta_bias, so the bias counts twice; we keep that (official weights then give official outputs)
    and halve the init so the effective initial dt still follows Mamba's log-uniform [dt_min, dt_max].
    """

    def __init__(self, channels, d_state, dt_rank, dt_min=1e-3, dt_max=0.1, dt_floor=1e-4):
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.x_proj = nn.Linear(channels, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, channels, bias=True)
        # The init is drawn on the CPU (the generator it always used) and moved to where the module is built:
        # elementwise ops on the meta device load torch's decompositions (1.6 s), which every build check before
        # a sweep would pay.
        device = self.dt_proj.bias.device
        dt = torch.exp(torch.rand(channels, device="cpu") * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(((dt + torch.log(-torch.expm1(-dt))) / 2).to(device))  # inverse softplus, halved
        self.dt_proj.bias._no_reinit = True
        a_log = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32, device="cpu")).repeat(channels, 1)
        self.A_log = nn.Parameter(a_log.to(device))                   # (D, N)
        self.D = nn.Parameter(torch.ones(channels))

    def scan_inputs(self, x):
        """(B, D, L) -> the scan's delta (B, D, L), A (D, N), B and C (B, N, L), D, delta_bias."""
        x_dbl = self.x_proj(x.transpose(1, 2))                       # (B, L, R + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = self.dt_proj(dt).transpose(1, 2)                      # (B, D, L)
        A = -torch.exp(self.A_log.float())                            # (D, N)
        return delta, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), self.dt_proj.bias.float()

    def forward(self, x, z=None):                                     # x: (B, D, L)
        delta, A, B, C, D, bias = self.scan_inputs(x)
        return selective_scan(x, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True)


def scan_directions(ssms, xs):
    """Run several SSMs (one per direction) in a single scan call: channels concatenated, B/C as groups.
    xs: list of (B, D, L), one per ssm; returns the list of outputs."""
    deltas, As, Bs, Cs, Ds, biases = zip(*(ssm.scan_inputs(x) for ssm, x in zip(ssms, xs)))
    y = selective_scan(torch.cat(xs, 1), torch.cat(deltas, 1), torch.cat(As, 0),
                       torch.stack(Bs, 1), torch.stack(Cs, 1), torch.cat(Ds),              # B, C: (B, K, N, L)
                       delta_bias=torch.cat(biases), delta_softplus=True)
    return list(y.chunk(len(ssms), dim=1))                            # each (B, D, L)


def ssm_macs(channels, tokens, d_state, dt_rank, directions=1):
    """x_proj + dt_proj + scan over all tokens of an image: (total, scan)."""
    proj = tokens * channels * (dt_rank + 2 * d_state) + tokens * dt_rank * channels
    scan = scan_macs(1, channels, tokens, d_state)
    return directions * (proj + scan), directions * scan
