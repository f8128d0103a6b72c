"""Point-spread functions, normalised to unit sum.

Every constructor returns a ``float64`` :class:`torch.Tensor` of odd size
(centre at ``size // 2``, the :func:`scipy.ndimage.convolve` convention),
unless an explicit ``size`` says otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["gaussian", "motion", "disk", "airy", "from_array", "check_psf"]


def check_psf(psf: Any, image_shape: tuple[int, ...] | None = None, normalize: bool = True) -> torch.Tensor:
    """Validate a PSF and return it as a float tensor (normalised to unit sum if asked).

    Raises a ``ValueError`` naming the problem for non-2-D, non-finite,
    zero-sum or too-large PSFs.

    Examples
    --------
    >>> check_psf([[1.0, 3.0]])
    tensor([[0.2500, 0.7500]], dtype=torch.float64)
    """
    if isinstance(psf, torch.Tensor):
        k = psf.detach()
    else:
        k = torch.as_tensor(np.asarray(psf))
    if k.is_complex():
        raise TypeError("psf must be real, got a complex array")
    if not k.is_floating_point():
        k = k.to(torch.float64)
    if k.dim() != 2:
        raise ValueError(f"psf must be a 2-D array, got {k.dim()}-D with shape {tuple(k.shape)}")
    if k.numel() == 0:
        raise ValueError("psf must not be empty")
    if not bool(torch.isfinite(k).all()):
        raise ValueError("psf contains non-finite values (nan or inf)")
    total = float(k.sum())
    if normalize:
        if total == 0.0:
            raise ValueError("psf sums to zero and cannot be normalised to unit sum")
        k = k / total
    elif bool((k == 0).all()):
        raise ValueError("psf is identically zero")
    if image_shape is not None:
        if k.shape[0] > image_shape[-2] or k.shape[1] > image_shape[-1]:
            raise ValueError(
                f"psf of shape {tuple(k.shape)} is larger than the image {tuple(image_shape[-2:])}"
            )
    return k


def _odd(n: float) -> int:
    n = int(math.ceil(n))
    return n if n % 2 == 1 else n + 1


def _check_size(size: int | None, default: int, name: str = "size") -> int:
    if size is None:
        return default
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{name} must be a positive integer, got {size!r}")
    return int(size)


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _grid(size: int) -> torch.Tensor:
    return torch.arange(size, dtype=torch.float64) - size // 2


def gaussian(sigma: float, size: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian PSF with standard deviation ``sigma`` pixels.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels (> 0).
    size : int, optional
        Side length; default ``2 * ceil(3 * sigma) + 1``.

    Examples
    --------
    >>> k = gaussian(1.0)
    >>> k.shape, round(float(k.sum()), 12)
    (torch.Size([7, 7]), 1.0)
    """
    sigma = _positive(sigma, "sigma")
    size = _check_size(size, 2 * math.ceil(3 * sigma) + 1)
    r = _grid(size)
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return check_psf(torch.outer(g, g))


def motion(length: float, angle: float = 0.0, size: int | None = None) -> torch.Tensor:
    """Linear motion blur of ``length`` pixels at ``angle`` degrees (counter-clockwise from +x).

    The segment is rasterised by supersampling so fractional lengths and any
    angle give a smooth, unit-sum kernel.

    Examples
    --------
    >>> k = motion(5, 0)
    >>> k.shape, int((k.sum(0) > 0).sum())
    (torch.Size([5, 5]), 5)
    """
    length = _positive(length, "length")
    if not math.isfinite(float(angle)):
        raise ValueError(f"angle must be finite, got {angle}")
    size = _check_size(size, _odd(length))
    n = max(64, int(16 * length))
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    th = math.radians(float(angle))
    xs = t * math.cos(th)
    ys = -t * math.sin(th)
    k = torch.zeros(size, size, dtype=torch.float64)
    c = size // 2
    # Bilinear splatting of the supersampled segment.
    for px, py in ((xs, ys),):
        x0 = torch.floor(px)
        y0 = torch.floor(py)
        fx, fy = px - x0, py - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                ix = (x0 + dx).long() + c
                iy = (y0 + dy).long() + c
                ok = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
                k.index_put_((iy[ok], ix[ok]), (wx * wy)[ok], accumulate=True)
    return check_psf(k)


def disk(radius: float, size: int | None = None) -> torch.Tensor:
    """Uniform disk (defocus) PSF of ``radius`` pixels, anti-aliased by 8x supersampling.

    Examples
    --------
    >>> k = disk(2.0)
    >>> k.shape
    torch.Size([5, 5])
    """
    radius = _positive(radius, "radius")
    size = _check_size(size, 2 * math.ceil(radius) + 1)
    ss = 8
    r = (torch.arange(size * ss, dtype=torch.float64) + 0.5) / ss - 0.5 - size // 2
    inside = (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2
    k = inside.to(torch.float64).reshape(size, ss, size, ss).mean(dim=(1, 3))
    return check_psf(k)


def airy(radius: float, size: int | None = None) -> torch.Tensor:
    """Airy pattern (diffraction-limited circular aperture).

    ``radius`` is the radius of the first dark ring in pixels:
    ``I(r) = (2 J1(v) / v)^2`` with ``v = 3.8317 r / radius``.

    Examples
    --------
    >>> k = airy(3.0)
    >>> bool(k[k.shape[0] // 2, k.shape[1] // 2] == k.max())
    True
    """
    from scipy.special import j1

    radius = _positive(radius, "radius")
    size = _check_size(size, 2 * math.ceil(3 * radius) + 1)
    r = _grid(size).numpy()
    rr = np.hypot(r[:, None], r[None, :])
    v = 3.8317059702075125 * rr / radius
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(v == 0, 1.0, (2 * j1(v) / np.where(v == 0, 1.0, v)) ** 2)
    return check_psf(torch.from_numpy(a))


def from_array(a: Any) -> torch.Tensor:
    """A user PSF (numpy or torch, 2-D, finite, non-zero sum) normalised to unit sum.

    Examples
    --------
    >>> from_array([[0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    tensor([[0.0000, 0.5000, 0.0000],
            [0.0000, 0.5000, 0.0000]], dtype=torch.float64)
    """
    return check_psf(a)
