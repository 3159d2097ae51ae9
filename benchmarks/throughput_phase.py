"""The sweep's throughput phase two ways, on the same models in one process: one timing per design in turn (the phase
before ablate/timing.py: the first design 11 warm-up passes, the others 3, then the median of 10 passes each) against
interleaved rounds (the phase now). For each: what it costs, and how far apart designs that do the same work (equal
params and MACs) come out; for the rounds also the intervals' width and whether equal-cost designs' intervals overlap.

    python benchmarks/throughput_phase.py                    # the default placement sweep's designs, 2 repetitions
    python benchmarks/throughput_phase.py --repeats 3 --designs 5 throughput.max_seconds=20

The two ways alternate (sequential, rounds, sequential, rounds, ...), so a drift of the machine falls on both. Any
run_sweep.py key=value after the options sets the sweep (its model, data size, throughput.* settings).
"""
import argparse
import itertools
import os
import statistics
import time

import torch

import search_spaces  # noqa: F401  (registers the spaces)
from ablate.build import proxy_model
from ablate.config import load_config
from ablate.measure import count_macs, count_params, throughput
from ablate.space import get_space
from ablate.timing import interleaved_throughput


def sequential(models, cfg, size):
    """{design: img/s}: each design timed once, in order, as the phase did before the rounds."""
    return {name: throughput(model, batch=cfg.throughput.batch, resolution=size, warmup=11 if i == 0 else 3,
                             iters=10)["throughput_img_s"] for i, (name, model) in enumerate(models.items())}


def equal_cost_groups(models, size):
    """Lists of designs with equal params and MACs (two or more)."""
    costs = {name: (count_params(m), count_macs(m, (1, 3, size, size))["macs_total"]) for name, m in models.items()}
    groups = itertools.groupby(sorted(costs, key=costs.get), key=costs.get)
    return [names for _, group in groups if len(names := list(group)) > 1]


def spread(speeds, groups) -> str:
    return ", ".join(f"{max(speeds[n] for n in g) / min(speeds[n] for n in g):.2f}x ({len(g)} designs)"
                     for g in groups) or "no equal-cost designs"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="repetitions of each way (default 2)")
    parser.add_argument("--designs", type=int, default=None, help="the space's first N designs (default: all)")
    parser.add_argument("overrides", nargs="*", help="run_sweep.py key=value settings")
    args = parser.parse_args()
    cfg = load_config(args.overrides)
    torch.set_num_threads(os.cpu_count() or 1)
    designs = get_space(cfg.space).designs(cfg)[:args.designs]
    size = cfg.data.image_size
    models = {d.pattern: proxy_model(cfg.trial_proxy().for_design(d)) for d in designs}
    groups = equal_cost_groups(models, size)
    print(f"{len(models)} designs of `{cfg.space}` at {size} px, batch {cfg.throughput.batch}, "
          f"{torch.get_num_threads()} threads; equal-cost groups: {[len(g) for g in groups]}")
    print("| repetition | way | seconds | equal-cost spread (fastest / slowest median) | rounds | widest interval | "
          "equal-cost intervals overlap pairwise |")
    print("|---|---|---|---|---|---|---|")
    costs = {"sequential": [], "rounds": []}
    for repetition in range(args.repeats):
        start = time.perf_counter()
        speeds = sequential(models, cfg, size)
        costs["sequential"].append(time.perf_counter() - start)
        print(f"| {repetition + 1} | sequential | {costs['sequential'][-1]:.1f} | {spread(speeds, groups)} | 1 | - | - |")
        start = time.perf_counter()
        timings = interleaved_throughput(models, cfg.throughput, size)
        costs["rounds"].append(time.perf_counter() - start)
        speeds = {name: timed.speed.median for name, timed in timings.models.items()}
        widest = max(timed.speed.half_width for timed in timings.models.values())
        overlap = all(timings.models[a].speed.overlaps(timings.models[b].speed)
                      for g in groups for a, b in itertools.combinations(g, 2))
        print(f"| {repetition + 1} | rounds | {costs['rounds'][-1]:.1f} | {spread(speeds, groups)} | "
              f"{timings.rounds} ({timings.stop}) | ±{widest:.1%} | {'yes' if overlap else 'no'} |")
    sequential_s, rounds_s = (statistics.mean(costs[way]) for way in ("sequential", "rounds"))
    print(f"cost: rounds {rounds_s:.1f} s, sequential {sequential_s:.1f} s, ratio rounds / sequential "
          f"{rounds_s / sequential_s:.2f}")


if __name__ == "__main__":
    main()
