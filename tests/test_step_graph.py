"""The training step as a CUDA graph (ablate/step_graph.py): on a CPU every trial steps eagerly and its row says why;
a branch's put-back keeps the optimizer's state tensors (a captured graph reads them); on a GPU, a graphed trial
ends as the eager one does, to bf16 rounding."""
import copy

import pytest
import torch

from ablate.proxy import ProxyConfig
from ablate.step_graph import GRAPH, graph_possible, restore_optimizer_
from ablate.train import make_optimizer, train_proxy

TINY = {"model": {"spec": "C|C|MT|T", "dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2]},
        "data": {"name": "match", "options": {"n_train": 128, "n_val": 64}},
        "trainer": {"epochs": 2, "batch_size": 32, "threads": 1}, "seed": 0}


def test_why_a_step_is_not_a_graph():
    assert graph_possible(torch.device("cpu"), True) == graph_possible(torch.device("cpu"), False) == \
        "no CUDA graphs on cpu"
    assert graph_possible(torch.device("cuda"), False) == "trainer.cuda_graph=false"
    assert graph_possible(torch.device("cuda"), True) == ""


def test_restoring_the_optimizer_writes_into_its_own_state_tensors():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    optimizer = make_optimizer(model, ProxyConfig().trainer)
    step = lambda: (model(torch.randn(8, 4)).square().mean().backward(), optimizer.step(), optimizer.zero_grad())
    step()
    saved = copy.deepcopy(optimizer.state_dict())
    tensors = [id(t) for state in optimizer.state.values() for t in state.values()]
    step()
    step()
    expected = make_optimizer(model, ProxyConfig().trainer)
    expected.load_state_dict(saved)
    restore_optimizer_(optimizer, saved)
    assert [id(t) for state in optimizer.state.values() for t in state.values()] == tensors   # the same tensors
    for mine, theirs in zip(optimizer.state.values(), expected.state.values()):
        assert all(torch.equal(mine[key], theirs[key]) for key in theirs)                  # the saved values


def test_a_cpu_trial_steps_eagerly_and_its_row_says_why():
    result = train_proxy(ProxyConfig.from_dict(TINY))
    assert result.status == "ok" and result.step_mode == "eager: no CUDA graphs on cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fused", [False, True])
def test_a_graphed_trial_ends_as_the_eager_one(fused):
    from ablate.fused import train_fused
    def run(graph):
        cfg = ProxyConfig.from_dict({**TINY, "trainer": {**TINY["trainer"], "device": "cuda", "cuda_graph": graph}})
        cfgs = [cfg, ProxyConfig.from_dict({**TINY, "seed": 1, "trainer": cfg.trainer.__dict__})]
        return train_fused(cfgs) if fused else [train_proxy(cfg)]
    graphed, eager = run(True), run(False)
    for g, e in zip(graphed, eager):
        assert g.step_mode == GRAPH and e.step_mode == "eager: trainer.cuda_graph=false"
        assert g.train_loss == pytest.approx(e.train_loss, rel=0.02)      # bf16: the same arithmetic, other kernels
        assert abs(g.val_acc_late - e.val_acc_late) <= 0.1
