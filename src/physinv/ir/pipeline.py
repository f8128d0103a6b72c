"""Thermal-camera pipeline: counts -> NUC -> radiance -> restoration -> temperature -> hot-object mask.

The restoration step works on the detector grid, in radiance, with any
physinv method, through one affine map of radiance to a ``[0, 1]``-like
range (:class:`RadianceScale`: ``u = (L - L(t_low)) / (L(t_high) - L(t_low))``
with the camera band's in-band radiance ``L`` at ``t_low = 270`` K and
``t_high = 340`` K by default). Every method sees and returns ``u``; the
result is mapped back to radiance, inverted to temperature (the band's
:func:`~physinv.ir.physics.planck_table`, or Newton's method on Planck's law
:func:`physinv.ir.physics.radiance_to_temperature`) and segmented.

Methods (:data:`METHODS`):

``none``
    No restoration (the measured radiance).
``wiener``
    :func:`physinv.solvers.wiener` with a power-law signal model and the
    noise level estimated from the data (:func:`physinv.solvers.mad_noise_sigma`).
``tikhonov-gcv``
    :func:`physinv.solvers.tikhonov` with the GCV choice of ``lam``.
``tv``
    :func:`physinv.solvers.tv` with ``lam = ALPHA_TV * sigma^2`` (the MAP
    scaling and constant of physinv's deconvolution benchmark), ``sigma`` from
    :func:`physinv.solvers.mad_noise_sigma`.
``pnp``
    :func:`physinv.solvers.pnp` (HQS) with the shipped
    :func:`physinv.nets.pretrained_denoiser`, ``sigma`` from :func:`physinv.solvers.mad_noise_sigma`.
``spectral``
    A trained :class:`physinv.nets.SpectralFilterNet` (``x = V diag(f) U^H y``
    with the operator's fixed Fourier factorization; see :func:`train_spectral`).
``hqs``
    A :class:`physinv.nets.UnrolledHQS` (given, trained or not).
``hybrid``
    The trained spectral filter, then one call of the shipped denoiser at the
    noise level that :func:`physinv.solvers.mad_noise_sigma` finds in the filtered frame.

Everything is torch and stays on the input's device; numpy appears only in
the file readers and writers of :mod:`physinv.cli.ir`.

Examples
--------
>>> import torch
>>> from physinv.operators import Convolution
>>> from physinv.psf import gaussian
>>> from physinv.ir.physics import band_radiance
>>> t = torch.full((1, 32, 40), 295.0, dtype=torch.float64)
>>> t[:, 10:20, 12:24] = 315.0
>>> A = Convolution(gaussian(1.0), (32, 40))
>>> pipe = Pipeline(reconstruct=Reconstruct("wiener", A))
>>> res = pipe(A(band_radiance(t, (8.0, 14.0))))
>>> res.temperature_k.shape, res.mask.dtype, sorted(res.timings)
(torch.Size([1, 32, 40]), torch.bool, ['reconstruct', 'segment', 'temperature', 'to_radiance'])
>>> m = evaluate(res, t, t > 305)
>>> bool(m["dice"][0] > 0.9)
True
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..solvers import mad_noise_sigma
from .segment import SegmentationHead, segment_otsu

__all__ = ["METHODS", "FAMILIES", "ALPHA_TV", "RadianceScale", "Reconstruct", "Pipeline", "PipelineResult",
           "evaluate", "train_spectral"]

#: Restoration methods and the family each belongs to.
METHODS: dict[str, str] = {"none": "classical", "wiener": "classical", "tikhonov-gcv": "classical",
                           "tv": "classical", "pnp": "physics", "spectral": "physics", "hqs": "physics",
                           "hybrid": "physics"}
FAMILIES = ("classical", "physics", "data-driven")
#: TV weight ``lam = ALPHA_TV * sigma^2`` (in the normalised units ``u``).
ALPHA_TV = 8.0
_TV_ITER = 200
_PNP_ITER = 8


@dataclass(frozen=True)
class RadianceScale:
    """The affine map ``u = (L - L(t_low_k)) / (L(t_high_k) - L(t_low_k))`` of radiance to about [0, 1].

    ``L`` is the in-band radiance (:func:`physinv.ir.physics.band_radiance`)
    over ``band_um``; a scene between ``t_low_k`` and ``t_high_k`` lies in
    ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> s = RadianceScale((8.0, 14.0), 270.0, 340.0)
    >>> from physinv.ir.physics import band_radiance
    >>> L = band_radiance(torch.tensor([270.0, 340.0], dtype=torch.float64), (8.0, 14.0))
    >>> [round(float(v), 6) for v in s.forward(L)]
    [0.0, 1.0]
    >>> torch.allclose(s.inverse(s.forward(L)), L)
    True
    """

    band_um: tuple[float, float] = (8.0, 14.0)
    t_low_k: float = 270.0
    t_high_k: float = 340.0

    def __post_init__(self) -> None:
        lo, hi = self.t_low_k, self.t_high_k
        for name, v in (("t_low_k", lo), ("t_high_k", hi)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite temperature > 0 K, got {v!r}")
        if not hi > lo:
            raise ValueError(f"t_high_k must be > t_low_k, got {hi} <= {lo}")
        band = tuple(float(b) for b in self.band_um)
        if len(band) != 2 or not 0 < band[0] < band[1]:
            raise ValueError(f"band_um must be (low, high) with 0 < low < high, got {self.band_um!r}")
        object.__setattr__(self, "band_um", band)

    def endpoints(self) -> tuple[float, float]:
        """``(L(t_low_k), L(t_high_k))`` in W m^-2 sr^-1."""
        from .physics import band_radiance

        v = band_radiance(torch.tensor([self.t_low_k, self.t_high_k], dtype=torch.float64), self.band_um)
        return float(v[0]), float(v[1])

    def forward(self, radiance: torch.Tensor) -> torch.Tensor:
        lo, hi = self.endpoints()
        return (radiance - lo) / (hi - lo)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        lo, hi = self.endpoints()
        return u * (hi - lo) + lo

    def sigma(self, radiance_sigma: float | torch.Tensor) -> float | torch.Tensor:
        """A radiance noise level in units of ``u``."""
        lo, hi = self.endpoints()
        return radiance_sigma / (hi - lo)


def _quiet(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    from ..solvers import IllConditionedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        return fn(*args, **kwargs)


@dataclass
class Reconstruct:
    """One restoration method on the detector grid (see the module docstring for :data:`METHODS`).

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    operator : LinearOperator, optional
        The detector-grid blur (e.g. ``camera.detector_operator()``); needed by
        every method but ``none``.
    scale : RadianceScale
        The affine map to the units the methods work in.
    noise_sigma : float, optional
        Noise standard deviation in radiance (W m^-2 sr^-1) if known (e.g.
        from the camera's NETD); default: estimated per frame by :func:`physinv.solvers.mad_noise_sigma`.
    net : nn.Module, optional
        The network of ``spectral``, ``hqs`` and ``hybrid`` (a trained
        :class:`~physinv.nets.SpectralFilterNet` or an
        :class:`~physinv.nets.UnrolledHQS`); ``hqs`` builds one around the
        shipped denoiser if none is given.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Convolution
    >>> from physinv.psf import gaussian
    >>> A = Convolution(gaussian(1.0), (16, 16))
    >>> r = Reconstruct("tikhonov-gcv", A)
    >>> r(torch.full((2, 16, 16), 55.0, dtype=torch.float64)).shape
    torch.Size([2, 16, 16])
    """

    method: str = "wiener"
    operator: Any = None
    scale: RadianceScale = field(default_factory=RadianceScale)
    noise_sigma: float | None = None
    net: nn.Module | None = None
    _denoiser: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        from ..operators import LinearOperator

        if self.method != "none" and not isinstance(self.operator, LinearOperator):
            raise ValueError(f"operator: method {self.method!r} needs the detector-grid LinearOperator, "
                             f"got {type(self.operator).__name__}")
        if not isinstance(self.scale, RadianceScale):
            raise TypeError(f"scale must be a RadianceScale, got {type(self.scale).__name__}")
        if self.noise_sigma is not None:
            v = self.noise_sigma
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"noise_sigma must be a finite number > 0 (radiance units), got {v!r}")
        if self.method in ("spectral", "hybrid") and self.net is None:
            raise ValueError(f"net: method {self.method!r} needs a trained SpectralFilterNet "
                             "(see physinv.ir.pipeline.train_spectral)")
        if self.net is not None and not isinstance(self.net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(self.net).__name__}")

    @property
    def family(self) -> str:
        return METHODS[self.method]

    def _sigma(self, u: torch.Tensor) -> torch.Tensor:
        if self.noise_sigma is not None:
            s = float(self.scale.sigma(self.noise_sigma))
            return torch.full(u.shape[:-2], s, dtype=u.dtype, device=u.device)
        return mad_noise_sigma(u).clamp_min(1e-6)

    def _shared_denoiser(self, device: torch.device, dtype: torch.dtype) -> Any:
        from ..nets import pretrained_denoiser

        d = self._denoiser
        w = None if d is None else next(d.parameters())
        if w is None or w.device != device or w.dtype != dtype:
            d = pretrained_denoiser(device=device, dtype=dtype)
            self._denoiser = d
        return d

    def restore(self, u: torch.Tensor) -> torch.Tensor:
        """Restore frames already in the units ``u`` (shape ``(..., H, W)``).

        Examples
        --------
        >>> import torch
        >>> Reconstruct("none").restore(torch.zeros(2, 4, 4)).shape
        torch.Size([2, 4, 4])
        """
        from .. import solvers

        m, A = self.method, self.operator
        if m == "none":
            return u.clone()
        A = A.to(u.device)
        if m == "wiener":
            return _quiet(solvers.wiener, A, u, self._sigma(u), "power-law", residual=False).x
        if m == "tikhonov-gcv":
            return _quiet(solvers.tikhonov, A, u, "gcv", residual=False).x
        if m == "tv":
            lam = ALPHA_TV * self._sigma(u) ** 2
            return _quiet(solvers.tv, A, u, lam.reshape(u.shape[:-2]), n_iter=_TV_ITER).x
        dt = torch.float32
        if m == "pnp":
            den = self._shared_denoiser(u.device, dt)
            r = _quiet(solvers.pnp, A, u.to(dt), den, self._sigma(u).to(dt), n_iter=_PNP_ITER)
            return r.x.to(u.dtype)
        if m == "hqs":
            net = self.net
            if net is None:
                from ..nets import UnrolledHQS

                sig = float(self._sigma(u).mean())
                net = UnrolledHQS(A, prior=self._shared_denoiser(torch.device("cpu"), dt), n_layers=_PNP_ITER,
                                  noise_sigma=sig).eval()
                self.net = net
            net = net.to(u.device)
            with torch.no_grad():
                return net(u.to(dt)).to(u.dtype)
        net = self.net.to(u.device)  # spectral, hybrid
        pdt = next(net.parameters()).dtype
        with torch.no_grad():
            if getattr(net, "parametric", False):
                x = net(u.to(pdt), noise_sigma=self._sigma(u).to(pdt)).to(u.dtype)
            else:
                x = net(u.to(pdt)).to(u.dtype)
            if m == "spectral":
                return x
            den = self._shared_denoiser(u.device, dt)
            return den(x.to(dt), mad_noise_sigma(x).clamp_min(1e-6).to(dt)).to(u.dtype)

    def __call__(self, radiance: torch.Tensor) -> torch.Tensor:
        """Restore radiance frames ``(..., H, W)`` (W m^-2 sr^-1): map to ``u``, restore, map back."""
        if not isinstance(radiance, torch.Tensor) or not radiance.is_floating_point():
            raise TypeError(f"radiance must be a floating torch.Tensor, got "
                            f"{getattr(radiance, 'dtype', type(radiance).__name__)}")
        if not bool(torch.isfinite(radiance).all()):
            raise ValueError("radiance must be finite (found NaN or infinity)")
        return self.scale.inverse(self.restore(self.scale.forward(radiance)))


@dataclass
class PipelineResult:
    """What :class:`Pipeline` returns for a stack of frames.

    Attributes
    ----------
    radiance : torch.Tensor
        Restored radiance ``(..., H, W)``, W m^-2 sr^-1.
    temperature_k : torch.Tensor
        Temperature (kelvin) of the restored radiance.
    mask : torch.Tensor or None
        Boolean hot-object mask (``None`` without a segmentation rule).
    timings : dict
        Seconds per stage (``to_radiance``, ``reconstruct``, ``temperature``, ``segment``).
    clamped : int
        Pixels whose restored radiance fell below the radiance of ``floor_k``
        (ringing) and were raised to it before the temperature inversion.
    """

    radiance: torch.Tensor
    temperature_k: torch.Tensor
    mask: torch.Tensor | None
    timings: dict[str, float]
    clamped: int = 0


def _sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


@dataclass
class Pipeline:
    """counts or radiance -> restored radiance -> temperature -> mask.

    Parameters
    ----------
    reconstruct : Reconstruct or callable
        Radiance ``(..., H, W)`` -> restored radiance (a :class:`Reconstruct`
        or any callable); default ``Reconstruct("none")``.
    segment : "otsu", SegmentationHead, callable or None
        Temperature -> boolean mask.
    to_radiance : callable, optional
        Counts (integer tensor) -> radiance, for example ``lambda c:
        counts_to_radiance(c, camera, gain, offset)`` with a NUC's maps; an
        integer input without it is an error. Floating inputs are radiance.
    band_um : (float, float), optional
        Band of the temperature inversion (default: the band of
        ``reconstruct.scale``, else 8-14 um).
    floor_k : float
        Restored radiance is raised to at least the radiance of ``floor_k``
        kelvin before inversion (counted in :attr:`PipelineResult.clamped`).
    exact : bool
        Invert with Newton's method on Planck's law
        (:func:`~physinv.ir.physics.radiance_to_temperature`) instead of the
        band's interpolation table (:func:`~physinv.ir.physics.planck_table`,
        within 1e-7 K of it and far cheaper on whole frames).

    Examples
    --------
    >>> import torch
    >>> from physinv.ir.physics import band_radiance
    >>> t = torch.full((16, 16), 300.0, dtype=torch.float64)
    >>> res = Pipeline(Reconstruct("none"))(band_radiance(t, (8.0, 14.0)))
    >>> float((res.temperature_k - t).abs().max()) < 1e-6
    True
    """

    reconstruct: Any = field(default_factory=lambda: Reconstruct("none"))
    segment: Any = "otsu"
    to_radiance: Callable[[torch.Tensor], torch.Tensor] | None = None
    band_um: tuple[float, float] | None = None
    floor_k: float = 150.0
    exact: bool = False

    def __post_init__(self) -> None:
        if not callable(self.reconstruct):
            raise TypeError(f"reconstruct must be callable (radiance -> radiance), got "
                            f"{type(self.reconstruct).__name__}")
        if not (self.segment is None or self.segment == "otsu" or callable(self.segment)):
            raise ValueError(f"segment must be 'otsu', a SegmentationHead, a callable or None, got "
                             f"{self.segment!r}")
        if self.to_radiance is not None and not callable(self.to_radiance):
            raise TypeError("to_radiance must be callable (counts -> radiance)")
        if self.band_um is None:
            scale = getattr(self.reconstruct, "scale", None)
            self.band_um = scale.band_um if isinstance(scale, RadianceScale) else (8.0, 14.0)
        v = self.floor_k
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"floor_k must be a finite temperature > 0 K, got {v!r}")

    def __call__(self, data: torch.Tensor) -> PipelineResult:
        """Run the pipeline on counts (integer tensor) or radiance (floating tensor), ``(..., H, W)``."""
        from .physics import band_radiance, planck_table, radiance_to_temperature

        if not isinstance(data, torch.Tensor):
            raise TypeError(f"data must be a torch.Tensor of counts or radiance, got {type(data).__name__}")
        if data.dim() < 2:
            raise ValueError(f"data must have shape (..., H, W), got {tuple(data.shape)}")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if data.is_floating_point():
            radiance = data
        elif data.is_complex() or data.dtype == torch.bool:
            raise TypeError(f"data must be integer counts or floating radiance, got {data.dtype}")
        else:
            if self.to_radiance is None:
                raise ValueError("to_radiance: integer counts need a counts -> radiance map "
                                 "(Pipeline(to_radiance=...))")
            radiance = self.to_radiance(data)
        if not radiance.is_floating_point():
            raise TypeError(f"to_radiance must return a floating tensor, got {radiance.dtype}")
        _sync(radiance)
        timings["to_radiance"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = self.reconstruct(radiance)
        if not isinstance(rec, torch.Tensor) or rec.shape != radiance.shape:
            raise ValueError(f"reconstruct must return a tensor of shape {tuple(radiance.shape)}, got "
                             f"{tuple(getattr(rec, 'shape', ()))}")
        _sync(rec)
        timings["reconstruct"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        floor = band_radiance(torch.tensor(float(self.floor_k), dtype=rec.dtype, device=rec.device),
                              self.band_um)
        low = rec < floor
        clamped = int(low.sum())
        raised = torch.where(low, floor, rec)
        temperature = (radiance_to_temperature(raised, self.band_um) if self.exact
                       else planck_table(self.band_um).temperature(raised))
        _sync(temperature)
        timings["temperature"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mask = None
        if self.segment == "otsu":
            mask = segment_otsu(temperature)
        elif isinstance(self.segment, SegmentationHead):
            head = self.segment.to(temperature.device)
            mask = head.predict(temperature)
        elif self.segment is not None:
            mask = self.segment(temperature)
            if (not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool
                    or mask.shape != temperature.shape):
                raise ValueError("segment must return a boolean tensor of the temperature's shape")
        if mask is not None:
            _sync(mask)
        timings["segment"] = time.perf_counter() - t0
        return PipelineResult(radiance=rec, temperature_k=temperature, mask=mask, timings=timings,
                              clamped=clamped)


def evaluate(result: PipelineResult, temperature_k: torch.Tensor | None = None,
             mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-frame metrics of a :class:`PipelineResult` against the truth that exists.

    ``temperature_rmse_k`` (kelvin) and ``psnr`` (dB, on temperature, with the
    true frame's temperature range ``max - min`` as the peak) need
    ``temperature_k``; ``dice`` and ``iou`` need ``mask`` and a result mask.

    Examples
    --------
    >>> import torch
    >>> t = torch.full((1, 8, 8), 290.0, dtype=torch.float64); t[0, :4] = 300.0
    >>> r = PipelineResult(t.clone() * 0, t + 0.1, t > 295, {})
    >>> m = evaluate(r, t, t > 295)
    >>> [round(float(m[k][0]), 3) for k in ("temperature_rmse_k", "psnr", "dice", "iou")]
    [0.1, 40.0, 1.0, 1.0]
    """
    from ..metrics import dice, iou, mse

    out: dict[str, torch.Tensor] = {}
    est = result.temperature_k
    if temperature_k is not None:
        ref = temperature_k.to(device=est.device, dtype=est.dtype)
        if ref.shape != est.shape:
            raise ValueError(f"temperature_k must have shape {tuple(est.shape)}, got {tuple(ref.shape)}")
        err = mse(est, ref)
        out["temperature_rmse_k"] = err.sqrt()
        flat = ref.flatten(-2)
        rng = (flat.max(-1).values - flat.min(-1).values).clamp_min(1e-12)
        out["psnr"] = 10 * torch.log10(rng**2 / err.clamp_min(1e-300))
    if mask is not None and result.mask is not None:
        ref_m = mask.to(result.mask.device)
        if ref_m.shape != result.mask.shape:
            raise ValueError(f"mask must have shape {tuple(result.mask.shape)}, got {tuple(ref_m.shape)}")
        out["dice"] = dice(result.mask, ref_m)
        out["iou"] = iou(result.mask, ref_m)
    return out


