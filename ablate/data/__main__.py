"""Pack a dataset into the cache ahead of a sweep (trials also pack on first use):

    python -m ablate.data pack NAME [root=PATH] [image_size=64] [seed=0] [option=value ...]

NAME is any dataset of ``ablate.data`` (cifar10, cifar100, fashion_mnist, imagefolder, tinyimagenet, digits, or a
generated task, whose pack is per seed). Exits 2 with the reason when the dataset cannot be read.
"""
import sys
import time

from omegaconf import OmegaConf

from . import LOADERS, DatasetError, load_dataset
from .base import cache_dir

USAGE = __doc__.strip().splitlines()[2].strip()


def parse(args):
    if len(args) < 2 or args[0] != "pack":
        raise SystemExit(f"usage: {USAGE}\nnames: {', '.join(LOADERS)}")
    for item in args[2:]:
        if "=" not in item:
            raise SystemExit(f"{item!r} is not key=value\nusage: {USAGE}")
    # OmegaConf types the values (ints, floats, paths as text), as run_sweep.py's overrides are read
    return args[1], OmegaConf.to_container(OmegaConf.from_dotlist(args[2:]))


def main(args=None) -> int:
    name, options = parse(sys.argv[1:] if args is None else args)
    image_size, seed = options.pop("image_size", 32), options.pop("seed", 0)
    started = time.perf_counter()
    try:
        splits = load_dataset(name, image_size=image_size, seed=seed, **options)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    arrays = {id(p.images): p.images for p in (splits.train, splits.val)}.values()
    size = sum(a.nbytes for a in arrays)
    print(f"{name}: pack {splits.key} in {cache_dir() / 'packs'}: {sum(len(a) for a in arrays)} images at "
          f"{image_size} px, {splits.num_classes} classes, {size / 2 ** 20:.1f} MiB (seed {seed}'s split: "
          f"{len(splits.train)} train, {len(splits.val)} val); {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
