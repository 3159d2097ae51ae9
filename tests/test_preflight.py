"""Bad input stops a sweep before any Ray call: exit 2, one message naming the key, the value and what is valid."""
import dataclasses
import pickle

import pytest
import torch

from sweep_cli import in_process
from test_sweep import sweep


def _bad_cifar(tmp_path):
    root = tmp_path / "cifar"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps({b"data": "not images", b"labels": [0]}))
    return str(root)


BAD = {
    "spec": (["model.spec=C|CCC|MMQM|MMTT"], "'Q' at column 9 (stage 3) is not a block letter; valid: B C G I M P S"),
    "folder": (["data=imagefolder", "data.root=/nonexistent"], "imagefolder: directory /nonexistent does not exist"),
    "cifar without root": (["data=cifar10"], "cifar10: no path given; set data.root="),
    "unknown dataset": (["data=nope"], "data.name='nope' cannot be loaded: unknown dataset 'nope'; valid: match"),
    "mixer knob": (["model.mixer_knobs.M.conv=bogus"], "knob conv='bogus' for block 'M' is not valid; choose one of"),
    "heads": (["model.num_heads=[1,2,3,8]"], "is not divisible by num_heads=3"),
    "no full batch": (["data.options.n_train=32"], "32 training images make no full batch of trainer.batch_size=64"),
    "generator option": (["data.options.jitter=-1"], "fractal: jitter=-1 is out of range; valid: 0.0..0.5"),
    "augmentation": (["data.augment=heavy"], "data.augment='heavy'; valid: none, basic, strong, auto"),
    "no gpu": (["resources.gpus_per_trial=0.25"], "resources.gpus_per_trial>0 puts the trials on CUDA, and this "
                                                  "machine has no CUDA device"),
}


@pytest.mark.parametrize("case", list(BAD) + ["unreadable cifar"])
def test_bad_input_exits_2_before_ray_starts(tmp_path, case, capsys):
    import ray
    if case == "no gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    overrides, message = BAD.get(case) or (["data=cifar10", f"data.root={_bad_cifar(tmp_path)}"],
                                           "is not a CIFAR-10 python batch")
    code, out, err = in_process(capsys, tmp_path, *overrides)
    assert code == 2, err[-2000:]
    assert message in err and err.startswith("error: ")
    assert not ray.is_initialized() and "Started a local Ray instance" not in out + err
    assert not (tmp_path / "runs").exists()                      # no run directory either


def test_a_bad_dataset_is_named_before_an_existing_run(tmp_path):
    """As a real process: the exit code 2 and the message on stderr."""
    (tmp_path / "runs" / "placement" / "trials").mkdir(parents=True)
    (tmp_path / "runs" / "placement" / "trials" / "x.json").write_text("{}")
    done = sweep(tmp_path, "data=nope", timeout=120)
    assert done.returncode == 2 and "unknown dataset 'nope'" in done.stderr and "already has" not in done.stderr


def test_smoke_says_what_it_changes(tmp_path):
    done = sweep(tmp_path, "smoke=true", "model.dim=0", "model.spec=C|CCC|MMQM|MMTT", timeout=120)
    assert "smoke=true: the first 2 designs; sets model.dim=8 (was 0), model.in_dim=8 (was 16)" in done.stdout
    assert done.returncode == 2                                  # and the spec is still checked


def test_makespan_packs_the_longest_trials_first():
    from ablate.calibration import makespan
    assert makespan([3, 3, 2, 2, 2], slots=2) == 7                 # 3+2+2 on one slot, 3+2 on the other
    assert makespan([5, 1, 1, 1], slots=4) == 5 and makespan([], slots=2) == 0


def test_trial_seconds_counts_steps_and_evaluations():
    from ablate.calibration import trial_seconds
    from ablate.proxy import TrainerConfig
    trainer = TrainerConfig(batch_size=64, epochs=2, late_evals=3, warmup_epochs=0.5, budgets=[1], cooldown=1)
    # 62 steps per epoch; evaluations: after epochs 1 and 2, and at 3 points of the last quarter (one is the end)
    assert trial_seconds({"step_s": 1.0, "eval_s_per_image": 0.01}, 4000, 500, trainer) == \
        pytest.approx(124 + 4 * 500 * 0.01)
    # budgets [0.5, 1], cooldown 0.2: the branch's cooldown adds steps 50-61 and its 3 evaluations (54, 58, 62);
    # the trunk is evaluated after epoch 1 (62) and at 107, 116 and 124
    ladder = dataclasses.replace(trainer, budgets=[0.5, 1], cooldown=0.2)
    assert trial_seconds({"step_s": 1.0, "eval_s_per_image": 0.01}, 4000, 500, ladder) == \
        pytest.approx(124 + 12 + 7 * 500 * 0.01)


