"""The linear-operator interface that every physics model in physinv implements.

A :class:`LinearOperator` maps tensors whose trailing dimensions are
``in_shape`` to tensors whose trailing dimensions are ``out_shape`` and
broadcasts over every leading dimension (batch, channel, ...).  Subclasses
implement only ``_forward`` and ``_adjoint``; everything else (the adjoint
operator ``A.H``, the normal operator, algebra, norms, dense and scipy views,
serialisation) is derived here once.
"""

from __future__ import annotations

import contextvars
import math
import numbers
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._validate import (
    HALF_DTYPES,
    Shape,
    as_shape,
    cached_cast,
    check_int,
    check_real,
    check_trailing,
    complex_dtype,
    real_dtype,
)

if TYPE_CHECKING:  # pragma: no cover
    from .factorization import Factorization

__all__ = [
    "LinearOperator",
    "Composition",
    "Sum",
    "Scaled",
    "Adjoint",
    "FactorizationError",
    "from_config",
    "config_type",
    "power_iteration",
]

#: Largest number of matrix entries :meth:`LinearOperator.to_dense` builds by default.
DENSE_LIMIT = 2**26

#: Config ``type`` -> operator class; see :func:`config_type` for the keys.
_REGISTRY: dict[str, type[LinearOperator]] = {}



def _autocast_on(device_type: str) -> bool:
    """Whether a ``torch.autocast`` region is active for ``device_type``."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except RuntimeError:  # a device type autocast does not know (meta, ...): never on
        return False

class FactorizationError(RuntimeError):
    """Raised when an operator has no exact factorization (and none was asked to be approximated)."""


def _is_builtin(cls: type) -> bool:
    return cls.__module__ == "physinv" or cls.__module__.startswith("physinv.")


def config_type(cls: type[LinearOperator]) -> str:
    """The ``type`` under which :func:`from_config` finds operator class ``cls``.

    physinv's own operators are known by their class name (``"Convolution"``:
    the name stored in data files); every other class by its module and
    qualified name (``"mypackage.optics.Convolution"``), so a user class never
    replaces a built-in one and two user classes of one name in different
    modules never collide. Redefining a class (same module and qualified
    name, e.g. re-running a notebook cell) replaces the earlier definition.

    Examples
    --------
    >>> from physinv.operators import Convolution
    >>> config_type(Convolution)
    'Convolution'
    """
    if _is_builtin(cls):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(cls: type[LinearOperator]) -> None:
    key = config_type(cls)
    old = _REGISTRY.get(key)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(
            f"operator type {key!r} is registered by {old.__module__}.{old.__qualname__}; "
            f"physinv operators need distinct class names, rename {cls.__module__}.{cls.__qualname__}"
        )
    _REGISTRY[key] = cls


def _renamed(kwargs: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Config kwargs with the key ``old`` (written by an earlier physinv) read as ``new``."""
    if old in kwargs and new not in kwargs:
        kwargs = dict(kwargs)
        kwargs[new] = kwargs.pop(old)
    return kwargs


