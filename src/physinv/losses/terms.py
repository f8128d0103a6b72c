"""Loss terms for learned inversion: misfits in model and data space, surrogates, derivatives, smoothness.

Every loss here is a callable returning a ``dict`` of named scalar terms
(``{"measurement": tensor(...)}``), the form :class:`physinv.train.Trainer`
sums and logs term by term. Terms combine with :class:`Composite`.

The names follow Rivera, Pardo and Alberdi, "Design of Loss Functions for
Solving Inverse Problems Using Deep Learning" (ICCS 2020):

=========================  ==================================================
paper                      physinv
=========================  ==================================================
L1: ``||F†(y) - x||``       :class:`Misfit` (``name="inverse"``)
L2: ``||F(F†(y)) - y||``    :class:`MeasurementConsistency` (known ``F``)
L3: encoder-decoder         :class:`EncoderDecoder` (surrogate + inverse)
L4.1 / L4.2: two steps      :class:`Misfit` (``name="forward"``), then
                           :class:`MeasurementConsistency` of :func:`frozen`
Hermite term of Eq. (16)   :class:`DerivativeMatch`
smoothness of Eq. (17)     :class:`Smoothness`
=========================  ==================================================

Norms: ``"l1"`` is the mean absolute value of the residual, ``"l2"`` the mean
of its squares (the paper's sums divided by the number of entries: the same
minimizers, and a loss that is a mean over the batch, as the Trainer wants).
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .._validate import check_real
from ..operators.base import LinearOperator

__all__ = ["NORMS", "norm", "total", "Misfit", "MeasurementConsistency", "EncoderDecoder",
           "EncoderDecoderNet", "DerivativeMatch", "Smoothness", "GradientPenalty", "Composite", "frozen"]

#: The norms every loss accepts.
NORMS = ("l1", "l2")

Terms = dict[str, torch.Tensor]


def _check_norm(value: Any) -> str:
    if not isinstance(value, str) or value not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {value!r}")
    return value


def _check_tensor(t: Any, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    return t


def _check_same(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _check_callable(f: Any, name: str) -> Callable:
    if not callable(f):
        raise TypeError(f"{name} must be callable (a network, a LinearOperator or a function), got "
                        f"{type(f).__name__}")
    return f


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name == "loss":
        raise ValueError(f"name must be a non-empty str other than 'loss', got {name!r}")
    return name


def norm(residual: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """The mean l1 (``mean |r|``) or l2 (``mean r^2``) size of a residual, as a scalar tensor.

    Parameters
    ----------
    residual : Tensor
        Real, floating, non-empty.
    kind : {"l1", "l2"}

    Examples
    --------
    >>> import torch
    >>> r = torch.tensor([3.0, -4.0])
    >>> float(norm(r, "l1")), float(norm(r, "l2"))
    (3.5, 12.5)
    """
    kind = _check_norm(kind)
    r = _check_tensor(residual, "residual")
    return r.abs().mean() if kind == "l1" else r.square().mean()


def total(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The sum of a dict of scalar terms (what the Trainer minimizes).

    Examples
    --------
    >>> import torch
    >>> float(total({"a": torch.tensor(1.0), "b": torch.tensor(2.5)}))
    3.5
    """
    if not isinstance(terms, Mapping) or not terms:
        raise TypeError(f"terms must be a non-empty dict of scalar tensors, got {type(terms).__name__}")
    return sum(terms.values())  # type: ignore[return-value]


class Misfit:
    """``||pred - target||``: the paper's L1 (``name="inverse"``) or L4.1 (``name="forward"``).

    Called as ``loss(pred, target)``, the signature of the Trainer's
    ``loss=``. With ``pred = F†(y)`` and ``target = x`` it is the classical
    supervised loss, which Theorem 1 of the paper shows fails for a
    non-injective ``F``: for ``y = x^2`` the l2 minimizer is ``0`` and the l1
    minimizers are anything in ``[-sqrt(y), sqrt(y)]``.

    Parameters
    ----------
    norm : {"l1", "l2"}
    name : str
        Name of the term in the returned dict.

    Examples
    --------
    >>> import torch
    >>> loss = Misfit("l1", name="inverse")
    >>> {k: float(v) for k, v in loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).items()}
    {'inverse': 1.5}
    """

    def __init__(self, norm: str = "l2", name: str = "misfit") -> None:
        self.norm = _check_norm(norm)
        self.name = _check_name(name)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> Terms:
        _check_tensor(pred, "pred")
        _check_tensor(target, "target")
        _check_same(pred, target, "pred", "target")
        return {self.name: norm(pred - target, self.norm)}

    def __repr__(self) -> str:
        return f"Misfit(norm={self.norm!r}, name={self.name!r})"


