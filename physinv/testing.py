"""Checks that every operator must pass, usable from users' own test suites."""

from __future__ import annotations

import torch

from .operators.base import LinearOperator, _complex_of

__all__ = ["dot_test", "check_operator", "random_like_op"]


def random_like_op(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """A standard normal tensor (complex normal for complex ``dtype``) drawn from ``generator``."""
    if dtype.is_complex:
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


def check_operator(A: LinearOperator, batch: tuple[int, ...] = (2,), seed: int = 0) -> dict[str, float]:
    """Run the checks every operator must pass; raise ``AssertionError`` on the first failure.

    Checks the dot test in float64 (< 1e-6) and float32 (< 1e-4), linearity,
    broadcasting over ``batch`` leading dims, dtype preservation, and, where
    ``A.has_svd``, that the factorization rebuilds the operator.

    Returns
    -------
    dict
        The measured errors, by check name.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> errors = check_operator(Matrix(torch.randn(4, 3, dtype=torch.float64)))
    >>> sorted(errors)
    ['dot32', 'dot64', 'linearity', 'svd']
    """
    errors: dict[str, float] = {}
    errors["dot64"] = dot_test(A, torch.float64, seed, batch)
    assert errors["dot64"] < 1e-6, f"dot test (float64) failed: relative error {errors['dot64']:.3e}"
    errors["dot32"] = dot_test(A, torch.float32, seed, batch)
    assert errors["dot32"] < 1e-4, f"dot test (float32) failed: relative error {errors['dot32']:.3e}"
    device, _ = A._probe_tensor()
    real = torch.float64
    dtype = real if A.is_real else _complex_of(real)
    g = torch.Generator().manual_seed(seed + 1)
    x1 = random_like_op(tuple(batch) + A.in_shape, dtype, g, device)
    x2 = random_like_op(tuple(batch) + A.in_shape, dtype, g, device)
    with torch.no_grad():
        y1, y2, y12 = A(x1), A(x2), A(2.0 * x1 - 3.0 * x2)
        scale = float((2 * y1.abs() + 3 * y2.abs()).max()) + 1e-300
        errors["linearity"] = float((y12 - (2 * y1 - 3 * y2)).abs().max()) / scale
        assert errors["linearity"] < 1e-10, f"linearity failed: {errors['linearity']:.3e}"
        assert y1.shape == tuple(batch) + A.out_shape, (
            f"output shape {tuple(y1.shape)}, expected {tuple(batch) + A.out_shape}")
        assert y1.dtype == dtype or (not A.is_real), f"dtype {y1.dtype} != input dtype {dtype}"
        single = A(x1.reshape((-1,) + A.in_shape)[0])
        assert torch.allclose(single, y1.reshape((-1,) + A.out_shape)[0], atol=1e-10 * (1 + scale)), \
            "batched application differs from single application"
        if A.has_svd:
            F = A.svd()
            rebuilt = F.forward(x1)
            if rebuilt.is_complex() and not y1.is_complex():
                rebuilt = rebuilt.real
            errors["svd"] = float((rebuilt - y1).abs().max()) / scale
            assert errors["svd"] < 1e-8, f"factorization does not rebuild A: {errors['svd']:.3e}"
    return errors
