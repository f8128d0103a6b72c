"""physinv.nets: equality with the classical solvers at initialization, training, transfer, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import psf, solvers
from physinv.data import textured_phantoms
from physinv.metrics import psnr
from physinv.nets import (
    MLP,
    DataDriven,
    DnCNN,
    HybridNet,
    SpectralFilterNet,
    UNet,
    UnrolledISTA,
    UnrolledLandweber,
)
from physinv.operators import Convolution, FactorizationError, Matrix
from physinv.operators.wavelet import Wavelet2D

f64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Small FFTs are much faster single-threaded on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def phantoms(n: int, size: int, seed: int) -> torch.Tensor:
    """Piecewise-smooth images in [0, 1] (:func:`physinv.data.textured_phantoms`) as a tensor."""
    return torch.from_numpy(textured_phantoms(n, size, seed))


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=f64)


# ----------------------------------------------------------- SpectralFilterNet
@settings(max_examples=12, deadline=None)
@given(H=st.integers(3, 12), W=st.integers(3, 12), lam=st.floats(1e-4, 1.0), k=st.sampled_from([3, 5]))
def test_spectral_net_equals_tikhonov_at_init(H, W, lam, k):
    A = Convolution(psf.gaussian(1.0, k), (max(H, k), max(W, k)))
    y = A(_rand(2, *A.in_shape))
    net = SpectralFilterNet(A, lam=lam, dtype=f64)
    x = net(y)
    torch.testing.assert_close(x, solvers.tikhonov(A, y, lam).x)
    torch.testing.assert_close(x, A.svd().tikhonov(y, lam))


def test_spectral_net_matrix_svd_and_truncated():
    M = torch.randn(12, 9, generator=torch.Generator().manual_seed(0), dtype=f64)
    A = Matrix(M, in_shape=(3, 3), out_shape=(3, 4))
    y = _rand(5, 3, 4)
    net = SpectralFilterNet(A, lam=0.1, dtype=f64)
    torch.testing.assert_close(net(y), solvers.tikhonov(A, y, 0.1).x)
    # dense reference: (M^T M + lam I)^-1 M^T y
    ref = torch.linalg.solve(M.T @ M + 0.1 * torch.eye(9, dtype=f64), M.T @ y.reshape(5, 12).T).T
    torch.testing.assert_close(net(y).reshape(5, 9), ref)
    # a truncated factorization is accepted directly
    Fk = A.svd(k=4)
    netk = SpectralFilterNet(Fk, lam=0.1, dtype=f64)
    torch.testing.assert_close(netk(y), Fk.tikhonov(y, 0.1))


def test_spectral_net_composite_real_operators_give_real_images():
    A = Convolution(psf.gaussian(1.5, 5), (8, 8))
    y = _rand(2, 8, 8)
    for B in (2.0 * A, A.H):
        out = SpectralFilterNet(B, lam=0.1, dtype=f64)(y)
        assert not out.is_complex()
        torch.testing.assert_close(out, B.svd().tikhonov(y, 0.1).real)


def test_spectral_net_only_diagonal_trains():
    A = Convolution(psf.gaussian(1.5, 7), (16, 10))
    net = SpectralFilterNet(A)
    params = dict(net.named_parameters())
    assert list(params) == ["filter"]
    assert params["filter"].shape == (16, 6)
    assert {"s", "phase"} <= {n for n, _ in net.named_buffers()}
    y = A(_rand(2, 16, 10)).float()
    net(y).square().sum().backward()
    assert net.filter.grad is not None and net.filter.grad.abs().sum() > 0


def test_spectral_net_dtype_cast_keeps_physics():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    net = SpectralFilterNet(A, lam=1e-2).double()
    assert net.filter.dtype == f64 and A.tf.is_complex()
    y = A(_rand(2, 16, 16))
    torch.testing.assert_close(net(y), A.svd().tikhonov(y, 1e-2), rtol=1e-5, atol=1e-6)
    # float32 params, float64 input: computed in the input's precision
    assert SpectralFilterNet(A)(y).dtype == f64


def test_spectral_net_trained_reaches_wiener():
    """32 training images, Gaussian PSF, sigma 0.02: within 0.3 dB of the test set's MMSE Wiener filter."""
    size, sigma = 32, 0.02
    A = Convolution(psf.gaussian(1.5, 11), (size, size))
    xtr, xte = phantoms(32, size, seed=0), phantoms(64, size, seed=1)
    g = torch.Generator().manual_seed(5)
    yte = A(xte) + sigma * torch.randn(xte.shape, generator=g, dtype=f64)
    P = (torch.fft.fft2(xte).abs() ** 2).mean(0) / size**2  # unitary normalisation, like s
    wiener = psnr(A.svd().wiener(yte, sigma, P), xte).mean()
    net = SpectralFilterNet(A, lam=1e-2)
    init = psnr(net(yte.float()).double(), xte).mean()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xtr32 = xtr.float()
    for _ in range(300):  # the 32 images are fixed; the noise is redrawn each step
        y = (A(xtr) + sigma * torch.randn(xtr.shape, generator=g, dtype=f64)).float()
        loss = (net(y) - xtr32).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        trained = psnr(net(yte.float()).double(), xte).mean()
    assert trained > init + 0.3
    assert trained >= wiener - 0.3, (float(trained), float(wiener))


