"""The budget ladder: one trial gives finished models at several budgets (fractions of its steps).

A warmup-stable-decay schedule (Hägele et al., 2024): warm-up, then a constant learning rate, and for each budget a
cooldown that decays it to zero over the last ``cooldown`` fraction of that budget's steps. The trunk trains to
the largest budget and its own cooldown is the last budget's; every smaller budget is a branch taken off the
trunk where its cooldown starts, trained through the cooldown, evaluated, and dropped. A ladder costs the largest
budget plus the branches' cooldowns, not the sum of the budgets.

A ladder of one budget whose cooldown covers the whole run, with the cosine decay, is the classic schedule the
proxy used before the ladder: warm-up, then a cosine from the end of warm-up to zero at the last step.
"""
import dataclasses
import math
from typing import Callable, Dict, List, Sequence

# The cooldown's shape: progress through the cooldown in [0, 1] -> the fraction of the peak learning rate.
DECAYS: Dict[str, Callable[[float], float]] = {
    "linear": lambda progress: 1.0 - progress,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),
}
# The late evaluations of a budget spread over its last quarter at most (the flat end of the curve, as before the
# ladder); a shorter cooldown narrows them to the cooldown, the only steps a branch trains.
LATE_WINDOW = 0.25


class LadderError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Rung:
    """One budget of the ladder, in steps: its cooldown runs from ``start`` to ``end`` (exclusive of ``end``:
    the model after ``end`` steps is the budget's model)."""
    fraction: float
    start: int
    end: int
    late: tuple            # the steps after which it is evaluated for its late metrics, ascending
    window: float          # the late metrics average the evaluations over this last fraction of its steps

    @property
    def cooldown_steps(self) -> int:
        return self.end - self.start


def check_budgets(budgets: Sequence[float], cooldown: float, decay: str) -> None:
    """Budgets strictly increasing in (0, 1] ending at 1, a cooldown in (0, 1], a known decay; else LadderError."""
    budgets = list(budgets)
    if not budgets or any(not 0 < b <= 1 for b in budgets) or budgets != sorted(set(budgets)) or budgets[-1] != 1:
        raise LadderError(f"trainer.budgets={budgets}: need fractions of the trial's steps, strictly increasing in "
                          f"(0, 1] and ending at 1, e.g. [1], [0.5, 1] or [0.25, 0.5, 1]")
    if not 0 < cooldown <= 1:
        raise LadderError(f"trainer.cooldown={cooldown}: the fraction of each budget spent decaying the learning "
                          f"rate must be in (0, 1], e.g. 0.2")
    if decay not in DECAYS:
        raise LadderError(f"trainer.decay={decay!r} is not a decay; valid: {', '.join(DECAYS)}")


def ladder(total_steps: int, budgets: Sequence[float], cooldown: float, warmup_steps: int,
           late_evals: int) -> List[Rung]:
    """The rungs of a trial of ``total_steps`` steps. A cooldown takes at least one step and starts after the
    warm-up where the budget leaves room; a budget smaller than one step is an error that names the smallest."""
    rungs = []
    for fraction in budgets:
        end = round(fraction * total_steps)
        if end < 1:
            raise LadderError(f"trainer.budgets: {fraction} of {total_steps} steps is no step; the smallest budget "
                              f"here is {1 / total_steps:.3g}")
        start = max(min(warmup_steps, end - 1), end - max(1, round(cooldown * end)))
        window = min(cooldown, LATE_WINDOW)
        rungs.append(Rung(fraction, start, end, late_steps(end, window, late_evals), window))
    return rungs


def late_steps(end: int, window: float, late_evals: int) -> tuple:
    """``late_evals`` steps evenly spaced over the last ``window`` of ``end`` steps, the last at ``end``."""
    return tuple(sorted({end - round(i * window * end / late_evals) for i in range(late_evals)}))


def lr_factor(step: int, warmup_steps: int, rung: Rung, decay: str) -> float:
    """The fraction of the peak learning rate for optimizer step ``step`` (0-based) on the path to ``rung``:
    linear warm-up over ``warmup_steps``, constant, then the decay from the rung's start to zero at its end."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step < rung.start:
        return 1.0
    return DECAYS[decay]((step - rung.start) / max(1, rung.end - rung.start))


def ladder_cost(rungs: Sequence[Rung]) -> int:
    """Training steps a ladder takes: the trunk to the last budget plus each branch's cooldown."""
    return rungs[-1].end + sum(r.cooldown_steps for r in rungs[:-1])
