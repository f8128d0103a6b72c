"""Operator-specific truths: agreement with scipy, the factorization math, configs, casts, bad input.

The properties every operator shares (dot test, linearity, broadcasting, dense and scipy views,
norms, configs, factorizations, device moves) run on every case in tests/test_operator_cases.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as signal
import scipy.sparse as sp
import torch

import physinv.operators as ops
from physinv import psf
from physinv.operators import (
    BOUNDARIES,
    FFT2,
    Convolution,
    Diagonal,
    FactorizationError,
    Gradient,
    Identity,
    LinearOperator,
    Matrix,
    Wavelet2D,
    config_type,
    from_config,
)
from physinv.testing import check_operator, dot_test


def rand(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


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


def test_circular_factorization_rebuilds_dense_to_1e6():
    """Acceptance check: the Fourier factorization rebuilds A to 1e-6 (float64)."""
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


# ------------------------------------------------------- the valid boundary
@pytest.mark.parametrize("ksize", [(1, 1), (3, 3), (4, 4), (5, 2), (2, 6)])
@pytest.mark.parametrize("shape", [(16, 16), (15, 18)])
def test_valid_convolution_matches_scipy_signal_and_ndimage(ksize, shape):
    rng = np.random.default_rng(sum(ksize) + shape[1])
    k = rng.random(ksize)
    x = rng.standard_normal(shape)
    (kh, kw), (H, W) = ksize, shape
    A = Convolution(k, shape, "valid")
    assert A.out_shape == (H - kh + 1, W - kw + 1)
    y = A(torch.from_numpy(x)).numpy()
    assert np.allclose(y, signal.convolve2d(x, k, mode="valid"), rtol=0, atol=1e-12)
    # the centre crop of scipy.ndimage.convolve, whatever its mode (the crop never sees the boundary)
    top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
    for mode in ("constant", "reflect", "wrap"):
        ref = ndi.convolve(x, k, mode=mode)[top:top + H - kh + 1, left:left + W - kw + 1]
        assert np.allclose(y, ref, rtol=0, atol=1e-12)
    # the adjoint is the zero-padded transposed correlation
    r = rng.standard_normal(A.out_shape)
    assert np.allclose(A.adjoint(torch.from_numpy(r)).numpy(), signal.correlate2d(r, k, mode="full"),
                       rtol=0, atol=1e-12)
    y32 = A(torch.from_numpy(x).float())
    assert y32.dtype == torch.float32 and np.allclose(y32.numpy(), y, atol=1e-4 * np.abs(y).max())


def test_valid_convolution_of_a_psf_as_large_as_the_image_is_one_inner_product():
    rng = np.random.default_rng(3)
    k, x = rng.random((5, 4)), rng.standard_normal((5, 4))
    A = Convolution(k, (5, 4), "valid")
    assert A.out_shape == (1, 1)
    assert float(A(torch.from_numpy(x))[0, 0]) == pytest.approx(float((k[::-1, ::-1] * x).sum()), abs=1e-13)


def test_valid_convolution_has_no_factorization():
    A = Convolution(psf.gaussian(1.0), (12, 12), "valid")
    assert not A.has_svd
    with pytest.raises(FactorizationError, match=r"boundary='valid'.*boundary='circular'.*svd\(k=\.\.\.\)"):
        A.svd()
    D = A.to_dense()
    assert A.svd(k=2).s[0].item() == pytest.approx(float(torch.linalg.matrix_norm(D, 2)), rel=1e-8)


def test_bad_boundary_lists_valid():
    with pytest.raises(ValueError, match="'valid'"):
        Convolution(np.ones((3, 3)), (8, 8), boundary="same")


# ------------------------------------------------------------ precision
@pytest.mark.parametrize("boundary", ["zero", "circular", "valid"])
def test_float32_psf_gives_float64_accuracy(boundary):
    k32 = np.ones((5, 5), np.float32) / 25
    x = np.random.default_rng(0).standard_normal((64, 64))
    A = Convolution(k32, (64, 64), boundary)
    assert A.psf.dtype == torch.float64 and A.tf.dtype == torch.complex128
    if boundary == "valid":
        ref = signal.convolve2d(x, k32.astype(np.float64), mode="valid")
    else:  # scipy.ndimage convolves with the float64 value of every float32 weight
        ref = ndi.convolve(x, k32, mode=BOUNDARIES[boundary])
    assert np.abs(A(torch.from_numpy(x)).numpy() - ref).max() < 1e-14
    y32 = A(torch.from_numpy(x).float())
    assert y32.dtype == torch.float32 and np.abs(y32.numpy() - ref).max() < 1e-5


def test_float32_psf_singular_values_are_float64_exact():
    k32 = np.ones((5, 5), np.float32) / 25
    big = np.zeros((64, 64))
    big[:5, :5] = k32
    s_ref = np.abs(np.fft.fft2(np.roll(big, (-2, -2), axis=(0, 1))))
    A = Convolution(k32, (64, 64))
    assert A.svd().s.dtype == torch.float64
    assert np.abs(A.svd().s.numpy() - s_ref).max() < 1e-15


# ---------------------------------------------------- the config registry
def test_a_user_class_named_like_a_builtin_does_not_hijack_from_config():
    class Convolution(LinearOperator):  # a class of the user's own, with a built-in's name
        def __init__(self, in_shape):
            super().__init__(in_shape, in_shape)

        def _forward(self, x):
            return 2 * x

        def _adjoint(self, y):
            return 2 * y

        def _config(self):
            return {"in_shape": list(self.in_shape)}

    builtin = ops.Convolution(np.ones((3, 3)), (8, 8))
    assert builtin.to_config()["type"] == "Convolution" == config_type(ops.Convolution)
    assert type(from_config(builtin.to_config())) is ops.Convolution
    mine = Convolution((4,))
    cfg = mine.to_config()
    assert cfg["type"] == f"{__name__}.{Convolution.__qualname__}" == config_type(Convolution)
    back = from_config(cfg)
    x = torch.ones(4)
    assert type(back) is Convolution and torch.equal(back(x), 2 * x)


def _gain_class(module: str, factor: float):
    class Gain(LinearOperator):
        __module__ = module

        def __init__(self, n):
            super().__init__(n, n)

        def _forward(self, x):
            return factor * x

        def _adjoint(self, y):
            return factor * y

        def _config(self):
            return {"n": self.in_shape[0]}

    return Gain


def test_user_classes_of_one_name_are_told_apart_by_their_module():
    A, B = _gain_class("lab_a.optics", 2.0), _gain_class("lab_b.optics", 3.0)
    assert config_type(A) != config_type(B)
    assert config_type(A).startswith("lab_a.optics.") and config_type(A).endswith(".Gain")
    x = torch.ones(3)
    assert torch.equal(from_config(A(3).to_config())(x), 2 * x)
    assert torch.equal(from_config(B(3).to_config())(x), 3 * x)


def test_redefining_a_class_replaces_it():
    first = _gain_class("lab_c.optics", 2.0)
    second = _gain_class("lab_c.optics", 5.0)  # same module and qualified name: a re-run cell
    assert type(from_config(first(2).to_config())) is second


def test_a_second_physinv_class_with_a_builtin_name_raises_at_class_creation():
    with pytest.raises(TypeError, match="'Convolution' is registered by physinv.operators.convolution"):
        class Convolution(LinearOperator):
            __module__ = "physinv.operators.elsewhere"


def test_unknown_config_type_names_the_rule():
    with pytest.raises(ValueError, match=r"'Nope'.*'Convolution'.*module\.QualifiedName"):
        from_config({"type": "Nope"})


@pytest.mark.parametrize("cfg, cls", [
    ({"type": "Identity", "shape": [4]}, Identity),
    ({"type": "FFT2", "shape": [4, 6]}, FFT2),
    ({"type": "Gradient", "shape": [5, 7], "boundary": "circular"}, Gradient),
    ({"type": "Wavelet2D", "shape": [8, 8], "wavelet": "db2", "levels": 2}, Wavelet2D),
])
def test_configs_with_the_earlier_shape_key_still_load(cfg, cls):
    A = from_config(cfg)
    assert type(A) is cls and list(A.in_shape) == cfg["shape"]
    new = A.to_config()
    assert new["in_shape"] == cfg["shape"] and "shape" not in new


# ------------------------------------------------------------ Matrix.to_dense
def test_matrix_to_dense_honours_the_base_contract():
    M32 = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    for A in (Matrix(M32), Matrix(M32.to_sparse())):
        D = A.to_dense()
        assert D.dtype == torch.float64 and torch.equal(D, M32.double())
        D[0, 0] = 100.0  # a new tensor: the operator is untouched
        assert A(torch.eye(4, dtype=torch.float64))[0, 0].item() == M32[0, 0].item()
        assert A.to_dense(dtype=torch.float32).dtype == torch.float32
        with pytest.raises(ValueError, match="max_entries=11"):
            A.to_dense(max_entries=11)
    C = Matrix(torch.randn(2, 2, dtype=torch.complex64))
    assert C.to_dense().dtype == torch.complex128
    with pytest.raises(ValueError, match="complex"):
        C.to_dense(dtype=torch.float64)


# ------------------------------------------------------------ buffer_like
def test_buffer_like_casts_once_conjugates_and_drops_casts_on_moves():
    d = torch.tensor([1 + 2j, 3 - 1j, -1j], dtype=torch.complex128)
    D = Diagonal(d.clone())
    x32 = torch.ones(3, dtype=torch.complex64)
    a = D.buffer_like("d", x32)
    assert a.dtype == torch.complex64 and a is D.buffer_like("d", x32)
    assert torch.equal(D.buffer_like("d", x32, conj=True), d.conj().resolve_conj().to(torch.complex64))
    assert D.buffer_like("d", torch.ones(3, dtype=torch.float64)) is D.d
    D.to(torch.float64)  # a move or cast drops every cached cast
    assert D.buffer_like("d", x32) is not a
    with torch.no_grad():
        D.d.mul_(2)  # an in-place change of the buffer is seen
    assert torch.equal(D.buffer_like("d", x32), (2 * d).to(torch.complex64))
    R = Diagonal(torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert R.buffer_like("d", torch.ones(2), complex_=True).dtype == torch.complex64
    with pytest.raises(ValueError, match="complex_=False"):
        D.buffer_like("d", x32, complex_=False)
    with pytest.raises(AttributeError, match="register_buffer"):
        D.buffer_like("nope", x32)
    with pytest.raises(ValueError, match="input is on meta but the operator is on cpu"):
        D.buffer_like("d", torch.ones(3, device="meta"))


def test_buffer_like_casts_sparse_values_and_shares_the_index_arrays():
    A = Matrix(sp.random(6, 5, density=0.5, random_state=0, format="csr"))  # float64 CSR
    x = torch.ones(5, dtype=torch.float32)
    C = A.buffer_like("M", x)
    assert C.layout == torch.sparse_csr and C.dtype == torch.float32
    assert C.crow_indices().data_ptr() == A.M.crow_indices().data_ptr()
    assert C.col_indices().data_ptr() == A.M.col_indices().data_ptr()
    assert torch.equal(C.values(), A.M.values().float()) and C is A.buffer_like("M", x)
    Z = Matrix(torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.complex128)
               .to_sparse_csr())
    Zc = Z.buffer_like("M", torch.ones(4, dtype=torch.complex64), conj=True)
    assert Zc.dtype == torch.complex64 and Zc.col_indices().data_ptr() == Z.M.col_indices().data_ptr()
    assert torch.equal(Zc.to_dense(), Z.M.to_dense().conj().resolve_conj().to(torch.complex64))


def test_buffer_like_casts_trainable_tensors_afresh():
    class Gain(LinearOperator):
        def __init__(self):
            super().__init__(3, 3)
            self.w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))

        def _forward(self, x):
            return x * self.buffer_like("w", x)

        def _adjoint(self, y):
            return y * self.buffer_like("w", y)

    G = Gain()
    x = torch.ones(3)
    for _ in range(2):  # a cached cast would keep the first graph, and the second backward would fail
        G(x).sum().backward()
    assert torch.equal(G.w.grad, torch.full((3,), 2.0, dtype=torch.float64))


def test_buffer_like_under_inference_mode_keeps_the_cache_usable_for_autograd():
    A = Convolution(psf.gaussian(1.0), (8, 8))
    with torch.inference_mode():
        A(torch.rand(8, 8))  # the first float32 cast happens under inference mode
    x = torch.rand(8, 8, requires_grad=True)
    A(x).sum().backward()
    assert torch.allclose(x.grad.double(), A.adjoint(torch.ones(8, 8, dtype=torch.float64)), atol=1e-6)


def test_check_operator_reports_a_dtype_mismatch_as_a_failed_check():
    class Careless(LinearOperator):  # multiplies by its float64 buffer directly
        def __init__(self):
            super().__init__(4, 4)
            self.register_buffer("w", torch.linspace(1, 2, 4, dtype=torch.float64))

        def _forward(self, x):
            return x * self.w

        def _adjoint(self, y):
            return y * self.w

    A = Careless()
    assert dot_test(A, dtype=torch.float32) < 1e-6  # mixed dtypes are measured, not a crash
    with pytest.raises(AssertionError, match=r"dtype not preserved: A maps torch.float32 input to "
                                             r"torch.float64.*buffer_like"):
        check_operator(A)


def test_empty_batches_map_to_empty_batches():
    for A in (Convolution(psf.gaussian(1.0), (8, 8)), FFT2((4, 4)), Matrix(np.ones((2, 3)))):
        y = A(torch.zeros((0, 2) + A.in_shape))
        assert y.shape == (0, 2) + A.out_shape
        assert y.dtype == (torch.float32 if A.is_real else torch.complex64)
