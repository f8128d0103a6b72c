"""Iterative least-squares solvers that need only ``A`` and ``A^H``: Landweber, CGLS, Richardson–Lucy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..operators.base import LinearOperator
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
    per_problem,
    pnorm,
    rel_change,
    require_operator,
)

__all__ = ["landweber", "landweber_step", "cgls", "richardson_lucy"]

#: CGLS iterations without a new best normal residual, below ``sqrt(eps)``, before it stops at
#: rounding level.
_PATIENCE = 50

Callback = Callable[[int, torch.Tensor], Any]


def landweber_step(A: LinearOperator, x: torch.Tensor, y: torch.Tensor, t: float | torch.Tensor, *,
                   residual: torch.Tensor | None = None) -> torch.Tensor:
    """One Landweber (gradient) step ``x + t A^H (y - A x)`` on ``0.5 ||A x - y||^2``.

    The one copy of the iteration: :func:`landweber` runs it, and so do the
    unrolled networks (:class:`~physinv.nets.UnrolledLandweber`, the gradient
    step of :class:`~physinv.nets.UnrolledISTA`) with their learned steps, so
    that an unrolled network at initialization *is* the classical algorithm.

    Parameters
    ----------
    A : LinearOperator
        Forward operator (anything with ``A(x)`` and ``A.adjoint(r)``).
    x : torch.Tensor
        Current iterate, trailing shape ``A.in_shape``.
    y : torch.Tensor
        Data, trailing shape ``A.out_shape``.
    t : float or torch.Tensor
        Step size: a number, a 0-d tensor (e.g. a learned parameter), or a
        tensor that broadcasts against ``x`` (one step per problem).
    residual : torch.Tensor, optional
        ``y - A x`` when the caller has it already (saves one application of ``A``).

    Returns
    -------
    torch.Tensor
        The next iterate.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
    >>> y = torch.tensor([2.0, 3.0], dtype=torch.float64)
    >>> landweber_step(A, torch.zeros(2, dtype=torch.float64), y, 0.25)
    tensor([1.0000, 0.7500], dtype=torch.float64)
    """
    if not (callable(A) and hasattr(A, "adjoint")):
        raise TypeError(f"landweber_step: A must be a LinearOperator (A(x) and A.adjoint(r)), got "
                        f"{type(A).__name__}")
    r = y - A(x) if residual is None else residual
    return x + t * A.adjoint(r)


def landweber(A: LinearOperator, y: torch.Tensor, n_iter: int = 100,
              step: float | Sequence[float] | None = None, x0: torch.Tensor | None = None,
              tol: float | None = None, noise_sigma: Any = None,
              tau: float = 1.0, callback: Callback | None = None, progress: bool = False,
              norm: float | None = None, check_step: str = "error") -> SolverResult:
    """Landweber iteration ``x_{k+1} = x_k + t_k A^H (y - A x_k)``.

    Gradient descent on ``0.5 ||A x - y||^2``. From ``x0 = 0`` with
    ``0 < t_k < 2 / ||A||^2`` it converges to the minimum-norm least-squares
    solution ``A^+ y``; stopped early it regularises (the iteration count
    plays the role of the regularisation parameter, e.g. chosen by the
    discrepancy principle through ``noise_sigma``).

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    y : torch.Tensor
        Data, trailing shape ``A.out_shape``; leading dims are independent problems.
    n_iter : int
        Maximum number of iterations.
    step : float or sequence of float, optional
        A constant step or one step per iteration (``n_iter`` of them).
        Default ``1 / ||A||^2``.
    x0 : torch.Tensor, optional
        Initial guess (default zeros).
    tol : float, optional
        Stop a problem when ``||x_{k+1} - x_k|| / ||x_{k+1}|| <= tol``.
    noise_sigma : float or tensor, optional
        Noise standard deviation per data entry: stop a problem by the
        discrepancy principle ``||A x - y|| <= tau * noise_sigma * sqrt(m)``.
    tau : float
        Safety factor of the discrepancy principle.
    callback : callable, optional
        Called as ``callback(k, x)`` after iteration ``k`` (1-based); returning
        ``True`` stops the iteration.
    progress : bool
        Show a tqdm progress bar.
    norm : float, optional
        ``||A||`` if known (otherwise computed: exact from a factorization or
        by power iteration).
    check_step : {"error", "warn", "off"}
        What to do when a step exceeds the convergence bound ``2 / ||A||^2``.

    Returns
    -------
    SolverResult
        ``history["objective"]`` is ``0.5 ||A x - y||^2``; ``info["step"]`` the steps used.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
    >>> r = landweber(A, torch.tensor([2.0, 3.0], dtype=torch.float64), n_iter=200)
    >>> torch.allclose(r.x, torch.tensor([1.0, 3.0], dtype=torch.float64))
    True
    """
    fn = "landweber"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    n_iter = check_n_iter(n_iter, fn)
    L = operator_norm(A, norm, fn) if (step is None or check_step != "off") else None
    steps = make_steps(step, n_iter, L, fn, check_step)
    x = check_x0(A, x0, y, batch, fn)
    mon = Monitor(fn, A, y, batch, n_iter, tol, noise_sigma, tau, callback, progress)
    nin, nout = len(A.in_shape), len(A.out_shape)
    r = y - A(x)
    if not mon.initial(pnorm(r, nout)):
        for k in range(n_iter):
            x_new = mon.freeze(landweber_step(A, x, y, steps[k], residual=r), x)
            change = None
            if mon.tol is not None:
                change = rel_change(x_new, x, nin)
            x = x_new
            r = y - A(x)
            rn = pnorm(r, nout)
            if mon.step(x, rn, 0.5 * rn**2, change):
                break
    return mon.result(x, step=steps[0] if len(set(steps)) == 1 else steps, norm=L)


def cgls(A: LinearOperator, y: torch.Tensor, n_iter: int = 100, tol: float | None = 1e-6, damp: Any = 0.0,
         x0: torch.Tensor | None = None, noise_sigma: Any = None, tau: float = 1.0,
         callback: Callback | None = None, progress: bool = False) -> SolverResult:
    """Conjugate gradients on the (damped) normal equations, CGLS.

    Minimises ``||A x - y||^2 + damp^2 ||x||^2`` (the convention of
    :func:`scipy.sparse.linalg.lsqr`), i.e. solves
    ``(A^H A + damp^2 I) x = A^H y`` without forming ``A^H A``. Each
    iteration costs one ``A`` and one ``A^H``. Unregularised (``damp=0``)
    and stopped early, the iteration count regularises.

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    y : torch.Tensor
        Data (leading dims: independent problems, each with its own CG scalars).
    n_iter : int
        Maximum number of iterations.
    tol : float or None
        Stop a problem when the normal-equation residual
        ``||A^H (y - A x) - damp^2 x|| <= tol * ||A^H y||``. Independently of
        ``tol`` a problem stops at rounding level: once that relative residual
        is below ``sqrt(eps)`` of the dtype (3.5e-4 in float32, 1.5e-8 in
        float64) and has not improved for 50 iterations, or jumps 1000-fold
        above its best (loss of orthogonality), the best iterate is returned.
        Expect float32 to agree with float64 to about ``cond * 1e-7``
        (``cond`` of ``A^H A + damp^2 I``).
    damp : float or tensor
        Damping (a tensor broadcasting to the batch gives one per problem).
    x0 : torch.Tensor, optional
        Initial guess (default zeros).
    noise_sigma, tau : optional
        Discrepancy-principle stop ``||A x - y|| <= tau * noise_sigma * sqrt(m)``.
    callback, progress
        As in :func:`landweber`.

    Returns
    -------
    SolverResult
        ``history["objective"]`` is ``0.5 ||A x - y||^2 + 0.5 damp^2 ||x||^2``
        and ``history["normal_residual"]`` the relative normal-equation residual;
        ``info["stop_reason"]`` is ``"converged"`` (``tol`` or discrepancy),
        ``"rounding"`` or ``"n_iter"`` (a list per problem for batched ``y``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[1.0, 1.0], [1.0, -1.0], [2.0, 0.0]], dtype=torch.float64))
    >>> r = cgls(A, torch.tensor([2.0, 0.0, 2.0], dtype=torch.float64), n_iter=10)
    >>> r.x.round(decimals=8), r.converged
    (tensor([1., 1.], dtype=torch.float64), True)
    """
    fn = "cgls"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    n_iter = check_n_iter(n_iter, fn)
    damp = check_param(damp, "damp", fn, batch)
    nin, nout = len(A.in_shape), len(A.out_shape)
    x = check_x0(A, x0, y, batch, fn)
    mon = Monitor(fn, A, y, batch, n_iter, None, noise_sigma, tau, callback, progress)
    if tol is not None:
        tol = float(check_param(tol, "tol", fn, ()))
    d2 = expand(per_problem(damp, batch, y) ** 2, nin)
    d2b = d2.reshape(batch)
    r = y - A(x)
    s = A.adjoint(r) - d2 * x
    ref = pnorm(A.adjoint(y), nin)
    ref = torch.where(ref > 0, ref, torch.ones_like(ref))
    p = s
    gamma = pnorm(s, nin) ** 2
    tiny = torch.finfo(gamma.dtype).tiny
    # rounding guard: the best normal residual so far and its iterate, per problem
    floor = math.sqrt(torch.finfo(gamma.dtype).eps)
    best = gamma.sqrt() / ref
    x_best = x.clone()
    since_best = torch.zeros_like(mon.stopped_at)
    rounding = torch.zeros_like(mon.active)
    if tol is not None:  # already solved (e.g. y = 0 or a perfect x0)
        done0 = gamma.sqrt() <= tol * ref
        mon.active &= ~done0
        mon.stopped_at[done0] = 0
    mon.initial(pnorm(r, nout))
    if mon.any_active:
        for _ in range(n_iter):
            q = A(p)
            delta = pnorm(q, nout) ** 2 + d2b * pnorm(p, nin) ** 2
            alpha = torch.where(mon.active & (delta > tiny), gamma / delta.clamp_min(tiny),
                                torch.zeros_like(gamma))
            x = x + expand(alpha, nin) * p
            r = r - expand(alpha, nout) * q
            s = A.adjoint(r) - d2 * x
            gamma_new = pnorm(s, nin) ** 2
            beta = gamma_new / gamma.clamp_min(tiny)
            p = mon.freeze(s + expand(beta, nin) * p, p)
            gamma = torch.where(mon.active, gamma_new, gamma)
            rn = pnorm(r, nout)
            nres = gamma_new.sqrt() / ref
            improved = (nres < best) & mon.active
            best = torch.where(improved, nres, best)
            x_best = torch.where(expand(improved, nin), x, x_best)
            since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
            # at rounding level (below sqrt(eps) of the dtype) the normal residual stops
            # decreasing, then CG loses orthogonality and can diverge: stop, keep the best iterate
            stuck = mon.active & (best <= floor) & ((since_best >= _PATIENCE) | (nres > 1e3 * best)
                                                    | ~torch.isfinite(nres))
            if bool(stuck.any()):
                x = torch.where(expand(stuck, nin), x_best, x)
                rounding |= stuck
                mon.stopped_at[stuck] = mon.k + 1
                mon.active &= ~stuck
            obj = 0.5 * rn**2 + 0.5 * d2b * pnorm(x, nin) ** 2
            mon_done = mon.step(x, rn, obj, None, normal_residual=float(nres.detach().mean()))
            if tol is not None:
                newly = (nres <= tol) & mon.active
                if bool(newly.any()):
                    mon.stopped_at[newly] = mon.k
                    mon.active &= ~newly
                mon_done = mon_done or not mon.any_active
            if mon_done:
                break
    res = mon.result(x, damp=damp)
    reason = [("rounding" if bool(rounding.reshape(-1)[b]) else
               "n_iter" if bool(mon.active.reshape(-1)[b]) else "converged")
              for b in range(rounding.numel())]
    res.info["stop_reason"] = reason if batch else reason[0]
    res.converged = bool((~mon.active).all()) and (tol is not None or mon.target is not None
                                                    or bool(rounding.all()))
    return res


def _check_nonnegative_operator(A: LinearOperator, y: torch.Tensor, fn: str) -> None:
    """Refuse an operator with negative entries (Richardson-Lucy divides by ``A x``: NaN follows).

    Operators that expose their coefficients (a ``psf`` or ``M`` buffer) are checked
    exactly; any other operator is probed with a seeded random non-negative image and its
    adjoint with seeded random non-negative data (both must stay non-negative to rounding).
    """
    for name in ("psf", "M", "matrix", "weights"):
        coef = getattr(A, name, None)
        if isinstance(coef, torch.Tensor) and not coef.is_sparse and not coef.is_complex():
            if bool((coef < 0).any()):
                raise ValueError(f"{fn}: A must be a non-negative operator (Richardson-Lucy needs a "
                                 f"non-negative PSF / operator), but A.{name} has a negative entry "
                                 f"(min {float(coef.min()):.3g})")
    g = torch.Generator(device="cpu").manual_seed(0)
    xin = torch.rand(A.in_shape, generator=g, dtype=y.dtype).to(y.device)
    yout = torch.rand(A.out_shape, generator=g, dtype=y.dtype).to(y.device)
    for what, v, scale in (("A x", A(xin), xin.sum()), ("A^H y", A.adjoint(yout), yout.sum())):
        tol = 1e3 * torch.finfo(v.dtype).eps * float(v.abs().max() + scale / max(v.numel(), 1))
        if bool((v < -tol).any()):
            raise ValueError(f"{fn}: A must be a non-negative operator (Richardson-Lucy needs a "
                             f"non-negative PSF / operator), but {what} of a non-negative input has a "
                             f"negative entry (min {float(v.min()):.3g})")


def richardson_lucy(A: LinearOperator, y: torch.Tensor, n_iter: int = 50, eps: float = 1e-12,
                    x0: torch.Tensor | None = None, tol: float | None = None, noise_sigma: Any = None,
                    tau: float = 1.0, callback: Callback | None = None, progress: bool = False
                    ) -> SolverResult:
    """Richardson–Lucy (EM for Poisson data): ``x_{k+1} = x_k A^H(y / A x_k) / A^H 1``.

    For operators with non-negative entries (blur, projection) and
    non-negative data. Iterates stay non-negative, and when the columns of
    ``A`` sum to one (a unit-sum PSF with circular boundary) the flux
    ``sum(x_k) = sum(y)`` is kept from the first iteration on. The iteration
    count regularises.

    Parameters
    ----------
    A : LinearOperator
        Non-negative forward operator (``A^H 1`` must be positive). A negative
        PSF or matrix entry, or negative output of ``A`` or ``A^H`` on a seeded
        non-negative probe, raises a ``ValueError`` (the ratio ``y / A x``
        would turn NaN).
    y : torch.Tensor
        Non-negative data (negative values raise; clip noisy data yourself).
    n_iter : int
        Maximum number of iterations.
    eps : float
        Floor on ``A x`` in the ratio ``y / A x`` (avoids division by zero).
    x0 : torch.Tensor, optional
        Non-negative initial guess; default the constant image whose blur
        has the flux of ``y``.
    tol, noise_sigma, tau, callback, progress
        As in :func:`landweber`.

    Returns
    -------
    SolverResult
        ``history["objective"]`` is the Poisson deviance (Kullback–Leibler
        divergence) ``sum(y log(y / Ax) - y + Ax)``.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.0), (16, 16))
    >>> y = A(torch.rand(16, 16, dtype=torch.float64))
    >>> r = richardson_lucy(A, y, n_iter=20)
    >>> bool((r.x >= 0).all()), torch.allclose(r.x.sum(), y.sum())
    (True, True)
    """
    fn = "richardson_lucy"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    if y.is_complex() or not A.is_real:
        raise TypeError(f"{fn}: needs a real operator and real data")
    if bool((y < 0).any()):
        raise ValueError(f"{fn}: y must be non-negative (Poisson data); got min {float(y.min()):.3g}; "
                         "clip noisy data to >= 0 first")
    n_iter = check_n_iter(n_iter, fn)
    eps = float(check_param(eps, "eps", fn, (), positive=True))
    nin, nout = len(A.in_shape), len(A.out_shape)
    _check_nonnegative_operator(A, y, fn)
    ones = torch.ones(A.out_shape, dtype=y.dtype, device=y.device)
    colsum = A.adjoint(ones)
    if bool((colsum <= 0).any()):
        raise ValueError(f"{fn}: A^H 1 must be positive everywhere (a non-negative operator that sees "
                         "every pixel); got a non-positive entry")
    if x0 is None:
        A1 = A(torch.ones(A.in_shape, dtype=y.dtype, device=y.device))
        c = y.sum(dim=tuple(range(-nout, 0))) / A1.sum().clamp_min(eps)
        x = expand(c, nin) * torch.ones(batch + A.in_shape, dtype=y.dtype, device=y.device)
    else:
        x = check_x0(A, x0, y, batch, fn)
        if bool((x < 0).any()):
            raise ValueError(f"{fn}: x0 must be non-negative")
    mon = Monitor(fn, A, y, batch, n_iter, tol, noise_sigma, tau, callback, progress)
    dims = tuple(range(-nout, 0))
    Ax = A(x)
    if not mon.initial(pnorm(Ax - y, nout)):
        for _ in range(n_iter):
            ratio = y / Ax.clamp_min(eps)
            x_new = mon.freeze(x * A.adjoint(ratio) / colsum, x)
            change = None
            if mon.tol is not None:
                change = rel_change(x_new, x, nin)
            x = x_new
            Ax = A(x)
            Axc = Ax.clamp_min(eps)
            kl = (torch.where(y > 0, y * torch.log(y.clamp_min(eps) / Axc), torch.zeros_like(y))
                  - y + Axc).sum(dim=dims)
            if mon.step(x, pnorm(Ax - y, nout), kl, change):
                break
    return mon.result(x, eps=eps)
