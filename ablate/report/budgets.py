"""A metric at each budget of the trials' ladders (ablate/ladder.py): designs x seeds tables per budget, and the
figure of each design's metric against the budget."""
from typing import Dict, Optional

import numpy as np
import pandas as pd

from ..results import PRIMARY, TRAINED, Metric
from .conclusions import Conclusions, conclude
from .figures import plt
from .stats import t_interval
from .table import design_labels


def budget_tables(frame: pd.DataFrame, metric: Metric) -> Dict[float, pd.DataFrame]:
    """budget fraction -> designs x seeds of ``metric`` at that budget, over the trials that finished it (rows:
    design labels, columns: seeds), raw values. A row without a ladder (a table written before it) counts as one
    budget, 1, with its own metric."""
    trained = frame[frame["status"].isin(TRAINED)]
    labels = design_labels(frame)[trained.index]
    cells = []
    for index, row in trained.iterrows():
        ladder = row["budgets"] or [{"fraction": 1.0, metric.column: row[metric.column]}]
        cells += [(float(b["fraction"]), labels[index], row["seed"], b.get(metric.column)) for b in ladder]
    long = pd.DataFrame(cells, columns=["budget", "design", "seed", "value"]).dropna(subset=["value"])
    return {budget: part.pivot_table(index="design", columns="seed", values="value", aggfunc="first")
            for budget, part in long.groupby("budget")}


def conclusions_of(frame: pd.DataFrame, margin: float) -> Optional[Conclusions]:
    """The pairwise conclusions on the primary metric over the ladder's budgets; None with fewer than two designs
    or no complete seed (nothing to conclude)."""
    tables = {budget: PRIMARY.oriented(table) for budget, table in budget_tables(frame, PRIMARY).items()}
    try:
        return conclude(tables, margin)
    except ValueError:
        return None


def budget_figure(tables: Dict[float, pd.DataFrame], metric: Metric, order=None):
    """Each design's mean ``metric`` against the budget, one line per design, with its 95% t-interval over seeds
    as error bars; designs in ``order`` (default: the best at the largest budget first)."""
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
