"""Proxy audit: does a finished sweep's ranking survive a bigger budget, or another dataset?

    python -m ablate.audit runs/<name> [rung=epochs] [scale=2] [designs=5] [seeds=3]
    python -m ablate.audit runs/<name> rung=task [task=fashion_mnist] [root=/dir]
    python -m ablate.audit runs/<name> ... first_seed=100      # on fresh seeds 100, 101, ... instead of the run's

Re-trains a stratified subset of the sweep's designs (evenly spaced in its ranking, so the best, the middle and
the worst, plus the space's default design) at a higher fidelity rung, as a sweep of its own in
runs/<name>/audit/<rung>x<scale>/ (resumable: run the same command again to finish it). rung=task instead trains
them on another dataset (task=, Fashion-MNIST by default) with the run's budget and as many images as the run
had, in runs/<name>/audit/task_<dataset>/. Then it rewrites the run's report, whose "Proxy audit" section
compares the rungs on the same seeds (or fresh ones, first_seed=) and rechecks the run's settled conclusions on the
audit's own (ablate/report/audit_section.py).
"""
import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import ConfigError, SweepConfig, load_run_config, seed_range
from .data import LOADERS, SYNTHETIC_SIZES, DatasetError, is_generated, load_dataset
from .files import AUDIT_DIR, AUDIT_FILE, write_atomic
from .results import NO_KNOBS
from .spec import parse_spec


class AuditError(ValueError):
    pass


Changes = Dict[str, Tuple[object, object]]       # key -> (the value in effect, the new value)


@dataclasses.dataclass
class AuditOptions:
    """The command's options, with their defaults (python -m ablate.audit runs/<name> key=value ...)."""
    rung: str = "epochs"
    scale: float = 2.0           # how far a budget rung goes (not used by rung=task)
    designs: int = 5             # evenly spaced in the run's ranking, plus the default design
    seeds: int = 3               # the run's first seeds, at most all it has (fresh seeds: as many as asked)
    # None: the run's own seeds, paired with it; a number: fresh seeds from there, which the run never trained (a
    # conclusion shown on seeds it was not chosen on); the audit's directory then ends in _s<first_seed>
    first_seed: Optional[int] = None
    # rung=task: the dataset the designs are re-trained on. Fashion-MNIST: real images that need no download
    # (Debian's dataset-fashion-mnist), a different question from a generated task's.
    task: str = "fashion_mnist"
    root: Optional[str] = None   # rung=task: the task's data.root (None: the task's own default location)


@dataclasses.dataclass(frozen=True)
class Rung:
    """A higher-fidelity rung: what it changes, as key -> (the value in effect, the new value)."""
    description: str             # may name {dataset} (the run's) and {task}
    changes: Callable[[SweepConfig, AuditOptions], Changes]
    scaled: bool = True          # scale= says how far it goes; else it swaps the dataset for task=

    def names(self, rung: str, cfg: SweepConfig, options: AuditOptions) -> Tuple[str, str, str]:
        """(the audit's directory, the run's label, the audit's label) as the report shows them."""
        if self.scaled:
            return f"{rung}x{options.scale:g}", "1x", f"{options.scale:g}x {rung}"
        return f"{rung}_{options.task}", cfg.data.name, options.task


def _n_train(cfg: SweepConfig) -> int:
    if not is_generated(cfg.data.name) and "n_train" not in cfg.data.options:
        raise AuditError(f"rung=data scales data.options.n_train, and {cfg.data.name!r} trains on its whole set; "
                         f"use rung=epochs or rung=width")
    return int(cfg.data.options.get("n_train", SYNTHETIC_SIZES["n_train"]))


def _epochs(cfg, options):
    return {"trainer.epochs": (cfg.trainer.epochs, max(1, round(cfg.trainer.epochs * options.scale)))}


def _data(cfg, options):
    n_train = _n_train(cfg)                 # a generated task's default size when the config leaves it unset
    return {"data.options.n_train": (n_train, round(n_train * options.scale))}


def _width(cfg, options):
    return {"model.dim": (cfg.model.dim, round(cfg.model.dim * options.scale)),
            "model.in_dim": (cfg.model.in_dim, round(cfg.model.in_dim * options.scale))}


