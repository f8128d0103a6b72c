"""Choose the default of ``physinv deblur`` by measurement: every candidate on every case.

Data (the protocol of ``physinv bench deconv``): the six test pictures
(astronaut, brick, chelsea, coffee, coins, moon; none of them in the
training list), grey, resized so that the shorter side is ``size + 2 *
margin`` and the centre square kept (the *scene*); the truth is the centre
``size x size`` frame. Four PSFs (gaussian:1.6, gaussian:3, motion:15,30,
disk:4), white noise 0.01 and 0.03, and two data models:

- ``circular``: the circular convolution of the frame (periodic test data);
- ``valid`` (realistic): the linear convolution of the whole scene cut to the
  frame, so every pixel near the edge sees true content beyond it, as a
  camera does.

Both data models of one case get the same noise. Every candidate sees only
the data and the PSF (no oracle): sigma is estimated from the data. PSNR
against the truth after clipping to [0, 1], on the frame without an 8-pixel
border.

Selection: the default is picked on the *selection* pictures (astronaut,
brick, coins) only; chelsea, coffee and moon are held out to confirm it.

Run (about 10 minutes on 2 cores at the default 128 x 128)::

    python scripts/select_deblur_default.py --markdown deblur_selection.md --json deblur_selection.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
import zlib

import numpy as np
import torch

from physinv.bench.deconv import resolve_images, resolve_psf, simulate
from physinv.deblur import _crop, _periodize, _valid_setup, deblur_with_info, periodicity
from physinv.metrics import psnr
from physinv.operators import Convolution
from physinv.solvers import estimate_noise, mad_noise_sigma, tv, wiener

SELECTION = ("astronaut", "brick", "coins")
HELD_OUT = ("chelsea", "coffee", "moon")
PSFS = ("gaussian:1.6", "gaussian:3", "motion:15,30", "disk:4")
NOISES = (0.01, 0.03)
DATA = ("circular", "valid")
PERIODIC_THRESHOLD = 3.0  # periodicity() below this: the data look periodic


# ------------------------------------------------------------- candidates
def _lib(method: str, boundary: str):
    def run(y, k, case):
        r = deblur_with_info(y.numpy(), k, "auto", method, boundary)
        return torch.from_numpy(r.image)
    return run


def _wiener_circular_gcv(y, k, case):
    A = Convolution(k, tuple(y.shape))
    s = estimate_noise(A, y)
    return wiener(A, y, s, "power-law", residual=False).x


def _wiener_reflect_pad(y, k, case, pad=32):
    """Reflect the data by ``pad`` pixels per side (blending both reflections in the band), Wiener, crop."""
    H, W = y.shape
    G = (H + 2 * pad, W + 2 * pad)
    t = np.arange(2 * pad)
    w = torch.as_tensor(np.cos(0.5 * np.pi * (t + 0.5) / (2 * pad)) ** 2)

    def ext(z, n, axis):
        zl = z.movedim(axis, -1)
        ridx = np.mod(n + t, 2 * n)
        ridx = np.where(ridx < n, ridx, 2 * n - 1 - ridx)
        lidx = np.mod(-(2 * pad - t), 2 * n)
        lidx = np.where(lidx < n, lidx, 2 * n - 1 - lidx)
        band = w * zl[..., torch.as_tensor(ridx)] + (1 - w) * zl[..., torch.as_tensor(lidx)]
        return torch.cat([zl, band], -1).roll(pad, -1).movedim(-1, axis)

    yp = ext(ext(y, W, -1), H, -2)
    s = float(mad_noise_sigma(y[None])[0])
    x = wiener(Convolution(k, G), yp, s, "power-law", residual=False).x
    return x[pad:pad + H, pad:pad + W]


def _wiener_periodized(y, k, case):
    """The smooth periodic (antireflective blend) extension of the library, circular Wiener, crop."""
    H, W = y.shape
    pad = max(k.shape) + 8
    yp, off = _periodize(y[None], (H + 2 * pad, W + 2 * pad))
    s = mad_noise_sigma(y[None])
    x = wiener(Convolution(k, tuple(yp.shape[-2:])), yp, s, "power-law", residual=False).x
    return _crop(x, off, (H, W))[0]


def _tv_valid_warm(y, k, case, n_iter=100):
    """TV on the valid model, warm-started from the valid Wiener/MAP estimate, ``n_iter`` iterations."""
    from physinv.deblur import TV_ALPHA, _map_valid

    H, W = y.shape
    s = mad_noise_sigma(y[None])
    xg, info = _map_valid(y[None], k, s, "power-law", 100)
    A, off = _valid_setup(k, (H, W), y.device)
    top, left = info["offset"][0] - off[0], info["offset"][1] - off[1]
    x0 = xg[:, top:top + A.in_shape[0], left:left + A.in_shape[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = tv(A, y[None], TV_ALPHA * s**2, n_iter=n_iter, norm=float(k.abs().sum()), x0=x0)
    return _crop(r.x, off, (H, W))[0]


def _skimage_unsupervised(y, k, case):
    from skimage import restoration

    x, _ = restoration.unsupervised_wiener(y.numpy(), k.numpy(), clip=False, rng=np.random.default_rng(0))
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


CANDIDATES = {
    # (a) the circular model
    "wiener-circular-gcv": (_wiener_circular_gcv, "(a) power-law Wiener, circular model, sigma by GCV"),
    "wiener-circular": (_lib("wiener", "circular"), "(a) power-law Wiener, circular model, sigma by MAD"),
    "tikhonov-circular": (_lib("tikhonov", "circular"), "(a) Tikhonov, discrepancy, circular model"),
    "skimage-unsupervised": (_skimage_unsupervised, "(a) scikit-image unsupervised_wiener (circular)"),
    # (b) extend the image, deconvolve circularly, crop
    "wiener-reflect-pad": (_wiener_reflect_pad, "(b) Wiener after reflect padding by 32 px"),
    "wiener-periodized": (_wiener_periodized, "(b) Wiener after the smooth periodic extension"),
    # (c) boundary-aware
    "wiener-valid": (_lib("wiener", "valid"), "(c) power-law Gaussian MAP, valid model, PCG"),
    "tikhonov-valid": (_lib("tikhonov", "valid"), "(c) Tikhonov, valid model, PCG"),
    "cgls-reflect": (_lib("cgls", "reflect"), "(c) CGLS, discrepancy stop, reflect model"),
    "cgls-valid": (_lib("cgls", "valid"), "(c) CGLS, discrepancy stop, valid model"),
    "tv-circular": (_lib("tv", "circular"), "(a) TV lam = 8 sigma^2, circular model"),
    "tv-reflect": (_lib("tv", "reflect"), "(c) TV lam = 8 sigma^2, reflect model"),
    "tv-valid": (_lib("tv", "valid"), "(c) TV lam = 8 sigma^2, valid model, 200 it"),
    "rl-reflect": (_lib("richardson_lucy", "reflect"), "(c) Richardson-Lucy, discrepancy stop, reflect"),
    "pnp-circular": (_lib("pnp", "circular"), "(e) plug-and-play HQS, shipped denoiser, circular model"),
    "pnp-valid": (_lib("pnp", "valid"), "(e) plug-and-play HQS, shipped denoiser, valid model"),
    # (d) combinations
    "tv-valid-warm100": (_tv_valid_warm, "(d) TV valid, warm start from wiener-valid, 100 it"),
}
#: Rules that choose from the data: the circular variant when periodicity() < threshold, else valid.
RULES = {
    "rule-wiener": ("wiener-circular", "wiener-valid"),
    "rule-tv": ("tv-circular", "tv-valid"),
    "rule-pnp": ("pnp-circular", "pnp-valid"),
}


def _score(x, truth, crop):
    x = x.clamp(0, 1)
    return float(psnr(x[crop:-crop, crop:-crop], truth[crop:-crop, crop:-crop]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--margin", type=int, default=32)
    p.add_argument("--crop", type=int, default=8)
    p.add_argument("--images", nargs="+", default=list(SELECTION + HELD_OUT))
    p.add_argument("--methods", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write every number here")
    p.add_argument("--markdown", help="write the tables here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, sig = [], []
    t_start = time.perf_counter()
    for src in resolve_images(args.images):
        scene = src.load(args.size + 2 * args.margin)
        for spec in PSFS:
            k = resolve_psf(spec)
            for noise in NOISES:
                for data in DATA:
                    g = torch.Generator().manual_seed(zlib.crc32(f"{src.name}|{spec}|{noise}".encode()))
                    truth, y = simulate(scene, k, noise, data, args.size, args.margin, g)
                    gcv = float(estimate_noise(Convolution(k, tuple(y.shape)), y))
                    sig.append({"image": src.name, "psf": spec, "noise": noise, "data": data,
                                "mad": float(mad_noise_sigma(y[None])[0]) / noise, "gcv": gcv / noise})
                    row = {"image": src.name, "psf": spec, "noise": noise, "data": data,
                           "periodicity": periodicity(y.numpy())}
                    for name in args.methods:
                        t0 = time.perf_counter()
                        x = CANDIDATES[name][0](y, k, row)
                        row[name] = _score(x, truth, args.crop)
                        row[name + ":s"] = time.perf_counter() - t0
                    for rule, (circ, valid) in RULES.items():
                        if circ in row and valid in row:
                            row[rule] = row[circ] if row["periodicity"] < PERIODIC_THRESHOLD else row[valid]
                    rows.append(row)
                    print(f"{src.name:10s} {spec:13s} {noise:.2f} {data:8s} "
                          + " ".join(f"{row[m]:6.2f}" for m in args.methods), file=sys.stderr, flush=True)
    names = list(args.methods) + [r for r in RULES if r in rows[0]]
    md = _report(rows, sig, names, args, time.perf_counter() - t_start)
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "sigma": sig, "args": vars(args)}, f, indent=1)
    return 0


def _mean(rows, key, **where):
    v = [r[key] for r in rows if all(r[a] == b for a, b in where.items())]
    return float(np.mean(v)) if v else float("nan")


def _report(rows, sig, names, args, seconds) -> str:
    out = [f"size {args.size}, margin {args.margin}, crop {args.crop}, {len(rows)} problems, "
           f"{seconds:.0f} s in all\n"]
    sel = [r for r in rows if r["image"] in SELECTION]
    held = [r for r in rows if r["image"] not in SELECTION]
    out.append("| candidate | sel. circular | sel. valid | held-out circular | held-out valid | "
               "all circular | all valid | all | s / image |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        t = _mean(rows, n + ":s") if n + ":s" in rows[0] else float("nan")
        vals = [_mean(sel, n, data="circular"), _mean(sel, n, data="valid"),
                _mean(held, n, data="circular"), _mean(held, n, data="valid"),
                _mean(rows, n, data="circular"), _mean(rows, n, data="valid"), _mean(rows, n)]
        out.append(f"| {n} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {t:.3f} |")
    out.append("")
    out.append("Noise estimate / true sigma (mean, min, max over the cases):\n")
    out.append("| estimator | circular | valid |")
    out.append("|---|---|---|")
    for est in ("mad", "gcv"):
        cells = []
        for data in DATA:
            v = np.array([s[est] for s in sig if s["data"] == data])
            cells.append(f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f}); mean abs log error "
                         f"{np.abs(np.log(v)).mean():.3f}")
        out.append(f"| {est} | " + " | ".join(cells) + " |")
    out.append("")
    per = [r["periodicity"] for r in rows]
    for data in DATA:
        v = [r["periodicity"] for r in rows if r["data"] == data]
        out.append(f"periodicity() on {data} data: min {min(v):.2f}, median {np.median(v):.2f}, "
                   f"max {max(v):.2f}")
    _ = per
    out.append("")
    for data in DATA:
        out.append(f"Every case, {data} data (PSNR dB):\n")
        out.append("| image | psf | noise | " + " | ".join(names) + " |")
        out.append("|---|---|---|" + "---:|" * len(names))
        for r in rows:
            if r["data"] == data:
                out.append(f"| {r['image']} | {r['psf']} | {r['noise']} | "
                           + " | ".join(f"{r[n]:.2f}" for n in names) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
