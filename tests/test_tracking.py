"""Experiment tracking (tracking=...): the shared smoke run's TensorBoard and MLflow runs read back with the
libraries' own readers, the report's links, and the config's checks before Ray starts."""
import importlib.util
import json
from types import SimpleNamespace

import pytest
from sweep_cli import sweep, table

from ablate.config import TRACKERS, ConfigError, load_config

SPECS = {"C|CCC|MMMMTTTT|MMTT", "C|CCC|MMMMMMTT|MMMT"}      # the smoke run's two designs, one seed each
EPOCHS = [1, 2]


def final_val_acc(smoke_run) -> dict:
    rows = table(smoke_run.tmp_path, "s")
    return dict(zip(rows["spec"], rows["val_acc_final"]))


def test_tensorboard_shows_one_run_per_trial_with_every_epoch(smoke_run):
    """What `tensorboard --logdir runs/s` shows: its multiplexer finds the runs as the server does."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    assert smoke_run.done.returncode == 0, smoke_run.done.stderr[-2000:]
    runs = EventMultiplexer().AddRunsFromDirectory(str(smoke_run.run_dir))
    runs.Reload()
    assert len(runs.Runs()) == 2                          # one run per trial, and nothing else writes events
    final = final_val_acc(smoke_run)
    seen = set()
    for name, tags in runs.Runs().items():
        assert name.startswith("ray/tune-") and "-seed0-" in name
        for metric in ("val_acc", "val_loss", "val_acc_late", "train_loss"):
            assert [event.step for event in runs.Scalars(name, f"ray/tune/{metric}")] == EPOCHS
        assert tags["histograms"] == []                   # the nested result's history is not logged
        hparams = {}
        for content in runs.GetAccumulator(name).PluginTagToContent("hparams").values():
            data = HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                hparams = data.session_start_info.hparams
        spec = hparams["design/spec"].string_value
        assert hparams["design/seed"].number_value == 0 and hparams["design/pattern"].string_value
        assert runs.Scalars(name, "ray/tune/val_acc")[-1].value == pytest.approx(final[spec], abs=1e-6)
        seen.add(spec)
    assert seen == SPECS


def test_mlflow_has_one_run_per_trial_with_every_epoch(smoke_run):
    from mlflow import MlflowClient
    assert smoke_run.done.returncode == 0, smoke_run.done.stderr[-2000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{smoke_run.run_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("s")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {run.info.status for run in runs} == {"FINISHED"}
    final = final_val_acc(smoke_run)
    assert {run.data.params["design/spec"] for run in runs} == SPECS
    for run in runs:
        assert run.data.params["design/seed"] == "0" and run.data.tags["sweep"] == "s"
        assert "-seed0-" in run.info.run_name
        for metric in ("val_acc", "val_loss", "val_acc_late", "train_loss"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == EPOCHS
        assert run.data.metrics["val_acc"] == pytest.approx(final[run.data.params["design/spec"]])
        assert not any(key.startswith(("result", "measures")) for key in run.data.metrics)


def test_report_links_to_the_tracking_outputs(smoke_run):
    report = (smoke_run.run_dir / "report" / "report.md").read_text()
    assert f"`tensorboard --logdir {smoke_run.run_dir}`" in report
    assert f"`mlflow ui --backend-store-uri sqlite:///{smoke_run.run_dir / 'mlflow.db'}`, experiment `s`" in report
    session, = json.loads((smoke_run.run_dir / "sessions.json").read_text())
    assert set(session["tracking"]) == {"tensorboard", "mlflow"}


@pytest.mark.parametrize("value, names", [
    ("tensorboard,mlflow", ["tensorboard", "mlflow"]),
    ("[tensorboard,mlflow]", ["tensorboard", "mlflow"]),
    ("mlflow", ["mlflow"]),
    ("none", ["none"]),
])
def test_tracking_takes_one_name_or_several(value, names):
    assert load_config([f"tracking={value}"]).tracking == names
    assert load_config([]).tracking == ["none"]


def test_a_bad_tracker_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        load_config(["tracking=tensorboard,mlfow"])
    assert ("tracking=tensorboard,mlfow: 'mlfow' is not a tracker; valid: none, tensorboard, mlflow, wandb"
            in str(error.value))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_without_the_package_fails_before_ray(tmp_path):
    with pytest.raises(ConfigError, match="tracking=wandb needs the wandb package, which is not installed: "
                                          "pip install wandb"):
        load_config(["tracking=tensorboard,wandb"])
    done = sweep(tmp_path, "space=placement", "smoke=true", "tracking=wandb", timeout=60)
    assert done.returncode == 2 and "pip install wandb" in done.stderr
    assert "Ray" not in done.stdout + done.stderr and not (tmp_path / "runs").exists()


def test_every_tracker_has_a_builder_and_none_builds_nothing(tmp_path, monkeypatch):
    from ablate.sweep.tracking import BUILDERS, make_trackers, mlflow_uri
    assert set(BUILDERS) == set(TRACKERS)
    run = SimpleNamespace(cfg=load_config(["tracking=none"]), store=SimpleNamespace(run_dir=tmp_path), name="n")
    assert make_trackers(run) == {}
    # MLflow: the mlflow_uri key, else $MLFLOW_TRACKING_URI, else the local store in the run directory
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_uri(run) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert mlflow_uri(run) == "http://env:5000"
    run.cfg = load_config(["mlflow_uri=http://key:5000"])
    assert mlflow_uri(run) == "http://key:5000"


def test_trackers_see_each_epoch_s_scalars_only():
    """Tune's logger callbacks get every per-epoch report's scalars at step = epoch, never the final report (the
    last epoch again) nor the nested result the driver's row is built from."""
    from ablate.results import TrialResult
    from ablate.sweep.tracking import epoch_scalars
    from ablate.sweep.trial import StaticMeasures, tune_metrics

    class Recorder:
        def __init__(self):
            self.logged = []

        def log_trial_result(self, iteration, trial, result):
            self.logged.append(result)

    recorder = epoch_scalars(Recorder)()
    epoch = TrialResult(epochs_done=1, val_acc_final=0.5, val_loss_final=1.2, val_acc_best=0.5, train_loss=1.5,
                        history=[{"epoch": 1, "val_acc": 0.5}])
    measures = StaticMeasures(params=100, macs_total=7, macs_scan=0)
    recorder.log_trial_result(1, None, tune_metrics([epoch], measures, final=False))
    recorder.log_trial_result(2, None, tune_metrics([epoch], measures, final=True))
    assert recorder.logged == [{"epoch": 1, "val_acc": 0.5, "val_loss": 1.2, "val_acc_best": 0.5, "train_loss": 1.5,
                                "train_time_s": 0.0, "training_iteration": 1}]
