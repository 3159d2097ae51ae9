"""The seeds of one design trained as one model: the fused seeds' trainer (issue 25, for GPUs).

A proxy trial is too small to fill a GPU: it is bound by kernel launches, not arithmetic. Here the S seeds of a
design are stacked, each parameter and buffer as (S, ...) (``torch.func.stack_module_state``), and one call of
the model under ``torch.func.vmap`` runs all of them: one kernel launch per layer instead of S. Everything else is
each seed's own, as in ``train_proxy``: its initialisation (the model built after ``torch.manual_seed(seed)``), its
dataset, its data order and augmentation (its own feed), its loss, its gradient clipping (the norm over its own
gradients), its normalisation statistics and its optimizer state (AdamW is elementwise, so one AdamW over the
stacked parameters is S AdamWs). A seed whose loss diverges is failed alone; the others go on.

``train_proxy`` stays the reference and the CPU default (on a CPU a batch S times larger costs about S times one,
so fusing gains little there). The two agree to float rounding: vmap runs the same arithmetic through batched
kernels, whose sums may be ordered differently (tests/test_fused.py measures how far apart they end).
"""
import copy
import dataclasses
import functools
import time
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from .build import epoch_steps, make_dataset, make_model, resolve_device
from .ladder import check_budgets, lr_factor
from .proxy import ProxyConfig, TrainerConfig
from .results import FAILED, TrialResult
from .step_graph import StepRunner, graph_possible, restore_optimizer_
from .train import (Diverged, RandomState, adamw, decayed, TrainState, _digest, _record, _train_epoch,
                    epoch_order, make_feeds, mixed_precision, trial_rungs, warmup_steps)


def check_fusable(cfgs: List[ProxyConfig]) -> None:
    """The configs must be one design's trials at different seeds, without stochastic depth (its per-sample draws
    come from the global random stream, which vmap cannot split the way S separate trials draw it)."""
    if not cfgs:
        raise ValueError("fused training needs at least one seed")
    first = dataclasses.replace(cfgs[0], seed=0)
    if any(dataclasses.replace(cfg, seed=0) != first for cfg in cfgs[1:]):
        raise ValueError("fused training trains one design at several seeds: the configs differ in more than the seed")
    if len({cfg.seed for cfg in cfgs}) != len(cfgs):
        raise ValueError(f"fused training needs distinct seeds, got {[cfg.seed for cfg in cfgs]}")
    if cfgs[0].model.drop_path_rate > 0:
        raise ValueError(f"model.drop_path_rate={cfgs[0].model.drop_path_rate} cannot be fused: stochastic depth draws "
                         f"from the global random stream, which the fused seeds share; set it to 0 or train the seeds "
                         f"separately (resources.fuse_seeds=false)")


