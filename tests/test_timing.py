"""Interleaved throughput rounds: the median's interval on tables with known answers, the rotated order, why the
rounds stop, and two instances of one model timed as two designs coming out tied on the front."""
import copy
import math

import pandas as pd
import pytest
import torch
from scipy import stats

from ablate.build import proxy_model
from ablate.proxy import ProxyConfig
from ablate.report.pareto import front
from ablate.report.table import design_summary, load_results
from ablate.results import ResultRow, trial_key, write_row, write_table
from ablate.timing import (STOP_NARROW, STOP_ROUNDS, STOP_TIME, ThroughputConfig, check_throughput,
                           interleaved_throughput, median_interval, rotated, rounds_for)


@pytest.mark.parametrize("n, low, high", [(6, 1, 6), (10, 2, 9), (20, 6, 15)])
def test_median_interval_is_the_textbook_order_statistic_interval(n, low, high):
    """The distribution-free 95% interval of a median (Conover, Practical Nonparametric Statistics, table A3): the
    r-th smallest and r-th largest of n values, r the largest with 1 - 2 * P(Binomial(n, 1/2) <= r - 1) >= 0.95:
    n = 6: 1st and 6th (0.969); n = 10: 2nd and 9th (0.979); n = 20: 6th and 15th (0.959)."""
    values = [float(v) for v in range(n, 0, -1)]                  # any order
    interval = median_interval(values, 0.95)
    assert (interval.low, interval.high) == (low, high) and interval.median == (n + 1) / 2
    coverage = 1 - 2 * stats.binom.cdf(low - 1, n, 0.5)
    assert coverage >= 0.95 and 1 - 2 * stats.binom.cdf(low, n, 0.5) < 0.95     # and no narrower pair reaches it


def test_five_values_have_no_95_interval_and_six_rounds_are_the_fewest():
    assert math.isnan(median_interval([1.0, 2.0, 3.0, 4.0, 5.0]).low)
    assert rounds_for(0.95) == 6 and rounds_for(0.99) == 8 and rounds_for(0.9) == 5
    with pytest.raises(ValueError, match=r"throughput.min_rounds=5; a median's 95% interval needs at least 6"):
        check_throughput(ThroughputConfig(min_rounds=5))
    with pytest.raises(ValueError, match="throughput.max_rounds=6; need at least throughput.min_rounds=8"):
        check_throughput(ThroughputConfig(min_rounds=8, max_rounds=6))


def test_rounds_rotate_the_order():
    keys = ["a", "b", "c"]
    assert [rotated(keys, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


class Recorder(torch.nn.Module):
    """A model that notes each forward pass in a shared log."""
    def __init__(self, name, log):
        super().__init__()
        self.name, self.log, self.linear = name, log, torch.nn.Linear(4, 2)

    def forward(self, x):                                         # x: (B, C, H, W)
        self.log.append(self.name)
        return self.linear(x.mean(dim=(2, 3))[:, :4])


def test_every_model_is_timed_in_every_round_in_rotated_order():
    log = []
    models = {name: Recorder(name, log) for name in "abc"}
    settings = ThroughputConfig(batch=2, passes=2, warmup=1, min_rounds=6, max_rounds=6, target=1e-12)
    timings = interleaved_throughput(models, settings, resolution=4, in_chans=4, warmup_s=0)
    assert log[:3] == ["a", "b", "c"] and timings.warmup_passes == 3
    expected = [name for r in range(6) for name in rotated(list("abc"), r) for _ in range(2)]
    assert log[3:] == expected
    assert timings.rounds == 6 and timings.stop == STOP_ROUNDS
    for timed in timings.models.values():
        assert len(timed.rates) == 6 and timed.speed.low <= timed.speed.median <= timed.speed.high
        assert timed.peak_mem_mb is None                          # CPU: no allocator to ask


@pytest.mark.parametrize("changes, stop, rounds", [
    ({"target": 10.0}, STOP_NARROW, 6),                           # any interval is within 1000% of its median
    ({"target": 1e-12, "max_seconds": 1e-9}, STOP_TIME, 6),       # the cap is checked once the fewest rounds ran
    ({"target": 1e-12, "max_rounds": 9}, STOP_ROUNDS, 9),
])
def test_the_rounds_say_why_they_stopped(changes, stop, rounds):
    models = {name: Recorder(name, []) for name in "ab"}
    settings = ThroughputConfig(batch=2, passes=1, warmup=0, **changes)
    timings = interleaved_throughput(models, settings, resolution=4, in_chans=4, warmup_s=0)
    assert (timings.stop, timings.rounds) == (stop, rounds)


def test_two_instances_of_one_model_timed_as_two_designs_are_tied(tmp_path):
    """Identical work must not come out different: one model and its copy, timed as two designs, have overlapping
    intervals, and with the same accuracies neither leaves the other off the throughput front."""
    proxy = ProxyConfig()
    proxy.model.dim = proxy.model.in_dim = 8
    torch.manual_seed(0)
    model = proxy_model(proxy)
    settings = ThroughputConfig(batch=8, passes=2, min_rounds=8, max_seconds=2.0)
    timings = interleaved_throughput({"one": model, "copy": copy.deepcopy(model)}, settings, resolution=32)
    one, twin = timings.models["one"].speed, timings.models["copy"].speed
    assert one.overlaps(twin), (one, twin)
    spec = "C|CCC|MMMMTTTT|MMTT"
    for design, speed in (("one", one), ("copy", twin)):
        for seed, accuracy in enumerate([0.60, 0.62, 0.61]):
            write_row(tmp_path, ResultRow(trial_id=trial_key(design, seed), space="placement", spec=spec,
                                          pattern=design, seed=seed, val_acc_late=accuracy, params=1000,
                                          macs_total=1e6, macs_scan=0.0, throughput_img_s=speed.median,
                                          throughput_lo=speed.low, throughput_hi=speed.high, throughput_rounds=8))
    write_table(tmp_path)
    summary = design_summary(load_results(tmp_path))
    found = front(summary, "throughput")
    faster, slower = ("one", "copy") if one.median > twin.median else ("copy", "one")
    assert found.designs == (faster,) and [(t.design, t.front) for t in found.ties] == [(slower, (faster,))]
    assert isinstance(summary, pd.DataFrame) and set(summary["throughput_rounds"]) == {8}
