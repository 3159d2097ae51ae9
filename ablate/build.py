"""What a ProxyConfig builds: its model, its dataset (and the classes, without loading it), its device. The trial,
the checks before a sweep, the plan's calibration and the throughput phase all build through these, so a model is
built one way."""
import torch

from .data import dataset_classes, load_dataset
from .model import Backbone, build_model
from .proxy import ProxyConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_model(cfg: ProxyConfig, num_classes: int, in_chans: int = 3) -> Backbone:
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
    return load_dataset(cfg.data.name, image_size=cfg.data.image_size, seed=cfg.data_seed, **_data_options(cfg))


def epoch_steps(n_train: int, batch_size: int) -> int:
    """Training steps per epoch: the ragged last batch is dropped, so a set smaller than a batch cannot train."""
    if n_train // batch_size == 0:
        raise ValueError(f"{n_train} training images make no full batch of trainer.batch_size={batch_size}; "
                         f"use a smaller batch or more images (data.options.n_train)")
    return n_train // batch_size


def model_classes(cfg: ProxyConfig) -> int:
    """The classes of ``cfg``'s dataset, without loading it."""
    return dataset_classes(cfg.data.name, **_data_options(cfg))


def proxy_model(cfg: ProxyConfig) -> Backbone:
    """The model a trial of ``cfg`` trains, with its dataset's classes as the head."""
    return make_model(cfg, num_classes=model_classes(cfg))