class LinearOperator(nn.Module):
    """A linear map ``A: in_shape -> out_shape`` with an exact adjoint.

    Subclasses implement ``_forward(x)`` and ``_adjoint(y)`` for inputs whose
    trailing dimensions already match (checked here) and any leading
    dimensions, returning results in the input's precision.  Constant tensors
    are registered as buffers (``self.register_buffer``) and read in the hooks
    with :meth:`buffer_like`, which casts them to the input's precision once
    and checks the device.  Real operators (``is_real = True``: real
    coefficients) accept complex inputs too: real and imaginary parts are
    mapped separately.  ``_config`` (constructor arguments) enables
    :meth:`to_config`; ``_svd`` an exact factorization.

    Parameters
    ----------
    in_shape : int or tuple of int
        Trailing shape of the inputs.
    out_shape : int or tuple of int
        Trailing shape of the outputs.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[1.0, 2.0], [0.0, 3.0]]))
    >>> A(torch.tensor([1.0, 1.0]))
    tensor([3., 3.])
    >>> A.H(torch.tensor([1.0, 1.0]))
    tensor([1., 5.])
    """

    #: True when the operator has real coefficients (maps real inputs to real outputs).
    is_real: bool = True
    #: True only for the identity map (lets compositions skip it without type checks).
    is_identity: bool = False

    def __init__(self, in_shape: Any, out_shape: Any) -> None:
        super().__init__()
        self.in_shape: Shape = as_shape(in_shape, "in_shape")
        self.out_shape: Shape = as_shape(out_shape, "out_shape")
        self._cast_cache: dict[Any, Any] = {}  # buffer_like's casts; dropped by .to()

    # ------------------------------------------------------------------ hooks
    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define _forward")

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} does not define _adjoint")

    def _config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (override to support :meth:`to_config`)."""
        raise TypeError(f"{type(self).__name__} cannot be described as a config")

    def _svd(self, **kwargs: Any) -> Factorization:
        raise FactorizationError(
            f"{type(self).__name__} has no exact factorization; use svd(k=...) for a truncated "
            "numerical SVD, or an iterative solver (cgls, landweber) that needs only A and A^H"
        )

    @classmethod
    def _from_config(cls, kwargs: dict[str, Any]) -> LinearOperator:
        """Build from :meth:`_config` output (override when the config is not the constructor kwargs)."""
        return cls(**kwargs)

    # ------------------------------------------------------------ application
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    @staticmethod
    def _check(x: Any, shape: Shape, name: str, op: str) -> torch.Tensor:
        return check_trailing(x, shape, name, op)

    def _split_complex(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
        if self.is_real and x.is_complex():
            return torch.complex(fn(x.real.contiguous()), fn(x.imag.contiguous()))
        return fn(x)

    def _empty(self, x: torch.Tensor, n_in: int, shape_out: Shape) -> torch.Tensor:
        # an empty batch maps to an empty batch (FFT backends refuse empty transforms)
        dtype = x.dtype if (self.is_real or x.is_complex()) else complex_dtype(x.dtype)
        if dtype == torch.complex32 and not x.is_complex():  # as _half: complex64 for real half input
            dtype = torch.complex64
        return x.new_zeros(x.shape[: x.dim() - n_in] + shape_out, dtype=dtype)

    def _half(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        # the physics never runs in 16 bits: inside a torch.autocast region the hooks run with autocast
        # off (their matrix products would otherwise be cast down; sparse CPU products have no bfloat16)
        if _autocast_on(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self._half_policy(fn, x)
        return self._half_policy(fn, x)

    def _half_policy(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        # the input policy for half precision: compute in float32 (complex64), cast back
        if x.dtype not in HALF_DTYPES:
            return self._split_complex(fn, x)
        wide = torch.complex64 if x.is_complex() else torch.float32
        out = self._split_complex(fn, x.to(wide))
        # real results take the input's dtype; complex results of a real half input are complex64
        back = x.dtype if (x.is_complex() or not out.is_complex()) else torch.complex64
        return out.to(back)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operator: ``y = A x``.

        ``x`` is a floating or complex tensor with trailing dimensions
        ``in_shape`` and any leading (batch) dimensions. float32/float64 (and
        complex) inputs are computed in their own precision; float16 and
        bfloat16 inputs in float32, the result cast back. Inside a
        ``torch.autocast`` region the operator runs with autocast off, so it
        computes exactly what it computes outside one. An empty batch
        gives an empty result; NaN and inf propagate as in numpy.
        """
        self._check(x, self.in_shape, "x", type(self).__name__)
        if x.numel() == 0:
            return self._empty(x, len(self.in_shape), self.out_shape)
        return self._half(self._forward, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoint: ``x = A^H y`` (inputs as in :meth:`forward`)."""
        self._check(y, self.out_shape, "y", type(self).__name__ + ".adjoint")
        if y.numel() == 0:
            return self._empty(y, len(self.out_shape), self.in_shape)
        return self._half(self._adjoint, y)

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normal operator ``A^H A x``."""
        return self.adjoint(self.forward(x))

    @property
    def H(self) -> LinearOperator:
        """The adjoint as an operator (``A.H.H is A``)."""
        return Adjoint(self)

    @property
    def T(self) -> LinearOperator:
        """Alias of :attr:`H` for real operators."""
        return self.H

    # ------------------------------------------------------- buffer handling
    def buffer_like(self, name: str, like: torch.Tensor, *, complex_: bool | None = None,
                    conj: bool = False) -> torch.Tensor:
        """Buffer ``name`` in the precision of ``like``: the one way hooks should read their buffers.

        Buffers keep the precision they were registered in (physinv's
        operators register float64 where they compute a buffer); inputs of
        another precision get a copy in theirs, made once and cached until the
        operator is moved or cast (``.to()``) or the buffer changes. Sparse
        CSR/COO buffers have their values cast and share their index arrays
        with the buffer.

        Parameters
        ----------
        name : str
            The buffer (or any tensor attribute) to read.
        like : torch.Tensor
            The input the buffer is combined with (its real precision is used:
            float32 for complex64 inputs).
        complex_ : bool, optional
            Return the complex dtype of that precision (default: complex
            exactly when the buffer is).
        conj : bool
            Return the complex conjugate (for adjoints of complex buffers).

        Returns
        -------
        torch.Tensor

        Raises
        ------
        ValueError
            ``like`` is on another device than the operator (both named).

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Diagonal
        >>> D = Diagonal(torch.tensor([1.0, 2.0], dtype=torch.float64))
        >>> D.buffer_like("d", torch.zeros(2, dtype=torch.float32))
        tensor([1., 2.])
        >>> D.buffer_like("d", torch.zeros(2, dtype=torch.complex64), complex_=True).dtype
        torch.complex64
        """
        buf = getattr(self, name, None)
        if not isinstance(buf, torch.Tensor):
            raise AttributeError(f"{type(self).__name__} has no tensor {name!r} (register it with "
                                 "self.register_buffer(name, tensor) in __init__)")
        return cached_cast(self._cast_cache, name, buf, like, complex_=complex_, conj=conj,
                           where=type(self).__name__)

    def _apply(self, fn, *args, **kwargs):  # noqa: D401 - nn.Module hook
        """Move/cast buffers; complex buffers stay complex.

        ``nn.Module.to(torch.float32)`` would cast a complex buffer (a transfer
        function) to a real one, dropping its imaginary part; here the cast is
        applied to the buffer's real view instead, so ``to(float32)`` gives
        complex64 and ``to(float64)`` complex128.
        """
        self._cast_cache = {}
        self.__dict__.pop("_exact_factorization", None)

        def keep_complex(t):
            if not t.is_complex():
                return fn(t)
            if t.layout == torch.sparse_csr:  # cast the values, move the index arrays
                values = keep_complex(t.values().clone())  # (complex CSR values admit no views)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                    return torch.sparse_csr_tensor(fn(t.crow_indices()), fn(t.col_indices()), values,
                                                   size=t.shape, check_invariants=False)
            if t.layout == torch.sparse_coo:
                t = t.coalesce()
                return torch.sparse_coo_tensor(fn(t.indices()), keep_complex(t.values()), size=t.shape,
                                               is_coalesced=True)
            out = fn(torch.view_as_real(t.resolve_conj()))
            if out.is_floating_point() and out.dim() > 0 and out.shape[-1] == 2:
                return torch.view_as_complex(out.contiguous())
            return out

        return super()._apply(keep_complex, *args, **kwargs)

    def _probe_tensor(self) -> tuple[torch.device, torch.dtype]:
        for t in list(self.buffers()) + list(self.parameters()):
            return t.device, real_dtype(t.dtype)
        return torch.device("cpu"), torch.float64

    # ---------------------------------------------------------------- algebra
    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Composition(self, other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, other)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, Scaled(other, -1.0))

    def __mul__(self, c: Any) -> LinearOperator:
        if isinstance(c, numbers.Number) and not isinstance(c, bool):
            return Scaled(self, c)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, c: Any) -> LinearOperator:
        if isinstance(c, numbers.Number) and not isinstance(c, bool):
            return Scaled(self, 1.0 / c)
        return NotImplemented

    def __neg__(self) -> LinearOperator:
        return Scaled(self, -1.0)

    # ---------------------------------------------------- derived quantities
    @property
    def shape(self) -> tuple[int, int]:
        """Matrix shape ``(prod(out_shape), prod(in_shape))``."""
        return math.prod(self.out_shape), math.prod(self.in_shape)

    @property
    def has_svd(self) -> bool:
        """Whether :meth:`svd` without ``k`` gives an exact factorization."""
        return type(self)._svd is not LinearOperator._svd and self._has_exact_svd()

    def _has_exact_svd(self) -> bool:
        return True

    def svd(self, k: int | None = None, **kwargs: Any) -> Factorization:
        """Factorize ``A = U diag(s) V^H``.

        Parameters
        ----------
        k : int, optional
            Without ``k`` the exact factorization is returned (computed once,
            then cached until the operator is moved or cast), or a
            :class:`FactorizationError` raised where the operator has none.
            With ``k`` the top-``k`` singular triplets are computed
            numerically (Lanczos on :meth:`to_scipy`), for any operator.

        Returns
        -------
        Factorization

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Matrix
        >>> F = Matrix(torch.diag(torch.tensor([3.0, 2.0, 1.0]))).svd()
        >>> F.s
        tensor([3., 2., 1.], dtype=torch.float64)
        """
        if k is None:
            # Exact factorizations are cached (operators are immutable); moving or
            # casting the module drops the cache. Keyword options go to the subclass hook.
            f = self.cached_factorization()
            if f is None:
                f = self._svd(**kwargs)
                self.__dict__["_exact_factorization"] = f
            return f
        return self._truncated_svd(check_int(k, "k", minimum=1), **kwargs)

    def cached_factorization(self) -> Factorization | None:
        """The exact factorization :meth:`svd` computed and keeps, or ``None`` before the first call.

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Matrix
        >>> A = Matrix(torch.eye(2))
        >>> A.cached_factorization() is None
        True
        >>> A.svd() is A.cached_factorization()
        True
        """
        return self.__dict__.get("_exact_factorization")

    def _truncated_svd(self, k: int, **kwargs: Any) -> Factorization:
        # The one lazy import of the operators package: the numerical SVD returns dense
        # Matrix factors, and Matrix is an operator built on this module.
        from .matrix import truncated_svd

        return truncated_svd(self, k, **kwargs)

    def norm(self, n_iter: int = 500, tol: float = 1e-7, seed: int = 0) -> float:
        """Spectral norm ``||A||_2``.

        Exact (largest singular value) where an exact factorization exists,
        else a seeded power iteration on ``A^H A``.

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Matrix
        >>> round(Matrix(torch.diag(torch.tensor([3.0, -5.0]))).norm(), 6)
        5.0
        """
        exact = self._exact_norm()
        if exact is not None:
            return exact
        return power_iteration(self, n_iter=n_iter, tol=tol, seed=seed)

    def _exact_norm(self) -> float | None:
        if self.has_svd:
            return float(self.svd().s.abs().max())
        return None

    def to_dense(self, dtype: torch.dtype | None = None, max_entries: int = DENSE_LIMIT) -> torch.Tensor:
        """The operator as a dense ``(prod(out_shape), prod(in_shape))`` matrix.

        Refuses operators with more than ``max_entries`` entries. The default
        ``dtype`` is float64 (complex128 for complex operators); the result is
        a new tensor on the operator's device.

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Identity
        >>> Identity(2).to_dense()
        tensor([[1., 0.],
                [0., 1.]], dtype=torch.float64)
        """
        dtype = self._dense_dtype(dtype, max_entries)
        m, n = self.shape
        device, _ = self._probe_tensor()
        eye = torch.eye(n, dtype=dtype, device=device).reshape((n, *self.in_shape))
        cols = []
        for chunk in eye.split(max(1, 2**22 // max(m, 1))):
            cols.append(self.forward(chunk).reshape(chunk.shape[0], m))
        return torch.cat(cols).T.contiguous()

    def _dense_dtype(self, dtype: torch.dtype | None, max_entries: int) -> torch.dtype:
        """Check the size limit of :meth:`to_dense`; the dtype it returns (float64/complex128 default)."""
        m, n = self.shape
        if m * n > max_entries:
            raise ValueError(
                f"to_dense: the operator is {m}x{n} ({m * n} entries), above max_entries="
                f"{max_entries}; use to_scipy() or matrix-free methods instead"
            )
        if dtype is None:
            return torch.float64 if self.is_real else torch.complex128
        if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(f"to_dense: dtype must be a floating or complex torch.dtype, got {dtype!r}")
        return dtype

    def to_scipy(self, dtype: Any = np.float64):
        """A :class:`scipy.sparse.linalg.LinearOperator` acting on flattened vectors.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from scipy.sparse.linalg import lsqr
        >>> from physinv.operators import Matrix
        >>> A = Matrix(torch.tensor([[2.0, 0.0], [0.0, 4.0]]))
        >>> np.round(lsqr(A.to_scipy(), np.array([2.0, 4.0]))[0], 6)
        array([1., 1.])
        """
        from scipy.sparse.linalg import LinearOperator as _SciOp

        device, _ = self._probe_tensor()
        np_dtype = np.dtype(dtype)
        tdtype = torch.from_numpy(np.zeros(1, dtype=np_dtype)).dtype
        m, n = self.shape

        def _run(fn, v, shape_in, shape_out):
            v = np.asarray(v)
            batched = v.ndim == 2
            t = torch.from_numpy(np.ascontiguousarray(v.T if batched else v)).to(device)
            if not (t.is_complex() or tdtype.is_complex):
                t = t.to(tdtype)
            elif not t.is_complex():
                t = t.to(tdtype)
            lead = (t.shape[0],) if batched else ()
            with torch.no_grad():
                out = fn(t.reshape(lead + shape_in)).reshape(lead + (-1,))
            out = out.cpu().numpy()
            return out.T if batched else out

        return _SciOp(
            shape=(m, n),
            dtype=np_dtype,
            matvec=lambda v: _run(self.forward, v, self.in_shape, self.out_shape),
            rmatvec=lambda v: _run(self.adjoint, v, self.out_shape, self.in_shape),
            matmat=lambda V: _run(self.forward, V, self.in_shape, self.out_shape),
            rmatmat=lambda V: _run(self.adjoint, V, self.out_shape, self.in_shape),
        )

    # --------------------------------------------------------- serialisation
    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`from_config` rebuilds the operator.

        Examples
        --------
        >>> from physinv.operators import Identity, from_config
        >>> cfg = Identity((2, 3)).to_config()
        >>> cfg
        {'type': 'Identity', 'in_shape': [2, 3]}
        >>> from_config(cfg).in_shape
        (2, 3)
        """
        return {"type": config_type(type(self)), **self._config()}

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"


#: Deepest nesting of composite operators (``Composition``, ``Sum``, ...) :func:`from_config` builds.
MAX_CONFIG_DEPTH = 100
_CONFIG_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("physinv_config_depth", default=0)


def from_config(config: dict[str, Any]) -> LinearOperator:
    """Rebuild an operator from :meth:`LinearOperator.to_config` output.

    The ``type`` key names the class as :func:`config_type` does: physinv's
    operators by class name, other classes by module and qualified name
    (their module must have been imported, which registers them).

    Examples
    --------
    >>> from physinv.operators import Identity, from_config
    >>> from_config({"type": "Identity", "in_shape": [4]})
    Identity(in_shape=(4,), out_shape=(4,))
    """
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"config must be a dict with a 'type' key, got {config!r:.200}")
    depth = _CONFIG_DEPTH.get()
    if depth >= MAX_CONFIG_DEPTH:
        raise ValueError(f"config: operators nested deeper than MAX_CONFIG_DEPTH={MAX_CONFIG_DEPTH} "
                         "levels; a description this deep is refused rather than recursed into")
    token = _CONFIG_DEPTH.set(depth + 1)
    try:
        return _build(config)
    finally:
        _CONFIG_DEPTH.reset(token)


def _build(config: dict[str, Any]) -> LinearOperator:
    kind = config["type"]
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        builtin = sorted(k for k, c in _REGISTRY.items() if _is_builtin(c) and not k.startswith("_"))
        raise ValueError(f"config: unknown operator type {kind!r}; physinv's operators are {builtin}, and "
                         "an operator class of your own is known as 'module.QualifiedName' once its "
                         "module is imported")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    return cls._from_config(kwargs)


def power_iteration(A: LinearOperator, n_iter: int = 500, tol: float = 1e-7, seed: int = 0) -> float:
    """Largest singular value of ``A`` by seeded power iteration on ``A^H A`` (float64).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> from physinv.operators.base import power_iteration
    >>> round(power_iteration(Matrix(torch.diag(torch.tensor([1.0, 4.0, 2.0])))), 5)
    4.0
    """
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    tol = check_real(tol, "tol")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    seed = check_int(seed, "seed", minimum=0)
    device, _ = A._probe_tensor()
    g = torch.Generator(device="cpu").manual_seed(seed)
    dtype = torch.float64 if A.is_real else torch.complex128
    x = torch.randn(A.in_shape, generator=g, dtype=dtype).to(device)
    x = x / torch.linalg.vector_norm(x)
    sigma2 = 0.0
    with torch.no_grad():
        for _ in range(n_iter):
            z = A.gram(x)
            new = float(torch.linalg.vector_norm(z))
            if new == 0.0:
                return 0.0
            x = z / new
            if abs(new - sigma2) <= tol * new:
                sigma2 = new
                break
            sigma2 = new
    return math.sqrt(sigma2)


# ------------------------------------------------------------- composites
class Adjoint(LinearOperator):
    """The adjoint ``A^H`` of an operator, as an operator (use ``A.H``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[1.0, 2.0, 3.0]]))
    >>> A.H(torch.tensor([2.0]))
    tensor([2., 4., 6.])
    >>> A.H.H is A
    True
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.out_shape, op.in_shape)
        self.op = op
        self.is_real = op.is_real

    def forward(self, x):
        return self.op.adjoint(x)

    def adjoint(self, y):
        return self.op.forward(y)

    @property
    def H(self):
        return self.op

    def _config(self):
        return {"op": self.op.to_config()}

    @classmethod
    def _from_config(cls, kw):
        return cls(from_config(kw["op"]))

    @property
    def has_svd(self):
        return self.op.has_svd

    def _svd(self):
        f = self.op.svd()
        return type(f).adjoint_of(f)

    def _exact_norm(self):
        return self.op._exact_norm()

    def extra_repr(self):
        return ""


