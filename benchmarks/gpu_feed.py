"""Is a proxy trial on a GPU input-bound? Training img/s and GPU utilisation per feed and augmentation.

    python benchmarks/gpu_feed.py [--epochs 2] [--out results.json]

Writes a CIFAR-100-sized set of random images (python batches: 50,000 + 10,000), packs it at 32 and 64 px, and
trains the default placement design with the settings of experiments/placement_cifar100.yaml (and, at 64 px,
placement_imagefolder64.yaml's model, on the same images resized) for --epochs epochs:

  host/device feed, augment none/basic/strong, and four trials at once on the GPU (what gpus_per_trial=0.25 runs).

img/s counts the last epoch (its training steps and its one validation pass); GPU utilisation is nvidia-smi's,
sampled every 100 ms over the whole run. Runs without Ray or OmegaConf (only torch, numpy, kornia).
"""
import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_cifar100(root: Path, n_train=50_000, n_test=10_000) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": rng.integers(0, 100, n).tolist()}
        (root / name).write_bytes(pickle.dumps(batch, protocol=4))


def experiment_config(name: str, root: Path, epochs: int, batch_size=None, **data) -> dict:
    spec = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    trainer = {**spec["trainer"], "epochs": epochs, "late_evals": 1}
    if batch_size is not None:
        trainer.update(batch_size=batch_size, eval_batch_size=batch_size)
    return {"model": dict(spec.get("model", {})), "data": {**spec["data"], "name": "cifar100", "root": str(root), **data},
            "trainer": trainer, "seed": 0}


def trial(cfg_json: str) -> None:
    """One train_proxy run in this process; prints its result as JSON on the last line."""
    from ablate.proxy import ProxyConfig
    from ablate.train import train_proxy
    result = train_proxy(ProxyConfig.from_dict(json.loads(cfg_json)))
    history = result.history
    last = history[-1]["train_time_s"] - history[-2]["train_time_s"] if len(history) > 1 else result.train_time_s
    print(json.dumps({"status": result.status, "error": result.error, "val_acc": result.val_acc_final,
                      "train_time_s": result.train_time_s, "last_epoch_s": last}))


class GpuSampler:
    def __init__(self):
        self.proc = None if shutil.which("nvidia-smi") is None else subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits", "-lms", "100"],
                                     stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict:
        if self.proc is None:
            return {}
        self.proc.terminate()
        lines = self.proc.communicate()[0].strip().splitlines()
        values = [[float(v) for v in line.split(",")] for line in lines if line.strip()]
        if not values:
            return {}
        util = [v[0] for v in values]
        busy = util[len(util) // 5:]                    # past the start-up (imports, build, device copy)
        return {"gpu_util_mean": float(np.mean(busy)), "gpu_mem_max_mib": max(v[1] for v in values)}


def run(label: str, cfg: dict, n_train: int, copies: int = 1) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    sampler = GpuSampler()
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--trial", json.dumps({**cfg, "seed": i})],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(copies)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - started
    gpu = sampler.stop()
    results = []
    for out, err in outs:
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            results.append({"status": "crashed", "error": err[-2000:]})
    epoch_s = [r.get("last_epoch_s") for r in results if r.get("status") == "ok"]
    row = {"run": label, "copies": copies, "wall_s": wall, **gpu, "results": results,
           "img_per_s_per_trial": n_train / float(np.mean(epoch_s)) if epoch_s else None,
           "img_per_s_total": copies * n_train / float(np.mean(epoch_s)) if epoch_s else None}
    print(json.dumps({k: v for k, v in row.items() if k != "results"}), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="gpu_feed.json")
    parser.add_argument("--n-train", type=int, default=50_000, help="fewer to try the script on a CPU")
    parser.add_argument("--n-val", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the experiment's")
    parser.add_argument("--first", type=int, default=None, help="only the first N runs of each size (a try on a CPU)")
    parser.add_argument("--trial", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        return trial(args.trial)
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "cifar100"
        os.environ["ABLATE_CACHE"] = str(Path(temp) / "cache")
        write_cifar100(root, args.n_train, args.n_val)
        from ablate.data import load_dataset
        for size in (32, 64):
            started = time.perf_counter()
            load_dataset("cifar100", image_size=size, root=root)
            rows.append({"run": f"pack {size} px", "wall_s": time.perf_counter() - started})
            print(json.dumps(rows[-1]), flush=True)
        base = experiment_config("placement_cifar100", root, args.epochs, args.batch_size)
        plans = [("32 px, host feed, basic", {"feed": "host"}, 1),
                 ("32 px, device feed, basic", {"feed": "device"}, 1),
                 ("32 px, device feed, none", {"feed": "device", "augment": "none"}, 1),
                 ("32 px, device feed, strong", {"feed": "device", "augment": "strong"}, 1),
                 ("32 px, device feed, basic, 4 at once", {"feed": "device"}, 4),
                 ("32 px, host feed, basic, 4 at once", {"feed": "host"}, 4)]
        for label, data, copies in plans[:args.first]:
            rows.append(run(label, {**base, "data": {**base["data"], **data}}, args.n_train, copies))
            Path(args.out).write_text(json.dumps(rows, indent=1))
        wide = experiment_config("placement_imagefolder64", root, args.epochs, args.batch_size, image_size=64)
        for label, copies in (("64 px (imagefolder64 model), device feed, basic", 1),
                              ("64 px (imagefolder64 model), device feed, basic, 4 at once", 4))[:args.first]:
            rows.append(run(label, wide, args.n_train, copies))
            Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