def test_parametric_filter_transfers_to_unseen_psf():
    """Trained on Gaussian PSFs 1.5 and 2.5, it beats oracle-lambda Tikhonov on Gaussian 2.0 and a disk."""
    size = 32
    ops = [Convolution(psf.gaussian(s, 11), (size, size)) for s in (1.5, 2.5)]
    xtr, xte = phantoms(32, size, seed=2), phantoms(32, size, seed=3)
    g = torch.Generator().manual_seed(7)
    net = SpectralFilterNet(ops[0], parametric=True, hidden=16)
    n_par = sum(p.numel() for p in net.parameters())
    big = SpectralFilterNet(Convolution(psf.gaussian(1.5, 11), (256, 256)), parametric=True, hidden=16)
    assert sum(p.numel() for p in big.parameters()) == n_par  # independent of the image size
    assert n_par * 50 < 256 * 129  # vs one value per half-spectrum index
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    xtr32 = xtr.float()
    for it in range(200):
        A = ops[it % 2]
        sig = 0.01 + 0.04 * torch.rand(32, generator=g, dtype=f64)
        y = (A(xtr) + sig[:, None, None] * torch.randn(xtr.shape, generator=g, dtype=f64)).float()
        loss = (net(y, sig.float(), A=A) - xtr32).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sigma = 0.02
    for A in (Convolution(psf.gaussian(2.0, 11), (size, size)), Convolution(psf.disk(2.5), (size, size))):
        yte = A(xte) + sigma * torch.randn(xte.shape, generator=g, dtype=f64)
        with torch.no_grad():
            ours = psnr(net(yte.float(), sigma, A=A).double(), xte).mean()
            shared = SpectralFilterNet.from_filter(A, net)
            torch.testing.assert_close(shared(yte.float(), sigma), net(yte.float(), sigma, A=A))
        F = A.svd()
        tik = max(float(psnr(F.tikhonov(yte, lam), xte).mean()) for lam in torch.logspace(-4, 0, 25).tolist())
        P = (torch.fft.fft2(xte).abs() ** 2).mean(0) / size**2
        wiener = float(psnr(F.wiener(yte, sigma, P), xte).mean())
        assert float(ours) > tik, (float(ours), tik, wiener)
        assert float(ours) > wiener - 1.0, (float(ours), tik, wiener)


