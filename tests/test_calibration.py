"""The plan's calibration times the trial's own training step, not a look-alike; and its GPU memory check."""
import copy

import pytest
import torch

from ablate.build import proxy_model
from ablate.calibration import calibration_batch, timed_steps
from ablate.proxy import ProxyConfig, TrainerConfig
from ablate.train import make_optimizer, mixed_precision, train_step


def test_the_calibrated_step_is_the_trials_step():
    """Label smoothing, clipping and the optimizer's parameter groups change the update: a calibration that
    re-implemented the step without them (as plan.calibrate did) leaves other weights than the trial's step."""
    proxy = ProxyConfig(trainer=TrainerConfig(batch_size=8, label_smoothing=0.3, grad_clip=1e-3, lr=0.05,
                                              weight_decay=0.5))
    proxy.model.dim = proxy.model.in_dim = 8
    torch.manual_seed(0)
    calibrated = proxy_model(proxy)
    trial = copy.deepcopy(calibrated)
    x, y = calibration_batch(proxy, torch.device("cpu"))
    times = timed_steps(calibrated, make_optimizer(calibrated, proxy.trainer), proxy, x, y, steps=2)
    optimizer = make_optimizer(trial, proxy.trainer)
    for step in range(2):
        train_step(trial, optimizer, x, y, proxy, f"step {step}", lambda: mixed_precision(False), proxy.trainer.lr)
    assert len(times) == 2 and all(t > 0 for t in times)
    for (name, mine), theirs in zip(calibrated.state_dict().items(), trial.state_dict().values()):
        assert torch.equal(mine, theirs), name


def test_a_cpu_calibration_records_no_gpu_peak_and_an_old_cache_entry_is_calibrated_again(cache):
    import json

    from ablate.calibration import _calibration_key, cached_calibration
    proxy = ProxyConfig(trainer=TrainerConfig(batch_size=4))
    proxy.model.dim = proxy.model.in_dim = 8
    path = cache / "plan_calibration.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({_calibration_key(proxy): {"step_s": 9.0, "eval_s_per_image": 1.0}}))
    fresh = cached_calibration(proxy)                   # the entry from before peaks were recorded is replaced
    assert fresh["peak_train_mb"] is None and fresh["step_s"] != 9.0
    assert json.loads(path.read_text())[_calibration_key(proxy)] == fresh
    assert cached_calibration(proxy) == fresh


# (design -> calibrated peak MiB, gpus_per_trial, GPU MiB) -> what the plan says; CUDA_CONTEXT_MB is 600:
# 4 x (10,000 + 600) = 42,400 MiB > 32,768; 3 x 10,600 = 31,800 fit.
@pytest.mark.parametrize("peaks, share, gpu_mb, expected", [
    ({"a": 3000.0, "b": 10000.0, "cpu": None}, 0.25, 32768,
     "resources.gpus_per_trial=0.25 puts 4 trials on each GPU, and design 'b' needs 4 x (10,000 MiB peak in training "
     "+ 600 MiB CUDA context) = 42,400 MiB, over the 32,768 MiB of the H: raise resources.gpus_per_trial to 0.3333 "
     "(3 per GPU fit) or lower trainer.batch_size"),
    ({"a": 3000.0, "b": 10000.0}, 0.5, 32768, ""),
    ({"a": 3000.0, "b": 10000.0}, 1 / 3, 32768, ""),            # 1/3 is three trials, not two
    ({"b": 10000.0}, 1.0, 8000,
     "resources.gpus_per_trial=1 puts 1 trial on each GPU, and design 'b' needs 1 x (10,000 MiB peak in training "
     "+ 600 MiB CUDA context) = 10,600 MiB, over the 8,000 MiB of the H: lower trainer.batch_size or model.dim: "
     "one trial alone does not fit"),
    ({"a": None, "b": None}, 0.25, 1000, ""),                   # calibrated on a CPU: nothing known
])
def test_the_gpu_memory_check_names_the_design_the_memory_and_what_to_change(peaks, share, gpu_mb, expected):
    from ablate.calibration import gpu_memory_misfit
    assert gpu_memory_misfit(peaks, share, gpu_mb, "H") == expected
