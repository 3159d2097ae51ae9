"""Formula-driven recognition tasks: many classes, graded difficulty, each dataset one vectorised numpy pass.

  fractal  FractalDB-style (Kataoka et al., ACCV 2020). A class is an iterated function system of
           maps_min..maps_max affine maps, parameters uniform in [-1, 1] (kept when every map contracts and
           the attractor fills at least min_fill of its box). An instance moves every parameter by
           N(0, jitter^2), then rotates, scales, shifts and colours the attractor. Knobs: classes, jitter,
           rotation, scale_min, scale_max, clutter, maps_min, maps_max, min_fill, class_seed, noise.
  contour  VisualAtom/RCDB-style outlines. A class is a closed curve r(t) = 1 + a1 sin(n1 t) + a2 sin(n2 t + phi)
           with its own pair of frequencies 1 <= n1 < n2 <= max_freq. An instance moves the amplitudes by
           N(0, jitter^2) and the phase by N(0, (pi jitter)^2), rotates, scales, shifts and colours it and
           draws it with a line of random width. Knobs: classes, max_freq, jitter, rotation, scale_min,
           scale_max, line, clutter, class_seed, noise.

The fractal defaults (10 classes, jitter 0.015, full rotation) are the default proxy's task, chosen by measured
decisiveness per CPU-second (reports/proxy_search/README.md); FractalDB itself uses 1,000 classes.
The classes come from class_seed, the same for every data seed: a data seed draws instances, never the task.
Labels are balanced. ``clutter`` small objects of systems that are no class are drawn under the one that is.
"""
import math
from typing import Callable, Dict, Tuple, Union

import numpy as np

from .base import DatasetError

VERSION = 1                    # bump when generation changes, so stale caches are not reused
BACKGROUND = 30.0
COLOUR_RANGE = (40.0, 255.0)   # object colours stay clear of the dark background
CHAINS, STEPS = 128, 24        # chaos-game points per fractal object: CHAINS x STEPS
SUPERSAMPLE = 2                # fractal points are splatted on a grid this much finer, then averaged
CLUTTER_SCALE = (0.2, 0.35)    # a distractor's extent, as a fraction of the canvas side
FRACTAL_STREAM, CONTOUR_STREAM = 0xF2AC, 0xC047   # class draws never share a stream with instance draws


def _check_range(task, knob, value, low, high):
    if not low <= value <= high:
        raise DatasetError(f"{task}: {knob}={value} is out of range; valid: {low}..{high}")


def _check_pose(task, classes, jitter, rotation, scale_min, scale_max, clutter, noise, max_classes):
    _check_range(task, "classes", classes, 2, max_classes)
    _check_range(task, "jitter", jitter, 0.0, 0.5)
    _check_range(task, "rotation", rotation, 0.0, 180.0)
    _check_range(task, "scale_min", scale_min, 0.2, scale_max)
    _check_range(task, "scale_max", scale_max, scale_min, 1.0)
    _check_range(task, "clutter", clutter, 0, 8)
    _check_range(task, "noise", noise, 0.0, 0.5)


def _balanced_labels(rng, n, classes):
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


def _canvas(rng, n, size, noise):
    return BACKGROUND + rng.normal(0.0, noise * 255.0, size=(n, size, size, 3)).astype(np.float32)


def _paint(canvas, coverage, rng):
    """Blend one object per image, of a random colour, into the canvas by its coverage (n, H, W) in [0, 1]."""
    colours = rng.uniform(*COLOUR_RANGE, size=(len(canvas), 1, 1, 3)).astype(np.float32)
    alpha = coverage[..., None]                                            # (n, H, W, 1)
    return canvas * (1.0 - alpha) + colours * alpha


