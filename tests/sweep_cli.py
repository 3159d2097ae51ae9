"""Running run_sweep.py as a user does, in a temporary directory: shared by the sweep tests and the smoke-run fixture
(conftest.py). A helper module, imported by name, like official.py."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def sweep(tmp_path, *overrides, timeout=300):
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)        # tracking=mlflow writes into the run directory, as by default
    return subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}", *overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def in_process(capsys, tmp_path, *overrides):
    """run_sweep.py's main() in this process, as the command line calls it (a process costs seconds of imports):
    (its exit code, stdout, stderr). For what runs no Ray (failures before it, plans); a sweep runs as a process."""
    sys.path.insert(0, str(ROOT))
    try:
        import run_sweep
    finally:
        sys.path.remove(str(ROOT))
    import torch
    threads = torch.get_num_threads()           # a plan's calibration sets the trial's threads in this process
    try:
        code = run_sweep.main([f"runs_dir={tmp_path / 'runs'}", *overrides])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(tmp_path, name):
    return pd.read_parquet(tmp_path / "runs" / name / "results.parquet")


def first_reports(results) -> dict:
    """{pid: when first seen} of the trials whose first report Tune's driver has recorded: its loggers write each
    report as a line of result.json in the driver's staging folder; `results` are those files."""
    found = {}
    for result in results:
        first = result.read_text().split("\n", 1)
        if len(first) == 2:                      # one whole line
            found[json.loads(first[0])["pid"]] = time.monotonic()
    return found


def first_reporting_worker(driver, storage: Path) -> int:
    """The pid of the first trial whose first report Tune's driver has recorded, in the local Ray session's staging
    folder of this run's experiment (named as in the run's storage, `runs/<name>/ray/tune-*`)."""
    staging, deadline = Path("/tmp/ray/session_latest/artifacts"), time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        for experiment in storage.glob("tune-*"):
            found = first_reports(staging.glob(f"*/{experiment.name}/driver_artifacts/*/result.json"))
            if found:
                return next(iter(found))
        time.sleep(0.02)
    raise AssertionError("no trial reported")