class MeasurementConsistency:
    """``||F(x_pred) - y||`` through a known differentiable forward model: the paper's L2 (and L4.2).

    Needs no ground truth: an inverse network (or an imaging network) is
    trained from measurements alone. Called as ``loss(x_pred, y)``; with the
    Trainer use ``forward=lambda model, batch: (model(batch[0]), batch[0])``.
    On an ill-posed operator (blur) the minimizers include every ``x`` that
    differs from the truth by a near-null-space component: add a regularizer
    (:class:`GradientPenalty` in a :class:`Composite`) or stop early.

    Parameters
    ----------
    forward_model : LinearOperator or callable
        ``F``: any physinv :class:`~physinv.operators.LinearOperator`, a
        network (for L4.2: a :func:`frozen` surrogate), or any function
        torch can differentiate.
    norm : {"l1", "l2"}
    name : str
        Name of the term.

    Examples
    --------
    >>> import torch
    >>> loss = MeasurementConsistency(torch.square, "l2")
    >>> x = torch.tensor([-2.0, 3.0], requires_grad=True)
    >>> loss(x, torch.tensor([4.0, 9.0]))["measurement"].item()  # both branches fit
    0.0
    """

    def __init__(self, forward_model: Any, norm: str = "l2", name: str = "measurement") -> None:
        self.forward_model = _check_callable(forward_model, "forward_model")
        self.norm = _check_norm(norm)
        self.name = _check_name(name)

    def __call__(self, x_pred: torch.Tensor, y: torch.Tensor) -> Terms:
        _check_tensor(x_pred, "x_pred")
        _check_tensor(y, "y")
        y_pred = self.forward_model(x_pred)
        if not isinstance(y_pred, torch.Tensor):
            raise TypeError(f"forward_model must return a tensor, got {type(y_pred).__name__}")
        _check_same(y_pred, y, "forward_model(x_pred)", "y")
        return {self.name: norm(y_pred - y, self.norm)}

    def __repr__(self) -> str:
        return f"MeasurementConsistency({type(self.forward_model).__name__}, norm={self.norm!r})"