def _placement(rng, n, rotation, scale):
    """Per object: an angle (radians), an extent (fraction of the canvas side) and a centre in [-1, 1]^2 that
    keeps the object inside the canvas."""
    angle = np.deg2rad(rng.uniform(-rotation, rotation, n))
    extent = rng.uniform(*scale, n)
    centre = rng.uniform(-(1.0 - extent)[:, None], (1.0 - extent)[:, None], (n, 2))
    return angle, extent, centre


# ---- fractal ------------------------------------------------------------------------------------------------

def _contractive_maps(rng, count):
    """count affine maps, parameters uniform in [-1, 1] (FractalDB), kept when A's largest singular value < 1,
    so every chaos game stays bounded: A (count, 2, 2), b (count, 2)."""
    parts, have = [], 0
    while have < count:
        params = rng.uniform(-1.0, 1.0, size=(4 * count, 6))
        params = params[np.linalg.norm(params[:, :4].reshape(-1, 2, 2), ord=2, axis=(1, 2)) < 1.0]
        parts.append(params)
        have += len(params)
    params = np.concatenate(parts)[:count]
    return params[:, :4].reshape(-1, 2, 2), params[:, 4:]


def _random_systems(rng, count, maps_min, maps_max):
    """count systems of maps_min..maps_max maps, padded to maps_max: A, b and ``used`` (count, maps_max)."""
    maps = rng.integers(maps_min, maps_max + 1, size=count)
    a, b = _contractive_maps(rng, count * maps_max)
    used = np.arange(maps_max)[None, :] < maps[:, None]
    return a.reshape(count, maps_max, 2, 2), b.reshape(count, maps_max, 2), used


def _chaos_game(rng, a, b, used):
    """(n, CHAINS*STEPS, 2) points on each system's attractor. Maps are picked with probability proportional
    to |det A| (FractalDB); every chain starts at map 0's fixed point, which lies on the attractor, so no
    point has to be thrown away."""
    n = len(a)
    cdf = np.cumsum((np.abs(np.linalg.det(a)) + 1e-3) * used, axis=1)      # (n, maps)
    cdf = cdf / cdf[:, -1:]                     # exactly 1 from the last used map on: no unused map is picked
    x = np.linalg.solve(np.eye(2) - a[:, 0], b[:, 0][..., None])[..., 0]   # (n, 2)
    x = np.repeat(x[:, None], CHAINS, axis=1)                              # (n, CHAINS, 2)
    rows = np.arange(n)[:, None]
    points = np.empty((n, STEPS, CHAINS, 2), np.float32)
    for step in range(STEPS):
        pick = (rng.random((n, CHAINS, 1)) >= cdf[:, None, :]).sum(-1)    # (n, CHAINS)
        x = np.einsum("ncij,ncj->nci", a[rows, pick], x) + b[rows, pick]
        points[:, step] = x
    return points.reshape(n, -1, 2)


def _fit(points):
    """Centre each point cloud on its box and scale its longer side to [-1, 1]."""
    low, high = points.min(1, keepdims=True), points.max(1, keepdims=True)
    half = np.maximum((high - low).max(-1, keepdims=True) / 2, 1e-6)
    return (points - (low + high) / 2) / half


def _splat(points, size):
    """(n, P, 2) points in [-1, 1]^2 -> (n, size, size) coverage: hit cells of a SUPERSAMPLE-times finer grid,
    averaged back, so thin structures come out anti-aliased."""
    n, fine = len(points), size * SUPERSAMPLE
    cells = np.clip(((points + 1.0) / 2.0 * fine).astype(np.int64), 0, fine - 1)   # (n, P, 2): x, y
    flat = (np.arange(n)[:, None] * fine + cells[..., 1]) * fine + cells[..., 0]
    hits = np.zeros(n * fine * fine, np.float32)
    hits[flat.ravel()] = 1.0
    return hits.reshape(n, size, SUPERSAMPLE, size, SUPERSAMPLE).mean((2, 4))


