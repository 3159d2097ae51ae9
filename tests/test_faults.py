"""Which failed trials are trained again: infrastructure faults past the retry limit are, by resume=true;
deterministic failures are not. In real sweeps: a diverging trial is not retried and a crashed one is trained again
by resume=true (tests/test_sweep.py); a lost node and a killed worker are retried from their checkpoints on a real
cluster (tests/test_cluster.py)."""
import pytest

from ablate.config import load_config
from ablate.results import CRASHED, FAILED, ResultRow
from ablate.space import get_space


def test_resume_trains_crashed_trials_again_and_leaves_deterministic_failures(tmp_path):
    """A row whose trial crashed past its retries is pending again on resume=true; a diverged one is a result."""
    from ablate.sweep.search import grid_plan
    cfg = load_config(["space=placement", "designs=[all conv,all attention]", "seeds=1"])
    designs = get_space("placement").designs(cfg)
    chosen = [d for d in designs if d.pattern in ("all conv", "all attention")]
    from ablate.sweep.trial import TrialDesign
    crashed, diverged = (TrialDesign(d, (0,)) for d in chosen)
    rows = [ResultRow(trial_id=crashed.key, spec=crashed.design.spec, status=FAILED,
                      error=f"{CRASHED}the actor died unexpectedly (after 2 retries)"),
            ResultRow(trial_id=diverged.key, spec=diverged.design.spec, status=FAILED,
                      error="diverged: loss is nan at epoch 1, step 3")]
    assert [row.crashed for row in rows] == [True, False]
    plan = grid_plan(cfg, get_space("placement"), chosen, rows)
    assert [trial.key for trial in plan.grid] == [crashed.key]


@pytest.mark.parametrize("status, error, crashed", [("failed", f"{CRASHED}node died", True),
                                                    ("failed", "diverged: loss is nan", False),
                                                    ("ok", None, False)])
def test_which_rows_count_as_crashed(status, error, crashed):
    assert ResultRow(status=status, error=error).crashed is crashed


def test_resume_says_which_failed_trials_it_trains_again(tmp_path, capsys):
    from ablate.results import write_row
    from ablate.sweep.run import prepare, resumable_rows
    cfg = load_config(["space=placement", "smoke=true", "seeds=1", "resume=true", f"runs_dir={tmp_path}"])
    sweep = prepare(cfg)
    for key, error in (("a", f"{CRASHED}the actor died unexpectedly (after 2 retries)"), ("b", "diverged: nan"),
                       ("c", None)):
        write_row(sweep.store.run_dir, ResultRow(trial_id=key, status=FAILED if error else "ok", error=error))
    assert len(resumable_rows(sweep)) == 3
    assert ("resume=true: 1 trials that crashed (their process or node lost past the retries) are trained again; "
            "1 that failed on their own (diverged, a bad spec or data) are left as they are") in capsys.readouterr().out
