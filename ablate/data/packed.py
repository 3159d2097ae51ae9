"""Packed datasets: every dataset is decoded once into uint8 arrays in the cache, and trials memory-map them.

A pack is a directory ``$ABLATE_CACHE/packs/<name>-<key>/``:

    train_images.npy  (N, H, W, 3) uint8     train_labels.npy  (N,) int64
    val_images.npy    (M, H, W, 3) uint8     val_labels.npy    (M,) int64   (M = 0 for a set without a val split)
    meta.json         name, key, classes (names), mean and std of the training images (0..1 scale), source

Concurrent trials on one machine map the same files, so they share one copy through the page cache, and a set
larger than memory still trains. A pack is built in a temporary directory and renamed into place, so a reader
sees a whole pack or none. Builders of one pack take turns on a lock file in $ABLATE_CACHE/locks/, so concurrent
trials build it once and the others wait and open it. Where the lock does not hold (a shared filesystem without
``flock``), two builders both succeed and one copy is kept.
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .base import cache_dir

PACK_VERSION = 1              # bump when the layout of a pack changes, so stale packs are not reused
SPLITS = ("train", "val")
STATS_CHUNK = 4096            # images per chunk when the channel statistics are accumulated
PARALLEL_FROM = 2000          # decode files in worker processes from this many on (a pool costs seconds to start)
FILES_PER_TASK = 256


@dataclasses.dataclass
class Pack:
    """An opened pack: memory-mapped images, labels in memory."""
    path: Path
    key: str
    images: Dict[str, np.ndarray]      # split -> (N, H, W, 3) uint8, memory-mapped
    labels: Dict[str, np.ndarray]      # split -> (N,) int64
    classes: List[str]
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @property
    def image_size(self) -> int:
        return self.images["train"].shape[1]


def pack_path(name: str, identity: dict) -> Path:
    """Where the pack of ``name`` with this identity (source, sizes, options) lives."""
    key = hashlib.sha1(json.dumps({**identity, "pack_version": PACK_VERSION}, sort_keys=True,
                                  default=str).encode()).hexdigest()[:16]
    return cache_dir() / "packs" / f"{name}-{key}"


def open_pack(path: Path) -> Pack:
    meta = json.loads((path / "meta.json").read_text())
    images = {split: np.load(path / f"{split}_images.npy", mmap_mode="r") for split in SPLITS}
    labels = {split: np.load(path / f"{split}_labels.npy") for split in SPLITS}
    return Pack(path, meta["key"], images, labels, meta["classes"], tuple(meta["mean"]), tuple(meta["std"]))


class PackBuilder:
    """Fills a pack in a temporary directory: whole arrays (``add``) or image files decoded in parallel
    (``add_files``). ``ensure_pack`` finishes it: statistics, meta.json, and the rename into place."""

    def __init__(self, temp: Path, name: str, image_size: int):
        self.temp, self.name, self.image_size = temp, name, image_size
        self.classes: List[str] = []
        self.source = ""

    def add(self, split: str, images: np.ndarray, labels: Sequence[int]) -> None:
        """A whole split at once: (N, H, W, 3) uint8 images."""
        np.save(self.temp / f"{split}_images.npy", np.ascontiguousarray(images, dtype=np.uint8))
        np.save(self.temp / f"{split}_labels.npy", np.asarray(labels, dtype=np.int64))

    def empty(self, split: str) -> None:
        self.add(split, np.zeros((0, self.image_size, self.image_size, 3), np.uint8), [])

    def add_files(self, split: str, paths: Sequence[Path], labels: Sequence[int],
                  read: Callable[[Path, int], np.ndarray]) -> None:
        """Decode ``paths`` with ``read(path, image_size)`` into the split's array on disk, in worker processes
        for large sets, with a progress bar. ``read`` must be a module-level function (workers import it)."""
        size = self.image_size
        out = np.lib.format.open_memmap(self.temp / f"{split}_images.npy", mode="w+", dtype=np.uint8,
                                        shape=(len(paths), size, size, 3))
        chunks = [list(paths[i:i + FILES_PER_TASK]) for i in range(0, len(paths), FILES_PER_TASK)]
        with _progress(f"packing {self.name} {split}", len(paths)) as bar:
            for start, block in zip(range(0, len(paths), FILES_PER_TASK), _decode(chunks, size, read)):
                out[start:start + len(block)] = block
                bar.update(len(block))
        out.flush()
        del out
        np.save(self.temp / f"{split}_labels.npy", np.asarray(labels, dtype=np.int64))


def _read_all(read, paths, size):
    return np.stack([read(path, size) for path in paths]) if paths else np.zeros((0, size, size, 3), np.uint8)


def _decode(chunks, size, read):
    """Decoded chunks in order; worker processes (spawned: a forked trial's threads could deadlock them) when
    there are many files."""
    total = sum(len(chunk) for chunk in chunks)
    workers = min(os.cpu_count() or 1, 16)
    if total < PARALLEL_FROM or workers == 1:
        yield from (_read_all(read, chunk, size) for chunk in chunks)
        return
    import multiprocessing
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_read_all, [read] * len(chunks), chunks, [size] * len(chunks))


class _progress:
    """tqdm on a terminal; otherwise silent (a trial's log needs no bar)."""

    def __init__(self, what: str, total: int):
        self.bar = None
        if sys.stderr.isatty() and total >= PARALLEL_FROM:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=what, unit="img")

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def channel_stats(images: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and standard deviation of (N, H, W, C) uint8 images on the 0..1 scale, accumulated in
    float64 chunk by chunk (a memory-mapped set is never loaded whole)."""
    channels = images.shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(images), STATS_CHUNK):
        block = np.asarray(images[start:start + STATS_CHUNK], dtype=np.float64).reshape(-1, channels) / 255.0
        total += block.sum(0)
        squares += (block * block).sum(0)
        count += len(block)
    if count < 2:
        return (0.5,) * channels, (0.25,) * channels
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0) * count / (count - 1))
    return tuple(mean.tolist()), tuple(np.maximum(std, 1e-3).tolist())


def ensure_pack(name: str, identity: dict, image_size: int, build: Callable[[PackBuilder], None]) -> Pack:
    """The pack of ``name`` for ``identity``, built by ``build(builder)`` if it is not in the cache yet."""
    path = pack_path(name, identity)
    if not (path / "meta.json").is_file():
        with _builder_turn(path):
            if not (path / "meta.json").is_file():      # not built by the builder we waited for
                _build(path, name, identity, image_size, build)
    return open_pack(path)


@contextlib.contextmanager
def _builder_turn(path: Path):
    """Hold the pack's lock file while building, so that concurrent trials do not each decode the same set."""
    locks = path.parent.parent / "locks"               # beside packs/, which holds packs only
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)               # released when the file is closed, or the process dies
        yield


def _build(path: Path, name: str, identity: dict, image_size: int, build) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    temp.mkdir()
    try:
        started = time.perf_counter()
        builder = PackBuilder(temp, name, image_size)
        build(builder)
        train = np.load(temp / "train_images.npy", mmap_mode="r")
        source = train if len(train) else np.load(temp / "val_images.npy", mmap_mode="r")
        mean, std = channel_stats(source)
        del train, source
        meta = {"name": name, "key": path.name, "identity": identity, "classes": builder.classes,
                "mean": mean, "std": std, "image_size": image_size, "source": builder.source,
                "pack_seconds": round(time.perf_counter() - started, 3), "pack_version": PACK_VERSION}
        (temp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(temp, path)
        except OSError:
            if not (path / "meta.json").is_file():     # not another builder that won the race: a real error
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def file_identity(files: Sequence[Path], root: Optional[Path] = None) -> str:
    """A digest of the files' names, sizes and modification times: a changed source makes a new pack."""
    digest = hashlib.sha1()
    for path in files:
        stat = path.stat()
        name = str(path.relative_to(root)) if root else str(path)
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
