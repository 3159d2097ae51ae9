"""Placement attribution: which letters at which positions of stages 3-4 move accuracy and throughput.

From a finished sweep's designs (one point per design: its mean over seeds):
- marginal effects: for each position (stage, block) and letter, the mean of the designs with that letter there
  minus the mean of those without, with a Welch t-interval (scipy);
- stage features: the slope of the metric on the attention count of stage 3 and on the position of its first
  attention block, with OLS intervals (statsmodels);
- parameter importance: Optuna's fANOVA over the positions (one categorical parameter per block).
Each statistic is tested on hand-made tables with known answers (tests/test_attribution.py).
"""
import math
from typing import Dict, List

import numpy as np
import pandas as pd
from scipy import stats

from ..results import PRIMARY
from ..spec import parse_spec
from .figures import plt, save
from .table import design_summary

STAGES = (2, 3)                 # stages 3 and 4, where the paper places mixers and attention
ATTENTION = "T"
MIN_DESIGNS = 8                 # fewer designs than this: the report leaves the section out


def design_points(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trained design: label, spec, the primary metric and img/s (its means over seeds, as the design
    table has them), and one column per position of stages 3-4 (s3_0 ... s4_3) holding the letter there."""
    summary = design_summary(frame)
    rows = []
    for row in summary[summary["metric_mean"].notna()].itertuples():
        stages = parse_spec(row.spec).stages
        letters = {f"s{s + 1}_{i}": letter for s in STAGES if s < len(stages) for i, letter in enumerate(stages[s])}
        rows.append({"design": row.design, "spec": row.spec, "metric": row.metric_mean, "throughput": row.throughput,
                     **letters})
    return pd.DataFrame(rows)


def positions(points: pd.DataFrame) -> List[str]:
    return [c for c in points.columns if c[:1] == "s" and "_" in c and c[1:].split("_")[0].isdigit()]


def where(position: str) -> str:
    """s3_5 -> 'stage 3, block 6'."""
    stage, block = position[1:].split("_")
    return f"stage {stage}, block {int(block) + 1}"


def welch_effect(with_: np.ndarray, without: np.ndarray, level: float = 0.95):
    """Difference of means (with - without) and its Welch t-interval; nan interval when a side has one value or
    neither side varies."""
    effect = float(np.mean(with_) - np.mean(without))
    if len(with_) < 2 or len(without) < 2:
        return effect, (math.nan, math.nan)
    if np.ptp(with_) == 0 and np.ptp(without) == 0:
        return effect, (effect, effect)
    interval = stats.ttest_ind(with_, without, equal_var=False).confidence_interval(level)
    return effect, (float(interval.low), float(interval.high))


def marginal_effects(points: pd.DataFrame, column: str = "metric") -> pd.DataFrame:
    """Per position and letter: designs with it, the effect on ``column`` and its interval."""
    rows = []
    for position in positions(points):
        for letter in sorted(points[position].dropna().unique()):
            has = points[position] == letter
            if has.all():
                continue
            effect, (low, high) = welch_effect(points.loc[has, column].to_numpy(float),
                                               points.loc[~has, column].to_numpy(float))
            rows.append({"position": position, "letter": letter, "n": int(has.sum()), "effect": effect,
                         "low": low, "high": high})
    return pd.DataFrame(rows, columns=["position", "letter", "n", "effect", "low", "high"])


def stage_features(points: pd.DataFrame) -> pd.DataFrame:
    """Stage-3 features of each design: its attention count, and the position of its first attention block
    (NaN without one)."""
    stage3 = [c for c in positions(points) if c.startswith("s3_")]
    letters = points[stage3].to_numpy()
    count = (letters == ATTENTION).sum(1)
    first = [float(np.argmax(row == ATTENTION)) if (row == ATTENTION).any() else math.nan for row in letters]
    return pd.DataFrame({"attention_in_stage3": count, "first_attention_in_stage3": first}, index=points.index)


def feature_slopes(points: pd.DataFrame, column: str = "metric", level: float = 0.95) -> pd.DataFrame:
    """OLS slope of ``column`` on each stage feature (designs with the feature defined), with its interval."""
    import statsmodels.api as sm
    features = stage_features(points)
    rows = []
    for name in features.columns:
        keep = features[name].notna()
        x, y = features.loc[keep, name].to_numpy(float), points.loc[keep, column].to_numpy(float)
        if keep.sum() < 3 or np.ptp(x) == 0:
            rows.append({"feature": name, "designs": int(keep.sum()), "slope": math.nan, "low": math.nan,
                         "high": math.nan})
            continue
        fit = sm.OLS(y, sm.add_constant(x)).fit()
        low, high = fit.conf_int(1 - level)[1]
        rows.append({"feature": name, "designs": int(keep.sum()), "slope": float(fit.params[1]), "low": float(low),
                     "high": float(high)})
    return pd.DataFrame(rows)


def fanova_importance(points: pd.DataFrame, column: str = "metric", seed: int = 0) -> Dict[str, float]:
    """Optuna's fANOVA importance of each position, from the designs as completed trials of a study."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    varying = [p for p in positions(points) if points[p].nunique() > 1]
    if not varying or len(points) < 2:
        return {}
    distributions = {p: CategoricalDistribution(sorted(points[p].unique())) for p in varying}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for _, row in points.iterrows():
        study.add_trial(optuna.trial.create_trial(params={p: row[p] for p in varying}, distributions=distributions,
                                                  value=float(row[column])))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def heatmap(effects: pd.DataFrame, speed: pd.DataFrame, letter: str = ATTENTION):
    """Stages x positions: the effect of ``letter`` at each block on the metric (colour) and img/s (text)."""
    chosen = effects[effects["letter"] == letter].set_index("position")
    fast = speed[speed["letter"] == letter].set_index("position")
    stages = sorted({p.split("_")[0] for p in effects["position"]})
    width = max(int(p.split("_")[1]) for p in effects["position"]) + 1
    grid = np.full((len(stages), width), np.nan)
    figure, ax = plt.subplots(figsize=(1.1 * width + 2, 1.0 * len(stages) + 1.5))
    for r, stage in enumerate(stages):
        for c in range(width):
            position = f"{stage}_{c}"
            if position in chosen.index:
                grid[r, c] = chosen.loc[position, "effect"]
                text = f"{grid[r, c]:+.3f}"
                if position in fast.index:
                    text += f"\n{fast.loc[position, 'effect']:+.0f} img/s"
                ax.text(c, r, text, ha="center", va="center", fontsize=7)
    bound = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound)
    ax.set_xticks(range(width), [f"block {c + 1}" for c in range(width)], fontsize=7)
    ax.set_yticks(range(len(stages)), [f"stage {s[1:]}" for s in stages])
    ax.set_title(f"'{letter}' at each block: effect on {PRIMARY.label} (colour, text) and img/s")
    figure.colorbar(image, ax=ax, fraction=0.03)
    return figure


