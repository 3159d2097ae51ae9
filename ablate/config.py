"""The sweep's typed defaults, written once, and key=value overrides through OmegaConf.

Unknown keys and bad values fail here, before Ray starts, with the valid keys or choices.
"""
import copy
import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data.augment import AUGMENTS
from .data.feed import FEEDS
from .ladder import LadderError, check_budgets
from .proxy import DataConfig, ModelConfig, ProxyConfig, TrainerConfig
from .timing import ThroughputConfig, check_throughput

SEARCH_ALGOS = ("grid", "random", "tpe", "nsga2")
SCHEDULERS = ("auto", "asha", "none")


class Needs(NamedTuple):
    module: str                      # what the tracker's Ray Tune callback imports
    install: str                     # the pip requirement that provides it


# tracking=...: the experiment trackers (Ray Tune logger callbacks, built in ablate/sweep/tracking.py) and the
# package each needs, checked before Ray starts. none: no tracker (Tune's own CSV and JSON trial logs only).
TRACKERS: Dict[str, Optional[Needs]] = {
    "none": None,
    "tensorboard": Needs("tensorboardX", "tensorboardX"),
    "mlflow": Needs("mlflow", "mlflow-skinny"),
    "wandb": Needs("wandb", "wandb"),
}
# list keys that also take comma-separated values: tracking=tensorboard,mlflow as well as tracking=[tensorboard,mlflow]
COMMA_LISTS = ("tracking",)


@dataclasses.dataclass
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    # fractions pack several trials on one GPU (0.25: four at once); auto: as many as the plan's calibration on this
    # machine's GPU says fit its memory, the CPUs and its speed (ablate.calibration.gpu_packing), printed by plan=true
    gpus_per_trial: Union[float, int, str] = 0.0
    # Ray custom resources each trial asks for, e.g. {big_node: 1} to run trials only on nodes started with
    # `ray start --resources='{"big_node": 4}'`.
    custom: Dict[str, float] = dataclasses.field(default_factory=dict)
    # times Tune restarts a trial, from its last epoch's checkpoint, after its worker process or node was lost (or
    # CUDA ran out of memory on a shared GPU); a trial's own failure (diverged, bad spec, bad data) is never retried
    max_retries: int = 2
    # Train a design's seeds as one model in one trial (ablate/fused.py): one kernel launch per layer for all of
    # them, for GPUs, where a proxy trial alone is launch-bound (on a CPU it is slower). A grid sweep only (a search
    # trains one seed per design); each seed keeps its own row. Off until measured on a GPU (benchmarks/gpu_sweep.py).
    fuse_seeds: bool = False


@dataclasses.dataclass
class RayConfig:
    address: Optional[str] = None    # None: start a local Ray; "auto": join the running cluster; or host:port


@dataclasses.dataclass
class SearchConfig:
    algo: str = "grid"               # grid (the space's designs), random, tpe or nsga2 (Optuna, free space)
    num_samples: int = 16            # trials the non-grid algorithms propose
    seed: int = 0


@dataclasses.dataclass
class BudgetConfig:
    max_params: Optional[int] = None
    max_macs: Optional[int] = None   # per image at the proxy resolution, scan included


@dataclasses.dataclass
class ReportConfig:
    # The equivalence margin, in the primary metric's units, fixed before any pair is looked at: two designs whose
    # true difference is below it are "equivalent" (ablate/report/conclusions.py). 0.02 of accuracy is the
    # binomial spread of one validation accuracy near 0.6 on 500 images (sqrt(0.6 * 0.4 / 500) = 0.022): the
    # smallest difference the default proxy's first validation set could see in one evaluation.
    equivalence: float = 0.02


