"""Fault injection for the classical solvers: each wrong or extreme input is either handled
sensibly or reported (an error naming the argument, or an :class:`IllConditionedWarning`),
never returned silently wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import data

from physinv import psf
from physinv.operators import Convolution, Matrix
from physinv.solvers import (
    cgls,
    choose_lambda,
    richardson_lucy,
    soft_threshold,
    tikhonov,
    tsvd,
    wiener,
)
from physinv.solvers.result import MAX_GAIN, IllConditionedWarning

F64 = torch.float64



@pytest.fixture(scope="module")
def camera():
    return torch.tensor(data.camera() / 255.0, dtype=F64)


def psnr(x, ref):
    return float(10 * torch.log10(1.0 / torch.mean((x - ref) ** 2)))


def noisy(A, x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    return A(x) + sigma * torch.randn(A.out_shape, generator=g, dtype=F64)


def no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------ Wiener, overestimated noise
def test_wiener_power_law_with_overestimated_sigma_is_never_zero(camera):
    A = Convolution(psf.motion(15, 30), camera.shape)
    y = noisy(A, camera, 0.01)
    ref = no_warnings(wiener, A, y, 0.01, "power-law").x
    with pytest.warns(IllConditionedWarning, match="overestimated"):
        over = wiener(A, y, 0.03, "power-law").x
    assert float(over.abs().max()) > 0.5  # the old fit clamped the power to ~0: max|x| ~ 2e-13
    assert psnr(over, camera) > psnr(ref, camera) - 3.0
    # the generic (full-spectrum) path has the same robust fit
    with pytest.warns(IllConditionedWarning, match="overestimated"):
        P = wiener(A, y.to(torch.complex128), 0.03, "flat").x
    assert float(P.real.abs().max()) > 0.5


# ------------------------------------------------------ GCV and the L-curve
def test_gcv_denominator_does_not_cancel_at_tiny_lam(camera):
    A = Convolution(psf.motion(9, 0), camera.shape)
    y = noisy(A, camera, 0.01, seed=1)
    lam = choose_lambda(A, y, "gcv")
    wide = choose_lambda(A, y, "gcv", lam_range=(1e-30, 1e12))
    assert wide == pytest.approx(lam, rel=0.05)  # m - sum(phi) cancelled: 1e-30 was returned
    # the curve itself: G(lam) = rho / (sum lam / (s^2 + lam))^2, evaluated independently
    s2 = A.svd().s.reshape(-1) ** 2
    beta2 = (torch.fft.fft2(y, norm="ortho").abs() ** 2).reshape(-1)
    for la in (1e-20, 1e-10, 1e-3):
        q = la / (s2 + la)
        g = float((q * q * beta2).sum() / q.sum() ** 2)
        _, curve = choose_lambda(A, y, "gcv", lam_range=(la, 10 * la), n_grid=2, return_curve=True)
        assert float(curve["gcv"][0, 0]) == pytest.approx(g, rel=1e-6)


def test_lcurve_without_corner_warns_and_falls_back_to_gcv(camera):
    A = Convolution(psf.motion(9, 0), camera.shape)
    y = noisy(A, camera, 0.01, seed=2)
    with pytest.warns(IllConditionedWarning, match="no corner"):
        lam = choose_lambda(A, y, "lcurve")
    assert lam == pytest.approx(choose_lambda(A, y, "gcv"))
    oracle = max(psnr(tikhonov(A, y, float(la)).x, camera) for la in np.logspace(-5, 0, 21))
    # the maximum curvature sat where the flat end bends (lam ~ 1e-5 .. 1e-9): below 12 dB
    assert psnr(tikhonov(A, y, lam).x, camera) > oracle - 4.0


def test_lcurve_with_a_corner_is_kept():
    g = torch.Generator().manual_seed(3)
    A = Convolution(psf.gaussian(2.0), (64, 64))
    x = torch.rand(64, 64, generator=g, dtype=F64)
    y = A(x) + 0.01 * torch.randn(64, 64, generator=g, dtype=F64)
    lam, curve = no_warnings(choose_lambda, A, y, "lcurve", return_curve=True)
    assert bool(curve["corner_found"].all())
    assert lam == pytest.approx(float(curve["lam"][curve["curvature"][0].argmax()]))


# ------------------------------------------------------ amplification bound
def test_unregularised_filters_on_a_wide_blur_warn():
    A = Convolution(psf.gaussian(4.0), (32, 32))
    y = noisy(A, torch.rand(32, 32, generator=torch.Generator().manual_seed(4), dtype=F64), 1e-3)
    for run in (lambda: tikhonov(A, y, 0.0), lambda: tsvd(A, y, rcond=0.0),
                lambda: wiener(A, y, 0.0)):
        with pytest.warns(IllConditionedWarning, match="amplifies"):
            run()
    # inside the documented bound: no warning, also at the edge rcond = 1 / MAX_GAIN
    no_warnings(tikhonov, A, y, 1e-3)
    no_warnings(tsvd, A, y, rcond=1.0 / MAX_GAIN)
    no_warnings(wiener, A, y, 1e-3)


def test_exact_transfer_zeros_stay_zeros():
    A = Convolution(torch.full((2, 1), 0.5, dtype=F64), (64, 64))  # zero at the row Nyquist index
    assert float(A.svd().s.min()) == 0.0
    y = noisy(A, torch.rand(64, 64, generator=torch.Generator().manual_seed(5), dtype=F64), 0.0)
    F = A.svd()
    xs = [tikhonov(A, y, 0.0).x, torch.as_tensor(F.tikhonov(y, 0.0)), tsvd(A, y, rcond=0.0).x,
          tikhonov(A, y, 0.0, factorization=F).x]
    for x in xs:
        assert 0.5 < float(x.abs().max()) < 2.0  # not 1/rounding ~ 1e29
        torch.testing.assert_close(x, xs[0], rtol=0, atol=1e-12)


# ------------------------------------------------------ CGLS at rounding level
def test_cgls_float32_stops_at_rounding_level_and_matches_float64():
    g = torch.Generator().manual_seed(6)
    A = Convolution(psf.gaussian(2.0), (64, 64))
    x = torch.rand(64, 64, generator=g, dtype=F64)
    y = A(x) + 0.01 * torch.randn(64, 64, generator=g, dtype=F64)
    r64 = cgls(A, y, n_iter=3000, tol=None, damp=0.03)
    r32 = cgls(A, y.float(), n_iter=3000, tol=None, damp=0.03)
    assert r32.x.dtype == torch.float32 and r32.info["stop_reason"] == "rounding"
    assert r32.n_iter < 3000 and r32.converged
    assert float((r32.x.double() - r64.x).abs().max()) < 1e-4
    # undamped and far past convergence: bounded (it used to run to ~1e11), the best iterate kept
    u = cgls(A, y.float(), n_iter=3000, tol=None)
    assert u.info["stop_reason"] == "rounding" and bool(torch.isfinite(u.x).all())
    assert float(u.x.abs().max()) < 10.0
    # the stopping reasons of a batch
    rb = cgls(A, torch.stack([y, y]), n_iter=5)
    assert rb.info["stop_reason"] == ["n_iter", "n_iter"]


# ------------------------------------------------------ refused input
def test_richardson_lucy_refuses_a_negative_operator():
    k = torch.tensor([[0.5, -0.2, 0.7]], dtype=F64)
    y = torch.rand(16, 16, generator=torch.Generator().manual_seed(7), dtype=F64)
    with pytest.raises(ValueError, match="non-negative PSF"):
        richardson_lucy(Convolution(k, (16, 16)), y)
    with pytest.raises(ValueError, match=r"A\.M"):
        richardson_lucy(Matrix(torch.tensor([[1.0, -0.5], [0.2, 1.0]], dtype=F64)),
                        torch.rand(2, dtype=F64))


def test_soft_threshold_refuses_a_negative_threshold():
    z = torch.tensor([-1.0, 2.0])
    with pytest.raises(ValueError, match="threshold"):
        soft_threshold(z, -0.1)
    with pytest.raises(ValueError, match="threshold"):
        soft_threshold(z, torch.tensor([0.1, -0.1]))
    with pytest.raises(TypeError, match="threshold"):
        soft_threshold(z, "1")
    with pytest.raises(TypeError, match="threshold"):
        soft_threshold(z, True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_data_are_refused(bad):
    A = Convolution(psf.gaussian(1.0), (16, 16))
    y = torch.rand(16, 16, dtype=F64)
    y[3, 4] = bad
    for run in (lambda: tikhonov(A, y, 0.1), lambda: cgls(A, y), lambda: richardson_lucy(A, y.abs()),
                lambda: wiener(A, y, 0.1), lambda: choose_lambda(A, y)):
        with pytest.raises(ValueError, match="non-finite"):
            run()


def test_wrong_types_name_the_argument():
    A = Convolution(psf.gaussian(1.0), (16, 16))
    y = torch.rand(16, 16, dtype=F64)
    with pytest.raises(ValueError, match="lam"):
        tikhonov(A, y, "1")
    with pytest.raises(TypeError, match="lam"):
        tikhonov(A, y, True)
    for n in (True, 2.5, "3"):
        with pytest.raises(ValueError, match="n_iter"):
            cgls(A, y, n_iter=n)
    with pytest.raises(TypeError, match="damp"):
        cgls(A, y, damp="0.1")
    with pytest.raises(TypeError, match="surrogate"):
        tikhonov(Convolution(psf.gaussian(1.0), (16, 16), "reflect"), y, "gcv", surrogate=1)


# ------------------------------------------------------ fast parameter choice without a factorization
def test_boundary_aware_tikhonov_chooses_lam_on_the_circular_surrogate(camera):
    x = camera[::4, ::4].contiguous()  # 128 x 128
    A = Convolution(psf.motion(9, 30), x.shape, boundary="reflect")
    y = noisy(A, x, 0.01, seed=8)
    C = Convolution(psf.motion(9, 30), x.shape)
    r = tikhonov(A, y, "discrepancy", noise_sigma="gcv")
    assert r.info["lam_from"] == "circular surrogate" and r.info["method"] == "cg" and r.converged
    assert r.info["lam"] == pytest.approx(choose_lambda(C, y, "discrepancy", noise_sigma="gcv"))
    # the exact boundary-aware problem is solved: its normal equations hold
    lam = r.info["lam"]
    g = A.adjoint(A(r.x) - y) + lam * r.x
    assert float(g.norm() / A.adjoint(y).norm()) < 1e-5
    # at least as good as the circular closed form, which rings at the borders
    assert psnr(r.x, x) > psnr(tikhonov(C, y, lam).x, x)
    with pytest.raises(ValueError, match="surrogate"):
        tikhonov(Matrix(torch.eye(3, dtype=F64)), torch.ones(3, dtype=F64), "gcv", surrogate=True)


@pytest.mark.slow
def test_boundary_aware_surrogate_agrees_with_the_exact_rule(camera):
    x = camera[::8, ::8].contiguous()  # 64 x 64: the exact iterative rule is affordable
    A = Convolution(psf.motion(7, 0), x.shape, boundary="reflect")
    y = noisy(A, x, 0.01, seed=9)
    fast = tikhonov(A, y, "gcv")
    exact = tikhonov(A, y, "gcv", surrogate=False, n_iter=300)
    assert exact.info["lam_from"] == "iterative"
    # the iterative rule has a 12-point grid over 6 decades (a factor 3.5 per step) and a
    # 4-probe trace estimate: agreement to about one grid step, and in the PSNR
    assert abs(np.log10(fast.info["lam"] / exact.info["lam"])) < 0.75
    assert psnr(fast.x, x) > psnr(exact.x, x) - 1.0
