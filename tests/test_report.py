"""The reporting layer: Pareto fronts against brute force, ranking statistics with known answers, and a
report written from a small fixture results table."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablate.report import ReportError, write_report
from ablate.report.figures import pareto_figure
from ablate.report.pareto import pareto_mask
from ablate.report.reproduction import reproduction, seeds_to_resolve
from ablate.report.stats import (RankAgreement, bootstrap_rank_agreement, noise_floor, permutation_p, rank_agreement,
                                 rank_agreements, sign_flip_p, t_interval)
from ablate.report.table import design_summary, load_results
from ablate.results import ResultRow, trial_key, write_row, write_table

ROOT = Path(__file__).resolve().parents[1]


def brute_force_front(points, directions):
    sign = np.array([1 if d == "max" else -1 for d in directions])
    front = []
    for i, p in enumerate(points):
        dominated = any(all(sign * q >= sign * p) and any(sign * q > sign * p)
                        for j, q in enumerate(points) if j != i)
        front.append(not dominated)
    return np.array(front)


@pytest.mark.parametrize("directions", [["max", "max"], ["max", "min"], ["min", "max", "min"]])
def test_pareto_matches_brute_force_with_ties_and_duplicates(directions):
    rng = np.random.default_rng(len(directions))
    for trial in range(50):
        points = rng.integers(0, 5, size=(rng.integers(1, 25), len(directions))).astype(float)  # many ties
        points = np.concatenate([points, points[:3]])                                         # duplicates
        np.testing.assert_array_equal(pareto_mask(points, directions), brute_force_front(points, directions))


def test_pareto_known_front_and_bad_input():
    points = [[0.9, 100], [0.9, 100], [0.8, 200], [0.7, 150], [0.95, 50], [float("nan"), 500]]
    assert pareto_mask(points, ["max", "max"]).tolist() == [True, True, True, False, True, False]
    assert pareto_mask(points, ["max", "min"]).tolist() == [False, False, False, False, True, False]
    with pytest.raises(ValueError, match="unknown directions \\['up'\\]; valid: \\['max', 'min'\\]"):
        pareto_mask(points, ["max", "up"])
    with pytest.raises(ValueError, match="must be \\(n, 3\\)"):
        pareto_mask(points, ["max", "max", "min"])


def test_rank_statistics_on_known_orders():
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]) == RankAgreement(kendall_tau=1.0, spearman_rho=1.0)
    assert rank_agreement([4, 3, 2, 1], [10, 20, 30, 40]) == RankAgreement(kendall_tau=-1.0, spearman_rho=-1.0)
    one_swap = rank_agreement([1, 3, 2, 4], [10, 20, 30, 40])        # 5 concordant, 1 discordant pair
    assert one_swap.kendall_tau == pytest.approx(4 / 6) and one_swap.spearman_rho == pytest.approx(0.8)
    assert math.isnan(rank_agreement([1, 1, 1], [1, 2, 3]).kendall_tau)


def test_intervals_p_values_and_noise_floor_by_hand():
    mean, (low, high) = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 / math.sqrt(3))
    assert permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)   # 2 of the 20 splits are as extreme
    assert permutation_p([1, 2, 3], [1, 2, 3]) == 1.0
    assert sign_flip_p([0.1, 0.2, 0.3]) == pytest.approx(2 / 8)      # only all-plus and all-minus reach 0.2
    assert sign_flip_p([1.0] * 6) == pytest.approx(2 / 64) and sign_flip_p([0.0, 0.0]) == 1.0
    floor = noise_floor({"a": np.array([0.0, 1.0]), "b": np.array([2.0, 4.0])})
    assert floor.pooled_std == pytest.approx(math.sqrt(1.25))
    assert floor.floor == pytest.approx(1.959964 * math.sqrt(1.25) * 1.0)
    seeds = {"a": np.array([0.9, 0.9]), "b": np.array([0.5, 0.5]), "c": np.array([0.1, 0.1])}
    boot = bootstrap_rank_agreement(seeds, {"a": 3, "b": 2, "c": 1})
    assert boot.kendall_tau == (1.0, 1.0) and boot.undefined == 0


def test_the_bootstraps_rank_agreements_are_scipys():
    """The vectorised tau-b and rho (the bootstrap's fast path) equal scipy's, row by row: ties on either side, a
    constant row (NaN), two designs."""
    rng = np.random.default_rng(0)
    rows = np.round(rng.random((300, 6)), 1)                       # rounded: many ties among the proxy's means
    rows[:3] = [[0.5] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]
    for paper in ([6, 5, 4, 3, 2, 1], [82.3, 81.9, 81.9, 81.0, 80.2, 80.2]):
        taus, rhos = rank_agreements(rows, paper)
        for row, tau, rho in zip(rows, taus, rhos):
            expected = rank_agreement(row, paper)
            assert tau == pytest.approx(expected.kendall_tau, abs=1e-12, nan_ok=True)
            assert rho == pytest.approx(expected.spearman_rho, abs=1e-12, nan_ok=True)
    taus, rhos = rank_agreements(np.array([[0.2, 0.1], [0.1, 0.2]]), [2, 1])
    assert list(taus) == [1.0, -1.0] and list(rhos) == [1.0, -1.0]
    for one_or_none in (np.zeros((5, 1)), np.zeros((5, 0))):          # one design, or none the paper has
        assert np.isnan(rank_agreements(one_or_none, [1.0] * one_or_none.shape[1])).all()
    empty = bootstrap_rank_agreement({"a": np.array([0.5, 0.6])}, {"b": 1.0})
    assert empty.undefined == empty.n_boot and math.isnan(empty.kendall_tau[0])


def test_reproduction_verdicts():
    seeds = {"best": np.array([0.60, 0.61, 0.62]), "second": np.array([0.90, 0.91, 0.92]),
             "third": np.array([0.30, 0.70, 0.50])}
    result = reproduction(seeds, {"best": 82.3, "second": 81.9, "third": 81.0, "absent": 80.0}, "table")
    verdicts = {(p.a, p.b): p.verdict for p in result.pairs}
    assert verdicts[("best", "second")] == "disagrees"
    assert verdicts[("best", "third")] == "inside the noise"
    assert result.missing == ("absent",) and result.proxy_rank.tolist() == [2.0, 1.0, 3.0]
    assert all(p.paired_n == 0 for p in result.pairs)            # plain arrays: no seeds to pair on
    by_seed = {"a": pd.Series([0.9, 0.5, 0.7], index=[0, 1, 2]),
               "b": pd.Series([0.8, 0.4, 0.6, 0.1], index=[0, 1, 2, 3])}                # seed 3: a has none
    pair, = reproduction(by_seed, {"a": 2.0, "b": 1.0}, "table").pairs
    assert (pair.paired_n, pair.paired_diff, pair.paired_p) == (3, pytest.approx(0.1), 0.25)
    assert seeds_to_resolve(0.1, 0.25) == math.ceil(2 * (1.959964 * 0.25 / 0.1) ** 2) == 49
    assert seeds_to_resolve(0.0, 0.25) == math.inf


DESIGNS = {  # label -> spec, best val acc per seed, img/s
    "last N/2 (default)": ("C|CCC|MMMMTTTT|MMTT", [0.90, 0.92, 0.91], 900.0),
    "last N/4": ("C|CCC|MMMMMMTT|MMMT", [0.80, 0.82, 0.81], 1000.0),
    "first N/2": ("C|CCC|TTTTMMMM|TTMM", [0.70, 0.50, 0.60], 950.0),
    "random": ("C|CCC|MTTMMTMT|TMTM", [0.60, 0.60, 0.60], 800.0),
}


def fixture_run(run_dir: Path) -> Path:
    for i, (label, (spec, accuracies, speed)) in enumerate(DESIGNS.items()):
        for seed, accuracy in enumerate(accuracies):
            stopped = label == "random" and seed == 2
            write_row(run_dir, ResultRow.from_dict({
                "run": "fixture", "trial_id": trial_key(spec, seed), "space": "placement", "spec": spec,
                "pattern": label, "knobs": "{}", "seed": seed, "dataset": "match", "image_size": 32,
                "epochs_done": 2 if stopped else 3, "status": "stopped_early" if stopped else "ok",
                "val_acc_best": accuracy, "val_acc_late": accuracy - 0.01, "params": 800_000 + 10_000 * i, "macs_total": 50e6 + 1e6 * i,
                "macs_scan": 2e5, "throughput_img_s": speed, "throughput_device": "cpu", "throughput_batch": 64,
                "history": [{"epoch": e + 1, "val_acc": accuracy * (e + 1) / 3} for e in range(2 if stopped else 3)]}))
    write_row(run_dir, ResultRow(run="fixture", trial_id="failed1", space="placement", spec="C|CCC|MMMMMMMM|MMMM",
                                 pattern="all Mamba", knobs="{}", seed=0, status="failed",
                                 error="diverged: loss is nan at epoch 1, step 3", history=[]))
    write_table(run_dir)
    return run_dir


def test_report_from_a_fixture_table(tmp_path):
    run_dir = fixture_run(tmp_path / "fixture")
    report = write_report(run_dir)
    out = report.parent
    for stem in ("pareto_throughput", "pareto_macs", "pareto_params", "spec_ribbons", "training_curves"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.svg").stat().st_size > 0
    text = report.read_text()
    assert "| last N/2 (default) | `C\\|CCC\\|MMMMTTTT\\|MMTT` | 3 | 0.900 ± 0.010 | [0.875, 0.925] |" in text
    assert "Kendall tau-b = 0.91" in text and "Spearman rho = 0.95" in text
    assert "diverged: loss is nan at epoch 1, step 3" in text
    assert "val acc (late mean) vs throughput: last N/2 (default), last N/4, first N/2" not in text
    assert "- val acc (late mean) vs throughput: last N/2 (default), last N/4\n" in text
    assert "\\toprule" in (out / "table.tex").read_text() and len(load_results(run_dir)) == 13
    assert (out / "results.csv").read_text().count("\n") == 14
    again = write_report(out, tmp_path / "again")          # a report's results.csv is a results table itself
    assert again.read_text().split("## Designs")[1] == text.split("## Designs")[1]


def test_report_says_how_decisive_the_run_is(tmp_path):
    import numpy as np
    text = write_report(fixture_run(tmp_path / "fixture")).read_text()
    table = np.array([accuracies for label, (_, accuracies, _) in DESIGNS.items()]) - 0.01   # designs x seeds
    grand, designs, seeds = table.mean(), table.mean(1), table.mean(0)
    ss_design = 3 * ((designs - grand) ** 2).sum()
    ss_resid = ((table - designs[:, None] - seeds[None, :] + grand) ** 2).sum()
    f = (ss_design / 3) / (ss_resid / 6)                            # worked by hand: 4 designs, 3 seeds
    section = text.split("## Decisiveness")[1]
    assert f"| val acc (late mean) (primary) | {f:.2f} (3, 6) |" in section
    assert "| val loss (late mean) |" not in section                # a metric the table does not have
    assert "| last N/2 (default) | random | +0.3100 |" in section   # resolved: 0.91 vs 0.60
    assert "| last N/2 (default) | last N/4 | 0.5" not in section
    assert "| last N/2 (default) | last N/4 | 1.00 |" in section     # P(A > B): the paper's pair, every seed


def test_pareto_figure_has_a_point_per_design_and_marks_the_front(tmp_path):
    summary = design_summary(load_results(fixture_run(tmp_path / "fixture")))
    assert len(summary) == 5 and summary["metric_mean"].isna().sum() == 1     # all Mamba: failed, not plotted
    figure = pareto_figure(summary, "throughput", reference=True)
    offsets = {c.get_gid(): len(c.get_offsets()) for c in figure.axes[0].collections if c.get_gid()}
    assert offsets == {"designs": 4, "front": 2, "tied": 0}
    assert any(line.get_gid() == "reference-MambaVision" for line in figure.axes[1].lines)


def test_report_cli_compares_a_placement_run_with_the_paper(tmp_path):
    """The command, in a process of its own, knows the spaces: the paper's table is in its report."""
    run_dir = fixture_run(tmp_path / "fixture")
    done = subprocess.run([sys.executable, "-m", "ablate.report", str(run_dir)], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## Proxy vs the paper: Table 5" in (run_dir / "report" / "report.md").read_text()


def test_a_run_whose_space_is_not_registered_says_so(tmp_path):
    """Without the space registered (no `import search_spaces`, as python -m ablate.report once lacked, c2da876) the
    report cannot know the paper's numbers: it says so, naming the space and the import, and warns, instead of
    leaving the paper comparison out without a word."""
    from ablate.space import SPACES
    registered = dict(SPACES)
    del SPACES["placement"]
    try:
        with pytest.warns(UserWarning, match="space `placement` is not registered"):
            text = write_report(fixture_run(tmp_path / "fixture")).read_text()
    finally:                                    # the registry as it was, in its order (error messages list it)
        SPACES.clear()
        SPACES.update(registered)
    section = text.split("## Proxy vs the paper")[1].split("\n## ")[0]
    assert "space `placement` is not registered" in section and "import search_spaces" in section


def test_report_cli_names_a_missing_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ablate.report", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "no results table in" in done.stderr and "results.parquet" in done.stderr
    with pytest.raises(ReportError, match="no results table"):
        write_report(tmp_path)


def ladder_run(run_dir: Path) -> Path:
    """Three designs x three seeds with budgets 0.5 and 1: `wide` beats `narrow` at both budgets, `twin` is
    `wide` within 0.001, and the seeds move every design together (a shared offset the blocks remove)."""
    late = {"wide": (0.70, 0.90), "twin": (0.701, 0.9005), "narrow": (0.60, 0.70)}
    specs = {"wide": "C|CCC|TTTTTTTT|TTTT", "twin": "C|CCC|MMMMTTTT|MMTT", "narrow": "C|CCC|MMMMMMMM|MMMM"}
    noise = {("wide", 0): 0.0005, ("twin", 1): -0.0005, ("narrow", 2): 0.0004}
    for label, (half, whole) in late.items():
        for seed in range(3):
            shift = 0.01 * seed + noise.get((label, seed), 0.0)
            budgets = [{"fraction": 0.5, "steps": 62, "val_acc_late": half + shift},
                       {"fraction": 1.0, "steps": 124, "val_acc_late": whole + shift}]
            write_row(run_dir, ResultRow.from_dict({
                "run": "ladder", "trial_id": trial_key(specs[label], seed), "space": "placement",
                "spec": specs[label], "pattern": label, "seed": seed, "dataset": "fractal", "image_size": 32,
                "epochs_done": 2, "status": "ok", "val_acc_late": whole + shift, "budgets": budgets,
                "history": [{"epoch": 1, "step": 62, "val_acc": half}, {"epoch": 2, "step": 124, "val_acc": whole}]}))
    write_table(run_dir)
    return run_dir


def test_report_leads_with_the_conclusions_and_writes_them_per_pair(tmp_path):
    run_dir = ladder_run(tmp_path / "ladder")
    report = write_report(run_dir, equivalence=0.01)
    text = report.read_text()
    assert text.index("## Conclusions") < text.index("## Designs")
    assert "**Of 3 design pairs on val acc (late mean): 2 better, 1 equivalent, 0 moving, 0 undecided**" in text
    pairs = pd.read_csv(report.parent / "conclusions.csv")
    assert list(pairs.columns[:6]) == ["a", "b", "verdict", "difference", "margin", "metric"]
    verdicts = {frozenset((r.a, r.b)): (r.verdict, r.a) for r in pairs.itertuples()}
    assert verdicts[frozenset(("wide", "narrow"))] == ("better", "wide")
    assert verdicts[frozenset(("twin", "narrow"))] == ("better", "twin")
    assert verdicts[frozenset(("wide", "twin"))][0] == "equivalent"
    assert set(pairs["margin"]) == {0.01} and set(pairs["metric"]) == {"val_acc_late"}
    assert (report.parent / "budgets.png").stat().st_size > 0
    reread = load_results(run_dir)                                   # the ladder survives the table's JSON
    assert [b["fraction"] for b in reread["budgets"].iloc[0]] == [0.5, 1.0]


def test_report_cli_takes_the_equivalence_margin(tmp_path, capsys):
    """The command's main() in this process (test_report_cli_compares_a_placement_run_with_the_paper runs it as a
    process of its own)."""
    from ablate.report.__main__ import main
    run_dir = ladder_run(tmp_path / "ladder")
    assert main([str(run_dir), "--equivalence", "0.0001"]) == 0
    pairs = pd.read_csv(run_dir / "report" / "conclusions.csv")
    assert set(pairs["margin"]) == {0.0001} and "equivalent" not in set(pairs["verdict"])
    with pytest.raises(SystemExit) as bad:
        main([str(run_dir), "--equivalence", "0"])
    assert bad.value.code == 2 and "the margin must be > 0" in capsys.readouterr().err
