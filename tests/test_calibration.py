"""The plan's calibration times the trial's own training step, not a look-alike."""
import copy

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
