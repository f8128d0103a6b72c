"""Radiometric calibration and non-uniformity correction (NUC) of thermal frames.

A microbolometer pixel's counts are linear in the in-band radiance it sees,
``c = g R L + o`` (see :mod:`physinv.ir.camera`), with a gain ``g`` and
offset ``o`` that differ from pixel to pixel (fixed-pattern noise) and an
offset that drifts with the focal-plane temperature. This module converts
between counts, radiance and temperature given gain and offset maps, and
estimates those maps:

* :func:`two_point_nuc`: from frames of two uniform black bodies, the
  classical reference-based correction; exact for the linear model.
* :meth:`NUC.refresh_offset`: a one-point (shutter) update of the offsets
  with the gains kept, the usual answer to drift.
* :func:`fit_offset_drift`: the per-pixel linear offset-drift model
  ``o(T_s) = o_ref + d (T_s - T_ref)`` from calibrations at several sensor
  temperatures; :meth:`NUC.at` predicts the offsets at a new one.
* :func:`scene_based_nuc`: corrections from the scene itself, with no
  reference source: constant statistics (Harris and Chiang 1999; every
  pixel is assumed to see the same temporal mean and spread) and column
  midway equalization (Tendero, Gilles, Landeau and Morel, "Non-uniformity
  correction of infrared images by midway equalization", Image Processing
  On Line 2012). Constant statistics needs motion: on a static scene it
  learns the scene itself as fixed pattern and burns it in (ghosting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from .._validate import check_int, check_real
from .camera import Camera, IRFrames, drifted_offset
from .physics import band_radiance, planck_table, radiance_to_temperature

__all__ = ["counts_to_radiance", "radiance_to_counts", "counts_to_temperature", "temperature_to_counts",
           "NUC", "two_point_nuc", "fit_offset_drift", "scene_based_nuc", "SceneNUC", "drifted_offset",
           "SCENE_NUC_METHODS"]

#: Methods of :func:`scene_based_nuc`.
SCENE_NUC_METHODS = ("constant-statistics", "midway")


def _camera(camera: Any) -> Camera:
    if not isinstance(camera, Camera):
        raise TypeError(f"camera must be a Camera, got {type(camera).__name__}")
    return camera


def _frames(frames: Any, name: str) -> torch.Tensor:
    """Counts (IRFrames, or a ``(..., h, w)`` tensor / array) as float64."""
    if isinstance(frames, IRFrames):
        frames = frames.counts
    t = torch.as_tensor(frames)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be real counts, got {t.dtype}")
    if t.dim() < 2:
        raise ValueError(f"{name} must have shape (..., h, w), got {tuple(t.shape)}")
    t = t.to(torch.float64)
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")
    return t


def _maps(camera: Camera, gain: Any, offset: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = camera.detector_shape
    g = torch.ones((), dtype=torch.float64) if gain is None else torch.as_tensor(gain, dtype=torch.float64)
    o = (torch.tensor(camera.offset_counts, dtype=torch.float64) if offset is None
         else torch.as_tensor(offset, dtype=torch.float64))
    for name, m in (("gain", g), ("offset", o)):
        if m.dim() and tuple(m.shape[-2:]) != (h, w):
            raise ValueError(f"{name} must be a scalar or a map ending in the detector shape {(h, w)}, got "
                             f"{tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{name} must be finite")
    if not bool((g > 0).all()):
        raise ValueError("gain must be > 0 everywhere")
    return g.to(like.device), o.to(like.device)


def counts_to_radiance(counts: Any, camera: Camera, gain: Any = None, offset: Any = None) -> torch.Tensor:
    """Radiance ``L = (c - o) / (g R)`` in W m^-2 sr^-1 (float64).

    Parameters
    ----------
    counts : torch.Tensor or IRFrames
        Raw or corrected counts ``(..., h, w)``.
    camera : Camera
        Gives the responsivity ``R`` (and the default offset).
    gain, offset : torch.Tensor or float, optional
        Gain and offset maps (e.g. a :class:`NUC`'s); default 1 and ``camera.offset_counts``.

    Examples
    --------
    >>> cam = Camera(detector_shape=(2, 2))
    >>> counts_to_radiance(torch.full((2, 2), 6000), cam)[0, 0]
    tensor(50., dtype=torch.float64)
    """
    camera = _camera(camera)
    c = _frames(counts, "counts")
    g, o = _maps(camera, gain, offset, c)
    return (c - o) / (g * camera.responsivity)


def radiance_to_counts(radiance: Any, camera: Camera, gain: Any = None, offset: Any = None, *,
                       quantize: bool = False) -> torch.Tensor:
    """Counts ``c = g R L + o`` (float64), or rounded and clipped to the A/D range as int32 (``quantize``).

    Examples
    --------
    >>> cam = Camera(detector_shape=(2, 2))
    >>> radiance_to_counts(torch.full((2, 2), 50.0), cam)[0, 0]
    tensor(6000., dtype=torch.float64)
    >>> radiance_to_counts(torch.full((2, 2), 1e4), cam, quantize=True)[0, 0]
    tensor(16383, dtype=torch.int32)
    """
    camera = _camera(camera)
    r = _frames(radiance, "radiance")
    g, o = _maps(camera, gain, offset, r)
    c = g * camera.responsivity * r + o
    if quantize:
        return torch.round(c).clamp(0, camera.max_count).to(torch.int32)
    return c


def counts_to_temperature(counts: Any, camera: Camera, gain: Any = None, offset: Any = None, *,
                          exact: bool = False) -> torch.Tensor:
    """Temperature (kelvin) from counts: :func:`counts_to_radiance`, then Planck's law inverted.

    ``exact=False`` inverts with the shared :class:`PlanckTable` (within
    1e-7 K; fast on whole frames), ``exact=True`` by Newton's method.

    Raises
    ------
    ValueError
        Counts at or below the offset (no positive radiance, no temperature).

    Examples
    --------
    >>> cam = Camera(detector_shape=(2, 2))
    >>> c = temperature_to_counts(torch.full((2, 2), 300.0), cam)
    >>> counts_to_temperature(c, cam)[0, 0]
    tensor(300., dtype=torch.float64)
    """
    L = counts_to_radiance(counts, camera, gain, offset)
    if L.numel() and not bool((L > 0).all()):
        bad = int((L <= 0).sum())
        raise ValueError(f"counts: {bad} value(s) at or below the offset give no positive radiance, hence no "
                         "temperature; check the offset map (or the NUC) against these frames")
    if exact:
        return radiance_to_temperature(L, camera.band_um)
    return planck_table(camera.band_um).temperature(L)


def temperature_to_counts(temperature_k: Any, camera: Camera, gain: Any = None, offset: Any = None, *,
                          quantize: bool = False) -> torch.Tensor:
    """Counts of black-body temperatures: Planck's law, then :func:`radiance_to_counts`.

    Examples
    --------
    >>> cam = Camera(detector_shape=(2, 2))
    >>> round(float(temperature_to_counts(torch.full((2, 2), 300.0), cam)[0, 0]), 2)
    6549.16
    """
    camera = _camera(camera)
    t = _frames(temperature_k, "temperature_k")
    return radiance_to_counts(band_radiance(t, camera.band_um), camera, gain, offset, quantize=quantize)


def _mean_frame(frames: Any, name: str, camera: Camera) -> torch.Tensor:
    f = _frames(frames, name)
    if tuple(f.shape[-2:]) != camera.detector_shape:
        raise ValueError(f"{name} must end in the detector shape {camera.detector_shape}, got "
                         f"{tuple(f.shape)}")
    f = f.reshape(-1, *camera.detector_shape)
    if f.shape[0] == 0:
        raise ValueError(f"{name} holds no frames")
    clipped = int(((f <= 0) | (f >= camera.max_count)).sum())
    if clipped:
        raise ValueError(f"{name}: {clipped} pixel value(s) are clipped at 0 or {camera.max_count}; a "
                         "reference frame must lie inside the A/D range (choose another black-body "
                         "temperature)")
    return f.mean(0)


@dataclass
class NUC:
    """Gain and offset maps of a non-uniformity correction, and the conversions they give.

    Attributes
    ----------
    gain, offset : torch.Tensor
        ``(h, w)`` estimated gain (relative to ``camera.responsivity``) and offset (counts).
    camera : Camera
        The camera calibrated.
    sensor_temperature_k : float or None
        Sensor temperature at which the offsets were measured.
    drift : torch.Tensor or None
        ``(h, w)`` offset drift rate (counts / K) from :func:`fit_offset_drift`, for :meth:`at`.

    Examples
    --------
    >>> cam = Camera(detector_shape=(4, 4))
    >>> nuc = NUC(torch.ones(4, 4), torch.full((4, 4), 1000.0), cam)
    >>> nuc.temperature(temperature_to_counts(torch.full((4, 4), 310.0), cam))[0, 0]
    tensor(310., dtype=torch.float64)
    """

    gain: torch.Tensor
    offset: torch.Tensor
    camera: Camera
    sensor_temperature_k: float | None = None
    drift: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _camera(self.camera)
        shape = self.camera.detector_shape
        for name in ("gain", "offset") + (("drift",) if self.drift is not None else ()):
            m = torch.as_tensor(getattr(self, name), dtype=torch.float64)
            if tuple(m.shape) != shape:
                raise ValueError(f"{name} must be a {shape} map, got {tuple(m.shape)}")
            if not bool(torch.isfinite(m).all()):
                raise ValueError(f"{name} must be finite")
            setattr(self, name, m)
        if not bool((self.gain > 0).all()):
            raise ValueError(f"gain must be > 0 everywhere; {int((self.gain <= 0).sum())} pixel(s) are not "
                             "(dead or inverted pixels)")
        if self.sensor_temperature_k is not None:
            self.sensor_temperature_k = check_real(self.sensor_temperature_k, "sensor_temperature_k",
                                                   positive=True)

    def radiance(self, counts: Any) -> torch.Tensor:
        """Radiance of raw counts with these maps (see :func:`counts_to_radiance`)."""
        return counts_to_radiance(counts, self.camera, self.gain, self.offset)

    def temperature(self, counts: Any, *, exact: bool = False) -> torch.Tensor:
        """Temperature of raw counts with these maps (see :func:`counts_to_temperature`)."""
        return counts_to_temperature(counts, self.camera, self.gain, self.offset, exact=exact)

    def apply(self, counts: Any) -> torch.Tensor:
        """Corrected counts (float64): what a uniform camera (gain 1, offset ``camera.offset_counts``) reads.

        Examples
        --------
        >>> cam = Camera(detector_shape=(2, 2))
        >>> nuc = NUC(torch.full((2, 2), 2.0), torch.zeros(2, 2), cam)
        >>> nuc.apply(torch.full((2, 2), 200.0))[0, 0]
        tensor(1100., dtype=torch.float64)
        """
        return radiance_to_counts(self.radiance(counts), self.camera)

    def refresh_offset(self, flat_frames: Any, temperature_k: float, *,
                       sensor_temperature_k: float | None = None) -> NUC:
        """A one-point update: new offsets from frames of a uniform source (a shutter), gains kept.

        Examples
        --------
        >>> cam = Camera(detector_shape=(2, 2))
        >>> nuc = NUC(torch.ones(2, 2), torch.zeros(2, 2), cam)
        >>> flat = temperature_to_counts(torch.full((2, 2), 300.0), cam, offset=1234.0)
        >>> nuc.refresh_offset(flat, 300.0).offset[0, 0]
        tensor(1234., dtype=torch.float64)
        """
        t = check_real(temperature_k, "temperature_k", positive=True)
        c = _mean_frame(flat_frames, "flat_frames", self.camera)
        L = float(band_radiance(t, self.camera.band_um))
        offset = c - self.gain * self.camera.responsivity * L
        ts = self.sensor_temperature_k if sensor_temperature_k is None else sensor_temperature_k
        return replace(self, offset=offset, sensor_temperature_k=ts)

    def at(self, sensor_temperature_k: float) -> NUC:
        """These maps moved to another sensor temperature by the fitted drift model.

        The drift map comes from :func:`fit_offset_drift`.

        Raises
        ------
        ValueError
            Without a drift map or a reference sensor temperature.
        """
        if self.drift is None or self.sensor_temperature_k is None:
            raise ValueError("NUC.at needs a drift map and the sensor temperature of the offsets; build the "
                             "NUC with fit_offset_drift")
        ts = check_real(sensor_temperature_k, "sensor_temperature_k", positive=True)
        offset = drifted_offset(self.offset, self.drift, ts, self.sensor_temperature_k)
        return replace(self, offset=offset, sensor_temperature_k=ts)


def two_point_nuc(cold_frames: Any, hot_frames: Any, t_cold_k: float, t_hot_k: float, camera: Camera, *,
                  sensor_temperature_k: float | None = None) -> NUC:
    """Two-point NUC from frames of two uniform black bodies at ``t_cold_k < t_hot_k``.

    With ``C`` the per-pixel temporal mean counts and ``L`` the in-band
    radiances of the two sources::

        gain   = (C_hot - C_cold) / (R (L_hot - L_cold))
        offset = C_cold - gain R L_cold

    Exact for the linear pixel model (to float precision on noise-free
    frames); averaging N frames divides the temporal noise by sqrt(N).
    Calibrate on either side of the scene's temperature range.

    Parameters
    ----------
    cold_frames, hot_frames : IRFrames or torch.Tensor
        ``(N, h, w)`` or ``(h, w)`` counts of the cold and hot source.
    t_cold_k, t_hot_k : float
        Source temperatures, kelvin.
    camera : Camera
        The camera (responsivity, band, A/D range).
    sensor_temperature_k : float, optional
        Sensor temperature during the calibration (for :func:`fit_offset_drift`).

    Raises
    ------
    ValueError
        Equal or reversed temperatures, clipped reference frames, wrong
        shapes, or pixels whose gain comes out non-positive.

    Examples
    --------
    >>> cam = Camera(detector_shape=(3, 4))
    >>> g = 1 + 0.1 * torch.rand(3, 4, dtype=torch.float64)
    >>> o = 900 + 50 * torch.rand(3, 4, dtype=torch.float64)
    >>> cold = temperature_to_counts(torch.full((3, 4), 280.0), cam, g, o)
    >>> hot = temperature_to_counts(torch.full((3, 4), 330.0), cam, g, o)
    >>> nuc = two_point_nuc(cold, hot, 280.0, 330.0, cam)
    >>> bool(torch.allclose(nuc.gain, g, rtol=1e-12)) and bool(torch.allclose(nuc.offset, o, rtol=1e-12))
    True
    """
    camera = _camera(camera)
    tc = check_real(t_cold_k, "t_cold_k", positive=True)
    th = check_real(t_hot_k, "t_hot_k", positive=True)
    if not th > tc:
        raise ValueError(f"t_hot_k must be > t_cold_k, got t_cold_k={tc}, t_hot_k={th}")
    cc = _mean_frame(cold_frames, "cold_frames", camera)
    ch = _mean_frame(hot_frames, "hot_frames", camera)
    L = band_radiance(torch.tensor([tc, th], dtype=torch.float64), camera.band_um)
    lc, lh = float(L[0]), float(L[1])
    gain = (ch - cc) / (camera.responsivity * (lh - lc))
    if not bool((gain > 0).all()):
        raise ValueError(f"two_point_nuc: {int((gain <= 0).sum())} pixel(s) read no more on the hot source "
                         "than on the cold one (dead pixels, or the frames are swapped)")
    offset = cc - gain * camera.responsivity * lc
    return NUC(gain, offset, camera, sensor_temperature_k)


def fit_offset_drift(nucs: Any) -> NUC:
    """The linear offset-drift model from NUCs measured at two or more sensor temperatures.

    Fits ``offset(T_s) = offset_ref + drift (T_s - T_ref)`` per pixel by least
    squares (``T_ref`` the first NUC's sensor temperature) and returns the
    first NUC with the fitted ``offset_ref`` and ``drift``; :meth:`NUC.at`
    then predicts the offsets at any sensor temperature. Gains are averaged.

    Raises
    ------
    ValueError
        Fewer than two NUCs, missing or coincident sensor temperatures, different cameras.

    Examples
    --------
    >>> cam = Camera(detector_shape=(2, 2))
    >>> a = NUC(torch.ones(2, 2), torch.full((2, 2), 1000.0), cam, 300.0)
    >>> b = NUC(torch.ones(2, 2), torch.full((2, 2), 1040.0), cam, 302.0)
    >>> model = fit_offset_drift([a, b])
    >>> model.drift[0, 0], model.at(305.0).offset[0, 0]
    (tensor(20., dtype=torch.float64), tensor(1100., dtype=torch.float64))
    """
    nucs = list(nucs)
    if len(nucs) < 2 or not all(isinstance(n, NUC) for n in nucs):
        raise ValueError("nucs must hold two or more NUC objects (calibrations at different sensor "
                         "temperatures)")
    if any(n.sensor_temperature_k is None for n in nucs):
        raise ValueError("nucs: every NUC needs its sensor_temperature_k")
    if any(n.camera.detector_shape != nucs[0].camera.detector_shape for n in nucs):
        raise ValueError("nucs: the NUCs are of detectors of different shapes")
    ts = torch.tensor([n.sensor_temperature_k for n in nucs], dtype=torch.float64)
    if float(ts.max() - ts.min()) <= 0:
        raise ValueError("nucs: the sensor temperatures must not all be equal")
    t_ref = float(ts[0])
    x = ts - t_ref
    offs = torch.stack([n.offset for n in nucs])
    xm, om = x.mean(), offs.mean(0)
    drift = ((x - xm)[:, None, None] * (offs - om)).sum(0) / ((x - xm) ** 2).sum()
    offset_ref = om - drift * xm
    gain = torch.stack([n.gain for n in nucs]).mean(0)
    return NUC(gain, offset_ref, nucs[0].camera, t_ref, drift)


@dataclass
class SceneNUC:
    """Result of :func:`scene_based_nuc`.

    Attributes
    ----------
    corrected : torch.Tensor
        ``(N, h, w)`` float64 corrected counts.
    gain, offset : torch.Tensor
        ``(h, w)`` estimated relative gain and offset (``corrected = (counts - offset) / gain``
        for constant statistics; midway corrects each frame on its own, and these are the
        frame-averaged column maps it applied).
    method : str
        The method used.
    """

    corrected: torch.Tensor
    gain: torch.Tensor
    offset: torch.Tensor
    method: str

    def apply(self, counts: Any) -> torch.Tensor:
        """Apply the estimated maps to other frames: ``(counts - offset) / gain``."""
        c = _frames(counts, "counts")
        if tuple(c.shape[-2:]) != tuple(self.gain.shape):
            raise ValueError(f"counts must end in {tuple(self.gain.shape)}, got {tuple(c.shape)}")
        return (c - self.offset) / self.gain


def _midway_columns(frame: torch.Tensor, sigma: float) -> torch.Tensor:
    """Local midway equalization of the column histograms of one ``(h, w)`` frame."""
    h, w = frame.shape
    order = torch.argsort(frame, dim=0)
    sorted_cols = torch.gather(frame, 0, order)  # (h, w): each column's quantile function
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    padded = torch.nn.functional.pad(sorted_cols[None], (r, r), mode="replicate")[0]
    win = padded.unfold(1, 2 * r + 1, 1)  # (h, w, 2r+1)
    mid = (win * k).sum(-1) / k.sum()  # the weighted mean quantile function of the neighbourhood
    out = torch.empty_like(frame)
    out.scatter_(0, order, mid)
    return out


def scene_based_nuc(frames: Any, method: str = "constant-statistics", *, estimate_gain: bool = True,
                    sigma_columns: float = 8.0) -> SceneNUC:
    """Non-uniformity correction from the scene itself (no reference source).

    ``"constant-statistics"``: every pixel is assumed to see, over the
    sequence, the same temporal mean and standard deviation (true when the
    scene moves enough); each pixel's mean ``m`` and std ``s`` are mapped to
    the array's averages ``M`` and ``S``: ``corrected = (c - m) S / s + M``
    (``estimate_gain=False``: ``c - m + M``). On a static scene the scene is
    learned as fixed pattern: the objects are burned into the correction and
    leave negative ghosts in later frames.

    ``"midway"``: in each frame, the histogram of every column is replaced by
    the midway (quantile-averaged) histogram of its neighbouring columns,
    Gaussian-weighted with std ``sigma_columns``: removes column stripes
    from single frames, leaves per-pixel fixed pattern.

    Parameters
    ----------
    frames : IRFrames or torch.Tensor
        ``(N, h, w)`` counts (N >= 2 for constant statistics).
    method : {"constant-statistics", "midway"}
    estimate_gain : bool
        Constant statistics: correct gains too (else offsets only).
    sigma_columns : float
        Midway: width of the column neighbourhood.

    Returns
    -------
    SceneNUC

    Examples
    --------
    >>> from physinv.ir import simulate
    >>> cam = Camera(detector_shape=(16, 20))
    >>> fr = simulate(16, cam, seed=0)
    >>> res = scene_based_nuc(fr)
    >>> res.corrected.shape
    torch.Size([16, 16, 20])
    >>> bool(scene_based_nuc(fr, "midway").corrected[0].std(0).std() < fr.counts[0].double().std(0).std())
    True
    """
    if method not in SCENE_NUC_METHODS:
        raise ValueError(f"method must be one of {list(SCENE_NUC_METHODS)}, got {method!r}")
    c = _frames(frames, "frames")
    if c.dim() != 3:
        raise ValueError(f"frames must be (N, h, w), got {tuple(c.shape)}")
    n = c.shape[0]
    if method == "constant-statistics":
        if n < 2:
            raise ValueError(f"frames: constant statistics needs at least 2 frames, got {n}")
        m = c.mean(0)
        M = m.mean()
        if estimate_gain:
            s = c.std(0)
            S = s[s > 0].mean() if bool((s > 0).any()) else torch.tensor(1.0, dtype=torch.float64)
            gain = torch.where(s > 0, s / S, torch.ones_like(s))
        else:
            gain = torch.ones_like(m)
        offset = m - gain * M
        return SceneNUC((c - offset) / gain, gain, offset, method)
    sigma = check_real(sigma_columns, "sigma_columns", positive=True)
    check_int(n, "n_frames", minimum=1)
    corrected = torch.stack([_midway_columns(f, sigma) for f in c])
    offset = (c - corrected).mean(0)
    return SceneNUC(corrected, torch.ones_like(offset), offset, method)
