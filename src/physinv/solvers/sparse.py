"""Sparsity-promoting solvers: ISTA and FISTA with soft-thresholding in an orthogonal transform."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..operators.base import LinearOperator
from .iterative import landweber_step
from .result import (
    Monitor,
    SolverResult,
    check_data,
    check_n_iter,
    check_param,
    check_x0,
    expand,
    make_steps,
    operator_norm,
    pnorm,
    rel_change,
    require_operator,
)

__all__ = ["ista", "fista", "ista_step", "soft_threshold"]


def soft_threshold(z: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Soft-thresholding ``S_t(z) = sign(z) max(|z| - t, 0)`` (magnitude shrinkage for complex ``z``).

    ``threshold`` is a non-negative number or a tensor broadcasting against ``z`` (a negative
    threshold would expand instead of shrink: ``ValueError``; a tensor that requires a gradient,
    a learned threshold, is not checked).

    Examples
    --------
    >>> import torch
    >>> soft_threshold(torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0]), 1.0)
    tensor([-1., -0.,  0.,  0.,  1.])
    """
    if isinstance(threshold, torch.Tensor):
        if threshold.is_complex() or not threshold.is_floating_point() and threshold.dtype not in (
                torch.int32, torch.int64):
            raise TypeError(f"soft_threshold: threshold must be a real number or real tensor, got "
                            f"{threshold.dtype}")
        # a learned threshold (requires_grad) is the network's to constrain: no per-step check
        if not threshold.requires_grad and (bool((threshold < 0).any())
                                            or not bool(torch.isfinite(threshold).all())):
            raise ValueError("soft_threshold: threshold must be finite and >= 0, got a tensor with "
                             f"min {float(threshold.min()):.3g}")
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"soft_threshold: threshold must be a real number or a tensor, got "
                            f"{type(threshold).__name__}")
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"soft_threshold: threshold must be finite and >= 0, got {threshold}")
    if z.is_complex():
        mag = z.abs()
        scale = torch.clamp(mag - threshold, min=0) / torch.where(mag > 0, mag, torch.ones_like(mag))
        return z * scale
    return torch.sign(z) * torch.clamp(z.abs() - threshold, min=0)


def _setup(fn, A, y, lam, n_iter, step, transform, x0, norm, check_step):
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    n_iter = check_n_iter(n_iter, fn)
    lam = check_param(lam, "lam", fn, batch)
    if transform is None:
        W = None
    else:
        if not isinstance(transform, LinearOperator):
            raise TypeError(f"{fn}: transform must be a LinearOperator (e.g. Wavelet2D) or None, got "
                            f"{type(transform).__name__}")
        if transform.in_shape != A.in_shape or transform.out_shape != A.in_shape:
            raise ValueError(f"{fn}: transform must map A.in_shape={A.in_shape} to itself (an orthogonal "
                             f"transform), got {transform.in_shape}->{transform.out_shape}")
        W = transform
    L = operator_norm(A, norm, fn) if (step is None or check_step != "off") else None
    steps = make_steps(step, n_iter, L, fn, check_step)
    x = check_x0(A, x0, y, batch, fn)
    nin = len(A.in_shape)
    lam_e = expand(lam, nin) if isinstance(lam, torch.Tensor) else lam
    return A, batch, n_iter, lam, lam_e, W, L, steps, x


