"""Every operator through one battery: the cases of ``physinv.testing.OPERATOR_CASES``, random families.

Adding an operator to physinv means adding a case to ``OPERATOR_CASES``; every test of the first part
runs on every case. The second part draws operators of random shapes (and dtypes) with hypothesis.
The last part runs the extension recipe of docs/operators.md as written.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import physinv.operators as ops
from physinv.operators import (
    BOUNDARIES,
    Convolution,
    Diagonal,
    FactorizationError,
    Gradient,
    Identity,
    LinearOperator,
    Matrix,
    Pad,
    Wavelet2D,
    from_config,
)
from physinv.operators.wavelet import WAVELETS
from physinv.testing import OPERATOR_CASES, check_operator, dot_test, random_like_op

CASES = sorted(OPERATOR_CASES)
TOL = {torch.float64: 1e-12, torch.float32: 3e-5}
FAST = settings(max_examples=25, deadline=None)
ALL_DTYPES = [torch.float32, torch.float64, torch.complex64, torch.complex128]
CONV_BOUNDARIES = sorted(BOUNDARIES) + ["valid"]


@functools.cache
def case(name: str) -> LinearOperator:
    """One shared instance per case, for the tests that only read it (moves build their own)."""
    return OPERATOR_CASES[name]()


def rand(shape, dtype=torch.float64, seed=0):
    return random_like_op(tuple(shape), dtype, torch.Generator().manual_seed(seed))


def natural(A: LinearOperator, real: torch.dtype = torch.float64) -> torch.dtype:
    """The input dtype that exercises A fully: complex for complex operators."""
    return real if A.is_real else {torch.float64: torch.complex128, torch.float32: torch.complex64}[real]


def expected_dtype(A: LinearOperator, dtype: torch.dtype) -> torch.dtype:
    if A.is_real or dtype.is_complex:
        return dtype
    return {torch.float64: torch.complex128, torch.float32: torch.complex64}[dtype]


def close(a, b, tol):
    scale = 1.0 + float(b.abs().max()) if b.numel() else 1.0
    return float((a - b).abs().max()) <= tol * scale if b.numel() else True


# =============================================================== the battery, on every case
def test_every_public_operator_class_has_a_case():
    values = [getattr(ops, n) for n in ops.__all__]
    classes = {c for c in values if isinstance(c, type) and issubclass(c, LinearOperator)}
    classes.discard(LinearOperator)
    covered = {type(m) for name in CASES for m in case(name).modules()}
    missing = sorted(c.__name__ for c in classes - covered)
    assert not missing, f"operator classes without a case in OPERATOR_CASES: {missing}"


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dot_test(name, dtype):
    A = case(name)
    assert dot_test(A, dtype=dtype, seed=1, batch=(2,)) < TOL[dtype]
    assert dot_test(A.H, dtype=dtype, seed=2) < TOL[dtype]


@pytest.mark.parametrize("name", CASES)
def test_linearity(name):
    A = case(name)
    dtype = natural(A)
    x1, x2 = rand((2,) + A.in_shape, dtype, 1), rand((2,) + A.in_shape, dtype, 2)
    a, b = (1.5, -0.25) if A.is_real else (1.5 - 0.5j, 0.25j)
    rhs = a * A(x1) + b * A(x2)
    assert close(A(a * x1 + b * x2), rhs, 1e-12)
    y1, y2 = rand(A.out_shape, dtype, 3), rand(A.out_shape, dtype, 4)
    assert close(A.adjoint(a * y1 + b * y2), a * A.adjoint(y1) + b * A.adjoint(y2), 1e-12)


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=6, deadline=None)
@given(lead=st.lists(st.integers(0, 3), max_size=2).map(tuple), dtype=st.sampled_from(ALL_DTYPES))
def test_broadcasting_and_dtype(name, lead, dtype):
    A = case(name)
    want = expected_dtype(A, dtype)
    tol = 1e-12 if dtype in (torch.float64, torch.complex128) else 1e-5
    x = rand(lead + A.in_shape, dtype, 5)
    y = A(x)
    assert y.shape == lead + A.out_shape and y.dtype == want
    each = torch.stack([A(v) for v in x.reshape((-1,) + A.in_shape)]) if x.numel() else y
    assert close(y, each.reshape(y.shape), tol)
    w = rand(lead + A.out_shape, dtype, 6)
    z = A.adjoint(w)
    assert z.shape == lead + A.in_shape and z.dtype == want
    each = torch.stack([A.adjoint(v) for v in w.reshape((-1,) + A.out_shape)]) if w.numel() else z
    assert close(z, each.reshape(z.shape), tol)


@pytest.mark.parametrize("name", CASES)
def test_to_dense_and_to_scipy_agree(name):
    A = case(name)
    D = A.to_dense()
    assert D.dtype == natural(A) and D.shape == A.shape
    x = rand((3,) + A.in_shape, D.dtype, 7)
    y = rand((3,) + A.out_shape, D.dtype, 8)
    assert close(x.reshape(3, -1) @ D.T, A(x).reshape(3, -1), 1e-12)
    assert close(y.reshape(3, -1) @ D.conj(), A.adjoint(y).reshape(3, -1), 1e-12)
    assert close(A.H.to_dense(), D.conj().T, 1e-12)
    assert A.to_dense(dtype=natural(A, torch.float32)).dtype == natural(A, torch.float32)
    with pytest.raises(ValueError, match="max_entries"):
        A.to_dense(max_entries=D.numel() - 1)
    S = A.to_scipy(np.float64 if A.is_real else np.complex128)
    X, Y = x.reshape(3, -1).numpy(), y.reshape(3, -1).numpy()
    assert np.allclose(S.matvec(X[0]), D.numpy() @ X[0], atol=1e-12)
    assert np.allclose(S.rmatvec(Y[0]), D.numpy().conj().T @ Y[0], atol=1e-12)
    assert np.allclose(S.matmat(X.T), D.numpy() @ X.T, atol=1e-12)
    assert np.allclose(S.rmatmat(Y.T), D.numpy().conj().T @ Y.T, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_norm_matches_dense_svd(name):
    A = case(name)
    expected = float(torch.linalg.matrix_norm(A.to_dense(), 2))
    assert A.norm() == pytest.approx(expected, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip(name):
    A = case(name)
    cfg = A.to_config()
    B = from_config(json.loads(json.dumps(cfg)))  # JSON-able, and rebuilt from the parsed text
    assert type(B) is type(A) and B.in_shape == A.in_shape and B.out_shape == A.out_shape
    assert B.to_config() == cfg
    x = rand((2,) + A.in_shape, natural(A), 9)
    assert torch.allclose(B(x), A(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_factorization(name):
    A = case(name)
    D = A.to_dense(dtype=torch.complex128)
    if not A.has_svd:
        with pytest.raises(FactorizationError, match=r"svd\(k=\.\.\.\)"):
            A.svd()
        top = A.svd(k=1)  # the numerical route works for every operator
        assert float(top.s[0]) == pytest.approx(float(torch.linalg.matrix_norm(D, 2)), rel=1e-8)
        return
    F = A.svd()
    assert bool((F.s >= 0).all()) and tuple(F.s.shape) == F.U.in_shape == F.V.in_shape
    U, V = F.U.to_dense(dtype=torch.complex128), F.V.to_dense(dtype=torch.complex128)
    eye = torch.eye(F.s.numel(), dtype=torch.complex128)
    assert torch.allclose(U.conj().T @ U, eye, atol=1e-12)
    assert torch.allclose(V.conj().T @ V, eye, atol=1e-12)
    s = F.s.reshape(-1).to(torch.complex128)
    assert torch.allclose((U * s) @ V.conj().T, D, atol=1e-12)
    x = rand((2,) + A.in_shape, natural(A), 10)
    rebuilt = F.forward(x)
    assert close(rebuilt if rebuilt.is_complex() and not A.is_real else rebuilt.real, A(x), 1e-12)


@pytest.mark.parametrize("name", CASES)
def test_check_operator_passes(name):
    check_operator(case(name))


def _complex_buffers(A: LinearOperator) -> list[str]:
    return [n for n, b in A.named_buffers() if b.is_complex()]


@pytest.mark.parametrize("name", CASES)
def test_cpu_moves_and_casts(name):
    A = OPERATOR_CASES[name]()
    x = rand((2,) + A.in_shape, natural(A), 11)
    ref = A(x)
    complex_before = _complex_buffers(A)
    assert A.to("cpu") is A and torch.equal(A(x), ref)
    A.to(torch.float32)
    assert _complex_buffers(A) == complex_before  # module casts keep transfer functions complex
    x32 = x.to(natural(A, torch.float32))
    assert A(x32).dtype == expected_dtype(A, x32.dtype)
    assert close(A(x32).to(ref.dtype), ref, 1e-5)
    A.double()
    assert close(A(x), ref, 1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", CASES)
def test_cuda_moves(name):
    A = OPERATOR_CASES[name]()
    x = rand((2,) + A.in_shape, natural(A), 12)
    ref = A(x)
    A.to("cuda")
    assert torch.allclose(A(x.cuda()).cpu(), ref, atol=1e-10 * (1 + float(ref.abs().max())))
    assert dot_test(A, dtype=torch.float32) < 1e-4
    if next(iter(A.buffers()), None) is not None:
        with pytest.raises(ValueError, match="cuda"):
            A(x)  # an input left on the CPU is an error naming both devices
    A.to("cpu")
    assert torch.allclose(A(x), ref, atol=1e-12 * (1 + float(ref.abs().max())))


# ============================================================== random families (hypothesis)
@st.composite
def convolutions(draw):
    H = draw(st.integers(4, 12))
    W = draw(st.integers(4, 12))
    kh = draw(st.integers(1, min(H, 5)))
    kw = draw(st.integers(1, min(W, 5)))
    boundary = draw(st.sampled_from(CONV_BOUNDARIES))
    seed = draw(st.integers(0, 2**16))
    k = torch.rand(kh, kw, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.1
    return Convolution(k, (H, W), boundary)


@st.composite
def matrices(draw):
    m = draw(st.integers(1, 8))
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["dense", "numpy", "scipy-sparse", "torch-sparse", "complex"]))
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, n))
    if kind == "dense":
        return Matrix(torch.from_numpy(M))
    if kind == "numpy":
        return Matrix(M)
    if kind == "scipy-sparse":
        return Matrix(sp.random(m, n, density=0.5, random_state=seed, format="csr"))
    if kind == "torch-sparse":
        return Matrix(torch.from_numpy(M).to_sparse())
    return Matrix(torch.from_numpy(M + 1j * rng.standard_normal((m, n))))


@st.composite
def gradients(draw):
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    G = Gradient((h, w), draw(st.sampled_from(["neumann", "circular"])))
    assert G.out_shape == (2, h, w)
    return G


@st.composite
def wavelets(draw):
    name = draw(st.sampled_from(sorted(WAVELETS)))
    hj, wj = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = draw(st.sampled_from([1, 3])) * 2**hj, draw(st.sampled_from([1, 5])) * 2**wj
    return Wavelet2D((H, W), name, levels=draw(st.integers(1, min(hj, wj))))


@st.composite
def compositions(draw):
    """Sums, differences, scalings, products and adjoints of square 2-D operators."""
    H, W = draw(st.integers(3, 8)), draw(st.integers(3, 8))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)

    def leaf(i):
        kind = draw(st.sampled_from(["conv", "diag", "id", "mat", "pad"]))
        if kind == "conv":
            k = torch.rand(3, 2, generator=g, dtype=torch.float64)
            return Convolution(k, (H, W), draw(st.sampled_from(sorted(BOUNDARIES))))
        if kind == "diag":
            return Diagonal(torch.randn(H, W, generator=g, dtype=torch.float64))
        if kind == "mat":
            return Matrix(torch.randn(H * W, H * W, generator=g, dtype=torch.float64), (H, W), (H, W))
        if kind == "pad":  # Pad then crop back with the adjoint of a zero pad: square again
            P = Pad((H, W), ((1, 0), (0, 2)), draw(st.sampled_from(["reflect", "nearest", "wrap"])))
            Z = Pad((H, W), ((1, 0), (0, 2)), "constant")
            return Z.H @ P
        return Identity((H, W))

    A = leaf(0)
    for i in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["add", "sub", "mul", "scale", "adj", "neg"]))
        B = leaf(i + 1)
        if op == "add":
            A = A + B
        elif op == "sub":
            A = A - B
        elif op == "mul":
            A = A @ B
        elif op == "scale":
            A = draw(st.floats(-3, 3, allow_nan=False).filter(lambda c: c != 0)) * A
        elif op == "adj":
            A = A.H
        else:
            A = -A
    return A


ANY_OP = st.one_of(convolutions(), matrices(), compositions(), gradients(), wavelets())
HYP_TOL = {torch.float64: 1e-6, torch.float32: 1e-4}


@FAST
@given(ANY_OP, st.sampled_from([torch.float64, torch.float32]), st.sampled_from([(), (2,), (1, 3)]))
def test_random_dot_test(A, dtype, batch):
    assert dot_test(A, dtype=dtype, seed=1, batch=batch) < HYP_TOL[dtype]
    assert dot_test(A.H, dtype=dtype, seed=2) < HYP_TOL[dtype]


@FAST
@given(ANY_OP, st.floats(-2, 2), st.floats(-2, 2))
def test_random_linearity(A, a, b):
    dtype = natural(A)
    x1, x2 = rand(A.in_shape, dtype, 1), rand(A.in_shape, dtype, 2)
    rhs = a * A(x1) + b * A(x2)
    assert torch.allclose(A(a * x1 + b * x2), rhs, atol=1e-10 * (1 + rhs.abs().max()))


@FAST
@given(ANY_OP, st.lists(st.integers(1, 3), min_size=0, max_size=2), st.sampled_from(ALL_DTYPES))
def test_random_broadcasting_and_dtype(A, lead, dtype):
    lead = tuple(lead)
    want = expected_dtype(A, dtype)
    x = rand(lead + A.in_shape, dtype, 3)
    y = A(x)
    assert y.shape == lead + A.out_shape and y.dtype == want
    z = A.adjoint(y)
    assert z.shape == lead + A.in_shape and z.dtype == want
    # every batch item is the operator applied to that item alone
    each = torch.stack([A(v) for v in x.reshape((-1,) + A.in_shape)]).reshape(y.shape)
    tol = 1e-10 if dtype in (torch.float64, torch.complex128) else 1e-4
    assert torch.allclose(y, each, atol=tol * (1 + each.abs().max()))


@FAST
@given(ANY_OP)
def test_random_to_dense_and_scipy_agree(A):
    D = A.to_dense()
    x = rand(A.in_shape, D.dtype, 4)
    assert torch.allclose(D @ x.reshape(-1), A(x).reshape(-1), atol=1e-10)
    S = A.to_scipy(np.complex128 if not A.is_real else np.float64)
    assert np.allclose(S.matvec(x.reshape(-1).numpy()), A(x).reshape(-1).numpy(), atol=1e-10)
    w = rand(A.out_shape, D.dtype, 5).reshape(-1).numpy()
    assert np.allclose(S.rmatvec(w), A.adjoint(torch.from_numpy(w).reshape(A.out_shape)).reshape(-1).numpy(),
                       atol=1e-10)


@FAST
@given(st.one_of(convolutions(), matrices()))
def test_random_norm_matches_dense(A):
    expected = float(torch.linalg.matrix_norm(A.to_dense(), 2))
    assert A.norm() == pytest.approx(expected, rel=1e-5, abs=1e-9)


@FAST
@given(st.one_of(compositions(), convolutions(), gradients(), wavelets()))
def test_random_config_round_trip(A):
    B = from_config(A.to_config())
    x = rand(A.in_shape, seed=6)
    assert torch.allclose(A(x), B(x), atol=1e-12)


@FAST
@given(matrices())
def test_random_matrix_svd(A):
    if not A.has_svd:
        with pytest.raises(FactorizationError):
            A.svd()
        return
    F = A.svd()
    D = A.to_dense()
    r = F.s.numel()
    U = F.U.to_dense(dtype=D.dtype)
    V = F.V.to_dense(dtype=D.dtype)
    eye = torch.eye(r, dtype=D.dtype)
    assert torch.allclose(U.conj().T @ U, eye, atol=1e-10)
    assert torch.allclose(V.conj().T @ V, eye, atol=1e-10)
    assert torch.allclose(U @ torch.diag(F.s.to(D.dtype)) @ V.conj().T, D, atol=1e-10)


@FAST
@given(st.integers(4, 20), st.integers(4, 20), st.integers(1, 4), st.integers(1, 4), st.integers(0, 999))
def test_random_circular_factorization_rebuilds(H, W, kh, kw, seed):
    k = torch.rand(kh, kw, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    A = Convolution(k, (H, W))
    F = A.svd()
    x = rand((2, H, W), seed=seed)
    rebuilt = F.as_operator()(x)
    assert (rebuilt.imag.abs().max() if rebuilt.is_complex() else 0) < 1e-10
    assert torch.allclose(rebuilt.real, A(x), atol=1e-10)
    assert torch.allclose(F.forward(x).real, A(x), atol=1e-10)
    # U and V unitary
    z = rand((H, W), torch.complex128, seed + 1)
    for Q in (F.U, F.V):
        assert torch.allclose(Q.H(Q(z)), z, atol=1e-10)
        assert torch.allclose(Q(Q.H(z)), z, atol=1e-10)
    assert bool((F.s >= 0).all())


# ================================================================ the recipe of the docs
DOCS = Path(__file__).resolve().parents[1] / "docs" / "operators.md"


def recipe_block() -> str:
    """The first Python block of the "Adding an operator" section of docs/operators.md, as written."""
    text = DOCS.read_text()
    section = text[text.index("## Adding an operator"):]
    match = re.search(r"^```python[^\n]*\n(.*?)^```", section, re.M | re.S)
    assert match, "docs/operators.md: no Python block in 'Adding an operator'"
    return match.group(1)


def test_docs_recipe_builds_an_operator_that_passes_the_battery():
    namespace: dict = {"__name__": "operators_recipe"}
    exec(compile(recipe_block(), "docs/operators.md (Adding an operator)", "exec"), namespace)
    classes = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, LinearOperator)
               and v.__module__ == "operators_recipe"]
    instances = [v for v in namespace.values() if isinstance(v, LinearOperator)]
    assert classes and instances
    for A in instances:
        check_operator(A)
        x = torch.rand((2,) + A.in_shape)
        assert A(x).dtype == torch.float32 and A.adjoint(A(x)).dtype == torch.float32
        assert dot_test(A, dtype=torch.float32) < 1e-5
        B = from_config(json.loads(json.dumps(A.to_config())))
        assert type(B) is type(A) and torch.equal(B(x), A(x))
