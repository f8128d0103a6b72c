"""The result object every solver returns, and the checks and bookkeeping they share.

Batching convention
-------------------
``y`` has trailing shape ``A.out_shape``; every leading dimension indexes an
independent problem (a batch of images, channels, ...). Per-problem
quantities (residuals, stopping tests, parameters chosen per image) have the
leading shape ``batch = y.shape[:-len(A.out_shape)]``.

Stopping
--------
Iterative solvers stop after ``n_iter`` iterations, or earlier for a
problem that meets its stopping test: the relative change
``||x_{k+1} - x_k|| / ||x_{k+1}|| <= tol`` (``tol``), or the discrepancy
principle ``||A x_k - y|| <= tau * noise_sigma * sqrt(m)`` (``noise_sigma``,
``m = prod(A.out_shape)``). A problem that has stopped is frozen (its
iterate no longer changes) while the others continue; the loop ends when
all have stopped. ``history`` records batch means after every iteration.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._validate import check_trailing, complex_dtype, compute_dtype, real_dtype
from ..operators.base import LinearOperator
from ..operators.factorization import Factorization
from ..operators.fourier import FourierFactorization

__all__ = ["SolverResult", "require_operator", "IllConditionedWarning", "MAX_GAIN"]

#: The largest filter gain a spectral solver applies without warning, relative to the largest
#: singular value: ``max_i |f(s_i)| * max(s) <= MAX_GAIN``. A pseudo-inverse with the default
#: ``rcond = 1e-6`` stays just inside it; ``lam = 0``, ``rcond = 0`` or ``noise_sigma = 0`` on an
#: ill-conditioned operator exceeds it, and the result is then dominated by amplified noise and
#: rounding.
MAX_GAIN = 1e6


class IllConditionedWarning(RuntimeWarning):
    """A solver applied an amplification beyond the documented bound :data:`MAX_GAIN`, or a
    parameter it was given looks inconsistent with the data; the result is likely dominated by
    noise or rounding (or over-smoothed) rather than silently right.

    Examples
    --------
    >>> issubclass(IllConditionedWarning, RuntimeWarning)
    True
    """


def warn_gain(gain: float, smax: float, fn: str, what: str, stacklevel: int = 3) -> None:
    """Warn with :class:`IllConditionedWarning` when ``gain * smax > MAX_GAIN`` (see :data:`MAX_GAIN`).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_gain(1e9, 1.0, "demo", "lam=0")
    >>> w[0].category.__name__
    'IllConditionedWarning'
    """
    rel = gain * smax
    if not math.isfinite(rel) or rel > MAX_GAIN:
        warnings.warn(f"{fn}: {what} amplifies by up to {gain:.3g} (= {rel:.3g} relative to the largest "
                      f"singular value, above the bound {MAX_GAIN:.0e}); the result is dominated by "
                      "amplified noise and rounding: regularise more (larger lam, rcond or noise_sigma)",
                      IllConditionedWarning, stacklevel=stacklevel)



@dataclass
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    x : torch.Tensor
        The reconstruction, shape ``batch + A.in_shape``.
    n_iter : int
        Iterations performed (the largest over the batch; 0 for closed-form
        spectral filters).
    converged : bool
        True when every problem of the batch met a stopping test (tolerance or
        discrepancy principle) before ``n_iter``; closed-form filters are
        always converged.
    history : dict of list of float
        Per-iteration batch means: ``"residual"`` (``||Ax - y|| / ||y||``),
        ``"objective"`` (the function the method minimises), and
        method-specific entries.
    info : dict
        Anything else: the regularisation parameter used (``"lam"``), the step
        size (``"step"``), per-problem stopping iterations (``"stopped_at"``)...

    Examples
    --------
    >>> import torch
    >>> r = SolverResult(torch.zeros(2), 3, True, {"residual": [0.5, 0.2, 0.1]})
    >>> r.n_iter, r.history["residual"][-1]
    (3, 0.1)
    """

    x: torch.Tensor
    n_iter: int
    converged: bool
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return (f"SolverResult(x={tuple(self.x.shape)} {self.x.dtype}, n_iter={self.n_iter}, "
                f"converged={self.converged}, last={last})")