class StackedModels:
    """S models of one architecture as one: each parameter and buffer stacked (S, ...), called under vmap, trained
    by one AdamW with each model's own gradient clipping. What a fused trial trains and the plan calibrates."""

    def __init__(self, models: List[torch.nn.Module], trainer: TrainerConfig):
        self.trainer = trainer
        self.params, self.buffers = stack_module_state(models)          # (S, ...) leaves, requires_grad
        self.module = copy.deepcopy(models[0]).to("meta")                # the structure the stacks are called with
        device = next(iter(self.params.values())).device
        self.device, self.why_not_graph = device, graph_possible(device, trainer.cuda_graph)
        decay = {name for name, param in models[0].named_parameters() if decayed(name, param)}
        groups = [{"params": [p for n, p in self.params.items() if n in decay], "weight_decay": trainer.weight_decay},
                  {"params": [p for n, p in self.params.items() if n not in decay], "weight_decay": 0.0}]
        self.optimizer = adamw(groups, trainer, device)
        self.alive = torch.ones(len(models), dtype=torch.bool, device=device)
        self.errors: List[Optional[str]] = [None] * len(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(S, b, C, H, W) images, model s's through model s -> (S, b, classes) logits."""
        return vmap(functools.partial(functional_call, self.module))((self.params, self.buffers), (x,))

    def losses(self, x, y, autocast) -> torch.Tensor:
        """Each model's training loss on its batch, label smoothing included: (S,)."""
        self.module.train()
        with autocast():
            logits = self.forward(x).float()                                            # (S, b, classes)
        smoothing = self.trainer.label_smoothing
        return vmap(functools.partial(F.cross_entropy, label_smoothing=smoothing))(logits, y)

    def update(self, losses: torch.Tensor) -> None:
        """Backward from the models still alive, each model's clipping, the optimizer's step (no host sync)."""
        torch.where(self.alive, losses, 0.0).sum().backward()
        self._clip_each(self.trainer.grad_clip)
        self.optimizer.step()

    def train_step(self, x, y, lr: float, where: str, autocast) -> np.ndarray:
        """One optimizer step of every model, as train.train_step takes it for one; returns the (S,) losses. A model
        whose loss is not finite is failed here and contributes no gradient from now on."""
        losses = self.losses(x, y, autocast)
        self._fail_diverged(losses, where)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.update(losses)
        return losses.detach().cpu().numpy()

    def runner(self) -> StepRunner:
        """How the stack steps: train_step, or on CUDA (trainer.cuda_graph) one captured graph of the same step (a
        seed whose loss broke is failed after the replay instead of before the update)."""
        on_cuda = self.device.type == "cuda"
        autocast = functools.partial(mixed_precision, on_cuda)
        uncached = functools.partial(mixed_precision, on_cuda, cache=False)

        def eager(x, y, lr, where):
            return self.train_step(x, y, lr, where, autocast)

        def body(x, y):
            losses = self.losses(x, y, uncached)
            self.update(losses)
            return losses.detach()

        def check(losses, where):
            self._fail_diverged(losses, where)
            return losses.cpu().numpy()
        return StepRunner(eager, body, check, self.optimizer, use_graph=not self.why_not_graph,
                          why_not=self.why_not_graph)

    def _fail_diverged(self, losses: torch.Tensor, where: str) -> None:
        finite = torch.isfinite(losses)
        for seed in torch.nonzero(self.alive & ~finite).flatten().tolist():
            self.errors[seed] = f"diverged: loss is {losses[seed].item()} at {where}"
        self.alive &= finite
        if not self.alive.any():
            raise Diverged("every seed diverged")

    def _clip_each(self, max_norm: float) -> None:
        """clip_grad_norm_ of each model's own gradients: the norm over all of them, the same coefficient."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)    # (S,)
        coefficient = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coefficient.view(-1, *[1] * (g.dim() - 1)))

    def weights(self) -> dict:
        """The stacked parameters and buffers by name (a state dict with a leading seed dim), detached."""
        return {name: w.detach() for name, w in {**self.params, **self.buffers}.items()}

    def load_weights(self, weights: dict) -> None:
        with torch.no_grad():
            for name, tensor in {**self.params, **self.buffers}.items():
                tensor.copy_(weights[name])


class FusedRun(RandomState):
    """What the trunk and its branches share while the seeds of one design train: the same methods as
    train._Run, each taking and giving all seeds at once ((S, ...) batches, (S,) losses and metrics)."""

    def __init__(self, cfgs: List[ProxyConfig], datasets, started: float):
        t = cfgs[0].trainer
        device = resolve_device(t.device)
        self.cfgs, self.cfg, self.on_cuda, self.started = cfgs, cfgs[0], device.type == "cuda", started
        models = []
        for cfg, data in zip(cfgs, datasets):
            torch.manual_seed(cfg.seed)                   # each seed's initialisation, as its own trial draws it
            models.append(make_model(cfg, data.num_classes, data.in_chans).to(device))
        self.stack = StackedModels(models, t)
        self.runner = self.stack.runner()
        feeds = [make_feeds(cfg, data, device) for cfg, data in zip(cfgs, datasets)]
        self.train_feeds, self.val_feeds = [f[0] for f in feeds], [f[1] for f in feeds]
        self.n_train = len(datasets[0].train)
        self.steps_per_epoch = epoch_steps(self.n_train, t.batch_size)
        self.warmup_steps = warmup_steps(t, self.steps_per_epoch)
        self.epoch = 0                                    # the epoch training, for an error's message

    def autocast(self):
        return mixed_precision(self.on_cuda)

    def train(self, step: int, rung, x, y) -> np.ndarray:
        """Optimizer step ``step`` (0-based) of every seed on the path to ``rung``; the (S,) losses."""
        t = self.cfg.trainer
        epoch, batch = divmod(step, self.steps_per_epoch)
        lr = t.lr * lr_factor(step, self.warmup_steps, rung, t.decay)
        return self.runner.step(x, y, lr, f"epoch {epoch + 1}, step {batch + 1}")

    @torch.no_grad()
    def evaluation(self, step: int, losses: List[np.ndarray], branch: Optional[float] = None) -> dict:
        """A history entry of all seeds: each metric an (S,) array (split per seed by ``seed_entry``)."""
        self.stack.module.eval()
        correct, nll = 0, 0.0
        size = self.cfg.trainer.eval_batch_size
        for batches in zip(*(feed.batches(size) for feed in self.val_feeds)):
            x, y = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])    # (S, b, ...)
            with self.autocast():
                logits = self.stack.forward(x).float()                                  # (S, b, classes)
            correct = correct + (logits.argmax(-1) == y).sum(1).cpu().numpy()
            nll = nll + vmap(functools.partial(F.cross_entropy, reduction="sum"))(logits, y).cpu().numpy()
        count = len(self.val_feeds[0].part)
        # train_time_s: the fused trial's wall clock (a row's train_time_s is each seed's share of it)
        entry = {"epoch": round(step / self.steps_per_epoch, 4), "step": step, "val_acc": correct / count,
                 "val_loss": nll / count, "train_loss": np.mean(losses, axis=0),
                 "train_time_s": time.perf_counter() - self.started}
        return entry if branch is None else {**entry, "branch": branch}

    def epoch_batches(self, orders: List[torch.Tensor], first: int):
        """Each seed's batches of the epoch in its own order, stacked: (S, b, C, H, W) and (S, b[, classes])."""
        t = self.cfg.trainer
        streams = [feed.epoch(order, t.batch_size, self.steps_per_epoch, first)
                   for feed, order in zip(self.train_feeds, orders)]
        for batches in zip(*streams):
            yield torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])

    def batch_at(self, step: int):
        """Each seed's training batch of step ``step``, stacked."""
        epoch, batch = divmod(step, self.steps_per_epoch)
        size = self.cfg.trainer.batch_size
        batches = [feed.batch(epoch_order(cfg, epoch, self.n_train)[batch * size:(batch + 1) * size].numpy(), step)
                   for cfg, feed in zip(self.cfgs, self.train_feeds)]
        return torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])

    def snapshot(self):
        """What a branch changes and put_back restores; not which seeds failed (a seed diverged in a branch stays
        failed, as a separate trial's would end there)."""
        return copy.deepcopy((self.stack.weights(), self.stack.optimizer.state_dict())), self.rng_state()

    def put_back(self, snapshot) -> None:
        (weights, optimizer), rng = snapshot
        self.stack.load_weights(weights)
        restore_optimizer_(self.stack.optimizer, optimizer)
        self.set_rng_state(*rng)

    def state(self, results: List[TrialResult], epochs_done: int) -> TrainState:
        """All seeds after ``epochs_done`` epochs (references, not copies: save it before training goes on)."""
        return TrainState(epochs_done, self.stack.weights(), self.stack.optimizer.state_dict(), *self.rng_state(),
                          [dataclasses.asdict(r) for r in results], time.perf_counter() - self.started)

    def restore(self, state: TrainState) -> List[TrialResult]:
        """Go on from ``state``; returns the seeds' results so far."""
        self.stack.load_weights(state.model)
        self.stack.optimizer.load_state_dict(state.optimizer)
        self.set_rng_state(state.rng, state.cuda_rng)
        self.started = time.perf_counter() - state.elapsed_s
        results = [TrialResult(**r) for r in state.result]
        self.stack.alive.copy_(torch.tensor([r.status != FAILED for r in results]))
        self.stack.errors = [r.error if r.status == FAILED else None for r in results]
        return results

    def seconds_each(self) -> float:
        """Each seed's share of the training seconds so far (a row's train_time_s: the GPU time its seed cost)."""
        return (time.perf_counter() - self.started) / len(self.cfgs)

    def close(self) -> None:
        for feed in self.train_feeds:
            feed.close()


