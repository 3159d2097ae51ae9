"""One proxy training run: build the model from its spec at proxy scale, train briefly, evaluate each epoch.

Independent of Ray: ``train_proxy(cfg, report)`` calls ``report(metrics)`` after every epoch, which is all
a scheduler such as ASHA needs. It never raises for a failing trial: a diverging loss, a bad spec or an
unreadable dataset ends the run with status ``failed`` and the reason.
"""
import dataclasses
import math
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .data import dataset_classes, load_dataset
from .model import build_model


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
    name: str = "match"
    image_size: int = 32
    root: Optional[str] = None       # cifar10 / imagefolder directory
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # n_train, n_val, task difficulty knobs


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    threads: int = 1                 # torch.set_num_threads: two trials on two cores do not fight
    device: str = "auto"             # auto: cuda when available, else cpu
    eval_batch_size: int = 250


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


def make_dataset(cfg: ProxyConfig):
    return load_dataset(cfg.data.name, image_size=cfg.data.image_size, seed=cfg.seed, **_data_options(cfg))


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
def evaluate(model, images, labels, batch_size, device, autocast) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        with autocast():
            logits = model(x)
        correct += (logits.argmax(-1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


class Diverged(RuntimeError):
    pass


def _train_epoch(model, optimizer, scheduler, data, cfg, epoch, device, autocast, channels_last):
    model.train()
    t = cfg.trainer
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    order = torch.randperm(len(data.train_x), generator=generator)
    losses = []
    for start in range(0, len(order) - t.batch_size + 1, t.batch_size):   # drop the ragged last batch
        index = order[start:start + t.batch_size]
        x, y = data.train_x[index].to(device), data.train_y[index].to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=t.label_smoothing)
        if not torch.isfinite(loss):
            raise Diverged(f"loss is {loss.item()} at epoch {epoch + 1}, step {start // t.batch_size + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def train_proxy(cfg, report: Optional[Callable[[dict], None]] = None) -> dict:
    """Train one proxy model; returns status (ok/failed), val_acc (best, final), train_loss, params, history,
    train_time_s and, when failed, the error and the epoch it happened in."""
    cfg = as_config(cfg)
    t = cfg.trainer
    torch.set_num_threads(t.threads)
    torch.manual_seed(cfg.seed)
    result = {"spec": cfg.model.spec, "seed": cfg.seed, "dataset": cfg.data.name, "image_size": cfg.data.image_size,
              "status": "ok", "error": None, "epochs_done": 0, "val_acc_best": None, "val_acc_final": None,
              "train_loss": None, "params": None, "history": [], "train_time_s": 0.0}
    start = time.perf_counter()
    epoch = 0
    try:
        data = make_dataset(cfg)
        device = resolve_device(t.device)
        on_cuda = device.type == "cuda"
        model = make_model(cfg, data.num_classes, data.in_chans).to(device)
        if on_cuda:
            model = model.to(memory_format=torch.channels_last)
        result["spec"] = model.spec.canonical
        result["params"] = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(_param_groups(model, t.weight_decay), lr=t.lr)
        steps_per_epoch = len(data.train_x) // t.batch_size
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(t.epochs * steps_per_epoch, max(1, int(t.warmup_epochs * steps_per_epoch))))

        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)

        for epoch in range(t.epochs):
            loss = _train_epoch(model, optimizer, scheduler, data, cfg, epoch, device, autocast, on_cuda)
            accuracy = evaluate(model, data.val_x, data.val_y, t.eval_batch_size, device, autocast)
            best = max(accuracy, result["val_acc_best"] or 0.0)
            result.update(epochs_done=epoch + 1, val_acc_final=accuracy, val_acc_best=best, train_loss=loss,
                          train_time_s=time.perf_counter() - start)
            metrics = {"epoch": epoch + 1, "val_acc": accuracy, "val_acc_best": best, "train_loss": loss,
                       "train_time_s": result["train_time_s"]}
            result["history"].append(metrics)
            if report is not None:
                report(dict(metrics))
    except Diverged as error:
        result.update(status="failed", error=f"diverged: {error}")
    except Exception as error:  # a trial must end with a record, never a bare traceback
        where = traceback.extract_tb(error.__traceback__)[-1]
        result.update(status="failed", error=f"{type(error).__name__} in epoch {epoch + 1}: {error} "
                                             f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
    result["train_time_s"] = time.perf_counter() - start
    return result
