"""Spectral-filter solvers through a factorization ``A = U diag(s) V^H``: Tikhonov, TSVD, Wiener."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .._validate import real_dtype
from ..operators.base import FactorizationError, LinearOperator
from ..operators.factorization import Factorization, pseudo_inverse_filter, tikhonov_filter, tsvd_filter
from ..operators.fourier import FourierFactorization
from ..spectrum import abs2, half_weights
from .iterative import cgls
from .result import (
    IllConditionedWarning,
    SolverResult,
    check_data,
    check_param,
    expand,
    half_spectrum_path,
    pnorm,
    require_operator,
    warn_gain,
)

__all__ = ["tikhonov", "tsvd", "wiener", "spectral_filter", "signal_power"]


def _factorization(A: LinearOperator, factorization: Factorization | None, fn: str) -> Factorization:
    if factorization is not None:
        if not isinstance(factorization, Factorization):
            raise TypeError(f"{fn}: factorization must be a Factorization, got "
                            f"{type(factorization).__name__}")
        if factorization.in_shape != A.in_shape or factorization.out_shape != A.out_shape:
            raise ValueError(f"{fn}: factorization maps {factorization.in_shape}->{factorization.out_shape} "
                             f"but A maps {A.in_shape}->{A.out_shape}")
        return factorization
    return A.svd()


def _s_values(F: Factorization) -> torch.Tensor:
    """The singular values of ``F`` (on the half spectrum for a Fourier factorization)."""
    half = half_spectrum_path(F)
    return half.half_s if half is not None else F.s


def _check_gain(F: Factorization, values: torch.Tensor | Callable, fn: str, what: str) -> None:
    """Warn when the filter (its values, or a function of ``s``) exceeds :data:`MAX_GAIN` (relative)."""
    s = _s_values(F)
    smax = float(s.max()) if s.numel() else 0.0
    if smax == 0:
        return
    fs = values(s) if callable(values) else values
    warn_gain(float(fs.abs().max()), smax, fn, what, stacklevel=4)


def _closed_form(A: LinearOperator, y: torch.Tensor, x: torch.Tensor, residual: bool, **info: Any
                 ) -> SolverResult:
    history: dict[str, list[float]] = {}
    if residual:
        nout = len(A.out_shape)
        yn = pnorm(y, nout)
        yn = torch.where(yn > 0, yn, torch.ones_like(yn))
        history["residual"] = [float((pnorm(A(x) - y, nout) / yn).mean())]
    return SolverResult(x=x, n_iter=0, converged=True, history=history, info=info)


def _closed_form_half(F: FourierFactorization, Y: torch.Tensor, filt: torch.Tensor, residual: bool,
                      **info: Any) -> SolverResult:
    """Closed-form result on the rfft2 half spectrum: ``x = irfft2(Y * filt)``.

    The relative residual ``||A x - y|| / ||y||`` comes from Parseval on the half
    spectrum (``A x - y`` has spectrum ``(h filt - 1) Y``), with no extra FFT.
    """
    X = Y * filt
    history: dict[str, list[float]] = {}
    if residual:
        w = half_weights(F.grid_shape, dtype=real_dtype(Y.dtype), device=Y.device)
        r2 = (w * abs2(X * F.half_transfer_like(Y) - Y)).sum(dim=(-2, -1))
        y2 = (w * abs2(Y)).sum(dim=(-2, -1))
        y2 = torch.where(y2 > 0, y2, torch.ones_like(y2))
        history["residual"] = [float(torch.sqrt(r2 / y2).mean())]
    x = torch.fft.irfft2(X, s=F.grid_shape)
    return SolverResult(x=x, n_iter=0, converged=True, history=history, info=info)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, else 0 (the guard every spectral filter needs)."""
    pos = den > 0
    return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(den))


