"""The formula-driven tasks: a class fixes a shape, an instance only poses and colours it; knobs are checked."""
import numpy as np
import pytest

from ablate.data import DatasetError, formula, load_dataset

PLAIN = {"jitter": 0.0, "rotation": 0.0, "scale_min": 1.0, "scale_max": 1.0, "noise": 0.0}



def _masks(images):
    return (images != formula.BACKGROUND).any(-1)       # (N, H, W): object pixels (tests draw without noise)


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


@pytest.mark.parametrize("task", list(formula.TASKS))
def test_a_class_is_a_shape_and_instances_only_pose_it(task):
    images, labels = formula.generate(task, 60, 32, seed=0, classes=3, **PLAIN)
    masks = _masks(images)
    first = [masks[labels == c][0] for c in range(3)]
    same = [_iou(first[c], m) for c in range(3) for m in masks[labels == c][1:]]
    other = [_iou(first[c], m) for c in range(3) for m in masks[labels != c]]
    # Unposed instances cover mostly the same pixels (a fractal's chaos game samples its attractor afresh each
    # time, so less exactly than a contour); other classes cover other pixels.
    assert min(same) > 0.3 and np.mean(same) > 0.6
    assert max(other) < min(same) and np.mean(other) < 0.3


@pytest.mark.parametrize("task", list(formula.TASKS))
def test_labels_are_balanced_and_the_classes_do_not_depend_on_the_data_seed(task):
    _, labels = formula.generate(task, 90, 32, seed=1, classes=9)
    assert np.bincount(labels).tolist() == [10] * 9

    def shapes(seed, class_seed=0):
        images, labels = formula.generate(task, 30, 32, seed=seed, classes=3, class_seed=class_seed, **PLAIN)
        return [_masks(images)[labels == c][0] for c in range(3)]
    a, b, c = shapes(2), shapes(3), shapes(3, class_seed=1)
    assert min(_iou(x, y) for x, y in zip(a, b)) > 0.3           # another data seed: the same classes
    assert max(_iou(x, y) for x, y in zip(a, c)) < 0.3           # another class_seed: another task


def test_jitter_rotation_and_clutter_make_instances_differ():
    plain, labels = formula.generate("fractal", 40, 32, seed=0, classes=2, **PLAIN)
    posed, _ = formula.generate("fractal", 40, 32, seed=0, classes=2, **{**PLAIN, "rotation": 180.0, "jitter": 0.1})
    spread = lambda images: np.mean([1 - _iou(_masks(images)[labels == 0][0], m)
                                     for m in _masks(images)[labels == 0][1:]])
    assert spread(posed) > spread(plain) + 0.2
    cluttered, _ = formula.generate("fractal", 40, 32, seed=0, classes=2, clutter=3, **PLAIN)
    assert _masks(cluttered).sum() > _masks(plain).sum()


@pytest.mark.parametrize("task, options, message", [
    ("fractal", {"classes": 1}, "fractal: classes=1 is out of range; valid: 2..1000"),
    ("fractal", {"jitter": 0.9}, "fractal: jitter=0.9 is out of range; valid: 0.0..0.5"),
    ("fractal", {"scale_min": 0.9, "scale_max": 0.5}, "fractal: scale_min=0.9 is out of range; valid: 0.2..0.5"),
    ("fractal", {"maps_max": 9}, "fractal: maps_max=9 is out of range; valid: 2..8"),
    ("fractal", {"classes": 20, "min_fill": 0.6}, "fractal: only .* random systems fill min_fill=0.6"),
    ("contour", {"classes": 40}, "contour: classes=40 needs .* max_freq=8 gives 28; valid: classes <= 28, or "
                                 "max_freq >= 10"),
    ("contour", {"line": 9}, "contour: line=9 is out of range; valid: 0.5..4.0"),
    ("contour", {"clutter": 9}, "contour: clutter=9 is out of range; valid: 0..8"),
])
def test_out_of_range_knobs_name_the_valid_range(task, options, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(task, n_train=8, n_val=4, **options)


def test_unknown_knob_lists_the_valid_ones():
    with pytest.raises(DatasetError, match="fractal: unknown option\\(s\\) colours; valid: n_train, n_val, classes, "
                                           "jitter, rotation"):
        load_dataset("fractal", colours=3)
