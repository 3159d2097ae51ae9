"""Every registered search space, the way test_model.py walks the mixer registry: each design parses and builds on the
meta device with the dataset's head, and a searchable space's Optuna parameters give back the design's spec."""
import optuna
import pytest
import torch

from ablate.build import proxy_model
from ablate.config import load_config
from ablate.space import SPACES
from ablate.spec import parse_spec


def test_the_spaces_are_registered():
    assert {"placement", "mixer", "ratio", "free"} <= set(SPACES)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_design_parses_and_builds(name):
    cfg = load_config([f"space={name}"])
    designs = SPACES[name].designs(cfg)
    assert designs and len({d.key for d in designs}) == len(designs), "a space lists each architecture once"
    base = cfg.trial_proxy()
    for design in designs:
        assert parse_spec(design.spec).canonical == design.spec
        with torch.device("meta"):
            model = proxy_model(base.for_design(design))
        assert model.spec.canonical == design.spec, design.pattern
        for letter, knobs in design.knobs.items():          # the design's knobs reach its blocks
            assert base.for_design(design).model.mixer_knobs[letter].items() >= knobs.items()


@pytest.mark.parametrize("name", sorted(n for n, s in SPACES.items() if s.searchable))
def test_a_searched_spaces_parameters_round_trip(name):
    space, cfg = SPACES[name], load_config([f"space={name}"])
    for design in space.designs(cfg):
        params = space.params_of(design.spec)
        proposed = space.suggest(optuna.trial.FixedTrial(params), cfg)
        assert parse_spec(proposed["spec"]).canonical == design.spec, design.pattern
