"""X: 2-D cross-scan SSM (VMamba's SS2D): four scan orders over the window, one SSM each, summed."""
import math

import torch.nn as nn
import torch.nn.functional as F

from .mamba import SSM_KNOBS
from .registry import register_token_mixer
from .ssm import SSM, scan_directions, ssm_macs


def cross_scan(x):
    """(B, D, h, w) -> the four sequences (B, D, h*w): rows, columns, and both reversed."""
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    return [rows, cols, rows.flip(-1), cols.flip(-1)]


def cross_merge(ys, hw):
    """Inverse of cross_scan, summed: four (B, D, h*w) -> (B, D, h*w) in row order."""
    h, w = hw
    rows, cols, rows_rev, cols_rev = ys
    cols = cols + cols_rev.flip(-1)
    cols = cols.unflatten(-1, (w, h)).transpose(2, 3).flatten(2)
    return rows + rows_rev.flip(-1) + cols


class CrossScanMixer(nn.Module):
    """in_proj -> x, z halves; x: depthwise 3x3 conv -> SiLU -> 4-direction scan -> LayerNorm; SiLU(z) gate."""

    def __init__(self, dim, num_heads=None, d_state=8, d_conv=3, expand=1):
        super().__init__()
        inner = int(expand * dim)
        half = inner // 2
        self.in_proj = nn.Linear(dim, inner, bias=False)
        self.conv = nn.Conv2d(half, half, d_conv, padding=d_conv // 2, groups=half, bias=False)
        self.ssms = nn.ModuleList(SSM(half, d_state, dt_rank=math.ceil(dim / 16)) for _ in range(4))
        self.out_norm = nn.LayerNorm(half)
        self.out_proj = nn.Linear(half, dim, bias=False)

    def forward(self, x, hw):                                             # x: (B, L, C)
        x, z = self.in_proj(x).chunk(2, dim=-1)                           # each (B, L, C/2)
        b, length, c = x.shape
        x = F.silu(self.conv(x.transpose(1, 2).reshape(b, c, *hw)))       # (B, C/2, h, w)
        y = cross_merge(scan_directions(self.ssms, cross_scan(x)), hw)    # (B, C/2, L)
        y = self.out_norm(y.transpose(1, 2)) * F.silu(z)                  # (B, L, C/2)
        return self.out_proj(y)


def cross_scan_macs(dim, tokens, window_tokens, *, num_heads=None, d_state=8, d_conv=3, expand=1):
    inner = int(expand * dim)
    half = inner // 2
    ssm_total, scan = ssm_macs(half, tokens, d_state, math.ceil(dim / 16), directions=4)
    out_norm = 5 * tokens * half
    return tokens * dim * inner + tokens * half * d_conv * d_conv + ssm_total + out_norm + tokens * half * dim, scan


register_token_mixer("X", "cross_scan", "2-D cross-scan SSM (VMamba)", "#8c564b", CrossScanMixer,
                     cross_scan_macs, knobs=dict(SSM_KNOBS))
