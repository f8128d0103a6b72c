"""The two-FFT path is reached through the factorization: any operator whose exact factorization is a
FourierFactorization (a circular convolution, a real multiple of one, its adjoint, a user subclass)
takes it, in every solver and network, and agrees with the generic path to rounding."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from physinv import psf, solvers
from physinv.nets import SpectralFilterNet, UnrolledISTA, UnrolledLandweber
from physinv.operators import (
    Adjoint,
    Convolution,
    FourierFactorization,
    LinearOperator,
    Wavelet2D,
)
from physinv.testing import GenericFactorized

f64 = torch.float64
SHAPE = (12, 10)


class UserBlur(Convolution):
    """A user's subclass of Convolution: same physics, another class."""





def _psf() -> torch.Tensor:
    """A smooth non-symmetric blur (a complex transfer function, so A^H differs from A)."""
    k = psf.gaussian(1.2, 5).to(f64) * (1 + 0.5 * torch.arange(5, dtype=f64))[None, :]
    return k / k.sum()


def _operators(shape=SHAPE) -> dict[str, LinearOperator]:
    A = Convolution(_psf(), shape)
    return {"A": A, "2*A": 2.0 * A, "-0.5*A": -0.5 * A, "A.H": A.H, "A.H.H": A.H.H,
            "Adjoint(A.H)": Adjoint(A.H), "subclass": UserBlur(_psf(), shape)}


OPS = list(_operators())


def _data(B: LinearOperator, batch=(2,), noise=0.01, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch + B.in_shape, generator=g, dtype=f64)
    return B(x) + noise * torch.randn(batch + B.out_shape, generator=g, dtype=f64)


@contextlib.contextmanager
def half_spectrum_only():
    """Fail on any full-spectrum FFT or full-spectrum ``s``/``U`` of a FourierFactorization; count rfft2."""
    calls = {"rfft2": 0}
    rfft2 = torch.fft.rfft2

    def counted(*args, **kwargs):
        calls["rfft2"] += 1
        return rfft2(*args, **kwargs)

    def forbidden(name):
        def fail(*args, **kwargs):
            raise AssertionError(f"{name} was used: the full-spectrum path was taken")
        return fail

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.fft, "rfft2", counted)
        for name in ("fft2", "ifft2", "fftn", "ifftn"):
            mp.setattr(torch.fft, name, forbidden(f"torch.fft.{name}"))
        for name in ("s", "U"):
            mp.setattr(FourierFactorization, name, property(forbidden(f"FourierFactorization.{name}")))
        yield calls


def test_the_probe_catches_the_generic_path():
    """The generic path (a plain Factorization) does run a full-spectrum FFT: the probe can fail."""
    B = _operators()["2*A"]
    y = _data(B)
    with pytest.raises(AssertionError, match="full-spectrum"), half_spectrum_only():
        solvers.tikhonov(GenericFactorized(B), y, 0.01)


@pytest.mark.parametrize("name", OPS)
def test_every_fourier_factorization_is_one(name):
    B = _operators()[name]
    assert B.has_svd and isinstance(B.svd(), FourierFactorization)


@pytest.mark.parametrize("name", OPS)
def test_tikhonov_takes_the_two_fft_path(name):
    B = _operators()[name]
    y = _data(B)
    lam = torch.tensor([0.01, 0.1], dtype=f64)
    with half_spectrum_only() as calls:
        fast = solvers.tikhonov(B, y, lam)
    assert calls["rfft2"] == 1  # one forward FFT of y; the residual comes by Parseval
    slow = solvers.tikhonov(GenericFactorized(B), y, lam)
    torch.testing.assert_close(fast.x, slow.x, rtol=1e-12, atol=1e-13)
    assert fast.history["residual"][0] == pytest.approx(slow.history["residual"][0], rel=1e-10)
    # a given FourierFactorization takes the same path, and it is the factorization's own filter
    F = B.svd()
    assert torch.equal(solvers.tikhonov(B, y, 0.01, factorization=F).x, F.tikhonov(y, 0.01))


