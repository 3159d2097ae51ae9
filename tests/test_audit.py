"""The proxy audit: its statistics on hand-made tables with known answers, its rungs and choice of designs, and the
command on a copy of a real smoke run."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from ablate.audit import AuditError, AuditOptions, audit_config, audit_record, stratified
from ablate.config import load_run_config
from ablate.report.table import load_results, oriented_scores
from ablate.results import PRIMARY, Metric
from ablate.report.audit_section import audit_markdown, audits_of, ranks
from ablate.report.stats import HOLDS_TAU, rung_agreement, rung_verdict, top_k_overlap

ROOT = Path(__file__).resolve().parents[1]


def constant(table):
    """{design: three identical seeds}: the bootstrap can only return the point values."""
    return {name: np.full(3, value) for name, value in table.items()}


def test_top_k_overlap_counts_shared_designs():
    low = {"a": 3, "b": 2, "c": 1, "d": 0}
    assert top_k_overlap(low, {"a": 3, "b": 0, "c": 2, "d": 1}, k=2) == 0.5        # {a, b} against {a, c}
    assert top_k_overlap(low, {"a": 0, "b": 1, "c": 2, "d": 3}, k=2) == 0.0
    assert top_k_overlap(low, low, k=3) == 1.0


def test_rung_agreement_on_a_known_swap():
    """a > b > c > d at 1x, a > b > d > c at 2x: one discordant pair of six, so tau = (5 - 1) / 6 and
    rho = 1 - 6 * (1 + 1) / (4 * 15) = 0.8; constant seeds make every interval the point."""
    stats = rung_agreement(constant({"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.3}),
                           constant({"a": 0.8, "b": 0.6, "c": 0.2, "d": 0.4}), k=2, n_boot=200)
    assert stats.kendall_tau == pytest.approx(4 / 6) and stats.spearman_rho == pytest.approx(0.8)
    assert stats.kendall_tau_interval == pytest.approx((4 / 6, 4 / 6))
    assert stats.top_k_overlap == 1.0 and stats.designs == 4 and stats.undefined == 0


def test_a_loss_ranks_and_picks_its_top_k_lowest_first():
    """A lower-is-better metric: the lowest mean ranks first, and the top-2 sets are the two lowest at each rung."""
    loss = Metric("val_loss", "validation loss", higher_is_better=False)
    low = constant({"a": 0.3, "b": 0.5, "c": 0.7, "d": 0.9})
    assert ranks(oriented_scores(low, loss)) == {"a": 1, "b": 2, "c": 3, "d": 4}
    high = constant({"a": 0.4, "b": 0.9, "c": 0.2, "d": 0.6})                  # top 2: {c, a}; at 1x {a, b}
    stats = rung_agreement(oriented_scores(low, loss), oriented_scores(high, loss), k=2, n_boot=50)
    assert stats.top_k_overlap == 0.5
    assert stats.kendall_tau == pytest.approx(rung_agreement(low, high, k=2, n_boot=50).kendall_tau)


def test_rung_agreement_intervals_follow_the_seed_noise():
    rng = np.random.default_rng(0)
    means = {"a": 0.8, "b": 0.6, "c": 0.4, "d": 0.2, "e": 0.0}
    sharp = {n: m + rng.normal(0, 0.01, 5) for n, m in means.items()}
    again = {n: m + rng.normal(0, 0.01, 5) for n, m in means.items()}
    stats = rung_agreement(sharp, again)
    assert stats.kendall_tau == pytest.approx(1)
    assert stats.kendall_tau_interval[0] == pytest.approx(1)                       # never reordered
    noise = {n: rng.normal(0, 0.1, 5) for n in means}                                # no design effect at all
    stats = rung_agreement(sharp, noise)
    low, high = stats.kendall_tau_interval
    assert low < 0 < high


def test_a_rung_without_a_ranking_is_undefined():
    stats = rung_agreement(constant({"a": 0.5, "b": 0.5}), constant({"a": 0.9, "b": 0.1}), k=1, n_boot=50)
    assert math.isnan(stats.kendall_tau) and stats.undefined == 50
    assert "cannot say" in rung_verdict(stats.kendall_tau, stats.kendall_tau_interval, "1x", "2x epochs")


def test_verdict_thresholds():
    assert "holds at 2x" in rung_verdict(HOLDS_TAU, (0.1, 0.9), "1x", "2x")
    assert "holds only in part" in rung_verdict(0.4, (0.05, 0.7), "1x", "2x")
    assert "does not hold" in rung_verdict(0.8, (-0.1, 1.0), "1x", "2x")
    assert "is reversed at 2x" in rung_verdict(-1.0, (-1.0, -0.4), "1x", "2x")


def test_stratified_choice_spans_the_ranking_and_adds_the_default():
    ranked = [f"d{i}" for i in range(10)]
    assert stratified(ranked, 5) == ["d0", "d2", "d4", "d7", "d9"]                   # round half to even: 4.5 -> 4
    assert stratified(ranked, 3, default="d3") == ["d0", "d4", "d9", "d3"]
    assert stratified(ranked[:3], 5) == ranked[:3]
    with pytest.raises(AuditError, match="designs=1: an audit ranks at least 2 designs"):
        stratified(ranked, 1)


def _config(tmp_path, name="fractal", options="{n_train: 1000}"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"space: placement\nseeds: 3\ndata:\n  name: {name}\n  options: {options}\n"
                                     f"trainer:\n  epochs: 3\nsmoke: true\n")
    return run, load_run_config(run)


def test_rungs_change_what_they_say(tmp_path):
    run, cfg = _config(tmp_path)
    audit, changes = audit_config(cfg, run, AuditOptions("budget", 2, seeds=2), ["all Mamba"])
    assert changes == {"trainer.epochs": [3, 6], "data.options.n_train": [1000, 2000]}
    assert audit.trainer.epochs == 6 and audit.data.options["n_train"] == 2000 and not audit.smoke
    assert audit.designs == ["all Mamba"] and audit.seeds == 2 and audit.runs_dir == str(run / "audit")
    assert audit.name == "budgetx2" and audit.resume and audit.scheduler == "none"      # no early stopping
    assert audit_config(cfg, run, AuditOptions("width", 1.5), ["all Mamba"])[1] == {"model.dim": [16, 24],
                                                                                     "model.in_dim": [16, 24]}
    with pytest.raises(AuditError, match="rung='depth' is not a rung; valid: epochs, data, budget, width, task"):
        audit_config(cfg, run, AuditOptions("depth"), [])
    with pytest.raises(AuditError, match="scale=1: a higher-fidelity rung needs scale > 1"):
        audit_config(cfg, run, AuditOptions("epochs", 1), [])
    with pytest.raises(AuditError, match="rung=epochs scale=1.1 changes nothing here \\(trainer.epochs=3 after"):
        audit_config(cfg, run, AuditOptions("epochs", 1.1), [])


def test_the_data_rung_starts_from_a_generated_task_s_default_size(tmp_path):
    run, cfg = _config(tmp_path, options="{}")
    assert audit_config(cfg, run, AuditOptions("data"), [])[1] == {"data.options.n_train": [4000, 8000]}


def test_the_data_rung_needs_a_size_to_scale(tmp_path):
    run, cfg = _config(tmp_path, name="cifar10", options="{}")
    with pytest.raises(AuditError, match="rung=data scales data.options.n_train, and 'cifar10' trains on its whole"):
        audit_config(cfg, run, AuditOptions("data"), [])


def test_the_task_rung_trains_the_same_budget_on_another_dataset(tmp_path):
    """The run's sizes carry over (a generated task's defaults where unset), its task knobs do not; scale is unused."""
    run, cfg = _config(tmp_path, options="{n_train: 1000, classes: 20, jitter: 0.03}")
    audit, changes = audit_config(cfg, run, AuditOptions("task", scale=1, seeds=2), ["all Mamba"])
    assert changes == {"data.name": ["fractal", "fashion_mnist"],
                       "data.options": [{"n_train": 1000, "classes": 20, "jitter": 0.03},
                                        {"n_train": 1000, "n_val": 500}]}
    assert audit.data.name == "fashion_mnist" and audit.data.options == {"n_train": 1000, "n_val": 500}
    assert audit.data.root is None and audit.data.image_size == cfg.data.image_size
    assert audit.trainer.epochs == 3 and audit.trainer.batch_size == cfg.trainer.batch_size and audit.seeds == 2
    assert audit.name == "task_fashion_mnist" and audit.scheduler == "none" and not audit.smoke
    contour = audit_config(cfg, run, AuditOptions("task", task="contour", root="/data/x"), [])[0]
    assert contour.name == "task_contour" and contour.data.root == "/data/x"


def test_the_task_rung_counts_a_real_set_the_run_used_whole(tmp_path, monkeypatch):
    """digits trains on its whole set, split 80/20: the task gets as many images, counted from the run's pack."""
    run, cfg = _config(tmp_path, name="digits", options="{}")
    changes = audit_config(cfg, run, AuditOptions("task"), [])[1]
    assert changes["data.options"] == [{}, {"n_train": 1438, "n_val": 359}]


