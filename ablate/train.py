"""One proxy training run: build the model from its spec at proxy scale, train briefly, evaluate each epoch.

Independent of Ray: ``train_proxy(cfg, report)`` calls ``report(result, state)`` after every epoch, which is all a
scheduler such as ASHA needs, with a TrainState to checkpoint; ``train_proxy(cfg, start=state)`` goes on from one.
It never raises for a failing trial: a diverging loss, a bad spec or an unreadable dataset ends the run with status
``failed`` and the reason (CUDA out of memory is raised: a fault of a shared GPU, which Tune retries).
"""
import copy
import dataclasses
import functools
import hashlib
import math
import time
import traceback
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .build import epoch_steps, make_dataset, make_model, resolve_device
from .data import is_generated
from .data.augment import make_augment
from .data.feed import Feeder
from .files import atomic_path
from .ladder import Rung, check_budgets, ladder, lr_factor
from .proxy import ProxyConfig, TrainerConfig
from .results import FAILED, BudgetResult, TrialResult
from .step_graph import StepRunner, graph_possible, restore_optimizer_


NO_DECAY_SUFFIXES = ("A_log",)  # the SSM's decay rates: 2-D, but a parameter of the dynamics, not a weight


def decayed(name: str, param) -> bool:
    """Whether weight decay applies: to weight matrices and conv kernels; not norms, biases, layer scales, D, or
    A_log."""
    return param.dim() >= 2 and not name.endswith(NO_DECAY_SUFFIXES)


def _param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if decayed(name, param) else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, feed: Feeder, batch_size, autocast) -> Tuple[float, float]:
    """Accuracy and mean negative log-likelihood (no label smoothing) on the validation images."""
    model.eval()
    correct, nll = 0, 0.0
    for x, y in feed.batches(batch_size):
        with autocast():
            logits = model(x).float()
        correct += (logits.argmax(-1) == y).sum().item()
        nll += F.cross_entropy(logits, y, reduction="sum").item()
    return correct / len(feed.part), nll / len(feed.part)


def warmup_steps(trainer: TrainerConfig, steps_per_epoch: int) -> int:
    return max(1, int(trainer.warmup_epochs * steps_per_epoch))


def trial_rungs(trainer: TrainerConfig, steps_per_epoch: int) -> List[Rung]:
    """The budget ladder one trial trains along: what the trial, the plan's estimate and the ladder benchmark
    all count."""
    return ladder(trainer.epochs * steps_per_epoch, trainer.budgets, trainer.cooldown,
                  warmup_steps(trainer, steps_per_epoch), trainer.late_evals)


def trunk_evaluations(rungs: List[Rung], steps_per_epoch: int, epochs: int) -> set:
    """The steps after which the trunk is validated: every epoch's end and the last budget's late steps (each
    branch is validated at its own rung's late steps)."""
    return set(rungs[-1].late) | {steps_per_epoch * (epoch + 1) for epoch in range(epochs)}


