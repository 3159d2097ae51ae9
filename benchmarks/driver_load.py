"""How the sweep's driver holds up under many short trials: a free search of smoke-sized trials on a local Ray.

    python benchmarks/driver_load.py --trials 300          # the figures in reports/driver_load/
    python benchmarks/driver_load.py --trials 4            # what tests/test_benchmarks.py runs

Runs `run_sweep.py space=free smoke=true search.algo=random search.num_samples=N` in a subprocess (a fresh run
under --runs-dir) and samples the driver's /proc every 0.2 s. Prints the trials launched and the rows written
(each trial once), their statuses, the wall time of the whole sweep and of its training, the driver's peak resident
memory (VmHWM) and CPU seconds, the peak memory of Ray's own head processes (gcs_server, raylet), and the overhead
per trial: the slot-seconds of the training not spent inside the trials' train_proxy, divided by the trials.
Nothing else should run on the machine meanwhile.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY_HEAD = ("gcs_server", "raylet")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")     # utime + stime


def _ray_head_rss_kb(driver: int) -> int:
    """Resident memory of Ray's head processes that the driver started (a local Ray's GCS and raylet)."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() in RAY_HEAD:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == driver:
                    total += _status_kb(int(entry.name), "VmRSS")
        except (OSError, ValueError):
            continue
    return total


class Sampler(threading.Thread):
    """The driver's peak memory and CPU time, and its Ray head's peak memory, read every 0.2 s until it exits."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.cpu_s, self.ray_peak_kb = pid, 0, 0.0, 0

    def run(self):
        while True:
            try:
                self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmHWM"))
                self.cpu_s = _cpu_seconds(self.pid)
                self.ray_peak_kb = max(self.ray_peak_kb, _ray_head_rss_kb(self.pid))
            except (OSError, ValueError, IndexError):
                return                                  # the driver has exited
            time.sleep(0.2)


def run_search(runs_dir: Path, trials: int, extra: list) -> dict:
    """The search in a subprocess, its output lines timestamped as they arrive."""
    command = [sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={runs_dir}", "name=load", "space=free",
               "smoke=true", "search.algo=random", f"search.num_samples={trials}", *extra]
    start = time.monotonic()
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(driver.pid)
    sampler.start()
    lines = [(time.monotonic() - start, line.rstrip("\n")) for line in driver.stdout]
    driver.wait()
    sampler.join(timeout=5)
    if driver.returncode != 0:
        raise SystemExit("run_sweep.py failed:\n" + "\n".join(line for _, line in lines[-60:]))
    return {"command": " ".join(command[1:]), "wall_s": time.monotonic() - start, "lines": lines,
            "driver_peak_mb": sampler.peak_kb / 1024, "driver_cpu_s": sampler.cpu_s,
            "ray_head_peak_mb": sampler.ray_peak_kb / 1024}


def training_span(lines) -> tuple:
    """(seconds from the progress line's start to its last line, the last progress line)."""
    progress = [(t, line) for t, line in lines if re.match(r"\[load\] \d+/\d+ done", line)]
    if not progress:
        raise SystemExit("the sweep printed no progress line")
    return progress[-1][0] - progress[0][0], progress[-1][1]


def figures(result: dict, runs_dir: Path, slots: int) -> dict:
    import pandas as pd
    rows = pd.read_parquet(runs_dir / "load" / "results.parquet")
    training_s, last = training_span(result["lines"])
    launched = int(re.match(r"\[load\] (\d+)/", last).group(1))
    trained_s = float(rows["train_time_s"].fillna(0).sum())
    return {"trials launched": launched, "rows": len(rows), "rows unique": int(rows["trial_id"].nunique()),
            "statuses": rows["status"].value_counts().to_dict(), "attempts > 1": int((rows["attempts"] > 1).sum()),
            "sweep wall s": round(result["wall_s"], 1), "training wall s": round(training_s, 1),
            "trials' own train_proxy s": round(trained_s, 1), "slots": slots,
            "overhead per trial s": round((slots * training_s - trained_s) / max(1, launched), 3),
            "driver peak RSS MiB": round(result["driver_peak_mb"], 1),
            "driver CPU s": round(result["driver_cpu_s"], 1),
            "driver CPU s per trial": round(result["driver_cpu_s"] / max(1, launched), 3),
            "Ray head (gcs_server + raylet) peak RSS MiB": round(result["ray_head_peak_mb"], 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=300, help="search.num_samples (default 300)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "driver_load",
                        help="emptied first, then holds the search's run (default: runs/driver_load)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="more run_sweep.py key=value overrides")
    args = parser.parse_args(argv)
    shutil.rmtree(args.runs_dir, ignore_errors=True)
    result = run_search(args.runs_dir, args.trials, args.overrides)
    found = figures(result, args.runs_dir, slots=os.cpu_count() or 1)
    print(f"command: {result['command']}")
    for name, value in found.items():
        print(f"{name}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"command": result["command"], **found}, indent=1))
    if found["rows"] != found["rows unique"] or found["rows"] != found["trials launched"]:
        raise SystemExit(f"{found['trials launched']} trials launched but {found['rows']} rows "
                         f"({found['rows unique']} unique)")


if __name__ == "__main__":
    main()
