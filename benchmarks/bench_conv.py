"""Convolution speed: physinv.Convolution vs scipy.signal.fftconvolve vs bare torch.fft.

Circular convolution of a batch of float32 images with a PSF, forward and
adjoint, timed in the same process. Prints per-image times and the ratios that
measure its goals:

* physinv vs ``scipy.signal.fftconvolve`` (goal: >= 2x faster per image);
* physinv vs a bare ``torch.fft.rfft2`` convolution with a precomputed transfer
  function (goal: ratio >= 1.0 within noise, i.e. the abstraction costs nothing).

Run ``python benchmarks/bench_conv.py`` (``--quick`` for a small problem).
"""

from __future__ import annotations

import argparse
import statistics
import time

import scipy.signal
import torch

from physinv import psf
from physinv.operators import Convolution


def time_round_robin(fns: dict, repeat: int) -> dict:
    """Median time of each function, measured in interleaved rounds.

    Interleaving makes every method see the same machine load (this matters on
    a shared 2-core machine), so their ratios are fair even when the absolute
    times drift.
    """
    for fn in fns.values():
        fn()  # warm-up (FFT plans, caches)
    times: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--psf-size", type=int, default=31)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="batch 4 of 128x128, 3 repeats")
    a = p.parse_args(argv)
    if a.quick:
        a.batch, a.size, a.repeat = 4, 128, 3
    torch.set_num_threads(a.threads)
    B, N, K = a.batch, a.size, a.psf_size
    k = psf.gaussian(K / 6, K).float()
    x = torch.rand(B, N, N, generator=torch.Generator().manual_seed(0))
    xn = x.numpy()
    kn = k.numpy()

    A = Convolution(k, (N, N))
    # Bare torch reference: the same math written inline, transfer function precomputed.
    big = torch.zeros(N, N)
    big[:K, :K] = k
    tf = torch.fft.rfft2(torch.roll(big, (-(K // 2), -(K // 2)), (0, 1)))
    tf_c = tf.conj()

    fns = {
        "physinv forward": lambda: A(x),
        "physinv adjoint": lambda: A.adjoint(x),
        "bare torch forward": lambda: torch.fft.irfft2(torch.fft.rfft2(x) * tf, s=(N, N)),
        "bare torch adjoint": lambda: torch.fft.irfft2(torch.fft.rfft2(x) * tf_c, s=(N, N)),
        "scipy fftconvolve": lambda: scipy.signal.fftconvolve(xn, kn[None], mode="same", axes=(-2, -1)),
    }
    with torch.no_grad():
        rows = time_round_robin(fns, a.repeat)
    # correctness: same numbers as the bare reference
    with torch.no_grad():
        ref = torch.fft.irfft2(torch.fft.rfft2(x) * tf, s=(N, N))
        assert torch.allclose(A(x), ref, atol=1e-6)

    per = {name: t / B * 1e3 for name, t in rows.items()}
    print(f"circular convolution, batch {B} x {N}x{N} float32, PSF {K}x{K}, "
          f"{torch.get_num_threads()} torch threads, median of {a.repeat}")
    print(f"{'method':<22}{'ms / image':>12}")
    for name, ms in per.items():
        print(f"{name:<22}{ms:>12.3f}")
    ratios = {
        "scipy / physinv forward": per["scipy fftconvolve"] / per["physinv forward"],
        "scipy / physinv adjoint": per["scipy fftconvolve"] / per["physinv adjoint"],
        "bare torch / physinv forward": per["bare torch forward"] / per["physinv forward"],
        "bare torch / physinv adjoint": per["bare torch adjoint"] / per["physinv adjoint"],
    }
    print()
    print(f"{'ratio (higher = physinv faster)':<34}{'value':>8}  goal")
    for name, r in ratios.items():
        goal = ">= 2" if name.startswith("scipy") else ">= 1 (within ~5% noise)"
        print(f"{name:<34}{r:>8.2f}  {goal}")
    return {"per_image_ms": per, "ratios": ratios}


if __name__ == "__main__":
    main()
