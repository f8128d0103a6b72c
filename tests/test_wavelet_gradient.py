"""Wavelet2D (orthogonal periodic DWT) and Gradient (finite differences, adjoint = -div).

Their dot tests, dtype, config and device checks run with every other operator in
tests/test_operator_cases.py; here are the truths specific to each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv.operators import Gradient, Wavelet2D, from_config
from physinv.operators.base import power_iteration
from physinv.operators.wavelet import WAVELETS, daubechies_filter

NAMES = sorted(WAVELETS)


@pytest.mark.parametrize("name", NAMES)
def test_filter_is_orthonormal_with_vanishing_moments(name):
    h = np.array(WAVELETS[name])
    L = h.size
    N = L // 2
    assert h.sum() == pytest.approx(math.sqrt(2), abs=1e-13)
    for m in range(N):  # sum_k h_k h_{k+2m} = delta_m
        assert np.dot(h[: L - 2 * m], h[2 * m:]) == pytest.approx(float(m == 0), abs=1e-13)
    g = np.array([(-1) ** k * h[L - 1 - k] for k in range(L)])
    k = np.arange(L, dtype=float)
    for p in range(N):  # the wavelet has N vanishing moments
        assert np.sum(g * k**p) == pytest.approx(0.0, abs=1e-9 * max(1.0, float(np.sum(np.abs(g) * k**p))))


def test_db2_closed_form():
    s3 = math.sqrt(3)
    ref = np.array([1 + s3, 3 + s3, 3 - s3, 1 - s3]) / (4 * math.sqrt(2))
    np.testing.assert_allclose(daubechies_filter(2), ref, atol=1e-15)
    assert WAVELETS["haar"] == WAVELETS["db1"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape,levels", [((16, 16), None), ((8, 32), 2), ((6, 10), 1), ((32, 8), 3)])
def test_dense_matrix_is_orthogonal(name, shape, levels):
    W = Wavelet2D(shape, name, levels=levels)
    D = W.to_dense()
    eye = torch.eye(D.shape[0], dtype=D.dtype)
    assert torch.allclose(D.T @ D, eye, atol=1e-12)
    assert torch.allclose(D @ D.T, eye, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(NAMES), hj=st.integers(1, 4), wj=st.integers(1, 4),
       mult_h=st.sampled_from([1, 3]), mult_w=st.sampled_from([1, 5]),
       batch=st.sampled_from([(), (2,), (2, 3)]),
       dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_perfect_reconstruction_and_energy(name, hj, wj, mult_h, mult_w, batch, dtype, data):
    H, W_ = mult_h * 2**hj, mult_w * 2**wj
    levels = data.draw(st.integers(1, min(hj, wj)))
    W = Wavelet2D((H, W_), name, levels=levels)
    x = torch.randn(batch + (H, W_), generator=torch.Generator().manual_seed(hj * 7 + wj), dtype=dtype)
    c = W(x)
    assert c.shape == x.shape and c.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    assert torch.allclose(W.H(c), x, atol=tol)
    assert torch.allclose(torch.linalg.vector_norm(c), torch.linalg.vector_norm(x), rtol=tol)


def test_haar_of_constant_image_has_one_coefficient():
    W = Wavelet2D((16, 16), "haar")  # full depth: 4 levels down to 1x1
    assert W.levels == 4
    c = W(torch.full((16, 16), 2.0, dtype=torch.float64))
    assert c[0, 0].item() == pytest.approx(2.0 * 16)  # mean * sqrt(H W)
    c[0, 0] = 0
    assert c.abs().max() < 1e-12


@pytest.mark.parametrize("name", ["db2", "db3", "db4"])
def test_smooth_image_is_sparse_in_db_detail_bands(name):
    # Polynomials of degree < N are annihilated by the db<N> wavelet (periodic wrap aside):
    # a linear ramp in the interior gives zero detail coefficients away from the wrap.
    W = Wavelet2D((32, 32), name, levels=1)
    ramp = torch.arange(32, dtype=torch.float64)[None, :].expand(32, 32)
    c = W(ramp)
    L = len(WAVELETS[name])
    detail = c[:16, 16:]  # horizontal detail of the first level
    interior = detail[:, : 16 - L // 2]
    assert interior.abs().max() < 1e-10
    assert detail.abs().max() > 1.0  # the wrap-around edge is not smooth


def test_complex_input_and_config_round_trip():
    W = Wavelet2D((8, 8), "db2", levels=2)
    z = torch.randn(8, 8, dtype=torch.complex128)
    assert torch.allclose(W.H(W(z)), z)
    W2 = from_config(W.to_config())
    x = torch.randn(8, 8, dtype=torch.float64)
    assert torch.equal(W2(x), W(x))
    assert W.norm() == 1.0
    assert len(W.band_slices()) == 1 + 3 * 2


def test_wavelet_bad_input():
    with pytest.raises(ValueError, match="wavelet"):
        Wavelet2D((8, 8), "sym4")
    with pytest.raises(ValueError, match="even"):
        Wavelet2D((7, 8))
    with pytest.raises(ValueError, match="divisible"):
        Wavelet2D((12, 8), levels=3)
    with pytest.raises(ValueError, match="levels"):
        Wavelet2D((8, 8), levels=0)
    with pytest.raises(ValueError, match="shape"):
        Wavelet2D((8, 8, 8))
    with pytest.raises(ValueError, match="trailing shape"):
        Wavelet2D((8, 8))(torch.zeros(8, 4))


# ---------------------------------------------------------------- Gradient
def test_gradient_values_and_divergence():
    x = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)
    g = Gradient((3, 4))(x)
    assert torch.equal(g[0], torch.tensor([[4.0] * 4, [4.0] * 4, [0.0] * 4], dtype=torch.float64))
    assert torch.equal(g[1], torch.tensor([[1.0, 1, 1, 0]] * 3, dtype=torch.float64))
    gc = Gradient((3, 4), "circular")(x)
    assert torch.equal(gc[1, :, 3], x[:, 0] - x[:, 3])
    G = Gradient((3, 4))
    assert torch.allclose(G.divergence(g), -G.adjoint(g))
    # -div grad is the (Neumann) Laplacian: it annihilates constants and sums to zero.
    ones = torch.ones(3, 4, dtype=torch.float64)
    assert torch.allclose(G.adjoint(G(ones)), torch.zeros_like(ones))
    assert abs(float(G.gram(x).sum())) < 1e-10


def test_gradient_norm():
    Gc = Gradient((8, 6), "circular")
    assert Gc.norm() == pytest.approx(math.sqrt(8))
    assert power_iteration(Gc, n_iter=3000, tol=1e-12) == pytest.approx(math.sqrt(8), rel=1e-5)
    Gn = Gradient((8, 6))
    assert Gn.norm() < math.sqrt(8)
    D = Gn.to_dense()
    assert Gn.norm() == pytest.approx(float(torch.linalg.matrix_norm(D, ord=2)), rel=1e-5)


def test_gradient_bad_input():
    with pytest.raises(ValueError, match="boundary"):
        Gradient((4, 4), "reflect")
    with pytest.raises(ValueError, match="shape"):
        Gradient((4,))
    G = Gradient((4, 4))
    with pytest.raises(ValueError, match="trailing shape"):
        G.adjoint(torch.zeros(4, 4))
    assert from_config(G.to_config()).boundary == "neumann"


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), boundary=st.sampled_from(["neumann", "circular"]),
       batch=st.sampled_from([(), (2,), (1, 3)]), seed=st.integers(0, 10))
def test_gradient_of_constants_is_zero(h, w, boundary, batch, seed):
    G = Gradient((h, w), boundary)
    x = torch.randn(batch + (h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.allclose(G(x + 3.0), G(x))  # constants have zero gradient
