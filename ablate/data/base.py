"""What every dataset returns (splits as rows of a pack), where packs are cached, and the error raised on bad input."""
import dataclasses
import os
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F


class DatasetError(ValueError):
    """A dataset that cannot be read: the message says the path, what was expected and what was found."""


@dataclasses.dataclass
class Part:
    """One split: rows of a packed (memory-mapped) uint8 image array, and their labels."""
    images: np.ndarray          # (N, H, W, C) uint8, the pack's array; this split uses ``rows`` of it
    rows: np.ndarray            # (n,) int64
    labels: torch.Tensor        # (n,) int64, the labels of those rows

    def __len__(self) -> int:
        return len(self.rows)

    def pixels(self, index) -> np.ndarray:
        """(b, H, W, C) uint8 images at positions ``index`` of the split: read from the map, only these."""
        return self.images[self.rows[np.asarray(index)]]


@dataclasses.dataclass
class Splits:
    """A dataset's train and val splits as uint8 rows of a pack, with the training images' channel statistics.
    Trials normalise per batch on their device (``feed.Feeder``); ``tensors()`` is the whole-set reference."""
    name: str
    train: Part
    val: Part
    num_classes: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    key: str = ""                       # the pack's name: which images (with the rows, what a trial saw)
    classes: Tuple[str, ...] = ()

    @property
    def image_size(self) -> int:
        return self.train.images.shape[1]

    @property
    def in_chans(self) -> int:
        return self.train.images.shape[-1]

    def tensors(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reference path (what every trial held before packs): both splits whole, as normalised float32
        (N, C, H, W) tensors in memory, and their labels."""
        m = torch.tensor(self.mean).view(1, -1, 1, 1)
        s = torch.tensor(self.std).view(1, -1, 1, 1)

        def whole(part):
            x = torch.from_numpy(np.ascontiguousarray(part.pixels(np.arange(len(part))))).permute(0, 3, 1, 2)
            return ((x.float() / 255.0 - m) / s).contiguous()
        return whole(self.train), self.train.labels, whole(self.val), self.val.labels


def cache_dir() -> Path:
    """$ABLATE_CACHE, else ~/.cache/ablate: packed datasets are written here once and reused."""
    return Path(os.environ.get("ABLATE_CACHE", Path.home() / ".cache" / "ablate"))


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
