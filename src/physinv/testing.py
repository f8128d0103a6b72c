"""Checks that every operator must pass, usable from users' own test suites, and physinv's operator cases.

:func:`check_operator` is the battery for one operator (adjointness in both
precisions, dtype preservation, linearity, broadcasting, factorization);
:func:`dot_test` its first and most important check. :data:`OPERATOR_CASES`
names one small instance of every operator physinv ships (a zero-argument
factory each): physinv's own test suite runs every case through the whole
battery, so adding an operator to physinv means adding a case here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ._validate import complex_dtype, real_dtype
from .operators import (
    FFT2,
    Convolution,
    Decimation,
    Diagonal,
    Factorization,
    Gradient,
    Identity,
    Matrix,
    Pad,
    Radon,
    Wavelet2D,
)
from .operators.base import LinearOperator

__all__ = ["dot_test", "check_operator", "random_like_op", "OPERATOR_CASES", "GenericFactorized"]


class GenericFactorized(LinearOperator):
    """``op`` with its exact factorization handed over as a plain :class:`Factorization`.

    Same forward, adjoint and ``svd()`` values as ``op``, but the factorization
    is a generic one (explicit ``U``, ``s``, ``V``), so solvers and networks take
    their generic path: the reference against which a fast path (for example
    the two-FFT path of a circular convolution) is checked and timed.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution, FourierFactorization
    >>> A = Convolution(psf.gaussian(1.0), (8, 8))
    >>> isinstance(GenericFactorized(A).svd(), FourierFactorization)
    False
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.in_shape, op.out_shape)
        self.op = op

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(y)

    def _svd(self) -> Factorization:
        F = self.op.svd()
        return Factorization(F.U, F.s, F.V, real=True)


