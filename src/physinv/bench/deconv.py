"""The deconvolution benchmark: which method wins on a deblurring problem, on built-in data.

Every registered method (:mod:`physinv.bench.methods`) runs in one process on
the same data: each test picture x PSF x noise level x boundary. The result
of each *cell* (one of those combinations and one method) is stored as soon
as it is finished (:mod:`physinv.bench._cells`), so an interrupted run
resumes where it stopped, and cells can be split across processes
(``shard``) and merged.

Protocol (defaults; see ``docs/studies.md``):

- Pictures: the test split :data:`physinv.bench.splits.TEST_IMAGES`, grey,
  resized (anti-aliased, aspect kept) so that the shorter side is
  ``size + 2 * margin`` and the centre square kept: the *scene*. The truth
  is the centre ``size x size`` frame of the scene.
- Data, ``circular`` boundary: the circular convolution of the frame.
  ``valid`` (realistic) boundary: the linear convolution of the whole scene,
  cut to the frame, so every pixel of the data sees true scene content
  beyond the frame's edge (the case where a circular model is wrong).
- White Gaussian noise of standard deviation ``noise_sigma``, seeded per
  (picture, PSF, noise level, seed): both boundaries get the same noise.
- Metrics: every output is clipped to [0, 1]; PSNR and SSIM
  (:mod:`physinv.metrics`, data range 1) on the frame without a border of
  ``crop`` pixels; wall-clock seconds per image (the best of up to
  ``timing_repeats`` runs for methods faster than 0.3 s; oracles time only
  their final solve).
- Summary: per method and boundary, the per-picture mean over PSFs and
  noise levels, then the mean over pictures with a two-sided 95 % Student
  t-interval over pictures.

Examples
--------
>>> import tempfile
>>> cfg = DeconvConfig(images=("astronaut",), psfs=("gaussian:1.6",), noises=(0.01,), size=32, crop=2,
...                    margin=8, methods=("blurred", "wiener-powerlaw"), figures=False)
>>> res = run(cfg, tempfile.mkdtemp(), progress=False)
>>> len(res.rows), res.computed
(4, 4)
>>> sorted({r["boundary"] for r in res.rows})
['circular', 'valid']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import splits
from ._cells import Cell, CellStore, RunSummary, Shard, StudyCounts, config_id, run_cells
from ._report import CI_METHOD, markdown_table, mean_ci, save_figure, write_csv, write_json, write_text
from .methods import DATA_BOUNDARIES, Method, Problem, select_methods

__all__ = [
    "STUDY",
    "PROTOCOL_VERSION",
    "DEFAULT_PSFS",
    "DEFAULT_NOISES",
    "QUICK",
    "RESULT_COLUMNS",
    "DeconvConfig",
    "DeconvResults",
    "ImageSource",
    "resolve_images",
    "resolve_psf",
    "simulate",
    "make_cells",
    "run",
    "summarize",
    "goals",
    "methods_table",
]

STUDY = "deconv"
#: Bump when the data or the metrics change: part of every cell ID.
PROTOCOL_VERSION = 1

DEFAULT_PSFS: tuple[str, ...] = ("gaussian:1.6", "gaussian:3", "motion:15,30", "disk:4")
DEFAULT_NOISES: tuple[float, ...] = (0.01, 0.03)

#: The ``quick`` configuration (for CI): 2 small pictures, 2 PSFs, 1 noise level, both boundaries,
#: the methods registered with ``quick=True``.
QUICK: dict[str, Any] = {"images": ("astronaut", "coins"), "psfs": ("gaussian:1.6", "motion:7,30"),
                         "noises": (0.02,), "size": 64, "crop": 4, "margin": 16, "n_train": 4}

#: Columns of ``results.csv`` in order.
RESULT_COLUMNS: tuple[str, ...] = (
    "image", "psf", "noise_sigma", "boundary", "method", "oracle", "psnr", "ssim", "seconds", "family",
    "n_train", "train_seconds", "label", "assumes", "model", "split", "params", "cell_id",
)

_BOUNDARY_ALIASES = {"realistic": "valid"}


def _check_int(v: Any, name: str, low: int) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class DeconvConfig:
    """Everything a deconvolution benchmark run depends on.

    Attributes
    ----------
    images : tuple of str
        Bundled picture names (:mod:`physinv.bench.splits`), ``phantom:K``
        (a generated piecewise-constant test phantom), image files (PNG, TIFF,
        NPY, JPEG) or folders of them, or physinv HDF5 datasets
        (``data.h5`` for the ground truth ``x`` of every sample,
        ``data.h5:3`` or ``data.h5:0-9,12`` for a selection; see
        :func:`resolve_images`).
    psfs : tuple of str
        PSF specs (``gaussian:1.6``, ``motion:15,30``, ``disk:4``,
        ``airy:2``) or PSF files (NPY, PNG, TIFF), see
        :func:`physinv.psf.from_spec`.
    noises : tuple of float
        Noise standard deviations (images in [0, 1]).
    boundaries : tuple of str
        ``"circular"`` and/or ``"valid"`` (alias ``"realistic"``).
    methods, exclude : tuple of str, optional
        Method names (``"all"`` for every registered one); default: the
        registry's default (or, with ``quick``, quick) selection.
    size : int
        Frame side in pixels.
    crop : int
        Border left out of the metrics.
    margin : int
        Scene margin around the frame (must cover the PSF's half-width).
    model : str
        Boundary model of physinv's boundary-aware solvers on realistic data
        (a non-circular :data:`physinv.operators.convolution.BOUNDARIES` name).
    seed : int
        Base seed (noise, stochastic methods, training).
    device : str
        Torch device for physinv's methods (scikit-image runs on the CPU).
    threads : int, optional
        Torch intra-op threads during the run (``None``: leave as is).
    quick : bool
        Use the quick selection of methods when ``methods`` is not given.
    n_train : int
        Training images for learned methods (training pictures, then phantoms).
    timing_repeats : int
        Runs per timing for methods faster than 0.3 s (the best is kept).
    figures : bool
        Write the PNG grids and the chart.
    figure_image : str, optional
        The picture shown in the grids (default: the first).
    """

    images: tuple[str, ...] = splits.TEST_IMAGES
    psfs: tuple[str, ...] = DEFAULT_PSFS
    noises: tuple[float, ...] = DEFAULT_NOISES
    boundaries: tuple[str, ...] = DATA_BOUNDARIES
    methods: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    size: int = 128
    crop: int = 8
    margin: int = 32
    model: str = "reflect"
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    quick: bool = False
    n_train: int = 16
    timing_repeats: int = 3
    figures: bool = True
    figure_image: str | None = None

    def __post_init__(self) -> None:
        from ..operators.convolution import BOUNDARIES

        def tup(name: str, v: Any) -> tuple:
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise TypeError(f"{name} must be a sequence, got {type(v).__name__}")
            return tuple(v)

        images = tup("images", self.images)
        psfs = tup("psfs", self.psfs)
        noises = tup("noises", self.noises)
        boundaries = tuple(_BOUNDARY_ALIASES.get(b, b) for b in tup("boundaries", self.boundaries))
        for name, v in (("images", images), ("psfs", psfs), ("noises", noises), ("boundaries", boundaries)):
            if not v:
                raise ValueError(f"{name} must not be empty")
            if len(set(v)) != len(v):
                raise ValueError(f"{name} has duplicates: {list(v)}")
        for b in boundaries:
            if b not in DATA_BOUNDARIES:
                raise ValueError(f"boundaries: expected {DATA_BOUNDARIES} (or 'realistic'), got {b!r}")
        clean_noises = []
        for s in noises:
            if not isinstance(s, numbers.Real) or isinstance(s, bool) or not (math.isfinite(s) and s > 0):
                raise ValueError(f"noises must be finite numbers > 0, got {s!r}")
            clean_noises.append(float(s))
        for name in ("images", "psfs"):
            for v in {"images": images, "psfs": psfs}[name]:
                if not isinstance(v, (str, os.PathLike)):
                    raise TypeError(f"{name} entries must be str, got {v!r}")
        object.__setattr__(self, "images", tuple(os.fspath(i) for i in images))
        object.__setattr__(self, "psfs", tuple(os.fspath(p) for p in psfs))
        object.__setattr__(self, "noises", tuple(clean_noises))
        object.__setattr__(self, "boundaries", boundaries)
        if self.methods is not None:
            object.__setattr__(self, "methods", tup("methods", self.methods))
        object.__setattr__(self, "exclude", tup("exclude", self.exclude))
        _check_int(self.size, "size", 8)
        _check_int(self.crop, "crop", 0)
        _check_int(self.margin, "margin", 0)
        _check_int(self.seed, "seed", 0)
        _check_int(self.n_train, "n_train", 1)
        _check_int(self.timing_repeats, "timing_repeats", 1)
        if self.threads is not None:
            _check_int(self.threads, "threads", 1)
        if 2 * self.crop >= self.size - 6:
            raise ValueError(f"crop must leave at least 7 x 7 pixels of the {self.size} x {self.size} frame "
                             f"(SSIM window), got crop={self.crop}")
        if self.model == "circular" or self.model not in BOUNDARIES:
            raise ValueError(f"model must be a non-circular boundary of physinv.operators.Convolution "
                             f"({sorted(b for b in BOUNDARIES if b != 'circular')}), got {self.model!r}")
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {type(self.device).__name__}")
        try:
            torch.device(self.device)
        except RuntimeError as e:
            raise ValueError(f"device: {e}") from None

    @classmethod
    def quick_config(cls, **overrides: Any) -> DeconvConfig:
        """The tiny configuration of ``--quick`` (:data:`QUICK`), with ``overrides``."""
        kw = dict(QUICK, quick=True)
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


# ---------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImageSource:
    """One test picture: display name, where it comes from, and how to load it."""

    name: str
    source: str  # "skimage", "phantom", "file" or "h5"
    ref: str  # picture name, phantom seed, or file path
    index: int | None = None  # sample of an "h5" dataset

    @property
    def split(self) -> str:
        if self.source in ("file", "h5"):
            return "other"
        return splits.split_of(self.name)

    def load(self, side: int) -> np.ndarray:
        """The scene: ``side x side``, grey float64 in [0, 1]."""
        if self.source == "skimage":
            from ..data.images import skimage_image

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = skimage_image(splits.IMAGE_ALIASES.get(self.ref, self.ref))
            return splits.square_picture(img, side)
        if self.source == "phantom":
            from ..data.images import random_phantom

            ph = random_phantom(side, "piecewise_constant", seed=int(self.ref))
            return np.asarray(ph, dtype=np.float64)
        if self.source == "h5":
            from ..data.images import load_h5_images

            img = next(iter(load_h5_images(self.ref, [self.index]).values()))
            where = f"{self.ref}[{self.index}]"
        else:
            from ..data.images import load_image

            img = load_image(self.ref)
            where = self.ref
        lo, hi = float(img.min()), float(img.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"images: {where!r} has values in [{lo:.4g}, {hi:.4g}], outside [0, 1]; "
                             "rescale it first")
        return splits.square_picture(img, side)


_IMAGE_EXTS = (".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg")
_H5_EXTS = (".h5", ".hdf5")
_H5_SPEC = re.compile(r"(?P<path>.+\.(?:h5|hdf5))(?::(?P<select>.*))?", re.IGNORECASE)


def _h5_sources(path: str, select: str | None) -> list[ImageSource]:
    """One source per selected sample of a physinv HDF5 dataset (its ground truth ``x``)."""
    from ..data.hdf5 import H5Dataset
    from ..data.images import _parse_selection

    try:
        with H5Dataset(path) as ds:
            n, shape = len(ds), tuple(ds.x_shape)
    except ValueError as e:  # DatasetFileError names the file
        raise ValueError(f"images: {e}") from None
    if len(shape) != 2:
        raise ValueError(f"images: {path}: the ground-truth samples x have shape {shape}; only 2-D images "
                         "can be test pictures")
    try:
        idx = _parse_selection(select, n, path)
    except ValueError as e:
        raise ValueError(f"images: {e}") from None
    base = os.path.basename(path)
    return [ImageSource(f"{base}[{i}]", "h5", path, i) for i in idx]


def resolve_images(specs: Sequence[str]) -> list[ImageSource]:
    """Turn ``images`` entries into :class:`ImageSource` objects (folders expand to their image files).

    An entry is a bundled picture name, ``phantom:K``, an image file or a
    folder of them (PNG, TIFF, NPY, JPEG; named by the file name without
    its extension), or a physinv HDF5 dataset (``.h5`` / ``.hdf5``, written
    by :func:`physinv.data.save_dataset`): ``data.h5`` takes the ground
    truth ``x`` of every sample, ``data.h5:3`` one sample and
    ``data.h5:0-9,12`` indices and inclusive ranges (from 0); the pictures
    are named ``data.h5[3]``.  Dataset samples must be 2-D.  Folders are
    expanded to image files only, not to datasets.

    Raises a ``ValueError`` naming ``images`` for an unknown name, an
    empty folder, a file that is not a physinv dataset, samples that are not
    2-D or a selection out of range.

    Examples
    --------
    >>> [s.source for s in resolve_images(["moon", "phantom:2"])]
    ['skimage', 'phantom']
    >>> import os, tempfile, numpy as np
    >>> from physinv.data import save_dataset
    >>> x = np.random.default_rng(0).random((5, 8, 8))
    >>> f = save_dataset(os.path.join(tempfile.mkdtemp(), "d.h5"), (x, x), noise_sigma=0.0)
    >>> [s.name for s in resolve_images([f + ":1-2,4"])]
    ['d.h5[1]', 'd.h5[2]', 'd.h5[4]']
    """
    from ..data.images import SKIMAGE_IMAGES, available_skimage_images

    have = set(available_skimage_images())
    out: list[ImageSource] = []
    for spec in specs:
        if os.path.isdir(spec):
            files = sorted(os.path.join(spec, f) for f in os.listdir(spec) if f.lower().endswith(_IMAGE_EXTS))
            if not files:
                raise ValueError(f"images: folder {spec!r} holds no {'/'.join(_IMAGE_EXTS)} files")
            out.extend(ImageSource(os.path.splitext(os.path.basename(f))[0], "file", f) for f in files)
        elif (m := _H5_SPEC.fullmatch(spec)) is not None:
            path = m.group("path")
            if not os.path.isfile(path):
                raise ValueError(f"images: no such dataset file {path!r}")
            out.extend(_h5_sources(path, m.group("select")))
        elif os.path.isfile(spec):
            if not spec.lower().endswith(_IMAGE_EXTS):
                raise ValueError(f"images: {spec!r} is not a {'/'.join(_IMAGE_EXTS + _H5_EXTS)} file")
            out.append(ImageSource(os.path.splitext(os.path.basename(spec))[0], "file", spec))
        elif spec.startswith("phantom:"):
            k = spec.split(":", 1)[1]
            if not k.isdigit():
                raise ValueError(f"images: phantom spec must be phantom:K with an integer K >= 0, "
                                 f"got {spec!r}")
            seed = splits.TEST_PHANTOM_SEED_OFFSET + int(k)
            out.append(ImageSource(f"phantom:{int(k)}", "phantom", str(seed)))
        else:
            real = splits.IMAGE_ALIASES.get(spec, spec)
            if real not in SKIMAGE_IMAGES:
                raise ValueError(f"images: {spec!r} is not a bundled picture, phantom:K, file, folder "
                                 f"or .h5 dataset; bundled: {sorted(have)}")
            if real not in have:
                raise ValueError(f"images: {spec!r} is not bundled with the installed scikit-image")
            out.append(ImageSource(spec, "skimage", spec))
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"images: several images have the same name {dup}; rename the files")
    return out


def _digest(a: np.ndarray | torch.Tensor) -> str:
    arr = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a,
                               dtype=np.float64)
    return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------ PSFs
def _parse_spec_locally(spec: str) -> torch.Tensor:  # pragma: no cover - used only without psf.from_spec
    from .. import psf as psfs

    m = re.fullmatch(r"\s*(gaussian|motion|disk|airy)\s*:\s*([^:]+)", spec, flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"psf spec {spec!r}: expected gaussian:SIGMA, motion:LENGTH[,ANGLE], disk:RADIUS, "
                         "airy:RADIUS or a .npy file")
    kind, params = m.group(1).lower(), [float(v) for v in m.group(2).split(",")]
    return getattr(psfs, kind)(*params)


def resolve_psf(spec: str) -> torch.Tensor:
    """A PSF (float64, unit sum) from a spec or file, through :func:`physinv.psf.from_spec`.

    Examples
    --------
    >>> resolve_psf("disk:4").shape
    torch.Size([9, 9])
    """
    from .. import psf as psfs

    if not isinstance(spec, str):
        raise TypeError(f"psf spec must be a str, got {type(spec).__name__}")
    try:
        if hasattr(psfs, "from_spec"):
            return psfs.from_spec(spec).to(torch.float64)
        return _parse_spec_locally(spec)
    except (ValueError, TypeError) as e:
        raise ValueError(f"psfs: {e}") from None


def _psf_name(spec: str) -> str:
    return os.path.splitext(os.path.basename(spec))[0] if os.path.isfile(spec) else spec


# ------------------------------------------------------------------------ data
def simulate(scene: np.ndarray | torch.Tensor, psf: torch.Tensor, noise_sigma: float, boundary: str,
             size: int, margin: int, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The truth frame and the blurred, noisy data of one scene (float64, CPU).

    Parameters
    ----------
    scene : array
        ``(size + 2 margin)`` square scene.
    psf : torch.Tensor
        Unit-sum PSF, centre at ``(kh // 2, kw // 2)``.
    noise_sigma : float
        White Gaussian noise standard deviation.
    boundary : {"circular", "valid"}
        ``circular``: circular convolution of the frame. ``valid``: the frame
        of the linear convolution of the scene (``scipy.signal.fftconvolve``).
    size, margin : int
        Frame side and margin.
    generator : torch.Generator, optional
        Noise generator.

    Returns
    -------
    (truth, y) : torch.Tensor
        Both ``(size, size)``.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> x, y = simulate(torch.ones(24, 24), psf.gaussian(1.0), 0.0, "valid", 16, 4)
    >>> bool(torch.allclose(y, torch.ones(16, 16, dtype=torch.float64)))
    True
    """
    from scipy.signal import fftconvolve

    from ..operators import Convolution

    s = np.asarray(scene.detach().cpu().numpy() if isinstance(scene, torch.Tensor) else scene, np.float64)
    side = size + 2 * margin
    if s.shape != (side, side):
        raise ValueError(f"scene must be {side} x {side} (size + 2 margin), got {s.shape}")
    k = psf.detach().cpu().to(torch.float64)
    kh, kw = k.shape
    c0, c1 = kh // 2, kw // 2
    need = max(c0, kh - 1 - c0, c1, kw - 1 - c1)
    if need > margin:
        raise ValueError(f"margin {margin} is smaller than the PSF's half-width {need} (PSF {kh} x {kw}); "
                         f"use margin >= {need}")
    truth = torch.from_numpy(s[margin:margin + size, margin:margin + size].copy())
    if boundary == "circular":
        clean = Convolution(k, (size, size))(truth)
    elif boundary == "valid":
        full = fftconvolve(s, k.numpy(), mode="full")
        clean = torch.from_numpy(full[margin + c0:margin + c0 + size, margin + c1:margin + c1 + size].copy())
    else:
        raise ValueError(f"boundary must be one of {DATA_BOUNDARIES}, got {boundary!r}")
    noise = torch.randn(size, size, generator=generator, dtype=torch.float64)
    return truth, clean + float(noise_sigma) * noise


# ---------------------------------------------------------------------- cells
@dataclass
class _Plan:
    config: DeconvConfig
    images: list[ImageSource]
    scenes: dict[str, np.ndarray]
    image_keys: dict[str, dict[str, Any]]
    psfs: dict[str, torch.Tensor]
    psf_keys: dict[str, dict[str, Any]]
    methods: list[Method]
    cells: list[Cell]


def _plan(config: DeconvConfig) -> _Plan:
    methods = select_methods(list(config.methods) if config.methods else None, list(config.exclude),
                             quick=config.quick)
    if not methods:
        raise ValueError("methods: the selection is empty (check --methods / --exclude)")
    images = resolve_images(config.images)
    if any(m.needs_training for m in methods):
        leak = [s.name for s in images if s.split == "train"]
        if leak:
            raise ValueError(f"images: {leak} belong to the training split, and the selection has learned "
                             f"methods ({[m.name for m in methods if m.needs_training]}); test on other "
                             "pictures")
    side = config.size + 2 * config.margin
    scenes, image_keys = {}, {}
    for s in images:
        scenes[s.name] = scene = s.load(side)
        image_keys[s.name] = {"name": s.name, "source": s.source, "digest": _digest(scene)}
    psfs, psf_keys = {}, {}
    for spec in config.psfs:
        k = resolve_psf(spec)
        kh, kw = k.shape
        need = max(kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2)
        if need > config.margin:
            raise ValueError(f"psfs: {spec!r} ({kh} x {kw}) needs a scene margin of {need} pixels, more than "
                             f"margin={config.margin}")
        if kh > config.size or kw > config.size:
            raise ValueError(f"psfs: {spec!r} ({kh} x {kw}) is larger than the {config.size}-pixel frame")
        psfs[spec] = k
        psf_keys[spec] = {"spec": _psf_name(spec), "shape": [kh, kw], "digest": _digest(k)}
    cells = []
    for s in images:
        for spec in config.psfs:
            for sigma in config.noises:
                for b in config.boundaries:
                    for m in methods:
                        if b not in m.boundaries:
                            continue
                        cfg = {
                            "study": STUDY, "protocol": PROTOCOL_VERSION, "image": image_keys[s.name],
                            "psf": psf_keys[spec], "noise_sigma": sigma, "boundary": b,
                            "method": m.identity(), "size": config.size, "margin": config.margin,
                            "crop": config.crop, "seed": config.seed,
                            "device": torch.device(config.device).type,
                        }
                        if b != "circular":
                            cfg["model"] = config.model
                        if m.needs_training:
                            cfg["n_train"] = config.n_train
                            group = {k: v for k, v in cfg.items() if k != "image"}
                        else:
                            group = None
                        meta = {"image": s.name, "psf": spec, "method": m.name}
                        cells.append(Cell(cfg, group=group, meta=meta))
    return _Plan(config, images, scenes, image_keys, psfs, psf_keys, methods, cells)


def make_cells(config: DeconvConfig) -> list[Cell]:
    """The cells of a configuration, in computation order (picture, PSF, noise, boundary, method).

    Examples
    --------
    >>> cfg = DeconvConfig(images=("moon",), psfs=("disk:2",), noises=(0.01, 0.03), size=32, margin=8,
    ...                    crop=2, methods=("blurred",))
    >>> len(make_cells(cfg))
    4
    """
    return _plan(config).cells


def _noise_seed(image_key: Mapping, psf_key: Mapping, sigma: float, seed: int) -> int:
    cid = config_id({"image": image_key, "psf": psf_key, "noise_sigma": sigma, "seed": seed})
    return int(cid, 16) % 2**63


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Runner:
    """Computes cells of one plan: data per setting (cached), training per setting, timing, metrics."""

    def __init__(self, plan: _Plan, store: CellStore, root: str) -> None:
        self.plan = plan
        self.store = store
        self.root = root
        self.device = torch.device(plan.config.device)
        self._data_key: tuple | None = None
        self._data: tuple[torch.Tensor, torch.Tensor, int] | None = None
        self._states: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.fig_image = plan.config.figure_image or plan.images[0].name

    def data(self, image: str, spec: str, sigma: float, boundary: str
             ) -> tuple[torch.Tensor, torch.Tensor, int]:
        key = (image, spec, sigma, boundary)
        if key != self._data_key:
            cfg = self.plan.config
            seed = _noise_seed(self.plan.image_keys[image], self.plan.psf_keys[spec], sigma, cfg.seed)
            g = torch.Generator().manual_seed(seed)
            truth, y = simulate(self.plan.scenes[image], self.plan.psfs[spec], sigma, boundary, cfg.size,
                                cfg.margin, g)
            self._data_key, self._data = key, (truth, y, seed)
        assert self._data is not None
        return self._data

    def state(self, method: Method, spec: str, sigma: float, boundary: str) -> tuple[Any, dict[str, Any]]:
        cfg = self.plan.config
        key_cfg = {"study": STUDY, "protocol": PROTOCOL_VERSION, "method": method.identity(),
                   "psf": self.plan.psf_keys[spec], "noise_sigma": sigma, "boundary": boundary,
                   "size": cfg.size, "margin": cfg.margin, "n_train": cfg.n_train, "seed": cfg.seed,
                   "model": cfg.model if boundary != "circular" else "circular",
                   "device": self.device.type}
        key = config_id(key_cfg)
        if key in self._states:
            return self._states[key]
        from ..train.checkpoint import CheckpointError, atomic_save, load_checkpoint

        pt = os.path.join(self.root, "train", key + ".pt")
        meta_path = os.path.join(self.root, "train", key + ".json")
        if os.path.isfile(pt) and os.path.isfile(meta_path):
            try:
                with open(meta_path, encoding="utf-8") as fh:
                    meta = json.load(fh)
                state = load_checkpoint(pt, map_location=self.device)  # digest-verified
                if meta.get("config") == json.loads(json.dumps(key_cfg)):
                    self._states[key] = (state, meta)
                    return self._states[key]
            except (OSError, ValueError, RuntimeError, KeyError, CheckpointError):
                pass  # a damaged or foreign file: train again and replace it
        side = cfg.size + 2 * cfg.margin
        images, names = splits.training_images(side, cfg.n_train, seed=cfg.seed)
        tcfg = {"size": cfg.size, "margin": cfg.margin, "n_train": len(images), "seed": cfg.seed,
                "device": str(self.device), "model": key_cfg["model"], **dict(method.train_config)}
        t0 = time.perf_counter()
        state = method.train(images, self.plan.psfs[spec].to(self.device), sigma, boundary, tcfg)
        _sync(self.device)
        seconds = time.perf_counter() - t0
        meta = {"config": json.loads(json.dumps(key_cfg)), "n_train": len(images), "train_seconds": seconds,
                "train_images": names}
        atomic_save(state, pt)
        write_json(meta_path, meta)
        self._states[key] = (state, meta)
        return self._states[key]

    def __call__(self, cell: Cell) -> dict[str, Any]:
        from ..metrics import psnr, ssim
        from .methods import get_method

        cfg = self.plan.config
        image, spec, mname = cell.meta["image"], cell.meta["psf"], cell.meta["method"]
        sigma, boundary = cell.config["noise_sigma"], cell.config["boundary"]
        method = get_method(mname)
        truth, y, seed = self.data(image, spec, sigma, boundary)
        n_train, train_seconds, state = 0, 0.0, None
        if method.needs_training:
            state, meta = self.state(method, spec, sigma, boundary)
            n_train, train_seconds = int(meta["n_train"]), float(meta["train_seconds"])
        dev = self.device
        problem = Problem(y=y.to(dev), psf=self.plan.psfs[spec].to(dev), boundary=boundary,
                          model="circular" if boundary == "circular" else cfg.model, seed=seed % 2**32,
                          crop=cfg.crop, truth=truth.to(dev) if method.oracle else None,
                          noise_sigma=sigma if method.oracle else None, state=state)
        best = math.inf
        runs = 0
        while True:
            _sync(dev)
            t0 = time.perf_counter()
            out = method.fn(problem)
            _sync(dev)
            dt = time.perf_counter() - t0
            best = min(best, dt)
            runs += 1
            info = out[1] if isinstance(out, tuple) else {}
            if "seconds" in info or runs >= cfg.timing_repeats or dt >= 0.3:
                break
        x, info = (out if isinstance(out, tuple) else (out, {}))
        info = dict(info)
        seconds = float(info.pop("seconds", best))
        x = torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float64)
        if tuple(x.shape) != (cfg.size, cfg.size):
            raise ValueError(f"method {mname!r} returned shape {tuple(x.shape)}, expected "
                             f"{(cfg.size, cfg.size)}")
        finite = bool(torch.isfinite(x).all())
        xc = torch.nan_to_num(x, nan=0.0).clamp(0.0, 1.0)
        c = cfg.crop
        sl = (slice(c, cfg.size - c), slice(c, cfg.size - c))
        p = float(psnr(xc[sl], truth[sl], data_range=1.0))
        s = float(ssim(xc[sl], truth[sl], data_range=1.0))
        if cfg.figures and image == self.fig_image:
            from .._io import atomic_write

            prev = np.round(xc.numpy() * 255).astype(np.uint8)
            atomic_write(self.store.path(cell.id, ".preview.npy"), lambda fh: np.save(fh, prev))
        return {"psnr": p, "ssim": s, "seconds": seconds, "finite": finite, "n_train": n_train,
                "train_seconds": train_seconds, "params": _jsonable(info), "threads": torch.get_num_threads()}


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().tolist() if v.numel() > 1 else float(v)
        elif isinstance(v, np.generic):
            v = v.item()
        try:
            json.dumps(v)
        except TypeError:
            v = repr(v)
        out[str(k)] = v
    return out


