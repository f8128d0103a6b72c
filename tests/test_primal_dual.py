"""LearnedPrimalDual: exact A and A^H inside, untrained output is the start, problems stay independent,
gradients reach every update, bad input named."""

from __future__ import annotations

import pytest
import torch

from physinv import psf
from physinv.nets.primal_dual import LearnedPrimalDual
from physinv.operators import Convolution, Radon


@pytest.mark.parametrize("make", [lambda: Radon(12, 8), lambda: Convolution(psf.gaussian(1.0), (10, 12),
                                                                             boundary="valid")])
def test_untrained_output_is_the_start_and_problems_are_independent(make):
    A = make()
    y = torch.rand(3, *A.out_shape)  # any data; the state the network projects stays inside the disc
    assert LearnedPrimalDual(A, n_iter=2, width=4)(y).abs().max() == 0
    adj = LearnedPrimalDual(A, n_iter=2, width=4, start="adjoint")
    torch.testing.assert_close(adj(y), A.adjoint(y) / A.norm() ** 2)
    net = LearnedPrimalDual(A, n_iter=3, width=4)
    for m in net.modules():  # random last layers: a non-trivial network
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    both = net(y)
    for i in range(3):
        torch.testing.assert_close(net(y[i]), both[i], rtol=1e-5, atol=1e-6)
    assert net(y.reshape(3, 1, *A.out_shape)).shape == (3, 1, *A.in_shape)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_untrained_network_started_from_fbp_is_fbp_and_training_moves_it(dtype):
    from physinv.solvers import fbp

    A = Radon(16, 10)
    x = (torch.rand(2, 16, 16, dtype=dtype) * A.circle_mask()).to(dtype)
    y = A(x)
    net = LearnedPrimalDual(A, n_iter=2, width=4, start="fbp").to(dtype)
    torch.testing.assert_close(net(y), fbp(y, A))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = float((net(y) - x).square().mean())
    for _ in range(20):
        opt.zero_grad()
        loss = (net(y) - x).square().mean()
        loss.backward()
        opt.step()
    assert float((net(y) - x).square().mean()) < before


def test_gradients_reach_every_update_through_the_exact_operator():
    A = Radon(12, 8)
    net = LearnedPrimalDual(A, n_iter=2, width=4)
    x = torch.rand(2, 12, 12) * A.circle_mask()
    for _ in range(3):  # zero last layers: the gradient reaches the inner layers from the third step on
        net.zero_grad()
        loss = (net(A(x)) - x).square().mean()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bad_arguments_and_inputs():
    A = Radon(12, 8)
    with pytest.raises(ValueError, match="n_iter must be a positive int"):
        LearnedPrimalDual(A, n_iter=0)
    with pytest.raises(ValueError, match="start must be"):
        LearnedPrimalDual(A, start="sirt")
    with pytest.raises(ValueError, match="start='fbp' needs a Radon operator, got Convolution"):
        LearnedPrimalDual(Convolution(psf.gaussian(1.0), (10, 12)), start="fbp")
    net = LearnedPrimalDual(A, n_iter=1, width=4)
    with pytest.raises(ValueError, match=r"y must have shape \(\.\.\., 8, "):
        net(torch.rand(2, 12, 12))
    with pytest.raises(TypeError, match="float64 but the network is torch.float32"):
        net(torch.rand(2, *A.out_shape, dtype=torch.float64))
