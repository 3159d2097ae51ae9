"""resolutions=: one sub-sweep per image size, windows as large as the maps, and a report across token counts."""
import shutil

import pandas as pd
import pytest

from ablate.config import ConfigError, load_config
from ablate.report import write_report
from ablate.results import PRIMARY
from ablate.sweep.resolutions import resolution_config, stage_sides
from sweep_cli import in_process


def test_each_size_gets_global_windows_and_its_own_run(tmp_path):
    assert stage_sides(32, 1) == (8, 4) and stage_sides(224, 4) == (14, 7) and stage_sides(64, 2) == (8, 4)
    cfg = load_config(["resolutions=[32,48]", "name=r"])
    sub = resolution_config(cfg, 48, tmp_path / "r")
    assert sub.data.image_size == 48 and sub.model.window_size == [8, 8, 12, 6] and sub.resolutions == []
    assert sub.runs_dir == str(tmp_path / "r" / "resolutions") and sub.name == "48px"
    assert cfg.model.window_size == [8, 8, 8, 4]                                  # the sweep's own is untouched
    with pytest.raises(ConfigError, match=r"resolutions=\[32, 36\]: \[36\] not a multiple of 8"):
        load_config(["resolutions=[32,36]"])


def test_the_plan_of_a_two_size_sweep_covers_both_sizes(tmp_path, capsys):
    code, out, err = in_process(capsys, tmp_path, "space=placement", "smoke=true", "name=tok", "seeds=1",
                                "resolutions=[24,16]", "plan=true")
    assert code == 0, err[-3000:]
    assert out.index("# 16 px: stage 3 sees 4x4 = 16 tokens") < out.index("# 24 px: stage 3 sees 6x6 = 36 tokens")
    assert out.count("# Plan: placement") == 2 and "tok/resolutions/24px" in out
    assert not (tmp_path / "runs").exists()                                      # a plan trains and writes nothing


def test_the_report_compares_the_sizes(smoke_run, tmp_path):
    """The smoke run's rows as two sizes' sub-runs, the designs' order reversed at the second."""
    assert smoke_run.done.returncode == 0, smoke_run.done.stderr[-2000:]
    run = tmp_path / "tok"
    for size in (16, 24):
        sub = run / "resolutions" / f"{size}px"
        sub.mkdir(parents=True)
        shutil.copy(smoke_run.run_dir / "config.yaml", sub)
        frame = pd.read_parquet(smoke_run.run_dir / "results.parquet").assign(image_size=size)
        first = frame["pattern"] == frame["pattern"].iloc[0]
        frame[PRIMARY.column] = first.map({True: 0.6, False: 0.4} if size == 16 else {True: 0.3, False: 0.5})
        frame.to_parquet(sub / "results.parquet")
    report = write_report(run).read_text()
    assert "one sweep at 2 token counts" in report and "16px (16 tokens in stage 3)" in report
    assert "24px (36 tokens in stage 3) | " in report
    assert "Kendall tau -1.00" in report and "is reversed at 24px" in report
    assert (run / "report" / "fronts_by_tokens.png").is_file()
    assert (run / "resolutions" / "24px" / "report" / "report.md").is_file()
