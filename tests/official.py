"""Import the published ``mambavision`` package (the reference) without timm or mamba_ssm.

It is installed with --no-deps: its timm and mamba_ssm imports are served by the few small stand-ins below,
and its selective_scan_fn by our sequential oracle. Nothing of ours is mocked.
"""
import importlib
import sys
import types

import torch.nn as nn

from ablate.ops.scan_ref import selective_scan_ref


class _DropPath(nn.Module):
    def __init__(self, prob=0.0):
        super().__init__()

    def forward(self, x):  # the equivalence tests run in eval mode, where stochastic depth is the identity
        return x


class _Mlp(nn.Module):
    """timm's Mlp: fc1 -> act -> fc2, the names published checkpoints use."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0, **_):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features or in_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features or in_features, out_features or in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _PretrainedCfg(dict):
    def to_dict(self):
        return dict(self)


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def stub_modules():
    return {
        "timm": _module("timm"),
        "timm.models": _module("timm.models"),
        "timm.models.registry": _module("timm.models.registry", register_model=lambda fn: fn),
        "timm.models.layers": _module("timm.models.layers", trunc_normal_=nn.init.trunc_normal_,
                                      DropPath=_DropPath, LayerNorm2d=type("LayerNorm2d", (nn.LayerNorm,), {})),
        "timm.models._builder": _module("timm.models._builder",
                                        resolve_pretrained_cfg=lambda name: _PretrainedCfg(),
                                        _update_default_kwargs=lambda *args, **kwargs: None),
        "timm.models.vision_transformer": _module("timm.models.vision_transformer", Mlp=_Mlp, PatchEmbed=nn.Module),
        "mamba_ssm": _module("mamba_ssm"),
        "mamba_ssm.ops": _module("mamba_ssm.ops"),
        "mamba_ssm.ops.selective_scan_interface": _module("mamba_ssm.ops.selective_scan_interface",
                                                          selective_scan_fn=selective_scan_ref),
    }


def import_official(monkeypatch):
    """The official ``mambavision.models.mamba_vision`` module, imported under the stand-ins."""
    for name, module in stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [n for n in sys.modules if n == "mambavision" or n.startswith("mambavision.")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("mambavision.models.mamba_vision")