def ista_step(A: LinearOperator, x: torch.Tensor, y: torch.Tensor, t: float | torch.Tensor,
              threshold: float | torch.Tensor, W: LinearOperator | None = None, *,
              residual: torch.Tensor | None = None, return_coefficients: bool = False
              ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """One proximal-gradient (ISTA) step ``W^H S_threshold(W(x + t A^H (y - A x)))``.

    A gradient step (:func:`~physinv.solvers.landweber_step`) followed by
    soft-thresholding (:func:`soft_threshold`) in the orthogonal transform
    ``W`` (the pixel domain when ``W`` is ``None``). The one copy of the
    iteration: :func:`ista`, :func:`fista` (at the extrapolated point) and
    :class:`~physinv.nets.UnrolledISTA` with a fixed transform all run it.

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    x : torch.Tensor
        The point the gradient is taken at (the iterate, or FISTA's extrapolation).
    y : torch.Tensor
        Data.
    t : float or torch.Tensor
        Step size.
    threshold : float or torch.Tensor
        Soft threshold (``lam * t`` for ``0.5 ||A x - y||^2 + lam ||W x||_1``);
        a tensor broadcasts against the coefficients.
    W : LinearOperator, optional
        Orthogonal transform (``W^H W = I``), e.g. :class:`~physinv.operators.Wavelet2D`.
    residual : torch.Tensor, optional
        ``y - A x`` when the caller has it already (saves one application of ``A``).
    return_coefficients : bool
        Also return the thresholded coefficients ``S_threshold(W v)``
        (``||W x_new||_1`` is their l1 norm for an orthogonal ``W``).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        The next iterate (and the coefficients).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> ista_step(Identity(3), torch.zeros(3), torch.tensor([3.0, 0.5, -2.0]), 1.0, 1.0)
    tensor([ 2.,  0., -1.])
    """
    v = landweber_step(A, x, y, t, residual=residual)
    if W is None:
        c = soft_threshold(v, threshold)
        x_new = c
    else:
        c = soft_threshold(W(v), threshold)
        x_new = W.adjoint(c)
    return (x_new, c) if return_coefficients else x_new


def _l1(c: torch.Tensor, nin: int) -> torch.Tensor:
    return c.abs().sum(dim=tuple(range(-nin, 0)))


def ista(A: LinearOperator, y: torch.Tensor, lam: float | torch.Tensor, n_iter: int = 100,
         step: float | Sequence[float] | None = None, transform: LinearOperator | None = None,
         x0: torch.Tensor | None = None, tol: float | None = None, noise_sigma: Any = None, tau: float = 1.0,
         callback: Callable | None = None, progress: bool = False, norm: float | None = None,
         check_step: str = "error") -> SolverResult:
    """ISTA (proximal gradient) for ``0.5 ||A x - y||^2 + lam ||W x||_1``.

    The iteration is exactly

    ``x_{k+1} = W^H S_{lam t_k}(W(x_k + t_k A^H (y - A x_k)))``

    with ``S`` soft-thresholding (:func:`soft_threshold`), ``W`` an
    orthogonal transform (``W^H W = W W^H = I``, e.g.
    :class:`~physinv.operators.Wavelet2D`) or the identity (``transform=None``:
    sparsity in the pixel domain). With ``t_k <= 1 / ||A||^2`` the objective
    never increases.

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    y : torch.Tensor
        Data; leading dims are independent problems.
    lam : float or tensor
        Weight of the l1 term (a tensor broadcasting to the batch: one per problem).
    n_iter : int
        Maximum number of iterations.
    step : float or sequence of float, optional
        Constant step or one per iteration; default ``1 / ||A||^2``.
    transform : LinearOperator, optional
        Orthogonal sparsifying transform ``W`` (the identity when ``None``).
    x0 : torch.Tensor, optional
        Initial guess (default zeros).
    tol, noise_sigma, tau, callback, progress, norm, check_step
        As in :func:`~physinv.solvers.landweber`.

    Returns
    -------
    SolverResult
        ``history["objective"]`` is ``0.5 ||A x - y||^2 + lam ||W x||_1`` after each iteration.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> ista(Identity(3), torch.tensor([3.0, 0.5, -2.0]), lam=1.0, n_iter=5).x
    tensor([ 2.,  0., -1.])
    """
    return _proximal_gradient("ista", A, y, lam, n_iter, step, transform, x0, tol, noise_sigma, tau,
                              callback, progress, norm, check_step, accelerate=False)


def fista(A: LinearOperator, y: torch.Tensor, lam: float | torch.Tensor, n_iter: int = 100,
          step: float | Sequence[float] | None = None, transform: LinearOperator | None = None,
          x0: torch.Tensor | None = None, tol: float | None = None, noise_sigma: Any = None, tau: float = 1.0,
          callback: Callable | None = None, progress: bool = False, norm: float | None = None,
          check_step: str = "error") -> SolverResult:
    """FISTA (Beck–Teboulle): ISTA with Nesterov momentum, ``O(1/k^2)`` in the objective.

    ``x_{k+1} = W^H S_{lam t_k}(W(z_k + t_k A^H (y - A z_k)))``,
    ``q_{k+1} = (1 + sqrt(1 + 4 q_k^2)) / 2``,
    ``z_{k+1} = x_{k+1} + ((q_k - 1) / q_{k+1}) (x_{k+1} - x_k)``, ``q_0 = 1``, ``z_0 = x_0``.
    Same arguments as :func:`ista`. The objective is not monotone.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> fista(Identity(3), torch.tensor([3.0, 0.5, -2.0]), lam=1.0, n_iter=5).x
    tensor([ 2.,  0., -1.])
    """
    return _proximal_gradient("fista", A, y, lam, n_iter, step, transform, x0, tol, noise_sigma, tau,
                              callback, progress, norm, check_step, accelerate=True)


def _proximal_gradient(fn, A, y, lam, n_iter, step, transform, x0, tol, noise_sigma, tau, callback,
                       progress, norm, check_step, accelerate):
    A, batch, n_iter, lam, lam_e, W, L, steps, x = _setup(fn, A, y, lam, n_iter, step, transform, x0,
                                                           norm, check_step)
    nin, nout = len(A.in_shape), len(A.out_shape)
    mon = Monitor(fn, A, y, batch, n_iter, tol, noise_sigma, tau, callback, progress)
    Ax = A(x)
    z, Az, q = x, Ax, 1.0
    if not mon.initial(pnorm(Ax - y, nout)):
        for k in range(n_iter):
            t = steps[k]
            x_new, c = ista_step(A, z, y, t, lam_e * t, W, residual=y - Az, return_coefficients=True)
            x_new = mon.freeze(x_new, x)
            Ax_new = A(x_new)
            change = None
            if mon.tol is not None:
                change = rel_change(x_new, x, nin)
            rn = pnorm(Ax_new - y, nout)
            # ||W x_new||_1 = ||c||_1 exactly for an orthogonal W; recompute for frozen problems.
            l1 = _l1(c, nin) if bool(mon.active.all()) else _l1(x_new if W is None else W(x_new), nin)
            obj = 0.5 * rn**2 + (lam * l1 if not isinstance(lam, torch.Tensor) else
                                 torch.broadcast_to(lam, batch).to(l1) * l1)
            if accelerate:
                q_new = (1.0 + (1.0 + 4.0 * q * q) ** 0.5) / 2.0
                mom = (q - 1.0) / q_new
                z = x_new + mom * (x_new - x)
                Az = Ax_new + mom * (Ax_new - Ax)
                q = q_new
            else:
                z, Az = x_new, Ax_new
            x, Ax = x_new, Ax_new
            if mon.step(x, rn, obj, change):
                break
    return mon.result(x, lam=lam, step=steps[0] if len(set(steps)) == 1 else steps, norm=L)
