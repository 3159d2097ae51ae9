"""Is each synthetic task discriminating? Trains designs on each task at the default proxy budget.

    python benchmarks/tasks.py [--tasks match,count,texture] [--designs all-conv,all-attention] [--seeds 0,1,2]
                               [--epochs 3] [--workers 2] [--option pairs=3 ...] [--set data.image_size=64 ...]

One trial per (task, design, seed), one thread each, ``--workers`` at a time; prints each trial as it ends,
with its validation accuracy after every epoch (one long run also answers the shorter budgets), then best
validation accuracy per seed, the mean and the seconds per trial, and a verdict per task. A long-range task
is discriminating when the all-conv control stays near chance on every seed while a design with global
mixers learns it on every seed (thresholds: NEAR_CHANCE and LEARNED, fractions of the way from chance to 1).
"""
import argparse
import statistics
from concurrent.futures import ProcessPoolExecutor

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablate.data import dataset_classes
from ablate.train import ProxyConfig, train_proxy

DESIGNS = {
    "all-conv": "C|C|CCCC|CC",
    "default": "C|CCC|MMMMTTTT|MMTT",
    "all-attention": "C|CCC|TTTTTTTT|TTTT",
    "all-mamba": "C|CCC|MMMMMMMM|MMMM",
}
CONTROL = "all-conv"
NEAR_CHANCE = 0.1   # at most chance + 0.1 * (1 - chance) on every seed
LEARNED = 0.5       # at least chance + 0.5 * (1 - chance) on every seed


def trial_config(task, design, seed, epochs, overrides) -> ProxyConfig:
    """The trial's ProxyConfig: the design, task, seed and epochs, then the dotted overrides (typed and checked
    by OmegaConf, as run_sweep.py's key=value overrides are)."""
    trial = {"model": {"spec": DESIGNS[design]}, "data": {"name": task}, "seed": seed, "trainer": {"epochs": epochs}}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ProxyConfig), trial, OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as error:
        raise SystemExit(f"bad --set/--option: {str(error).splitlines()[0]}") from None
    return OmegaConf.to_object(merged)


def run(job):
    task, design, seed, cfg = job
    result = train_proxy(cfg)
    curve = [epoch["val_acc"] for epoch in result["history"]]
    return (task, design, seed), result["val_acc_best"] or 0.0, result["train_time_s"], result["error"], curve


def verdict(task, accuracies, chance):
    """One line: is ``task`` discriminating, from best accuracies per design (lists over seeds)."""
    def progress(acc):
        return (acc - chance) / (1 - chance)
    if CONTROL not in accuracies:
        return f"{task}: no verdict ({CONTROL} was not run)"
    control = max(progress(a) for a in accuracies[CONTROL])
    learners = [d for d, accs in accuracies.items() if d != CONTROL and min(map(progress, accs)) >= LEARNED]
    near = control <= NEAR_CHANCE
    answer = "discriminating" if near and learners else "not discriminating"
    return (f"{task}: {answer} (chance {chance:.3f}; {CONTROL} {'stays' if near else 'does not stay'} near chance, "
            f"best seed {control:.2f} of the way to 1; learned on every seed by: {', '.join(learners) or 'none'})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="match,count,texture")
    parser.add_argument("--designs", default=",".join(DESIGNS), help=f"from: {', '.join(DESIGNS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (the proxy default is 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a task knob for every task run, e.g. pairs=3 (= --set data.options.pairs=3)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a trial config key, dotted, e.g. model.window_size=[8,8,16,8] or data.image_size=64")
    args = parser.parse_args()
    overrides = [f"data.options.{item}" for item in args.option] + args.set
    tasks, designs = args.tasks.split(","), args.designs.split(",")
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown:
        raise SystemExit(f"unknown design(s) {', '.join(unknown)}; valid: {', '.join(DESIGNS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(t, d, s, trial_config(t, d, s, args.epochs, overrides)) for t in tasks for d in designs for s in seeds]
    results = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for key, accuracy, seconds, error, curve in pool.map(run, jobs):
            results[key] = (accuracy, seconds)
            print(f"# {' '.join(map(str, key))}: {accuracy:.3f} in {seconds:.0f} s"
                  + (f" (failed: {error})" if error else "")
                  + f"; val acc by epoch: {' '.join(f'{a:.2f}' for a in curve)}", flush=True)
    print("| task | design | best val acc per seed | mean | s/trial |")
    print("|---|---|---|---|---|")
    for task in tasks:
        for design in designs:
            rows = [results[(task, design, s)] for s in seeds]
            accs = [r[0] for r in rows]
            print(f"| {task} | {design} | {' '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(accs):.3f} | "
                  f"{statistics.mean(r[1] for r in rows):.0f} |")
    options = {task: cfg.data.options for task, _, _, cfg in jobs}      # the same for every design and seed
    for task in tasks:
        accuracies = {d: [results[(task, d, s)][0] for s in seeds] for d in designs}
        print(verdict(task, accuracies, 1.0 / dataset_classes(task, **options[task])))


if __name__ == "__main__":
    main()
