"""Deblur your own image with a known PSF: ``physinv.deblur(image, psf)``.

One call restores a grey or colour picture (numpy ``(H, W)`` or ``(H, W, C)``,
integer or float) blurred by a known point-spread function, with every
parameter chosen from the data: the noise level, the regularisation, and a
model of the scene beyond the frame.

Photographs are not periodic: the scene goes on past the edge of the frame,
and a pixel near the edge is blurred with content the picture does not hold.
A deconvolution that assumes a circular (periodic) blur treats the two
opposite edges as neighbours and rings from every border. The default here
(``method="auto"``) uses the ``valid`` model instead: the unknown is a scene
larger than the frame by the PSF's footprint, and only the frame is data, so
no assumption about what lies beyond the edge is made; data that look
periodic (:func:`periodicity` below 3, as circular-convolution test data do)
are solved with the circular model. The solver is plug-and-play HQS with
the denoiser that ships with physinv (:func:`physinv.solvers.pnp`,
:func:`physinv.nets.pretrained_denoiser`), sigma by the MAD estimator. The
default was chosen by measurement (``scripts/select_deblur_default.py``: 6
test pictures x 4 PSFs x 2 noise levels, data made both ways, circular blur
and the blur of a larger scene cut to the frame, 128 x 128): mean PSNR
27.44 dB on circular and 27.36 dB on valid data, against 26.33 / 26.16 for
total variation with the same boundary rule, 25.97 / 24.13 for power-law
Wiener with the circular model and 24.20 / 20.45 for scikit-image's
``unsupervised_wiener``; see ``docs/benchmarks.md``.

Methods (``method=``) and their automatic parameter rules:

- ``"auto"``: the measured default, see :data:`AUTO`.
- ``"wiener"``: the Wiener (linear MMSE) estimate with a power-law signal
  spectrum ``c / |f|^2`` whose scale ``c`` is fitted to the data. With the
  ``valid`` model it is the same Gaussian MAP estimate, solved by
  conjugate gradients preconditioned with the circular Wiener filter.
- ``"tikhonov"``: ``lam`` by the discrepancy principle (``tau = 1``).
- ``"tv"``: isotropic total variation, ``lam = 8 sigma^2``
  (Chambolle-Pock, 200 iterations).
- ``"pnp"``: plug-and-play HQS with the shipped denoiser, 8 iterations.
- ``"cgls"``: conjugate gradients on the normal equations, stopped by the
  discrepancy principle (``tau = 1``, at most 200 iterations).
- ``"richardson_lucy"``: Richardson-Lucy, stopped by the discrepancy
  principle (``tau = 1``, at most 200 iterations).

The noise level, unless given, is estimated by :func:`estimate_noise_sigma`
(median absolute deviation of the finest diagonal Haar wavelet coefficients,
Donoho and Johnstone 1994), which needs no model of the border.

Examples
--------
>>> import numpy as np
>>> from physinv.deblur import deblur
>>> rng = np.random.default_rng(0)
>>> photo = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
>>> deblur(photo, "gaussian:1.2").shape
(40, 48, 3)
"""

from __future__ import annotations

import math
import os
import sys
import time
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import psf as _psf
from .operators import Convolution
from .solvers import cgls, mad_noise_sigma, pnp, richardson_lucy, signal_power, tikhonov, tv, wiener
from .spectrum import fast_fft_length

__all__ = [
    "deblur",
    "deblur_with_info",
    "DeblurResult",
    "estimate_noise_sigma",
    "periodicity",
    "METHODS",
    "BOUNDARIES",
    "AUTO",
    "PERIODIC_THRESHOLD",
    "TV_ALPHA",
    "N_ITER",
]