def test_parametric_net_per_sample_sigma_and_shapes():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    net = SpectralFilterNet(A, parametric=True, hidden=8, dtype=f64)
    y = A(_rand(3, 2, 16, 16))
    sig = torch.tensor([0.01, 0.02, 0.05], dtype=f64)
    out = net(y, sig)
    assert out.shape == y.shape
    for i in range(3):
        torch.testing.assert_close(out[i], net(y[i], float(sig[i])))
    with pytest.raises(ValueError, match="noise_sigma"):
        net(y)
    with pytest.raises(ValueError, match="noise_sigma"):
        net(y, -1.0)


def test_spectral_net_bad_input():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16), boundary="zero")
    with pytest.raises(FactorizationError, match="UnrolledLandweber") as err:
        SpectralFilterNet(A)
    assert "svd(k=" in str(err.value) and "HybridNet" in str(err.value)
    with pytest.raises(TypeError, match="LinearOperator"):
        SpectralFilterNet(torch.eye(3))
    net = SpectralFilterNet(Convolution(psf.gaussian(1.5, 7), (16, 16)))
    with pytest.raises(ValueError, match=r"trailing shape \(16, 16\)"):
        net(torch.rand(2, 16, 15))
    with pytest.raises(ValueError, match="meta"):
        net(torch.rand(2, 16, 16, device="meta"))
    with pytest.raises(ValueError, match="parametric"):
        net(torch.rand(2, 16, 16), 0.1)


# ------------------------------------------------------------ unrolled nets
@pytest.mark.parametrize("boundary", ["circular", "zero"])
@pytest.mark.parametrize("step", [None, 0.9, "per-layer"])
def test_unrolled_landweber_equals_solver_at_init(boundary, step):
    A = Convolution(psf.gaussian(1.5, 7), (12, 14), boundary=boundary)
    y = A(_rand(3, 12, 14))
    if step == "per-layer":
        step = [0.5, 1.0, 1.5, 0.7, 1.2]
    net = UnrolledLandweber(A, 5, step=step, dtype=f64)
    torch.testing.assert_close(net(y), solvers.landweber(A, y, 5, step=step).x)
    x0 = _rand(3, 12, 14, seed=1)
    torch.testing.assert_close(net(y, x0=x0), solvers.landweber(A, y, 5, step=step, x0=x0).x)
    if boundary == "circular":
        fused = UnrolledLandweber(A, 5, step=step, dtype=f64, fft_path="fused")
        torch.testing.assert_close(fused(y), net(y))
        torch.testing.assert_close(fused(y, x0=x0), net(y, x0=x0))


def test_unrolled_landweber_matrix_and_precondition():
    M = torch.randn(10, 6, generator=torch.Generator().manual_seed(0), dtype=f64)
    A = Matrix(M)
    y = _rand(4, 10)
    net = UnrolledLandweber(A, 8, dtype=f64)
    torch.testing.assert_close(net(y), solvers.landweber(A, y, 8).x)
    with pytest.raises(ValueError, match="circular Convolution"):
        UnrolledLandweber(A, 3, precondition=True)
    C = Convolution(psf.gaussian(1.5, 7), (12, 12))
    pre = UnrolledLandweber(C, 4, precondition=True, dtype=f64)
    yc = C(_rand(2, 12, 12))
    torch.testing.assert_close(pre(yc), solvers.landweber(C, yc, 4).x)  # identity preconditioner at init
    with pytest.raises(ValueError, match="n_layers"):
        UnrolledLandweber(C, 0)
    with pytest.raises(ValueError, match="step"):
        UnrolledLandweber(C, 3, step=[1.0, 2.0])