@dataclasses.dataclass
class SweepConfig:
    space: str = "placement"
    experiment: Optional[str] = None  # a file in experiments/ that pins space, data, budget and seeds
    name: Optional[str] = None        # run directory runs/<name>; default: the space's name
    seeds: int = 3
    # the first seed: trials run seeds first_seed ... first_seed + seeds - 1 (a number no report has used gives fresh
    # seeds, to show a conclusion on seeds it was not chosen on)
    first_seed: int = 0
    designs: List[str] = dataclasses.field(default_factory=list)  # only these of the space's designs, by label
    # image sizes to sweep the same designs at (one sub-sweep each, stage 3-4 windows as large as their maps);
    # empty: data.image_size alone
    resolutions: List[int] = dataclasses.field(default_factory=list)
    scheduler: str = "auto"           # auto: the space's default (none to reproduce, asha to search)
    resume: bool = False
    smoke: bool = False               # a tiny run for tests: 2 designs, 2 epochs on 256 images, width 8
    plan: bool = False                # print the designs, trials and an estimated wall time; train nothing
    runs_dir: str = "runs"
    throughput: ThroughputConfig = dataclasses.field(default_factory=ThroughputConfig)
    # experiment trackers, several allowed: none, tensorboard, mlflow, wandb (tracking=tensorboard,mlflow)
    tracking: List[str] = dataclasses.field(default_factory=lambda: ["none"])
    mlflow_uri: Optional[str] = None  # MLflow tracking URI; null: $MLFLOW_TRACKING_URI, else runs/<name>/mlflow.db
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    resources: ResourcesConfig = dataclasses.field(default_factory=ResourcesConfig)
    ray: RayConfig = dataclasses.field(default_factory=RayConfig)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    budget: BudgetConfig = dataclasses.field(default_factory=BudgetConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)

    def uses_gpu(self) -> bool:
        """Whether trials train on CUDA: resources.gpus_per_trial above 0, or auto."""
        return self.resources.gpus_per_trial == "auto" or self.resources.gpus_per_trial > 0

    def fuses_seeds(self) -> bool:
        """Whether a trial trains a design's pending seeds together (resources.fuse_seeds, a grid of several seeds)."""
        return self.resources.fuse_seeds and self.search.algo == "grid" and self.seeds > 1

    def seed_groups(self, seeds: Sequence[int]) -> List[Tuple[int, ...]]:
        """The trials a design's pending ``seeds`` make: one for all of them where seeds are fused, else one each."""
        seeds = tuple(seeds)
        if not seeds:
            return []
        return [seeds] if self.fuses_seeds() else [(seed,) for seed in seeds]

    def trial_proxy(self) -> ProxyConfig:
        """The proxy config every trial starts from (``.for_design(design, seed)`` gives one trial's): the sweep's
        model, data and trainer, with the threads and device its resources give. A copy: the sweep's config is
        not changed."""
        trainer = dataclasses.replace(copy.deepcopy(self.trainer), threads=max(1, int(self.resources.cpus_per_trial)),
                                      device="cuda" if self.uses_gpu() else "cpu")
        return ProxyConfig(model=copy.deepcopy(self.model), data=copy.deepcopy(self.data), trainer=trainer)


# smoke=true: a tiny run for tests and a first look; seeds stay as given. One budget: the ladder's branches are
# tested on their own (tests/test_ladder.py), and a smoke trial is mostly start-up already.
# Its throughput phase is a check that the rounds run, not a measurement: a small batch, one warm-up pass and a cap of
# half a second once the fewest rounds (6) have run.
SMOKE = {"designs": 2, "epochs": 2, "n_train": 256, "n_val": 128, "dim": 8, "budgets": [1.0], "throughput_batch": 8,
         "throughput_warmup": 1, "throughput_seconds": 0.5}


def smoke_changes(cfg: SweepConfig) -> List[Tuple[str, object, object]]:
    """(key, the value set, smoke's value) for every key smoke=true replaces: the one list apply_smoke applies."""
    from .data import is_large
    changes = [("trainer.epochs", cfg.trainer.epochs, SMOKE["epochs"]), ("model.dim", cfg.model.dim, SMOKE["dim"]),
               ("model.in_dim", cfg.model.in_dim, SMOKE["dim"]),
               ("trainer.budgets", cfg.trainer.budgets, SMOKE["budgets"]),
               ("throughput.batch", cfg.throughput.batch, SMOKE["throughput_batch"]),
               ("throughput.warmup", cfg.throughput.warmup, SMOKE["throughput_warmup"]),
               ("throughput.max_seconds", cfg.throughput.max_seconds, SMOKE["throughput_seconds"])]
    if is_large(cfg.data.name):                 # smoke cuts generated sets, CIFAR, Tiny-ImageNet; not folders
        changes += [("data.options.n_train", cfg.data.options.get("n_train"), SMOKE["n_train"]),
                    ("data.options.n_val", cfg.data.options.get("n_val"), SMOKE["n_val"])]
    return changes