def _run_sizes(cfg: SweepConfig) -> Dict[str, int]:
    """The training and validation images the run had: its options, a generated task's defaults, or, for a real
    set used whole, counted from its pack (built when the run trained, so this only maps it)."""
    sizes = {key: cfg.data.options[key] for key in SYNTHETIC_SIZES if cfg.data.options.get(key)}
    if is_generated(cfg.data.name) or len(sizes) == len(SYNTHETIC_SIZES):
        return {**SYNTHETIC_SIZES, **sizes}
    options = {**cfg.data.options, **({"root": cfg.data.root} if cfg.data.root is not None else {})}
    try:
        data = load_dataset(cfg.data.name, image_size=cfg.data.image_size, seed=0, **options)
    except DatasetError as error:
        raise AuditError(f"rung=task trains on as many images as the run did, counted from its dataset, which "
                         f"cannot be read now: {error}") from None
    return {"n_train": len(data.train), "n_val": len(data.val), **sizes}


def _task(cfg, options):
    """Another dataset at the run's image size, budget and seeds, on as many images as the run had (so a trial
    costs what the run's did); none of the run's data options but the sizes carries over (they are its task's)."""
    if options.task not in LOADERS:
        raise AuditError(f"task={options.task!r} is not a dataset; valid: {', '.join(LOADERS)}")
    if options.task == cfg.data.name:
        raise AuditError(f"task={options.task} is the run's own dataset; rung=task re-trains on another one "
                         f"(task=NAME; valid: {', '.join(name for name in LOADERS if name != cfg.data.name)})")
    changes = {"data.name": (cfg.data.name, options.task),
               "data.options": (dict(cfg.data.options), _run_sizes(cfg))}
    if cfg.data.root != options.root:       # the run's root is its dataset's, not the task's
        changes["data.root"] = (cfg.data.root, options.root)
    return changes


# The rungs, in one place. Resolution is not one: it changes the token counts, which is what placement is about
# (resolutions= is its own sweep dimension).
RUNGS: Dict[str, Rung] = {
    "epochs": Rung("more epochs on the same images", _epochs),
    "data": Rung("more training images, the same epochs", _data),
    "budget": Rung("more epochs and more training images", lambda cfg, o: {**_epochs(cfg, o), **_data(cfg, o)}),
    "width": Rung("a wider model (dim and in_dim)", _width),
    "task": Rung("the same designs on {task} instead of {dataset}", _task, scaled=False),
}


def stratified(ranked: List[str], count: int, default: Optional[str] = None) -> List[str]:
    """``count`` designs evenly spaced in the ranking (best and worst included), and the default design."""
    if count < 2:
        raise AuditError(f"designs={count}: an audit ranks at least 2 designs")
    picks = sorted(set(np.linspace(0, len(ranked) - 1, min(count, len(ranked))).round().astype(int)))
    chosen = [ranked[i] for i in picks]
    if default in ranked and default not in chosen:
        chosen.append(default)
    return chosen


def _ranked_designs(run_dir: Path, cfg: SweepConfig) -> Tuple[List[str], Optional[str], Dict[str, str]]:
    """The run's trained designs best first, the default design's label (the base spec, no knobs), and what to
    ask the audit's sweep for each: its pattern where that names it alone, else its spec (a searched design)."""
    from .report.table import design_summary, load_results
    summary = design_summary(load_results(run_dir))
    summary = summary[summary["metric_mean"].notna()]
    base = parse_spec(cfg.model.spec).canonical
    default = next((r.design for r in summary.itertuples() if r.spec == base and r.knobs == NO_KNOBS), None)
    requests = {r.design: r.pattern if r.design == r.pattern else r.spec for r in summary.itertuples()}
    return list(summary["design"]), default, requests


