"""How the sweep's driver holds up under many short trials: a free search of smoke-sized trials on a local Ray.

    python benchmarks/driver_load.py --trials 300          # the figures in reports/driver_load/
    python benchmarks/driver_load.py --trials 4            # what tests/test_benchmarks.py runs

Runs `run_sweep.py space=free smoke=true search.algo=random search.num_samples=N` in a subprocess (a fresh run
under --runs-dir) and samples the driver's /proc every 0.2 s. Prints the trials launched and the rows written
(each trial once), their statuses, the wall time of the whole sweep and of its training, the driver's peak resident
memory (VmHWM; and to the end of the training) and CPU seconds, the seconds of each phase (training, throughput, report),
the peak memory of Ray's own head processes (gcs_server, raylet), and the overhead per trial: the slot-seconds of
the training not spent inside the trials' train_proxy, divided by the trials.
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
    """The driver's memory and CPU time, and its Ray head's memory, read every 0.2 s until it exits:
    samples of (seconds since `start`, driver VmRSS kB, driver CPU s, Ray head RSS kB), and the driver's VmHWM."""

    def __init__(self, pid: int, start: float):
        super().__init__(daemon=True)
        self.pid, self.began, self.samples, self.peak_kb = pid, start, [], 0

    def run(self):
        while True:
            try:
                self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmHWM"))
                self.samples.append((time.monotonic() - self.began, _status_kb(self.pid, "VmRSS"),
                                     _cpu_seconds(self.pid), _ray_head_rss_kb(self.pid)))
            except (OSError, ValueError, IndexError):
                return                                  # the driver has exited
            time.sleep(0.2)

    def until(self, seconds: float) -> tuple:
        """(peak driver RSS MiB, driver CPU s) over the samples up to `seconds` after the start."""
        taken = [sample for sample in self.samples if sample[0] <= seconds] or self.samples[:1]
        return max(rss for _, rss, _, _ in taken) / 1024, taken[-1][2]


def run_search(runs_dir: Path, trials: int, extra: list) -> dict:
    """The search in a subprocess, its output lines timestamped as they arrive."""
    command = [sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={runs_dir}", "name=load", "space=free",
               "smoke=true", "search.algo=random", f"search.num_samples={trials}", *extra]
    start = time.monotonic()
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(driver.pid, start)
    sampler.start()
    lines = [(time.monotonic() - start, line.rstrip("\n")) for line in driver.stdout]
    driver.wait()
    sampler.join(timeout=5)
    if driver.returncode != 0:
        raise SystemExit("run_sweep.py failed:\n" + "\n".join(line for _, line in lines[-60:]))
    return {"command": " ".join(command[1:]), "wall_s": time.monotonic() - start, "lines": lines, "sampler": sampler}


def phase_ends(lines) -> dict:
    """When each phase began and ended (seconds from the start), from the lines the driver printed: the training
    (its first and last progress line), the throughput phase (its summary line) and the report (its path)."""
    progress = [(t, line) for t, line in lines if re.match(r"\[load\] \d+/\d+ done", line)]
    if not progress:
        raise SystemExit("the sweep printed no progress line")
    ends = {"training start": progress[0][0], "training": progress[-1][0], "last progress": progress[-1][1],
            "per minute": per_minute([t - progress[0][0] for t, _ in progress[1:-1]])}
    for phase, prefix in (("throughput", "throughput: "), ("report", "report: ")):
        ends[phase] = next((t for t, line in lines if line.startswith(prefix)), float("nan"))
    return ends


def per_minute(times: list) -> list:
    """How many of the `times` (seconds) fall in each whole minute: trials ended per minute of the training. A
    driver whose cost grows with the trials run shows here as a falling count."""
    counts = [0] * (int(max(times, default=0) // 60) + 1)
    for t in times:
        counts[int(t // 60)] += 1
    return counts


def figures(result: dict, runs_dir: Path, slots: int) -> dict:
    import pandas as pd
    rows = pd.read_parquet(runs_dir / "load" / "results.parquet")
    ends, sampler = phase_ends(result["lines"]), result["sampler"]
    training_s = ends["training"] - ends["training start"]
    launched = int(re.match(r"\[load\] (\d+)/", ends["last progress"]).group(1))
    trained_s = float(rows["train_time_s"].fillna(0).sum())
    training_rss, training_cpu = sampler.until(ends["training"])
    return {"trials launched": launched, "rows": len(rows), "rows unique": int(rows["trial_id"].nunique()),
            "statuses": rows["status"].value_counts().to_dict(), "attempts > 1": int((rows["attempts"] > 1).sum()),
            "sweep wall s": round(result["wall_s"], 1), "training wall s": round(training_s, 1),
            "throughput phase s": round(ends["throughput"] - ends["training"], 1),
            "report s": round(ends["report"] - ends["throughput"], 1),
            "trials ended per minute": ends["per minute"],
            "trials' own train_proxy s": round(trained_s, 1), "slots": slots,
            "overhead per trial s": round((slots * training_s - trained_s) / max(1, launched), 3),
            "driver peak RSS MiB, to the end of training": round(training_rss, 1),
            "driver peak RSS MiB": round(sampler.peak_kb / 1024, 1),
            "driver CPU s, to the end of training": round(training_cpu, 1),
            "driver CPU s per trial, training": round(training_cpu / max(1, launched), 3),
            "driver CPU s": round(sampler.samples[-1][2], 1) if sampler.samples else 0.0,
            "Ray head (gcs_server + raylet) peak RSS MiB": round(max((s[3] for s in sampler.samples), default=0) / 1024,
                                                                 1)}


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
