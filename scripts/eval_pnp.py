"""Plug-and-play deblurring with the shipped denoiser against the oracle Wiener filter and oracle TV.

No training for the blur: ``physinv.solvers.pnp`` (HQS, DPIR schedule, 8
iterations, default ``lam``) with each shipped denoiser of ``--denoisers``
(``physinv.nets.pretrained_denoiser(name=...)``) and the true noise level.
Test pictures only (never seen in training), grey, resized to ``--size``;
circular blur (the model every method here assumes); PSFs Gaussian sigma 1.6
and 3, motion 15 px at 30 degrees, disk radius 4 and the four synthetic
camera-shake kernels shipped in ``physinv.assets`` (``shake_1`` ...
``shake_4``: no part of physinv was tuned on them); noise
sigma 0.01 and 0.03 (seeded). References on the same data in the same run:

- the MMSE Wiener filter with each test image's own power spectrum (the best
  linear shift-invariant filter, an oracle),
- ``physinv.solvers.tv`` with the best of a grid of ``lam`` per case (oracle).

PSNR with data range 1 and a border crop of ``--crop`` pixels. Prints a
markdown table per PSF and the mean; ``--json`` writes every number.

Usage::

    python scripts/eval_pnp.py                 # 6 pictures, 8 PSFs, 2 noise levels
    python scripts/eval_pnp.py --quick         # 2 pictures, 4 PSFs
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from physinv import assets, psf
from physinv.bench.splits import TEST_IMAGES
from physinv.data import skimage_image
from physinv.metrics import psnr
from physinv.nets import pretrained_denoiser
from physinv.nets.denoiser import PRETRAINED_DENOISERS
from physinv.operators import Convolution
from physinv.solvers import pnp, tv

PSFS = {
    "gaussian:1.6": lambda: psf.gaussian(1.6),
    "gaussian:3": lambda: psf.gaussian(3.0),
    "motion:15,30": lambda: psf.motion(15, 30),
    "disk:4": lambda: psf.disk(4),
    **{f"shake_{i}": (lambda i=i: torch.from_numpy(assets.load_array(f"psfs/shake_{i}.npy")))
       for i in range(1, 5)},
}


def cases(psfs, sigmas, images, size: int, g: torch.Generator):
    """The protocol's test cases in a fixed order: ``(psf, sigma, image, A, F, x, y, P)`` for each.

    ``y = A x + sigma n`` with the noise drawn from ``g`` (one draw per case, in
    this order), ``F = A.svd()`` and ``P`` the image's own power spectrum (for the
    oracle Wiener filter). Other scripts evaluate on exactly these cases.
    """
    for pname in psfs:
        A = Convolution(PSFS[pname](), (size, size))
        F = A.svd()
        for sigma in sigmas:
            for name in images:
                x = torch.from_numpy(skimage_image(name, size))
                y = A(x) + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
                P = torch.fft.fft2(x).abs() ** 2 / x.numel()
                yield pname, sigma, name, A, F, x, y, P


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--images", nargs="+", default=list(TEST_IMAGES))
    p.add_argument("--psfs", nargs="+", default=list(PSFS))
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.01, 0.03])
    p.add_argument("--tv-grid", type=int, default=3, help="lam values tried for oracle TV")
    p.add_argument("--tv-iter", type=int, default=1500, help="TV iterations per lam")
    p.add_argument("--crop", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--denoisers", nargs="+", default=["unet", "dncnn"], choices=sorted(PRETRAINED_DENOISERS),
                   help="shipped denoisers to plug in (each gets its PnP column; the first is compared)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.psfs, args.size = args.images[:2], args.psfs[:2] + args.psfs[4:6], 128
    torch.set_num_threads(args.threads)
    dens = {name: pretrained_denoiser(name=name) for name in args.denoisers}
    g = torch.Generator().manual_seed(args.seed)
    c = args.crop

    def score(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(psnr(a[..., c:-c, c:-c], b[..., c:-c, c:-c], data_range=1.0))

    rows = []
    t_start = time.perf_counter()
    for pname, sigma, name, A, F, x, y, P in cases(args.psfs, args.sigmas, args.images, args.size, g):
        row = {"psf": pname, "sigma": sigma, "image": name, "wiener_oracle": score(F.wiener(y, sigma, P), x)}
        for dname, D in dens.items():
            t = time.perf_counter()
            r = pnp(A, y, D, sigma, n_iter=8, factorization=F)
            row[f"pnp_{dname}"], row[f"pnp_{dname}_s"] = score(r.x, x), time.perf_counter() - t
        row["pnp"], row["pnp_s"] = row[f"pnp_{args.denoisers[0]}"], row[f"pnp_{args.denoisers[0]}_s"]
        # lam near 0.1 sigma is best on these images; TV converges slowly at small lam, hence
        # many iterations, warm-started from the previous lam of the grid
        best, x0 = -np.inf, None
        for lam in sigma * np.geomspace(0.03, 0.3, args.tv_grid):
            x0 = tv(A, y, float(lam), n_iter=args.tv_iter, x0=x0).x
            best = max(best, score(x0, x))
        row["tv_oracle"] = best
        rows.append(row)
        ours = " ".join(f"pnp[{d}] {row[f'pnp_{d}']:.2f}" for d in dens)
        print(f"{pname} {sigma} {name}: {ours} wiener* {row['wiener_oracle']:.2f} "
              f"tv* {row['tv_oracle']:.2f}", flush=True)
    keys = [f"pnp_{d}" for d in dens]
    print("\n| PSF | noise | " + " | ".join(f"PnP ({d})" for d in dens)
          + f" | Wiener (oracle spectrum) | TV (oracle lam) | PnP ({args.denoisers[0]}) - Wiener | - TV |")
    print("|---|---|" + "---|" * (len(keys) + 4))
    groups = [(q, s) for q in args.psfs for s in args.sigmas]
    for q, s in groups + [("**mean**", None)]:
        sel = [r for r in rows if (q == "**mean**" or (r["psf"] == q and r["sigma"] == s))]
        m = {k: float(np.mean([r[k] for r in sel])) for k in keys + ["pnp", "wiener_oracle", "tv_oracle"]}
        gap_w, gap_tv = m["pnp"] - m["wiener_oracle"], m["pnp"] - m["tv_oracle"]
        ours = " | ".join(f"{m[k]:.2f}" for k in keys)
        print(f"| {q} | {'' if s is None else s} | {ours} | {m['wiener_oracle']:.2f} | "
              f"{m['tv_oracle']:.2f} | {gap_w:+.2f} | {gap_tv:+.2f} |")
    per_image = ", ".join(f"{d} {np.mean([r[f'pnp_{d}_s'] for r in rows]):.2f} s" for d in dens)
    print(f"\n{len(rows)} cases, PnP per image: {per_image} "
          f"({args.size}x{args.size}, {args.threads} threads); total {time.perf_counter() - t_start:.0f} s")
    out = {"rows": rows, "config": vars(args)}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
