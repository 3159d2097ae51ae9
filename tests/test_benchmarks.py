"""The task benchmark runs end to end on a tiny candidate, prints the decisiveness table, and resumes."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.dim=8", "--set", "model.in_dim=8", "--set", "trainer.epochs=1", "--set", "trainer.batch_size=16",
        "--option", "n_train=32", "--option", "n_val=16", "--option", "classes=3"]


def _run(out, *extra):
    env = {**os.environ, "ABLATE_CACHE": str(out.parent / "cache")}
    return subprocess.run([sys.executable, "benchmarks/tasks.py", "--task", "fractal", "--designs",
                           "all conv,all attention,last N/2 (default)", "--seeds", "0,1", "--workers", "1",
                           "--out", str(out), *TINY, *extra], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)


def test_task_benchmark_prints_decisiveness_and_resumes(tmp_path):
    out = tmp_path / "tasks.jsonl"
    first = _run(out)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert len({r["data_digest"] for r in rows if r["seed"] == 0}) == 1      # one seed's designs: one dataset
    assert "| val loss (late mean) |" in first.stdout and "3 designs, seeds [0, 1], 6 trials" in first.stdout
    again = _run(out)                                                        # everything is there: nothing runs
    trained = [line for line in again.stdout.splitlines() if line.startswith("# ")]
    assert again.returncode == 0 and not trained and len(out.read_text().splitlines()) == 6
    bad = _run(out, "--designs", "all conv,nonsense")
    assert bad.returncode != 0 and "unknown design(s) nonsense; valid: " in bad.stderr


def test_ladder_benchmark_prints_each_ladder_s_ratio(tmp_path):
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "benchmarks/ladder.py", "--rounds", "1", "--n-train", "128",
                           "--n-val", "32", "--epochs", "2"], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| one budget", "| [0.5, 1] cooldown 1 (default)",
                                                     "| [0.5, 1] cooldown 0.2", "| [0.25, 0.5, 1] cooldown 0.2"]
    # 128 images, batch 64: 2 steps an epoch, 4 in all, warm-up 1; the default's branch adds 1 step (1.25x)
    assert rows[0].endswith("| 1.00 | 1.00 | 1.00 |") and rows[1].endswith("| 1.25 | 1.50 |")
