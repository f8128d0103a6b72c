"""The infrared study: cells, CSV columns, families, resume, provenance, goals."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from physinv.ir import bench
from physinv.ir.bench import FAMILIES, IRBenchConfig, goals, make_cells, run

REQUIRED = ("method", "family", "noise_level", "dice", "iou", "temperature_rmse_k", "psnr")


def _tiny(**kw):
    base = dict(detector_shape=(32, 40), noise_levels=(1.0, 4.0),
                methods=("none+otsu", "wiener+otsu", "spectral+otsu", "unet-mask"), n_train=1, n_test=1,
                lc_methods=("spectral+otsu", "unet-mask"), sizes=(1, 2), seeds=(0,), steps=3, threads=None)
    base.update(kw)
    return IRBenchConfig(**base)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_study_writes_its_tables_and_resumes(tmp_path):
    cfg = _tiny()
    cells = make_cells(cfg)
    # 4 methods x 2 noise levels, plus the learning curve's N=2 cells (N=1 at 1 x NETD is shared)
    assert len(cells) == 8 + 2
    res = run(cfg, tmp_path, progress=False)
    assert res.computed == len(cells) and not res.failed and res.missing == 0
    rows = _rows(tmp_path / "results.csv")
    assert set(REQUIRED) <= set(rows[0])
    assert {r["family"] for r in rows} <= set(FAMILIES)
    assert {r["family"] for r in rows} == {"classical", "physics", "data-driven"}
    assert sorted((r["method"], float(r["noise_level"])) for r in rows) == sorted(
        (m, lv) for m in cfg.methods for lv in cfg.noise_levels)
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and 0.0 <= float(r["iou"]) <= float(r["dice"]) + 1e-9
        if r["method"] == "unet-mask":  # mask only: no temperature map
            assert r["temperature_rmse_k"] == "" and r["psnr"] == ""
        else:
            assert float(r["temperature_rmse_k"]) > 0
    lc = _rows(tmp_path / "learning_curve.csv")
    assert sorted((r["method"], int(r["n_train"])) for r in lc) == [
        ("spectral+otsu", 1), ("spectral+otsu", 2), ("unet-mask", 1), ("unet-mask", 2)]
    prov = json.loads((tmp_path / "results.json").read_text())
    assert prov["study"] == bench.STUDY and prov["config"]["noise_levels"] == [1.0, 4.0]
    assert "torch" in prov["versions"] and prov["rows"] == 8
    for name in ("ir_methods.png", "ir_learning_curve.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    assert any(g.startswith(("MET", "MISSED")) for g in res.goals)

    again = run(cfg, tmp_path, progress=False)
    assert again.computed == 0 and again.reused == len(cells)
    assert _rows(tmp_path / "results.csv") == rows


def test_classical_cells_do_not_depend_on_training_settings():
    a = {c.id for c in make_cells(_tiny(methods=("wiener+otsu",), lc_methods=()))}
    b = {c.id for c in make_cells(_tiny(methods=("wiener+otsu",), lc_methods=(), steps=50, n_train=7))}
    assert a == b


@pytest.mark.parametrize("kw, field", [
    ({"camera": "lepton"}, "camera"),
    ({"detector_shape": (8, 8)}, "detector_shape"),
    ({"noise_levels": (0.0,)}, "noise_levels"),
    ({"noise_levels": (1.0, 1.0)}, "noise_levels"),
    ({"methods": ("magic",)}, "methods"),
    ({"lc_methods": ("wiener+otsu",)}, "lc_methods"),
    ({"sizes": (0,)}, "sizes"),
    ({"steps": 0}, "steps"),
])
def test_bad_configuration_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        _tiny(**kw)


def _row(method, family, level, dice, rmse=None, n=0, seed=0, noise_k=0.04):
    return {"method": method, "family": family, "noise_level": level, "dice": dice,
            "temperature_rmse_k": rmse, "noise_k": noise_k * level, "n_train": n, "seed": seed}


def test_goals_compare_the_best_of_each_family():
    main = [_row("wiener+otsu", "classical", 1.0, 0.80, 0.2),
            _row("spectral+head", "physics", 1.0, 0.90, 0.03), _row("unet-mask", "data-driven", 1.0, 0.95)]
    lc = [_row("spectral+head", "physics", 1.0, 0.7, n=1), _row("unet-mask", "data-driven", 1.0, 0.5, n=1),
          _row("spectral+head", "physics", 1.0, 0.8, n=8), _row("unet-mask", "data-driven", 1.0, 0.9, n=8)]
    lines = goals(main, lc, small=4)
    assert lines[0].startswith("MET") and "+0.100" in lines[0]
    assert lines[1].startswith("MET") and "N=1" in lines[1]
    assert not any("N=8" in g for g in lines)  # only small training sets
    assert lines[-1].startswith("MET") and "0.75 x" in lines[-1]  # 30 mK against 40 mK
    worse = goals([_row("wiener+otsu", "classical", 2.0, 0.9, 1.0),
                   _row("pnp+otsu", "physics", 2.0, 0.8, 1.0)], [])
    assert worse[0].startswith("MISSED") and worse[-1].startswith("MISSED")


def test_to_radiance_inverts_the_camera_counts():
    from physinv.ir.calibration import counts_to_radiance
    from physinv.ir.camera import simulate

    fr = simulate(2, bench.camera_for("tau2", (32, 40)), seed=4, noise_scale=0.0)
    L = bench.to_radiance(fr)
    assert L.dtype == torch.float64 and L.shape == (2, 32, 40)
    ref = counts_to_radiance(fr.counts, fr.camera, fr.gain, fr.offset)
    assert torch.allclose(L, ref)
    counts = fr.gain * fr.camera.responsivity * L + fr.offset  # back to whole counts
    assert float((counts - fr.counts).abs().max()) < 1e-6
