"""Synthetic thermal scenes: hot objects on a structured background, with their ground-truth mask.

A scene is a temperature map in kelvin on a fine grid (the camera's scene
grid) and a boolean mask of the hot objects. The background is a base
temperature with a linear gradient (sun-warmed ground, cooler far field) and a
smooth random texture; the objects (disks, ellipses, rotated rectangles,
polygons and person-like silhouettes) are warmer than the background around
them by a drawn contrast and carry their own mild internal gradient (a warmer
core). Everything is drawn from one seed, so a scene is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._random import mix_seed
from .._validate import as_shape, check_int, check_real

__all__ = ["Scene", "make_scene", "flat_scene", "SHAPES"]

#: Object kinds :func:`make_scene` draws from.
SHAPES = ("disk", "ellipse", "rectangle", "polygon", "person")


@dataclass
class Scene:
    """A temperature map and its object mask.

    Attributes
    ----------
    temperature_k : torch.Tensor
        ``(H, W)`` float64, kelvin.
    mask : torch.Tensor
        ``(H, W)`` bool, True on hot objects.
    background_k : float
        The base background temperature drawn for the scene.
    shapes : list of str
        The kind of each object placed, in drawing order.

    Examples
    --------
    >>> s = make_scene((32, 40), seed=0, n_objects=2)
    >>> s.temperature_k.shape, s.mask.dtype
    (torch.Size([32, 40]), torch.bool)
    """

    temperature_k: torch.Tensor
    mask: torch.Tensor
    background_k: float
    shapes: list[str]

    def __post_init__(self) -> None:
        t, m = self.temperature_k, self.mask
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
            raise ValueError("temperature_k must be a 2-D floating tensor (H, W)")
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != t.shape:
            raise ValueError(f"mask must be a bool tensor of the temperature's shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
            raise ValueError("temperature_k must be finite and > 0 kelvin")


def _range(value: Any, name: str, *, positive: bool = True) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
        lo, hi = check_real(value[0], f"{name}[0]"), check_real(value[1], f"{name}[1]")
    else:
        lo = hi = check_real(value, name)
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got ({lo}, {hi})")
    if positive and lo <= 0:
        raise ValueError(f"{name} must be > 0, got ({lo}, {hi})")
    return lo, hi


def _count_range(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"n_objects must be an int or a (low, high) pair, got {value!r}")
        lo, hi = check_int(value[0], "n_objects[0]", 0), check_int(value[1], "n_objects[1]", 0)
        if lo > hi:
            raise ValueError(f"n_objects must have low <= high, got ({lo}, {hi})")
        return lo, hi
    n = check_int(value, "n_objects", 0)
    return n, n


def _texture(rng: np.random.Generator, shape: tuple[int, int], scales: tuple[float, ...],
             weights: tuple[float, ...]) -> np.ndarray:
    """Sum of Gaussian-correlated noise fields (correlation lengths ``scales`` in pixels, stds ``weights``).

    All fields filter one white-noise draw (one forward and one inverse FFT); each filter is scaled
    so that its field has unit expected variance (Parseval).
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f2 = fy**2 + fx**2
    mult = np.full(fx.shape[1], 2.0)  # rfft halves: interior columns stand for two
    mult[0] = 1.0
    if w % 2 == 0:
        mult[-1] = 1.0
    total = np.zeros_like(f2)
    for scale, weight in zip(scales, weights):
        filt = np.exp(-2.0 * (math.pi * scale) ** 2 * f2)
        var = float((filt**2 * mult).sum()) / (h * w)
        total += weight * filt / math.sqrt(var)
    return np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * total, s=shape)


def _shape_mask(kind: str, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float,
                size: float) -> np.ndarray:
    """Boolean mask of one object of characteristic radius ``size`` centred at ``(cy, cx)``."""
    angle = rng.uniform(0.0, math.pi)
    c, s = math.cos(angle), math.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotated coordinates
    if kind == "disk":
        return dy**2 + dx**2 <= size**2
    if kind == "ellipse":
        a, b = size, size * rng.uniform(0.35, 0.75)
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if kind == "rectangle":
        a, b = size, size * rng.uniform(0.3, 0.9)
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == "polygon":
        n = int(rng.integers(3, 7))
        radii = size * rng.uniform(0.6, 1.0, n)
        phis = np.sort(rng.uniform(0, 2 * math.pi, n))
        phis = (phis + np.linspace(0, 2 * math.pi, n, endpoint=False)) / 2  # spread the corners
        phis = np.sort(phis % (2 * math.pi))
        px, py = cx + radii * np.cos(phis), cy + radii * np.sin(phis)
        inside = np.ones(yy.shape, dtype=bool)
        # convex hull of the corners (sorted by angle about the centre): inside every edge's half plane
        for k in range(n):
            x0, y0, x1, y1 = px[k], py[k], px[(k + 1) % n], py[(k + 1) % n]
            inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
        return inside
    if kind == "person":  # upright: head, torso, two legs; height 2 * size
        hgt = 2.0 * size
        top = cy - hgt / 2
        head_r = 0.11 * hgt
        head = (yy - (top + head_r)) ** 2 + (xx - cx) ** 2 <= head_r**2
        torso = (np.abs(xx - cx) <= 0.13 * hgt) & (yy >= top + 2 * head_r) & (yy <= top + 0.6 * hgt)
        legs = ((np.abs(np.abs(xx - cx) - 0.07 * hgt) <= 0.05 * hgt) & (yy > top + 0.6 * hgt)
                & (yy <= top + hgt))
        return head | torso | legs
    raise ValueError(f"unknown shape {kind!r}; expected one of {list(SHAPES)}")


