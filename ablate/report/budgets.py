"""A metric at each budget of the trials' ladders (ablate/ladder.py): designs x seeds tables per budget, and the
conclusions over them (figures.budget_figure draws the tables)."""
from typing import Dict, Optional

import pandas as pd

from ..results import PRIMARY, TRAINED, Metric
from .conclusions import Conclusions, conclude
from .table import design_labels


def budget_tables(frame: pd.DataFrame, metric: Metric,
                  labels: Optional[pd.Series] = None) -> Dict[float, pd.DataFrame]:
    """budget fraction -> designs x seeds of ``metric`` at that budget, over the trials that finished it (rows:
    design labels, columns: seeds), raw values. A row without a ladder (a table written before it) counts as one
    budget, 1, with its own metric. ``labels``: each row's design label (default: a results table's labels)."""
    trained = frame[frame["status"].isin(TRAINED)]
    labels = (design_labels(frame) if labels is None else labels)[trained.index]
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
