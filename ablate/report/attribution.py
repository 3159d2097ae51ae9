"""Placement attribution: which letters at which positions of stages 3-4 move accuracy and throughput.

From a finished sweep's designs (one point per design: its mean over seeds; attribution_section.design_points):
- marginal effects: for each position (stage, block) and letter, the mean of the designs with that letter there
  minus the mean of those without, with a Welch t-interval (scipy);
- stage features: the slope of the metric on the attention count of stage 3 and on the position of its first
  attention block, with OLS intervals (statsmodels);
- parameter importance: Optuna's fANOVA over the positions (one categorical parameter per block).
Each statistic is tested on hand-made tables with known answers (tests/test_attribution.py); attribute() gathers
them for the report's section (attribution_section.py).
"""
import dataclasses
import math
from typing import Dict, List

import numpy as np
import pandas as pd
from scipy import stats

STAGES = (2, 3)                 # stages 3 and 4, where the paper places mixers and attention
ATTENTION = "T"
MIN_DESIGNS = 8                 # fewer designs than this: the report leaves the section out


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


@dataclasses.dataclass(frozen=True, eq=False)      # eq=False: data frames have no single truth value
class Attribution:
    """The design points, the marginal effects of each letter at each position on the metric and on img/s, the
    stage-3 feature slopes and the fANOVA importance of each position."""
    points: pd.DataFrame
    effects: pd.DataFrame
    speed: pd.DataFrame
    slopes: pd.DataFrame
    importance: Dict[str, float]


def attribute(points: pd.DataFrame) -> Attribution:
    """Every statistic of the section, from the design points (one row per design)."""
    return Attribution(points=points, effects=marginal_effects(points), speed=marginal_effects(points, "throughput"),
                       slopes=feature_slopes(points), importance=fanova_importance(points))
