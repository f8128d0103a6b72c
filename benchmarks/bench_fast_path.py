"""Tikhonov through the two-FFT path for every operator whose factorization is a FourierFactorization.

Closed-form Tikhonov on a batch of images blurred circularly by a Gaussian PSF,
for the same blur written several ways: the circular ``Convolution`` ``A``
itself, ``2 * A`` (built once, and built inside every call), ``A.H.H``,
``Adjoint(A.H)``, ``A.H`` and a user subclass of ``Convolution``. Every one of
them has a ``FourierFactorization`` and so takes the same half-spectrum path;
the table gives each one's time relative to ``tikhonov(A, ...)`` measured
in the same run (interleaved rounds; median and best), so ratios near 1 mean
"same path". For reference, the last row forces the generic path (the same
factorization handed over as a plain ``Factorization`` with full-spectrum
``U``, ``s``, ``V``).

Run ``python benchmarks/bench_fast_path.py`` (``--quick`` for a small problem).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from physinv import psf
from physinv.operators import Adjoint, Convolution
from physinv.solvers import tikhonov
from physinv.testing import GenericFactorized


class UserBlur(Convolution):
    """A user's subclass of Convolution (same physics, another class)."""





def time_round_robin(fns: dict, repeat: int) -> dict:
    """Median and best time of each function over interleaved rounds (every variant sees the same load)."""
    for fn in fns.values():
        fn()  # warm-up: FFT plans, cached factorizations and casts
    times: dict = {name: [] for name in fns}
    names = list(fns)
    for i in range(repeat):
        # rotate the order: no variant always runs first (after the slowest) or last
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--quick", action="store_true", help="batch 2 of 128x128, 5 repeats")
    a = p.parse_args(argv)
    if a.quick:
        a.batch, a.size, a.repeat = 2, 128, 5
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    shape = (a.size, a.size)
    k = psf.gaussian(2.0, 15)
    A = Convolution(k, shape)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, *shape, generator=g, dtype=torch.float64)
    y = (A(x) + 0.01 * torch.randn(x.shape, generator=g, dtype=torch.float64)).to(dtype)
    lam = 1e-3
    two_a = 2.0 * A
    ops = {"A": A, "2 * A (built once)": two_a, "A.H.H": A.H.H, "Adjoint(A.H)": Adjoint(A.H), "A.H": A.H,
           "subclass of Convolution": UserBlur(k, shape)}
    fns = {name: (lambda B=B: tikhonov(B, y, lam)) for name, B in ops.items()}
    fns["2 * A (built in the call)"] = lambda: tikhonov(2.0 * A, y, lam)
    generic = GenericFactorized(two_a)
    fns["generic path (plain Factorization of 2 * A)"] = lambda: tikhonov(generic, y, lam)
    with torch.no_grad():
        rows = time_round_robin(fns, a.repeat)
        # each fast path gives the generic path's numbers for the same operator
        err = {name: float((tikhonov(B, y, lam).x - tikhonov(GenericFactorized(B), y, lam).x).abs().max())
               for name, B in ops.items()}
    base, best = rows["A"]
    print(f"tikhonov, {a.batch}x{a.size}x{a.size} {a.dtype}, lam={lam:g}, {a.threads} torch threads, "
          f"{a.repeat} interleaved rounds")
    print("| operator | median ms | median / A | best ms | best / A |\n|---|---:|---:|---:|---:|")
    for name, (t, tb) in rows.items():
        print(f"| {name} | {1e3 * t:.1f} | {t / base:.2f} | {1e3 * tb:.1f} | {tb / best:.2f} |")
    print("max |x_fast - x_generic| per operator:", {n: f"{e:.1e}" for n, e in err.items()})
    return {"median_ms": {n: 1e3 * t for n, (t, _) in rows.items()},
            "median_ratio": {n: t / base for n, (t, _) in rows.items()},
            "best_ratio": {n: tb / best for n, (_, tb) in rows.items()}, "max_abs_diff": err}


if __name__ == "__main__":
    main()
