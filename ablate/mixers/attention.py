"""T (multi-head self-attention) and P (attention and SSM in parallel, Hymba style)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .mamba import SSM_KNOBS, MambaVisionMixer, mamba_mixer_macs
from .registry import register_token_mixer


class Attention(nn.Module):
    """qkv (with bias) -> scaled_dot_product_attention per head -> proj. No positional embedding."""

    def __init__(self, dim, num_heads):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, hw=None):                                        # x: (B, L, C)
        b, length, c = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                    # each (B, heads, L, C/heads)
        x = F.scaled_dot_product_attention(q, k, v)                       # (B, heads, L, C/heads)
        return self.proj(x.transpose(1, 2).reshape(b, length, c))


def attention_macs(dim, tokens, window_tokens, *, num_heads):
    """qkv and proj per token; QK^T and AV within each window (window_tokens^2 * dim each, per window)."""
    windows = tokens // window_tokens
    return 4 * tokens * dim * dim + 2 * windows * window_tokens * window_tokens * dim, 0


class ParallelMixer(nn.Module):
    """Hymba: attention and a MambaVision mixer read the same input; their outputs are normalised and mixed
    with learnable per-channel weights, so the block learns how much of each to use."""

    def __init__(self, dim, num_heads, **ssm_knobs):
        super().__init__()
        self.attn = Attention(dim, num_heads)
        self.ssm = MambaVisionMixer(dim, **ssm_knobs)
        self.norm_attn = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm_ssm = nn.LayerNorm(dim, elementwise_affine=False)
        self.beta_attn = nn.Parameter(torch.full((dim,), 0.5))
        self.beta_ssm = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x, hw=None):                                        # x: (B, L, C)
        return (self.beta_attn * self.norm_attn(self.attn(x)) +
                self.beta_ssm * self.norm_ssm(self.ssm(x)))


def parallel_macs(dim, tokens, window_tokens, *, num_heads, **ssm_knobs):
    attn, _ = attention_macs(dim, tokens, window_tokens, num_heads=num_heads)
    ssm, scan = mamba_mixer_macs(dim, tokens, window_tokens, **ssm_knobs)
    return attn + ssm + 2 * 4 * tokens * dim, scan                        # + two LayerNorms without affine


register_token_mixer("T", "attention", "self-attention", "#d62728", Attention, attention_macs)
register_token_mixer("P", "parallel", "attention ‖ SSM (Hymba)", "#9467bd", ParallelMixer, parallel_macs,
                     knobs=dict(SSM_KNOBS))
