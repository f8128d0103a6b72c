"""The memory-lean FFT autograd functions: gradcheck, agreement with plain autograd, what they save."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from physinv import psf
from physinv.nets import UnrolledLandweber
from physinv.operators import Convolution
from physinv.spectrum import (
    column_weights,
    filter_half_spectrum,
    fourier_multiply,
    plain_filter_half_spectrum,
)

f64 = torch.float64


def _setup(H, W, lead=(2,), f_lead=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(*lead, H, W, generator=g, dtype=f64, requires_grad=True)
    f = torch.randn(*f_lead, H, W // 2 + 1, generator=g, dtype=f64, requires_grad=True)
    c = torch.fft.rfft2(torch.randn(H, W, generator=g, dtype=f64))
    return y, f, c


@pytest.mark.parametrize("H,W", [(6, 8), (5, 7), (4, 5), (7, 6), (1, 4)])
@pytest.mark.parametrize("with_c", [False, True])
def test_filter_half_spectrum_gradcheck(H, W, with_c):
    y, f, c = _setup(H, W)
    cc = c if with_c else None
    assert gradcheck(lambda y, f: filter_half_spectrum(y, f, cc), (y, f))


def test_filter_half_spectrum_gradcheck_scale_add():
    y, f, c = _setup(6, 7)
    t = torch.tensor(0.7, dtype=f64, requires_grad=True)
    a = torch.randn(2, 6, 7, dtype=f64, requires_grad=True)
    assert gradcheck(lambda y, f, t, a: filter_half_spectrum(y, f, c, scale=t, add=a), (y, f, t, a))
    assert gradcheck(lambda y, f, t, a: filter_half_spectrum(y, f, c, scale=t, add=a, keep_spectrum=True),
                     (y, f, t, a))
    out = filter_half_spectrum(y, f, c, scale=t, add=a)
    torch.testing.assert_close(out, a + t * plain_filter_half_spectrum(y, f, c))


def test_filter_half_spectrum_gradcheck_broadcast_filter():
    # a per-sample filter (leading dims of f) and a shared one broadcast over channels
    y, f, c = _setup(6, 6, lead=(3, 2), f_lead=(3, 1))
    assert gradcheck(lambda y, f: filter_half_spectrum(y, f, c), (y, f))
    y2, f2, _ = _setup(6, 6, lead=(2,), f_lead=(3, 1))  # f has more leading dims than y
    assert gradcheck(lambda y, f: filter_half_spectrum(y, f, c), (y2, f2))


@settings(max_examples=15, deadline=None)
@given(H=st.integers(1, 9), W=st.integers(2, 9), seed=st.integers(0, 1000))
def test_custom_equals_plain_autograd(H, W, seed):
    """Values and both gradients equal plain autograd through torch.fft (f not Hermitian on DC/Nyquist)."""
    y, f, c = _setup(H, W, seed=seed)
    w = torch.randn(2, H, W, dtype=f64, generator=torch.Generator().manual_seed(seed + 1))
    out = filter_half_spectrum(y, f, c)
    gy, gf = torch.autograd.grad((out * w).sum(), (y, f))
    ref = plain_filter_half_spectrum(y, f, c)
    ry, rf = torch.autograd.grad((ref * w).sum(), (y, f))
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gy, ry)
    torch.testing.assert_close(gf, rf)


def test_column_weights_count_full_spectrum():
    for W in range(1, 10):
        assert float(column_weights(W).sum()) == W


def test_fourier_multiply_gradcheck_uses_custom_function():
    """Convolution's path runs the same custom function (f absent, c = H)."""
    g = torch.Generator().manual_seed(1)
    for H, W in [(6, 8), (5, 7)]:
        x = torch.randn(2, H, W, generator=g, dtype=f64, requires_grad=True)
        Ht = torch.fft.rfft2(torch.randn(H, W, generator=g, dtype=f64))
        out = fourier_multiply(x, Ht, (H, W))
        assert "HalfSpectrumFilter" in type(out.grad_fn).__name__
        assert gradcheck(lambda x, Ht=Ht, s=(H, W): fourier_multiply(x, Ht, s), (x,))


