"""The paper's token-mixer ablation (the four rows: conv causal/regular, symmetric branch, concat/gate) and
the other mixer letters (S, B, X, G, P, I) in the default placement (mixers first, attention last)."""
from ablate.space import Design, Space, register_space

MIXER_ROWS = {
    "causal, no symmetric (Mamba-like)": {"conv": "causal", "symmetric": False, "merge": "gate"},
    "regular, no symmetric": {"conv": "regular", "symmetric": False, "merge": "gate"},
    "regular + symmetric, gate": {"conv": "regular", "symmetric": True, "merge": "gate"},
    "regular + symmetric, concat (final)": {"conv": "regular", "symmetric": True, "merge": "concat"},
}
# The paper's token-mixer table (ImageNet-1K top-1 of MambaVision-T), by label; the other letters are not
# in it.
PAPER_TOP1 = {"causal, no symmetric (Mamba-like)": 80.5, "regular, no symmetric": 80.9,
              "regular + symmetric, gate": 81.3, "regular + symmetric, concat (final)": 82.3}
PAPER_TABLE = "the token-mixer ablation (ImageNet-1K top-1, MambaVision-T)"
OTHER_LETTERS = {"S": "vanilla Mamba (S)", "B": "bidirectional (B)", "X": "cross-scan (X)",
                 "G": "gated CNN, no SSM (G)", "P": "parallel attn+SSM (P)", "I": "no mixer (I)"}


def designs(cfg):
    from ablate.spec import apply_pattern
    base = apply_pattern(cfg.model.spec, "last_half").canonical
    rows = [Design.make(label, base, {"M": knobs}) for label, knobs in MIXER_ROWS.items()]
    for letter, label in OTHER_LETTERS.items():
        rows.append(Design.make(label, apply_pattern(base, "last_half", mamba=letter).canonical))
    return rows


SPACE = register_space(Space(name="mixer", description=__doc__, designs=designs, paper_top1=PAPER_TOP1,
                             paper_table=PAPER_TABLE))