def audit_config(cfg: SweepConfig, run_dir: Path, options: AuditOptions, designs: List[str]
                 ) -> Tuple[SweepConfig, Dict[str, list]]:
    """The audit's sweep config, and each change as key -> [old, new]."""
    from omegaconf import OmegaConf
    rung = RUNGS.get(options.rung)
    if rung is None:
        raise AuditError(f"rung={options.rung!r} is not a rung; valid: {', '.join(RUNGS)}")
    if rung.scaled and not options.scale > 1:
        raise AuditError(f"scale={options.scale:g}: a higher-fidelity rung needs scale > 1")
    changes = rung.changes(cfg, options)
    audit = OmegaConf.structured(cfg)
    if all(old == new for old, new in changes.values()):
        settled = ", ".join(f"{key}={new}" for key, (_, new) in changes.items())
        raise AuditError(f"rung={options.rung} scale={options.scale:g} changes nothing here ({settled} after "
                         f"rounding); use a larger scale")
    for key, (_, new) in changes.items():
        # merge=False: a new data.options replaces the run's (a generated task's knobs mean nothing to another)
        OmegaConf.update(audit, key, new, merge=False, force_add=True)
    # every audited design trains to the full budget: early stopping would keep the cheap ranking by construction
    fresh = options.first_seed is not None
    if fresh and set(range(options.first_seed, options.first_seed + options.seeds)) & set(seed_range(cfg)):
        raise AuditError(f"first_seed={options.first_seed} seeds={options.seeds} overlaps the run's seeds "
                         f"{list(seed_range(cfg))}; fresh seeds start at {cfg.first_seed + cfg.seeds} or later")
    name = rung.names(options.rung, cfg, options)[0] + (f"_s{options.first_seed}" if fresh else "")
    settings = {"runs_dir": str(run_dir / AUDIT_DIR), "name": name, "designs": designs,
                "seeds": options.seeds if fresh else min(options.seeds, cfg.seeds),
                "first_seed": options.first_seed if fresh else cfg.first_seed, "smoke": False, "plan": False,
                "resume": True, "experiment": None, "search.algo": "grid", "scheduler": "none"}
    for key, value in settings.items():
        OmegaConf.update(audit, key, value, force_add=True)
    return OmegaConf.to_object(audit), {key: [old, new] for key, (old, new) in changes.items()}


def audit_record(cfg: SweepConfig, options: AuditOptions, changes: Dict[str, list], designs: List[str], seeds: int,
                 command: str = "") -> dict:
    """What the report reads from audit.json: the rung, what it changed, and how to label the run and the audit."""
    rung = RUNGS[options.rung]
    _, low, high = rung.names(options.rung, cfg, options)
    return {"rung": options.rung, "scale": options.scale if rung.scaled else None,
            "description": rung.description.format(task=options.task, dataset=cfg.data.name),
            "low": low, "high": high, "changes": changes, "designs": designs, "seeds": seeds, "command": command}


def run_audit(run_dir, options: AuditOptions = AuditOptions(), command: str = "") -> Path:
    """Train the audit's sweep and rewrite the run's report; returns the audit's run directory."""
    from .report import write_report
    from .sweep import run_sweep
    run_dir = Path(run_dir).resolve()
    cfg = load_run_config(run_dir)
    ranked, default, requests = _ranked_designs(run_dir, cfg)
    if len(ranked) < 2:
        raise AuditError(f"{run_dir} has {len(ranked)} trained design(s); an audit ranks at least 2")
    chosen = stratified(ranked, options.designs, default)
    audit, changes = audit_config(cfg, run_dir, options, [requests[d] for d in chosen])
    audit_dir = run_sweep(audit, command=command)
    record = audit_record(cfg, options, changes, chosen, audit.seeds, command)
    write_atomic(audit_dir / AUDIT_FILE, json.dumps(record, indent=1))
    write_report(run_dir)
    return audit_dir


def parse(argv: List[str]) -> Tuple[str, AuditOptions]:
    """The run directory and the typed options (OmegaConf reads the key=value pairs, as for run_sweep.py)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    if not argv or "=" in argv[0]:
        raise AuditError(f"usage: {__doc__.strip().splitlines()[2].strip()}")
    try:
        options = OmegaConf.merge(OmegaConf.structured(AuditOptions), OmegaConf.from_dotlist(argv[1:]))
    except OmegaConfBaseException as error:
        valid = ", ".join(f"{field.name}=" for field in dataclasses.fields(AuditOptions))
        raise AuditError(f"{str(error).splitlines()[0]}; valid keys: {valid}") from None
    return argv[0], OmegaConf.to_object(options)


def main(argv=None) -> int:
    import search_spaces  # noqa: F401  (the spaces the run's config names)
    from .report import ReportError
    from .sweep import SweepError
    argv = sys.argv[1:] if argv is None else argv
    try:
        run_dir, options = parse(argv)
        audit_dir = run_audit(run_dir, options, command=" ".join(["python -m ablate.audit", *argv]))
    except (AuditError, ConfigError, ReportError, SweepError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"audit: {audit_dir}\nreport: {Path(run_dir) / 'report' / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
