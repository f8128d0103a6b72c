"""IR physics, synthetic scenes and the camera simulator: published values, exact identities, bad input."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from physinv.ir import (
    SHAPES,
    Camera,
    PlanckTable,
    band_radiance,
    band_radiance_derivative,
    drifted_offset,
    flat_scene,
    heat_diffusion_sigma,
    make_scene,
    planck_table,
    radiance_to_temperature,
    simulate,
    spectral_radiance,
)
from physinv.ir.physics import BOLTZMANN_K, PLANCK_H, SPEED_OF_LIGHT
from physinv.operators import Convolution, Decimation
from physinv.testing import check_operator, dot_test

FAST = settings(max_examples=25, deadline=None)
SMALL = (24, 32)

# ------------------------------------------------------------------------------------------ physics
#: Published in-band radiances (W m^-2 sr^-1) and dL/dT (W m^-2 sr^-1 K^-1), quoted to 3 decimals.
REFERENCE = [  # T, L 8-14, L 7.5-13.5, dL/dT 8-14
    (273.15, 35.152, 34.847, 0.637),
    (290.0, 46.935, 47.096, 0.762),
    (300.0, 54.934, 55.492, 0.838),
    (310.0, 63.694, 64.751, 0.915),
    (373.15, 136.778, 143.769, 1.397),
]


@pytest.mark.parametrize("t, l814, l7513, d814", REFERENCE)
def test_band_radiance_matches_every_published_value(t, l814, l7513, d814):
    # the values are quoted to 3 decimals (54.934 is 54.93346 rounded twice): agree within 6e-4
    assert float(band_radiance(t, (8.0, 14.0))) == pytest.approx(l814, abs=6e-4)
    assert float(band_radiance(t, (7.5, 13.5))) == pytest.approx(l7513, abs=6e-4)
    assert float(band_radiance_derivative(t, (8.0, 14.0))) == pytest.approx(d814, abs=6e-4)


@pytest.mark.parametrize("t", [150.0, 300.0, 800.0])
@pytest.mark.parametrize("band", [(8.0, 14.0), (3.0, 5.0)])
def test_band_radiance_equals_adaptive_quadrature(t, band):
    h, c, k = PLANCK_H, SPEED_OF_LIGHT, BOLTZMANN_K

    def planck(lam):
        return 2 * h * c**2 / lam**5 / math.expm1(h * c / (lam * k * t))

    ref = quad(planck, band[0] * 1e-6, band[1] * 1e-6, epsabs=0, epsrel=1e-13)[0]
    assert float(band_radiance(t, band)) == pytest.approx(ref, rel=1e-11)


def test_whole_spectrum_gives_stefan_boltzmann():
    sigma = 2 * math.pi**5 * BOLTZMANN_K**4 / (15 * SPEED_OF_LIGHT**2 * PLANCK_H**3)
    t = 300.0
    # bands add up; beyond 2 mm the Rayleigh-Jeans tail holds 7e-7 of the total, below 1 um nothing
    edges = [1.0, 20.0, 200.0, 2000.0]
    total = sum(float(band_radiance(t, (a, b), n_quad=200)) for a, b in zip(edges, edges[1:]))
    assert total == pytest.approx(sigma * t**4 / math.pi, rel=2e-6)


def test_numbers_behind_the_flir_noise_spec():
    # dL/dT over 7.5-13.5 um at 300 K is 0.8825; pi * 0.8825 * 0.05 = 0.139 W m^-2 (FLIR's "< 0.14")
    assert float(band_radiance_derivative(300.0, (7.5, 13.5))) == pytest.approx(0.8825, abs=5e-5)
    assert math.pi * Camera.tau2().noise_std_radiance(300.0) == pytest.approx(0.1386, abs=5e-4)


def test_derivative_matches_autograd_and_finite_differences():
    t = torch.linspace(200.0, 500.0, 13, dtype=torch.float64, requires_grad=True)
    band_radiance(t, (7.5, 13.5)).sum().backward()
    d = band_radiance_derivative(t.detach(), (7.5, 13.5))
    torch.testing.assert_close(t.grad, d, rtol=1e-12, atol=0)
    h = 1e-3
    fd = (band_radiance(t.detach() + h, (7.5, 13.5)) - band_radiance(t.detach() - h, (7.5, 13.5))) / (2 * h)
    torch.testing.assert_close(fd, d, rtol=1e-8, atol=0)


@FAST
@given(t=st.floats(30.0, 5000.0), lo=st.floats(1.0, 12.0), width=st.floats(0.5, 10.0))
def test_inverse_is_exact_and_radiance_increases(t, lo, width):
    band = (lo, lo + width)
    L = band_radiance(torch.tensor([t, t * 1.01], dtype=torch.float64), band)
    assert bool(L[1] > L[0])
    back = radiance_to_temperature(L, band)
    torch.testing.assert_close(back, torch.tensor([t, t * 1.01], dtype=torch.float64), rtol=1e-11, atol=0)


def test_dtypes_shapes_and_python_numbers():
    t32 = torch.full((2, 3), 300.0, dtype=torch.float32)
    assert band_radiance(t32).dtype == torch.float32 and band_radiance(t32).shape == (2, 3)
    assert radiance_to_temperature(band_radiance(t32)).dtype == torch.float32
    assert band_radiance(300.0).dtype == torch.float64  # python numbers: float64, not torch's float32
    assert band_radiance(300).dtype == torch.float64
    assert band_radiance(torch.empty(0, dtype=torch.float64)).shape == (0,)
    assert float(spectral_radiance(10.0, 300.0)) == pytest.approx(9.924, abs=1e-3)


def test_planck_table_agrees_with_the_exact_functions():
    tab = PlanckTable((7.5, 13.5))
    t = torch.linspace(150.0, 600.0, 20001, dtype=torch.float64)
    L = band_radiance(t, (7.5, 13.5))
    assert float(((tab.radiance(t) - L) / L).abs().max()) < 1e-10
    assert float((tab.temperature(L) - t).abs().max()) < 1e-7
    # outside the table: exact fallback
    out = torch.tensor([100.0, 700.0], dtype=torch.float64)
    torch.testing.assert_close(tab.radiance(out), band_radiance(out, (7.5, 13.5)), rtol=1e-14, atol=0)
    torch.testing.assert_close(tab.temperature(band_radiance(out, (7.5, 13.5))), out, rtol=1e-11, atol=0)
    assert planck_table((7.5, 13.5)) is planck_table([7.5, 13.5])


def test_physics_bad_input():
    with pytest.raises(ValueError, match="temperature_k must be > 0"):
        band_radiance(torch.tensor([300.0, 0.0]))
    with pytest.raises(ValueError, match="temperature_k must be > 0"):
        band_radiance_derivative(-5.0)
    with pytest.raises(ValueError, match="temperature_k must be finite"):
        band_radiance(float("nan"))
    with pytest.raises(ValueError, match="radiance must be > 0"):
        radiance_to_temperature(torch.tensor([10.0, -1.0]))
    with pytest.raises(ValueError, match="radiance must be > 0"):
        planck_table().temperature(0.0)
    with pytest.raises(ValueError, match="radiance must be finite"):
        radiance_to_temperature(float("inf"))
    for band in [(14.0, 8.0), (0.0, 5.0), (8.0,), "8-14"]:
        with pytest.raises(ValueError, match="band_um"):
            band_radiance(300.0, band)
    with pytest.raises(ValueError, match="n_quad must be >= 2"):
        band_radiance(300.0, n_quad=1)
    with pytest.raises(TypeError, match="temperature_k must be a real tensor"):
        band_radiance(torch.tensor([300.0 + 0j]))


# ------------------------------------------------------------------------------------------- scenes
def test_scene_is_seeded_and_objects_are_hot():
    a, b, c = (make_scene((64, 80), seed=s, n_objects=4, object_delta_k=(5.0, 10.0)) for s in (7, 7, 8))
    assert torch.equal(a.temperature_k, b.temperature_k) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.temperature_k, c.temperature_k)
    assert a.temperature_k.dtype == torch.float64 and a.mask.dtype == torch.bool
    assert len(a.shapes) == 4 and set(a.shapes) <= set(SHAPES)
    assert float(a.temperature_k[a.mask].mean()) > float(a.temperature_k[~a.mask].mean()) + 3.0
    assert 285.0 - 10 < a.background_k < 300.0 + 10


@pytest.mark.parametrize("kind", SHAPES)
def test_every_shape_draws_a_region(kind):
    s = make_scene((48, 48), seed=1, n_objects=1, shapes=[kind], texture_k=0.0, gradient_k=0.0)
    area = int(s.mask.sum())
    assert 4 < area < 48 * 48 // 2
    # a texture-free, gradient-free background is flat at the base temperature
    assert torch.allclose(s.temperature_k[~s.mask], torch.tensor(s.background_k, dtype=torch.float64))


def test_no_objects_and_flat_scene():
    s = make_scene((16, 16), seed=0, n_objects=0)
    assert not bool(s.mask.any()) and s.shapes == []
    f = flat_scene((8, 9), 310.0)
    assert float(f.temperature_k.min()) == float(f.temperature_k.max()) == 310.0


def test_scene_bad_input():
    with pytest.raises(ValueError, match="shape must be"):
        make_scene((4, 64), seed=0)
    with pytest.raises(ValueError, match="n_objects must be >= 0"):
        make_scene((16, 16), seed=0, n_objects=-1)
    with pytest.raises(ValueError, match="background_k must be > 0"):
        make_scene((16, 16), seed=0, background_k=(-1.0, 300.0))
    with pytest.raises(ValueError, match="object_delta_k must have low <= high"):
        make_scene((16, 16), seed=0, object_delta_k=(5.0, 1.0))
    with pytest.raises(ValueError, match="shapes must be a non-empty subset"):
        make_scene((16, 16), seed=0, shapes=["star"])
    with pytest.raises(ValueError, match="seed must be >= 0"):
        make_scene((16, 16), seed=-1)


# ------------------------------------------------------------------------------------------- camera
def test_presets_and_geometry():
    b, t = Camera.boson(), Camera.tau2()
    assert b.detector_shape == t.detector_shape == (512, 640) and b.bits == t.bits == 14
    assert (b.pixel_pitch_um, b.netd_k, t.pixel_pitch_um, t.netd_k) == (12.0, 0.04, 17.0, 0.05)
    assert b.band_um == t.band_um == (7.5, 13.5) and b.f_number == 1.0
    assert b.scene_shape == (1024, 1280) and b.max_count == 16383
    assert b.airy_radius_px == pytest.approx(1.22 * 10.5 * 1.0 / 6.0)
    assert Camera.from_dict(t.to_dict()) == t and t.replace(netd_k=0.03).netd_k == 0.03
    with pytest.raises(ValueError, match="unknown fields"):
        Camera.from_dict({"netd": 0.1})


def second_moment(k: torch.Tensor) -> float:
    r = torch.arange(k.shape[0], dtype=torch.float64) - k.shape[0] // 2
    return float((k.sum(1) * r**2).sum())


def test_psf_blurs_add_in_variance():
    cam = Camera(detector_shape=(32, 32))
    base = second_moment(cam.optics_psf())
    heat = cam.replace(heat_diffusion_sigma_px=1.0)
    from physinv import psf

    g = psf.gaussian(2.0)  # 1 detector pixel = 2 scene pixels
    assert second_moment(heat.optics_psf()) == pytest.approx(base + second_moment(g), rel=1e-9)
    assert second_moment(cam.replace(defocus_px=1.5).optics_psf()) > base + 1.0
    gauss = cam.replace(psf="gaussian").optics_psf()
    sigma = 0.42 * 10.5 / 6.0
    assert second_moment(gauss) == pytest.approx(sigma**2, rel=0.02)
    assert heat_diffusion_sigma(1e-7, 2.0, 1e-3) == pytest.approx(math.sqrt(4e-7) / 1e-3)


def test_operator_and_the_exact_detector_model():
    cam = Camera(detector_shape=(20, 24), factor=2)
    A = cam.operator()
    assert (A.in_shape, A.out_shape) == ((40, 48), (20, 24))
    assert dot_test(A) < 1e-12
    check_operator(cam.detector_operator())
    x_d = torch.rand(2, 20, 24, dtype=torch.float64)
    U = Decimation((40, 48), 2)
    x = U.adjoint(x_d) * 4  # replicate each detector pixel over its 2 x 2 footprint
    # blur + area sampling of a block-constant scene == detector-grid convolution with detector_psf
    torch.testing.assert_close(A(x), cam.detector_operator()(x_d), rtol=1e-12, atol=1e-12)
    ref = Decimation((40, 48), 2)(Convolution(cam.optics_psf(), (40, 48))(x))
    torch.testing.assert_close(A(x), ref, rtol=1e-13, atol=1e-13)


def test_simulate_shapes_range_and_seeding():
    cam = Camera(detector_shape=SMALL)
    a, b, c = simulate(2, cam, seed=3), simulate(2, cam, seed=3), simulate(2, cam, seed=4)
    assert a.counts.shape == (2, *SMALL) and a.counts.dtype == torch.int32
    assert a.temperature_k.dtype == torch.float64 and a.mask.dtype == torch.bool
    assert 0 <= int(a.counts.min()) and int(a.counts.max()) <= cam.max_count
    assert torch.equal(a.counts, b.counts) and not torch.equal(a.counts, c.counts)
    assert torch.equal(a.gain, c.gain) and torch.equal(a.offset, c.offset)  # the unit's FPN, not the seed's
    assert not torch.equal(a.gain, simulate(1, cam.replace(unit_seed=1), seed=3).gain)
    # ideal temperature is the inverted clean radiance; the mask marks hot pixels
    torch.testing.assert_close(band_radiance(a.temperature_k, cam.band_um), a.radiance, rtol=1e-10, atol=0)
    assert float(a.temperature_k[a.mask].mean()) > float(a.temperature_k[~a.mask].mean())


def test_temporal_noise_referred_to_temperature_is_the_netd():
    cam = Camera(detector_shape=(32, 40))
    t0 = 300.0
    fr = simulate(64, cam, seed=0, scene=flat_scene(cam.scene_shape, t0))
    assert torch.allclose(fr.temperature_k, torch.tensor(t0, dtype=torch.float64), atol=1e-7, rtol=0)
    dldt = float(band_radiance_derivative(t0, cam.band_um))
    # counts -> temperature with the true maps, then the per-pixel temporal std, pooled over pixels
    L = (fr.counts.double() - fr.offset) / (fr.gain * cam.responsivity)
    T = planck_table(cam.band_um).temperature(L)
    pooled = float(T.var(dim=0).mean().sqrt())
    quant = 1.0 / (fr.gain * cam.responsivity * dldt)  # one count in kelvin: uniform rounding adds q^2 / 12
    expected = float((cam.netd_k**2 + quant**2 / 12).mean().sqrt())
    assert pooled == pytest.approx(expected, rel=0.02)
    assert expected == pytest.approx(cam.netd_k, rel=0.01)
    twice = simulate(64, cam, seed=0, scene=flat_scene(cam.scene_shape, t0), noise_scale=2.0)
    assert float(twice.noise_std_radiance[0]) == pytest.approx(2 * cam.netd_k * dldt, rel=1e-12)
    still = simulate(4, cam, seed=0, scene=flat_scene(cam.scene_shape, t0), noise_scale=0.0)
    assert bool((still.counts == still.counts[0]).all())


def test_fixed_pattern_and_clipping_and_drift():
    cam = Camera(detector_shape=SMALL)
    flat = flat_scene(cam.scene_shape, 300.0)
    clean = simulate(1, cam, seed=0, scene=flat, noise_scale=0.0)
    L = float(band_radiance(300.0, cam.band_um))
    expect = torch.round(clean.gain * cam.responsivity * L + clean.offset).to(torch.int32)
    assert torch.equal(clean.counts[0], expect)  # the forward model, exactly
    nofpn = simulate(1, cam, seed=0, scene=flat, noise_scale=0.0, fpn=False)
    assert int(nofpn.counts.max() - nofpn.counts.min()) == 0
    hot = simulate(1, cam.replace(offset_counts=16000.0), seed=0)
    assert int(hot.n_clipped[0]) > 0 and int(hot.counts.max()) == hot.camera.max_count
    assert 0 < hot.clip_fraction <= 1 and int(clean.n_clipped[0]) == 0
    dr = simulate(5, cam, seed=0, scene=flat, noise_scale=0.0, drift=True, drift_range_k=4.0)
    torch.testing.assert_close(dr.sensor_temperature_k, torch.linspace(300.0, 304.0, 5, dtype=torch.float64))
    step = (dr.counts[-1] - dr.counts[0]).double()
    assert float((step - 4.0 * dr.offset_drift).abs().max()) <= 1.0  # integer rounding of each frame
    torch.testing.assert_close(dr.offsets()[2], drifted_offset(dr.offset, dr.offset_drift, 302.0, 300.0))


def test_motion_modes():
    cam = Camera(detector_shape=SMALL, factor=2)
    st_ = simulate(3, cam, seed=1, motion="static", noise_scale=0.0)
    assert torch.equal(st_.temperature_k[0], st_.temperature_k[2])
    pan = simulate(3, cam, seed=1, motion="pan", pan_px=(2, 4), noise_scale=0.0)
    # a block-aligned pan of the scene is a whole-pixel shift on the detector
    torch.testing.assert_close(pan.temperature_k[2], torch.roll(pan.temperature_k[0], (2, 4), (0, 1)))
    ind = simulate(2, cam, seed=1)
    assert not torch.equal(ind.temperature_k[0], ind.temperature_k[1])


def test_camera_and_simulate_bad_input():
    with pytest.raises(ValueError, match="bits must be <= 16"):
        Camera(bits=17)
    with pytest.raises(ValueError, match="psf must be 'airy' or 'gaussian'"):
        Camera(psf="disk")
    with pytest.raises(ValueError, match="gain_std must be >= 0"):
        Camera(gain_std=-0.1)
    with pytest.raises(ValueError, match="netd_k must be > 0"):
        Camera(netd_k=0.0)
    with pytest.raises(ValueError, match="detector_shape must be"):
        Camera(detector_shape=(1, 5))
    cam = Camera(detector_shape=(8, 8))
    with pytest.raises(ValueError, match="n_frames must be >= 1"):
        simulate(0, cam, seed=0)
    with pytest.raises(TypeError, match="camera must be a Camera"):
        simulate(1, "boson", seed=0)
    with pytest.raises(ValueError, match="motion must be one of"):
        simulate(1, cam, seed=0, motion="zoom")
    with pytest.raises(ValueError, match="scene must be a Scene or temperatures of shape"):
        simulate(1, cam, seed=0, scene=torch.full((8, 8), 300.0))
    with pytest.raises(ValueError, match="noise_scale must be >= 0"):
        simulate(1, cam, seed=0, noise_scale=-1.0)
    with pytest.raises(ValueError, match="scene_kwargs must not set seed"):
        simulate(1, cam, seed=0, scene_kwargs={"seed": 1})
    with pytest.raises(ValueError, match="boundary must be one of"):
        cam.operator("valid")


@pytest.mark.slow
def test_full_size_frame_is_fast():
    cam = Camera.boson()
    simulate(1, cam, seed=0, motion="static")  # warm-up: tables, kernels, FFT plans
    t = time.perf_counter()
    fr = simulate(4, cam, seed=0, motion="static")
    per_frame = (time.perf_counter() - t) / 4
    assert fr.counts.shape == (4, 512, 640)
    assert per_frame < 1.0, f"{per_frame:.2f} s per 512x640 frame"


def test_moderate_frame_is_quick():
    cam = Camera(detector_shape=(128, 160))
    simulate(1, cam, seed=0)
    t = time.perf_counter()
    simulate(2, cam, seed=0)
    assert (time.perf_counter() - t) / 2 < 0.5
    assert np.isfinite(float(simulate(1, cam, seed=0).temperature_k.mean()))
