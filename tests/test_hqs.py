"""UnrolledHQS: at initialisation it is plug-and-play HQS with the same prior and schedule; with an
identity prior one layer is the closed-form data step; every learned quantity gets a gradient."""

from __future__ import annotations

import pytest
import torch

from physinv import psf
from physinv.nets.denoiser import Denoiser
from physinv.nets.hqs import UnrolledHQS
from physinv.operators import Convolution, Radon
from physinv.solvers import tikhonov
from physinv.solvers.pnp import pnp


class IdentityPrior(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, sigma):
        return x


def _data(A, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, *A.in_shape, generator=g)
    if getattr(A, "circle", False):
        x = x * A.circle_mask()
    return A(x) + 0.02 * torch.randn(2, *A.out_shape, generator=g)


@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_at_initialisation_it_is_plug_and_play_hqs(boundary):
    A = Convolution(psf.gaussian(1.5), (16, 16), boundary=boundary)
    D = Denoiser(depth=3, channels=4)
    net = UnrolledHQS(A, prior=D, n_layers=4, noise_sigma=0.02, cg_iter=10)
    y = _data(A)
    ref = pnp(A, y, D, 0.02, n_iter=4, cg_iter=10).x
    torch.testing.assert_close(net(y), ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net(y[1]), net(y)[1], rtol=1e-5, atol=1e-6)


def test_identity_prior_one_layer_is_the_closed_form_data_step():
    A = Convolution(psf.gaussian(1.5), (12, 12))
    net = UnrolledHQS(A, prior=IdentityPrior(), n_layers=1, noise_sigma=0.05).double()
    y = _data(A).double()
    alpha = float(net.schedule()[1][0].detach())
    torch.testing.assert_close(net(y), y + tikhonov(A, y - A(y), alpha).x)


def test_gradients_reach_the_prior_and_the_schedule_and_never_the_physics():
    A = Convolution(psf.gaussian(1.5), (16, 16))
    D = Denoiser(depth=3, channels=4)
    net = UnrolledHQS(A, prior=D, n_layers=3, noise_sigma=0.02, shared=False)
    assert len(net.priors) == 3 and net.priors[0] is not net.priors[1]
    net(_data(A)).square().mean().backward()
    assert (net.log_alpha.grad != 0).all() and (net.log_sigma.grad != 0).all()
    assert all(p.priors[0].body[0].weight.grad is not None for p in [net])
    assert not any(n.startswith("A") for n, _ in net.named_parameters())


def test_radon_without_a_factorization_uses_cg():
    A = Radon(12, 8)
    net = UnrolledHQS(A, prior=Denoiser(depth=3, channels=4), n_layers=2, noise_sigma=0.02, cg_iter=5)
    out = net(_data(A))
    assert out.shape == (2, 12, 12) and torch.isfinite(out).all()


def test_bad_arguments_name_the_argument():
    A = Convolution(psf.gaussian(1.0), (12, 12))
    D = Denoiser(depth=3, channels=4)
    with pytest.raises(ValueError, match="n_layers must be a positive int"):
        UnrolledHQS(A, prior=D, n_layers=2.5)
    with pytest.raises(ValueError, match="prior must be a module or 'pretrained'"):
        UnrolledHQS(A, prior="bm3d")
    with pytest.raises(TypeError, match="prior must be an nn.Module"):
        UnrolledHQS(A, prior=lambda x, s: x)
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
        UnrolledHQS(A, prior=D, lam=-1.0)
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        UnrolledHQS(A, prior=D)([1.0])
