"""The infrared pipeline: Otsu's threshold, the segmentation head, restoration in radiance, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv.ir.physics import band_radiance
from physinv.ir.pipeline import (
    METHODS,
    Pipeline,
    PipelineResult,
    RadianceScale,
    Reconstruct,
    evaluate,
    train_spectral,
)
from physinv.ir.segment import (
    SegmentationHead,
    bce_dice_loss,
    normalise_temperature,
    otsu_threshold,
    segment_otsu,
    soft_dice_loss,
    train_segmentation_head,
)
from physinv.metrics import dice
from physinv.operators import Convolution
from physinv.psf import gaussian
from physinv.solvers import mad_noise_sigma

BAND = (7.5, 13.5)


def _bimodal(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cold = 290 + 1.5 * torch.randn(3000, generator=g, dtype=torch.float64)
    hot = 308 + 2.0 * torch.randn(1000, generator=g, dtype=torch.float64)
    return torch.cat([cold, hot])[torch.randperm(4000, generator=g)].reshape(40, 100)


def _scene(n: int = 2, shape: tuple[int, int] = (32, 40), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rectangles 8-15 K above a background with a gradient of 6 K across the frame."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    t = 288 + 6 * torch.linspace(0, 1, w, dtype=torch.float64).expand(n, h, w).clone()
    m = torch.zeros(n, h, w, dtype=torch.bool)
    for k in range(n):
        for _ in range(2):
            y0 = int(torch.randint(0, h - 10, (1,), generator=g))
            x0 = int(torch.randint(0, w - 10, (1,), generator=g))
            m[k, y0:y0 + 8, x0:x0 + 9] = True
        t[k][m[k]] += 8 + 7 * float(torch.rand(1, generator=g))
    return t, m


# ----------------------------------------------------------------------------- Otsu

def test_otsu_separates_a_bimodal_tensor_and_matches_scikit_image():
    from skimage.filters import threshold_otsu

    x = _bimodal()
    thr = float(otsu_threshold(x))
    assert 294 < thr < 304
    assert thr == pytest.approx(float(threshold_otsu(x.numpy())), abs=1e-9)
    mask = segment_otsu(x)
    assert abs(int(mask.sum()) - 1000) < 30


def test_otsu_is_batched_and_keeps_dtype_and_device():
    a, b = _bimodal(0), _bimodal(1) - 20
    both = otsu_threshold(torch.stack([a, b]))
    assert both.shape == (2,) and both.dtype == torch.float64
    assert torch.equal(both, torch.stack([otsu_threshold(a), otsu_threshold(b)]))
    assert otsu_threshold(a.float()).dtype == torch.float32


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 12), w=st.integers(2, 12), low=st.floats(-50, 400), gap=st.floats(0.5, 100),
       seed=st.integers(0, 2**16))
def test_otsu_splits_any_two_level_image_exactly(h, w, low, gap, seed):
    g = torch.Generator().manual_seed(seed)
    hot = torch.rand(h, w, generator=g) < 0.5
    hot[0, 0], hot[-1, -1] = False, True  # both levels present
    x = torch.where(hot, low + gap, low).to(torch.float64)
    assert torch.equal(segment_otsu(x), hot)


def test_otsu_constant_frame_has_no_foreground():
    x = torch.full((5, 6), 300.0)
    assert float(otsu_threshold(x)) == 300.0
    assert not segment_otsu(x).any()


def test_otsu_rejects_bad_input():
    with pytest.raises(ValueError, match="nbins"):
        otsu_threshold(_bimodal(), nbins=1)
    with pytest.raises(ValueError, match="image"):
        otsu_threshold(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="finite"):
        otsu_threshold(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(TypeError, match="floating"):
        otsu_threshold(torch.ones(3, 3, dtype=torch.int32))


# ----------------------------------------------------------------------------- segmentation head

def test_head_normalisation_and_shapes():
    t = torch.tensor([[[290.0, 300.0, 310.0]]])
    assert torch.equal(normalise_temperature(t), torch.tensor([[[-1.0, 0.0, 1.0]]]))
    head = SegmentationHead(channels=4, depth=2)
    assert head(torch.full((3, 1, 9, 7), 300.0)).shape == (3, 1, 9, 7)
    with pytest.raises(ValueError, match="channels"):
        SegmentationHead(channels=0)
    with pytest.raises(ValueError, match="scale_k"):
        SegmentationHead(scale_k=-1.0)


def test_losses_are_zero_for_a_perfect_prediction_and_positive_otherwise():
    t = torch.zeros(2, 6, 6)
    t[:, 1:4, 2:5] = 1
    good = 50 * (2 * t - 1)
    assert float(soft_dice_loss(good, t)) < 1e-6
    terms = bce_dice_loss(good, t)
    assert float(terms["bce"]) < 1e-6 and float(terms["dice"]) < 1e-6
    bad = -good
    assert float(soft_dice_loss(bad, t)) > 0.9


def test_head_learns_masks_that_a_global_threshold_misses():
    t, m = _scene(4, seed=0)
    t_test, m_test = _scene(2, seed=1)
    head = train_segmentation_head(t, m, steps=150, channels=8, depth=3, lr=1e-2, seed=0)
    d_head = dice(head.predict(t_test), m_test)
    d_otsu = dice(segment_otsu(t_test), m_test)
    assert float(d_head.min()) > 0.85
    assert float(d_head.mean()) > float(d_otsu.mean())


def test_train_head_rejects_bad_arguments():
    t, m = _scene(1)
    with pytest.raises(ValueError, match="mask"):
        train_segmentation_head(t, m.float(), steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_segmentation_head(t, m, steps=0)
    with pytest.raises(ValueError, match="temperature_k"):
        train_segmentation_head(t[0], m[0], steps=1)


# ----------------------------------------------------------------------------- restoration

def _identity(shape):
    return Convolution(torch.ones(1, 1, dtype=torch.float64), shape)


def test_radiance_scale_maps_its_endpoints_to_zero_and_one():
    s = RadianceScale(BAND, 260.0, 330.0)
    L = band_radiance(torch.tensor([260.0, 330.0], dtype=torch.float64), BAND)
    assert torch.allclose(s.forward(L), torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="t_high_k"):
        RadianceScale(BAND, 300.0, 290.0)
    with pytest.raises(ValueError, match="band_um"):
        RadianceScale((14.0, 8.0))


@pytest.mark.parametrize("method, exact, tol", [("none", True, 1e-9), ("none", False, 1e-6),
                                               ("wiener", True, 1e-6), ("tv", False, 1e-4)])
def test_identity_blur_and_noise_free_input_reproduce_the_temperature(method, exact, tol):
    t, m = _scene(2)
    A = _identity(t.shape[-2:])
    rec = Reconstruct(method, None if method == "none" else A, scale=RadianceScale(BAND), noise_sigma=1e-10)
    res = Pipeline(rec, exact=exact)(band_radiance(t, BAND))
    assert float((res.temperature_k - t).abs().max()) < tol
    assert res.clamped == 0
    met = evaluate(res, t, m)
    assert float(met["temperature_rmse_k"].max()) < tol


def test_deconvolution_lowers_the_temperature_error_of_blurred_noisy_frames():
    t, m = _scene(2, (48, 64), seed=3)
    A = Convolution(gaussian(1.5), (48, 64))
    g = torch.Generator().manual_seed(0)
    L = A(band_radiance(t, BAND))
    y = L + 0.035 * torch.randn(L.shape, generator=g, dtype=torch.float64)  # ~40 mK
    scale = RadianceScale(BAND)
    errs = {}
    for method in ("none", "wiener", "tikhonov-gcv"):
        res = Pipeline(Reconstruct(method, A, scale=scale), band_um=BAND)(y)
        errs[method] = float(evaluate(res, t, m)["temperature_rmse_k"].mean())
    assert errs["wiener"] < errs["none"] and errs["tikhonov-gcv"] < errs["none"]


def test_pnp_runs_on_radiance_through_the_stated_affine_map():
    t, m = _scene(1, (32, 32), seed=2)
    A = Convolution(gaussian(1.0), (32, 32))
    y = A(band_radiance(t, BAND))
    g = torch.Generator().manual_seed(1)
    y = y + 0.05 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    res = Pipeline(Reconstruct("pnp", A, scale=RadianceScale(BAND)))(y)
    none = Pipeline(Reconstruct("none", scale=RadianceScale(BAND)))(y)
    assert res.radiance.dtype == torch.float64
    rmse = evaluate(res, t, m)["temperature_rmse_k"]
    assert float(rmse) < float(evaluate(none, t, m)["temperature_rmse_k"])


def test_trained_spectral_filter_beats_its_tikhonov_start():
    t, _ = _scene(4, (32, 32), seed=5)
    A = Convolution(gaussian(1.5), (32, 32))
    L = band_radiance(t, BAND)
    g = torch.Generator().manual_seed(2)
    y = A(L) + 0.035 * torch.randn(L.shape, generator=g, dtype=torch.float64)
    scale = RadianceScale(BAND)
    from physinv.nets import SpectralFilterNet

    start = SpectralFilterNet(A, lam=1e-2)
    net = train_spectral(A, y, L, scale=scale, steps=60, lr=2e-2, lam=1e-2)
    with torch.no_grad():
        u, x = scale.forward(y).float(), scale.forward(L).float()
        assert float(((net(u) - x) ** 2).mean()) < float(((start(u) - x) ** 2).mean())
    res = Pipeline(Reconstruct("spectral", A, scale=scale, net=net))(y)
    assert res.temperature_k.shape == t.shape
    gcv = train_spectral(A, y, L, scale=scale, steps=1, lam="gcv")  # initialised at the GCV choice
    assert 0 < gcv.lam < 1e-2
    par = train_spectral(A, y, L, scale=scale, steps=5, parametric=True)
    assert par.parametric and sum(p.numel() for p in par.parameters()) < 2000
    res = Pipeline(Reconstruct("spectral", A, scale=scale, net=par))(y)
    assert bool(torch.isfinite(res.temperature_k).all())
    with pytest.raises(ValueError, match="lam"):
        train_spectral(A, y, L, scale=scale, steps=1, lam="lcurve")


def test_mad_sigma_is_per_frame():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 128, 128, generator=g, dtype=torch.float64) * torch.tensor([0.01, 0.1])[:, None, None]
    s = mad_noise_sigma(y)
    assert s.shape == (2,)
    assert torch.allclose(s, torch.tensor([0.01, 0.1], dtype=torch.float64), rtol=0.05)


def test_pipeline_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        Reconstruct("magic")
    with pytest.raises(ValueError, match="operator"):
        Reconstruct("wiener")
    A = _identity((8, 8))
    with pytest.raises(ValueError, match="net"):
        Reconstruct("spectral", A)
    with pytest.raises(ValueError, match="noise_sigma"):
        Reconstruct("wiener", A, noise_sigma=-1.0)
    pipe = Pipeline(Reconstruct("none"))
    with pytest.raises(ValueError, match="to_radiance"):
        pipe(torch.ones(8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="finite"):
        pipe(torch.full((8, 8), float("nan")))
    with pytest.raises(ValueError, match="segment"):
        Pipeline(Reconstruct("none"), segment="kmeans")
    with pytest.raises(ValueError, match="floor_k"):
        Pipeline(floor_k=0.0)


def test_counts_go_through_to_radiance_and_ringing_is_counted():
    t = torch.full((1, 8, 8), 300.0, dtype=torch.float64)
    L = band_radiance(t, BAND)
    counts = torch.round(L * 100).to(torch.int32)
    pipe = Pipeline(Reconstruct("none", scale=RadianceScale(BAND)), to_radiance=lambda c: c.double() / 100)
    res = pipe(counts)
    assert float((res.temperature_k - 300).abs().max()) < 0.02
    neg = L.clone()
    neg[0, 0, 0] = -1.0
    res = Pipeline(Reconstruct("none", scale=RadianceScale(BAND)))(neg)
    assert res.clamped == 1 and float(res.temperature_k[0, 0, 0]) == pytest.approx(150.0)


def test_evaluate_reports_only_what_the_truth_allows():
    t = torch.full((2, 4, 4), 290.0, dtype=torch.float64)
    r = PipelineResult(t, t + 0.5, t > 300, {})
    only_t = evaluate(r, t)
    assert sorted(only_t) == ["psnr", "temperature_rmse_k"]
    assert torch.allclose(only_t["temperature_rmse_k"], torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert sorted(evaluate(r, mask=t > 300)) == ["dice", "iou"]
    assert evaluate(r) == {}
    with pytest.raises(ValueError, match="temperature_k"):
        evaluate(r, t[0])


def test_methods_have_known_families():
    assert set(METHODS.values()) <= {"classical", "physics"}
    assert np.all([m in METHODS for m in ("wiener", "tikhonov-gcv", "tv", "pnp", "spectral", "hqs")])
