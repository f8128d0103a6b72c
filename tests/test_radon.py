"""Tests of the parallel-beam Radon operator, its caches, FBP and the Radon SVD."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from physinv.operators import Radon, from_config, radon_matrix_nbytes, truncated_svd
from physinv.operators.tomography import MAX_BYTES, cache
from physinv.solvers import fbp, filter_sinogram, ramp_filter
from physinv.solvers.fbp import FILTERS
from physinv.testing import check_operator, dot_test

# Random test images fill the whole frame; the projection's warning about content outside the
# circle is tested on its own below.
pytestmark = pytest.mark.filterwarnings("ignore:Radon\\(circle=True\\):UserWarning")
OUTSIDE = "outside the inscribed circle"


def _psnr(x, ref):
    return 10 * np.log10(1.0 / np.mean((np.asarray(x) - np.asarray(ref)) ** 2))


def _phantom(n):
    return resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)


def _disc(n):
    yy, xx = np.mgrid[:n, :n]
    return (yy - n // 2) ** 2 + (xx - n // 2) ** 2 <= (n // 2) ** 2


@st.composite
def geometries(draw):
    circle = draw(st.booleans())
    h = draw(st.integers(2, 17))
    w = h if circle else draw(st.integers(2, 17))
    kind = draw(st.sampled_from(["even", "sparse", "limited", "random"]))
    if kind == "even":
        angles = draw(st.integers(1, 12))
    elif kind == "sparse":
        angles = np.linspace(0, 180, draw(st.integers(1, 4)), endpoint=False).tolist()
    elif kind == "limited":
        lo = draw(st.floats(-90, 90))
        angles = np.linspace(lo, lo + draw(st.floats(1, 60)), draw(st.integers(2, 9))).tolist()
    else:
        angles = draw(st.lists(st.floats(-400, 400), min_size=1, max_size=9))
    n_det = draw(st.one_of(st.none(), st.integers(1, 30)))
    return Radon((h, w) if not circle else h, angles, n_detectors=n_det, circle=circle)


# ------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(A=geometries(), seed=st.integers(0, 2**16))
def test_exact_adjoint_float64_and_float32(A, seed):
    assert dot_test(A, torch.float64, seed=seed) < 1e-10
    # float32: <Ax, y> - <x, A^T y> against the Cauchy-Schwarz scale ||Ax|| ||y|| (random
    # vectors can make <Ax, y> itself small by cancellation, so a ratio to it is not a float32 bound)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((2,) + A.in_shape, generator=g)
    y = torch.randn((2,) + A.out_shape, generator=g)
    Ax, ATy = A(x), A.adjoint(y)
    lhs, rhs = float((Ax.double() * y.double()).sum()), float((x.double() * ATy.double()).sum())
    assert abs(lhs - rhs) <= 1e-5 * float(Ax.double().norm() * y.double().norm())


@settings(max_examples=30, deadline=None)
@given(A=geometries(), seed=st.integers(0, 2**16), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_linearity_batching_and_dtype(A, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((2, 3) + A.in_shape, generator=g, dtype=dtype)
    z = torch.randn((2, 3) + A.in_shape, generator=g, dtype=dtype)
    y = A(x)
    assert y.shape == (2, 3) + A.out_shape and y.dtype == dtype
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(A(2.5 * x - z), 2.5 * y - A(z), **tol)
    torch.testing.assert_close(A(x[1, 2]), y[1, 2], **tol)  # batching = per-image application
    b = A.adjoint(y)
    assert b.shape == x.shape and b.dtype == dtype
    torch.testing.assert_close(A.adjoint(y[0, 1]), b[0, 1], **tol)


@pytest.mark.parametrize(
    "geometry", [dict(in_shape=9, angles=7), dict(in_shape=(6, 11), angles=[5.0, 95.0], circle=False)]
)
def test_passes_the_operator_battery(geometry):
    errors = check_operator(Radon(**geometry), batch=(2, 1))
    assert errors["dot64"] < 1e-12 and errors["svd"] < 1e-10


def test_axis_angles_are_column_and_row_sums():
    n = 12
    x = torch.rand(n, n, dtype=torch.float64)
    A = Radon(n, [0.0, 90.0], circle=False)
    xm = x.numpy()
    y = A(x).numpy()
    # 0 degrees integrates along y: pixel column j lands on detector j - n // 2 + n_det // 2
    start = A.n_detectors // 2 - n // 2
    np.testing.assert_allclose(y[0, start:start + n], xm.sum(0), rtol=1e-12)
    # 90 degrees integrates along x; t = y = n // 2 - i points up, so rows arrive reversed
    np.testing.assert_allclose(y[1][n // 2 - np.arange(n) + A.n_detectors // 2], xm.sum(1), rtol=1e-12)
    assert np.count_nonzero(y) == 2 * n


def test_autograd_matches_adjoint():
    A = Radon(5, [10.0, 130.0], circle=False)
    x = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))
    assert torch.autograd.gradgradcheck(lambda v: A.adjoint(A(v)) * v, (x,))
    x = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, *A.out_shape, dtype=torch.float64)
    (g,) = torch.autograd.grad((A(x) * w).sum(), x)
    torch.testing.assert_close(g, A.adjoint(w))


# -------------------------------------------------------- scikit-image
@pytest.mark.parametrize("n", [64, 65])
def test_agrees_with_skimage_on_shepp_logan(n):
    img = _phantom(n)
    theta = np.arange(180.0)
    y = Radon(n, theta)(torch.from_numpy(img)).numpy()
    ref = radon(img, theta, circle=True).T  # scikit-image is (n_detectors, n_angles)
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 0.02


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_agrees_with_skimage_on_random_smooth_images(sigma):
    n = 64
    rng = np.random.default_rng(int(sigma * 10))
    img = gaussian_filter(rng.standard_normal((n, n)), sigma) * _disc(n)
    theta = np.sort(rng.uniform(0, 180, 37))
    y = Radon(n, theta)(torch.from_numpy(img)).numpy()
    ref = radon(img, theta, circle=True).T
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 0.02


@pytest.mark.parametrize("shape", [(40, 40), (31, 24)])
def test_agrees_with_skimage_without_circle(shape):
    rng = np.random.default_rng(1)
    img = gaussian_filter(rng.random(shape), 1.5)
    theta = np.linspace(0, 180, 50, endpoint=False)
    A = Radon(shape, theta, circle=False)
    ref = radon(img, theta, circle=False).T
    assert A.out_shape == ref.shape
    y = A(torch.from_numpy(img)).numpy()
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 0.02


def test_layout_and_angle_count_shortcut():
    A = Radon(10, 4)
    np.testing.assert_allclose(A.angles, [0.0, 45.0, 90.0, 135.0])
    assert A.in_shape == (10, 10) and A.out_shape == (4, 10)
    assert Radon(10, 3, circle=False).n_detectors == int(np.ceil(np.sqrt(2) * 10))


@pytest.mark.parametrize("size, circle", [(9, False), ((37, 21), False), (40, True)])
def test_scipy_views_match_the_operator(size, circle):
    A = Radon(size, [3.0, 77.0, 140.0], circle=circle)  # sizes above 16 use the tiled storage order
    n = A.shape[1]
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *A.in_shape)
    dense = A(eye).reshape(n, -1).T.numpy()  # column p is A e_p, by the torch product
    np.testing.assert_allclose(A.to_scipy_sparse().toarray(), dense, atol=1e-12)
    np.testing.assert_allclose(A.to_dense().numpy(), dense, atol=1e-12)
    v = np.random.default_rng(0).standard_normal(A.shape[0])
    np.testing.assert_allclose(A.to_scipy().rmatvec(v), dense.T @ v, atol=1e-10)
    np.testing.assert_allclose(A.adjoint(torch.from_numpy(v).reshape(A.out_shape)).reshape(-1).numpy(),
                               dense.T @ v, atol=1e-10)


# ------------------------------------------------------------------- FBP
def test_ramp_filters_have_the_expected_shape():
    size = 128
    nu = np.abs(np.fft.fftfreq(size))
    ramp = ramp_filter(size).numpy()
    np.testing.assert_allclose(ramp[size // 2], 1.0, atol=1e-2)  # 2 |nu| at Nyquist
    np.testing.assert_allclose(ramp[1:], 2 * nu[1:], atol=4e-3)  # band-limited ramp ~ 2 |nu|
    assert 0 < ramp[0] < 2 / size
    for name in FILTERS[1:]:
        f = ramp_filter(size, name).numpy()
        assert np.all(f <= ramp + 1e-12) and f[0] == pytest.approx(ramp[0], rel=1e-3)
    y = torch.randn(3, 5, 20)
    assert filter_sinogram(y, None) is y


@pytest.mark.parametrize("filter_name", FILTERS)
def test_fbp_matches_iradon_quick(filter_name):
    n, theta = 64, np.linspace(0, 180, 60, endpoint=False)
    img = _phantom(n)
    A = Radon(n, theta)
    ours = fbp(A(torch.from_numpy(img)), A, filter=filter_name).numpy()
    ref = iradon(radon(img, theta, circle=True), theta, filter_name=filter_name, circle=True)
    assert _psnr(ours, img) > _psnr(ref, img) - 0.5
    # from the same (scikit-image) sinogram the two reconstructions are close
    same = fbp(torch.from_numpy(radon(img, theta, circle=True).T.copy()), A, filter=filter_name).numpy()
    assert np.linalg.norm(same - ref) / np.linalg.norm(ref) < 0.03


@pytest.mark.slow
@pytest.mark.parametrize("filter_name", FILTERS)
def test_fbp_psnr_within_half_db_of_iradon_256(filter_name):
    n, theta = 256, np.linspace(0, 180, 180, endpoint=False)
    img = _phantom(n)
    A = Radon(n, theta)
    ours = fbp(A(torch.from_numpy(img)), A, filter=filter_name).numpy()
    ref = iradon(radon(img, theta, circle=True), theta, filter_name=filter_name, circle=True)
    assert _psnr(ours, img) > _psnr(ref, img) - 0.5


def test_fbp_bad_input():
    A = Radon(8, 5)
    with pytest.raises(TypeError, match="Radon"):
        fbp(torch.zeros(5, 8), "not an operator")
    with pytest.raises(ValueError, match="sinogram"):
        fbp(torch.zeros(5, 9), A)
    with pytest.raises(ValueError, match="filter"):
        fbp(torch.zeros(5, 8), A, filter="gauss")


# ------------------------------------------------------------------- SVD
def test_dense_svd_rebuilds_the_operator():
    A = Radon(8, 10)
    F = A.svd()
    dense = A.to_dense()
    s_ref = np.linalg.svd(dense.numpy(), compute_uv=False)
    np.testing.assert_allclose(F.s.numpy(), s_ref[: F.s.numel()], rtol=1e-10, atol=1e-10)
    x = torch.randn(3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(F.forward(x), A(x))
    U, V = F.U.to_dense(), F.V.to_dense()
    eye = torch.eye(F.s.numel(), dtype=torch.float64)
    torch.testing.assert_close(U.T @ U, eye)
    torch.testing.assert_close(V.T @ V, eye)
    assert float(V[~A.circle_mask().reshape(-1)].abs().max()) == 0.0
    assert A.norm() == pytest.approx(float(s_ref[0]), rel=1e-12)


def test_truncated_svd_gives_the_top_singular_values():
    A = Radon(10, [0.0, 20.0, 50.0, 95.0, 140.0], circle=False)
    s_ref = np.linalg.svd(A.to_dense().numpy(), compute_uv=False)
    F = A.svd(k=6)
    np.testing.assert_allclose(F.s.numpy(), s_ref[:6], rtol=1e-8)
    x = torch.randn(10, 10, dtype=torch.float64)
    # A^T A restricted to the top singular space acts as diag(s^2)
    z = F.V.adjoint(A.adjoint(A(F.V(torch.ones(6, dtype=torch.float64)))))
    torch.testing.assert_close(z, F.s**2)
    assert F.U(F.U.adjoint(A(x))).shape == A.out_shape


def test_svd_disk_cache_round_trip(tmp_path):
    A = Radon(6, 7)
    F = A.svd(cache_dir=tmp_path)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npz")
    B = Radon(6, 7)  # a fresh operator reads the file
    G = B.svd(cache_dir=tmp_path)
    torch.testing.assert_close(G.s, F.s, rtol=0, atol=0)
    assert Radon(6, 8).svd(cache_dir=tmp_path).s.numel() == F.s.numel()  # other geometry
    assert len(os.listdir(tmp_path)) == 2


def test_svd_refuses_requests_that_do_not_fit():
    assert Radon(8, 5).has_svd
    A = Radon(128, 90)
    assert not A.has_svd
    with pytest.raises(ValueError, match="GiB"):
        A.svd()
    with pytest.raises(ValueError, match="max_bytes"):
        A.svd(k=10, max_bytes=1000)
    with pytest.raises(ValueError, match="k must be"):
        A.svd(k=0)


# ------------------------------------------------------ input checking
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_shape=8, angles=[]), "angles must not be empty"),
        (dict(in_shape=8, angles=[0.0, float("nan")]), "angles must be finite"),
        (dict(in_shape=8, angles=[0.0, float("inf")]), "angles must be finite"),
        (dict(in_shape=8, angles=0), "angles"),
        (dict(in_shape=8, angles=[[0.0, 1.0]]), "angles must be 1-D"),
        (dict(in_shape=(8, 10), angles=4), "in_shape: circle=True needs a square"),
        (dict(in_shape=(8, 10, 3), angles=4, circle=False), "in_shape"),
        (dict(in_shape=0, angles=4), "in_shape"),
        (dict(in_shape=8, angles=4, n_detectors=0), "n_detectors"),
        (dict(in_shape=8, angles=4, max_bytes=0), "max_bytes"),
    ],
)
def test_bad_geometry(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Radon(**kwargs)


def test_bad_application_inputs():
    A = Radon(8, 3)
    with pytest.raises(ValueError, match="trailing shape"):
        A(torch.zeros(2, 8, 9))
    with pytest.raises(ValueError, match="trailing shape"):
        A.adjoint(torch.zeros(3, 9))
    with pytest.raises(TypeError, match="torch.Tensor"):
        A(np.zeros((8, 8)))
    with pytest.raises(TypeError, match="circle"):
        Radon(8, 3, circle="yes")


# ----------------------------------------------------------- config etc.
def test_config_round_trip():
    A = Radon((9, 12), [0.0, 33.3, 91.0], n_detectors=17, circle=False)
    cfg = json.loads(json.dumps(A.to_config()))
    B = from_config(cfg)
    assert isinstance(B, Radon) and B.to_config() == cfg
    x = torch.randn(9, 12, dtype=torch.float64)
    torch.testing.assert_close(B(x), A(x), rtol=0, atol=0)


def test_same_geometry_shares_the_system_matrix():
    A, B = Radon(20, 11), Radon(20, 11)
    assert A._A is B._A and A._AT is B._AT
    assert Radon(20, 12)._A is not A._A


def test_system_matrix_disk_cache(tmp_path):
    angles = [3.0, 47.0, 101.0]
    A = Radon(13, angles, cache_dir=tmp_path)
    files = [f for f in os.listdir(tmp_path) if f.startswith("radon_system_")]
    assert len(files) == 1
    dense = A.to_dense()
    del A
    cache.clear_memory_cache()
    B = Radon(13, angles, cache_dir=tmp_path)  # read back from the file
    torch.testing.assert_close(B.to_dense(), dense, rtol=0, atol=0)
    assert dot_test(B) < 1e-12
    Radon(13, angles + [150.0], cache_dir=tmp_path)
    assert len([f for f in os.listdir(tmp_path) if f.startswith("radon_system_")]) == 2


def test_complex_inputs_map_real_and_imaginary_parts():
    A = Radon(6, 4)
    x = torch.randn(6, 6, dtype=torch.complex128)
    torch.testing.assert_close(A(x), torch.complex(A(x.real), A(x.imag)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    A = Radon(16, 9)
    x = torch.randn(2, 16, 16)
    Ac = Radon(16, 9).to("cuda")
    torch.testing.assert_close(Ac(x.cuda()).cpu(), A(x), rtol=1e-4, atol=1e-4)
    assert dot_test(Ac, torch.float64) < 1e-10


def test_in_shape_forms_and_configs_written_before_the_rename():
    A = Radon(in_shape=(7, 7), angles=3)
    assert A.in_shape == Radon(7, 3).in_shape == (7, 7)
    assert A.to_config()["in_shape"] == [7, 7]
    old = {"type": "Radon", "image_size": [7, 7], "angles": A.angles.tolist(), "n_detectors": 7,
           "circle": True}
    x = torch.randn(7, 7, dtype=torch.float64) * A.circle_mask()
    torch.testing.assert_close(from_config(old)(x), A(x), rtol=0, atol=0)


# ----------------------------------------------------- untrusted sizes
def test_refuses_geometries_above_max_bytes_before_building():
    with pytest.raises(ValueError, match=r"angles.*GiB.*max_bytes"):
        Radon(16, 10**7)  # would be about 110 GiB: refused from the estimate alone
    with pytest.raises(ValueError, match="max_bytes"):
        Radon(8, [0.0, 45.0], max_bytes=1000)
    need = radon_matrix_nbytes(8, [0.0, 45.0])
    assert Radon(8, [0.0, 45.0], max_bytes=need).nbytes <= need
    # the largest documented geometries stay within the default
    assert radon_matrix_nbytes(512, 360) < MAX_BYTES
    assert radon_matrix_nbytes(512, 360, circle=False) < MAX_BYTES


@pytest.mark.parametrize("geometry", [dict(in_shape=12, angles=5),
                                      dict(in_shape=(9, 14), angles=7, circle=False),
                                      dict(in_shape=10, angles=[3.0, 91.0, 200.0], n_detectors=13)])
def test_size_estimate_is_close_to_the_built_size(geometry):
    A = Radon(**geometry)
    est = radon_matrix_nbytes(**geometry)
    assert 0.8 * A.nbytes < est < 1.3 * A.nbytes + 1000


# ------------------------------------------------- content outside the circle
def test_warns_when_content_outside_the_circle_is_ignored():
    A = Radon(12, 5)
    inside = torch.rand(3, 12, 12, dtype=torch.float64) * A.circle_mask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A(inside)
        A(inside.float())
        A(inside + 1e-10 * (~A.circle_mask()))  # rounding-level content (< sqrt(eps) of the norm)
        Radon(12, 5, circle=False)(torch.rand(12, 12))
    x = inside.clone()
    x[1, 0, 0] = 0.1  # one corner pixel of one image of the batch
    with pytest.warns(UserWarning, match=OUTSIDE):
        A(x)
    with pytest.warns(UserWarning, match=OUTSIDE):
        A(x.to(torch.complex128))
    with pytest.warns(UserWarning, match=OUTSIDE):
        A.H.adjoint(x)  # the adjoint of A.H is A


def test_adjoint_and_gradients_never_warn():
    A = Radon(12, 5)
    y = torch.randn(2, *A.out_shape, dtype=torch.float64)
    x = (torch.rand(2, 12, 12, dtype=torch.float64) * A.circle_mask()).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = A.adjoint(y)
        A.H(y)
        assert float(b[..., ~A.circle_mask()].abs().max()) == 0.0
        (A(x) * y).sum().backward()  # backward runs the adjoint product
        torch.autograd.grad((A.adjoint(y.requires_grad_()) ** 2).sum(), y)  # ... and the projection
        A.to_dense()


# --------------------------------------------------- the disk caches
def _only(folder, prefix):
    files = [f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(".npz")]
    assert len(files) == 1, files
    return os.path.join(folder, files[0])


def _rewrite(path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k].copy() for k in z.files}
    for name, fn in changes.items():
        fn(arrays[name])
    np.savez(path, **arrays)  # a valid zip whose content is wrong


def _set(i, value):
    def fn(a):
        a[i] = value
    return fn


SYSTEM_FAULTS = {
    "out-of-range index": dict(indices=_set(5, 10**6)),
    "negative index": dict(indices_t=_set(3, -1)),
    "decreasing indptr": dict(indptr=lambda a: a.__setitem__(len(a) // 2, a[-1])),
    "NaN value": dict(data_t=_set(7, np.nan)),
}


@pytest.mark.parametrize("fault", [*SYSTEM_FAULTS, "truncated file", "wrong geometry"])
def test_a_faulty_system_cache_file_is_rebuilt_with_a_warning(tmp_path, fault):
    angles = [10.0, 60.0, 130.0]
    Radon(9, angles, cache_dir=tmp_path)
    path = _only(tmp_path, "radon_system_")
    if fault == "truncated file":
        with open(path, "r+b") as fh:
            fh.truncate(os.path.getsize(path) // 2)
    elif fault == "wrong geometry":
        other = tmp_path / "other"
        Radon(9, angles + [170.0], cache_dir=other)
        shutil.copyfile(_only(other, "radon_system_"), path)
    else:
        _rewrite(path, **SYSTEM_FAULTS[fault])
    cache.clear_memory_cache()
    fresh = Radon(9, angles)  # built from scratch, no disk cache
    cache.clear_memory_cache()
    with pytest.warns(UserWarning, match=re.escape(path)):
        A = Radon(9, angles, cache_dir=tmp_path)
    x = torch.randn(2, 9, 9, dtype=torch.float64) * A.circle_mask()
    y = torch.randn(2, *A.out_shape, dtype=torch.float64)
    torch.testing.assert_close(A(x), fresh(x), rtol=0, atol=0)
    torch.testing.assert_close(A.adjoint(y), fresh.adjoint(y), rtol=0, atol=0)
    cache.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file was rewritten: read back without complaint
        B = Radon(9, angles, cache_dir=tmp_path)
    torch.testing.assert_close(B(x), fresh(x), rtol=0, atol=0)


SVD_FAULTS = {
    "NaN value": dict(s=_set(0, np.nan)),
    "corrupted U": dict(u=lambda a: a.__setitem__((0, 0), a[0, 0] + 0.5)),
    "increasing s": dict(s=lambda a: a.__setitem__(slice(None), a[::-1].copy())),
    "flipped U column": dict(u=lambda a: a.__setitem__((slice(None), 0), -a[:, 0])),  # still orthonormal
}


@pytest.mark.parametrize("fault", [*SVD_FAULTS, "truncated file", "wrong geometry"])
@pytest.mark.parametrize("k", [None, 4])
def test_a_faulty_svd_cache_file_is_recomputed_with_a_warning(tmp_path, fault, k):
    A = Radon(8, 9)
    F = A.svd(k, cache_dir=tmp_path)
    path = _only(tmp_path, "radon_svd_")
    if fault == "truncated file":
        with open(path, "r+b") as fh:
            fh.truncate(os.path.getsize(path) - 100)
    elif fault == "wrong geometry":
        other = tmp_path / "other"
        Radon(8, 10).svd(k, cache_dir=other)
        shutil.copyfile(_only(other, "radon_svd_"), path)
    else:
        _rewrite(path, **SVD_FAULTS[fault])
    with pytest.warns(UserWarning, match=re.escape(path)):
        G = Radon(8, 9).svd(k, cache_dir=tmp_path)
    torch.testing.assert_close(G.s, F.s, rtol=0, atol=0)
    x = torch.randn(8, 8, dtype=torch.float64) * A.circle_mask()
    torch.testing.assert_close(G.forward(x), F.forward(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H = Radon(8, 9).svd(k, cache_dir=tmp_path)  # rewritten
    torch.testing.assert_close(H.s, F.s, rtol=0, atol=0)


def test_cache_dirs_expand_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    A = Radon(6, [0.0, 50.0], cache_dir="~/systems")
    A.svd(cache_dir="~/svds")
    A.svd(k=2, cache_dir="~/svds")
    assert not (tmp_path / "~").exists()
    _only(tmp_path / "home" / "systems", "radon_system_")
    assert len(os.listdir(tmp_path / "home" / "svds")) == 2
    with pytest.raises(TypeError, match="cache_dir"):
        A.svd(cache_dir=3)


def test_top_k_svd_is_the_generic_truncated_svd():
    A = Radon(9, 12)
    F, G = A.svd(k=5), truncated_svd(A, 5)
    torch.testing.assert_close(F.s, G.s, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="k must be"):
        A.svd(k=2.5)
