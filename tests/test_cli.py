"""The physinv command line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest
import torch

import physinv
import physinv.cli
from physinv.bench.demo import run_demo, save_demo_figure
from physinv.cli import build_parser, main
from physinv.data.images import skimage_image, skimage_images

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """main() sets torch's thread count from --threads; give every test the count it started with."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _demo(*args: str) -> list[str]:
    return ["demo", "--size", "48", "--threads", "1", *args]


# ------------------------------------------------------------------ the demo
def test_demo_improves_psnr_and_writes_png(tmp_path):
    out = tmp_path / "demo.png"
    r = run_demo(size=96)
    save_demo_figure(r, out)
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert r["psnr_tikhonov"] > r["psnr_blurred"] + 0.5
    assert r["lam"] > 0
    assert r["truth"].shape == r["observed"].shape == r["restored"].shape == (96, 96)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves no temporary behind


def test_run_demo_is_deterministic_and_validates(tmp_path):
    a = run_demo(size=32, psf="motion:5,30", seed=3)
    b = run_demo(size=32, psf=a["psf"], seed=3)  # the same kernel given as an array
    np.testing.assert_array_equal(a["observed"], b["observed"])
    assert a["lam"] == b["lam"]
    with pytest.raises(ValueError, match="noise"):
        run_demo(size=32, noise=-1.0)
    with pytest.raises(ValueError, match="larger than the 32 x 32 image"):
        run_demo(size=32, psf="gaussian:50")
    with pytest.raises(ValueError, match="does not exist"):
        save_demo_figure(a, tmp_path / "missing" / "d.png")
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_demo_figure(a, tmp_path / "d.bmp")
    assert not (tmp_path / "missing").exists()


