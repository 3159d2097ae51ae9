"""Which proxy is decisive? Trains a set of designs on one candidate (task, knobs, budget) and prints how well it
separates them, per CPU-second.

    python benchmarks/tasks.py --task fractal [--option classes=20 ...] [--set trainer.epochs=2 ...]
                               [--designs screen|placement|all|NAME,NAME] [--seeds 0,1,2] [--workers 2]
                               [--out runs/tasks.jsonl] [--label NAME]
    python benchmarks/tasks.py --summary runs/tasks.jsonl       # the figures again, for every candidate in it

One trial per (design, seed), one thread each, --workers at a time. Each finished trial is appended to --out
as a JSON line, and a (candidate, design, seed) already there is not trained again, so a killed benchmark
resumes. For every metric it prints the design effect of a two-way analysis (designs x seeds as blocks: F,
p, the design's share of the variance), the design pairs Tukey's HSD resolves, the paper's Table 5 pairs
resolved (agreeing / against the paper), the CPU-seconds of all trials, and resolved pairs per CPU-hour: the
figures a candidate proxy is chosen by.
"""
import argparse
import dataclasses
import json
import random
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablate.config import ReportConfig
from ablate.proxy import ProxyConfig
from ablate.report.budgets import budget_tables
from ablate.report.conclusions import conclude
from ablate.report.decisive import decisiveness
from ablate.report.decisive_section import paper_pairs
from ablate.report.table import fmt
from ablate.results import METRICS, OK
from ablate.spec import apply_pattern
from ablate.train import train_proxy
from search_spaces import free, placement

BASE = ProxyConfig().model.spec


def _random_spec(seed):
    """Stages 3-4 of the base spec, one letter per block drawn from the free space's letters."""
    draw = random.Random(seed)
    stages = BASE.split("|")
    return "|".join(stages[:2] + ["".join(draw.choice(free.LETTERS) for _ in s) for s in stages[2:]])


def designs() -> dict:
    """Every design the benchmark knows: the placement space (the paper's six, the controls), a point of the
    ratio space and two random specs over the free space's letters."""
    found = {d.pattern: d.spec for d in placement.designs(ProxyConfig())}
    found["even 1/4"] = apply_pattern(BASE, "even", ratio=0.25).canonical
    found["random spec A"], found["random spec B"] = _random_spec(1), _random_spec(2)
    return found


DESIGN_SETS = {
    "screen": ["all conv", "last N/2 (default)", "first N/2", "all attention", "all Mamba",
               "inverted (EfficientVMamba)", "even 1/4", "random spec A"],
    "placement": [d.pattern for d in placement.designs(ProxyConfig())],
}
DESIGN_SETS["all"] = list(dict.fromkeys(DESIGN_SETS["placement"] + DESIGN_SETS["screen"] + ["random spec B"]))
PAPER_PAIRS = paper_pairs(placement.PAPER_TOP1)


def trial_config(task, spec, seed, overrides) -> ProxyConfig:
    """The trial's ProxyConfig: design, task and seed, then the dotted overrides (typed and checked by
    OmegaConf, as run_sweep.py's key=value overrides are)."""
    trial = {"model": {"spec": spec}, "data": {"name": task}, "seed": seed}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ProxyConfig), trial, OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as error:
        raise SystemExit(f"bad --set/--option: {str(error).splitlines()[0]}") from None
    return OmegaConf.to_object(merged)


def run(job):
    label, design, cfg = job
    result = train_proxy(cfg)
    return {"label": label, "design": design, "budgets": [dataclasses.asdict(b) for b in result.budgets],
            **{k: getattr(result, k) for k in (
                "spec", "seed", "data_seed", "status", "error", "train_time_s", "history", "data_digest", *METRICS)}}


def conclusion_counts(trials, metric, margin) -> str:
    """better / equivalent / moving / undecided over the budgets, and the conclusions that hold (better or
    equivalent) per CPU-hour."""
    tables = budget_tables(trials, metric, labels=trials["design"])     # the report's tables, by this run's labels
    try:
        found = conclude({b: metric.oriented(t) for b, t in tables.items()}, margin)
    except ValueError as error:
        return f"- | - | ({error})"
    held = found.count("better") + found.count("equivalent")
    counts = " / ".join(str(found.count(v)) for v in ("better", "equivalent", "moving", "undecided"))
    return f"{counts} | {held / (trials['train_time_s'].sum() / 3600):.1f}"


