"""Unrolled half-quadratic splitting: the exact data step of the physics, a learned CNN prior.

``UnrolledHQS`` runs ``K`` iterations of plug-and-play HQS
(:func:`physinv.solvers.pnp`) as a network: ``x_k = argmin ||A x - y||^2 +
alpha_k ||x - z_{k-1}||^2`` (the operator's exact data step, closed form
through its factorization or warm-started conjugate gradients), then
``z_k = prior_k(x_k, sigma_k)``. What is learned is only what the physics does
not know: the prior's weights and the per-layer ``alpha_k`` and ``sigma_k``
(as logarithms, so they stay positive). Initialised from the shipped denoiser
and DPIR's schedule, the untrained network *is* plug-and-play HQS, and
training for a blur family can only start from there (USRNet and the unrolled
form of DPIR: Zhang, Van Gool and Timofte, "Deep unfolding network for image
super-resolution", arXiv:2003.10428).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..operators import LinearOperator
from ..solvers.pnp import LAM, SIGMA_MAX, pnp_schedule, quadratic_data_step
from ..solvers.result import require_operator
from ..train.amp import float32_physics
from ._common import PhysicsModule

__all__ = ["UnrolledHQS"]


class UnrolledHQS(PhysicsModule):
    """``n_layers`` HQS iterations with the exact data step and a learned, noise-conditioned prior.

    Parameters
    ----------
    A : LinearOperator
        The forward operator (held fixed, never trained).
    prior : nn.Module or "pretrained", optional
        ``prior(x, sigma)``: a denoiser conditioned on the noise level. The
        default ``"pretrained"`` is a trainable copy of
        :func:`physinv.nets.pretrained_denoiser`.
    n_layers : int
        Number of unrolled iterations.
    noise_sigma : float
        Noise level the schedule is initialised for (DPIR's
        ``alpha_k = lam noise_sigma^2 / sigma_k^2``, ``sigma_k`` geometric from
        ``sigma_max`` to ``noise_sigma``).
    lam, sigma_max : float
        As in :func:`physinv.solvers.pnp`.
    shared : bool
        One prior for every layer (default) or a copy per layer.
    cg_iter : int
        CG iterations of the data step when ``A`` has no exact factorization.
    checkpoint : bool
        Gradient checkpointing: in training mode with gradients enabled, keep
        only each layer's input ``(x, z)`` for the backward pass and recompute
        the layer's activations (the prior's feature maps, the data step)
        there, with ``torch.utils.checkpoint`` (non-reentrant). The outputs
        and gradients are those of the plain network; the saved activations
        no longer grow with the prior's width and depth, at the price of one
        more forward pass per training step.

    Notes
    -----
    Under autocast (mixed precision) the prior runs in the autocast type
    and the data step in float32 (:func:`physinv.train.amp.float32_physics`).

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.nets import Denoiser
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.5), (16, 16))
    >>> net = UnrolledHQS(A, prior=Denoiser(depth=3, channels=4), n_layers=3, noise_sigma=0.02)
    >>> net(torch.rand(2, 16, 16)).shape
    torch.Size([2, 16, 16])
    """

    def __init__(self, A: LinearOperator, prior: Any = "pretrained", n_layers: int = 8,
                 noise_sigma: float = 0.01, lam: float = LAM, sigma_max: float = SIGMA_MAX,
                 shared: bool = True, cg_iter: int = 10, checkpoint: bool = False) -> None:
        super().__init__()
        A = require_operator(A, "UnrolledHQS")
        if isinstance(n_layers, bool) or not isinstance(n_layers, numbers.Integral) or n_layers < 1:
            raise ValueError(f"UnrolledHQS: n_layers must be a positive int, got {n_layers!r}")
        if isinstance(cg_iter, bool) or not isinstance(cg_iter, numbers.Integral) or cg_iter < 1:
            raise ValueError(f"UnrolledHQS: cg_iter must be a positive int, got {cg_iter!r}")
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"UnrolledHQS: lam must be a finite number > 0, got {lam!r}")
        if not isinstance(checkpoint, bool):
            raise TypeError(f"UnrolledHQS: checkpoint must be a bool, got {type(checkpoint).__name__}")
        if isinstance(prior, str):
            if prior != "pretrained":
                raise ValueError(f"UnrolledHQS: prior must be a module or 'pretrained', got {prior!r}")
            from .denoiser import pretrained_denoiser

            prior = pretrained_denoiser()
            for p in prior.parameters():
                p.requires_grad_(True)
            prior.train()
        if not isinstance(prior, nn.Module):
            raise TypeError(f"UnrolledHQS: prior must be an nn.Module called as prior(x, sigma), "
                            f"got {type(prior).__name__}")
        sigmas = pnp_schedule(noise_sigma, int(n_layers), sigma_max)
        self.n_layers, self.cg_iter, self.shared = int(n_layers), int(cg_iter), bool(shared)
        self.checkpoint = checkpoint
        self.priors = nn.ModuleList([prior] if shared else [copy.deepcopy(prior) for _ in range(n_layers)])
        s = torch.tensor(sigmas, dtype=torch.float32)
        self.log_sigma = nn.Parameter(s.log())
        self.log_alpha = nn.Parameter((lam * float(noise_sigma) ** 2 / s**2).log())
        self._hold("A", A)
        self._hold("F", A.svd() if A.has_svd else None)

    @property
    def operator(self) -> LinearOperator:
        return self._held["A"]

    def schedule(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current ``(sigma_k, alpha_k)`` of every layer."""
        return self.log_sigma.exp(), self.log_alpha.exp()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        A = self._held["A"]
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"UnrolledHQS: y must be a torch.Tensor, got {type(y).__name__}")
        self._check_device(y)
        if y.dim() == len(A.out_shape):  # one problem: a batch of one, so alpha keeps its gradient
            return self.forward(y[None])[0]
        sigmas, alphas = self.schedule()
        x = y if A.in_shape == A.out_shape else float32_physics(lambda v: A.adjoint(v) / A.norm() ** 2, y)
        z = x
        recompute = self.checkpoint and self.training and torch.is_grad_enabled()
        for k in range(self.n_layers):
            if recompute:
                x, z = _checkpoint(self._layer, k, y, x, z, alphas[k], sigmas[k], use_reentrant=False)
            else:
                x, z = self._layer(k, y, x, z, alphas[k], sigmas[k])
        return z

    def _layer(self, k: int, y: torch.Tensor, x: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor,
               sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``k``: the exact data step from ``z`` (warm-started at ``x``), then the prior."""
        A, F = self._held["A"], self._held["F"]
        batch = y.shape[: y.dim() - len(A.out_shape)]
        x = float32_physics(quadratic_data_step, A, y, z, alpha.to(y.dtype).expand(batch), factorization=F,
                            warm=x, cg_iter=self.cg_iter)
        prior = self.priors[0 if self.shared else k]
        w = next(prior.parameters())
        z = prior(x.to(w.dtype), sigma.to(w.dtype).expand(batch)).to(y.dtype)
        return x, z

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, shared={self.shared}, checkpoint={self.checkpoint}"