# ----------------------------------------------------------------- checks
def require_operator(A: Any, fn: str, name: str = "A") -> LinearOperator:
    """Return ``A`` if it is a :class:`~physinv.operators.LinearOperator`, else raise a ``TypeError``.

    The one argument check of every solver and network that takes an operator.

    Parameters
    ----------
    A : Any
        The value to check.
    fn : str
        The function or class the check is for (prefixes the message).
    name : str
        The argument name used in the message.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> require_operator(Identity(3), "demo").in_shape
    (3,)
    >>> require_operator(torch.eye(3), "demo")
    Traceback (most recent call last):
    ...
    TypeError: demo: A must be a physinv LinearOperator, got Tensor
    """
    if not isinstance(A, LinearOperator):
        raise TypeError(f"{fn}: {name} must be a physinv LinearOperator, got {type(A).__name__}")
    return A


def half_spectrum_path(F: Factorization | None, y: torch.Tensor | None = None) -> FourierFactorization | None:
    """``F`` when the two-FFT path applies (a :class:`FourierFactorization`; real data), else ``None``.

    The one rule of every closed-form solver and network: any operator whose
    exact factorization is a :class:`~physinv.operators.FourierFactorization`
    (a circular convolution, a real multiple of one, its adjoint, a
    subclass...) is solved on the rfft half spectrum, through the
    factorization's public half-spectrum API, with two real FFTs and no
    full-spectrum arrays. Complex data ``y`` take the generic path.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.0), (8, 8))
    >>> half_spectrum_path((2 * A).svd(), torch.zeros(8, 8)) is not None
    True
    >>> half_spectrum_path(A.svd(), torch.zeros(8, 8, dtype=torch.complex128)) is None
    True
    """
    if isinstance(F, FourierFactorization) and (y is None or not y.is_complex()):
        return F
    return None


def check_data(A: LinearOperator, y: Any, fn: str, name: str = "y") -> tuple[int, ...]:
    """Validate ``y`` against ``A.out_shape`` (the operator's output shape); return the batch shape."""
    check_trailing(y, A.out_shape, name, fn)
    n = len(A.out_shape)
    # A sum is finite unless an entry is non-finite (or the sum overflows): one cheap
    # reduction in the common case, the element-wise check only to confirm.
    if not bool(torch.isfinite(y.sum())):
        finite = torch.isfinite(torch.view_as_real(y) if y.is_complex() else y)
        if not bool(finite.all()):
            raise ValueError(f"{fn}: {name} contains non-finite values (nan or inf)")
    return tuple(y.shape[: y.dim() - n])


def check_x0(A: LinearOperator, x0: Any, y: torch.Tensor, batch: tuple[int, ...], fn: str,
             fill: float = 0.0) -> torch.Tensor:
    """Validate an initial guess (default: ``fill`` everywhere) and return a fresh tensor."""
    dtype = y.dtype if (y.is_complex() or A.is_real) else complex_dtype(compute_dtype(y))
    shape = batch + A.in_shape
    if x0 is None:
        return torch.full(shape, fill, dtype=dtype, device=y.device)
    if isinstance(x0, torch.Tensor) and not (x0.is_floating_point() or x0.is_complex()):
        x0 = x0.to(dtype)  # an integer guess is fine: it is cast like any other
    check_trailing(x0, A.in_shape, "x0", fn)
    try:
        out = torch.broadcast_to(x0, shape)
    except RuntimeError:
        raise ValueError(f"{fn}: x0 of shape {tuple(x0.shape)} does not broadcast to {shape}") from None
    if not bool(torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()):
        raise ValueError(f"{fn}: x0 contains non-finite values")
    return out.to(dtype).clone()


