"""The one registry of deconvolution methods that the benchmarks compare.

A method is a function ``fn(problem) -> x`` (a tensor or array of the frame
shape, or ``(x, info)`` with a JSON-able ``info`` dict) that gets a
:class:`Problem`: the data ``y``, the PSF, which boundary produced the data,
and helpers that build physinv's operators. Only *oracle* methods see the
truth and the true noise level (``problem.truth``, ``problem.noise_sigma``);
for every other method they are ``None``, so an automatic method cannot
use them by accident.

A learned method also registers ``train(train_images, psf, noise_sigma,
boundary, config) -> state``; the benchmark calls it once per setting
(PSF x noise x boundary), on the training split only
(:mod:`physinv.bench.splits`), caches the state on disk, records the number
of training images and the training time, and passes the state to ``fn`` as
``problem.state``.

Methods registered here (the built-in ones are in
:mod:`physinv.bench._builtin`, and anyone can add more with
:func:`register`) appear in ``physinv bench deconv`` without changes to
the command line.

Examples
--------
>>> import torch
>>> m = register("example-identity", lambda p: p.y, oracle=False, family="baseline",
...              label="the data itself", quick=True, default=False)
>>> get_method("example-identity").label
'the data itself'
>>> register("example-identity", lambda p: p.y, oracle=False, family="baseline", label="again")
Traceback (most recent call last):
...
ValueError: a method named 'example-identity' is already registered (pass replace=True to replace it)
>>> _ = unregister("example-identity")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "DATA_BOUNDARIES",
    "ASSUMPTIONS",
    "Method",
    "Problem",
    "register",
    "unregister",
    "get_method",
    "available_methods",
    "select_methods",
]

#: How benchmark data are made at the image border: ``"circular"`` (circular
#: convolution of the frame) and ``"valid"`` (the frame of a linear
#: convolution of a larger scene: every pixel sees true scene content).
DATA_BOUNDARIES: tuple[str, ...] = ("circular", "valid")

#: What a method assumes about the border: ``"circular"`` (a circular model
#: whatever the data), ``"matched"`` (the model that matches the data:
#: circular on circular data, the boundary-aware model on realistic data),
#: ``"zero"`` (zero padding), ``"none"`` (no model: the blurred input),
#: ``"learned"``.
ASSUMPTIONS: tuple[str, ...] = ("circular", "matched", "zero", "none", "learned")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


@dataclass
class Problem:
    """One deblurring problem as a method sees it.

    Attributes
    ----------
    y : torch.Tensor
        Blurred, noisy data ``(H, W)``, float64, on the benchmark's device.
    psf : torch.Tensor
        The PSF (unit sum, float64, same device).
    boundary : str
        How the data were made (one of :data:`DATA_BOUNDARIES`).
    model : str
        The boundary model of physinv's boundary-aware methods on these data:
        ``"circular"`` for circular data; for realistic data a
        :data:`physinv.operators.convolution.BOUNDARIES` name (e.g.
        ``"reflect"``).
    seed : int
        Seed for methods that draw random numbers (e.g. Gibbs sampling).
    crop : int
        Border (pixels) that the metrics leave out.
    truth : torch.Tensor or None
        The true frame: oracle methods only.
    noise_sigma : float or None
        The true noise standard deviation: oracle methods only.
    state : Any
        What the method's ``train`` returned (learned methods), else ``None``.
    """

    y: torch.Tensor
    psf: torch.Tensor
    boundary: str
    model: str
    seed: int
    crop: int = 0
    truth: torch.Tensor | None = None
    noise_sigma: float | None = None
    state: Any = None
    _ops: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.y.shape[-2]), int(self.y.shape[-1]))

    @property
    def device(self) -> torch.device:
        return self.y.device

    def circular_operator(self):
        """``Convolution(psf, shape)`` with the circular boundary (exact Fourier factorization)."""
        from ..operators import Convolution

        return Convolution(self.psf, self.shape).to(self.device)

    def operator(self):
        """physinv's operator for these data: circular on circular data, else boundary-aware (``model``)."""
        from ..operators import Convolution

        if self.boundary == "circular" or self.model == "circular":
            return self.circular_operator()
        return Convolution(self.psf, self.shape, boundary=self.model).to(self.device)

    def operator_norm(self, A: Any = None) -> float:
        """A step-size bound ``L >= ||A||`` for :meth:`operator` (or ``A``), cheap on every boundary.

        Exact (the largest singular value) for a circular convolution. For a
        boundary-aware operator, 1.05 times a 30-step seeded power iteration
        (which converges slowly for blurs, whose top singular values cluster
        near 1), capped for a non-negative PSF by the Schur bound
        ``sqrt(max(A^H 1) * max(A 1))``, which holds for every non-negative
        matrix.
        """
        from ..operators import power_iteration

        A = self.operator() if A is None else A
        if A.has_svd:
            return float(A.norm())
        est = 1.05 * power_iteration(A, n_iter=30, tol=1e-4, seed=0)
        if bool((self.psf >= 0).all()):
            ones = torch.ones(A.in_shape, dtype=self.y.dtype, device=self.device)
            schur = float(torch.sqrt(A.adjoint(torch.ones_like(self.y)).max() * A(ones).max()))
            est = min(est, schur)
        return est

    def score(self, x: Any) -> float:
        """PSNR (dB, data range 1) of ``x`` clipped to [0, 1] against the truth on the cropped frame.

        Oracle methods use it to pick their parameter with the benchmark's
        own metric; for other methods it raises.
        """
        if self.truth is None:
            raise RuntimeError("Problem.score needs the truth: only oracle methods may call it")
        from ..metrics import psnr

        x = torch.as_tensor(x).to(device=self.truth.device, dtype=torch.float64).clamp(0.0, 1.0)
        c = self.crop
        sl = (slice(c, x.shape[-2] - c), slice(c, x.shape[-1] - c))
        return float(psnr(x[..., sl[0], sl[1]], self.truth[..., sl[0], sl[1]]))