@pytest.mark.parametrize("name", ["2*A", "A.H", "subclass"])
def test_wiener_takes_the_two_fft_path(name):
    B = _operators()[name]
    y = _data(B, noise=0.02)
    P = torch.full(SHAPE, 0.1, dtype=f64)
    with half_spectrum_only():
        fast = solvers.wiener(B, y, 0.02, signal_psd=P)
        flat = solvers.wiener(B, y, 0.02, "flat").x
        power = solvers.wiener(B, y, 0.02, "power-law").x
    slow = solvers.wiener(GenericFactorized(B), y, 0.02, signal_psd=P)
    torch.testing.assert_close(fast.x, slow.x, rtol=1e-12, atol=1e-13)
    assert fast.history["residual"][0] == pytest.approx(slow.history["residual"][0], rel=1e-10)
    assert bool(torch.isfinite(flat).all()) and bool(torch.isfinite(power).all())
    # the estimated signal models (fitted on the half spectrum) agree with the solve for A itself:
    # the fit of P scales with the operator, so wiener(c A) = wiener(A) / c
    A = _operators()["A"]
    scale = {"2*A": 0.5, "subclass": 1.0}.get(name)
    if scale is not None:
        for x, model in ((flat, "flat"), (power, "power-law")):
            torch.testing.assert_close(x, scale * solvers.wiener(A, y, 0.02, model).x, rtol=1e-10,
                                       atol=1e-12)


@pytest.mark.parametrize("name", ["2*A", "-0.5*A", "Adjoint(A.H)", "subclass"])
def test_choose_lambda_takes_the_half_spectrum_path(name):
    B = _operators()[name]
    y = _data(B, noise=0.02)
    with half_spectrum_only():
        gcv, curve = solvers.choose_lambda(B, y, "gcv", return_curve=True)
        disc = solvers.choose_lambda(B, y, "discrepancy", noise_sigma=0.02)
        lc = solvers.choose_lambda(B, y, "lcurve")
        via = solvers.tikhonov(B, y, "gcv")
    G = GenericFactorized(B)
    gcv_ref, curve_ref = solvers.choose_lambda(G, y, "gcv", return_curve=True)
    torch.testing.assert_close(gcv, gcv_ref, rtol=1e-8, atol=0)
    # the curve where it is well defined: as lam -> 0 both the residual and m - trace go to 0
    # (and the generic path's ||y_perp||^2 = ||y||^2 - ||U^H y||^2 is rounding)
    keep = curve["lam"] > 1e-6 * float(B.svd().half_s.max()) ** 2
    torch.testing.assert_close(curve["gcv"][:, keep], curve_ref["gcv"][:, keep], rtol=1e-9, atol=0)
    torch.testing.assert_close(disc, solvers.choose_lambda(G, y, "discrepancy", noise_sigma=0.02),
                               rtol=1e-8, atol=0)
    torch.testing.assert_close(lc, solvers.choose_lambda(G, y, "lcurve"), rtol=1e-8, atol=0)
    torch.testing.assert_close(via.info["lam"], gcv)


@pytest.mark.parametrize("name", ["2*A", "A.H", "subclass"])
def test_tv_split_takes_the_half_spectrum_path(name):
    B = _operators()[name]
    y = _data(B, batch=(), noise=0.02)
    with half_spectrum_only():
        fast = solvers.tv(B, y, 0.01, n_iter=30, method="split")
    slow = solvers.tv(GenericFactorized(B), y, 0.01, n_iter=30, method="split")
    torch.testing.assert_close(fast.x, slow.x, rtol=1e-10, atol=1e-11)


