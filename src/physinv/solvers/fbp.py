"""Filtered back-projection (FBP) for the parallel-beam Radon transform, and its ramp filters.

FBP for the parallel-beam :class:`~physinv.operators.Radon` operator is

    ``x = pi / (2 n_angles) * A^T (h * y)``,

the adjoint applied to the sinogram convolved, detector row by detector
row, with a ramp filter ``h``. ``h`` is the band-limited ramp of Kak and
Slaney sampled in the detector domain (``h[0] = 1/4``, ``h[n] = -1/(pi n)^2``
for odd ``n``, 0 for even ``n``), taken to the frequency domain on a
zero-padded grid and optionally multiplied by a window (Shepp-Logan, cosine,
Hamming, Hann). The padding length, scaling and windows follow
:func:`skimage.transform.iradon`, so the two differ only in their
back-projectors (here the exact adjoint of the forward model).

The ``pi / (2 n_angles)`` weight assumes angles spread evenly over 180
degrees, as in scikit-image; for other angle sets FBP is only a rough
reconstruction (use an iterative solver with ``A`` and ``A.adjoint``).
"""

from __future__ import annotations

import math

import torch

from ..operators import LinearOperator, Radon

__all__ = ["fbp", "ramp_filter", "filter_sinogram", "FILTERS"]

#: Names accepted by :func:`fbp` (``None`` back-projects without filtering).
FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def _padded_length(n_detectors: int, circle: bool) -> int:
    n = math.ceil(math.sqrt(2.0) * n_detectors) if circle else n_detectors
    return max(64, 1 << (2 * n - 1).bit_length())


def ramp_filter(size: int, filter: str | None = "ramp", dtype: torch.dtype = torch.float64,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Frequency response (length ``size``, FFT order) of the windowed ramp filter.

    Parameters
    ----------
    size : int
        Even FFT length (the zero-padded detector length).
    filter : str or None
        One of :data:`FILTERS`, or ``None`` for all ones (no filtering).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Real, shape ``(size,)``; ``0`` at zero frequency is avoided by the
        spatial-domain construction (its value there is ``2 h.sum() > 0``).

    Examples
    --------
    >>> f = ramp_filter(64)
    >>> f.shape, bool(f[32] > f[1] > 0)
    (torch.Size([64]), True)
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 2 or size % 2:
        raise ValueError(f"size must be an even integer >= 2, got {size!r}")
    if filter is not None and filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS} or None, got {filter!r}")
    if filter is None:
        return torch.ones(size, dtype=dtype, device=device)
    n = torch.arange(size, dtype=torch.float64)
    dist = torch.minimum(n, size - n)  # circular distance |n|
    h = torch.zeros(size, dtype=torch.float64)
    h[0] = 0.25
    odd = dist % 2 == 1
    h[odd] = -1.0 / (math.pi * dist[odd]) ** 2
    resp = 2.0 * torch.fft.fft(h).real
    freq = torch.fft.fftfreq(size, dtype=torch.float64)  # cycles / sample in [-1/2, 1/2)
    if filter == "shepp-logan":
        w = torch.pi * freq
        resp[1:] *= torch.sin(w[1:]) / w[1:]
    elif filter == "cosine":
        resp *= torch.cos(torch.pi * freq)
    elif filter == "hamming":
        resp *= torch.fft.fftshift(torch.hamming_window(size, periodic=False, dtype=torch.float64))
    elif filter == "hann":
        resp *= torch.fft.fftshift(torch.hann_window(size, periodic=False, dtype=torch.float64))
    return resp.to(dtype=dtype, device=device)


def filter_sinogram(sinogram: torch.Tensor, filter: str | None = "ramp",
                    padded_length: int | None = None) -> torch.Tensor:
    """Convolve every projection (last axis) with the windowed ramp filter.

    Parameters
    ----------
    sinogram : torch.Tensor
        ``(..., n_angles, n_detectors)``, real.
    filter : str or None
        One of :data:`FILTERS`; ``None`` returns the sinogram unchanged.
    padded_length : int, optional
        FFT length (even, at least ``2 n_detectors - 1`` for a linear
        convolution); default the next power of two >= ``2 n_detectors``
        and >= 64.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``sinogram``.

    Examples
    --------
    >>> import torch
    >>> filter_sinogram(torch.ones(3, 10)).shape
    torch.Size([3, 10])
    """
    if not isinstance(sinogram, torch.Tensor) or sinogram.dim() < 2:
        raise TypeError("sinogram must be a torch.Tensor of shape (..., n_angles, n_detectors)")
    if sinogram.is_complex() or not sinogram.is_floating_point():
        raise TypeError(f"sinogram must be a real floating tensor, got {sinogram.dtype}")
    if filter is None:
        return sinogram
    n = sinogram.shape[-1]
    size = padded_length if padded_length is not None else max(64, 1 << (2 * n - 1).bit_length())
    if not isinstance(size, int) or size < 2 * n - 1 or size % 2:
        raise ValueError(f"padded_length must be an even integer >= 2 n_detectors - 1 = {2 * n - 1}, "
                         f"got {padded_length!r}")
    resp = ramp_filter(size, filter, dtype=sinogram.dtype, device=sinogram.device)
    spec = torch.fft.rfft(sinogram, n=size, dim=-1)
    return torch.fft.irfft(spec * resp[: size // 2 + 1], n=size, dim=-1)[..., :n]


def fbp(sinogram: torch.Tensor, A: Radon, filter: str | None = "ramp") -> torch.Tensor:
    """Filtered back-projection of a parallel-beam sinogram.

    Parameters
    ----------
    sinogram : torch.Tensor
        ``(..., n_angles, n_detectors)`` (angles first, the layout of
        ``A(x)``; transpose scikit-image's ``(n_detectors, n_angles)``).
    A : Radon
        The geometry.
    filter : str or None
        ``"ramp"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"``,
        ``"hann"``, or ``None`` for the scaled unfiltered back-projection.

    Returns
    -------
    torch.Tensor
        Images ``(..., H, W)`` in the dtype of ``sinogram``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Radon
    >>> A = Radon(32, 60)
    >>> x = torch.zeros(32, 32); x[12:20, 10:22] = 1.0
    >>> xr = fbp(A(x), A)
    >>> bool((xr - x).abs().mean() < 0.05)
    True
    """
    if not isinstance(A, Radon):
        hint = " (the filter goes third: fbp(y, A, filter=...))" if isinstance(A, str) else ""
        raise TypeError(f"A must be a physinv.operators.Radon, got {type(A).__name__}{hint}")
    LinearOperator._check(sinogram, A.out_shape, "sinogram", "fbp")
    if sinogram.is_complex():
        raise TypeError("fbp: sinogram must be real")
    size = _padded_length(A.n_detectors, A.circle)
    filtered = filter_sinogram(sinogram, filter, padded_length=size)
    return A.adjoint(filtered) * (math.pi / (2 * A.n_angles))