class Composition(LinearOperator):
    """``A @ B``: apply ``B`` then ``A`` (adjoint ``B^H A^H``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Diagonal
    >>> C = Diagonal(torch.tensor([2.0, 3.0])) @ Diagonal(torch.tensor([5.0, 7.0]))
    >>> C(torch.ones(2))
    tensor([10., 21.])
    """

    def __init__(self, A: LinearOperator, B: LinearOperator) -> None:
        if A.in_shape != B.out_shape:
            raise ValueError(
                f"A @ B: A expects inputs of shape {A.in_shape} but B produces {B.out_shape}"
            )
        super().__init__(B.in_shape, A.out_shape)
        self.A, self.B = A, B
        self.is_real = A.is_real and B.is_real

    def forward(self, x):
        return self.A.forward(self.B.forward(x))

    def adjoint(self, y):
        return self.B.adjoint(self.A.adjoint(y))

    def _config(self):
        return {"A": self.A.to_config(), "B": self.B.to_config()}

    @classmethod
    def _from_config(cls, kw):
        return cls(from_config(kw["A"]), from_config(kw["B"]))

    def _exact_norm(self):
        if self.A.is_identity:
            return self.B.norm()
        if self.B.is_identity:
            return self.A.norm()
        return None

    def extra_repr(self):
        return ""