def test_the_task_rung_refuses_the_run_s_own_dataset_and_unknown_ones(tmp_path):
    run, cfg = _config(tmp_path, name="fashion_mnist", options="{n_train: 200, n_val: 100}")
    with pytest.raises(AuditError, match="task=fashion_mnist is the run's own dataset; rung=task re-trains on "
                                         "another one \\(task=NAME; valid: match, .*fractal, .*cifar100, imagefolder"):
        audit_config(cfg, run, AuditOptions("task"), [])
    with pytest.raises(AuditError, match="task='mnist' is not a dataset; valid: match, .*fashion_mnist"):
        audit_config(cfg, run, AuditOptions("task", task="mnist"), [])
    assert audit_config(cfg, run, AuditOptions("task", task="fractal"), [])[1]["data.options"][1] == \
        {"n_train": 200, "n_val": 100}


def _write_table(run_dir: Path, scores: dict) -> None:
    """A results table with the columns the report needs: design -> its accuracy on seeds 0, 1, 2."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"spec": f"C|C|{design}", "pattern": design, "knobs": "{}", "seed": seed, "status": "ok",
             PRIMARY.column: value}
            for design, values in scores.items() for seed, value in enumerate(values)]
    pd.DataFrame(rows).to_csv(run_dir / "results.csv", index=False)


def test_the_report_names_a_task_audit_by_its_datasets_beside_a_budget_audit(tmp_path):
    """Hand-made tables: an epochs audit (an old record: scale and rung only) that keeps the order, and a task audit
    on Fashion-MNIST that swaps the last two designs."""
    run, cfg = _config(tmp_path, options="{}")                                  # a fractal run
    _write_table(run, {"a": [0.9] * 3, "b": [0.7] * 3, "c": [0.5] * 3, "d": [0.3] * 3})
    _write_table(run / "audit" / "epochsx2", {"a": [0.95] * 3, "b": [0.8] * 3, "c": [0.6] * 3, "d": [0.4] * 3})
    (run / "audit" / "epochsx2" / "audit.json").write_text(json.dumps(
        {"rung": "epochs", "scale": 2.0, "description": "more epochs on the same images",
         "changes": {"trainer.epochs": [2, 4]}}))
    task = run / "audit" / "task_fashion_mnist"
    _write_table(task, {"a": [0.8] * 3, "b": [0.7] * 3, "c": [0.6] * 3, "d": [0.65] * 3})
    options = AuditOptions("task")                                             # the record run_audit writes
    record = audit_record(cfg, options, audit_config(cfg, run, options, [])[1], list("abcd"), 3, "python -m ...")
    (task / "audit.json").write_text(json.dumps(record))
    (tmp_path / "out").mkdir()
    text = audit_markdown(audits_of(run, load_results(run)), tmp_path / "out")
    assert "### 2x epochs: more epochs on the same images" in text and "| 1x mean | 1x rank | 2x epochs mean" in text
    assert "### fashion_mnist: the same designs on fashion_mnist instead of fractal" in text
    assert "`data.name` fractal -> fashion_mnist" in text and "in `task_fashion_mnist/`" in text
    assert "| design | fractal mean | fractal rank | fashion_mnist mean | fashion_mnist rank |" in text
    assert "| d | 0.300 | 4 | 0.650 | 3 |" in text                              # d and c swap places
    assert "Verdict: the fractal proxy ranking" in text
    assert "![rank at fractal vs fashion_mnist](audit_task_fashion_mnist.png)" in text
    assert (tmp_path / "out" / "audit_task_fashion_mnist.png").is_file()


def test_audit_command_on_a_smoke_run_writes_the_report_section(smoke_run, tmp_path, capsys):
    assert smoke_run.done.returncode == 0, smoke_run.done.stderr[-2000:]
    run_dir = tmp_path / "s"
    shutil.copytree(smoke_run.run_dir, run_dir, ignore=shutil.ignore_patterns("ray", "report", "mlflow.db"))
    config = OmegaConf.load(run_dir / "config.yaml")
    config.tracking = ["none"]                                        # the audit inherits it: keep the test short
    OmegaConf.save(config, run_dir / "config.yaml")
    # a cache of its own: the audit records a plan correction, which must not reach the shared smoke run's
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "ablate.audit", str(run_dir), "scale=2", "designs=2", "seeds=1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    audit_dir = run_dir / "audit" / "epochsx2"
    assert len(list((audit_dir / "trials").glob("*.json"))) == 2                     # 2 designs x 1 seed
    report = (run_dir / "report" / "report.md").read_text()
    assert "## Proxy audit" in report and "### 2x epochs: more epochs on the same images" in report
    assert "`trainer.epochs` 2 -> 4" in report and "Verdict: " in report
    assert (run_dir / "report" / "audit_epochsx2.png").is_file()
    from ablate.audit import main                                    # a bad rung, in this process
    assert main([str(run_dir), "rung=depth"]) == 2 and "rung='depth' is not a rung" in capsys.readouterr().err


def test_an_audit_on_fresh_seeds_never_trains_the_run_s_seeds(tmp_path):
    run, cfg = _config(tmp_path)
    audit, _ = audit_config(cfg, run, AuditOptions("epochs", 2, seeds=4, first_seed=100), ["all Mamba"])
    assert (audit.first_seed, audit.seeds, audit.name) == (100, 4, "epochsx2_s100")
    paired, _ = audit_config(cfg, run, AuditOptions("epochs", 2, seeds=4), ["all Mamba"])
    assert (paired.first_seed, paired.seeds, paired.name) == (0, cfg.seeds, "epochsx2")
    with pytest.raises(AuditError, match="overlaps the run's seeds \\[0, 1, 2\\]; fresh seeds start at 3 or later"):
        audit_config(cfg, run, AuditOptions("epochs", 2, seeds=3, first_seed=2), [])


def _write_seeds(run_dir: Path, scores: dict, seeds) -> None:
    """A results table: design -> its accuracy on ``seeds``, each seed shifting every design alike."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"spec": f"C|C|{design}", "pattern": design, "knobs": "{}", "seed": seed, "status": "ok",
             PRIMARY.column: value + 0.01 * i + 0.0004 * ((i + j) % 3)}
            for j, (design, value) in enumerate(scores.items()) for i, seed in enumerate(seeds)]
    pd.DataFrame(rows).to_csv(run_dir / "results.csv", index=False)