def summarize(rows, margin: float = ReportConfig().equivalence) -> str:
    """The decisiveness table of each candidate in ``rows`` (one dict per trial), and the pairwise conclusions
    (ablate/report/conclusions.py) with equivalence ``margin`` in each metric's units."""
    frame = pd.DataFrame(rows)
    frame = frame[frame["status"] == OK]
    lines = []
    for label, trials in frame.groupby("label", sort=False):
        cpu = trials["train_time_s"].sum()
        lines += ["", f"## {label}", "", f"{trials['design'].nunique()} designs, seeds "
                  f"{sorted(int(s) for s in trials['seed'].unique())}, {len(trials)} trials, {cpu:.0f} CPU-s "
                  f"({trials['train_time_s'].mean():.0f} s per trial)", "",
                  "| metric | F | p | design share | pairs resolved | paper pairs resolved (agree / against) "
                  f"| resolved per CPU-hour | better / equivalent (margin {margin:g}) / moving / undecided "
                  "| conclusions that hold per CPU-hour |", "|---|---|---|---|---|---|---|---|---|"]
        for column, metric in METRICS.items():
            table = metric.oriented(trials.pivot_table(index="design", columns="seed", values=column))
            result = decisiveness(table, PAPER_PAIRS)
            anova, named, agree, against = result.anova, result.named, result.agree, result.against
            lines.append(f"| {metric.label} | {fmt(anova.F, '.2f')} | {fmt(anova.p, '.2g')} | "
                         f"{fmt(anova.share, '.2f')} | "
                         f"{result.resolved} / {len(result.pairs)} | {agree + against} ({agree} / {against}) "
                         f"of {len(named)} | {result.resolved / (cpu / 3600):.1f} | "
                         f"{conclusion_counts(trials, metric, margin)} |")
        means = trials.pivot_table(index="design", values=["val_acc_late", "val_loss_late", "train_time_s"])
        lines += ["", "| design | val acc (late) | val loss (late) | s per trial |", "|---|---|---|---|"]
        for design, row in means.sort_values("val_loss_late").iterrows():
            lines.append(f"| {design} | {row['val_acc_late']:.3f} | {row['val_loss_late']:.3f} | "
                         f"{row['train_time_s']:.0f} |")
    return "\n".join(lines)


def _read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()] if path.exists() else []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="fractal")
    parser.add_argument("--designs", default="screen", help=f"a set ({', '.join(DESIGN_SETS)}) or names from: "
                                                            f"{', '.join(designs())}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a task knob, e.g. classes=20 (= --set data.options.classes=20)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a trial config key, dotted, e.g. trainer.epochs=2 or data.seed=0")
    parser.add_argument("--label", help="the candidate's name in --out (default: task, options and sets)")
    parser.add_argument("--out", default="runs/tasks.jsonl", help="trials are appended here, one JSON line each")
    parser.add_argument("--summary", metavar="FILE", help="print the figures of every candidate in FILE and exit")
    parser.add_argument("--equivalence", type=float, default=ReportConfig().equivalence,
                        help="the conclusions' equivalence margin, in each metric's units")
    args = parser.parse_args()
    if args.summary:
        print(summarize(_read(Path(args.summary)), args.equivalence))
        return
    known = designs()
    names = DESIGN_SETS.get(args.designs, args.designs.split(","))
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown design(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    overrides = [f"data.options.{item}" for item in args.option] + args.set
    label = args.label or " ".join([args.task] + args.option + args.set)
    out = Path(args.out)
    done = {(r["design"], r["seed"]) for r in _read(out) if r["label"] == label}
    jobs = [(label, name, trial_config(args.task, known[name], int(seed), overrides))
            for seed in args.seeds.split(",") for name in names if (name, int(seed)) not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for future in as_completed([pool.submit(run, job) for job in jobs]):
            row = future.result()
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            curve = " ".join(f"{h['val_acc']:.2f}" for h in row["history"])
            print(f"# {row['design']} seed {row['seed']}: acc late {row['val_acc_late'] or 0:.3f}, loss late "
                  f"{row['val_loss_late'] or 0:.3f} in {row['train_time_s']:.0f} s; val acc by evaluation: {curve}"
                  + (f" (failed: {row['error']})" if row["error"] else ""), flush=True)
    print(summarize([r for r in _read(out) if r["label"] == label], args.equivalence))


if __name__ == "__main__":
    main()
