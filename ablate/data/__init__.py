"""Datasets for proxy trainings. Nothing downloads: data is generated, ships in a package, or is read from disk.

    load_dataset(name, image_size=32, seed=0, **options) -> Splits
    dataset_classes(name, **options) -> int     (without reading the images)
    python -m ablate.data pack NAME root=... image_size=64

names: fractal, contour (formula-driven, many classes: formula.py), match, tint, order, recall, oddball, count,
texture (synthetic.py), digits, cifar10, cifar100, fashion_mnist, imagefolder, tinyimagenet (real.py, root=;
fashion_mnist defaults to Debian's /usr/share/datasets/fashion-mnist). Every dataset is packed once into uint8
arrays in the cache (packed.py) and memory-mapped by the trials that use it; splits are rows of the pack.
``seed`` draws the images of a generated task (never its classes) and the subsets and split of a real one.
"""
import inspect
from typing import Callable, Dict

import numpy as np
import torch

from . import formula, real, synthetic
from .base import DatasetError, Part, Splits, split_indices
from .packed import Pack, PackBuilder, ensure_pack

# 500 validation images: a standard error of at most 2.2 points, far below the seed-to-seed spread of a trial
# (0.25 on match); evaluating 1,000 cost 7% of a default sweep.
SYNTHETIC_SIZES = {"n_train": 4000, "n_val": 500}
SPLIT_OPTIONS = ("n_train", "n_val", "val_fraction")    # how a real pack is cut into splits, per seed
VAL_FRACTION = 0.2                                       # of a real set that has no val split of its own

# The generated tasks and the module that draws each: per-image drawings (synthetic) or vectorised (formula).
GENERATORS = {**{task: synthetic for task in synthetic.TASKS}, **{task: formula for task in formula.TASKS}}


def _task_options(task: str) -> list:
    draw = GENERATORS[task].TASKS[task][0]
    return [p for p in inspect.signature(draw).parameters if p not in ("rng", "n", "size")]


def _task_classes(task: str, options: dict) -> int:
    """A fixed class count, or the value of the option that sets it (its default when not given)."""
    draw, classes = GENERATORS[task].TASKS[task]
    if isinstance(classes, int):
        return classes
    return int(options.get(classes, inspect.signature(draw).parameters[classes].default))


def _check_options(name: str, options: dict, valid) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DatasetError(f"{name}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def _load_generated(task: str, image_size: int, seed: int, n_train=SYNTHETIC_SIZES["n_train"],
                    n_val=SYNTHETIC_SIZES["n_val"], **options) -> Splits:
    """A generated task: one pack per (seed, sizes, options), every image of it used."""
    _check_options(task, options, ["n_train", "n_val", *_task_options(task)])
    module = GENERATORS[task]
    identity = dict(task=task, image_size=image_size, seed=seed, n_train=n_train, n_val=n_val,
                    version=module.VERSION, **options)

    def build(builder: PackBuilder) -> None:
        # Separate streams for train and val, so n_train does not change the validation images.
        val_options = {**options, **getattr(module, "VAL_OPTIONS", {}).get(task, {})}
        builder.add("train", *module.generate(task, n_train, image_size, seed * 2, **options))
        builder.add("val", *module.generate(task, n_val, image_size, seed * 2 + 1, **val_options))
        builder.classes = [str(c) for c in range(_task_classes(task, options))]
        builder.source = f"generated: {task}"

    pack = ensure_pack(task, identity, image_size, build)
    return _splits(task, pack, np.arange(len(pack.labels["train"])), np.arange(len(pack.labels["val"])),
                   _task_classes(task, options))


def _load_real(name: str, image_size: int, seed: int, n_train=None, n_val=None, val_fraction=VAL_FRACTION,
               **options) -> Splits:
    """A real set: one pack per source and image size; the seed draws subsets (n_train, n_val) and, for a set
    without a val split, the split itself."""
    fmt = real.FORMATS[name]
    _check_options(name, options, ["root", *SPLIT_OPTIONS])
    pack = ensure_pack(name, fmt.identity(image_size=image_size, **options), image_size,
                       lambda builder: fmt.build(builder, **options))
    train_rows, val_rows = np.arange(len(pack.labels["train"])), np.arange(len(pack.labels["val"]))
    if not len(val_rows):
        train_rows, val_rows = split_indices(len(train_rows), val_fraction, seed)
        val_rows = np.sort(val_rows)
        train_rows = np.sort(train_rows)
    # one stream per split, so n_train does not change which validation images a seed draws
    train_rows = train_rows[real.subset_rows(len(train_rows), n_train, np.random.default_rng([seed, 0]))]
    val_rows = val_rows[real.subset_rows(len(val_rows), n_val, np.random.default_rng([seed, 1]))]
    return _splits(name, pack, train_rows, val_rows, len(pack.classes))


def _splits(name: str, pack: Pack, train_rows: np.ndarray, val_rows: np.ndarray, classes: int) -> Splits:
    """Rows of a pack as splits. A set without its own val split takes both from the pack's train images."""
    val_images = pack.images["val"] if len(pack.labels["val"]) else pack.images["train"]
    val_labels = pack.labels["val"] if len(pack.labels["val"]) else pack.labels["train"]

    def part(images, labels, rows):
        return Part(images, rows.astype(np.int64), torch.from_numpy(labels[rows].astype(np.int64)))
    return Splits(name, part(pack.images["train"], pack.labels["train"], train_rows),
                  part(val_images, val_labels, val_rows), int(classes), pack.mean, pack.std, pack.key,
                  tuple(pack.classes))


def _generated_loader(task: str) -> Callable[..., Splits]:
    return lambda image_size, seed, **options: _load_generated(task, image_size, seed, **options)


def _real_loader(name: str) -> Callable[..., Splits]:
    return lambda image_size, seed, **options: _load_real(name, image_size, seed, **options)


LOADERS: Dict[str, Callable[..., Splits]] = {**{task: _generated_loader(task) for task in GENERATORS},
                                             **{name: _real_loader(name) for name in real.FORMATS}}

# How many classes each dataset has, known without reading its images (to build a model for measuring it).
CLASS_COUNTS: Dict[str, Callable[..., int]] = {
    **{task: (lambda task: lambda **options: _task_classes(task, options))(task) for task in GENERATORS},
    **{name: fmt.classes for name, fmt in real.FORMATS.items()},
}


def is_generated(name: str) -> bool:
    return name in GENERATORS


def is_large(name: str) -> bool:
    """A generated task (drawn at any size) or a real set of tens of thousands of images: where a smoke run
    takes a subset (n_train, n_val). A folder or digits may hold fewer than a subset would ask."""
    return is_generated(name) or (name in real.FORMATS and real.FORMATS[name].large)


def dataset_classes(name: str, **options) -> int:
    """The number of classes ``load_dataset(name, **options)`` would return, without loading the data."""
    if name not in CLASS_COUNTS:
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    return CLASS_COUNTS[name](**options)


def load_dataset(name: str, image_size: int = 32, seed: int = 0, **options) -> Splits:
    """Train/val splits of ``name`` at ``image_size``, fixed by ``seed``: rows of its pack, built on first use."""
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    return LOADERS[name](image_size=image_size, seed=seed, **options)


__all__ = ["load_dataset", "dataset_classes", "is_generated", "is_large", "LOADERS", "DatasetError", "Splits", "Part",
           "SYNTHETIC_SIZES", "GENERATORS"]
