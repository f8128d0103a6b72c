"""The JPO study: on how many instances does joint parameterized optimization beat BFGS, as N grows?

A study is a grid of cells *problem x number of instances N x seed*. A cell
draws N instances of the problem (:meth:`Problem.generate
<physinv.jpo.problems.Problem.generate>` with that seed), runs every method
of :mod:`physinv.jpo.optimize` on them from the same starting points with
the same budget of forward evaluations per instance, and stores the
per-instance best losses. Cells are stored by :mod:`physinv.bench._cells`,
so a re-run into the same folder computes nothing new.

Comparison rule (physinv's; the published one was not available): per
instance, method ``m`` *wins* against the reference ``bfgs-scipy`` when
``L_m < L_ref - tol``, *loses* when ``L_m > L_ref + tol``, and *ties*
otherwise, with ``tol = rtol * max(|L_m|, |L_ref|) + atol``
(``rtol = 1e-3``, ``atol = 1e-12`` by default). The win fraction is
``wins / instances`` over every instance of every seed, with a 95 % Wilson
score interval; ties count as not won.

Outputs in the study folder: ``jpo.csv`` (one row per problem x N x seed x
instance x method), ``jpo_summary.csv`` and ``jpo.md`` (win fractions),
``provenance.json`` and ``figures/jpo_win_fraction.png``.

Examples
--------
>>> import tempfile
>>> cfg = JPOConfig(problems=("cosine",), n_problems=(2,), seeds=(0,), budget=8, refine=2, figures=False)
>>> res = run(cfg, tempfile.mkdtemp(), progress=False)
>>> len(res.rows), res.computed
(10, 1)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..bench import provenance
from ..bench._cells import Cell, CellStore, Shard, StudyCounts, run_cells
from ..bench._config import int_list
from ..bench._report import markdown_table, save_figure, write_csv, write_json, write_text
from .optimize import METHODS, check_method_names, solve
from .problems import get_problem, problem_names

__all__ = ["STUDY", "DEFAULT_N", "QUICK", "REFERENCE", "BEST_BFGS", "PAPER_WIN_FRACTION", "CSV_COLUMNS",
           "SUMMARY_COLUMNS", "JPOConfig", "JPOResults", "WinCount", "wilson", "compare", "win_count",
           "make_cells", "compute_cell", "rows_from_records", "summarize", "reached_truth", "report", "run"]

#: Name of the study in the cell files.
STUDY = "jpo"
DEFAULT_N = (1, 4, 16, 64, 256)
#: The method every other one is compared with.
REFERENCE = "bfgs-scipy"
#: The second, stricter reference of the JPO methods: per instance, the best of the BFGS-type methods run.
BEST_BFGS = "best-bfgs"
#: The average share of problems on which JPO beat BFGS in Holl and Thuerey (arXiv 2408.08119).
PAPER_WIN_FRACTION = 0.69
#: The ``--quick`` configuration.
QUICK: dict[str, Any] = {"n_problems": (1, 4, 16, 64), "seeds": (0,), "budget": 200, "refine": 50}
CSV_COLUMNS = ("problem", "n_problems", "seed", "instance", "method", "final_loss", "start_loss",
               "truth_loss", "evals", "budget", "outcome", "outcome_best_bfgs", "x", "seconds", "cell")
SUMMARY_COLUMNS = ("problem", "n_problems", "method", "reference", "instances", "wins", "ties", "losses",
                   "win_fraction", "wilson_low", "wilson_high", "median_loss", "median_reference_loss")


@dataclass
class JPOConfig:
    """Everything a JPO study depends on (see the module docstring).

    Parameters
    ----------
    problems : tuple of str
        Problem names (:func:`physinv.jpo.problems.problem_names`).
    n_problems : tuple of int
        Numbers of instances N solved jointly.
    seeds : tuple of int
        Seeds: instances, noise and network initialisation.
    methods : tuple of str
        Methods (:data:`physinv.jpo.optimize.METHODS`); must include ``bfgs-scipy``.
    budget : int
        Forward evaluations per instance for every method.
    refine : int
        The L-BFGS share of ``jpo+lbfgs`` (< budget).
    hidden : tuple of int
        Hidden widths of the JPO network.
    lr : float, optional
        Adam learning rate of the JPO network (default: each problem's
        :attr:`~physinv.jpo.problems.Problem.lr`).
    rtol, atol : float
        Tie tolerance of the comparison.
    device : str
        Only ``"cpu"`` (float64 problems of a few unknowns).
    threads : int, optional
        Torch CPU threads.
    figures : bool
        Write the PNG figure.
    """

    problems: tuple[str, ...] = problem_names()
    n_problems: tuple[int, ...] = DEFAULT_N
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    budget: int = 200
    refine: int = 50
    hidden: tuple[int, ...] = (64, 64)
    lr: float | None = None
    rtol: float = 1e-3
    atol: float = 1e-12
    device: str = "cpu"
    threads: int | None = None
    figures: bool = True

    def __post_init__(self) -> None:
        self.problems = tuple(self.problems)
        known = problem_names()
        bad = [p for p in self.problems if p not in known]
        if bad or not self.problems:
            raise ValueError(f"problems: unknown {bad or 'empty list'}; choose from {', '.join(known)}")
        if len(set(self.problems)) != len(self.problems):
            raise ValueError(f"problems: duplicates in {list(self.problems)}")
        self.n_problems = int_list("n_problems", self.n_problems, 1)
        self.seeds = int_list("seeds", self.seeds, 0)
        self.methods = check_method_names(self.methods)
        if REFERENCE not in self.methods:
            raise ValueError(f"methods: must include the reference {REFERENCE!r}, got {list(self.methods)}")
        for name in ("budget", "refine"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be an int >= 1, got {v!r}")
        if self.refine >= self.budget:
            raise ValueError(f"refine: must be < budget ({self.budget}), got {self.refine}")
        self.hidden = int_list("hidden", self.hidden, 1, unique=False)
        for name in ("lr", "rtol"):
            v = getattr(self, name)
            if name == "lr" and v is None:
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a positive number, got {v!r}")
        if not (isinstance(self.atol, (int, float)) and math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"atol: must be a number >= 0, got {self.atol!r}")
        if self.device != "cpu":
            raise ValueError(f"device: the jpo study runs on the CPU only (float64 problems with a few "
                             f"unknowns each), got {self.device!r}")

    def lr_for(self, problem: str) -> float:
        """The JPO learning rate used on ``problem``."""
        return float(get_problem(problem).lr if self.lr is None else self.lr)

    def budget_text(self) -> str:
        lrs = ", ".join(f"{p} {self.lr_for(p):g}" for p in self.problems)
        return (f"{self.budget} forward evaluations per instance for every method (jpo: {self.budget} "
                f"full-batch Adam steps, lr cosine-decayed from {lrs}, MLP {list(self.hidden)}; jpo+lbfgs: "
                f"{self.budget - self.refine} of those steps + {self.refine} L-BFGS-B evaluations)")

    def tie_text(self) -> str:
        return f"|a - b| <= {self.rtol:g} * max(|a|, |b|) + {self.atol:g}"


# ----------------------------------------------------------------------------- comparison

def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95 % for the default ``z``).

    Examples
    --------
    >>> lo, hi = wilson(8, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.4902, 0.9433)
    >>> wilson(0, 5)[0]
    0.0
    """
    if not (isinstance(n, int) and n >= 1 and isinstance(k, int) and 0 <= k <= n):
        raise ValueError(f"wilson needs ints 0 <= k <= n, n >= 1, got k={k!r}, n={n!r}")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)     # exact ends (no rounding past 0 / 1)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def compare(a: float, b: float, rtol: float = 1e-3, atol: float = 1e-12) -> int:
    """``1`` when loss ``a`` is better (lower) than ``b`` beyond the tie tolerance, ``-1`` when worse, else 0.

    A non-finite loss is worse than any finite one; two non-finite losses tie.

    Examples
    --------
    >>> compare(1.0, 2.0), compare(2.0, 1.0), compare(1.0, 1.0005)
    (1, -1, 0)
    """
    fa, fb = math.isfinite(a), math.isfinite(b)
    if not (fa and fb):
        return 0 if fa == fb else (1 if fa else -1)
    tol = rtol * max(abs(a), abs(b)) + atol
    if a < b - tol:
        return 1
    if a > b + tol:
        return -1
    return 0


