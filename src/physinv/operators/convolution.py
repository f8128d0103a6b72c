"""2-D convolution with a fixed point-spread function, computed with real FFTs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validate import as_shape, check_device, check_size
from ..psf import check_psf
from ..spectrum import fast_fft_length, fourier_multiply
from .base import FactorizationError, LinearOperator
from .fourier import FourierFactorization

__all__ = ["Convolution", "Pad", "BOUNDARIES"]

#: The same-size boundary models of :class:`Convolution` and the ``scipy.ndimage`` mode each
#: one equals. The one other choice, ``boundary="valid"``, has a smaller output (no boundary
#: model: only pixels whose whole footprint lies inside the image).
BOUNDARIES = {
    "circular": "wrap",
    "zero": "constant",
    "reflect": "reflect",
    "replicate": "nearest",
    "mirror": "mirror",
}


def _source_index(n: int, before: int, total: int, mode: str) -> np.ndarray:
    """For each padded position, the source index in ``[0, n)`` or -1 for zero."""
    p = np.arange(total) - before
    if mode == "constant":
        return np.where((p >= 0) & (p < n), p, -1)
    if mode == "nearest":
        return np.clip(p, 0, n - 1)
    if mode == "wrap":
        return np.mod(p, n)
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        period = 2 * n
        q = np.mod(p, period)
        return np.where(q < n, q, period - 1 - q)
    if mode == "mirror":  # whole-sample symmetric: d c b | a b c d | c b a
        if n == 1:
            return np.zeros_like(p)
        period = 2 * n - 2
        q = np.mod(p, period)
        return np.where(q < n, q, period - q)
    raise ValueError(f"unknown padding mode {mode!r}")


class Pad(LinearOperator):
    """Pad the last two dimensions by index mapping, with the exact (scatter-add) adjoint.

    Parameters
    ----------
    in_shape : (int, int)
        Image shape ``(H, W)``.
    pad : ((int, int), (int, int))
        ``((top, bottom), (left, right))`` padding widths.
    mode : {"constant", "nearest", "wrap", "reflect", "mirror"}
        ``scipy.ndimage`` boundary names (``constant`` pads zeros).
    out_shape : (int, int), optional
        Larger output; positions beyond the padded image are zero.

    Examples
    --------
    >>> import torch
    >>> P = Pad((1, 3), ((0, 0), (2, 2)), "reflect")
    >>> P(torch.tensor([[1.0, 2.0, 3.0]]))
    tensor([[2., 1., 1., 2., 3., 3., 2.]])
    """

    def __init__(self, in_shape: Any, pad: Any, mode: str = "constant", out_shape: Any = None) -> None:
        in_shape = as_shape(in_shape, "in_shape")
        if len(in_shape) != 2:
            raise ValueError(f"in_shape must be (H, W), got {in_shape}")
        (t, b), (left, r) = pad
        full = (in_shape[0] + t + b, in_shape[1] + left + r)
        check_size(full[0] * full[1], f"a padded image of shape {full}", "pad")
        out_shape = full if out_shape is None else as_shape(out_shape, "out_shape")
        if out_shape[0] < full[0] or out_shape[1] < full[1]:
            raise ValueError(f"out_shape {out_shape} is smaller than the padded shape {full}")
        check_size(out_shape[0] * out_shape[1], f"an output of shape {out_shape}", "out_shape")
        super().__init__(in_shape, out_shape)
        self.pad = ((int(t), int(b)), (int(left), int(r)))
        self.mode = mode
        for axis, (n, (before, after), total) in enumerate(zip(in_shape, self.pad, out_shape)):
            idx = _source_index(n, before, before + n + after, mode)
            idx = np.concatenate([idx, -np.ones(total - idx.size, dtype=idx.dtype)])
            valid = idx >= 0
            self.register_buffer(f"idx{axis}", torch.from_numpy(np.where(valid, idx, 0)))
            self.register_buffer(f"mask{axis}", torch.from_numpy(valid))
        # output positions that are zero (no source pixel): a boolean buffer, never cast
        outside = ~(self.mask0[:, None] & self.mask1[None, :])
        self._all_valid = not bool(outside.any())
        self.register_buffer("outside", outside if not self._all_valid else None, persistent=False)

    def _forward(self, x):
        check_device(self.idx0, x, "Pad")
        z = x.index_select(-2, self.idx0).index_select(-1, self.idx1)
        if not self._all_valid:
            z = z.masked_fill(self.outside, 0)
        return z

    def _adjoint(self, y):
        check_device(self.idx0, y, "Pad")
        if not self._all_valid:
            y = y.masked_fill(self.outside, 0)
        lead = y.shape[:-2]
        H, W = self.in_shape
        z = y.new_zeros(lead + (y.shape[-2], W)).index_add_(-1, self.idx1, y)
        return y.new_zeros(lead + (H, W)).index_add_(-2, self.idx0, z)

    def _config(self):
        return {"in_shape": list(self.in_shape), "pad": [list(p) for p in self.pad],
                "mode": self.mode, "out_shape": list(self.out_shape)}

    def extra_repr(self):
        return f"in_shape={self.in_shape}, pad={self.pad}, mode={self.mode!r}, out_shape={self.out_shape}"


class Convolution(LinearOperator):
    """2-D convolution of images ``(..., H, W)`` with a fixed PSF, by real FFTs.

    The PSF centre is at index ``(kh // 2, kw // 2)``, the convention of
    :func:`scipy.ndimage.convolve`, for odd and even sizes alike, so
    ``Convolution(psf, in_shape, boundary)(x)`` equals
    ``scipy.ndimage.convolve(x, psf, mode=BOUNDARIES[boundary])``; with
    ``boundary="valid"`` it equals
    ``scipy.signal.convolve2d(x, psf, mode="valid")``.

    The PSF is kept, and the transfer function computed, in float64 (a
    float32 PSF is widened exactly), so float64 data get float64 accuracy;
    float32 data use a float32 copy of the transfer function.

    Parameters
    ----------
    psf : array_like or torch.Tensor
        2-D point-spread function (not normalised here: see :mod:`physinv.psf`).
    in_shape : (int, int)
        Image shape ``(H, W)``.
    boundary : {"circular", "zero", "reflect", "replicate", "mirror", "valid"}
        How the image is extended beyond its edges. ``"circular"`` is exact
        circular convolution with an exact Fourier factorization
        (:meth:`svd`); ``"zero"``, ``"reflect"``, ``"replicate"`` and
        ``"mirror"`` pad (by the rule named), convolve circularly on a padded
        grid with no wrap-around, and crop: exact adjoints, no closed-form
        factorization. All of these give an ``(H, W)`` output.
        ``"valid"`` keeps only the ``(H - kh + 1, W - kw + 1)`` output pixels
        whose whole footprint lies inside the image (no boundary model at
        all); its adjoint is the zero-padded transposed correlation, and it
        has no closed-form factorization either.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from physinv import psf
    >>> A = Convolution(psf.gaussian(1.5, 7), (32, 32))
    >>> x = torch.rand(4, 32, 32, dtype=torch.float64)
    >>> A(x).shape
    torch.Size([4, 32, 32])
    >>> Convolution(psf.gaussian(1.5, 7), (32, 32), "valid").out_shape
    (26, 26)
    >>> from physinv.testing import dot_test
    >>> dot_test(A) < 1e-10
    True
    """

    def __init__(self, psf: Any, in_shape: Any, boundary: str = "circular") -> None:
        in_shape = as_shape(in_shape, "in_shape")
        if len(in_shape) != 2:
            raise ValueError(f"in_shape must be (H, W), got {in_shape}")
        if boundary not in BOUNDARIES and boundary != "valid":
            raise ValueError(f"boundary must be one of {sorted(BOUNDARIES) + ['valid']}, got {boundary!r}")
        check_size(in_shape[0] * in_shape[1], f"a {in_shape[0]}x{in_shape[1]} image", "in_shape")
        k = check_psf(psf, image_shape=in_shape, normalize=False).to(torch.float64)
        kh, kw = k.shape
        H, W = in_shape
        out_shape = (H - kh + 1, W - kw + 1) if boundary == "valid" else in_shape
        super().__init__(in_shape, out_shape)
        self.boundary = boundary
        self.register_buffer("psf", k)
        ch, cw = kh // 2, kw // 2  # PSF centre (scipy.ndimage convention)
        self.pad_op: Pad | None = None
        self._crop: tuple[slice, slice] | None = None
        if boundary == "circular":
            grid = in_shape
        elif boundary == "valid":
            # Circular convolution on a grid >= the image: the valid pixels never wrap.
            grid = (fast_fft_length(H), fast_fft_length(W))
            if grid != in_shape:
                self.pad_op = Pad(in_shape, ((0, 0), (0, 0)), "constant", out_shape=grid)
            top, left = kh - 1 - ch, kw - 1 - cw
            self._crop = (slice(top, top + out_shape[0]), slice(left, left + out_shape[1]))
        else:
            pad = ((kh - 1 - ch, ch), (kw - 1 - cw, cw))
            grid = (fast_fft_length(H + kh - 1), fast_fft_length(W + kw - 1))
            self.pad_op = Pad(in_shape, pad, BOUNDARIES[boundary], out_shape=grid)
            self._crop = (slice(kh - 1 - ch, kh - 1 - ch + H), slice(kw - 1 - cw, kw - 1 - cw + W))
        check_size(grid[0] * grid[1], f"the {grid[0]}x{grid[1]} convolution grid", "in_shape")
        self.grid = grid
        # Transfer function: the PSF on the grid, rolled so its centre sits at index 0 (float64).
        big = torch.zeros(grid, dtype=torch.float64, device=k.device)
        big[:kh, :kw] = k
        big = torch.roll(big, shifts=(-ch, -cw), dims=(0, 1))
        self.register_buffer("tf", torch.fft.rfft2(big))

    # ------------------------------------------------------------------ apply
    def _conv(self, x: torch.Tensor, conj: bool) -> torch.Tensor:
        return fourier_multiply(x, self.buffer_like("tf", x, conj=conj), self.grid)

    def _forward(self, x):
        z = x if self.pad_op is None else self.pad_op._forward(x)
        z = self._conv(z, conj=False)
        return z if self._crop is None else z[..., self._crop[0], self._crop[1]]

    def _adjoint(self, y):
        z = y
        if self._crop is not None:
            z = y.new_zeros(y.shape[:-2] + self.grid)
            z[..., self._crop[0], self._crop[1]] = y
        z = self._conv(z, conj=True)
        return z if self.pad_op is None else self.pad_op._adjoint(z)

    # --------------------------------------------------------- factorization
    def _has_exact_svd(self):
        return self.boundary == "circular"

    def _svd(self):
        if self.boundary != "circular":
            raise FactorizationError(
                f"Convolution with boundary={self.boundary!r} has no exact factorization (the "
                f"{'cropping' if self.boundary == 'valid' else 'padding'} breaks shift invariance); "
                "use boundary='circular' for the Fourier factorization, svd(k=...) for a truncated "
                "numerical SVD, or an iterative solver (cgls, landweber) that needs only A and A^H"
            )
        return FourierFactorization(self.tf, self.grid)

    def _exact_norm(self):
        if self.boundary == "circular":
            return float(self.tf.abs().max())
        return None

    def transfer_function(self) -> torch.Tensor:
        """The real-FFT transfer function on the convolution grid, shape ``(Hg, Wg//2+1)``."""
        return self.tf

    def _config(self):
        return {"psf": self.psf.detach().cpu().tolist(), "in_shape": list(self.in_shape),
                "boundary": self.boundary}

    def extra_repr(self):
        return f"psf={tuple(self.psf.shape)}, in_shape={self.in_shape}, boundary={self.boundary!r}"
