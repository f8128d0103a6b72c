"""Diagonal operators: the identity and element-wise multiplication by a fixed tensor."""

from __future__ import annotations

from typing import Any

import torch

from .base import LinearOperator, _renamed
from .factorization import Factorization

__all__ = ["Identity", "Diagonal"]


class Identity(LinearOperator):
    """The identity on tensors of trailing shape ``in_shape``.

    Parameters
    ----------
    in_shape : int or tuple of int
        Trailing shape of inputs and outputs.

    Examples
    --------
    >>> import torch
    >>> Identity(3)(torch.ones(2, 3)).shape
    torch.Size([2, 3])
    """

    is_identity = True

    def __init__(self, in_shape: Any) -> None:
        super().__init__(in_shape, in_shape)

    def _forward(self, x):
        return x

    def _adjoint(self, y):
        return y

    def _config(self):
        return {"in_shape": list(self.in_shape)}

    @classmethod
    def _from_config(cls, kw):
        return cls(**_renamed(kw, "shape", "in_shape"))

    def _svd(self):
        return Factorization(Identity(self.in_shape), torch.ones(self.in_shape, dtype=torch.float64),
                             Identity(self.in_shape))

    def _exact_norm(self):
        return 1.0


class Diagonal(LinearOperator):
    """Element-wise multiplication by a fixed tensor ``d`` (a diagonal matrix).

    Parameters
    ----------
    d : array_like or torch.Tensor
        The diagonal, with the operator's shape; may be complex. Integer
        arrays are converted to float64; floating ones keep their dtype.

    Examples
    --------
    >>> import torch
    >>> D = Diagonal(torch.tensor([1.0, 2.0, 3.0]))
    >>> D(torch.ones(3))
    tensor([1., 2., 3.])
    """

    def __init__(self, d: Any) -> None:
        d = torch.as_tensor(d)
        if not (d.is_floating_point() or d.is_complex()):
            d = d.to(torch.float64)
        if d.dim() == 0:
            raise ValueError("d must have at least one dimension, got a scalar")
        d = d.resolve_conj()
        if not bool(torch.isfinite(d).all()):
            raise ValueError("d must be finite")
        super().__init__(tuple(d.shape), tuple(d.shape))
        self.register_buffer("d", d)
        self.is_real = not d.is_complex()

    def _forward(self, x):
        return x * self.buffer_like("d", x)

    def _adjoint(self, y):
        return y * self.buffer_like("d", y, conj=True)

    def _svd(self):
        d = self.d
        mag = d.abs()
        phase = torch.where(mag > 0, d / torch.where(mag > 0, mag, 1), torch.ones_like(d))
        U = Identity(self.in_shape) if not d.is_complex() and bool((d >= 0).all()) else Diagonal(phase)
        return Factorization(U, mag.to(torch.float64), Identity(self.in_shape))

    def _config(self):
        d = self.d.detach().cpu()
        if d.is_complex():
            return {"d": torch.view_as_real(d).tolist(), "complex": True}
        return {"d": d.tolist()}

    @classmethod
    def _from_config(cls, kw):
        d = torch.tensor(kw["d"], dtype=torch.float64)
        return cls(torch.view_as_complex(d) if kw.get("complex") else d)
