"""The conclusions per pair of designs (better, equivalent, moving, undecided), each on a table with a known answer."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ablate.report.conclusions import (VERDICTS, BudgetComparison, PairConclusion, conclude, conclusions,
                                       equivalence_groups, seeds_needed, tost_p)
from ablate.report.conclusions_section import conclusions_frame, conclusions_markdown
from ablate.report.decisive import design_anova
from ablate.results import METRICS

ACCURACY, LOSS = METRICS["val_acc_late"], METRICS["val_loss_late"]
SEEDS = np.array([0.0, 0.01, -0.01, 0.005])            # what every design of a seed shares (an easier seed)
# Row noise that sums to zero over the four seeds, so a design's mean is exactly what the table says.
N1, N2, N3 = (np.array(p) * 0.001 for p in ([1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]))


def _table(rows, seeds=SEEDS):
    """designs x seeds from {design: per-seed values}, plus the seeds' shared effect."""
    return pd.DataFrame({name: np.asarray(values, float) + seeds[:len(values)] for name, values in rows.items()}).T


def _pair(result, a, b):
    return next(p for p in result if {p.a, p.b} == {a, b})


def _direct_seeds(diff, mse, designs, margin, pairs, alpha=0.05):
    """seeds_needed by its definition, one n at a time with scipy's quantiles."""
    for n in range(2, 1001):
        df = (designs - 1) * (n - 1)
        if abs(diff) + stats.t.ppf(1 - alpha / pairs, df) * math.sqrt(2 * mse / n) < margin:
            return n
        if diff and abs(diff) / math.sqrt(mse / n) > stats.studentized_range.ppf(1 - alpha, designs, df):
            return n
    return None


def test_a_clear_win_is_better_with_the_winner_first():
    # B is the first row; A is 0.04 above it at half the steps and 0.05 above at the end, noise 0.001.
    tables = {0.5: _table({"B": 0.70 + N1, "A": 0.74 + N2}), 1.0: _table({"B": 0.80 + N1, "A": 0.85 + N2})}
    [pair] = conclusions(tables, margin=0.02)
    assert (pair.a, pair.b, pair.verdict) == ("A", "B", "better")
    assert pair.difference == pytest.approx(0.05) and pair.seeds_needed is None
    assert [c.budget for c in pair.budgets] == [0.5, 1.0]
    assert [c.diff for c in pair.budgets] == pytest.approx([0.04, 0.05])
    assert all(c.resolved and c.tukey_p < 0.05 for c in pair.budgets)


def test_a_tie_inside_the_margin_is_equivalent():
    # A and B differ by 0.001 with noise 0.001: unresolved at both budgets, and well inside a margin of 0.02.
    tables = {b: _table({"A": 0.801 + N1, "B": 0.800 + N2}) for b in (0.5, 1.0)}
    [pair] = conclusions(tables, margin=0.02)
    assert (pair.a, pair.b, pair.verdict) == ("A", "B", "equivalent")
    assert not any(c.resolved for c in pair.budgets)
    assert pair.difference == pytest.approx(0.001) and pair.tost_p < 0.05 and pair.seeds_needed is None


def test_a_reversal_is_moving():
    # A above B by 0.03 at half the steps, B above A by 0.03 at the end; both resolved.
    tables = {0.5: _table({"A": 0.73 + N1, "B": 0.70 + N2}), 1.0: _table({"A": 0.80 + N1, "B": 0.83 + N2})}
    [pair] = conclusions(tables, margin=0.02)
    assert (pair.a, pair.b, pair.verdict) == ("A", "B", "moving")         # the table's row order
    assert [c.resolved for c in pair.budgets] == [True, True]
    assert [c.diff for c in pair.budgets] == pytest.approx([0.03, -0.03]) and pair.difference == pytest.approx(-0.03)


def test_resolved_only_at_the_smaller_budget_is_moving():
    # A above B by 0.05 at half the steps; at the end 0.003 apart with noise 0.01: unresolved.
    tables = {0.5: _table({"A": 0.75 + N1, "B": 0.70 + N2}),
              1.0: _table({"A": 0.803 + 10 * N1, "B": 0.80 + 10 * N2})}
    [pair] = conclusions(tables, margin=0.02)
    assert pair.verdict == "moving" and [c.resolved for c in pair.budgets] == [True, False]


