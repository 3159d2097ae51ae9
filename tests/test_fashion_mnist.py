"""Fashion-MNIST read from idx files: hand-written tiny files with known pixels and labels, the errors a user
meets, and (where Debian's dataset-fashion-mnist is installed) the real set."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from ablate.data import DatasetError, dataset_classes, is_generated, load_dataset
from ablate.data.augment import resolve_augment
from ablate.data.real import FASHION_CLASSES, FASHION_DIR

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}



def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding: 0, 0, type 0x08 (unsigned byte), the number of dimensions, big-endian dims, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    for name, array in zip(NAMES[split], (images, labels)):
        data = idx_bytes(array)
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)


def constant_images(values) -> np.ndarray:
    """(N, 28, 28) images, image i filled with values[i]: a resize keeps a flat image flat."""
    return np.repeat(np.asarray(values, np.uint8), 28 * 28).reshape(-1, 28, 28)


def write_tiny(root: Path, gz: bool = True) -> dict:
    """6 training images with a gradient (so a 28 -> 28 load proves pixels pass unchanged), 4 flat val images."""
    root.mkdir(parents=True, exist_ok=True)
    train = (np.arange(6)[:, None, None] * 20 + np.arange(28)[None, :, None] * 3 + np.arange(28)) % 256
    parts = {"train": (train.astype(np.uint8), np.array([0, 1, 2, 9, 5, 5], np.uint8)),
             "val": (constant_images([10, 90, 170, 250]), np.array([3, 4, 8, 9], np.uint8))}
    for split, (images, labels) in parts.items():
        write_split(root, split, images, labels, gz)
    return parts


def pixels(part) -> np.ndarray:
    return np.asarray(part.pixels(np.arange(len(part))))


def test_idx_files_load_with_their_pixels_labels_and_class_names(tmp_path):
    parts = write_tiny(tmp_path / "fm")
    data = load_dataset("fashion_mnist", image_size=28, seed=0, root=tmp_path / "fm")
    assert data.num_classes == 10 == dataset_classes("fashion_mnist") and data.classes == tuple(FASHION_CLASSES)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    train, val = pixels(data.train), pixels(data.val)
    assert train.shape == (6, 28, 28, 3) and val.shape == (4, 28, 28, 3)      # grey repeated to 3 channels
    assert (train == parts["train"][0][..., None]).all()                       # 28 -> 28: every pixel as written
    assert data.train.labels.tolist() == [0, 1, 2, 9, 5, 5] and data.val.labels.tolist() == [3, 4, 8, 9]


def test_images_are_resized_to_the_image_size(tmp_path):
    parts = write_tiny(tmp_path / "fm")
    data = load_dataset("fashion_mnist", image_size=32, seed=0, root=tmp_path / "fm")
    val = pixels(data.val)
    assert val.shape == (4, 32, 32, 3) and val.reshape(4, -1).min(1).tolist() == [10, 90, 170, 250]
    assert (val.reshape(4, -1).max(1) == val.reshape(4, -1).min(1)).all()     # flat stays flat
    train = pixels(data.train).astype(float)
    assert np.abs(train.mean((1, 2, 3)) - parts["train"][0].mean((1, 2))).max() < 2     # resizing keeps the mean


def test_uncompressed_files_and_subsets(tmp_path):
    write_tiny(tmp_path / "fm", gz=False)
    data = load_dataset("fashion_mnist", image_size=28, seed=1, root=tmp_path / "fm", n_train=4, n_val=2)
    assert len(data.train) == 4 and len(data.val) == 2
    assert set(data.val.labels.tolist()) <= {3, 4, 8, 9}


def test_real_images_get_the_real_image_augmentation():
    assert not is_generated("fashion_mnist") and resolve_augment("auto", is_generated("fashion_mnist")) == "basic"


def test_a_missing_directory_names_it_and_the_package(tmp_path):
    with pytest.raises(DatasetError, match=r"fashion_mnist: directory .*nowhere does not exist .*"
                                           r"apt-get install dataset-fashion-mnist.*data.root=/dir holding"):
        load_dataset("fashion_mnist", root=tmp_path / "nowhere")


def test_a_missing_file_is_named(tmp_path):
    write_tiny(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz \(or t10k-labels-idx1-ubyte\) is missing"):
        load_dataset("fashion_mnist", root=tmp_path / "fm")


def test_a_corrupt_magic_number_names_the_file(tmp_path):
    write_tiny(tmp_path / "fm")
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + gzip.decompress(path.read_bytes())[4:]))    # float type
    with pytest.raises(DatasetError, match=f"{path} is not an idx file of 3-d unsigned bytes: magic number "
                                           "00000d03, expected 00000803"):
        load_dataset("fashion_mnist", root=tmp_path / "fm")


def test_truncated_files_name_the_file(tmp_path):
    write_tiny(tmp_path / "fm")
    labels = tmp_path / "fm" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-1]))      # one label short
    with pytest.raises(DatasetError, match=f"{labels} is truncated or padded: its header's dims 6 need 6 bytes of "
                                           "data, the file holds 5"):
        load_dataset("fashion_mnist", root=tmp_path / "fm")
    write_tiny(tmp_path / "cut")
    images = tmp_path / "cut" / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:40])                                       # a cut gzip stream
    with pytest.raises(DatasetError, match=f"{images} cannot be read: EOFError"):
        load_dataset("fashion_mnist", root=tmp_path / "cut")


def test_images_and_labels_must_agree(tmp_path):
    write_tiny(tmp_path / "fm")
    write_split(tmp_path / "fm", "val", constant_images([1, 2, 3]), np.array([0, 1, 12], np.uint8))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz has label 12; valid: 0-9"):
        load_dataset("fashion_mnist", root=tmp_path / "fm")
    write_split(tmp_path / "fm", "val", constant_images([1, 2, 3]), np.array([0, 1], np.uint8))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz has 3 images but .* has 2 labels"):
        load_dataset("fashion_mnist", root=tmp_path / "fm")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_the_debian_package_loads_without_a_root():
    data = load_dataset("fashion_mnist", seed=0, n_train=200, n_val=100)
    assert data.num_classes == 10 and len(data.train) == 200 and len(data.val) == 100
    assert data.image_size == 32 and data.in_chans == 3
    assert data.train.images.shape[0] == 60000 and data.val.images.shape[0] == 10000    # the pack holds them all
    assert len(set(data.train.labels.tolist())) == 10
