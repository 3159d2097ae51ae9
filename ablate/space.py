"""What a search space is, and the registry through which the sweep and the report find one by name.

The spaces themselves live in the top-level ``search_spaces`` package, where users look for them and add their
own: each module there builds a ``Space`` and registers it when imported. ``ablate`` never imports
``search_spaces`` (the arrows point one way, checked by import-linter); the command line imports it, and so
must a program that calls ``run_sweep`` itself (or it registers its own spaces).
"""
import dataclasses
import json
from typing import Callable, Dict, List, Optional

from .results import NO_KNOBS, architecture_id
from .spec import parse_spec


@dataclasses.dataclass(frozen=True)
class Design:
    pattern: str                 # a label: the placement pattern or mixer variant
    spec: str                    # canonical spec string
    knobs: Dict[str, dict] = dataclasses.field(default_factory=dict)   # mixer knobs by letter: {"M": {"conv": ...}}

    def __hash__(self) -> int:   # the knobs are a dict: a design is hashed by the architecture it names
        return hash((self.pattern, self.key))

    @property
    def knobs_json(self) -> str:
        """The knobs as sorted JSON: how a results row and an architecture id hold them."""
        return json.dumps(self.knobs, sort_keys=True)

    @property
    def key(self) -> str:
        return architecture_id(self.spec, self.knobs_json)

    @staticmethod
    def make(pattern, spec, knobs=None) -> "Design":
        return Design(pattern, parse_spec(spec).canonical, dict(knobs or {}))

    @staticmethod
    def of_row(row) -> "Design":
        """The design a results row was trained as (its knobs read back from the row's JSON)."""
        return Design(row.pattern, row.spec, json.loads(row.knobs or NO_KNOBS))


@dataclasses.dataclass(frozen=True)
class Space:
    """What varies and what is fixed. ``designs(cfg)`` is the grid, or the known designs a search evaluates
    first; a searchable space also gives ``suggest(trial, cfg) -> {"spec": ...}`` (define-by-run for Optuna) and
    ``params_of(spec)`` (the Optuna parameters of a known design). ``scheduler`` is "none" to reproduce (every
    trial trains to the full budget: early stopping would bias the comparison) or "asha" to search. A space that
    reproduces a table of the paper gives its ImageNet top-1 by design label, which the report ranks the proxy
    against."""
    name: str
    description: str
    designs: Callable[..., List[Design]]
    scheduler: str = "none"
    suggest: Optional[Callable[..., dict]] = None
    params_of: Optional[Callable[[str], dict]] = None
    paper_top1: Optional[Dict[str, float]] = None
    paper_table: str = ""

    @property
    def searchable(self) -> bool:
        return self.suggest is not None

    @property
    def summary(self) -> str:
        return self.description.strip().splitlines()[0]


SPACES: Dict[str, Space] = {}


def register_space(space: Space) -> Space:
    if space.scheduler not in ("none", "asha"):
        raise ValueError(f"space {space.name!r}: scheduler={space.scheduler!r}; valid: none, asha")
    if (space.suggest is None) != (space.params_of is None):
        raise ValueError(f"space {space.name!r}: a searchable space gives both suggest and params_of")
    SPACES[space.name] = space
    return space


def get_space(name: str) -> Space:
    if name not in SPACES:
        known = ", ".join(SPACES) or "none registered (import search_spaces, or register_space your own)"
        raise ValueError(f"unknown space {name!r}; valid: {known}")
    return SPACES[name]