def epoch_order(cfg: ProxyConfig, epoch: int, n: int) -> torch.Tensor:
    """The order of the training images in an epoch, fixed by the trial's seed and the epoch alone: every
    design of a seed trains on the same batches (common random numbers), whatever its architecture."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))


class Diverged(RuntimeError):
    pass


@dataclasses.dataclass
class TrainState:
    """Where a trial stands after an epoch: its weights, optimizer, random state and result so far. A trial started
    from it (train_proxy's ``start``) ends as the uninterrupted trial does, bit for bit on a CPU: the data order and
    the augmentation are functions of the seed and the step, so they need no state of their own."""
    epochs_done: int
    model: dict
    optimizer: dict
    rng: torch.Tensor
    cuda_rng: Optional[List[torch.Tensor]]
    result: dict                    # the TrialResult so far, as a dict
    elapsed_s: float                # training seconds so far, so train_time_s counts the whole trial

    def save(self, path) -> None:
        """torch.save of its fields, atomically (a file half written by a killed process is never read)."""
        with atomic_path(path) as temporary:
            torch.save({field.name: getattr(self, field.name) for field in dataclasses.fields(self)}, temporary)

    @classmethod
    def load(cls, path) -> "TrainState":
        """Read with the weights-only unpickler: a checkpoint holds tensors, containers, numbers and strings only."""
        return cls(**torch.load(path, map_location="cpu", weights_only=True))


def mixed_precision(on_cuda: bool, cache: bool = True):
    """The autocast every trial step and evaluation runs under: bf16 on CUDA, none on the CPU. ``cache=False`` for a
    step captured as a CUDA graph (autocast's cache of cast weights must not outlive the capture)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda, cache_enabled=cache)


def adamw(groups: list, trainer, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``groups``; where the step will be a CUDA graph (graph_possible), capturable, its state and
    learning rate on the GPU."""
    if graph_possible(device, trainer.cuda_graph):
        return torch.optim.AdamW(groups, lr=trainer.lr)
    return torch.optim.AdamW(groups, lr=torch.tensor(trainer.lr, device=device), capturable=True)


def make_optimizer(model, trainer) -> torch.optim.Optimizer:
    """A trial's AdamW over its model's decay groups."""
    return adamw(_param_groups(model, trainer.weight_decay), trainer, next(model.parameters()).device)


def step_loss(model, x, y, cfg: ProxyConfig, autocast) -> torch.Tensor:
    """The training loss of a batch, label smoothing included."""
    model.train()
    with autocast():
        return F.cross_entropy(model(x).float(), y, label_smoothing=cfg.trainer.label_smoothing)


def update(model, optimizer, loss: torch.Tensor, cfg: ProxyConfig) -> None:
    """Backward, gradient clipping and the optimizer's step (no host sync: a CUDA graph can hold it)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.grad_clip)
    optimizer.step()


def train_step(model, optimizer, x, y, cfg: ProxyConfig, where: str, autocast, lr: float) -> float:
    """One optimizer step of a trial (the plan's calibration times this same step): label smoothing, a loss
    checked for divergence, gradient clipping. The reference, and the CPU's step."""
    loss = step_loss(model, x, y, cfg, autocast)
    if not torch.isfinite(loss):
        raise Diverged(f"loss is {loss.item()} at {where}")
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    update(model, optimizer, loss, cfg)
    return loss.item()


def checked(loss: torch.Tensor, where: str) -> float:
    """The loss of a step already taken (a CUDA graph's), on the host; Diverged when it is not finite."""
    value = loss.item()
    if not math.isfinite(value):
        raise Diverged(f"loss is {value} at {where}")
    return value


def step_runner(model, optimizer, cfg: ProxyConfig, device: torch.device) -> StepRunner:
    """How a trial steps: train_step, or on CUDA (trainer.cuda_graph) one captured graph of the same step."""
    autocast = functools.partial(mixed_precision, device.type == "cuda")
    uncached = functools.partial(mixed_precision, device.type == "cuda", cache=False)

    def eager(x, y, lr, where):
        return train_step(model, optimizer, x, y, cfg, where, autocast, lr)

    def body(x, y):
        loss = step_loss(model, x, y, cfg, uncached)
        update(model, optimizer, loss, cfg)
        return loss.detach()
    why_not = graph_possible(device, cfg.trainer.cuda_graph)
    return StepRunner(eager, body, checked, optimizer, use_graph=not why_not, why_not=why_not)


def _digest(data) -> "hashlib._Hash":
    """A running hash of the data a trial sees: the pack (its name fixes its images), the rows of each split and
    their labels, then each epoch's order."""
    digest = hashlib.sha1(data.key.encode())
    for part in (data.train, data.val):
        digest.update(part.rows.tobytes())
        digest.update(part.labels.numpy().tobytes())
    return digest


def make_feeds(cfg: ProxyConfig, data, device: torch.device) -> Tuple[Feeder, Feeder]:
    """The training feed (augmented as data.augment says) and the validation feed, on ``device``."""
    t = cfg.trainer
    augment = make_augment(cfg.data.augment, is_generated(cfg.data.name), data.image_size, data.num_classes,
                           cfg.seed)
    train = Feeder(data.train, data.mean, data.std, device, t.channels_last, cfg.data.feed, augment)
    val = Feeder(data.val, data.mean, data.std, device, t.channels_last, cfg.data.feed)
    return train, val


class RandomState:
    """The global random state a trial's training draws from (the CPU's and, on CUDA, the GPUs'), saved around a
    branch and in a checkpoint. Needs ``on_cuda``."""
    on_cuda: bool

    def rng_state(self):
        """(the CPU generator's state, the CUDA generators' states or None)."""
        return torch.get_rng_state(), (torch.cuda.get_rng_state_all() if self.on_cuda else None)

    def set_rng_state(self, cpu, cuda) -> None:
        torch.set_rng_state(cpu)
        if self.on_cuda and cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@dataclasses.dataclass
class _Run(RandomState):
    """What the trunk and its branches share while one trial trains."""
    cfg: ProxyConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_feed: Feeder
    val_feed: Feeder
    n_train: int
    steps_per_epoch: int
    warmup_steps: int
    on_cuda: bool
    started: float
    runner: StepRunner

    def autocast(self):
        return mixed_precision(self.on_cuda)

    def state(self, result: TrialResult, epochs_done: int) -> TrainState:
        """The trial after ``epochs_done`` epochs (references, not copies: save it before training goes on)."""
        return TrainState(epochs_done, self.model.state_dict(), self.optimizer.state_dict(), *self.rng_state(),
                          dataclasses.asdict(result), time.perf_counter() - self.started)

    def restore(self, state: TrainState) -> TrialResult:
        """Go on from ``state``: its weights, optimizer and random state; returns its result so far."""
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.set_rng_state(state.rng, state.cuda_rng)
        self.started = time.perf_counter() - state.elapsed_s
        return TrialResult(**state.result)

    def train(self, step: int, rung: Rung, x, y) -> float:
        """Optimizer step ``step`` (0-based) on the path to ``rung``."""
        t = self.cfg.trainer
        epoch, batch = divmod(step, self.steps_per_epoch)
        lr = t.lr * lr_factor(step, self.warmup_steps, rung, t.decay)
        return self.runner.step(x, y, lr, f"epoch {epoch + 1}, step {batch + 1}")

    def evaluation(self, step: int, losses: List[float], branch: Optional[float] = None) -> dict:
        """A history entry: the validation metrics after ``step`` steps; ``branch``: the budget of the branch that
        took it (absent on the trunk)."""
        accuracy, nll = evaluate(self.model, self.val_feed, self.cfg.trainer.eval_batch_size, self.autocast)
        entry = {"epoch": round(step / self.steps_per_epoch, 4), "step": step, "val_acc": accuracy,
                 "val_loss": nll, "train_loss": float(np.mean(losses)),
                 "train_time_s": time.perf_counter() - self.started}
        return entry if branch is None else {**entry, "branch": branch}

    def batch_at(self, step: int):
        """The training batch of step ``step``: the one the trunk trains on at that step."""
        epoch, batch = divmod(step, self.steps_per_epoch)
        size = self.cfg.trainer.batch_size
        index = epoch_order(self.cfg, epoch, self.n_train)[batch * size:(batch + 1) * size].numpy()
        return self.train_feed.batch(index, step)

    def epoch_batches(self, order, first: int):
        """The epoch's training batches in ``order``, the first of them step ``first``."""
        return self.train_feed.epoch(order, self.cfg.trainer.batch_size, self.steps_per_epoch, first)

    def snapshot(self):
        """Copies of what training changes (weights, normalisation statistics, optimizer state, random state)."""
        return copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict())), self.rng_state()

    def put_back(self, snapshot) -> None:
        (model, optimizer), rng = snapshot
        self.model.load_state_dict(model)                  # in place: a captured graph reads these tensors
        restore_optimizer_(self.optimizer, optimizer)
        self.set_rng_state(*rng)


def branch(run, rung: Rung) -> List[dict]:
    """Train a copy of the trunk through ``rung``'s cooldown on the trunk's own batches, evaluate it, and put the
    trunk back as it was. ``run``: a _Run, or the fused seeds' run (ablate/fused.py)."""
    saved = run.snapshot()
    entries, losses = [], []
    for step in range(rung.start, rung.end):
        losses.append(run.train(step, rung, *run.batch_at(step)))
        if step + 1 in rung.late:
            entries.append(run.evaluation(step + 1, losses, branch=rung.fraction))
            losses = []
    run.put_back(saved)
    return entries


def _start(cfg: ProxyConfig, data, started: float) -> _Run:
    t = cfg.trainer
    device = resolve_device(t.device)
    model = make_model(cfg, data.num_classes, data.in_chans).to(device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, t)
    steps_per_epoch = epoch_steps(len(data.train), t.batch_size)
    train_feed, val_feed = make_feeds(cfg, data, device)
    return _Run(cfg, model, optimizer, train_feed, val_feed, len(data.train), steps_per_epoch,
                warmup_steps(t, steps_per_epoch), device.type == "cuda", started,
                step_runner(model, optimizer, cfg, device))


Report = Callable[[TrialResult, TrainState], None]


def train_proxy(cfg: ProxyConfig, report: Optional[Report] = None, start: Optional[TrainState] = None) -> TrialResult:
    """Train one proxy model along the budget ladder. After every epoch ``report`` gets a copy of the result so
    far (ASHA reads it by epochs_done) and the TrainState to checkpoint; the return value is the whole result,
    failed with the reason and the epoch it happened in when something went wrong. ``start``: a TrainState of this
    trial to go on from (a trial resumed after its process was lost)."""
    t = cfg.trainer
    check_budgets(t.budgets, t.cooldown, t.decay)
    torch.set_num_threads(t.threads)
    torch.manual_seed(cfg.seed)
    result = TrialResult(spec=cfg.model.spec, seed=cfg.seed, data_seed=cfg.data_seed, dataset=cfg.data.name,
                         image_size=cfg.data.image_size)
    started = time.perf_counter()
    epoch, run = 0, None
    try:
        data = make_dataset(cfg)
        run = _start(cfg, data, started)
        result.spec = run.model.spec.canonical
        result.params = sum(p.numel() for p in run.model.parameters())
        rungs = trial_rungs(t, run.steps_per_epoch)
        digest = _digest(data)
        first = 0
        if start is not None:
            result, first = run.restore(start), start.epochs_done
        for epoch in range(t.epochs):
            order = epoch_order(cfg, epoch, len(data.train))
            digest.update(order.numpy().tobytes())
            if epoch < first:
                continue                        # done before the checkpoint: only its order enters the digest
            epoch_loss = _train_epoch(run, rungs, order, epoch, result.history)
            result.step_mode = run.runner.mode
            _record(result, float(epoch_loss), epoch + 1, rungs, time.perf_counter() - run.started)
            if report is not None:
                report(dataclasses.replace(result, history=list(result.history), budgets=list(result.budgets)),
                       run.state(result, epoch + 1))
        result.data_digest = digest.hexdigest()[:16]
    except Diverged as error:
        result.status, result.error = FAILED, f"diverged: {error}"
    except torch.cuda.OutOfMemoryError:
        raise                   # a GPU shared by trials filled up: an infrastructure fault, retried from a checkpoint
    except Exception as error:  # a trial must end with a record, never a bare traceback
        where = traceback.extract_tb(error.__traceback__)[-1]
        result.status, result.error = FAILED, (f"{type(error).__name__} in epoch {epoch + 1}: {error} "
                                               f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
    finally:
        if run is not None:
            run.train_feed.close()            # its prefetch thread, on every path
    result.train_time_s = time.perf_counter() - (run.started if run is not None else started)
    return result


def _train_epoch(run, rungs: List[Rung], order, epoch: int, history: List[dict]):
    """One epoch of the trunk, each branch taken where its cooldown starts; evaluations appended to ``history``.
    Returns the epoch's mean training loss (per seed, an array, for the fused seeds' run)."""
    t, trunk = run.cfg.trainer, rungs[-1]
    first = epoch * run.steps_per_epoch
    evaluations = trunk_evaluations(rungs, run.steps_per_epoch, t.epochs)
    losses, since_eval = [], []
    for offset, (x, y) in enumerate(run.epoch_batches(order, first)):
        step = first + offset
        for rung in rungs[:-1]:
            if rung.start == step:
                history.extend(branch(run, rung))
        losses.append(run.train(step, trunk, x, y))
        since_eval.append(losses[-1])
        if step + 1 in evaluations:
            history.append(run.evaluation(step + 1, since_eval))
            since_eval = []
    return np.mean(losses, axis=0)


def budget_result(history: List[dict], rung: Rung, on_trunk: bool) -> BudgetResult:
    """A budget's metrics from the evaluations on its path: the trunk's up to its end (the last budget), or up to
    where its branch left and then the branch's own."""
    trunk = [h for h in history if "branch" not in h]
    path = ([h for h in trunk if h["step"] <= rung.end] if on_trunk else
            [h for h in trunk if h["step"] <= rung.start] + [h for h in history if h.get("branch") == rung.fraction])
    return BudgetResult(fraction=rung.fraction, steps=rung.end, **_metrics(path, rung.window))


def _metrics(path: List[dict], window: float) -> dict:
    """The six validation metrics of a path of evaluations (ascending steps): the last, the best, and the mean
    over the last ``window`` of the steps (the late mean)."""
    late = [h for h in path if h["step"] > path[-1]["step"] * (1 - window)]
    return {"val_acc_final": path[-1]["val_acc"], "val_loss_final": path[-1]["val_loss"],
            "val_acc_best": max(h["val_acc"] for h in path), "val_loss_best": min(h["val_loss"] for h in path),
            "val_acc_late": float(np.mean([h["val_acc"] for h in late])),
            "val_loss_late": float(np.mean([h["val_loss"] for h in late]))}


def _record(result: TrialResult, train_loss: float, epochs_done: int, rungs: List[Rung], seconds: float) -> None:
    """The result's metrics after an epoch: each budget reached so far, and the trunk's so far (the last
    budget's, once it is reached)."""
    trunk = [h for h in result.history if "branch" not in h]
    done = trunk[-1]["step"]
    result.budgets = [budget_result(result.history, rung, rung is rungs[-1]) for rung in rungs if rung.end <= done]
    result.epochs_done, result.train_loss, result.train_time_s = epochs_done, train_loss, seconds
    for name, value in _metrics(trunk, rungs[-1].window).items():
        setattr(result, name, value)
