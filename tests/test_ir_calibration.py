"""Calibration and NUC: exact two-point recovery, drift and its removal, scene-based NUC and ghosting."""

from __future__ import annotations

import pytest
import torch

from physinv.ir import Camera, flat_scene, simulate
from physinv.ir.calibration import (
    NUC,
    counts_to_radiance,
    counts_to_temperature,
    fit_offset_drift,
    radiance_to_counts,
    scene_based_nuc,
    temperature_to_counts,
    two_point_nuc,
)
from physinv.ir.physics import band_radiance

CAM = Camera(detector_shape=(32, 40))


def flat(n, t, *, seed, cam=CAM, **kw):
    return simulate(n, cam, seed=seed, scene=flat_scene(cam.scene_shape, t), **kw)


def test_conversions_round_trip():
    g, o, _ = CAM.fpn_maps()
    t = 280.0 + 60.0 * torch.rand(3, *CAM.detector_shape, dtype=torch.float64)
    c = temperature_to_counts(t, CAM, g, o)
    torch.testing.assert_close(counts_to_temperature(c, CAM, g, o), t, rtol=0, atol=1e-7)
    torch.testing.assert_close(counts_to_temperature(c, CAM, g, o, exact=True), t, rtol=1e-12, atol=0)
    L = counts_to_radiance(c, CAM, g, o)
    torch.testing.assert_close(L, band_radiance(t, CAM.band_um), rtol=1e-12, atol=0)
    torch.testing.assert_close(radiance_to_counts(L, CAM, g, o), c, rtol=1e-13, atol=0)
    q = temperature_to_counts(t, CAM, g, o, quantize=True)
    assert q.dtype == torch.int32 and float((q - c).abs().max()) <= 0.5


def test_two_point_nuc_is_exact_on_noise_free_flat_fields():
    g, o, _ = CAM.fpn_maps()
    cold = temperature_to_counts(torch.full((4, *CAM.detector_shape), 285.0), CAM, g, o)
    hot = temperature_to_counts(torch.full((4, *CAM.detector_shape), 325.0), CAM, g, o)
    nuc = two_point_nuc(cold, hot, 285.0, 325.0, CAM)
    torch.testing.assert_close(nuc.gain, g, rtol=1e-12, atol=0)
    torch.testing.assert_close(nuc.offset, o, rtol=1e-12, atol=0)
    # and the simulator's quantized, noise-free black bodies: within the rounding of the counts
    sc, sh = flat(1, 285.0, seed=0, noise_scale=0.0), flat(1, 325.0, seed=0, noise_scale=0.0)
    q = two_point_nuc(sc, sh, 285.0, 325.0, CAM)
    assert float((q.offset - sc.offset).abs().max()) < 8.0
    assert float((q.gain - sc.gain).abs().max()) < 2e-3


def test_two_point_nuc_on_noisy_frames_leaves_the_temporal_noise():
    cold, hot = flat(64, 285.0, seed=1), flat(64, 325.0, seed=2)
    nuc = two_point_nuc(cold, hot, 285.0, 325.0, CAM)
    probe = flat(1, 300.0, seed=3)
    raw = counts_to_temperature(probe.counts, CAM)  # nominal maps: the fixed pattern shows
    corrected = nuc.temperature(probe.counts)
    assert float(raw.std()) > 1.0  # about 1.3 K of fixed pattern uncorrected
    # after NUC: the frame's temporal noise (NETD) plus the calibration's own noise (1/sqrt(64) of it, x~1.4)
    assert float(corrected.std()) == pytest.approx(CAM.netd_k, rel=0.15)
    assert abs(float(corrected.mean()) - 300.0) < 0.01
    torch.testing.assert_close(nuc.apply(probe.counts), radiance_to_counts(nuc.radiance(probe.counts), CAM))


def test_recomputing_the_nuc_at_a_new_sensor_temperature_removes_the_drift():
    kw = {"drift": True}
    nuc0 = two_point_nuc(flat(16, 285.0, seed=4, sensor_temperature_k=300.0, **kw),
                         flat(16, 325.0, seed=5, sensor_temperature_k=300.0, **kw), 285.0, 325.0, CAM,
                         sensor_temperature_k=300.0)
    probe = flat(8, 310.0, seed=6, sensor_temperature_k=305.0, **kw)  # the sensor warmed by 5 K
    stale = float((nuc0.temperature(probe.counts) - 310.0).mean())
    # 20 counts/K x 5 K of offset drift over R dL/dT = 100 x 0.95 counts/K: a ~1 K warm bias
    assert 0.8 < stale < 1.4
    nuc1 = two_point_nuc(flat(16, 285.0, seed=7, sensor_temperature_k=305.0, **kw),
                         flat(16, 325.0, seed=8, sensor_temperature_k=305.0, **kw), 285.0, 325.0, CAM,
                         sensor_temperature_k=305.0)
    assert abs(float((nuc1.temperature(probe.counts) - 310.0).mean())) < 0.01
    assert float((nuc1.temperature(probe.counts) - 310.0).abs().mean()) < 0.05
    # a shutter frame at the new sensor temperature (one-point refresh) does as well
    shutter = nuc0.refresh_offset(flat(16, 300.0, seed=9, sensor_temperature_k=305.0, **kw), 300.0,
                                  sensor_temperature_k=305.0)
    assert float((shutter.temperature(probe.counts) - 310.0).abs().mean()) < 0.05
    # the drift model fitted from calibrations at 300 K and 305 K predicts the offsets at 303 K
    model = fit_offset_drift([nuc0, nuc1])
    # noise-limited (16 frames per calibration): about 0.5 counts/K against a 4 counts/K pixel spread
    assert float((model.drift - probe.offset_drift).abs().mean()) < 1.0
    mid = flat(8, 310.0, seed=10, sensor_temperature_k=303.0, **kw)
    assert abs(float((nuc0.temperature(mid.counts) - 310.0).mean())) > 0.5
    assert float((model.at(303.0).temperature(mid.counts) - 310.0).abs().mean()) < 0.05


