"""Synthetic proxy tasks, generated with numpy, deterministic per seed, cached on disk after the first time.

  match    long-range: two framed probe squares among unframed distractors; same colour or not? The answer
           is an XOR of two facts. Pooled statistics cannot give it: a linear head on pooled counts of
           "framed square of colour c" cannot express "some count is 2", so a model has to relate the two
           probes. Training mixes near and far pairs; validation pairs are all far apart. Knobs: palette,
           distractors, min_distance, near, near_distance, probe, probe_min, noise.
  tint     match with continuous colours: two framed probes far apart, each a random RGB colour; the same or
           not? No set of per-colour channels can be counted. Knobs: distractors, min_distance, min_difference,
           probe, noise.
  order    relative position: is the red dot left of the green one, among dots of other colours? Knobs:
           distractors, min_gap, dot, noise.
  recall   associative recall: key/value dominoes and a framed query showing one key colour; the label is
           that key's value. Every image holds the same colours, so only the query and its key together give
           the answer. Knobs: pairs (= classes), cell, min_distance, noise.
  oddball  pop-out: several squares of one colour and one of another; the label is the odd colour, which no
           square shows by itself. Knobs: palette (= classes), items, item, noise.
  count    global statistics: how many plus signs (1..max_count) among square distractors. Knobs: max_count,
           distractors, noise.
  texture  local control: the orientation of a striped patch (4 classes) on noise; a small conv net solves
           it. Knobs: patch, noise.
"""
from typing import Callable, Dict, Tuple, Union

import numpy as np

from .base import DatasetError

PALETTE = np.array([(230, 40, 40), (40, 200, 40), (50, 90, 255), (240, 220, 40), (220, 50, 220),
                    (40, 220, 220), (255, 140, 0), (150, 150, 150)], dtype=np.float32)
BACKGROUND = 30.0
VERSION = 4  # bump when generation changes, so stale caches are not reused


def _noisy_canvas(rng, size, noise):
    return BACKGROUND + rng.normal(0.0, noise * 255.0, size=(size, size, 3)).astype(np.float32)


def _place(rng, occupied, side, tries=200):
    """Top-left corner of a free side x side box (1 px margin), marking it occupied; None if none found."""
    size = occupied.shape[0]
    for _ in range(tries):
        y, x = rng.integers(0, size - side + 1, size=2)
        if not occupied[max(0, y - 1):y + side + 1, max(0, x - 1):x + side + 1].any():
            occupied[y:y + side, x:x + side] = True
            return int(y), int(x)
    return None


def _layout(task, rng, occupied, sides, accept=lambda spots: True, limit=1000):
    """Top-left corners of free boxes of the given sides, drawn again until ``accept(corners)`` holds; marks
    them occupied. A layout that never fits is an error after ``limit`` draws, not a hang."""
    for _ in range(limit):
        trial = occupied.copy()
        spots = [_place(rng, trial, side) for side in sides]
        if None not in spots and accept(spots):
            occupied[...] = trial
            return spots
    raise DatasetError(f"{task}: the objects did not fit in a {occupied.shape[0]} px image in {limit} layouts; "
                       f"use a larger image_size or fewer or smaller objects")


def _distance(a, b):
    return np.hypot(a[0] - b[0], a[1] - b[1])


def _place_or_fail(rng, occupied, side, task):
    spot = _place(rng, occupied, side, tries=10_000)
    if spot is None:
        raise DatasetError(f"{task}: no room left for a {side} px object in a {occupied.shape[0]} px image; use a "
                           f"larger image_size or fewer or smaller objects")
    return spot


def _check_colours(task, knob, value, low):
    if not low <= value <= len(PALETTE):
        raise DatasetError(f"{task}: {knob}={value} is out of range; valid: {low}..{len(PALETTE)} (the palette "
                           f"has {len(PALETTE)} colours)")


