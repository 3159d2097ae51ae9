"""No code runs from a file a user was handed: a checkpoint and CIFAR files crafted to run a command when unpickled
are refused with an error naming the file and what it asked for, and the command does not run; the real formats
still load. Each crafted file is first shown to run its command under a plain unpickler, so the test can fail."""
import argparse
import os
import pickle

import numpy as np
import pytest
import torch

from ablate.data import DatasetError, load_dataset
from ablate.presets import CheckpointError, read_checkpoint


class RunsACommand:
    """Unpickling this calls os.system: what a crafted file does."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plain_unpickle_runs_it(path, marker):
    """The file is a real attack: an ordinary unpickler runs its command (then the marker is removed again)."""
    with open(path, "rb") as f:
        pickle.load(f, encoding="bytes")
    assert marker.exists()
    marker.unlink()


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"head.weight": torch.zeros(2)}, "extra": RunsACommand(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil.pth.tar: refused, not loaded: it holds posix.system beside the "
                                              r"weights.*allowed: tensors, containers, numbers, strings, "
                                              r"argparse.Namespace"):
        read_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)                       # what presets.py did before
    assert marker.exists()


def test_a_published_style_checkpoint_still_loads(tmp_path):
    """timm's train.py saves the weights with the epoch, the architecture and its arguments as a Namespace."""
    state = {"levels.0.blocks.0.conv1.weight": torch.randn(4, 4, 3, 3)}
    path = tmp_path / "published.pth.tar"
    torch.save({"epoch": 309, "arch": "mamba_vision_T", "state_dict": state, "version": 2,
                "args": argparse.Namespace(lr=0.005, model="mamba_vision_T", mixup=0.8)}, path)
    loaded = read_checkpoint(path)
    assert loaded["args"].lr == 0.005 and loaded["epoch"] == 309
    assert torch.equal(loaded["state_dict"]["levels.0.blocks.0.conv1.weight"], state["levels.0.blocks.0.conv1.weight"])


def _cifar10(root, n=6, batch_of=None, meta=None):
    """A CIFAR-10 python folder; ``batch_of(name)`` may replace a file's object, ``meta`` is the meta file's."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n)),
                 b"batch_label": name.encode(), b"filenames": [f"{i}.png".encode() for i in range(n)]}
        (root / name).write_bytes(pickle.dumps(batch_of(name, batch) if batch_of else batch, protocol=2))
    (root / "batches.meta").write_bytes(pickle.dumps(meta or {b"label_names": [f"c{i}".encode() for i in range(10)]}))
    return root


def test_a_crafted_cifar_batch_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    def crafted(name, batch):
        return {**batch, b"labels": RunsACommand(marker)} if name == "data_batch_3" else batch
    root = _cifar10(tmp_path / "cifar", batch_of=crafted)
    with pytest.raises(DatasetError, match=r"cifar10: .*data_batch_3 refused, not loaded: it asks for posix.system, "
                                           r"which a CIFAR-10 python file never holds"):
        load_dataset("cifar10", image_size=32, seed=0, root=root)
    assert not marker.exists()
    _plain_unpickle_runs_it(root / "data_batch_3", marker)


def test_a_crafted_cifar_meta_file_is_refused_not_skipped(tmp_path):
    marker = tmp_path / "ran"
    root = _cifar10(tmp_path / "cifar", meta={b"label_names": RunsACommand(marker)})
    with pytest.raises(DatasetError, match=r"batches.meta refused, not loaded: it asks for posix.system"):
        load_dataset("cifar10", image_size=32, seed=0, root=root)
    assert not marker.exists()
    _plain_unpickle_runs_it(root / "batches.meta", marker)


def test_cifar_batches_as_numpy_1_and_python_2_wrote_them_still_load(tmp_path):
    """The published batches were pickled by Python 2 with numpy 1.x: their arrays name numpy.core.multiarray (numpy 2
    writes numpy._core). Rewritten to that spelling, every batch loads to the same arrays."""
    root = _cifar10(tmp_path / "cifar")
    data = load_dataset("cifar10", image_size=32, seed=0, root=root).tensors()
    for path in root.iterdir():
        path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray\n_reconstruct" in (root / "test_batch").read_bytes()
    again = load_dataset("cifar10", image_size=32, seed=0, root=root).tensors()
    assert all(torch.equal(a, b) for a, b in zip(data, again))
