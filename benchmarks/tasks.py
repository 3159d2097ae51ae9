"""Is each synthetic task discriminating? Trains designs on each task at the default proxy budget.

    python benchmarks/tasks.py [--tasks match,count,texture] [--seeds 0,1,2] [--epochs 3] [--workers 2]
                               [--option pairs=3 ...]

One trial per (task, design, seed), one thread each, ``--workers`` at a time; prints best validation accuracy
per seed, the mean, and the seconds per trial. A long-range task should leave the all-conv control near
chance while designs with global mixers learn it.
"""
import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor

from ablate.train import train_proxy

DESIGNS = {
    "all-conv": "C|C|CCCC|CC",
    "default (MMMMTTTT|MMTT)": "C|CCC|MMMMTTTT|MMTT",
    "all-attention": "C|CCC|TTTTTTTT|TTTT",
    "all-mamba": "C|CCC|MMMMMMMM|MMMM",
}


def run(job):
    task, design, seed, epochs, options = job
    result = train_proxy({"model": {"spec": DESIGNS[design]}, "data": {"name": task, "options": options},
                          "seed": seed, "trainer": {"epochs": epochs}})
    return job[:3], result["val_acc_best"], result["train_time_s"], result["error"]


def parse_option(item):
    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--option {item!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="match,count,texture")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (the proxy default is 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a task knob for every task run, e.g. pairs=3 (value read as JSON when it parses)")
    args = parser.parse_args()
    options = dict(parse_option(item) for item in args.option)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(t, d, s, args.epochs, options) for t in args.tasks.split(",") for d in DESIGNS for s in seeds]
    results = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for (task, design, seed), accuracy, seconds, error in pool.map(run, jobs):
            results[(task, design, seed)] = (accuracy or 0.0, seconds, error)
            if error:
                print(f"# {task} {design} seed {seed} failed: {error}", flush=True)
    print("| task | design | best val acc per seed | mean | s/trial |")
    print("|---|---|---|---|---|")
    for task in args.tasks.split(","):
        for design in DESIGNS:
            rows = [results[(task, design, s)] for s in seeds]
            accs = [r[0] for r in rows]
            print(f"| {task} | {design} | {' '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(accs):.3f} | "
                  f"{statistics.mean(r[1] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