def _finish(canvas):
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def match_image(rng, size, palette=2, distractors=2, min_distance=0.6, noise=0.05, probe=8, probe_min=6,
                near=0.5, near_distance=0.3):
    """Two square probes (white frame, colour inside) of a side drawn per image from probe_min..probe. A
    fraction ``near`` of the images has the probes close (centres at most near_distance*size apart), the rest
    far (at least min_distance*size apart). Near pairs make the comparison easy to discover; validation
    images are all far (VAL_OPTIONS), so the score says whether it carries across the image."""
    _check_colours("match", "palette", palette, 2)
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    probe = int(rng.integers(probe_min, probe + 1))
    close = rng.random() < near
    same = bool(rng.integers(0, 2))
    first = rng.integers(0, palette)
    second = first if same else (first + rng.integers(1, palette)) % palette
    a, b = _layout("match", rng, occupied, [probe, probe],
                   lambda s: _distance(*s) <= near_distance * size if close else _distance(*s) >= min_distance * size)
    for (y, x), colour in ((a, first), (b, second)):
        canvas[y:y + probe, x:x + probe] = 255.0
        canvas[y + 1:y + probe - 1, x + 1:x + probe - 1] = PALETTE[colour]
    for _ in range(distractors):
        spot = _place(rng, occupied, 3)
        if spot is not None:
            canvas[spot[0]:spot[0] + 3, spot[1]:spot[1] + 3] = PALETTE[rng.integers(0, palette)]
    return _finish(canvas), int(same)


COLOUR_RANGE = (40.0, 255.0)   # random colours stay clear of the dark background


def _random_colour(rng):
    return rng.uniform(*COLOUR_RANGE, size=3).astype(np.float32)


def _check_difference(min_difference):
    # Half the range: even a colour in the middle has room that far away, so every draw can succeed.
    widest = (COLOUR_RANGE[1] - COLOUR_RANGE[0]) / 2 / 255.0
    if not 0.0 <= min_difference < widest:
        raise DatasetError(f"tint: min_difference={min_difference} is out of range; valid: 0 <= it < {widest:.3f}")


def _different_colour(rng, colour, min_difference):
    """A random colour at least min_difference*255 away from ``colour`` in some channel."""
    while True:
        other = _random_colour(rng)
        if np.abs(other - colour).max() >= min_difference * 255.0:
            return other


def tint_image(rng, size, distractors=2, min_distance=0.6, min_difference=0.35, noise=0.05, probe=7):
    """Two framed probes far apart, each filled with a random RGB colour; the same colour or not? Different
    colours differ by at least min_difference*255 in some channel. With colours from a continuum, no fixed
    set of per-colour channels can be counted: the model has to bring one probe's colour to the other."""
    _check_difference(min_difference)
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    same = bool(rng.integers(0, 2))
    first = _random_colour(rng)
    second = first if same else _different_colour(rng, first, min_difference)
    a, b = _layout("tint", rng, occupied, [probe, probe], lambda s: _distance(*s) >= min_distance * size)
    for (y, x), colour in ((a, first), (b, second)):
        canvas[y:y + probe, x:x + probe] = 255.0
        canvas[y + 1:y + probe - 1, x + 1:x + probe - 1] = colour
    for _ in range(distractors):
        spot = _place(rng, occupied, 3)
        if spot is not None:
            canvas[spot[0]:spot[0] + 3, spot[1]:spot[1] + 3] = _random_colour(rng)
    return _finish(canvas), int(same)


def order_image(rng, size, distractors=4, min_gap=1, noise=0.05, dot=2):
    """A red and a green dot among dots of other colours; is the red one left of the green one? The horizontal
    gap between them is at least ``min_gap`` px. Which side each is on is a relation between two distant
    places: their colours alone say nothing."""
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    red, green = _layout("order", rng, occupied, [dot, dot], lambda s: abs(s[0][1] - s[1][1]) >= min_gap)
    canvas[red[0]:red[0] + dot, red[1]:red[1] + dot] = PALETTE[0]
    canvas[green[0]:green[0] + dot, green[1]:green[1] + dot] = PALETTE[1]
    for _ in range(distractors):
        spot = _place(rng, occupied, dot)
        if spot is not None:
            canvas[spot[0]:spot[0] + dot, spot[1]:spot[1] + dot] = PALETTE[rng.integers(2, len(PALETTE))]
    return _finish(canvas), int(red[1] < green[1])


