import pickle

import numpy as np
import pytest
import torch
from scipy import ndimage

from ablate.data import GENERATORS, DatasetError, LOADERS, dataset_classes, load_dataset, synthetic



@pytest.mark.parametrize("task", list(GENERATORS))
def test_synthetic_tasks_are_deterministic_cached_and_normalised(task, cache):
    first = load_dataset(task, image_size=32, seed=3, n_train=64, n_val=32)
    assert len(list(cache.rglob(f"packs/{task}-*/meta.json"))) == 1   # packed once...
    second = load_dataset(task, image_size=32, seed=3, n_train=64, n_val=32)  # ...and mapped again
    assert isinstance(second.train.images, np.memmap) and second.key == first.key
    train_x, train_y, val_x, val_y = first.tensors()
    assert torch.equal(train_x, second.tensors()[0]) and torch.equal(val_y, second.val.labels)
    assert train_x.shape == (64, 3, 32, 32) and val_x.shape == (32, 3, 32, 32)
    assert abs(train_x.mean().item()) < 0.05 and abs(train_x.std().item() - 1) < 0.05
    assert set(train_y.tolist()) <= set(range(first.num_classes))
    other = load_dataset(task, image_size=32, seed=4, n_train=64, n_val=32)
    assert not torch.equal(train_x, other.tensors()[0])


def test_validation_images_do_not_depend_on_the_training_size():
    small = load_dataset("match", seed=1, n_train=16, n_val=8)
    large = load_dataset("match", seed=1, n_train=64, n_val=8)
    assert torch.equal(small.val.labels, large.val.labels)


def test_match_labels_are_balanced_and_need_both_probes():
    images, labels = synthetic.generate("match", 400, 32, seed=0)
    assert 0.4 < labels.mean() < 0.6
    white = (images == 255).all(-1)
    assert white.reshape(400, -1).any(1).all()                                # every image has probe frames


def _colour_mask(images, colour):
    return (images == synthetic.PALETTE[colour].astype(np.uint8)).all(-1)         # (N, H, W)


def test_recall_label_is_the_value_under_the_queried_key_and_counts_say_nothing():
    images, labels = synthetic.generate("recall", 200, 32, seed=0, pairs=4)
    assert np.bincount(labels, minlength=4).min() > 30
    for image, label in zip(images, labels):
        counts = [int(_colour_mask(image[None], c).sum()) for c in range(4)]
        assert sorted(counts) == [18, 18, 18, 27]                               # key + value each; query 9 more
        frame = np.argwhere((image == 255).all(-1)).min(0)
        query = image[frame[0] + 1, frame[1] + 1]
        painted = np.isin(image.reshape(-1, 3).view("V3"), synthetic.PALETTE.astype(np.uint8).view("V3"))
        dominoes, n = ndimage.label(painted.reshape(32, 32))                      # the query's inside touches white
        values = []
        for index in range(1, n + 1):
            cells = np.argwhere(dominoes == index)
            if len(cells) == 18 and np.array_equal(image[tuple(cells.min(0))], query):
                values.append(image[tuple(cells.max(0))])                        # bottom cell: the value
        assert len(values) == 1 and np.array_equal(values[0], synthetic.PALETTE[label].astype(np.uint8))


def test_oddball_label_is_the_colour_shown_once():
    images, labels = synthetic.generate("oddball", 100, 32, seed=0, palette=4, items=5)
    for image, label in zip(images, labels):
        counts = np.array([int(_colour_mask(image[None], c).sum()) for c in range(4)])
        assert counts[label] == 9 and sorted(counts)[-1] == 45 and (counts > 0).sum() == 2
    assert np.bincount(labels, minlength=4).min() > 10


def test_class_count_follows_the_knob_that_sets_it():
    assert load_dataset("recall", pairs=3, n_train=8, n_val=4).num_classes == 3
    assert load_dataset("oddball", palette=6, n_train=8, n_val=4).num_classes == 6
    assert load_dataset("count", n_train=8, n_val=4).num_classes == 5


def test_tint_pairs_are_identical_or_clearly_different():
    images, labels = synthetic.generate("tint", 200, 32, seed=0, min_difference=0.35)
    assert 0.4 < labels.mean() < 0.6
    for image, label in zip(images, labels):
        white = (image == 255).all(-1)
        corners = np.argwhere(white[:-1, :-1] & white[1:, :-1] & white[:-1, 1:] & ~white[1:, 1:])
        colours = [image[y + 1, x + 1].astype(int) for y, x in corners]          # inside each frame's corner
        assert len(colours) == 2
        gap = np.abs(colours[0] - colours[1]).max()
        assert gap == 0 if label else gap >= 0.35 * 255 - 1                     # -1: rounding to uint8
    with pytest.raises(DatasetError, match="tint: min_difference=0.5 is out of range; valid: 0 <= it < 0.422"):
        synthetic.generate("tint", 1, 32, seed=0, min_difference=0.5)


def test_out_of_range_colour_knob_names_the_range():
    with pytest.raises(DatasetError, match="recall: pairs=9 is out of range; valid: 2..8"):
        load_dataset("recall", pairs=9)


