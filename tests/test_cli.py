"""The physinv command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from physinv.cli import main, run_demo


def test_demo_improves_psnr_and_writes_png(tmp_path):
    out = tmp_path / "demo.png"
    r = run_demo(size=96, out=out, show=False)
    assert out.exists() and out.stat().st_size > 1000
    assert r["psnr_tikhonov"] > r["psnr_blurred"] + 0.5
    assert r["lam"] > 0


def test_main_demo_prints_psnr(tmp_path, capsys):
    rc = main(["demo", "--size", "64", "--psf", "disk", "--width", "2", "--out", str(tmp_path / "d.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "PSNR Tikhonov" in out and "dB" in out


def test_bad_arguments_exit_nonzero(tmp_path, capsys):
    assert main(["demo", "--noise", "-1", "--out", str(tmp_path / "x.png")]) == 2
    assert "noise" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--psf", "square"])


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for opt in ("--image", "--psf", "--width", "--noise", "--out"):
        assert opt in out
    assert main([]) == 2  # no command: prints help, exits non-zero


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "physinv", "demo", "--help"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "--noise" in res.stdout