def random_like_op(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """A standard normal tensor (complex normal for complex ``dtype``) drawn from ``generator``.

    Examples
    --------
    >>> import torch
    >>> random_like_op((2, 3), torch.complex64, torch.Generator().manual_seed(0)).dtype
    torch.complex64
    """
    if dtype.is_complex:
        real = real_dtype(dtype)
        z = torch.complex(torch.randn(shape, generator=generator, dtype=real),
                          torch.randn(shape, generator=generator, dtype=real))
        return z.to(device)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


def _inner(a: torch.Tensor, b: torch.Tensor) -> complex:
    """``<a, b> = sum(conj(a) b)`` accumulated in double precision, whatever the dtypes of a and b."""
    common = torch.complex128 if (a.is_complex() or b.is_complex()) else torch.float64
    return complex(torch.vdot(a.reshape(-1).to(common), b.reshape(-1).to(common)))


def dot_test(A: LinearOperator, dtype: torch.dtype = torch.float64, seed: int = 0,
             batch: tuple[int, ...] = (), device: torch.device | str | None = None) -> float:
    """Relative adjointness error ``|<Ax, y> - <x, A^H y>| / (|<Ax, y>| + tiny)``.

    ``x`` and ``y`` are seeded standard normal tensors (complex for operators
    with complex coefficients: a real ``dtype`` is promoted). Expect ~1e-15 in
    float64 and ~1e-7 in float32 for an exact adjoint. The inner products are
    accumulated in double precision, so the result measures the operator,
    not the summation.

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
        dtype = complex_dtype(dtype)
    g = torch.Generator().manual_seed(seed)
    x = random_like_op(tuple(batch) + A.in_shape, dtype, g, device)
    y = random_like_op(tuple(batch) + A.out_shape, dtype, g, device)
    with torch.no_grad():
        Ax = A(x)
        AHy = A.adjoint(y)
    lhs, rhs = _inner(Ax, y), _inner(x, AHy)
    tiny = torch.finfo(torch.float64).tiny
    return abs(lhs - rhs) / (abs(lhs) + tiny)


def _expected_dtype(A: LinearOperator, dtype: torch.dtype) -> torch.dtype:
    """The dtype ``A`` must return for inputs of ``dtype``: same precision, complex unless both are real."""
    return dtype if (A.is_real or dtype.is_complex) else complex_dtype(dtype)


def _check_dtypes(A: LinearOperator, seed: int, device: torch.device) -> None:
    g = torch.Generator().manual_seed(seed + 2)
    for dtype in (torch.float32, torch.float64, torch.complex64, torch.complex128):
        want = _expected_dtype(A, dtype)
        for name, fn, shape in (("A", A.forward, A.in_shape), ("A^H", A.adjoint, A.out_shape)):
            with torch.no_grad():
                out = fn(random_like_op(shape, dtype, g, device))
            if out.dtype == want:
                continue
            hint = ""
            if real_dtype(out.dtype) != real_dtype(want):
                hint = ("; read buffers with self.buffer_like(name, x), which casts them to the "
                        "precision of x")
            raise AssertionError(f"dtype not preserved: {name} maps {dtype} input to {out.dtype}, "
                                 f"expected {want}{hint}")


def check_operator(A: LinearOperator, batch: tuple[int, ...] = (2,), seed: int = 0) -> dict[str, float]:
    """Run the checks every operator must pass; raise ``AssertionError`` on the first failure.

    Checks dtype preservation (float32, float64, complex64 and complex128
    inputs, for ``A`` and ``A^H``), the dot test in float64 (< 1e-6) and
    float32 (< 1e-4), linearity, broadcasting over ``batch`` leading dims,
    and, where ``A.has_svd``, that the factorization rebuilds the operator.

    Parameters
    ----------
    A : LinearOperator
        The operator under test.
    batch : tuple of int
        Leading dimensions to test broadcasting with.
    seed : int
        Seed of the test vectors.

    Returns
    -------
    dict
        The measured errors, by check name.

    Raises
    ------
    AssertionError
        The first check that failed, with what was measured.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> errors = check_operator(Matrix(torch.randn(4, 3, dtype=torch.float64)))
    >>> sorted(errors)
    ['dot32', 'dot64', 'linearity', 'svd']
    """
    if not isinstance(A, LinearOperator):
        raise TypeError(f"A must be a LinearOperator, got {type(A).__name__}")
    errors: dict[str, float] = {}
    device, _ = A._probe_tensor()
    _check_dtypes(A, seed, device)
    errors["dot64"] = dot_test(A, torch.float64, seed, batch)
    assert errors["dot64"] < 1e-6, f"dot test (float64) failed: relative error {errors['dot64']:.3e}"
    errors["dot32"] = dot_test(A, torch.float32, seed, batch)
    assert errors["dot32"] < 1e-4, f"dot test (float32) failed: relative error {errors['dot32']:.3e}"
    dtype = _expected_dtype(A, torch.float64)
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


# ------------------------------------------------------------------ operator cases
def _randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return random_like_op(shape, dtype, torch.Generator().manual_seed(seed))


def _psf(shape: tuple[int, int], seed: int) -> torch.Tensor:
    """A positive, asymmetric PSF (complex transfer function, no exact zeros)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.1


def _sparse_matrix() -> Matrix:
    import scipy.sparse as sp

    M = sp.random(7, 6, density=0.4, random_state=3, format="csr") + sp.eye(7, 6, format="csr")
    return Matrix(M, in_shape=(2, 3))


def _convolution_cases() -> dict[str, Callable[[], LinearOperator]]:
    out: dict[str, Callable[[], LinearOperator]] = {}
    for boundary in ("circular", "zero", "reflect", "replicate", "mirror", "valid"):
        for parity, ksize in (("odd", (3, 5)), ("even", (4, 2))):
            def make(boundary=boundary, ksize=ksize):
                return Convolution(_psf(ksize, sum(ksize)), (9, 10), boundary)

            out[f"convolution_{boundary}_{parity}"] = make
    return out


def _pad_cases() -> dict[str, Callable[[], LinearOperator]]:
    out: dict[str, Callable[[], LinearOperator]] = {}
    for mode in ("constant", "nearest", "wrap", "reflect", "mirror"):
        out[f"pad_{mode}"] = lambda mode=mode: Pad((4, 5), ((2, 1), (0, 3)), mode)
    return out


def _wavelet_cases() -> dict[str, Callable[[], LinearOperator]]:
    out: dict[str, Callable[[], LinearOperator]] = {
        "wavelet_haar": lambda: Wavelet2D((8, 8), "haar"),
        "wavelet_db2_rectangular": lambda: Wavelet2D((8, 16), "db2", levels=2),
    }
    for n in range(1, 7):  # every filter length; the long ones run the short-band index path
        out[f"wavelet_db{n}"] = lambda n=n: Wavelet2D((8, 12), f"db{n}", levels=1 if n > 2 else 2)
    return out


#: Case name -> zero-argument factory of a small operator: every public operator class of
#: :mod:`physinv.operators`, each boundary and mode, real and complex coefficients, and the
#: composites. Adding an operator to physinv = adding its cases here.
OPERATOR_CASES: dict[str, Callable[[], LinearOperator]] = {
    "identity": lambda: Identity((3, 4)),
    "diagonal_real": lambda: Diagonal(_randn((3, 4), 1)),
    "diagonal_complex": lambda: Diagonal(_randn((3, 4), 2, torch.complex128)),
    "diagonal_float32": lambda: Diagonal(_randn((5,), 3, torch.float32)),
    "matrix_dense": lambda: Matrix(_randn((5, 6), 4), in_shape=(2, 3)),
    "matrix_dense_float32": lambda: Matrix(_randn((4, 3), 5, torch.float32)),
    "matrix_dense_complex": lambda: Matrix(_randn((3, 4), 6, torch.complex128), out_shape=(3, 1)),
    "matrix_numpy": lambda: Matrix(np.random.default_rng(7).standard_normal((3, 5))),
    "matrix_sparse": _sparse_matrix,
    "matrix_sparse_complex": lambda: Matrix(_randn((4, 5), 8, torch.complex128).to_sparse()),
    **_pad_cases(),
    "pad_larger_output": lambda: Pad((3, 4), ((1, 0), (2, 1)), "reflect", out_shape=(6, 9)),
    "fft2": lambda: FFT2((4, 6)),
    "fft2_odd": lambda: FFT2((5, 3)),
    "fft2_mixed": lambda: FFT2((5, 6)),
    **_wavelet_cases(),
    "gradient_neumann": lambda: Gradient((5, 7)),
    "gradient_circular": lambda: Gradient((6, 4), "circular"),
    "gradient_neumann_square": lambda: Gradient((8, 8)),
    "gradient_row": lambda: Gradient((1, 6)),
    "gradient_column": lambda: Gradient((4, 1), "circular"),
    **_convolution_cases(),
    "radon": lambda: Radon(12, 8, circle=False),
    "decimation_mean": lambda: Decimation((6, 8), 2),
    "decimation_per_axis": lambda: Decimation((6, 8), (3, 2)),
    "decimation_sum": lambda: Decimation((4, 9), (1, 3), "sum"),
    "decimation_of_convolution": lambda: Decimation((8, 10), 2) @ Convolution(_psf((3, 3), 19), (8, 10)),
    "sum": lambda: Convolution(_psf((3, 3), 9), (6, 7), "reflect") + Diagonal(_randn((6, 7), 10)),
    "difference": lambda: Gradient((4, 5)) - Gradient((4, 5), "circular"),
    "scaled_real": lambda: -2.5 * Convolution(_psf((3, 2), 11), (6, 7)),
    "scaled_complex": lambda: (0.5 - 2j) * Convolution(_psf((3, 2), 12), (6, 7)),
    "composition": lambda: Gradient((8, 8), "circular") @ Convolution(_psf((3, 3), 13), (8, 8), "reflect")
    @ Wavelet2D((8, 8), "db2").H,
    "composition_with_identity": lambda: Identity((2, 3, 4)) @ Gradient((3, 4)),
    "adjoint": lambda: Convolution(_psf((4, 3), 14), (8, 9), "valid").H,
    "adjoint_matrix": lambda: Matrix(_randn((4, 6), 15)).H,
    "adjoint_circular": lambda: Convolution(_psf((3, 3), 16), (6, 8)).H,
    "factorized": lambda: Matrix(_randn((5, 4), 17)).svd().as_operator(),
    "factorized_fourier": lambda: Convolution(_psf((3, 3), 18), (6, 5)).svd().as_operator(),
}
