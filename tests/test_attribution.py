"""Placement attribution on hand-made tables whose effects are known by construction."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from ablate.report.attribution import (fanova_importance, feature_slopes, marginal_effects, stage_features,
                                       welch_effect, where)
from ablate.report.attribution_section import attribution_markdown, attribution_of, design_points
from ablate.results import PRIMARY


def table(specs, metric, throughput=lambda spec: 500.0, seeds=(0,)):
    """A results table with the columns a sweep writes that the design table reads."""
    rows = [{"pattern": "search", "spec": spec, "knobs": "{}", "seed": seed, "status": "ok", "epochs_done": 2,
             "params": 1000, "macs_total": 1e6, "macs_scan": 0.0, PRIMARY.column: metric(spec),
             "throughput_img_s": throughput(spec)} for spec in specs for seed in seeds]
    return pd.DataFrame(rows)


def specs_over(stage3_letters, blocks=4):
    return [f"C|CC|{''.join(letters)}|MM" for letters in itertools.product(stage3_letters, repeat=blocks)]


def test_a_letter_at_one_block_has_exactly_its_effect():
    """metric = 0.5 + 0.1 * [T at stage 3, block 2]: all 16 designs over {M, T}^4, so the effect there is 0.1 with
    no spread, and every other position's effect is 0."""
    specs = specs_over("MT")
    frame = table(specs, lambda spec: 0.5 + 0.1 * (spec.split("|")[2][1] == "T"),
                  throughput=lambda spec: 600.0 - 50 * spec.split("|")[2].count("T"))
    points = design_points(frame)
    assert len(points) == 16 and set(points.columns) >= {"s3_0", "s3_3", "s4_1"}
    effects = marginal_effects(points).set_index(["position", "letter"])
    assert effects.loc[("s3_1", "T"), "effect"] == pytest.approx(0.1)
    assert effects.loc[("s3_1", "T"), ["low", "high"]].tolist() == pytest.approx([0.1, 0.1])
    assert effects.loc[("s3_1", "M"), "effect"] == pytest.approx(-0.1)
    assert effects.loc[("s3_0", "T"), "effect"] == pytest.approx(0.0)
    assert ("s4_0", "M") not in effects.index                                # one letter everywhere: no effect
    speed = marginal_effects(points, "throughput").set_index(["position", "letter"])
    assert speed.loc[("s3_2", "T"), "effect"] == pytest.approx(-50.0)        # each T costs 50 img/s, wherever


def test_welch_interval_matches_scipy_and_handles_degenerate_sides():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.5, 1.0])
    effect, (low, high) = welch_effect(a, b)
    se = math.sqrt(a.var(ddof=1) / 4 + b.var(ddof=1) / 3)
    df = se ** 4 / ((a.var(ddof=1) / 4) ** 2 / 3 + (b.var(ddof=1) / 3) ** 2 / 2)   # Welch-Satterthwaite
    from scipy import stats
    half = stats.t.ppf(0.975, df) * se
    assert effect == pytest.approx(2.0) and (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert all(math.isnan(v) for v in welch_effect(np.array([1.0]), b)[1])


def test_stage_features_and_their_slopes():
    specs = specs_over("MT")
    frame = table(specs, lambda spec: 0.4 + 0.02 * spec.split("|")[2].count("T"))
    points = design_points(frame)
    features = stage_features(points).set_index(points["spec"])
    assert features.loc["C|CC|MMTM|MM"].tolist() == [1, 2.0]
    assert math.isnan(features.loc["C|CC|MMMM|MM", "first_attention_in_stage3"])
    slopes = feature_slopes(points).set_index("feature")
    assert slopes.loc["attention_in_stage3", "slope"] == pytest.approx(0.02)
    assert slopes.loc["attention_in_stage3", "designs"] == 16


def test_fanova_finds_the_only_position_that_matters():
    specs = specs_over("MTG", blocks=3)
    frame = table(specs, lambda spec: {"M": 0.3, "T": 0.6, "G": 0.45}[spec.split("|")[2][2]])
    importance = fanova_importance(design_points(frame))
    assert max(importance, key=importance.get) == "s3_2" and importance["s3_2"] > 0.9
    assert sum(importance.values()) == pytest.approx(1.0)


def test_the_section_and_its_heatmap(tmp_path):
    specs = specs_over("MT")
    frame = table(specs, lambda spec: 0.5 + 0.1 * (spec.split("|")[2][1] == "T"), seeds=(0, 1))
    text = attribution_markdown(attribution_of(frame), tmp_path)
    assert "## Placement attribution" in text and "16 designs" in text
    assert "| stage 3, block 2 | T | 8 | +0.100 [+0.100, +0.100] |" in text
    assert (tmp_path / "attribution_heatmap.png").is_file()
    assert attribution_of(frame[frame["spec"].isin(specs[:5])]) is None                   # too few designs
    assert attribution_markdown(None, tmp_path) == ""
    assert where("s4_3") == "stage 4, block 4"
