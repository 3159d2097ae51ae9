"""How good is plan=true's estimate? Plans a sweep, runs it, and prints estimate against measured wall time.

    python benchmarks/plan.py smoke=true              # any run_sweep.py overrides; a fresh run under runs/plan_bench
    python benchmarks/plan.py                         # the default sweep (about 25 min on the 2-core machine)

Both go through run_sweep.py in subprocesses, one after the other, so nothing else shares the machine. The
estimate covers the training (Ray included); the measured time is the sweep's whole wall time from
sessions.json (training, the throughput phase and the report), and the training part alone is printed too.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), *args], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"run_sweep.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout, time.perf_counter() - start


def report(overrides, estimate, plan_s, output, wall):
    progress = [(float(e), float(a)) for e, a in re.findall(r"\| ([\d.]+) min, ETA ([\d.]+|nan) min", output)]
    training = [elapsed for elapsed, _ in progress]
    print(f"overrides: {' '.join(overrides) or '(defaults)'}")
    print(f"plan=true took {plan_s:.1f} s")
    print(f"estimated training wall time: {estimate:.2f} min")
    if training:
        print(f"measured training (last progress line): {training[-1]:.2f} min, ratio estimate/measured "
              f"{estimate / training[-1]:.2f}")
    if progress:
        # how honest the ETA was along the way: elapsed + ETA against the training's measured end
        print("progress line: elapsed min, ETA min, elapsed+ETA / measured end")
        for elapsed, eta in progress:
            print(f"  {elapsed:6.2f} {eta:6.2f} {(elapsed + eta) / training[-1]:5.2f}")
    print(f"measured sweep wall time (sessions.json): {wall:.2f} min, ratio estimate/measured {estimate / wall:.2f}")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "plan_bench",
                        help="emptied first, then holds the sweep's run (default: runs/plan_bench)")
    parser.add_argument("overrides", nargs="*", help="run_sweep.py key=value overrides")
    args = parser.parse_args(argv)
    shutil.rmtree(args.runs_dir, ignore_errors=True)
    sweep = [f"runs_dir={args.runs_dir}", *args.overrides]
    plan, plan_s = run([*sweep, "plan=true"])
    found = re.search(r"Estimated wall time of the training: \*\*([\d.]+) min", plan)
    if found is None:
        raise SystemExit(f"plan=true printed no estimated wall time:\n{plan[-2000:]}")
    output, _ = run(sweep)
    run_dir = next(p.parent for p in args.runs_dir.glob("*/sessions.json"))
    wall = json.loads((run_dir / "sessions.json").read_text())[-1]["wall_s"] / 60
    report(args.overrides, float(found.group(1)), plan_s, output, wall)


if __name__ == "__main__":
    main(sys.argv[1:])
