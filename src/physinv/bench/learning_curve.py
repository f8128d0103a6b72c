"""Learning curves: test PSNR of learned reconstructions against the number of training images.

A study is a grid of cells *problem x method x training-set size N x seed*
(plus one cell per classical baseline and problem). Two problems:

``blur``
    Gaussian deblurring (sigma 2, circular boundary, noise 0.01) of natural
    pictures: training pictures from :data:`physinv.bench.splits.TRAIN_IMAGES`
    (then textured phantoms), tested on :data:`physinv.bench.splits.TEST_IMAGES`.
``radon``
    Sparse-view CT at 128 x 128 by default: random-ellipse phantoms
    (:func:`physinv.data.images.random_ellipses`, up to 70 ellipses with
    signed intensities, zero outside the inscribed disc), 30 parallel-beam
    angles, white noise of 2.5 % of the mean absolute sinogram value; test
    phantoms use seeds from
    :data:`physinv.bench.splits.TEST_PHANTOM_SEED_OFFSET` on, training ones
    lie below it.

Every cell trains from scratch with Adam under an explicit budget rule
(``"steps"``: the same number of gradient steps for every N; ``"epochs"``:
``min(cap, epochs x N / batch)`` steps), keeps the weights that score best
on a validation subset of ``max(1, N // 4)`` further training images, and
records test PSNR/SSIM. Cells are stored by :mod:`physinv.bench._cells`, so
a study resumes, shards (``--shard i/n`` or ``torchrun``) and merges.

Examples
--------
>>> import tempfile
>>> cfg = LearningCurveConfig(problems=("blur",), methods=("spectral",), sizes=(2,), seeds=(0,),
...                           size=16, n_test=1, steps=2, classical=())
>>> res = run(cfg, tempfile.mkdtemp(), progress=False)
>>> [(r["method"], r["n_train"]) for r in res.rows]
[('spectral', 2)]
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..nets.unrolled import STEP_PARAMETERIZATION
from ..train import fit_simulated
from ..train.simulated import LOOP_VERSION
from . import provenance, splits
from ._cells import Cell, CellStore, Shard, StudyCounts, run_cells
from ._config import int_list
from ._report import markdown_table, save_figure, write_csv, write_json, write_text

__all__ = ["STUDY", "PROBLEMS", "PHYSICS", "OPT_IN", "DATA_DRIVEN", "CLASSICAL", "DEFAULT_SIZES",
           "IMAGE_SIZES", "CT_PHANTOMS", "QUICK",
           "LearningCurveConfig", "LearningCurveResults", "make_cells", "compute_cell", "run",
           "rows_from_records", "summarize", "goals", "report", "CSV_COLUMNS"]

#: Name of the study in the cell files.
STUDY = "learning-curve"
PROBLEMS = ("blur", "radon")
#: Physics-constrained networks per problem.
PHYSICS = {"blur": ("spectral", "parametric", "landweber", "ista"),
           "radon": ("landweber", "primal-dual", "primal-dual-fbp")}
#: Methods that run only when named in ``methods``: Learned Primal-Dual started from zero (the
#: paper's start) does not train within CPU budgets (15 dB after 500 steps on 128x128 CT, below
#: FBP's 24 dB); its FBP-started variant ``primal-dual-fbp`` runs by default instead.
OPT_IN = {"blur": (), "radon": ("primal-dual",)}
#: Purely data-driven networks per problem.
DATA_DRIVEN = {"blur": ("unet", "dncnn"), "radon": ("unet", "dncnn", "fbp-unet")}
#: Classical baselines (horizontal lines) per problem.
CLASSICAL = {"blur": ("tikhonov-gcv", "tv", "wiener-oracle"), "radon": ("fbp", "tv")}
DEFAULT_SIZES = (4, 8, 16, 32, 64, 128, 256)
#: Default image side per problem (``size=None``); an explicit ``size`` applies to every problem.
IMAGE_SIZES: dict[str, int] = {"blur": 64, "radon": 128}
#: Phantom source of the CT problem (part of its cells' configuration, so cells made from other
#: phantoms are never reused).
CT_PHANTOMS: dict[str, Any] = {"generator": "random_ellipses", "n_ellipses": 70, "version": 1}
#: The ``--quick`` configuration.
QUICK: dict[str, Any] = {"problems": ("blur", "radon"), "sizes": (4, 16), "seeds": (0, 1), "size": 32,
                         "n_test": 2, "steps": 25, "methods": ("spectral", "landweber", "unet", "fbp-unet"),
                         "classical": ("fbp", "tikhonov-gcv")}
CSV_COLUMNS = ("problem", "method", "family", "n_train", "n_val", "seed", "psnr", "ssim", "train_seconds",
               "steps", "budget", "parameters", "cell")

_NOISE = {"blur": 0.01, "radon": 0.025}
#: Version of the training procedure (part of learned cells' IDs: cells trained otherwise are not reused).
TRAIN_LOOP = LOOP_VERSION
_BLUR_SIGMA = 2.0
_ANGLES = 30


def _family(problem: str, method: str) -> str:
    if method in PHYSICS[problem]:
        return "physics"
    if method in DATA_DRIVEN[problem]:
        return "data-driven"
    return "classical"


@dataclass
class LearningCurveConfig:
    """Everything a learning-curve study depends on (see the module docstring).

    Parameters
    ----------
    problems : tuple of {"blur", "radon"}
    methods : tuple of str or None
        Learned methods (default: all of :data:`PHYSICS` and :data:`DATA_DRIVEN`
        but the :data:`OPT_IN` ones); a method that does not apply to a problem
        is skipped there.
    sizes : tuple of int
        Training-set sizes N.
    seeds : tuple of int
        Seeds (training images beyond the bundled pictures, noise, initialisation).
    size : int, optional
        Image side for every problem; ``None`` (default) takes each
        problem's own default (:data:`IMAGE_SIZES`: 64 for blur, 128 for CT).
    n_test : int
        Test images per problem (fixed set, fixed noise).
    steps : int
        Gradient steps (``budget="steps"``) or their cap (``budget="epochs"``).
    budget : {"steps", "epochs"}
    epochs : int
        Epochs for ``budget="epochs"``.
    batch : int
        Largest batch size (``min(batch, N)`` is used).
    lr : float
        Adam learning rate.
    classical : tuple of str or None
        Baselines (default :data:`CLASSICAL`); those that do not apply are skipped.
    seed : int
        Seed of the test noise.
    """

    problems: tuple[str, ...] = ("blur",)
    methods: tuple[str, ...] | None = None
    sizes: tuple[int, ...] = DEFAULT_SIZES
    seeds: tuple[int, ...] = (0, 1, 2)
    size: int | None = None
    n_test: int = 6
    steps: int = 400
    budget: str = "steps"
    epochs: int = 50
    batch: int = 4
    lr: float = 1e-3
    classical: tuple[str, ...] | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    figures: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.problems = tuple(self.problems)
        if not self.problems or any(p not in PROBLEMS for p in self.problems):
            raise ValueError(f"problems: each must be one of {PROBLEMS}, got {self.problems}")
        known = set(sum((PHYSICS[p] + DATA_DRIVEN[p] for p in PROBLEMS), ()))
        if self.methods is not None:
            self.methods = tuple(self.methods)
            bad = [m for m in self.methods if m not in known]
            if bad or not self.methods:
                raise ValueError(f"methods: unknown {bad or 'empty list'}; choose from {sorted(known)}")
        kc = set(sum(CLASSICAL.values(), ()))
        if self.classical is not None:
            self.classical = tuple(self.classical)
            bad = [m for m in self.classical if m not in kc]
            if bad:
                raise ValueError(f"classical: unknown {bad}; choose from {sorted(kc)}")
        for name, low in (("size", 8), ("n_test", 1), ("steps", 1), ("epochs", 1), ("batch", 1)):
            v = getattr(self, name)
            if name == "size" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name}: must be an int >= {low}, got {v!r}")
        self.sizes, self.seeds = int_list("sizes", self.sizes, 1), int_list("seeds", self.seeds, 0)
        if max(self.seeds) * 10_000 + max(self.sizes) * 2 >= splits.TEST_PHANTOM_SEED_OFFSET:
            raise ValueError(f"seeds: too large (training phantom seeds must stay below "
                             f"{splits.TEST_PHANTOM_SEED_OFFSET}), got {self.seeds}")
        if self.budget not in ("steps", "epochs"):
            raise ValueError(f"budget: must be 'steps' or 'epochs', got {self.budget!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: must be a positive number, got {self.lr!r}")

    def size_for(self, problem: str) -> int:
        """Image side of ``problem``: ``size``, or the problem's default (:data:`IMAGE_SIZES`).

        Examples
        --------
        >>> LearningCurveConfig().size_for("radon"), LearningCurveConfig(size=32).size_for("radon")
        (128, 32)
        """
        if problem not in PROBLEMS:
            raise ValueError(f"problem: must be one of {PROBLEMS}, got {problem!r}")
        return IMAGE_SIZES[problem] if self.size is None else self.size

    def methods_for(self, problem: str) -> tuple[str, ...]:
        allm = PHYSICS[problem] + DATA_DRIVEN[problem]
        if self.methods is None:
            return tuple(m for m in allm if m not in OPT_IN[problem])
        return tuple(m for m in self.methods if m in allm)

    def classical_for(self, problem: str) -> tuple[str, ...]:
        return CLASSICAL[problem] if self.classical is None else tuple(
            m for m in self.classical if m in CLASSICAL[problem])

    def n_steps(self, n_train: int) -> int:
        """Gradient steps of a cell with ``n_train`` images under the budget rule."""
        if self.budget == "steps":
            return self.steps
        return max(1, min(self.steps, math.ceil(self.epochs * n_train / min(self.batch, n_train))))

    def budget_text(self) -> str:
        if self.budget == "steps":
            return f"{self.steps} Adam steps for every N (batch min({self.batch}, N), lr {self.lr:g})"
        return (f"min({self.steps}, {self.epochs} epochs) Adam steps, i.e. ceil({self.epochs} N / batch) "
                f"capped (batch min({self.batch}, N), lr {self.lr:g})")


# ----------------------------------------------------------------------------- data

def _operator(problem: str, size: int):
    if problem == "blur":
        from ..operators import Convolution
        from ..psf import gaussian

        return Convolution(gaussian(_BLUR_SIGMA), (size, size), "circular")
    from ..operators import Radon

    return Radon(size, _ANGLES)


def _test_images(problem: str, size: int, n: int) -> list[np.ndarray]:
    if problem == "blur":
        from ..data.images import skimage_image

        names = list(splits.TEST_IMAGES)
        out = []
        for k in range(n):
            out.append(splits.square_picture(skimage_image(names[k % len(names)]), size))
        return out
    from ..data.images import random_ellipses

    k_max = CT_PHANTOMS["n_ellipses"]
    offset = splits.TEST_PHANTOM_SEED_OFFSET
    return [random_ellipses(size, seed=offset + k, n_ellipses=k_max) for k in range(n)]


def _train_images(problem: str, size: int, n: int, seed: int) -> list[np.ndarray]:
    if problem == "blur":
        return splits.training_images(size, n=n, seed=seed)[0]
    from ..data.images import random_ellipses

    return [random_ellipses(size, seed=seed * 10_000 + k, n_ellipses=CT_PHANTOMS["n_ellipses"])
            for k in range(n)]


def _noise_sigma(problem: str, y: torch.Tensor) -> torch.Tensor:
    """Per-image noise std: absolute for blur, relative to mean |y| for CT."""
    if problem == "blur":
        return torch.full(y.shape[:1], _NOISE["blur"], dtype=y.dtype)
    return _NOISE["radon"] * y.abs().flatten(1).mean(1)


def _measure(problem: str, A, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        y = A(x)
        s = _noise_sigma(problem, y)
        noise = torch.randn(y.shape, generator=gen, dtype=y.dtype)
        return y + s.view(-1, *([1] * (y.dim() - 1))) * noise, s


class _Data:
    """Cached operator and fixed test set of one problem."""

    _cache: dict[tuple, _Data] = {}

    def __init__(self, problem: str, size: int, n_test: int, seed: int) -> None:
        self.problem = problem
        self.A = _operator(problem, size)
        # CT phantoms are zero outside the disc that every angle sees; the mask keeps that explicit
        self.mask = (self.A.circle_mask().to(torch.float32) if problem == "radon"
                     else torch.ones(size, size))
        x = torch.as_tensor(np.stack(_test_images(problem, size, n_test)), dtype=torch.float32) * self.mask
        gen = torch.Generator().manual_seed(int(seed) * 7919 + (0 if problem == "blur" else 1))
        self.x_test = x
        self.y_test, self.s_test = _measure(problem, self.A, x, gen)

    @classmethod
    def get(cls, problem: str, size: int, n_test: int, seed: int) -> _Data:
        key = (problem, size, n_test, seed)
        if key not in cls._cache:
            cls._cache.clear()
            cls._cache[key] = cls(problem, size, n_test, seed)
        return cls._cache[key]


# ----------------------------------------------------------------------------- methods

class _Net(torch.nn.Module):
    """``f(y, sigma)`` for every learned method, whatever the network's call signature."""

    def __init__(self, problem: str, method: str, A) -> None:
        super().__init__()
        from ..nets import DnCNN, UNet, UnrolledISTA, UnrolledLandweber
        from ..nets.spectral import SpectralFilterNet

        self.method = method
        self.A = [A]
        self.kind = "y"
        if method in ("spectral", "parametric"):
            self.net = SpectralFilterNet(A, parametric=method == "parametric")
            self.kind = "sigma"
        elif method == "landweber":
            self.net = UnrolledLandweber(A, n_layers=8)
        elif method == "ista":
            self.net = UnrolledISTA(A, n_layers=6)
        elif method in ("primal-dual", "primal-dual-fbp"):
            from ..nets import LearnedPrimalDual

            self.net = LearnedPrimalDual(A, n_iter=5, start="fbp" if method == "primal-dual-fbp" else "zero")
        elif method in ("unet", "dncnn", "fbp-unet"):
            self.net = UNet(channels=16, levels=2, residual=True) if method != "dncnn" else DnCNN(
                depth=6, channels=32, residual=True)
            self.kind = {"unet": "adjoint", "dncnn": "adjoint", "fbp-unet": "fbp"}[method]
            if problem == "blur":
                self.kind = "meas"
        else:  # pragma: no cover - validated before
            raise ValueError(f"method: unknown {method!r}")
        self.problem = problem
        self.scale = 1.0
        if problem == "radon":  # back-projection of a constant image, at the centre: brings A^T y to [0, 1]
            with torch.no_grad():
                one = A.circle_mask().to(torch.float32)
                bp = A.adjoint(A(one))
                self.scale = float(bp[tuple(k // 2 for k in bp.shape)])

    def forward(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        A = self.A[0]
        if self.kind == "sigma":
            return self.net(y, noise_sigma=sigma) if self.method == "parametric" else self.net(y)
        if self.kind == "y":
            return self.net(y)
        if self.kind == "meas":
            z = y
        elif self.kind == "adjoint":
            with torch.no_grad():
                z = A.adjoint(y) / self.scale
        else:
            from ..solvers import fbp

            with torch.no_grad():
                z = fbp(y, A)
        return self.net(z.unsqueeze(1)).squeeze(1)


def _psnr_ssim(x: torch.Tensor, ref: torch.Tensor) -> tuple[list[float], list[float]]:
    from ..metrics import psnr, ssim

    xs = x.detach().to(torch.float64).clamp(0, 1)
    p = [float(psnr(a, b, data_range=1.0)) for a, b in zip(xs, ref.to(torch.float64))]
    s = [float(ssim(a, b, data_range=1.0)) for a, b in zip(xs, ref.to(torch.float64))]
    return p, s


def _classical(problem: str, method: str, d: _Data) -> torch.Tensor:
    from ..solvers import fbp, tikhonov, tv

    A, out = d.A, []
    for y, s, x in zip(d.y_test, d.s_test, d.x_test):
        if method == "fbp":
            out.append(fbp(y, A))
        elif method == "tikhonov-gcv":
            out.append(tikhonov(A, y, "gcv").x)
        elif method == "wiener-oracle":  # the MMSE-best Tikhonov weight for this image (uses x: an oracle)
            best = None
            for lam in np.logspace(-5, 0, 16):
                r = tikhonov(A, y, float(lam)).x
                e = float(((r - x) ** 2).mean())
                if best is None or e < best[0]:
                    best = (e, r)
            out.append(best[1])
        elif method == "tv":  # weight from the noise level (no access to x)
            lam = float(s) * (0.1 if problem == "blur" else 2.0)
            with warnings.catch_warnings():  # iterates may leave the disc that Radon(circle=True) sees
                warnings.filterwarnings("ignore", message=".*outside the inscribed circle")
                out.append(tv(A, y, lam, n_iter=200, nonneg=True).x)
        else:  # pragma: no cover
            raise ValueError(f"classical: unknown {method!r}")
    return torch.stack([o.reshape(x.shape) for o in out]).to(torch.float32)


def _val_psnr(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    from ..metrics import psnr

    return psnr(pred.detach().to(torch.float64).clamp(0, 1), ref.to(torch.float64), data_range=1.0)


def compute_cell(cell: Cell) -> dict[str, Any]:
    """Train (for a learned method) and evaluate one cell; a JSON-able result."""
    c = cell.config
    problem, method = c["problem"], c["method"]
    if problem == "radon" and c.get("phantoms") != CT_PHANTOMS:
        raise ValueError(f"cell: CT phantoms {c.get('phantoms')!r} are not the ones this version makes "
                         f"({CT_PHANTOMS!r})")
    d = _Data.get(problem, c["size"], c["n_test"], c["test_seed"])
    if c["family"] == "classical":
        t0 = time.perf_counter()
        with torch.no_grad():
            xr = _classical(problem, method, d)
        p, s = _psnr_ssim(xr, d.x_test)
        return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "psnr_each": p,
                "train_seconds": 0.0, "steps": 0, "parameters": 0, "seconds": time.perf_counter() - t0}
    n, n_val, seed, steps = c["n_train"], c["n_val"], c["seed"], c["steps"]
    torch.manual_seed(seed * 1_000_003 + n)
    imgs = _train_images(problem, c["size"], n + n_val, seed)
    x_all = torch.as_tensor(np.stack(imgs), dtype=torch.float32) * d.mask
    x_tr, x_val = x_all[:n], x_all[n:]
    gen = torch.Generator().manual_seed(seed * 7_777 + n)
    y_val, s_val = _measure(problem, d.A, x_val, gen)
    net = _Net(problem, method, d.A)
    n_params = int(sum(q.numel() for q in net.parameters() if q.requires_grad))
    t0 = time.perf_counter()
    history = fit_simulated(
        net, x_tr, lambda xb: _measure(problem, d.A, xb, gen), steps=steps, batch_size=min(c["batch"], n),
        lr=c["lr"], val_data=TensorDataset(y_val, x_val, s_val), checks=min(5, steps),
        seed=seed * 1_000_003 + n, forward=lambda m, b: (m(b[0], b[2]), b[1]), metrics={"psnr": _val_psnr},
        device="cpu")
    train_seconds = time.perf_counter() - t0
    best_val, steps = max(float(h["val_psnr"]) for h in history), int(history[-1]["step"])
    with torch.no_grad():
        p, s = _psnr_ssim(net(d.y_test, d.s_test), d.x_test)
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "psnr_each": p, "val_psnr": best_val,
            "train_seconds": train_seconds, "steps": steps, "parameters": n_params}


# ----------------------------------------------------------------------------- study

def _net_version(method: str) -> dict[str, str]:
    """What a learned cell's ID holds about its network beyond the method name."""
    return {"step_parameters": STEP_PARAMETERIZATION} if method in ("landweber", "ista") else {}


def make_cells(config: LearningCurveConfig) -> list[Cell]:
    """The cells of a study (classical baselines first, then learned cells by N, method, seed)."""
    cells = []
    for problem in config.problems:
        base = {"size": config.size_for(problem), "n_test": config.n_test, "test_seed": config.seed}
        if problem == "radon":
            base["phantoms"] = dict(CT_PHANTOMS)
        for m in config.classical_for(problem):
            cells.append(Cell({**base, "problem": problem, "method": m, "family": "classical"}))
        for n in config.sizes:
            for m in config.methods_for(problem):
                for seed in config.seeds:
                    cells.append(Cell({**base, "problem": problem, "method": m, "family": _family(problem, m),
                                       "n_train": n, "n_val": max(1, n // 4), "seed": seed,
                                       "steps": config.n_steps(n), "budget": config.budget,
                                       "batch": config.batch, "lr": config.lr,
                                       "loop": TRAIN_LOOP, **_net_version(m)}))
    return cells


def rows_from_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One CSV row per stored cell, sorted by problem, family, method, N, seed."""
    rows = []
    for rec in records:
        c, r = rec["config"], rec["result"]
        rows.append({"problem": c["problem"], "method": c["method"], "family": c["family"],
                     "n_train": c.get("n_train", 0), "n_val": c.get("n_val", 0), "seed": c.get("seed", ""),
                     "psnr": round(r["psnr"], 4), "ssim": round(r["ssim"], 4),
                     "train_seconds": round(r["train_seconds"], 2), "steps": r["steps"],
                     "budget": c.get("budget", ""), "parameters": r["parameters"], "cell": rec["id"]})
    order = {"classical": 0, "physics": 1, "data-driven": 2}
    rows.sort(key=lambda r: (r["problem"], order[r["family"]], r["method"], r["n_train"], str(r["seed"])))
    return rows


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int], tuple[float, float, int]]:
    """``(problem, method, N) -> (mean PSNR, std PSNR over seeds, count)``."""
    groups: dict[tuple[str, str, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r["problem"], r["method"], r["n_train"]), []).append(r["psnr"])
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
            for k, v in groups.items()}


def _best(summary, rows, problem: str, family: str, n: int) -> tuple[str, float] | None:
    fams = {(r["problem"], r["method"]): r["family"] for r in rows}
    cands = [(m, v[0]) for (p, m, k), v in summary.items()
             if p == problem and k == n and fams[(p, m)] == family]
    return max(cands, key=lambda t: t[1]) if cands else None


def goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The study's goals, each MET / MISSED / n/a with the measured numbers."""
    summary = summarize(rows)
    out = []
    for problem, margin in (("radon", 2.0), ("blur", 1.0)):
        if not any(r["problem"] == problem for r in rows):
            continue
        ph = _best(summary, rows, problem, "physics", 16)
        dd = _best(summary, rows, problem, "data-driven", 16)
        if ph is None or dd is None:
            out.append(f"n/a  {problem}: N=16 needs a physics-constrained and a data-driven method")
        else:
            gap = ph[1] - dd[1]
            out.append(f"{'MET   ' if gap >= margin else 'MISSED'} {problem}: at N=16 best physics "
                       f"({ph[0]}, {ph[1]:.2f} dB) - best data-driven ({dd[0]}, {dd[1]:.2f} dB) = "
                       f"{gap:+.2f} dB "
                       f"(goal >= {margin:g} dB)")
        if ph is not None:
            big = summary.get((problem, ph[0], 256))
            if big is None:
                out.append(f"n/a  {problem}: {ph[0]} at N=256 not run (goal: N=16 within 0.5 dB of N=256)")
            else:
                gap = big[0] - ph[1]
                out.append(f"{'MET   ' if gap <= 0.5 else 'MISSED'} {problem}: {ph[0]} N=256 "
                           f"{big[0]:.2f} dB - "
                           f"N=16 {ph[1]:.2f} dB = {gap:+.2f} dB (goal <= 0.5 dB)")
    return out


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    summary = summarize(rows)
    parts = []
    for problem in sorted({r["problem"] for r in rows}):
        ns = sorted({r["n_train"] for r in rows if r["problem"] == problem and r["family"] != "classical"})
        methods = []
        for r in rows:
            if r["problem"] == problem and (r["method"], r["family"]) not in methods:
                methods.append((r["method"], r["family"]))
        body = []
        for m, fam in methods:
            if fam == "classical":
                v = summary[(problem, m, 0)]
                body.append([m, fam] + [f"{v[0]:.2f}"] * len(ns))
            else:
                cells = []
                for n in ns:
                    v = summary.get((problem, m, n))
                    cells.append("-" if v is None else f"{v[0]:.2f} +/- {v[1]:.2f}")
                body.append([m, fam] + cells)
        parts.append(f"{problem}: test PSNR (dB), mean +/- std over seeds\n\n"
                     + markdown_table(["method", "family"] + [f"N={n}" for n in ns], body))
    return "\n\n".join(parts)


def _figure(rows: Sequence[Mapping[str, Any]], problem: str, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    methods = sorted({(r["method"], r["family"]) for r in rows if r["problem"] == problem})
    for m, fam in methods:
        if fam == "classical":
            ax.axhline(summary[(problem, m, 0)][0], ls=":", color="grey")
            ax.annotate(m, (1.0, summary[(problem, m, 0)][0]), xycoords=("axes fraction", "data"),
                        fontsize=7, ha="right", va="bottom", color="grey")
            continue
        pts = sorted((n, v) for (p, mm, n), v in summary.items() if p == problem and mm == m)
        ns = [n for n, _ in pts]
        mean = np.array([v[0] for _, v in pts])
        std = np.array([v[1] for _, v in pts])
        ax.errorbar(ns, mean, yerr=std, marker="o" if fam == "physics" else "s", capsize=3,
                    ls="-" if fam == "physics" else "--", label=f"{m} ({fam})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training images N")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title(f"learning curve: {problem}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


@dataclass
class LearningCurveResults(StudyCounts):
    """Rows, table, goals and written paths of a study (or of a merge)."""

    rows: list[dict[str, Any]]
    table: str
    goals: list[str]
    paths: dict[str, str]
    budget: str = ""


def report(out: str | os.PathLike, records: Sequence[Mapping[str, Any]], *, budget: str = "",
           figures: bool = True, prov: Mapping[str, Any] | None = None) -> LearningCurveResults:
    """Write results.csv, results.md, results.json and figures/ in ``out`` from cell records."""
    out = os.fspath(out)
    rows = rows_from_records(records)
    table = _table(rows) if rows else "(no finished cells)"
    goal_lines = goals(rows)
    paths = {"csv": write_csv(os.path.join(out, "results.csv"), rows, CSV_COLUMNS)}
    md = (f"# Learning curves\n\nBudget rule: {budget or 'see the cells'}\n\n{table}\n\n## Goals\n\n"
          + "\n".join(f"- {g}" for g in goal_lines) + "\n")
    paths["md"] = write_text(os.path.join(out, "results.md"), md)
    paths["json"] = write_json(os.path.join(out, "results.json"), dict(prov or {}, rows=len(rows)))
    if figures and rows:
        for problem in sorted({r["problem"] for r in rows}):
            paths[f"figure-{problem}"] = _figure(rows, problem, os.path.join(out, "figures",
                                                                              f"learning_curve_{problem}.png"))
    return LearningCurveResults(rows=rows, table=table, goals=goal_lines, paths=paths, budget=budget)


def _dist_shard() -> Shard | None:
    ws = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if ws <= 1:
        return None
    return Shard(int(os.environ.get("RANK", "0")) + 1, ws)


def run(config: LearningCurveConfig, out: str | os.PathLike, *, force: bool = False,
        shard: Shard | None = None, progress: bool = True, argv: Sequence[str] | None = None,
        wait_s: float = 3600.0) -> LearningCurveResults:
    """Run (or resume) a study in ``out`` and write its tables.

    Under ``torchrun`` (``WORLD_SIZE`` > 1, no ``shard``) each rank computes
    its share of the cells; rank 0 then waits (up to ``wait_s`` seconds) for
    every cell file and writes the tables, the other ranks return after their
    share with the tables of what is stored so far left unwritten.
    """
    if not isinstance(config, LearningCurveConfig):
        raise TypeError(f"config must be a LearningCurveConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    rank0 = True
    if shard is None:
        shard = _dist_shard()
        rank0 = os.environ.get("RANK", "0") == "0"
        dist = shard is not None
    else:
        dist = False
    cells = make_cells(config)
    store = CellStore(out, STUDY)
    summ = run_cells(cells, compute_cell, store, force=force, shard=shard, progress=progress, desc=STUDY,
                     on_error="record")
    if dist and rank0:
        deadline = time.monotonic() + wait_s
        while any(store.load(c) is None for c in cells) and time.monotonic() < deadline:
            time.sleep(0.5)
    records = [r for r in (store.load(c) for c in cells) if r is not None]
    prov = provenance.collect({k: v for k, v in asdict(config).items()}, device=config.device,
                              threads=config.threads, seed=config.seed, argv=argv,
                              extra={"study": STUDY, "budget": config.budget_text(),
                                     "image_size": {p: config.size_for(p) for p in config.problems}})
    if dist and not rank0:
        res = LearningCurveResults(rows=rows_from_records(records), table="", goals=[], paths={},
                                   budget=config.budget_text())
    else:
        res = report(out, records, budget=config.budget_text(), figures=config.figures, prov=prov)
    res.count(summ, len(cells), len(records), t0)
    return res