def spectral_filter(A: LinearOperator, y: torch.Tensor,
                    f: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor,
                    factorization: Factorization | None = None, residual: bool = True) -> SolverResult:
    """Any spectral filter ``x = V diag(f(s)) U^H y`` through the exact factorization of ``A``.

    Parameters
    ----------
    A : LinearOperator
        An operator with an exact factorization (``A.has_svd``).
    y : torch.Tensor
        Data.
    f : callable or torch.Tensor
        Filter as a function of the singular values or its values (shaped
        like ``s``, optionally with leading batch dims).
    factorization : Factorization, optional
        A precomputed ``A.svd()`` (saves recomputing it for many solves).
    residual : bool
        Record ``history["residual"]`` (costs one application of ``A``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.diag(torch.tensor([2.0, 4.0], dtype=torch.float64)))
    >>> spectral_filter(A, torch.tensor([2.0, 4.0], dtype=torch.float64), lambda s: 1 / s).x
    tensor([1., 1.], dtype=torch.float64)
    """
    fn = "spectral_filter"
    A = require_operator(A, fn)
    check_data(A, y, fn)
    F = _factorization(A, factorization, fn)
    return _closed_form(A, y, F.apply_filter(y, f), residual)


def tikhonov(A: LinearOperator, y: torch.Tensor, lam: float | torch.Tensor | str, *,
             noise_sigma: Any = None, method: str = "auto", n_iter: int = 500, tol: float = 1e-6,
             x0: torch.Tensor | None = None, factorization: Factorization | None = None,
             residual: bool = True, callback: Callable | None = None, progress: bool = False,
             surrogate: bool | None = None, **choose_kwargs: Any) -> SolverResult:
    """Tikhonov regularisation: ``x = argmin ||A x - y||^2 + lam ||x||^2``.

    Closed form ``x = V diag(s / (s^2 + lam)) U^H y`` through ``A.svd()``
    when ``A`` has an exact factorization (two real FFTs when that
    factorization is a :class:`~physinv.operators.FourierFactorization`:
    a circular convolution, a real multiple of one, its adjoint), else
    conjugate gradients on
    ``(A^H A + lam I) x = A^H y`` (:func:`cgls` with ``damp = sqrt(lam)``).

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    y : torch.Tensor
        Data; leading dims are independent problems.
    lam : float, tensor or {"gcv", "discrepancy", "lcurve"}
        Regularisation parameter (a tensor broadcasting to the batch gives one
        per problem), or the rule that chooses it per problem with
        :func:`~physinv.solvers.choose_lambda`.
    noise_sigma : float or tensor, optional
        Noise level, needed by ``lam="discrepancy"``.
    method : {"auto", "spectral", "cg"}
        Force the closed form or the iterative path.
    n_iter, tol, x0, callback, progress
        For the CG path: maximum iterations, relative normal-equation
        residual tolerance, warm start, per-iteration callback, progress bar
        (``progress`` also covers an iterative parameter choice).
    surrogate : bool, optional
        For a rule ``lam`` on an operator without an exact factorization:
        choose ``lam`` (and estimate ``noise_sigma="gcv"``) on its circular
        approximation (a :class:`~physinv.operators.Convolution` with another
        same-size boundary: the same PSF with ``boundary="circular"``, which
        has the Fourier factorization), warm-start CG from that closed-form
        solution, and solve the exact boundary-aware problem by CG with that
        ``lam``. Default: whenever such an approximation exists (seconds
        instead of minutes for a 512 x 512 image); ``False`` runs the rule
        with warm-started CGLS solves on ``A`` itself; ``True`` requires an
        approximation. ``info["lam_from"]`` says which was used.
    factorization : Factorization, optional
        A precomputed ``A.svd()``.
    residual : bool
        Record ``history["residual"]`` for the closed form (one extra ``A``).
    **choose_kwargs
        Passed on to :func:`~physinv.solvers.choose_lambda` (e.g. ``tau``).

    Returns
    -------
    SolverResult
        ``info["lam"]`` holds the parameter used.

    Warns
    -----
    IllConditionedWarning
        When the filter gain ``max s / (s^2 + lam)`` exceeds
        :data:`~physinv.solvers.MAX_GAIN` ``= 1e6`` relative to ``max(s)``
        (``lam < max(s)^2 / 4e12`` on an ill-conditioned operator, e.g. ``lam=0``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[1.0, 0.0], [0.0, 0.1]], dtype=torch.float64))
    >>> tikhonov(A, torch.tensor([1.0, 0.1], dtype=torch.float64), lam=0.01).x
    tensor([0.9901, 0.5000], dtype=torch.float64)
    """
    fn = "tikhonov"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    if method not in ("auto", "spectral", "cg"):
        raise ValueError(f"{fn}: method must be 'auto', 'spectral' or 'cg', got {method!r}")
    spectral = method == "spectral" or (method == "auto" and (factorization is not None or A.has_svd))
    if spectral and factorization is None and not A.has_svd:
        raise FactorizationError(f"{fn}: method='spectral' needs an exact factorization, and "
                                 f"{type(A).__name__} has none")
    F = _factorization(A, factorization, fn) if spectral else None
    if surrogate is not None and not isinstance(surrogate, bool):
        raise TypeError(f"{fn}: surrogate must be True, False or None, got {type(surrogate).__name__}")
    info: dict[str, Any] = {}
    if isinstance(lam, str):
        from .parameter import METHODS, choose_lambda

        if lam not in METHODS:
            raise ValueError(f"{fn}: lam must be a number, a tensor or a parameter-choice method "
                             f"{METHODS}, got {lam!r}")
        lam_rule = lam
        S = None if (spectral or surrogate is False) else _circular_surrogate(A)
        if surrogate is True and S is None:
            raise ValueError(f"{fn}: surrogate=True needs an operator without an exact factorization "
                             f"that has a circular approximation (a same-size Convolution), got "
                             f"{type(A).__name__}")
        if S is not None:
            lam = choose_lambda(S, y, method=lam, noise_sigma=noise_sigma, **choose_kwargs)
            info["lam_from"] = "circular surrogate"
            if x0 is None:  # warm start: the closed-form solution of the circular problem
                x0 = tikhonov(S, y, lam, residual=False).x
        else:
            if not spectral and "progress" not in choose_kwargs:
                choose_kwargs["progress"] = progress
            lam = choose_lambda(A, y, method=lam, noise_sigma=noise_sigma, factorization=F,
                                **choose_kwargs)
            info["lam_from"] = "factorization" if spectral else "iterative"
        info["lam_rule"] = lam_rule
    else:
        lam = check_param(lam, "lam", fn, batch)
    info["lam"] = lam
    if spectral:
        lam_t = lam.to(device=y.device) if isinstance(lam, torch.Tensor) else lam
        lam_min = float(lam.detach().min()) if isinstance(lam, torch.Tensor) else lam
        _check_gain(F, tikhonov_filter(lam_min), fn, f"lam={lam_min:.3g}")
        half = half_spectrum_path(F, y)
        if half is not None:  # the factorization's own filter, on the half spectrum
            filt = half.half_phase_conj_like(y) * tikhonov_filter(lam_t)(half.half_s_like(y))
            return _closed_form_half(half, torch.fft.rfft2(y), filt, residual, **info)
        x = F.tikhonov(y, lam_t)
        return _closed_form(A, y, x, residual, **info)
    damp = lam.sqrt() if isinstance(lam, torch.Tensor) else math.sqrt(lam)
    res = cgls(A, y, n_iter=n_iter, tol=tol, damp=damp, x0=x0, callback=callback, progress=progress)
    res.info.update(info)
    res.info["method"] = "cg"
    return res


