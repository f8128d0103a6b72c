"""Geometry of the parallel-beam Radon transform: argument checks, pixel masks, storage order, sizes.

Conventions (those of :func:`skimage.transform.radon`): pixel ``(i, j)`` of
an ``(H, W)`` image sits at ``x = j - W // 2`` (to the right) and
``y = H // 2 - i`` (upwards). Angle ``theta`` (degrees) records the line
integral along ``(-sin theta, cos theta)`` at detector coordinate
``t = x cos(theta) + y sin(theta)``; detector ``k`` sits at
``t = k - n_detectors // 2``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Geometry", "radon_matrix_nbytes", "pixel_mask", "storage_order", "TILE", "FORMAT"]

#: Side of the square pixel tiles of the storage order of the matrices' pixel axis.
TILE = 16
#: Version of the weights' definition and storage order; part of every on-disk cache key.
FORMAT = 4
#: Above this many angles, an angle *count* is sized analytically instead of from its array.
_EXACT_COUNT_LIMIT = 10**6


def check_in_shape(in_shape: Any) -> tuple[int, int]:
    """``in_shape`` as ``(H, W)``: an int ``N`` means ``N x N``.

    Examples
    --------
    >>> check_in_shape(8), check_in_shape((6, 11))
    ((8, 8), (6, 11))
    """
    if isinstance(in_shape, numbers.Integral) and not isinstance(in_shape, bool):
        in_shape = (int(in_shape), int(in_shape))
    if isinstance(in_shape, torch.Size):
        in_shape = tuple(in_shape)
    if (not isinstance(in_shape, Sequence) or isinstance(in_shape, str)
            or len(in_shape) != 2):
        raise ValueError(f"in_shape must be an int N (an N x N image) or a pair (H, W), got "
                         f"{in_shape!r}")
    out = []
    for s in in_shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or int(s) < 1:
            raise ValueError(f"in_shape must contain positive integers, got {tuple(in_shape)!r}")
        out.append(int(s))
    return out[0], out[1]


def _angle_count(angles: Any) -> int | None:
    """The number of angles if ``angles`` is a count (checked), else None."""
    if isinstance(angles, numbers.Integral) and not isinstance(angles, bool):
        if int(angles) < 1:
            raise ValueError(f"angles: a number of angles must be >= 1, got {angles}")
        return int(angles)
    return None


def check_angles(angles: Any) -> np.ndarray:
    """Angles in degrees as a float64 array; an int ``n`` means ``n`` angles evenly over ``[0, 180)``.

    Examples
    --------
    >>> check_angles(4)
    array([  0.,  45.,  90., 135.])
    """
    count = _angle_count(angles)
    if count is not None:
        return np.linspace(0.0, 180.0, count, endpoint=False)
    if isinstance(angles, torch.Tensor):
        angles = angles.detach().cpu().numpy()
    try:
        arr = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"angles must be an int or a 1-D sequence of numbers (degrees), got "
                        f"{type(angles).__name__}") from err
    if arr.ndim != 1:
        raise ValueError(f"angles must be 1-D (degrees), got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("angles must not be empty: give at least one projection angle (degrees)")
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)][:3].tolist()
        raise ValueError(f"angles must be finite, got non-finite values such as {bad}")
    return arr


def check_circle(circle: Any) -> bool:
    """``circle`` as a bool (a TypeError for anything else)."""
    if not isinstance(circle, (bool, np.bool_)):
        raise TypeError(f"circle must be a bool, got {type(circle).__name__}")
    return bool(circle)


def check_n_detectors(n_detectors: Any, h: int, w: int, circle: bool) -> int:
    """The detector count: ``n_detectors``, or scikit-image's default for ``None``.

    The default is ``N`` with ``circle=True`` and ``ceil(sqrt(2) * max(H, W))``
    otherwise.

    Examples
    --------
    >>> check_n_detectors(None, 10, 10, True), check_n_detectors(None, 10, 10, False)
    (10, 15)
    """
    if n_detectors is None:
        return h if circle else int(math.ceil(math.sqrt(2.0) * max(h, w)))
    if (not isinstance(n_detectors, numbers.Integral) or isinstance(n_detectors, bool)
            or int(n_detectors) < 1):
        raise ValueError(f"n_detectors must be a positive integer or None, got {n_detectors!r}")
    return int(n_detectors)


def inside_circle(h: int, w: int, circle: bool) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels the operator sees (the inscribed disc for ``circle``).

    The disc has radius ``H // 2`` around pixel ``(H // 2, W // 2)``.

    Examples
    --------
    >>> int(inside_circle(4, 4, True).sum()), int(inside_circle(4, 4, False).sum())
    (11, 16)
    """
    if not circle:
        return np.ones((h, w), dtype=bool)
    r = h // 2
    yy, xx = np.ogrid[:h, :w]
    return (yy - h // 2) ** 2 + (xx - w // 2) ** 2 <= r * r


def pixel_mask(h: int, w: int, circle: bool) -> np.ndarray:
    """Flat (row-major) indices of the pixels the operator sees.

    Examples
    --------
    >>> pixel_mask(3, 3, True)
    array([1, 3, 4, 5, 7])
    """
    if not circle:
        return np.arange(h * w)
    return np.flatnonzero(inside_circle(h, w, circle))


def storage_order(h: int, w: int, tile: int = TILE) -> np.ndarray:
    """Pixel storage order: ``tile x tile`` blocks in row-major order, row-major inside a block.

    Entry ``s`` is the flat (row-major) index of the pixel stored at position
    ``s``. Neighbouring pixels in 2-D stay close in memory, so the sparse
    products reuse cache lines better (20-30% faster on 256x256 images).

    Examples
    --------
    >>> storage_order(2, 4, tile=2)
    array([0, 1, 4, 5, 2, 3, 6, 7])
    """
    i, j = np.divmod(np.arange(h * w), w)
    n_tiles_w = -(-w // tile)
    key = ((i // tile) * n_tiles_w + j // tile) * (tile * tile) + (i % tile) * tile + j % tile
    return np.argsort(key, kind="stable")


def _entries_per_pixel(angles: Any) -> tuple[float, int]:
    """Expected stored entries per pixel over all angles, and the number of angles."""
    count = _angle_count(angles)
    if count is not None and count > _EXACT_COUNT_LIMIT:
        # the mean of 2 (|cos| + |sin|) over evenly spread angles tends to 8 / pi
        return count * 8.0 / math.pi, count
    th = np.deg2rad(check_angles(angles))
    # a pixel touches on average 2 (|cos| + |sin|) detector bins at angle theta
    return float(np.sum(2.0 * (np.abs(np.cos(th)) + np.abs(np.sin(th))))), int(th.size)


def radon_matrix_nbytes(in_shape: Any, angles: Any, n_detectors: int | None = None,
                        circle: bool = True, dtype: torch.dtype = torch.float32) -> int:
    """Estimated memory (bytes) of a :class:`~physinv.operators.Radon` operator's two CSR matrices.

    Counts values (4 bytes in float32, 8 in float64), column indices and row
    pointers (int32; int64 above 2^31 entries) of ``A`` and ``A^T``; building
    needs this plus about 100 MB of work space. Cheap even for absurd sizes
    (an angle count is not expanded into an array above a million angles),
    so it can vet untrusted geometries.

    Parameters
    ----------
    in_shape : int or (int, int)
        ``N`` for ``N x N`` images, or ``(H, W)``.
    angles : int or sequence of float
        Angles in degrees, or their number (spread evenly over ``[0, 180)``).
    n_detectors : int, optional
        Detector bins; default as :class:`~physinv.operators.Radon`.
    circle : bool
        Whether only the inscribed disc is seen.
    dtype : torch.dtype
        Precision of the values.

    Returns
    -------
    int

    Examples
    --------
    >>> round(radon_matrix_nbytes(512, 360) / 2**30, 1)
    2.8
    >>> radon_matrix_nbytes(16, 10**7) > 2**36  # ten million angles: about 120 GiB
    True
    """
    h, w = check_in_shape(in_shape)
    circle = check_circle(circle)
    n_det = check_n_detectors(n_detectors, h, w, circle)
    n_pix = int(inside_circle(h, w, circle).sum())
    per_pixel, n_ang = _entries_per_pixel(angles)
    nnz = n_pix * per_pixel
    idx = 4 if max(nnz, n_ang * n_det, h * w) < 2**31 - 1 else 8
    val = torch.finfo(dtype).bits // 8
    rows = n_ang * n_det + h * w + 2  # the row pointers of A and A^T
    return int(2 * nnz * (val + idx) + rows * idx)


@dataclass(frozen=True, eq=False)
class Geometry:
    """A checked parallel-beam geometry: image ``(h, w)``, angles (degrees), detectors, circle.

    Examples
    --------
    >>> g = Geometry.from_args(8, 3)
    >>> g.shape, g.n_pixels
    ((24, 64), 47)
    >>> g.key == Geometry.from_args((8, 8), [0.0, 60.0, 120.0]).key
    True
    """

    h: int
    w: int
    angles: np.ndarray
    n_det: int
    circle: bool

    @classmethod
    def from_args(cls, in_shape: Any, angles: Any, n_detectors: Any = None,
                  circle: Any = True) -> Geometry:
        """Check the constructor arguments of :class:`~physinv.operators.Radon`."""
        h, w = check_in_shape(in_shape)
        circle = check_circle(circle)
        if circle and h != w:
            raise ValueError(f"in_shape: circle=True needs a square image, got {(h, w)}; use "
                             "circle=False for rectangular images")
        n_det = check_n_detectors(n_detectors, h, w, circle)
        return cls(h, w, check_angles(angles), n_det, circle)

    @property
    def n_angles(self) -> int:
        """Number of projection angles."""
        return int(self.angles.size)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(n_angles * n_det, h * w)`` of the system matrix ``A``."""
        return self.n_angles * self.n_det, self.h * self.w

    @property
    def n_pixels(self) -> int:
        """Number of pixels the operator sees."""
        return int(pixel_mask(self.h, self.w, self.circle).size)

    @property
    def key(self) -> str:
        """A hash of the geometry and :data:`FORMAT` (names the on-disk cache files)."""
        desc = json.dumps({"format": FORMAT, "in_shape": [self.h, self.w], "n_detectors": self.n_det,
                           "circle": self.circle,
                           "angles": hashlib.sha256(self.angles.tobytes()).hexdigest()},
                          sort_keys=True)
        return hashlib.sha256(desc.encode()).hexdigest()[:24]
