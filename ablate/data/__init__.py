"""Datasets for proxy trainings. Nothing downloads: data is generated, ships in a package, or is read from disk.

    load_dataset(name, image_size=32, seed=0, **options) -> Splits
    dataset_classes(name, **options) -> int     (without reading the images)

names: fractal, contour (formula-driven, many classes: formula.py), match, tint, order, recall, oddball, count,
texture (synthetic.py), digits, cifar10 (root=), imagefolder (root=). ``seed`` draws the images (the data
seed); for a generated task it never changes the task's classes.
"""
import inspect
from typing import Callable, Dict

import numpy as np

from ..files import atomic_path
from . import formula, real, synthetic
from .base import DatasetError, Splits, cache_path, make_splits

# 500 validation images: a standard error of at most 2.2 points, far below the seed-to-seed spread of a trial
# (0.25 on match); evaluating 1,000 cost 7% of a default sweep.
SYNTHETIC_SIZES = {"n_train": 4000, "n_val": 500}


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


def _synthetic(task: str) -> Callable:
    module = GENERATORS[task]

    def load(image_size, seed, n_train=SYNTHETIC_SIZES["n_train"], n_val=SYNTHETIC_SIZES["n_val"], **options):
        valid = _task_options(task)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise DatasetError(f"{task}: unknown option(s) {', '.join(unknown)}; valid: n_train, n_val, "
                               f"{', '.join(valid)}")
        params = dict(task=task, image_size=image_size, seed=seed, n_train=n_train, n_val=n_val,
                      version=module.VERSION, **options)
        path = cache_path(task, params)
        if path.is_file():
            with np.load(path) as cached:
                arrays = [cached[k] for k in ("train_x", "train_y", "val_x", "val_y")]
        else:
            # Separate streams for train and val, so n_train does not change the validation images.
            val_options = {**options, **getattr(module, "VAL_OPTIONS", {}).get(task, {})}
            arrays = [*module.generate(task, n_train, image_size, seed * 2, **options),
                      *module.generate(task, n_val, image_size, seed * 2 + 1, **val_options)]
            with atomic_path(path) as temp:                     # concurrent trials may draw the same set
                np.savez(temp, **dict(zip(("train_x", "train_y", "val_x", "val_y"), arrays)))
        return (*arrays, _task_classes(task, options))
    return load


def _synthetic_classes(task: str) -> Callable[..., int]:
    return lambda **options: _task_classes(task, options)


LOADERS: Dict[str, Callable] = {
    **{task: _synthetic(task) for task in GENERATORS},
    "digits": real.load_digits,
    "cifar10": real.load_cifar10,
    "imagefolder": real.load_imagefolder,
}

# How many classes each dataset has, known without reading its images (to build a model for measuring it).
CLASS_COUNTS: Dict[str, Callable[..., int]] = {
    **{task: _synthetic_classes(task) for task in GENERATORS},
    "digits": lambda **_: real.DIGITS_CLASSES,
    "cifar10": lambda **_: real.CIFAR10_CLASSES,
    "imagefolder": real.imagefolder_classes,
}


def dataset_classes(name: str, **options) -> int:
    """The number of classes ``load_dataset(name, **options)`` would return, without loading the data."""
    if name not in CLASS_COUNTS:
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    return CLASS_COUNTS[name](**options)


def load_dataset(name: str, image_size: int = 32, seed: int = 0, **options) -> Splits:
    """Train/val splits of ``name`` at ``image_size``, fixed by ``seed``, normalised with training statistics."""
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    train_x, train_y, val_x, val_y, classes = LOADERS[name](image_size=image_size, seed=seed, **options)
    return make_splits(name, train_x, train_y, val_x, val_y, classes)


__all__ = ["load_dataset", "dataset_classes", "LOADERS", "DatasetError", "Splits"]
