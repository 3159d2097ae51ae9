"""The report's "Placement attribution" section (runs of MIN_DESIGNS designs or more): attribution_of gathers the
design points from the results table and computes the statistics (attribution.py), attribution_markdown writes the
table, the slopes and the importance, and draws the heat-map."""
from typing import Optional

import numpy as np
import pandas as pd

from ..results import PRIMARY
from ..spec import parse_spec
from .attribution import ATTENTION, MIN_DESIGNS, STAGES, Attribution, attribute, positions, where
from .figures import plt, save
from .table import design_summary


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


def attribution_of(frame: pd.DataFrame) -> Optional[Attribution]:
    """The section's statistics; None when the run has fewer than MIN_DESIGNS trained designs (too few points for
    an effect per position) or none with a stage 3-4 position."""
    points = design_points(frame)
    if len(points) < MIN_DESIGNS or not positions(points):
        return None
    return attribute(points)


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


def attribution_markdown(result: Optional[Attribution], out) -> str:
    """The section, with its heat-map saved into ``out`` (when some design has attention in stages 3-4); "" for no
    result (attribution_of: too few designs)."""
    if result is None:
        return ""
    effects, speed = result.effects, result.speed
    attention = (effects["letter"] == ATTENTION).any()
    if attention:
        save(heatmap(effects, speed), out / "attribution_heatmap")
    merged = effects.merge(speed, on=["position", "letter", "n"], suffixes=("", "_speed"))
    rows = [f"| {where(r.position)} | {r.letter} | {r.n} | "
            f"{r.effect:+.3f} [{r.low:+.3f}, {r.high:+.3f}] | {r.effect_speed:+.0f} [{r.low_speed:+.0f}, "
            f"{r.high_speed:+.0f}] |" for r in merged.sort_values("effect", ascending=False).itertuples()]
    slope_lines = [f"- {r.feature.replace('_', ' ')}: {r.slope:+.4f} per block [{r.low:+.4f}, {r.high:+.4f}] "
                   f"({r.designs} designs)" for r in result.slopes.itertuples()]
    ranked = ", ".join(f"{p} {v:.2f}" for p, v in sorted(result.importance.items(), key=lambda kv: -kv[1])[:6])
    return "\n".join([
        "## Placement attribution", "",
        f"{len(result.points)} designs, one point each (the mean over its seeds). Effect of a letter at a block = mean "
        f"of the designs with it there minus the mean of those without, with a 95% Welch t-interval; img/s likewise "
        f"(this machine). Blocks count from 1; positions with one letter in every design are left out.", "",
        f"| position | letter | designs with it | {PRIMARY.label} effect [95%] | img/s effect [95%] |",
        "|---|---|---|---|---|", *rows, "",
        "Stage-3 features (OLS slope of the metric per unit, 95% interval):", "", *slope_lines, "",
        f"Optuna fANOVA importance of the positions (largest first, sum 1): {ranked or 'none vary'}.", "",
        "![attention at each block](attribution_heatmap.png)" if attention else "",
        ""])
