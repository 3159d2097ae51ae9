"""The decisiveness statistics, each on a table with a known answer."""
import math

import numpy as np
import pandas as pd
import pytest

from ablate.report.decisive import (complete_blocks, decisiveness, design_anova, improvement_interval,
                                    probability_of_improvement, tukey_pairs)


def _table(rows):
    return pd.DataFrame(rows, index=list("ABCDEFGHIJ"[:len(rows)]), dtype=float)


def test_two_way_anova_on_a_table_worked_by_hand():
    # grand mean 3; design means 2, 4, 3 -> SS design 2 * (1 + 1 + 0) = 4; seed means 2, 4 -> SS seed 3 * 2 = 6;
    # SS total 14 -> SS residual 4 on 2 df: MS design 2, MSE 2, F(2, 2) = 1, p = 1 / (1 + F) = 0.5.
    result = design_anova(_table([[1, 3], [2, 6], [3, 3]]))
    assert result.F == pytest.approx(1.0) and result.p == pytest.approx(0.5)
    assert result.share == pytest.approx(4 / 14) and result.mse == pytest.approx(2.0)
    assert (result.df_design, result.df_resid) == (2, 2)


def test_seed_blocks_take_out_what_every_design_of_a_seed_shares():
    rng = np.random.default_rng(0)
    table = _table(rng.normal(size=(5, 4)) + np.arange(5)[:, None])
    shifted = table + np.array([0.0, 10.0, -7.0, 3.0])            # a seed that is easier for every design
    plain, blocked = design_anova(table), design_anova(shifted)
    assert blocked.F == pytest.approx(plain.F) and blocked.p == pytest.approx(plain.p)
    assert blocked.share < plain.share                      # the seeds now explain much of the total
    assert [p.p for p in tukey_pairs(shifted, blocked.mse, blocked.df_resid)] == pytest.approx(
        [p.p for p in tukey_pairs(table, plain.mse, plain.df_resid)])


def test_tukey_matches_statsmodels_on_a_one_way_layout():
    from statsmodels.stats.multicomp import pairwise_tukeyhsd
    rng = np.random.default_rng(1)
    table = _table(rng.normal(size=(4, 6)) + np.array([0.0, 0.3, 1.0, 2.5])[:, None])
    values = table.to_numpy().ravel()
    groups = np.repeat(table.index.to_numpy(), table.shape[1])
    mse = sum(((row - row.mean()) ** 2).sum() for row in table.to_numpy()) / (table.size - len(table))
    ours = tukey_pairs(table, mse, table.size - len(table))
    theirs = pairwise_tukeyhsd(values, groups)
    assert [p.p for p in ours] == pytest.approx(list(theirs.pvalues), abs=1e-3)
    assert [p.resolved for p in ours] == list(theirs.reject)
    assert [-p.diff for p in ours] == pytest.approx(list(theirs.meandiffs))


def test_probability_of_improvement_counts_wins_over_all_pairs_of_runs():
    assert probability_of_improvement([1, 2, 3], [0, 0, 0]) == 1.0
    assert probability_of_improvement([1, 2, 3], [1, 2, 3]) == 0.5
    assert probability_of_improvement([1, 3], [2, 2]) == 0.5
    assert probability_of_improvement([3, 1, 2], [2, 2, 2]) == pytest.approx((1 + 0 + 0.5) / 3)
    assert improvement_interval([5, 6, 7], [1, 2, 3]) == (1.0, 1.0)
    low, high = improvement_interval([1, 3, 2, 4], [2, 2, 3, 1])
    assert 0.0 <= low < probability_of_improvement([1, 3, 2, 4], [2, 2, 3, 1]) < high <= 1.0


def test_incomplete_seeds_are_left_out_and_named_pairs_are_reported():
    table = _table([[1.0, 2.0, 3.0, 0.0], [5.0, 6.1, 7.2, math.nan], [1.1, 2.2, 2.9, 0.5]])
    assert list(complete_blocks(table).columns) == [0, 1, 2]
    result = decisiveness(table, named_pairs=[("B", "A"), ("A", "C"), ("A", "Z")])
    assert result.anova.seeds == 3 and result.anova.p < 0.01
    assert [(n.a, n.b) for n in result.named] == [("B", "A"), ("A", "C")]     # Z is not in the table
    b_over_a = result.named[0]
    assert b_over_a.p_improvement == 1.0 and b_over_a.resolved and b_over_a.diff > 0
    assert not result.named[1].resolved
    assert result.resolved == 2                                 # B above A and above C; A and C level


def test_one_seed_has_no_residual_to_test_against():
    result = decisiveness(_table([[1.0], [2.0]]))
    assert math.isnan(result.anova.p) and result.pairs == () and result.resolved == 0


def test_metrics_say_which_way_is_better():
    from ablate.results import METRICS, PRIMARY, PRIMARY_METRIC
    loss, accuracy = METRICS["val_loss_late"], METRICS["val_acc_late"]
    assert (loss.direction, accuracy.direction) == ("min", "max")
    assert list(loss.oriented(np.array([0.9, 1.2]))) == [-0.9, -1.2]          # lower loss ranks higher
    assert loss.bounds == (0.0, math.inf) and accuracy.bounds == (0.0, 1.0)
    assert PRIMARY is METRICS[PRIMARY_METRIC]
