import importlib.util

import pytest
import torch

import ablate
from ablate.presets import PRESETS, convert_official_state_dict, load_official, load_official_file

OFFICIAL_PARAMS = {
    "mambavision_t": 31_794_248, "mambavision_t2": 35_104_008, "mambavision_s": 50_140_584,
    "mambavision_b": 97_685_288, "mambavision_l": 227_961_048, "mambavision_l2": 241_554_824,
}
OFFICIAL_NAMES = {"mambavision_t": "mamba_vision_T", "mambavision_t2": "mamba_vision_T2",
                  "mambavision_s": "mamba_vision_S", "mambavision_b": "mamba_vision_B",
                  "mambavision_l": "mamba_vision_L", "mambavision_l2": "mamba_vision_L2"}


@pytest.fixture
def official(monkeypatch):
    # find_spec, not import: the package imports timm and mamba_ssm, which only the stand-ins provide.
    if importlib.util.find_spec("mambavision") is None:
        pytest.skip("the published mambavision package is the reference: "
                    "pip install --no-deps mambavision==1.2.0 (make test does)")
    pytest.importorskip("einops", reason="the reference model imports einops (in the test extra)")
    from official import import_official
    return import_official(monkeypatch)


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_equal_the_official_code(name):
    with torch.device("meta"):
        model = ablate.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name]


def test_presets_use_the_paper_placement():
    assert PRESETS["mambavision_t"].spec == "C|CCC|MMMMTTTT|MMTT"
    assert PRESETS["mambavision_s"].spec == "CCC|CCC|MMMMTTT|MMMTT"   # odd depth: ceil(N/2) mixers first


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown model 'mambavision_xl'; valid: mambavision_t, "):
        ablate.create_model("mambavision_xl")


def test_create_model_overrides_spec_and_head():
    model = ablate.create_model("mambavision_t", spec="C|CCC|SSSSTTTT|SSTT", num_classes=0)
    assert model.spec.canonical == "C|CCC|SSSSTTTT|SSTT"
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 640)


@pytest.mark.parametrize("name", list(PRESETS))
def test_official_keys_and_shapes_map_onto_ours(official, name):
    reference = getattr(official, OFFICIAL_NAMES[name])()
    with torch.device("meta"):
        ours = ablate.create_model(name)
    converted = convert_official_state_dict(reference.state_dict())
    expected = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected


def _randomise(model, seed):
    """Move every weight and BN statistic off its init, so a wrong mapping cannot hide behind ones and zeros."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith("A_log"):
                tensor.add_(0.1 * noise)
            else:
                tensor.add_(0.01 * noise)


@pytest.mark.parametrize("name, resolution", [("mambavision_t", 224), ("mambavision_s", 160)])
def test_logits_equal_the_official_model(official, name, resolution, tmp_path):
    """Same weights, eval, fp32: our logits equal the official model's. At 160 px stages 3-4 are padded
    (10x10 to 14x14, 5x5 to 7x7), which exercises the padding and cropping path too."""
    torch.manual_seed(0)
    reference = getattr(official, OFFICIAL_NAMES[name])().eval()
    _randomise(reference, seed=1)
    ours = ablate.create_model(name).eval()
    checkpoint = tmp_path / "official.pth.tar"                 # as published: {"state_dict": ...} in a file
    torch.save({"state_dict": reference.state_dict()}, checkpoint)
    load_official_file(ours, checkpoint)
    images = torch.randn(2, 3, resolution, resolution)
    with torch.no_grad():
        expected, got = reference(images), ours(images)
    assert expected.abs().max() > 0.1                      # a real signal, not a vanishing one
    print(f"max |logit| {expected.abs().max():.3f}, max abs diff {(got - expected).abs().max():.2e}")
    assert (got - expected).abs().max().item() < 1e-4


def test_load_official_reports_keys_that_do_not_fit():
    model = ablate.create_model("mambavision_t", num_classes=10)
    state = {"levels.0.blocks.0.conv1.weight": torch.zeros(80, 80, 3, 3), "bogus.weight": torch.zeros(1)}
    with pytest.raises(KeyError, match="unexpected \\['bogus.weight'\\]"):
        load_official(model, state)
