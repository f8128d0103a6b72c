"""Infrared studies: which pipeline finds hot objects best, and how many training frames it needs.

``run`` (:func:`run`) compares pipelines on frames simulated by
:func:`physinv.ir.camera.simulate` (a FLIR Boson- or Tau 2-like camera,
small detector for speed) at several noise levels, each a multiple of the
camera's NETD, with the same fixed test frames for every method:

classical (:data:`FAMILIES` ``"classical"``)
    No training: the measured radiance (``none``), Wiener, Tikhonov-GCV or
    TV restoration with their data-driven parameter rules
    (:class:`physinv.ir.pipeline.Reconstruct`), then Otsu's threshold.
physics-constrained (``"physics"``)
    Plug-and-play HQS with the shipped denoiser (no training), and a
    :class:`~physinv.nets.SpectralFilterNet` (the detector blur's fixed
    Fourier factorization with one learned filter value per frequency)
    trained on simulated frames, followed by Otsu's threshold or by a
    :class:`~physinv.ir.segment.SegmentationHead` trained on its outputs.
data-driven (``"data-driven"``)
    Networks of :mod:`physinv.nets` that know nothing of the optics: a
    :class:`~physinv.nets.UNet` trained from the corrected frames directly
    to the mask (``unet-mask``; no temperature map, so no RMSE or PSNR) and a
    :class:`~physinv.nets.DnCNN` trained from the corrected frames to the
    clean radiance, then Otsu (``dncnn+otsu``).

Every learned method trains from scratch for the same number of Adam steps
on ``n_train`` frames simulated at the test noise level (flips as
augmentation), seeded. A learning curve repeats the learned methods of
``lc_methods`` for training sizes ``sizes`` and seeds ``seeds`` at noise
level ``lc_noise``. Counts are turned into radiance with the simulation's
gain and offset maps (a camera whose factory two-point NUC is exact); the
inverted model is the camera's detector-grid blur
(``camera.detector_operator()``), while the data were made by blurring on the
finer scene grid and area-sampling onto the detector.

Cells are stored with :mod:`physinv.bench._cells`, so a study resumes and
shards. Outputs in the folder: ``results.csv`` (one row per method and noise
level), ``learning_curve.csv``, ``results.md``, ``results.json``
(provenance), ``figures/``.

Examples
--------
>>> cfg = IRBenchConfig(detector_shape=(32, 40), noise_levels=(1.0,), methods=("wiener+otsu",),
...                     n_test=1, lc_methods=(), figures=False)
>>> [c.config["method"] for c in make_cells(cfg)]
['wiener+otsu']
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..bench import provenance
from ..bench._cells import Cell, CellStore, Shard, StudyCounts, run_cells
from ..bench._config import int_list
from ..bench._report import markdown_table, save_figure, write_csv, write_json, write_text
from .pipeline import Pipeline, RadianceScale, Reconstruct, evaluate, train_spectral
from .segment import SCALE_K, _Flips, bce_dice_loss, train_segmentation_head

__all__ = ["STUDY", "METHODS", "FAMILIES", "TRAINED", "NOISE_LEVELS", "QUICK", "CSV_COLUMNS", "LC_COLUMNS",
           "IRBenchConfig", "IRBenchResults", "make_cells", "compute_cell", "run", "rows_from_records",
           "goals", "report", "CAMERAS"]

#: Name of the study in the cell files.
STUDY = "ir-bench"
FAMILIES = ("classical", "physics", "data-driven")
#: Methods: name -> (family, restoration, segmentation).
METHODS: dict[str, tuple[str, str, str]] = {
    "none+otsu": ("classical", "none", "otsu"),
    "wiener+otsu": ("classical", "wiener", "otsu"),
    "tikhonov-gcv+otsu": ("classical", "tikhonov-gcv", "otsu"),
    "tv+otsu": ("classical", "tv", "otsu"),
    "pnp+otsu": ("physics", "pnp", "otsu"),
    "spectral+otsu": ("physics", "spectral", "otsu"),
    "spectral+head": ("physics", "spectral", "head"),
    "none+head": ("data-driven", "none", "head"),
    "unet-mask": ("data-driven", "unet", "mask"),
    "dncnn+otsu": ("data-driven", "dncnn", "otsu"),
}
#: Methods that train on simulated frames.
TRAINED = ("spectral+otsu", "spectral+head", "none+head", "unet-mask", "dncnn+otsu")
#: Noise levels, in multiples of the camera's NETD.
NOISE_LEVELS = (1.0, 4.0, 16.0)
#: Adam learning rate of the per-frequency spectral filter (the CNNs use 1e-3, the head 3e-3).
SPECTRAL_LR = 5e-2
#: Side of the square training tiles of the convolutional networks (the spectral filter sees whole frames).
CROP = 64
CAMERAS = ("boson", "tau2")
#: The ``--quick`` configuration.
QUICK: dict[str, Any] = {"n_test": 2, "n_train": 4, "sizes": (1, 4), "seeds": (0,), "steps": 100,
                         "methods": ("none+otsu", "wiener+otsu", "pnp+otsu", "spectral+head", "unet-mask"),
                         "lc_methods": ("spectral+head", "unet-mask")}
CSV_COLUMNS = ("method", "family", "noise_level", "noise_k", "dice", "iou", "temperature_rmse_k", "psnr",
               "n_train", "n_test", "train_seconds", "seconds", "clamped", "cell")
LC_COLUMNS = ("method", "family", "noise_level", "n_train", "seed", "dice", "iou", "temperature_rmse_k",
              "psnr", "train_seconds", "cell")


@dataclass
class IRBenchConfig:
    """Everything an infrared study depends on (see the module docstring).

    Parameters
    ----------
    camera : {"boson", "tau2"}
        Camera model (:class:`physinv.ir.camera.Camera` presets).
    detector_shape : (int, int)
        Detector rows and columns (small for speed; the presets are 512 x 640).
    noise_levels : tuple of float
        Noise levels in multiples of the camera's NETD.
    methods : tuple of str or None
        Methods of the comparison (default all of :data:`METHODS`).
    n_train : int
        Training frames of the learned methods in the comparison.
    n_test : int
        Test frames (the same for every method).
    lc_methods : tuple of str or None
        Learned methods of the learning curve (default ``spectral+head``,
        ``none+head`` and ``unet-mask``); ``()`` for none.
    sizes, seeds : tuple of int
        Training-set sizes and seeds of the learning curve.
    lc_noise : float or None
        Noise level of the learning curve (default the first of ``noise_levels``).
    steps : int
        Adam steps of every learned method.
    fpn : bool
        Simulate fixed-pattern noise (removed by the NUC before restoration).
    seed : int
        Seed of the test frames.

    Examples
    --------
    >>> cfg = IRBenchConfig()
    >>> cfg.noise_levels, cfg.lc_noise, cfg.lc_methods
    ((1.0, 4.0, 16.0), 1.0, ('spectral+head', 'none+head', 'unet-mask'))
    >>> len(make_cells(cfg)), len(make_cells(IRBenchConfig(**QUICK)))
    (72, 17)
    >>> IRBenchConfig(methods=("magic",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: methods: unknown ['magic']; choose from [...]
    """

    camera: str = "boson"
    detector_shape: tuple[int, int] = (128, 160)
    noise_levels: tuple[float, ...] = NOISE_LEVELS
    methods: tuple[str, ...] | None = None
    n_train: int = 16
    n_test: int = 8
    lc_methods: tuple[str, ...] | None = None
    sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: tuple[int, ...] = (0, 1, 2)
    lc_noise: float | None = None
    steps: int = 300
    fpn: bool = True
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    figures: bool = True
    quick: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise ValueError(f"camera: must be one of {CAMERAS}, got {self.camera!r}")
        shape = tuple(self.detector_shape)
        if len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 16 for v in shape):
            raise ValueError(f"detector_shape: must be (rows, cols), each an int >= 16, got "
                             f"{self.detector_shape}")
        self.detector_shape = shape
        levels = tuple(self.noise_levels)
        if not levels or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                             or v <= 0 for v in levels):
            raise ValueError(f"noise_levels: must be a non-empty list of finite numbers > 0, got {levels}")
        if len(set(levels)) != len(levels):
            raise ValueError(f"noise_levels: duplicates in {levels}")
        self.noise_levels = tuple(float(v) for v in levels)
        if self.methods is not None:
            self.methods = tuple(self.methods)
            bad = [m for m in self.methods if m not in METHODS]
            if bad or not self.methods:
                raise ValueError(f"methods: unknown {bad or 'empty list'}; choose from {sorted(METHODS)}")
        if self.lc_methods is None:
            self.lc_methods = ("spectral+head", "none+head", "unet-mask")
        self.lc_methods = tuple(self.lc_methods)
        bad = [m for m in self.lc_methods if m not in TRAINED]
        if bad:
            raise ValueError(f"lc_methods: {bad} are not learned methods; choose from {list(TRAINED)}")
        for name, low in (("n_train", 1), ("n_test", 1), ("steps", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: must be an int >= {low}, got {v!r}")
        self.sizes = int_list("sizes", self.sizes, 1)
        self.seeds = int_list("seeds", self.seeds, 0)
        if self.lc_methods and (not self.sizes or not self.seeds):
            raise ValueError("sizes: the learning curve needs at least one size and one seed")
        if self.lc_noise is None:
            self.lc_noise = self.noise_levels[0]
        lcn = self.lc_noise
        if isinstance(lcn, bool) or not (isinstance(lcn, (int, float)) and math.isfinite(lcn) and lcn > 0):
            raise ValueError(f"lc_noise: must be a finite number > 0, got {self.lc_noise!r}")
        self.lc_noise = float(self.lc_noise)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be an int >= 0, got {self.seed!r}")

    def methods_run(self) -> tuple[str, ...]:
        return tuple(METHODS) if self.methods is None else self.methods


# ----------------------------------------------------------------------------- data

def camera_for(name: str, detector_shape: Sequence[int]) -> Any:
    """The camera preset ``name`` (``"boson"`` or ``"tau2"``) with a given detector shape.

    Examples
    --------
    >>> camera_for("tau2", (32, 40)).detector_shape
    (32, 40)
    """
    from .camera import Camera

    if name not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {name!r}")
    preset = Camera.boson if name == "boson" else Camera.tau2
    return preset(detector_shape=tuple(int(v) for v in detector_shape))


#: Offsets that keep training and test frames apart (test frames use seeds from here on).
TEST_SEED_OFFSET = 1_000_000


class _Data:
    """Cached simulations (test set per noise level, training sets per seed and size)."""

    _cache: dict[tuple, Any] = {}

    @classmethod
    def frames(cls, cfg: Mapping[str, Any], n: int, seed: int, noise: float) -> Any:
        from .camera import simulate

        key = (cfg["camera"], tuple(cfg["detector_shape"]), bool(cfg["fpn"]), int(n), int(seed), float(noise))
        if key not in cls._cache:
            if len(cls._cache) > 8:
                cls._cache.clear()
            cam = camera_for(cfg["camera"], cfg["detector_shape"])
            cls._cache[key] = simulate(int(n), cam, seed=int(seed), noise_scale=float(noise),
                                       fpn=bool(cfg["fpn"]))
        return cls._cache[key]


def to_radiance(frames: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """Radiance of simulated frames through their true gain and offset maps (an exact two-point NUC).

    ``L = (counts - offset) / (gain * responsivity)`` with the frames' own
    per-frame offsets (drift included).

    Examples
    --------
    >>> from physinv.ir.camera import simulate
    >>> f = simulate(1, camera_for("boson", (32, 40)), seed=0, noise_scale=0.0)
    >>> L = to_radiance(f)
    >>> blurred = f.camera.detector_operator()(f.radiance)  # the detector-grid model of the blur
    >>> bool((L - blurred).abs().mean() < (L - f.radiance).abs().mean())
    True
    """
    dev = torch.device(device)
    counts = frames.counts.to(dev, torch.float64)
    gain = frames.gain.to(dev, torch.float64)
    return (counts - frames.offsets().to(dev, torch.float64)) / (gain * float(frames.camera.responsivity))


def _centered(u: torch.Tensor, scale: RadianceScale, camera: Any) -> torch.Tensor:
    """Input of the data-driven nets: ``(u - median(u)) / u-units of SCALE_K kelvin`` per frame."""
    from .physics import band_radiance_derivative

    lo, hi = scale.endpoints()
    unit = float(band_radiance_derivative(300.0, camera.band_um)) * SCALE_K / (hi - lo)
    med = u.flatten(-2).median(-1).values[..., None, None]
    return ((u - med) / unit).float()


def _train_net(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Any, steps: int, seed: int,
               device: torch.device) -> float:
    from ..train import Trainer

    t0 = time.perf_counter()
    data = _Flips(x, y, True, CROP, seed)
    bs = min(4, len(data))
    epochs = max(1, math.ceil(steps / math.ceil(len(data) / bs)))
    Trainer(net, loss=loss, train_data=data, batch_size=bs, epochs=epochs, seed=seed, lr=1e-3, progress=False,
            device=device).fit()
    return time.perf_counter() - t0


def compute_cell(cell: Cell) -> dict[str, Any]:
    """Train (learned methods) and evaluate one method at one noise level; a JSON-able result.

    Examples
    --------
    >>> cfg = IRBenchConfig(detector_shape=(32, 40), noise_levels=(1.0,), methods=("none+otsu",), n_test=1,
    ...                     lc_methods=())
    >>> r = compute_cell(make_cells(cfg)[0])
    >>> sorted(k for k in r if k in ("dice", "iou", "psnr", "temperature_rmse_k"))
    ['dice', 'iou', 'psnr', 'temperature_rmse_k']
    """
    from ..nets import DnCNN, UNet
    from ..train.rng import seed_everything

    c = cell.config
    method, noise = c["method"], float(c["noise_level"])
    family, rec_name, seg_name = METHODS[method]
    dev = torch.device(cell.meta.get("device", "cpu"))
    test = _Data.frames(c, c["n_test"], TEST_SEED_OFFSET + c["test_seed"], noise)
    cam = test.camera
    scale = RadianceScale(tuple(cam.band_um))
    A = cam.detector_operator().to(dev)
    y_test = to_radiance(test, dev)
    t_true = test.temperature_k.to(dev, torch.float64)
    m_true = test.mask.to(dev)
    train_seconds = 0.0
    net = head = None
    if method in TRAINED:
        n, seed, steps = c["n_train"], c["seed"], c["steps"]
        tr = _Data.frames(c, n, seed * 1_000 + 1, noise)
        y_tr = to_radiance(tr, dev)
        clean_tr = tr.radiance.to(dev, torch.float64)
        seed_everything(seed)
        t1 = time.perf_counter()
        if rec_name == "spectral":
            net = train_spectral(A, y_tr, clean_tr, scale=scale, steps=steps, lr=SPECTRAL_LR, seed=seed)
        if seg_name == "head":  # on the restored training frames, as the head will see them
            rec = Reconstruct(rec_name, None if rec_name == "none" else A, scale=scale, net=net)
            rec_tr = Pipeline(rec, segment=None, band_um=scale.band_um)(y_tr)
            head = train_segmentation_head(rec_tr.temperature_k, tr.mask.to(dev), steps=steps, seed=seed,
                                           crop=CROP, device=dev)
        if rec_name == "unet":
            net = UNet(channels=16, levels=2, zero_init=False).to(dev)
            _train_net(net, _centered(scale.forward(y_tr), scale, cam), tr.mask.to(dev).float(),
                       bce_dice_loss, steps, seed, dev)
        elif rec_name == "dncnn":  # corrected frame -> clean radiance (units u)
            net = DnCNN(depth=6, channels=32, residual=True).to(dev)
            _train_net(net, scale.forward(y_tr).float(), scale.forward(clean_tr).float(), None, steps, seed,
                       dev)
        train_seconds = time.perf_counter() - t1
    t0 = time.perf_counter()
    metrics: dict[str, Any] = {}
    clamped = 0
    if rec_name == "unet":
        net.eval()
        with torch.no_grad():
            logits = net(_centered(scale.forward(y_test), scale, cam))
        from ..metrics import dice, iou

        mask = logits > 0
        metrics = {"dice": dice(mask, m_true), "iou": iou(mask, m_true)}
    else:
        if rec_name == "dncnn":
            net.eval()

            def recon(L: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return scale.inverse(net(scale.forward(L).float()).double())
        else:
            recon = Reconstruct(rec_name, None if rec_name == "none" else A, scale=scale, net=net)
        pipe = Pipeline(recon, segment=head if head is not None else "otsu", band_um=scale.band_um)
        res = pipe(y_test)
        clamped = res.clamped
        metrics = evaluate(res, t_true, m_true)
    seconds = time.perf_counter() - t0
    each = {k: [float(v) for v in t.detach().cpu()] for k, t in metrics.items()}
    out: dict[str, Any] = {k: float(np.mean(v)) for k, v in each.items()}
    out.update({"each": each, "train_seconds": train_seconds, "seconds": seconds, "clamped": clamped,
                "netd_k": float(cam.netd_k)})
    return out


# ----------------------------------------------------------------------------- study

def make_cells(config: IRBenchConfig) -> list[Cell]:
    """The cells of a study: every method at every noise level, then the learning curve (no duplicates).

    Examples
    --------
    >>> cfg = IRBenchConfig(noise_levels=(1.0, 4.0), methods=("wiener+otsu", "unet-mask"), n_train=4,
    ...                     lc_methods=("unet-mask",), sizes=(1, 4), seeds=(0,))
    >>> for c in make_cells(cfg):
    ...     print(c.config["method"], c.config["noise_level"], c.config.get("n_train"))
    wiener+otsu 1 None
    unet-mask 1 4
    wiener+otsu 4 None
    unet-mask 4 4
    unet-mask 1 1
    """
    base = {"camera": config.camera, "detector_shape": list(config.detector_shape), "fpn": config.fpn,
            "n_test": config.n_test, "test_seed": config.seed}
    cells: list[Cell] = []
    seen: set[str] = set()

    def add(cfg: dict[str, Any]) -> None:
        cell = Cell(cfg, meta={"device": config.device})
        if cell.id not in seen:
            seen.add(cell.id)
            cells.append(cell)

    for noise in config.noise_levels:
        for m in config.methods_run():
            cfg = {**base, "method": m, "family": METHODS[m][0], "noise_level": noise}
            if m in TRAINED:
                cfg.update({"n_train": config.n_train, "seed": config.seeds[0] if config.seeds else 0,
                            "steps": config.steps})
            add(cfg)
    for m in config.lc_methods:
        for n in config.sizes:
            for s in config.seeds:
                add({**base, "method": m, "family": METHODS[m][0], "noise_level": config.lc_noise,
                     "n_train": n, "seed": s, "steps": config.steps})
    return cells


_ORDER = {"classical": 0, "physics": 1, "data-driven": 2}


def _row(rec: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    c, r = rec["config"], rec["result"]
    row = {"method": c["method"], "family": c["family"], "noise_level": c["noise_level"],
           "noise_k": round(c["noise_level"] * r["netd_k"], 6), "n_train": c.get("n_train", 0),
           "n_test": c["n_test"], "seed": c.get("seed", ""), "train_seconds": round(r["train_seconds"], 2),
           "seconds": round(r["seconds"], 2), "clamped": r["clamped"], "cell": rec["id"]}
    for k in ("dice", "iou", "temperature_rmse_k", "psnr"):
        row[k] = round(r[k], 5) if k in r else None
    return {k: row.get(k) for k in columns}


def rows_from_records(records: Sequence[Mapping[str, Any]], config: IRBenchConfig
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(comparison rows, learning-curve rows)`` from stored cells.

    The comparison has one row per method and noise level (learned methods at
    ``n_train`` frames, first seed); the learning curve one row per learned
    method, size and seed at ``lc_noise``.

    Examples
    --------
    >>> rec = {"id": "0" * 16, "config": {"method": "wiener+otsu", "family": "classical", "noise_level": 1.0,
    ...        "n_test": 2}, "result": {"dice": 0.5, "iou": 0.4, "temperature_rmse_k": 0.2, "psnr": 40.0,
    ...        "netd_k": 0.04, "train_seconds": 0.0, "seconds": 1.0, "clamped": 0}}
    >>> main, lc = rows_from_records([rec], IRBenchConfig(noise_levels=(1.0,), lc_methods=()))
    >>> main[0]["method"], main[0]["noise_k"], lc
    ('wiener+otsu', 0.04, [])
    """
    main, lc = [], []
    seed0 = config.seeds[0] if config.seeds else 0
    for rec in records:
        c = rec["config"]
        if (c["method"] in config.methods_run() and c["noise_level"] in config.noise_levels
                and (c["method"] not in TRAINED or (c["n_train"] == config.n_train and c["seed"] == seed0))):
            main.append(_row(rec, CSV_COLUMNS))
        if (c["method"] in config.lc_methods and c["noise_level"] == config.lc_noise
                and c.get("n_train") in config.sizes and c.get("seed") in config.seeds):
            lc.append(_row(rec, LC_COLUMNS))
    main.sort(key=lambda r: (r["noise_level"], _ORDER[r["family"]], r["method"]))
    lc.sort(key=lambda r: (_ORDER[r["family"]], r["method"], r["n_train"], r["seed"]))
    return main, lc


def _fmt(v: Any, nd: int = 3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _table(main: Sequence[Mapping[str, Any]], lc: Sequence[Mapping[str, Any]]) -> str:
    levels = sorted({r["noise_level"] for r in main})
    methods: list[tuple[str, str]] = []
    for r in sorted(main, key=lambda r: (_ORDER[r["family"]], r["method"])):
        if (r["method"], r["family"]) not in methods:
            methods.append((r["method"], r["family"]))
    by = {(r["method"], r["noise_level"]): r for r in main}
    body = []
    for m, fam in methods:
        cells = []
        for lv in levels:
            r = by.get((m, lv))
            cells.append("-" if r is None else f"{_fmt(r['dice'])} / {_fmt(r['temperature_rmse_k'])}")
        body.append([m, fam] + cells)
    parts = ["Dice / temperature RMSE (K) on the test frames, by noise level (x NETD)\n\n"
             + markdown_table(["method", "family"] + [f"{lv:g} x NETD" for lv in levels], body)]
    if lc:
        sizes = sorted({r["n_train"] for r in lc})
        groups: dict[tuple[str, int], list[float]] = {}
        fams = {}
        for r in lc:
            groups.setdefault((r["method"], r["n_train"]), []).append(r["dice"])
            fams[r["method"]] = r["family"]
        body = []
        for m in sorted(fams, key=lambda m: (_ORDER[fams[m]], m)):
            row = [m, fams[m]]
            for n in sizes:
                v = groups.get((m, n))
                row.append("-" if not v else (f"{np.mean(v):.3f} +/- {np.std(v, ddof=1):.3f}" if len(v) > 1
                                              else f"{v[0]:.3f}"))
            body.append(row)
        parts.append("Learning curve: test Dice against training frames N (mean +/- std over seeds)\n\n"
                     + markdown_table(["method", "family"] + [f"N={n}" for n in sizes], body))
    return "\n\n".join(parts)


def goals(main: Sequence[Mapping[str, Any]], lc: Sequence[Mapping[str, Any]], small: int = 4) -> list[str]:
    """The study's goals, each MET / MISSED / n/a with the measured numbers.

    1. At every noise level the best physics-constrained pipeline's Dice is at
       least the best classical one's.
    2. At every learning-curve size ``N <= small`` the best physics-constrained
       method's mean Dice beats the best data-driven one's.
    3. The lowest temperature RMSE at each noise level, against the per-pixel
       noise ``noise_level x NETD`` (goal: below it).

    Examples
    --------
    >>> rows = [{"method": "wiener+otsu", "family": "classical", "noise_level": 1.0, "dice": 0.6,
    ...          "temperature_rmse_k": 0.1, "noise_k": 0.04},
    ...         {"method": "spectral+head", "family": "physics", "noise_level": 1.0, "dice": 0.9,
    ...          "temperature_rmse_k": 0.08, "noise_k": 0.04}]
    >>> [g.split(":")[0] for g in goals(rows, [])]
    ['MET    noise 1 x NETD', 'MISSED noise 1 x NETD (40 mK)']
    """
    out = []
    for lv in sorted({r["noise_level"] for r in main}):
        at = [r for r in main if r["noise_level"] == lv]
        best = {}
        for fam in FAMILIES:
            cands = [(r["dice"], r["method"]) for r in at if r["family"] == fam and r["dice"] is not None]
            best[fam] = max(cands) if cands else None
        ph, cl = best["physics"], best["classical"]
        if ph is None or cl is None:
            out.append(f"n/a    noise {lv:g} x NETD: needs a physics-constrained and a classical method")
        else:
            out.append(f"{'MET   ' if ph[0] >= cl[0] else 'MISSED'} noise {lv:g} x NETD: best physics Dice "
                       f"{ph[0]:.3f} ({ph[1]}) vs best classical {cl[0]:.3f} ({cl[1]}): {ph[0] - cl[0]:+.3f}")
    if lc:
        sizes = sorted({r["n_train"] for r in lc if r["n_train"] <= small})
        for n in sizes:
            means: dict[str, list[tuple[float, str]]] = {f: [] for f in FAMILIES}
            for m in sorted({r["method"] for r in lc}):
                v = [r["dice"] for r in lc
                     if r["method"] == m and r["n_train"] == n and r["dice"] is not None]
                if v:
                    means[next(r["family"] for r in lc if r["method"] == m)].append((float(np.mean(v)), m))
            ph = max(means["physics"]) if means["physics"] else None
            dd = max(means["data-driven"]) if means["data-driven"] else None
            if ph is None or dd is None:
                out.append(f"n/a    N={n}: the learning curve needs a physics-constrained and a data-driven "
                           "method")
            else:
                out.append(f"{'MET   ' if ph[0] > dd[0] else 'MISSED'} N={n} training frames: physics Dice "
                           f"{ph[0]:.3f} ({ph[1]}) vs data-driven {dd[0]:.3f} ({dd[1]}): "
                           f"{ph[0] - dd[0]:+.3f}")
    for lv in sorted({r["noise_level"] for r in main}):
        at = [r for r in main if r["noise_level"] == lv and r["temperature_rmse_k"] is not None]
        if not at:
            continue
        b = min(at, key=lambda r: r["temperature_rmse_k"])
        noise_k = b["noise_k"]
        out.append(f"{'MET   ' if b['temperature_rmse_k'] < noise_k else 'MISSED'} noise {lv:g} x NETD "
                   f"({noise_k * 1000:.0f} mK): lowest temperature RMSE "
                   f"{b['temperature_rmse_k'] * 1000:.0f} mK "
                   f"({b['method']}) = {b['temperature_rmse_k'] / noise_k:.2f} x the per-pixel noise")
    return out


def _figures(main: Sequence[Mapping[str, Any]], lc: Sequence[Mapping[str, Any]], folder: str
             ) -> dict[str, str]:
    from matplotlib.figure import Figure

    paths = {}
    if main:
        fig = Figure(figsize=(10, 4))
        axes = fig.subplots(1, 2)
        styles = {"classical": ":", "physics": "-", "data-driven": "--"}
        for m in sorted({r["method"] for r in main}):
            rs = sorted((r for r in main if r["method"] == m), key=lambda r: r["noise_level"])
            fam = rs[0]["family"]
            xs = [r["noise_level"] for r in rs]
            axes[0].plot(xs, [r["dice"] for r in rs], styles[fam], marker="o", label=f"{m} ({fam})")
            if all(r["temperature_rmse_k"] is not None for r in rs):
                axes[1].plot(xs, [r["temperature_rmse_k"] for r in rs], styles[fam], marker="o", label=m)
        netd = {r["noise_level"]: r["noise_k"] for r in main}
        lv = sorted(netd)
        axes[1].plot(lv, [netd[v] for v in lv], color="k", lw=0.8, label="per-pixel noise")
        axes[0].set_ylabel("Dice")
        axes[1].set_ylabel("temperature RMSE (K)")
        axes[1].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("noise level (x NETD)")
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=6)
        axes[1].legend(fontsize=6)
        fig.tight_layout()
        paths["figure-methods"] = save_figure(fig, os.path.join(folder, "ir_methods.png"))
    if lc:
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for m in sorted({r["method"] for r in lc}):
            rs = [r for r in lc if r["method"] == m]
            ns = sorted({r["n_train"] for r in rs})
            vals = [[r["dice"] for r in rs if r["n_train"] == n] for n in ns]
            mean = [float(np.mean(v)) for v in vals]
            std = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in vals]
            fam = rs[0]["family"]
            ax.errorbar(ns, mean, yerr=std, marker="o" if fam == "physics" else "s", capsize=3,
                        ls="-" if fam == "physics" else "--", label=f"{m} ({fam})")
        for r in main:
            if (r["family"] == "classical" and r["noise_level"] == lc[0]["noise_level"]
                    and r["dice"] is not None):
                ax.axhline(r["dice"], ls=":", color="grey", lw=0.8)
                ax.annotate(r["method"], (1.0, r["dice"]), xycoords=("axes fraction", "data"), fontsize=6,
                            ha="right", va="bottom", color="grey")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training frames N")
        ax.set_ylabel("test Dice")
        ax.set_title(f"learning curve at {lc[0]['noise_level']:g} x NETD")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths["figure-learning-curve"] = save_figure(fig, os.path.join(folder, "ir_learning_curve.png"))
    return paths


@dataclass
class IRBenchResults(StudyCounts):
    """Rows, table, goals and written paths of a study."""

    rows: list[dict[str, Any]]
    lc_rows: list[dict[str, Any]]
    table: str
    goals: list[str]
    paths: dict[str, str]


def report(out: str | os.PathLike, records: Sequence[Mapping[str, Any]], config: IRBenchConfig, *,
           prov: Mapping[str, Any] | None = None) -> IRBenchResults:
    """Write results.csv, learning_curve.csv, results.md, results.json and figures/ from cell records."""
    out = os.fspath(out)
    main, lc = rows_from_records(records, config)
    table = _table(main, lc) if main or lc else "(no finished cells)"
    goal_lines = goals(main, lc)
    paths = {"csv": write_csv(os.path.join(out, "results.csv"), main, CSV_COLUMNS)}
    if lc:
        paths["lc_csv"] = write_csv(os.path.join(out, "learning_curve.csv"), lc, LC_COLUMNS)
    md = ("# Infrared pipelines\n\n" + _describe(config) + "\n\n" + table + "\n\n## Goals\n\n"
          + "\n".join(f"- {g}" for g in goal_lines) + "\n")
    paths["md"] = write_text(os.path.join(out, "results.md"), md)
    paths["json"] = write_json(os.path.join(out, "results.json"), dict(prov or {}, rows=len(main),
                                                                        lc_rows=len(lc)))
    if config.figures and (main or lc):
        paths.update(_figures(main, lc, os.path.join(out, "figures")))
    return IRBenchResults(rows=main, lc_rows=lc, table=table, goals=goal_lines, paths=paths)


def _describe(config: IRBenchConfig) -> str:
    h, w = config.detector_shape
    return (f"Camera {config.camera} with a {h} x {w} detector, noise levels "
            f"{', '.join(f'{v:g}' for v in config.noise_levels)} x NETD, {config.n_test} test frames, "
            f"learned methods trained on {config.n_train} frames for {config.steps} Adam steps "
            f"(learning curve at {config.lc_noise:g} x NETD: N = {', '.join(map(str, config.sizes))}, "
            f"seeds {', '.join(map(str, config.seeds))}); fixed-pattern noise "
            f"{'on (exact two-point NUC)' if config.fpn else 'off'}.")


def run(config: IRBenchConfig, out: str | os.PathLike, *, force: bool = False, shard: Shard | None = None,
        progress: bool = True, argv: Sequence[str] | None = None) -> IRBenchResults:
    """Run (or resume) an infrared study in ``out`` and write its tables and figures.

    Examples
    --------
    >>> import tempfile
    >>> cfg = IRBenchConfig(detector_shape=(32, 40), noise_levels=(1.0,), methods=("wiener+otsu",),
    ...                     n_test=1, lc_methods=(), figures=False)
    >>> res = run(cfg, tempfile.mkdtemp(), progress=False)
    >>> [(r["method"], r["family"]) for r in res.rows], res.computed
    ([('wiener+otsu', 'classical')], 1)
    """
    if not isinstance(config, IRBenchConfig):
        raise TypeError(f"config must be an IRBenchConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    cells = make_cells(config)
    store = CellStore(out, STUDY)
    summ = run_cells(cells, compute_cell, store, force=force, shard=shard, progress=progress, desc=STUDY,
                     on_error="record")
    records = [r for r in (store.load(c) for c in cells) if r is not None]
    prov = provenance.collect(asdict(config), device=config.device, threads=config.threads, seed=config.seed,
                              argv=argv, extra={"study": STUDY})
    res = report(out, records, config, prov=prov)
    res.count(summ, len(cells), len(records), t0)
    return res


# ----------------------------------------------------------------------------- the pipeline on files

#: Output formats of the reconstructed temperature maps written by :func:`run_files`.
FORMATS = ("png", "tiff", "npy")
#: Methods :func:`run_files` offers (no training needed).
RUN_METHODS = ("none", "wiener", "tikhonov-gcv", "tv", "pnp", "hqs")
RUN_COLUMNS = ("frame", "name", "method", "temperature_rmse_k", "psnr", "dice", "iou", "mean_temperature_k",
               "hot_fraction", "clamped", "seconds", "file", "cell")


@dataclass
class RunConfig:
    """How :func:`run_files` processes a file of frames.

    Parameters
    ----------
    method : str
        Restoration (one of :data:`RUN_METHODS`).
    segment : {"otsu"}
        Segmentation rule.
    camera : {"boson", "tau2"}
        Camera of a folder of frames (an HDF5 file carries its own).
    bits : int
        Largest accepted raw value ``2^bits - 1`` of frame files.
    fmt : {"png", "tiff", "npy"}
        Temperature maps as 16-bit PNG or TIFF holding ``round(100 T)``
        (centikelvin, up to 655.35 K), or NPY float32 kelvin.

    Examples
    --------
    >>> RunConfig(method="pnp", fmt="npy").method
    'pnp'
    >>> RunConfig(fmt="jpeg")
    Traceback (most recent call last):
        ...
    ValueError: fmt: must be one of ('png', 'tiff', 'npy'), got 'jpeg'
    """

    method: str = "wiener"
    segment: str = "otsu"
    camera: str = "boson"
    bits: int = 16
    fmt: str = "png"
    device: str = "cpu"
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in RUN_METHODS:
            raise ValueError(f"method: must be one of {RUN_METHODS}, got {self.method!r}")
        if self.segment != "otsu":
            raise ValueError(f"segment: must be 'otsu', got {self.segment!r}")
        if self.camera not in CAMERAS:
            raise ValueError(f"camera: must be one of {CAMERAS}, got {self.camera!r}")
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt: must be one of {FORMATS}, got {self.fmt!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 8 <= self.bits <= 16:
            raise ValueError(f"bits: must be an int in [8, 16], got {self.bits!r}")


@dataclass
class _Input:
    counts: torch.Tensor
    names: list[str]
    camera: Any
    gain: Any
    offset: Any
    temperature_k: torch.Tensor | None
    mask: torch.Tensor | None
    kind: str


def _load_input(path: str | os.PathLike, config: RunConfig) -> _Input:
    from .io import load_ir, read_frames

    p = os.fspath(path)
    if os.path.isdir(p):
        counts, names = read_frames(p, bits=config.bits, return_names=True)
        cam = camera_for(config.camera, tuple(counts.shape[-2:]))
        return _Input(counts, [os.path.splitext(n)[0] for n in names], cam, None, None, None, None, "frames")
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such file or folder")
    if not p.lower().endswith((".h5", ".hdf5")):
        raise ValueError(f"input: {p} is neither a folder of frames nor an HDF5 (.h5) file")
    fr = load_ir(p)
    names = [f"frame_{i:04d}" for i in range(len(fr))]
    return _Input(fr.counts, names, fr.camera, fr.gain, fr.offsets(), fr.temperature_k, fr.mask, "hdf5")


def _digest(t: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def _write_map(path: str, temperature_k: np.ndarray, fmt: str) -> str:
    from .._io import atomic_write

    if fmt == "npy":
        return atomic_write(path, lambda fh: np.save(fh, temperature_k.astype(np.float32)))
    ck = np.round(temperature_k * 100.0)
    if ck.min() < 0 or ck.max() > 65535:
        raise ValueError(f"fmt: temperatures {temperature_k.min():.2f}-{temperature_k.max():.2f} K do not "
                         "fit 16-bit centikelvin; use NPY")
    a = ck.astype(np.uint16)
    if fmt == "tiff":
        import io

        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, a)
        return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    from PIL import Image

    return atomic_write(path, lambda fh: Image.fromarray(a).save(fh, format="PNG"))


def _overlay(temperature_k: np.ndarray, mask: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """RGB uint8: temperature in grey (1st-99th percentile), detections tinted red, true outlines green."""
    lo, hi = np.percentile(temperature_k, [1, 99])
    g = np.clip((temperature_k - lo) / max(hi - lo, 1e-9), 0, 1)
    rgb = np.stack([g, g, g], -1)
    rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array([1.0, 0.0, 0.0])
    if truth is not None:
        inner = truth.copy()
        inner[1:] &= truth[:-1]
        inner[:-1] &= truth[1:]
        inner[:, 1:] &= truth[:, :-1]
        inner[:, :-1] &= truth[:, 1:]
        rgb[truth & ~inner] = np.array([0.0, 1.0, 0.0])
    return (rgb * 255 + 0.5).astype(np.uint8)


@dataclass
class RunResults(StudyCounts):
    """Per-frame rows, a summary and written paths of :func:`run_files`."""

    rows: list[dict[str, Any]]
    summary: str
    paths: dict[str, str]


def run_files(input: str | os.PathLike, out: str | os.PathLike, config: RunConfig, *, force: bool = False,
              progress: bool = True, argv: Sequence[str] | None = None) -> RunResults:
    """Run the pipeline on an IR HDF5 file or a folder of 16-bit TIFF/PNG frames; write maps, overlays, CSV.

    Counts become radiance through the HDF5 file's gain and offset maps
    (its NUC) or, for frame files, the camera's nominal ones (gain 1, offset
    ``camera.offset_counts``: no NUC). In ``out``: ``temperature/NAME.png``
    (or ``.tiff``/``.npy``, see :class:`RunConfig`), ``masks/NAME.png``
    (8-bit, 255 = hot object), ``overlays/NAME.png``, ``metrics.csv`` (RMSE,
    PSNR, Dice, IoU only where the input has ground truth), ``results.json``
    (provenance) and ``cells/`` (a re-run computes only new frames).

    Examples
    --------
    >>> import os, tempfile
    >>> from physinv.ir.camera import simulate
    >>> from physinv.ir.io import save_ir
    >>> d = tempfile.mkdtemp()
    >>> _ = save_ir(os.path.join(d, "f.h5"), simulate(1, camera_for("boson", (32, 40)), seed=0))
    >>> res = run_files(os.path.join(d, "f.h5"), os.path.join(d, "out"), RunConfig(), progress=False)
    >>> len(res.rows), sorted(os.listdir(os.path.join(d, "out", "temperature")))
    (1, ['frame_0000.png'])
    """
    from ..metrics import dice, iou
    from .calibration import counts_to_radiance

    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = os.fspath(out)
    data = _load_input(input, config)
    dev = torch.device(config.device)
    cam = data.camera
    scale = RadianceScale(tuple(cam.band_um))
    A = None if config.method == "none" else cam.detector_operator().to(dev)
    pipe = Pipeline(Reconstruct(config.method, A, scale=scale), segment=config.segment, band_um=scale.band_um)
    ext = {"png": ".png", "tiff": ".tiff", "npy": ".npy"}[config.fmt]
    source = os.path.abspath(os.fspath(input))
    cells = []
    for i, name in enumerate(data.names):
        cells.append(Cell({"input": source, "frame": i, "name": name, "digest": _digest(data.counts[i]),
                           "method": config.method, "segment": config.segment, "camera": cam.name,
                           "fmt": config.fmt, "kind": data.kind}, meta={"index": i}))
    files = {c.id: os.path.join(out, "temperature", c.config["name"] + ext) for c in cells}

    def compute(cell: Cell) -> dict[str, Any]:
        i = cell.meta["index"]
        t1 = time.perf_counter()
        c = data.counts[i].to(dev)
        gain = None if data.gain is None else data.gain.to(dev)
        offset = None if data.offset is None else data.offset[i].to(dev)
        res = pipe(counts_to_radiance(c, cam, gain, offset))
        t = res.temperature_k.detach().cpu().numpy()
        m = res.mask.detach().cpu().numpy()
        name = cell.config["name"]
        _write_map(files[cell.id], t, config.fmt)
        from PIL import Image

        from .._io import atomic_write

        atomic_write(os.path.join(out, "masks", name + ".png"),
                     lambda fh: Image.fromarray(m.astype(np.uint8) * 255).save(fh, format="PNG"))
        truth_m = None if data.mask is None else data.mask[i].numpy()
        atomic_write(os.path.join(out, "overlays", name + ".png"),
                     lambda fh: Image.fromarray(_overlay(t, m, truth_m)).save(fh, format="PNG"))
        r: dict[str, Any] = {"mean_temperature_k": float(t.mean()), "hot_fraction": float(m.mean()),
                             "clamped": res.clamped, "timings": res.timings}
        if data.temperature_k is not None:
            met = evaluate(res, data.temperature_k[i].to(dev), data.mask[i].to(dev))
            r.update({k: float(v) for k, v in met.items()})
        elif data.mask is not None:  # pragma: no cover - inputs have both or neither today
            r.update({"dice": float(dice(res.mask, data.mask[i].to(dev))),
                      "iou": float(iou(res.mask, data.mask[i].to(dev)))})
        r["seconds"] = time.perf_counter() - t1
        return r

    store = CellStore(out, "ir-run")
    missing = [c for c in cells if not os.path.exists(files[c.id]) and store.load(c) is not None]
    if missing and not force:  # a stored cell whose map was deleted: compute it again
        run_cells(missing, compute, store, force=True, progress=False, desc="ir run")
    summ = run_cells(cells, compute, store, force=force, progress=progress, desc="ir run", on_error="record")
    rows = []
    for cell in cells:
        rec = store.load(cell)
        if rec is None:
            continue
        r = rec["result"]
        rows.append({"frame": cell.config["frame"], "name": cell.config["name"], "method": config.method,
                     **{k: (round(r[k], 5) if k in r else None) for k in
                        ("temperature_rmse_k", "psnr", "dice", "iou", "mean_temperature_k", "hot_fraction")},
                     "clamped": r["clamped"], "seconds": round(r["seconds"], 3),
                     "file": os.path.relpath(files[cell.id], out), "cell": rec["id"]})
    paths = {"csv": write_csv(os.path.join(out, "metrics.csv"), rows, RUN_COLUMNS)}
    nuc = "the file's NUC maps" if data.kind == "hdf5" else "nominal camera maps (no NUC)"
    prov = provenance.collect(asdict(config), device=config.device, threads=config.threads, seed=config.seed,
                              argv=argv, extra={"study": "ir-run", "input": source, "frames": len(cells),
                                                "counts_to_radiance": nuc})
    paths["json"] = write_json(os.path.join(out, "results.json"), prov)
    have = [r for r in rows if r["dice"] is not None]
    summary = f"{len(rows)} frame(s), method {config.method}, segmentation {config.segment}"
    if have:
        summary += (f"; mean Dice {np.mean([r['dice'] for r in have]):.3f}, IoU "
                    f"{np.mean([r['iou'] for r in have]):.3f}")
    have_t = [r for r in rows if r["temperature_rmse_k"] is not None]
    if have_t:
        summary += f", temperature RMSE {np.mean([r['temperature_rmse_k'] for r in have_t]):.3f} K"
    if not have and not have_t:
        summary += " (no ground truth: no metrics)"
    res = RunResults(rows=rows, summary=summary, paths=paths)
    res.count(summ, len(summ.records), len(summ.records), t0)
    return res
