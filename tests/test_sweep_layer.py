"""The sweep layer on the setups a lab uses: one schema, arrows one way, one driver per run, a killed search that
resumes as a search, an unwritable or full disk. Real processes throughout; nothing of ours is mocked."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_sweep import ROOT, sweep, table


def test_import_layers_hold():
    """import-linter's contracts in pyproject.toml: search_spaces above ablate, ablate's layers one way, and no
    Ray under the plan, the checks, the progress line and the report."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_the_table_columns_are_the_row_fields_and_a_trial_result_is_part_of_a_row():
    from ablate.results import COLUMNS, METRICS, ResultRow, TrialResult
    assert COLUMNS == [f.name for f in dataclasses.fields(ResultRow)]
    assert {f.name for f in dataclasses.fields(TrialResult)} <= set(COLUMNS) and set(METRICS) <= set(COLUMNS)
    with pytest.raises(KeyError, match=r"not result columns: \['val_acc'\]"):
        ResultRow.from_dict({"val_acc": 0.5})


def test_a_trials_config_leaves_the_sweeps_config_alone():
    from ablate.config import load_config
    from ablate.space import Design
    cfg = load_config(["resources.gpus_per_trial=1", "resources.cpus_per_trial=4", "model.mixer_knobs.M.conv=causal"])
    before = dataclasses.asdict(cfg)
    base = cfg.trial_proxy()
    proxy = base.for_design(Design.make("x", "C|CCC|MMMMTTTT|MMTT", {"M": {"merge": "gate"}}), seed=3)
    assert dataclasses.asdict(cfg) == before and base.model.mixer_knobs == {"M": {"conv": "causal"}}
    assert proxy.trainer.device == "cuda" and proxy.trainer.threads == 4 and proxy.seed == 3
    assert proxy.model.mixer_knobs == {"M": {"conv": "causal", "merge": "gate"}}
    assert proxy.trainer.budgets is not cfg.trainer.budgets                 # a copy all the way down


def _driver(tmp_path, *overrides):
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, str(ROOT / "run_sweep.py"), f"runs_dir={tmp_path / 'runs'}", *overrides]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _wait_for(path_glob, count, deadline_s=240):
    deadline = time.time() + deadline_s
    while time.time() < deadline and len(list(path_glob())) < count:
        time.sleep(0.2)
    return len(list(path_glob()))


# One driver per run, with real processes: test_sweep.py's kill-and-resume test freezes a live driver (a second
# driver is refused, naming it), kills it (its lock stays) and resumes (the stale lock does not block).


def test_an_unwritable_runs_dir_is_an_error_before_ray(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = sweep(tmp_path, "smoke=true", f"runs_dir={blocker / 'runs'}", timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: runs_dir: cannot write the run directory")
    assert "Started a local Ray instance" not in done.stdout + done.stderr


def previous_rows(seed: int):
    """The rows a first session left for smoke's two placement designs: the driver must not train them again."""
    from ablate.results import ResultRow, architecture_id, trial_key
    return [ResultRow(run="r", trial_id=trial_key(architecture_id(spec), seed), space="placement", spec=spec,
                      pattern=pattern, seed=seed, status="ok", epochs_done=2, val_acc_late=0.5, val_acc_final=0.5,
                      train_time_s=123.0, history=[])
            for pattern, spec in (("last N/2 (default)", "C|CCC|MMMMTTTT|MMTT"), ("last N/4", "C|CCC|MMMMMMTT|MMMT"))]


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_stops_the_sweep_and_keeps_the_rows_written(tmp_path):
    """A real full disk: the run's trials folder on a small tmpfs, filled up after a first session's rows."""
    trials = tmp_path / "runs" / "full" / "trials"
    kept = {f"{row.trial_id}.json": json.dumps(row.to_dict()).encode() for row in previous_rows(seed=0)}
    trials.mkdir(parents=True)
    for name, data in kept.items():                          # under the mount too: what a later reader finds
        (trials / name).write_bytes(data)
    if not _mount_tmpfs(trials, "64k"):
        pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN, which this machine does not give")
    try:
        for name, data in kept.items():
            (trials / name).write_bytes(data)
        with open(trials / "filler", "wb", buffering=0) as filler:   # fill the disk to the last byte
            try:
                while filler.write(b"\0" * 1024):
                    pass
            except OSError:
                pass
        # budget.max_params=1 rejects both new trials without training them: their rows are the first writes
        done = sweep(tmp_path, "smoke=true", "name=full", "seeds=2", "resume=true", "budget.max_params=1")
        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        assert "could not write the row of trial" in done.stderr and str(trials) in done.stderr
        assert "No space left on device" in done.stderr and "the 2 rows already in" in done.stderr
        after = {p.name: p.read_bytes() for p in trials.glob("*.json")}
        assert after == kept                                 # nothing lost, nothing half-written
        assert not list(trials.glob(".*tmp*"))               # the failed write's temporary file is gone
    finally:
        subprocess.run(["umount", "-l", str(trials)], capture_output=True)


def test_a_killed_search_resumes_with_its_study(tmp_path):
    import optuna
    # one trial at a time (2 CPUs each): the kill lands after the second row, a whole trial before the third (with
    # two at once the second and third could end together, and the kill find all three done)
    overrides = ["space=free", "search.algo=tpe", "search.num_samples=3", "smoke=true", "name=tpe", "seeds=1",
                 "resources.cpus_per_trial=2"]
    first = _driver(tmp_path, *overrides)
    trials = tmp_path / "runs" / "tpe" / "trials"
    assert _wait_for(lambda: trials.glob("*.json"), 2) >= 2
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = {p.name: json.loads(p.read_text()) for p in trials.glob("*.json")}
    assert len(before) == 2, "the kill should land mid-search, while the third design trains"
    resumed = sweep(tmp_path, *overrides, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = table(tmp_path, "tpe")
    assert len(rows) == 3 and rows["trial_id"].is_unique              # no design trained twice
    for name, row in before.items():                                   # finished trials were not re-run
        assert json.loads((trials / name).read_text())["train_time_s"] == row["train_time_s"]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "runs" / "tpe" / "optuna.journal")))
    study = optuna.load_study(study_name="search", storage=storage)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    # one study across both drivers: the first's finished trials are in it, none is left RUNNING, and every row
    # is a trial the sampler has seen complete
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) >= len(rows)
    from search_spaces import free
    complete = [t.params for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert all(free.params_of(spec) in complete for spec in rows["spec"])
