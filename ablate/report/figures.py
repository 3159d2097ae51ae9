"""Figures of a report: Pareto fronts, spec ribbons, training curves, the metric by budget. Each function returns the
Figure (tests count its points) and save() writes it as PNG and SVG."""
import math
from pathlib import Path
from typing import Dict

import matplotlib

matplotlib.use("Agg")          # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..results import FAILED, PRIMARY, STOPPED_EARLY, Metric  # noqa: E402
from .pareto import OBJECTIVES, front_of  # noqa: E402
from .reference import PUBLISHED  # noqa: E402
from .stats import t_interval  # noqa: E402

SEED_COLOURS = plt.get_cmap("tab10").colors


def save(figure, stem: Path) -> list:
    paths = [Path(f"{stem}.png"), Path(f"{stem}.svg")]
    for path in paths:
        figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)
    return paths


def pareto_figure(summary, objective: str, reference: bool = False):
    """Mean primary metric against one cost, each with its interval as an error bar (the metric's 95% t-interval over
    seeds; the cost's where it is measured, as throughput is); the front drawn and its points filled, the designs
    tied with it (intervals overlapping on both axes) drawn as half-filled.

    reference=True adds the published ImageNet numbers in a panel of their own, never on the proxy's axes.
    """
    cost = OBJECTIVES[objective]
    points = front_of(summary, cost)
    data, on_front, tied = points.data, points.on_front, points.tied
    x, y = data[cost.column].to_numpy(float) / cost.unit, data["metric_mean"].to_numpy(float)
    panels = 2 if reference else 1
    figure, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 5.2), squeeze=False)
    ax = axes[0, 0]
    xerr = _error_bar(data, cost.interval, x, cost.unit) if cost.interval else None
    yerr = _error_bar(data, ("metric_low", "metric_high"), y, 1.0)
    ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="none", ecolor="0.6", capsize=3, zorder=1)
    ax.scatter(x, y, s=36, facecolors="white", edgecolors="0.35", zorder=2, gid="designs")
    ax.scatter(x[tied], y[tied], s=60, facecolors="white", edgecolors="tab:red", linewidths=1.5, zorder=3, gid="tied",
               label="tied with the front (intervals overlap)")
    ax.scatter(x[on_front], y[on_front], s=60, color="tab:red", zorder=3, gid="front", label="Pareto front")
    order = np.argsort(x[on_front])
    ax.plot(x[on_front][order], y[on_front][order], color="tab:red", lw=1.2, zorder=2)
    label_points(ax, x, y, list(data["design"]))
    ax.set_xlabel(cost.axis_label + (" (higher is better)" if cost.direction == "max" else " (lower is better)"))
    better = "higher" if PRIMARY.higher_is_better else "lower"
    ax.set_ylabel(f"{PRIMARY.label} (mean over seeds, 95% t-interval; {better} is better)")
    ax.set_title(f"proxy: {PRIMARY.label} vs {objective}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if reference:
        reference_panel(axes[0, 1], "params" if objective == "params" else "throughput")
    figure.tight_layout()
    return figure


def _error_bar(data, columns, values, unit: float):
    """[below, above] for errorbar from the interval's columns; none where a design has no interval."""
    low, high = (data[c].to_numpy(float) / unit for c in columns)
    return [np.nan_to_num(values - low), np.nan_to_num(high - values)]


def label_points(ax, x, y, names):
    """Name each point; labels of points that nearly coincide are stacked instead of drawn over each other."""
    if not len(x):
        return
    u = (x - x.min()) / (np.ptp(x) or 1.0)                     # positions in units of the axis range
    v = (y - y.min()) / (np.ptp(y) or 1.0)
    placed = []
    for i in np.argsort(-v, kind="stable"):
        crowd = sum(1 for j in placed if abs(u[i] - u[j]) < 0.12 and abs(v[i] - v[j]) < 0.06)
        ax.annotate(names[i], (x[i], y[i]), textcoords="offset points", xytext=(5, 4 - 9 * crowd), fontsize=7)
        placed.append(i)


def reference_panel(ax, objective: str) -> None:
    """The paper's ImageNet-1K top-1 against A100 img/s (or params), one colour per family."""
    families = sorted({p["family"] for p in PUBLISHED})
    colours = dict(zip(families, plt.get_cmap("tab10").colors))
    for family in families:
        points = [p for p in PUBLISHED if p["family"] == family]
        ax.plot([p[objective] for p in points], [p["top1"] for p in points], "o-", color=colours[family],
                label=family, ms=5, lw=1 if family == "MambaVision" else 0.6, gid=f"reference-{family}")
        for p in points:
            ax.annotate(p["name"], (p[objective], p["top1"]), xytext=(3, 3), textcoords="offset points",
                        fontsize=6)
    ax.set_xlabel("A100 throughput (img/s, batch 128)" if objective == "throughput" else "parameters (M)")
    if objective == "params":
        ax.set_xscale("log")            # 6M to 242M: on a linear axis the small models pile up
    ax.set_ylabel("ImageNet-1K top-1 (%)")
    ax.set_title("published reference (ImageNet-1K, not the proxy)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if objective == "params" else "lower left")


def spec_ribbons(summary, colours: dict, labels: dict):
    """One row per design, one coloured cell per block, a gap between stages."""
    specs = list(summary["spec"])
    width = max(sum(len(s) for s in spec.split("|")) + spec.count("|") for spec in specs)
    figure, ax = plt.subplots(figsize=(max(6.0, 0.28 * width + 3), 0.42 * len(specs) + 0.9))
    used = set()
    for row, spec in enumerate(specs):
        column = 0
        for stage in spec.split("|"):
            for letter in stage:
                ax.add_patch(Rectangle((column, -row - 0.4), 0.92, 0.8, color=colours[letter], gid="cell"))
                used.add(letter)
                column += 1
            column += 0.6
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(specs) + 0.4, 0.6)
    ax.set_yticks([-i for i in range(len(specs))], list(summary["design"]), fontsize=8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=[Patch(color=colours[l], label=f"{l}: {labels[l]}") for l in sorted(used)],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("blocks per stage (stem not shown)", fontsize=9)
    figure.tight_layout()
    return figure


def training_curves(frame, labels, designs):
    """Validation accuracy by epoch, one panel per design (in the given order), one line per seed; x marks an
    early stop."""
    columns = min(3, len(designs))
    rows = math.ceil(len(designs) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False,
                                sharey=True)
    for ax, design in zip(axes.flat, designs):
        group = frame[labels == design]
        for _, trial in group.sort_values("seed").iterrows():
            epochs = [h["epoch"] for h in trial["history"]]
            accuracy = [h["val_acc"] for h in trial["history"]]
            colour = SEED_COLOURS[int(trial["seed"]) % len(SEED_COLOURS)]      # a seed looks the same everywhere
            ax.plot(epochs, accuracy, "o-", ms=3, lw=1, color=colour, label=f"seed {trial['seed']}")
            if trial["status"] == STOPPED_EARLY and epochs:
                ax.plot(epochs[-1], accuracy[-1], "x", ms=9, mew=2, color=colour, gid="stopped")
        failed = int((group["status"] == FAILED).sum())
        ax.set_title(design + (f" ({failed} failed)" if failed else ""), fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(designs):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("val acc")
    axes[0, 0].legend(fontsize=6)
    figure.tight_layout()
    return figure


def budget_figure(tables: Dict[float, pd.DataFrame], metric: Metric, order=None):
    """Each design's mean ``metric`` against the budget, one line per design, with its 95% t-interval over seeds
    as error bars; designs in ``order`` (default: the best at the largest budget first). ``tables``: budget ->
    designs x seeds (budgets.budget_tables)."""
    budgets = sorted(tables)
    if order is None:
        last = metric.oriented(tables[budgets[-1]].mean(axis=1))
        order = list(last.sort_values(ascending=False).index)
    figure, ax = plt.subplots(figsize=(7.5, 5.2))
    colours = plt.get_cmap("tab10").colors
    for i, design in enumerate(order):
        means, lows, highs = [], [], []
        for budget in budgets:
            values = tables[budget].loc[design].dropna() if design in tables[budget].index else pd.Series(dtype=float)
            mean, (low, high) = t_interval(values) if len(values) else (np.nan, (np.nan, np.nan))
            means.append(mean)
            lows.append(mean - low if np.isfinite(low) else 0.0)
            highs.append(high - mean if np.isfinite(high) else 0.0)
        offset = (i - len(order) / 2) * 0.004            # side by side, so the intervals do not hide each other
        ax.errorbar(np.array(budgets) + offset, means, yerr=[lows, highs], marker="o", capsize=3, lw=1.3,
                    color=colours[i % len(colours)], linestyle="-" if i < len(colours) else "--", label=design,
                    gid=f"design:{design}")
    ax.set_xticks(budgets)
    ax.set_xlabel("budget (fraction of the trial's steps; each a model cooled down to a learning rate of zero)")
    better = "higher" if metric.higher_is_better else "lower"
    ax.set_ylabel(f"{metric.label} (mean over seeds, 95% t-interval; {better} is better)")
    ax.set_title(f"{metric.label} by budget")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return figure
