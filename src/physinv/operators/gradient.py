"""Finite-difference image gradient with its exact adjoint (minus the divergence)."""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validate import as_shape
from .base import LinearOperator, _renamed

__all__ = ["Gradient"]


class Gradient(LinearOperator):
    """Forward-difference gradient ``(..., H, W) -> (..., 2, H, W)``.

    Channel 0 holds the vertical difference ``x[i+1, j] - x[i, j]``, channel 1
    the horizontal one ``x[i, j+1] - x[i, j]``. With ``boundary="neumann"``
    the last difference along each axis is zero (the usual choice for total
    variation); with ``"circular"`` it wraps around. The adjoint is minus the
    matching discrete divergence, and ``||grad|| <= sqrt(8)`` (equal for the
    circular boundary on even shapes).

    Parameters
    ----------
    in_shape : (int, int)
        Image shape ``(H, W)``.
    boundary : {"neumann", "circular"}
        How the last difference along each axis is formed.

    Examples
    --------
    >>> import torch
    >>> G = Gradient((3, 3))
    >>> G(torch.arange(9.0).reshape(3, 3))[1]
    tensor([[1., 1., 0.],
            [1., 1., 0.],
            [1., 1., 0.]])
    >>> from physinv.testing import dot_test
    >>> dot_test(G) < 1e-12
    True
    """

    def __init__(self, in_shape: Any, boundary: str = "neumann") -> None:
        in_shape = as_shape(in_shape, "in_shape")
        if len(in_shape) != 2:
            raise ValueError(f"in_shape must be (H, W), got {in_shape}")
        if boundary not in ("neumann", "circular"):
            raise ValueError(f"boundary must be 'neumann' or 'circular', got {boundary!r}")
        super().__init__(in_shape, (2,) + in_shape)
        self.boundary = boundary

    def _forward(self, x):
        if self.boundary == "circular":
            gy = torch.roll(x, -1, dims=-2) - x
            gx = torch.roll(x, -1, dims=-1) - x
        else:
            zr = x.new_zeros(x.shape[:-2] + (1, x.shape[-1]))
            zc = x.new_zeros(x.shape[:-1] + (1,))
            gy = torch.cat([x[..., 1:, :] - x[..., :-1, :], zr], dim=-2)
            gx = torch.cat([x[..., :, 1:] - x[..., :, :-1], zc], dim=-1)
        return torch.stack([gy, gx], dim=-3)

    def _adjoint(self, g):
        gy, gx = g[..., 0, :, :], g[..., 1, :, :]
        if self.boundary == "circular":
            return (torch.roll(gy, 1, dims=-2) - gy) + (torch.roll(gx, 1, dims=-1) - gx)
        # -div with the Neumann convention: the last row/column of g is ignored.
        H, W = self.in_shape
        if H > 1:
            gy_in = gy[..., :-1, :]
            zr = gy.new_zeros(gy.shape[:-2] + (1, W))
            ty = torch.cat([zr, gy_in], dim=-2) - torch.cat([gy_in, zr], dim=-2)
        else:
            ty = torch.zeros_like(gy)
        if W > 1:
            gx_in = gx[..., :, :-1]
            zc = gx.new_zeros(gx.shape[:-1] + (1,))
            tx = torch.cat([zc, gx_in], dim=-1) - torch.cat([gx_in, zc], dim=-1)
        else:
            tx = torch.zeros_like(gx)
        return ty + tx

    def divergence(self, g: torch.Tensor) -> torch.Tensor:
        """The discrete divergence, ``-grad^H g``.

        Examples
        --------
        >>> import torch
        >>> G = Gradient((4, 4))
        >>> g = torch.randn(2, 4, 4, dtype=torch.float64)
        >>> torch.allclose(G.divergence(g), -G.adjoint(g))
        True
        """
        return -self.adjoint(g)

    def norm(self, n_iter: int = 500, tol: float = 1e-7, seed: int = 0) -> float:
        """The bound ``sqrt(8)`` for the circular boundary (exact for even shapes); power iteration else."""
        if self.boundary == "circular":
            H, W = self.in_shape
            vy = 4.0 if H % 2 == 0 else 2.0 - 2.0 * math.cos(math.pi * (H - 1) / H)
            vx = 4.0 if W % 2 == 0 else 2.0 - 2.0 * math.cos(math.pi * (W - 1) / W)
            vy = vy if H > 1 else 0.0
            vx = vx if W > 1 else 0.0
            return math.sqrt(vy + vx)
        return super().norm(n_iter, tol, seed)

    def _config(self):
        return {"in_shape": list(self.in_shape), "boundary": self.boundary}

    @classmethod
    def _from_config(cls, kw):
        return cls(**_renamed(kw, "shape", "in_shape"))

    def extra_repr(self):
        return f"in_shape={self.in_shape}, boundary={self.boundary!r}"
