"""Memory of concurrent trials on one dataset: packed (memory-mapped uint8, shared) against whole float tensors.

    python benchmarks/data_memory.py                         # CIFAR-10-sized fixture (50,000 + 10,000 images)
    python benchmarks/data_memory.py --root ~/data/cifar-10-batches-py --trials 4

Writes a CIFAR-10-sized set of random images in the python-batch format (or reads --root), times packing it
(`python -m ablate.data pack cifar10`, fresh cache), then runs --trials processes at once for each loader:

  reference  what every trial did before packs: the whole dataset as normalised float32 tensors in the process
             (Splits.tensors()), batches indexed from them
  packed     the pack memory-mapped, batches read and normalised per step (ablate.data.feed.Feeder)
  none       the same process with no dataset (torch, the proxy model, its optimiser): the floor

Each process reads every training and validation image once (so the packed processes map all the pack's pages)
and trains --steps proxy steps. The parent samples each process's /proc/PID/smaps_rollup every 50 ms; PSS
(proportional set size) splits a page shared by k processes k ways, so the sum of PSS is the memory the group
holds. Prints the peak sums and the ratio packed / reference.
"""
import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_cifar10(root: Path, n_train=50_000, n_test=10_000) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, n in names:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        (root / name).write_bytes(pickle.dumps(batch, protocol=4))


def worker(loader: str, root: str, steps: int, ready: str) -> None:
    """One trial's data path: load, read every image once, train ``steps`` proxy steps."""
    import torch
    from ablate.data.feed import Feeder
    from ablate.build import make_dataset, make_model
    from ablate.proxy import ProxyConfig
    torch.set_num_threads(1)
    cfg = ProxyConfig()
    cfg.data.name, cfg.data.root, cfg.data.augment = "cifar10", root, "none"
    model = make_model(cfg, 10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if loader == "none":
        def batch(index):
            return torch.zeros(len(index), 3, 32, 32), torch.zeros(len(index), dtype=torch.int64)
        n = 50_000
    else:
        data = make_dataset(cfg)
        n = len(data.train)
        if loader == "reference":
            train_x, train_y, val_x, val_y = data.tensors()
            float(train_x.sum() + val_x.sum())                           # every image read once

            def batch(index):
                return train_x[index].contiguous(memory_format=torch.channels_last), train_y[index]
        else:
            train = Feeder(data.train, data.mean, data.std, torch.device("cpu"), feed="host")
            val = Feeder(data.val, data.mean, data.std, torch.device("cpu"), feed="host")
            sum(float(x.sum()) for feed in (train, val) for x, _ in feed.batches(1000))   # every image read once

            def batch(index):
                return train.batch(index.numpy(), 0)
    order = torch.randperm(n)
    for step in range(steps):
        x, y = batch(order[step * 64:(step + 1) * 64])
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    Path(ready).write_text("done")
    time.sleep(1.0)                                                      # the parent takes a last sample


def smaps(pid: int) -> dict:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def run_group(loader: str, root: Path, trials: int, steps: int, cache: Path) -> dict:
    """``trials`` workers at once; the peak of the summed PSS and RSS, and the time."""
    env = {**os.environ, "ABLATE_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    ready = [cache / f"ready-{loader}-{i}" for i in range(trials)]
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", loader, "--root", str(root), "--steps",
                               str(steps), "--ready", str(r)], env=env, cwd=ROOT) for r in ready]
    peak_pss = peak_rss = 0
    while any(p.poll() is None for p in procs):
        samples = [smaps(p.pid) for p in procs]
        peak_pss = max(peak_pss, sum(s.get("Pss", 0) for s in samples))
        peak_rss = max(peak_rss, sum(s.get("Rss", 0) for s in samples))
        time.sleep(0.05)
    if any(p.returncode for p in procs):
        raise SystemExit(f"a {loader} worker failed")
    return {"loader": loader, "peak_pss_gib": peak_pss / 2 ** 30, "peak_rss_gib": peak_rss / 2 ** 30,
            "seconds": time.perf_counter() - started}


def cpu_name() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="a CIFAR-10 python-version folder (default: write a random one)")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=50_000,
                        help="images of the written set (and a fifth as many to validate); fewer to try the script")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.root, args.steps, args.ready)
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        root = Path(args.root) if args.root else temp / "cifar10"
        if not args.root:
            write_cifar10(root, args.n_train, max(1, args.n_train // 5))
        cache = temp / "cache"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ablate.data", "pack", "cifar10", f"root={root}", "image_size=32"],
                       check=True, cwd=ROOT, env={**os.environ, "ABLATE_CACHE": str(cache)})
        pack_s = time.perf_counter() - started
        rows = [run_group(loader, root, args.trials, args.steps, cache) for loader in ("none", "reference", "packed")]
    by = {r["loader"]: r for r in rows}
    print(f"\n{cpu_name()}, {os.cpu_count()} cores; {args.trials} trials at once, {args.steps} steps each\n")
    print(f"pack (decode, resize, write, statistics; fresh cache): {pack_s:.1f} s, including the command's start\n")
    print("| loader | peak sum of PSS (GiB) | peak sum of RSS (GiB) | above the no-data floor, PSS (GiB) | wall s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['loader']} | {r['peak_pss_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
              f"{r['peak_pss_gib'] - by['none']['peak_pss_gib']:.2f} | {r['seconds']:.1f} |")
    ratio = by["packed"]["peak_pss_gib"] / by["reference"]["peak_pss_gib"]
    above = by["reference"]["peak_pss_gib"] - by["none"]["peak_pss_gib"]
    # a tiny set can sit inside the floor's own spread: then the data's ratio is not measured
    data_ratio = (by["packed"]["peak_pss_gib"] - by["none"]["peak_pss_gib"]) / above if above > 0 else float("nan")
    print(f"\npacked / reference, whole processes: {ratio:.3f} (target <= 0.25); the data alone: {data_ratio:.3f}")
    print(json.dumps({"pack_s": pack_s, "rows": rows, "ratio": ratio, "data_ratio": data_ratio}))


if __name__ == "__main__":
    main()
