"""Choosing the Tikhonov parameter without an oracle: GCV, the discrepancy principle, the L-curve.

With a factorization ``A = U diag(s) V^H`` and ``beta = U^H y`` every
quantity is a cheap function of ``|beta_i|^2`` and ``s_i``: with
``phi_i = s_i^2 / (s_i^2 + lam)``,

- residual ``rho(lam) = ||A x_lam - y||^2 = sum (1 - phi_i)^2 |beta_i|^2 + ||y_perp||^2``,
- solution norm ``eta(lam) = ||x_lam||^2 = sum (s_i / (s_i^2 + lam))^2 |beta_i|^2``,
- GCV ``G(lam) = rho(lam) / (m - sum phi_i)^2`` (``m`` data entries), with the denominator
  evaluated as ``(m - r) + sum lam / (s_i^2 + lam)`` (``r`` singular values), which does not
  cancel when ``phi_i ~ 1``.

Without a factorization the same curves are traced with warm-started CGLS
solves on a coarser grid, the trace in GCV estimated with seeded Rademacher
probes (Hutchinson).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .._validate import real_dtype
from ..operators.base import LinearOperator
from ..operators.factorization import Factorization
from ..spectrum import abs2, half_weights
from .result import (
    IllConditionedWarning,
    check_data,
    check_param,
    half_spectrum_path,
    per_problem,
    pnorm,
    require_operator,
)

__all__ = ["choose_lambda", "estimate_noise", "mad_noise_sigma", "METHODS"]

METHODS = ("gcv", "discrepancy", "lcurve")


def choose_lambda(A: LinearOperator, y: torch.Tensor, method: str = "gcv", noise_sigma: Any = None,
                  tau: float = 1.0, lam_range: tuple[float, float] | None = None, n_grid: int | None = None,
                  factorization: Factorization | None = None, iterative: bool | None = None,
                  n_probes: int = 4, n_iter: int = 100, seed: int = 0, return_curve: bool = False,
                  progress: bool = False) -> Any:
    """Choose the Tikhonov parameter ``lam`` (of ``||Ax - y||^2 + lam ||x||^2``) from the data.

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    y : torch.Tensor
        Data; each leading index is a problem with its own ``lam``.
    method : {"gcv", "discrepancy", "lcurve"}
        Generalised cross-validation (minimise ``G(lam)``; needs no noise
        level), the discrepancy principle (``||A x_lam - y|| = tau * sigma *
        sqrt(m)``; needs ``noise_sigma``) or the L-curve corner (maximum
        curvature of ``(log ||A x_lam - y||, log ||x_lam||)``).
    noise_sigma : float, tensor or "gcv", optional
        Noise standard deviation per data entry (discrepancy principle);
        ``"gcv"`` estimates it first with :func:`estimate_noise`.
    tau : float
        Safety factor of the discrepancy principle.
    lam_range : (float, float), optional
        Search interval; default ``[1e-12, 10] * ||A||^2`` with a
        factorization, ``[1e-6, 1] * ||A||^2`` without.
    n_grid : int, optional
        Grid size (default 64 for GCV, 200 for the L-curve with a
        factorization; 12 without one).
    factorization : Factorization, optional
        A precomputed ``A.svd()``.
    iterative : bool, optional
        Force the iterative evaluation (default: only when ``A`` has no
        factorization).
    n_probes, n_iter, seed
        Iterative mode: Hutchinson probes for the GCV trace, CGLS iterations
        per grid point, and the probe seed.
    return_curve : bool
        Also return a dict with the grid and the curves (for plots).
    progress : bool
        Show a tqdm progress bar over the grid of the iterative mode (one
        CGLS solve per grid point: minutes on large images).

    Returns
    -------
    float or torch.Tensor
        A float when ``y`` holds a single problem (no leading dims), else a
        float64 tensor with the batch shape ``y.shape[:-len(A.out_shape)]``.
        With ``return_curve``, a tuple ``(lam, curve)``.

    Notes
    -----
    With a factorization the minimiser (GCV) is refined on two local grids
    between the neighbours of the best grid point (to ~0.2% in ``lam``), and the discrepancy
    equation is solved by bisection (``rho`` increases with ``lam``), to
    relative precision ~1e-6. Iteratively the grid is coarse: GCV is refined
    by a parabola through the best three points, the discrepancy crossing by
    linear interpolation in ``log lam``.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.5), (32, 32))
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(32, 32, generator=g, dtype=torch.float64)
    >>> y = A(x) + 0.01 * torch.randn(32, 32, generator=g, dtype=torch.float64)
    >>> lam = choose_lambda(A, y, "gcv")
    >>> 1e-6 < lam < 1.0
    True
    """
    fn = "choose_lambda"
    A = require_operator(A, fn)
    batch = check_data(A, y, fn)
    if method not in METHODS:
        raise ValueError(f"{fn}: method must be one of {METHODS}, got {method!r}")
    sigma = None
    if method == "discrepancy":
        if noise_sigma is None:
            raise ValueError(f"{fn}: method='discrepancy' needs noise_sigma (a number, a tensor, or "
                             "'gcv' to estimate it)")
        if isinstance(noise_sigma, str):
            if noise_sigma != "gcv":
                raise ValueError(f"{fn}: noise_sigma must be a number, a tensor or 'gcv', got "
                                 f"{noise_sigma!r}")
            noise_sigma = estimate_noise(A, y, factorization=factorization, iterative=iterative,
                                         n_probes=n_probes, n_iter=n_iter, seed=seed, progress=progress)
        sigma = check_param(noise_sigma, "noise_sigma", fn, batch)
    tau = float(check_param(tau, "tau", fn, (), positive=True))
    if lam_range is not None:
        lo, hi = (float(check_param(v, "lam_range", fn, (), positive=True)) for v in lam_range)
        if not lo < hi:
            raise ValueError(f"{fn}: lam_range must be increasing, got {lam_range}")
        lam_range = (lo, hi)
    if iterative is None:
        iterative = factorization is None and not A.has_svd
    if not iterative:
        lam, curve = _spectral(A, factorization, y, batch, method, sigma, tau, lam_range, n_grid)
    else:
        lam, curve = _iterative(A, y, batch, method, sigma, tau, lam_range, n_grid or 12, n_probes,
                                n_iter, seed, bool(progress))
    if method == "lcurve" and not bool(curve["corner_found"].all()):
        warnings.warn("choose_lambda: the L-curve has no corner (the solution norm never grows faster "
                      "than the residual falls: noise amplification is too weak to show); its maximum "
                      "curvature is no regularisation choice, so lam is chosen by GCV instead for "
                      f"{int((~curve['corner_found']).sum())} of {curve['corner_found'].numel()} "
                      "problem(s)", IllConditionedWarning, stacklevel=2)
        lam_g = choose_lambda(A, y, "gcv", lam_range=lam_range, factorization=factorization,
                              iterative=iterative, n_probes=n_probes, n_iter=n_iter, seed=seed,
                              progress=progress)
        lam_g = torch.as_tensor(lam_g, dtype=torch.float64, device=lam.device).reshape(lam.shape)
        lam = torch.where(curve["corner_found"].to(lam.device), lam, lam_g)
    out: Any = float(lam.reshape(())) if not batch else lam.reshape(batch)
    return (out, curve) if return_curve else out


#: Median of |N(0, 1)|: the MAD of a standard normal sample.
_MAD_NORMAL = 0.6744897501960817


def mad_noise_sigma(y: torch.Tensor) -> torch.Tensor:
    """White-noise standard deviation of each image, from the image alone (no operator, no border model).

    ``median(|d|) / 0.6745`` over the finest diagonal Haar coefficients
    ``d = (y[2i,2j] - y[2i,2j+1] - y[2i+1,2j] + y[2i+1,2j+1]) / 2`` (Donoho
    and Johnstone, "Ideal spatial adaptation by wavelet shrinkage",
    Biometrika 1994). The coefficient is orthonormal, so white noise of
    variance ``sigma^2`` gives coefficients of variance ``sigma^2``, while a
    smooth or blurred image has almost no energy there. An odd last row or
    column is left out.

    Parameters
    ----------
    y : Tensor
        ``(..., H, W)`` images, ``H, W >= 2``.

    Returns
    -------
    Tensor
        One estimate per image, of shape ``y.shape[:-2]``, on ``y``'s device.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> y = 0.5 + 0.02 * torch.randn(3, 128, 128, generator=g, dtype=torch.float64)
    >>> bool(((mad_noise_sigma(y) / 0.02 - 1).abs() < 0.05).all())
    True
    """
    if not isinstance(y, torch.Tensor) or y.dim() < 2 or min(y.shape[-2:]) < 2:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a tensor of shape (..., H, W) with H, W >= 2, got {got}")
    h, w = (y.shape[-2] // 2) * 2, (y.shape[-1] // 2) * 2
    z = y[..., :h, :w]
    d = (z[..., 0::2, 0::2] - z[..., 0::2, 1::2] - z[..., 1::2, 0::2] + z[..., 1::2, 1::2]) / 2
    return d.abs().flatten(-2).median(dim=-1).values / _MAD_NORMAL


def estimate_noise(A: LinearOperator, y: torch.Tensor, factorization: Factorization | None = None,
                   iterative: bool | None = None, **kwargs: Any) -> Any:
    """Estimate the noise standard deviation per data entry from the GCV fit.

    ``sigma^2 = ||A x_lam - y||^2 / (m - trace(A A_lam^+))`` at the GCV choice
    of ``lam`` (Wahba's estimate: the residual divided by its effective
    degrees of freedom). Returns a float for a single problem, else a tensor
    with the batch shape.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.5), (64, 64))
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(64, 64, generator=g, dtype=torch.float64)
    >>> y = A(x) + 0.02 * torch.randn(64, 64, generator=g, dtype=torch.float64)
    >>> abs(estimate_noise(A, y) - 0.02) < 0.002
    True
    """
    _, curve = choose_lambda(A, y, "gcv", factorization=factorization, iterative=iterative,
                             return_curve=True, **kwargs)
    sig = curve["noise_sigma"].to(torch.float64)
    n = len(A.out_shape)
    batch = tuple(y.shape[: y.dim() - n])
    return float(sig.reshape(())) if not batch else sig.reshape(batch).to(y.device)


# ------------------------------------------------------------- spectral
def _spectral(A, F, y, batch, method, sigma, tau, lam_range, n_grid):
    nout = len(A.out_shape)
    m = math.prod(A.out_shape)
    F = F if F is not None else A.svd()
    half = half_spectrum_path(F, y)
    if half is not None:  # the rfft2 half spectrum, each index weighted by its multiplicity
        s = half.half_s.to(device=y.device).reshape(-1)
        weights = half_weights(half.grid_shape, dtype=torch.float64, device=y.device).reshape(-1)
        beta2 = (abs2(torch.fft.rfft2(y.to(torch.float64))) / m).reshape(-1, s.numel())
        perp = torch.zeros(beta2.shape[0], dtype=torch.float64, device=y.device)
    else:
        s = F.s.to(device=y.device, dtype=torch.float64).reshape(-1)
        weights = torch.ones_like(s)
        beta2 = (F.U.adjoint(y).abs() ** 2).to(torch.float64).reshape(-1, s.numel())
        y2 = (pnorm(y, nout).to(torch.float64) ** 2).reshape(-1)
        perp = (y2 - beta2.sum(-1)).clamp_min(0.0)
    beta2 = beta2 * weights
    smax2 = float(s.max()) ** 2
    if smax2 == 0:
        raise ValueError("choose_lambda: the operator is zero")
    lo, hi = lam_range if lam_range is not None else (1e-12 * smax2, 10.0 * smax2)
    s2 = s * s
    n_perp = max(float(m) - float(weights.sum()), 0.0)  # data dimensions outside the range of U

    def curves_shared(grid, rows, need_eta=True):  # grid (G,), rows (B', r) -> rho, eta, dof = m - trace
        rho, eta, tr = [], [], []
        step = max(1, 2**22 // s.numel())
        for g0 in range(0, grid.numel(), step):  # chunks keep memory at O(2^22)
            la = grid[g0:g0 + step, None]
            den = s2 + la
            q = la / den  # 1 - phi, (G, r)
            rho.append(rows @ (q * q).T)
            if need_eta:
                eta.append(rows @ ((s / den) ** 2).T)
            # m - trace = (m - sum w) + sum w (1 - phi), with 1 - phi = lam / (s^2 + lam) computed
            # directly: m - sum(phi) cancels to rounding when phi ~ 1 (small lam)
            tr.append(q @ weights + n_perp)
        return torch.cat(rho, -1), (torch.cat(eta, -1) if need_eta else None), torch.cat(tr)

    def curves(lam, need_eta=True):  # lam (B, G), one grid per problem -> (B, G) each
        if lam.shape[0] == 1 or bool((lam == lam[:1]).all()):
            rho, eta, tr = curves_shared(lam[0], beta2, need_eta)
            return rho + perp[:, None], eta, tr.expand_as(rho)
        out = [curves_shared(lam[b], beta2[b:b + 1], need_eta) for b in range(lam.shape[0])]
        rho = torch.cat([o[0] for o in out]) + perp[:, None]
        eta = torch.cat([o[1] for o in out]) if need_eta else None
        return rho, eta, torch.stack([o[2] for o in out])

    def gcv(lam):
        rho, _, tr = curves(lam, need_eta=False)
        return rho / tr.clamp_min(1e-300) ** 2

    B = beta2.shape[0]
    curve: dict[str, Any] = {}
    if method == "gcv":
        G = n_grid or 64
        grid = torch.logspace(math.log10(lo), math.log10(hi), G, dtype=torch.float64, device=y.device)
        vals = gcv(grid.expand(B, G).contiguous())
        # refine twice on local grids between the neighbours of the best point (~0.2% in lam)
        lgrid = grid.log().expand(B, G)
        for _ in range(2):
            i = vals.argmin(-1, keepdim=True)
            a = lgrid.gather(-1, (i - 1).clamp_min(0))
            b = lgrid.gather(-1, (i + 1).clamp_max(lgrid.shape[-1] - 1))
            lgrid = a + (b - a) * torch.linspace(0, 1, 25, dtype=torch.float64, device=y.device)
            vals_local = gcv(lgrid.exp())
            vals = vals_local
        lam = lgrid.gather(-1, vals.argmin(-1, keepdim=True)).exp()[:, 0]
        vals = gcv(grid.expand(B, G).contiguous())
        rho, _, tr = curves(lam[:, None], need_eta=False)
        sigma_hat = (rho[:, 0] / tr[:, 0].clamp_min(1e-300)).sqrt()
        curve = {"lam": grid.cpu(), "gcv": vals.cpu(), "noise_sigma": sigma_hat}
    elif method == "discrepancy":
        target = (tau**2 * m) * per_problem(sigma, batch, y).to(torch.float64).reshape(-1) ** 2
        target = target.expand(B)

        def rho_of(t):
            return curves(t.exp()[:, None], need_eta=False)[0][:, 0]

        a = torch.full((B,), math.log(lo), dtype=torch.float64, device=y.device)
        b = torch.full((B,), math.log(hi), dtype=torch.float64, device=y.device)
        ra, rb = rho_of(a), rho_of(b)
        if bool((ra > target).any()):
            warnings.warn("choose_lambda: the residual exceeds the discrepancy target even at the "
                          "smallest lam (noise_sigma too small?); returning the lower end of lam_range",
                          RuntimeWarning, stacklevel=3)
        if bool((rb < target).any()):
            warnings.warn("choose_lambda: the residual stays below the discrepancy target at the "
                          "largest lam (noise_sigma too large?); returning the upper end of lam_range",
                          RuntimeWarning, stacklevel=3)
        for _ in range(45):  # relative precision ~1e-12 in lam
            mid = 0.5 * (a + b)
            below = rho_of(mid) < target
            a = torch.where(below, mid, a)
            b = torch.where(below, b, mid)
        lam = (0.5 * (a + b)).exp()
        lam = torch.where(ra > target, torch.full_like(lam, lo), lam)
        lam = torch.where(rb < target, torch.full_like(lam, hi), lam)
    else:  # lcurve
        G = n_grid or 200
        grid = torch.logspace(math.log10(lo), math.log10(hi), G, dtype=torch.float64, device=y.device)
        rho, eta, _ = curves(grid.expand(B, G).contiguous())
        kappa = _curvature(rho, eta, grid)
        i, ok = _corner(rho, eta, grid)
        lam = grid[i.to(grid.device)]
        curve = {"lam": grid.cpu(), "rho": rho.cpu(), "eta": eta.cpu(), "curvature": kappa.cpu(),
                 "corner_found": ok}
    return lam, curve


def _curvature(rho: torch.Tensor, eta: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Signed curvature of ``(log rho, log eta)`` against ``t = log lam`` (corner = maximum)."""
    tiny = torch.finfo(torch.float64).tiny
    xr = torch.log(rho.clamp_min(tiny)).cpu().numpy()
    ye = torch.log(eta.clamp_min(tiny)).cpu().numpy()
    t = torch.log(grid).cpu().numpy()
    x1 = np.gradient(xr, t, axis=-1)
    y1 = np.gradient(ye, t, axis=-1)
    x2 = np.gradient(x1, t, axis=-1)
    y2 = np.gradient(y1, t, axis=-1)
    k = (x1 * y2 - y1 * x2) / np.maximum((x1**2 + y1**2) ** 1.5, 1e-300)
    k[..., 0] = k[..., -1] = -np.inf
    return torch.from_numpy(k)