def make_scene(shape: Any = (512, 640), *, seed: int, n_objects: Any = (3, 8),
               object_delta_k: Any = (4.0, 30.0), background_k: Any = (285.0, 300.0),
               gradient_k: float = 6.0, texture_k: float = 1.5, shapes: Any = SHAPES) -> Scene:
    """A seeded synthetic thermal scene: hot objects of several shapes on a textured background.

    Parameters
    ----------
    shape : (int, int)
        Grid ``(H, W)``; at least 8 x 8.
    seed : int
        Seed (>= 0); the same seed gives the same scene.
    n_objects : int or (int, int)
        Number of objects, or the inclusive range it is drawn from.
    object_delta_k : float or (float, float)
        Contrast of each object over the local background, kelvin (range drawn from).
    background_k : float or (float, float)
        Base background temperature, kelvin (range drawn from).
    gradient_k : float
        Peak-to-peak temperature change of the linear background gradient, kelvin (>= 0).
    texture_k : float
        Standard deviation of the smooth background texture, kelvin (>= 0).
    shapes : sequence of str
        Object kinds to draw from (subset of :data:`SHAPES`).

    Returns
    -------
    Scene

    Examples
    --------
    >>> s = make_scene((64, 80), seed=3, n_objects=4)
    >>> bool(s.mask.any()), len(s.shapes)
    (True, 4)
    >>> bool(s.temperature_k[s.mask].mean() > s.temperature_k[~s.mask].mean())
    True
    >>> torch.equal(make_scene((64, 80), seed=3).temperature_k, make_scene((64, 80), seed=3).temperature_k)
    True
    """
    shape = as_shape(shape, "shape")
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be (H, W) with H, W >= 8, got {shape}")
    seed = check_int(seed, "seed", 0)
    n_lo, n_hi = _count_range(n_objects)
    d_lo, d_hi = _range(object_delta_k, "object_delta_k", positive=False)
    b_lo, b_hi = _range(background_k, "background_k")
    gradient_k = check_real(gradient_k, "gradient_k")
    texture_k = check_real(texture_k, "texture_k")
    if gradient_k < 0 or texture_k < 0:
        raise ValueError(f"gradient_k and texture_k must be >= 0, got {gradient_k}, {texture_k}")
    shapes = tuple(shapes) if not isinstance(shapes, str) else (shapes,)
    bad = [k for k in shapes if k not in SHAPES]
    if not shapes or bad:
        raise ValueError(f"shapes must be a non-empty subset of {list(SHAPES)}, got {list(shapes)}")

    rng = np.random.default_rng(mix_seed(seed, 0x1A5CE7E))
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = float(rng.uniform(b_lo, b_hi))
    theta = rng.uniform(0, 2 * math.pi)
    ramp = (math.cos(theta) * (xx / max(w - 1, 1) - 0.5) + math.sin(theta) * (yy / max(h - 1, 1) - 0.5))
    temp = base + gradient_k * ramp
    if texture_k > 0:
        temp = temp + texture_k * _texture(rng, shape, (0.08 * min(h, w), 0.015 * min(h, w) + 0.5),
                                           (0.8, 0.6))
    mask = np.zeros(shape, dtype=bool)
    n = int(rng.integers(n_lo, n_hi + 1))
    kinds: list[str] = []
    m = min(h, w)
    for _ in range(n):
        kind = str(shapes[int(rng.integers(len(shapes)))])
        size = max(2.0, rng.uniform(0.05, 0.13) * m)
        cy, cx = rng.uniform(size, h - size), rng.uniform(size, w - size)
        # every shape fits in a box of half-side 1.5 size about its centre: work in that window only
        r0, r1 = max(0, int(cy - 1.5 * size)), min(h, int(math.ceil(cy + 1.5 * size)) + 1)
        c0, c1 = max(0, int(cx - 1.5 * size)), min(w, int(math.ceil(cx + 1.5 * size)) + 1)
        wy, wx = yy[r0:r1, c0:c1], xx[r0:r1, c0:c1]
        region = _shape_mask(kind, rng, wy, wx, cy, cx, size)
        if not region.any():  # a degenerate draw on a tiny grid: fall back to a disk
            region = (wy - cy) ** 2 + (wx - cx) ** 2 <= size**2
        delta = float(rng.uniform(d_lo, d_hi))
        window = temp[r0:r1, c0:c1]
        local = float(window[region].mean())
        core = np.exp(-((wy - cy) ** 2 + (wx - cx) ** 2) / (2 * size**2))  # warmer core
        temp[r0:r1, c0:c1] = np.where(region, local + delta * (0.85 + 0.3 * core), window)
        mask[r0:r1, c0:c1] |= region
        kinds.append(kind)
    if temp.min() <= 0:
        raise ValueError(f"the drawn scene has a non-positive temperature ({temp.min():.3g} K); lower "
                         "gradient_k / texture_k or raise background_k")
    return Scene(torch.from_numpy(temp), torch.from_numpy(mask), base, kinds)


def flat_scene(shape: Any, temperature_k: float) -> Scene:
    """A uniform scene (a black-body reference source filling the field of view), no objects.

    Examples
    --------
    >>> s = flat_scene((4, 5), 300.0)
    >>> float(s.temperature_k.std()), bool(s.mask.any())
    (0.0, False)
    """
    shape = as_shape(shape, "shape")
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    t = check_real(temperature_k, "temperature_k", positive=True)
    return Scene(torch.full(shape, t, dtype=torch.float64), torch.zeros(shape, dtype=torch.bool), t, [])
