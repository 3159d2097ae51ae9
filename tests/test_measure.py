import time

import pytest
import torch.nn as nn

import ablate
from ablate.measure import count_macs, count_params, peak_memory, throughput
from ablate.mixers import REGISTRY, build_block


class OneBlock(nn.Module):
    """A single registry block as a module of one tensor input, for fvcore to trace."""

    def __init__(self, block, hw):
        super().__init__()
        self.block, self.hw = block, hw

    def forward(self, x):
        return self.block(x, self.hw)


@pytest.mark.parametrize("letter", sorted(REGISTRY))
def test_analytic_macs_agree_with_fvcore(letter):
    entry = REGISTRY[letter]
    dim, heads, windows, side = 32, 2, 3, 8
    block = build_block(letter, dim, num_heads=heads, mlp_ratio=4)
    shape = (1, dim, side, side) if block.layout == "image" else (windows, side * side, dim)
    tokens = side * side * (1 if block.layout == "image" else windows)
    measured = count_macs(OneBlock(block, (side, side)), shape)
    total, scan = entry.macs(dim, tokens, side * side, num_heads=heads, mlp_ratio=4, **entry.knobs)
    assert abs(measured["macs_total"] - total) <= 0.01 * total
    assert measured["macs_scan"] == scan


def test_mambavision_t_is_4_47_gmacs_without_scan_and_attention_matmuls():
    macs = count_macs(ablate.create_model("mambavision_t"), (1, 3, 224, 224))
    published_convention = macs["macs_no_scan"] - macs["macs_attention"]
    assert abs(published_convention / 1e9 - 4.47) < 0.005
    assert macs["macs_scan"] == 4 * 196 * 160 * 8 * 4 + 2 * 49 * 320 * 8 * 4     # 4 + 2 M blocks
    assert macs["macs_attention"] == 4 * 2 * 196 * 196 * 320 + 2 * 2 * 49 * 49 * 640
    assert set(macs["unsupported_ops"]) <= {"aten::" + op for op in (
        "gelu", "add", "neg", "pad", "silu", "exp", "softplus", "mul", "sub", "unflatten", "movedim")}


def test_count_params_and_trainable_only():
    model = ablate.build_model("C|MT", dim=8, in_dim=8, num_heads=(1, 2), window_size=4, num_classes=3)
    total = count_params(model)
    model.head.weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == total - model.head.weight.numel()


def test_throughput_reports_rate_spread_and_settings():
    model = ablate.build_model("C|MT", dim=8, in_dim=8, num_heads=(1, 2), window_size=4, num_classes=3)
    result = throughput(model, batch=4, resolution=32, warmup=1, iters=3)
    assert result["throughput_min"] <= result["throughput_img_s"] <= result["throughput_max"]
    assert result["batch"] == 4 and result["dtype"] == "fp32" and result["device"] == "cpu"


def test_peak_memory_is_positive():
    model = ablate.build_model("C|MT", dim=8, in_dim=8, num_heads=(1, 2), window_size=4, num_classes=3)
    assert peak_memory(model, batch=2, resolution=32, training=True)["peak_mem_mb"] > 0


def test_throughput_warms_up_for_at_least_warmup_s():
    # A GPU needs seconds of work before its clocks settle: warm-up is counted in time as well as passes.
    model = nn.Conv2d(3, 4, 3)
    start = time.perf_counter()
    result = throughput(model, batch=2, resolution=16, warmup=1, iters=2, warmup_s=0.2)
    assert time.perf_counter() - start >= 0.2
    assert result["warmup_passes"] > 1
    assert throughput(model, batch=2, resolution=16, warmup=1, iters=2)["warmup_passes"] == 1
