import torch

from ablate.train import ProxyConfig, train_proxy

TINY = {"model": {"spec": "C|C|MT|T", "dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2], "window_size": [8, 8, 8, 4]},
        "data": {"name": "match", "options": {"n_train": 128, "n_val": 64}},
        "trainer": {"epochs": 2, "batch_size": 32}}


def with_(base, **sections):
    cfg = {k: dict(v) for k, v in base.items()}
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def test_runs_reports_every_epoch_and_counts_params(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    reports = []
    result = train_proxy(TINY, report=reports.append)
    assert result["status"] == "ok" and result["error"] is None
    assert [r["epoch"] for r in reports] == [1, 2] and result["epochs_done"] == 2
    assert 0.0 <= result["val_acc_final"] <= result["val_acc_best"] <= 1.0
    assert result["params"] > 0 and result["spec"] == "C|C|MT|T"


def test_same_config_and_seed_give_identical_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    first, second = train_proxy(TINY), train_proxy(TINY)
    strip = lambda r: [{k: v for k, v in h.items() if k != "train_time_s"} for h in r["history"]]
    assert strip(first) == strip(second)
    other_seed = train_proxy({**TINY, "seed": 1})
    assert strip(other_seed) != strip(first)


def test_uses_the_threads_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    before = torch.get_num_threads()
    try:
        train_proxy(with_(TINY, trainer={"threads": 1, "epochs": 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_divergence_stops_at_once_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    result = train_proxy(with_(TINY, trainer={"lr": 1e30, "warmup_epochs": 0, "grad_clip": 1e30, "epochs": 3}))
    assert result["status"] == "failed"
    assert result["error"].startswith("diverged: loss is nan at epoch 1, step")
    assert result["epochs_done"] == 0


def test_bad_spec_is_a_failed_trial_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path))
    result = train_proxy(with_(TINY, model={"spec": "C|C|MQ|T"}))
    assert result["status"] == "failed"
    assert "SpecError in epoch 1: 'Q' at column 6 (stage 3) is not a block letter" in result["error"]


def test_missing_dataset_is_a_failed_trial_with_the_path(tmp_path):
    result = train_proxy(with_(TINY, data={"name": "cifar10", "root": str(tmp_path / "nope"), "options": {}}))
    assert result["status"] == "failed" and "cifar10: directory" in result["error"] and "nope" in result["error"]


def test_default_proxy_sees_64_tokens_in_stage_3_and_16_in_stage_4():
    from ablate.train import make_model
    cfg = ProxyConfig()
    model = make_model(cfg, num_classes=2)
    sizes = []
    for stage in model.stages:
        stage.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[-2:].numel()))
    model(torch.zeros(2, 3, cfg.data.image_size, cfg.data.image_size))
    assert sizes[2] == 64 and sizes[3] == 16
    assert model.spec.canonical == "C|CCC|MMMMTTTT|MMTT"
