"""Mixed precision: the Trainer's precision option, float32 physics under autocast, exact resumption."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch.utils.data import TensorDataset

from physinv import psf
from physinv.nets import Denoiser, LearnedPrimalDual, SpectralFilterNet, UnrolledHQS, UnrolledLandweber
from physinv.operators import Convolution, Matrix, Radon
from physinv.testing import OPERATOR_CASES
from physinv.train import Trainer, load_checkpoint
from physinv.train.amp import autocast, check_precision, float32_physics, make_grad_scaler
from physinv.train.checkpoint import TRAINING_KEYS

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a GradScaler needs CUDA")
SIZE = (16, 16)


def _operator() -> Convolution:
    return Convolution(psf.gaussian(1.5, 9), SIZE)


def _data(n: int = 16, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *SIZE, generator=g)
    A = _operator()
    with torch.no_grad():
        y = A(x) + 0.01 * torch.randn(x.shape, generator=g)
    return TensorDataset(y, x)


def _net(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    A = _operator()
    if kind == "spectral":
        return SpectralFilterNet(A)
    if kind == "landweber":
        return UnrolledLandweber(A, 4, precondition=True)
    return UnrolledHQS(A, prior=Denoiser(depth=3, channels=6), n_layers=3, noise_sigma=0.01)


def _train(kind: str, precision: str, **kw) -> Trainer:
    t = Trainer(_net(kind), train_data=_data(), batch_size=4, epochs=kw.pop("epochs", 1), lr=1e-2,
                progress=False, precision=precision, device="cpu", **kw)
    t.fit()
    return t


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize("bad", ["fp64", "float16", "", None, 16])
def test_unknown_precision_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="precision must be one of"):
        check_precision(bad, "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        Trainer(torch.nn.Linear(2, 2), train_data=TensorDataset(torch.rand(4, 2), torch.rand(4, 2)),
                batch_size=2, epochs=1, progress=False, device="cpu", precision=bad)


def test_fp16_is_refused_on_the_cpu():
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        Trainer(torch.nn.Linear(2, 2), train_data=TensorDataset(torch.rand(4, 2), torch.rand(4, 2)),
                batch_size=2, epochs=1, progress=False, device="cpu", precision="fp16")
    assert make_grad_scaler("bf16", "cpu") is None and make_grad_scaler("fp32", "cpu") is None


def test_autocast_contexts():
    a = torch.rand(4, 4)
    with autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32


# ------------------------------------------------------------ float32 physics
def test_float32_physics_is_a_plain_call_outside_autocast():
    h = torch.rand(3, dtype=torch.bfloat16)
    assert float32_physics(lambda v: v * 2, h).dtype == torch.bfloat16
    assert float32_physics(torch.add, h, other=h).dtype == torch.bfloat16


def test_float32_physics_switches_autocast_off_and_casts_half_inputs():
    a = torch.rand(5, 5)
    h = torch.rand(5, 5, dtype=torch.bfloat16)
    exact = a @ h.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        out = float32_physics(torch.matmul, a, h)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, exact)
        # keyword arguments are cast too, and autocast is back on after the call
        assert float32_physics(torch.add, h, other=h).dtype == torch.float32
        assert (a @ a).dtype == torch.bfloat16
    # gradients flow through the cast
    h = h.float().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        float32_physics(torch.matmul, a, h.bfloat16()).sum().backward()
    assert h.grad is not None and bool(torch.isfinite(h.grad).all())


def test_unrolled_physics_is_exact_float32_under_autocast():
    # a dense operator: under autocast its matmuls would otherwise run in bfloat16
    g = torch.Generator().manual_seed(0)
    A = Matrix(torch.randn(20, 16, generator=g) / 4)
    net = UnrolledLandweber(A, 5)
    y = torch.rand(3, 20, generator=g)
    ref = net(y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)


def test_primal_dual_on_radon_runs_under_autocast():
    # CPU sparse products have no bfloat16 kernel: A and A^H must run in float32
    torch.manual_seed(0)
    net = LearnedPrimalDual(Radon(12, 5), n_iter=2, width=6, start="adjoint")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    y = torch.rand(2, *net.operator.out_shape)
    ref = net(y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(y)
    out.float().square().mean().backward()
    assert out.dtype == torch.float32
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())
    assert float((out - ref).detach().abs().max()) < 0.05 * float(ref.detach().abs().max())


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["spectral", "landweber", "hqs"])
def test_bf16_training_is_finite_and_close_to_fp32(kind):
    ref, half = _train(kind, "fp32"), _train(kind, "bf16")
    assert half.global_step == ref.global_step == 4
    loss = half.history[-1]["train_loss"]
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert abs(loss - ref.history[-1]["train_loss"]) < 0.05 * ref.history[-1]["train_loss"]
    y, _ = _data(4, seed=5)[:]
    half.module.eval()
    ref.module.eval()
    with torch.no_grad():
        a, b = half.module(y), ref.module(y)
    assert bool(torch.isfinite(a).all())
    rel = float((a - b).norm() / b.norm())
    assert rel < 0.05, rel
    if kind == "hqs":  # the prior's convolutions really ran in bfloat16
        assert rel > 1e-4, rel
    else:  # all physics: the bf16 run computes in float32 throughout
        assert rel < 1e-5, rel


def test_bf16_run_resumes_exactly_and_records_its_precision(tmp_path):
    ref = _train("hqs", "bf16", epochs=2)
    out = tmp_path / "run"
    _train("hqs", "bf16", epochs=1, output_dir=out)
    ck = load_checkpoint(os.path.join(out, "last.pt"))
    assert ck["config"]["precision"] == "bf16" and "scaler" not in ck
    t = _train("hqs", "bf16", epochs=2, output_dir=out, resume=True)
    assert t.resumed_from == os.path.join(out, "last.pt")
    for (n, p), q in zip(t.module.state_dict().items(), ref.module.state_dict().values()):
        assert torch.equal(p, q), n
    # the same run cannot be continued in another precision
    with pytest.raises(ValueError, match="precision"):
        Trainer(_net("hqs"), train_data=_data(), batch_size=4, epochs=3, progress=False, device="cpu",
                output_dir=out, resume=True)


def test_fp32_checkpoints_keep_their_keys(tmp_path):
    _train("spectral", "fp32", output_dir=tmp_path)
    ck = load_checkpoint(os.path.join(tmp_path, "last.pt"))
    assert set(ck) == set(TRAINING_KEYS)
    assert "precision" not in ck["config"]
    # and an fp32 checkpoint is not resumed as a bf16 run
    with pytest.raises(ValueError, match="precision"):
        Trainer(_net("spectral"), train_data=_data(), batch_size=4, epochs=2, progress=False,
                device="cpu", output_dir=tmp_path, resume=True, precision="bf16")


# ------------------------------------------------------------------ CUDA only
@CUDA
def test_fp16_trains_with_a_grad_scaler_and_resumes_exactly(tmp_path):
    def run(epochs, **kw):
        torch.manual_seed(0)
        net = UnrolledHQS(_operator(), prior=Denoiser(depth=3, channels=6), n_layers=3, noise_sigma=0.01)
        t = Trainer(net, train_data=_data(), batch_size=4, epochs=epochs, lr=1e-2, progress=False,
                    device="cuda", precision="fp16", clip_grad_norm=1.0, deterministic=False, **kw)
        t.fit()
        return t

    ref = run(2)
    assert ref.scaler is not None and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in ref.history)
    run(1, output_dir=tmp_path)
    ck = load_checkpoint(os.path.join(tmp_path, "last.pt"))
    assert ck["config"]["precision"] == "fp16" and "scale" in ck["scaler"]
    t = run(2, output_dir=tmp_path, resume=True)
    assert t.scaler.get_scale() == ref.scaler.get_scale()
    for p, q in zip(t.module.parameters(), ref.module.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@CUDA
def test_fp16_physics_runs_in_float32_on_cuda():
    A = Convolution(psf.gaussian(1.5, 9), (15, 15)).to("cuda")  # odd size: cuFFT has no fp16 plan for it
    net = UnrolledLandweber(A, 3).to("cuda")
    y = torch.rand(2, 15, 15, device="cuda")
    ref = net(y)
    with torch.autocast("cuda", dtype=torch.float16):
        out = net(y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("name", sorted(OPERATOR_CASES))
def test_every_operator_is_exact_float32_physics_under_autocast(name):
    """Under bf16 autocast an operator computes exactly as outside it (its products are not cast down)."""
    A = OPERATOR_CASES[name]()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, *A.in_shape, generator=g, dtype=torch.float32)
    y = torch.rand(2, *A.out_shape, generator=g, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Radon's note about content outside its circle
        ref = (A(x), A.adjoint(y))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = (A(x), A.adjoint(y))
    for a, b in zip(ref, got):
        assert b.dtype == a.dtype
        torch.testing.assert_close(b, a, rtol=0, atol=0)
