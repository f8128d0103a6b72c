"""Argument checks and dtype maps shared by every layer of physinv (the one copy of each).

Everything here depends on torch and numpy only, so every module of the
package may import it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "Shape",
    "as_shape",
    "check_trailing",
    "complex_dtype",
    "real_dtype",
    "compute_dtype",
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
