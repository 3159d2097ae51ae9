"""The sweep through its command line: a real tiny Ray Tune sweep, resume after a real kill, duplicates,
budget rejection, and every bad-override message."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sweep_cli import ROOT, first_reporting_worker, sweep, table

from ablate.config import ConfigError, all_keys, load_config
from ablate.results import CRASHED


def test_smoke_sweep_writes_one_row_per_trial(smoke_run):
    """The shared smoke run (conftest.py; test_tracking.py reads its TensorBoard and MLflow runs)."""
    done, tmp_path = smoke_run.done, smoke_run.tmp_path
    assert done.returncode == 0, done.stderr[-2000:]
    rows = table(tmp_path, "s")
    assert len(rows) == 2 and set(rows["status"]) == {"ok"}
    assert set(rows["spec"]) == {"C|CCC|MMMMTTTT|MMTT", "C|CCC|MMMMMMTT|MMMT"}
    assert (rows["params"] > 0).all() and (rows["macs_total"] > rows["macs_scan"]).all()
    assert (rows["throughput_img_s"] > 0).all() and (rows["epochs_done"] == 2).all()
    # both designs timed together in interleaved rounds, each with its interval (smoke caps the rounds at 0.5 s)
    assert ((rows["throughput_lo"] <= rows["throughput_img_s"]) & (rows["throughput_img_s"] <= rows["throughput_hi"])).all()
    assert (rows["throughput_rounds"] >= 6).all() and rows["throughput_rounds"].nunique() == 1
    assert set(rows["throughput_stop"]) <= {"intervals narrow", "time cap"}
    assert "throughput: 2 designs at 32px" in done.stdout
    assert (tmp_path / "runs" / "s" / "results.csv").is_file()
    assert "| last N/2 (default) |" in done.stdout and "[s] 2/2 done" in done.stdout
    report = tmp_path / "runs" / "s" / "report"
    assert f"report: {report / 'report.md'}" in done.stdout
    assert (report / "pareto_throughput.png").is_file() and "Kendall tau-b" in (report / "report.md").read_text()
    assert "## Throughput noise" in (report / "report.md").read_text()
    session, = json.loads((tmp_path / "runs" / "s" / "sessions.json").read_text())
    assert session["command"].endswith("space=placement smoke=true name=s seeds=1 tracking=tensorboard,mlflow")
    assert (session["trials_before"], session["trials_after"]) == (0, 2) and session["wall_s"] > 0
    assert f"`{session['command']}`: started {session['started']}" in (report / "report.md").read_text()
    again = sweep(tmp_path, "space=placement", "smoke=true", "name=s", "seeds=1")
    assert again.returncode == 2 and "already has 2 finished trials" in again.stderr
    # the finished sweep recorded its trials against their calibrated estimates, for the next plan on this machine
    correction, = json.loads((tmp_path / "cache" / "plan_corrections.json").read_text()).values()
    assert correction["run"] == "s" and correction["trials"] == 2 and correction["ratio"] > 0


def test_resume_after_a_real_kill_finishes_only_the_missing_trials(tmp_path):
    """The first trial's worker is SIGKILLed with no retries allowed (a crashed row), then the driver is killed
    mid-sweep; resume=true trains the crashed trial again and the missing one, and nothing else."""
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    # one trial at a time (2 CPUs each): the driver's kill lands after the first row, a whole trial before the second
    overrides = ["space=mixer", "smoke=true", "name=k", "seeds=1", "resources.cpus_per_trial=2",
                 "resources.max_retries=0"]
    args = [sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}", *overrides]
    driver = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    trials = tmp_path / "runs" / "k" / "trials"
    try:
        os.kill(first_reporting_worker(driver, trials.parent / "ray"), signal.SIGKILL)
        deadline = time.time() + 240
        while time.time() < deadline and len(list(trials.glob("*.json"))) < 1:
            time.sleep(0.2)
        os.killpg(driver.pid, signal.SIGSTOP)                # alive, but frozen: a second driver is refused...
        second = sweep(tmp_path, *overrides, "resume=true", timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        lock = json.loads((trials.parent / "driver.lock").read_text())
        assert (f"run 'k' is being run by another driver (host {lock['host']}, process {driver.pid}, started "
                f"{lock['started']})") in second.stderr
        assert "Started a local Ray instance" not in second.stdout + second.stderr
    finally:
        os.killpg(driver.pid, signal.SIGKILL)                # ...then the driver and everything it started die
        driver.wait()
    crashed, = [json.loads(p.read_text()) for p in trials.glob("*.json")]     # the kill landed mid-sweep
    assert crashed["status"] == "failed" and crashed["error"].startswith(CRASHED)
    assert crashed["error"].endswith("(after 0 retries)")
    lock = trials.parent / "driver.lock"
    assert json.loads(lock.read_text())["pid"] == driver.pid          # the killed driver's lock is left behind...
    resumed = sweep(tmp_path, *overrides, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]            # ...and does not block resume=true
    assert not lock.exists()
    assert "resume=true: 1 trials that crashed" in resumed.stdout and "[k] 2/2 done" in resumed.stdout
    rows = table(tmp_path, "k")
    assert len(rows) == 2 and rows["trial_id"].is_unique and set(rows["status"]) == {"ok"}   # no duplicate


def test_rejected_and_diverging_trials_are_recorded_and_reported(tmp_path):
    """One sweep of fused seeds (resources.fuse_seeds=true: each design's two seeds one trial, a row each), whose
    trials do not train to the end: the default design is over the params budget (rejected before training), the
    other diverges (failed, with where, not retried)."""
    done = sweep(tmp_path, "space=placement", "smoke=true", "name=d", "seeds=2", "resources.fuse_seeds=true",
                 "trainer.lr=1e9", "budget.max_params=215000")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = table(tmp_path, "d")
    assert len(rows) == 4 and rows["trial_id"].is_unique and "[d] 4/4 done" in done.stdout
    rejected = rows[rows["spec"] == "C|CCC|MMMMTTTT|MMTT"].set_index("seed")
    diverged = rows[rows["spec"] == "C|CCC|MMMMMMTT|MMMT"].set_index("seed")
    assert sorted(rejected.index) == sorted(diverged.index) == [0, 1]
    assert set(rejected["status"]) == {"rejected_budget"} and set(rejected["epochs_done"]) == {0}
    assert all("params 222,610 > budget.max_params 215,000" in error for error in rejected["error"])
    assert set(diverged["status"]) == {"failed"} and set(diverged["attempts"]) == {1} and "retry" not in done.stdout
    assert set(diverged["fused_seeds"]) == {2}                       # trained as one trial, a row per seed
    assert all(re.match(r"diverged: loss is (nan|inf) at epoch 1, step \d+", error) for error in diverged["error"])
    report = (tmp_path / "runs" / "d" / "report" / "report.md").read_text()
    assert "- failed: `C|CCC|MMMMMMTT|MMMT` seed 1: diverged: loss is" in report
    assert "- rejected_budget: `C|CCC|MMMMTTTT|MMTT` seed 0: params 222,610" in report
    # tracking=none, the default: Tune's automatic TensorBoard logger is off too
    assert not list((tmp_path / "runs" / "d").rglob("events.out.tfevents.*")) and "## Tracking" not in report


def test_duplicate_architectures_are_trained_once(tmp_path):
    """The ratio space gives the same spec for 'even 0' and 'last 0': one design, one trial."""
    from search_spaces import ratio
    cfg = load_config(["space=ratio"])
    designs = ratio.designs(cfg)
    assert len({d.spec for d in designs}) == len(designs)
    assert len(designs) < 2 * len(ratio.RATIOS)


@pytest.mark.parametrize("args, message", [
    (["trainer.epoch=3"], "Key 'epoch' not in 'TrainerConfig'"),
    (["space=banana"], "unknown space 'banana'; valid: placement, mixer, ratio, free"),
    (["search.algo=bayes"], "search.algo='bayes'; valid: grid, random, tpe, nsga2"),
    (["scheduler=hyperband"], "scheduler='hyperband'; valid: auto, asha, none"),
    (["seeds=0"], "seeds=0; need at least 1"),
    (["seeds=three"], "Value 'three' of type 'str' could not be converted to Integer"),
    (["resources.gpus_per_trial=-1"], "resources.gpus_per_trial=-1; a share of a GPU >= 0 (0.25: four trials per GPU) "
                                      "or auto"),
    (["resources.gpus_per_trial=most"], "resources.gpus_per_trial='most'; a share of a GPU >= 0"),
    (["resources.fuse_seeds=true", "model.drop_path_rate=0.1"], "resources.fuse_seeds=true with "
                                                                 "model.drop_path_rate=0.1: stochastic depth"),
    (["search.algo=tpe"], "search.algo=tpe needs a searchable space; 'placement' is a fixed grid"),
    (["experiment=nope"], "unknown experiment 'nope'; valid:"),
    (["smoke"], "override 'smoke' is not key=value"),
])
def test_bad_overrides_fail_before_ray_with_the_valid_choices(args, message):
    with pytest.raises(ConfigError) as error:
        load_config(args)
    assert message in str(error.value)


def test_unknown_key_lists_every_valid_key():
    with pytest.raises(ConfigError) as error:
        load_config(["budget.max_flops=1"])
    for key in ("budget.max_params", "resources.gpus_per_trial", "search.num_samples", "ray.address"):
        assert key in str(error.value)


def test_cli_error_exits_2_without_starting_ray(tmp_path):
    done = sweep(tmp_path, "space=banana", timeout=60)
    assert done.returncode == 2 and "unknown space 'banana'" in done.stderr and "Ray" not in done.stderr


def test_help_lists_spaces_and_keys(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0
    for text in ("placement", "mixer", "ratio", "free", "trainer.epochs = 2", "resources.gpus_per_trial = 0.0"):
        assert text in done.stdout
    assert len(all_keys()) > 30


def test_experiment_file_then_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # the experiments are found from any working directory
    cfg = load_config(["experiment=placement_match_v1", "seeds=2"])
    assert cfg.space == "placement" and cfg.seeds == 2 and cfg.data.options["n_train"] == 4000


def test_help_lists_the_experiments_from_any_folder(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "--help"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "placement_match_v1" in done.stdout.split("experiments (experiment=NAME):")[1]


def test_slowest_designs_are_scheduled_first():
    from ablate.sweep import expected_cost
    cfg = load_config([])
    assert expected_cost("M|MMM|CCCCCCCC|CCCC", cfg) > expected_cost("C|CCC|MMMMMMMM|MMMM", cfg) \
        > expected_cost("C|CCC|MMMMTTTT|MMTT", cfg) > expected_cost("C|CCC|TTTTTTTT|TTTT", cfg)


def test_data_shorthand_sets_the_dataset_name():
    assert load_config(["data=digits"]).data.name == "digits"
