"""The paper's integration-pattern ablation (Table 5) on stages 3-4 of the proxy model, plus all-Mamba,
all-attention, all-conv (what global mixing buys) and EfficientVMamba's opposite hypothesis (global mixers
early, convs late)."""
from ablate.space import Design, Space, register_space

# label -> pattern name (and options) applied to stages 3 and 4 of the base spec
PATTERNS = {
    "last N/2 (default)": ("last_half", {}),
    "last N/4": ("last_quarter", {}),
    "first N/2": ("first_half", {}),
    "mixed 1 (TMTM)": ("alternate_am", {}),
    "mixed 2 (MTMT)": ("alternate_ma", {}),
    "random": ("random", {"seed": 0}),
    "all Mamba": ("all_mamba", {}),
    "all attention": ("all_attention", {}),
    "all conv": ("all_mamba", {"mamba": "C"}),
}

# The paper's Table 5 (ImageNet-1K top-1 of MambaVision-T with each pattern), by label: what the report
# ranks the proxy against. all Mamba, all attention and inverted are not in the paper's table.
PAPER_TOP1 = {"random": 81.3, "first N/2": 81.5, "mixed 1 (TMTM)": 81.4, "mixed 2 (MTMT)": 81.6,
              "last N/4": 81.9, "last N/2 (default)": 82.3}
PAPER_TABLE = "Table 5 (integration pattern, ImageNet-1K top-1, MambaVision-T)"


def inverted(base):
    """EfficientVMamba: every block of the first half of the stages an M, every later one a C."""
    from ablate.spec import parse_spec
    stages = parse_spec(base).stages
    half = len(stages) // 2
    return "|".join(("M" if i < half else "C") * len(stage) for i, stage in enumerate(stages))


def designs(cfg):
    from ablate.spec import apply_pattern
    base = cfg.model.spec
    rows = [Design.make(label, apply_pattern(base, name, **options).canonical)
            for label, (name, options) in PATTERNS.items()]
    return rows + [Design.make("inverted (EfficientVMamba)", inverted(base))]


SPACE = register_space(Space(name="placement", description=__doc__, designs=designs, paper_top1=PAPER_TOP1,
                             paper_table=PAPER_TABLE))