#: ``method=`` names and the automatic parameter rule of each.
METHODS: dict[str, str] = {
    "auto": "the measured default (see AUTO): plug-and-play with the shipped denoiser, valid boundary "
            "model (circular when the data look periodic)",
    "wiener": "Wiener/MAP with a power-law spectrum c/|f|^2 fitted to the data",
    "tikhonov": "Tikhonov, lam by the discrepancy principle (tau = 1)",
    "tv": "isotropic total variation, lam = 8 sigma^2, Chambolle-Pock, 200 iterations",
    "cgls": "CGLS stopped by the discrepancy principle (tau = 1), at most 200 iterations",
    "richardson_lucy": "Richardson-Lucy stopped by the discrepancy principle (tau = 1), at most "
                       "200 iterations",
    "pnp": "plug-and-play HQS with physinv's shipped denoiser, 8 iterations, DPIR schedule down to "
           "the noise level",
}

#: ``boundary=`` names: how the scene continues past the frame.
BOUNDARIES: dict[str, str] = {
    "auto": "the measured best model for the method (valid; reflect for richardson_lucy)",
    "valid": "unknown scene beyond the edge: the unknown is larger than the frame by the PSF, only "
             "the frame is data (no assumption)",
    "circular": "periodic scene (synthetic data made by circular convolution)",
    "reflect": "the scene mirrors at the edge (half-sample symmetric)",
    "mirror": "the scene mirrors about the edge pixel (whole-sample symmetric)",
    "replicate": "the edge pixel repeats",
    "zero": "the scene is zero beyond the edge",
}

#: What ``method="auto"`` runs: ``(method, boundary)``; with ``boundary="auto"`` the boundary is
#: ``circular`` instead when the data look periodic (:func:`periodicity` below
#: :data:`PERIODIC_THRESHOLD`), as data made by circular convolution do.
AUTO: tuple[str, str] = ("pnp", "valid")

#: ``periodicity(data)`` below this: ``method="auto"`` treats the data as periodic (circular model).
PERIODIC_THRESHOLD = 3.0

#: ``lam = TV_ALPHA * sigma^2`` for ``method="tv"`` (images scaled to [0, 1]).
TV_ALPHA = 8.0

#: Iteration budgets (the discrepancy rule may stop CGLS and Richardson-Lucy earlier; the
#: conjugate-gradient solve of the valid Wiener/Tikhonov model stops at a relative
#: preconditioned residual of 1e-6).
N_ITER: dict[str, int] = {"tv": 200, "cgls": 200, "richardson_lucy": 200, "map": 100, "pnp": 8}

# The boundary models each method supports ("auto" is resolved first).
_SUPPORTED: dict[str, tuple[str, ...]] = {
    "wiener": ("valid", "circular"),
    "tikhonov": ("valid", "circular"),
    "tv": ("valid", "circular", "reflect", "mirror", "replicate", "zero"),
    "cgls": ("valid", "circular", "reflect", "mirror", "replicate", "zero"),
    "richardson_lucy": ("reflect", "circular", "mirror", "replicate", "zero"),
    "pnp": ("reflect", "valid", "circular", "mirror", "replicate", "zero"),
}
_AUTO_BOUNDARY = {"wiener": "valid", "tikhonov": "valid", "tv": "valid", "cgls": "valid",
                  "richardson_lucy": "reflect", "pnp": "valid"}
_MAP_TOL = 1e-6
_FLOAT_RANGE = 1.5


@dataclass
class DeblurResult:
    """What :func:`deblur_with_info` returns.

    Attributes
    ----------
    image : numpy.ndarray
        The restored image, ``float64``, in the layout of the input (see
        :func:`deblur` for the value range).
    info : dict
        ``method`` and ``boundary`` (resolved, never ``"auto"``), ``rule``
        (the parameter rule, in words), ``noise_sigma`` (per channel, in the
        units of the working image: integer images scaled to [0, 1]),
        ``noise_sigma_source`` (``"estimated"`` or ``"given"``), ``params``
        (the parameters chosen, per channel where they differ: ``lam``,
        ``n_iter``...), ``seconds`` (wall clock of the solve).
    """

    image: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ utilities
def _reflect_index(p: np.ndarray, n: int) -> np.ndarray:
    """Half-sample symmetric index into ``[0, n)`` for any integer position ``p``."""
    q = np.mod(p, 2 * n)
    return np.where(q < n, q, 2 * n - 1 - q)


