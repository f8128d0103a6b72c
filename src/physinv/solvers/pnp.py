"""Plug-and-play reconstruction: an exact data step and any denoiser as the prior.

The regularised problem ``min_x ||A x - y||^2 + lam R(x)`` is split so that
the prior ``R`` only ever appears through a denoiser ``D(v, sigma)``, the
proximal map of a Gaussian-denoising problem at noise level ``sigma``
(Venkatakrishnan, Bouman and Wohlberg, "Plug-and-play priors for model based
reconstruction", 2013). The data step is the operator's exact one:

``argmin_x ||A x - y||^2 + alpha ||x - z||^2 = z + tikhonov(A, y - A z, alpha)``,

closed form through the factorization when ``A`` has one (two real FFTs for
a circular convolution), a few warm-started conjugate-gradient steps
otherwise (Radon, non-circular boundaries). The default schedule follows
DPIR (Zhang, Li, Zuo, Zhang, Van Gool and Timofte, "Plug-and-play image
restoration with deep denoiser prior", arXiv:2008.13751): the denoiser's
noise level decreases geometrically from ``sigma_max`` to the data's noise
level, and the penalty follows it, ``alpha_k = lam * noise_sigma^2 /
sigma_k^2``, so early iterations trust the prior and late ones the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from .._validate import check_real
from ..operators import Factorization, LinearOperator
from .result import SolverResult, check_data, check_n_iter, pnorm, require_operator
from .spectral import tikhonov

__all__ = ["pnp", "pnp_schedule", "quadratic_data_step"]

#: Default denoiser noise level of the first iteration (DPIR's 49/255, images in [0, 1]).
SIGMA_MAX = 49 / 255
#: Default weight of the prior (DPIR's value for deblurring).
LAM = 0.23


def _positive(v: Any, name: str, fn: str, allow_zero: bool = False) -> float:
    v = check_real(v, f"{fn}: {name}", finite=False)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{fn}: {name} must be finite and {'>=' if allow_zero else '>'} 0, got {v!r}")
    return v


def pnp_schedule(noise_sigma: float, n_iter: int, sigma_max: float = SIGMA_MAX) -> list[float]:
    """Denoiser noise levels, geometric from ``max(sigma_max, noise_sigma)`` down to ``noise_sigma``.

    Examples
    --------
    >>> [round(s, 4) for s in pnp_schedule(0.01, 3, sigma_max=0.16)]
    [0.16, 0.04, 0.01]
    """
    fn = "pnp_schedule"
    noise_sigma = _positive(noise_sigma, "noise_sigma", fn)
    n_iter = check_n_iter(n_iter, fn, allow_zero=False)
    sigma_max = _positive(sigma_max, "sigma_max", fn)
    return _sigma_schedule(torch.tensor(noise_sigma, dtype=torch.float64), n_iter, sigma_max).tolist()


def _sigma_schedule(noise_sigma: torch.Tensor, n_iter: int, sigma_max: float) -> torch.Tensor:
    """``noise_sigma.shape + (n_iter,)`` levels, geometric from ``max(sigma_max, noise)`` to the noise."""
    top = torch.clamp(noise_sigma, min=sigma_max)
    if n_iter == 1:
        return noise_sigma[..., None].clone()
    frac = torch.arange(n_iter, dtype=noise_sigma.dtype, device=noise_sigma.device) / (n_iter - 1)
    return top[..., None] * (noise_sigma / top)[..., None] ** frac


def _call_denoiser(denoiser: Callable, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``denoiser(v, sigma)`` in the denoiser's own precision, the result back in ``v``'s."""
    dtype = None
    if isinstance(denoiser, torch.nn.Module):
        p = next(iter(denoiser.parameters()), None)
        dtype = p.dtype if p is not None else None
    with torch.no_grad():
        out = denoiser(v if dtype is None else v.to(dtype), sigma if dtype is None else sigma.to(dtype))
    if not isinstance(out, torch.Tensor) or out.shape != v.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"pnp: denoiser(x, sigma) must return a tensor of the shape of x {tuple(v.shape)}, "
                         f"got {got}")
    return out.to(v.dtype)


