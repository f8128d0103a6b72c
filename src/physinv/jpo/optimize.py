"""Per-instance optimizers and joint parameterized optimization under one forward-evaluation budget.

Every method solves the same instances from the same starting points
(:meth:`Problem.start <physinv.jpo.problems.Problem.start>`) and may
evaluate the forward model at most ``budget`` times *per instance*:

``bfgs-scipy``, ``lbfgsb-scipy``
    :func:`scipy.optimize.minimize` with ``method="BFGS"`` / ``"L-BFGS-B"``,
    one instance at a time, the gradient from autograd (value and gradient
    together count as one forward evaluation; the backward pass is not
    counted separately).
``lbfgs-torch``
    :class:`torch.optim.LBFGS` with a strong-Wolfe line search, one instance
    at a time; each closure call counts one evaluation.
``jpo``
    Joint parameterized optimization: one network (:class:`physinv.nets.MLP`)
    maps each instance's standardised observation to its unknowns,
    ``x_i = x0_i + scale * net(obs_i)`` (last layer zero at the start, so the
    first output *is* the common starting point), and is trained with Adam on
    the mean of the per-instance losses of the whole set, without labels.
    A training step evaluates the forward model once on every instance (one
    batched call), so ``budget`` steps cost ``budget`` evaluations per
    instance, whatever the number of instances.
``jpo+lbfgs``
    The same network run, stopped after ``budget - refine`` evaluations,
    then ``refine`` evaluations of L-BFGS-B per instance from the network's
    best point: the same total budget.

An optimizer stops when the budget would be exceeded (an evaluation past it is
never run) or when it converges. Every method reports, per instance, the best
point it evaluated and its loss: the same rule for all.

Examples
--------
>>> from physinv.jpo.problems import get_problem
>>> p = get_problem("cosine")
>>> obs, _ = p.generate(4, seed=0)
>>> res = solve(p, obs, ("bfgs-scipy", "jpo"), budget=20)
>>> sorted(res), int(res["jpo"].evals.max()) <= 20, int(res["bfgs-scipy"].evals.max()) <= 20
(['bfgs-scipy', 'jpo'], True, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .problems import Problem

__all__ = ["METHODS", "MethodResult", "BudgetedLoss", "BudgetExhausted", "minimize_scipy", "minimize_torch",
           "jpo", "refine", "solve", "check_method_names"]

#: Method names: every JPO-type name starts with ``jpo``; every BFGS-type one contains ``bfgs``.
METHODS: tuple[str, ...] = ("bfgs-scipy", "lbfgsb-scipy", "lbfgs-torch", "jpo", "jpo+lbfgs")

_DTYPE = torch.float64


class BudgetExhausted(Exception):
    """Raised inside an optimizer when one more forward evaluation would exceed the budget."""


@dataclass
class MethodResult:
    """Per-instance outcome of one method.

    Attributes
    ----------
    x : torch.Tensor
        ``(n, dim)`` best point evaluated per instance.
    loss : torch.Tensor
        ``(n,)`` its loss.
    evals : torch.Tensor
        ``(n,)`` forward evaluations used per instance (int64).
    seconds : float
        Wall-clock time of the method on all instances.
    """

    x: torch.Tensor
    loss: torch.Tensor
    evals: torch.Tensor
    seconds: float = 0.0


def _check_budget(budget: int, name: str = "budget") -> int:
    if not isinstance(budget, (int, np.integer)) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"{name} must be an int >= 1, got {budget!r}")
    return int(budget)


def _check_inputs(problem: Problem, obs: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem, got {type(problem).__name__}")
    if not isinstance(obs, torch.Tensor) or tuple(obs.shape[1:]) != problem.obs_shape or obs.shape[0] < 1:
        got = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
        raise ValueError(f"obs must be a tensor of shape (n, {', '.join(map(str, problem.obs_shape))}) with "
                         f"n >= 1, got {got}")
    x0 = problem.start(obs) if x0 is None else x0
    if not isinstance(x0, torch.Tensor) or tuple(x0.shape) != (obs.shape[0], problem.dim):
        raise ValueError(f"x0 must be a tensor of shape ({obs.shape[0]}, {problem.dim}), got "
                         f"{tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 must be finite")
    return x0.to(_DTYPE)


class BudgetedLoss:
    """The loss of one instance, counting forward evaluations and keeping the best point seen.

    Calling it with ``x`` (a tensor ``(dim,)``) evaluates the problem's loss
    once; past ``budget`` evaluations it raises :class:`BudgetExhausted`
    without evaluating.

    Examples
    --------
    >>> import torch
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("cosine")
    >>> obs, _ = p.generate(1, seed=0)
    >>> f = BudgetedLoss(p, obs[0], budget=2)
    >>> _ = f(torch.zeros(1, dtype=torch.float64)); _ = f(torch.ones(1, dtype=torch.float64))
    >>> f.count
    2
    >>> f(torch.zeros(1, dtype=torch.float64))
    Traceback (most recent call last):
        ...
    physinv.jpo.optimize.BudgetExhausted: budget of 2 forward evaluations used up
    """

    def __init__(self, problem: Problem, obs: torch.Tensor, budget: int) -> None:
        self.problem, self.obs, self.budget = problem, obs[None].to(_DTYPE), _check_budget(budget)
        self.count = 0
        self.best_loss = math.inf
        self.best_x: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.count >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} forward evaluations used up")
        self.count += 1
        value = self.problem.loss(x.reshape(1, -1), self.obs)[0]
        v = float(value.detach())
        if math.isfinite(v) and v < self.best_loss:
            self.best_loss, self.best_x = v, x.detach().reshape(-1).clone()
        return value

    def value_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L, dL/dz)`` at a NumPy point (for SciPy); non-finite values are returned as ``inf``, grad 0."""
        x = torch.as_tensor(np.asarray(z, dtype=np.float64)).clone().requires_grad_(True)
        value = self(x)
        (g,) = torch.autograd.grad(value, x)
        v = float(value.detach())
        if not (math.isfinite(v) and torch.isfinite(g).all()):
            return math.inf, np.zeros_like(z, dtype=np.float64)
        return v, g.detach().numpy().astype(np.float64)