# --------------------------------------------------------------------- results
@dataclass
class DeconvResults(StudyCounts):
    """What :func:`run` returns (and wrote to ``out``)."""

    config: DeconvConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    goals: list[str]
    table: str
    markdown: str
    paths: dict[str, str]


def _rows(plan: _Plan, records: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from .methods import get_method

    rows = []
    for cell in plan.cells:
        rec = records.get(cell.id)
        if rec is None:
            continue
        r = rec["result"]
        m = get_method(cell.meta["method"])
        b = cell.config["boundary"]
        model = {"circular": "circular", "zero": "zero", "none": "-", "learned": "learned"}.get(m.assumes)
        if model is None:
            model = "circular" if b == "circular" else plan.config.model
        src = next(s for s in plan.images if s.name == cell.meta["image"])
        rows.append({
            "image": cell.meta["image"], "psf": _psf_name(cell.meta["psf"]),
            "noise_sigma": cell.config["noise_sigma"], "boundary": b, "method": m.name, "oracle": m.oracle,
            "psnr": r["psnr"], "ssim": r["ssim"], "seconds": r["seconds"], "family": m.family,
            "n_train": r.get("n_train", 0), "train_seconds": r.get("train_seconds", 0.0), "label": m.label,
            "assumes": m.assumes, "model": model, "split": src.split,
            "params": json.dumps(r.get("params", {}), sort_keys=True), "cell_id": cell.id,
        })
    return rows


def _per_image(rows: Sequence[Mapping[str, Any]], method: str, boundary: str, key: str) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == method and r["boundary"] == boundary:
            acc.setdefault(r["image"], []).append(float(r[key]))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per method and boundary: mean PSNR / SSIM over pictures with 95 % t-intervals, median seconds.

    Each picture first contributes its mean over PSFs and noise levels; the
    interval is over pictures (``nan`` with a single picture).
    """
    out = []
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for b in dict.fromkeys(r["boundary"] for r in rows):
        for m in methods:
            sel = [r for r in rows if r["method"] == m and r["boundary"] == b]
            if not sel:
                continue
            ps = _per_image(rows, m, b, "psnr")
            ss = _per_image(rows, m, b, "ssim")
            pm, plo, phi = mean_ci(ps.values())
            sm, slo, shi = mean_ci(ss.values())
            out.append({"method": m, "boundary": b, "label": sel[0]["label"], "family": sel[0]["family"],
                        "oracle": bool(sel[0]["oracle"]), "assumes": sel[0]["assumes"],
                        "model": sel[0]["model"],
                        "n_images": len(ps), "n_cells": len(sel), "psnr": pm, "psnr_lo": plo, "psnr_hi": phi,
                        "ssim": sm, "ssim_lo": slo, "ssim_hi": shi,
                        "seconds": float(np.median([float(r["seconds"]) for r in sel])),
                        "n_train": max(int(r["n_train"] or 0) for r in sel),
                        "train_seconds": float(sum(float(r["train_seconds"] or 0.0) for r in sel)
                                               / max(1, len(sel)))})
    return out


def _automatic(s: Mapping[str, Any]) -> bool:
    return not s["oracle"] and s["family"] != "baseline"


def _best_automatic(summary: Sequence[Mapping[str, Any]], boundary: str) -> Mapping[str, Any] | None:
    cand = [s for s in summary if s["boundary"] == boundary and _automatic(s)]
    return max(cand, key=lambda s: s["psnr"]) if cand else None


def _ci(m: float, lo: float, hi: float, digits: int = 2) -> str:
    if math.isnan(lo):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _paired(rows: Sequence[Mapping[str, Any]], a: str, b: str, boundary: str
            ) -> tuple[float, float, float, int] | None:
    pa, pb = _per_image(rows, a, boundary, "psnr"), _per_image(rows, b, boundary, "psnr")
    common = sorted(set(pa) & set(pb))
    if not common:
        return None
    m, lo, hi = mean_ci([pa[k] - pb[k] for k in common])
    return m, lo, hi, len(common)


#: Pairs of (physinv method, scikit-image method) that do the same job, compared for speed.
SPEED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("tikhonov-oracle", "skimage-wiener-oracle", "one fixed-parameter quadratic filter"),
    ("wiener-powerlaw", "skimage-unsupervised-wiener", "a linear filter that tunes itself"),
    ("tikhonov-discrepancy", "skimage-unsupervised-wiener", "a linear filter that tunes itself"),
    ("richardson-lucy-30", "skimage-richardson-lucy", "30 Richardson-Lucy iterations"),
)


def goals(rows: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
    """The goals of the benchmark, measured on ``rows``, as printable lines.

    1. Circular boundary: the best automatic method (no oracle) against
       scikit-image's ``wiener`` with the oracle balance, and against
       ``unsupervised_wiener`` (target: +1.5 dB).
    2. Realistic boundary: physinv's boundary-aware solvers against every
       method that assumes a circular model.
    3. Speed against scikit-image for pairs that do the same job.

    Differences are paired over pictures (per-picture means), with a 95 %
    t-interval.
    """
    summary = summarize(rows) if summary is None else summary
    out = []
    by = {(s["method"], s["boundary"]): s for s in summary}
    best = _best_automatic(summary, "circular")
    if best is None:
        out.append("1. circular boundary: no automatic method in the results")
    else:
        out.append(f"1. circular boundary: best automatic method {best['method']} ({best['psnr']:.2f} dB)")
        for other, target in (("skimage-wiener-oracle", None), ("skimage-unsupervised-wiener", 1.5)):
            d = _paired(rows, best["method"], other, "circular")
            if d is None:
                out.append(f"   vs {other}: not in the results")
                continue
            m, lo, hi, n = d
            verdict = ""
            if target is not None:
                verdict = f" -> target +{target} dB {'MET' if m >= target else 'NOT MET'}"
            else:
                verdict = f" ({'above' if m > 0 else 'below'} the oracle-balance Wiener)"
            out.append(f"   vs {other}: {m:+.2f} dB, 95% CI {_ci(m, lo, hi)} over {n} pictures{verdict}")
    aware = [s for s in summary if s["boundary"] == "valid" and s["assumes"] == "matched" and _automatic(s)]
    circ = [s for s in summary if s["boundary"] == "valid" and s["assumes"] == "circular"]
    if not aware or not circ:
        out.append("2. realistic boundary: needs boundary-aware and circular-model methods on 'valid' data")
    else:
        ba = max(aware, key=lambda s: s["psnr"])
        bc = max(circ, key=lambda s: s["psnr"])
        beaten = [s["method"] for s in circ if ba["psnr"] > s["psnr"]]
        worst_aware = min(aware, key=lambda s: s["psnr"])
        all_beat = sum(1 for s in circ if worst_aware["psnr"] > s["psnr"])
        d = _paired(rows, ba["method"], bc["method"], "valid")
        dtxt = "" if d is None else f", paired {d[0]:+.2f} dB, 95% CI {_ci(*d[:3])}"
        out.append(f"2. realistic boundary: best boundary-aware solver {ba['method']} ({ba['model']} model, "
                   f"{ba['psnr']:.2f} dB) vs best circular-model method {bc['method']}"
                   f"{' (oracle)' if bc['oracle'] else ''} ({bc['psnr']:.2f} dB){dtxt}: ahead of "
                   f"{len(beaten)}/{len(circ)} circular-model methods -> "
                   f"{'MET' if len(beaten) == len(circ) else 'NOT MET'}")
        out.append(f"   even the weakest boundary-aware solver ({worst_aware['method']}, "
                   f"{worst_aware['psnr']:.2f} dB) is ahead of {all_beat}/{len(circ)} circular-model methods")
    lines = []
    for a, b, job in SPEED_PAIRS:
        sa, sb = by.get((a, "circular")), by.get((b, "circular"))
        if sa is None or sb is None:
            continue
        ratio = sb["seconds"] / sa["seconds"] if sa["seconds"] > 0 else math.inf
        lines.append(f"   {a} {sa['seconds'] * 1e3:.1f} ms vs {b} {sb['seconds'] * 1e3:.1f} ms ({job}): "
                     f"physinv {ratio:.2f}x {'faster' if ratio >= 1 else 'SLOWER'}")
    if lines:
        out.append("3. speed, circular data, median seconds per image:")
        out.extend(lines)
    else:
        out.append("3. speed: no physinv / scikit-image pair in the results")
    return out


def _summary_tables(summary: Sequence[Mapping[str, Any]], boundaries: Sequence[str]) -> str:
    parts = []
    for b in boundaries:
        sel = sorted((s for s in summary if s["boundary"] == b), key=lambda s: -s["psnr"])
        if not sel:
            continue
        best = _best_automatic(summary, b)
        rows = []
        for s in sel:
            name = s["method"]
            if best is not None and s is best:
                name = f"**{name}** (best automatic)"
            rows.append([name, "yes" if s["oracle"] else "", s["family"], s["model"],
                         _ci(s["psnr"], s["psnr_lo"], s["psnr_hi"]),
                         _ci(s["ssim"], s["ssim_lo"], s["ssim_hi"], 3), f"{s['seconds']:.4f}",
                         s["n_train"] or "", f"{s['train_seconds']:.1f}" if s["train_seconds"] else ""])
        title = {"circular": "circular boundary (circular convolution)",
                 "valid": "realistic boundary ('valid': frame of a larger scene's linear convolution)"}[b]
        parts.append(f"### {title}\n\n" + markdown_table(
            ["method", "oracle", "family", "model", "PSNR dB [95% CI]", "SSIM [95% CI]", "s / image",
             "n_train", "train s"], rows, "lllllrrrr"))
    return "\n\n".join(parts)


def _setting_tables(rows: Sequence[Mapping[str, Any]], config: DeconvConfig) -> str:
    parts = []
    psfs = dict.fromkeys(r["psf"] for r in rows)
    settings = [(p, s) for p in psfs for s in dict.fromkeys(r["noise_sigma"] for r in rows)]
    for b in config.boundaries:
        methods = list(dict.fromkeys(r["method"] for r in rows if r["boundary"] == b))
        if not methods:
            continue
        table = []
        for m in methods:
            line = [m]
            for p, s in settings:
                v = [r["psnr"] for r in rows if r["boundary"] == b and r["method"] == m and r["psf"] == p
                     and r["noise_sigma"] == s]
                line.append(f"{np.mean(v):.2f}" if v else "")
            table.append(line)
        parts.append(f"#### {b}: mean PSNR (dB) over pictures per PSF and noise level\n\n" + markdown_table(
            ["method"] + [f"{p} / {s:g}" for p, s in settings], table, "l" + "r" * len(settings)))
    return "\n\n".join(parts)


def _markdown(res_rows, summary, goal_lines, plan: _Plan, n_missing: int, failed, seconds: float) -> str:
    cfg = plan.config
    lines = [
        "# Deconvolution benchmark", "",
        f"Pictures: {', '.join(s.name for s in plan.images)} ({cfg.size} x {cfg.size} centre frame of a "
        f"{cfg.size + 2 * cfg.margin}-pixel square scene: shorter side resized, anti-aliased). "
        f"PSFs: {', '.join(_psf_name(p) for p in cfg.psfs)}. "
        f"Noise sigma: {', '.join(f'{s:g}' for s in cfg.noises)}. "
        f"Boundaries: {', '.join(cfg.boundaries)} (boundary-aware model on realistic data: {cfg.model}).", "",
        f"Metrics: outputs clipped to [0, 1]; PSNR / SSIM with data range 1 on the frame without a "
        f"{cfg.crop}-pixel border; seconds per image (wall clock, best of up to {cfg.timing_repeats} runs "
        f"below 0.3 s; oracles time their final solve). Intervals: {CI_METHOD} over pictures of the "
        "per-picture mean over PSFs and noise levels.", "",
        f"{len(res_rows)} cells in the tables; {n_missing} missing (other shards or failed).", "",
        "## Summary", "", _summary_tables(summary, cfg.boundaries), "", "## Goals", "", "```",
        *goal_lines, "```", "", "## Per setting", "", _setting_tables(res_rows, cfg), "",
        "## Methods", "",
        markdown_table(["method", "label"], [[m.name, m.label] for m in plan.methods]), "",
    ]
    if failed:
        lines += ["## Failed cells", ""] + [f"- {cid}: {msg}" for cid, msg in failed] + [""]
    return "\n".join(lines)


# -------------------------------------------------------------------- figures
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def _figures(plan: _Plan, runner: _Runner, store: CellStore, rows, summary, root: str) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched

    cfg = plan.config
    fdir = os.path.join(root, "figures")
    written = []
    img = runner.fig_image
    psnr_of = {r["cell_id"]: r["psnr"] for r in rows}
    for spec in cfg.psfs:
        for sigma in cfg.noises:
            for b in cfg.boundaries:
                cells = [c for c in plan.cells if c.meta["image"] == img and c.meta["psf"] == spec
                         and c.config["noise_sigma"] == sigma and c.config["boundary"] == b]
                panels = []
                truth, y, _ = runner.data(img, spec, sigma, b)
                panels.append(("truth", truth.numpy(), None))
                from ..metrics import psnr

                c0 = cfg.crop
                sl = (slice(c0, cfg.size - c0), slice(c0, cfg.size - c0))
                panels.append(("blurred + noise", y.clamp(0, 1).numpy(),
                               float(psnr(y.clamp(0, 1)[sl], truth[sl]))))
                for c in cells:
                    if c.meta["method"] == "blurred":
                        continue
                    path = store.path(c.id, ".preview.npy")
                    if not os.path.isfile(path) or c.id not in psnr_of:
                        continue
                    panels.append((c.meta["method"], np.load(path).astype(np.float64) / 255.0, psnr_of[c.id]))
                ncol = min(6, len(panels))
                nrow = math.ceil(len(panels) / ncol)
                fig = Figure(figsize=(2.3 * ncol, 2.8 * nrow))
                axes = fig.subplots(nrow, ncol, squeeze=False)
                for ax in axes.ravel():
                    ax.axis("off")
                for ax, (title, im, p) in zip(axes.ravel(), panels):
                    ax.imshow(im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                    ax.set_title(title if p is None else f"{title}\n{p:.2f} dB", fontsize=7)
                fig.suptitle(f"{img}, {_psf_name(spec)}, noise {sigma:g}, {b} boundary", fontsize=9)
                fig.tight_layout()
                name = f"grid_{_slug(img)}_{_slug(_psf_name(spec))}_noise{sigma:g}_{b}.png"
                written.append(save_figure(fig, os.path.join(fdir, name)))
    bnds = [b for b in cfg.boundaries if any(s["boundary"] == b for s in summary)]
    if bnds:
        fig = Figure(figsize=(7 * len(bnds), 0.32 * len(summary) / len(bnds) + 1.6))
        axes = fig.subplots(1, len(bnds), squeeze=False)
        for ax, b in zip(axes[0], bnds):
            sel = sorted((s for s in summary if s["boundary"] == b), key=lambda s: s["psnr"])
            best = _best_automatic(summary, b)
            ys = np.arange(len(sel))
            vals = [s["psnr"] for s in sel]
            err = [[0 if math.isnan(s["psnr_lo"]) else s["psnr"] - s["psnr_lo"] for s in sel],
                   [0 if math.isnan(s["psnr_hi"]) else s["psnr_hi"] - s["psnr"] for s in sel]]
            colors = ["0.7" if s["oracle"] else ("C3" if s is best else "C0") for s in sel]
            ax.barh(ys, vals, xerr=err, color=colors, capsize=2)
            ax.set_yticks(ys, [s["method"] + (" (oracle)" if s["oracle"] else "") for s in sel], fontsize=7)
            lo = min(vals) - 1.0
            ax.set_xlim(max(0.0, lo), max(v for v in vals) + 1.0)
            ax.set_xlabel("mean PSNR over pictures (dB), 95% CI")
            ax.set_title(f"{b} boundary (red: best automatic, grey: oracle)", fontsize=9)
        fig.tight_layout()
        written.append(save_figure(fig, os.path.join(fdir, "psnr_by_method.png")))
    return written


# ------------------------------------------------------------------------ run
def run(config: DeconvConfig, out: str | os.PathLike, *, force: bool = False, shard: Shard | None = None,
        progress: bool = True, argv: Sequence[str] | None = None) -> DeconvResults:
    """Run (or resume) the benchmark and write its outputs to ``out``.

    Writes ``results.csv`` (one row per cell), ``results.md`` (summary
    tables, goals, per-setting tables), ``results.json`` (provenance, the
    full configuration, the summary and the goals), ``figures/*.png`` and
    ``cells/`` (one JSON per finished cell, read back on the next run). Prints
    nothing.

    Parameters
    ----------
    config : DeconvConfig
        What to run.
    out : str or os.PathLike
        Output folder (created if needed).
    force : bool
        Recompute cells that are already stored.
    shard : Shard, optional
        Compute only this shard's cells; the tables then cover every cell of
        the configuration found in ``out`` (those of other shards that share
        the folder, or merged in with :func:`physinv.bench._cells.merge_cells`).
    progress : bool
        Progress bar over the cells.
    argv : sequence of str, optional
        The command line (recorded in the provenance).

    Returns
    -------
    DeconvResults
    """
    from .provenance import collect

    if not isinstance(config, DeconvConfig):
        raise TypeError(f"config must be a DeconvConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    root = os.path.abspath(os.fspath(out))
    os.makedirs(root, exist_ok=True)
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        plan = _plan(config)
        store = CellStore(root, STUDY)
        runner = _Runner(plan, store, root)
        summary_run: RunSummary = run_cells(plan.cells, runner, store, force=force, shard=shard,
                                            progress=progress, desc="bench deconv", on_error="record")
        records = {}
        for c in plan.cells:
            rec = store.load(c)
            if rec is not None:
                records[c.id] = rec
        rows = _rows(plan, records)
        summary = summarize(rows) if rows else []
        goal_lines = goals(rows, summary) if rows else ["no finished cells"]
        n_missing = len(plan.cells) - len(rows)
        elapsed = time.perf_counter() - t0
        md = _markdown(rows, summary, goal_lines, plan, n_missing, summary_run.failed, elapsed)
        paths = {
            "csv": write_csv(os.path.join(root, "results.csv"), rows, RESULT_COLUMNS),
            "md": write_text(os.path.join(root, "results.md"), md),
        }
        fig_paths = []
        if config.figures and rows:
            fig_paths = _figures(plan, runner, store, rows, summary, root)
        methods_info = [{"name": m.name, "label": m.label, "family": m.family, "oracle": m.oracle,
                         "assumes": m.assumes, "needs_training": m.needs_training, "version": m.version,
                         "params": dict(m.params)} for m in plan.methods]
        extra = {
            "study": STUDY, "protocol": PROTOCOL_VERSION, "shard": str(shard) if shard else None,
            "images": [{**plan.image_keys[s.name], "split": s.split} for s in plan.images],
            "psfs": [plan.psf_keys[p] for p in config.psfs],
            "methods": methods_info,
            "splits": {"train": list(splits.TRAIN_IMAGES), "test": list(splits.TEST_IMAGES)},
            "metrics": {"data_range": 1.0, "crop": config.crop, "clip": [0.0, 1.0], "ci": CI_METHOD,
                        "ci_unit": "picture (mean over PSFs and noise levels)"},
            "counts": {"cells": len(plan.cells), "computed": summary_run.computed,
                       "reused": summary_run.reused, "other_shards": summary_run.other_shards,
                       "missing": n_missing, "failed": len(summary_run.failed)},
            "failed": [{"cell_id": a, "error": b} for a, b in summary_run.failed],
            "summary": summary, "goals": goal_lines, "seconds": elapsed,
            "figures": [os.path.relpath(p, root) for p in fig_paths],
        }
        prov = collect(config.to_dict(), device=config.device, threads=torch.get_num_threads(),
                       seed=config.seed, argv=argv, extra=extra)
        paths["json"] = write_json(os.path.join(root, "results.json"), prov)
        if fig_paths:
            paths["figures"] = os.path.join(root, "figures")
    finally:
        torch.set_num_threads(old_threads)
    return DeconvResults(config=config, rows=rows, summary=summary, goals=goal_lines,
                         table=_summary_tables(summary, config.boundaries), markdown=md, paths=paths,
                         computed=summary_run.computed, reused=summary_run.reused,
                         other_shards=summary_run.other_shards, missing=n_missing, failed=summary_run.failed,
                         seconds=time.perf_counter() - t0)


def methods_table() -> str:
    """A markdown table of every registered method (name, oracle, family, default/quick, boundaries, label).

    Examples
    --------
    >>> "wiener-mmse-oracle" in methods_table()
    True
    """
    from .methods import available_methods

    rows = [[m.name, "yes" if m.oracle else "", m.family, m.assumes,
             "default" if m.default else "", "quick" if m.quick else "", ",".join(m.boundaries), m.label]
            for m in available_methods()]
    header = ["method", "oracle", "family", "assumes", "default", "quick", "boundaries", "label"]
    return markdown_table(header, rows)
