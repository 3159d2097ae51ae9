"""One proxy training run: build the model from its spec at proxy scale, train briefly, evaluate each epoch.

Independent of Ray: ``train_proxy(cfg, report)`` calls ``report(metrics)`` after every epoch, which is all
a scheduler such as ASHA needs. It never raises for a failing trial: a diverging loss, a bad spec or an
unreadable dataset ends the run with status ``failed`` and the reason.
"""
import dataclasses
import hashlib
import math
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .data import dataset_classes, is_generated, load_dataset
from .data.augment import make_augment
from .data.feed import Feeder
from .model import build_model
from .results import FAILED, TrialResult


@dataclasses.dataclass
class ModelConfig:
    """The proxy model: MambaVision-T's letters at width 16. 32 px images with a stride-1 stem give stage 3 an
    8x8 map (64 tokens, one window) and stage 4 a 4x4 map (16 tokens): the regime where mixer and placement
    matter. The cost: 50.8 MMACs and 0.87M parameters per image, 16x what the released stride-4 stem would
    cost at 32 px (where stage 3 would see 2x2 tokens), and about what the released stem costs on 128 px
    images with the same token counts (52.2 MMACs), at 1/16 of the pixels to generate and store."""
    spec: str = "C|CCC|MMMMTTTT|MMTT"
    dim: int = 16
    in_dim: int = 16
    num_heads: List[int] = dataclasses.field(default_factory=lambda: [1, 2, 4, 8])
    window_size: List[int] = dataclasses.field(default_factory=lambda: [8, 8, 8, 4])
    mlp_ratio: float = 2.0
    stem_stride: int = 1
    drop_path_rate: float = 0.0
    layer_scale: Optional[float] = None
    mixer_knobs: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DataConfig:
    # The default proxy task: 10 FractalDB-style classes under full rotation, chosen by decisiveness per CPU-second
    # among the candidates in reports/proxy_search/README.md (match, the old default, was a seed lottery).
    name: str = "fractal"
    image_size: int = 32
    root: Optional[str] = None       # cifar10 / imagefolder directory
    # The data seed: which images (and, for real data, which split). None: the trial's seed, so each seed has
    # its own dataset; a number: every seed trains on the same images (the seed varies initialisation and
    # order). Either way every design of a seed sees the same images in the same order.
    seed: Optional[int] = None
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # n_train, n_val, task difficulty knobs
    # Per-batch augmentation on the training device (ablate/data/augment.py): none, basic, strong, or auto
    # (none for generated tasks, basic for real images).
    augment: str = "auto"
    # How batches reach the device (ablate/data/feed.py): host (read from the memory map per batch, pinned),
    # device (the split's uint8 rows copied to the device once), auto (device on a GPU when it fits).
    feed: str = "auto"


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    threads: int = 1                 # torch.set_num_threads: two trials on two cores do not fight
    device: str = "auto"             # auto: cuda when available, else cpu
    eval_batch_size: int = 250
    # Validation after every epoch, and late_evals more times evenly spaced over the last quarter of the steps
    # (the last at the end): the "late" metrics average those, where the learning curve is flat.
    late_evals: int = 3
    # channels_last memory format for images and conv weights: faster convs with oneDNN on CPU and cuDNN on GPU.
    channels_last: bool = True


@dataclasses.dataclass
class ProxyConfig:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    seed: int = 0


def as_config(cfg) -> ProxyConfig:
    """A ProxyConfig from itself, a nested dict, or an OmegaConf config."""
    if isinstance(cfg, ProxyConfig):
        return cfg
    if not isinstance(cfg, dict):
        from omegaconf import OmegaConf
        cfg = OmegaConf.to_container(cfg, resolve=True)
    return ProxyConfig(model=ModelConfig(**cfg.get("model", {})), data=DataConfig(**cfg.get("data", {})),
                       trainer=TrainerConfig(**cfg.get("trainer", {})), seed=cfg.get("seed", 0))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_model(cfg: ProxyConfig, num_classes: int, in_chans: int = 3):
    m = cfg.model
    return build_model(m.spec, dim=m.dim, in_dim=m.in_dim, num_heads=tuple(m.num_heads),
                       window_size=tuple(m.window_size), mlp_ratio=m.mlp_ratio, num_classes=num_classes,
                       drop_path_rate=m.drop_path_rate, layer_scale=m.layer_scale, mixer_knobs=m.mixer_knobs,
                       in_chans=in_chans, stem_stride=m.stem_stride)


def _data_options(cfg: ProxyConfig) -> dict:
    options = dict(cfg.data.options)
    if cfg.data.root is not None:
        options["root"] = cfg.data.root
    return options


def data_seed(cfg: ProxyConfig) -> int:
    return cfg.seed if cfg.data.seed is None else cfg.data.seed


def make_dataset(cfg: ProxyConfig):
    return load_dataset(cfg.data.name, image_size=cfg.data.image_size, seed=data_seed(cfg), **_data_options(cfg))


def epoch_steps(n_train: int, batch_size: int) -> int:
    """Training steps per epoch: the ragged last batch is dropped, so a set smaller than a batch cannot train."""
    if n_train // batch_size == 0:
        raise ValueError(f"{n_train} training images make no full batch of trainer.batch_size={batch_size}; "
                         f"use a smaller batch or more images (data.options.n_train)")
    return n_train // batch_size


def model_classes(cfg: ProxyConfig) -> int:
    """The classes of ``cfg``'s dataset, without loading it."""
    return dataset_classes(cfg.data.name, **_data_options(cfg))