def test_unrolled_landweber_training_matches_oracle_stopped_landweber():
    """6 trained layers (+ preconditioner) do as well as classical Landweber stopped at its best iteration."""
    size, sigma = 32, 0.02
    A = Convolution(psf.gaussian(1.5, 11), (size, size))
    xtr, xte = phantoms(16, size, seed=4), phantoms(16, size, seed=5)
    g = torch.Generator().manual_seed(0)
    noisy = lambda x: (A(x) + sigma * torch.randn(x.shape, generator=g, dtype=f64)).float()  # noqa: E731
    yte = noisy(xte)
    net = UnrolledLandweber(A, 6, precondition=True)
    before = psnr(net(yte).double(), xte).mean().item()
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(100):
        loss = (net(noisy(xtr)) - xtr.float()).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = psnr(net(yte).detach().double(), xte).mean().item()
    curve: list[float] = []
    solvers.landweber(A, yte.double(), 300, callback=lambda k, x: curve.append(psnr(x, xte).mean().item()))
    assert curve.index(max(curve)) + 1 > 6  # the classical optimum needs more than 6 iterations
    assert after > before + 0.3, (before, after)
    assert after > max(curve) - 0.1, (after, max(curve))


@pytest.mark.parametrize("transform", [None, "wavelet"])
def test_unrolled_ista_equals_solver_at_init(transform):
    A = Convolution(psf.gaussian(1.2, 5), (16, 16))
    W = Wavelet2D((16, 16), "db2", levels=2) if transform == "wavelet" else None
    y = A(_rand(2, 16, 16))
    for step in (None, [0.8, 1.0, 0.6, 0.9]):
        net = UnrolledISTA(A, 4, transform=W, lam=0.05, step=step, dtype=f64)
        torch.testing.assert_close(net(y), solvers.ista(A, y, 0.05, 4, step=step, transform=W).x)


def test_unrolled_ista_learned_transform():
    A = Convolution(psf.gaussian(1.2, 5), (16, 16))
    y = A(_rand(2, 16, 16))
    net = UnrolledISTA(A, 3, transform="learned", lam=0.05, channels=4, dtype=f64)
    with torch.no_grad():
        net.thresholds.zero_()  # theta = 0: every layer is exactly a Landweber step
    torch.testing.assert_close(net(y), solvers.landweber(A, y, 3).x)
    with torch.no_grad():
        net.thresholds.fill_(0.1)
    net(y).square().sum().backward()
    assert net.thresholds.grad.abs().sum() > 0
    assert net.learned[0].fwd[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="transform"):
        UnrolledISTA(A, 2, transform="wavelets")


# -------------------------------------------------- hybrid, CNNs, baselines
def test_hybrid_equals_physics_at_init_and_trains_both():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    # Seeded: a 4-channel UNet has all ReLUs before its output dead for ~3% of
    # random initialisations, and then that layer gets no gradient.
    torch.manual_seed(0)
    for refiner in (DnCNN(depth=3, channels=4), UNet(channels=4, levels=2)):
        phys = SpectralFilterNet(A, lam=1e-2)
        net = HybridNet(phys, refiner)
        y = A(_rand(2, 16, 16)).float()
        torch.testing.assert_close(net(y), phys(y))
        net(y).square().sum().backward()
        assert phys.filter.grad.abs().sum() > 0
        last = refiner.body[-1] if isinstance(refiner, DnCNN) else refiner.out
        assert last.weight.grad.abs().sum() > 0
    frozen = HybridNet(SpectralFilterNet(A), DnCNN(depth=3, channels=4), freeze_physics=True)
    assert not frozen.physics.filter.requires_grad


def test_cnns_shapes_dtypes_and_baselines():
    x = torch.rand(2, 3, 13, 18)
    for m in (DnCNN(depth=3, channels=4, zero_init=False), UNet(channels=4, levels=2, zero_init=False)):
        assert m(x).shape == x.shape
        assert m.double()(x.double()).dtype == f64
        with pytest.raises(TypeError, match="float"):
            m(x)  # float32 input, float64 model
    mlp = MLP((4, 4), (2, 3), hidden=(8,))
    assert mlp(torch.rand(5, 4, 4)).shape == (5, 2, 3)
    with pytest.raises(ValueError, match="trailing shape"):
        mlp(torch.rand(5, 4, 5))
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    model = UNet(channels=4, zero_init=False)
    y = torch.rand(2, 16, 16)
    torch.testing.assert_close(DataDriven(model, A, input="adjoint")(y), model(A.adjoint(y)))
    assert torch.equal(DataDriven(DnCNN(depth=3, channels=4, residual=True))(y), y)
    with pytest.raises(ValueError, match="adjoint"):
        DataDriven(model, input="adjoint")


