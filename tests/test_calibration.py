"""The plan's calibration times the trial's own training step, not a look-alike; its GPU memory check; and how
resources.gpus_per_trial=auto packs a GPU."""
import pytest
import torch

from ablate.build import proxy_model
from ablate.calibration import calibration_batch, timed_steps, trial_step
from ablate.proxy import ProxyConfig, TrainerConfig
from ablate.train import make_optimizer, mixed_precision, train_step


def test_the_calibrated_step_is_the_trials_step():
    """Label smoothing, clipping and the optimizer's parameter groups change the update: a calibration that
    re-implemented the step without them (as plan.calibrate did) leaves other weights than the trial's step."""
    proxy = ProxyConfig(trainer=TrainerConfig(batch_size=8, label_smoothing=0.3, grad_clip=1e-3, lr=0.05,
                                              weight_decay=0.5))
    proxy.model.dim = proxy.model.in_dim = 8
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    step, _, calibrated, _ = trial_step(proxy, 1, cpu)
    times = timed_steps(step, cpu, steps=2)
    torch.manual_seed(0)
    x, y = calibration_batch(proxy, cpu)
    trial = proxy_model(proxy).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(trial, proxy.trainer)
    for index in range(2):
        train_step(trial, optimizer, x, y, proxy, f"step {index}", lambda: mixed_precision(False), proxy.trainer.lr)
    assert len(times) == 2 and all(t > 0 for t in times)
    for (name, mine), theirs in zip(calibrated.state_dict().items(), trial.state_dict().values()):
        assert torch.equal(mine, theirs), name


def test_a_fused_calibration_steps_each_seed_as_its_own_trial_would():
    """The plan times a fused trial with StackedModels' step: each stacked model gets the gradient, label smoothing
    and clipping included, that the trial's step gives it alone (to float rounding, as in tests/test_fused.py)."""
    proxy = ProxyConfig(trainer=TrainerConfig(batch_size=8, label_smoothing=0.3, grad_clip=1e-3))
    proxy.model.dim = proxy.model.in_dim = 8
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    step, forward, stack, _ = trial_step(proxy, 2, cpu)
    timed_steps(step, cpu, steps=1)
    assert forward()[1].shape == (2, 8, 10)                         # (seeds, batch, classes)
    torch.manual_seed(0)
    x, y = calibration_batch(proxy, cpu)
    for index, alone in enumerate([proxy_model(proxy), proxy_model(proxy)]):
        train_step(alone, make_optimizer(alone, proxy.trainer), x.contiguous(), y, proxy, "step",
                   lambda: mixed_precision(False), proxy.trainer.lr)
        for name, param in alone.named_parameters():
            difference = (stack.params[name].grad[index] - param.grad).norm().item()
            assert difference <= 1e-4 * param.grad.norm().item() + 1e-8, name


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


# Each bound on a table with a known answer. Memory: 0.9 x 143,771 MiB / (peak + 600 MiB context); CPUs: as given;
# speed: a trial's step against SPEED_PROBE (8) trials' seeds stacked.
@pytest.mark.parametrize("designs, cpus, trials, binding", [
    # 129,394 / 10,600 = 12.2 -> 12 by memory; 16 CPUs; a stack of 8 costs 2x one trial: 8 x 10 / 20 = 4 by speed
    ({"a": {"peak_train_mb": 3000.0, "step_s": 0.010, "probe_step_s": 0.020},
      "b": {"peak_train_mb": 10000.0, "step_s": 0.010, "probe_step_s": 0.080}}, 16, 1, "speed"),
    ({"a": {"peak_train_mb": 3000.0, "step_s": 0.010, "probe_step_s": 0.020}}, 16, 4, "speed"),
    # the GPU idles through 7/8 of a trial's step, but 3 CPUs per GPU allow 3 trials
    ({"a": {"peak_train_mb": 3000.0, "step_s": 0.010, "probe_step_s": 0.010}}, 3, 3, "cpus"),
    # 129,394 / 40,600 = 3.2: memory allows 3; the probe did not fit (None): no speed bound
    ({"a": {"peak_train_mb": 40000.0, "step_s": 0.010, "probe_step_s": None}}, 16, 3, "memory"),
    # one trial does not fit: 1 (and the memory check refuses it with its message)
    ({"a": {"peak_train_mb": 200000.0, "step_s": 0.010, "probe_step_s": 0.080}}, 16, 1, "memory"),
])
def test_auto_packs_the_fewest_trials_that_memory_cpus_and_speed_allow(designs, cpus, trials, binding):
    from ablate.calibration import gpu_packing
    packing = gpu_packing(designs, 143771, cpus)
    assert packing.trials == trials and packing.bounds[binding] == min(packing.bounds.values())
    assert packing.share == {1: 1.0, 3: 0.3333, 4: 0.25}[trials]
    assert packing.describe().startswith(f"resources.gpus_per_trial=auto: {trials} trials per GPU")
    assert f"{binding} {packing.bounds[binding]} (" in packing.describe()
