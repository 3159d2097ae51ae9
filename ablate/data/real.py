"""Real images from disk or from a package, packed once: scikit-learn's digits, CIFAR-10/100 (python batches),
Fashion-MNIST (idx files, from Debian's dataset-fashion-mnist by default), ImageFolder and Tiny-ImageNet. Each
format gives its class count (from names alone), the identity of its pack (the source's path, file sizes and
modification times, the image size) and the function that fills the pack. Nothing downloads; a missing or
corrupt file is an error that names its path."""
import dataclasses
import gzip
import pickle
import zlib
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from .base import DatasetError, resize_uint8
from .packed import PackBuilder, file_identity

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
RESIZE_CHUNK = 2048          # images resized at once: a float copy of a whole set at 128 px would not fit


@dataclasses.dataclass(frozen=True)
class RealFormat:
    """One on-disk (or packaged) format: what a pack of it is and how to fill one."""
    classes: Callable[..., int]                           # (root=...) -> class count, reading no image
    identity: Callable[..., dict]                         # (root, image_size) -> what the pack depends on
    build: Callable[..., None]                            # (builder, root) -> fills the pack
    expected: str                                         # the layout, for error messages
    large: bool = False                                   # tens of thousands of images: smoke takes a subset


def existing_dir(root, name: str, expected: str) -> Path:
    if root is None:
        raise DatasetError(f"{name}: no path given; set data.root=/path/to/{name} ({expected})")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{name}: directory {root} does not exist; expected {expected}")
    return root.resolve()


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([resize_uint8(images[i:i + RESIZE_CHUNK], size)
                           for i in range(0, max(len(images), 1), RESIZE_CHUNK)])


# --- digits ---------------------------------------------------------------------------------------------------

def _digits_build(builder: PackBuilder, root=None) -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None].repeat(3, axis=-1)
    builder.add("train", _resized(images, builder.image_size), bunch.target)
    builder.empty("val")
    builder.classes = [str(d) for d in range(10)]
    builder.source = "sklearn.datasets.load_digits"


def _digits_identity(root=None, image_size=32) -> dict:
    import sklearn
    return {"format": "digits", "sklearn": sklearn.__version__, "image_size": image_size}


DIGITS = RealFormat(lambda **_: 10, _digits_identity, _digits_build, "scikit-learn's bundled digits")


# --- CIFAR-10 / CIFAR-100 -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CifarLayout:
    name: str
    title: str
    train: Tuple[str, ...]
    test: str
    label_key: bytes
    meta: str
    names_key: bytes
    classes: int

    @property
    def expected(self) -> str:
        return f"the {self.title} python version ({', '.join(self.train)}, {self.test})"


CIFAR10 = CifarLayout("cifar10", "CIFAR-10", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels",
                      "batches.meta", b"label_names", 10)
CIFAR100 = CifarLayout("cifar100", "CIFAR-100", ("train",), "test", b"fine_labels", "meta", b"fine_label_names", 100)


