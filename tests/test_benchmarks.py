"""Every script in benchmarks/ runs end to end at a tiny size (a script no test runs rots): the task benchmark
prints the decisiveness table and resumes, the ladder benchmark its ratios, and each other script its table."""
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
TESTED_BELOW = ("tasks.py", "ladder.py")       # with tests of their own that check their numbers
# script -> (its tiny arguments, with {tmp} for the test's folder; a line its output must hold)
TINY_RUNS = {
    "scan.py": (["--reps", "1", "--cases", "proxy", "--threads", "1"], "| (64, 64, 64, 8) | proxy |"),
    "throughput.py": (["--models=", "--iters", "1", "--threads", "1"], "| proxy (default) | `C|CCC|MMMMTTTT|MMTT` |"),
    "data_memory.py": (["--trials", "1", "--steps", "1", "--n-train", "500"], "packed / reference, whole processes:"),
    "gpu_feed.py": (["--epochs", "1", "--n-train", "64", "--n-val", "16", "--batch-size", "16", "--first", "1",
                     "--out", "{tmp}/gpu_feed.json"], '"run": "32 px, host feed, basic"'),
    "gpu_sweep.py": (["--quick", "--out", "{tmp}/gpu_sweep.json"], "| 1 | 0."),
    "throughput_phase.py": (["--designs", "2", "--repeats", "1", "model.dim=8", "model.in_dim=8", "throughput.batch=4",
                             "throughput.max_seconds=0.2"], "ratio rounds / sequential"),
    "plan.py": (["--runs-dir", "{tmp}/runs", "smoke=true", "seeds=1", "designs=[all conv]"],
                "measured sweep wall time (sessions.json):"),
    # it exits non-zero when the rows are not the trials launched, each once
    "driver_load.py": (["--trials", "1", "--runs-dir", "{tmp}/runs"], "driver peak RSS MiB:"),
}


def test_every_benchmark_script_has_a_tiny_run():
    assert sorted([*TINY_RUNS, *TESTED_BELOW]) == SCRIPTS


@pytest.mark.parametrize("script", sorted(TINY_RUNS))
def test_a_benchmark_runs_at_a_tiny_size(script, tmp_path):
    args, expected = TINY_RUNS[script]
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *[a.format(tmp=tmp_path) for a in args]],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
    if script == "gpu_sweep.py":             # a fused trial trained in its worker, and the metrics' fused seeds
        report = json.loads((tmp_path / "gpu_sweep.json").read_text())
        assert [r["img_per_s"] > 0 for r in report["runs"]] == [True]
        assert [r["results"][0]["status"] for r in report["runs"]] == [["ok", "ok"]]
        assert [s["fused"]["status"] for s in report["metrics"]["seeds"]] == ["ok", "ok"]
    if script == "gpu_feed.py":              # its trials run in subprocesses: each must have trained
        runs = json.loads((tmp_path / "gpu_feed.json").read_text())
        assert [r["status"] for run in runs for r in run.get("results", [])] == ["ok", "ok"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_answers_help(script, capsys, monkeypatch):
    """In this process (torch is imported already): a process per script would cost seconds of imports each."""
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    monkeypatch.syspath_prepend(str(ROOT))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out


TINY = ["--set", "model.dim=8", "--set", "model.in_dim=8", "--set", "trainer.epochs=1", "--set", "trainer.batch_size=16",
        "--option", "n_train=32", "--option", "n_val=16", "--option", "classes=3"]


def _args(out, *extra):
    return ["--task", "fractal", "--designs", "all conv,all attention,last N/2 (default)", "--seeds", "0,1", "--workers",
            "1", "--out", str(out), *TINY, *extra]


def _in_process(monkeypatch, *args):
    """benchmarks/tasks.py's main() in this process: what needs no training (the resume, a bad design name)."""
    monkeypatch.setattr(sys, "argv", ["tasks.py", *args])
    monkeypatch.syspath_prepend(str(ROOT))
    runpy.run_path(str(ROOT / "benchmarks" / "tasks.py"), run_name="__main__")


def test_task_benchmark_prints_decisiveness_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "tasks.jsonl"
    first = subprocess.run([sys.executable, "benchmarks/tasks.py", *_args(out)], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert len({r["data_digest"] for r in rows if r["seed"] == 0}) == 1      # one seed's designs: one dataset
    assert "| val loss (late mean) |" in first.stdout and "3 designs, seeds [0, 1], 6 trials" in first.stdout
    _in_process(monkeypatch, *_args(out))                                    # everything is there: nothing runs
    again = capsys.readouterr().out
    assert "3 designs, seeds [0, 1], 6 trials" in again and not [line for line in again.splitlines()
                                                                  if line.startswith("# ")]
    assert len(out.read_text().splitlines()) == 6
    with pytest.raises(SystemExit, match="unknown design\\(s\\) nonsense; valid: "):
        _in_process(monkeypatch, *_args(out, "--designs", "all conv,nonsense"))


def test_ladder_benchmark_prints_each_ladder_s_ratio(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/ladder.py", "--rounds", "1", "--n-train", "128",
                           "--n-val", "32", "--epochs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| one budget", "| [0.5, 1] cooldown 1 (default)",
                                                     "| [0.5, 1] cooldown 0.2", "| [0.25, 0.5, 1] cooldown 0.2"]
    # 128 images, batch 64: 2 steps an epoch, 4 in all, warm-up 1; the default's branch adds 1 step (1.25x)
    assert rows[0].endswith("| 1.00 | 1.00 | 1.00 |") and rows[1].endswith("| 1.25 | 1.50 |")