def frozen(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in eval mode whose parameters take no gradient (the fixed surrogate of L4.2).

    Gradients still flow through it to its input, so
    ``MeasurementConsistency(frozen(surrogate))`` trains only the inverse.

    Examples
    --------
    >>> import torch
    >>> f = frozen(torch.nn.Linear(1, 1))
    >>> any(p.requires_grad for p in f.parameters())
    False
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    out = copy.deepcopy(module)
    out.eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


class EncoderDecoderNet(nn.Module):
    """A forward surrogate ``F_phi`` and an inverse ``F†_theta`` trained together; ``net(y) = F†_theta(y)``.

    Parameters
    ----------
    forward_net, inverse_net : nn.Module

    Examples
    --------
    >>> import torch
    >>> net = EncoderDecoderNet(torch.nn.Linear(1, 1), torch.nn.Identity())
    >>> net(torch.ones(2, 1)).shape
    torch.Size([2, 1])
    """

    def __init__(self, forward_net: nn.Module, inverse_net: nn.Module) -> None:
        super().__init__()
        for n, m in (("forward_net", forward_net), ("inverse_net", inverse_net)):
            if not isinstance(m, nn.Module):
                raise TypeError(f"{n} must be a torch.nn.Module, got {type(m).__name__}")
        self.forward_net = forward_net
        self.inverse_net = inverse_net

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.inverse_net(y)


def _epsilon(value: Any) -> float:
    return check_real(value, "epsilon", positive=True)


class Smoothness:
    """``||(f(x + eps) - f(x)) / eps||``: the smoothness regularizer of the paper's L3.1 (Eq. 17).

    Called as ``loss(f, x)`` with the function (network) and the points
    where its finite-difference slope is penalized.

    Parameters
    ----------
    epsilon : float
        Step (the paper uses 1 on ``[-33, 33]``).
    norm : {"l1", "l2"}
    name : str

    Examples
    --------
    >>> import torch
    >>> s = Smoothness(epsilon=1.0, norm="l1")
    >>> s(lambda x: 3 * x, torch.zeros(4, 1))["smooth"].item()
    3.0
    """

    def __init__(self, epsilon: float = 1.0, norm: str = "l1", name: str = "smooth") -> None:
        self.epsilon = _epsilon(epsilon)
        self.norm = _check_norm(norm)
        self.name = _check_name(name)

    def __call__(self, f: Callable, x: torch.Tensor) -> Terms:
        _check_callable(f, "f")
        _check_tensor(x, "x")
        slope = (f(x + self.epsilon) - f(x)) / self.epsilon
        return {self.name: norm(slope, self.norm)}


class DerivativeMatch:
    """The Hermite-type term: make a model's derivatives match those of the true forward model (Eq. 16).

    Two ways to form the model's derivative:

    ``mode="difference"`` (the paper)
        ``(g(x + eps v) - g(x)) / eps`` along the input direction ``v``,
        compared with the exact directional derivative ``J_F(x) v`` of the
        true model (``A v`` for a LinearOperator, forward-mode autograd for a
        function) or with ``target``.
    ``mode="exact"``
        the vector-Jacobian product ``J_g(x)^T w`` by autograd (kept in the
        graph, so it trains ``g``), compared with ``J_F(x)^T w``: the
        operator's adjoint ``A.H(w)`` for a LinearOperator, reverse-mode
        autograd for a function, or ``target``. No step, no truncation error.

    For scalar-to-scalar models applied sample-wise (``x`` of shape
    ``(N, 1)``) with the default ``v = w = 1`` both give ``g'(x)`` vs ``F'(x)``.

    Parameters
    ----------
    forward_model : LinearOperator or callable, optional
        The true ``F``; without it every call must pass ``target``.
    epsilon : float
        Step of ``mode="difference"``.
    mode : {"difference", "exact"}
    norm : {"l1", "l2"}
    name : str

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[-1.0], [2.0]])
    >>> fd = DerivativeMatch(torch.square, epsilon=1.0)  # (x+1)^2 - x^2 = 2x + 1 vs 2x
    >>> fd(torch.square, x)["derivative"].item()
    1.0
    >>> DerivativeMatch(torch.square, mode="exact")(torch.square, x)["derivative"].item()
    0.0
    """

    def __init__(self, forward_model: Any = None, *, epsilon: float = 1.0, mode: str = "difference",
                 norm: str = "l2", name: str = "derivative") -> None:
        if forward_model is not None:
            _check_callable(forward_model, "forward_model")
        if mode not in ("difference", "exact"):
            raise ValueError(f"mode must be 'difference' or 'exact', got {mode!r}")
        self.forward_model = forward_model
        self.epsilon = _epsilon(epsilon)
        self.mode = mode
        self.norm = _check_norm(norm)
        self.name = _check_name(name)

    def _target(self, x: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
        F = self.forward_model
        if F is None:
            raise ValueError("target is required when DerivativeMatch has no forward_model")
        if isinstance(F, LinearOperator):
            return F(probe) if self.mode == "difference" else F.adjoint(probe)
        xd = x.detach()
        if self.mode == "difference":
            return torch.func.jvp(F, (xd,), (probe,))[1].detach()
        xr = xd.clone().requires_grad_(True)
        with torch.enable_grad():
            out = F(xr)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"forward_model must return a tensor, got {type(out).__name__}")
            _check_same(out, probe, "forward_model(x)", "v")
            (g,) = torch.autograd.grad(out, xr, probe, allow_unused=True)
        return torch.zeros_like(xd) if g is None else g.detach()

    def __call__(self, model: Callable, x: torch.Tensor, v: torch.Tensor | None = None,
                 target: torch.Tensor | None = None) -> Terms:
        """The term at points ``x``.

        Parameters
        ----------
        model : callable
            The model ``g`` being trained.
        x : Tensor
            Points.
        v : Tensor, optional
            ``mode="difference"``: input-space direction (shape of ``x``);
            ``mode="exact"``: output-space probe (shape of ``model(x)``).
            Default ones.
        target : Tensor, optional
            The true derivative (``J_F v`` or ``J_F^T v``) when known.
        """
        _check_callable(model, "model")
        _check_tensor(x, "x")
        if self.mode == "difference":
            v = torch.ones_like(x) if v is None else _check_tensor(v, "v")
            _check_same(v, x, "v", "x")
            d = (model(x + self.epsilon * v) - model(x)) / self.epsilon
        else:
            xr = x.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                out = model(xr)
                v = torch.ones_like(out) if v is None else _check_tensor(v, "v")
                _check_same(v, out, "v", "model(x)")
                (d,) = torch.autograd.grad(out, xr, v, create_graph=True)
        t = self._target(x, v) if target is None else _check_tensor(target, "target")
        _check_same(d, t, "model derivative", "target")
        return {self.name: norm(d - t, self.norm)}


class GradientPenalty:
    """``||D pred||`` with ``D`` the forward differences along ``dims``: a smoothness prior for images.

    Called as ``loss(pred, target=None)`` (``target`` ignored), so it sits
    next to a data term in a :class:`Composite` with the Trainer's
    ``loss(pred, target)`` signature.

    Parameters
    ----------
    dims : tuple of int
        Dimensions differenced (default the last two: an image).
    norm : {"l1", "l2"}
        ``"l1"``: anisotropic total variation; ``"l2"``: quadratic (Tikhonov on the gradient).
    name : str

    Examples
    --------
    >>> import torch
    >>> GradientPenalty(dims=(-1,), norm="l1")(torch.tensor([[0.0, 1.0, 3.0]]))["smooth"].item()
    1.5
    """

    def __init__(self, dims: tuple[int, ...] = (-2, -1), norm: str = "l2", name: str = "smooth") -> None:
        if isinstance(dims, numbers.Integral):
            dims = (int(dims),)
        if not isinstance(dims, (tuple, list)) or not dims or \
                not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims):
            raise TypeError(f"dims must be a non-empty tuple of ints, got {dims!r}")
        self.dims = tuple(int(d) for d in dims)
        self.norm = _check_norm(norm)
        self.name = _check_name(name)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> Terms:
        _check_tensor(pred, "pred")
        acc = pred.new_zeros(())
        for d in self.dims:
            if not -pred.dim() <= d < pred.dim():
                raise ValueError(f"dims: {d} is out of range for pred of shape {tuple(pred.shape)}")
            if pred.shape[d] < 2:
                raise ValueError(f"pred must have at least 2 entries along dim {d}, got shape "
                                 f"{tuple(pred.shape)}")
            acc = acc + norm(torch.diff(pred, dim=d), self.norm)
        return {self.name: acc}


