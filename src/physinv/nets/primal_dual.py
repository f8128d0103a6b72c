"""Learned Primal-Dual reconstruction: learned updates in image and data space around exact A and A^H.

Adler and Oektem, "Learned primal-dual reconstruction", arXiv:1707.06474.
The network keeps a primal state ``f`` (``n_primal`` image channels) and a
dual state ``h`` (``n_dual`` data channels) and runs ``n_iter`` iterations of

``h <- h + Gamma_k([h, A f_1, y])``  (a small CNN in data space),
``f <- f + Lambda_k([f, A^H h_1])``  (a small CNN in image space),

with ``f_1``, ``h_1`` the first channel of each state; the reconstruction is
the first primal channel. The operator is applied exactly, forward and
adjoint, in every iteration: any :class:`~physinv.operators.LinearOperator`
whose input and output are 2-D (Radon, convolutions with any boundary, ...).
Both CNNs are three 3x3 convolutions with PReLU activations; the last layer
of each starts at zero, so the untrained network outputs its initial primal
state: zero (the paper), the scaled back-projection, or, for a
:class:`~physinv.operators.Radon` geometry, the filtered back-projection.
Started from FBP, the untrained network *is* FBP and training learns
corrections to it: training starts from FBP's quality, not from zero.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..operators import LinearOperator, Radon
from ..solvers.result import require_operator
from ..train.amp import float32_physics
from ._common import PhysicsModule

__all__ = ["LearnedPrimalDual"]


def _block(cin: int, cout: int, width: int) -> nn.Sequential:
    last = nn.Conv2d(width, cout, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=1), nn.PReLU(width),
                         nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width), last)


def _int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"LearnedPrimalDual: {name} must be a positive int, got {v!r}")
    return int(v)


class LearnedPrimalDual(PhysicsModule):
    """Learned Primal-Dual (Adler and Oektem) on any 2-D-to-2-D linear operator.

    Parameters
    ----------
    A : LinearOperator
        The forward operator, ``in_shape`` and ``out_shape`` both 2-D.
    n_iter : int
        Unrolled primal-dual iterations (10 in the paper).
    n_primal, n_dual : int
        Channels of the primal and dual memory (5 in the paper).
    width : int
        Feature channels of the update CNNs (32 in the paper).
    start : {"zero", "adjoint", "fbp"}
        Initial primal state, in every channel: zero (the paper),
        ``A^H y / ||A||^2``, or the ramp-filtered back-projection
        :func:`physinv.solvers.fbp` (``A`` must be a
        :class:`~physinv.operators.Radon`); the untrained network returns it.
    checkpoint : bool
        Gradient checkpointing: in training mode with gradients enabled, keep
        only each iteration's input ``(h, f)`` for the backward pass and
        recompute the iteration's feature maps there, with
        ``torch.utils.checkpoint`` (non-reentrant). Same outputs and
        gradients, about one more forward pass per training step.

    Notes
    -----
    Under autocast (mixed precision) the update CNNs run in the autocast
    type, ``A`` and ``A^H`` in float32 (:func:`physinv.train.amp.float32_physics`),
    and the primal and dual states stay float32.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Radon
    >>> A = Radon(16, 6)
    >>> net = LearnedPrimalDual(A, n_iter=2, width=8)
    >>> net(torch.rand(3, *A.out_shape)).shape
    torch.Size([3, 16, 16])
    """

    def __init__(self, A: LinearOperator, n_iter: int = 10, n_primal: int = 5, n_dual: int = 5,
                 width: int = 32, start: str = "zero", checkpoint: bool = False) -> None:
        super().__init__()
        A = require_operator(A, "LearnedPrimalDual")
        if len(A.in_shape) != 2 or len(A.out_shape) != 2:
            raise ValueError(f"LearnedPrimalDual: A must map 2-D images to 2-D data, got in_shape "
                             f"{A.in_shape} and out_shape {A.out_shape}")
        if not A.is_real:
            raise ValueError("LearnedPrimalDual: A must be a real operator")
        if start not in ("zero", "adjoint", "fbp"):
            raise ValueError(f"LearnedPrimalDual: start must be 'zero', 'adjoint' or 'fbp', got {start!r}")
        if start == "fbp" and not isinstance(A, Radon):
            raise ValueError(f"LearnedPrimalDual: start='fbp' needs a Radon operator, got {type(A).__name__}")
        if not isinstance(checkpoint, bool):
            raise TypeError(f"LearnedPrimalDual: checkpoint must be a bool, got {type(checkpoint).__name__}")
        self.n_iter, self.n_primal = _int(n_iter, "n_iter"), _int(n_primal, "n_primal")
        self.n_dual = _int(n_dual, "n_dual")
        width = _int(width, "width")
        self.start = start
        self.checkpoint = checkpoint
        self.dual = nn.ModuleList([_block(self.n_dual + 2, self.n_dual, width) for _ in range(self.n_iter)])
        self.primal = nn.ModuleList([_block(self.n_primal + 1, self.n_primal, width)
                                     for _ in range(self.n_iter)])
        self._hold("A", A)
        self._norm2 = float(A.norm()) ** 2 if start == "adjoint" else 1.0

    @property
    def operator(self) -> LinearOperator:
        return self._held["A"]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        A = self._held["A"]
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"LearnedPrimalDual: y must be a torch.Tensor, got {type(y).__name__}")
        if tuple(y.shape[-2:]) != tuple(A.out_shape):
            raise ValueError(f"LearnedPrimalDual: y must have shape (..., {A.out_shape[0]}, "
                             f"{A.out_shape[1]}), got {tuple(y.shape)}")
        w = self.dual[0][0].weight
        if y.dtype != w.dtype:
            raise TypeError(f"LearnedPrimalDual: y is {y.dtype} but the network is {w.dtype}; "
                            f"use net.to(...)")
        self._check_device(y)
        lead = y.shape[:-2]
        g = y.reshape(-1, *A.out_shape)
        b = g.shape[0]
        if self.start == "adjoint":
            f = float32_physics(lambda v: A.adjoint(v) / self._norm2, g)
            f = f[:, None].repeat(1, self.n_primal, 1, 1)
        elif self.start == "fbp":
            from ..solvers.fbp import fbp

            f = float32_physics(lambda v: fbp(v, A), g)
            f = f[:, None].repeat(1, self.n_primal, 1, 1)
        else:
            f = g.new_zeros(b, self.n_primal, *A.in_shape)
        h = g.new_zeros(b, self.n_dual, *A.out_shape)
        recompute = self.checkpoint and self.training and torch.is_grad_enabled()
        for k in range(self.n_iter):
            if recompute:
                h, f = _checkpoint(self._iteration, k, g, h, f, use_reentrant=False)
            else:
                h, f = self._iteration(k, g, h, f)
        return f[:, 0].reshape(*lead, *A.in_shape)

    def _iteration(self, k: int, g: torch.Tensor, h: torch.Tensor, f: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Iteration ``k``: the dual update, then the primal update (``A``, ``A^H`` in float32)."""
        A = self._held["A"]
        seen = 1 if self.n_primal > 1 else 0  # the dual update sees A of the second primal channel
        h = h + self.dual[k](torch.cat([h, float32_physics(A, f[:, seen:seen + 1]), g[:, None]], 1))
        f = f + self.primal[k](torch.cat([f, float32_physics(A.adjoint, h[:, :1])], 1))
        return h, f

    def extra_repr(self) -> str:
        return f"n_iter={self.n_iter}, start={self.start!r}, checkpoint={self.checkpoint}"
