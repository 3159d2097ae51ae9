"""Faults of the engine the trials run on: a trial's Ray worker process SIGKILLed mid-epoch is retried by Tune from
its last epoch's checkpoint, and its row is the uninterrupted trial's, exactly, with the attempt and the epoch it
resumed from recorded; infrastructure faults past the retry limit are trained again by resume=true."""
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
from ablate.train import train_proxy

# one design, two epochs long enough (about a second each) to be killed surely in the middle of the second
SWEEP = ["space=placement", "designs=[all conv]", "seeds=1", "model.dim=8", "model.in_dim=8", "trainer.epochs=2",
         "trainer.budgets=[1.0]", "data.options.n_train=1536", "data.options.n_val=64", "throughput.batch=8",
         "throughput.warmup=1", "throughput.max_seconds=0.5"]


def trial_workers() -> list:
    """The pids of Ray's processes running a trial (their title is the trainable's actor method)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def wait_for_the_driver(experiment: str, deadline: float) -> None:
    """Until Tune's driver has processed the trial's first report (so it holds the checkpoint that came with it):
    its loggers write the report into result.json in the driver's staging folder of the experiment."""
    staging = Path("/tmp/ray/session_latest/artifacts")
    while time.monotonic() < deadline:
        if any(p.stat().st_size for p in staging.glob(f"*/{experiment}/driver_artifacts/*/result.json")):
            return
        time.sleep(0.02)
    raise AssertionError("the driver did not record the trial's first report")


def test_a_killed_trial_worker_is_retried_from_its_checkpoint_and_ends_as_if_uninterrupted(tmp_path):
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}", "name=f",
                               *SWEEP], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage, deadline = tmp_path / "runs" / "f" / "ray", time.monotonic() + 240
    checkpoints = []
    while not checkpoints and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.05)
        checkpoints = list(storage.glob("tune-*/*/checkpoint_*")) if storage.exists() else []
    assert checkpoints, "no checkpoint was written"
    wait_for_the_driver(checkpoints[0].parent.parent.name, deadline)   # epoch 2 goes on meanwhile
    workers = trial_workers()
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)                              # mid-epoch 2: epoch 1's checkpoint is the last
    killed_after = len(list(storage.glob("tune-*/*/checkpoint_*")))
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err[-3000:]
    assert "its process was lost after epoch 1; retry 1 of 2, from its last checkpoint" in out
    row, = table(tmp_path, "f").to_dict("records")
    assert row["status"] == "ok" and row["attempts"] == 2 and killed_after == 1
    assert json.loads(row["resumed_from"]) == [1]                        # epoch 2 ran twice, nothing else was lost
    assert not list(storage.glob("tune-*/*/checkpoint_*"))           # gone once the row was written
    cfg = load_config(SWEEP)
    design, = [d for d in get_space("placement").designs(cfg) if d.pattern == "all conv"]
    uninterrupted = train_proxy(cfg.trial_proxy().for_design(design, 0))
    for metric in ("val_acc_late", "val_loss_late", "val_acc_best", "val_loss_final", "train_loss", "data_digest"):
        assert row[metric] == getattr(uninterrupted, metric), metric
    steps = [(h["step"], h["val_acc"], h["val_loss"]) for h in uninterrupted.history]
    assert [(h["step"], h["val_acc"], h["val_loss"]) for h in json.loads(row["history"])] == steps


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
