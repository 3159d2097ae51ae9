"""A trial goes on from its last epoch's checkpoint and ends as the uninterrupted trial does, bit for bit on a CPU.
(A Ray worker SIGKILLed and a node killed mid-epoch, retried from their checkpoints: tests/test_cluster.py.)"""
import pytest
import torch

from ablate.proxy import ProxyConfig
from ablate.train import TrainState, train_proxy

# three epochs on the default ladder (a branch at half the steps), drop path on (the random state matters), one thread
CONFIG = {"model": {"spec": "C|C|MT|T", "dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2], "window_size": [8, 8, 8, 4],
                    "drop_path_rate": 0.2},
          "data": {"name": "match", "options": {"n_train": 192, "n_val": 64}},
          "trainer": {"epochs": 3, "batch_size": 32, "threads": 1}, "seed": 3}


def comparable(result):
    """A result without its wall-clock times (the only fields a resumed trial may change)."""
    fields = {k: v for k, v in result.__dict__.items() if k != "train_time_s"}
    fields["history"] = [{k: v for k, v in h.items() if k != "train_time_s"} for h in result.history]
    return fields


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The trial run straight through, with each epoch's checkpoint saved."""
    folder = tmp_path_factory.mktemp("states")
    result = train_proxy(ProxyConfig.from_dict(CONFIG),
                         report=lambda result, state: state.save(folder / f"epoch{state.epochs_done}.pt"))
    assert result.status == "ok" and len(result.budgets) == 2
    return result, folder


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_trial_resumed_from_a_checkpoint_ends_as_the_uninterrupted_one(uninterrupted, epoch):
    whole, folder = uninterrupted
    state = TrainState.load(folder / f"epoch{epoch}.pt")
    assert state.epochs_done == epoch and state.result["epochs_done"] == epoch
    reports = []
    resumed = train_proxy(ProxyConfig.from_dict(CONFIG), start=state,
                          report=lambda result, state: reports.append(result.epochs_done))
    assert reports == list(range(epoch + 1, 4))                   # only the epochs after the checkpoint ran
    assert comparable(resumed) == comparable(whole)
    assert resumed.train_time_s >= state.elapsed_s


def test_without_the_random_state_the_resumed_trial_differs(uninterrupted):
    """Drop path draws from the global generator: the checkpoint's random state is what makes the resume exact."""
    whole, folder = uninterrupted
    state = TrainState.load(folder / "epoch1.pt")
    state.rng = torch.Generator().manual_seed(12345).get_state()
    assert comparable(train_proxy(ProxyConfig.from_dict(CONFIG), start=state)) != comparable(whole)
