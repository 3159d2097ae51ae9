"""SSM-free controls: G (gated CNN, MambaOut style) and I (no mixer at all, MLP only)."""
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_token_mixer


class GatedConvMixer(nn.Module):
    """in_proj -> x, z halves; x: depthwise kxk conv over the window's 2-D layout; GELU(z) gate; out_proj.
    The MambaVision mixer with the SSM taken out and a spatial conv in its place."""

    def __init__(self, dim, num_heads=None, kernel=7, expand=1):
        super().__init__()
        inner = int(expand * dim)
        half = inner // 2
        self.in_proj = nn.Linear(dim, inner, bias=False)
        self.conv = nn.Conv2d(half, half, kernel, padding=kernel // 2, groups=half, bias=False)
        self.out_proj = nn.Linear(half, dim, bias=False)

    def forward(self, x, hw):                                             # x: (B, L, C)
        x, z = self.in_proj(x).chunk(2, dim=-1)                           # each (B, L, C/2)
        b, length, c = x.shape
        x = self.conv(x.transpose(1, 2).reshape(b, c, *hw))               # (B, C/2, h, w)
        y = x.flatten(2).transpose(1, 2) * F.gelu(z)                      # (B, L, C/2)
        return self.out_proj(y)


def gated_macs(dim, tokens, window_tokens, *, num_heads=None, kernel=7, expand=1):
    inner = int(expand * dim)
    half = inner // 2
    return tokens * dim * inner + tokens * half * kernel * kernel + tokens * half * dim, 0


register_token_mixer("G", "gated_cnn", "gated CNN (MambaOut)", "#ff7f0e", GatedConvMixer, gated_macs,
                     knobs={"kernel": 7, "expand": 1})
register_token_mixer("I", "identity", "no mixer (MLP only)", "#c7c7c7", None, None)
