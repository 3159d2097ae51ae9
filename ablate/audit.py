"""Proxy audit: does a finished sweep's ranking survive a bigger budget?

    python -m ablate.audit runs/<name> [rung=epochs] [scale=2] [designs=5] [seeds=3]

Re-trains a stratified subset of the sweep's designs (evenly spaced in its ranking, so the best, the middle and
the worst, plus the space's default design) at a higher fidelity rung, as a sweep of its own in
runs/<name>/audit/<rung>x<scale>/ (resumable: run the same command again to finish it). Then it rewrites the
run's report, whose "Proxy audit" section compares the rungs on the same seeds (ablate/report/audit_section.py).
"""
import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import ConfigError, SweepConfig, load_run_config
from .data import SYNTHETIC_SIZES, is_generated
from .files import write_atomic
from .report.audit_section import AUDIT_DIR, AUDIT_FILE
from .spec import parse_spec


class AuditError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Rung:
    """A higher-fidelity rung: what it changes for a scale, as key -> (the value in effect, the new value)."""
    description: str
    changes: Callable[[SweepConfig, float], Dict[str, Tuple[object, object]]]


def _n_train(cfg: SweepConfig) -> int:
    if not is_generated(cfg.data.name) and "n_train" not in cfg.data.options:
        raise AuditError(f"rung=data scales data.options.n_train, and {cfg.data.name!r} trains on its whole set; "
                         f"use rung=epochs or rung=width")
    return int(cfg.data.options.get("n_train", SYNTHETIC_SIZES["n_train"]))


def _epochs(cfg, scale):
    return {"trainer.epochs": (cfg.trainer.epochs, max(1, round(cfg.trainer.epochs * scale)))}


def _data(cfg, scale):
    n_train = _n_train(cfg)                 # a generated task's default size when the config leaves it unset
    return {"data.options.n_train": (n_train, round(n_train * scale))}


def _width(cfg, scale):
    return {"model.dim": (cfg.model.dim, round(cfg.model.dim * scale)),
            "model.in_dim": (cfg.model.in_dim, round(cfg.model.in_dim * scale))}


# The rungs, in one place. Resolution is not one: it changes the token counts, which is what placement is about
# (resolutions= is its own sweep dimension).
RUNGS: Dict[str, Rung] = {
    "epochs": Rung("more epochs on the same images", _epochs),
    "data": Rung("more training images, the same epochs", _data),
    "budget": Rung("more epochs and more training images", lambda cfg, s: {**_epochs(cfg, s), **_data(cfg, s)}),
    "width": Rung("a wider model (dim and in_dim)", _width),
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
    default = next((r.design for r in summary.itertuples() if r.spec == base and r.knobs == "{}"), None)
    requests = {r.design: r.pattern if r.design == r.pattern else r.spec for r in summary.itertuples()}
    return list(summary["design"]), default, requests


def audit_config(cfg: SweepConfig, run_dir: Path, rung: str, scale: float, designs: List[str], seeds: int
                 ) -> Tuple[SweepConfig, Dict[str, list]]:
    """The audit's sweep config, and each change as key -> [old, new]."""
    from omegaconf import OmegaConf
    if rung not in RUNGS:
        raise AuditError(f"rung={rung!r} is not a rung; valid: {', '.join(RUNGS)}")
    if not scale > 1:
        raise AuditError(f"scale={scale}: a higher-fidelity rung needs scale > 1")
    changes = RUNGS[rung].changes(cfg, scale)
    audit = OmegaConf.structured(cfg)
    if all(old == new for old, new in changes.values()):
        settled = ", ".join(f"{key}={new}" for key, (_, new) in changes.items())
        raise AuditError(f"rung={rung} scale={scale:g} changes nothing here ({settled} after rounding); use a "
                         f"larger scale")
    for key, (_, new) in changes.items():
        OmegaConf.update(audit, key, new, force_add=True)
    # every audited design trains to the full budget: early stopping would keep the cheap ranking by construction
    settings = {"runs_dir": str(run_dir / AUDIT_DIR), "name": f"{rung}x{scale:g}", "designs": designs,
                "seeds": seeds, "smoke": False, "plan": False, "resume": True, "experiment": None,
                "search.algo": "grid", "scheduler": "none"}
    for key, value in settings.items():
        OmegaConf.update(audit, key, value, force_add=True)
    return OmegaConf.to_object(audit), {key: [old, new] for key, (old, new) in changes.items()}


@dataclasses.dataclass
class AuditOptions:
    """The command's options, with their defaults (python -m ablate.audit runs/<name> key=value ...)."""
    rung: str = "epochs"
    scale: float = 2.0
    designs: int = 5             # evenly spaced in the run's ranking, plus the default design
    seeds: int = 3               # the run's first seeds, at most all it has


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
    audit, changes = audit_config(cfg, run_dir, options.rung, options.scale, [requests[d] for d in chosen],
                                  min(options.seeds, cfg.seeds))
    audit_dir = run_sweep(audit, command=command)
    record = {"rung": options.rung, "scale": options.scale, "description": RUNGS[options.rung].description,
              "changes": changes,
              "designs": chosen, "seeds": audit.seeds, "command": command}
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
