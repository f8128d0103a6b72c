"""Plug-and-play: with a linear denoiser whose proximal objective is known, every variant reaches the
closed-form minimiser; schedules, batching and bad input."""

from __future__ import annotations

import pytest
import torch

from physinv import psf
from physinv.operators import Convolution, Matrix
from physinv.solvers import tikhonov
from physinv.solvers.pnp import pnp, pnp_schedule

f64 = torch.float64
C = 0.5  # D(v) = v / (1 + C): the proximal map of (C/2) ||x||^2


def shrink(v, sigma):
    return v / (1 + C)


def _problem(boundary="circular", seed=0):
    A = Convolution(psf.gaussian(1.2), (12, 14), boundary=boundary)
    g = torch.Generator().manual_seed(seed)
    y = A(torch.rand(3, 12, 14, generator=g, dtype=f64)) + 0.01 * torch.randn(3, *A.out_shape, generator=g,
                                                                            dtype=f64)
    return A, y


@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_linear_denoiser_fixed_points_are_tikhonov(boundary):
    A, y = _problem(boundary)
    sigma, lam = 0.05, 0.3
    alpha = lam  # constant schedule: sigma_max = noise_sigma gives alpha = lam
    kw = dict(n_iter=300, lam=lam, sigma_max=sigma, cg_iter=200, cg_tol=1e-12)
    # ADMM: x = z at the fixed point and A^H A x + alpha C x = A^H y
    admm = pnp(A, y, shrink, sigma, method="admm", **kw)
    ref = tikhonov(A, y, alpha * C, method="cg", n_iter=500, tol=1e-12).x
    torch.testing.assert_close(admm.x, ref, atol=1e-7, rtol=0)
    # HQS: the data step's x solves (A^H A + alpha C / (1 + C)) x = A^H y; the output is D(x)
    hqs = pnp(A, y, shrink, sigma, method="hqs", **kw)
    ref = tikhonov(A, y, alpha * C / (1 + C), method="cg", n_iter=500, tol=1e-12).x / (1 + C)
    torch.testing.assert_close(hqs.x, ref, atol=1e-7, rtol=0)
    assert hqs.info["exact_data_step"] == (boundary == "circular")


def test_proximal_gradient_fixed_point():
    A = Matrix(torch.tensor([[1.0, 0.2], [0.0, 0.5], [0.3, 0.1]], dtype=f64))
    y = torch.tensor([1.0, -0.5, 0.25], dtype=f64)
    r = pnp(A, y, shrink, 0.1, method="pgd", n_iter=2000, sigma_max=0.1)
    L2 = A.norm() ** 2
    torch.testing.assert_close(r.x, tikhonov(A, y, C * L2).x, atol=1e-10, rtol=0)


def test_schedule_and_batched_noise_levels_match_single_problems():
    s = pnp_schedule(0.01, 5, sigma_max=0.16)
    assert s[0] == pytest.approx(0.16) and s[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(s, s[1:]))
    assert pnp_schedule(0.3, 3, sigma_max=0.1) == pytest.approx([0.3, 0.3, 0.3])
    A, y = _problem()
    seen = []

    def recording(v, sigma):
        seen.append(sigma.clone())
        return v / (1 + C * sigma[..., None, None] * 10)

    ns = torch.tensor([0.01, 0.02, 0.05], dtype=f64)
    both = pnp(A, y, recording, ns, n_iter=4).x
    torch.testing.assert_close(seen[0], torch.full((3,), 49 / 255, dtype=f64))
    torch.testing.assert_close(seen[-1], ns)
    for i in range(3):
        torch.testing.assert_close(both[i], pnp(A, y[i], recording, float(ns[i]), n_iter=4).x)


def test_float32_module_denoiser_on_float64_data():
    A, y = _problem()
    net = torch.nn.Identity()
    r = pnp(A, y, lambda v, s: net(v), 0.01, n_iter=2)
    assert r.x.dtype == f64 and torch.isfinite(r.x).all()


def test_bad_input_is_refused_with_the_argument_named():
    A, y = _problem()
    with pytest.raises(TypeError, match="denoiser must be callable"):
        pnp(A, y, "bm3d", 0.01)
    with pytest.raises(ValueError, match="method must be"):
        pnp(A, y, shrink, 0.01, method="red")
    with pytest.raises(ValueError, match="noise_sigma must be finite and > 0"):
        pnp(A, y, shrink, 0.0)
    with pytest.raises(ValueError, match="noise_sigma must be finite and > 0"):
        pnp(A, y, shrink, torch.tensor([0.01, -1.0, 0.01]))
    with pytest.raises(TypeError, match="lam must be a real number"):
        pnp(A, y, shrink, 0.01, lam="0.2")
    with pytest.raises(ValueError, match="n_iter"):
        pnp(A, y, shrink, 0.01, n_iter=0)
    with pytest.raises(ValueError, match="non-finite"):
        pnp(A, torch.full_like(y, float("nan")), shrink, 0.01)
    with pytest.raises(ValueError, match="must return a tensor of the shape"):
        pnp(A, y, lambda v, s: v[..., :3], 0.01)
