import pytest
import torch

import ablate
from ablate.model import build_model
from ablate.mixers import REGISTRY, build_block, get_entry
from ablate.spec import LETTERS

SMALL = dict(dim=16, in_dim=8, num_heads=(1, 2, 2, 4), window_size=(4, 4, 4, 2), mlp_ratio=2, num_classes=5)


def test_registry_covers_every_letter_of_the_grammar():
    assert set(REGISTRY) == set(LETTERS)
    for entry in REGISTRY.values():
        assert entry.label and entry.color.startswith("#") and callable(entry.macs)


@pytest.mark.parametrize("letter", sorted(REGISTRY))
def test_every_letter_builds_runs_and_trains(letter):
    """A model with the letter in the token stages (and, for C, everywhere): forward, backward, and every
    parameter receives a non-zero gradient."""
    torch.manual_seed(0)
    spec = f"C|C|{letter * 3}|{letter * 2}"
    model = ablate.build_model(spec, **SMALL, drop_path_rate=0.1, layer_scale=1e-2)
    images = torch.randn(4, 3, 64, 64)                  # stage 4 is 2x2: every window holds real tokens
    logits = model(images)
    assert logits.shape == (4, 5) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 3, 0, 4])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{letter}: parameters without gradient: {missing}"


@pytest.mark.parametrize("letter", sorted(REGISTRY))
def test_every_block_takes_the_same_constructor_arguments(letter):
    block = build_block(letter, 16, num_heads=2, mlp_ratio=2, drop_path=0.1, layer_scale=None)
    assert block.layout in ("image", "tokens")
    x = torch.randn(2, 16, 4, 4) if block.layout == "image" else torch.randn(2, 16, 16)
    assert block(x, (4, 4)).shape == x.shape


@pytest.mark.parametrize("letter", sorted(REGISTRY))
def test_analytic_macs_are_positive_and_scale_with_tokens(letter):
    entry = get_entry(letter)
    small, scan_small = entry.macs(32, 64, 64, num_heads=2, mlp_ratio=4, **entry.knobs)
    large, scan_large = entry.macs(32, 128, 64, num_heads=2, mlp_ratio=4, **entry.knobs)
    assert 0 < small < large
    assert (scan_small > 0) == (letter in "MSBXP") and scan_large == 2 * scan_small


def test_mixed_and_inverted_stages_convert_layouts():
    """Conv and token blocks in one stage, and EfficientVMamba's global mixers early, convs late."""
    for spec in ["C|CCMM|MCTC|TC", "M|MMM|CCCCCCCC|CCCC"]:
        model = ablate.build_model(spec, **SMALL)
        assert model(torch.randn(1, 3, 48, 40)).shape == (1, 5)


def test_stage_windows_tokens_and_restores_the_map():
    """A token block sees windows of window^2 tokens; the stage returns the map unpadded and unshuffled."""
    seen = []
    model = ablate.build_model("C|C|I|I", **SMALL, stem_stride=1)
    block = model.stages[2].blocks[0]
    block.register_forward_pre_hook(lambda module, args: seen.append((args[0].shape, args[1])))
    model.eval()
    features = model.forward_features(torch.randn(1, 3, 56, 56))     # stage 3 map 14x14 -> padded to 16x16
    assert seen == [(torch.Size([16, 16, 64]), (4, 4))]                # 16 windows of 4x4 tokens, width 64
    assert features.shape == (1, 128, 7, 7)


def test_window_partition_round_trip_is_exact():
    from ablate.layers import pad_to_multiple, window_partition, window_reverse
    x = torch.randn(2, 3, 10, 7)
    padded = pad_to_multiple(x, 4)
    tokens = window_partition(padded, 4)
    assert tokens.shape == (2 * 3 * 2, 16, 3)
    assert torch.equal(window_reverse(tokens, 4, 12, 8)[..., :10, :7], x)


def test_any_number_of_stages():
    model = ablate.build_model("C|MT", dim=8, in_dim=8, num_heads=(1, 2), window_size=4, num_classes=3)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_num_classes_zero_gives_pooled_features():
    model = ablate.build_model("C|C|MT|MT", **{**SMALL, "num_classes": 0})
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 128)
    assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 128, 1, 1)


