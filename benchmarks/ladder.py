"""What does a budget ladder cost? Times whole proxy trials with several ladders, interleaved and repeated in one
process, and prints each ladder's time as a ratio to one budget, beside the ratio its steps predict (the largest
budget plus the branches' cooldowns) and the ratio a separate trial per budget would cost (the sum of the budgets).

    python benchmarks/ladder.py [--rounds 3] [--n-train 4000] [--epochs 2] [--threads 1]

The data are generated once before the clock starts. One thread per trial, nothing else should run: name the CPU
(lscpu) beside any ratio you quote.
"""
import argparse
import statistics
import time

from ablate.build import epoch_steps, make_dataset
from ablate.ladder import ladder_cost
from ablate.proxy import DataConfig, ProxyConfig, TrainerConfig
from ablate.train import train_proxy, trial_rungs

# name -> (budgets, cooldown, decay): one budget (the baseline), the default ladder, the long-training recipe,
# and a three-rung ladder
LADDERS = {
    "one budget": ([1.0], 1.0, "cosine"),
    "[0.5, 1] cooldown 1 (default)": ([0.5, 1.0], 1.0, "cosine"),
    "[0.5, 1] cooldown 0.2": ([0.5, 1.0], 0.2, "linear"),
    "[0.25, 0.5, 1] cooldown 0.2": ([0.25, 0.5, 1.0], 0.2, "linear"),
}


def config(budgets, cooldown, decay, args) -> ProxyConfig:
    return ProxyConfig(data=DataConfig(options={"n_train": args.n_train, "n_val": args.n_val}),
                       trainer=TrainerConfig(epochs=args.epochs, budgets=budgets, cooldown=cooldown, decay=decay,
                                             threads=args.threads), seed=args.seed)


def predicted(cfg: ProxyConfig) -> int:
    """The training steps the ladder takes (ablate.ladder.ladder_cost)."""
    t = cfg.trainer
    steps = epoch_steps(cfg.data.options["n_train"], t.batch_size)
    return ladder_cost(trial_rungs(t, steps))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="each ladder timed this many times, interleaved")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-val", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    configs = {name: config(*ladder_args, args) for name, ladder_args in LADDERS.items()}
    make_dataset(configs["one budget"])                  # generated (and cached) before any timing
    seconds = {name: [] for name in configs}
    for round_ in range(args.rounds):
        order = list(configs)[round_ % len(configs):] + list(configs)[:round_ % len(configs)]   # rotate each round
        for name in order:
            start = time.perf_counter()
            result = train_proxy(configs[name])
            seconds[name].append(time.perf_counter() - start)
            if result.status != "ok":
                raise SystemExit(f"{name}: {result.error}")
    base_time = statistics.median(seconds["one budget"])
    base_steps = predicted(configs["one budget"])
    print(f"{args.rounds} rounds, interleaved; {args.n_train} training images, {args.epochs} epochs, "
          f"{args.threads} thread(s); median s per trial (min-max)\n")
    print("| ladder | s per trial | measured / one budget | steps / one budget | sum of budgets |")
    print("|---|---|---|---|---|")
    for name, cfg in configs.items():
        times = seconds[name]
        print(f"| {name} | {statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f}) | "
              f"{statistics.median(times) / base_time:.2f} | {predicted(cfg) / base_steps:.2f} | "
              f"{sum(cfg.trainer.budgets):.2f} |")


if __name__ == "__main__":
    main()
