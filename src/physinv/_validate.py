"""Argument checks and dtype maps shared by every layer of physinv (the one copy of each).

Everything here depends on torch and numpy only, so every module of the
package may import it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, MutableMapping, Sequence
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