def check_param(value: Any, name: str, fn: str, batch: tuple[int, ...], positive: bool = False
                ) -> float | torch.Tensor:
    """A finite non-negative number, or a tensor of such that broadcasts to ``batch``."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{fn}: {name} must be a real number or real tensor, got {value.dtype}")
        if value.dim() == 0:
            return check_param(float(value), name, fn, batch, positive)
        if not bool(torch.isfinite(value).all()) or bool((value < 0).any()) or (
                positive and bool((value == 0).any())):
            raise ValueError(f"{fn}: {name} must be finite and {'>' if positive else '>='} 0, "
                             f"got {value}")
        try:
            torch.broadcast_shapes(value.shape, batch)
        except RuntimeError:
            raise ValueError(f"{fn}: {name} of shape {tuple(value.shape)} does not broadcast to the "
                             f"batch shape {batch}") from None
        if len(value.shape) > len(batch):
            raise ValueError(f"{fn}: {name} has more dimensions ({tuple(value.shape)}) than the batch "
                             f"{batch}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number or a tensor, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{fn}: {name} must be finite and {'>' if positive else '>='} 0, got {value}")
    return value


def per_problem(v: float | torch.Tensor, batch: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A batch-shaped real tensor from a float or broadcastable tensor."""
    t = torch.as_tensor(v, dtype=real_dtype(like.dtype), device=like.device)
    return torch.broadcast_to(t, batch).clone()