class Sum(LinearOperator):
    """``A + B`` for operators of equal shapes (``A - B`` is ``A + (-1) * B``).

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Diagonal, Identity
    >>> (Diagonal(torch.tensor([2.0, 3.0])) - Identity(2))(torch.ones(2))
    tensor([1., 2.])
    """

    def __init__(self, A: LinearOperator, B: LinearOperator) -> None:
        if A.in_shape != B.in_shape or A.out_shape != B.out_shape:
            raise ValueError(
                "A + B: shapes differ: A maps "
                f"{A.in_shape}->{A.out_shape}, B maps {B.in_shape}->{B.out_shape}"
            )
        super().__init__(A.in_shape, A.out_shape)
        self.A, self.B = A, B
        self.is_real = A.is_real and B.is_real

    def forward(self, x):
        return self.A.forward(x) + self.B.forward(x)

    def adjoint(self, y):
        return self.A.adjoint(y) + self.B.adjoint(y)

    def _config(self):
        return {"A": self.A.to_config(), "B": self.B.to_config()}

    @classmethod
    def _from_config(cls, kw):
        return cls(from_config(kw["A"]), from_config(kw["B"]))

    def extra_repr(self):
        return ""


class Scaled(LinearOperator):
    """``c * A`` for a (real or complex) scalar ``c``; its norm is ``|c| ||A||``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> B = 3 * Identity(2)
    >>> B(torch.ones(2)), B.norm()
    (tensor([3., 3.]), 3.0)
    """

    def __init__(self, op: LinearOperator, c: numbers.Number) -> None:
        if not isinstance(c, numbers.Number) or isinstance(c, bool):
            raise TypeError(f"c must be a number, got {type(c).__name__}")
        if not np.isfinite(c):
            raise ValueError(f"c must be finite, got {c}")
        super().__init__(op.in_shape, op.out_shape)
        self.op = op
        self.c = complex(c) if isinstance(c, complex) else float(c)
        self.is_real = op.is_real and not isinstance(self.c, complex)

    def forward(self, x):
        return self.c * self.op.forward(x)

    def adjoint(self, y):
        c = self.c.conjugate() if isinstance(self.c, complex) else self.c
        return c * self.op.adjoint(y)

    @property
    def has_svd(self):
        return self.op.has_svd

    def _svd(self):
        return self.op.svd().scaled(self.c)

    def _exact_norm(self):
        inner = self.op._exact_norm()
        return None if inner is None else abs(self.c) * inner

    def norm(self, n_iter: int = 500, tol: float = 1e-7, seed: int = 0) -> float:
        exact = self._exact_norm()
        return exact if exact is not None else abs(self.c) * self.op.norm(n_iter, tol, seed)

    def _config(self):
        if isinstance(self.c, complex):
            return {"op": self.op.to_config(), "c": [self.c.real, self.c.imag]}
        return {"op": self.op.to_config(), "c": self.c}

    @classmethod
    def _from_config(cls, kw):
        c = kw["c"]
        return cls(from_config(kw["op"]), complex(*c) if isinstance(c, list) else c)

    def extra_repr(self):
        return f"c={self.c}"