def quadratic_data_step(A: LinearOperator, y: torch.Tensor, z: torch.Tensor, alpha: float | torch.Tensor, *,
                        factorization: Factorization | None = None, warm: torch.Tensor | None = None,
                        cg_iter: int = 30, cg_tol: float = 1e-6) -> torch.Tensor:
    """``argmin_x ||A x - y||^2 + alpha ||x - z||^2``: the data step of splitting methods.

    Computed as ``z + tikhonov(A, y - A z, alpha)``: closed form through the
    factorization when one is given (two real FFTs for a circular
    convolution), else ``cg_iter`` conjugate-gradient steps warm-started at
    ``warm``. Differentiable in ``y``, ``z`` and ``alpha`` (a tensor gives one
    value per problem), so unrolled networks train through it.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.eye(2, dtype=torch.float64))
    >>> quadratic_data_step(A, torch.tensor([1.0, 3.0], dtype=torch.float64),
    ...                     torch.zeros(2, dtype=torch.float64), 1.0, factorization=A.svd())
    tensor([0.5000, 1.5000], dtype=torch.float64)
    """
    r = y - A(z)
    if factorization is not None:
        return z + tikhonov(A, r, alpha, factorization=factorization, residual=False).x
    return z + tikhonov(A, r, alpha, method="cg", n_iter=cg_iter, tol=cg_tol,
                        x0=None if warm is None else warm - z).x


