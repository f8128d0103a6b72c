"""Properties every operator and composition must satisfy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import psf
from physinv.operators import (
    BOUNDARIES,
    FFT2,
    Convolution,
    Diagonal,
    FactorizationError,
    Identity,
    LinearOperator,
    Matrix,
    Pad,
    from_config,
)
from physinv.testing import check_operator, dot_test

FAST = settings(max_examples=25, deadline=None)
TOL = {torch.float64: 1e-6, torch.float32: 1e-4}


def rand(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------- strategies
@st.composite
def convolutions(draw):
    H = draw(st.integers(4, 12))
    W = draw(st.integers(4, 12))
    kh = draw(st.integers(1, min(H, 5)))
    kw = draw(st.integers(1, min(W, 5)))
    boundary = draw(st.sampled_from(sorted(BOUNDARIES)))
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


ANY_OP = st.one_of(convolutions(), matrices(), compositions())


# ------------------------------------------------------------- properties
@FAST
@given(ANY_OP, st.sampled_from([torch.float64, torch.float32]))
def test_dot_test(A, dtype):
    assert dot_test(A, dtype=dtype, seed=1) < TOL[dtype]
    assert dot_test(A.H, dtype=dtype, seed=2) < TOL[dtype]


@FAST
@given(ANY_OP, st.floats(-2, 2), st.floats(-2, 2))
def test_linearity(A, a, b):
    dtype = torch.float64 if A.is_real else torch.complex128
    x1, x2 = rand(A.in_shape, dtype, 1), rand(A.in_shape, dtype, 2)
    lhs = A(a * x1 + b * x2)
    rhs = a * A(x1) + b * A(x2)
    assert torch.allclose(lhs, rhs, atol=1e-10 * (1 + rhs.abs().max()))


@FAST
@given(ANY_OP, st.lists(st.integers(1, 3), min_size=0, max_size=2),
       st.sampled_from([torch.float64, torch.float32]))
def test_broadcasting_and_dtype(A, lead, dtype):
    if not A.is_real:
        dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    lead = tuple(lead)
    x = rand(lead + A.in_shape, dtype, 3)
    y = A(x)
    assert y.shape == lead + A.out_shape
    assert y.dtype == dtype
    z = A.adjoint(y)
    assert z.shape == lead + A.in_shape and z.dtype == dtype
    # every batch item is the operator applied to that item alone
    flat = x.reshape((-1,) + A.in_shape)
    each = torch.stack([A(v) for v in flat]).reshape(y.shape)
    tol = 1e-10 if dtype in (torch.float64, torch.complex128) else 1e-4
    assert torch.allclose(y, each, atol=tol * (1 + each.abs().max()))


@FAST
@given(ANY_OP)
def test_to_dense_and_scipy_agree(A):
    D = A.to_dense()
    dtype = D.dtype
    x = rand(A.in_shape, dtype, 4)
    assert torch.allclose(D @ x.reshape(-1), A(x).reshape(-1), atol=1e-10)
    S = A.to_scipy(np.complex128 if not A.is_real else np.float64)
    v = x.reshape(-1).numpy()
    assert np.allclose(S.matvec(v), A(x).reshape(-1).numpy(), atol=1e-10)
    w = rand(A.out_shape, dtype, 5).reshape(-1).numpy()
    assert np.allclose(S.rmatvec(w), A.adjoint(torch.from_numpy(w).reshape(A.out_shape)).reshape(-1).numpy(),
                       atol=1e-10)


@FAST
@given(st.one_of(convolutions(), matrices()))
def test_norm_matches_dense(A):
    D = A.to_dense()
    expected = float(torch.linalg.matrix_norm(D, 2))
    assert A.norm() == pytest.approx(expected, rel=1e-5, abs=1e-9)


@FAST
@given(compositions())
def test_config_round_trip(A):
    B = from_config(A.to_config())
    x = rand(A.in_shape, seed=6)
    assert torch.allclose(A(x), B(x), atol=1e-12)


# ----------------------------------------------------------- convolution
@pytest.mark.parametrize("boundary", sorted(BOUNDARIES))
@pytest.mark.parametrize("ksize", [(1, 1), (3, 3), (4, 4), (5, 2), (2, 6), (7, 7)])
@pytest.mark.parametrize("shape", [(16, 16), (15, 18)])
def test_convolution_matches_scipy_ndimage(boundary, ksize, shape):
    rng = np.random.default_rng(sum(ksize) + shape[1])
    k = rng.random(ksize)
    x = rng.standard_normal(shape)
    A = Convolution(k, shape, boundary)
    ref = ndi.convolve(x, k, mode=BOUNDARIES[boundary])
    assert np.allclose(A(torch.from_numpy(x)).numpy(), ref, atol=1e-12)
    # float32 path agrees to float tolerance too
    y32 = A(torch.from_numpy(x).float()).numpy()
    assert np.allclose(y32, ref, atol=1e-4 * np.abs(ref).max())


@FAST
@given(st.integers(4, 20), st.integers(4, 20), st.integers(1, 4), st.integers(1, 4), st.integers(0, 999))
def test_circular_factorization_rebuilds(H, W, kh, kw, seed):
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


def test_circular_factorization_rebuilds_dense_to_1e6():
    """The issue's acceptance check: the Fourier factorization rebuilds A to 1e-6 (float64)."""
    A = Convolution(psf.gaussian(2.0), (24, 20))
    F = A.svd()
    D = A.to_dense()
    R = F.as_operator().to_dense(dtype=torch.complex128)
    assert float((R - D).abs().max()) < 1e-6 * float(D.abs().max())


