"""build_model(spec, ...): stem, stages of registry blocks with stage-level windowing, downsamplers, head."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
import torch.nn.functional as F

from .layers import init_weights, pad_to_multiple, window_partition, window_reverse
from .mixers import build_block, get_entry
from .spec import Spec, parse_spec

STEM_STRIDES = {4: (2, 2), 2: (2, 1), 1: (1, 1)}


class Stem(nn.Sequential):
    """Conv3x3 -> BN -> ReLU -> Conv3x3 -> BN -> ReLU; stride 4 as released, 2 or 1 for small proxy images."""

    def __init__(self, in_chans, in_dim, dim, stride=4):
        if stride not in STEM_STRIDES:
            raise ValueError(f"stem_stride must be one of {sorted(STEM_STRIDES)}, got {stride}")
        s1, s2 = STEM_STRIDES[stride]
        super().__init__(
            nn.Conv2d(in_chans, in_dim, 3, s1, 1, bias=False), nn.BatchNorm2d(in_dim, eps=1e-4), nn.ReLU(),
            nn.Conv2d(in_dim, dim, 3, s2, 1, bias=False), nn.BatchNorm2d(dim, eps=1e-4), nn.ReLU())


class Stage(nn.Module):
    """Blocks of any layout. Before the first token block the map is padded to a multiple of the window and
    partitioned into windows (raster order); before an image block, and at the end, it is merged back and
    cropped. A stage of token blocks therefore windows exactly once, as MambaVision does."""

    def __init__(self, blocks: Sequence[nn.Module], window: int, downsample: Optional[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.window = window
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x):                                                  # x: (B, C, H, W)
        height, width = x.shape[-2:]
        window, padded = self.window, None
        for block in self.blocks:
            if block.layout == "tokens" and padded is None:
                x = pad_to_multiple(x, window)
                padded = x.shape[-2:]
                x = window_partition(x, window)                            # (B*windows, window^2, C)
            elif block.layout == "image" and padded is not None:
                x = window_reverse(x, window, *padded)[..., :height, :width]
                padded = None
            x = block(x, (window, window))
        if padded is not None:
            x = window_reverse(x, window, *padded)[..., :height, :width].contiguous()
        return self.downsample(x)


class Backbone(nn.Module):
    def __init__(self, spec: Spec, *, dim, in_dim, num_heads, window_size, mlp_ratio, num_classes,
                 drop_path_rate, layer_scale, mixer_knobs, in_chans, stem_stride):
        super().__init__()
        self.spec = spec
        widths = [dim * 2 ** i for i in range(len(spec.stages))]
        self.num_features = widths[-1]
        total = sum(spec.depths)
        drop_rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear 0 -> rate
        self.stem = Stem(in_chans, in_dim, dim, stem_stride)
        self.stages = nn.ModuleList()
        for i, letters in enumerate(spec.stages):
            blocks = [build_block(letter, widths[i], num_heads=num_heads[i], mlp_ratio=mlp_ratio,
                                  drop_path=drop_rates.pop(0), layer_scale=layer_scale,
                                  knobs=mixer_knobs.get(letter)) for letter in letters]
            last = i == len(spec.stages) - 1
            downsample = None if last else nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1, bias=False)
            self.stages.append(Stage(blocks, window_size[i], downsample))
        self.head_norm = nn.BatchNorm2d(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_weights)

    def forward_features(self, x):                                         # (B, 3, H, W) -> (B, 8dim, H/32, W/32)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x, pre_logits: bool = False):
        x = F.adaptive_avg_pool2d(self.head_norm(x), 1).flatten(1)         # (B, num_features)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _per_stage(name, values, stages):
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,) * stages
    if len(values) != stages:
        raise ValueError(f"{name} has {len(values)} entries but the spec has {stages} stages")
    return values


def build_model(spec, *, dim: int, in_dim: int, num_heads, window_size, mlp_ratio: float = 4,
                num_classes: int = 1000, drop_path_rate: float = 0.0, layer_scale: Optional[float] = None,
                mixer_knobs: Optional[Dict[str, dict]] = None, in_chans: int = 3, stem_stride: int = 4) -> Backbone:
    """Build a backbone from a spec string such as ``C|CCC|MMMMTTTT|MMTT``.

    Stage i has width dim*2^i, ``num_heads[i]`` heads and windows of ``window_size[i]`` (per-stage tuples, or
    one value for all). ``mixer_knobs`` maps a letter to its knobs, e.g. {"M": {"conv": "causal"}};
    ``layer_scale`` scales token blocks (conv blocks have their own knob). ``num_classes=0`` returns pooled
    features. ``stem_stride`` 4 is the released stem; 2 or 1 keep more tokens for small proxy images.
    """
    num_stages = len(num_heads) if isinstance(num_heads, (list, tuple)) else None
    spec = parse_spec(spec, num_stages=num_stages)
    stages = len(spec.stages)
    mixer_knobs = dict(mixer_knobs or {})
    for letter, knobs in mixer_knobs.items():
        get_entry(letter).resolve_knobs(knobs)                               # fail before building anything
    return Backbone(spec, dim=dim, in_dim=in_dim, num_heads=_per_stage("num_heads", num_heads, stages),
                    window_size=_per_stage("window_size", window_size, stages), mlp_ratio=mlp_ratio,
                    num_classes=num_classes, drop_path_rate=drop_path_rate, layer_scale=layer_scale,
                    mixer_knobs=mixer_knobs, in_chans=in_chans, stem_stride=stem_stride)