def train_spectral(operator: Any, measured: torch.Tensor, clean: torch.Tensor, *,
                   scale: RadianceScale | None = None, steps: int = 300, batch_size: int = 4,
                   lr: float = 1e-2, lam: float | str = 1e-2, parametric: bool = False, seed: int = 0,
                   progress: bool = False) -> nn.Module:
    """Train a :class:`physinv.nets.SpectralFilterNet` on measured/clean radiance pairs.

    The network is ``x = V diag(f) U^H y`` with ``U``, ``V`` the fixed
    Fourier factorization of ``operator`` and one trainable filter value per
    half-spectrum index, initialised as the Tikhonov filter of ``lam``; it is trained
    with :class:`physinv.train.Trainer` (MSE, Adam, about ``steps`` steps) in
    the units of ``scale``.

    Parameters
    ----------
    operator : LinearOperator
        Detector-grid blur with a Fourier factorization (circular boundary).
    measured, clean : torch.Tensor
        ``(N, H, W)`` measured (blurred, noisy) and clean radiance.
    scale : RadianceScale, optional
        Units of the training (default :class:`RadianceScale()`).
    lam : float or "gcv"
        Tikhonov weight of the initial filter (in the units of ``scale``);
        ``"gcv"``: the median over the training frames of the GCV choice
        (:func:`physinv.solvers.choose_lambda`).
    parametric : bool
        Learn the filter as ``s / (s^2 + sigma^2 exp(h))`` with a small MLP
        ``h`` of ``(s, sigma, |omega|)`` (:class:`~physinv.nets.spectral.ParametricFilter`,
        about a thousand weights) instead of one value per frequency; the
        noise level ``sigma`` is then estimated per frame by :func:`physinv.solvers.mad_noise_sigma`.
    steps, batch_size, lr, seed, progress
        Budget, batch size (``min(batch_size, N)``), Adam learning rate, seed,
        progress bars.

    Returns
    -------
    SpectralFilterNet
        In evaluation mode.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Convolution
    >>> from physinv.psf import gaussian
    >>> A = Convolution(gaussian(1.0), (16, 16))
    >>> x = 50 + 10 * torch.rand(4, 16, 16, dtype=torch.float64)
    >>> net = train_spectral(A, A(x), x, steps=3)
    >>> net(torch.zeros(16, 16)).shape
    torch.Size([16, 16])
    """
    from torch.utils.data import TensorDataset

    from ..nets import SpectralFilterNet
    from ..train import Trainer
    from ..train.rng import seed_everything

    fn = "train_spectral"
    for name, t in (("measured", measured), ("clean", clean)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3 or not t.is_floating_point():
            raise ValueError(f"{fn}: {name} must be a floating tensor of shape (N, H, W), got "
                             f"{tuple(getattr(t, 'shape', ()))}")
    if measured.shape != clean.shape:
        raise ValueError(f"{fn}: measured {tuple(measured.shape)} and clean {tuple(clean.shape)} "
                         "differ in shape")
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    scale = scale or RadianceScale()
    dev = measured.device
    y = scale.forward(measured).float()
    x = scale.forward(clean.to(dev)).float()
    A = operator.to(dev)
    if isinstance(lam, str):
        from ..solvers import choose_lambda

        if lam != "gcv":
            raise ValueError(f"{fn}: lam must be a number >= 0 or 'gcv', got {lam!r}")
        lam = float(torch.as_tensor(choose_lambda(A, scale.forward(measured).to(torch.float64), "gcv"))
                    .median())
    seed_everything(int(seed))
    net = SpectralFilterNet(A, lam=lam, parametric=bool(parametric)).to(dev)
    bs = min(int(batch_size), y.shape[0])
    epochs = max(1, math.ceil(int(steps) / math.ceil(y.shape[0] / bs)))
    if parametric:
        data = TensorDataset(y, x, mad_noise_sigma(y).clamp_min(1e-6))
        fwd = _with_sigma
    else:
        data, fwd = TensorDataset(y, x), None
    Trainer(net, train_data=data, batch_size=bs, epochs=epochs, seed=int(seed), lr=lr, progress=progress,
            device=dev, forward=fwd).fit()
    return net.eval()


def _with_sigma(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return model(batch[0], noise_sigma=batch[2]), batch[1]