@dataclass(frozen=True)
class Method:
    """A registered method (see :func:`register` for the fields)."""

    name: str
    fn: Callable[[Problem], Any]
    oracle: bool
    family: str
    label: str
    needs_training: bool = False
    train: Callable[..., Any] | None = None
    boundaries: tuple[str, ...] = DATA_BOUNDARIES
    assumes: str = "matched"
    quick: bool = False
    default: bool = True
    version: str = "1"
    params: Mapping[str, Any] = field(default_factory=dict)
    train_config: Mapping[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What of the method enters a cell ID: name, version, parameters, training configuration."""
        out = {"name": self.name, "version": self.version, "params": dict(self.params)}
        if self.needs_training:
            out["train_config"] = dict(self.train_config)
        return out


#: name -> Method; the built-in methods are registered when :mod:`physinv.bench` is imported.
_REGISTRY: dict[str, Method] = {}


def register(name: str, fn: Callable[[Problem], Any], *, oracle: bool, family: str, label: str,
             needs_training: bool = False, train: Callable[..., Any] | None = None,
             boundaries: Sequence[str] = DATA_BOUNDARIES, assumes: str = "matched", quick: bool = False,
             default: bool = True, version: str = "1", params: Mapping[str, Any] | None = None,
             train_config: Mapping[str, Any] | None = None, replace: bool = False) -> Method:
    """Add a method to the registry.

    Parameters
    ----------
    name : str
        Unique short name (lower case, digits, ``_ . + -``), used by
        ``--methods`` and in the tables.
    fn : callable
        ``fn(problem) -> x`` or ``(x, info)``; ``x`` of the frame shape.
        ``info`` may hold the parameter it chose (``"lam"``, ``"n_iter"``...)
        and ``"seconds"``, the time of the final solve when the method
        searches a grid with the truth (oracles), which then replaces the
        measured time.
    oracle : bool
        The method uses the truth or the true noise level.
    family : str
        Group in the tables (``"spectral"``, ``"iterative"``, ``"learned"``...).
    label : str
        One line naming the method and its parameter rule.
    needs_training : bool
        The method has a ``train`` step.
    train : callable, optional
        ``train(train_images, psf, noise_sigma, boundary, config) -> state``;
        ``train_images`` is a list of float64 arrays from the training split,
        ``config`` a dict with ``size``, ``n_train``, ``seed``, ``device`` and
        the method's ``train_config``.
    boundaries : sequence of str
        The data boundaries (:data:`DATA_BOUNDARIES`) the method runs on.
    assumes : str
        Its boundary assumption (:data:`ASSUMPTIONS`).
    quick : bool
        Part of the ``--quick`` selection (fast methods only).
    default : bool
        Part of the default selection (else only when named).
    version : str
        Bump it when the method's results change: it is part of every cell
        ID, so stored cells of the old version are recomputed.
    params, train_config : mapping, optional
        Hyper-parameters (part of the cell ID) and training settings.
    replace : bool
        Replace a method of the same name instead of raising.

    Returns
    -------
    Method
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name must be lower-case letters, digits and _.+- (starting with a letter or "
                         f"digit), got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"a method named {name!r} is already registered (pass replace=True to replace it)")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    for what, v in (("family", family), ("label", label), ("version", version)):
        if not isinstance(v, str) or not v:
            raise ValueError(f"{what} must be a non-empty str, got {v!r}")
    if not isinstance(oracle, bool):
        raise TypeError(f"oracle must be a bool, got {oracle!r}")
    if needs_training and not callable(train):
        raise ValueError(f"method {name!r}: needs_training=True needs a callable train=, got {train!r}")
    if train is not None and not needs_training:
        raise ValueError(f"method {name!r}: train= given but needs_training=False")
    boundaries = tuple(boundaries)
    bad = [b for b in boundaries if b not in DATA_BOUNDARIES]
    if bad or not boundaries:
        raise ValueError(f"boundaries must be a non-empty subset of {DATA_BOUNDARIES}, got {boundaries}")
    if assumes not in ASSUMPTIONS:
        raise ValueError(f"assumes must be one of {ASSUMPTIONS}, got {assumes!r}")
    m = Method(name=name, fn=fn, oracle=oracle, family=family, label=label, needs_training=needs_training,
               train=train, boundaries=boundaries, assumes=assumes, quick=bool(quick), default=bool(default),
               version=version, params=dict(params or {}), train_config=dict(train_config or {}))
    _REGISTRY[name] = m
    return m


def unregister(name: str) -> Method:
    """Remove a method and return it (``KeyError`` when there is none of that name)."""
    if name not in _REGISTRY:
        raise KeyError(f"no method named {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY.pop(name)


def get_method(name: str) -> Method:
    """The method registered as ``name`` (``KeyError`` naming the registered ones otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no method named {name!r}; registered: {sorted(_REGISTRY)}") from None


def available_methods(boundary: str | None = None) -> list[Method]:
    """Every registered method (in registration order), optionally only those for one data boundary.

    Examples
    --------
    >>> names = [m.name for m in available_methods()]
    >>> "wiener-mmse-oracle" in names and "skimage-unsupervised-wiener" in names
    True
    """
    if boundary is not None and boundary not in DATA_BOUNDARIES:
        raise ValueError(f"boundary must be one of {DATA_BOUNDARIES}, got {boundary!r}")
    return [m for m in _REGISTRY.values() if boundary is None or boundary in m.boundaries]


def select_methods(methods: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                   quick: bool = False) -> list[Method]:
    """The methods of a run: named ones (``"all"``: every method), else the default (or quick) set.

    Unknown names raise a ``ValueError`` that names ``methods``/``exclude``
    and lists the registered methods.

    Examples
    --------
    >>> [m.name for m in select_methods(["blurred", "wiener-powerlaw"])]
    ['blurred', 'wiener-powerlaw']
    """
    known = list(_REGISTRY)
    for what, names in (("methods", methods), ("exclude", exclude)):
        if names is None:
            continue
        if isinstance(names, str):
            raise TypeError(f"{what} must be a sequence of names, not a str")
        bad = [n for n in names if n != "all" and n not in _REGISTRY]
        if bad:
            raise ValueError(f"{what}: unknown method(s) {bad}; registered: {known}")
    if methods:
        if "all" in methods:
            chosen = list(_REGISTRY.values())
        else:
            chosen = [_REGISTRY[n] for n in dict.fromkeys(methods)]
    elif quick:
        chosen = [m for m in _REGISTRY.values() if m.quick]
    else:
        chosen = [m for m in _REGISTRY.values() if m.default]
    drop = set(exclude or ())
    return [m for m in chosen if m.name not in drop]
