"""A letter per position in stages 3-4, from a letter set, searched by Optuna (TPE on accuracy, or NSGA-II on
accuracy and MACs); the known designs (the placement space) are evaluated first."""
from ablate.space import Space, register_space

LETTERS = ("M", "T", "S", "G")


def designs(cfg):
    from . import placement
    return placement.designs(cfg)[:6]          # the paper's six patterns seed the search


def suggest(trial, cfg):
    """Define-by-run for Optuna: one categorical per block of stages 3 and 4; stages 1-2 as in the base."""
    from ablate.spec import parse_spec
    stages = list(parse_spec(cfg.model.spec).stages)
    for index in (2, 3):
        stages[index] = "".join(trial.suggest_categorical(f"s{index + 1}_{i}", LETTERS)
                                for i in range(len(stages[index])))
    return {"spec": "|".join(stages)}


def params_of(spec):
    """The Optuna parameters that give ``spec`` (for evaluating known designs first)."""
    from ablate.spec import parse_spec
    stages = parse_spec(spec).stages
    return {f"s{index + 1}_{i}": letter for index in (2, 3) for i, letter in enumerate(stages[index])}


SPACE = register_space(Space(name="free", description=__doc__, designs=designs, scheduler="asha", suggest=suggest,
                             params_of=params_of))
