"""The budget ladder: the learning rate at every step, branches that leave the trunk untouched bit for bit, a branch
that equals a shorter trial, and the errors."""
import math

import pytest
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ablate.ladder import LadderError, check_budgets, ladder, ladder_cost, lr_factor
from ablate.proxy import ProxyConfig
from ablate.train import train_proxy

# 4 steps per epoch (128 images, batch 32)
TINY = {"model": {"spec": "C|C|MT|T", "dim": 8, "in_dim": 8, "num_heads": [1, 1, 2, 2], "window_size": [8, 8, 8, 4]},
        "data": {"name": "match", "options": {"n_train": 128, "n_val": 64}},
        "trainer": {"epochs": 5, "batch_size": 32, "warmup_epochs": 0.5, "late_evals": 2, "lr": 1e-3}}


def config(**trainer) -> ProxyConfig:
    return ProxyConfig.from_dict({**TINY, "trainer": {**TINY["trainer"], **trainer}})


def test_rungs_of_a_two_budget_ladder():
    half, whole = ladder(20, [0.5, 1], cooldown=0.2, warmup_steps=2, late_evals=2)
    assert (half.start, half.end, half.late) == (8, 10, (9, 10))
    assert (whole.start, whole.end, whole.late) == (16, 20, (18, 20))
    assert ladder_cost([half, whole]) == 22            # the trunk's 20 steps and the branch's 2, not 10 + 20


def test_the_learning_rate_at_every_step_of_a_ladder(tmp_path, monkeypatch):
    """What the optimizer really used, in the order the steps ran: the trunk to step 8, the branch's cooldown over
    steps 8-9, then the trunk again from step 8 (warm-up 2 steps, constant, linear decay over the last 4)."""
    used = []
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: used.append(optimizer.param_groups[0]["lr"]))
    try:
        result = train_proxy(config(budgets=[0.5, 1], cooldown=0.2, decay="linear"))
    finally:
        hook.remove()
    assert result.status == "ok", result.error
    peak = 1e-3
    trunk = [0.5, 1] + [1] * 14 + [1, 0.75, 0.5, 0.25]
    branch = [1, 0.5]
    expected = trunk[:8] + branch + trunk[8:]
    assert used == pytest.approx([peak * f for f in expected], rel=0, abs=1e-15)


def test_one_budget_with_a_whole_run_cosine_cooldown_is_the_classic_schedule():
    """Warm-up, then a cosine from the end of warm-up to zero at the last step: the proxy's schedule before the
    ladder, factor (step + 1) / warmup, then 0.5 (1 + cos(pi (step - warmup) / (total - warmup)))."""
    total, warmup = 124, 31
    (rung,) = ladder(total, [1], cooldown=1, warmup_steps=warmup, late_evals=3)
    classic = [(s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * ((s - warmup) / (total - warmup))))
               for s in range(total)]
    assert [lr_factor(s, warmup, rung, "cosine") for s in range(total)] == classic
    assert rung.late == (103, 114, 124)               # the late evaluations over the last quarter, as before


def test_branches_leave_the_trunk_untouched_bit_for_bit(tmp_path, monkeypatch):
    alone = train_proxy(config(budgets=[1], cooldown=0.2))
    with_branches = train_proxy(config(budgets=[0.25, 0.5, 1], cooldown=0.2))
    assert alone.status == with_branches.status == "ok"
    trunk = [h for h in with_branches.history if "branch" not in h]
    strip = lambda history: [{k: v for k, v in h.items() if k != "train_time_s"} for h in history]  # noqa: E731
    assert strip(trunk) == strip(alone.history)                       # exact equality of every float
    assert [b.fraction for b in with_branches.budgets] == [0.25, 0.5, 1.0]
    assert with_branches.budgets[-1] == alone.budgets[-1]
    assert (with_branches.val_acc_late, with_branches.val_loss_final) == (alone.val_acc_late, alone.val_loss_final)


def test_a_branch_is_the_shorter_trial_it_stands_for(tmp_path, monkeypatch):
    """The branch at budget 0.4 of 5 epochs (8 steps) trains exactly what a 2-epoch trial with one budget trains."""
    ladder_run = train_proxy(config(budgets=[0.4, 1], cooldown=0.25))
    short = train_proxy(config(epochs=2, budgets=[1], cooldown=0.25))
    branch = ladder_run.budgets[0]
    assert (branch.fraction, branch.steps) == (0.4, 8)
    assert branch.val_acc_final == short.val_acc_final and branch.val_loss_final == short.val_loss_final


def test_bad_ladders_are_refused_with_what_is_valid():
    for budgets in ([], [0.5], [1, 0.5], [0, 1], [0.5, 0.5, 1], [1.5]):
        with pytest.raises(LadderError, match="strictly increasing in"):
            check_budgets(budgets, 0.2, "linear")
    with pytest.raises(LadderError, match=r"trainer.cooldown=0: .* in \(0, 1\]"):
        check_budgets([1], 0, "linear")
    with pytest.raises(LadderError, match="valid: linear, cosine"):
        check_budgets([1], 0.2, "step")
    with pytest.raises(LadderError, match="is no step; the smallest budget here is 0.1"):
        ladder(10, [0.01, 1], 0.2, 1, 3)


def test_a_bad_ladder_fails_before_any_trial(tmp_path):
    from ablate.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="trainer.budgets"):
        load_config(["trainer.budgets=[1,0.5]"])


def test_asha_compares_trials_on_the_largest_budget_each_has_finished():
    from ablate.results import BudgetResult, TrialResult
    from ablate.sweep.trial import RUNG_SCORE, WORST_SCORE, tune_metrics
    midway = TrialResult(epochs_done=1, val_acc_late=0.30, budgets=[BudgetResult(0.5, 62, val_acc_late=0.45)])
    assert tune_metrics([midway], None, final=False)[RUNG_SCORE] == 0.45          # the finished half, not the trunk
    before = TrialResult(epochs_done=1, val_acc_late=0.30)
    assert tune_metrics([before], None, final=False)[RUNG_SCORE] == 0.30         # no budget yet: the trunk so far
    assert tune_metrics([TrialResult(status="failed")], None, final=True)[RUNG_SCORE] == WORST_SCORE


def test_budgets_survive_a_trip_through_plain_dicts():
    import dataclasses
    from ablate.results import BudgetResult, ResultRow, TrialResult
    result = TrialResult(budgets=[BudgetResult(0.5, 62, val_acc_late=0.4), BudgetResult(1.0, 124, val_acc_late=0.6)])
    row = ResultRow.from_dict(dataclasses.asdict(result))                    # what Ray and the JSON files carry
    assert row.budgets == result.budgets and isinstance(row.budgets[0], BudgetResult)


def test_the_search_space_s_asha_reads_the_rung_score():
    from ablate.config import load_config
    from ablate.space import get_space
    from ablate.sweep.search import make_scheduler
    from ablate.sweep.trial import RUNG_SCORE
    cfg = load_config(["space=free", "scheduler=asha"])
    scheduler = make_scheduler(cfg, get_space("free"))
    assert (scheduler.metric, scheduler._mode) == (RUNG_SCORE, "max")