def _posed_fractal(rng, a, b, used, size, rotation, scale):
    points = _fit(_chaos_game(rng, a, b, used))
    angle, extent, centre = _placement(rng, len(a), rotation, scale)
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)   # (n, 2, 2)
    points = _fit(np.einsum("nij,npj->npi", turn, points))
    return _splat(points * extent[:, None, None] + centre[:, None, :], size)


def _fill(a, b, used, size=32):
    """Fraction of a size x size box that each system's attractor covers when fitted to it (FractalDB's
    filling rate)."""
    rng = np.random.default_rng(0)
    return (_splat(_fit(_chaos_game(rng, a, b, used)), size) > 0).mean((1, 2))


def fractal_systems(classes, maps_min=2, maps_max=4, min_fill=0.15, class_seed=0):
    """The classes' systems (A, b, used), drawn from class_seed: candidates are drawn in batches and kept, in
    order, while they fill at least min_fill."""
    rng = np.random.default_rng((class_seed, FRACTAL_STREAM))
    kept, found, tried = [], 0, 0
    while found < classes:
        if tried >= 100 * classes + 1000:
            raise DatasetError(f"fractal: only {found} of {tried} random systems fill min_fill={min_fill} of "
                               f"their box; use a lower min_fill (or fewer classes)")
        a, b, used = _random_systems(rng, 4 * classes, maps_min, maps_max)
        keep = _fill(a, b, used) >= min_fill
        kept.append((a[keep], b[keep], used[keep]))
        found, tried = found + int(keep.sum()), tried + 4 * classes
    return tuple(np.concatenate(part)[:classes] for part in zip(*kept))


def _jittered(rng, a, b, jitter):
    """Every parameter moved by N(0, jitter^2); a map that stops contracting is shrunk back to norm 0.98."""
    a = a + rng.normal(0.0, jitter, a.shape)
    b = b + rng.normal(0.0, jitter, b.shape)
    norm = np.linalg.norm(a, ord=2, axis=(-2, -1))[..., None, None]
    return a * np.minimum(1.0, 0.98 / np.maximum(norm, 1e-9)), b


def fractal_images(rng, n, size, classes=10, jitter=0.015, rotation=180.0, scale_min=0.6, scale_max=1.0,
                   clutter=0, maps_min=2, maps_max=4, min_fill=0.15, class_seed=0, noise=0.05):
    _check_pose("fractal", classes, jitter, rotation, scale_min, scale_max, clutter, noise, 1000)
    _check_range("fractal", "maps_min", maps_min, 2, maps_max)
    _check_range("fractal", "maps_max", maps_max, maps_min, 8)
    _check_range("fractal", "min_fill", min_fill, 0.0, 0.6)
    a, b, used = fractal_systems(classes, maps_min, maps_max, min_fill, class_seed)
    labels = _balanced_labels(rng, n, classes)
    canvas = _canvas(rng, n, size, noise)
    for _ in range(clutter):                                               # distractors: systems of no class
        canvas = _paint(canvas, _posed_fractal(rng, *_random_systems(rng, n, maps_min, maps_max), size,
                                               180.0, CLUTTER_SCALE), rng)
    a, b = _jittered(rng, a[labels], b[labels], jitter)
    canvas = _paint(canvas, _posed_fractal(rng, a, b, used[labels], size, rotation, (scale_min, scale_max)), rng)
    return _finish(canvas), labels


# ---- contour ------------------------------------------------------------------------------------------------

def _frequency_pairs(max_freq):
    return [(low, high) for low in range(1, max_freq + 1) for high in range(low + 1, max_freq + 1)]


