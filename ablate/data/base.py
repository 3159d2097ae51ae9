"""What every dataset returns, where generated data is cached, and the error raised on bad input."""
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F


class DatasetError(ValueError):
    """A dataset that cannot be read: the message says the path, what was expected and what was found."""


@dataclasses.dataclass
class Splits:
    """Normalised (N, C, H, W) float32 images and int64 labels, split once by a seed."""
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]

    @property
    def in_chans(self) -> int:
        return self.train_x.shape[1]


def cache_dir() -> Path:
    """$ABLATE_CACHE, else ~/.cache/ablate: generated datasets are written here once and reused."""
    return Path(os.environ.get("ABLATE_CACHE", Path.home() / ".cache" / "ablate"))


def cache_path(kind: str, params: dict) -> Path:
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "data" / f"{kind}-{key}.npz"


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, size, size, C) uint8, bilinear (antialiased when shrinking)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def split_indices(n: int, val_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return order[n_val:], order[:n_val]


def make_splits(name, train_images, train_labels, val_images, val_labels, num_classes,
                mean: Optional[Tuple[float, ...]] = None, std: Optional[Tuple[float, ...]] = None) -> Splits:
    """uint8 (N, H, W, C) arrays -> normalised tensors, with per-channel statistics of the training split."""
    train = torch.from_numpy(np.ascontiguousarray(train_images)).permute(0, 3, 1, 2).float() / 255.0
    val = torch.from_numpy(np.ascontiguousarray(val_images)).permute(0, 3, 1, 2).float() / 255.0
    if mean is None:
        mean = tuple(train.mean(dim=(0, 2, 3)).tolist())
        std = tuple(train.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    return Splits(name, ((train - m) / s).contiguous(), torch.as_tensor(train_labels, dtype=torch.int64),
                  ((val - m) / s).contiguous(), torch.as_tensor(val_labels, dtype=torch.int64),
                  int(num_classes), mean, std)