def test_stem_stride_one_keeps_resolution():
    model = ablate.build_model("C|C|MT|MT", **SMALL, stem_stride=1)
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 128, 4, 4)
    with pytest.raises(ValueError, match="stem_stride must be one of \\[1, 2, 4\\], got 3"):
        ablate.build_model("C|C|MT|MT", **SMALL, stem_stride=3)


def test_vanilla_mamba_variant_of_the_t_layout():
    t = ablate.create_model("mambavision_t")
    s = ablate.build_model("C|CCC|SSSSTTTT|SSTT", dim=80, in_dim=32, num_heads=(2, 4, 8, 16),
                           window_size=(8, 8, 14, 7))
    n_t, n_s = (sum(p.numel() for p in m.parameters()) for m in (t, s))
    assert n_s < n_t                                   # no symmetric conv, out_proj from C/2


@pytest.mark.parametrize("knobs", [
    {"conv": "causal", "symmetric": False, "merge": "gate"},
    {"conv": "regular", "symmetric": False, "merge": "gate"},
    {"conv": "regular", "symmetric": True, "merge": "gate"},
    {"conv": "regular", "symmetric": True, "merge": "concat"},
])
def test_the_four_token_mixer_rows_build(knobs):
    model = ablate.build_model("C|C|MMTT|MT", **SMALL, mixer_knobs={"M": knobs})
    mixer = model.stages[2].blocks[0].mixer
    assert mixer.causal == (knobs["conv"] == "causal")
    assert (mixer.conv_z is not None) == knobs["symmetric"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_causal_conv_does_not_see_the_future():
    torch.manual_seed(0)
    block = build_block("M", 16, num_heads=2, knobs={"conv": "causal", "symmetric": False, "merge": "gate"})
    x = torch.randn(1, 10, 16)
    y1 = block.mixer(x, None)
    x2 = x.clone()
    x2[:, 6:] += 1.0
    y2 = block.mixer(x2, None)
    assert torch.allclose(y1[:, :6], y2[:, :6], atol=1e-6) and not torch.allclose(y1[:, 6:], y2[:, 6:])


def test_unknown_knob_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown knob\\(s\\) convv for block 'M' \\(mambavision\\); "
                                         "valid: d_state, d_conv, expand, conv, symmetric, merge"):
        ablate.build_model("C|C|MT|MT", **SMALL, mixer_knobs={"M": {"convv": "causal"}})


def test_bad_knob_value_lists_the_choices():
    with pytest.raises(ValueError, match="knob merge='sum' for block 'M' is not valid; choose one of 'concat', 'gate'"):
        ablate.build_model("C|C|MT|MT", **SMALL, mixer_knobs={"M": {"merge": "sum"}})


def test_knobs_for_a_letter_without_knobs():
    with pytest.raises(ValueError, match="unknown knob\\(s\\) heads for block 'T' \\(attention\\); valid: none"):
        ablate.build_model("C|C|MT|MT", **SMALL, mixer_knobs={"T": {"heads": 2}})


def test_widths_and_spec_must_agree():
    with pytest.raises(ablate.SpecError, match="has 3 stages but the model is given widths for 4"):
        ablate.build_model("C|C|MT", **SMALL)


def test_attention_heads_must_divide_width():
    with pytest.raises(ValueError, match="attention width 64 is not divisible by num_heads=3"):
        ablate.build_model("C|C|T|T", **{**SMALL, "num_heads": (1, 1, 3, 4)})


@pytest.mark.parametrize("letter", sorted(REGISTRY))
def test_every_letter_trains_under_bf16_autocast(letter):
    # train_proxy runs bf16 autocast on CUDA; CPU autocast takes the same dtype paths (a backward that met
    # bf16 and fp32 tensors once failed every Mamba trial on the GPU).
    torch.manual_seed(0)
    model = build_model(f"C|C|{letter}{letter}|{letter}", dim=8, in_dim=8, num_heads=2, window_size=4,
                        mlp_ratio=2, num_classes=3, stem_stride=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 16, 16))
    out.float().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
