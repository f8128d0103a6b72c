"""Bad-input sweep over physinv's public API: how does each entry point answer a bad input?

Every case calls one entry point with one bad input and is classified as

- ``clear``: a ``ValueError``/``TypeError`` (or, for files, ``OSError``; for a
  missing factorization, physinv's ``FactorizationError``) whose message
  names the argument;
- ``policy``: a documented answer that is not an error (half precision
  computed in float32, an empty batch giving an empty result, NaN
  propagated, integer images scored with the dtype's range);
- ``obscure``: any other exception, or a ValueError/TypeError not naming the
  argument;
- ``silent``: it returned, though the input was invalid;
- ``memory``: it ran into the per-case address-space limit;
- ``hang``: it ran past the per-case time limit.

Each case runs in a forked child with a time limit (``--timeout``) and an
address-space limit (``--memory``), so a blow-up or hang is measured, not
suffered. Prints one line per non-clear case and a count table per area.

Usage::

    python scripts/fuzz_inputs.py [--timeout 20] [--memory 6] [--only psf,metrics] [--fast]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import signal
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import physinv
from physinv import metrics, psf
from physinv.data import images
from physinv.operators import (
    FFT2,
    Convolution,
    Diagonal,
    FactorizationError,
    Gradient,
    Matrix,
    Pad,
    Radon,
    Wavelet2D,
    from_config,
    power_iteration,
)

CLASSES = ("clear", "policy", "obscure", "silent", "memory", "hang")


@dataclass
class Case:
    area: str
    name: str
    call: Callable[[], Any]
    arg: str | None  # the argument a clear error names; None: a non-error (policy) answer is expected
    check: Callable[[Any], bool] | None = None  # for policy cases: is the result the documented one?
    fast: bool = True


def _finite(r: Any) -> bool:
    t = getattr(r, "x", r)
    return isinstance(t, torch.Tensor) and bool(torch.isfinite(t).all())


def _conv() -> Convolution:
    return Convolution(psf.gaussian(1.0, 5), (16, 16))


def _radon() -> Radon:
    return Radon(16, 8)


def cases() -> list[Case]:
    f64 = torch.float64
    x = torch.rand(16, 16, dtype=f64)
    u8 = torch.randint(0, 256, (16, 16), dtype=torch.uint8)
    nan = torch.full((16, 16), float("nan"))
    big = 10**5
    out: list[Case] = []

    def add(area, name, call, arg, check=None, fast=True):
        out.append(Case(area, name, call, arg, check, fast))

    # ------------------------------------------------------------------ sizes
    add("size", "Convolution huge in_shape", lambda: Convolution(psf.gaussian(1.0, 5), (big, big)),
        "in_shape")
    add("size", "gaussian(1e6)", lambda: psf.gaussian(1e6), "size")
    add("size", "disk(1e5)", lambda: psf.disk(1e5), "size")
    add("size", "airy(1e6)", lambda: psf.airy(1e6), "size")
    add("size", "motion(1e12, size=5)", lambda: psf.motion(1e12, 0.0, 5), "length")
    add("size", "shepp_logan(10**6)", lambda: images.shepp_logan(10**6), "shape")
    add("size", "random_phantom(10**6)", lambda: images.random_phantom(10**6), "shape")
    add("size", "textured_phantoms(10**4, 10**4)", lambda: images.textured_phantoms(10**4, 10**4), "n")
    add("size", "Radon(16, 10**7)", lambda: Radon(16, 10**7), "angles")
    add("size", "Radon(10**6, 1)", lambda: Radon(10**6, 1), "in_shape")
    add("size", "Radon(16, 10**12)", lambda: Radon(16, 10**12), "angles")
    add("size", "Wavelet2D levels=10**12", lambda: Wavelet2D((16, 16), levels=10**12), "levels")
    add("size", "Wavelet2D levels=5 on 16x16", lambda: Wavelet2D((16, 16), levels=5), "levels")
    add("size", "Pad huge pad", lambda: Pad((4, 4), ((big, big), (big, big))), "pad")
    add("size", "FFT2 huge", lambda: FFT2((big, big)).to_dense(), "max_entries")
    add("size", "from_config deep nesting",
        lambda: from_config(_nested(5000)), "config")

    # ------------------------------------------------------------ operators
    add("operators", "Convolution float16", lambda: _conv()(x.half()), None,
        lambda r: r.dtype == torch.float16 and _finite(r))
    add("operators", "Convolution bfloat16 adjoint", lambda: _conv().H(x.bfloat16()), None,
        lambda r: r.dtype == torch.bfloat16)
    add("operators", "Radon float16", lambda: _radon()(x.half() * _radon().circle_mask()), None,
        lambda r: r.dtype == torch.float16 and _finite(r))
    add("operators", "Convolution empty batch", lambda: _conv()(torch.zeros(0, 16, 16)), None,
        lambda r: tuple(r.shape) == (0, 16, 16))
    add("operators", "Wavelet2D empty batch", lambda: Wavelet2D((16, 16))(torch.zeros(0, 16, 16)), None,
        lambda r: tuple(r.shape) == (0, 16, 16))
    add("operators", "FFT2 empty batch", lambda: FFT2((16, 16))(torch.zeros(0, 16, 16)), None,
        lambda r: r.shape[0] == 0)
    add("operators", "Radon empty batch", lambda: _radon()(torch.zeros(0, 16, 16)), None,
        lambda r: r.shape[0] == 0)
    add("operators", "Convolution NaN input", lambda: _conv()(nan), None, lambda r: bool(r.isnan().all()))
    add("operators", "Convolution int input", lambda: _conv()(torch.ones(16, 16, dtype=torch.int64)), "x")
    add("operators", "Convolution wrong shape", lambda: _conv()(torch.rand(15, 16)), "x")
    add("operators", "Convolution list input", lambda: _conv()([[1.0]]), "x")
    add("operators", "Convolution bad boundary", lambda: Convolution(psf.gaussian(1.0, 5), (16, 16), "foo"),
        "boundary")
    add("operators", "Convolution in_shape str", lambda: Convolution(psf.gaussian(1.0, 5), "16"), "in_shape")
    add("operators", "Convolution in_shape 2.5", lambda: Convolution(psf.gaussian(1.0, 5), (16, 2.5)),
        "in_shape")
    add("operators", "Convolution psf larger than image", lambda: Convolution(np.ones((9, 9)), (4, 4)), "psf")
    add("operators", "Convolution NaN psf", lambda: Convolution(np.full((3, 3), np.nan), (8, 8)), "psf")
    add("operators", "svd(k=2.5)", lambda: _conv().svd(k=2.5), "k")
    add("operators", "svd(k=0)", lambda: _conv().svd(k=0), "k")
    add("operators", "svd(k='2')", lambda: _conv().svd(k="2"), "k")
    add("operators", "power_iteration(n_iter=0)", lambda: power_iteration(_conv(), n_iter=0), "n_iter")
    add("operators", "power_iteration(n_iter=2.5)", lambda: power_iteration(_conv(), n_iter=2.5), "n_iter")
    add("operators", "power_iteration(tol=-1)", lambda: power_iteration(_conv(), tol=-1.0), "tol")
    add("operators", "norm(n_iter=0) (no exact norm)",
        lambda: Convolution(psf.gaussian(1.0, 5), (16, 16), "zero").norm(n_iter=0), "n_iter")
    add("operators", "Wavelet2D levels=2.0", lambda: Wavelet2D((16, 16), levels=2.0), "levels")
    add("operators", "Wavelet2D bad wavelet", lambda: Wavelet2D((16, 16), "db99"), "wavelet")
    add("operators", "Gradient bad boundary", lambda: Gradient((8, 8), "foo"), "boundary")
    add("operators", "Diagonal NaN", lambda: Diagonal(torch.tensor([1.0, float("nan")])), "d")
    add("operators", "Matrix 3-D", lambda: Matrix(torch.zeros(2, 2, 2)), "matrix")
    add("operators", "Radon angles str", lambda: Radon(16, "8"), "angles")
    add("operators", "Radon angles NaN", lambda: Radon(16, [0.0, float("nan")]), "angles")
    add("operators", "Radon circle='yes'", lambda: Radon(16, 8, circle="yes"), "circle")
    add("operators", "Radon n_detectors=0", lambda: Radon(16, 8, n_detectors=0), "n_detectors")
    add("operators", "Radon.svd(k=2.5)", lambda: _radon().svd(k=2.5), "k")
    add("operators", "from_config unknown type", lambda: from_config({"type": "Nope"}), "type")

    # ------------------------------------------------------------------- psf
    add("psf", "gaussian('1')", lambda: psf.gaussian("1"), "sigma")
    add("psf", "gaussian(True)", lambda: psf.gaussian(True), "sigma")
    add("psf", "gaussian(-1)", lambda: psf.gaussian(-1.0), "sigma")
    add("psf", "gaussian(nan)", lambda: psf.gaussian(float("nan")), "sigma")
    add("psf", "gaussian(1, size=2.5)", lambda: psf.gaussian(1.0, 2.5), "size")
    add("psf", "motion angle str", lambda: psf.motion(5, "0"), "angle")
    add("psf", "disk(inf)", lambda: psf.disk(float("inf")), "radius")
    add("psf", "from_array negative sum", lambda: psf.from_array(-psf.gaussian(1.0)), "psf")
    add("psf", "from_array NaN", lambda: psf.from_array(np.full((3, 3), np.nan)), "psf")
    add("psf", "from_array inf", lambda: psf.from_array(np.full((3, 3), np.inf)), "psf")
    add("psf", "from_array 1-D", lambda: psf.from_array([1.0, 2.0]), "psf")
    add("psf", "from_array complex", lambda: psf.from_array(np.ones((2, 2), complex)), "psf")
    add("psf", "from_spec garbage", lambda: psf.from_spec("gaussian:abc"), "gaussian")

    # --------------------------------------------------------------- metrics
    add("metrics", "psnr uint8", lambda: metrics.psnr(u8, u8 // 2), None, lambda r: _finite(r))
    add("metrics", "mse uint8 (no wrap-around)", lambda: metrics.mse(u8 * 0, u8 * 0 + 1), None,
        lambda r: float(r) == 1.0)
    add("metrics", "ssim uint8 uses 255", lambda: metrics.ssim(u8, u8), None, lambda r: float(r) == 1.0)
    add("metrics", "psnr data_range='1'", lambda: metrics.psnr(x, x / 2, data_range="1"), "data_range")
    add("metrics", "psnr data_range=True", lambda: metrics.psnr(x, x / 2, data_range=True), "data_range")
    add("metrics", "psnr data_range=0", lambda: metrics.psnr(x, x / 2, data_range=0), "data_range")
    add("metrics", "psnr NaN (documented NaN)", lambda: metrics.psnr(nan.double(), x), None,
        lambda r: bool(torch.isnan(r).all()))
    add("metrics", "ssim win_size=4", lambda: metrics.ssim(x, x, win_size=4), "win_size")
    add("metrics", "ssim win_size=7.0", lambda: metrics.ssim(x, x, win_size=7.0), "win_size")
    add("metrics", "ssim shape mismatch", lambda: metrics.ssim(x, x[:8]), "ref")
    add("metrics", "psnr bool images", lambda: metrics.psnr(x > 0.5, x > 0.2), "x")
    add("metrics", "psnr numpy input", lambda: metrics.psnr(x.numpy(), x), "x")
    add("metrics", "dice float masks", lambda: metrics.dice(x, x), "pred")

    # ------------------------------------------------------------------ data
    add("data", "shepp_logan('64')", lambda: images.shepp_logan("64"), "shape")
    add("data", "shepp_logan(0)", lambda: images.shepp_logan(0), "shape")
    add("data", "shepp_logan(True)", lambda: images.shepp_logan(True), "shape")
    add("data", "random_phantom bad kind", lambda: images.random_phantom(32, kind="foo"), "kind")
    add("data", "random_phantom seed=-1", lambda: images.random_phantom(32, seed=-1), "seed")
    add("data", "textured_phantoms size=2.5", lambda: images.textured_phantoms(2, 2.5), "size")
    add("data", "random_patches too large", lambda: images.random_patches([np.zeros((8, 8))], 16, 2), "size")
    add("data", "to_gray_float NaN image", lambda: images.to_gray_float(np.full((4, 4), np.nan)), "image")
    add("data", "to_gray_float 4-D", lambda: images.to_gray_float(np.zeros((2, 2, 2, 2))), "image")
    add("data", "H5Dataset missing file", lambda: physinv.data.H5Dataset("/nonexistent/file.h5"), "file.h5")

    # ------------------------------------------ solvers and nets (read-only calls)
    from physinv import nets, solvers

    A = _conv
    y = lambda: A()(x)  # noqa: E731
    add("solvers", "cgls n_iter=0", lambda: solvers.cgls(A(), y(), n_iter=0), "n_iter")
    add("solvers", "cgls n_iter=2.5", lambda: solvers.cgls(A(), y(), n_iter=2.5), "n_iter")
    add("solvers", "cgls NaN y", lambda: solvers.cgls(A(), nan.double()), "y")
    add("solvers", "cgls damp=-1", lambda: solvers.cgls(A(), y(), damp=-1.0), "damp")
    add("solvers", "landweber step='1'", lambda: solvers.landweber(A(), y(), step="1"), "step")
    add("solvers", "landweber step=10 (diverges)", lambda: solvers.landweber(A(), y(), n_iter=50, step=10.0),
        "step")
    add("solvers", "tikhonov lam=-1", lambda: solvers.tikhonov(A(), y(), -1.0), "lam")
    add("solvers", "tikhonov lam=nan", lambda: solvers.tikhonov(A(), y(), float("nan")), "lam")
    add("solvers", "tikhonov lam='1'", lambda: solvers.tikhonov(A(), y(), "1"), "lam")
    add("solvers", "fista lam=-1", lambda: solvers.fista(A(), y(), -1.0, n_iter=5), "lam")
    add("solvers", "tv lam=True", lambda: solvers.tv(A(), y(), True, n_iter=5), "lam")
    add("solvers", "tv n_iter=0", lambda: solvers.tv(A(), y(), 0.1, n_iter=0), "n_iter")
    add("solvers", "cgls float16 y", lambda: solvers.cgls(A(), y().half(), n_iter=5), None,
        lambda r: _finite(r))
    add("solvers", "cgls empty batch", lambda: solvers.cgls(A(), torch.zeros(0, 16, 16), n_iter=5), None,
        lambda r: getattr(r, "x", r).shape[0] == 0)
    add("solvers", "fbp wrong operator", lambda: solvers.fbp(torch.zeros(8, 16), A()), "A")
    add("solvers", "fbp bad filter", lambda: solvers.fbp(torch.zeros(8, 16), _radon(), filter="foo"),
        "filter")
    add("nets", "DnCNN depth=0", lambda: nets.DnCNN(depth=0), "depth")
    add("nets", "DnCNN depth=2.5", lambda: nets.DnCNN(depth=2.5), "depth")
    add("nets", "UNet depth=-1", lambda: nets.UNet(depth=-1), "depth")
    add("nets", "UnrolledLandweber n_iter=0", lambda: nets.UnrolledLandweber(A(), n_iter=0), "n_iter")
    add("nets", "UnrolledISTA n_iter='3'", lambda: nets.UnrolledISTA(A(), n_iter="3"), "n_iter")
    add("nets", "SpectralFilterNet on zero-boundary op",
        lambda: nets.SpectralFilterNet(Convolution(psf.gaussian(1.0, 5), (16, 16), "zero")), "A")
    return out


def _nested(depth: int) -> dict:
    node: dict = {"type": "Identity", "in_shape": [2]}
    for _ in range(depth):
        node = {"type": "Adjoint", "op": node}
    return node


def _names(message: str, arg: str) -> bool:
    return arg.lower() in message.lower()


def _child(case: Case, memory_gib: float) -> tuple[str, str]:
    # a forked child must not enter the parent's OpenMP/MKL thread pools (they do not survive a fork:
    # a threaded sparse product can deadlock); one thread keeps every kernel inline
    torch.set_num_threads(1)
    limit = int(memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    try:
        r = case.call()
    except MemoryError as e:
        return "memory", f"MemoryError {e}"[:160]
    except (ValueError, TypeError, OSError, FactorizationError) as e:
        msg = f"{type(e).__name__}: {e}"
        if case.arg is not None and _names(str(e), case.arg):
            return "clear", msg[:160]
        return "obscure", msg[:160]
    except RecursionError as e:
        return "obscure", f"RecursionError {e}"[:160]
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        msg = f"{type(e).__name__}: {e}"
        if "alloc" in msg.lower() or "memory" in msg.lower():
            return "memory", msg[:160]
        return "obscure", msg[:160]
    if case.arg is None:
        try:
            ok = bool(case.check(r)) if case.check else True
        except Exception as e:  # noqa: BLE001
            return "silent", f"returned; check failed: {type(e).__name__}: {e}"[:160]
        return ("policy", "documented result") if ok else ("silent", f"returned {_short(r)}")
    return "silent", f"returned {_short(r)}"


def _short(r: Any) -> str:
    t = getattr(r, "x", r)
    if isinstance(t, torch.Tensor):
        finite = bool(torch.isfinite(t).all()) if t.is_floating_point() or t.is_complex() else True
        return f"tensor {tuple(t.shape)} {t.dtype}{'' if finite else ' with NaN/inf'}"
    return f"{type(r).__name__}"[:80]


def run_case(case: Case, timeout: float, memory_gib: float) -> tuple[str, str, float]:
    """Run one case in a forked child; its class, detail and wall time."""
    rfd, wfd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        try:
            res = _child(case, memory_gib)
        except BaseException as e:  # noqa: BLE001
            res = ("obscure", f"{type(e).__name__}: {e}"[:160])
        with os.fdopen(wfd, "wb") as f:
            pickle.dump(res, f)
        os._exit(0)
    os.close(wfd)
    deadline = t0 + timeout
    status = None
    while time.perf_counter() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
        return "hang", f"killed after {timeout:g} s", time.perf_counter() - t0
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    dt = time.perf_counter() - t0
    if not data:
        sig = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
        return "memory", f"child died (signal {sig})", dt
    return (*pickle.loads(data), dt)


def sweep(selected: list[Case], timeout: float, memory_gib: float, verbose: bool = True
          ) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for case in selected:
        cls, detail, dt = run_case(case, timeout, memory_gib)
        table[case.area][cls] += 1
        if verbose and cls not in ("clear", "policy"):
            print(f"{cls:8s} {case.area:9s} {case.name}: {detail} ({dt:.1f} s)")
    return table


def print_table(table: dict[str, Counter]) -> None:
    head = f"{'area':10s}" + "".join(f"{c:>9s}" for c in CLASSES) + f"{'total':>9s}"
    print(head)
    total: Counter = Counter()
    for area, counts in table.items():
        total.update(counts)
        print(f"{area:10s}" + "".join(f"{counts[c]:9d}" for c in CLASSES) + f"{sum(counts.values()):9d}")
    print(f"{'all':10s}" + "".join(f"{total[c]:9d}" for c in CLASSES) + f"{sum(total.values()):9d}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    p.add_argument("--memory", type=float, default=6.0, help="GiB of address space per case (default 6)")
    p.add_argument("--only", default="", help="comma-separated areas to run")
    p.add_argument("--fast", action="store_true", help="only the quick cases")
    a = p.parse_args(argv)
    selected = [c for c in cases() if (not a.only or c.area in a.only.split(",")) and (c.fast or not a.fast)]
    print_table(sweep(selected, a.timeout, a.memory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
