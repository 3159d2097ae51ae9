"""Faults of the engine the trials run on, on a real two-node Ray cluster started as the README's cluster section
starts one: `ray start` twice, each node its own temporary directory, both able to run trials. The second node
runs in a mount namespace of its own where the driver's run directory is hidden under an empty tmpfs, so it
shares no disk with the driver that matters: its trials' checkpoints reach the driver's storage through Tune's
checkpoint API and the driver's disk actor, or not at all.

One sweep (three seeds of one design, seed 0 trained by an earlier session) shows the faults together, to start
one cluster for them: the second node is killed while its trial is in its second epoch, and the worker process of
the trial on the head is SIGKILLed in its second epoch. Each trial is retried from its first epoch's checkpoint,
and its row is the uninterrupted trial's, exactly."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sweep_cli import ROOT, first_reports, table

from ablate.config import load_config
from ablate.results import ResultRow, trial_key, write_row
from ablate.space import get_space
from ablate.train import train_proxy

# one design, two epochs long enough (about a second each with both trials running) to be killed surely in the
# middle of the second
SWEEP = ["space=placement", "designs=[all conv]", "seeds=3", "model.dim=8", "model.in_dim=8", "trainer.epochs=2",
         "trainer.budgets=[1.0]", "data.options.n_train=768", "data.options.n_val=64", "throughput.batch=8",
         "throughput.warmup=1", "throughput.max_seconds=0.5"]
# the head's GCS declares a silent node dead within about 1.5 s, not Ray's default 15 s
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                   "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "0"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _private_mounts() -> bool:
    """Whether this machine lets a process mount a tmpfs in a mount namespace of its own (root, or CAP_SYS_ADMIN)."""
    return subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
                          capture_output=True).returncode == 0


def _start_node(*args, hide=None, env=None) -> subprocess.Popen:
    """`ray start --block` in its own session (killed with its group, leaving any other Ray on this machine alone),
    returned once it says the node is up; with `hide`, in its own mount namespace with that folder emptied."""
    ray = str(Path(sys.executable).with_name("ray"))
    command = [ray, "start", "--block", *args]
    if hide is not None:
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs tmpfs "$0" && exec "$@"', str(hide), *command]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})
    lines = []
    for line in node.stdout:
        lines.append(line)
        if "Ray runtime started" in line:
            threading.Thread(target=node.stdout.read, daemon=True).start()    # keep its pipe from filling
            return node
    raise AssertionError("ray start failed:\n" + "".join(lines[-40:]))


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    from ray.util import get_node_ip_address
    # Ray >= 2.59 turns token authentication on for `ray start --head` once a token file exists: every process of
    # the cluster (nodes and driver) then needs the same token, as the README's recipe says
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    port, ip = _free_port(), get_node_ip_address()
    # each node its own temporary directory, short: Ray's socket paths inside must fit in 107 bytes
    head, second = Path(tempfile.mkdtemp(prefix="ray_head_")), Path(tempfile.mkdtemp(prefix="ray_node2_"))
    nodes = [_start_node("--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                         f"--temp-dir={head}", env=FAST_NODE_DEATH)]
    try:
        nodes.append(_start_node(f"--address={ip}:{port}", "--num-cpus=1", f"--temp-dir={second}",
                                 hide=tmp_path if _private_mounts() else None))
        yield f"{ip}:{port}", head, second, nodes[1]
    finally:
        for started in reversed(nodes):
            os.killpg(started.pid, signal.SIGKILL)             # the node and every process it started
            started.wait(timeout=60)
        shutil.rmtree(head, ignore_errors=True)
        shutil.rmtree(second, ignore_errors=True)


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether the process was started, through any chain of parents, by `ancestor`."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except FileNotFoundError:                # it, or a parent on the way, has exited
            return False
    return False


# Tune registers a report's checkpoint only after a second call to the trial's actor (its `save`), which follows
# the report's loggers: a kill in between restarts the trial from scratch. Half a second covers that call; epoch 2
# lasts over a second.
REGISTERED_S = 0.5


def kill_each_trial_in_its_second_epoch(head: Path, second: subprocess.Popen, driver: subprocess.Popen) -> dict:
    """Once Tune's driver has recorded a trial's first report (its loggers write it into result.json in the driver's
    staging folder) and registered the checkpoint that came with it, the trial's fault: the node it runs on is
    killed when that is the second node, its worker process otherwise. Returns pid -> fault."""
    staging, deadline, seen, faults = head / "session_latest" / "artifacts", time.monotonic() + 240, {}, {}
    while len(faults) < 2:
        assert time.monotonic() < deadline and driver.poll() is None, "the trials' first reports never came"
        for pid, when in first_reports(staging.glob("*/tune-*/driver_artifacts/*/result.json")).items():
            seen.setdefault(pid, when)
        for pid, when in seen.items():
            if pid in faults or time.monotonic() - when < REGISTERED_S:
                continue
            if descends_from(pid, second.pid):     # the second node and every process it started, at once
                os.killpg(second.pid, signal.SIGKILL)
                faults[pid] = "node"
            else:
                os.kill(pid, signal.SIGKILL)
                faults[pid] = "worker"
        time.sleep(0.02)
    return faults


def test_a_lost_node_and_a_killed_worker_cost_their_trials_one_epoch_and_no_row(tmp_path, cluster):
    address, head, second_dir, second = cluster
    cfg = load_config(SWEEP)
    design, = [d for d in get_space("placement").designs(cfg) if d.pattern == "all conv"]
    run = tmp_path / "runs" / "f"
    earlier = ResultRow(run="f", trial_id=trial_key(design.key, 0), space="placement", spec=design.spec,
                        pattern=design.pattern, seed=0, status="ok", epochs_done=2, val_acc_late=0.5,
                        train_time_s=123.0, history=[])
    write_row(run, earlier)                             # seed 0 trained before: not trained again
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}", "name=f",
                               "resume=true", f"ray.address={address}", *SWEEP],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        faults = kill_each_trial_in_its_second_epoch(head, second, driver)
        # the uninterrupted trials, trained here on the lost node's core while the head retries the two
        uninterrupted = {seed: train_proxy(cfg.trial_proxy().for_design(design, seed)) for seed in (1, 2)}
        out, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-3000:]
    assert sorted(faults.values()) == ["node", "worker"], out[-3000:]   # a trial on each node, each lost its own way
    assert out.count("its process was lost after epoch 1; retry 1 of 2, from its last checkpoint") == 2, out[-3000:]
    assert "[f] 2/2 done" in out                                       # seed 0 was not launched
    rows = table(tmp_path, "f").set_index("seed")
    assert len(rows) == 3 and rows["trial_id"].is_unique and set(rows["status"]) == {"ok"}
    assert rows.loc[0, "train_time_s"] == earlier.train_time_s
    assert list(second_dir.glob("session_*/logs/worker-*.out"))       # a trial did run on the second node
    assert not list((run / "ray").glob("tune-*/*/checkpoint_*"))       # gone once the rows were written
    for seed in (1, 2):
        row = rows.loc[seed]
        assert row["attempts"] == 2 and json.loads(row["resumed_from"]) == [1], (seed, out[-3000:])   # epoch 2 twice
        for metric in ("val_acc_late", "val_loss_late", "val_acc_best", "val_loss_final", "train_loss",
                       "data_digest"):
            assert row[metric] == getattr(uninterrupted[seed], metric), (seed, metric)
        steps = [(h["step"], h["val_acc"], h["val_loss"]) for h in uninterrupted[seed].history]
        assert [(h["step"], h["val_acc"], h["val_loss"]) for h in json.loads(row["history"])] == steps
