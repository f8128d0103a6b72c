"""A thermal camera simulator: optics, detector sampling, fixed-pattern and temporal noise, 14-bit counts.

The forward model, per frame ``n``::

    L_scene = L(T_scene)                         in-band radiance on the fine scene grid
    y       = D (k * L_scene)                    optics blur k on the scene grid, area sampling D
    counts  = round(g R (y + e_n) + o_n)          clipped to [0, 2^bits - 1]

with ``k`` the diffraction-limited Airy pattern (or its Gaussian
approximation) of the f-number at the band's centre wavelength, optionally
convolved with a defocus disk and a heat-diffusion Gaussian; ``D`` the
block mean over ``factor x factor`` scene pixels (:class:`Decimation`); ``R``
the responsivity (counts per W m^-2 sr^-1); ``g`` the per-pixel gain
non-uniformity; ``o_n`` the offset map (global offset, per-column, per-row and
per-pixel fixed-pattern offsets, plus a drift linear in the sensor
temperature); and ``e_n`` temporal noise, white, of standard deviation
``NETD * dL/dT`` at the frame's mean temperature, so that the noise referred
back to temperature has standard deviation NETD there.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import psf as _psf
from .._random import mix_seed
from .._validate import as_shape, check_int, check_real
from ..operators import BOUNDARIES, Convolution, Decimation, LinearOperator
from .physics import band_radiance_derivative, check_band, planck_table
from .scene import Scene, make_scene

__all__ = ["Camera", "IRFrames", "simulate", "drifted_offset", "heat_diffusion_sigma", "MOTIONS",
           "GAUSSIAN_AIRY_RATIO"]

#: Scene motions :func:`simulate` knows.
MOTIONS = ("independent", "static", "pan")
#: sigma of the Gaussian that best fits the Airy core, over lambda N (the first zero is at 1.22 lambda N).
GAUSSIAN_AIRY_RATIO = 0.42


def heat_diffusion_sigma(diffusivity_m2_s: float, time_s: float, pixel_m: float) -> float:
    """Gaussian width, in pixels, of heat diffusing for ``time_s``: ``sqrt(2 D t) / pixel``.

    The heat equation ``dT/dt = D laplacian(T)`` convolves the initial
    temperature with a Gaussian of standard deviation ``sqrt(2 D t)``.

    Examples
    --------
    >>> round(heat_diffusion_sigma(1.4e-7, 2.0, 1e-3), 4)  # skin-like diffusivity, 2 s, 1 mm pixels
    0.7483
    """
    d = check_real(diffusivity_m2_s, "diffusivity_m2_s")
    t = check_real(time_s, "time_s")
    if d < 0 or t < 0:
        raise ValueError(f"diffusivity_m2_s and time_s must be >= 0, got {d}, {t}")
    return math.sqrt(2.0 * d * t) / check_real(pixel_m, "pixel_m", positive=True)


def drifted_offset(offset: torch.Tensor, drift: torch.Tensor, sensor_temperature_k: Any,
                   reference_k: float) -> torch.Tensor:
    """Offset maps at sensor temperatures ``T_s``: ``offset + drift * (T_s - reference_k)``.

    The offset-drift model: each pixel's offset moves linearly with the
    focal-plane temperature, at its own rate ``drift`` (counts per kelvin).

    Parameters
    ----------
    offset, drift : torch.Tensor
        ``(h, w)`` offset at ``reference_k`` (counts) and drift rate (counts / K).
    sensor_temperature_k : float or torch.Tensor
        Scalar or ``(N,)`` sensor temperatures.
    reference_k : float
        Sensor temperature at which ``offset`` holds.

    Returns
    -------
    torch.Tensor
        ``(h, w)`` for a scalar, ``(N, h, w)`` for ``N`` temperatures.

    Examples
    --------
    >>> o = drifted_offset(torch.zeros(2, 2), torch.full((2, 2), 3.0), torch.tensor([300.0, 302.0]), 300.0)
    >>> o[:, 0, 0]
    tensor([0., 6.])
    """
    ts = torch.as_tensor(sensor_temperature_k, dtype=offset.dtype, device=offset.device)
    if ts.dim() > 1:
        raise ValueError(f"sensor_temperature_k must be a scalar or (N,), got shape {tuple(ts.shape)}")
    if offset.shape != drift.shape:
        raise ValueError(f"offset {tuple(offset.shape)} and drift {tuple(drift.shape)} shapes differ")
    dt = ts - float(reference_k)
    return offset + drift * (dt[..., None, None] if ts.dim() else dt)


def _nonneg(value: Any, name: str) -> float:
    value = check_real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Camera:
    """A thermal camera core: geometry, optics, band, noise, fixed pattern and A/D conversion.

    Defaults describe a 640 x 512 uncooled microbolometer core of the FLIR
    Boson class (12 um pitch, f/1.0, NETD 40 mK, 7.5-13.5 um, 14-bit);
    :meth:`tau2` gives the Tau 2 class (17 um, 50 mK). Responsivity, offsets
    and fixed-pattern magnitudes are physinv's choices (no published values
    were found), set so that 250-400 K scenes stay inside the 14-bit range.

    Parameters
    ----------
    detector_shape : (int, int)
        Detector ``(rows, cols)``.
    factor : int
        Scene grid = ``factor x`` the detector grid per axis (>= 1).
    band_um : (float, float)
        Spectral band, micrometres.
    f_number : float
        Focal ratio of the lens.
    pixel_pitch_um : float
        Detector pixel pitch, micrometres.
    wavelength_um : float, optional
        Wavelength of the diffraction PSF (default: the band centre).
    netd_k : float
        Noise-equivalent temperature difference, kelvin.
    bits : int
        A/D resolution; counts lie in ``[0, 2^bits - 1]`` (stored in 16 bits).
    responsivity : float
        Counts per W m^-2 sr^-1 (at unit gain).
    offset_counts : float
        Global offset, counts.
    col_offset_std, row_offset_std, pixel_offset_std : float
        Fixed-pattern offset spreads per column, per row, per pixel (counts).
    gain_std : float
        Relative per-pixel gain spread.
    drift_counts_per_k, drift_std_counts_per_k : float
        Mean and per-pixel spread of the offset drift rate with sensor temperature (counts / K).
    sensor_reference_k : float
        Sensor temperature at which the offset map holds (kelvin).
    psf : {"airy", "gaussian"}
        Diffraction model: the Airy pattern (first zero at ``1.22 lambda N``)
        or a Gaussian of ``sigma = 0.42 lambda N``.
    defocus_px : float
        Radius of the defocus disk in detector pixels (0: in focus).
    heat_diffusion_sigma_px : float
        Gaussian blur of heat diffusion in detector pixels (0: none; see :func:`heat_diffusion_sigma`).
    unit_seed : int
        Seed of this camera unit's fixed-pattern maps (the same unit always has the same pattern).
    name : str
        A label.

    Examples
    --------
    >>> cam = Camera.boson(detector_shape=(32, 40))
    >>> cam.scene_shape
    (64, 80)
    >>> round(cam.airy_radius_px, 3)  # first Airy zero, in scene pixels (6 um)
    2.135
    >>> Camera.tau2().pixel_pitch_um, Camera.tau2().netd_k
    (17.0, 0.05)
    """

    detector_shape: tuple[int, int] = (512, 640)
    factor: int = 2
    band_um: tuple[float, float] = (7.5, 13.5)
    f_number: float = 1.0
    pixel_pitch_um: float = 12.0
    wavelength_um: float | None = None
    netd_k: float = 0.04
    bits: int = 14
    responsivity: float = 100.0
    offset_counts: float = 1000.0
    col_offset_std: float = 8.0
    row_offset_std: float = 4.0
    pixel_offset_std: float = 6.0
    gain_std: float = 0.02
    drift_counts_per_k: float = 20.0
    drift_std_counts_per_k: float = 4.0
    sensor_reference_k: float = 300.0
    psf: str = "airy"
    defocus_px: float = 0.0
    heat_diffusion_sigma_px: float = 0.0
    unit_seed: int = 0
    name: str = "boson"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        shape = as_shape(self.detector_shape, "detector_shape")
        if len(shape) != 2 or min(shape) < 2:
            raise ValueError(f"detector_shape must be (rows, cols) with both >= 2, got {shape}")
        set_ = object.__setattr__
        set_(self, "detector_shape", (int(shape[0]), int(shape[1])))
        set_(self, "factor", check_int(self.factor, "factor", minimum=1))
        set_(self, "band_um", check_band(self.band_um))
        for name in ("f_number", "pixel_pitch_um", "netd_k", "responsivity", "sensor_reference_k"):
            set_(self, name, check_real(getattr(self, name), name, positive=True))
        if self.wavelength_um is not None:
            set_(self, "wavelength_um", check_real(self.wavelength_um, "wavelength_um", positive=True))
        bits = check_int(self.bits, "bits", minimum=2)
        if bits > 16:
            raise ValueError(f"bits must be <= 16 (counts are stored in 16 bits), got {bits}")
        set_(self, "bits", bits)
        set_(self, "offset_counts", check_real(self.offset_counts, "offset_counts"))
        for name in ("col_offset_std", "row_offset_std", "pixel_offset_std", "gain_std",
                     "drift_std_counts_per_k", "defocus_px", "heat_diffusion_sigma_px"):
            set_(self, name, _nonneg(getattr(self, name), name))
        set_(self, "drift_counts_per_k", check_real(self.drift_counts_per_k, "drift_counts_per_k"))
        if self.gain_std >= 0.3:
            raise ValueError(f"gain_std must be < 0.3 (gains stay positive), got {self.gain_std}")
        if self.psf not in ("airy", "gaussian"):
            raise ValueError(f"psf must be 'airy' or 'gaussian', got {self.psf!r}")
        set_(self, "unit_seed", check_int(self.unit_seed, "unit_seed", minimum=0))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    # ------------------------------------------------------------ presets
    @classmethod
    def boson(cls, **overrides: Any) -> Camera:
        """FLIR Boson class: 640 x 512, 12 um, f/1.0, NETD 40 mK, 7.5-13.5 um, 14-bit.

        Examples
        --------
        >>> Camera.boson(netd_k=0.03).netd_k
        0.03
        """
        kw: dict[str, Any] = {"pixel_pitch_um": 12.0, "netd_k": 0.04, "name": "boson"}
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def tau2(cls, **overrides: Any) -> Camera:
        """FLIR Tau 2 class: 640 x 512, 17 um, f/1.0 (13 mm lens), NETD 50 mK, 7.5-13.5 um, 14-bit.

        Examples
        --------
        >>> Camera.tau2().detector_shape
        (512, 640)
        """
        kw: dict[str, Any] = {"pixel_pitch_um": 17.0, "netd_k": 0.05, "name": "tau2"}
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes: Any) -> Camera:
        """A copy with some fields changed.

        Examples
        --------
        >>> Camera().replace(factor=1).scene_shape
        (512, 640)
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (:meth:`from_dict` rebuilds the camera).

        Examples
        --------
        >>> Camera.from_dict(Camera.tau2().to_dict()) == Camera.tau2()
        True
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        out["detector_shape"] = list(self.detector_shape)
        out["band_um"] = list(self.band_um)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        """Rebuild from :meth:`to_dict` output (unknown keys are refused)."""
        if not isinstance(d, dict):
            raise TypeError(f"camera description must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"camera description has unknown fields {unknown}")
        kw = dict(d)
        for key in ("detector_shape", "band_um"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    # ------------------------------------------------------------ geometry
    @property
    def scene_shape(self) -> tuple[int, int]:
        """Shape of the fine scene grid, ``factor x detector_shape``."""
        return self.detector_shape[0] * self.factor, self.detector_shape[1] * self.factor

    @property
    def max_count(self) -> int:
        """Largest count, ``2^bits - 1``."""
        return 2**self.bits - 1

    @property
    def psf_wavelength_um(self) -> float:
        """Wavelength of the diffraction PSF (``wavelength_um`` or the band centre)."""
        return self.wavelength_um if self.wavelength_um is not None else 0.5 * sum(self.band_um)

    @property
    def scene_pixel_um(self) -> float:
        """Scene-grid pixel size in the focal plane, ``pixel_pitch_um / factor``."""
        return self.pixel_pitch_um / self.factor

    @property
    def airy_radius_px(self) -> float:
        """Radius of the first Airy zero, ``1.22 lambda N``, in scene-grid pixels."""
        return 1.22 * self.psf_wavelength_um * self.f_number / self.scene_pixel_um

    def optics_psf(self) -> torch.Tensor:
        """The blur on the scene grid: diffraction, then defocus and heat diffusion if set (unit sum).

        Examples
        --------
        >>> k = Camera(detector_shape=(16, 16)).optics_psf()
        >>> k.shape, round(float(k.sum()), 12)
        (torch.Size([15, 15]), 1.0)
        """
        if "optics" in self._cache:
            return self._cache["optics"]
        from scipy.signal import fftconvolve

        if self.psf == "airy":
            k = _psf.airy(self.airy_radius_px).numpy()
        else:
            sigma = GAUSSIAN_AIRY_RATIO * self.psf_wavelength_um * self.f_number / self.scene_pixel_um
            k = _psf.gaussian(sigma).numpy()
        if self.defocus_px > 0:
            k = fftconvolve(k, _psf.disk(self.defocus_px * self.factor).numpy())
        if self.heat_diffusion_sigma_px > 0:
            k = fftconvolve(k, _psf.gaussian(self.heat_diffusion_sigma_px * self.factor).numpy())
        k = np.clip(k, 0.0, None)
        out = _psf.check_psf(torch.from_numpy(np.ascontiguousarray(k)), image_shape=self.scene_shape)
        self._cache["optics"] = out
        return out

    def detector_psf(self) -> torch.Tensor:
        """The effective blur on the detector grid, ``D B U`` for block-constant scenes (unit sum).

        For a scene constant on each detector pixel's footprint (``U``
        replicates a detector image onto the scene grid), blurring on the
        scene grid and area sampling is exactly a convolution on the detector
        grid with this kernel; it is the model the pipeline inverts there.

        Examples
        --------
        >>> k = Camera(detector_shape=(16, 16)).detector_psf()
        >>> k.shape[0] % 2, round(float(k.sum()), 12)
        (1, 1.0)
        """
        if "detector" in self._cache:
            return self._cache["detector"]
        k = self.optics_psf()
        f = self.factor
        half = int(math.ceil((max(k.shape) // 2 + f) / f))
        s = 2 * half + 1  # s * f > the scene kernel, so nothing wraps around the small circular grid
        grid = (s * f, s * f)
        B = Convolution(k, grid)
        D = Decimation(grid, f)
        delta = torch.zeros(s, s, dtype=torch.float64)
        delta[half, half] = 1.0
        with torch.no_grad():
            kd = D(B(D.adjoint(delta) * (f * f)))
        kd = kd.clamp_min(0.0)
        out = _psf.check_psf(kd)
        if max(out.shape) > min(self.detector_shape):
            raise ValueError(f"the detector PSF ({tuple(out.shape)}) is larger than the detector "
                             f"{self.detector_shape}; use a larger detector or less blur")
        self._cache["detector"] = out
        return out

    def operator(self, boundary: str = "circular") -> LinearOperator:
        """Scene-grid radiance -> detector-grid radiance: ``Decimation @ Convolution(optics_psf)``.

        Examples
        --------
        >>> cam = Camera(detector_shape=(16, 20))
        >>> A = cam.operator()
        >>> A.in_shape, A.out_shape
        ((32, 40), (16, 20))
        """
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {sorted(BOUNDARIES)}, got {boundary!r}")
        return Decimation(self.scene_shape, self.factor) @ Convolution(self.optics_psf(), self.scene_shape,
                                                                       boundary)

    def detector_operator(self, boundary: str = "circular") -> Convolution:
        """The blur model on the detector grid, ``Convolution(detector_psf, detector_shape)``.

        Examples
        --------
        >>> Camera(detector_shape=(16, 20)).detector_operator().in_shape
        (16, 20)
        """
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {sorted(BOUNDARIES)}, got {boundary!r}")
        return Convolution(self.detector_psf(), self.detector_shape, boundary)

    # ---------------------------------------------------------- fixed pattern
    def fpn_maps(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This unit's true ``(gain, offset, drift)`` maps, each ``(rows, cols)`` float64.

        ``gain = 1 + gain_std z`` per pixel; ``offset`` = ``offset_counts`` +
        column, row and pixel terms; ``drift`` (counts / K) =
        ``drift_counts_per_k + drift_std_counts_per_k z`` per pixel. Drawn from
        ``unit_seed`` only, so every simulation with this camera sees the same
        pattern (a calibration carries over).

        Examples
        --------
        >>> g, o, d = Camera(detector_shape=(8, 10)).fpn_maps()
        >>> g.shape, bool(torch.equal(g, Camera(detector_shape=(8, 10)).fpn_maps()[0]))
        (torch.Size([8, 10]), True)
        """
        h, w = self.detector_shape
        rng = np.random.default_rng(mix_seed(self.unit_seed, 0xF9A))
        gain = 1.0 + self.gain_std * rng.standard_normal((h, w))
        offset = (self.offset_counts + self.col_offset_std * rng.standard_normal((1, w))
                  + self.row_offset_std * rng.standard_normal((h, 1))
                  + self.pixel_offset_std * rng.standard_normal((h, w)))
        drift = self.drift_counts_per_k + self.drift_std_counts_per_k * rng.standard_normal((h, w))
        return torch.from_numpy(gain), torch.from_numpy(offset), torch.from_numpy(drift)

    def noise_std_radiance(self, temperature_k: float) -> float:
        """Temporal noise std in radiance, ``NETD * dL/dT(temperature_k)`` (W m^-2 sr^-1).

        Examples
        --------
        >>> round(Camera.tau2().noise_std_radiance(300.0) * math.pi, 3)  # FLIR's < 0.14 W/m^2
        0.139
        """
        return self.netd_k * float(band_radiance_derivative(float(temperature_k), self.band_um))


@dataclass
class IRFrames:
    """A simulated (or loaded) sequence of thermal frames with its ground truth.

    Attributes
    ----------
    counts : torch.Tensor
        ``(N, h, w)`` int32 raw counts in ``[0, 2^bits - 1]``.
    temperature_k : torch.Tensor
        ``(N, h, w)`` float64 ideal detector-grid temperature: scene radiance
        area-averaged to the detector grid (no blur, no noise), inverted.
    mask : torch.Tensor
        ``(N, h, w)`` bool: detector pixels more than half covered by objects.
    radiance : torch.Tensor
        ``(N, h, w)`` float64 clean detector-grid radiance (no blur), W m^-2 sr^-1.
    camera : Camera
        The camera that took the frames.
    gain, offset : torch.Tensor
        ``(h, w)`` true gain and offset (at ``camera.sensor_reference_k``) maps.
    sensor_temperature_k : torch.Tensor
        ``(N,)`` sensor temperature of each frame.
    offset_drift : torch.Tensor
        ``(h, w)`` offset drift rate, counts / K of sensor temperature.
    n_clipped : torch.Tensor
        ``(N,)`` int64: pixels clipped at 0 or ``2^bits - 1`` in each frame.
    noise_std_radiance : torch.Tensor
        ``(N,)`` temporal noise std used for each frame (W m^-2 sr^-1).
    metadata : dict
        Free-form JSON-able description (kept by :func:`physinv.ir.io.save_ir`).

    Examples
    --------
    >>> fr = simulate(2, Camera(detector_shape=(16, 20)), seed=0)
    >>> fr.counts.shape, fr.counts.dtype, len(fr)
    (torch.Size([2, 16, 20]), torch.int32, 2)
    """

    counts: torch.Tensor
    temperature_k: torch.Tensor
    mask: torch.Tensor
    radiance: torch.Tensor
    camera: Camera
    gain: torch.Tensor
    offset: torch.Tensor
    sensor_temperature_k: torch.Tensor
    offset_drift: torch.Tensor
    n_clipped: torch.Tensor
    noise_std_radiance: torch.Tensor
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        c = self.counts
        if not isinstance(c, torch.Tensor) or c.dim() != 3:
            raise ValueError("counts must be an (N, h, w) tensor")
        n, h, w = c.shape
        if c.dtype != torch.int32:
            raise ValueError(f"counts must be int32, got {c.dtype}")
        for name in ("temperature_k", "mask", "radiance"):
            if tuple(getattr(self, name).shape) != (n, h, w):
                raise ValueError(f"{name} must have the counts' shape {(n, h, w)}, got "
                                 f"{tuple(getattr(self, name).shape)}")
        for name in ("gain", "offset", "offset_drift"):
            if tuple(getattr(self, name).shape) != (h, w):
                raise ValueError(f"{name} must be ({h}, {w}), got {tuple(getattr(self, name).shape)}")
        for name in ("sensor_temperature_k", "n_clipped", "noise_std_radiance"):
            if tuple(getattr(self, name).shape) != (n,):
                raise ValueError(f"{name} must be ({n},), got {tuple(getattr(self, name).shape)}")
        if tuple(self.camera.detector_shape) != (h, w):
            raise ValueError(f"camera.detector_shape {self.camera.detector_shape} differs from the frames' "
                             f"{(h, w)}")

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def offsets(self) -> torch.Tensor:
        """``(N, h, w)`` true offset of each frame (drift included, see :func:`drifted_offset`)."""
        return drifted_offset(self.offset, self.offset_drift, self.sensor_temperature_k,
                              self.camera.sensor_reference_k)

    @property
    def clip_fraction(self) -> float:
        """Fraction of all pixels clipped by the A/D range."""
        return float(self.n_clipped.sum()) / max(1, self.counts.numel())


def _scene_frames(scene: Any, n: int, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A user scene as (T, mask): (H, W) or (N, H, W) temperatures, or a Scene."""
    if isinstance(scene, Scene):
        t, m = scene.temperature_k, scene.mask
    else:
        t = torch.as_tensor(scene)
        m = None
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.dim() not in (2, 3) or tuple(t.shape[-2:]) != shape or (t.dim() == 3 and t.shape[0] != n):
        raise ValueError(f"scene must be a Scene or temperatures of shape {shape} or ({n}, *{shape}) (the "
                         f"camera's scene grid), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise ValueError("scene temperatures must be finite and > 0 kelvin")
    return t.to(torch.float64), m


def simulate(n_frames: int, camera: Camera | None = None, *, seed: int, noise_scale: float = 1.0,
             fpn: bool = True, drift: bool = False, scene_kwargs: dict[str, Any] | None = None,
             scene: Any = None, motion: str = "independent", pan_px: tuple[int, int] = (1, 3),
             sensor_temperature_k: Any = None, drift_range_k: float = 5.0,
             boundary: str = "circular") -> IRFrames:
    """Simulate ``n_frames`` raw frames of a thermal camera and their ground truth.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 1).
    camera : Camera, optional
        Default :meth:`Camera.boson`.
    seed : int
        Seed of the scenes and of the temporal noise (the fixed pattern comes
        from ``camera.unit_seed``).
    noise_scale : float
        Multiplies the NETD (0: no temporal noise).
    fpn : bool
        Apply the unit's fixed pattern (gain and offset maps); without it the
        gain is 1 and the offset ``camera.offset_counts`` everywhere.
    drift : bool
        Let the offsets drift with the sensor temperature (:func:`drifted_offset`).
    scene_kwargs : dict, optional
        Passed to :func:`make_scene` for generated scenes.
    scene : Scene or torch.Tensor, optional
        Image this scene instead (temperatures on ``camera.scene_shape``,
        ``(H, W)`` or ``(N, H, W)``); e.g. :func:`flat_scene` for black-body
        calibration frames.
    motion : {"independent", "static", "pan"}
        For generated (or a single given) scene: a new scene every frame, one
        scene throughout, or one scene shifted circularly by ``pan_px`` scene
        pixels per frame (a panning camera).
    pan_px : (int, int)
        Pan step ``(rows, cols)`` per frame on the scene grid.
    sensor_temperature_k : float or sequence, optional
        Sensor temperature per frame; default ``camera.sensor_reference_k``,
        or with ``drift=True`` a linear ramp over ``drift_range_k`` kelvin.
    drift_range_k : float
        Span of the default sensor-temperature ramp when ``drift=True``.
    boundary : str
        Boundary of the optics convolution (see :class:`Convolution`).

    Returns
    -------
    IRFrames

    Examples
    --------
    >>> cam = Camera(detector_shape=(32, 40))
    >>> fr = simulate(3, cam, seed=1)
    >>> int(fr.counts.min()) >= 0 and int(fr.counts.max()) <= cam.max_count
    True
    >>> bool((fr.temperature_k[fr.mask].mean() > fr.temperature_k[~fr.mask].mean()))
    True
    """
    n = check_int(n_frames, "n_frames", minimum=1)
    camera = Camera.boson() if camera is None else camera
    if not isinstance(camera, Camera):
        raise TypeError(f"camera must be a Camera, got {type(camera).__name__}")
    seed = check_int(seed, "seed", minimum=0)
    noise_scale = _nonneg(noise_scale, "noise_scale")
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {list(MOTIONS)}, got {motion!r}")
    pan = tuple(check_int(p, "pan_px") for p in pan_px)
    if len(pan) != 2:
        raise ValueError(f"pan_px must be (rows, cols), got {pan_px!r}")
    scene_kwargs = dict(scene_kwargs or {})
    if "seed" in scene_kwargs or "shape" in scene_kwargs:
        raise ValueError("scene_kwargs must not set seed or shape (they come from seed and the camera)")
    h, w = camera.detector_shape
    H, W = camera.scene_shape
    # sensor temperatures
    if sensor_temperature_k is None:
        t0 = camera.sensor_reference_k
        drift_range_k = _nonneg(drift_range_k, "drift_range_k")
        ts = (t0 + torch.linspace(0.0, drift_range_k, n, dtype=torch.float64) if drift
              else torch.full((n,), t0, dtype=torch.float64))
    else:
        ts = torch.as_tensor(sensor_temperature_k, dtype=torch.float64).reshape(-1)
        if ts.numel() == 1:
            ts = ts.expand(n).clone()
        if ts.shape != (n,) or not bool(torch.isfinite(ts).all()) or not bool((ts > 0).all()):
            raise ValueError(f"sensor_temperature_k must be a positive scalar or {n} values")
    if fpn:
        gain, offset, rate = camera.fpn_maps()
    else:
        gain = torch.ones(h, w, dtype=torch.float64)
        offset = torch.full((h, w), camera.offset_counts, dtype=torch.float64)
        rate = torch.full((h, w), camera.drift_counts_per_k, dtype=torch.float64)
    if not drift:
        rate = torch.zeros_like(rate)
    offsets = drifted_offset(offset, rate, ts, camera.sensor_reference_k)

    given = None if scene is None else _scene_frames(scene, n, (H, W))

    def scene_at(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if given is not None:
            t, m = given
            if t.dim() == 3:
                return t[i], (m if m is not None else torch.zeros(H, W, dtype=torch.bool))
            base_t, base_m = t, (m if m is not None else torch.zeros(H, W, dtype=torch.bool))
        elif motion == "independent":
            s = make_scene((H, W), seed=mix_seed(seed, 1, i) >> 1, **scene_kwargs)
            return s.temperature_k, s.mask
        else:
            if "base" not in cache:
                s = make_scene((H, W), seed=mix_seed(seed, 1) >> 1, **scene_kwargs)
                cache["base"] = (s.temperature_k, s.mask)
            base_t, base_m = cache["base"]
        if motion == "pan" and i:
            sh = (pan[0] * i, pan[1] * i)
            return torch.roll(base_t, sh, (0, 1)), torch.roll(base_m, sh, (0, 1))
        return base_t, base_m

    cache: dict[str, Any] = {}
    table = planck_table(camera.band_um)
    A = camera.operator(boundary)
    D = Decimation((H, W), camera.factor)
    g = torch.Generator().manual_seed(mix_seed(seed, 2))
    counts = torch.empty(n, h, w, dtype=torch.int32)
    temp = torch.empty(n, h, w, dtype=torch.float64)
    rad = torch.empty(n, h, w, dtype=torch.float64)
    mask = torch.empty(n, h, w, dtype=torch.bool)
    clipped = torch.empty(n, dtype=torch.int64)
    sigmas = torch.empty(n, dtype=torch.float64)
    top = float(camera.max_count)
    with torch.no_grad():
        for i in range(n):
            t_scene, m_scene = scene_at(i)
            if cache.get("T") is t_scene:  # a static scene (the same tensor again): its radiance once
                L = cache["L"]
            else:
                L = table.radiance(t_scene)
                cache["T"], cache["L"] = t_scene, L  # holding T keeps its identity unique
            clean = D(L)
            rad[i] = clean
            temp[i] = table.temperature(clean)
            mask[i] = D(m_scene.to(torch.float64)) > 0.5
            blurred = A(L)
            sigma = noise_scale * camera.noise_std_radiance(float(temp[i].mean())) if noise_scale else 0.0
            sigmas[i] = sigma
            if sigma:
                blurred = blurred + sigma * torch.randn(h, w, generator=g, dtype=torch.float64)
            c = torch.round(gain * camera.responsivity * blurred + offsets[i])
            clipped[i] = int(((c < 0) | (c > top)).sum())
            counts[i] = c.clamp(0.0, top).to(torch.int32)
    return IRFrames(counts=counts, temperature_k=temp, mask=mask, radiance=rad, camera=camera, gain=gain,
                    offset=offset, sensor_temperature_k=ts, offset_drift=rate, n_clipped=clipped,
                    noise_std_radiance=sigmas)