def pnp(A: LinearOperator, y: torch.Tensor, denoiser: Callable, noise_sigma: float | torch.Tensor, *,
        method: str = "hqs", n_iter: int = 8, lam: float = LAM, sigma_max: float = SIGMA_MAX,
        x0: torch.Tensor | None = None, factorization: Factorization | None = None, cg_iter: int = 30,
        cg_tol: float = 1e-6, callback: Callable | None = None, progress: bool = False) -> SolverResult:
    """Plug-and-play reconstruction with any denoiser ``denoiser(x, sigma)``.

    Parameters
    ----------
    A : LinearOperator
        Forward operator (real).
    y : torch.Tensor
        Data, ``batch + A.out_shape``; leading dims are independent problems.
    denoiser : callable
        ``denoiser(x, sigma) -> x_hat`` on ``batch + A.in_shape`` tensors, with
        ``sigma`` a tensor of one noise level per problem, for example
        :func:`physinv.nets.pretrained_denoiser` (called without gradients).
    noise_sigma : float or tensor
        Standard deviation of the data's noise (a tensor gives one per problem).
    method : {"hqs", "admm", "pgd"}
        Half-quadratic splitting (DPIR), ADMM (the same steps with a scaled
        dual variable), or proximal gradient (one gradient step of the data
        term with step ``1 / ||A||^2``, then the denoiser; no data solve).
    n_iter : int
        Number of iterations (each: one data step, one denoiser call).
    lam : float
        Weight of the prior; the penalty of iteration ``k`` is
        ``alpha_k = lam * noise_sigma^2 / sigma_k^2``.
    sigma_max : float
        Denoiser noise level of the first iteration (see :func:`pnp_schedule`).
    x0 : torch.Tensor, optional
        Start (default ``y`` when ``A`` maps images to images of the same
        shape, else ``A^H y / ||A||^2``).
    factorization : Factorization, optional
        A precomputed ``A.svd()`` (otherwise used when ``A.has_svd``).
    cg_iter, cg_tol : int, float
        Most CG iterations and relative tolerance of the data step of an
        operator without a factorization (warm-started from the last iterate).
    callback : callable, optional
        ``callback(k, x)`` after every iteration.
    progress : bool
        Show a progress bar.

    Returns
    -------
    SolverResult
        ``info["sigmas"]`` and ``info["alphas"]`` hold the schedule (batch means).

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.nets import pretrained_denoiser
    >>> from physinv.operators import Convolution
    >>> from physinv.data import skimage_image
    >>> A = Convolution(psf.gaussian(1.6), (64, 64))
    >>> x = torch.from_numpy(skimage_image("coins", 64)).float()
    >>> y = A(x) + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    >>> r = pnp(A, y, pretrained_denoiser(), 0.01)
    >>> r.x.shape, [round(s, 3) for s in r.info["sigmas"][::7]]
    (torch.Size([64, 64]), [0.192, 0.01])
    """
    fn = "pnp"
    A = require_operator(A, fn)
    if not callable(denoiser):
        raise TypeError(f"{fn}: denoiser must be callable as denoiser(x, sigma), "
                        f"got {type(denoiser).__name__}")
    if not A.is_real:
        raise ValueError(f"{fn}: the operator must be real")
    batch = check_data(A, y, fn)
    if y.is_complex():
        raise TypeError(f"{fn}: y must be real, got {y.dtype}")
    if method not in ("hqs", "admm", "pgd"):
        raise ValueError(f"{fn}: method must be 'hqs', 'admm' or 'pgd', got {method!r}")
    n_iter = check_n_iter(n_iter, fn, allow_zero=False)
    cg_iter = check_n_iter(cg_iter, fn, allow_zero=False)
    lam = _positive(lam, "lam", fn)
    sigma_max = _positive(sigma_max, "sigma_max", fn)
    cg_tol = _positive(cg_tol, "cg_tol", fn)
    dt = y.dtype if y.is_floating_point() else torch.float64
    y = y.to(dt)

    if isinstance(noise_sigma, torch.Tensor):
        ns = noise_sigma.to(device=y.device, dtype=dt)
        if not bool(torch.isfinite(ns).all()) or bool((ns <= 0).any()):
            raise ValueError(f"{fn}: noise_sigma must be finite and > 0")
        try:
            ns = torch.broadcast_to(ns, batch).clone()
        except RuntimeError:
            raise ValueError(f"{fn}: noise_sigma of shape {tuple(ns.shape)} does not broadcast to the batch "
                             f"{batch}") from None
    else:
        ns = torch.full(batch, _positive(noise_sigma, "noise_sigma", fn), dtype=dt, device=y.device)

    # Per-problem schedules: sigma_k geometric from max(sigma_max, noise) to the noise level.
    sigmas = _sigma_schedule(ns, n_iter, sigma_max)  # batch + (n_iter,)
    alphas = lam * ns[..., None] ** 2 / sigmas**2

    F = factorization
    if F is None and method != "pgd" and A.has_svd:
        F = A.svd()
    L2 = A.norm() ** 2 if (method == "pgd" or (x0 is None and A.in_shape != A.out_shape)) else None

    if x0 is None:
        x = y.clone() if A.in_shape == A.out_shape else A.adjoint(y) / L2
    else:
        if not isinstance(x0, torch.Tensor):
            raise TypeError(f"{fn}: x0 must be a tensor, got {type(x0).__name__}")
        x = torch.broadcast_to(x0.to(device=y.device, dtype=dt), batch + A.in_shape).clone()

    def data_step(z: torch.Tensor, alpha: torch.Tensor, warm: torch.Tensor | None) -> torch.Tensor:
        return quadratic_data_step(A, y, z, alpha, factorization=F, warm=warm, cg_iter=cg_iter, cg_tol=cg_tol)

    u = torch.zeros_like(x)
    z = x
    history: dict[str, list[float]] = {"residual": []}
    ynorm = torch.clamp(pnorm(y, len(A.out_shape)), min=torch.finfo(dt).tiny)
    bar = tqdm(range(n_iter), desc=fn, disable=not progress, leave=False)
    for k in bar:
        sig, alpha = sigmas[..., k], alphas[..., k]
        if method == "hqs":
            x = data_step(z, alpha, x)
            z = _call_denoiser(denoiser, x, sig)
        elif method == "admm":
            x = data_step(z - u, alpha, x)
            z = _call_denoiser(denoiser, x + u, sig)
            u = u + x - z
        else:  # proximal gradient on ||Ax - y||^2 / 2 with step 1 / ||A||^2
            grad = A.adjoint(A(z) - y)
            z = _call_denoiser(denoiser, z - grad / L2, sig)
        res = pnorm(A(z) - y, len(A.out_shape)) / ynorm
        history["residual"].append(float(res.mean()))
        if callback is not None:
            callback(k, z)
    bar.close()
    info = {"method": method, "lam": lam, "sigmas": sigmas.reshape(-1, n_iter).mean(0).tolist(),
            "alphas": alphas.reshape(-1, n_iter).mean(0).tolist(), "exact_data_step": F is not None}
    return SolverResult(z, n_iter, True, history, info)
