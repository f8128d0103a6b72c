"""Argument checks and dtype maps shared by every layer of physinv (the one copy of each).

Everything here depends on torch and numpy only, so every module of the
package may import it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import warnings
from collections.abc import Hashable, Iterator, MutableMapping, Sequence
from typing import Any

import torch

__all__ = [
    "Shape",
    "as_shape",
    "check_trailing",
    "complex_dtype",
    "real_dtype",
    "compute_dtype",
    "check_device",
    "cached_cast",
    "DEFAULT_MAX_ELEMENTS",
    "max_elements",
    "set_max_elements",
    "limits",
    "check_size",
    "check_int",
    "check_real",
    "HALF_DTYPES",
]

Shape = tuple[int, ...]

_TO_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128,
               torch.float16: torch.complex32, torch.bfloat16: torch.complex64}
_TO_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64,
            torch.complex32: torch.float16}


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype with the precision of a real ``dtype`` (complex dtypes map to themselves).

    Examples
    --------
    >>> import torch
    >>> complex_dtype(torch.float32), complex_dtype(torch.float64)
    (torch.complex64, torch.complex128)
    >>> complex_dtype(torch.complex64)
    torch.complex64
    """
    return _TO_COMPLEX.get(dtype, dtype)


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype with the precision of ``dtype`` (real dtypes map to themselves).

    Examples
    --------
    >>> import torch
    >>> real_dtype(torch.complex128), real_dtype(torch.float32)
    (torch.float64, torch.float32)
    """
    return _TO_REAL.get(dtype, dtype)


def compute_dtype(x: torch.Tensor | torch.dtype) -> torch.dtype:
    """The real dtype physinv computes in for input ``x``: float64 or float32 (half types use float32).

    Examples
    --------
    >>> import torch
    >>> compute_dtype(torch.zeros(2, dtype=torch.bfloat16))
    torch.float32
    >>> compute_dtype(torch.complex128)
    torch.float64
    """
    dtype = x.dtype if isinstance(x, torch.Tensor) else x
    return torch.float64 if real_dtype(dtype) == torch.float64 else torch.float32


def as_shape(shape: Any, name: str) -> Shape:
    """Validate and normalise a shape argument to a tuple of positive ints.

    Parameters
    ----------
    shape : int or sequence of int
        The shape to check.
    name : str
        The argument name used in error messages.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> as_shape(5, "in_shape")
    (5,)
    >>> as_shape([3, 4], "in_shape")
    (3, 4)
    """
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(shape).__name__}")
    out = []
    for s in shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or int(s) < 1:
            raise ValueError(f"{name} must contain positive integers, got {tuple(shape)!r}")
        out.append(int(s))
    if not out:
        raise ValueError(f"{name} must have at least one dimension, got ()")
    return tuple(out)


def check_trailing(x: Any, shape: Sequence[int], name: str, where: str, *, real: bool = False
                   ) -> torch.Tensor:
    """Check that ``x`` is a floating (or, unless ``real``, complex) tensor with trailing ``shape``.

    Parameters
    ----------
    x : Any
        The value to check.
    shape : sequence of int
        The required trailing dimensions (leading ones are free: batch, channels).
    name : str
        The argument name used in messages.
    where : str
        The function or class the check is for (prefixes messages).
    real : bool
        Refuse complex tensors.

    Returns
    -------
    torch.Tensor
        ``x`` itself.

    Examples
    --------
    >>> import torch
    >>> check_trailing(torch.zeros(2, 3, 4), (3, 4), "y", "demo").shape
    torch.Size([2, 3, 4])
    >>> check_trailing(torch.zeros(3, 5), (3, 4), "y", "demo")
    Traceback (most recent call last):
    ...
    ValueError: demo: y must have trailing shape (3, 4), got tensor of shape (3, 5)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    shape = tuple(shape)
    n = len(shape)
    if x.dim() < n or tuple(x.shape[x.dim() - n:]) != shape:
        raise ValueError(f"{where}: {name} must have trailing shape {shape}, got tensor of shape "
                         f"{tuple(x.shape)}")
    if real and not x.is_floating_point():
        raise TypeError(f"{where}: {name} must be a real floating tensor, got {x.dtype}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{where}: {name} must be a floating or complex tensor, got {x.dtype}")
    return x


_SPARSE = (torch.sparse_csr, torch.sparse_coo)


def _signature(t: torch.Tensor) -> tuple:
    """What identifies the contents of ``t`` cheaply: storage, version counter, dtype, device, shape."""
    data = t if t.layout == torch.strided else (t.values() if t.layout == torch.sparse_csr else t._values())
    try:
        version = data._version
    except RuntimeError:  # inference tensors keep no version counter
        version = None
    return (data.data_ptr(), version, t.dtype, t.device, tuple(t.shape), t.layout)