def test_main_demo_prints_psnr(tmp_path, capsys):
    rc = main(["demo", "--size", "64", "--psf", "disk", "--width", "2", "--out", str(tmp_path / "d.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "PSNR Tikhonov" in out and "dB" in out


@pytest.mark.parametrize("name, magic", [("d.png", PNG_MAGIC), ("d.jpg", JPEG_MAGIC), ("D.JPEG", JPEG_MAGIC),
                                         ("d.pdf", b"%PDF")])
def test_demo_writes_the_format_its_extension_names(tmp_path, capsys, name, magic):
    out = tmp_path / name
    assert main(_demo("--out", str(out))) == 0
    assert out.read_bytes()[:len(magic)] == magic
    assert f"wrote {out}" in capsys.readouterr().out


def test_demo_out_folder_and_default_folder(tmp_path, monkeypatch):
    run = tmp_path / "run1"
    assert main(_demo("--out", str(run))) == 0  # a missing folder whose parent exists is created
    assert (run / "demo.png").read_bytes()[:8] == PNG_MAGIC
    monkeypatch.chdir(tmp_path)
    assert main(_demo()) == 0
    assert (tmp_path / "physinv_out" / "demo.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("out", ["missing/dir/x.png", "missing/run"])
def test_demo_refuses_a_missing_parent_folder(tmp_path, capsys, out):
    with pytest.raises(SystemExit) as exc:
        main(_demo("--out", str(tmp_path / out)))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "does not exist" in err
    assert not (tmp_path / "missing").exists()


def test_demo_psf_spec_equals_kind_and_width(tmp_path, capsys):
    assert main(_demo("--psf", "motion", "--width", "5", "--out", str(tmp_path / "a.png"))) == 0
    a = capsys.readouterr().out
    assert main(_demo("--psf", "motion:5,30", "--out", str(tmp_path / "b.png"))) == 0
    b = capsys.readouterr().out
    psnr_lines = [line.split("(")[0] for line in a.splitlines() if line.startswith("PSNR")]
    assert psnr_lines == [line.split("(")[0] for line in b.splitlines() if line.startswith("PSNR")]


def test_threads_flag_sets_torch_threads(tmp_path):
    torch.set_num_threads(2)
    assert main(_demo("--threads", "1", "--out", str(tmp_path / "t.png"))) == 0
    assert torch.get_num_threads() == 1


# --------------------------------------------------------------- bad input
def test_bad_arguments_exit_nonzero(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--noise", "-1", "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert "noise" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--psf", "square"])


@pytest.mark.parametrize("flag, value, fragment", [
    ("--size", "-5", "must be a non-negative integer, got -5"),
    ("--size", "abc", "got abc"),
    ("--width", "0", "must be a finite number > 0, got 0"),
    ("--noise", "nan", "got nan"),
    ("--noise", "-0.1", "must be a finite number >= 0"),
    ("--seed", "-1", "must be a non-negative integer"),
    ("--threads", "0", "must be a positive integer, got 0"),
    ("--psf", "square", "unknown kind 'square'"),
    ("--psf", "gaussian:-1", "SIGMA must be > 0"),
    ("--psf", "disk:2,x", "SIZE must be a positive integer"),
    ("--out", "x.foo", "unsupported figure format '.foo'"),
    ("--image", "lena", "invalid choice"),
])
def test_bad_flag_exits_2_naming_the_flag(capsys, flag, value, fragment):
    with pytest.raises(SystemExit) as exc:
        main(["demo", flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and fragment in err
    assert "Traceback" not in err


def test_library_errors_exit_2_without_traceback(tmp_path, capsys):
    # the kernel (81 x 81) is larger than the image (32 x 32): found by the library
    assert main(["demo", "--size", "32", "--psf", "disk:40", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physinv demo: error: ") and "larger than the 32 x 32 image" in err
    assert "Traceback" not in err
    # --width next to a full spec would be ignored: refused instead
    assert main(_demo("--psf", "gaussian:2", "--width", "3", "--out", str(tmp_path / "y.png"))) == 2
    assert "--width" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("physinv.cli.demo.run_demo", interrupted)
    assert main(_demo()) == 130
    err = capsys.readouterr().err
    assert err == "physinv demo: interrupted\n"


# --------------------------------------------------------- the command set
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


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _commands() -> list[str]:
    return sorted(_command_parsers())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: physinv {command}")


def test_threads_help_says_why():
    help_text = _command_parsers()["demo"].format_help()
    assert "--threads" in help_text and "oversubscribes" in help_text


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"physinv {physinv.__version__}\n"


def test_commands_register_through_modules(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(
        "def register(subparsers, common):\n"
        "    p = subparsers.add_parser('hello', parents=[common['seed']])\n"
        "    p.set_defaults(handler=lambda args: 7 + args.seed)\n"
    )
    (tmp_path / "broken.py").write_text("import physinv_no_such_dependency\n")
    monkeypatch.setattr(physinv.cli, "__path__", [*physinv.cli.__path__, str(tmp_path)])
    # a command module that does not exist yet is skipped; one that is there is dispatched to
    monkeypatch.setattr(physinv.cli, "COMMAND_MODULES", ("demo", "not_written_yet", "hello"))
    assert main(["hello", "--seed", "2"]) == 9
    # a module that exists but fails to import is an error, never skipped
    monkeypatch.setattr(physinv.cli, "COMMAND_MODULES", ("demo", "broken"))
    with pytest.raises(ModuleNotFoundError, match="physinv_no_such_dependency"):
        build_parser()
    for name in ("hello", "broken"):
        sys.modules.pop(f"physinv.cli.{name}", None)


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "physinv", "demo", "--help"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "--noise" in res.stdout


def test_module_entry_point_version():
    res = subprocess.run([sys.executable, "-m", "physinv", "--version"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and res.stdout == f"physinv {physinv.__version__}\n"


# ----------------------------------------------------- the demo's image loader
def test_skimage_image_resizes_the_bundled_picture():
    full = skimage_image("camera")
    np.testing.assert_array_equal(full, skimage_images(["camera"])["camera"])
    small = skimage_image("astronaut", size=(24, 40))
    assert small.shape == (24, 40) and small.dtype == np.float64
    assert 0.0 <= small.min() <= small.max() <= 1.0
    # anti-aliased resizing keeps the mean brightness
    assert np.isclose(skimage_image("camera", 64).mean(), full.mean(), atol=0.01)
    with pytest.raises(ValueError, match="size"):
        skimage_image("camera", size=0)
    with pytest.raises(ValueError, match="unknown scikit-image picture 'lena'"):
        skimage_image("lena")
    with pytest.raises(TypeError, match="name"):
        skimage_image(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------ physinv deblur
def _blurred_picture(dtype, colour: bool, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A smooth test picture and its circular Gaussian blur, quantised to ``dtype`` (or float)."""
    from physinv import psf as _psf
    from physinv.operators import Convolution

    u = np.linspace(0, 1, size)
    x = 0.5 + 0.4 * np.sin(2 * np.pi * 2 * u)[:, None] * np.cos(2 * np.pi * 3 * u)[None, :]
    x = np.stack([x, x[::-1], x[:, ::-1]], -1) if colour else x
    A = Convolution(_psf.gaussian(1.5), (size, size))
    t = torch.from_numpy(np.moveaxis(x, -1, 0) if colour else x)
    y = A(t).numpy()
    y = np.moveaxis(y, 0, -1) if colour else y
    if dtype is None:
        return x, y
    top = np.iinfo(dtype).max
    return x, np.round(np.clip(y, 0, 1) * top).astype(dtype)


@pytest.mark.parametrize("ext", [".png", ".tif", ".npy"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("colour", [False, True])
def test_deblur_round_trips_format_depth_size_and_colour(tmp_path, capsys, ext, dtype, colour):
    from physinv.cli.deblur import read_image, write_image

    x, y = _blurred_picture(dtype, colour)
    src, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    write_image(src, y)
    assert np.array_equal(read_image(src), y)  # the reader gives back exactly what was written
    code = main(["deblur", str(src), "--psf", "gaussian:1.5", "-o", str(out), "--method", "wiener",
                 "--boundary", "circular", "--threads", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "noise sigma (estimated" in text and "method: wiener" in text and "time:" in text
    r = read_image(out)
    assert r.dtype == y.dtype and r.shape == y.shape
    top = float(np.iinfo(dtype).max)
    err_in = np.abs(y / top - x)[4:-4, 4:-4].mean()
    err_out = np.abs(r / top - x)[4:-4, 4:-4].mean()
    assert err_out < err_in  # it deblurred: closer to the truth than the data


def test_deblur_default_method_and_float_npy(tmp_path, capsys):
    x, y = _blurred_picture(None, False, size=32)
    src, out = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(src, y)
    assert main(["deblur", str(src), "--psf", "gaussian:1.5", "-o", str(out), "--noise-sigma", "0.001",
                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    from physinv.deblur import AUTO

    assert f"method: {AUTO[0]}  boundary: " in text and "noise sigma (given" in text
    r = np.load(out)
    assert r.dtype == y.dtype and r.shape == y.shape
    assert np.abs(r - x).mean() < np.abs(y - x).mean()


def test_deblur_16bit_png_keeps_precision(tmp_path):
    from physinv.cli.deblur import read_image, write_image

    a = (np.arange(6 * 7 * 3, dtype=np.uint16).reshape(6, 7, 3) * 997) % 65535
    write_image(tmp_path / "c.png", a.astype(np.uint16))
    b = read_image(tmp_path / "c.png")
    assert b.dtype == np.uint16 and np.array_equal(a, b)  # more than 256 distinct values survive
    assert len(np.unique(b)) > 100


@pytest.mark.parametrize("argv, fragment", [
    (["--psf", "square:2"], "argument --psf: "),
    (["--psf", "gaussian:-1"], "argument --psf: "),
    (["--noise-sigma", "-1"], "argument --noise-sigma: "),
    (["--noise-sigma", "nan"], "argument --noise-sigma: "),
    (["--method", "magic"], "argument --method: "),
    (["--boundary", "torus"], "argument --boundary: "),
])
def test_deblur_bad_flag_exits_2_naming_it(tmp_path, capsys, argv, fragment):
    src = tmp_path / "a.npy"
    np.save(src, np.zeros((16, 16)))
    base = {"--psf": "gaussian:1", "-o": str(tmp_path / "b.npy")}
    given = dict(zip(argv[::2], argv[1::2]))
    args = ["deblur", str(src)] + [t for k, v in {**base, **given}.items() for t in (k, v)]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "b.npy").exists()


def test_deblur_bad_files_exit_2(tmp_path, capsys):
    src = tmp_path / "a.npy"
    np.save(src, np.zeros((16, 16)))
    for args, fragment in ((["deblur", str(tmp_path / "none.npy"), "--psf", "gaussian:1", "-o", "x.npy"],
                            "argument IMAGE: no such file"),
                           (["deblur", str(src), "--psf", "gaussian:1", "-o", str(tmp_path / "x.jpg")],
                            "argument -o/--out: unsupported format")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        assert fragment in capsys.readouterr().err
    # a PSF larger than the image and a format change are refused by the library: exit 2, no file
    assert main(["deblur", str(src), "--psf", "disk:20", "-o", str(tmp_path / "y.npy")]) == 2
    assert "larger than the image" in capsys.readouterr().err
    assert main(["deblur", str(src), "--psf", "gaussian:1", "-o", str(tmp_path / "y.tif")]) == 2
    assert "keeps the input's format" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "y.tif").exists()


def test_deblur_auto_boundary_follows_periodicity():
    from physinv.deblur import deblur_with_info

    rng = np.random.default_rng(0)
    scene = rng.random((72, 72))
    # a frame cut from a larger picture: opposite edges differ, so the valid model is used
    ramp = np.linspace(0, 1, 40)[None, :] * np.ones((40, 1)) * 0.5 + 0.1 * scene[:40, :40]
    assert deblur_with_info(ramp, "gaussian:1", 0.01).info["boundary"] == "valid"
    # a periodic picture (one period of a sine in both directions): the circular model
    u = np.arange(40) / 40
    periodic = 0.5 + 0.3 * np.sin(2 * np.pi * u)[:, None] * np.cos(2 * np.pi * u)[None, :]
    assert deblur_with_info(periodic, "gaussian:1", 0.01).info["boundary"] == "circular"
    # an explicit boundary always wins
    assert deblur_with_info(periodic, "gaussian:1", 0.01, boundary="valid").info["boundary"] == "valid"
