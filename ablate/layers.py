"""Small layers every block shares: stochastic depth, MLP, layer scale, windowing, init."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample, rescaling the survivors."""

    def __init__(self, prob: float = 0.0):
        super().__init__()
        self.prob = prob

    def forward(self, x):
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self):
        return f"prob={self.prob}"


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel residual scale (CaiT); channels last, or channels first with ``channel_dim=1``."""

    def __init__(self, dim: int, init: float, channel_dim: int = -1):
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))
        self.channel_dim = channel_dim

    def forward(self, x):
        if self.channel_dim == -1:
            return x * self.gamma
        return x * self.gamma.view(-1, *([1] * (x.dim() - self.channel_dim - 1)))


def layer_scale_or_identity(dim, init, channel_dim=-1):
    return nn.Identity() if init is None else LayerScale(dim, init, channel_dim)


def window_partition(x, window):
    """(B, C, H, W) with H, W multiples of ``window`` -> (B*nH*nW, window*window, C), windows in raster order."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // window, window, w // window, window)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, window * window, c)


def window_reverse(tokens, window, h, w):
    """Inverse of window_partition: (B*nH*nW, window*window, C) -> (B, C, h, w)."""
    c = tokens.shape[-1]
    x = tokens.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(-1, c, h, w)


def pad_to_multiple(x, window):
    """Pad (B, C, H, W) on the right and bottom so both sides are multiples of ``window``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % window, 0, (-h) % window))


def init_weights(module: nn.Module) -> None:
    """The reference init: Linear trunc-normal(0.02) with zero bias, norms to identity. Parameters marked
    ``_no_reinit`` (Mamba's dt bias) keep the value their module gave them."""
    if isinstance(module, nn.Linear):
        if not getattr(module.weight, "_no_reinit", False):
            nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)) and module.weight is not None:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