def recall_image(rng, size, pairs=4, noise=0.05, cell=3, min_distance=0.0):
    """Associative recall. ``pairs`` dominoes: a key square of colour a above a value square of colour b;
    the keys are a permutation of the first ``pairs`` colours, the values another. A framed query square
    shows one key colour; the label is the value under that key. Every image holds the same colours, once
    each as key and value, so pooled counts say nothing; the answer needs the query and its key together."""
    _check_colours("recall", "pairs", pairs, 2)
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    keys, values = rng.permutation(pairs), rng.permutation(pairs)
    asked = int(rng.integers(0, pairs))
    frame = cell + 2
    # the query first, then the dominoes; the query and the domino it asks about at least min_distance apart
    query, *spots = _layout("recall", rng, occupied, [frame] + [2 * cell] * pairs,
                            lambda s: _distance(s[0], s[1 + asked]) >= min_distance * size)
    for (y, x), a, b in zip(spots, keys, values):
        canvas[y:y + cell, x:x + cell] = PALETTE[a]
        canvas[y + cell:y + 2 * cell, x:x + cell] = PALETTE[b]
    y, x = query
    canvas[y:y + frame, x:x + frame] = 255.0
    canvas[y + 1:y + 1 + cell, x + 1:x + 1 + cell] = PALETTE[keys[asked]]
    return _finish(canvas), int(values[asked])


def oddball_image(rng, size, palette=4, items=5, noise=0.05, item=3):
    """``items`` squares of one colour and one of another, anywhere; the label is the odd one's colour. Any
    colour can be the majority, so no square is odd by itself: only comparing it with the others far away
    says which one it is. A linear head on pooled colour counts cannot say which count is 1."""
    _check_colours("oddball", "palette", palette, 2)
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    common = int(rng.integers(0, palette))
    odd = int((common + rng.integers(1, palette)) % palette)
    for colour in [odd] + [common] * items:
        y, x = _place_or_fail(rng, occupied, item, "oddball")
        canvas[y:y + item, x:x + item] = PALETTE[colour]
    return _finish(canvas), odd


def count_image(rng, size, max_count=5, distractors=3, noise=0.05):
    """1..max_count plus signs and some filled squares, random colours; the label is the number of pluses - 1."""
    canvas, occupied = _noisy_canvas(rng, size, noise), np.zeros((size, size), bool)
    count = int(rng.integers(1, max_count + 1))
    for _ in range(count):
        y, x = _place_or_fail(rng, occupied, 3, "count")
        colour = PALETTE[rng.integers(0, len(PALETTE))]
        canvas[y + 1, x:x + 3] = colour
        canvas[y:y + 3, x + 1] = colour
    for _ in range(distractors):
        spot = _place(rng, occupied, 3)
        if spot is not None:
            canvas[spot[0]:spot[0] + 3, spot[1]:spot[1] + 3] = PALETTE[rng.integers(0, len(PALETTE))]
    return _finish(canvas), count - 1


def texture_image(rng, size, patch=12, noise=0.15):
    """A patch of stripes (period 4 px) at 0, 45, 90 or 135 degrees at a random place; the label is the angle."""
    canvas = _noisy_canvas(rng, size, noise)
    label = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:patch, 0:patch]
    phase = [yy, yy + xx, xx, yy - xx][label] + rng.integers(0, 4)
    stripes = np.where((phase % 4) < 2, 220.0, 60.0)[..., None]
    y, x = rng.integers(0, size - patch + 1, size=2)
    canvas[y:y + patch, x:x + patch] = stripes + rng.normal(0.0, noise * 255.0, size=(patch, patch, 1))
    return _finish(canvas), label


# Options the validation split is always generated with, whatever the training split uses.
VAL_OPTIONS = {"match": {"near": 0.0}}

# Each task's image function and its number of classes: a fixed count, or the option that sets it.
TASKS: Dict[str, Tuple[Callable, Union[int, str]]] = {
    "match": (match_image, 2),
    "tint": (tint_image, 2),
    "order": (order_image, 2),
    "recall": (recall_image, "pairs"),
    "oddball": (oddball_image, "palette"),
    "count": (count_image, "max_count"),
    "texture": (texture_image, 4),
}


def generate(task: str, n: int, size: int, seed: int, **options):
    """n images (N, size, size, 3) uint8 and labels (N,) int64 of ``task``, deterministic in ``seed``."""
    draw = TASKS[task][0]
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        images[i], labels[i] = draw(rng, size, **options)
    return images, labels
