"""Fronts that know their noise: ties within intervals on a hand-worked table, the figure's error bars and tied
points, the fronts' text, and the throughput noise floor of equal-cost designs."""
import numpy as np
import pandas as pd

from ablate.report.figures import pareto_figure
from ablate.report.pareto import OBJECTIVES, Tie, dominance, front, front_of, overlapping, pareto_mask
from ablate.report.sections import fronts_markdown, throughput_noise_markdown
from ablate.report.speed import throughput_noise

# design: metric mean [95% interval], img/s median [95% interval], params, MACs
DESIGNS = {
    "A": (0.80, 0.78, 0.82, 1000, 950, 1050, 900, 50),
    "B": (0.79, 0.77, 0.81, 990, 940, 1040, 900, 50),       # inside A's intervals on both axes: tied with A
    "C": (0.70, 0.69, 0.71, 500, 490, 510, 800, 40),        # below A on both, separated: dominated
    "D": (0.60, 0.59, 0.61, 1200, 1150, 1250, 700, 30),     # the fastest: on the front
    "E": (0.79, 0.77, 0.81, 800, 780, 820, 900, 50),        # A's accuracy, but separated on speed: dominated
    "F": (0.595, 0.58, 0.61, 1180, 1130, 1230, 700, 30),    # inside D's intervals: tied with D
    "G": (0.785, 0.77, 0.80, 980, 930, 1030, 900, 50),      # inside A's and B's: tied with A (the front's)
}


def summary_of(designs=DESIGNS) -> pd.DataFrame:
    columns = ["metric_mean", "metric_low", "metric_high", "throughput", "throughput_low", "throughput_high",
               "params", "macs_total"]
    frame = pd.DataFrame([dict(zip(columns, values), design=name) for name, values in designs.items()])
    return frame.assign(throughput_rounds=12)


def test_designs_tied_within_their_intervals_do_not_dominate_each_other():
    found = front(summary_of(), "throughput")
    assert found.designs == ("A", "D")
    assert found.ties == (Tie("B", ("A",)), Tie("F", ("D",)), Tie("G", ("A",)))


def test_the_noisy_front_is_the_brute_force_one_and_exact_values_give_the_plain_front():
    """Against brute force: a design stays unless a design it is not tied with dominates it. Without intervals
    (every end NaN: one seed, an older table) the front is pareto_mask's and nothing is tied."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(2, 12))
        mean, speed = rng.integers(0, 6, n) / 10, rng.integers(1, 6, n) * 100.0     # many equal values
        half, spread = rng.integers(0, 3, n) / 20, rng.integers(0, 3, n) * 40.0
        designs = {f"d{i}": (mean[i], mean[i] - half[i], mean[i] + half[i], speed[i], speed[i] - spread[i],
                             speed[i] + spread[i], 1, 1) for i in range(n)}
        points = front_of(summary_of(designs), OBJECTIVES["throughput"])
        values = np.column_stack([mean, speed])
        tied = (overlapping(mean - half, mean + half) & overlapping(speed - spread, speed + spread))
        beats = dominance(values, ["max", "max"])
        expected = [not any(beats[i, j] and not tied[i, j] for i in range(n)) for j in range(n)]
        assert (points.on_front | points.tied).tolist() == expected
        assert not (points.on_front & points.tied).any()
    exact = {name: values[:1] + (np.nan, np.nan) + values[3:4] + (np.nan, np.nan) + values[6:]
             for name, values in DESIGNS.items()}
    points = front_of(summary_of(exact), OBJECTIVES["throughput"])
    plain = pareto_mask(summary_of(exact)[["metric_mean", "throughput"]].to_numpy(float), ["max", "max"])
    assert points.on_front.tolist() == plain.tolist() and not points.tied.any()


def test_exact_costs_tie_only_at_equal_cost():
    """MACs have no interval: B, E and G tie with A (the same MACs, overlapping accuracy) and F with D; C, with fewer
    MACs than A, is on the front, and nothing ties across MACs."""
    found = front(summary_of(), "macs")
    assert found.designs == ("A", "C", "D")
    assert found.ties == (Tie("B", ("A",)), Tie("E", ("A",)), Tie("F", ("D",)), Tie("G", ("A",)))


def test_the_figure_draws_both_intervals_and_the_tied_designs():
    figure = pareto_figure(summary_of(), "throughput")
    ax = figure.axes[0]
    offsets = {c.get_gid(): len(c.get_offsets()) for c in ax.collections if c.get_gid()}
    assert offsets == {"designs": 7, "front": 2, "tied": 3}
    bars = [c for c in ax.collections if c.get_gid() is None]      # the error bars: one vertical, one horizontal set
    segments = sorted((np.ptp(s[:, 0]), np.ptp(s[:, 1])) for c in bars for s in c.get_segments())
    assert len(segments) == 14
    assert np.isclose(max(dy for dx, dy in segments if dx == 0), 0.04)        # A, B, E: 0.02 on either side
    assert np.isclose(max(dx for dx, dy in segments if dy == 0), 100.0)       # A, B, D, F, G: 50 on either side


def test_the_fronts_text_lists_the_ties():
    text = fronts_markdown([front(summary_of(), "throughput")])
    assert "- val acc (late mean) vs throughput: A, D; tied with the front: B (with A); F (with D); G (with A)" in text


def test_equal_cost_designs_give_the_throughput_noise_floor():
    summary = summary_of()
    frame = pd.DataFrame({"throughput_stop": ["time cap"] * 3})
    noise = throughput_noise(summary, frame)
    group, = [g for g in noise.groups if g.designs == ("A", "B", "E", "G")]
    assert (group.slowest, group.fastest) == (800, 1000) and group.ratio == 1.25
    assert group.separated == (("A", "E"), ("B", "E"), ("E", "G"))      # E's interval ends at 820 < 930
    assert {g.designs for g in noise.groups} == {("A", "B", "E", "G"), ("D", "F")}
    assert noise.rounds == (12,) and noise.stops == ("time cap",) and noise.timed == 7
    text = throughput_noise_markdown(noise)
    assert "7 designs timed in 12 interleaved rounds (stopped: time cap)" in text
    assert ("- 4 designs with 900 params and 0.0 MMACs (A, B, E, G) came out at 800-1000 img/s, 1.25x apart" in text
            and "intervals separated for A / E, B / E, E / G" in text)
    assert "(D, F) came out at 1180-1200 img/s, 1.02x apart" in text and "their intervals overlap pairwise" in text
    assert np.allclose(noise.widths, (10 / 500, 50 / 1180, 50 / 980))       # C; F, the 4th of 7; G
    assert "each one's 95% interval is ±2.0% to ±5.1% of its median (median ±4.2%)" in text