class EncoderDecoder:
    """The paper's L3 (and L3.1): a forward surrogate and an inverse trained jointly.

    ``||F_phi(x) - y|| + ||F_phi(F†_theta(y_u)) - y_u||`` (terms ``forward``
    and ``consistency``), plus ``smooth_weight * ||(F_phi(x_s + eps) -
    F_phi(x_s)) / eps||`` (term ``smooth``) when ``smooth_weight > 0``.
    The labelled pairs ``(x, y)`` may be few (three in the paper's
    reduced-sample experiment), the measurements ``y_u`` many (default
    ``y``) and the smoothness points ``x_s`` anywhere in the domain
    (default ``x``).

    Parameters
    ----------
    norm : {"l1", "l2"}
    smooth_weight : float
        Weight of the smoothness term (0: plain L3).
    epsilon : float
        Its step.
    weights : mapping, optional
        Weights of ``forward`` and ``consistency`` (default 1 each).

    Examples
    --------
    >>> import torch
    >>> loss = EncoderDecoder("l2")
    >>> x = torch.tensor([[-1.0], [2.0]])
    >>> terms = loss(torch.square, torch.sqrt, x, x ** 2)  # exact forward, one branch as inverse
    >>> {k: float(v) for k, v in terms.items()}
    {'forward': 0.0, 'consistency': 0.0}
    """

    def __init__(self, norm: str = "l2", *, smooth_weight: float = 0.0, epsilon: float = 1.0,
                 weights: Mapping[str, float] | None = None) -> None:
        self.norm = _check_norm(norm)
        self.smooth_weight = check_real(smooth_weight, "smooth_weight")
        if self.smooth_weight < 0:
            raise ValueError(f"smooth_weight must be >= 0, got {self.smooth_weight}")
        self.smoothness = Smoothness(epsilon, norm)
        w = dict(weights or {})
        bad = set(w) - {"forward", "consistency"}
        if bad:
            raise ValueError(f"weights: unknown term(s) {sorted(bad)}; the terms are 'forward' and "
                             f"'consistency' (the smoothness term has smooth_weight)")
        self.weights = {k: _weight(w.get(k, 1.0), k) for k in ("forward", "consistency")}

    def __call__(self, forward_net: Callable, inverse_net: Callable, x: torch.Tensor, y: torch.Tensor,
                 y_unlabeled: torch.Tensor | None = None, x_smooth: torch.Tensor | None = None) -> Terms:
        _check_callable(forward_net, "forward_net")
        _check_callable(inverse_net, "inverse_net")
        _check_tensor(x, "x")
        _check_tensor(y, "y")
        yu = y if y_unlabeled is None else _check_tensor(y_unlabeled, "y_unlabeled")
        fx = forward_net(x)
        _check_same(fx, y, "forward_net(x)", "y")
        out = {"forward": self.weights["forward"] * norm(fx - y, self.norm)}
        back = forward_net(inverse_net(yu))
        _check_same(back, yu, "forward_net(inverse_net(y))", "y")
        out["consistency"] = self.weights["consistency"] * norm(back - yu, self.norm)
        if self.smooth_weight > 0:
            xs = x if x_smooth is None else _check_tensor(x_smooth, "x_smooth")
            out["smooth"] = self.smooth_weight * self.smoothness(forward_net, xs)["smooth"]
        return out