def _circular_surrogate(A: LinearOperator) -> LinearOperator | None:
    """The circular convolution with the PSF of ``A`` when ``A`` is a same-size non-circular one.

    It differs from ``A`` only within a PSF radius of the image border, and has the exact
    Fourier factorization: parameter choice on it costs a few FFTs.
    """
    from ..operators.convolution import Convolution

    if (type(A) is Convolution and A.boundary not in ("circular", "valid")
            and A.out_shape == A.in_shape):
        return Convolution(A.psf, A.in_shape, boundary="circular")
    return None


def tsvd(A: LinearOperator, y: torch.Tensor, k: int | None = None, rcond: float | None = None,
         factorization: Factorization | None = None, residual: bool = True) -> SolverResult:
    """Truncated SVD: ``x = sum_{i<k} (u_i^H y / s_i) v_i`` over the ``k`` largest singular values.

    With ``rcond`` instead of ``k`` the cut-off is relative:
    ``s_i > rcond * max(s)`` (neither: ``rcond = 1e-6``, i.e. a
    pseudo-inverse). Uses the exact factorization when ``A`` has one; an
    operator without one is factorized numerically to rank ``k`` with
    ``A.svd(k=k)`` (``k`` is then required).

    Warns
    -----
    IllConditionedWarning
        When ``1 / min(kept s)`` exceeds :data:`~physinv.solvers.MAX_GAIN` ``= 1e6``
        relative to ``max(s)`` (``rcond < 1e-6``, e.g. ``rcond=0``, on an
        ill-conditioned operator).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.diag(torch.tensor([3.0, 2.0, 1e-3], dtype=torch.float64)))
    >>> tsvd(A, torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64), k=2).x
    tensor([1., 1., 0.], dtype=torch.float64)
    """
    fn = "tsvd"
    A = require_operator(A, fn)
    check_data(A, y, fn)
    if k is not None and rcond is not None:
        raise ValueError(f"{fn}: give k or rcond, not both")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
        raise ValueError(f"{fn}: k must be a non-negative integer, got {k!r}")
    if rcond is not None:
        rcond = float(check_param(rcond, "rcond", fn, ()))
    if factorization is None and not A.has_svd:
        if k is None:
            raise FactorizationError(f"{fn}: {type(A).__name__} has no exact factorization; pass k to "
                                     "use a numerical rank-k SVD")
        factorization = A.svd(k=k)
    F = _factorization(A, factorization, fn)
    if k is not None:
        _check_gain(F, tsvd_filter(k), fn, f"k={k}")
        x = F.tsvd(y, k)
        info = {"k": k}
    else:
        rc = 1e-6 if rcond is None else rcond
        _check_gain(F, pseudo_inverse_filter(rc), fn, f"rcond={rc:.3g}")
        x = F.pinv(y, rc)
        half = half_spectrum_path(F)
        if half is not None:  # count on the half spectrum, with multiplicities
            s, w = half.half_s, half.half_weights
            info = {"rcond": rc, "k": int((w * (s > rc * s.max())).sum())}
        else:
            info = {"rcond": rc, "k": int((F.s > rc * F.s.max()).sum())}
    return _closed_form(A, y, x, residual, **info)