@dataclass(frozen=True)
class WinCount:
    """Wins, ties and losses of a method against the reference, with the win fraction's Wilson interval."""

    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def fraction(self) -> float:
        return self.wins / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.wins, self.n) if self.n else (math.nan, math.nan)


def win_count(losses: Sequence[float], reference: Sequence[float], rtol: float = 1e-3,
              atol: float = 1e-12) -> WinCount:
    """Count per-instance wins, ties and losses of ``losses`` against ``reference``.

    Examples
    --------
    >>> w = win_count([0.1, 0.5, 1.0, 2.0], [0.2, 0.5, 0.9, 2.0])
    >>> (w.wins, w.ties, w.losses, w.fraction)
    (1, 2, 1, 0.25)
    """
    if len(losses) != len(reference):
        raise ValueError(f"losses and reference must have the same length, got {len(losses)} and "
                         f"{len(reference)}")
    out = [compare(float(a), float(b), rtol, atol) for a, b in zip(losses, reference)]
    return WinCount(out.count(1), out.count(0), out.count(-1))


# ----------------------------------------------------------------------------- cells

def make_cells(config: JPOConfig) -> list[Cell]:
    """One cell per problem x N x seed (problems in order, small N first)."""
    cells = []
    for problem in config.problems:
        for n in config.n_problems:
            for seed in config.seeds:
                cells.append(Cell({"problem": problem, "n_problems": n, "seed": seed,
                                   "methods": list(config.methods), "budget": config.budget,
                                   "refine": config.refine, "hidden": list(config.hidden),
                                   "lr": config.lr_for(problem)}))
    return cells


