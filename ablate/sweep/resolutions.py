"""resolutions=[32,48,64]: the same sweep at several token counts, one sub-sweep per image size.

Each sub-sweep is an ordinary sweep in runs/<name>/resolutions/<size>px/ (resumable, with its own throughput
phase at its size, its own report). Stages 3 and 4 get windows as large as their maps, so attention and the scan
stay global at every size: what changes is how many tokens they mix, which is the question (MambaOut's argument
that attention pays off only with many tokens). The run's report compares the sizes (ablate/report/tokens.py).
"""
import copy
from pathlib import Path
from typing import Optional, Tuple

from ..config import SweepConfig, save_run_config

RESOLUTIONS_DIR = "resolutions"


def stage_sides(image_size: int, stem_stride: int) -> Tuple[int, int]:
    """The sides of stage 3's and stage 4's feature maps: stage 1 runs at image_size / stem_stride and each later
    stage halves it (32 px, stride 1: 8 and 4; 224 px, the released stride 4: 14 and 7)."""
    side3 = image_size // (4 * stem_stride)
    return side3, side3 // 2


def resolution_config(cfg: SweepConfig, image_size: int, parent: Path) -> SweepConfig:
    sub = copy.deepcopy(cfg)
    side3, side4 = stage_sides(image_size, cfg.model.stem_stride)
    sub.data.image_size = image_size
    sub.model.window_size = [*cfg.model.window_size[:2], side3, side4]
    sub.runs_dir, sub.name, sub.resolutions = str(parent / RESOLUTIONS_DIR), f"{image_size}px", []
    return sub


def run_resolutions(cfg: SweepConfig, command: str, run_sweep) -> Optional[Path]:
    """Each size's sub-sweep in turn, smallest first; returns the parent run directory (None for plan=true)."""
    parent = (Path(cfg.runs_dir) / (cfg.name or cfg.space)).resolve()
    for size in sorted(set(cfg.resolutions)):
        sub = resolution_config(cfg, size, parent)
        side3, side4 = stage_sides(size, cfg.model.stem_stride)
        print(f"# {size} px: stage 3 sees {side3}x{side3} = {side3 ** 2} tokens, stage 4 {side4}x{side4} "
              f"(windows as large as the maps)", flush=True)
        run_sweep(sub, command=f"{command} (the {size} px sub-sweep)")
    if cfg.plan:
        return None
    save_run_config(parent, cfg)
    return parent