def _corner(rho: torch.Tensor, eta: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The L-curve corner per problem (index into ``grid``) and whether it is a genuine corner.

    The corner is the point of maximum curvature of ``(log rho, log eta)``. It is accepted
    only when the curve has the two branches of an L around it: on the small-``lam`` side a
    steep branch where the solution norm grows faster than the residual falls
    (``|d log eta / d log rho| >= 1`` somewhere), on the large-``lam`` side a flat one
    (``<= 1`` somewhere). Without the steep branch (noise amplification too weak to show) the
    maximum curvature sits where the flat end bends, and is no regularisation choice at all.
    """
    tiny = torch.finfo(torch.float64).tiny
    kappa = _curvature(rho, eta, grid)
    i = kappa.argmax(-1)
    xr = torch.log(rho.clamp_min(tiny)).cpu().numpy()
    ye = torch.log(eta.clamp_min(tiny)).cpu().numpy()
    t = torch.log(grid).cpu().numpy()
    x1 = np.gradient(xr, t, axis=-1)
    y1 = np.gradient(ye, t, axis=-1)
    slope = np.abs(y1) / np.maximum(np.abs(x1), 1e-300)
    ok = torch.zeros(i.shape, dtype=torch.bool)
    for b in range(i.numel()):
        k = int(i[b])
        ok[b] = bool(np.isfinite(kappa[b, k].item()) and kappa[b, k].item() > 0
                     and (slope[b, :k] >= 1).any() and (slope[b, k + 1:] <= 1).any())
    return i, ok


# ------------------------------------------------------------ iterative
def _iterative(A, y, batch, method, sigma, tau, lam_range, G, n_probes, n_iter, seed, progress=False):
    from .iterative import cgls

    nout = len(A.out_shape)
    m = math.prod(A.out_shape)
    smax2 = A.norm() ** 2
    lo, hi = lam_range if lam_range is not None else (1e-6 * smax2, smax2)
    grid = torch.logspace(math.log10(hi), math.log10(lo), G, dtype=torch.float64)  # large -> small
    yf = y.reshape((-1,) + A.out_shape)
    B = yf.shape[0]
    if method == "gcv":
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"choose_lambda: n_probes must be a positive integer, got {n_probes!r}")
        g = torch.Generator().manual_seed(seed)
        z = (torch.randint(0, 2, (n_probes,) + A.out_shape, generator=g) * 2 - 1).to(y.device,
                                                                                      real_dtype(y.dtype))
        rhs = torch.cat([yf, z.to(yf.dtype)])
    else:
        rhs = yf
    rho = torch.empty(B, G, dtype=torch.float64)
    eta = torch.empty(B, G, dtype=torch.float64)
    tr = torch.empty(G, dtype=torch.float64)
    x = None
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=G, desc=f"choose_lambda ({method})", leave=False)
    for j, lam in enumerate(grid.tolist()):
        if pbar is not None:
            pbar.update(1)
        res = cgls(A, rhs, n_iter=n_iter, tol=1e-5, damp=math.sqrt(lam), x0=x)
        x = res.x
        xb = x[:B]
        rho[:, j] = (pnorm(A(xb) - yf, nout) ** 2).to(torch.float64).cpu()
        eta[:, j] = (pnorm(xb, len(A.in_shape)) ** 2).to(torch.float64).cpu()
        if method == "gcv":
            # m - trace(A A_lam^+) ~ z^H (z - A x_z): the probe residual, computed directly
            # (m - z^H A x_z cancels to rounding when the trace is close to m)
            rz = z.to(yf.dtype) - A(x[B:])
            dims = tuple(range(1, 1 + nout))
            prod = (rz.conj() * z).real if rz.is_complex() else rz * z
            tr[j] = float(prod.sum(dim=dims).mean())
    if pbar is not None:
        pbar.close()
    grid_c = grid.flip(0)
    rho, eta, tr = rho.flip(1), eta.flip(1), tr.flip(0)
    logl = torch.log(grid_c)
    if method == "gcv":
        vals = rho / tr.clamp_min(1e-12 * m) ** 2  # tr holds m - trace here
        i = vals.argmin(-1)
        lam = torch.empty(B, dtype=torch.float64)
        lv = torch.log(vals)
        for b in range(B):
            k = int(i[b].clamp(1, G - 2))
            t0, t1, t2 = logl[k - 1:k + 2].tolist()
            f0, f1, f2 = lv[b, k - 1:k + 2].tolist()
            den = (t0 - t1) * (t0 - t2) * (t1 - t2)
            A2 = (t2 * (f1 - f0) + t1 * (f0 - f2) + t0 * (f2 - f1)) / den
            B2 = (t2**2 * (f0 - f1) + t1**2 * (f2 - f0) + t0**2 * (f1 - f2)) / den
            t = -B2 / (2 * A2) if A2 > 0 else logl[int(i[b])].item()
            lam[b] = math.exp(min(max(t, t0), t2))
        sigma_hat = (rho[torch.arange(B), i] / tr[i].clamp_min(1e-12 * m)).sqrt()
        curve = {"lam": grid_c, "gcv": vals, "trace": m - tr, "noise_sigma": sigma_hat}
    elif method == "discrepancy":
        target = ((tau**2 * m) * per_problem(sigma, batch, y).to(torch.float64).reshape(-1).cpu() ** 2
                  ).expand(B)
        lam = torch.empty(B, dtype=torch.float64)
        for b in range(B):
            above = (rho[b] >= target[b]).nonzero()
            if above.numel() == 0:
                lam[b] = grid_c[-1]
                continue
            k = int(above[0])
            if k == 0:
                lam[b] = grid_c[0]
                continue
            r0, r1 = math.log(rho[b, k - 1]), math.log(rho[b, k])
            w = (math.log(target[b]) - r0) / (r1 - r0) if r1 > r0 else 0.0
            lam[b] = math.exp(float(logl[k - 1]) + w * float(logl[k] - logl[k - 1]))
        curve = {"lam": grid_c, "rho": rho}
    else:
        kappa = _curvature(rho, eta, grid_c)
        i, ok = _corner(rho, eta, grid_c)
        lam = grid_c[i]
        curve = {"lam": grid_c, "rho": rho, "eta": eta, "curvature": kappa, "corner_found": ok}
    return lam.to(y.device), curve