def compute_cell(cell: Cell) -> dict[str, Any]:
    """Draw the cell's instances and run every method on them; a JSON-able result.

    Examples
    --------
    >>> c = Cell({"problem": "cosine", "n_problems": 2, "seed": 0, "methods": ["bfgs-scipy", "jpo"],
    ...           "budget": 5, "refine": 1, "hidden": [8], "lr": 0.01})
    >>> r = compute_cell(c)
    >>> sorted(r["methods"]), len(r["methods"]["jpo"]["loss"])
    (['bfgs-scipy', 'jpo'], 2)
    """
    c = cell.config
    p = get_problem(c["problem"])
    obs, truth = p.generate(int(c["n_problems"]), int(c["seed"]))
    with torch.no_grad():
        start = p.loss(p.start(obs), obs)
        at_truth = p.loss(truth, obs)
    res = solve(p, obs, tuple(c["methods"]), budget=int(c["budget"]), refine_budget=int(c["refine"]),
                hidden=tuple(c["hidden"]), lr=float(c["lr"]), seed=int(c["seed"]))
    return {"start_loss": start.tolist(), "truth_loss": at_truth.tolist(),
            "methods": {m: {"loss": r.loss.tolist(), "evals": r.evals.tolist(), "x": r.x.tolist(),
                            "seconds": r.seconds} for m, r in res.items()}}


def _num(v: float) -> float | str:
    return v if math.isfinite(v) else ("inf" if v > 0 else ("-inf" if v < 0 else "nan"))