def contour_classes(classes, max_freq=8, class_seed=0):
    """Each class's frequencies (classes, 2), amplitudes (classes, 2) and phase (classes,): a distinct pair
    of frequencies per class, amplitudes uniform in [0.1, 0.25]."""
    pairs = _frequency_pairs(max_freq)
    if classes > len(pairs):
        need = next(f for f in range(max_freq, 100) if len(_frequency_pairs(f)) >= classes)
        raise DatasetError(f"contour: classes={classes} needs as many frequency pairs, but max_freq={max_freq} "
                           f"gives {len(pairs)}; valid: classes <= {len(pairs)}, or max_freq >= {need}")
    rng = np.random.default_rng((class_seed, CONTOUR_STREAM))
    freq = np.array(pairs, dtype=np.float32)[rng.permutation(len(pairs))[:classes]]
    return freq, rng.uniform(0.1, 0.25, (classes, 2)), rng.uniform(0.0, 2 * math.pi, classes)


def _draw_curves(rng, freq, amp, phase, size, rotation, scale, line):
    """(n, size, size) coverage of each curve, drawn with a line of U(0.75, 1.25) * line px by its radial
    distance to every pixel."""
    n = len(freq)
    angle, extent, centre = _placement(rng, n, rotation, scale)
    width = line * rng.uniform(0.75, 1.25, n)
    pixel = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1       # pixel centres in [-1, 1]
    dy = (pixel[None, :, None] - centre[:, 1, None, None]) / extent[:, None, None]   # (n, size, 1)
    dx = (pixel[None, None, :] - centre[:, 0, None, None]) / extent[:, None, None]   # (n, 1, size)
    rho, t = np.hypot(dx, dy), np.arctan2(dy, dx) - angle[:, None, None]   # (n, size, size)
    curve = (1 + amp[:, 0, None, None] * np.sin(freq[:, 0, None, None] * t)
             + amp[:, 1, None, None] * np.sin(freq[:, 1, None, None] * t + phase[:, None, None]))
    radius = curve / (1 + amp.sum(1))[:, None, None]                       # the curve stays inside the extent
    distance = np.abs(rho - radius) * extent[:, None, None] * size / 2     # px
    return np.clip(width[:, None, None] / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def contour_images(rng, n, size, classes=28, max_freq=8, jitter=0.04, rotation=180.0, scale_min=0.6,
                   scale_max=1.0, line=1.5, clutter=0, class_seed=0, noise=0.05):
    _check_pose("contour", classes, jitter, rotation, scale_min, scale_max, clutter, noise, 10_000)
    _check_range("contour", "max_freq", max_freq, 2, 32)
    _check_range("contour", "line", line, 0.5, 4.0)
    freq, amp, phase = contour_classes(classes, max_freq, class_seed)
    labels = _balanced_labels(rng, n, classes)
    canvas = _canvas(rng, n, size, noise)
    pairs = np.array(_frequency_pairs(max_freq), dtype=np.float32)
    for _ in range(clutter):                                               # distractors: any pair, any shape
        other = pairs[rng.integers(0, len(pairs), n)]
        canvas = _paint(canvas, _draw_curves(rng, other, rng.uniform(0.1, 0.25, (n, 2)),
                                             rng.uniform(0, 2 * math.pi, n), size, 180.0, CLUTTER_SCALE, line), rng)
    amp = np.maximum(amp[labels] + rng.normal(0.0, jitter, (n, 2)), 0.0)
    phase = phase[labels] + rng.normal(0.0, math.pi * jitter, n)
    canvas = _paint(canvas, _draw_curves(rng, freq[labels], amp, phase, size, rotation, (scale_min, scale_max),
                                         line), rng)
    return _finish(canvas), labels


def _finish(canvas):
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


# Each task's generator and its number of classes: the option that sets it.
TASKS: Dict[str, Tuple[Callable, Union[int, str]]] = {
    "fractal": (fractal_images, "classes"),
    "contour": (contour_images, "classes"),
}


def generate(task: str, n: int, size: int, seed: int, **options):
    """n images (N, size, size, 3) uint8 and balanced labels (N,) int64 of ``task``, deterministic in seed."""
    return TASKS[task][0](np.random.default_rng(seed), n, size, **options)
