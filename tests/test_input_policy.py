"""The one input policy: untrusted sizes, dtypes, empty batches, NaN, and argument types."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import metrics, psf
from physinv._validate import (
    DEFAULT_MAX_ELEMENTS,
    check_int,
    check_real,
    check_size,
    limits,
    max_elements,
    set_max_elements,
)
from physinv.data import images
from physinv.operators import FFT2, Convolution, Gradient, Pad, Radon, Wavelet2D, power_iteration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _conv(boundary="circular"):
    return Convolution(psf.gaussian(1.0, 5), (16, 16), boundary)


# ------------------------------------------------------------------ size limit
def test_limit_default_context_and_global():
    assert max_elements() == DEFAULT_MAX_ELEMENTS == 2**28
    with limits(max_elements=10):
        assert max_elements() == 10
        with limits(max_elements=5):
            assert max_elements() == 5
        assert max_elements() == 10
    old = set_max_elements(1000)
    try:
        assert max_elements() == 1000
        with limits(max_elements=7):
            assert max_elements() == 7
    finally:
        set_max_elements(None)
    assert old == DEFAULT_MAX_ELEMENTS and max_elements() == DEFAULT_MAX_ELEMENTS


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_limit_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="max_elements"):
        with limits(max_elements=bad):
            pass


def test_limit_from_environment():
    code = ("from physinv._validate import max_elements, check_size; print(max_elements());"
            "check_size(101, 'x', 'n')")
    env = dict(os.environ, PHYSINV_MAX_ELEMENTS="100")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "100"
    assert "n: x of 101 elements exceeds the size limit of 100" in r.stderr
    env["PHYSINV_MAX_ELEMENTS"] = "lots"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "PHYSINV_MAX_ELEMENTS must be a positive integer" in r.stderr


def test_check_size_message_names_argument_size_and_remedy():
    with pytest.raises(ValueError) as e:
        with limits(max_elements=99):
            check_size(100, "a grid", "in_shape")
    msg = str(e.value)
    assert msg.startswith("in_shape:") and "100 elements" in msg and "99" in msg
    assert "set_max_elements" in msg and "PHYSINV_MAX_ELEMENTS" in msg
    assert check_size(99.0, "a", "b") == 99 if max_elements() >= 99 else True
    with pytest.raises(ValueError):
        check_size(math.inf, "a", "b")


@pytest.mark.parametrize("make, arg", [
    (lambda: Convolution(psf.gaussian(1.0, 5), (10**5, 10**5)), "in_shape"),
    (lambda: psf.gaussian(1e6), "size"),
    (lambda: psf.gaussian(1.0, 10**5), "size"),
    (lambda: psf.disk(1e5), "size"),
    (lambda: psf.airy(1e6), "size"),
    (lambda: psf.motion(1e12, 0.0, 5), "length"),
    (lambda: images.shepp_logan(10**6), "shape"),
    (lambda: images.random_phantom(10**6), "shape"),
    (lambda: images.textured_phantoms(10**4, 10**4), "n"),
    (lambda: Radon(16, 10**12), "angles"),
    (lambda: Radon(10**6, 1), "in_shape"),
    (lambda: Pad((4, 4), ((10**5, 10**5), (10**5, 10**5))), "pad"),
    (lambda: Wavelet2D((2**15, 2**15)), "in_shape"),
])
def test_untrusted_sizes_are_refused_before_allocating(make, arg):
    with pytest.raises(ValueError, match=f"^{arg}.*exceeds the size limit"):
        make()


def test_radon_memory_is_refused_by_max_bytes_or_the_limit():
    with pytest.raises(ValueError, match=r"angles=<10000000 angles>.*above max_bytes"):
        Radon(16, 10**7)
    with pytest.raises(ValueError, match="^angles: the stored entries .* exceeds the size limit"):
        Radon(16, 10**7, max_bytes=2**40)  # a raised max_bytes still meets the element limit
    with limits(max_elements=5000):
        with pytest.raises(ValueError, match="^n_detectors: a 8x1500 sinogram"):
            Radon(8, 8, n_detectors=1500, circle=False)


def test_the_limit_is_the_one_switch():
    with limits(max_elements=100):
        with pytest.raises(ValueError, match="in_shape"):
            Convolution(psf.gaussian(1.0, 5), (16, 16))
        with pytest.raises(ValueError, match="shape"):
            images.shepp_logan(16)
        assert psf.gaussian(1.0, 9).shape == (9, 9)  # 81 elements: under the limit
    assert Convolution(psf.gaussian(1.0, 5), (16, 16)).in_shape == (16, 16)


@pytest.mark.parametrize("levels", [5, 40, 10**12])
def test_wavelet_levels_beyond_the_shape(levels):
    with pytest.raises(ValueError, match=r"levels=\d+ is more than in_shape \(16, 16\) allows: at most 4"):
        Wavelet2D((16, 16), levels=levels)
    assert Wavelet2D((16, 16), levels=4).levels == 4


def test_from_config_refuses_deep_nesting_before_recursing():
    from physinv.operators import from_config
    from physinv.operators.base import MAX_CONFIG_DEPTH

    def nest(depth):
        node = {"type": "Identity", "in_shape": [2]}
        for _ in range(depth):
            node = {"type": "Adjoint", "op": node}
        return node

    assert from_config(nest(MAX_CONFIG_DEPTH - 1)).in_shape == (2,)
    for depth in (MAX_CONFIG_DEPTH, 10**4):
        with pytest.raises(ValueError, match="config: operators nested deeper than"):
            from_config(nest(depth))


# --------------------------------------------------------------- dtypes
OPERATORS = {
    "conv": lambda: _conv(),
    "conv_zero": lambda: _conv("zero"),
    "conv_valid": lambda: _conv("valid"),
    "fft": lambda: FFT2((16, 16)),
    "wavelet": lambda: Wavelet2D((16, 16), "db2", levels=2),
    "gradient": lambda: Gradient((16, 16)),
    "radon": lambda: Radon(16, 6, circle=False),
}


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(OPERATORS)), half=st.sampled_from([torch.float16, torch.bfloat16]),
       batch=st.sampled_from([(), (2,), (1, 3)]), seed=st.integers(0, 2**16))
def test_half_precision_is_computed_in_float32_and_cast_back(name, half, batch, seed):
    A = OPERATORS[name]()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch + A.in_shape, generator=g).to(half)
    y = A(x)
    ref = A(x.float())
    want = half if not ref.is_complex() else torch.complex64
    assert y.dtype == want and y.shape == ref.shape
    torch.testing.assert_close(y, ref.to(want))  # exactly the float32 result, rounded once
    z = torch.rand(batch + A.out_shape, generator=g).to(half)
    b = A.adjoint(z) if not ref.is_complex() else A.adjoint(z.to(torch.complex64))
    assert b.shape == x.shape


@pytest.mark.parametrize("name", sorted(OPERATORS))
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_integer_inputs_are_refused_naming_the_dtype(name, dtype):
    A = OPERATORS[name]()
    with pytest.raises(TypeError, match=f"x must be a .*floating.*{dtype}"):
        A(torch.zeros(A.in_shape, dtype=dtype))


@pytest.mark.parametrize("name", sorted(OPERATORS))
@pytest.mark.parametrize("lead", [(0,), (0, 3), (2, 0)])
def test_empty_batches_give_empty_results(name, lead):
    A = OPERATORS[name]()
    y = A(torch.zeros(lead + A.in_shape))
    assert tuple(y.shape) == lead + A.out_shape
    x = A.adjoint(torch.zeros(lead + A.out_shape, dtype=y.dtype))
    assert tuple(x.shape) == lead + A.in_shape
    assert A(torch.zeros(lead + A.in_shape, dtype=torch.float16)).shape[: len(lead)] == lead


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_nan_propagates_like_numpy(name):
    A = OPERATORS[name]()
    x = torch.zeros(2, *A.in_shape, dtype=torch.float64)
    x[0].view(-1)[x[0].numel() // 2 + 3] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = A(x)
    assert bool(y[0].isnan().any())  # NaN reaches the output of the image that has it ...
    assert not bool(y[1].isnan().any())  # ... and no other image of the batch


# ---------------------------------------------------------- argument types
@pytest.mark.parametrize("call, arg, exc", [
    (lambda: psf.gaussian("1"), "sigma", TypeError),
    (lambda: psf.gaussian(True), "sigma", TypeError),
    (lambda: psf.gaussian(None), "sigma", TypeError),
    (lambda: psf.gaussian(float("nan")), "sigma", ValueError),
    (lambda: psf.gaussian(1.0, 2.5), "size", ValueError),
    (lambda: psf.motion(5, "0"), "angle", TypeError),
    (lambda: psf.motion(5, float("inf")), "angle", ValueError),
    (lambda: psf.disk("2"), "radius", TypeError),
    (lambda: psf.airy(-1.0), "radius", ValueError),
    (lambda: _conv().svd(k=2.5), "k", TypeError),
    (lambda: _conv().svd(k="2"), "k", TypeError),
    (lambda: _conv().svd(k=True), "k", TypeError),
    (lambda: _conv().svd(k=0), "k", ValueError),
    (lambda: power_iteration(_conv(), n_iter=0), "n_iter", ValueError),
    (lambda: power_iteration(_conv(), n_iter=2.5), "n_iter", TypeError),
    (lambda: power_iteration(_conv(), tol=-1.0), "tol", ValueError),
    (lambda: power_iteration(_conv(), seed=-1), "seed", ValueError),
    (lambda: _conv("zero").norm(n_iter=0), "n_iter", ValueError),
    (lambda: Wavelet2D((16, 16), levels=2.0), "levels", ValueError),
    (lambda: metrics.psnr(torch.rand(8, 8), torch.rand(8, 8), data_range="1"), "data_range", TypeError),
    (lambda: metrics.psnr(torch.rand(8, 8), torch.rand(8, 8), data_range=True), "data_range", TypeError),
    (lambda: metrics.ssim(torch.rand(8, 8), torch.rand(8, 8), data_range=0), "data_range", ValueError),
    (lambda: metrics.ssim(torch.rand(8, 8), torch.rand(8, 8), win_size=7.0), "win_size", TypeError),
    (lambda: metrics.ssim(torch.rand(8, 8), torch.rand(8, 8), k1="0.01"), "k1", TypeError),
    (lambda: metrics.psnr(torch.rand(8, 8) > 0.5, torch.rand(8, 8) > 0.5), "x", TypeError),
    (lambda: metrics.mse(torch.rand(8, 8, dtype=torch.complex64), torch.rand(8, 8)), "x", TypeError),
])
def test_bad_arguments_name_themselves(call, arg, exc):
    with pytest.raises(exc, match=f"^{arg} |^{arg}:|{arg} must"):
        call()


def test_check_int_and_real():
    assert check_int(np.int64(3), "k") == 3
    assert check_real(np.float32(1.5), "s") == 1.5
    assert check_real(torch.tensor(2.0), "s") == 2.0
    for bad in (True, "1", 1.0, None):
        with pytest.raises(TypeError, match="k must be an integer"):
            check_int(bad, "k")
    for bad in (True, "1", None, 1j):
        with pytest.raises(TypeError, match="s must be a real number"):
            check_real(bad, "s")


# ---------------------------------------------------------------- PSFs
def test_negative_sum_psf_is_refused_not_flipped():
    with pytest.raises(ValueError, match="psf sums to -1 < 0"):
        psf.from_array(-psf.gaussian(1.0))
    with pytest.raises(ValueError, match="psf sums to"):
        psf.check_psf([[1.0, -3.0]])
    # Convolution takes the PSF as given (no normalisation): a negative kernel is a valid operator
    A = Convolution(-psf.gaussian(1.0, 5), (8, 8))
    assert float(A.psf.sum()) == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_psfs_are_refused(bad):
    k = np.ones((3, 3))
    k[1, 2] = bad
    with pytest.raises(ValueError, match="psf contains non-finite"):
        psf.from_array(k)
    with pytest.raises(ValueError, match="psf contains non-finite"):
        Convolution(k, (8, 8))


# ------------------------------------------------------------- metrics
def test_metrics_on_uint8_use_the_dtype_range():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (2, 32, 32), generator=g, dtype=torch.uint8)
    b = torch.randint(0, 256, (2, 32, 32), generator=g, dtype=torch.uint8)
    d = a.double() - b.double()
    torch.testing.assert_close(metrics.mse(a, b), (d**2).mean(dim=(-2, -1)))  # no uint8 wrap-around
    torch.testing.assert_close(metrics.psnr(a, b), 10 * torch.log10(255.0**2 / (d**2).mean(dim=(-2, -1))))
    torch.testing.assert_close(metrics.ssim(a, b), metrics.ssim(a.double(), b.double(), data_range=255.0))
    torch.testing.assert_close(metrics.ssim(a, a), torch.ones(2, dtype=torch.float64))
    i16 = a.to(torch.int16)
    torch.testing.assert_close(metrics.psnr(i16, b.to(torch.int16)),
                               10 * torch.log10(65535.0**2 / (d**2).mean(dim=(-2, -1))))


@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="scikit-image not installed")
def test_uint8_metrics_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, (32, 32)), 0, 255).astype(np.uint8)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert float(metrics.psnr(tb, ta)) == pytest.approx(peak_signal_noise_ratio(a, b), rel=1e-10)
    assert float(metrics.ssim(tb, ta)) == pytest.approx(structural_similarity(b, a), rel=1e-7)


def test_metrics_propagate_nan():
    x = torch.rand(2, 16, 16, dtype=torch.float64)
    y = x.clone()
    y[0, 3, 3] = float("nan")
    for f in (metrics.mse, metrics.psnr, metrics.ssim):
        out = f(y, x)
        assert bool(out[0].isnan()) and not bool(out[1].isnan())


# ---------------------------------------------------------------- Radon
def test_radon_svd_cache_dir_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    A = Radon(8, 4)
    F = A.svd(cache_dir="~/radon_cache")
    assert A.cached_factorization() is F and A.svd() is F  # one cache, on the operator
    files = os.listdir(tmp_path / "radon_cache")
    assert len(files) == 1 and files[0].startswith("radon_svd_")
    B = Radon(8, 4)
    assert B.cached_factorization() is None
    torch.testing.assert_close(B.svd(cache_dir="~/radon_cache").s, F.s)  # read back from the file
    assert not os.path.exists(os.path.join(os.getcwd(), "~"))


def test_radon_svd_options_pass_through_the_base_hook():
    A = Radon(8, 4)
    with pytest.raises(ValueError, match="max_bytes"):
        A.svd(max_bytes=10)
    assert A.cached_factorization() is None  # a refused factorization is not cached


def test_radon_circle_warns_on_content_outside_the_circle():
    A = Radon(16, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A(torch.ones(16, 16) * A.circle_mask())  # inside only: no warning
    with pytest.warns(UserWarning, match="outside the inscribed circle"):
        A(torch.ones(16, 16))


# ------------------------------------------------------------- the sweep
def test_fuzz_sweep_fast_subset():
    path = os.path.join(ROOT, "scripts", "fuzz_inputs.py")
    spec = importlib.util.spec_from_file_location("fuzz_inputs", path)
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz  # dataclasses look the module up
    spec.loader.exec_module(fuzz)
    mine = [c for c in fuzz.cases() if c.fast and c.area in ("size", "operators", "psf", "metrics", "data")]
    table = fuzz.sweep(mine, timeout=60.0, memory_gib=8.0, verbose=True)
    bad = {area: {k: v for k, v in counts.items() if k not in ("clear", "policy")}
           for area, counts in table.items()}
    assert all(not v for v in bad.values()), bad
    assert sum(sum(c.values()) for c in table.values()) == len(mine) > 50