def test_convolution_gradcheck():
    A = Convolution(psf.gaussian(1.0, 5), (8, 7))
    x = torch.randn(2, 8, 7, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x: A(x), (x,))
    assert gradcheck(lambda x: A.adjoint(x), (x,))


def _saved(fn):
    """Unique tensors autograd saves while running fn: list of (dtype, numel)."""
    seen = {}

    def pack(t):
        seen[(t.data_ptr(), t.dtype, t.numel())] = (t.dtype, t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, list(seen.values())


def test_filter_half_spectrum_saves_no_spectra():
    B, H, W = 8, 16, 16
    y, f, c = _setup(H, W, lead=(B,))
    _, saved = _saved(lambda: filter_half_spectrum(y * 1.0, f, c))
    # complex tensors saved: only the constant c (one spectrum, no batch dimension)
    assert all(n <= H * (W // 2 + 1) for d, n in saved if d.is_complex)
    _, plain = _saved(lambda: plain_filter_half_spectrum(y * 1.0, f, c))
    assert any(d.is_complex and n >= B * H * (W // 2 + 1) for d, n in plain)


def _bytes(saved):
    return sum(n * torch.empty(0, dtype=d).element_size() for d, n in saved)


@pytest.mark.parametrize("precondition", [False, True])
def test_unrolled_landweber_paths_agree_and_custom_saves_less(precondition):
    A = Convolution(psf.gaussian(1.5, 7), (16, 12))
    g = torch.Generator().manual_seed(3)
    y = A(torch.rand(4, 16, 12, generator=g, dtype=f64))
    bump = 1 + 0.1 * torch.randn(16, 7, generator=g, dtype=f64)
    outs, grads, mem = {}, {}, {}
    for path in ("custom", "autograd", "fused"):
        net = UnrolledLandweber(A, 6, precondition=precondition, fft_path=path, dtype=f64)
        if precondition:
            with torch.no_grad():
                net.precond.mul_(bump)
        out, saved = _saved(lambda net=net: net(y))
        outs[path] = out
        grads[path] = torch.autograd.grad((out**2).sum(), list(net.parameters()))
        mem[path] = _bytes(saved)
    for path in ("autograd", "fused"):
        torch.testing.assert_close(outs[path], outs["custom"])
        for a, b in zip(grads[path], grads["custom"]):
            torch.testing.assert_close(a, b)
    assert mem["custom"] < 0.6 * mem["autograd"]
    assert mem["fused"] < mem["custom"]


def test_half_precision_inputs_compute_in_float32():
    y, f, c = _setup(8, 8)
    yb = y.detach().to(torch.bfloat16)
    out = filter_half_spectrum(yb, f.detach().float(), c)
    assert out.dtype == torch.bfloat16
    ref = filter_half_spectrum(yb.float(), f.detach().float(), c)
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)
    yb.requires_grad_(True)
    filter_half_spectrum(yb, f.detach().float(), c).sum().backward()
    assert yb.grad.dtype == torch.bfloat16


def test_bad_input_named():
    y, f, c = _setup(6, 8)
    with pytest.raises(ValueError, match="f must be real with trailing shape"):
        filter_half_spectrum(y, f[..., :-1])
    with pytest.raises(ValueError, match="y must have trailing shape"):
        filter_half_spectrum(y, f, shape=(6, 9))
    with pytest.raises(ValueError, match="meta"):
        filter_half_spectrum(y, f.detach().to("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    y, f, c = _setup(32, 32, lead=(4,))
    out = filter_half_spectrum(y, f, c)
    out_gpu = filter_half_spectrum(y.detach().cuda().requires_grad_(True), f.detach().cuda(), c.cuda())
    torch.testing.assert_close(out_gpu.cpu(), out.detach())
    yh = y.detach().cuda().to(torch.bfloat16)
    out_bf = filter_half_spectrum(yh, f.detach().cuda().float(), c.cuda())
    assert out_bf.dtype == torch.bfloat16
    torch.testing.assert_close(out_bf.float().cpu(), out.detach().float(), atol=0.1, rtol=0.05)