def test_objects_that_cannot_fit_give_an_error_not_a_hang():
    with pytest.raises(DatasetError, match="recall: the objects did not fit in a 8 px image in 1000 layouts"):
        load_dataset("recall", image_size=8, n_train=4, n_val=4)
    with pytest.raises(DatasetError, match="oddball: no room left for a 3 px object in a 8 px image"):
        load_dataset("oddball", image_size=8, items=12, n_train=4, n_val=4)


def test_unknown_task_option_lists_the_valid_ones():
    with pytest.raises(DatasetError, match="match: unknown option\\(s\\) colours; valid: n_train, n_val, palette"):
        load_dataset("match", colours=3)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'; valid: " + ", ".join(LOADERS)):
        load_dataset("mnist")


def test_digits_are_upsampled_real_images():
    data = load_dataset("digits", image_size=16, seed=0)
    assert data.num_classes == 10 and data.image_size == 16
    assert len(data.train) + len(data.val) == 1797 and not set(data.train.rows) & set(data.val.rows)


def _write_cifar(root, n=12, corrupt=None):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(root / name, "wb") as f:
            if name == corrupt:
                f.write(b"not a pickle")
            else:
                pickle.dump(batch, f)


def test_cifar10_python_format(tmp_path):
    _write_cifar(tmp_path / "cifar")
    data = load_dataset("cifar10", image_size=32, seed=0, root=tmp_path / "cifar")
    assert data.tensors()[0].shape == (60, 3, 32, 32) and data.tensors()[2].shape == (12, 3, 32, 32)
    subset = load_dataset("cifar10", image_size=16, seed=0, root=tmp_path / "cifar", n_train=10, n_val=5)
    assert subset.tensors()[0].shape == (10, 3, 16, 16) and subset.tensors()[2].shape == (5, 3, 16, 16)


def test_cifar10_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match="cifar10: directory .*nowhere does not exist; expected the CIFAR-10"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    _write_cifar(tmp_path / "bad", corrupt="data_batch_3")
    with pytest.raises(DatasetError, match="data_batch_3 is not a CIFAR-10 python batch"):
        load_dataset("cifar10", root=tmp_path / "bad")
    (tmp_path / "bad" / "test_batch").unlink()
    (tmp_path / "bad" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3 is missing; expected the CIFAR-10 python version"):
        load_dataset("cifar10", root=tmp_path / "bad")


def test_cifar10_needs_a_root():
    with pytest.raises(DatasetError, match="cifar10: no path given; set data.root="):
        load_dataset("cifar10")


def _write_folder(root, classes=("cat", "dog"), per_class=5):
    from PIL import Image
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_imagefolder_reads_and_splits(tmp_path):
    _write_folder(tmp_path / "pets")
    data = load_dataset("imagefolder", image_size=16, seed=0, root=tmp_path / "pets")
    assert data.num_classes == 2 and data.image_size == 16 and data.classes == ("cat", "dog")
    assert len(data.train) == 8 and len(data.val) == 2


def test_imagefolder_with_train_and_val_folders(tmp_path):
    _write_folder(tmp_path / "pets" / "train", per_class=3)
    _write_folder(tmp_path / "pets" / "val", per_class=2)
    data = load_dataset("imagefolder", image_size=8, seed=0, root=tmp_path / "pets")
    assert len(data.train) == 6 and len(data.val) == 4


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="imagefolder: directory .*missing does not exist"):
        load_dataset("imagefolder", root=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no class sub-folders; expected"):
        load_dataset("imagefolder", root=tmp_path / "empty")
    _write_folder(tmp_path / "broken")
    (tmp_path / "broken" / "dog" / "3.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=".*dog/3.png is not a readable image"):
        load_dataset("imagefolder", root=tmp_path / "broken")
    (tmp_path / "noimages" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match="class folder .*cat holds no images"):
        load_dataset("imagefolder", root=tmp_path / "noimages")


def test_class_count_without_loading_matches_the_loaded_dataset(tmp_path):
    _write_cifar(tmp_path / "cifar")
    _write_folder(tmp_path / "pets", classes=("cat", "dog", "owl"))
    _write_folder(tmp_path / "split" / "train", per_class=2)
    _write_folder(tmp_path / "split" / "val", per_class=1)
    cases = [(task, {"n_train": 8, "n_val": 4}) for task in GENERATORS]
    cases += [("fractal", {"classes": 7, "n_train": 8, "n_val": 4}), ("contour", {"classes": 5, "n_train": 8, "n_val": 4})]
    cases += [("recall", {"pairs": 3, "n_train": 8, "n_val": 4}), ("count", {"max_count": 7, "n_train": 8, "n_val": 4}),
              ("digits", {}), ("cifar10", {"root": tmp_path / "cifar"}), ("imagefolder", {"root": tmp_path / "pets"}),
              ("imagefolder", {"root": tmp_path / "split"})]
    for name, options in cases:
        assert dataset_classes(name, **options) == load_dataset(name, image_size=32, **options).num_classes, name
    with pytest.raises(DatasetError, match="imagefolder: directory .*missing does not exist"):
        dataset_classes("imagefolder", root=tmp_path / "missing")
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'; valid: "):
        dataset_classes("mnist")