# What a CIFAR python batch holds besides dicts, lists, bytes and numbers: numpy arrays and scalars (pickled by numpy
# 1.x as numpy.core.*, by numpy 2 as numpy._core.*), and the bytes of a Python 3 pickle of protocol 2 or lower
# (_codecs.encode). The unpickler finds nothing else, so a crafted batch cannot run code on the machine (or the Ray
# nodes) that read it.
CIFAR_GLOBALS = frozenset((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                          for name in ("_reconstruct", "scalar")) | {("numpy", "ndarray"), ("numpy", "dtype"),
                                                                     ("_codecs", "encode")}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in CIFAR_GLOBALS:
            raise UnsafePickle(f"{module}.{name}")
        return super().find_class(module, name)


class UnsafePickle(pickle.UnpicklingError):
    """A pickle that asks for a global the format never holds: its name is the message."""


def _refused(layout: CifarLayout, path: Path, refused: UnsafePickle) -> DatasetError:
    return DatasetError(f"{layout.name}: {path} refused, not loaded: it asks for {refused}, which a {layout.title} "
                        f"python file never holds (only dicts, lists, bytes, numbers and numpy arrays) and which "
                        f"could run code when unpickled")


def _unpickle_cifar(path: Path):
    with open(path, "rb") as f:
        return _CifarUnpickler(f, encoding="bytes").load()


def _read_cifar_batch(layout: CifarLayout, path: Path) -> Tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{layout.name}: {path} is missing; expected {layout.expected} in {path.parent}")
    try:
        batch = _unpickle_cifar(path)
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(batch[layout.label_key], dtype=np.int64)
    except UnsafePickle as refused:
        raise _refused(layout, path, refused) from None
    except Exception as error:
        raise DatasetError(f"{layout.name}: {path} is not a {layout.title} python batch (a pickled dict "
                           f"with b'data' (N, 3072) uint8 and {layout.label_key!r}): "
                           f"{type(error).__name__}: {error}") from None
    if len(data) != len(labels):
        raise DatasetError(f"{layout.name}: {path} has {len(data)} images but {len(labels)} labels")
    return data, labels


def _cifar_names(layout: CifarLayout, root: Path) -> List[str]:
    """The class names from the meta file when it is there and readable; else the class numbers. A meta file that
    asks for anything but the format's types is refused, not skipped."""
    try:
        names = [n.decode() for n in _unpickle_cifar(root / layout.meta)[layout.names_key]]
        if len(names) == layout.classes:
            return names
    except UnsafePickle as refused:
        raise _refused(layout, root / layout.meta, refused) from None
    except Exception:
        pass
    return [str(i) for i in range(layout.classes)]


def _cifar_format(layout: CifarLayout) -> RealFormat:
    def root_of(root):
        return existing_dir(root, layout.name, layout.expected)

    def identity(root=None, image_size=32):
        root = root_of(root)
        files = [root / name for name in (*layout.train, layout.test) if (root / name).is_file()]
        return {"format": layout.name, "root": str(root), "files": file_identity(files, root),
                "image_size": image_size}

    def build(builder: PackBuilder, root=None):
        root = root_of(root)
        parts = [_read_cifar_batch(layout, root / name) for name in layout.train]
        train_x, train_y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        val_x, val_y = _read_cifar_batch(layout, root / layout.test)
        builder.add("train", _resized(train_x, builder.image_size), train_y)
        builder.add("val", _resized(val_x, builder.image_size), val_y)
        builder.classes, builder.source = _cifar_names(layout, root), str(root)

    return RealFormat(lambda root=None, **_: layout.classes, identity, build, layout.expected, large=True)


# --- ImageFolder and Tiny-ImageNet ----------------------------------------------------------------------------

def read_image(path: Path, image_size: int) -> np.ndarray:
    """One image file -> (size, size, 3) uint8, RGB, bilinear. Module level: pack workers import it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable image: {error}") from None


def _images_in(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


IMAGEFOLDER_LAYOUT = ("class sub-folders of images (<root>/<class>/<image>, or <root>/train/<class> and "
                      "<root>/val/<class>)")


def _class_names(name: str, root: Path) -> List[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{name}: {root} has no class sub-folders; expected {root}/<class>/<image>")
    return classes


def _has_train_val(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "val").is_dir()


def _class_files(root: Path, classes: List[str]) -> Tuple[List[Path], List[int]]:
    files, labels = [], []
    for index, name in enumerate(classes):
        found = _images_in(root / name)
        if not found:
            raise DatasetError(f"imagefolder: class folder {root / name} holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        labels += [index] * len(found)
    return files, labels


def _imagefolder_splits(root: Path) -> List[Tuple[str, List[Path], List[int]]]:
    """(split, files, labels) for each split on disk; one 'train' split when there is no train/val layout."""
    if not _has_train_val(root):
        classes = _class_names("imagefolder", root)
        return [("train", *_class_files(root, classes))]
    classes = _class_names("imagefolder", root / "train")
    val_classes = _class_names("imagefolder", root / "val")
    if val_classes != classes:
        raise DatasetError(f"imagefolder: {root}/val has classes {val_classes}, {root}/train has {classes}")
    return [(split, *_class_files(root / split, classes)) for split in ("train", "val")]


def _imagefolder_root(root) -> Path:
    return existing_dir(root, "imagefolder", IMAGEFOLDER_LAYOUT)


def _imagefolder_classes(root=None, **_) -> int:
    root = _imagefolder_root(root)
    return len(_class_names("imagefolder", root / "train" if _has_train_val(root) else root))


def _folder_identity(fmt: str, root: Path, splits, image_size: int) -> dict:
    files = [path for _, paths, _ in splits for path in paths]
    return {"format": fmt, "root": str(root), "files": file_identity(files, root), "count": len(files),
            "image_size": image_size}


def _fill_from_files(builder: PackBuilder, splits, classes: List[str], source: Path) -> None:
    for split, files, labels in splits:
        builder.add_files(split, files, labels, read_image)
    if len(splits) == 1:
        builder.empty("val")
    builder.classes, builder.source = classes, str(source)


def _imagefolder_identity(root=None, image_size=32) -> dict:
    root = _imagefolder_root(root)
    return _folder_identity("imagefolder", root, _imagefolder_splits(root), image_size)


def _imagefolder_build(builder: PackBuilder, root=None) -> None:
    root = _imagefolder_root(root)
    names = _class_names("imagefolder", root / "train" if _has_train_val(root) else root)
    _fill_from_files(builder, _imagefolder_splits(root), names, root)


IMAGEFOLDER = RealFormat(_imagefolder_classes, _imagefolder_identity, _imagefolder_build, IMAGEFOLDER_LAYOUT)

TINY_LAYOUT = ("Tiny-ImageNet's layout: <root>/wnids.txt, <root>/train/<wnid>/images/*.JPEG, "
               "<root>/val/images/*.JPEG and <root>/val/val_annotations.txt")


def _tiny_root(root) -> Path:
    return existing_dir(root, "tinyimagenet", TINY_LAYOUT)


def _tiny_wnids(root: Path) -> List[str]:
    path = root / "wnids.txt"
    if not path.is_file():
        raise DatasetError(f"tinyimagenet: {path} is missing; expected {TINY_LAYOUT}")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise DatasetError(f"tinyimagenet: {path} lists no class ids")
    return wnids


def _tiny_val(root: Path, index: dict) -> Tuple[List[Path], List[int]]:
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DatasetError(f"tinyimagenet: {annotations} is missing; expected {TINY_LAYOUT}")
    files, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise DatasetError(f"tinyimagenet: {annotations} line {number} is not '<file>\\t<wnid>\\t...' with a "
                               f"wnid from wnids.txt: {line!r}")
        files.append(root / "val" / "images" / fields[0])
        labels.append(index[fields[1]])
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetError(f"tinyimagenet: {missing[0]} is listed in {annotations} but missing "
                           f"({len(missing)} missing in all)")
    return files, labels


def _tiny_splits(root: Path) -> List[Tuple[str, List[Path], List[int]]]:
    wnids = _tiny_wnids(root)
    index = {wnid: i for i, wnid in enumerate(wnids)}
    files, labels = [], []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        found = _images_in(folder) if folder.is_dir() else []
        if not found:
            raise DatasetError(f"tinyimagenet: {folder} holds no images; expected {TINY_LAYOUT}")
        files += found
        labels += [index[wnid]] * len(found)
    return [("train", files, labels), ("val", *_tiny_val(root, index))]


def _tiny_names(root: Path, wnids: List[str]) -> List[str]:
    """Readable names from words.txt where it is there, else the wnids."""
    words = root / "words.txt"
    if not words.is_file():
        return wnids
    table = dict(line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return [table.get(wnid, wnid).split(",")[0].strip() for wnid in wnids]


def _tiny_identity(root=None, image_size=64) -> dict:
    root = _tiny_root(root)
    return _folder_identity("tinyimagenet", root, _tiny_splits(root), image_size)


def _tiny_build(builder: PackBuilder, root=None) -> None:
    root = _tiny_root(root)
    _fill_from_files(builder, _tiny_splits(root), _tiny_names(root, _tiny_wnids(root)), root)


TINYIMAGENET = RealFormat(lambda root=None, **_: len(_tiny_wnids(_tiny_root(root))), _tiny_identity, _tiny_build,
                          TINY_LAYOUT, large=True)

# --- Fashion-MNIST (idx files, as Debian's dataset-fashion-mnist installs them) --------------------------------

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")       # where `apt-get install dataset-fashion-mnist` puts it
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
# split -> (images file, labels file); each may also be stored uncompressed, without .gz
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FASHION_LAYOUT = ("Fashion-MNIST's four idx files (" + ", ".join(f"{name}[.gz]" for pair in FASHION_FILES.values()
                                                                  for name in pair) + ")")
IDX_UBYTE = 0x08                  # the idx type code of unsigned bytes, the only one Fashion-MNIST uses


def _fashion_dir(root) -> Path:
    """data.root when given, else the Debian package's directory; an error says how to get the files."""
    folder = FASHION_DIR if root is None else Path(root).expanduser()
    if not folder.is_dir():
        given = "data.root" if root is not None else "the default (dataset-fashion-mnist's directory)"
        raise DatasetError(f"fashion_mnist: directory {folder} does not exist ({given}); install the set with "
                           f"`apt-get install dataset-fashion-mnist`, or set data.root=/dir holding {FASHION_LAYOUT}")
    return folder.resolve()


def _idx_path(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"fashion_mnist: {folder / name}.gz (or {name}) is missing; expected {FASHION_LAYOUT} in "
                       f"{folder}")


def _fashion_paths(folder: Path) -> dict:
    return {split: tuple(_idx_path(folder, name) for name in pair) for split, pair in FASHION_FILES.items()}


def _idx_bytes(path: Path) -> bytes:
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as error:          # a cut or corrupt gzip stream
        raise DatasetError(f"fashion_mnist: {path} cannot be read: {type(error).__name__}: {error}") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes (gzipped or not) -> its array; anything else is an error naming the path.
    Header: two zero bytes, the type code, the number of dimensions, then each dimension as a big-endian uint32."""
    raw = _idx_bytes(path)
    magic = bytes([0, 0, IDX_UBYTE, ndim])
    if raw[:4] != magic:
        raise DatasetError(f"fashion_mnist: {path} is not an idx file of {ndim}-d unsigned bytes: magic number "
                           f"{raw[:4].hex() or '(empty file)'}, expected {magic.hex()}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"fashion_mnist: {path} is truncated: {len(raw)} bytes, less than its {header}-byte header")
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    need, shape = int(np.prod(dims)), "x".join(map(str, dims))
    if len(raw) - header != need:
        raise DatasetError(f"fashion_mnist: {path} is truncated or padded: its header's dims {shape} need {need} "
                           f"bytes of data, the file holds {len(raw) - header}")
    # a writable copy: frombuffer's view of bytes is read-only, which torch.from_numpy (resizing) warns about
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _fashion_split(images_path: Path, labels_path: Path, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 and (N,) labels: grey resized once, then repeated to the 3 channels models take."""
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DatasetError(f"fashion_mnist: {images_path} has {len(images)} images but {labels_path} has "
                           f"{len(labels)} labels")
    if len(labels) and labels.max() >= len(FASHION_CLASSES):
        raise DatasetError(f"fashion_mnist: {labels_path} has label {labels.max()}; valid: "
                           f"0-{len(FASHION_CLASSES) - 1}")
    return _resized(images[..., None], size).repeat(3, axis=-1), labels


def _fashion_identity(root=None, image_size=32) -> dict:
    folder = _fashion_dir(root)
    files = [path for pair in _fashion_paths(folder).values() for path in pair]
    return {"format": "fashion_mnist", "root": str(folder), "files": file_identity(files, folder),
            "image_size": image_size}


def _fashion_build(builder: PackBuilder, root=None) -> None:
    folder = _fashion_dir(root)
    for split, (images, labels) in _fashion_paths(folder).items():
        builder.add(split, *_fashion_split(images, labels, builder.image_size))
    builder.classes, builder.source = list(FASHION_CLASSES), str(folder)


FASHION_MNIST = RealFormat(lambda root=None, **_: len(FASHION_CLASSES), _fashion_identity, _fashion_build,
                           FASHION_LAYOUT, large=True)

FORMATS = {"digits": DIGITS, "cifar10": _cifar_format(CIFAR10), "cifar100": _cifar_format(CIFAR100),
           "fashion_mnist": FASHION_MNIST, "imagefolder": IMAGEFOLDER, "tinyimagenet": TINYIMAGENET}


def subset_rows(n: int, keep: Optional[int], rng: np.random.Generator) -> np.ndarray:
    """All rows, or ``keep`` of them drawn by ``rng``."""
    if not keep:
        return np.arange(n)
    if keep > n:
        raise DatasetError(f"asked for {keep} images of a split that has {n}")
    return np.sort(rng.permutation(n)[:keep])
