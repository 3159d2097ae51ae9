"""Batches for the trainer: uint8 rows of a pack -> normalised float images on the training device.

Two feeds, one result:
  host    each batch is read from the memory map (only its rows), pinned when the device is a GPU, copied with
          non_blocking, and the next batch is read by a thread while the device computes (on a GPU);
  device  the split's uint8 rows are copied to the device once and batches are indexed there (no copy per step;
          on a CPU device this is a private in-memory copy of the split's rows).
``auto`` takes ``device`` on a GPU when the split's uint8 rows fit in DEVICE_FEED_MAX_BYTES, else ``host``.
Normalisation ((x / 255 - mean) / std) and augmentation run per batch on the device. ``Splits.tensors()`` is the
reference: the same batches from whole-set float tensors (tests/test_packed.py compares them).
"""
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Optional, Tuple

import numpy as np
import torch

from .base import DatasetError, Part

FEEDS = ("auto", "host", "device")
DEVICE_FEED_MAX_BYTES = 4 << 30     # per split and trial: four trials on one GPU hold four copies
COPY_ROWS = 8192                     # rows copied to the device at a time (no whole-split host copy)

# (x in [0, 1] (b, C, H, W) float, labels (b,), step) -> (x, targets): labels, or (b, classes) soft targets
Augment = Callable[[torch.Tensor, torch.Tensor, int], Tuple[torch.Tensor, torch.Tensor]]


def resolve_feed(feed: str, part: Part, device: torch.device) -> str:
    if feed not in FEEDS:
        raise DatasetError(f"data.feed={feed!r} is not a feed; valid: {', '.join(FEEDS)}")
    if feed != "auto":
        return feed
    nbytes = len(part) * int(np.prod(part.images.shape[1:]))
    return "device" if device.type == "cuda" and nbytes <= DEVICE_FEED_MAX_BYTES else "host"


class Feeder:
    """Normalised batches of one split on ``device``: ``batch(index, step)`` for training (augmented),
    ``batches(size)`` for evaluation (in order, not augmented)."""

    def __init__(self, part: Part, mean, std, device: torch.device, channels_last: bool = True,
                 feed: str = "auto", augment: Optional[Augment] = None):
        self.part, self.device, self.channels_last, self.augment = part, device, channels_last, augment
        self.feed = resolve_feed(feed, part, device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.labels = part.labels.to(device)
        self.resident = self._copy_to_device() if self.feed == "device" else None
        self.pin = device.type == "cuda"
        self._prefetch = None            # the thread that reads the next training batch (GPU host feed only)

    def _copy_to_device(self) -> torch.Tensor:
        part = self.part
        resident = torch.empty((len(part), *part.images.shape[1:]), dtype=torch.uint8, device=self.device)
        for start in range(0, len(part), COPY_ROWS):                  # (n, H, W, C) uint8, filled in chunks
            rows = np.arange(start, min(start + COPY_ROWS, len(part)))
            resident[start:start + len(rows)] = torch.from_numpy(part.pixels(rows))
        return resident

    def _host_pixels(self, index: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(self.part.pixels(index))         # (b, H, W, C) uint8, read from the map
        return pixels.pin_memory() if self.pin else pixels

    def _to_float(self, pixels: torch.Tensor) -> torch.Tensor:
        """(b, H, W, C) uint8 -> (b, C, H, W) float in [0, 1]. The permuted view of NHWC memory is already
        channels_last, so the layout costs nothing; otherwise it is made contiguous."""
        x = pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() / 255.0
        return x if self.channels_last else x.contiguous()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def _pixels(self, index, pending=None) -> torch.Tensor:
        if self.resident is not None:
            return self.resident[torch.as_tensor(index, device=self.device)]
        return pending.result() if pending is not None else self._host_pixels(np.asarray(index))

    def batch(self, index, step: int, pending=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Training batch at positions ``index`` of the split: (b, C, H, W) normalised images and the targets
        (labels, or soft targets when the augmentation mixes images)."""
        x = self._to_float(self._pixels(index, pending))
        y = self.labels[torch.as_tensor(index, device=self.device)]
        if self.augment is not None:
            x, y = self.augment(x, y, step)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return self.normalise(x), y

    def epoch(self, order: torch.Tensor, batch_size: int, steps: int, first_step: int
              ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's training batches in ``order``; on a GPU host feed the next batch is read and pinned by a
        thread while the current one trains."""
        indices = [order[i * batch_size:(i + 1) * batch_size].numpy() for i in range(steps)]
        if self.pin and self.feed == "host" and self._prefetch is None:
            self._prefetch = ThreadPoolExecutor(1)
        pending = self._submit(indices[0]) if indices else None
        for i, index in enumerate(indices):
            current = pending
            pending = self._submit(indices[i + 1]) if i + 1 < len(indices) else None
            yield self.batch(index, first_step + i, current)

    def _submit(self, index):
        return self._prefetch.submit(self._host_pixels, index) if self._prefetch is not None else None

    def batches(self, batch_size: int) -> Iterable[Tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in order, normalised, not augmented (evaluation)."""
        for start in range(0, len(self.part), batch_size):
            index = np.arange(start, min(start + batch_size, len(self.part)))
            x = self._to_float(self._pixels(index))
            yield self.normalise(x), self.labels[start:start + len(index)]

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.shutdown(wait=True)