NO_DECAY_SUFFIXES = ("A_log",)  # the SSM's decay rates: 2-D, but a parameter of the dynamics, not a weight


def _param_groups(model, weight_decay):
    """Decay weight matrices and conv kernels; not norms, biases, layer scales, D, or A_log."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        keep = param.dim() < 2 or name.endswith(NO_DECAY_SUFFIXES)
        (no_decay if keep else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(total_steps, warmup_steps):
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


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


def eval_steps(steps_per_epoch: int, epochs: int, late_evals: int) -> List[int]:
    """The steps after which the model is validated: every epoch's end, and late_evals points evenly spaced
    over the last quarter of the steps (the last one at the end)."""
    total = steps_per_epoch * epochs
    late = {total - round(i * total / (4 * late_evals)) for i in range(late_evals)}
    return sorted(late | {steps_per_epoch * (epoch + 1) for epoch in range(epochs)})


def late_mean(history: List[dict], key: str) -> Optional[float]:
    """The mean of ``key`` over the evaluations in the last quarter of the steps (the flat end of the curve)."""
    total = history[-1]["step"] if history else 0
    values = [h[key] for h in history if h["step"] > 0.75 * total]
    return float(np.mean(values)) if values else None


def epoch_order(cfg: ProxyConfig, epoch: int, n: int) -> torch.Tensor:
    """The order of the training images in an epoch, fixed by the trial's seed and the epoch alone: every
    design of a seed trains on the same batches (common random numbers), whatever its architecture."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))


class Diverged(RuntimeError):
    pass


def _train_step(model, optimizer, scheduler, x, y, cfg, where, autocast):
    t = cfg.trainer
    model.train()
    with autocast():
        loss = F.cross_entropy(model(x).float(), y, label_smoothing=t.label_smoothing)
    if not torch.isfinite(loss):
        raise Diverged(f"loss is {loss.item()} at {where}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    optimizer.step()
    scheduler.step()
    return loss.item()


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


def train_proxy(cfg, report: Optional[Callable[[TrialResult], None]] = None) -> TrialResult:
    """Train one proxy model. After every epoch ``report`` gets a copy of the result so far (ASHA reads its
    val_acc_final by epochs_done); the return value is the whole result, failed with the reason and the epoch
    it happened in when something went wrong."""
    cfg = as_config(cfg)
    t = cfg.trainer
    torch.set_num_threads(t.threads)
    torch.manual_seed(cfg.seed)
    result = TrialResult(spec=cfg.model.spec, seed=cfg.seed, data_seed=data_seed(cfg), dataset=cfg.data.name,
                         image_size=cfg.data.image_size)
    start = time.perf_counter()
    epoch, train_feed = 0, None
    try:
        data = make_dataset(cfg)
        device = resolve_device(t.device)
        on_cuda = device.type == "cuda"
        model = make_model(cfg, data.num_classes, data.in_chans).to(device)
        if t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        result.spec = model.spec.canonical
        result.params = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(_param_groups(model, t.weight_decay), lr=t.lr)
        steps_per_epoch = epoch_steps(len(data.train), t.batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(t.epochs * steps_per_epoch, max(1, int(t.warmup_epochs * steps_per_epoch))))
        evals = set(eval_steps(steps_per_epoch, t.epochs, t.late_evals))
        digest = _digest(data)
        train_feed, val_feed = make_feeds(cfg, data, device)

        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)

        step, since_eval = 0, []
        for epoch in range(t.epochs):
            order = epoch_order(cfg, epoch, len(data.train))
            digest.update(order.numpy().tobytes())
            epoch_losses = []
            for batch, (x, y) in enumerate(train_feed.epoch(order, t.batch_size, steps_per_epoch, step)):
                loss = _train_step(model, optimizer, scheduler, x, y, cfg, f"epoch {epoch + 1}, step {batch + 1}",
                                   autocast)
                step += 1
                epoch_losses.append(loss)
                since_eval.append(loss)
                if step in evals:
                    accuracy, nll = evaluate(model, val_feed, t.eval_batch_size, autocast)
                    result.history.append({
                        "epoch": round(step / steps_per_epoch, 4), "step": step, "val_acc": accuracy,
                        "val_loss": nll, "train_loss": float(np.mean(since_eval)),
                        "train_time_s": time.perf_counter() - start})
                    since_eval = []
            _record(result, float(np.mean(epoch_losses)), epoch + 1, time.perf_counter() - start)
            if report is not None:
                report(dataclasses.replace(result, history=list(result.history)))
        result.data_digest = digest.hexdigest()[:16]
    except Diverged as error:
        result.status, result.error = FAILED, f"diverged: {error}"
    except Exception as error:  # a trial must end with a record, never a bare traceback
        where = traceback.extract_tb(error.__traceback__)[-1]
        result.status, result.error = FAILED, (f"{type(error).__name__} in epoch {epoch + 1}: {error} "
                                               f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
    finally:
        if train_feed is not None:
            train_feed.close()            # its prefetch thread, on every path
    result.train_time_s = time.perf_counter() - start
    return result


def _record(result: TrialResult, train_loss: float, epochs_done: int, seconds: float) -> None:
    """The result's metrics from its history, after an epoch."""
    history = result.history
    result.epochs_done, result.train_loss, result.train_time_s = epochs_done, train_loss, seconds
    result.val_acc_final, result.val_loss_final = history[-1]["val_acc"], history[-1]["val_loss"]
    result.val_acc_best = max(h["val_acc"] for h in history)
    result.val_loss_best = min(h["val_loss"] for h in history)
    result.val_acc_late, result.val_loss_late = late_mean(history, "val_acc"), late_mean(history, "val_loss")
