"""A trial's training step as one CUDA graph (trainer.cuda_graph): for GPUs, where a proxy trial is bound by kernel
launches, not arithmetic (reports/data/gpu_feed.md: 25-33% GPU utilisation for one trial).

The eager step (train.train_step, fused.StackedModels.train_step) is the reference and the CPU path. On CUDA the
StepRunner takes the trial's first WARMUP_STEPS steps eagerly with the graph's body (forward, loss, backward,
clipping and the optimizer's step; on a side stream, as capture requires), captures the next one with static input
buffers and replays the graph for every step after: one launch instead of thousands. What the graph cannot hold
stays outside it: the learning rate is a tensor the optimizer reads (AdamW with capturable=True) and is filled
before each replay, and the divergence check reads the loss after the replay (an eager step checks it before the
update; a diverged trial fails either way). Where capture fails, the trial goes on eagerly and ``mode`` says why;
the trial's row records it (TrialResult.step_mode).
"""
from typing import Callable, Optional

import torch

WARMUP_STEPS = 3            # eager steps before capture: cuDNN and the allocator settle, the optimizer's state exists

EAGER = "eager"
GRAPH = "cuda graph"


class StepRunner:
    """One training step at a time. ``eager(x, y, lr, where)``: the reference step, returning the loss on the host
    (raising or failing seeds on divergence); ``body(x, y)``: the same step without a host sync, returning the loss
    tensor; ``check(loss, where)``: the divergence check on that tensor, returning the loss on the host."""

    def __init__(self, eager: Callable, body: Callable, check: Callable, optimizer: torch.optim.Optimizer,
                 use_graph: bool, why_not: str = ""):
        self.eager, self.body, self.check, self.optimizer = eager, body, check, optimizer
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.static = None                  # (x, y, loss) buffers the graph reads and writes
        self.steps = 0
        self.mode = GRAPH if use_graph else (f"{EAGER}: {why_not}" if why_not else EAGER)

    @property
    def graphed(self) -> bool:
        return self.mode == GRAPH

    def step(self, x, y, lr: float, where: str):
        if not self.graphed:
            return self.eager(x, y, lr, where)
        self._set_lr(lr)
        if self.steps < WARMUP_STEPS:
            loss = self._on_side_stream(x, y)
        else:
            if self.graph is None:
                try:
                    self._capture(x, y)
                except torch.cuda.OutOfMemoryError:
                    raise                   # a full shared GPU: an infrastructure fault, which Tune retries
                except Exception as error:  # an op that cannot be captured: eager from here on, and the row says so
                    self.mode = f"{EAGER}: capture failed ({type(error).__name__}: {str(error).splitlines()[0]})"
                    self.graph = self.static = None
                    self.optimizer.zero_grad(set_to_none=True)
                    return self.eager(x, y, lr, where)
            static_x, static_y, loss = self.static
            static_x.copy_(x)
            static_y.copy_(y)
            self.graph.replay()
        self.steps += 1
        return self.check(loss, where)

    def _set_lr(self, lr: float) -> None:
        """The learning rate into the tensor the graph reads (the schedule goes on without a new capture). Before
        the capture, a float or a CPU tensor (a checkpoint's, read on the CPU, or an eager fallback's) becomes a
        tensor on the parameters' device: a CPU scalar would be read once at capture and frozen into the graph."""
        for group in self.optimizer.param_groups:
            current = group["lr"]
            if self.graph is None and not (torch.is_tensor(current) and current.device == group["params"][0].device):
                group["lr"] = torch.tensor(float(lr), device=group["params"][0].device)
            else:
                current.fill_(lr)

    def _on_side_stream(self, x, y):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.body(x, y)
        torch.cuda.current_stream().wait_stream(side)
        return loss

    def _capture(self, x, y) -> None:
        """Record one step into a graph (recording runs nothing: the replay that follows trains the step)."""
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)      # the gradients then live in the graph's memory pool
        # thread_local: the host feed's prefetch thread pins the next batch meanwhile, which global mode forbids
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            loss = self.body(static_x, static_y)
        self.graph, self.static = graph, (static_x, static_y, loss)


def graph_possible(device: torch.device, wanted: bool) -> str:
    """Why the step cannot be a CUDA graph here ("" when it can)."""
    if device.type != "cuda":
        return f"no CUDA graphs on {device.type}"
    if not wanted:
        return "trainer.cuda_graph=false"
    return ""


def restore_optimizer_(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """optimizer.load_state_dict(saved), but into the state tensors the optimizer already has, in place, where it
    has them all: a captured graph reads those tensors (load_state_dict would put new ones in their place)."""
    current = optimizer.state_dict()
    same = current["state"].keys() == saved["state"].keys() and all(
        current["state"][key].keys() == saved["state"][key].keys() for key in saved["state"])
    if not same:
        optimizer.load_state_dict(saved)
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    with torch.no_grad():
        for index, values in saved["state"].items():
            state = optimizer.state[params[index]]
            for name, value in values.items():
                if torch.is_tensor(state[name]):
                    state[name].copy_(value)
                else:
                    state[name] = value