def rows_from_records(records: Sequence[Mapping[str, Any]], rtol: float = 1e-3,
                      atol: float = 1e-12) -> list[dict[str, Any]]:
    """One row per problem x N x seed x instance x method (``outcome`` against the reference)."""
    rows = []
    for rec in records:
        c, r = rec["config"], rec["result"]
        ref = r["methods"].get(REFERENCE)
        best = _best_bfgs(r["methods"])
        word = {1: "win", 0: "tie", -1: "loss"}
        for m in c["methods"]:
            mr = r["methods"][m]
            for i, loss in enumerate(mr["loss"]):
                loss = float(loss)
                if m == REFERENCE or ref is None:
                    outcome = "reference" if m == REFERENCE else ""
                else:
                    outcome = word[compare(loss, float(ref["loss"][i]), rtol, atol)]
                vs_best = word[compare(loss, best[i], rtol, atol)] if m.startswith("jpo") and best else ""
                rows.append({"problem": c["problem"], "n_problems": c["n_problems"], "seed": c["seed"],
                             "instance": i, "method": m, "final_loss": _num(loss),
                             "start_loss": _num(float(r["start_loss"][i])),
                             "truth_loss": _num(float(r["truth_loss"][i])), "evals": int(mr["evals"][i]),
                             "budget": c["budget"], "outcome": outcome, "outcome_best_bfgs": vs_best,
                             "x": " ".join(f"{v:.6g}" for v in mr["x"][i]),
                             "seconds": round(float(mr["seconds"]), 4), "cell": rec["id"]})
    rows.sort(key=lambda q: (q["problem"], q["n_problems"], q["seed"], q["method"], q["instance"]))
    return rows


def _median(v: Sequence[float]) -> float:
    s = sorted(float(x) for x in v)
    if not s:
        return math.nan
    k = len(s) // 2
    return s[k] if len(s) % 2 else 0.5 * (s[k - 1] + s[k])


def summarize(records: Sequence[Mapping[str, Any]], rtol: float = 1e-3,
              atol: float = 1e-12) -> list[dict[str, Any]]:
    """Win counts per problem and N, over all seeds and instances.

    Every method other than ``bfgs-scipy`` is compared with it; the JPO
    methods are also compared with :data:`BEST_BFGS`, per instance the
    lowest loss of the BFGS-type methods that were run.
    """
    groups: dict[tuple[str, int, str, str], tuple[list[float], list[float]]] = {}
    for rec in records:
        c, r = rec["config"], rec["result"]
        refs = {}
        if REFERENCE in r["methods"]:
            refs[REFERENCE] = [float(v) for v in r["methods"][REFERENCE]["loss"]]
        best = _best_bfgs(r["methods"])
        for m in c["methods"]:
            pairs = list(refs.items()) + ([(BEST_BFGS, best)] if m.startswith("jpo") and best else [])
            for name, ref in pairs:
                if m == name:
                    continue
                a, b = groups.setdefault((c["problem"], c["n_problems"], m, name), ([], []))
                a.extend(float(v) for v in r["methods"][m]["loss"])
                b.extend(ref)
    out = []
    order = {name: k for k, name in enumerate(problem_names())}
    for (problem, n, m, name), (a, b) in sorted(groups.items(), key=lambda kv: (
            order.get(kv[0][0], 99), kv[0][1], METHODS.index(kv[0][2]), kv[0][3] != REFERENCE)):
        w = win_count(a, b, rtol, atol)
        lo, hi = w.interval
        out.append({"problem": problem, "n_problems": n, "method": m, "reference": name,
                    "instances": w.n, "wins": w.wins, "ties": w.ties, "losses": w.losses,
                    "win_fraction": round(w.fraction, 4), "wilson_low": round(lo, 4),
                    "wilson_high": round(hi, 4),
                    "median_loss": _median(a), "median_reference_loss": _median(b)})
    return out


def _best_bfgs(methods: Mapping[str, Any]) -> list[float]:
    """Per instance, the lowest loss of the BFGS-type methods in a cell's result (empty if none)."""
    names = [m for m in methods if "bfgs" in m and not m.startswith("jpo")]
    if not names:
        return []
    return [min(float(methods[m]["loss"][i]) for m in names) for i in range(len(methods[names[0]]["loss"]))]