def test_spectral_filters_match_dense_formulas():
    A = Convolution(psf.motion(5, 30), (12, 14))
    F = A.svd()
    D = A.to_dense()
    y = rand((3, 12, 14), seed=7)
    Y = y.reshape(3, -1).T
    lam = 1e-2
    tik = torch.linalg.solve(D.T @ D + lam * torch.eye(D.shape[1], dtype=D.dtype), D.T @ Y)
    assert torch.allclose(F.tikhonov(y, lam).reshape(3, -1).T, tik, atol=1e-9)
    U, s, Vh = torch.linalg.svd(D)
    pinv = torch.linalg.pinv(D, rtol=1e-3)
    assert torch.allclose(F.pinv(y, rcond=1e-3).reshape(3, -1).T, pinv @ Y, atol=1e-8)
    # Wiener with flat signal power P equals Tikhonov with lam = sigma^2 / P
    assert torch.allclose(F.wiener(y, 0.1, 2.0), F.tikhonov(y, 0.01 / 2.0), atol=1e-12)
    # TSVD keeping all non-zero modes is the pseudo-inverse
    k = int((s > 1e-3 * s.max()).sum())
    dense_tsvd = Vh[:k].T @ torch.diag(1 / s[:k]) @ U[:, :k].T @ Y
    assert torch.allclose(F.tsvd(y, k).reshape(3, -1).T, dense_tsvd, atol=1e-6)


@FAST
@given(matrices())
def test_matrix_svd(A):
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


def test_truncated_svd_top_k():
    rng = np.random.default_rng(0)
    M = sp.random(60, 40, density=0.2, random_state=1) + sp.eye(60, 40)
    A = Matrix(M)
    F = A.svd(k=5)
    s = np.linalg.svd(M.toarray(), compute_uv=False)[:5]
    assert np.allclose(F.s.numpy(), s, rtol=1e-8)
    x = torch.from_numpy(rng.standard_normal(40))
    # projection of A onto its top-5 subspace
    D = torch.from_numpy(M.toarray())
    u, sv, vh = torch.linalg.svd(D)
    ref = u[:, :5] @ torch.diag(sv[:5]) @ vh[:5] @ x
    assert torch.allclose(F.forward(x), ref, atol=1e-8)
    C = Convolution(psf.gaussian(1.0), (10, 10))
    Fc = C.svd(k=3)
    assert np.allclose(Fc.s.numpy(), np.sort(C.svd().s.reshape(-1).numpy())[::-1][:3], rtol=1e-8)