def test_state_dict_roundtrip():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    for kw in ({}, {"parametric": True, "hidden": 8}):
        net = SpectralFilterNet(A, **kw)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
        new = SpectralFilterNet(A, **kw)
        new.load_state_dict(net.state_dict())
        y = A(_rand(2, 16, 16)).float()
        args = (0.02,) if kw else ()
        torch.testing.assert_close(new(y, *args), net(y, *args))


def test_spectral_net_bfloat16_io():
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    net = SpectralFilterNet(A)
    y = A(_rand(2, 16, 16)).float()
    out = net(y.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), net(y.bfloat16().float()), atol=1e-2, rtol=1e-2)
    out.float().sum().backward()
    assert net.filter.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nets_on_cuda_match_cpu():
    A = Convolution(psf.gaussian(1.5, 7), (32, 32))
    y = A(_rand(4, 32, 32)).float()
    for make in (lambda: SpectralFilterNet(A, lam=1e-2), lambda: UnrolledLandweber(A, 5, precondition=True),
                 lambda: UnrolledLandweber(A, 5, fft_path="fused"), lambda: UnrolledISTA(A, 3, lam=0.01)):
        cpu = make()
        ref = cpu(y)
        gpu = make().cuda()
        assert A.tf.device.type == "cuda"
        torch.testing.assert_close(gpu(y.cuda()).cpu(), ref, atol=1e-5, rtol=1e-4)
        with pytest.raises(ValueError, match="cuda|cpu"):
            gpu(y)
        A.cpu()
    net = SpectralFilterNet(A).cuda()
    out = net(y.cuda().bfloat16())
    assert out.dtype == torch.bfloat16
    A.cpu()


def test_physics_buffers_are_not_state_and_a_foreign_operator_is_refused():
    from physinv.nets import PhysicsMismatchError, UnrolledLandweber

    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    B = Convolution(psf.disk(2.0), (16, 16))
    net = SpectralFilterNet(A)
    assert list(net.state_dict()) == ["filter"]  # s, phase, radius are rebuilt from the operator
    assert list(SpectralFilterNet(A, parametric=True, hidden=4).state_dict()) == [
        k for k, _ in SpectralFilterNet(A, parametric=True, hidden=4).named_parameters()]
    assert sorted(UnrolledLandweber(A, 3).state_dict()) == ["step_factors", "step_unit"]
    # an old-style state dict that still holds the physics: equal physics loads, another operator's raises
    old = {**net.state_dict(), "s": net.s.clone(), "phase": net.phase.clone(), "radius": net.radius.clone()}
    SpectralFilterNet(A).load_state_dict(old)
    for strict in (True, False):
        with pytest.raises(PhysicsMismatchError, match="'phase'|'s'"):
            SpectralFilterNet(B).load_state_dict(old, strict=strict)
    hyb = HybridNet(UnrolledLandweber(B, 2), DnCNN(depth=3, channels=4))
    sd = {**hyb.state_dict(), "physics.tf": UnrolledLandweber(A, 2).tf.clone()}
    with pytest.raises(PhysicsMismatchError, match="physics.tf"):
        hyb.load_state_dict(sd, strict=False)
    # the net keeps its own physics after a load of equal physics
    y = A(_rand(2, 16, 16)).float()
    other = SpectralFilterNet(A)
    other.load_state_dict(old)
    torch.testing.assert_close(other(y), net(y))


