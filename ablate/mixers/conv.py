"""C: the residual conv block of MambaVision's stages 1-2, on (B, C, H, W) maps."""
import torch.nn as nn

from ..layers import DropPath, layer_scale_or_identity
from .registry import BlockEntry, register


class ConvBlock(nn.Module):
    """x + DropPath(BN(Conv3x3(GELU_tanh(BN(Conv3x3(x)))))). Its layer scale is a knob of its own
    (``layer_scale``, default off): the released models scale token blocks only."""

    layout = "image"

    def __init__(self, dim, *, num_heads=None, mlp_ratio=None, drop_path=0.0, layer_scale=None,
                 kernel=3, conv_layer_scale=None):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel, padding=kernel // 2)
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5)
        self.act1 = nn.GELU(approximate="tanh")
        self.conv2 = nn.Conv2d(dim, dim, kernel, padding=kernel // 2)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5)
        self.ls = layer_scale_or_identity(dim, conv_layer_scale, channel_dim=1)
        self.drop_path = DropPath(drop_path)

    def forward(self, x, hw=None):                                        # x: (B, C, H, W)
        y = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        return x + self.drop_path(self.ls(y))


def conv_block_macs(dim, tokens, window_tokens, *, num_heads=None, mlp_ratio=None, kernel=3, conv_layer_scale=None):
    """Two kxk convs (bias not counted) and two BatchNorms (eval: 2 per element, as fvcore counts them)."""
    return 2 * tokens * dim * dim * kernel * kernel + 2 * 2 * tokens * dim, 0


register(BlockEntry("C", "conv", "conv block", "#7f7f7f", ConvBlock, conv_block_macs,
                    knobs={"kernel": 3, "conv_layer_scale": None}, choices={"kernel": (1, 3, 5, 7)}))