def _extend_axis(y: torch.Tensor, total: int, before: int, axis: int) -> torch.Tensor:
    """Extend ``y`` along ``axis`` to ``total`` samples, smooth and periodic, frame at ``before``.

    The band between the last and the first sample (length ``total - n``,
    periodically) blends the antireflective continuations of both edges
    (``2 y[edge] - y[edge -+ s]``, which keep value and slope) with a
    ``cos^2`` weight, so the extended signal is continuous with a continuous
    slope, also across the period.
    """
    n = y.shape[axis]
    band = total - n
    if band <= 0:
        return y
    yl = y.movedim(axis, -1)
    t = np.arange(band)
    w = torch.as_tensor(np.cos(0.5 * np.pi * (t + 0.5) / band) ** 2, dtype=y.dtype, device=y.device)
    idx_r = torch.as_tensor(_reflect_index(n - 2 - t, n), device=y.device)
    idx_l = torch.as_tensor(_reflect_index(band - t, n), device=y.device)
    right = 2 * yl[..., -1:] - yl[..., idx_r]
    left = 2 * yl[..., :1] - yl[..., idx_l]
    out = torch.cat([yl, w * right + (1 - w) * left], dim=-1).roll(before, dims=-1)
    return out.movedim(-1, axis)


def _periodize(y: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Embed ``y (..., H, W)`` centred in a smooth periodic extension of shape ``grid``.

    Returns the extended image and the offset ``(top, left)`` of the frame.
    """
    H, W = y.shape[-2:]
    top, left = (grid[0] - H) // 2, (grid[1] - W) // 2
    z = _extend_axis(y, grid[1], left, -1)
    return _extend_axis(z, grid[0], top, -2), (top, left)


def _crop(x: torch.Tensor, off: tuple[int, int], shape: tuple[int, int]) -> torch.Tensor:
    return x[..., off[0]:off[0] + shape[0], off[1]:off[1] + shape[1]]


# ----------------------------------------------------------------- public helpers
def estimate_noise_sigma(image: Any) -> float | np.ndarray:
    """Standard deviation of white noise in an image, from the image alone.

    ``median(|d|) / 0.6745`` over the finest diagonal Haar wavelet
    coefficients ``d = (a - b - c + e) / 2`` of each 2 x 2 block (Donoho and
    Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika
    1994). White noise of variance ``sigma^2`` gives coefficients of
    variance ``sigma^2``, while a blurred picture has almost no energy at
    that scale, and the median ignores the few edges that have some. It
    needs no model of the PSF or of the border, and on blurred data it is
    more accurate than the GCV estimate through a circular model (see
    ``docs/benchmarks.md``).

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)``, at least 2 x 2; integer images are
        scaled to [0, 1] by their dtype's maximum first.

    Returns
    -------
    float or numpy.ndarray
        One value for a grey image, one per channel (shape ``(C,)``) for a
        colour one, in the units of the (scaled) image.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = 0.5 + 0.02 * np.random.default_rng(0).standard_normal((128, 128))
    >>> round(estimate_noise_sigma(noisy), 3)
    0.02
    """
    y, _ = _as_working(image, "image")
    s = mad_noise_sigma(y).numpy()
    return float(s[0]) if np.asarray(image).ndim == 2 else s


def periodicity(image: Any) -> float:
    """How periodic an image looks: mean squared jump across the wrap over the mean squared step inside.

    For the two axes, the squared differences between the last and the first
    row (column) are compared with the squared differences of neighbouring
    rows (columns); the larger ratio is returned. Data made by circular
    convolution give about 1; a photograph, whose opposite edges show
    different parts of the scene, gives much more.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.sin(2 * np.pi * np.arange(64) / 64)[None, :] * np.ones((64, 1))
    >>> periodicity(x) < 3, periodicity(np.linspace(0, 1, 64)[None, :] * np.ones((64, 1))) > 10
    (True, True)
    """
    y, _ = _as_working(image, "image")
    ratios = []
    for axis in (-1, -2):
        inner = torch.diff(y, dim=axis).pow(2).mean()
        wrap = (y.select(axis, 0) - y.select(axis, -1)).pow(2).mean()
        ratios.append(float(wrap / inner) if float(inner) > 0 else (0.0 if float(wrap) == 0 else math.inf))
    return max(ratios)


# ---------------------------------------------------------------- validation
def _as_working(image: Any, name: str) -> tuple[torch.Tensor, float]:
    """``(C, H, W)`` float64 tensor in working units and the factor back to the input's units."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{name} must be a real numeric array (integer or float), got dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"{name} must be (H, W) or (H, W, C), got shape {a.shape}")
    if a.ndim == 3 and not 1 <= a.shape[2] <= 4:
        raise ValueError(f"{name} of shape {a.shape}: expected (H, W, C) with 1 to 4 channels last")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2 x 2 pixels, got shape {a.shape}")
    scale = 1.0
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if info.min < 0 and a.min() < 0:
            raise ValueError(f"{name}: a signed integer image must not be negative (min {a.min()}); "
                             "pass floats instead")
        scale = float(info.max)
        f = a.astype(np.float64) / scale
    else:
        f = a.astype(np.float64)
        if not np.isfinite(f).all():
            bad = int((~np.isfinite(f)).sum())
            raise ValueError(f"{name} contains {bad} non-finite value(s) (nan or inf)")
    t = torch.from_numpy(np.ascontiguousarray(f if f.ndim == 2 else np.moveaxis(f, -1, 0)))
    return (t[None] if f.ndim == 2 else t), scale


