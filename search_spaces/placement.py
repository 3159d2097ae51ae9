"""The paper's integration-pattern ablation (Table 5) on stages 3-4 of the proxy model, plus all-Mamba,
all-attention and EfficientVMamba's opposite hypothesis (global mixers early, convs late)."""
DESCRIPTION = __doc__
SCHEDULER = "none"
SEARCHABLE = False

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
}


def inverted(base):
    """EfficientVMamba: every block of the first half of the stages an M, every later one a C."""
    from ablate.spec import parse_spec
    stages = parse_spec(base).stages
    half = len(stages) // 2
    return "|".join(("M" if i < half else "C") * len(stage) for i, stage in enumerate(stages))


def designs(cfg):
    from ablate.spec import apply_pattern
    from search_spaces import Design
    base = cfg.model.spec
    rows = [Design.make(label, apply_pattern(base, name, **options).canonical)
            for label, (name, options) in PATTERNS.items()]
    return rows + [Design.make("inverted (EfficientVMamba)", inverted(base))]
