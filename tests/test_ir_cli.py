"""``physinv ir``: simulate to HDF5, run the pipeline on it and on a folder of 16-bit PNGs, bad arguments."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from physinv.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_simulate_then_run_on_the_hdf5_file(tmp_path, capsys):
    h5 = tmp_path / "frames.h5"
    assert main(["ir", "simulate", "--out", str(h5), "--frames", "2", "--size", "32x40", "--seed", "3",
                 "--threads", "1"]) == 0
    assert "2 frame(s) of 32x40 boson" in capsys.readouterr().out
    from physinv.ir.io import load_ir

    fr = load_ir(h5)
    assert fr.counts.shape == (2, 32, 40) and fr.mask.any()

    out = tmp_path / "run"
    assert main(["ir", "run", str(h5), "--out", str(out), "--method", "wiener", "--threads", "1",
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "mean Dice" in text and "2 computed" in text
    rows = _rows(out / "metrics.csv")
    assert [r["name"] for r in rows] == ["frame_0000", "frame_0001"]
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and float(r["temperature_rmse_k"]) > 0
    png = out / "temperature" / "frame_0000.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    from PIL import Image

    a = np.asarray(Image.open(png))
    assert a.dtype == np.uint16 and a.shape == (32, 40)
    t = a / 100.0  # centikelvin
    assert abs(float(np.median(t)) - float(fr.temperature_k[0].median())) < 1.0
    overlay = np.asarray(Image.open(out / "overlays" / "frame_0000.png"))
    assert overlay.shape == (32, 40, 3) and overlay.dtype == np.uint8
    prov = json.loads((out / "results.json").read_text())
    assert prov["frames"] == 2 and prov["config"]["method"] == "wiener"

    tiff = tmp_path / "run_tiff"
    assert main(["ir", "run", str(h5), "--out", str(tiff), "--method", "none", "--format", "tiff",
                 "--threads", "1", "--no-progress"]) == 0
    import tifffile

    b = tifffile.imread(tiff / "temperature" / "frame_0001.tiff")
    assert b.dtype == np.uint16 and b.shape == (32, 40)
    capsys.readouterr()

    # a re-run reads every frame back
    assert main(["ir", "run", str(h5), "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    assert "0 computed, 2 read back" in capsys.readouterr().out


def test_run_on_a_folder_of_16_bit_pngs_has_no_metrics(tmp_path, capsys):
    from PIL import Image

    from physinv.ir.bench import camera_for
    from physinv.ir.camera import simulate

    fr = simulate(2, camera_for("boson", (32, 40)), seed=1, fpn=False)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, c in enumerate(fr.counts.numpy().astype(np.uint16)):
        Image.fromarray(c).save(folder / f"f{i}.png")
    out = tmp_path / "run"
    assert main(["ir", "run", str(folder), "--out", str(out), "--method", "none", "--format", "npy",
                 "--threads", "1", "--no-progress"]) == 0
    assert "no ground truth" in capsys.readouterr().out
    rows = _rows(out / "metrics.csv")
    assert [r["name"] for r in rows] == ["f0", "f1"]
    assert all(r["dice"] == "" and r["temperature_rmse_k"] == "" for r in rows)
    t = np.load(out / "temperature" / "f0.npy")
    # no fixed pattern, no restoration: the temperature of the measured (blurred) radiance
    assert t.dtype == np.float32 and abs(float(t.mean()) - float(fr.temperature_k[0].mean())) < 0.5


@pytest.mark.parametrize("argv, flag", [
    (["ir", "simulate", "--out", "x.txt"], "--out"),
    (["ir", "simulate", "--out", "a.h5", "--size", "8x8"], "--size"),
    (["ir", "simulate", "--out", "a.h5", "--frames", "0"], "--frames"),
    (["ir", "simulate", "--out", "a.h5", "--camera", "lepton"], "--camera"),
    (["ir", "simulate", "--out", "a.h5", "--noise-scale", "-1"], "--noise-scale"),
    (["ir", "run", "/nonexistent/frames.h5"], "INPUT"),
    (["ir", "run", ".", "--method", "magic"], "--method"),
    (["ir", "bench", "--noise-levels", "0"], "--noise-levels"),
    (["ir", "bench", "--methods", "magic"], "--methods"),
    (["ir", "bench", "--size", "4x4"], "--size"),
    (["ir", "bench", "--lc-methods", "wiener+otsu"], "--lc-methods"),
    (["ir", "run", ".", "--format", "jpeg"], "--format"),
])
def test_bad_arguments_exit_2_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_bad_bench_configuration_names_the_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ir", "bench", "--sizes", "2,2", "--no-progress"])
    assert exc.value.code == 2
    assert "--sizes" in capsys.readouterr().err


def test_ir_without_a_command_prints_help(capsys):
    assert main(["ir"]) == 2
    assert "simulate" in capsys.readouterr().out