def test_the_next_budget_must_agree_in_sign_and_no_budget_may_resolve_against():
    win = {"A": 0.85 + N1, "B": 0.80 + N2}                    # A resolved above B
    lean_against = {"A": 0.799 + 10 * N1, "B": 0.80 + 10 * N2}   # B 0.001 above, unresolved
    lose = {"A": 0.75 + N1, "B": 0.80 + N2}                   # B resolved above A
    ladder = lambda *rows: {b: _table(r) for b, r in zip((0.25, 0.5, 1.0), rows)}
    # Unresolved the other way at the next budget: not settled.
    assert conclusions({0.5: _table(lean_against), 1.0: _table(win)}, 0.02)[0].verdict == "moving"
    # Only the next budget's sign counts among the unresolved ones...
    assert conclusions(ladder(lean_against, win, win), 0.02)[0].verdict == "better"
    # ...but a budget resolved the other way, however early, makes it moving.
    assert conclusions(ladder(lose, win, win), 0.02)[0].verdict == "moving"


def test_an_undecided_pair_says_how_many_seeds_would_settle_it():
    # A - B per seed: 0.04, -0.02, 0.01 -> mean 0.01, standard deviation 0.03; margin 0.02.
    b = np.array([0.80, 0.82, 0.78])
    tables = {budget: _table({"A": b + [0.04, -0.02, 0.01], "B": b}) for budget in (0.5, 1.0)}
    [pair] = conclusions(tables, margin=0.02)
    assert pair.verdict == "undecided" and pair.difference == pytest.approx(0.01)
    assert not pair.largest.resolved and pair.tost_p >= 0.05
    mse = design_anova(_table({"A": b + [0.04, -0.02, 0.01], "B": b})).mse
    assert 2 * mse == pytest.approx(0.03 ** 2)
    assert pair.seeds_needed == seeds_needed(0.01, mse, designs=2, margin=0.02, pairs=1) > 3
    # At the measured spread TOST settles it first: 0.01 + t(0.95, n - 1) * 0.03 / sqrt(n) < 0.02.
    n = pair.seeds_needed
    assert 0.01 + stats.t.ppf(0.95, n - 1) * 0.03 / math.sqrt(n) < 0.02
    assert 0.01 + stats.t.ppf(0.95, n - 2) * 0.03 / math.sqrt(n - 1) >= 0.02


def test_seeds_needed_matches_its_definition():
    # Tukey settles it: 2 sqrt(n) > q(0.95; 3, 2(n - 1)) first at n = 5 (4.47 > 4.04; at 4: 4 < 4.34).
    assert seeds_needed(0.02, 1e-4, designs=3, margin=0.01, pairs=3) == _direct_seeds(0.02, 1e-4, 3, 0.01, 3) == 5
    # TOST settles it (no difference for Tukey to resolve).
    assert seeds_needed(0.0, 4e-4, designs=4, margin=0.02, pairs=6) == _direct_seeds(0.0, 4e-4, 4, 0.02, 6)
    # Far from the start: the condition holds at the answer and not one seed earlier.
    n = seeds_needed(0.004, 1e-4, designs=5, margin=0.002, pairs=10)
    q = lambda seeds: stats.studentized_range.ppf(0.95, 5, 4 * (seeds - 1))
    assert 50 < n < 200 and 0.004 / math.sqrt(1e-4 / n) > q(n) and 0.004 / math.sqrt(1e-4 / (n - 1)) <= q(n - 1)
    # More than 1000 seeds, or nothing measured: None.
    assert seeds_needed(1e-4, 1e-2, designs=3, margin=1e-3, pairs=3) is None
    assert seeds_needed(math.nan, 1e-4, 3, 0.01, 3) is None and seeds_needed(0.01, math.nan, 3, 0.01, 3) is None


def test_tost_on_the_pooled_variance_is_the_paired_tost_for_two_designs():
    from statsmodels.stats.weightstats import ttost_paired
    a = np.array([0.812, 0.805, 0.821, 0.798, 0.809])
    b = np.array([0.806, 0.803, 0.811, 0.799, 0.801])
    table = pd.DataFrame([a, b], index=["A", "B"])
    anova = design_anova(table)
    assert 2 * anova.mse == pytest.approx(np.var(a - b, ddof=1))
    expected = ttost_paired(a, b, -0.02, 0.02)[0]
    assert tost_p(float((a - b).mean()), anova.mse, anova.df_resid, 5, 0.02) == pytest.approx(expected)
    [pair] = conclusions({1.0: table}, margin=0.02)
    assert pair.verdict == "equivalent" and pair.tost_p == pytest.approx(expected)     # one pair: Holm changes nothing
    # A margin the difference does not fit in, and the edge cases.
    assert tost_p(float((a - b).mean()), anova.mse, anova.df_resid, 5, 0.005) == pytest.approx(
        ttost_paired(a, b, -0.005, 0.005)[0])
    assert tost_p(0.001, 0.0, 4, 5, 0.02) == 0.0 and tost_p(0.03, 0.0, 4, 5, 0.02) == 1.0
    assert math.isnan(tost_p(0.001, math.nan, 0, 1, 0.02)) and math.isnan(tost_p(0.001, 1e-4, 1, 1, 0.02))