def _collect(fs: Sequence[BudgetedLoss], x0: torch.Tensor, seconds: float) -> MethodResult:
    xs, ls = [], []
    for f, start in zip(fs, x0):
        if f.best_x is None:  # nothing finite was evaluated: report the start
            xs.append(start.clone())
            ls.append(math.inf)
        else:
            xs.append(f.best_x)
            ls.append(f.best_loss)
    return MethodResult(torch.stack(xs), torch.tensor(ls, dtype=_DTYPE),
                        torch.tensor([f.count for f in fs], dtype=torch.int64), seconds)


def minimize_scipy(problem: Problem, obs: torch.Tensor, x0: torch.Tensor | None = None, *, budget: int,
                   method: str = "BFGS") -> MethodResult:
    """Minimise each instance's loss with :func:`scipy.optimize.minimize` (autograd gradients).

    Parameters
    ----------
    problem : Problem
    obs : torch.Tensor
        ``(n, *obs_shape)`` observations.
    x0 : torch.Tensor, optional
        ``(n, dim)`` starting points (default: the problem's rule).
    budget : int
        Forward evaluations allowed per instance.
    method : {"BFGS", "L-BFGS-B"}

    Returns
    -------
    MethodResult

    Examples
    --------
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("billiards")
    >>> obs, truth = p.generate(2, seed=0)
    >>> r = minimize_scipy(p, obs, budget=50)
    >>> r.x.shape, bool((r.evals <= 50).all())
    (torch.Size([2, 2]), True)
    """
    from scipy.optimize import minimize

    if method not in ("BFGS", "L-BFGS-B"):
        raise ValueError(f"method must be 'BFGS' or 'L-BFGS-B', got {method!r}")
    budget = _check_budget(budget)
    x0 = _check_inputs(problem, obs, x0)
    t0 = time.perf_counter()
    fs = []
    for i in range(obs.shape[0]):
        f = BudgetedLoss(problem, obs[i], budget)
        opts = {"gtol": 1e-10, "maxiter": 10 * budget}
        if method == "L-BFGS-B":
            opts = {"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10 * budget, "maxfun": budget}
        try:
            minimize(f.value_and_grad, x0[i].numpy(), jac=True, method=method, options=opts)
        except BudgetExhausted:
            pass
        fs.append(f)
    return _collect(fs, x0, time.perf_counter() - t0)


def minimize_torch(problem: Problem, obs: torch.Tensor, x0: torch.Tensor | None = None, *,
                   budget: int, history_size: int = 20) -> MethodResult:
    """Minimise each instance's loss with :class:`torch.optim.LBFGS` (strong-Wolfe line search).

    Examples
    --------
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("wave")
    >>> obs, _ = p.generate(2, seed=0)
    >>> r = minimize_torch(p, obs, budget=30)
    >>> bool((r.loss <= p.loss(p.start(obs), obs)).all()), bool((r.evals <= 30).all())
    (True, True)
    """
    budget = _check_budget(budget)
    x0 = _check_inputs(problem, obs, x0)
    t0 = time.perf_counter()
    fs = []
    for i in range(obs.shape[0]):
        f = BudgetedLoss(problem, obs[i], budget)
        x = x0[i].clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=budget, max_eval=budget, tolerance_grad=1e-12,
                                tolerance_change=1e-15, history_size=history_size,
                                line_search_fn="strong_wolfe")

        def closure(f=f, x=x, opt=opt):
            opt.zero_grad()
            value = f(x)
            if torch.isfinite(value):
                value.backward()
            return value

        try:
            opt.step(closure)
        except BudgetExhausted:
            pass
        fs.append(f)
    return _collect(fs, x0, time.perf_counter() - t0)


