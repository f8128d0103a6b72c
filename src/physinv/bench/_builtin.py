"""The built-in deconvolution methods: physinv's classical solvers, oracles and scikit-image's.

Every automatic method chooses its parameters from the data alone, by the
rule its label names. Two noise-level estimators are used:

- GCV (:func:`physinv.solvers.estimate_noise`): the residual of the GCV
  Tikhonov fit over its effective degrees of freedom, through the circular
  model's Fourier factorization (for the closed-form filters).
- MAD (:func:`physinv.solvers.mad_noise_sigma`): the median absolute value of the finest
  diagonal Haar wavelet coefficients of ``y`` over 0.6745 (Donoho and
  Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika
  1994), which needs no model of the border (for the iterative solvers, on
  either boundary).

The weights of the l1-wavelet (ISTA/FISTA) and TV objectives
``0.5 ||A x - y||^2 + lam R(x)`` follow the MAP scaling ``lam = alpha *
sigma^2`` with ``alpha`` chosen once on training pictures only (see
``docs/studies.md``) and fixed.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from .. import assets
from ..nets.denoiser import PRETRAINED_DENOISER
from ..solvers import (
    cgls,
    choose_lambda,
    estimate_noise,
    fista,
    ista,
    landweber,
    richardson_lucy,
    tikhonov,
    tsvd,
    tv,
    wiener,
)
from ..solvers import mad_noise_sigma as solvers_mad_noise_sigma
from .methods import Problem, register

__all__ = ["mad_noise_sigma", "ALPHA_WAVELET", "ALPHA_TV", "N_ITER"]

#: ``lam = ALPHA_WAVELET * sigma^2`` for ISTA/FISTA with db4 wavelets (chosen on training pictures).
ALPHA_WAVELET = 16.0
#: ``lam = ALPHA_TV * sigma^2`` for TV (chosen on training pictures).
ALPHA_TV = 8.0
#: Iteration budgets (maximum iterations; the discrepancy rule may stop earlier).
N_ITER = {"landweber": 400, "cgls": 200, "richardson_lucy": 200, "richardson_lucy_fixed": 30,
          "ista": 100, "fista": 100, "tv": 200}
_WAVELET = ("db4", 4)


def mad_noise_sigma(y: torch.Tensor) -> float:
    """:func:`physinv.solvers.mad_noise_sigma` of one 2-D frame, as a float.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> y = 0.5 + 0.02 * torch.randn(256, 256, generator=g, dtype=torch.float64)
    >>> abs(mad_noise_sigma(y) / 0.02 - 1) < 0.05
    True
    """
    if not isinstance(y, torch.Tensor) or y.dim() != 2:
        raise ValueError(f"y must be a 2-D tensor, got {getattr(y, 'shape', type(y))}")
    return float(solvers_mad_noise_sigma(y))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ baseline
def _blurred(p: Problem):
    return p.y.clone()


# --------------------------------------------------------- closed-form filters
def _tikhonov_gcv(p: Problem):
    r = tikhonov(p.circular_operator(), p.y, "gcv", residual=False)
    return r.x, {"lam": float(r.info["lam"])}


def _tikhonov_discrepancy(p: Problem):
    r = tikhonov(p.circular_operator(), p.y, "discrepancy", noise_sigma="gcv", residual=False)
    return r.x, {"lam": float(r.info["lam"])}


def _tsvd_gcv(p: Problem):
    A = p.circular_operator()
    F = A.svd()
    lam = choose_lambda(A, p.y, "gcv", factorization=F)
    r = tsvd(A, p.y, rcond=math.sqrt(lam) / float(F.s.max()), factorization=F, residual=False)
    return r.x, {"lam": float(lam)}


def _wiener_powerlaw(p: Problem):
    A = p.circular_operator()
    sigma = estimate_noise(A, p.y)
    r = wiener(A, p.y, sigma, "power-law", residual=False)
    return r.x, {"sigma_hat": float(sigma)}


def _tikhonov_oracle(p: Problem):
    A = p.circular_operator()
    F = A.svd()

    def score(lam: float) -> float:
        return p.score(F.tikhonov(p.y, lam))

    grid = np.logspace(-7, 1, 41)
    scores = [score(float(lam)) for lam in grid]
    i = int(np.argmax(scores))
    fine = np.logspace(math.log10(grid[max(i - 1, 0)]), math.log10(grid[min(i + 1, grid.size - 1)]), 21)
    fs = [score(float(lam)) for lam in fine]
    lam = float(fine[int(np.argmax(fs))])
    t0 = time.perf_counter()
    x = tikhonov(p.circular_operator(), p.y, lam, residual=False).x
    return x, {"lam": lam, "seconds": time.perf_counter() - t0}


def _wiener_mmse_oracle(p: Problem):
    t0 = time.perf_counter()
    A = p.circular_operator()
    X = torch.fft.fft2(p.truth)
    P = (X.real**2 + X.imag**2) / p.truth.numel()  # unitary-DFT power of the true image
    x = wiener(A, p.y, p.noise_sigma, P, residual=False).x
    return x, {"seconds": time.perf_counter() - t0}


# ----------------------------------------------------------- iterative solvers
def _landweber(p: Problem):
    sigma = mad_noise_sigma(p.y)
    A = p.operator()
    r = _quiet(landweber, A, p.y, n_iter=N_ITER["landweber"], noise_sigma=sigma, tau=1.0,
               norm=p.operator_norm(A))
    return r.x, {"sigma_hat": sigma, "n_iter": r.n_iter}


def _cgls(p: Problem):
    sigma = mad_noise_sigma(p.y)
    r = _quiet(cgls, p.operator(), p.y, n_iter=N_ITER["cgls"], tol=None, noise_sigma=sigma, tau=1.0)
    return r.x, {"sigma_hat": sigma, "n_iter": r.n_iter}


def _rl_discrepancy(p: Problem):
    sigma = mad_noise_sigma(p.y)
    r = _quiet(richardson_lucy, p.operator(), p.y.clamp_min(0), n_iter=N_ITER["richardson_lucy"],
               noise_sigma=sigma, tau=1.0)
    return r.x, {"sigma_hat": sigma, "n_iter": r.n_iter}


def _rl_fixed(p: Problem):
    r = _quiet(richardson_lucy, p.operator(), p.y.clamp_min(0), n_iter=N_ITER["richardson_lucy_fixed"])
    return r.x, {"n_iter": r.n_iter}


def _wavelet(p: Problem):
    from ..operators import Wavelet2D

    return Wavelet2D(p.shape, _WAVELET[0], levels=_WAVELET[1]).to(p.device)


def _ista(p: Problem):
    sigma = mad_noise_sigma(p.y)
    lam = ALPHA_WAVELET * sigma**2
    A = p.operator()
    r = _quiet(ista, A, p.y, lam, n_iter=N_ITER["ista"], transform=_wavelet(p), norm=p.operator_norm(A))
    return r.x, {"sigma_hat": sigma, "lam": lam}


def _fista(p: Problem):
    sigma = mad_noise_sigma(p.y)
    lam = ALPHA_WAVELET * sigma**2
    A = p.operator()
    r = _quiet(fista, A, p.y, lam, n_iter=N_ITER["fista"], transform=_wavelet(p), norm=p.operator_norm(A))
    return r.x, {"sigma_hat": sigma, "lam": lam}


#: Iterations of plug-and-play HQS (DPIR's schedule from 49/255 down to the estimated sigma).
PNP_ITER = 8


def _pnp(p: Problem):
    from ..nets import pretrained_denoiser
    from ..solvers import pnp

    sigma = max(mad_noise_sigma(p.y), 1e-4)
    A = p.operator()
    r = _quiet(pnp, A, p.y, pretrained_denoiser(device=p.device), sigma, n_iter=PNP_ITER)
    return r.x, {"sigma_hat": sigma, "exact_data_step": bool(r.info["exact_data_step"])}


def _tv(p: Problem):
    sigma = mad_noise_sigma(p.y)
    lam = ALPHA_TV * sigma**2
    A = p.operator()
    r = _quiet(tv, A, p.y, lam, n_iter=N_ITER["tv"], norm=p.operator_norm(A))
    return r.x, {"sigma_hat": sigma, "lam": lam, "tv_method": str(r.info.get("method", ""))}


# ----------------------------------------------------------------- scikit-image
def _np(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    return p.y.detach().cpu().numpy(), p.psf.detach().cpu().numpy()


def _back(x: np.ndarray, p: Problem) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(p.device)


def _skimage_wiener_oracle(p: Problem):
    from skimage import restoration

    y, k = _np(p)

    def score(b: float) -> float:
        return p.score(torch.from_numpy(restoration.wiener(y, k, b, clip=False)))

    grid = np.logspace(-5, 1, 25)
    scores = [score(float(b)) for b in grid]
    i = int(np.argmax(scores))
    fine = np.logspace(math.log10(grid[max(i - 1, 0)]), math.log10(grid[min(i + 1, grid.size - 1)]), 11)
    fs = [score(float(b)) for b in fine]
    b = float(fine[int(np.argmax(fs))])
    t0 = time.perf_counter()
    x = restoration.wiener(y, k, b, clip=False)
    return _back(x, p), {"balance": b, "seconds": time.perf_counter() - t0}


def _skimage_unsupervised(p: Problem):
    from skimage import restoration

    y, k = _np(p)
    x, chains = restoration.unsupervised_wiener(y, k, clip=False, rng=np.random.default_rng(p.seed))
    return _back(x, p), {"n_samples": len(chains["noise"])}


def _skimage_rl(p: Problem):
    from skimage import restoration

    y, k = _np(p)
    x = restoration.richardson_lucy(np.clip(y, 0, None), k, num_iter=N_ITER["richardson_lucy_fixed"],
                                    clip=False)
    return _back(x, p), {"n_iter": N_ITER["richardson_lucy_fixed"]}


# ----------------------------------------------------------------- registration
_MAD = "sigma from the data (MAD of finest Haar diagonal details)"

register("blurred", _blurred, oracle=False, family="baseline", label="blurred input (no restoration)",
         assumes="none", quick=True)
register("tikhonov-gcv", _tikhonov_gcv, oracle=False, family="spectral",
         label="Tikhonov, lam by GCV (circular model, exact Fourier filter)", assumes="circular", quick=True)
register("tikhonov-discrepancy", _tikhonov_discrepancy, oracle=False, family="spectral",
         label="Tikhonov, lam by the discrepancy principle (tau = 1), sigma estimated by GCV "
               "(circular model)",
         assumes="circular", quick=True)
register("tsvd-gcv", _tsvd_gcv, oracle=False, family="spectral",
         label="TSVD, cut-off s^2 >= lam chosen by GCV (circular model)", assumes="circular")
register("wiener-powerlaw", _wiener_powerlaw, oracle=False, family="spectral",
         label="Wiener, power-law spectrum |f|^-2 fitted to the data, sigma estimated by GCV "
               "(circular model)",
         assumes="circular", quick=True)
register("landweber-discrepancy", _landweber, oracle=False, family="iterative",
         label=f"Landweber, step 1/||A||^2, discrepancy stop (tau = 1, {_MAD}), <= "
               f"{N_ITER['landweber']} it", assumes="matched", quick=True)
register("cgls-discrepancy", _cgls, oracle=False, family="iterative",
         label=f"CGLS, discrepancy stop (tau = 1, {_MAD}), <= {N_ITER['cgls']} it", assumes="matched",
         quick=True)
register("richardson-lucy-discrepancy", _rl_discrepancy, oracle=False, family="iterative",
         label=f"Richardson-Lucy (data clipped at 0), discrepancy stop (tau = 1, {_MAD}), <= "
               f"{N_ITER['richardson_lucy']} it", assumes="matched", quick=True)
register("richardson-lucy-30", _rl_fixed, oracle=False, family="iterative",
         label=f"Richardson-Lucy (data clipped at 0), {N_ITER['richardson_lucy_fixed']} it (fixed count, "
               "as scikit-image's)", assumes="matched", quick=True)
register("ista-wavelet", _ista, oracle=False, family="sparse",
         label=f"ISTA, l1 on db4 wavelets (4 levels), lam = {ALPHA_WAVELET:g} sigma^2 ({_MAD}), "
               f"{N_ITER['ista']} it", assumes="matched", default=False,
         params={"alpha": ALPHA_WAVELET, "n_iter": N_ITER["ista"], "wavelet": list(_WAVELET)})
register("fista-wavelet", _fista, oracle=False, family="sparse",
         label=f"FISTA, l1 on db4 wavelets (4 levels), lam = {ALPHA_WAVELET:g} sigma^2 ({_MAD}), "
               f"{N_ITER['fista']} it", assumes="matched", default=False,
         params={"alpha": ALPHA_WAVELET, "n_iter": N_ITER["fista"], "wavelet": list(_WAVELET)})
register("tv", _tv, oracle=False, family="sparse",
         label=f"isotropic TV, lam = {ALPHA_TV:g} sigma^2 ({_MAD}), Chambolle-Pock, {N_ITER['tv']} it "
               "(exact data prox on circular data, PDHG otherwise)", assumes="matched", default=False,
         params={"alpha": ALPHA_TV, "n_iter": N_ITER["tv"]})
register("pnp-hqs", _pnp, oracle=False, family="learned-prior",
         label=f"plug-and-play HQS with physinv's shipped denoiser (no training for the blur), "
               f"{PNP_ITER} it, DPIR schedule, sigma {_MAD}", assumes="matched",
         params={"n_iter": PNP_ITER, "denoiser": PRETRAINED_DENOISER,
                 "denoiser_sha256": assets.manifest()[PRETRAINED_DENOISER]["sha256"]})
register("tikhonov-oracle", _tikhonov_oracle, oracle=True, family="spectral",
         label="Tikhonov, lam with the best PSNR against the truth (oracle; 41 + 21 lam; one solve timed; "
               "circular model)", assumes="circular", quick=True)
register("wiener-mmse-oracle", _wiener_mmse_oracle, oracle=True, family="spectral",
         label="MMSE Wiener filter with the true image spectrum and true sigma (oracle: the best linear "
               "shift-invariant filter in expectation; circular model)", assumes="circular", quick=True)
register("skimage-wiener-oracle", _skimage_wiener_oracle, oracle=True, family="scikit-image",
         label="scikit-image wiener (Laplacian regulariser), balance with the best PSNR against the truth "
               "(oracle; 25 + 11 values; one call timed)", assumes="circular", quick=True)
register("skimage-unsupervised-wiener", _skimage_unsupervised, oracle=False, family="scikit-image",
         label="scikit-image unsupervised_wiener (Gibbs sampler, seeded)", assumes="circular", quick=True)
register("skimage-richardson-lucy", _skimage_rl, oracle=False, family="scikit-image",
         label=f"scikit-image richardson_lucy, {N_ITER['richardson_lucy_fixed']} it (zero-padded "
               "convolution; data clipped at 0)", assumes="zero", quick=True)
