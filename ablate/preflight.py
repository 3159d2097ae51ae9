"""Checks before any Ray call: every design builds, the dataset loads, and smoke says what it changes.

The checks call the code the trials call (trial_proxy, proxy_model, make_dataset), so a rule lives once: a spec,
knob, head count or dataset a trial would fail on stops the sweep here instead, with one message and exit 2.
"""
import copy
import json
from typing import Iterable, List, NamedTuple, Tuple

SMOKE = {"designs": 2, "epochs": 2, "n_train": 256, "n_val": 128, "dim": 8}   # seeds stay as given


class PreflightError(ValueError):
    """A sweep that cannot run as configured: the message names the key, the value and what is valid."""


def trial_proxy(base: dict, design: dict) -> dict:
    """The proxy config one trial trains: the sweep's base with the design's spec, mixer knobs and seed. The
    design's knobs go over the sweep's own model.mixer_knobs, letter by letter, so neither is dropped."""
    proxy = copy.deepcopy(base)
    proxy["model"]["spec"] = design["spec"]
    knobs = json.loads(design["knobs"])
    sweep_knobs = proxy["model"]["mixer_knobs"] or {}
    proxy["model"]["mixer_knobs"] = {letter: {**sweep_knobs.get(letter, {}), **knobs.get(letter, {})}
                                     for letter in {*sweep_knobs, *knobs}}
    proxy["seed"] = design["seed"]
    return proxy


def design_proxy(base: dict, design, seed: int = 0) -> dict:
    """The proxy config of ``design`` (an ablate.space.Design) at ``seed``; seed 0 outside any trial (building,
    measuring, calibrating it)."""
    return trial_proxy(base, {"spec": design.spec, "knobs": design.knobs, "seed": seed})


def proxy_model(proxy: dict):
    """The model a trial of ``proxy`` trains (the dataset's classes included), and its config."""
    from .train import as_config, make_model, model_classes
    cfg = as_config(proxy)
    return make_model(cfg, num_classes=model_classes(cfg)), cfg


def smoke_changes(cfg) -> List[Tuple[str, object, object]]:
    """(key, the value set, smoke's value) for every key smoke=true replaces: the one list apply_smoke applies."""
    changes = [("trainer.epochs", cfg.trainer.epochs, SMOKE["epochs"]), ("model.dim", cfg.model.dim, SMOKE["dim"]),
               ("model.in_dim", cfg.model.in_dim, SMOKE["dim"])]
    from .data import is_large
    if is_large(cfg.data.name):                 # smoke cuts generated sets, CIFAR, Tiny-ImageNet; not folders
        changes += [("data.options.n_train", cfg.data.options.get("n_train"), SMOKE["n_train"]),
                    ("data.options.n_val", cfg.data.options.get("n_val"), SMOKE["n_val"])]
    return changes


def apply_smoke(cfg):
    """A copy of cfg with smoke's small settings."""
    from omegaconf import OmegaConf
    smoke = OmegaConf.structured(copy.deepcopy(cfg))
    for key, _, value in smoke_changes(cfg):
        OmegaConf.update(smoke, key, value, force_add=True)
    return OmegaConf.to_object(smoke)


def describe_smoke(cfg) -> str:
    changed = ", ".join(f"{key}={new} (was {old if old is not None else 'the default'})"
                        for key, old, new in smoke_changes(cfg) if old != new)
    return f"smoke=true: the first {SMOKE['designs']} designs; sets " + (changed or "nothing else")


def check_designs(base: dict, designs: Iterable) -> None:
    """Build every design's model on the meta device (no memory, no weights): spec, knobs, widths and heads."""
    import torch
    for design in designs:
        proxy = design_proxy(base, design)
        try:
            with torch.device("meta"):
                proxy_model(proxy)
        except Exception as error:          # whatever a trial would fail on, named with the design
            knobs = "" if design.knobs == "{}" else f" with model.mixer_knobs={design.knobs}"
            raise PreflightError(f"design {design.pattern!r} (model.spec={design.spec!r}{knobs}) does not "
                                 f"build: {type(error).__name__}: {error}") from None


def check_device(base: dict, local: bool, plan: bool) -> None:
    """A trial on CUDA needs a GPU where it runs: on this machine for a local Ray, and for a plan (which times a
    step here) also with a cluster."""
    import torch
    if base["trainer"]["device"] != "cuda" or torch.cuda.is_available() or not (local or plan):
        return
    why = "plan=true times a training step on this machine" if plan and not local else "the trials run here"
    raise PreflightError(f"resources.gpus_per_trial>0 puts the trials on CUDA, and this machine has no CUDA device "
                         f"(torch {torch.__version__}), where {why}; add resources.gpus_per_trial=0 to run on "
                         f"the CPU, or run it on a GPU machine")


class DatasetSize(NamedTuple):
    n_train: int
    n_val: int


PROBE_PER_CLASS = 2     # a generated set is drawn this small to check it: the options pass the same generator code


def check_dataset(base: dict) -> DatasetSize:
    """Load the first seed's dataset as a trial would, and check a trial's batches fit it. A generated set is drawn
    at a few images per class (its sizes are the options'; the trials draw it whole), so that a plan stays seconds
    long on a fresh machine; a set read from disk is read whole, as only reading it proves it readable."""
    from .data import GENERATORS, SYNTHETIC_SIZES, DatasetError
    from .train import as_config, epoch_steps, make_dataset, model_classes
    proxy = {**base, "seed": 0}
    name, options = base["data"]["name"], base["data"]["options"]
    generated = name in GENERATORS
    try:
        if generated:
            probe = PROBE_PER_CLASS * model_classes(as_config(proxy))
            proxy["data"] = {**base["data"], "options": {**options, "n_train": probe, "n_val": probe}}
        data = make_dataset(as_config(proxy))
    except (DatasetError, TypeError) as error:
        raise PreflightError(f"data.name={name!r} cannot be loaded: {error}") from None
    if generated:
        size = DatasetSize(options.get("n_train", SYNTHETIC_SIZES["n_train"]),
                           options.get("n_val", SYNTHETIC_SIZES["n_val"]))
    else:
        size = DatasetSize(len(data.train), len(data.val))
    try:
        epoch_steps(size.n_train, base["trainer"]["batch_size"])
    except ValueError as error:
        raise PreflightError(str(error)) from None
    return size
