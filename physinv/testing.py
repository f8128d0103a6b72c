"""Checks that every operator must pass, usable from users' own test suites."""

from __future__ import annotations

import torch

from .operators.base import LinearOperator, _complex_of

__all__ = ["dot_test", "random_like_op"]


def random_like_op(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """A standard normal tensor (complex normal for complex ``dtype``) drawn from ``generator``."""
    if dtype.is_complex:
        real = torch.finfo(dtype).dtype if hasattr(torch.finfo(dtype), "dtype") else torch.float64
        real = {torch.complex64: torch.float32, torch.complex128: torch.float64}[dtype]
        z = torch.complex(torch.randn(shape, generator=generator, dtype=real),
                          torch.randn(shape, generator=generator, dtype=real))
        return z.to(device)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


def dot_test(A: LinearOperator, dtype: torch.dtype = torch.float64, seed: int = 0,
             batch: tuple[int, ...] = (), device: torch.device | str | None = None) -> float:
    """Relative adjointness error ``|<Ax, y> - <x, A^H y>| / (|<Ax, y>| + tiny)``.

    ``x`` and ``y`` are seeded standard normal tensors (complex for operators
    with complex coefficients: a real ``dtype`` is promoted). Expect ~1e-15 in
    float64 and ~1e-7 in float32 for an exact adjoint.

    Parameters
    ----------
    A : LinearOperator
        The operator under test.
    dtype : torch.dtype
        Precision of the test vectors.
    seed : int
        Seed of the test vectors.
    batch : tuple of int
        Leading dimensions to test broadcasting with.
    device : torch.device or str, optional
        Where to draw the vectors; default the operator's device.

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> dot_test(Matrix(torch.randn(5, 3, dtype=torch.float64))) < 1e-12
    True
    """
    if not isinstance(A, LinearOperator):
        raise TypeError(f"A must be a LinearOperator, got {type(A).__name__}")
    if device is None:
        device, _ = A._probe_tensor()
    if not A.is_real and not dtype.is_complex:
        dtype = _complex_of(dtype)
    g = torch.Generator().manual_seed(seed)
    x = random_like_op(tuple(batch) + A.in_shape, dtype, g, device)
    y = random_like_op(tuple(batch) + A.out_shape, dtype, g, device)
    with torch.no_grad():
        Ax = A(x)
        AHy = A.adjoint(y)
    lhs = torch.vdot(Ax.reshape(-1).to(y.dtype) if not Ax.is_complex() else Ax.reshape(-1),
                     y.reshape(-1).to(Ax.dtype) if Ax.is_complex() else y.reshape(-1))
    rhs = torch.vdot(x.reshape(-1).to(AHy.dtype) if AHy.is_complex() else x.reshape(-1),
                     AHy.reshape(-1).to(x.dtype) if x.is_complex() else AHy.reshape(-1))
    lhs_c, rhs_c = complex(lhs), complex(rhs)
    tiny = torch.finfo(torch.float64).tiny
    return abs(lhs_c - rhs_c) / (abs(lhs_c) + tiny)
