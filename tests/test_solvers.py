"""Classical solvers: each reaches a known solution or matches a reference implementation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import lsqr

from physinv import psf
from physinv.operators import Convolution, FactorizationError, Identity, Matrix, Wavelet2D
from physinv.solvers import (
    SolverResult,
    cgls,
    choose_lambda,
    estimate_noise,
    fista,
    ista,
    landweber,
    richardson_lucy,
    soft_threshold,
    spectral_filter,
    tikhonov,
    tsvd,
    tv,
    tv_norm,
    wiener,
)

F64 = torch.float64



def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def blur_problem(n=16, sigma_psf=1.5, noise=0.01, batch=(), boundary="circular", seed=0):
    g = gen(seed)
    A = Convolution(psf.gaussian(sigma_psf), (n, n), boundary=boundary)
    x = torch.rand(batch + (n, n), generator=g, dtype=F64)
    y = A(x) + noise * torch.randn(batch + (n, n), generator=g, dtype=F64)
    return A, x, y


def phantom(n=32):
    x = torch.zeros(n, n, dtype=F64)
    x[n // 4: 3 * n // 4, n // 4: 5 * n // 8] = 1.0
    x[n // 8: n // 3, 5 * n // 8: 7 * n // 8] = 0.5
    return x


def dense_tikhonov(D, y, lam):
    n = D.shape[1]
    return torch.linalg.solve(D.T @ D + lam * torch.eye(n, dtype=D.dtype), D.T @ y)


def psnr(x, ref):
    return float(10 * torch.log10(1.0 / torch.mean((x - ref) ** 2)))


# ------------------------------------------------------------ spectral
@pytest.mark.parametrize("m,n", [(12, 7), (6, 9)])
def test_tikhonov_matrix_equals_dense_normal_equations(m, n):
    M = torch.randn(m, n, generator=gen(1), dtype=F64)
    y = torch.randn(3, m, generator=gen(2), dtype=F64)
    r = tikhonov(Matrix(M), y, 0.3)
    ref = dense_tikhonov(M, y.T, 0.3).T
    assert torch.allclose(r.x, ref, atol=1e-12)
    assert r.n_iter == 0 and r.converged and r.info["lam"] == 0.3
    res = torch.linalg.vector_norm(y - r.x @ M.T, dim=-1) / torch.linalg.vector_norm(y, dim=-1)
    assert r.history["residual"][0] == pytest.approx(float(res.mean()), rel=1e-10)


def test_tikhonov_convolution_equals_dense_and_factorization():
    A, _, y = blur_problem(batch=(2,))
    D = A.to_dense()
    ref = dense_tikhonov(D, y.reshape(2, -1).T, 0.02).T.reshape(y.shape)
    r = tikhonov(A, y, 0.02)
    assert torch.allclose(r.x, ref, atol=1e-11)
    # the contract the networks rely on: the factorization's own filter (the solver takes a
    # half-spectrum fast path for circular convolutions: equal to rounding)
    F = A.svd()
    assert torch.allclose(r.x, F.tikhonov(y, 0.02), atol=1e-14)
    assert torch.equal(tikhonov(A, y, 0.02, factorization=F).x, F.tikhonov(y, 0.02))
    y32 = y.float()
    assert torch.allclose(tikhonov(A, y32, 0.02).x, F.tikhonov(y32, 0.02), atol=1e-6)
    # one lam per problem
    lam = torch.tensor([0.02, 0.2], dtype=F64)
    rb = tikhonov(A, y, lam)
    for i in range(2):
        assert torch.allclose(rb.x[i], tikhonov(A, y[i], float(lam[i])).x, atol=1e-13)


def test_tikhonov_cg_fallback_matches_spectral_and_dense():
    A, _, y = blur_problem(batch=(2,))
    hidden = Identity((16, 16)) @ A  # same operator, factorization hidden
    assert not hidden.has_svd
    r = tikhonov(hidden, y, 0.01, tol=1e-12, n_iter=500)
    assert r.info["method"] == "cg" and r.converged
    assert torch.allclose(r.x, tikhonov(A, y, 0.01).x, atol=1e-9)
    Az = Convolution(psf.gaussian(1.5), (16, 16), boundary="zero")
    D = Az.to_dense()
    rz = tikhonov(Az, y, 0.01, tol=1e-12, n_iter=500)
    ref = dense_tikhonov(D, y.reshape(2, -1).T, 0.01).T.reshape(y.shape)
    assert torch.allclose(rz.x, ref, atol=1e-9)
    with pytest.raises(FactorizationError):
        tikhonov(Az, y, 0.01, method="spectral")


def test_tsvd_equals_dense_truncation():
    M = torch.randn(10, 6, generator=gen(3), dtype=F64)
    y = torch.randn(10, generator=gen(4), dtype=F64)
    U, s, Vh = torch.linalg.svd(M, full_matrices=False)
    ref = Vh[:3].T @ ((U[:, :3].T @ y) / s[:3])
    assert torch.allclose(tsvd(Matrix(M), y, k=3).x, ref, atol=1e-12)
    keep = s > 0.5 * s.max()
    k = int(keep.sum())
    ref2 = Vh[:k].T @ ((U[:, :k].T @ y) / s[:k])
    r = tsvd(Matrix(M), y, rcond=0.5)
    assert torch.allclose(r.x, ref2, atol=1e-12) and r.info["k"] == k
    # an operator without a factorization: numerical rank-k SVD
    hidden = Identity(10) @ Matrix(M)
    assert torch.allclose(tsvd(hidden, y, k=3).x, ref, atol=1e-8)
    with pytest.raises(FactorizationError, match="k"):
        tsvd(hidden, y)
    with pytest.raises(ValueError, match="not both"):
        tsvd(Matrix(M), y, k=2, rcond=0.1)


def test_wiener_with_given_power_and_estimated_models():
    A, x, y = blur_problem(n=32, noise=0.02, seed=5)
    F = A.svd()
    P = torch.full((32, 32), 0.1, dtype=F64)
    r = wiener(A, y, 0.02, signal_psd=P)
    assert torch.allclose(r.x, F.wiener(y, 0.02, P), atol=1e-12)
    assert torch.allclose(wiener(A, y, 0.02, signal_psd=P, factorization=F).x, r.x, atol=1e-12)
    # fast (half-spectrum) and generic (factorization) paths agree on the estimated models
    for model in ("flat", "power-law"):
        fast = wiener(A, y, 0.02, signal_psd=model).x
        slow = wiener(A, y, 0.02, signal_psd=model, factorization=F).x
        assert float((fast - slow).norm() / slow.norm()) < 0.02
    # the estimated models give a sensible estimate (better than the blurred data)
    for model in ("flat", "power-law"):
        xr = wiener(A, y, 0.02, signal_psd=model).x
        assert psnr(xr, x) > psnr(y, x) - 3.0
        assert torch.isfinite(xr).all()
    with pytest.raises(ValueError, match="power-law"):
        wiener(Matrix(torch.eye(3, dtype=F64)), torch.ones(3, dtype=F64), 0.1, "power-law")
    with pytest.raises(ValueError, match="signal_psd"):
        wiener(A, y, 0.02, signal_psd="pink")


def test_spectral_filter_any_filter():
    A, x, y = blur_problem()
    r = spectral_filter(A, y, lambda s: s / (s**2 + 0.1))
    assert torch.allclose(r.x, tikhonov(A, y, 0.1).x, atol=1e-14)
    A = Convolution(psf.gaussian(0.6), (16, 16))  # well conditioned: the inverse filter is exact
    r = spectral_filter(A, A(x), lambda s: 1 / s)
    assert r.history["residual"][0] < 1e-12 and torch.allclose(r.x, x, atol=1e-10)


# ------------------------------------------------------ parameter choice
def test_gcv_is_close_to_the_oracle():
    A, x, y = blur_problem(n=32, noise=0.02, seed=7)
    lams = np.logspace(-6, 0, 61)
    errs = [float((tikhonov(A, y, lam).x - x).norm()) for lam in lams]
    best = min(errs)
    lam_gcv = choose_lambda(A, y, "gcv")
    err_gcv = float((tikhonov(A, y, lam_gcv).x - x).norm())
    assert err_gcv <= 1.1 * best
    # lam="gcv" in tikhonov calls the same rule
    r = tikhonov(A, y, "gcv")
    assert r.info["lam"] == pytest.approx(lam_gcv) and r.info["lam_rule"] == "gcv"
    # per-problem choice for a batch
    yb = torch.stack([y, 3 * y])
    lb = choose_lambda(A, yb, "gcv")
    assert lb.shape == (2,)
    assert float(lb[0]) == pytest.approx(lam_gcv, rel=1e-3)


def test_gcv_curve_matches_brute_force():
    A, _, y = blur_problem(n=16, noise=0.02, seed=8)
    lam, curve = choose_lambda(A, y, "gcv", return_curve=True)
    D = A.to_dense()
    m = D.shape[0]
    for j in (30, 40, 55):  # lam from ~1e-6 up (the dense solve is accurate there)
        la = float(curve["lam"][j])
        Ainf = D @ torch.linalg.solve(D.T @ D + la * torch.eye(m, dtype=F64), D.T)
        res = torch.linalg.vector_norm((Ainf - torch.eye(m, dtype=F64)) @ y.reshape(-1)) ** 2
        g = res / (m - torch.trace(Ainf)) ** 2
        assert float(curve["gcv"][0, j]) == pytest.approx(float(g), rel=1e-8)


def test_discrepancy_principle_hits_its_target():
    A, _, y = blur_problem(n=32, noise=0.02, seed=9)
    lam = choose_lambda(A, y, "discrepancy", noise_sigma=0.02, tau=1.05)
    r = tikhonov(A, y, lam)
    res = float((A(r.x) - y).norm())
    assert res == pytest.approx(1.05 * 0.02 * 32, rel=1e-4)
    with pytest.raises(ValueError, match="noise_sigma"):
        choose_lambda(A, y, "discrepancy")


def test_noise_estimate_and_discrepancy_without_known_noise():
    A, x, y = blur_problem(n=64, noise=0.02, batch=(2,), seed=25)
    sig = estimate_noise(A, y)
    assert sig.shape == (2,) and torch.allclose(sig, torch.full((2,), 0.02, dtype=F64), rtol=0.1)
    lam = choose_lambda(A, y, "discrepancy", noise_sigma="gcv")
    ref = choose_lambda(A, y, "discrepancy", noise_sigma=sig)
    assert torch.allclose(lam, ref)
    r = tikhonov(A, y, "discrepancy", noise_sigma="gcv")
    assert torch.allclose(r.info["lam"], ref)
    with pytest.raises(ValueError, match="noise_sigma"):
        choose_lambda(A, y, "discrepancy", noise_sigma="mad")


def test_lcurve_and_iterative_modes_are_sensible():
    A, x, y = blur_problem(n=16, noise=0.02, seed=10)
    lam_s = choose_lambda(A, y, "gcv")
    lam_i = choose_lambda(A, y, "gcv", iterative=True, n_iter=200)
    assert abs(math.log10(lam_i / lam_s)) < 0.5  # within a factor ~3 (Hutchinson trace, coarse grid)
    lam_d = choose_lambda(A, y, "discrepancy", noise_sigma=0.02)
    lam_di = choose_lambda(A, y, "discrepancy", noise_sigma=0.02, iterative=True, n_iter=200)
    assert abs(math.log10(lam_di / lam_d)) < 0.3
    lam_l = choose_lambda(A, y, "lcurve")
    assert 1e-8 < lam_l < 1.0
    lam_li = choose_lambda(A, y, "lcurve", iterative=True, n_iter=200)
    assert 1e-8 < lam_li < 1.0
    with pytest.raises(ValueError, match="method"):
        choose_lambda(A, y, "aic")


# ------------------------------------------------------------- iterative
def test_landweber_reaches_minimum_norm_least_squares():
    M = torch.randn(8, 4, generator=gen(11), dtype=F64) @ torch.randn(4, 10, generator=gen(12), dtype=F64)
    y = torch.randn(8, generator=gen(13), dtype=F64)
    A = Matrix(M)
    r = landweber(A, y, n_iter=3000)
    assert torch.allclose(r.x, torch.linalg.pinv(M) @ y, atol=1e-8)
    obj = np.array(r.history["objective"])
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])  # steepest descent with t <= 1/L^2 is monotone
    # per-iteration steps: the same iteration as the formula
    steps = [0.5 / A.norm() ** 2, 1.0 / A.norm() ** 2, 1.5 / A.norm() ** 2]
    x = torch.zeros(10, dtype=F64)
    for t in steps:
        x = x + t * (M.T @ (y - M @ x))
    assert torch.allclose(landweber(A, y, n_iter=3, step=steps).x, x, atol=1e-14)


def test_landweber_step_bound_and_stopping():
    A, _, y = blur_problem(noise=0.02, seed=14)
    with pytest.raises(ValueError, match="step"):
        landweber(A, y, n_iter=3, step=2.5)
    with pytest.warns(RuntimeWarning, match="convergence bound"):
        landweber(A, y, n_iter=3, step=2.5, check_step="warn")
    with pytest.raises(ValueError, match="n_iter"):
        landweber(A, y, n_iter=3, step=[1.0, 1.0])
    # discrepancy principle: stops at the first iterate whose residual is below the target
    r = landweber(A, y, n_iter=500, noise_sigma=0.02, tau=1.0)
    target = 0.02 * 16
    assert r.converged and r.n_iter < 500
    res = np.array(r.history["residual"]) * float(y.norm())
    assert res[-1] <= target and res[-2] > target
    # relative tolerance
    r2 = landweber(A, y, n_iter=500, tol=1e-3)
    assert r2.converged and r2.n_iter < 500


def test_cgls_matches_scipy_lsqr():
    M = torch.randn(30, 12, generator=gen(15), dtype=F64)
    y = torch.randn(30, generator=gen(16), dtype=F64)
    for damp in (0.0, 0.7):
        r = cgls(Matrix(M), y, n_iter=100, tol=1e-14, damp=damp)
        ref = lsqr(M.numpy(), y.numpy(), damp=damp, atol=1e-15, btol=1e-15, iter_lim=500)[0]
        np.testing.assert_allclose(r.x.numpy(), ref, atol=1e-10)
    A, _, yb = blur_problem(batch=(2,), boundary="zero", seed=17)
    r = cgls(A, yb, n_iter=300, tol=1e-13, damp=0.05)
    for i in range(2):
        ref = lsqr(A.to_scipy(), yb[i].reshape(-1).numpy(), damp=0.05, atol=1e-15, btol=1e-15,
                   iter_lim=2000)[0]
        np.testing.assert_allclose(r.x[i].reshape(-1).numpy(), ref, atol=1e-8)
    assert r.converged and r.history["normal_residual"][-1] <= 1e-13


def test_richardson_lucy_keeps_nonnegativity_and_flux():
    g = gen(18)
    A = Convolution(psf.disk(2.0), (24, 24))
    x = torch.rand(2, 24, 24, generator=g, dtype=F64) ** 3
    y = torch.poisson(200 * A(x), generator=g) / 200
    r = richardson_lucy(A, y, n_iter=30)
    assert bool((r.x >= 0).all())
    assert torch.allclose(r.x.sum(dim=(-2, -1)), y.sum(dim=(-2, -1)), rtol=1e-12)
    kl = np.array(r.history["objective"])
    assert np.all(np.diff(kl) <= 1e-9 * abs(kl[0]))  # EM never increases the Poisson deviance
    with pytest.raises(ValueError, match="non-negative"):
        richardson_lucy(A, y - 1.0, n_iter=3)


def test_ista_iteration_and_monotone_objective():
    A, _, y = blur_problem(n=16, noise=0.02, seed=19)
    W = Wavelet2D((16, 16), "db2")
    L2 = A.norm() ** 2
    # the exact iteration the unrolled networks reproduce
    x = torch.zeros(16, 16, dtype=F64)
    for _ in range(3):
        z = x + (1 / L2) * A.adjoint(y - A(x))
        x = W.adjoint(soft_threshold(W(z), 0.01 / L2))
    r = ista(A, y, 0.01, n_iter=3, transform=W)
    assert torch.allclose(r.x, x, atol=1e-14)
    for transform in (None, W):
        ri = ista(A, y, 0.005, n_iter=60, transform=transform)
        obj = np.array(ri.history["objective"])
        assert np.all(np.diff(obj) <= 1e-12 * obj[0])
        rf = fista(A, y, 0.005, n_iter=60, transform=transform)
        assert rf.history["objective"][-1] < ri.history["objective"][-1]
    # objective is 0.5||Ax-y||^2 + lam ||W x||_1 of the returned iterate
    manual = 0.5 * float((A(rf.x) - y).norm() ** 2) + 0.005 * float(W(rf.x).abs().sum())
    assert rf.history["objective"][-1] == pytest.approx(manual, rel=1e-10)


def test_ista_pixel_domain_solves_lasso_on_identity():
    y = torch.tensor([3.0, 0.5, -2.0, -0.1], dtype=F64)
    r = ista(Identity(4), y, lam=1.0, n_iter=1)
    assert torch.equal(r.x, soft_threshold(y, 1.0))
    rf = fista(Matrix(torch.diag(torch.tensor([2.0, 1.0, 1.0, 0.5], dtype=F64))), y, lam=0.1, n_iter=2000,
               tol=1e-14)
    # KKT of the diagonal lasso: x_i = S_{lam / d_i^2}(y_i / d_i)
    d = torch.tensor([2.0, 1.0, 1.0, 0.5], dtype=F64)
    assert torch.allclose(rf.x, soft_threshold(y / d, 0.1 / d**2), atol=1e-8)


def test_tv_lowers_tv_and_beats_noisy_input():
    g = gen(20)
    x = phantom(32)
    noisy = x + 0.1 * torch.randn(32, 32, generator=g, dtype=F64)
    r = tv(Identity((32, 32)), noisy, lam=0.08, n_iter=200)
    assert float(tv_norm(r.x)) < 0.5 * float(tv_norm(noisy))
    assert psnr(r.x, x) > psnr(noisy, x) + 5.0
    A = Convolution(psf.gaussian(1.0), (32, 32))
    y = A(x) + 0.02 * torch.randn(32, 32, generator=g, dtype=F64)
    rs = tv(A, y, 0.01, n_iter=300, method="split")
    rp = tv(A, y, 0.01, n_iter=600, method="pdhg")
    assert rs.history["objective"][-1] == pytest.approx(rp.history["objective"][-1], rel=2e-3)
    lam_t = float(choose_lambda(A, y, "gcv"))
    assert psnr(rs.x, x) > psnr(tikhonov(A, y, lam_t).x, x)
    rn = tv(A, y, 0.01, n_iter=100, nonneg=True)
    assert rn.info["method"] == "pdhg" and float(rn.x.min()) >= 0.0
    with pytest.raises(ValueError, match="nonneg"):
        tv(A, y, 0.01, n_iter=5, nonneg=True, method="split")


# ------------------------------------------------------- batch & dtypes
@settings(max_examples=12, deadline=None)
@given(batch=st.sampled_from([(), (1,), (3,), (2, 2)]), dtype=st.sampled_from([torch.float32, torch.float64]),
       solver=st.sampled_from(["landweber", "cgls", "ista", "fista", "tv", "richardson_lucy", "tikhonov"]))
def test_batched_solve_equals_independent_solves(batch, dtype, solver):
    A = Convolution(psf.gaussian(1.2, 5), (8, 8))  # computes in the dtype of its input
    g = gen(21)
    y = A(torch.rand(batch + (8, 8), generator=g, dtype=dtype))
    kw = {"n_iter": 7}
    fn = {"landweber": landweber, "cgls": cgls, "ista": ista, "fista": fista, "tv": tv,
          "richardson_lucy": richardson_lucy, "tikhonov": tikhonov}[solver]
    args = (0.01,) if solver in ("ista", "fista", "tv", "tikhonov") else ()
    if solver == "tikhonov":
        kw = {}
    r = fn(A, y, *args, **kw)
    assert isinstance(r, SolverResult) and r.x.shape == batch + (8, 8) and r.x.dtype == dtype
    flat = y.reshape((-1, 8, 8))
    xs = r.x.reshape((-1, 8, 8))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for i in range(flat.shape[0]):
        ri = fn(A, flat[i], *args, **kw)
        assert torch.allclose(xs[i], ri.x, atol=tol, rtol=tol)


def test_per_problem_stopping_freezes_finished_problems():
    A, _, y = blur_problem(batch=(2,), noise=0.0, seed=22)
    y = torch.stack([y[0], y[1] + 0.05 * torch.randn(16, 16, generator=gen(23), dtype=F64)])
    sig = torch.tensor([1e-4, 0.05], dtype=F64)
    r = landweber(A, y, n_iter=300, noise_sigma=sig)
    stopped = r.info["stopped_at"]
    assert stopped.shape == (2,) and int(stopped[1]) < int(stopped[0])
    # the noisy problem stopped early: its iterate equals a plain run of that many iterations
    solo = landweber(A, y[1], n_iter=int(stopped[1]))
    assert torch.allclose(r.x[1], solo.x, atol=1e-12)


def test_callback_progress_and_early_exit():
    A, _, y = blur_problem(seed=24)
    seen = []
    r = landweber(A, y, n_iter=10, callback=lambda k, x: seen.append((k, x.shape)))
    assert [k for k, _ in seen] == list(range(1, 11)) and r.n_iter == 10
    r = fista(A, y, 0.01, n_iter=50, callback=lambda k, x: k >= 4)
    assert r.n_iter == 4 and len(r.history["objective"]) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = cgls(A, y, n_iter=5, tol=None, progress=True)
    assert r.n_iter == 5 and not r.converged


# ------------------------------------------------------------ bad input
def test_bad_input_is_reported_with_the_argument_name():
    A, _, y = blur_problem()
    with pytest.raises(ValueError, match="y must have trailing shape"):
        landweber(A, torch.zeros(8, 8, dtype=F64))
    bad = y.clone()
    bad[0, 0] = float("nan")
    for fn in (landweber, cgls, richardson_lucy):
        with pytest.raises(ValueError, match="non-finite"):
            fn(A, bad)
    with pytest.raises(ValueError, match="non-finite"):
        tikhonov(A, bad, 0.1)
    with pytest.raises(ValueError, match="lam"):
        tikhonov(A, y, -1.0)
    with pytest.raises(ValueError, match="lam"):
        ista(A, y, float("inf"))
    with pytest.raises(ValueError, match="lam"):
        tv(A, y, torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="method"):
        tikhonov(A, y, "aic")
    with pytest.raises(TypeError, match="LinearOperator"):
        landweber(np.eye(3), y)
    with pytest.raises(TypeError, match="torch.Tensor"):
        cgls(A, y.numpy())
    with pytest.raises(ValueError, match="x0"):
        landweber(A, y, x0=torch.zeros(4, 4, dtype=F64))
    with pytest.raises(ValueError, match="transform"):
        ista(A, y, 0.1, transform=Wavelet2D((8, 8)))
    with pytest.raises(ValueError, match="step"):
        fista(A, y, 0.1, step=3.0)
    with pytest.raises(ValueError, match="step"):
        landweber(A, y, step=-1.0)
    with pytest.raises(ValueError, match="noise_sigma"):
        landweber(A, y, noise_sigma=-0.1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_solvers_on_cuda_match_cpu():
    A, _, y = blur_problem(n=16, batch=(2,), seed=26)
    Ag, yg = Convolution(psf.gaussian(1.5), (16, 16)).cuda(), y.cuda()
    W, Wg = Wavelet2D((16, 16), "db2"), Wavelet2D((16, 16), "db2").cuda()
    pairs = [
        (tikhonov(A, y, "gcv").x, tikhonov(Ag, yg, "gcv").x),
        (wiener(A, y, 0.01, "power-law").x, wiener(Ag, yg, 0.01, "power-law").x),
        (cgls(A, y, n_iter=20).x, cgls(Ag, yg, n_iter=20).x),
        (fista(A, y, 0.01, n_iter=20, transform=W).x, fista(Ag, yg, 0.01, n_iter=20, transform=Wg).x),
        (tv(A, y, 0.01, n_iter=20).x, tv(Ag, yg, 0.01, n_iter=20).x),
        (richardson_lucy(A, y.clamp_min(0), n_iter=10).x, richardson_lucy(Ag, yg.clamp_min(0), n_iter=10).x),
    ]
    for cpu, gpu in pairs:
        assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-8)
