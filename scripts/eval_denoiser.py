"""Denoising with the shipped denoiser against scikit-image's TV and wavelet denoisers, same run.

Test pictures only (``physinv.bench.splits.TEST_IMAGES``: never seen in
training), grey, in [0, 1], at their full bundled size; Gaussian noise of
each level, seeded. References, on the same noisy images in the same
process: ``skimage.restoration.denoise_tv_chambolle`` with the best weight
of a grid per image (an oracle choice), ``denoise_wavelet`` with BayesShrink
(``method="BayesShrink", mode="soft", rescale_sigma=True``, sigma given), and
BM3D when the optional ``bm3d`` package is installed. PSNR with data range
1, no border crop. Prints a markdown table; ``--json`` writes the numbers.

Usage::

    python scripts/eval_denoiser.py                  # sigma 0.05 (and 0.02, 0.1)
    python scripts/eval_denoiser.py --sigmas 0.05 --images astronaut coins
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_tv_chambolle, denoise_wavelet

from physinv.bench.splits import TEST_IMAGES
from physinv.data import skimage_image
from physinv.nets.denoiser import PRETRAINED_DENOISERS, pretrained_denoiser


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    p.add_argument("--images", nargs="+", default=list(TEST_IMAGES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--denoisers", nargs="+", default=["unet", "dncnn"], choices=sorted(PRETRAINED_DENOISERS),
                   help="shipped denoisers to measure (the first is compared with the references)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import bm3d  # optional reference
    except ImportError:
        bm3d = None
    dens = {name: pretrained_denoiser(name=name) for name in args.denoisers}
    rng = np.random.default_rng(args.seed)
    rows = []
    for sigma in args.sigmas:
        for name in args.images:
            x = skimage_image(name)
            noisy = x + sigma * rng.standard_normal(x.shape)
            row = {"image": name, "sigma": sigma, "noisy": psnr(noisy, x)}
            for dname, D in dens.items():
                t = time.perf_counter()
                with torch.no_grad():
                    out = D(torch.from_numpy(noisy).float(), sigma).double().numpy()
                row[dname], row[f"{dname}_s"] = psnr(out, x), time.perf_counter() - t
            t = time.perf_counter()
            row["tv_oracle"] = max(psnr(denoise_tv_chambolle(noisy, weight=w), x)
                                   for w in sigma * np.geomspace(0.5, 8, 9))
            row["tv_s"] = (time.perf_counter() - t) / 9
            t = time.perf_counter()
            row["wavelet"] = psnr(denoise_wavelet(noisy, sigma=sigma, method="BayesShrink", mode="soft",
                                                  rescale_sigma=True), x)
            row["wavelet_s"] = time.perf_counter() - t
            if bm3d is not None:
                row["bm3d"] = psnr(bm3d.bm3d(noisy, sigma), x)
            rows.append(row)
    first = args.denoisers[0]
    cols = ["noisy", *dens, "tv_oracle", "wavelet"] + (["bm3d"] if bm3d is not None else [])
    print("| sigma | image | " + " | ".join(cols) + f" | {first} - best of TV, wavelet |")
    print("|---|---|" + "---|" * (len(cols) + 1))
    for sigma in args.sigmas:
        sel = [r for r in rows if r["sigma"] == sigma]
        for r in sel + [None]:
            if r is None:
                r = {c: float(np.mean([q[c] for q in sel])) for c in cols}
                r["image"] = "**mean**"
            gap = r[first] - max(r["tv_oracle"], r["wavelet"])
            cells = " | ".join(f"{r[c]:.2f}" for c in cols)
            print(f"| {sigma} | {r['image']} | {cells} | {gap:+.2f} |")
    t_ours = ", ".join(f"{d} {np.mean([r[f'{d}_s'] for r in rows]):.3f}" for d in dens)
    print(f"\nseconds per image: {t_ours}, TV (one weight) "
          f"{np.mean([r['tv_s'] for r in rows]):.3f}, wavelet {np.mean([r['wavelet_s'] for r in rows]):.3f}"
          f" ({args.threads} threads)")
    out = {"rows": rows, "threads": args.threads, "seed": args.seed, "bm3d": bm3d is not None}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
