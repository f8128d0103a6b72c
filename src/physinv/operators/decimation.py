"""Area sampling to a coarser grid: block averages (or sums) over integer factors per axis."""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validate import as_shape, check_int
from .base import LinearOperator

__all__ = ["Decimation", "DECIMATION_MODES"]

#: The reductions :class:`Decimation` applies to each block.
DECIMATION_MODES = ("mean", "sum")


def _factors(factor: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(factor, (tuple, list)):
        if len(factor) != ndim:
            raise ValueError(f"factor must be an int or {ndim} ints (one per axis of in_shape), "
                             f"got {tuple(factor)!r}")
        return tuple(check_int(f, "factor", minimum=1) for f in factor)
    return (check_int(factor, "factor", minimum=1),) * ndim


class Decimation(LinearOperator):
    """Block (area) sampling of images ``(..., H, W)`` by integer factors: ``(H, W) -> (H/fh, W/fw)``.

    Each output pixel is the mean (``mode="mean"``, a detector pixel
    integrating the irradiance over its area) or the sum (``mode="sum"``) of
    a ``fh x fw`` block of input pixels. The adjoint replicates every output
    pixel over its block, divided by ``fh * fw`` in mean mode, so
    ``D @ D.H`` is ``1 / (fh fw)`` times the identity (mean mode) and
    ``||D|| = 1 / sqrt(fh fw)``. Compose it after a blur to model a camera:
    ``Decimation(shape, 2) @ Convolution(psf, shape)``.

    Parameters
    ----------
    in_shape : (int, int)
        Input (fine grid) shape; each axis must be divisible by its factor.
    factor : int or (int, int)
        Block size, one for both axes or one per axis (>= 1).
    mode : {"mean", "sum"}
        Reduction over each block.

    Examples
    --------
    >>> import torch
    >>> D = Decimation((4, 6), (2, 3))
    >>> D.out_shape
    (2, 2)
    >>> D(torch.arange(24.0).reshape(4, 6))
    tensor([[ 4.,  7.],
            [16., 19.]])
    >>> D.adjoint(torch.ones(2, 2))[0]
    tensor([0.1667, 0.1667, 0.1667, 0.1667, 0.1667, 0.1667])
    >>> from physinv.testing import dot_test
    >>> dot_test(D) < 1e-12
    True
    """

    def __init__(self, in_shape: Any, factor: Any = 2, mode: str = "mean") -> None:
        in_shape = as_shape(in_shape, "in_shape")
        if len(in_shape) != 2:
            raise ValueError(f"in_shape must be (H, W), got {in_shape}")
        factors = _factors(factor, 2)
        if mode not in DECIMATION_MODES:
            raise ValueError(f"mode must be one of {list(DECIMATION_MODES)}, got {mode!r}")
        for axis, (n, f) in enumerate(zip(in_shape, factors)):
            if n % f:
                raise ValueError(f"in_shape[{axis}] = {n} is not divisible by factor {f}; crop or pad the "
                                 "fine grid to a multiple of the factor")
        out_shape = tuple(n // f for n, f in zip(in_shape, factors))
        super().__init__(in_shape, out_shape)
        self.factor: tuple[int, int] = (factors[0], factors[1])
        self.mode = mode

    @property
    def _weight(self) -> float:
        return 1.0 / math.prod(self.factor) if self.mode == "mean" else 1.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        fh, fw = self.factor
        # strided slices summed: much faster than a reshape-and-reduce over the interleaved block axes
        rows = x[..., 0::fh, :]
        for i in range(1, fh):
            rows = rows + x[..., i::fh, :]
        out = rows[..., 0::fw]
        for j in range(1, fw):
            out = out + rows[..., j::fw]
        if self.mode == "mean":
            return out * self._weight
        return out.clone() if fh == fw == 1 else out

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        fh, fw = self.factor
        h, w = self.out_shape
        z = y if self.mode == "sum" else y * self._weight
        z = z.reshape(y.shape[:-2] + (h, 1, w, 1)).expand(y.shape[:-2] + (h, fh, w, fw))
        return z.reshape(y.shape[:-2] + self.in_shape).clone()

    def _exact_norm(self) -> float:
        n = math.prod(self.factor)
        return 1.0 / math.sqrt(n) if self.mode == "mean" else math.sqrt(n)

    def _config(self) -> dict[str, Any]:
        return {"in_shape": list(self.in_shape), "factor": list(self.factor), "mode": self.mode}

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, factor={self.factor}, mode={self.mode!r}"
