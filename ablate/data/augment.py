"""Data augmentation per batch, on the training device, with kornia: ``data.augment=none|basic|strong|auto``.

  none    the images as they are (the default for generated tasks: flips and crops would change what some of
          them ask, e.g. order's left/right)
  basic   pad-and-crop (pad 1/8 of the side) at 32 px and below, random-resized crop (scale 0.35-1) above, and a
          horizontal flip (the default for real images)
  strong  basic, then a RandAugment policy (2 ops, magnitude 9), then mixup or cutmix (one of the two per batch,
          lambda ~ U(0, 1)), which makes the targets soft
  auto    none for generated tasks, basic for real ones

Deterministic per seed: each batch's randomness is drawn from a generator seeded by the trial's seed and the step
alone (the global RNG is forked around it), so every design of a seed sees the same augmented batches (common
random numbers), whatever its architecture consumed from the RNG.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .base import DatasetError

AUGMENTS = ("none", "basic", "strong", "auto")
PAD_CROP_UP_TO = 32          # image sizes at or below this are pad-and-cropped (CIFAR's recipe); above, RRC
RRC_SCALE = (0.35, 1.0)      # random-resized crop for small images keeps more than ImageNet's 0.08


def resolve_augment(name: str, generated: bool) -> str:
    if name not in AUGMENTS:
        raise DatasetError(f"data.augment={name!r} is not an augmentation; valid: {', '.join(AUGMENTS)}")
    if name == "auto":
        return "none" if generated else "basic"
    return name


def _geometric(image_size: int):
    import kornia.augmentation as K
    if image_size <= PAD_CROP_UP_TO:
        crop = K.RandomCrop((image_size, image_size), padding=max(1, image_size // 8), padding_mode="reflect")
    else:
        crop = K.RandomResizedCrop((image_size, image_size), scale=RRC_SCALE)
    return K.AugmentationSequential(crop, K.RandomHorizontalFlip())


def _rand_augment():
    from kornia.augmentation.auto import RandAugment
    return RandAugment(n=2, m=9)


class BatchAugment:
    """One policy: geometric crops and flips, optionally RandAugment and mixup/cutmix."""

    def __init__(self, image_size: int, num_classes: int, seed: int, policy: bool, mix: bool):
        import kornia.augmentation as K
        self.geometric = _geometric(image_size)
        self.policy = _rand_augment() if policy else None
        self.mixup = K.RandomMixUpV2(data_keys=["input", "class"]) if mix else None
        self.cutmix = K.RandomCutMixV2(data_keys=["input", "class"], use_correct_lambda=True) if mix else None
        self.num_classes, self.seed = num_classes, seed

    def __call__(self, x: torch.Tensor, y: torch.Tensor, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        devices = [x.device.index or 0] if x.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed * 1_000_003 + step)
            x = self.geometric(x)
            if self.policy is not None:
                x = self.policy(x).clamp(0.0, 1.0)
            if self.mixup is not None:
                x, y = self._mix(x, y)
        return x, y

    def _mix(self, x, y) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mixup or cutmix (a coin per batch); soft targets weighted by each image's share of the pixels."""
        hot = F.one_hot(y, self.num_classes).float()
        if torch.rand(()) < 0.5:
            x, mixed = self.mixup(x, y)             # mixed (b, 3): label a, label b, lambda (b's weight)
            weight_b = mixed[:, 2]
        else:
            x, mixed = self.cutmix(x, y)            # mixed (1, b, 3): label a, label b, lambda (a's share)
            mixed = mixed[0]
            weight_b = 1.0 - mixed[:, 2]
        other = F.one_hot(mixed[:, 1].long(), self.num_classes).float()
        w = weight_b.view(-1, 1).to(hot)
        return x, hot * (1.0 - w) + other * w


POLICIES: Dict[str, Callable[[int, int, int], Optional[BatchAugment]]] = {
    "none": lambda image_size, classes, seed: None,
    "basic": lambda image_size, classes, seed: BatchAugment(image_size, classes, seed, policy=False, mix=False),
    "strong": lambda image_size, classes, seed: BatchAugment(image_size, classes, seed, policy=True, mix=True),
}


def make_augment(name: str, generated: bool, image_size: int, num_classes: int, seed: int
                 ) -> Optional[BatchAugment]:
    """The augmentation a trial applies to its training batches, or None."""
    return POLICIES[resolve_augment(name, generated)](image_size, num_classes, seed)