def seed_entry(entry: dict, seed: int) -> dict:
    """Seed ``seed``'s history entry from an entry of all seeds."""
    return {k: (float(v[seed]) if isinstance(v, np.ndarray) else v) for k, v in entry.items()}


FusedReport = Callable[[List[TrialResult], TrainState], None]


def train_fused(cfgs: List[ProxyConfig], report: Optional[FusedReport] = None,
                start: Optional[TrainState] = None) -> List[TrialResult]:
    """Train the seeds ``cfgs`` (one design, distinct seeds) as one fused model along the budget ladder; one
    TrialResult per seed, in order, each as train_proxy returns it for that seed. ``report`` and ``start`` as
    train_proxy's, with all seeds' results and one TrainState for them together."""
    check_fusable(cfgs)
    t = cfgs[0].trainer
    check_budgets(t.budgets, t.cooldown, t.decay)
    torch.set_num_threads(t.threads)
    results = [TrialResult(spec=cfg.model.spec, seed=cfg.seed, data_seed=cfg.data_seed, dataset=cfg.data.name,
                           image_size=cfg.data.image_size, fused_seeds=len(cfgs)) for cfg in cfgs]
    started = time.perf_counter()
    run = None
    try:
        datasets = []
        for cfg in cfgs:
            torch.manual_seed(cfg.seed)
            datasets.append(make_dataset(cfg))
        run = FusedRun(cfgs, datasets, started)
        _train_epochs(run, datasets, results, report, start)
    except torch.cuda.OutOfMemoryError:
        raise                   # a GPU shared by trials filled up: an infrastructure fault, retried from a checkpoint
    except Diverged:
        pass                    # every seed's error is recorded where it diverged
    except Exception as error:  # one design, one failure: a spec that does not build or unreadable data fails all seeds
        epoch = run.epoch if run is not None else 0
        for result in results:
            result.status, result.error = FAILED, f"{type(error).__name__} in epoch {epoch + 1}: {error}"
    finally:
        if run is not None:
            run.close()
    each = run.seconds_each() if run is not None else (time.perf_counter() - started) / len(cfgs)
    for seed, result in enumerate(results):
        if run is not None and run.stack.errors[seed] is not None:
            result.status, result.error = FAILED, run.stack.errors[seed]
        result.train_time_s = each
    return results