def test_the_run_s_conclusions_are_rechecked_on_an_audit_with_fresh_seeds(tmp_path):
    """The run settles every pair (a ~ b within 0.02, then a, b > d > c); on fresh seeds the audit keeps a > c,
    reverses d > c, and, with one bad seed of b, confirms neither b > c nor a ~ b."""
    from ablate.report.budgets import conclusions_of
    run, cfg = _config(tmp_path, options="{}")
    _write_seeds(run, {"a": 0.80, "b": 0.801, "c": 0.60, "d": 0.70}, seeds=[0, 1, 2])
    audit = run / "audit" / "epochsx2_s100"
    _write_seeds(audit, {"a": 0.85, "b": 0.8505, "c": 0.75, "d": 0.65}, seeds=[100, 101, 102])
    noisy = pd.read_csv(audit / "results.csv")
    noisy.loc[(noisy["pattern"] == "b"), PRIMARY.column] += [-0.09, 0.0, 0.0]          # b: one bad fresh seed
    noisy.to_csv(audit / "results.csv", index=False)
    options = AuditOptions("epochs", 2, first_seed=100)
    record = audit_record(cfg, options, {"trainer.epochs": [3, 6]}, list("abcd"), 3)
    (audit / "audit.json").write_text(json.dumps(record))
    frame = load_results(run)
    found = conclusions_of(frame, 0.02)
    assert [(p.a, p.b, p.verdict) for p in found.pairs if p.verdict in ("better", "equivalent")] == \
        [("a", "b", "equivalent"), ("a", "c", "better"), ("a", "d", "better"), ("b", "c", "better"),
         ("b", "d", "better"), ("d", "c", "better")]
    (tmp_path / "out").mkdir()
    text = audit_markdown(audits_of(run, frame, found), tmp_path / "out")
    assert "Conclusions rechecked on this audit's own verdicts (fresh seeds (100, 101, 102)" in text
    rows = {tuple(line.split(" | ")[:2]): line for line in text.splitlines() if line.startswith("| ")}
    assert rows[("| a", "c")].endswith("| holds |")
    assert rows[("| d", "c")].endswith("| reversed |")
    assert rows[("| b", "c")].endswith("| not confirmed |")
    assert rows[("| a", "b")].endswith("| not confirmed |")