def _weight(value: Any, name: str) -> float:
    w = check_real(value, f"weights[{name!r}]")
    if w < 0:
        raise ValueError(f"weights[{name!r}] must be >= 0, got {w}")
    return w


class Composite:
    """A weighted sum of loss terms, each kept as a named term: ``{name: w * term(*args)}``.

    Every term is called with the same arguments. A term returning one
    entry is logged under its key in ``terms``; one returning several under
    ``key_sub``. The values are already weighted, so their sum is the loss
    (what :class:`physinv.train.Trainer` minimizes and logs term by term).

    Parameters
    ----------
    terms : mapping of str to callable
        Each returns a dict of scalar tensors (or a scalar tensor).
    weights : mapping of str to float, optional
        Weight per key of ``terms`` (missing keys: 1).

    Examples
    --------
    >>> import torch
    >>> loss = Composite({"data": MeasurementConsistency(lambda x: 2 * x),
    ...                   "smooth": GradientPenalty(dims=(-1,))}, {"smooth": 0.5})
    >>> x = torch.tensor([[0.0, 1.0]])
    >>> {k: float(v) for k, v in loss(x, torch.tensor([[0.0, 1.0]])).items()}
    {'data': 0.5, 'smooth': 0.5}
    """

    def __init__(self, terms: Mapping[str, Callable], weights: Mapping[str, float] | None = None) -> None:
        if not isinstance(terms, Mapping) or not terms:
            raise TypeError(f"terms must be a non-empty mapping of name to loss, got {type(terms).__name__}")
        for k, f in terms.items():
            _check_name(k)
            _check_callable(f, f"terms[{k!r}]")
        w = dict(weights or {})
        bad = set(w) - set(terms)
        if bad:
            raise ValueError(f"weights: unknown term(s) {sorted(bad)}; terms are {sorted(terms)}")
        self.terms = dict(terms)
        self.weights = {k: _weight(w.get(k, 1.0), k) for k in self.terms}

    def __call__(self, *args: Any, **kwargs: Any) -> Terms:
        out: Terms = {}
        for key, f in self.terms.items():
            res = f(*args, **kwargs)
            if isinstance(res, torch.Tensor):
                res = {key: res}
            if not isinstance(res, Mapping) or not res:
                raise TypeError(f"term {key!r} must return a non-empty dict of scalar tensors or a scalar "
                                f"tensor, got {type(res).__name__}")
            for sub, v in res.items():
                if not isinstance(v, torch.Tensor) or v.numel() != 1:
                    raise ValueError(f"term {key!r} returned {sub!r} that is not a scalar tensor")
                out[key if len(res) == 1 else f"{key}_{sub}"] = self.weights[key] * v.reshape(())
        return out

    def __repr__(self) -> str:
        return f"Composite({list(self.terms)}, weights={self.weights})"