def reached_truth(records: Sequence[Mapping[str, Any]], rtol: float = 1e-3,
                  atol: float = 1e-12) -> dict[tuple[str, int, str], float]:
    """``(problem, N, method) ->`` share of instances whose final loss is at most that at the true unknowns.

    The loss at the truth is not the global minimum on noisy data (that is
    lower), so this counts the instances where a method reached the true
    solution's basin or better; ties use the comparison tolerance.

    Examples
    --------
    >>> rec = {"config": {"problem": "wave", "n_problems": 2, "methods": ["jpo"]},
    ...        "result": {"truth_loss": [1.0, 1.0], "methods": {"jpo": {"loss": [0.5, 2.0]}}}}
    >>> reached_truth([rec])
    {('wave', 2, 'jpo'): 0.5}
    """
    counts: dict[tuple[str, int, str], list[int]] = {}
    for rec in records:
        c, r = rec["config"], rec["result"]
        for m in c["methods"]:
            hits = [compare(float(a), float(b), rtol, atol) >= 0
                    for a, b in zip(r["methods"][m]["loss"], r["truth_loss"])]
            tot = counts.setdefault((c["problem"], c["n_problems"], m), [0, 0])
            tot[0] += sum(hits)
            tot[1] += len(hits)
    return {k: v[0] / v[1] for k, v in counts.items() if v[1]}


def _truth_table(records: Sequence[Mapping[str, Any]], rtol: float, atol: float) -> str:
    share = reached_truth(records, rtol, atol)
    if not share:
        return ""
    n_max = max(n for _, n, _ in share)
    methods = [m for m in METHODS if any(k[2] == m for k in share)]
    problems = sorted({k[0] for k in share if k[1] == n_max}, key=lambda p: problem_names().index(p))
    body = [[p, *[("-" if (p, n_max, m) not in share else f"{100 * share[(p, n_max, m)]:.0f}%")
                  for m in methods]] for p in problems]
    return (f"Share of instances with a final loss at most the loss at the true unknowns (N={n_max})\n\n"
            + markdown_table(["problem", *methods], body))


def _table(summary: Sequence[Mapping[str, Any]], method: str, reference: str = REFERENCE) -> str:
    rows = [s for s in summary if s["method"] == method and s["reference"] == reference]
    if not rows:
        return ""
    ns = sorted({s["n_problems"] for s in rows})
    problems = sorted({s["problem"] for s in rows}, key=lambda p: problem_names().index(p))
    body = []
    for p in problems:
        cells = []
        for n in ns:
            s = next((s for s in rows if s["problem"] == p and s["n_problems"] == n), None)
            cells.append("-" if s is None else
                         f"{100 * s['win_fraction']:.0f}% [{100 * s['wilson_low']:.0f}, "
                         f"{100 * s['wilson_high']:.0f}] {s['wins']}/{s['ties']}/{s['losses']}")
        body.append([p, *cells])
    mean = []
    for n in ns:
        vals = [s["win_fraction"] for s in rows if s["n_problems"] == n]
        mean.append(f"{100 * sum(vals) / len(vals):.0f}% (mean of {len(vals)})")
    body.append(["mean over problems", *mean])
    what = " (per instance the best of the BFGS-type methods)" if reference == BEST_BFGS else ""
    return (f"{method} vs {reference}{what}: share of instances where {method} reaches a lower loss "
            f"[95 % Wilson interval] wins/ties/losses\n\n"
            + markdown_table(["problem", *[f"N={n}" for n in ns]], body))


