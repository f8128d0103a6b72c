"""Decimation: block means and sums, the exact adjoint, composition with a blur, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import psf
from physinv.operators import Convolution, Decimation, from_config
from physinv.operators.base import power_iteration
from physinv.testing import check_operator, dot_test

FAST = settings(max_examples=30, deadline=None)


def block_reduce(x: np.ndarray, fh: int, fw: int, how: str) -> np.ndarray:
    h, w = x.shape[-2] // fh, x.shape[-1] // fw
    b = x.reshape(x.shape[:-2] + (h, fh, w, fw))
    return b.mean(axis=(-3, -1)) if how == "mean" else b.sum(axis=(-3, -1))


@FAST
@given(h=st.integers(1, 5), w=st.integers(1, 5), fh=st.integers(1, 4), fw=st.integers(1, 4),
       mode=st.sampled_from(["mean", "sum"]), seed=st.integers(0, 2**16))
def test_forward_is_the_block_reduction_and_adjoint_is_exact(h, w, fh, fw, mode, seed):
    D = Decimation((h * fh, w * fw), (fh, fw), mode)
    x = np.random.default_rng(seed).standard_normal((2, h * fh, w * fw))
    got = D(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, block_reduce(x, fh, fw, mode), rtol=1e-12, atol=1e-12)
    assert dot_test(D, seed=seed, batch=(3,)) < 1e-12


@pytest.mark.parametrize("factor", [1, 2, (3, 2), (1, 4)])
def test_battery_and_gram_structure(factor):
    D = Decimation((12, 8), factor)
    check_operator(D)
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    y = torch.randn(4, *D.out_shape, dtype=torch.float64)
    # D D^H = I / (fh fw): every block is replicated, then averaged back
    torch.testing.assert_close(D(D.adjoint(y)), y / (fh * fw), rtol=1e-14, atol=1e-14)
    assert D.norm() == pytest.approx(1 / np.sqrt(fh * fw), rel=1e-14)
    assert power_iteration(D) == pytest.approx(D.norm(), rel=1e-6)


def test_sum_mode_norm_and_adjoint_replicates():
    D = Decimation((4, 6), 2, "sum")
    assert D.norm() == pytest.approx(2.0)
    up = D.adjoint(torch.arange(6.0, dtype=torch.float64).reshape(2, 3))
    assert torch.equal(up[0], torch.tensor([0.0, 0, 1, 1, 2, 2], dtype=torch.float64))
    assert torch.equal(up[:2], up[:2].flip(0))


def test_mean_mode_preserves_constants_and_the_total_of_sum_mode():
    x = torch.rand(3, 10, 15, dtype=torch.float64)
    assert torch.allclose(Decimation((10, 15), 5)(torch.full((10, 15), 7.25)), torch.full((2, 3), 7.25))
    assert torch.allclose(Decimation((10, 15), 5, "sum")(x).sum((-2, -1)), x.sum((-2, -1)))


def test_dtypes_complex_and_config_round_trip():
    D = Decimation((6, 4), (3, 2))
    x = torch.randn(6, 4, dtype=torch.float32)
    assert D(x).dtype == torch.float32 and D.adjoint(D(x)).dtype == torch.float32
    z = torch.randn(6, 4, dtype=torch.complex128)
    torch.testing.assert_close(D(z), torch.complex(D(z.real), D(z.imag)))
    cfg = D.to_config()
    assert cfg == {"type": "Decimation", "in_shape": [6, 4], "factor": [3, 2], "mode": "mean"}
    E = from_config(cfg)
    assert torch.equal(E(x), D(x)) and E.factor == (3, 2)


def test_composition_with_convolution_matches_scipy():
    k = psf.gaussian(1.2)
    shape = (24, 30)
    A = Decimation(shape, 3) @ Convolution(k, shape)
    x = np.random.default_rng(1).random(shape)
    ref = block_reduce(ndi.convolve(x, k.numpy(), mode="wrap"), 3, 3, "mean")
    np.testing.assert_allclose(A(torch.from_numpy(x)).numpy(), ref, rtol=1e-10, atol=1e-12)
    assert A.out_shape == (8, 10)
    assert dot_test(A) < 1e-12
    check_operator(A)


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="in_shape\\[1\\] = 7 is not divisible by factor 2"):
        Decimation((4, 7), 2)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        Decimation((4, 4), 0)
    with pytest.raises(TypeError, match="factor must be an integer"):
        Decimation((4, 4), 2.0)
    with pytest.raises(ValueError, match="factor must be an int or 2 ints"):
        Decimation((4, 4), (2, 2, 2))
    with pytest.raises(ValueError, match="mode must be one of"):
        Decimation((4, 4), 2, "max")
    with pytest.raises(ValueError, match="in_shape must be \\(H, W\\)"):
        Decimation((4, 4, 4), 2)
    with pytest.raises(ValueError, match="x"):
        Decimation((4, 4), 2)(torch.zeros(4, 5))
