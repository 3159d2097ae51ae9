"""The config of one proxy training, typed from the command line to the trial: the model, the data, the trainer
and the seed. Nothing here imports torch: the sweep's config (ablate/config.py) is built from these, and a trial's
config is the sweep's with one design applied (``ProxyConfig.for_design``).
"""
import copy
import dataclasses
from typing import Any, Dict, List, Optional


@dataclasses.dataclass
class ModelConfig:
    """The proxy model: MambaVision-T's letters at width 16. 32 px images with a stride-1 stem give stage 3 an
    8x8 map (64 tokens, one window) and stage 4 a 4x4 map (16 tokens): the regime where mixer and placement
    matter. The cost: 50.8 MMACs and 0.87M parameters per image, 16x what the released stride-4 stem would
    cost at 32 px (where stage 3 would see 2x2 tokens), and about what the released stem costs on 128 px
    images with the same token counts (52.2 MMACs), at 1/16 of the pixels to generate and store."""
    spec: str = "C|CCC|MMMMTTTT|MMTT"
    dim: int = 16
    in_dim: int = 16
    num_heads: List[int] = dataclasses.field(default_factory=lambda: [1, 2, 4, 8])
    window_size: List[int] = dataclasses.field(default_factory=lambda: [8, 8, 8, 4])
    mlp_ratio: float = 2.0
    stem_stride: int = 1
    drop_path_rate: float = 0.0
    layer_scale: Optional[float] = None
    mixer_knobs: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DataConfig:
    # The default proxy task: 10 FractalDB-style classes under full rotation, chosen by decisiveness per CPU-second
    # among the candidates in reports/proxy_search/README.md (match, the old default, was a seed lottery).
    name: str = "fractal"
    image_size: int = 32
    root: Optional[str] = None       # cifar10 / imagefolder directory
    # The data seed: which images (and, for real data, which split). None: the trial's seed, so each seed has
    # its own dataset; a number: every seed trains on the same images (the seed varies initialisation and
    # order). Either way every design of a seed sees the same images in the same order.
    seed: Optional[int] = None
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # n_train, n_val, task difficulty knobs
    # Per-batch augmentation on the training device (ablate/data/augment.py): none, basic, strong, or auto
    # (none for generated tasks, basic for real images).
    augment: str = "auto"
    # How batches reach the device (ablate/data/feed.py): host (read from the memory map per batch, pinned),
    # device (the split's uint8 rows copied to the device once), auto (device on a GPU when it fits).
    feed: str = "auto"


@dataclasses.dataclass
class TrainerConfig:
    epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    threads: int = 1                 # torch.set_num_threads: two trials on two cores do not fight
    device: str = "auto"             # auto: cuda when available, else cpu
    eval_batch_size: int = 250
    # Validation after every epoch, and late_evals more times for each budget, evenly spaced over its last quarter
    # or its cooldown when that is shorter (the last at the budget's end): the "late" metrics average those.
    late_evals: int = 3
    # The budget ladder (ablate/ladder.py): fractions of the trial's steps at which a finished model is evaluated,
    # each with its own cooldown, the learning rate decaying to zero over the last `cooldown` of that budget
    # (`decay`: linear or cosine). The default cools each budget down over its whole length with a cosine, so the
    # trunk is the proxy's trial before the ladder, bit for bit, and the half budget costs 0.25x more: a short
    # linear cooldown (0.2, the LLM recipe) left the design effect at p = 0.5-0.8 on seeds 100-102, its residual
    # spread three times the cosine's (reports/placement_ladder/README.md).
    budgets: List[float] = dataclasses.field(default_factory=lambda: [0.5, 1.0])
    cooldown: float = 1.0
    decay: str = "cosine"
    # channels_last memory format for images and conv weights: faster convs with oneDNN on CPU and cuDNN on GPU.
    channels_last: bool = True
    # On CUDA, the training step captured as one CUDA graph after a few eager steps and replayed (ablate/step_graph.py):
    # a proxy trial is bound by kernel launches there. Where capture fails the trial goes on eagerly and its row says
    # so (step_mode). No effect on a CPU. Off until measured on a GPU (benchmarks/gpu_sweep.py).
    cuda_graph: bool = False


@dataclasses.dataclass
class ProxyConfig:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    seed: int = 0

    def for_design(self, design, seed: int = 0) -> "ProxyConfig":
        """A copy that trains ``design`` (anything with a canonical ``spec`` and ``knobs``, a dict of mixer knobs
        by letter: an ablate.space.Design) at ``seed``; seed 0 outside any trial (building, measuring or
        calibrating the design). The design's knobs go over this config's model.mixer_knobs letter by letter, so
        neither is dropped."""
        ours = self.model.mixer_knobs or {}
        knobs = {letter: {**ours.get(letter, {}), **design.knobs.get(letter, {})} for letter in {*ours, *design.knobs}}
        model = dataclasses.replace(copy.deepcopy(self.model), spec=design.spec, mixer_knobs=knobs)
        return dataclasses.replace(self, model=model, seed=seed)

    @property
    def data_seed(self) -> int:
        """The seed the dataset is drawn with: data.seed when fixed, else the trial's own seed."""
        return self.seed if self.data.seed is None else self.data.seed

    @classmethod
    def from_dict(cls, values: dict) -> "ProxyConfig":
        """The config read back from JSON (a subprocess's argument, a file): the one crossing that is not typed."""
        return cls(model=ModelConfig(**values.get("model", {})), data=DataConfig(**values.get("data", {})),
                   trainer=TrainerConfig(**values.get("trainer", {})), seed=values.get("seed", 0))
