import numpy as np
import pytest
import torch

from ablate.proxy import ProxyConfig
from ablate.train import train_proxy

TINY = {"model": {"spec": "C|C|MT|T", "dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2], "window_size": [8, 8, 8, 4]},
        "data": {"name": "match", "options": {"n_train": 128, "n_val": 64}},
        "trainer": {"epochs": 2, "batch_size": 32}}


def tiny(seed=0, **sections) -> ProxyConfig:
    """A tiny proxy: TINY with the sections' keys replaced, at ``seed``."""
    cfg = {k: dict(v) for k, v in TINY.items()}
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return ProxyConfig.from_dict({**cfg, "seed": seed})


def test_runs_reports_every_epoch_and_counts_params(tmp_path, monkeypatch):
    reports = []
    result = train_proxy(tiny(), report=lambda result, state: reports.append(result))
    assert result.status == "ok" and result.error is None
    assert [r.epochs_done for r in reports] == [1, 2] and result.epochs_done == 2
    assert 0.0 <= result.val_acc_final <= result.val_acc_best <= 1.0
    assert result.params > 0 and result.spec == "C|C|MT|T"


def test_same_config_and_seed_give_identical_metrics(tmp_path, monkeypatch):
    first, second = train_proxy(tiny()), train_proxy(tiny())
    strip = lambda r: [{k: v for k, v in h.items() if k != "train_time_s"} for h in r.history]
    assert strip(first) == strip(second)
    other_seed = train_proxy(tiny(seed=1))
    assert strip(other_seed) != strip(first)


def test_uses_the_threads_it_is_given(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    try:
        train_proxy(tiny(trainer={"threads": 1, "epochs": 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_divergence_stops_at_once_with_the_reason(tmp_path, monkeypatch):
    result = train_proxy(tiny(trainer={"lr": 1e30, "warmup_epochs": 0, "grad_clip": 1e30, "epochs": 3}))
    assert result.status == "failed"
    assert result.error.startswith("diverged: loss is nan at epoch 1, step")
    assert result.epochs_done == 0


def test_bad_spec_is_a_failed_trial_not_a_traceback(tmp_path, monkeypatch):
    result = train_proxy(tiny(model={"spec": "C|C|MQ|T"}))
    assert result.status == "failed"
    assert "SpecError in epoch 1: 'Q' at column 6 (stage 3) is not a block letter" in result.error


def test_missing_dataset_is_a_failed_trial_with_the_path(tmp_path):
    result = train_proxy(tiny(data={"name": "cifar10", "root": str(tmp_path / "nope"), "options": {}}))
    assert result.status == "failed" and "cifar10: directory" in result.error and "nope" in result.error


def test_default_proxy_sees_64_tokens_in_stage_3_and_16_in_stage_4():
    from ablate.build import make_model
    cfg = ProxyConfig()
    model = make_model(cfg, num_classes=2)
    sizes = []
    for stage in model.stages:
        stage.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[-2:].numel()))
    model(torch.zeros(2, 3, cfg.data.image_size, cfg.data.image_size))
    assert sizes[2] == 64 and sizes[3] == 16
    assert model.spec.canonical == "C|CCC|MMMMTTTT|MMTT"


def test_records_loss_and_the_late_means_of_each_budget(tmp_path, monkeypatch):
    # 4 steps per epoch, 8 in all; budgets [0.5, 1], each cooled down over its whole length after the 2 warm-up
    # steps: the branch decays over steps 2-3 and is evaluated after 4, the trunk after epoch 1 (4) and at its late
    # steps 7 and 8
    result = train_proxy(tiny(trainer={"late_evals": 2}))
    assert [(h["step"], h.get("branch")) for h in result.history] == [(4, 0.5), (4, None), (7, None), (8, None)]
    trunk = [h for h in result.history if "branch" not in h]
    late = [h for h in trunk if h["step"] > 8 * 0.75]
    assert result.val_acc_late == pytest.approx(np.mean([h["val_acc"] for h in late]))
    assert result.val_loss_late == pytest.approx(np.mean([h["val_loss"] for h in late]))
    assert result.val_loss_final == trunk[-1]["val_loss"] > 0
    assert result.val_loss_best == min(h["val_loss"] for h in trunk)
    half, whole = result.budgets
    assert (half.fraction, half.steps, whole.fraction, whole.steps) == (0.5, 4, 1.0, 8)
    assert half.val_acc_final == half.val_acc_late == result.history[0]["val_acc"]
    assert (whole.val_acc_late, whole.val_loss_final) == (result.val_acc_late, result.val_loss_final)


def test_designs_of_one_seed_train_on_identical_data(tmp_path, monkeypatch):
    one = train_proxy(tiny(trainer={"epochs": 1}))
    other = train_proxy(tiny(model={"spec": "C|C|TT|M"}, trainer={"epochs": 1}))
    assert one.data_digest == other.data_digest is not None          # same images, same order
    assert one.history != other.history
    assert train_proxy(tiny(seed=1, trainer={"epochs": 1})).data_digest != one.data_digest


def test_a_data_seed_shares_one_dataset_across_seeds(tmp_path, monkeypatch):
    from ablate.build import make_dataset
    shared = [tiny(seed=seed, data={"seed": 7}) for seed in (0, 1)]
    own = [tiny(seed=seed, data={"seed": None}) for seed in (0, 1)]     # each its own
    assert make_dataset(shared[0]).key == make_dataset(shared[1]).key                  # one pack, mapped twice
    assert make_dataset(own[0]).key != make_dataset(own[1]).key
    result = train_proxy(tiny(seed=1, data={"seed": 7}, trainer={"epochs": 1}))
    assert result.data_seed == 7 and result.seed == 1


def test_too_few_images_for_a_batch_is_a_clear_failure(tmp_path, monkeypatch):
    result = train_proxy(tiny(trainer={"batch_size": 256}))
    assert result.status == "failed" and "128 training images make no full batch of trainer.batch_size=256" \
        in result.error
