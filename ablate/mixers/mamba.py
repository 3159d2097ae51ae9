"""M (MambaVision mixer), S (vanilla Mamba mixer) and B (bidirectional, Vim style).

S is M with other knob defaults (causal conv, no symmetric branch, SiLU(z) gate), so one class serves both.
The four rows of the paper's token-mixer ablation are M with:
  conv=causal  symmetric=false merge=gate     (Mamba-like)
  conv=regular symmetric=false merge=gate
  conv=regular symmetric=true  merge=gate
  conv=regular symmetric=true  merge=concat   (the final MambaVision mixer, the default)
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_token_mixer
from .ssm import SSM, causal_or_same_conv1d, depthwise_conv1d, scan_directions, ssm_macs

SSM_KNOBS = {"d_state": 8, "d_conv": 3, "expand": 1}


class MambaVisionMixer(nn.Module):
    """in_proj -> x, z halves; x: conv -> SiLU -> selective scan; z: (conv ->) SiLU; merge; out_proj."""

    def __init__(self, dim, num_heads=None, d_state=8, d_conv=3, expand=1,
                 conv="regular", symmetric=True, merge="concat"):
        super().__init__()
        inner = int(expand * dim)
        half = inner // 2
        self.causal, self.merge = conv == "causal", merge
        self.in_proj = nn.Linear(dim, inner, bias=False)
        self.conv_x = depthwise_conv1d(half, d_conv)
        self.conv_z = depthwise_conv1d(half, d_conv) if symmetric else None
        self.ssm = SSM(half, d_state, dt_rank=math.ceil(dim / 16))
        self.out_proj = nn.Linear(inner if merge == "concat" else half, dim, bias=False)

    def forward(self, x, hw=None):                                        # x: (B, L, C)
        x, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)            # each (B, C/2, L)
        y = self.ssm(F.silu(causal_or_same_conv1d(x, self.conv_x, self.causal)))
        if self.conv_z is not None:
            z = causal_or_same_conv1d(z, self.conv_z, self.causal)
        z = F.silu(z)
        y = torch.cat([y, z], dim=1) if self.merge == "concat" else y * z  # (B, C or C/2, L)
        return self.out_proj(y.transpose(1, 2))


def mamba_mixer_macs(dim, tokens, window_tokens, *, num_heads=None, d_state=8, d_conv=3, expand=1,
                     conv="regular", symmetric=True, merge="concat"):
    inner = int(expand * dim)
    half = inner // 2
    ssm_total, scan = ssm_macs(half, tokens, d_state, math.ceil(dim / 16))
    convs = (2 if symmetric else 1) * tokens * half * d_conv
    out_in = inner if merge == "concat" else half
    return tokens * dim * inner + convs + ssm_total + tokens * out_in * dim, scan


class BidirectionalMixer(nn.Module):
    """Vim: the same tokens scanned forwards and backwards by two SSMs (own conv each), averaged, SiLU(z) gate."""

    def __init__(self, dim, num_heads=None, d_state=8, d_conv=3, expand=1, conv="causal"):
        super().__init__()
        inner = int(expand * dim)
        half = inner // 2
        self.causal = conv == "causal"
        self.in_proj = nn.Linear(dim, inner, bias=False)
        self.conv_fwd = depthwise_conv1d(half, d_conv)
        self.conv_bwd = depthwise_conv1d(half, d_conv)
        self.ssm_fwd = SSM(half, d_state, dt_rank=math.ceil(dim / 16))
        self.ssm_bwd = SSM(half, d_state, dt_rank=math.ceil(dim / 16))
        self.out_proj = nn.Linear(half, dim, bias=False)

    def forward(self, x, hw=None):                                        # x: (B, L, C)
        x, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)            # each (B, C/2, L)
        fwd = F.silu(causal_or_same_conv1d(x, self.conv_fwd, self.causal))
        bwd = F.silu(causal_or_same_conv1d(x.flip(-1), self.conv_bwd, self.causal))
        y_fwd, y_bwd = scan_directions([self.ssm_fwd, self.ssm_bwd], [fwd, bwd])
        y = (y_fwd + y_bwd.flip(-1)) / 2 * F.silu(z)                       # (B, C/2, L)
        return self.out_proj(y.transpose(1, 2))


def bidirectional_macs(dim, tokens, window_tokens, *, num_heads=None, d_state=8, d_conv=3, expand=1, conv="causal"):
    inner = int(expand * dim)
    half = inner // 2
    ssm_total, scan = ssm_macs(half, tokens, d_state, math.ceil(dim / 16), directions=2)
    return tokens * dim * inner + 2 * tokens * half * d_conv + ssm_total + tokens * half * dim, scan


MIXER_CHOICES = {"conv": ("regular", "causal"), "symmetric": (True, False), "merge": ("concat", "gate")}

register_token_mixer("M", "mambavision", "MambaVision mixer", "#76b900", MambaVisionMixer, mamba_mixer_macs,
                     knobs={**SSM_KNOBS, "conv": "regular", "symmetric": True, "merge": "concat"},
                     choices=MIXER_CHOICES)
register_token_mixer("S", "mamba", "Mamba mixer", "#1f77b4", MambaVisionMixer, mamba_mixer_macs,
                     knobs={**SSM_KNOBS, "conv": "causal", "symmetric": False, "merge": "gate"},
                     choices=MIXER_CHOICES)
register_token_mixer("B", "bidirectional", "bidirectional SSM (Vim)", "#17becf", BidirectionalMixer,
                     bidirectional_macs, knobs={**SSM_KNOBS, "conv": "causal"},
                     choices={"conv": MIXER_CHOICES["conv"]})
