"""PSF specs: ``physinv.psf.from_spec`` and ``parse_spec``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import psf
from physinv.psf import SPEC_KINDS, from_spec, parse_spec


@pytest.mark.parametrize("spec, direct", [
    ("gaussian:1.5", lambda: psf.gaussian(1.5)),
    ("gaussian:1.5,9", lambda: psf.gaussian(1.5, 9)),
    ("motion:9", lambda: psf.motion(9)),
    ("motion:9,30", lambda: psf.motion(9, 30)),
    ("motion:7.5,-45,13", lambda: psf.motion(7.5, -45, 13)),
    ("disk:2.5", lambda: psf.disk(2.5)),
    ("disk:2.5,11", lambda: psf.disk(2.5, 11)),
    ("airy:3", lambda: psf.airy(3)),
    ("airy:3,15", lambda: psf.airy(3, 15)),
    (" Gaussian : 2 , 7 ", lambda: psf.gaussian(2, 7)),
])
def test_each_kind_equals_the_direct_constructor(spec, direct):
    k = from_spec(spec)
    assert k.dtype == torch.float64
    assert torch.equal(k, direct())


def test_spec_kinds_document_every_kind():
    assert set(SPEC_KINDS) == {"gaussian", "motion", "disk", "airy"}
    for kind, (syntax, meaning) in SPEC_KINDS.items():
        assert syntax.startswith(f"{kind}:") and meaning


@pytest.mark.parametrize("spec, fragment", [
    ("", "psf spec is empty"),
    ("   ", "psf spec is empty"),
    ("box:3", "unknown kind 'box'"),
    ("gaussian", "gaussian needs SIGMA"),
    ("gaussian:", "gaussian needs SIGMA"),
    ("gaussian:abc", "SIGMA must be a number, got 'abc'"),
    ("gaussian:inf", "SIGMA must be finite"),
    ("gaussian:2,3.5", "SIZE must be a positive integer, got '3.5'"),
    ("gaussian:2,0", "SIZE must be a positive integer, got '0'"),
    ("gaussian:-1", "SIGMA must be > 0, got -1.0"),
    ("gaussian:0", "SIGMA must be > 0"),
    ("motion:5,nan", "ANGLE_DEG must be finite"),
    ("motion:5,30,9,1", "too many parameters (4)"),
    ("disk:1,2,3", "too many parameters (3)"),
    ("disk:1,,3", "empty parameter"),
    ("airy:2,", "empty parameter"),
    ("no/such/kernel.npy", "no such file"),
])
def test_bad_specs_name_the_problem(spec, fragment):
    with pytest.raises(ValueError) as exc:
        from_spec(spec)
    msg = str(exc.value)
    assert fragment in msg
    if spec.strip():
        assert repr(spec) in msg  # the message quotes what was given
    with pytest.raises(ValueError):
        parse_spec(spec)  # the cheap check refuses the same


def test_unknown_kind_lists_every_form():
    with pytest.raises(ValueError) as exc:
        from_spec("square:3")
    for syntax, _ in SPEC_KINDS.values():
        assert syntax in str(exc.value)
    assert ".npy" in str(exc.value)


def test_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="spec must be a str"):
        from_spec(2.0)  # type: ignore[arg-type]


def test_max_size_refuses_before_building():
    with pytest.raises(ValueError, match="1201 x 1201 pixels, larger than max_size=64"):
        from_spec("gaussian:200", max_size=64)
    assert from_spec("gaussian:200,31", max_size=64).shape == (31, 31)  # an explicit SIZE is honoured
    with pytest.raises(ValueError, match="max_size"):
        from_spec("gaussian:2", max_size=0)


# ----------------------------------------------------------------- files
def test_npy_png_and_tiff_files_are_normalised(tmp_path):
    import skimage.io
    import tifffile

    a = np.zeros((5, 7))
    a[2, 1:6] = [1, 2, 4, 2, 1]
    np.save(tmp_path / "k.npy", a)
    skimage.io.imsave(tmp_path / "k.png", (a * 60).astype(np.uint8), check_contrast=False)
    tifffile.imwrite(tmp_path / "k.tif", a.astype(np.float32))
    expected = torch.from_numpy(a / a.sum())
    for name in ("k.npy", "k.png", "k.tif"):
        k = from_spec(str(tmp_path / name))
        assert k.dtype == torch.float64 and k.shape == (5, 7)
        torch.testing.assert_close(k, expected, rtol=1e-6, atol=1e-7)
        assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-12)
    assert parse_spec(str(tmp_path / "k.npy")).kind == "file"
    assert torch.equal(from_spec(tmp_path / "k.npy"), from_spec(str(tmp_path / "k.npy")))  # os.PathLike


def test_an_existing_file_wins_over_the_kind_reading(tmp_path):
    k = np.array([[0.0, 1.0, 3.0]])
    path = tmp_path / "disk:3.npy"
    np.save(path, k)
    torch.testing.assert_close(from_spec(str(path)), torch.tensor([[0.0, 0.25, 0.75]], dtype=torch.float64))


def test_grey_rgb_png_is_accepted_colour_refused(tmp_path):
    import skimage.io

    grey = np.zeros((3, 3, 3), np.uint8)
    grey[1, 1] = 200
    grey[0, 1] = 100
    skimage.io.imsave(tmp_path / "grey.png", grey, check_contrast=False)
    torch.testing.assert_close(from_spec(str(tmp_path / "grey.png")), from_spec_array(grey[..., 0]))
    colour = grey.copy()
    colour[1, 1, 2] = 0
    skimage.io.imsave(tmp_path / "colour.png", colour, check_contrast=False)
    with pytest.raises(ValueError, match="colour image with differing channels"):
        from_spec(str(tmp_path / "colour.png"))


def from_spec_array(a):
    return psf.from_array(a.astype(np.float64))


@pytest.mark.parametrize("content, name, fragment", [
    (np.zeros((3, 3)), "zero.npy", "sums to zero"),
    (np.ones((2, 2, 2)), "cube.npy", "2-D"),
    (np.ones((3, 3)), "k.bmp", "unsupported file extension '.bmp'"),
    (None, "garbage.npy", "cannot be read"),
])
def test_bad_files_name_the_file(tmp_path, content, name, fragment):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"not an npy file")
    else:
        with open(path, "wb") as fh:
            np.save(fh, content)
    with pytest.raises(ValueError) as exc:
        from_spec(str(path))
    assert fragment in str(exc.value) and str(path) in str(exc.value)


def test_max_size_applies_to_files(tmp_path):
    np.save(tmp_path / "wide.npy", np.ones((3, 41)))
    with pytest.raises(ValueError, match=r"shape \(3, 41\), larger than max_size=32"):
        from_spec(str(tmp_path / "wide.npy"), max_size=32)


# ------------------------------------------------------------- properties
_DEFAULT_SIDE = {
    "gaussian": lambda p: 2 * math.ceil(3 * p) + 1,
    "motion": lambda p: math.ceil(p) + (1 - math.ceil(p) % 2),  # the smallest odd side >= length
    "disk": lambda p: 2 * math.ceil(p) + 1,
    "airy": lambda p: 2 * math.ceil(3 * p) + 1,
}
_DIRECT = {"gaussian": psf.gaussian, "motion": psf.motion, "disk": psf.disk, "airy": psf.airy}


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(SPEC_KINDS)),
       width=st.floats(0.3, 8.0, allow_nan=False),
       angle=st.one_of(st.none(), st.floats(-360.0, 360.0, allow_nan=False)),
       size=st.one_of(st.none(), st.integers(1, 33)))
def test_specs_give_unit_sum_and_the_stated_shape(kind, width, angle, size):
    params = [width] + ([angle if angle is not None else 0.0] if kind == "motion" and
                        (angle is not None or size is not None) else [])
    parts = [repr(p) for p in params] + ([str(size)] if size is not None else [])
    spec = f"{kind}:{','.join(parts)}"
    k = from_spec(spec)
    side = size if size is not None else _DEFAULT_SIDE[kind](width)
    assert k.shape == (side, side)
    assert k.dtype == torch.float64
    assert bool(torch.isfinite(k).all()) and float(k.min()) >= 0.0
    assert math.isclose(float(k.sum()), 1.0, rel_tol=0, abs_tol=1e-12)
    assert parse_spec(spec).default_side() == side
    assert torch.equal(k, _DIRECT[kind](*params, size=size))


def test_shake_reproduces_the_shipped_kernels_and_is_a_valid_psf():
    from physinv import assets

    for i, size in enumerate((15, 19, 23, 27)):
        shipped = torch.from_numpy(assets.load_array(f"psfs/shake_{i + 1}.npy"))
        torch.testing.assert_close(psf.shake(size, seed=1000 + i), shipped, rtol=0, atol=1e-15)
    for seed in (0, 1, 2**31):
        k = psf.shake(11, seed)
        assert k.shape == (11, 11) and bool((k >= 0).all())
        assert abs(float(k.sum()) - 1) < 1e-12
        assert torch.equal(k, psf.shake(11, seed))
        assert int((k > 1e-3).sum()) < 11 * 11 // 2  # a thin path, not a blob
    assert not torch.equal(psf.shake(11, 0), psf.shake(11, 1))
    for size in (2, 4, 0):
        with pytest.raises(ValueError, match="size must be"):
            psf.shake(size, 0)
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be an int >= 0"):
            psf.shake(11, seed)