def attribution_markdown(frame: pd.DataFrame, out) -> str:
    """The section, or "" when the run has fewer than MIN_DESIGNS trained designs."""
    points = design_points(frame)
    if len(points) < MIN_DESIGNS or not positions(points):
        return ""
    effects, speed = marginal_effects(points), marginal_effects(points, "throughput")
    if (effects["letter"] == ATTENTION).any():
        save(heatmap(effects, speed), out / "attribution_heatmap")
    merged = effects.merge(speed, on=["position", "letter", "n"], suffixes=("", "_speed"))
    rows = [f"| {where(r.position)} | {r.letter} | {r.n} | "
            f"{r.effect:+.3f} [{r.low:+.3f}, {r.high:+.3f}] | {r.effect_speed:+.0f} [{r.low_speed:+.0f}, "
            f"{r.high_speed:+.0f}] |" for r in merged.sort_values("effect", ascending=False).itertuples()]
    slopes = feature_slopes(points)
    slope_lines = [f"- {r.feature.replace('_', ' ')}: {r.slope:+.4f} per block [{r.low:+.4f}, {r.high:+.4f}] "
                   f"({r.designs} designs)" for r in slopes.itertuples()]
    importance = fanova_importance(points)
    ranked = ", ".join(f"{p} {v:.2f}" for p, v in sorted(importance.items(), key=lambda kv: -kv[1])[:6])
    return "\n".join([
        "## Placement attribution", "",
        f"{len(points)} designs, one point each (the mean over its seeds). Effect of a letter at a block = mean of "
        f"the designs with it there minus the mean of those without, with a 95% Welch t-interval; img/s likewise "
        f"(this machine). Blocks count from 1; positions with one letter in every design are left out.", "",
        f"| position | letter | designs with it | {PRIMARY.label} effect [95%] | img/s effect [95%] |",
        "|---|---|---|---|---|", *rows, "",
        "Stage-3 features (OLS slope of the metric per unit, 95% interval):", "", *slope_lines, "",
        f"Optuna fANOVA importance of the positions (largest first, sum 1): {ranked or 'none vary'}.", "",
        "![attention at each block](attribution_heatmap.png)" if (effects["letter"] == ATTENTION).any() else "",
        ""])
