"""A real two-node Ray cluster on this machine, as the README's cluster section starts one: a head that runs no
trials and a second node with its own temporary directory, trials pinned to it by a custom resource. The driver
decides duplicates and writes every row itself, so nothing of the run directory is needed on the second node."""
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
from pathlib import Path

import pytest

from test_sweep import sweep, table
from test_sweep_layer import previous_rows

from ablate.results import write_row


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_node(*args) -> subprocess.Popen:
    """`ray start --block` in its own session (killed with its group at the end, leaving any other Ray on this
    machine alone), returned once it says the node is up."""
    ray = Path(sys.executable).with_name("ray")
    node = subprocess.Popen([str(ray), "start", "--block", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
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
    head, node = Path(tempfile.mkdtemp(prefix="ray_head_")), Path(tempfile.mkdtemp(prefix="ray_node2_"))
    nodes = [_start_node("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                         f"--temp-dir={head}")]
    try:
        nodes.append(_start_node(f"--address={ip}:{port}", "--num-cpus=2", '--resources={"node2": 2}',
                                 f"--temp-dir={node}"))
        yield f"{ip}:{port}", head, node
    finally:
        for started in reversed(nodes):
            os.killpg(started.pid, signal.SIGKILL)             # the node and every process it started
            started.wait(timeout=60)
        shutil.rmtree(head, ignore_errors=True)
        shutil.rmtree(node, ignore_errors=True)


def test_a_sweep_on_a_two_node_cluster_writes_every_row_in_the_drivers_run(tmp_path, cluster):
    address, head, node = cluster
    # seed 0 trained before: the cluster run must not train it again
    trials = tmp_path / "runs" / "c" / "trials"
    for row in previous_rows(seed=0):
        write_row(trials.parent, row)
    before = {p.name: json.loads(p.read_text()) for p in trials.glob("*.json")}
    done = sweep(tmp_path, "smoke=true", "name=c", "seeds=2", "resume=true", f"ray.address={address}",
                 "resources.custom={node2: 1}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = table(tmp_path, "c")
    assert len(rows) == 4 and rows["trial_id"].is_unique and set(rows["status"]) == {"ok"}
    for name, row in before.items():                                  # duplicates were not trained
        assert json.loads((trials / name).read_text())["train_time_s"] == row["train_time_s"]
    assert "[c] 2/2 done" in done.stdout                               # two trials launched, not four
    # the trials ran on the second node: its workers' logs are in its own temporary directory, none in the head's
    assert list(node.glob("session_*/logs/worker-*.out")) and not list(head.glob("session_*/logs/worker-*.out"))
    report = (tmp_path / "runs" / "c" / "report" / "report.md").read_text()
    assert report.count("| last N/2 (default) |") >= 1 and "| last N/4 |" in report