def _figure(summary: Sequence[Mapping[str, Any]], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m.startswith("jpo") and any(s["method"] == m for s in summary)]
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(5.5 * max(1, len(methods)), 4.8),
                             squeeze=False)
    for ax, m in zip(axes[0], methods):
        rows = [s for s in summary if s["method"] == m and s["reference"] == REFERENCE]
        strict = [s for s in summary if s["method"] == m and s["reference"] == BEST_BFGS]
        names = sorted({s["problem"] for s in rows}, key=lambda q: problem_names().index(q))
        for k, p in enumerate(names):
            pts = sorted(((s["n_problems"], s) for s in rows if s["problem"] == p), key=lambda q: q[0])
            shift = 2 ** (0.05 * (k - (len(names) - 1) / 2))      # side by side, so the bars stay readable
            ns = [n * shift for n, _ in pts]
            f = [s["win_fraction"] for _, s in pts]
            lo = [s["win_fraction"] - s["wilson_low"] for _, s in pts]
            hi = [s["wilson_high"] - s["win_fraction"] for _, s in pts]
            line = ax.errorbar(ns, f, yerr=[lo, hi], marker="o", capsize=3, label=p)
            best = sorted(((s["n_problems"], s["win_fraction"]) for s in strict if s["problem"] == p),
                          key=lambda q: q[0])
            if best:
                ax.plot([n * shift for n, _ in best], [v for _, v in best], ls="--", marker="x", lw=1,
                        color=line[0].get_color())
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.axhline(PAPER_WIN_FRACTION, color="k", ls="--", lw=1, label="69% (paper, average)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("instances solved jointly N")
        ax.set_ylabel("win fraction (95 % Wilson interval)")
        ax.set_title(f"{m} vs {REFERENCE} (dashed: vs {BEST_BFGS})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    fig.tight_layout()
    out = save_figure(fig, path)
    plt.close(fig)
    return out


@dataclass
class JPOResults(StudyCounts):
    """Rows, summary, tables and written paths of a study."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    table: str
    paths: dict[str, str]
    budget: str = ""
    tie: str = ""


def report(out: str | os.PathLike, records: Sequence[Mapping[str, Any]], *, rtol: float = 1e-3,
           atol: float = 1e-12, budget: str = "", figures: bool = True,
           prov: Mapping[str, Any] | None = None) -> JPOResults:
    """Write jpo.csv, jpo_summary.csv, jpo.md, provenance.json and the figure from cell records."""
    out = os.fspath(out)
    rows = rows_from_records(records, rtol, atol)
    summary = summarize(records, rtol, atol)
    tie = f"|a - b| <= {rtol:g} * max(|a|, |b|) + {atol:g}"
    tables = [t for t in (_table(summary, m) for m in METHODS if m != REFERENCE) if t]
    tables += [t for t in (_table(summary, m, BEST_BFGS) for m in METHODS if m.startswith("jpo")) if t]
    if records:
        tables.append(_truth_table(records, rtol, atol))
    table = "\n\n".join(tables) if tables else "(no finished cells)"
    paths = {"csv": write_csv(os.path.join(out, "jpo.csv"), rows, CSV_COLUMNS),
             "summary": write_csv(os.path.join(out, "jpo_summary.csv"), summary, SUMMARY_COLUMNS)}
    md = (f"# Joint parameterized optimization vs BFGS\n\nBudget: {budget or 'see the cells'}\n\n"
          f"Tie rule: {tie}; the win fraction counts ties as not won.\n\n{table}\n")
    paths["md"] = write_text(os.path.join(out, "jpo.md"), md)
    if prov is not None:
        paths["provenance"] = write_json(os.path.join(out, "provenance.json"), dict(prov, cells=len(records)))
    if figures and summary:
        paths["figure"] = _figure(summary, os.path.join(out, "figures", "jpo_win_fraction.png"))
    return JPOResults(rows=rows, summary=summary, table=table, paths=paths, budget=budget, tie=tie)


def run(config: JPOConfig, out: str | os.PathLike, *, force: bool = False, shard: Shard | None = None,
        progress: bool = True, argv: Sequence[str] | None = None) -> JPOResults:
    """Run (or resume) a JPO study in ``out`` and write its tables, figure and provenance."""
    if not isinstance(config, JPOConfig):
        raise TypeError(f"config must be a JPOConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    os.makedirs(os.fspath(out), exist_ok=True)
    cells = make_cells(config)
    store = CellStore(out, STUDY)
    summ = run_cells(cells, compute_cell, store, force=force, shard=shard, progress=progress, desc=STUDY,
                     on_error="record")
    records = [r for r in (store.load(c) for c in cells) if r is not None]
    prov = provenance.collect(dict(asdict(config)), device=config.device, threads=config.threads,
                              seed=min(config.seeds), argv=argv,
                              extra={"study": STUDY, "budget": config.budget_text(), "tie": config.tie_text(),
                                     "reference": REFERENCE})
    res = report(out, records, rtol=config.rtol, atol=config.atol, budget=config.budget_text(),
                 figures=config.figures, prov=prov)
    res.count(summ, len(cells), len(records), t0)
    return res