def test_holm_makes_a_marginal_equivalence_fail_among_many_pairs():
    from statsmodels.stats.multitest import multipletests
    # Six designs, 15 pairs: A and B 0.003 apart, the rest 0.1 apart, noise 0.005.
    rows = {"A": 0.800 + 5 * N1, "B": 0.803 + 5 * N2, "C": 0.9 + 5 * N3,
            "D": 1.0 + 5 * N1, "E": 1.1 + 5 * N2, "F": 1.2 + 5 * N3}
    table = _table(rows)
    anova = design_anova(table)
    se = math.sqrt(2 * anova.mse / 4)

    def run(raw_p):
        """The margin at which A-B's TOST p is raw_p on its own, and the pair's conclusion there."""
        margin = 0.003 + stats.t.isf(raw_p, anova.df_resid) * se
        assert tost_p(-0.003, anova.mse, anova.df_resid, 4, margin) == pytest.approx(raw_p)
        result = conclusions({1.0: table}, margin=margin)
        return result, _pair(result, "A", "B")

    result, pair = run(0.01)                       # passes alone at 5%...
    assert not pair.largest.resolved
    raw = [tost_p(p.difference, anova.mse, anova.df_resid, 4, p.margin) for p in result]
    assert [p.tost_p for p in result] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert pair.tost_p == pytest.approx(15 * 0.01) and pair.verdict == "undecided"      # ...but not among 15
    result, pair = run(0.001)
    assert pair.tost_p == pytest.approx(15 * 0.001) and pair.verdict == "equivalent"
    assert sum(p.verdict == "better" for p in result) == 14


def test_a_lower_is_better_metric_reports_raw_units():
    loss_a, loss_b = np.array([0.50, 0.52, 0.49, 0.51]), np.array([0.60, 0.621, 0.59, 0.611])
    tables = {b: LOSS.oriented(_table({"B": loss_b + N1, "A": loss_a + N2})) for b in (0.5, 1.0)}
    result = conclude(tables, margin=0.02)
    [pair] = result.pairs
    assert (pair.a, pair.verdict) == ("A", "better") and pair.difference > 0          # oriented: A is better
    frame = conclusions_frame(result, LOSS)
    assert list(frame.columns[:6]) == ["a", "b", "verdict", "difference", "margin", "metric"]
    assert {"tost_p", "seeds_needed", "diff_0.5", "diff_1"} <= set(frame.columns)
    row = frame.iloc[0]
    assert (row["a"], row["b"], row["verdict"], row["metric"]) == ("A", "B", "better", "val_loss_late")
    assert row["difference"] == pytest.approx(loss_a.mean() - loss_b.mean())        # lower loss: negative
    assert row["diff_0.5"] == pytest.approx(loss_a.mean() - loss_b.mean()) and row["margin"] == 0.02
    assert conclusions_frame(result, ACCURACY).iloc[0]["difference"] == pytest.approx(loss_b.mean() - loss_a.mean())


def test_a_single_budget_resolves_or_not_and_nothing_moves():
    table = _table({"A": 0.85 + N1, "B": 0.80 + N2, "C": 0.8005 + N3})
    result = conclude({1.0: table}, margin=0.02)
    assert result.budgets == (1.0,) and result.seeds == (4,)
    assert [(p.a, p.b, p.verdict) for p in result.pairs] == [("A", "B", "better"), ("A", "C", "better"),
                                                           ("B", "C", "equivalent")]
    assert result.count("moving") == 0 and len(result.pairs[0].budgets) == 1
    text = conclusions_markdown(result, ACCURACY)
    assert "`A` beats `B`, `C` (resolved by Tukey's HSD; a single budget, so no ladder to check)." in text
    assert "`B` and `C` are equivalent within 0.02 (TOST, Holm-adjusted)." in text


def test_only_designs_at_every_budget_on_the_seeds_all_of_them_ran():
    half = _table({"A": 0.74 + N1, "B": 0.70 + N2})                              # C has no run at half the steps
    full = _table({"A": 0.85 + N1, "B": 0.80 + N2, "C": 0.9 + N3})
    full.loc["B", 3] = math.nan                                                   # B's fourth seed failed
    result = conclude({0.5: half, 1.0: full}, margin=0.02)
    assert result.designs == ("A", "B") and result.seeds == (4, 3)
    assert [(p.a, p.b, p.verdict) for p in result.pairs] == [("A", "B", "better")]
    assert result.pairs[0].difference == pytest.approx(0.05 + (N1[:3] - N2[:3]).mean())
    assert [e.budget for e in result.effects] == [0.5, 1.0] and result.effects[1].df_resid == 2