def test_fit_offset_drift_is_exact_on_a_linear_model():
    g, o, d = CAM.fpn_maps()
    nucs = [NUC(g, o + d * (ts - 300.0), CAM, ts) for ts in (298.0, 300.0, 304.0)]
    model = fit_offset_drift(nucs)
    torch.testing.assert_close(model.drift, d, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.at(310.0).offset, o + 10.0 * d, rtol=1e-12, atol=1e-9)


def _ghost_and_kept(frames, res, probe):
    m = frames.mask[0]
    c0 = frames.counts[0].double()
    contrast = float(c0[m].mean() - c0[~m].mean())
    corrected_probe = res.apply(probe)
    ghost = float(corrected_probe[m].mean() - corrected_probe[~m].mean()) / contrast
    kept = float(res.corrected[0][m].mean() - res.corrected[0][~m].mean()) / contrast
    return ghost, kept


def test_constant_statistics_burns_in_a_static_scene_and_not_a_moving_one():
    cam = Camera(detector_shape=(48, 64))
    probe = flat(1, 300.0, seed=0, cam=cam, noise_scale=0.0).counts[0].double()  # a uniform view, later
    raw_fpn = float(probe.std())
    static = simulate(32, cam, seed=1, motion="static", scene_kwargs={"n_objects": 3})
    ghost, kept = _ghost_and_kept(static, scene_based_nuc(static), probe)
    # the static objects are learned as fixed pattern: they vanish from the corrected frames and
    # leave a negative ghost of their full contrast in the next view
    assert kept < 0.05 and ghost < -0.9
    moving = simulate(128, cam, seed=1, motion="pan", pan_px=(3, 5), scene_kwargs={"n_objects": 3})
    res = scene_based_nuc(moving, estimate_gain=False)
    ghost, kept = _ghost_and_kept(moving, res, probe)
    assert kept > 0.9 and abs(ghost) < 0.1
    assert float(res.apply(probe).std()) < 0.4 * raw_fpn  # most of the fixed pattern removed


def test_midway_removes_column_stripes_where_columns_look_alike():
    cam = Camera(detector_shape=(128, 160), pixel_offset_std=0.0, gain_std=0.0, row_offset_std=0.0,
                 col_offset_std=20.0)

    def column_error(x, ideal):
        e = x - ideal
        return float((e - e.mean((-2, -1), keepdim=True)).mean(-2).std(-1).mean())

    kw = {"scene_kwargs": {"n_objects": 0, "texture_k": 0.0}}
    fr, ideal = simulate(2, cam, seed=1, **kw), simulate(2, cam, seed=1, fpn=False, **kw)
    raw = column_error(fr.counts.double(), ideal.counts.double())
    fixed = column_error(scene_based_nuc(fr, "midway", sigma_columns=3.0).corrected, ideal.counts.double())
    assert fixed < 0.5 * raw
    # with large hot objects neighbouring columns no longer share a histogram: midway then hurts
    fr, ideal = simulate(2, cam, seed=1), simulate(2, cam, seed=1, fpn=False)
    hurt = column_error(scene_based_nuc(fr, "midway", sigma_columns=3.0).corrected, ideal.counts.double())
    assert hurt > column_error(fr.counts.double(), ideal.counts.double())


def test_calibration_bad_input():
    cold, hot = flat(2, 285.0, seed=0), flat(2, 325.0, seed=1)
    with pytest.raises(ValueError, match="t_hot_k must be > t_cold_k"):
        two_point_nuc(cold, hot, 325.0, 285.0, CAM)
    with pytest.raises(ValueError, match="read no more on the hot source"):
        two_point_nuc(hot, cold, 285.0, 325.0, CAM)
    with pytest.raises(ValueError, match="cold_frames must end in the detector shape"):
        two_point_nuc(cold.counts[:, :8], hot, 285.0, 325.0, CAM)
    with pytest.raises(ValueError, match="hot_frames: .* clipped"):
        two_point_nuc(cold, flat(1, 600.0, seed=0), 285.0, 600.0, CAM)
    with pytest.raises(TypeError, match="camera must be a Camera"):
        counts_to_radiance(cold.counts, "boson")
    with pytest.raises(ValueError, match="at or below the offset"):
        counts_to_temperature(torch.zeros(*CAM.detector_shape), CAM)
    with pytest.raises(ValueError, match="gain must be > 0"):
        NUC(torch.zeros(*CAM.detector_shape), torch.zeros(*CAM.detector_shape), CAM)
    with pytest.raises(ValueError, match="offset must be a"):
        NUC(torch.ones(*CAM.detector_shape), torch.zeros(3, 3), CAM)
    with pytest.raises(ValueError, match="method must be one of"):
        scene_based_nuc(cold, "kalman")
    with pytest.raises(ValueError, match="at least 2 frames"):
        scene_based_nuc(cold.counts[:1])
    with pytest.raises(ValueError, match="two or more NUC"):
        fit_offset_drift([NUC(torch.ones(*CAM.detector_shape), torch.zeros(*CAM.detector_shape), CAM)])
    with pytest.raises(ValueError, match="needs a drift map"):
        NUC(torch.ones(*CAM.detector_shape), torch.zeros(*CAM.detector_shape), CAM).at(301.0)