def test_plan_prints_the_sweep_and_trains_nothing(tmp_path, monkeypatch, capsys):
    from ablate.results import write_row
    from test_sweep_layer import previous_rows
    for row in previous_rows(seed=0):                                      # one seed already in the run
        write_row(tmp_path / "runs" / "placement", row)
    done = sweep(tmp_path, "smoke=true", "seeds=2", "plan=true", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| last N/2 (default) | `C|CCC|MMMMTTTT|MMTT` |" in done.stdout
    assert "| 1 | 1 |" in done.stdout                                      # one seed to train, one already there
    assert "2 trials to train, 2 at once" in done.stdout and "Estimated wall time" in done.stdout
    assert "Not yet corrected: no sweep of this proxy has run on this machine" in done.stdout
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert len(list((tmp_path / "runs" / "placement" / "trials").glob("*.json"))) == 2   # nothing trained
    # a sweep on this machine records how long its trials took against their estimates (test_sweep.py's smoke
    # sweep checks the record); the next plan is corrected by it, and says so
    from ablate.config import load_config
    from ablate.calibration import record_correction, recorded_correction
    from ablate.config import apply_smoke
    record_correction(load_config(["seeds=2"]), measured_s=90.0, estimated_s=60.0, trials=30, run="default")
    assert recorded_correction(apply_smoke(load_config(["smoke=true"]))) is None   # the default proxy's is not smoke's
    record_correction(apply_smoke(load_config(["smoke=true"])), measured_s=30.0, estimated_s=20.0, trials=2,
                      run="earlier")
    code, again, _ = in_process(capsys, tmp_path, "smoke=true", "seeds=2", "plan=true")     # (in this process)
    assert code == 0 and again.split("| est. s")[0] == done.stdout.split("| est. s")[0]
    assert "Corrected by x1.50: the last sweep of this proxy on this machine with 2 at once (run 'earlier', 2 trials" \
        in again


def test_eta_starts_from_the_plan_and_learns_from_finished_trials():
    import io

    from ablate.progress import Progress
    from ablate.results import ResultRow
    progress = Progress("p", total=3, epochs=2, stream=io.StringIO(), pending=[100.0, 100.0, 50.0], slots=2)
    assert progress.eta(elapsed=0.0, done=0) == 150.0                    # 100 | 100 + 50, before any trial ends
    progress.finished(ResultRow(status="ok", val_acc_late=0.5, pattern="a", seed=0, train_time_s=200.0), running=1,
                      estimate=100.0)
    assert progress.eta(elapsed=200.0, done=1) == 200.0                  # 100 | 50 left, trials take 2x the plan
    assert "ETA 3.3 min" in progress.stream.getvalue()
    # a previous sweep's ratio on this machine scales the plan until this sweep's own trials end
    assert Progress("p", total=3, epochs=2, stream=io.StringIO(), pending=[100.0, 100.0, 50.0], slots=2,
                    correction=1.2).eta(elapsed=0.0, done=0) == pytest.approx(180.0)
    plain = Progress("p", total=4, epochs=2, stream=io.StringIO())        # no plan: extrapolate from done trials
    assert plain.eta(elapsed=60.0, done=1) == 180.0


def test_smoke_leaves_the_sizes_of_a_folder_alone(tmp_path):
    import numpy as np
    from PIL import Image
    for label in ("a", "b"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.full((16, 16, 3), 40 if label == "a" else 200, np.uint8)
            Image.fromarray(pixels).save(tmp_path / "folder" / label / f"{i}.png")
    done = sweep(tmp_path, "smoke=true", "plan=true", "data=imagefolder", f"data.root={tmp_path / 'folder'}",
                 "trainer.batch_size=8", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "n_train" not in done.stdout.split("\n")[0]                   # smoke does not set what the folder lacks
    assert "6 trials to train" in done.stdout                             # 2 designs x 3 seeds