def test_unrolled_steps_above_the_convergence_bound_are_refused_like_the_solver():
    A = Convolution(psf.gaussian(1.0), (16, 16))
    with pytest.raises(ValueError, match=r"UnrolledLandweber: step 1e\+300 exceeds the convergence bound"):
        UnrolledLandweber(A, 3, step=1e300)
    with pytest.raises(ValueError, match="exceeds the convergence bound"):
        solvers.landweber(A, A(_rand(16, 16)), 3, step=1e300)
    with pytest.raises(ValueError, match="UnrolledISTA: step"):
        UnrolledISTA(A, 2, step=3.0 / A.norm() ** 2)
    assert torch.isfinite(UnrolledLandweber(A, 3, step=1.9 / A.norm() ** 2)(A(_rand(16, 16)))).all()


def test_strings_and_bools_where_numbers_are_expected_are_refused():
    A = Convolution(psf.gaussian(1.0), (16, 16))
    with pytest.raises(TypeError, match="lam must be a real number, got str"):
        SpectralFilterNet(A, lam="1")
    with pytest.raises(TypeError, match="lam must be a real number"):
        UnrolledISTA(A, 2, lam=True)
    with pytest.raises(TypeError, match="hidden must be an integer"):
        SpectralFilterNet(A, parametric=True, hidden=True)


def test_non_finite_measurements_are_refused_like_the_solvers_do():
    A = Convolution(psf.gaussian(1.0), (16, 16))
    y = A(_rand(2, 16, 16)).float()
    y[1, 3, 4] = float("nan")
    for net in (SpectralFilterNet(A), UnrolledLandweber(A, 2), UnrolledISTA(A, 2)):
        with pytest.raises(ValueError, match="y contains non-finite values"):
            net(y.to(next(net.parameters()).dtype))


def _adam_outputs(net, y, x_true, steps=5, lr=1e-2):
    """Outputs of ``net`` after ``steps`` Adam steps on the squared error to ``x_true``."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (net(y) - x_true).square().mean().backward()
        opt.step()
    with torch.no_grad():
        return net(y)


@settings(max_examples=6, deadline=None)
@given(scale=st.sampled_from([1e-2, 0.3, 7.0, 60.0]), ista=st.booleans())
def test_training_unrolled_steps_does_not_depend_on_the_operator_scale(scale, ista):
    # Landweber on (c A, c y) with steps t / c^2 is the same iteration as on (A, y): with the steps
    # learned as factors of their initial value, Adam follows the same path for every c (learning
    # the steps themselves, a move of Adam's size is 1e4 initial steps when ||A||^2 is 1e4)
    A = Convolution(psf.gaussian(1.2, 5), (12, 12))
    x = _rand(3, 12, 12, seed=1)
    y = A(x) + 0.01 * _rand(3, 12, 12, seed=2)
    make = ((lambda B: UnrolledISTA(B, 3, lam=0.0, dtype=f64)) if ista
            else (lambda B: UnrolledLandweber(B, 3, dtype=f64)))
    ref = _adam_outputs(make(A), y, x)
    out = _adam_outputs(make(scale * A), scale * y, x)
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-9)
    assert not torch.allclose(ref, make(A)(y))  # the steps did move


def test_unrolled_state_dicts_that_hold_the_steps_themselves_still_load():
    A = Convolution(psf.gaussian(1.2, 5), (12, 12))
    y = A(_rand(2, 12, 12))
    for make in (lambda: UnrolledLandweber(A, 3, dtype=f64), lambda: UnrolledISTA(A, 3, lam=0.02, dtype=f64)):
        net = make()
        with torch.no_grad():
            net.step_factors.copy_(torch.tensor([0.7, 1.3, 0.9]))
        old = {k: v for k, v in net.state_dict().items() if not k.startswith("step_")}
        old["steps"] = net.steps.detach().clone()
        again = make()
        again.load_state_dict(old)
        assert torch.equal(again(y), net(y))
        assert torch.equal(again.step_factors.detach(), torch.ones(3, dtype=f64))
        with pytest.raises(RuntimeError, match="step_factors"):
            make().load_state_dict({k: v for k, v in net.state_dict().items() if k != "step_factors"})