def _cast(t: torch.Tensor, dtype: torch.dtype, conj: bool) -> torch.Tensor:
    if t.layout == torch.strided:
        out = t.to(dtype)
        return out.conj().resolve_conj() if conj else out.resolve_conj()
    values = t.values() if t.layout == torch.sparse_csr else t._values()
    values = torch.conj_physical(values.to(dtype)) if conj else values.to(dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        if t.layout == torch.sparse_csr:  # the index arrays are shared, not copied
            return torch.sparse_csr_tensor(t.crow_indices(), t.col_indices(), values, size=t.shape,
                                           check_invariants=False)
        return torch.sparse_coo_tensor(t._indices(), values, size=t.shape, is_coalesced=t.is_coalesced(),
                                       check_invariants=False)


def check_device(tensor: torch.Tensor, like: torch.Tensor, where: str, holder: str = "operator") -> None:
    """Refuse an input ``like`` on another device than the constant ``tensor``, naming both devices.

    Examples
    --------
    >>> import torch
    >>> check_device(torch.zeros(2), torch.zeros(2, device="meta"), "Pad")
    Traceback (most recent call last):
    ...
    ValueError: Pad: input is on meta but the operator is on cpu; move one of them with .to(device)
    """
    if tensor.device != like.device:
        raise ValueError(f"{where}: input is on {like.device} but the {holder} is on {tensor.device}; "
                         "move one of them with .to(device)")


def cached_cast(cache: MutableMapping[Hashable, Any], key: Hashable, tensor: torch.Tensor,
                like: torch.Tensor, *, complex_: bool | None = None, conj: bool = False,
                real: torch.dtype | None = None, move: bool = False, where: str = "cast",
                holder: str = "operator") -> torch.Tensor:
    """``tensor`` in the precision of ``like``, conjugated if asked: cast once, then served from ``cache``.

    The one cast path of physinv for constant tensors (operator buffers,
    network constants, factorizations): a float64 constant applied to float32
    data is cast to float32 once, the cast kept in ``cache`` under ``key``
    and reused while ``tensor`` is unchanged (same storage and version
    counter, so an in-place update or a replaced buffer is seen). Owners
    clear ``cache`` when they are moved or cast.

    Parameters
    ----------
    cache : dict
        Where casts are kept (owned by the caller, e.g. an operator).
    key : hashable
        The name of ``tensor`` in ``cache``.
    tensor : torch.Tensor
        The constant: dense, or sparse CSR/COO (then only the values are
        cast; the index arrays are shared with ``tensor``, not copied).
    like : torch.Tensor
        The input whose precision (float32/float64, or the real part's for
        complex ``like``) the result takes.
    complex_ : bool, optional
        Return the complex dtype of that precision (a real ``tensor`` is
        promoted); default: complex exactly when ``tensor`` is. ``False`` for
        a complex ``tensor`` is refused.
    conj : bool
        Return the complex conjugate (a no-op for real results).
    real : torch.dtype, optional
        The real precision to use instead of ``like``'s (e.g. float32 for
        half-precision inputs of FFT code).
    move : bool
        Move to ``like``'s device instead of refusing a device mismatch.
    where : str
        The function or class named in error messages.
    holder : str
        What holds ``tensor``, named in the device error ("operator", "network").

    Returns
    -------
    torch.Tensor
        ``tensor`` itself when nothing is to change. A tensor that requires a
        gradient is cast afresh on every call (a cached cast would keep an old
        graph), as is a first cast made under :func:`torch.inference_mode`.

    Raises
    ------
    ValueError
        ``like`` is on another device than ``tensor`` (both are named), or
        ``complex_=False`` for a complex ``tensor``.

    Examples
    --------
    >>> import torch
    >>> cache = {}
    >>> h = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128)
    >>> x = torch.zeros(2, dtype=torch.float32)
    >>> cached_cast(cache, "h", h, x)
    tensor([1.+2.j, 3.-1.j])
    >>> cached_cast(cache, "h", h, x, conj=True).dtype
    torch.complex64
    >>> cached_cast(cache, "h", h, x) is cached_cast(cache, "h", h, x)
    True
    >>> cached_cast(cache, "h", h, torch.zeros(2, dtype=torch.float64)) is h
    True
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{where}: {key!r} must be a torch.Tensor, got {type(tensor).__name__}")
    if not isinstance(like, torch.Tensor):
        raise TypeError(f"{where}: the input must be a torch.Tensor, got {type(like).__name__}")
    if tensor.layout != torch.strided and tensor.layout not in _SPARSE:
        raise TypeError(f"{where}: {key!r} has layout {tensor.layout}; dense, sparse CSR and sparse COO "
                        "tensors can be cast")
    if not (like.is_floating_point() or like.is_complex()):
        raise TypeError(f"{where}: the input must be a floating or complex tensor, got {like.dtype}")
    if not move:
        check_device(tensor, like, where, holder)
    want_complex = tensor.is_complex() if complex_ is None else bool(complex_)
    if tensor.is_complex() and not want_complex:
        raise ValueError(f"{where}: {key!r} is complex ({tensor.dtype}); complex_=False would drop its "
                         "imaginary part")
    precision = real_dtype(like.dtype) if real is None else real
    want = complex_dtype(precision) if want_complex else precision
    conj = bool(conj) and tensor.is_complex()
    device = like.device
    if tensor.dtype == want and not conj and tensor.device == device:
        return tensor
    if tensor.requires_grad:
        return _cast(tensor.to(device), want, conj)
    ckey = (key, want, conj, device) if move else (key, want, conj)
    sig = _signature(tensor)
    hit = cache.get(ckey)
    if hit is not None and hit[0] == sig:
        return hit[1]
    out = _cast(tensor.to(device) if move else tensor, want, conj)
    if not (torch.is_inference_mode_enabled() and out.is_inference()):
        cache[ckey] = (sig, out)
    return out


# ---------------------------------------------------------------- size limit
#: The default of :func:`max_elements`: 2**28 elements (2 GiB of float64).
DEFAULT_MAX_ELEMENTS = 2**28
_ENV_MAX = "PHYSINV_MAX_ELEMENTS"
_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("physinv_max_elements", default=None)
_GLOBAL_LIMIT: list[int | None] = [None]

#: Half-precision dtypes: operators compute them in float32 (complex64) and cast the result back.
HALF_DTYPES = (torch.float16, torch.bfloat16, torch.complex32)


def _limit_value(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def max_elements() -> int:
    """The largest number of elements one physinv allocation may have.

    Every constructor that allocates an array whose size comes from its
    arguments (operators, PSFs, phantoms, operators described in data files)
    checks the size against this limit and refuses with a ``ValueError``
    before allocating. The limit is, in order of precedence: the innermost
    :func:`limits` context, the value given to :func:`set_max_elements`, the
    environment variable ``PHYSINV_MAX_ELEMENTS``, and
    :data:`DEFAULT_MAX_ELEMENTS` (2**28 elements: 2 GiB of float64).

    Examples
    --------
    >>> with limits(max_elements=1000):
    ...     max_elements()
    1000
    """
    n = _LIMIT.get()
    if n is not None:
        return n
    if _GLOBAL_LIMIT[0] is not None:
        return _GLOBAL_LIMIT[0]
    env = os.environ.get(_ENV_MAX)
    if env:
        try:
            return _limit_value(int(env.strip()), _ENV_MAX)
        except ValueError:
            raise ValueError(f"environment variable {_ENV_MAX} must be a positive integer, got "
                             f"{env!r}") from None
    return DEFAULT_MAX_ELEMENTS


def set_max_elements(n: int | None) -> int:
    """Set the size limit of :func:`max_elements` for the process (``None``: back to the default).

    Returns the previous limit.

    Examples
    --------
    >>> old = set_max_elements(2**30)
    >>> max_elements()
    1073741824
    >>> _ = set_max_elements(None)
    """
    old = max_elements()
    _GLOBAL_LIMIT[0] = None if n is None else _limit_value(n, "n")
    return old


@contextlib.contextmanager
def limits(max_elements: int) -> Iterator[None]:
    """Context manager: the size limit of :func:`max_elements` inside a ``with`` block.

    Examples
    --------
    >>> with limits(max_elements=100):  # doctest: +ELLIPSIS
    ...     check_size(1000, "a demo array", "n")
    Traceback (most recent call last):
    ...
    ValueError: n: a demo array of 1000 elements exceeds the size limit of 100 elements; raise it ...
    """
    token = _LIMIT.set(_limit_value(max_elements, "max_elements"))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def check_size(n_elements: int | float, what: str, argument: str) -> int:
    """Refuse an allocation of ``n_elements`` above :func:`max_elements`, naming ``argument``.

    Parameters
    ----------
    n_elements : int or float
        The number of elements asked for (floats allow estimates; infinities
        are refused).
    what : str
        What would be allocated ("transfer function", "phantom").
    argument : str
        The argument that sets the size, named in the message.

    Returns
    -------
    int
        ``n_elements`` as an int.

    Examples
    --------
    >>> check_size(64 * 64, "image", "size")
    4096
    """
    limit = max_elements()
    if not (isinstance(n_elements, numbers.Real) and math.isfinite(n_elements)) or n_elements > limit:
        shown = f"{n_elements:.3g}" if isinstance(n_elements, float) else f"{n_elements}"
        raise ValueError(f"{argument}: {what} of {shown} elements exceeds the size limit of {limit} "
                         "elements; raise it with physinv.set_max_elements(n), "
                         "physinv.limits(max_elements=n) or the environment variable "
                         f"{_ENV_MAX}")
    return int(n_elements)


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """An integer argument: ints and integer numpy scalars pass; bools, floats and strings are refused.

    Examples
    --------
    >>> check_int(3, "k", minimum=1)
    3
    >>> check_int(2.5, "k")
    Traceback (most recent call last):
    ...
    TypeError: k must be an integer, got float 2.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r:.50}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_real(value: Any, name: str, *, positive: bool = False, finite: bool = True) -> float:
    """A real-number argument: ints, floats and real numpy scalars pass; bools and strings are refused.

    Examples
    --------
    >>> check_real(1.5, "sigma", positive=True)
    1.5
    >>> check_real("1", "sigma")
    Traceback (most recent call last):
    ...
    TypeError: sigma must be a real number, got str '1'
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex() \
            and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r:.50}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value