def test_tsvd_counts_the_kept_values_on_the_half_spectrum():
    for shape in (SHAPE, (9, 7)):
        B = 2.0 * Convolution(_psf(), shape)
        y = _data(B)
        r = solvers.tsvd(B, y, rcond=0.05)
        ref = solvers.tsvd(GenericFactorized(B), y, rcond=0.05)
        assert r.info["k"] == ref.info["k"] == int((B.svd().s > 0.05 * B.svd().s.max()).sum())
        torch.testing.assert_close(r.x, ref.x, rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- networks
@pytest.mark.parametrize("name", ["2*A", "A.H", "Adjoint(A.H)", "subclass"])
def test_spectral_net_takes_the_half_spectrum_path(name):
    B = _operators()[name]
    y = _data(B)
    net = SpectralFilterNet(B, lam=0.05, dtype=f64)
    assert net.filter.shape == (SHAPE[0], SHAPE[1] // 2 + 1)
    for path in ("custom", "autograd"):
        net.fft_path = path
        with half_spectrum_only():
            out = net(y)
        torch.testing.assert_close(out, solvers.tikhonov(GenericFactorized(B), y, 0.05).x, rtol=1e-12,
                                   atol=1e-13)


@pytest.mark.parametrize("name", ["2*A", "-0.5*A", "A.H", "subclass"])
def test_unrolled_fourier_paths_for_any_fourier_factorization(name):
    B = _operators()[name]
    y = _data(B)
    ref = solvers.landweber(B, y, 4).x
    generic = UnrolledLandweber(GenericFactorized(B), 4, dtype=f64)  # layer by layer through A
    torch.testing.assert_close(generic(y), ref)
    for path in ("custom", "autograd", "fused"):
        net = UnrolledLandweber(B, 4, dtype=f64, fft_path=path)
        with half_spectrum_only():
            out = net(y)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
        pre = UnrolledLandweber(B, 4, dtype=f64, fft_path=path, precondition=True)
        torch.testing.assert_close(pre(y), ref, rtol=1e-10, atol=1e-12)
    ista = solvers.ista(B, y, 0.01, 3).x
    for path in ("custom", "autograd"):
        torch.testing.assert_close(UnrolledISTA(B, 3, lam=0.01, dtype=f64, fft_path=path)(y), ista)
    # the gradients of the fused form equal those of the layer-by-layer autograd reference
    grads = {}
    for path in ("autograd", "fused"):
        net = UnrolledLandweber(B, 4, dtype=f64, fft_path=path, precondition=True)
        grads[path] = torch.autograd.grad(net(y).square().sum(), [net.step_factors, net.precond])
    for a, b in zip(grads["autograd"], grads["fused"]):
        torch.testing.assert_close(a, b)


def test_fourier_options_need_a_fourier_factorization():
    G = GenericFactorized(_operators()["A"])
    for kw in ({"fft_path": "fused"}, {"fft_path": "autograd"}, {"precondition": True}):
        with pytest.raises(ValueError, match="FourierFactorization"):
            UnrolledLandweber(G, 3, **kw)
    with pytest.raises(ValueError, match="FourierFactorization"):
        UnrolledISTA(G, 3, fft_path="autograd")
    with pytest.raises(ValueError, match="FourierFactorization"):
        UnrolledLandweber(G, 3).filter_factors()


# ------------------------------------------------------------ shared steps
def test_solvers_and_nets_run_the_same_step():
    """The classical iteration, the solver and the net at initialization: bit for bit the same."""
    A = _operators()["A"]
    y = _data(A)
    steps = [0.5, 1.0, 1.5]
    x = torch.zeros_like(y)
    for t in steps:
        x = solvers.landweber_step(A, x, y, t)
    assert torch.equal(solvers.landweber(A, y, 3, step=steps).x, x)
    assert torch.equal(UnrolledLandweber(A, 3, step=steps, dtype=f64)(y), x)
    W = Wavelet2D(SHAPE, "haar", levels=1)
    lam = 0.02
    x = torch.zeros_like(y)
    for t in steps:
        x = solvers.ista_step(A, x, y, t, lam * t, W)
    assert torch.equal(solvers.ista(A, y, lam, 3, step=steps, transform=W).x, x)
    assert torch.equal(UnrolledISTA(A, 3, transform=W, lam=lam, step=steps, dtype=f64)(y), x)
    # pixel domain, and the coefficients the solver uses for the l1 term
    x1, c = solvers.ista_step(A, torch.zeros_like(y), y, 1.0, 0.01, return_coefficients=True)
    assert torch.equal(x1, c) and torch.equal(x1, solvers.ista(A, y, 0.01, 1, step=1.0).x)


def test_steps_reject_what_is_not_an_operator():
    y = torch.zeros(3, dtype=f64)
    with pytest.raises(TypeError, match="landweber_step: A must be a LinearOperator"):
        solvers.landweber_step(np.eye(3), y, y, 1.0)
    with pytest.raises(TypeError, match="A must be a LinearOperator"):
        solvers.ista_step(np.eye(3), y, y, 1.0, 0.1)
