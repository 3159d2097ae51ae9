"""Do a run's conclusions survive an audit (more training, fresh seeds, another task)? Each pair the run settled
(better, or equivalent within the margin) is looked up in the audit's own conclusions:

- holds: the audit reaches the same verdict (the same winner, or equivalent too);
- reversed: the audit resolves the other design as better (a winner), or resolves a difference larger than the
  margin (an equivalence);
- not confirmed: neither (the audit leaves it undecided, or moving, or equivalent where the run had a winner).
"""
import dataclasses
from typing import List, Tuple

from .conclusions import BETTER, EQUIVALENT, Conclusions, PairConclusion

HOLDS, REVERSED, NOT_CONFIRMED = "holds", "reversed", "not confirmed"
OUTCOMES = (HOLDS, REVERSED, NOT_CONFIRMED)


@dataclasses.dataclass(frozen=True)
class Recheck:
    """One settled pair of the run: its verdict there (a the winner for better), the audit's verdict on the same
    pair, the audit's difference a - b at its largest budget (oriented), and the outcome."""
    a: str
    b: str
    before: str
    after: str
    after_difference: float
    outcome: str


def recheck(run: Conclusions, audit: Conclusions) -> List[Recheck]:
    """Every pair settled in ``run`` whose designs the audit also compared, in the run's order."""
    found = {frozenset((p.a, p.b)): p for p in audit.pairs}
    checks = []
    for pair in run.pairs:
        other = found.get(frozenset((pair.a, pair.b)))
        if pair.verdict in (BETTER, EQUIVALENT) and other is not None:
            difference = other.difference if other.a == pair.a else -other.difference
            checks.append(Recheck(pair.a, pair.b, pair.verdict, other.verdict, difference,
                                  _outcome(pair, other, difference)))
    return checks


def _outcome(pair: PairConclusion, other: PairConclusion, difference: float) -> str:
    """``difference``: the audit's a - b, oriented, where a is the run's winner for better."""
    if pair.verdict == BETTER:
        if other.verdict == BETTER:
            return HOLDS if other.a == pair.a else REVERSED
        reversed_somewhere = any(c.resolved and (c.diff if other.a == pair.a else -c.diff) < 0 for c in other.budgets)
        return REVERSED if reversed_somewhere else NOT_CONFIRMED
    if other.verdict == EQUIVALENT:
        return HOLDS
    resolved_beyond = other.largest.resolved and abs(difference) > pair.margin
    return REVERSED if resolved_beyond else NOT_CONFIRMED


def counts(checks: List[Recheck]) -> Tuple[int, ...]:
    """How many checks hold, are reversed, are not confirmed."""
    return tuple(sum(c.outcome == outcome for c in checks) for outcome in OUTCOMES)
