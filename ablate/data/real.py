"""Real images from disk or from a package: scikit-learn's digits, CIFAR-10 (python format), ImageFolder."""
import pickle
from pathlib import Path

import numpy as np

from .base import DatasetError, resize_uint8, split_indices

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
CIFAR10_CLASSES = 10
DIGITS_CLASSES = 10
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _existing_dir(root, name, expected):
    if root is None:
        raise DatasetError(f"{name}: no path given; set data.root=/path/to/{name} ({expected})")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{name}: directory {root} does not exist; expected {expected}")
    return root


def load_digits(image_size, seed, val_fraction=0.2):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), upsampled, grey replicated to RGB."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None].repeat(3, axis=-1)
    images = resize_uint8(images, image_size)
    train, val = split_indices(len(images), val_fraction, seed)
    return images[train], bunch.target[train], images[val], bunch.target[val], DIGITS_CLASSES


def _read_cifar_batch(path):
    if not path.is_file():
        raise DatasetError(f"cifar10: {path} is missing; expected the python-version batches "
                           f"{', '.join(CIFAR_TRAIN)}, {CIFAR_TEST} in {path.parent}")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as error:
        raise DatasetError(f"cifar10: {path} is not a CIFAR-10 python batch (a pickled dict with b'data' "
                           f"(N, 3072) uint8 and b'labels'): {type(error).__name__}: {error}") from None
    if len(data) != len(labels):
        raise DatasetError(f"cifar10: {path} has {len(data)} images but {len(labels)} labels")
    return data, labels


def load_cifar10(image_size, seed, root=None, n_train=None, n_val=None):
    """The official python-version batches; optional seeded subsets (n_train, n_val) for short proxies."""
    root = _existing_dir(root, "cifar10", "the CIFAR-10 python version (data_batch_1..5, test_batch)")
    parts = [_read_cifar_batch(root / name) for name in CIFAR_TRAIN]
    train_x, train_y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    val_x, val_y = _read_cifar_batch(root / CIFAR_TEST)
    rng = np.random.default_rng(seed)
    if n_train:
        keep = rng.permutation(len(train_x))[:n_train]
        train_x, train_y = train_x[keep], train_y[keep]
    if n_val:
        keep = rng.permutation(len(val_x))[:n_val]
        val_x, val_y = val_x[keep], val_y[keep]
    return resize_uint8(train_x, image_size), train_y, resize_uint8(val_x, image_size), val_y, CIFAR10_CLASSES


def _class_names(root):
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"imagefolder: {root} has no class sub-folders; expected {root}/<class>/<image>")
    return classes


def _read_class_folders(root, image_size):
    classes = _class_names(root)
    images, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"imagefolder: class folder {root / name} holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        for path in files:
            images.append(_read_image(path, image_size))
            labels.append(index)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def _read_image(path, image_size):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"imagefolder: {path} is not a readable image: {error}") from None


def _imagefolder_root(root):
    return _existing_dir(root, "imagefolder", "class sub-folders of images (<root>/<class>/<image>)")


def _has_train_val(root):
    return (root / "train").is_dir() and (root / "val").is_dir()


def imagefolder_classes(root=None, **_):
    """The number of classes, from the folder names alone (no image is read)."""
    root = _imagefolder_root(root)
    return len(_class_names(root / "train" if _has_train_val(root) else root))


def load_imagefolder(image_size, seed, root=None, val_fraction=0.2):
    """<root>/<class>/<image>, split by seed; or <root>/train/<class> and <root>/val/<class> as given."""
    root = _imagefolder_root(root)
    if _has_train_val(root):
        train_x, train_y, classes = _read_class_folders(root / "train", image_size)
        val_x, val_y, val_classes = _read_class_folders(root / "val", image_size)
        if val_classes != classes:
            raise DatasetError(f"imagefolder: {root}/val has classes {val_classes}, {root}/train has {classes}")
        return train_x, train_y, val_x, val_y, len(classes)
    images, labels, classes = _read_class_folders(root, image_size)
    train, val = split_indices(len(images), val_fraction, seed)
    return images[train], labels[train], images[val], labels[val], len(classes)
