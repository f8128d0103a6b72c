"""Loss design on ``y = x^2``: which loss lets a network learn an inverse of a non-injective map.

The benchmark of Rivera, Pardo and Alberdi, "Design of Loss Functions for
Solving Inverse Problems Using Deep Learning" (ICCS 2020): ``F(x) = x^2`` on
``[-33, 33]`` has the two inverse branches ``x = +-sqrt(y)``. physinv's
protocol (the paper's widths, optimizer and budget are not given):

* data: ``n_samples`` (1000) equidistant ``x`` in ``[-33, 33]``, ``y = x^2``;
  with ``rescale`` the networks work with ``R(y) = y / 33^2`` in ``[0, 1]``.
  Networks see ``x / 33`` and return ``33 * output`` on the ``x`` side (a
  fixed scaling, part of the architecture).
* networks: forward surrogate of ``forward_layers`` (5) fully connected
  layers, inverse of ``inverse_layers`` (11), ReLU between them, width
  ``width`` (32); PyTorch's default initialization seeded per cell.
* training: full-batch Adam, ``steps`` steps at learning rate ``lr``
  (two-step: ``steps`` for the surrogate, then ``steps`` for the inverse).
* losses (:mod:`physinv.losses`): ``inverse`` (L1), ``measurement`` (L2,
  exact ``F``), ``encoder-decoder`` (L3), ``two-step`` (L4.1 then L4.2),
  each with the l1 and l2 norms.
* Hermite experiment: the surrogate alone on the three pairs
  ``(-33, 1089), (1, 1), (33, 1089)``, without and with the derivative term
  (finite difference with ``epsilon`` = 1 as in the paper, and exact by
  autograd).
* reduced-sample encoder-decoder: those three pairs for the forward term,
  1000 equidistant ``y`` in ``[0, 1089]`` for the consistency term, without
  and with the smoothness term (1000 points in ``[-33, 33]``, ``epsilon``).

Metrics, on 1001 equidistant ``y`` in ``[0, 1089]`` and ``x`` in ``[-33, 33]``:
``inverse_error`` = RMS distance of ``F†(y)`` to the nearest branch / RMS of
``sqrt(y)``; ``measurement_misfit`` = mean ``|F(F†(y)) - y|`` / mean ``y``
(exact ``F``); ``forward_error`` = mean ``|F_phi(x) - x^2|`` / mean ``x^2``
(``forward_error_center``: the same mean over ``|x| <= domain / 4`` only,
with the same denominator);
``branch_plus`` = fraction of ``F†(y) > 0`` (for ``y > 1``); ``inside`` =
fraction of ``|F†(y)| <= sqrt(y) + 0.33``; ``collapse`` = mean ``|F†(y)|`` /
mean ``sqrt(y)``.

Each (experiment, loss, norm, seed) is one cell of :mod:`physinv.bench._cells`,
so a re-run into the same folder computes only what is missing.

Examples
--------
>>> import tempfile
>>> cfg = LossDesignConfig(losses=("measurement",), norms=("l2",), seeds=(0,), steps=5, width=4,
...                        hermite=False, reduced=False, figures=False)
>>> res = run(cfg, tempfile.mkdtemp(), progress=False)
>>> [(r["loss"], r["norm"], r["seed"]) for r in res.rows]
[('measurement', 'l2', 0)]
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import losses as L
from . import provenance
from ._cells import Cell, CellStore, Shard, StudyCounts, run_cells
from ._report import markdown_table, save_figure, write_csv, write_json, write_text

__all__ = ["STUDY", "LOSSES", "HERMITE_VARIANTS", "REDUCED_VARIANTS", "CSV_COLUMNS", "QUICK",
           "LossDesignConfig", "LossDesignResults", "make_cells", "compute_cell", "rows_from_records",
           "summary_table", "findings", "run"]

STUDY = "loss-design"
#: The losses of the main experiment (paper: L1, L2, L3, L4).
LOSSES = ("inverse", "measurement", "encoder-decoder", "two-step")
HERMITE_VARIANTS = ("forward", "forward+hermite", "forward+hermite-exact")
REDUCED_VARIANTS = ("encoder-decoder", "encoder-decoder+smooth")
CSV_COLUMNS = ("experiment", "loss", "norm", "seed", "inverse_error", "measurement_misfit", "forward_error",
               "forward_error_center", "branch_plus", "inside", "collapse", "train_point_error", "steps",
               "seconds", "cell")
#: The ``--quick`` settings.
QUICK: dict[str, Any] = {"seeds": (0, 1, 2), "width": 16, "steps": 600, "lr": 3e-3}

_Y_MIN_BRANCH = 1.0


@dataclass
class LossDesignConfig:
    """Everything the study depends on (see the module docstring for the protocol).

    Parameters
    ----------
    losses : tuple of str
        Subset of :data:`LOSSES`.
    norms : tuple of {"l1", "l2"}
    seeds : tuple of int
    n_samples : int
        Equidistant training samples of ``[-domain, domain]``.
    domain : float
        Half-width of the ``x`` domain.
    rescale : bool
        Work with ``y / domain^2`` (the paper's ``R``) instead of ``y``.
    forward_layers, inverse_layers : int
        Fully connected layers of the surrogate and of the inverse (>= 2).
    width : int
        Hidden width of both.
    steps : int
        Full-batch Adam steps per training phase.
    lr : float
        Adam learning rate.
    epsilon : float
        Finite-difference step of the Hermite and smoothness terms.
    derivative_weight, smooth_weight : float
        Weights of the Hermite and smoothness terms.
    hermite, reduced : bool
        Run the three-sample Hermite and reduced-sample encoder-decoder experiments.
    log_every : int or None
        Record the loss terms every this many steps (default ``steps // 50``).
    device : str
        Torch device of the training.
    threads : int or None
        Torch CPU threads (``None``: leave torch's setting).
    figures : bool
        Write the PNG figures.

    Examples
    --------
    >>> LossDesignConfig(norms=("l3",))
    Traceback (most recent call last):
        ...
    ValueError: norms: must be distinct names from ('l1', 'l2'), got ('l3',)
    """

    losses: tuple[str, ...] = LOSSES
    norms: tuple[str, ...] = ("l1", "l2")
    seeds: tuple[int, ...] = (0, 1, 2)
    n_samples: int = 1000
    domain: float = 33.0
    rescale: bool = True
    forward_layers: int = 5
    inverse_layers: int = 11
    width: int = 32
    steps: int = 2000
    lr: float = 1e-3
    epsilon: float = 1.0
    derivative_weight: float = 1.0
    smooth_weight: float = 1.0
    hermite: bool = True
    reduced: bool = True
    log_every: int | None = None
    device: str = "cpu"
    threads: int | None = None
    figures: bool = True

    def __post_init__(self) -> None:
        self.losses = tuple(self.losses)
        if not self.losses or any(v not in LOSSES for v in self.losses) or len(set(self.losses)) != len(
                self.losses):
            raise ValueError(f"losses: must be distinct names from {LOSSES}, got {self.losses}")
        self.norms = tuple(self.norms)
        if not self.norms or any(v not in L.NORMS for v in self.norms) \
                or len(set(self.norms)) != len(self.norms):
            raise ValueError(f"norms: must be distinct names from {L.NORMS}, got {self.norms}")
        self.seeds = tuple(self.seeds)
        if not self.seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.seeds) \
                or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: must be distinct ints >= 0, got {self.seeds}")
        for name, low in (("n_samples", 4), ("forward_layers", 2), ("inverse_layers", 2), ("width", 1),
                          ("steps", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name}: must be an int >= {low}, got {v!r}")
        le = self.log_every
        if le is not None and (not isinstance(le, int) or isinstance(le, bool) or le < 1):
            raise ValueError(f"log_every: must be an int >= 1 or None, got {self.log_every!r}")
        for name, positive in (("domain", True), ("lr", True), ("epsilon", True),
                               ("derivative_weight", False), ("smooth_weight", False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (positive and v == 0):
                bound = "> 0" if positive else ">= 0"
                raise ValueError(f"{name}: must be a finite number {bound}, got {v!r}")

    def cell_config(self) -> dict[str, Any]:
        """The settings every cell depends on (not the lists of cells)."""
        keys = ("n_samples", "domain", "rescale", "forward_layers", "inverse_layers", "width", "steps", "lr",
                "epsilon", "derivative_weight", "smooth_weight")
        return {k: getattr(self, k) for k in keys} | {"log_every": self.every(), "device": self.device}

    def every(self) -> int:
        """The logging interval of the loss-term curves."""
        return self.log_every or max(1, self.steps // 50)


# ----------------------------------------------------------------------------- networks and data

class _Scale(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = float(c)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.c


def _mlp(layers: int, width: int, in_scale: float, out_scale: float) -> nn.Module:
    mods: list[nn.Module] = [_Scale(1.0 / in_scale)]
    sizes = [1] + [width] * (layers - 1) + [1]
    for i in range(layers):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < layers - 1:
            mods.append(nn.ReLU())
    mods.append(_Scale(out_scale))
    return nn.Sequential(*mods)


@dataclass
class _Problem:
    x: torch.Tensor            # (n, 1) training x
    y: torch.Tensor            # (n, 1) scaled y = R(x^2)
    ry: float                  # y scale: y_network = y / ry
    domain: float

    def F(self, x: torch.Tensor) -> torch.Tensor:
        """The exact forward model in network units, R(x^2)."""
        return x.square() / self.ry


def _problem(c: Mapping[str, Any], device: str) -> _Problem:
    d = float(c["domain"])
    x = torch.linspace(-d, d, int(c["n_samples"]), dtype=torch.float32, device=device)[:, None]
    ry = d * d if c["rescale"] else 1.0
    return _Problem(x=x, y=x.square() / ry, ry=ry, domain=d)


def _nets(c: Mapping[str, Any], p: _Problem, seed: int, device: str) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    w = int(c["width"])
    fwd = _mlp(int(c["forward_layers"]), w, p.domain, (p.domain ** 2) / p.ry).to(device)
    inv = _mlp(int(c["inverse_layers"]), w, (p.domain ** 2) / p.ry, p.domain).to(device)
    return fwd, inv


def _fit(params: Sequence[nn.Parameter], objective: Callable[[], dict[str, torch.Tensor]], steps: int,
         lr: float, every: int, curves: dict[str, list[float]], phase: str = "", offset: int = 0) -> None:
    """Full-batch Adam; appends the terms every ``every`` steps (and at the last) to ``curves``."""
    opt = torch.optim.Adam(params, lr=lr)
    for k in range(steps):
        terms = objective()
        loss = L.total(terms)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {k + 1}{' of ' + phase if phase else ''}: "
                                     f"{ {n: float(v.detach()) for n, v in terms.items()} }")
        if k % every == 0 or k == steps - 1:
            curves.setdefault(f"{phase}step", []).append(float(offset + k))
            for n, v in terms.items():
                curves.setdefault(f"{phase}{n}", []).append(float(v.detach()))
            curves.setdefault(f"{phase}total", []).append(float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _eval_grids(p: _Problem, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    d = p.domain
    x = torch.linspace(-d, d, 1001, device=device)[:, None]
    y = torch.linspace(0.0, d * d, 1001, device=device)[:, None]
    return x, y


@torch.no_grad()
def _metrics(p: _Problem, fwd: nn.Module | None, inv: nn.Module | None, device: str) -> dict[str, Any]:
    xg, yg = _eval_grids(p, device)
    out: dict[str, Any] = {}
    coarse = slice(None, None, 10)
    if inv is not None:
        xh = inv(yg / p.ry)
        r = yg.sqrt()
        dist = torch.minimum((xh - r).abs(), (xh + r).abs())
        out["inverse_error"] = float(dist.square().mean().sqrt() / r.square().mean().sqrt())
        out["measurement_misfit"] = float((xh.square() - yg).abs().mean() / yg.abs().mean())
        big = yg[:, 0] > _Y_MIN_BRANCH
        out["branch_plus"] = float((xh[big, 0] > 0).float().mean())
        out["inside"] = float((xh.abs() <= r + 0.01 * p.domain).float().mean())
        out["collapse"] = float(xh.abs().mean() / r.mean())
        out["inverse_curve"] = {"y": yg[coarse, 0].tolist(), "x": xh[coarse, 0].tolist()}
    if fwd is not None:
        yh = fwd(xg) * p.ry
        err = (yh - xg.square()).abs()
        out["forward_error"] = float(err.mean() / xg.square().mean())
        center = xg[:, 0].abs() <= p.domain / 4
        out["forward_error_center"] = float(err[center].mean() / xg.square().mean())
        out["forward_curve"] = {"x": xg[coarse, 0].tolist(), "y": yh[coarse, 0].tolist()}
    return out


# ----------------------------------------------------------------------------- cells

def make_cells(config: LossDesignConfig) -> list[Cell]:
    """The cells of a study: main (loss x norm x seed), hermite and reduced (variant x norm x seed).

    Examples
    --------
    >>> len(make_cells(LossDesignConfig(seeds=(0, 1))))  # (4 + 3 Hermite + 2 reduced) x 2 norms x 2 seeds
    36
    """
    if not isinstance(config, LossDesignConfig):
        raise TypeError(f"config must be a LossDesignConfig, got {type(config).__name__}")
    base = config.cell_config()
    cells = []
    plan = [("full", v) for v in config.losses]
    if config.hermite:
        plan += [("hermite", v) for v in HERMITE_VARIANTS]
    if config.reduced:
        plan += [("reduced", v) for v in REDUCED_VARIANTS]
    for experiment, loss in plan:
        for norm in config.norms:
            for seed in config.seeds:
                cells.append(Cell({"study": STUDY, "experiment": experiment, "loss": loss, "norm": norm,
                                   "seed": seed, **base}))
    return cells


def compute_cell(cell: Cell) -> dict[str, Any]:
    """Train the networks of one cell and measure them (JSON-able result).

    Examples
    --------
    >>> cfg = LossDesignConfig(losses=("inverse",), norms=("l2",), seeds=(0,), steps=3, width=4, n_samples=8,
    ...                        hermite=False, reduced=False)
    >>> r = compute_cell(make_cells(cfg)[0])
    >>> sorted(k for k in r if k.endswith("error"))
    ['inverse_error']
    """
    c = cell.config
    device = c["device"]
    t0 = time.perf_counter()
    p = _problem(c, device)
    fwd, inv = _nets(c, p, int(c["seed"]) * 7919 + 1, device)
    norm, steps, lr, every = c["norm"], int(c["steps"]), float(c["lr"]), int(c["log_every"])
    curves: dict[str, list[float]] = {}
    experiment, loss = c["experiment"], c["loss"]
    used_fwd: nn.Module | None = fwd
    used_inv: nn.Module | None = inv
    extra: dict[str, Any] = {}
    if experiment == "full":
        if loss == "inverse":
            term = L.Misfit(norm, name="inverse")
            _fit(list(inv.parameters()), lambda: term(inv(p.y), p.x), steps, lr, every, curves)
            used_fwd = None
        elif loss == "measurement":
            term = L.MeasurementConsistency(p.F, norm)
            _fit(list(inv.parameters()), lambda: term(inv(p.y), p.y), steps, lr, every, curves)
            used_fwd = None
        elif loss == "encoder-decoder":
            ed = L.EncoderDecoder(norm)
            _fit(list(fwd.parameters()) + list(inv.parameters()), lambda: ed(fwd, inv, p.x, p.y), steps, lr,
                 every, curves)
        elif loss == "two-step":
            f_term = L.Misfit(norm, name="forward")
            _fit(list(fwd.parameters()), lambda: f_term(fwd(p.x), p.y), steps, lr, every, curves,
                 phase="step1_")
            surrogate = L.frozen(fwd)
            m_term = L.MeasurementConsistency(surrogate, norm, name="consistency")
            _fit(list(inv.parameters()), lambda: m_term(inv(p.y), p.y), steps, lr, every, curves,
                 phase="step2_", offset=steps)
        else:
            raise ValueError(f"loss: unknown {loss!r}")
    elif experiment == "hermite":
        x3 = torch.tensor([[-p.domain], [1.0], [p.domain]], device=device)
        y3 = p.F(x3)
        f_term = L.Misfit(norm, name="forward")
        parts: dict[str, Callable] = {"F": lambda: f_term(fwd(x3), y3)}
        if loss != "forward":
            mode = "exact" if loss.endswith("exact") else "difference"
            der = L.DerivativeMatch(p.F, epsilon=float(c["epsilon"]), mode=mode, norm=norm, name="DER")
            parts["DER"] = lambda: der(fwd, x3)
        comp = L.Composite(parts, {"DER": float(c["derivative_weight"])} if "DER" in parts else None)
        _fit(list(fwd.parameters()), lambda: comp(), steps, lr, every, curves)
        used_inv = None
        with torch.no_grad():
            extra["train_point_error"] = float(((fwd(x3) - y3).abs()).mean() / y3.abs().mean())
            extra["train_points"] = {"x": x3[:, 0].tolist(), "y": (fwd(x3) * p.ry)[:, 0].tolist(),
                                     "x_plus_eps": (x3[:, 0] + float(c["epsilon"])).tolist(),
                                     "y_plus_eps": (fwd(x3 + float(c["epsilon"])) * p.ry)[:, 0].tolist()}
    elif experiment == "reduced":
        x3 = torch.tensor([[-p.domain], [1.0], [p.domain]], device=device)
        y3 = p.F(x3)
        yu = torch.linspace(0.0, p.domain ** 2, 1000, device=device)[:, None] / p.ry
        xs = torch.linspace(-p.domain, p.domain, 1000, device=device)[:, None]
        sw = float(c["smooth_weight"]) if loss.endswith("+smooth") else 0.0
        ed = L.EncoderDecoder(norm, smooth_weight=sw, epsilon=float(c["epsilon"]))
        _fit(list(fwd.parameters()) + list(inv.parameters()),
             lambda: ed(fwd, inv, x3, y3, y_unlabeled=yu, x_smooth=xs), steps, lr, every, curves)
    else:
        raise ValueError(f"experiment: unknown {experiment!r}")
    res = _metrics(p, used_fwd, used_inv, device)
    res.update(extra)
    res["curves"] = curves
    res["seconds"] = time.perf_counter() - t0
    res["steps"] = steps * (2 if loss == "two-step" else 1)
    return res


def rows_from_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One CSV row per stored cell (in the order given).

    Examples
    --------
    >>> rec = {"id": "abc", "config": {"experiment": "full", "loss": "inverse", "norm": "l1", "seed": 0},
    ...        "result": {"inverse_error": 0.99, "curves": {}}}
    >>> rows_from_records([rec])
    [{'experiment': 'full', 'loss': 'inverse', 'norm': 'l1', 'seed': 0, 'inverse_error': 0.99, 'cell': 'abc'}]
    """
    rows = []
    for rec in records:
        c, r = rec["config"], rec["result"]
        row = {k: c[k] for k in ("experiment", "loss", "norm", "seed")}
        row.update({k: r.get(k) for k in CSV_COLUMNS if k in r})
        row["cell"] = rec.get("id") or Cell(c).id
        rows.append(row)
    return rows


def _mean_std(vals: Sequence[float | None]) -> str:
    v = [x for x in vals if x is not None and math.isfinite(x)]
    if not v:
        return "-"
    m = float(np.mean(v))
    return f"{m:.3g}" if len(v) == 1 else f"{m:.3g} ± {float(np.std(v, ddof=1)):.2g}"


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: mean ± std over seeds of each metric per experiment x loss x norm.

    Examples
    --------
    >>> rows = [{"experiment": "full", "loss": "inverse", "norm": "l2", "seed": s, "collapse": c}
    ...         for s, c in ((0, 0.01), (1, 0.03))]
    >>> print(summary_table(rows).splitlines()[-1])
    | full | inverse | l2 | 2 | - | - | - | - | - | 0.02 ± 0.014 |
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["experiment"], r["loss"], r["norm"]), []).append(r)
    cols = ("inverse_error", "measurement_misfit", "forward_error", "forward_error_center", "branch_plus",
            "collapse")
    body = []
    for (e, loss, n), rs in groups.items():
        body.append([e, loss, n, len(rs)] + [_mean_std([r.get(k) for r in rs]) for k in cols])
    return markdown_table(["experiment", "loss", "norm", "seeds", *cols], body)


def findings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Plain statements of what the rows show about Theorem 1 and the other losses.

    Examples
    --------
    >>> findings([{"experiment": "full", "loss": "inverse", "norm": "l2", "collapse": 0.002}])
    ['inverse-space loss, l2: mean |F†(y)| / mean sqrt(y) = 0.002 (Theorem 1: collapse to 0)']
    """
    def mean(exp: str, loss: str, norm: str, key: str) -> float | None:
        v = [r[key] for r in rows if (r["experiment"], r["loss"], r["norm"]) == (exp, loss, norm)
             and r.get(key) is not None]
        return float(np.mean(v)) if v else None

    out = []
    col = mean("full", "inverse", "l2", "collapse")
    if col is not None:
        out.append(f"inverse-space loss, l2: mean |F†(y)| / mean sqrt(y) = {col:.3f} "
                   f"(Theorem 1: collapse to 0)")
    ins = mean("full", "inverse", "l1", "inside")
    if ins is not None:
        err = mean("full", "inverse", "l1", "inverse_error")
        out.append(f"inverse-space loss, l1: {100 * ins:.1f}% of F†(y) inside [-sqrt(y), sqrt(y)] "
                   f"(Theorem 1: any value there), inverse error {err:.3f}")
    for loss in ("measurement", "encoder-decoder", "two-step"):
        for n in ("l1", "l2"):
            e = mean("full", loss, n, "inverse_error")
            if e is not None:
                out.append(f"{loss}, {n}: relative error to the nearest branch {e:.3f}, branch + fraction "
                           f"{mean('full', loss, n, 'branch_plus'):.2f}")
    for n in ("l1", "l2"):
        a, b, c = (mean("hermite", v, n, "forward_error") for v in HERMITE_VARIANTS)
        if a is not None and b is not None:
            out.append(f"3-sample surrogate, {n}: forward error {a:.3f} without the Hermite term, {b:.3f} "
                       f"with it (finite difference)"
                       + (f", {c:.3f} (exact derivative)" if c is not None else ""))
    for n in ("l1", "l2"):
        a, b = (mean("reduced", v, n, "forward_error") for v in REDUCED_VARIANTS)
        ac, bc = (mean("reduced", v, n, "forward_error_center") for v in REDUCED_VARIANTS)
        if a is not None and b is not None:
            out.append(f"reduced-sample encoder-decoder, {n}: forward error {a:.3f} without, {b:.3f} with "
                       f"the smoothness term (near 0, |x| <= domain/4: {ac:.3f} and {bc:.3f})")
    return out


# ----------------------------------------------------------------------------- figures

def _branches(ax: Any, domain: float) -> None:
    y = np.linspace(0, domain ** 2, 400)
    ax.plot(y, np.sqrt(y), color="tab:blue", lw=1.5, label="exact branches")
    ax.plot(y, -np.sqrt(y), color="tab:blue", lw=1.5)


def _first(records: Sequence[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    cands = [r for r in records if all(r["config"].get(k) == v for k, v in match.items())]
    return min(cands, key=lambda r: r["config"]["seed"]) if cands else None


def _figures(out: str, records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    paths: dict[str, str] = {}
    if not records:
        return paths
    domain = float(records[0]["config"]["domain"])
    xs = np.linspace(-domain, domain, 400)
    norms = sorted({r["config"]["norm"] for r in records})
    for exp, variants in (("full", LOSSES), ("reduced", REDUCED_VARIANTS)):
        present = [v for v in variants if any(r["config"]["experiment"] == exp and r["config"]["loss"] == v
                                              for r in records)]
        if not present:
            continue
        fig = Figure(figsize=(3.2 * len(present), 2.6 * len(norms) * 2))
        axes = fig.subplots(2 * len(norms), len(present), squeeze=False)
        for i, n in enumerate(norms):
            for j, v in enumerate(present):
                rec = _first(records, experiment=exp, loss=v, norm=n)
                ax, axf = axes[2 * i, j], axes[2 * i + 1, j]
                _branches(ax, domain)
                axf.plot(xs, xs ** 2, color="tab:blue", lw=1.5, label="exact x^2")
                if rec is not None:
                    r = rec["result"]
                    if "inverse_curve" in r:
                        ax.plot(r["inverse_curve"]["y"], r["inverse_curve"]["x"], "o", ms=2,
                                color="tab:green", label="network")
                    if "forward_curve" in r:
                        axf.plot(r["forward_curve"]["x"], r["forward_curve"]["y"], "o", ms=2, color="tab:red",
                                 label="surrogate")
                    else:
                        axf.text(0.5, 0.6, "no surrogate (exact F)", transform=axf.transAxes, ha="center",
                                 fontsize=7)
                ax.set_title(f"{v}, {n}: inverse", fontsize=8)
                axf.set_title(f"{v}, {n}: forward", fontsize=8)
                for a in (ax, axf):
                    a.tick_params(labelsize=6)
                    a.grid(alpha=0.3)
                ax.legend(fontsize=6)
                axf.legend(fontsize=6)
        fig.tight_layout()
        paths[f"figure-{exp}"] = save_figure(fig, os.path.join(out, "figures", f"{exp}_inverse_forward.png"))
    herm = [v for v in HERMITE_VARIANTS
            if any(r["config"]["experiment"] == "hermite" and r["config"]["loss"] == v for r in records)]
    if herm:
        fig = Figure(figsize=(3.2 * len(herm), 2.6 * len(norms)))
        axes = fig.subplots(len(norms), len(herm), squeeze=False)
        for i, n in enumerate(norms):
            for j, v in enumerate(herm):
                ax = axes[i, j]
                ax.plot(xs, xs ** 2, color="tab:blue", lw=1.5, label="exact x^2")
                rec = _first(records, experiment="hermite", loss=v, norm=n)
                if rec is not None:
                    r = rec["result"]
                    ax.plot(r["forward_curve"]["x"], r["forward_curve"]["y"], "o", ms=2, color="tab:green",
                            label="test points")
                    tp = r["train_points"]
                    ax.plot(tp["x"] + tp["x_plus_eps"], tp["y"] + tp["y_plus_eps"], "o", ms=4,
                            color="tab:red", label="x and x + eps")
                ax.set_title(f"{v}, {n}", fontsize=8)
                ax.tick_params(labelsize=6)
                ax.legend(fontsize=6)
        fig.tight_layout()
        paths["figure-hermite"] = save_figure(fig, os.path.join(out, "figures", "hermite_forward.png"))
    # loss-term curves (seed with the lowest number) of every loss x norm
    chosen = {}
    for r in records:
        c = r["config"]
        key = (c["experiment"], c["loss"], c["norm"])
        if key not in chosen or c["seed"] < chosen[key]["config"]["seed"]:
            chosen[key] = r
    keys = sorted(chosen)
    ncol = 4
    nrow = math.ceil(len(keys) / ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.4 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for k, key in enumerate(keys):
        ax = axes[k // ncol, k % ncol]
        curves = chosen[key]["result"]["curves"]
        for name, vals in curves.items():
            if name.endswith("step"):
                continue
            phase = name.split("_", 1)[0] + "_" if name.startswith("step") and "_" in name else ""
            steps = curves.get(f"{phase}step", [])
            if len(vals) != len(steps):
                continue
            ax.plot(steps, [max(v, 1e-12) for v in vals], lw=1, label=name)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(" / ".join(key), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
    for k in range(len(keys), nrow * ncol):
        axes[k // ncol, k % ncol].set_visible(False)
    fig.tight_layout()
    paths["figure-terms"] = save_figure(fig, os.path.join(out, "figures", "loss_terms.png"))
    return paths


# ----------------------------------------------------------------------------- run

@dataclass
class LossDesignResults(StudyCounts):
    """Rows, summary table, findings and written paths of a study."""

    rows: list[dict[str, Any]]
    table: str
    findings: list[str]
    paths: dict[str, str]


def run(config: LossDesignConfig, out: str | os.PathLike, *, force: bool = False, shard: Shard | None = None,
        progress: bool = True, argv: Sequence[str] | None = None) -> LossDesignResults:
    """Run (or resume) the study in ``out``: ``losses.csv``, ``summary.md``, ``provenance.json``, figures.

    Returns
    -------
    LossDesignResults
    """
    if not isinstance(config, LossDesignConfig):
        raise TypeError(f"config must be a LossDesignConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = os.fspath(out)
    cells = make_cells(config)
    store = CellStore(out, STUDY)
    summ = run_cells(cells, compute_cell, store, force=force, shard=shard, progress=progress, desc=STUDY,
                     on_error="record")
    records = [r for r in (store.load(c) for c in cells) if r is not None]
    rows = rows_from_records(records)
    table = summary_table(rows) if rows else "(no finished cells)"
    lines = findings(rows)
    paths = {"csv": write_csv(os.path.join(out, "losses.csv"), rows, CSV_COLUMNS)}
    md = ("# Loss design on y = x^2\n\n" + table + "\n\n## Findings\n\n" + "\n".join(f"- {s}" for s in lines)
          + "\n")
    paths["md"] = write_text(os.path.join(out, "summary.md"), md)
    prov = provenance.collect(asdict(config), device=config.device, threads=config.threads,
                              seed=min(config.seeds), argv=argv,
                              extra={"study": STUDY, "cells": len(cells), "rows": len(rows)})
    paths["json"] = write_json(os.path.join(out, "provenance.json"), prov)
    if config.figures and records:
        paths.update(_figures(out, records))
    res = LossDesignResults(rows=rows, table=table, findings=lines, paths=paths)
    res.count(summ, len(cells), len(records), t0)
    return res
