"""GPU sweeps at the speed of the chip (issue 25): img/s per GPU of the CIFAR-100 placement proxy, four separate
trials as a sweep ran them before against fused seeds and CUDA graphs; the 30-trial sweep's estimate from each; and a
short fused run's per-seed metrics against separate runs of the same seeds.

    python benchmarks/gpu_sweep.py [--epochs 2] [--out gpu_sweep.json]       # on a GPU: about 8 minutes on an H200
    python benchmarks/gpu_sweep.py --quick                                     # a try on a CPU: tiny sizes

Throughput: `copies` processes at once on the GPU, each a real trial (train_proxy, or train_fused for three seeds)
of the default placement design with experiments/placement_cifar100.yaml's model, batch and augmentation, on a
CIFAR-100-sized set of random images (as benchmarks/gpu_feed.py). img/s counts the last epoch: its images (times
the seeds of a fused trial) over its wall time, all processes together. The sweep's estimate: the 30 trials' images
(10 designs x 3 seeds x 30 epochs x 50,000, times the budget ladder's extra steps) at that rate.
Metrics: seeds 0-2 of the default design on the built-in fractal task, fused and separately, on this device.

On a lent GPU machine (its image has torch; carry kornia's wheels, as for gpu_feed.py), as one call with room to rerun:
    pip download kornia kornia_rs -d wheels        # here, once; wheels/ is carried (run's carry=["wheels"])
    pip install --no-index --find-links wheels kornia && python3 benchmarks/gpu_sweep.py --out $OUT/gpu_sweep.json
It needs neither Ray nor OmegaConf: gpus_per_trial=auto's choice is made with the same calibration and packing
(ablate.calibration.gpu_packing) the sweep's plan uses.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SEEDS = (0, 1, 2)
SWEEP_TRIALS, SWEEP_EPOCHS, SWEEP_IMAGES = 30, 30, 50_000      # experiments/placement_cifar100.yaml on CIFAR-100
# (label, seeds fused per trial (1: train_proxy), processes at once, trainer.cuda_graph)
RUNS = [("today: separate trials, eager", 1, 4, False),
        ("separate trials, CUDA graph", 1, 4, True),
        ("fused seeds, eager", 3, 1, False),
        ("fused seeds, CUDA graph", 3, 1, True),
        ("fused seeds, CUDA graph", 3, 2, True),
        ("fused seeds, CUDA graph", 3, 4, True)]
EXPERIMENT_CPUS_PER_TRIAL = 2        # experiments/placement_cifar100.yaml's resources.cpus_per_trial
QUICK_RUNS = [("fused seeds, eager", 2, 1, False)]        # the separate trials' worker is gpu_feed.py's, tested there


def auto_packed(cfg: dict):
    """The run resources.gpus_per_trial=auto would choose for the default design on this GPU (the same calibration
    and packing as planning.resolve_gpu_share, without Ray or OmegaConf): fused seeds with CUDA graphs, as many
    processes as it packs. Its line printed."""
    import torch
    from ablate.calibration import gpu_packing, packing_calibration
    from ablate.proxy import ProxyConfig
    proxy = ProxyConfig.from_dict({**cfg, "trainer": {**cfg["trainer"], "device": "cuda", "cuda_graph": True}})
    seeds = len(SEEDS)
    cpus_per_gpu = (os.cpu_count() or 1) / EXPERIMENT_CPUS_PER_TRIAL / torch.cuda.device_count()
    packing = gpu_packing({"default": packing_calibration(proxy, seeds)},
                          torch.cuda.get_device_properties(0).total_memory / 2 ** 20, cpus_per_gpu)
    print(packing.describe(), flush=True)
    return (f"auto ({packing.trials} per GPU)", seeds, packing.trials, True), packing.describe()


def worker(spec: str) -> None:
    """One trial in this process (separate or fused); prints its last epoch's img/s and how it stepped, as JSON."""
    from ablate.fused import train_fused
    from ablate.proxy import ProxyConfig
    from ablate.train import train_proxy
    job = json.loads(spec)
    cfgs = [ProxyConfig.from_dict({**job["cfg"], "seed": seed}) for seed in job["seeds"]]
    results = [train_proxy(cfgs[0])] if len(cfgs) == 1 else train_fused(cfgs)
    first = results[0]
    trunk = [h for h in first.history if "branch" not in h]
    last_epoch_s = trunk[-1]["train_time_s"] - trunk[-2]["train_time_s"] if len(trunk) > 1 else first.train_time_s
    # a fused history's times are the trial's own wall clock (its rows' train_time_s is each seed's share)
    print(json.dumps({"status": [r.status for r in results], "error": first.error, "step_mode": first.step_mode,
                      "last_epoch_s": last_epoch_s, "images": job["n_train"] * len(cfgs)}))


def throughput(label: str, cfg: dict, n_train: int, seeds: int, copies: int) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    jobs = [{"cfg": cfg, "seeds": [copy * seeds + s for s in range(seeds)], "n_train": n_train}
            for copy in range(copies)]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(job)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for job in jobs]
    outs = [p.communicate() for p in procs]
    results = []
    for out, err in outs:
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            results.append({"status": ["crashed"], "error": err[-2000:]})
    ok = [r for r in results if r["status"] and set(r["status"]) == {"ok"}]
    rate = sum(r["images"] / r["last_epoch_s"] for r in ok) if len(ok) == copies else None
    row = {"run": label, "seeds_per_trial": seeds, "processes": copies, "img_per_s": rate,
           "step_mode": sorted({r.get("step_mode") for r in results if r.get("step_mode")}),
           "wall_s": time.perf_counter() - started, "results": results}
    print(json.dumps({k: v for k, v in row.items() if k != "results"}), flush=True)
    return row