def _standardise(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = obs.reshape(obs.shape[0], -1)
    mean = flat.mean(0)
    std = flat.std(0, unbiased=False) if flat.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-12 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean, std


def jpo(problem: Problem, obs: torch.Tensor, x0: torch.Tensor | None = None, *, budget: int,
        hidden: Sequence[int] = (64, 64), lr: float | None = None, seed: int = 0,
        snapshot: int | None = None) -> tuple[MethodResult, MethodResult | None]:
    """Joint parameterized optimization: train one network on all instances with their losses.

    Parameters
    ----------
    problem : Problem
    obs : torch.Tensor
        ``(n, *obs_shape)`` observations of all instances (the training set).
    x0 : torch.Tensor, optional
        ``(n, dim)`` starting points; the untrained network outputs exactly these.
    budget : int
        Training steps = forward evaluations per instance (each step is one
        batched evaluation of every instance).
    hidden : sequence of int
        Hidden widths of the :class:`physinv.nets.MLP`.
    lr : float, optional
        Adam learning rate, cosine-decayed to zero over the budget (default:
        the problem's :attr:`~physinv.jpo.problems.Problem.lr`).
    seed : int
        Seed of the network's initialisation.
    snapshot : int, optional
        Also return the best points after this many evaluations (``1 <= snapshot <= budget``).

    Returns
    -------
    (MethodResult, MethodResult or None)
        The result after ``budget`` evaluations and the snapshot.

    Examples
    --------
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("wave")
    >>> obs, _ = p.generate(8, seed=0)
    >>> res, _ = jpo(p, obs, budget=30)
    >>> res.evals.tolist() == [30] * 8, bool((res.loss <= p.loss(p.start(obs), obs)).all())
    (True, True)
    """
    from ..nets import MLP

    budget = _check_budget(budget)
    x0 = _check_inputs(problem, obs, x0)
    lr = problem.lr if lr is None else lr
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if snapshot is not None and not (isinstance(snapshot, int) and 1 <= snapshot <= budget):
        raise ValueError(f"snapshot must be an int in [1, budget={budget}], got {snapshot!r}")
    t0 = time.perf_counter()
    obs = obs.to(_DTYPE)
    n = obs.shape[0]
    mean, std = _standardise(obs)
    z = ((obs.reshape(n, -1) - mean) / std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = MLP((z.shape[1],), (problem.dim,), hidden=tuple(hidden)).to(_DTYPE)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    scale = torch.tensor(problem.scale, dtype=_DTYPE)
    opt = torch.optim.Adam(net.parameters(), lr=float(lr))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, budget) / budget)))
    best_loss = torch.full((n,), math.inf, dtype=_DTYPE)
    best_x = x0.clone()
    snap = None
    for k in range(budget):
        x = x0 + scale * net(z)
        losses = problem.loss(x, obs)
        with torch.no_grad():
            better = torch.isfinite(losses) & (losses < best_loss)
            best_loss = torch.where(better, losses, best_loss)
            best_x = torch.where(better[:, None], x, best_x)
        if snapshot is not None and k + 1 == snapshot:
            snap = MethodResult(best_x.clone(), best_loss.clone(),
                                torch.full((n,), snapshot, dtype=torch.int64), time.perf_counter() - t0)
        if k + 1 == budget:
            break
        finite = torch.isfinite(losses)
        opt.zero_grad()
        if finite.any():
            losses[finite].mean().backward()
            grads_ok = all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
            if grads_ok:
                opt.step()
        sched.step()
    res = MethodResult(best_x.detach(), best_loss, torch.full((n,), budget, dtype=torch.int64),
                       time.perf_counter() - t0)
    return res, snap


