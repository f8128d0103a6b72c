"""Isotropic total-variation regularisation by the Chambolle–Pock primal–dual algorithm."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..operators.base import LinearOperator
from ..operators.gradient import Gradient
from .result import (
    Monitor,
    SolverResult,
    check_data,
    check_n_iter,
    check_param,
    check_x0,
    expand,
    half_spectrum_path,
    operator_norm,
    pnorm,
    rel_change,
    require_operator,
)

__all__ = ["tv", "tv_norm"]


def tv_norm(x: torch.Tensor, boundary: str = "neumann") -> torch.Tensor:
    """Isotropic total variation ``sum_ij sqrt((dy x)_ij^2 + (dx x)_ij^2)`` over the last two dims.

    Forward differences with the Neumann boundary (as in :func:`tv`);
    returns one value per leading index.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(4, 4); x[:, 2:] = 1.0
    >>> tv_norm(x)
    tensor(4.)
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("tv_norm: x must be a tensor with at least 2 dimensions (..., H, W)")
    g = Gradient(tuple(x.shape[-2:]), boundary)(x)
    return _pixel_norm(g).sum(dim=(-2, -1))


def _pixel_norm(g: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((g.abs() ** 2).sum(dim=-3))


def tv(A: LinearOperator, y: torch.Tensor, lam: float | torch.Tensor, n_iter: int = 200, nonneg: bool = False,
       x0: torch.Tensor | None = None, tol: float | None = None, noise_sigma: Any = None, tau: float = 1.0,
       callback: Callable | None = None, progress: bool = False, norm: float | None = None,
       method: str = "auto", ratio: float = 1.0, theta: float = 1.0) -> SolverResult:
    """Total-variation regularisation ``min_x 0.5 ||A x - y||^2 + lam TV(x)`` (``x >= 0`` if ``nonneg``).

    Isotropic TV with forward differences (:class:`~physinv.operators.Gradient`,
    Neumann boundary, ``||grad|| <= sqrt(8)``), solved by the
    Chambolle–Pock primal–dual algorithm (over-relaxation ``theta``):

    - ``method="pdhg"``: dual variables for both ``A x`` and ``grad x``;
      ``K = [A; grad]`` with ``||K||^2 <= ||A||^2 + 8``, steps
      ``sigma = ratio / ||K||``, ``tau_p = 1 / (ratio ||K||)``. Needs only ``A``
      and ``A^H``; handles ``nonneg``.
    - ``method="split"``: only ``grad x`` is dualised and the data term's
      proximal map ``(A^H A + I / tau_p)^{-1}`` is applied exactly through
      ``A.svd()`` (two real FFTs when it is a
      :class:`~physinv.operators.FourierFactorization`); converges in fewer
      iterations. Needs a factorization and ``nonneg=False``.
    - ``"auto"``: ``"split"`` when possible, else ``"pdhg"``.

    Parameters
    ----------
    A : LinearOperator
        Forward operator with ``in_shape = (H, W)``.
    y : torch.Tensor
        Data; leading dims are independent problems.
    lam : float or tensor
        TV weight (a tensor broadcasting to the batch: one per problem).
    n_iter : int
        Maximum number of iterations.
    nonneg : bool
        Constrain ``x >= 0``.
    x0, tol, noise_sigma, tau, callback, progress, norm
        As in :func:`~physinv.solvers.landweber` (``tau`` is the discrepancy
        factor, not the primal step).
    method : {"auto", "pdhg", "split"}
        See above.
    ratio : float
        Balance of the dual and primal steps (``sigma / tau_p = ratio^2``).
    theta : float
        Over-relaxation in ``[0, 1]``.

    Returns
    -------
    SolverResult
        ``history["objective"]`` is ``0.5 ||A x - y||^2 + lam TV(x)``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> g = torch.Generator().manual_seed(0)
    >>> clean = torch.zeros(16, 16, dtype=torch.float64); clean[4:12, 4:12] = 1
    >>> noisy = clean + 0.1 * torch.randn(16, 16, generator=g, dtype=torch.float64)
    >>> r = tv(Identity((16, 16)), noisy, lam=0.1, n_iter=100)
    >>> bool((r.x - clean).norm() < (noisy - clean).norm())
    True
    """
    fn = "tv"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    if len(A.in_shape) != 2:
        raise ValueError(f"{fn}: A.in_shape must be an image shape (H, W), got {A.in_shape}")
    if y.is_complex() or not A.is_real:
        raise TypeError(f"{fn}: needs a real operator and real data")
    n_iter = check_n_iter(n_iter, fn)
    lam = check_param(lam, "lam", fn, batch)
    ratio = float(check_param(ratio, "ratio", fn, (), positive=True))
    theta = float(check_param(theta, "theta", fn, ()))
    if theta > 1:
        raise ValueError(f"{fn}: theta must be in [0, 1], got {theta}")
    if method not in ("auto", "pdhg", "split"):
        raise ValueError(f"{fn}: method must be 'auto', 'pdhg' or 'split', got {method!r}")
    if method == "auto":
        method = "split" if (A.has_svd and not nonneg) else "pdhg"
    if method == "split" and nonneg:
        raise ValueError(f"{fn}: method='split' does not support nonneg=True; use method='pdhg'")
    G = Gradient(A.in_shape)
    x = check_x0(A, x0, y, batch, fn)
    nin, nout = 2, len(A.out_shape)
    lam_b = torch.broadcast_to(torch.as_tensor(lam, dtype=y.dtype, device=y.device), batch)
    lam_px = expand(lam_b, 2)  # broadcasts over (H, W) of the pixel norm
    mon = Monitor(fn, A, y, batch, n_iter, tol, noise_sigma, tau, callback, progress)
    grad_norm = math.sqrt(8.0)

    if method == "split":
        F = A.svd()
        Lk = grad_norm
        sigma, tau_p = ratio / Lk, 1.0 / (ratio * Lk)
        AHy = A.adjoint(y)
        half = half_spectrum_path(F, y)
        if half is not None:  # V = F^H: the inverse is a real-FFT multiply on the half spectrum
            shape = half.grid_shape
            inv_half = 1.0 / (half.half_s_like(y) ** 2 + 1.0 / tau_p)

            def data_prox(v):
                w = AHy + v / tau_p
                return torch.fft.irfft2(torch.fft.rfft2(w) * inv_half, s=shape)
        else:
            inv = 1.0 / (F.s.to(device=y.device, dtype=y.dtype) ** 2 + 1.0 / tau_p)

            def data_prox(v):  # (A^H A + I / tau_p)^{-1} (A^H y + v / tau_p)
                w = AHy + v / tau_p
                c = F.V.adjoint(w)
                out = F.V(c * inv) + tau_p * (w - F.V(c))
                return out.real if out.is_complex() else out
    else:
        L = operator_norm(A, norm, fn)
        Lk = math.sqrt(L**2 + grad_norm**2)
        sigma, tau_p = ratio / Lk, 1.0 / (ratio * Lk)
        p = torch.zeros_like(y)
    q = torch.zeros(batch + (2,) + A.in_shape, dtype=y.dtype, device=y.device)
    xbar = x
    Ax = A(x)
    if not mon.initial(pnorm(Ax - y, nout)):
        for _ in range(n_iter):
            q = q + sigma * G(xbar)
            scale = torch.clamp(_pixel_norm(q) / lam_px.clamp_min(torch.finfo(y.dtype).tiny), min=1.0)
            q = q / scale.unsqueeze(-3)
            if method == "split":
                x_new = data_prox(x - tau_p * G.adjoint(q))
            else:
                p = (p + sigma * (A(xbar) - y)) / (1.0 + sigma)
                x_new = x - tau_p * (A.adjoint(p) + G.adjoint(q))
                if nonneg:
                    x_new = torch.clamp(x_new, min=0.0)
            x_new = mon.freeze(x_new, x)
            change = None
            if mon.tol is not None:
                change = rel_change(x_new, x, nin)
            xbar = x_new + theta * (x_new - x)
            x = x_new
            Ax = A(x)
            rn = pnorm(Ax - y, nout)
            obj = 0.5 * rn**2 + lam_b * _pixel_norm(G(x)).sum(dim=(-2, -1))
            if mon.step(x, rn, obj, change):
                break
    return mon.result(x, lam=lam, method=method, sigma=sigma, tau_primal=tau_p)
