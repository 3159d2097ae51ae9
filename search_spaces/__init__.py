"""Search spaces: one module each, saying what varies and what is fixed.

A space module defines DESCRIPTION, SCHEDULER ("none" to reproduce: every trial trains to the full budget,
since early stopping would bias the comparison; "asha" to search), SEARCHABLE (whether Optuna may propose
designs) and designs(cfg) -> [Design] (the grid, or the known designs a search evaluates first). A
searchable space also defines suggest(trial, cfg) -> Design, define-by-run for Optuna. A space that
reproduces a table of the paper defines PAPER_TOP1 ({label: ImageNet top-1}) and PAPER_TABLE (its name); the
report ranks the proxy against it.
"""
import dataclasses
import json
from typing import Dict

from . import free, mixer, placement, ratio


@dataclasses.dataclass(frozen=True)
class Design:
    pattern: str                 # a label: the placement pattern or mixer variant
    spec: str                    # canonical spec string
    knobs: str = "{}"            # mixer knobs as sorted JSON (hashable, one string per design)

    @property
    def key(self) -> str:
        from ablate.results import architecture_id
        return architecture_id(self.spec, self.knobs)

    @staticmethod
    def make(pattern, spec, knobs=None):
        from ablate.spec import parse_spec
        return Design(pattern, parse_spec(spec).canonical, json.dumps(knobs or {}, sort_keys=True))


SPACES: Dict[str, object] = {"placement": placement, "mixer": mixer, "ratio": ratio, "free": free}