def test_to_scipy_lsqr_deblurs():
    from scipy.sparse.linalg import lsqr
    from skimage import data, transform

    img = transform.resize(data.camera().astype(float) / 255, (32, 32), anti_aliasing=True)
    A = Convolution(psf.gaussian(0.8), img.shape)
    y = A(torch.from_numpy(img)).numpy()
    x = lsqr(A.to_scipy(), y.reshape(-1), atol=1e-12, btol=1e-12, iter_lim=5000)[0].reshape(img.shape)
    blurred_err = np.linalg.norm(y - img)
    assert np.linalg.norm(x - img) < 1e-2 * blurred_err
    # with damping, lsqr solves the Tikhonov problem: it must equal the spectral filter
    damp = 0.05
    xd = lsqr(A.to_scipy(), y.reshape(-1), damp=damp, atol=1e-14, btol=1e-14, iter_lim=5000)[0]
    ref = A.svd().tikhonov(torch.from_numpy(y), damp**2).numpy()
    assert np.allclose(xd.reshape(img.shape), ref, atol=1e-7)


def test_norm_exact_and_power_iteration_agree():
    A = Convolution(psf.disk(2.5), (32, 32))
    exact = A.norm()
    assert exact == pytest.approx(1.0, abs=1e-12)  # unit-sum non-negative PSF: |h^(0)| = 1
    B = Convolution(psf.disk(2.5), (32, 32), "zero")
    assert not B.has_svd and B.norm() <= exact + 1e-9
    assert (3 * A).norm() == pytest.approx(3.0)


# --------------------------------------------------------------- bad input
def test_shape_mismatch_names_shapes():
    A = Convolution(psf.gaussian(1.0), (16, 16))
    with pytest.raises(ValueError, match=r"trailing shape \(16, 16\).*\(2, 15, 16\)"):
        A(torch.zeros(2, 15, 16))
    with pytest.raises(ValueError, match="A @ B"):
        A @ Identity((4, 4))
    with pytest.raises(ValueError, match="A \\+ B"):
        A + Identity((4, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        A(np.zeros((16, 16)))
    with pytest.raises(TypeError, match="floating"):
        A(torch.zeros(16, 16, dtype=torch.int64))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((3, 3, 3)), "2-D"),
        (np.array([[np.nan, 1.0]]), "non-finite"),
        (np.zeros((3, 3)), "zero"),
        (np.ones((20, 3)), "larger than the image"),
    ],
)
def test_bad_psf(bad, match):
    with pytest.raises(ValueError, match=match):
        Convolution(bad, (16, 16))
    if match != "larger than the image":
        with pytest.raises(ValueError, match=match):
            psf.from_array(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="boundary"):
        Convolution(np.ones((3, 3)), (8, 8), boundary="periodic")
    with pytest.raises(ValueError, match="in_shape"):
        Convolution(np.ones((3, 3)), (8,))
    with pytest.raises(ValueError, match="in_shape"):
        Matrix(np.ones((4, 6)), in_shape=(2, 2))
    with pytest.raises(ValueError, match="finite"):
        Matrix(np.array([[np.inf]]))
    with pytest.raises(ValueError, match="sigma"):
        psf.gaussian(-1)
    with pytest.raises(ValueError, match="to_dense"):
        Convolution(np.ones((3, 3)), (512, 512)).to_dense()
    with pytest.raises(FactorizationError, match="boundary='circular'"):
        Convolution(np.ones((3, 3)), (8, 8), "zero").svd()
    with pytest.raises(ValueError, match="lam"):
        Convolution(np.ones((3, 3)), (8, 8)).svd().tikhonov(torch.zeros(8, 8), -1.0)


