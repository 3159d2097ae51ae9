"""Which failed trials are trained again: infrastructure faults past the retry limit are, by resume=true;
deterministic failures are not (a diverging trial in a real sweep: tests/test_sweep.py). A lost node and a killed
worker, retried from their checkpoints on a real cluster: tests/test_cluster.py."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_cli import ROOT, table

from ablate.config import load_config
from ablate.results import CRASHED, FAILED, ResultRow
from ablate.space import get_space


def test_resume_trains_crashed_trials_again_and_leaves_deterministic_failures(tmp_path):
    """A row whose trial crashed past its retries is pending again on resume=true; a diverged one is a result."""
    from ablate.sweep.search import grid_plan
    cfg = load_config(["space=placement", "designs=[all conv,all attention]", "seeds=1"])
    designs = get_space("placement").designs(cfg)
    chosen = [d for d in designs if d.pattern in ("all conv", "all attention")]
    from ablate.sweep.trial import TrialDesign
    crashed, diverged = (TrialDesign(d, 0) for d in chosen)
    rows = [ResultRow(trial_id=crashed.key, spec=crashed.design.spec, status=FAILED,
                      error=f"{CRASHED}the actor died unexpectedly (after 2 retries)"),
            ResultRow(trial_id=diverged.key, spec=diverged.design.spec, status=FAILED,
                      error="diverged: loss is nan at epoch 1, step 3")]
    assert [row.crashed for row in rows] == [True, False]
    plan = grid_plan(cfg, get_space("placement"), chosen, rows)
    assert [trial.key for trial in plan.grid] == [crashed.key]


@pytest.mark.parametrize("status, error, crashed", [("failed", f"{CRASHED}node died", True),
                                                    ("failed", "diverged: loss is nan", False),
                                                    ("ok", None, False)])
def test_which_rows_count_as_crashed(status, error, crashed):
    assert ResultRow(status=status, error=error).crashed is crashed


def test_resume_says_which_failed_trials_it_trains_again(tmp_path, capsys):
    from ablate.results import write_row
    from ablate.sweep.run import prepare, resumable_rows
    cfg = load_config(["space=placement", "smoke=true", "seeds=1", "resume=true", f"runs_dir={tmp_path}"])
    sweep = prepare(cfg)
    for key, error in (("a", f"{CRASHED}the actor died unexpectedly (after 2 retries)"), ("b", "diverged: nan"),
                       ("c", None)):
        write_row(sweep.store.run_dir, ResultRow(trial_id=key, status=FAILED if error else "ok", error=error))
    assert len(resumable_rows(sweep)) == 3
    assert ("resume=true: 1 trials that crashed (their process or node lost past the retries) are trained again; "
            "1 that failed on their own (diverged, a bad spec or data) are left as they are") in capsys.readouterr().out


def test_a_trial_crashed_past_its_retries_gets_a_crashed_row_and_resume_trains_it_again(tmp_path, capsys):
    """A real sweep with no retries allowed: the trial's worker is SIGKILLed after its first report, and the row
    says it crashed; resume=true plans to train it again."""
    overrides = ["space=placement", "designs=[all conv]", "seeds=1", "smoke=true", "name=g", "resources.max_retries=0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}",
                               *overrides], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        os.kill(first_reporting_worker(driver, tmp_path / "runs" / "g" / "ray"), signal.SIGKILL)
        out, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-3000:]
    row, = table(tmp_path, "g").to_dict("records")
    assert row["status"] == "failed" and row["error"].startswith(CRASHED) and row["error"].endswith("(after 0 retries)")
    # resume=true's plan, in this process (a trained design's sweep is test_sweep.py's): the row is pending again
    from ablate.sweep.run import prepare, resumable_rows
    from ablate.sweep.search import grid_plan
    cfg = load_config([*overrides, "resume=true", f"runs_dir={tmp_path / 'runs'}"])
    resumed = prepare(cfg)
    plan = grid_plan(resumed.cfg, resumed.space, resumed.designs, resumable_rows(resumed))
    assert [trial.key for trial in plan.grid] == [row["trial_id"]]
    assert "resume=true: 1 trials that crashed" in capsys.readouterr().out


def first_reporting_worker(driver, storage: Path) -> int:
    """The pid of the first trial whose first report Tune's driver has recorded: its loggers write the report into
    result.json in the local Ray session's staging folder of this run's experiment (named as in the run's storage)."""
    staging, deadline = Path("/tmp/ray/session_latest/artifacts"), time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        for experiment in storage.glob("tune-*"):
            for result in staging.glob(f"*/{experiment.name}/driver_artifacts/*/result.json"):
                first = result.read_text().split("\n", 1)
                if len(first) == 2:
                    return json.loads(first[0])["pid"]
        time.sleep(0.02)
    raise AssertionError("no trial reported")