def expand(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append ``ndim`` singleton dimensions so a batch-shaped tensor broadcasts over an image."""
    return v.reshape(v.shape + (1,) * ndim)


def pnorm(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-problem 2-norm over the last ``ndim`` dimensions."""
    return torch.linalg.vector_norm(t, dim=tuple(range(-ndim, 0)))


def rel_change(new: torch.Tensor, old: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-problem ``||new - old|| / ||new||`` (0/0 counts as 0)."""
    num = pnorm(new - old, ndim)
    den = pnorm(new, ndim)
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def pdot(a: torch.Tensor, b: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-problem real inner product ``Re <a, b>`` over the last ``ndim`` dimensions."""
    p = a.conj() * b if (a.is_complex() or b.is_complex()) else a * b
    p = p.real if p.is_complex() else p
    return p.sum(dim=tuple(range(-ndim, 0)))


def operator_norm(A: LinearOperator, norm: float | None, fn: str) -> float:
    if norm is not None:
        return float(check_param(norm, "norm", fn, (), positive=True))
    L = A.norm()
    if not L > 0:
        raise ValueError(f"{fn}: the operator has norm 0; nothing can be recovered")
    return L


def make_steps(step: Any, n_iter: int, L: float | None, fn: str, check_step: str,
               bound_factor: float = 2.0, default_factor: float = 1.0) -> list[float]:
    """Per-iteration step sizes: default ``default_factor / L^2``; check against ``bound_factor / L^2``."""
    if check_step not in ("error", "warn", "off"):
        raise ValueError(f"{fn}: check_step must be 'error', 'warn' or 'off', got {check_step!r}")
    if step is None:
        if L is None:  # pragma: no cover - guarded by callers
            raise ValueError(f"{fn}: step is needed")
        return [default_factor / L**2] * n_iter
    if isinstance(step, torch.Tensor):
        step = step.detach().cpu().reshape(-1).tolist() if step.dim() > 0 else float(step)
    if isinstance(step, Sequence) and not isinstance(step, str):
        steps = [float(check_param(s, "step", fn, (), positive=True)) for s in step]
        if len(steps) != n_iter:
            raise ValueError(f"{fn}: step must be a number or a sequence of n_iter={n_iter} numbers, "
                             f"got a sequence of length {len(steps)}")
    else:
        steps = [float(check_param(step, "step", fn, (), positive=True))] * n_iter
    if L is not None and check_step != "off":
        bound = bound_factor / L**2
        worst = max(steps) if steps else 0.0
        if worst > bound * (1 + 1e-9):
            msg = (f"{fn}: step {worst:.6g} exceeds the convergence bound {bound_factor:g}/||A||^2 = "
                   f"{bound:.6g} (||A|| = {L:.6g}); the iteration may diverge")
            if check_step == "error":
                raise ValueError(msg + "; pass check_step='warn' to run it anyway")
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return steps


def check_n_iter(n_iter: Any, fn: str, allow_zero: bool = True) -> int:
    low = 0 if allow_zero else 1
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < low:
        raise ValueError(f"{fn}: n_iter must be a {'non-negative' if allow_zero else 'positive'} "
                         f"integer, got {n_iter!r}")
    return int(n_iter)


class Monitor:
    """Per-problem stopping, history, callback and progress bar for an iterative solver."""

    def __init__(self, fn: str, A: LinearOperator, y: torch.Tensor, batch: tuple[int, ...], n_iter: int,
                 tol: float | None = None, noise_sigma: Any = None, tau: float = 1.0,
                 callback: Callable[[int, torch.Tensor], Any] | None = None, progress: bool = False) -> None:
        self.fn = fn
        self.batch = batch
        self.n_out = len(A.out_shape)
        self.n_in = len(A.in_shape)
        self.tol = None if tol is None else float(check_param(tol, "tol", fn, ()))
        self.m = math.prod(A.out_shape)
        self.target = None
        if noise_sigma is not None:
            sig = check_param(noise_sigma, "noise_sigma", fn, batch)
            tau = float(check_param(tau, "tau", fn, (), positive=True))
            self.target = per_problem(sig, batch, y) * (tau * math.sqrt(self.m))
        if callback is not None and not callable(callback):
            raise TypeError(f"{fn}: callback must be callable, got {type(callback).__name__}")
        self.callback = callback
        ynorm = pnorm(y, self.n_out)
        self.ynorm = torch.where(ynorm > 0, ynorm, torch.ones_like(ynorm))
        self.active = torch.ones(batch, dtype=torch.bool, device=y.device)
        self.stopped_at = torch.full(batch, n_iter, dtype=torch.long, device=y.device)
        self.history: dict[str, list[float]] = {"residual": [], "objective": []}
        self.k = 0
        self.pbar = None
        if progress:
            from tqdm.auto import tqdm

            self.pbar = tqdm(total=n_iter, desc=fn, leave=False)

    @property
    def any_active(self) -> bool:
        return bool(self.active.any())

    def mask(self, ndim: int) -> torch.Tensor:
        return expand(self.active, ndim)

    def freeze(self, new: torch.Tensor, old: torch.Tensor, ndim: int | None = None) -> torch.Tensor:
        """Keep ``old`` for the problems that have stopped."""
        if bool(self.active.all()):
            return new
        return torch.where(self.mask(self.n_in if ndim is None else ndim), new, old)

    def initial(self, res_norm: torch.Tensor) -> bool:
        """Apply the discrepancy test to the initial guess; return True when all problems are done."""
        if self.target is not None:
            done = res_norm <= self.target
            self.active &= ~done
            self.stopped_at[done] = 0
        return not self.any_active

    def step(self, x: torch.Tensor, res_norm: torch.Tensor, objective: torch.Tensor | None = None,
             change: torch.Tensor | None = None, **extra: float) -> bool:
        """Record iteration ``k``; return True when every problem has stopped."""
        self.k += 1
        rel = (res_norm / self.ynorm).detach()
        self.history["residual"].append(float(rel.detach().mean()))
        if objective is not None:
            self.history["objective"].append(float(objective.detach().mean()))
        for key, val in extra.items():
            self.history.setdefault(key, []).append(float(val))
        done = torch.zeros_like(self.active)
        if self.tol is not None and change is not None:
            done |= change.detach() <= self.tol
        if self.target is not None:
            done |= res_norm.detach() <= self.target
        newly = done & self.active
        if bool(newly.any()):
            self.stopped_at[newly] = self.k
            self.active &= ~newly
        if self.pbar is not None:
            self.pbar.update(1)
            self.pbar.set_postfix(residual=f"{self.history['residual'][-1]:.3e}")
        stop = not self.any_active
        if self.callback is not None:
            if self.callback(self.k, x) is True:
                stop = True
        return stop

    def result(self, x: torch.Tensor, **info: Any) -> SolverResult:
        if self.pbar is not None:
            self.pbar.close()
        converged = bool((~self.active).all()) and (self.tol is not None or self.target is not None)
        stopped = self.stopped_at.clone()
        stopped[self.active] = self.k
        info = dict(info)
        info["stopped_at"] = stopped if len(self.batch) else int(stopped)
        if not self.history["objective"]:
            del self.history["objective"]
        return SolverResult(x=x, n_iter=self.k, converged=converged, history=self.history, info=info)
