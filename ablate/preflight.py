"""Checks before any Ray call: the device, the dataset, and every design's model.

The checks call the code the trials call (ProxyConfig.for_design, ablate.build), so a rule lives once: a spec,
knob, head count or dataset a trial would fail on stops the sweep here instead, with one message and exit 2.
"""
import dataclasses
from typing import Iterable, NamedTuple

from .build import epoch_steps, make_dataset, model_classes, proxy_model
from .proxy import ProxyConfig


class PreflightError(ValueError):
    """A sweep that cannot run as configured: the message names the key, the value and what is valid."""


def check_designs(base: ProxyConfig, designs: Iterable) -> None:
    """Build every design's model on the meta device (no memory, no weights): spec, knobs, widths and heads."""
    import torch
    for design in designs:
        try:
            with torch.device("meta"):
                proxy_model(base.for_design(design))
        except Exception as error:          # whatever a trial would fail on, named with the design
            knobs = f" with model.mixer_knobs={design.knobs_json}" if design.knobs else ""
            raise PreflightError(f"design {design.pattern!r} (model.spec={design.spec!r}{knobs}) does not "
                                 f"build: {type(error).__name__}: {error}") from None


def check_device(base: ProxyConfig, local: bool, plan: bool) -> None:
    """A trial on CUDA needs a GPU where it runs: on this machine for a local Ray, and for a plan (which times a
    step here) also with a cluster."""
    import torch
    if base.trainer.device != "cuda" or torch.cuda.is_available() or not (local or plan):
        return
    why = "plan=true times a training step on this machine" if plan and not local else "the trials run here"
    raise PreflightError(f"resources.gpus_per_trial>0 puts the trials on CUDA, and this machine has no CUDA device "
                         f"(torch {torch.__version__}), where {why}; add resources.gpus_per_trial=0 to run on "
                         f"the CPU, or run it on a GPU machine")


class DatasetSize(NamedTuple):
    n_train: int
    n_val: int


PROBE_PER_CLASS = 2     # a generated set is drawn this small to check it: the options pass the same generator code


def check_dataset(base: ProxyConfig) -> DatasetSize:
    """Load the first seed's dataset as a trial would, and check a trial's batches fit it. A generated set is drawn
    at a few images per class (its sizes are the options'; the trials draw it whole), so that a plan stays seconds
    long on a fresh machine; a set read from disk is read whole, as only reading it proves it readable."""
    from .data import GENERATORS, SYNTHETIC_SIZES, DatasetError
    proxy = dataclasses.replace(base, seed=0)
    name, options = base.data.name, base.data.options
    generated = name in GENERATORS
    try:
        if generated:
            probe = PROBE_PER_CLASS * model_classes(proxy)
            proxy = dataclasses.replace(proxy, data=dataclasses.replace(
                base.data, options={**options, "n_train": probe, "n_val": probe}))
        data = make_dataset(proxy)
    except (DatasetError, TypeError) as error:
        raise PreflightError(f"data.name={name!r} cannot be loaded: {error}") from None
    if generated:
        size = DatasetSize(options.get("n_train", SYNTHETIC_SIZES["n_train"]),
                           options.get("n_val", SYNTHETIC_SIZES["n_val"]))
    else:
        size = DatasetSize(len(data.train), len(data.val))
    try:
        epoch_steps(size.n_train, base.trainer.batch_size)
    except ValueError as error:
        raise PreflightError(str(error)) from None
    return size