def _train_epochs(run: FusedRun, datasets, results: List[TrialResult], report, start) -> None:
    """The epochs after ``start``'s (all, without one), each seed's result updated in ``results`` in place (so a
    failure part-way keeps what was done, the resumed epochs included)."""
    cfgs, t = run.cfgs, run.cfg.trainer
    params = sum(p[0].numel() for p in run.stack.params.values())
    for result in results:
        result.spec, result.params = run.stack.module.spec.canonical, params
    rungs = trial_rungs(t, run.steps_per_epoch)
    digests = [_digest(data) for data in datasets]
    first = 0
    if start is not None:
        results[:], first = run.restore(start), start.epochs_done
    for run.epoch in range(t.epochs):
        orders = [epoch_order(cfg, run.epoch, run.n_train) for cfg in cfgs]
        for digest, order in zip(digests, orders):
            digest.update(order.numpy().tobytes())
        if run.epoch < first:
            continue                        # done before the checkpoint: only its order enters the digest
        entries: List[dict] = []
        epoch_loss = _train_epoch(run, rungs, orders, run.epoch, entries)
        each = run.seconds_each()
        for seed, result in enumerate(results):
            if run.stack.errors[seed] is None:
                result.history.extend(seed_entry(entry, seed) for entry in entries)
                _record(result, float(epoch_loss[seed]), run.epoch + 1, rungs, each)
        for seed, result in enumerate(results):
            result.step_mode = run.runner.mode
            if run.stack.errors[seed] is not None:            # failed now: ASHA's mean and a checkpoint see it
                result.status, result.error = FAILED, run.stack.errors[seed]
        if report is not None:
            report([dataclasses.replace(r, history=list(r.history), budgets=list(r.budgets)) for r in results],
                   run.state(results, run.epoch + 1))
    for result, digest in zip(results, digests):
        result.data_digest = digest.hexdigest()[:16]