def _check_choice(value: Any, choices: dict[str, str], name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _load_psf(psf: Any, shape: tuple[int, int]) -> torch.Tensor:
    if isinstance(psf, (str, os.PathLike)):
        try:
            k = _psf.from_spec(psf)
        except FileNotFoundError as e:
            raise ValueError(f"psf: {e}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"psf: {e}") from None
    else:
        try:
            k = _psf.check_psf(psf)
        except (TypeError, ValueError) as e:
            raise ValueError(f"psf: {e}") from None
    k = k.to(torch.float64)
    if k.shape[0] > shape[0] or k.shape[1] > shape[1]:
        raise ValueError(f"psf of shape {tuple(k.shape)} is larger than the image ({shape[0]} x {shape[1]} "
                         "pixels); use a smaller PSF or a larger image")
    return k


def _noise(noise_sigma: Any, y: torch.Tensor) -> tuple[torch.Tensor, str]:
    C = y.shape[0]
    if isinstance(noise_sigma, str):
        if noise_sigma != "auto":
            raise ValueError(f"noise_sigma must be 'auto' or a number > 0, got {noise_sigma!r}")
        s = mad_noise_sigma(y)
        # an exactly noise-free image (e.g. synthetic) still needs a positive sigma for the rules
        floor = 1e-6 * y.abs().flatten(1).amax(1).clamp_min(1e-12)
        return torch.maximum(s, floor), "estimated"
    values = np.asarray(noise_sigma, dtype=np.float64) if not isinstance(noise_sigma, torch.Tensor) \
        else noise_sigma.detach().cpu().numpy().astype(np.float64)
    if values.ndim > 1 or (values.ndim == 1 and values.size not in (1, C)):
        raise ValueError(f"noise_sigma must be a number or one per channel ({C}), got shape {values.shape}")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"noise_sigma must be finite and > 0, got {noise_sigma!r}")
    return torch.from_numpy(np.broadcast_to(values.reshape(-1), (C,)).copy()), "given"


# ------------------------------------------------------------------ engines
def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _valid_setup(k: torch.Tensor, shape: tuple[int, int], device: torch.device
                 ) -> tuple[Convolution, tuple[int, int]]:
    """The valid operator (unknown scene of ``shape + psf - 1``) and the frame's offset in the scene."""
    kh, kw = k.shape
    A = Convolution(k, (shape[0] + kh - 1, shape[1] + kw - 1), "valid").to(device)
    return A, (kh - 1 - kh // 2, kw - 1 - kw // 2)


def _map_grid(shape: tuple[int, int], k: torch.Tensor) -> tuple[int, int]:
    pad = max(k.shape) + 8  # PSF footprint plus a free band in which the periodic prior wraps
    return fast_fft_length(shape[0] + 2 * pad), fast_fft_length(shape[1] + 2 * pad)


def _map_valid(y: torch.Tensor, k: torch.Tensor, sigma: torch.Tensor, prior: str | torch.Tensor,
               n_iter: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Gaussian MAP with the valid model: ``min ||crop(k * x) - y||^2 + x^H R x`` on a larger grid.

    ``R`` is circulant on the grid: ``sigma^2 / P`` with the power-law ``P``
    fitted to the periodized data (``prior="power-law"``), or a constant
    ``lam`` (a tensor, one per channel). Solved by conjugate gradients
    preconditioned by the circular filter ``1 / (|h|^2 + R)``, warm-started
    with that filter applied to the periodized data.
    """
    C, H, W = y.shape
    G = _map_grid((H, W), k)
    yp, off = _periodize(y, G)
    A = Convolution(k, G).to(y.device)
    tf = A.transfer_function().to(y.device)
    if isinstance(prior, str):
        P = signal_power(A.svd(), yp, sigma, "power-law")[..., : G[1] // 2 + 1]
        reg = sigma.reshape(-1, 1, 1) ** 2 / P
        params: dict[str, Any] = {"lam_eff": (sigma**2 / P[..., 0, 0]).tolist()}
    else:
        reg = prior.reshape(-1, 1, 1).expand(C, G[0], G[1] // 2 + 1)
        params = {}
    den = tf.real**2 + tf.imag**2 + reg

    def normal(x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.rfft2(x)
        r = torch.zeros_like(x)
        _crop(r, off, (H, W))[...] = _crop(torch.fft.irfft2(X * tf, s=G), off, (H, W))
        return torch.fft.irfft2(torch.fft.rfft2(r) * tf.conj() + X * reg, s=G)

    def precond(r: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(r) / den, s=G)

    emb = torch.zeros_like(yp)
    _crop(emb, off, (H, W))[...] = y
    b = torch.fft.irfft2(torch.fft.rfft2(emb) * tf.conj(), s=G)
    x = torch.fft.irfft2(torch.fft.rfft2(yp) * tf.conj() / den, s=G)
    dims = (-2, -1)
    r = b - normal(x)
    z = precond(r)
    p = z
    rz = (r * z).sum(dims)
    rz0 = rz.clamp_min(torch.finfo(rz.dtype).tiny)
    it = 0
    for it in range(1, n_iter + 1):  # noqa: B007 - the count is reported
        q = normal(p)
        alpha = rz / (p * q).sum(dims).clamp_min(torch.finfo(rz.dtype).tiny)
        x = x + alpha[:, None, None] * p
        r = r - alpha[:, None, None] * q
        z = precond(r)
        rz_new = (r * z).sum(dims)
        if float((rz_new / rz0).max()) < _MAP_TOL**2:
            break
        p = z + (rz_new / rz.clamp_min(torch.finfo(rz.dtype).tiny))[:, None, None] * p
        rz = rz_new
    params["cg_iterations"] = it
    return x, {"grid": G, "offset": off, **params}


def _solve(y: torch.Tensor, k: torch.Tensor, sigma: torch.Tensor, method: str, boundary: str
           ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run one method on ``y (C, H, W)`` with per-channel ``sigma (C,)``; returns the frame and params."""
    C, H, W = y.shape
    shape = (H, W)
    dev = y.device
    if method == "wiener":
        if boundary == "circular":
            r = wiener(Convolution(k, shape).to(dev), y, sigma, "power-law", residual=False)
            return r.x, {}
        x, info = _map_valid(y, k, sigma, "power-law", N_ITER["map"])
        return _crop(x, info["offset"], shape), {"lam_eff": info["lam_eff"],
                                                 "cg_iterations": info["cg_iterations"]}
    if method == "tikhonov":
        if boundary == "circular":
            r = _quiet(tikhonov, Convolution(k, shape).to(dev), y, "discrepancy", noise_sigma=sigma,
                       residual=False)
            return r.x, {"lam": torch.as_tensor(r.info["lam"]).reshape(-1).tolist()}
        # lam by the discrepancy principle on the periodized data, then the valid model
        G = _map_grid(shape, k)
        yp, _ = _periodize(y, G)
        lam = _quiet(tikhonov, Convolution(k, G).to(dev), yp, "discrepancy", noise_sigma=sigma,
                     residual=False).info["lam"]
        lam = torch.as_tensor(lam, dtype=y.dtype, device=dev).reshape(-1).expand(C).contiguous()
        x, info = _map_valid(y, k, sigma, lam, N_ITER["map"])
        return _crop(x, info["offset"], shape), {"lam": lam.tolist(), "cg_iterations": info["cg_iterations"]}
    norm = float(k.abs().sum())  # ||A|| <= ||k||_1 for every boundary model
    if boundary == "valid":
        A, off = _valid_setup(k, shape, dev)
    else:
        A, off = Convolution(k, shape, boundary).to(dev), None
    if method == "tv":
        lam = TV_ALPHA * sigma**2
        kw: dict[str, Any] = {} if boundary == "circular" else {"norm": norm}
        r = _quiet(tv, A, y, lam, n_iter=N_ITER["tv"], **kw)
        params: dict[str, Any] = {"lam": lam.tolist(), "n_iter": r.n_iter}
    elif method == "pnp":
        from .nets import pretrained_denoiser

        r = _quiet(pnp, A, y, pretrained_denoiser(device=dev), sigma.clamp_min(1e-4), n_iter=N_ITER["pnp"])
        params = {"n_iter": r.n_iter, "exact_data_step": bool(r.info["exact_data_step"])}
    elif method == "cgls":
        r = _quiet(cgls, A, y, n_iter=N_ITER["cgls"], tol=None, noise_sigma=sigma, tau=1.0)
        params = {"n_iter": r.info["stopped_at"].reshape(-1).tolist()}
    else:  # richardson_lucy
        if bool((k < 0).any()):
            raise ValueError("psf: richardson_lucy needs a non-negative PSF; this one has negative entries")
        r = _quiet(richardson_lucy, A, y.clamp_min(0), n_iter=N_ITER["richardson_lucy"],
                   noise_sigma=sigma, tau=1.0)
        params = {"n_iter": r.info["stopped_at"].reshape(-1).tolist()}
    x = r.x if off is None else _crop(r.x, off, shape)
    return x, params


# ---------------------------------------------------------------------- API
def deblur_with_info(image: Any, psf: Any, noise_sigma: Any = "auto", method: str = "auto",
                     boundary: str = "auto", *, clip: bool | None = None,
                     device: str | torch.device = "cpu") -> DeblurResult:
    """Deblur ``image`` and report what was chosen: see :func:`deblur` for the parameters.

    Returns
    -------
    DeblurResult
        ``.image`` (the array :func:`deblur` returns) and ``.info`` (method,
        boundary, noise level, parameters, seconds).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).random((32, 32))
    >>> r = deblur_with_info(img, "disk:2", method="wiener", boundary="circular")
    >>> r.info["method"], r.info["boundary"], r.image.shape
    ('wiener', 'circular', (32, 32))
    """
    t0 = time.perf_counter()
    method = _check_choice(method, METHODS, "method")
    boundary = _check_choice(boundary, BOUNDARIES, "boundary")
    y, scale = _as_working(image, "image")
    a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    k = _load_psf(psf, tuple(y.shape[-2:]))
    if method == "auto":
        method, auto_boundary = AUTO
        if boundary == "auto":
            periodic = periodicity(y.numpy()[0] if y.shape[0] == 1 else np.moveaxis(y.numpy(), 0, -1))
            boundary = "circular" if periodic < PERIODIC_THRESHOLD else auto_boundary
    elif boundary == "auto":
        boundary = _AUTO_BOUNDARY[method]
    if boundary not in _SUPPORTED[method]:
        raise ValueError(f"boundary={boundary!r} is not available for method={method!r}; choose one of "
                         f"{', '.join(('auto',) + _SUPPORTED[method])}")
    dev = torch.device(device)
    sigma, source = _noise(noise_sigma, y)
    # TV's weight lam = 8 sigma^2 assumes [0, 1] data: float images far outside (peak |value| above
    # 1.5, room for noise) are solved scaled by their peak and scaled back
    peak = float(y.abs().max())
    unit = peak if (scale == 1.0 and peak > _FLOAT_RANGE) else 1.0
    x, params = _solve((y / unit).to(dev), k.to(dev), (sigma / unit).to(dev), method, boundary)
    x = (x * unit).cpu()
    if clip is None:
        clip = scale != 1.0
    if clip:
        x = x.clamp(0.0, 1.0)
    out = x[0].numpy() if a.ndim == 2 else np.moveaxis(x.numpy(), 0, -1)
    info = {
        "method": method, "boundary": boundary, "rule": METHODS[method] if method != "auto" else "",
        "noise_sigma": sigma.tolist() if a.ndim == 3 else float(sigma[0]), "noise_sigma_source": source,
        "params": params, "psf_shape": tuple(k.shape), "value_scale": scale,
        "seconds": time.perf_counter() - t0,
    }
    return DeblurResult(np.ascontiguousarray(out, dtype=np.float64), info)


def deblur(image: Any, psf: Any, noise_sigma: Any = "auto", method: str = "auto", boundary: str = "auto",
           *, clip: bool | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Deblur an image blurred by a known PSF, with every parameter chosen from the data.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` grey or ``(H, W, C)`` colour (channels last, 1 to 4;
        each channel is deblurred, as one batch), integer or float, finite.
    psf : str, os.PathLike or array_like
        The point-spread function: a spec for :func:`physinv.psf.from_spec`
        (``"gaussian:2"``, ``"motion:15,30"``, ``"disk:4"``, ``"airy:2"``),
        a ``.npy``/``.png``/``.tif`` file, or a 2-D array; normalised to unit
        sum, centre at ``(kh // 2, kw // 2)``. Not larger than the image.
    noise_sigma : "auto", float or sequence of float
        Standard deviation of the noise, in the units of the working image
        (integer images scaled to [0, 1]), one value or one per channel;
        ``"auto"`` estimates it per channel (:func:`estimate_noise_sigma`).
    method : str
        ``"auto"`` (default: :data:`AUTO`, the best automatic method
        measured, see ``docs/benchmarks.md``) or one of :data:`METHODS`, each
        with its automatic parameter rule.
    boundary : str
        The model of the scene beyond the frame, one of :data:`BOUNDARIES`.
        ``"auto"``: ``valid`` (no assumption), or ``reflect`` for
        Richardson-Lucy. ``"circular"`` is exact only for data made by
        circular convolution.
    clip : bool, optional
        Clip the result to [0, 1]. Default: for integer input only.
    device : str or torch.device
        Where to compute (``"cpu"``, ``"cuda"``...).

    Returns
    -------
    numpy.ndarray
        ``float64``, the layout of ``image``. Float input: in the units of
        the input (not clipped). Integer input: scaled to [0, 1] (the value
        divided by the dtype's maximum, clipped), so
        ``np.round(out * 255).astype(np.uint8)`` restores 8-bit pixels.

    Raises
    ------
    ValueError
        For a PSF larger than the image, non-finite pixels, an unknown
        ``method`` or ``boundary``, a ``boundary`` the method does not
        support, or a non-positive ``noise_sigma``; the message names the
        argument.

    Examples
    --------
    >>> import numpy as np
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> import torch
    >>> x = np.random.default_rng(0).random((48, 48))
    >>> y = Convolution(psf.gaussian(1.0), (48, 48))(torch.from_numpy(x)).numpy()
    >>> out = deblur(y, "gaussian:1.0", noise_sigma=1e-6, method="wiener", boundary="circular")
    >>> bool(np.abs(out - x).max() < 1e-2)
    True
    """
    return deblur_with_info(image, psf, noise_sigma, method, boundary, clip=clip, device=device).image


class _CallableModule(types.ModuleType):
    """Lets ``physinv.deblur(image, psf, ...)`` call :func:`deblur` directly."""

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return deblur(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