def test_device_mismatch_is_named():
    A = Convolution(psf.gaussian(1.0), (8, 8))
    x = torch.zeros(8, 8, device="meta")
    with pytest.raises(ValueError, match="meta"):
        A(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_roundtrip():
    A = Convolution(psf.gaussian(1.5), (64, 64)).cuda()
    x = torch.rand(4, 64, 64, device="cuda")
    assert A(x).device.type == "cuda"
    assert dot_test(A, dtype=torch.float32) < 1e-4
    cpu = Convolution(psf.gaussian(1.5), (64, 64))
    assert torch.allclose(A(x).cpu(), cpu(x.cpu()), atol=1e-5)


def test_psf_constructors_are_normalised_and_centred():
    for k in (psf.gaussian(1.3), psf.motion(7, 45), psf.disk(3.2), psf.airy(2.0)):
        assert abs(float(k.sum()) - 1) < 1e-12
        assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
        assert bool((k >= 0).all())
        c = k.shape[0] // 2
        # centre of mass at the centre pixel for these symmetric kernels
        idx = torch.arange(k.shape[0], dtype=torch.float64) - c
        assert abs(float((k.sum(1) * idx).sum())) < 1e-6
        assert abs(float((k.sum(0) * idx).sum())) < 1e-6
    m = psf.motion(9, 0)
    assert int((m.sum(1) > 1e-12).sum()) == 1  # horizontal blur occupies one row


def test_complex_input_to_real_operator_splits_parts():
    A = Convolution(psf.gaussian(1.0), (8, 8))
    z = rand((8, 8), torch.complex128, 9)
    out = A(z)
    assert torch.allclose(out, torch.complex(A(z.real), A(z.imag)))
    assert dot_test(FFT2((5, 6))) < 1e-12


def test_subclass_minimal_operator():
    class Shift(LinearOperator):
        def __init__(self, n):
            super().__init__(n, n)

        def _forward(self, x):
            return torch.roll(x, 1, -1)

        def _adjoint(self, y):
            return torch.roll(y, -1, -1)

    S = Shift(7)
    assert dot_test(S) < 1e-12
    assert S.norm() == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(FactorizationError, match="no exact factorization"):
        S.svd()
    assert not S.has_svd


@pytest.mark.parametrize("make", [
    lambda: Convolution(psf.gaussian(1.0), (9, 10)),
    lambda: Convolution(psf.motion(4, 20), (9, 10), "reflect"),
    lambda: Matrix(np.arange(12.0).reshape(3, 4)),
    lambda: FFT2((4, 5)),
    lambda: Diagonal(torch.tensor([1.0, -2.0, 3.0])),
])
def test_check_operator_passes_exact_operators(make):
    errors = check_operator(make())
    assert errors["dot64"] < 1e-12


def test_check_operator_catches_a_wrong_adjoint():
    class Wrong(LinearOperator):
        def __init__(self):
            super().__init__(5, 5)

        def _forward(self, x):
            return torch.cumsum(x, -1)

        def _adjoint(self, y):
            return torch.cumsum(y, -1)  # should be a reversed cumsum

    with pytest.raises(AssertionError, match="dot test"):
        check_operator(Wrong())


@pytest.mark.parametrize("cast", [
    lambda A: A.to(torch.float32), lambda A: A.float(), lambda A: A.double(),
    lambda A: torch.nn.Sequential(A).to(torch.float32)[0], lambda A: A.to("cpu", torch.float64),
])
def test_module_casts_keep_complex_buffers(cast):
    """Casting an operator (or a network holding one) keeps transfer functions complex."""
    x = rand((2, 12, 12), seed=11)
    for boundary in ("circular", "reflect"):
        A = Convolution(psf.motion(5, 30), (12, 12), boundary)  # asymmetric PSF: complex spectrum
        ref = A(x)
        B = cast(A)
        assert B.tf.is_complex()
        y = B(x.to(B.psf.dtype))
        assert torch.allclose(y.double(), ref, atol=1e-5)
        assert dot_test(B, dtype=torch.float32) < 1e-4


@pytest.mark.parametrize("make", [lambda A: 2 * A, lambda A: A.H, lambda A: -A, lambda A: (0.5 * A).H,
                                  lambda A: (1j * A)])
def test_derived_factorizations(make):
    """Scaled and adjoint operators keep an exact factorization; real ones filter to real output."""
    A = Convolution(psf.motion(5, 30), (10, 12))
    B = make(A)
    F = B.svd()
    D = B.to_dense()
    y = B(rand((2, 10, 12), seed=12))
    x = F.tikhonov(y, 1e-3)
    ref = torch.linalg.solve(D.conj().T @ D + 1e-3 * torch.eye(120, dtype=D.dtype),
                             D.conj().T @ y.reshape(2, -1).T.to(D.dtype)).T.reshape(2, 10, 12)
    assert x.is_complex() == (not B.is_real)
    assert torch.allclose(x.to(ref.dtype), ref, atol=1e-10)
    assert B.norm() == pytest.approx(float(torch.linalg.matrix_norm(D, 2)), rel=1e-10)


def test_exact_factorization_is_cached_until_moved():
    A = Convolution(psf.motion(5, 30), (8, 9))
    F = A.svd()
    assert A.svd() is F
    x = rand((8, 9), seed=13)
    B = A.to(torch.float32)
    F32 = B.svd()
    assert F32 is not F
    assert torch.allclose(F32.forward(x).real.double(), A(x), atol=1e-5)