def refine(problem: Problem, obs: torch.Tensor, start: MethodResult, *, budget: int) -> MethodResult:
    """L-BFGS-B from ``start``'s points with ``budget`` more evaluations per instance; counts add up.

    The result keeps, per instance, the better of ``start`` and the refinement.

    Examples
    --------
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("cosine")
    >>> obs, _ = p.generate(3, seed=0)
    >>> first = minimize_scipy(p, obs, budget=5)
    >>> r = refine(p, obs, first, budget=5)
    >>> bool((r.loss <= first.loss).all()), bool((r.evals <= 10).all())
    (True, True)
    """
    t0 = time.perf_counter()
    more = minimize_scipy(problem, obs, start.x, budget=budget, method="L-BFGS-B")
    keep = more.loss < start.loss
    return MethodResult(torch.where(keep[:, None], more.x, start.x), torch.where(keep, more.loss, start.loss),
                        start.evals + more.evals, start.seconds + time.perf_counter() - t0)


def check_method_names(methods: Sequence[str]) -> tuple[str, ...]:
    """Validate method names against :data:`METHODS` (non-empty, no duplicates).

    Examples
    --------
    >>> check_method_names(["jpo", "bfgs-scipy"])
    ('jpo', 'bfgs-scipy')
    >>> check_method_names(["adam"])
    Traceback (most recent call last):
        ...
    ValueError: methods: unknown ['adam']; choose from bfgs-scipy, lbfgsb-scipy, lbfgs-torch, jpo, jpo+lbfgs
    """
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods: unknown {bad or 'empty list'}; choose from {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods: duplicates in {list(methods)}")
    return methods


def solve(problem: Problem, obs: torch.Tensor, methods: Sequence[str] = METHODS, *, budget: int,
          refine_budget: int | None = None, hidden: Sequence[int] = (64, 64), lr: float | None = None,
          seed: int = 0) -> dict[str, MethodResult]:
    """Run ``methods`` on the same instances and starting points with ``budget`` evaluations each.

    ``refine_budget`` (default ``budget // 4``) is the L-BFGS share of
    ``jpo+lbfgs``; its network part uses ``budget - refine_budget`` of the
    same training run as ``jpo``.

    Examples
    --------
    >>> from physinv.jpo.problems import get_problem
    >>> p = get_problem("logistic")
    >>> obs, _ = p.generate(3, seed=0)
    >>> r = solve(p, obs, ("lbfgs-torch", "jpo+lbfgs"), budget=16)
    >>> [int(v.evals.max()) <= 16 for v in r.values()]
    [True, True]
    """
    methods = check_method_names(methods)
    budget = _check_budget(budget)
    refine_budget = (max(1, budget // 4) if refine_budget is None
                     else _check_budget(refine_budget, "refine_budget"))
    if "jpo+lbfgs" in methods and refine_budget >= budget:
        raise ValueError(f"refine_budget must be < budget={budget}, got {refine_budget}")
    x0 = _check_inputs(problem, obs, None)
    out: dict[str, MethodResult] = {}
    if "jpo" in methods or "jpo+lbfgs" in methods:
        snap_at = budget - refine_budget if "jpo+lbfgs" in methods else None
        if "jpo" in methods:
            res, snap = jpo(problem, obs, x0, budget=budget, hidden=hidden, lr=lr, seed=seed,
                            snapshot=snap_at)
        else:  # the network part of jpo+lbfgs alone: stop training where the refinement starts
            res, _ = jpo(problem, obs, x0, budget=budget - refine_budget, hidden=hidden, lr=lr, seed=seed)
            snap = res
        if "jpo" in methods:
            out["jpo"] = res
        if snap is not None:
            out["jpo+lbfgs"] = refine(problem, obs, snap, budget=refine_budget)
    for m in methods:
        if m == "bfgs-scipy":
            out[m] = minimize_scipy(problem, obs, x0, budget=budget, method="BFGS")
        elif m == "lbfgsb-scipy":
            out[m] = minimize_scipy(problem, obs, x0, budget=budget, method="L-BFGS-B")
        elif m == "lbfgs-torch":
            out[m] = minimize_torch(problem, obs, x0, budget=budget)
    return {m: out[m] for m in methods}