def apply_smoke(cfg: SweepConfig) -> SweepConfig:
    """A copy of cfg with smoke's small settings."""
    smoke = copy.deepcopy(cfg)
    for key, _, value in smoke_changes(cfg):
        *path, name = key.split(".")
        owner = functools.reduce(getattr, path, smoke)       # a config dataclass, or data.options (a dict)
        if isinstance(owner, dict):
            owner[name] = value
        else:
            setattr(owner, name, copy.deepcopy(value))
    return smoke


def describe_smoke(cfg: SweepConfig) -> str:
    changed = ", ".join(f"{key}={new} (was {old if old is not None else 'the default'})"
                        for key, old, new in smoke_changes(cfg) if old != new)
    return f"smoke=true: the first {SMOKE['designs']} designs; sets " + (changed or "nothing else")


def seed_range(cfg: SweepConfig) -> range:
    """The seeds a grid sweep trains each design on."""
    return range(cfg.first_seed, cfg.first_seed + cfg.seeds)


class ConfigError(ValueError):
    """A bad override: the message names it and lists what is valid."""


def all_keys(cls=SweepConfig, prefix="") -> List[str]:
    """Dotted names of every key, nested dataclasses expanded."""
    keys = []
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            keys.extend(all_keys(field.type, f"{prefix}{field.name}."))
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def describe_keys() -> str:
    """Every key with its default, one per line (for --help and error messages)."""
    base = OmegaConf.structured(SweepConfig)
    return "\n".join(f"  {key} = {OmegaConf.select(base, key)}" for key in all_keys())


# The experiment files, found beside the package whatever the working directory (run_sweep.py from another folder).
EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"


def experiment_names(experiment_dir: Path = EXPERIMENTS_DIR) -> List[str]:
    return sorted(p.stem for p in Path(experiment_dir).glob("*.yaml"))


def load_config(overrides: List[str], experiment_dir: Path = EXPERIMENTS_DIR) -> SweepConfig:
    """Defaults, then the experiment file (if experiment=NAME is given), then the overrides."""
    base = OmegaConf.structured(SweepConfig)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value; valid keys:\n{describe_keys()}")
        old = item.split("=", 1)[0]
        if old in RENAMED_KEYS:
            raise ConfigError(f"{old} is now {RENAMED_KEYS[old]}: write {RENAMED_KEYS[old]}={item.split('=', 1)[1]}")
    overrides = [f"data.name={item.split('=', 1)[1]}" if item.startswith("data=") else item for item in overrides]
    try:
        cli = _comma_lists(OmegaConf.from_dotlist(overrides))
        experiment = OmegaConf.select(cli, "experiment")
        layers = [base]
        if experiment:
            layers.append(_comma_lists(_renamed(_load_experiment(experiment, experiment_dir))))
        cfg = OmegaConf.merge(*layers, cli)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{_first_line(error)}; valid keys:\n{describe_keys()}") from None
    result = OmegaConf.to_object(cfg)
    _validate(result)
    return result


def _comma_lists(layer):
    """A list key given as one comma-separated string (OmegaConf reads tracking=a,b as the string 'a,b') as
    that list."""
    for key in COMMA_LISTS:
        value = OmegaConf.select(layer, key)
        if isinstance(value, str):
            OmegaConf.update(layer, key, [part.strip() for part in value.split(",") if part.strip()], merge=False)
    return layer


RUN_CONFIG = "config.yaml"