def test_bad_input_is_refused_with_a_reason():
    table = _table({"A": 0.85 + N1, "B": 0.80 + N2})
    with pytest.raises(ValueError, match="no tables"):
        conclusions({}, margin=0.02)
    for margin in (0, -0.01, math.nan, None):
        with pytest.raises(ValueError, match="margin"):
            conclusions({1.0: table}, margin=margin)
    with pytest.raises(ValueError, match="fewer than two designs"):
        conclusions({1.0: table.loc[["A"]]}, margin=0.02)
    with pytest.raises(ValueError, match="fewer than two designs"):                # A at one budget, B at the other
        conclusions({0.5: table.loc[["A"]], 1.0: table.loc[["B"]]}, margin=0.02)
    ragged = table.copy()
    ragged.loc["A", [0, 1]] = math.nan
    ragged.loc["B", [2, 3]] = math.nan
    with pytest.raises(ValueError, match="at budget 0.5 no seed"):
        conclusions({0.5: ragged, 1.0: table}, margin=0.02)


def test_equivalence_groups_are_greedy_maximal_cliques():
    edges = {("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D"),   # a 4-clique
             ("D", "E"), ("D", "F"), ("E", "F"),                                      # a triangle sharing D
             ("X", "Y"), ("Y", "Z"), ("X", "Z"),                                      # a triangle on its own
             ("G", "A")}                                                              # A is taken already
    names = "ABCDEFGXYZ"
    verdict = lambda a, b: "equivalent" if (a, b) in edges or (b, a) in edges else "undecided"
    pairs = [PairConclusion(a, b, verdict(a, b), 0.0, 0.02, 0.01, (BudgetComparison(1.0, 0.0, 1.0, False),), None)
             for a, b in itertools.combinations(names, 2)]
    assert equivalence_groups(pairs) == [["A", "B", "C", "D"], ["X", "Y", "Z"], ["E", "F"]]
    assert equivalence_groups([p for p in pairs if p.verdict != "equivalent"]) == []


def test_the_markdown_leads_with_the_counts_and_the_sentences():
    # W above everyone; E1, E2, E3 level; M 0.05 below the E's at half the steps, level at the end.
    tables = {0.5: _table({"W": 0.85 + N2, "E1": 0.8 + N1, "E2": 0.8 + N2, "E3": 0.8 + N3, "M": 0.75 + N1}),
              1.0: _table({"W": 0.9 + N2, "E1": 0.8 + N1, "E2": 0.8 + N2, "E3": 0.8 + N3, "M": 0.801 + N3})}
    result = conclude(tables, margin=0.02)
    assert [result.count(v) for v in VERDICTS] == [4, 3, 3, 0]
    text = conclusions_markdown(result, ACCURACY)
    assert text.startswith("## Conclusions\n")
    assert ("**Of 10 design pairs on val acc (late mean): 4 better, 3 equivalent, 3 moving, 0 undecided** "
            "(5 designs; equivalence margin 0.02; budgets 0.5 and 1 of each trial's steps; 4 complete seeds at "
            "every budget).") in text
    assert ("`W` beats `E1`, `E2`, `E3`, `M` (resolved at the largest budget, in the same direction at the next; "
            "never reversed).") in text
    assert "`E1`, `E2` and `E3` are equivalent within 0.02 (every pair, TOST, Holm-adjusted)." in text
    assert ("`M` gains on `E1` as the budget grows (`M` - `E1`: -0.0500 at 0.5 (resolved) -> +0.0010 at 1)."
            in text)
    assert "*moving*: resolved at some budget but not better" in text and "*undecided*: none of these." in text
    table = text[text.index("| a | b | verdict"):].splitlines()
    assert len(table) == 2 + 10 and [line.split(" | ")[2] for line in table[2:]] == \
        ["better"] * 4 + ["equivalent"] * 3 + ["moving"] * 3


def test_the_markdown_counts_the_undecided_and_the_seeds_they_need():
    b = np.array([0.80, 0.82, 0.78])
    result = conclude({1.0: _table({"A": b + [0.04, -0.02, 0.01], "B": b})}, margin=0.02)
    text = conclusions_markdown(result, ACCURACY)
    needed = result.pairs[0].seeds_needed
    assert "1 better" not in text and "0 better, 0 equivalent, 0 moving, 1 undecided" in text
    assert (f"1 pair undecided: at the measured spread it would need {needed} seeds per design (now 3) to be "
            "resolved by Tukey's HSD or shown equivalent within 0.02.") in text
    settled = [int(needed <= k * 3) for k in (2, 4, 10)]
    assert (f"by seeds per design: 3 seeds: 0; 6: {settled[0]}; 12: {settled[1]}; 30: {settled[2]} of 1.") in text
    assert 3 < needed <= 30                     # the curve steps from 0 to 1 inside the seeds it shows