def ladder_factor(cfg: dict) -> float:
    """The trial's training steps with the budget ladder's branches, per trunk step (1.25 for the default)."""
    from ablate.ladder import ladder_cost
    from ablate.proxy import TrainerConfig
    from ablate.train import trial_rungs
    trainer = TrainerConfig(**{**cfg["trainer"], "epochs": SWEEP_EPOCHS})
    steps = SWEEP_IMAGES // trainer.batch_size
    return ladder_cost(trial_rungs(trainer, steps)) / (steps * SWEEP_EPOCHS)


def metrics(quick: bool) -> dict:
    """Seeds 0-2 of the default design on the fractal task: fused with CUDA graphs (where there is CUDA), and each
    alone and eager as before; per seed the metrics of each."""
    from ablate.fused import train_fused
    from ablate.proxy import ProxyConfig
    from ablate.train import train_proxy
    options = {"n_train": 64, "n_val": 32} if quick else {"n_train": 5000, "n_val": 1000}
    base = {"data": {"name": "fractal", "options": options},
            "trainer": {"epochs": 1 if quick else 2, "batch_size": 32 if quick else 128}}
    if quick:
        base["model"] = {"dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2]}
    seeds = SEEDS[:2] if quick else SEEDS
    graphed = {**base, "trainer": {**base["trainer"], "cuda_graph": True}}        # the new path, whole
    cfgs = [ProxyConfig.from_dict({**base, "seed": seed}) for seed in seeds]
    started = time.perf_counter()
    fused = train_fused([ProxyConfig.from_dict({**graphed, "seed": seed}) for seed in seeds])
    fused_s = time.perf_counter() - started
    separate = [train_proxy(cfg) for cfg in cfgs]
    separate_s = time.perf_counter() - started - fused_s
    keys = ("status", "val_acc_late", "val_loss_late", "val_acc_final", "val_loss_final", "train_loss", "step_mode")
    rows = [{"seed": seed, "fused": {k: getattr(f, k) for k in keys}, "separate": {k: getattr(s, k) for k in keys}}
            for seed, f, s in zip(SEEDS, fused, separate)]     # zip: the seeds run
    print("| seed | val acc late, fused / separate | val loss late, fused / separate | train loss, fused / separate |")
    print("|---|---|---|---|")
    for row in rows:
        f, s = row["fused"], row["separate"]
        print(f"| {row['seed']} | {f['val_acc_late']:.4f} / {s['val_acc_late']:.4f} | {f['val_loss_late']:.4f} / "
              f"{s['val_loss_late']:.4f} | {f['train_loss']:.4f} / {s['train_loss']:.4f} |")
    print(f"fused run {fused_s:.1f} s, the {len(cfgs)} separate runs {separate_s:.1f} s", flush=True)
    return {"seeds": rows, "fused_s": fused_s, "separate_s": separate_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="per throughput trial (img/s counts the last)")
    parser.add_argument("--out", default="gpu_sweep.json")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one fused run of two seeds in one process: a try on a CPU (the test's)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    import torch
    from gpu_feed import experiment_config, write_cifar100
    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "runs": []}
    n_train, n_val = (64, 16) if args.quick else (SWEEP_IMAGES, 10_000)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "cifar100"
        os.environ["ABLATE_CACHE"] = str(Path(temp) / "cache")
        write_cifar100(root, n_train, n_val)
        cfg = experiment_config("placement_cifar100", root, args.epochs, 16 if args.quick else None)
        if args.quick:
            cfg["model"].update(dim=8, in_dim=8)
        from ablate.data import load_dataset
        load_dataset("cifar100", image_size=32, root=root)                  # packed once, before the trials
        runs = list(QUICK_RUNS if args.quick else RUNS)
        if torch.cuda.is_available():
            auto, report["packing"] = auto_packed(cfg)
            runs.append(auto)
        for label, seeds, copies, graph in runs:
            trial_cfg = {**cfg, "trainer": {**cfg["trainer"], "cuda_graph": graph}}
            report["runs"].append(throughput(label, trial_cfg, n_train, seeds, copies))
            Path(args.out).write_text(json.dumps(report, indent=1))
        factor = ladder_factor(cfg)
        print("\n| run | seeds per trial | processes | step | img/s per GPU | x today | 30-trial sweep (min) |")
        print("|---|---|---|---|---|---|---|")
        today = report["runs"][0]["img_per_s"]
        for run in report["runs"]:
            rate = run["img_per_s"]
            sweep_min = SWEEP_TRIALS * SWEEP_EPOCHS * SWEEP_IMAGES * factor / rate / 60 if rate else None
            run["sweep_min"] = sweep_min
            print(f"| {run['run']} | {run['seeds_per_trial']} | {run['processes']} | {', '.join(run['step_mode'])} | "
                  + (f"{rate:,.0f} | {rate / today:.2f} | {sweep_min:.0f} |" if rate and today else "failed | | |"))
    print(f"(the ladder trains {factor:.2f}x the trunk's steps)\n", flush=True)
    report["metrics"] = metrics(args.quick)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