def save_run_config(run_dir: Path, cfg: SweepConfig) -> None:
    """The config a sweep ran with, into its run directory (what the report, an audit and a resume read back)."""
    from .files import write_atomic
    write_atomic(Path(run_dir) / RUN_CONFIG, OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def load_run_config(run_dir: Path) -> SweepConfig:
    """The config a finished sweep ran with (smoke's settings already applied)."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a finished sweep: {path} is missing")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SweepConfig), _renamed(OmegaConf.load(path))))


# keys an older version wrote into config files (a run's config.yaml, an experiment): read under their new names
RENAMED_KEYS = {"throughput_batch": "throughput.batch"}


def _renamed(layer):
    for old, new in RENAMED_KEYS.items():
        if old in layer:
            OmegaConf.update(layer, new, layer.pop(old))
    return layer


def _first_line(error):
    return str(error).splitlines()[0]


def _load_experiment(name, experiment_dir):
    path = Path(experiment_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(experiment_names(experiment_dir)) or 'none'}")
    return OmegaConf.load(path)


def _validate(cfg: SweepConfig):
    from .space import SPACES, get_space
    try:
        space = get_space(cfg.space)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    checks = [
        (cfg.search.algo in SEARCH_ALGOS, f"search.algo={cfg.search.algo!r}; valid: {', '.join(SEARCH_ALGOS)}"),
        (cfg.scheduler in SCHEDULERS, f"scheduler={cfg.scheduler!r}; valid: {', '.join(SCHEDULERS)}"),
        (cfg.seeds >= 1, f"seeds={cfg.seeds}; need at least 1"),
        (cfg.first_seed >= 0, f"first_seed={cfg.first_seed}; need a seed >= 0"),
        (cfg.search.num_samples >= 1, f"search.num_samples={cfg.search.num_samples}; need at least 1"),
        (cfg.resources.cpus_per_trial > 0, f"resources.cpus_per_trial={cfg.resources.cpus_per_trial}; must be > 0"),
        (cfg.resources.gpus_per_trial == "auto" or (not isinstance(cfg.resources.gpus_per_trial, str)
                                                    and cfg.resources.gpus_per_trial >= 0),
         f"resources.gpus_per_trial={cfg.resources.gpus_per_trial!r}; a share of a GPU >= 0 (0.25: four trials per "
         f"GPU) or auto"),
        (cfg.resources.max_retries >= 0, f"resources.max_retries={cfg.resources.max_retries}; need 0 or more"),
        (not (cfg.resources.fuse_seeds and cfg.model.drop_path_rate > 0),
         f"resources.fuse_seeds=true with model.drop_path_rate={cfg.model.drop_path_rate}: stochastic depth draws from "
         f"the random stream the fused seeds share; set model.drop_path_rate=0 or resources.fuse_seeds=false"),
        (cfg.trainer.epochs >= 1, f"trainer.epochs={cfg.trainer.epochs}; need at least 1"),
        (cfg.data.augment in AUGMENTS, f"data.augment={cfg.data.augment!r}; valid: {', '.join(AUGMENTS)}"),
        (cfg.data.feed in FEEDS, f"data.feed={cfg.data.feed!r}; valid: {', '.join(FEEDS)}"),
        (cfg.report.equivalence > 0, f"report.equivalence={cfg.report.equivalence}; the equivalence margin must "
                                     f"be > 0 (in the primary metric's units, e.g. 0.02 of accuracy)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    try:
        check_budgets(cfg.trainer.budgets, cfg.trainer.cooldown, cfg.trainer.decay)
        check_throughput(cfg.throughput)
    except (LadderError, ValueError) as error:
        raise ConfigError(str(error)) from None
    step = 8 * cfg.model.stem_stride            # stage 4's map must come out whole
    bad = [size for size in cfg.resolutions if size < step or size % step]
    if bad:
        raise ConfigError(f"resolutions={cfg.resolutions}: {bad} not a multiple of {step} (8 x model.stem_stride="
                          f"{cfg.model.stem_stride}, so stages 3 and 4 get whole maps); e.g. "
                          f"{', '.join(str(step * k) for k in range(max(1, 32 // step), max(1, 32 // step) + 4))}")
    _validate_tracking(cfg.tracking)
    if cfg.search.algo in ("tpe", "nsga2") and not space.searchable:
        raise ConfigError(f"search.algo={cfg.search.algo} needs a searchable space; {cfg.space!r} is a fixed grid "
                          f"(searchable: {', '.join(n for n, s in SPACES.items() if s.searchable)})")


def _validate_tracking(names: List[str]) -> None:
    """Every tracker is known and its package is installed (checked without importing it)."""
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"tracking={','.join(names)}: {name!r} is not a tracker; valid: {', '.join(TRACKERS)} "
                              f"(several: tracking=tensorboard,mlflow)")
        needs = TRACKERS[name]
        if needs is not None and importlib.util.find_spec(needs.module) is None:
            raise ConfigError(f"tracking={name} needs the {needs.module} package, which is not installed: "
                              f"pip install {needs.install}")