def _frequency_radius(shape: tuple[int, int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """|frequency| in cycles per image for every DFT index of an ``(H, W)`` grid."""
    H, W = shape
    fy = torch.fft.fftfreq(H, d=1.0 / H, device=device, dtype=dtype)
    fx = torch.fft.fftfreq(W, d=1.0 / W, device=device, dtype=dtype)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def signal_power(F: Factorization, y: torch.Tensor, noise_sigma: float | torch.Tensor,
                 signal_psd: str | torch.Tensor = "flat", psd_exponent: float = 2.0) -> torch.Tensor:
    """Estimate the signal power ``P`` per spectral index from the data, for :func:`wiener`.

    With ``beta = U^H y`` the data model gives ``E|beta_i|^2 = s_i^2 P_i + sigma^2``.
    The model is ``P_i = c w_i`` with ``w_i = 1`` (``"flat"``) or
    ``w_i = max(|f_i|, 1)^-psd_exponent`` (``"power-law"``, 2-D Fourier
    factorizations only; ``|f_i|`` the frequency in cycles per image). The
    scale ``c`` is the median of ``(|beta_i|^2 - sigma^2) / (s_i^2 w_i)`` over
    the well-conditioned indices (``s_i^2 >= 0.1 max s^2``, at least 16),
    divided by the ratio of median to mean of ``|beta_i|^2`` for Gaussian
    coefficients (``ln 2`` when complex, 0.4549 when real); the median keeps the image mean (the DC term) from
    dominating. When that median is not positive (``noise_sigma`` overestimated) an
    :class:`~physinv.solvers.IllConditionedWarning` is raised and ``c`` is refitted on the
    indices with ``|beta_i|^2 > 4 sigma^2`` (or set to ``1e-3`` of the measured power when
    fewer than 16 are): never zero. Returns shape ``batch + s.shape``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> F = Matrix(torch.eye(3, dtype=torch.float64)).svd()
    >>> signal_power(F, torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64), 0.0)
    tensor([2.1981, 2.1981, 2.1981], dtype=torch.float64)
    """
    nout = len(F.out_shape)
    ns = F.s.dim()
    real = real_dtype(y.dtype)
    s = F.s.to(device=y.device, dtype=real)
    beta = F.U.adjoint(y)
    beta2 = beta.abs() ** 2
    batch = tuple(y.shape[: y.dim() - nout])
    sig2 = torch.as_tensor(noise_sigma, dtype=real, device=y.device) ** 2
    sig2 = expand(torch.broadcast_to(sig2, batch), ns)
    if isinstance(signal_psd, torch.Tensor):
        P = signal_psd.to(device=y.device, dtype=real)
        if tuple(P.shape[P.dim() - ns:]) != tuple(s.shape):
            raise ValueError(f"wiener: signal_psd must have trailing shape {tuple(s.shape)}, got "
                             f"{tuple(P.shape)}")
        if not bool(torch.isfinite(P).all()) or bool((P < 0).any()):
            raise ValueError("wiener: signal_psd must be finite and >= 0")
        return P
    if signal_psd == "flat":
        w = torch.ones_like(s)
    elif signal_psd == "power-law":
        if half_spectrum_path(F) is None or s.dim() != 2:
            raise ValueError("wiener: signal_psd='power-law' needs a 2-D Fourier factorization (a circular "
                             "Convolution); pass a tensor of signal powers for other operators")
        rad = _frequency_radius(tuple(s.shape), y.device, real)
        w = rad.clamp_min(1.0) ** (-float(psd_exponent))
    else:
        raise ValueError(f"wiener: signal_psd must be 'flat', 'power-law' or a tensor, got {signal_psd!r}")
    return _power_model(s * s, beta2, sig2, w, beta.is_complex())


@functools.lru_cache(maxsize=16)
def _power_law_half(shape: tuple[int, int], exponent: float, dtype: torch.dtype, device: str
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``max(|f|, 1)^-exponent`` and its inverse on the rfft2 half grid (cached per shape)."""
    fy = torch.fft.fftfreq(shape[0], d=1.0 / shape[0], dtype=dtype, device=device)
    fx = torch.fft.rfftfreq(shape[1], d=1.0 / shape[1], dtype=dtype, device=device)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).clamp_min(1.0)
    return r ** (-exponent), r**exponent


def _keep_indices(s2: torch.Tensor) -> torch.Tensor:
    """Flat indices of the well-conditioned spectral indices ``s^2 >= 0.1 max s^2`` (at least 16)."""
    flat = s2.reshape(-1)
    keep = flat >= 0.1 * flat.max()
    if int(keep.sum()) < 16:
        return torch.topk(flat, min(16, flat.numel())).indices
    return keep.nonzero().squeeze(1)


def _fit_scale(beta2_k: torch.Tensor, sig2: torch.Tensor, a_k: torch.Tensor, complex_coeffs: bool
               ) -> torch.Tensor:
    """Robust positive fit of ``c`` in ``|beta_i|^2 - sigma^2 = c a_i`` over the kept indices (last dim).

    The median keeps the image mean in the DC term from dominating. ``|beta|^2`` of a complex
    Gaussian coefficient is exponential (median = mean * ln 2); of a real one chi-square with one
    degree of freedom (median = mean * 0.4549).

    When that median is not positive (``sigma`` larger than the data support: more than half of
    the well-conditioned coefficients lie below the noise floor ``sigma^2``), a
    :class:`IllConditionedWarning` says so and ``c`` is refitted on the indices where ``|beta|^2``
    exceeds ``4 sigma^2`` (pure noise does so with probability ``e^-4`` for complex coefficients),
    or, when fewer than 16 do, set to ``1e-3`` of the measured power ``median(|beta|^2 / a)``: the
    estimate is then over-smoothed, never identically zero.
    """
    ratio = math.log(2.0) if complex_coeffs else 0.454936423119572
    est = (beta2_k - sig2) / a_k
    c = est.median(dim=-1).values / ratio
    floor = torch.finfo(a_k.dtype).eps * float(a_k.max())
    bad = c <= floor
    if bool(bad.any()):
        sig2_b = torch.broadcast_to(sig2, beta2_k.shape[:-1] + (1,))
        given = sig2_b[..., 0].sqrt()
        warnings.warn(
            "wiener: the fitted signal power is not positive: noise_sigma looks overestimated "
            f"(given {float(given[bad].max()):.3g}; more than half of the well-conditioned coefficients "
            "lie below the noise floor sigma^2); refitting the signal power on the coefficients above "
            "4 sigma^2 (the estimate is over-smoothed; check noise_sigma)",
            IllConditionedWarning, stacklevel=3)
        above = beta2_k > 4 * sig2_b
        refit = torch.where(above, est, torch.full_like(est, float("nan"))).nanmedian(dim=-1).values
        enough = above.sum(dim=-1) >= 16
        measured = 1e-3 * (beta2_k / a_k).median(dim=-1).values / ratio
        alt = torch.where(enough & (refit > floor), refit, measured)
        c = torch.where(bad, alt, c)
    return c.clamp_min(floor)


def _power_model(s2: torch.Tensor, beta2: torch.Tensor, sig2: torch.Tensor, w: torch.Tensor,
                 complex_coeffs: bool) -> torch.Tensor:
    """``P = c w`` with ``c`` fitted by :func:`_fit_scale` (``s2 = s^2``; ``sig2`` batch + 1s)."""
    ns = s2.dim()
    idx = _keep_indices(s2)
    a_k = (s2 * w).reshape(-1)[idx]
    beta2_k = beta2.reshape(beta2.shape[: beta2.dim() - ns] + (-1,))[..., idx]
    c = _fit_scale(beta2_k, sig2.reshape(sig2.shape[: sig2.dim() - ns] + (1,)), a_k, complex_coeffs)
    return expand(c, ns) * w


def wiener(A: LinearOperator, y: torch.Tensor, noise_sigma: float | torch.Tensor,
           signal_psd: str | torch.Tensor = "flat", psd_exponent: float = 2.0,
           factorization: Factorization | None = None, residual: bool = True) -> SolverResult:
    """Wiener (linear MMSE) filter ``x = V diag(s P / (s^2 P + sigma^2)) U^H y``.

    ``P`` is the signal power per spectral index (unitary normalisation, the
    same as ``s``): given as a tensor, or estimated from the data with a
    ``"flat"`` (white) or ``"power-law"`` (``P ~ |f|^-psd_exponent``, natural
    images have an exponent near 2) model, see :func:`signal_power`.

    Parameters
    ----------
    A : LinearOperator
        Operator with an exact factorization.
    y : torch.Tensor
        Data.
    noise_sigma : float or tensor
        Standard deviation of the (white) noise per data entry; a tensor
        broadcasting to the batch gives one per problem.
    signal_psd : {"flat", "power-law"} or tensor
        Signal model.
    psd_exponent : float
        Exponent of the power-law model.
    factorization : Factorization, optional
        A precomputed ``A.svd()``.
    residual : bool
        Record ``history["residual"]``.

    Warns
    -----
    IllConditionedWarning
        When the filter gain exceeds :data:`~physinv.solvers.MAX_GAIN` ``= 1e6``
        relative to ``max(s)`` (``noise_sigma=0`` on an ill-conditioned
        operator), or when ``noise_sigma`` is larger than the data support (the
        fitted signal power would be negative; it is refitted on the
        coefficients above the noise floor, see :func:`signal_power`).

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.0), (32, 32))
    >>> x = torch.rand(32, 32, dtype=torch.float64)
    >>> r = wiener(A, A(x) + 0.01 * torch.randn(32, 32, dtype=torch.float64), 0.01, "power-law")
    >>> r.x.shape
    torch.Size([32, 32])
    """
    fn = "wiener"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    sigma = check_param(noise_sigma, "noise_sigma", fn, batch)
    F = _factorization(A, factorization, fn)
    half = half_spectrum_path(F, y)
    info = {"noise_sigma": sigma, "signal_psd": signal_psd if isinstance(signal_psd, str) else "given"}
    if half is not None:  # everything on the rfft2 half spectrum
        shape = half.grid_shape
        Y = torch.fft.rfft2(y)
        s = half.half_s_like(y)
        ph = half.half_phase_conj_like(y)
        h2 = s * s
        sig2 = torch.as_tensor(sigma, dtype=y.dtype, device=y.device) ** 2
        sig2 = expand(torch.broadcast_to(sig2, batch), 2)
        if isinstance(signal_psd, torch.Tensor):
            P = signal_psd.to(device=y.device, dtype=y.dtype)
            if tuple(P.shape[-2:]) != shape or not bool(torch.isfinite(P).all()) or bool((P < 0).any()):
                raise ValueError(f"wiener: signal_psd must be finite, >= 0, with trailing shape {shape}")
            P = P[..., : shape[-1] // 2 + 1]
            filt = _ratio(s * P, h2 * P + sig2)
            _check_gain(F, filt, fn, "this Wiener filter")
            return _closed_form_half(half, Y, ph * filt, residual, **info)
        if signal_psd == "flat":
            w = winv = None
        elif signal_psd == "power-law":
            w, winv = _power_law_half(shape, float(psd_exponent), y.dtype, str(y.device))
        else:
            raise ValueError(f"wiener: signal_psd must be 'flat', 'power-law' or a tensor, got "
                             f"{signal_psd!r}")
        # fit P = c w on the well-conditioned indices only, then
        # s P / (s^2 P + sigma^2) = s / (s^2 + (sigma^2 / c) / w): a Tikhonov-like filter
        idx = _keep_indices(h2)
        Yk = Y.reshape(Y.shape[:-2] + (-1,))[..., idx]
        a_k = h2.reshape(-1)[idx] * (1.0 if w is None else w.reshape(-1)[idx])
        c = _fit_scale(abs2(Yk) / math.prod(shape), sig2.reshape(batch + (1,)), a_k, True)
        lam_eff = expand(sig2.reshape(batch) / c, 2)
        den = h2 + (lam_eff if winv is None else lam_eff * winv)
        filt = _ratio(s, den)
        _check_gain(F, filt, fn, "this Wiener filter")
        return _closed_form_half(half, Y, ph * filt, residual, **info)
    P = signal_power(F, y, sigma, signal_psd, psd_exponent)
    real = real_dtype(y.dtype)
    s = F.s.to(device=y.device, dtype=real)
    sig2 = torch.as_tensor(sigma, dtype=real, device=y.device) ** 2
    sig2 = expand(torch.broadcast_to(sig2, batch), s.dim())
    fs = _ratio(s * P, s**2 * P + sig2)
    _check_gain(F, fs, fn, "this Wiener filter")
    return _closed_form(A, y, F.apply_filter(y, fs), residual, **info)
