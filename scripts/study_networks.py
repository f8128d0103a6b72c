"""Physics-constrained networks vs the MMSE Wiener filter and vs purely data-driven CNNs.

Deblurring of piecewise-smooth phantoms (a 1/f^1.5 random field plus random
ellipses, in [0, 1]) blurred by a Gaussian PSF (circular boundary) with white
noise sigma = 0.02. Everything is measured in the same run:

1. ``SpectralFilterNet`` trained on 32 images vs the MMSE Wiener filter built
   from the *test* images' mean power spectrum (the best linear shift-invariant
   filter for the test set, an oracle) and Tikhonov with the oracle lambda.
2. A learning curve: test PSNR vs the number of training images for
   ``SpectralFilterNet``, ``UnrolledLandweber`` (10 layers, learned
   preconditioner), ``HybridNet`` (spectral filter + DnCNN refiner) and the
   data-driven ``DnCNN`` and ``UNet`` (input ``y``, residual), all trained by
   :func:`physinv.train.fit_simulated` (Adam, same steps and batch size; the
   noise is redrawn at every step, the clean training images are fixed).
3. Transfer: ``SpectralFilterNet(parametric=True)`` trained on Gaussian PSFs
   of sigma 1.5 and 2.5 and noise levels 0.01-0.05, tested on a Gaussian of
   sigma 2.0 and a disk of radius 2.5 (unseen) at sigma 0.02, vs oracle-lambda
   Tikhonov and the oracle Wiener filter on the same data.

Usage: ``python scripts/study_networks.py [--quick]``; ``--figures`` writes the docs figures instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch

from physinv import psf
from physinv.data import textured_phantoms
from physinv.metrics import psnr
from physinv.nets import DataDriven, DnCNN, HybridNet, SpectralFilterNet, UNet, UnrolledLandweber
from physinv.operators import Convolution
from physinv.train import fit_simulated

f64 = torch.float64
SIGMA = 0.02
#: Adam learning rate of filter-valued parameters (values of order 1, cosine-annealed).
LR_SPECTRAL = 0.1


def phantoms(n: int, size: int, seed: int) -> torch.Tensor:
    """Piecewise-smooth images in [0, 1] (:func:`physinv.data.textured_phantoms`) as a tensor."""
    return torch.from_numpy(textured_phantoms(n, size, seed))


def train(net, A, xtr, steps, batch, lr, seed, sigma_range=None, ops=None):
    """Every model is trained the same way: physinv.train.fit_simulated (Adam on the MSE, cosine-annealed,
    fresh noise at each step, the clean training images fixed)."""
    g = torch.Generator().manual_seed(seed)
    optimizer = None
    if isinstance(net, HybridNet):  # physics block at the spectral learning rate, refiner at lr
        optimizer = torch.optim.Adam([{"params": list(net.physics.parameters()), "lr": LR_SPECTRAL},
                                      {"params": list(net.refiner.parameters()), "lr": lr}])
    step = itertools.count()

    def measure(x):
        op = A if ops is None else ops[next(step) % len(ops)]
        if sigma_range is None:
            sig = torch.full((x.shape[0],), SIGMA, dtype=f64)
        else:
            lo, hi = sigma_range
            sig = lo + (hi - lo) * torch.rand(x.shape[0], generator=g, dtype=f64)
        y = (op(x) + sig[:, None, None] * torch.randn(x.shape, generator=g, dtype=f64)).float()
        return y, (sig.float(), op)

    def forward(m, b):
        y, x, (sig, op) = b
        return (m(y, sig, A=op) if ops is not None else m(y)), x.float()

    fit_simulated(net, xtr, measure, steps=steps, batch_size=min(batch, len(xtr)), lr=lr, optimizer=optimizer,
                  scheduler="cosine", seed=seed, forward=forward)
    return net


def evaluate(net, y, x, **kw) -> float:
    with torch.no_grad():
        return float(psnr(net(y.float(), **kw).double(), x).mean())


def oracle_tikhonov(A, y, x) -> tuple[float, float]:
    F = A.svd()
    best = max((float(psnr(F.tikhonov(y, lam), x).mean()), lam) for lam in torch.logspace(-5, 0, 41).tolist())
    return best


def oracle_wiener(A, y, x, sigma=SIGMA) -> float:
    n = x.shape[-1] * x.shape[-2]
    P = (torch.fft.fft2(x).abs() ** 2).mean(0) / n
    return float(psnr(A.svd().wiener(y, sigma, P), x).mean())


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def learning_curve(args, A, xpool, yte, xte, steps, sizes, tik, wien, results, t_start=None):
    """Section 2: test PSNR vs number of training images, one training loop for every model."""
    def models():
        return {
            "SpectralFilterNet": (lambda: SpectralFilterNet(A, lam=1e-2), LR_SPECTRAL),
            "UnrolledLandweber (10, precond.)": (lambda: UnrolledLandweber(A, 10, precondition=True), 2e-2),
            "HybridNet (spectral + DnCNN)": (lambda: HybridNet(SpectralFilterNet(A, lam=1e-2),
                                                               DnCNN(depth=5, channels=16)), 2e-3),
            "DnCNN (data-driven)": (lambda: DataDriven(DnCNN(depth=5, channels=16, residual=True,
                                                             zero_init=False)), 2e-3),
            "UNet (data-driven)": (lambda: DataDriven(UNet(channels=8, levels=2, residual=True,
                                                           zero_init=False)), 2e-3),
        }

    curve: dict = {}
    counts: dict = {}
    chosen = {k: v for k, v in models().items()
              if not args.models or any(k.startswith(m) for m in args.models)}
    for name, (make, lr) in chosen.items():
        curve[name] = {}
        for n in sizes:
            torch.manual_seed(0)
            net = make()
            counts[name] = n_params(net)
            train(net, A, xpool[:n], steps=steps, batch=min(16, n), lr=lr, seed=1)
            curve[name][n] = evaluate(net, yte, xte)
    results["learning_curve"] = {k: {str(n): v for n, v in d.items()} for k, d in curve.items()}
    results["params"] = counts
    print(f"\n## 2. Test PSNR (dB) vs number of training images ({steps} Adam steps, batch <= 16); "
          f"Tikhonov oracle {tik:.2f}, Wiener oracle {wien:.2f}")
    print("| model | parameters | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name, d in curve.items():
        print(f"| {name} | {counts[name]} | " + " | ".join(f"{d[n]:.2f}" for n in sizes) + " |")
    if t_start is not None:
        print(f"\ntotal time {time.perf_counter() - t_start:.0f} s")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="32x32 images, fewer steps and sizes")
    p.add_argument("--figures", action="store_true",
                   help="only train the networks shown in docs/networks.md and write their figures")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--steps", type=int, default=None, help="override the step budget")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="override the training-set sizes")
    p.add_argument("--models", nargs="+", default=None,
                   help="learning curve only, for models whose name starts with one of these")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.figures:
        figures(32 if args.quick else 64, 150 if args.quick else 400)
        return
    size = 32 if args.quick else 64
    steps = args.steps or (150 if args.quick else 400)
    sizes = args.sizes or ([8, 32] if args.quick else [4, 8, 32, 128])
    n_test = 32 if args.quick else 64
    A = Convolution(psf.gaussian(1.5, 11), (size, size))
    xpool = phantoms(max(sizes), size, seed=0)
    xte = phantoms(n_test, size, seed=1)
    gte = torch.Generator().manual_seed(99)
    yte = A(xte) + SIGMA * torch.randn(xte.shape, generator=gte, dtype=f64)
    results: dict = {"size": size, "steps": steps, "n_test": n_test}
    t_start = time.perf_counter()

    # 1. SpectralFilterNet vs the oracle Wiener filter (32 training images) ------------------
    tik, lam_best = oracle_tikhonov(A, yte, xte)
    wien = oracle_wiener(A, yte, xte)
    if args.models:
        return learning_curve(args, A, xpool, yte, xte, steps, sizes, tik, wien, results, t_start)
    sf = train(SpectralFilterNet(A, lam=1e-2), A, xpool[:32], steps=steps, batch=16, lr=LR_SPECTRAL, seed=0)
    sf_psnr = evaluate(sf, yte, xte)
    results["wiener"] = {"tikhonov_oracle": tik, "lam": lam_best, "wiener_oracle": wien,
                         "spectral_net": sf_psnr}
    print(f"## 1. SpectralFilterNet (32 training images) vs MMSE Wiener, {size}x{size}, Gaussian PSF "
          f"sigma 1.5, noise 0.02, {n_test} test images")
    print("| method | test PSNR (dB) | vs Wiener (dB) |")
    print("|---|---|---|")
    print(f"| Tikhonov, oracle lambda = {lam_best:.2g} | {tik:.2f} | {tik - wien:+.2f} |")
    print(f"| MMSE Wiener (test-set power spectrum, oracle) | {wien:.2f} | 0.00 |")
    print(f"| SpectralFilterNet, trained | {sf_psnr:.2f} | {sf_psnr - wien:+.2f} |")

    learning_curve(args, A, xpool, yte, xte, steps, sizes, tik, wien, results)

    # 3. parametric filter: transfer to unseen PSFs ----------------------------------------
    train_ops = [Convolution(psf.gaussian(s, 11), (size, size)) for s in (1.5, 2.5)]
    par = SpectralFilterNet(train_ops[0], parametric=True, hidden=32)
    train(par, None, xpool[:32], steps=steps, batch=16, lr=1e-2, seed=2, sigma_range=(0.01, 0.05),
          ops=train_ops)
    results["transfer"] = {"params": n_params(par), "diagonal_params": size * (size // 2 + 1)}
    print(f"\n## 3. Parametric SpectralFilterNet ({n_params(par)} parameters; the diagonal has "
          f"{size * (size // 2 + 1)}) trained on Gaussian sigma 1.5 and 2.5 (noise 0.01-0.05), 32 images")
    print("| test PSF (noise 0.02) | seen in training | parametric net | Tikhonov, oracle lambda | "
          "Wiener, oracle | net - Tikhonov | net - Wiener |")
    print("|---|---|---|---|---|---|---|")
    tests = [("Gaussian sigma 1.5", psf.gaussian(1.5, 11), "yes"),
             ("Gaussian sigma 2.0", psf.gaussian(2.0, 11), "no"),
             ("disk radius 2.5", psf.disk(2.5), "no"),
             ("motion length 7, 30 deg", psf.motion(7, 30.0), "no")]
    for label, k, seen in tests:
        B = Convolution(k, (size, size))
        y = B(xte) + SIGMA * torch.randn(xte.shape, generator=gte, dtype=f64)
        ours = evaluate(par, y, xte, noise_sigma=SIGMA, A=B)
        t_b, _ = oracle_tikhonov(B, y, xte)
        w_b = oracle_wiener(B, y, xte)
        results["transfer"][label] = {"net": ours, "tikhonov_oracle": t_b, "wiener_oracle": w_b}
        print(f"| {label} | {seen} | {ours:.2f} | {t_b:.2f} | {w_b:.2f} | {ours - t_b:+.2f} | "
              f"{ours - w_b:+.2f} |")
    print(f"\ntotal time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def figures(size: int = 64, steps: int = 400) -> None:
    """Train the networks the docs show and write docs/figures/networks_*.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A = Convolution(psf.gaussian(1.5, 11), (size, size))
    xtr, xte = phantoms(32, size, seed=0), phantoms(64, size, seed=1)
    g = torch.Generator().manual_seed(99)
    yte = A(xte) + SIGMA * torch.randn(xte.shape, generator=g, dtype=f64)
    half = size // 2 + 1
    P = (torch.fft.fft2(xte).abs() ** 2).mean(0)[:, :half] / size**2

    # spectral filter: learned vs Tikhonov vs Wiener as a function of s
    sf = train(SpectralFilterNet(A, lam=1e-2), A, xtr, steps=steps, batch=16, lr=LR_SPECTRAL, seed=0)
    s = sf.s.double().flatten()
    order = torch.argsort(s)
    wf = (sf.s.double() * P / (sf.s.double() ** 2 * P + SIGMA**2)).flatten()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(s, sf.filter.detach().double().flatten(), s=3, alpha=0.4,
               label="SpectralFilterNet: learned f, one per index")
    ax.scatter(s, wf, s=3, alpha=0.4, label="MMSE Wiener (oracle), per index")
    ax.plot(s[order], (s / (s * s + 1e-2))[order], "k--", lw=1, label="Tikhonov lam=1e-2 (initialization)")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1.1)
    ax.set_xlabel("singular value s = |h^(k)|")
    ax.set_ylabel("filter value f")
    ax.set_title("Gaussian PSF sigma 1.5, noise 0.02, 32 training images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig("docs/figures/networks_filters.png", dpi=120)
    plt.close(fig)

    # unrolled Landweber: effective filter s * phi_K(s) before/after training vs classical iterations
    lw = UnrolledLandweber(A, 10, precondition=True)
    phi0, _ = lw.filter_factors()
    train(lw, A, xtr, steps=steps, batch=16, lr=2e-2, seed=1)
    phi1, _ = lw.filter_factors()
    sh = sf.s.double()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    t = 1.0 / float(sh.max()) ** 2
    for k in (10, 30, 100):
        ax.plot(s[order], (1 - (1 - t * s * s) ** k)[order] / s[order], lw=1,
                label=f"classical Landweber, {k} iterations")
    ax.scatter(s, (sh * phi0.detach()).flatten(), s=3, c="k", label="UnrolledLandweber(10), init")
    ax.scatter(s, (sh * phi1.detach()).flatten(), s=3, alpha=0.4,
               label="UnrolledLandweber(10) + precond., trained")
    ax.scatter(s, wf, s=3, alpha=0.3, label="MMSE Wiener (oracle)")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1.1)
    ax.set_ylim(-0.2, 3.5)
    ax.set_xlabel("singular value s")
    ax.set_ylabel("effective filter s * phi_K")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig("docs/figures/networks_unrolled.png", dpi=120)
    plt.close(fig)

    # parametric filter applied to an unseen disk PSF
    ops = [Convolution(psf.gaussian(v, 11), (size, size)) for v in (1.5, 2.5)]
    par = SpectralFilterNet(ops[0], parametric=True, hidden=32)
    train(par, None, xtr, steps=steps, batch=16, lr=1e-2, seed=2, sigma_range=(0.01, 0.05), ops=ops)
    D = Convolution(psf.disk(2.5), (size, size))
    with torch.no_grad():
        fd = par.filter_values(SIGMA, A=D).double().flatten()
    sd = D.svd().s[:, :half].double().flatten()
    wd = (sd * P.flatten() / (sd * sd * P.flatten() + SIGMA**2))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(sd, wd, s=3, alpha=0.4, label="MMSE Wiener for the disk (oracle)")
    ax.scatter(sd, fd, s=3, alpha=0.4, label="parametric net (trained on Gaussians only)")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1.1)
    ax.set_xlabel("singular value s of the disk PSF (radius 2.5)")
    ax.set_ylabel("filter value f")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig("docs/figures/networks_parametric.png", dpi=120)
    plt.close(fig)

    # reconstructions
    Dy = D(xte[:1]) + SIGMA * torch.randn(xte[:1].shape, generator=g, dtype=f64)
    with torch.no_grad():
        rec = sf(yte[:1].float()).double()
        recd = par(Dy.float(), SIGMA, A=D).double()
    tik = A.svd().tikhonov(yte[:1], 1e-2)
    panels = [(xte[0], "truth"), (yte[0], "Gaussian blur + noise"),
              (tik[0], f"Tikhonov 1e-2: {float(psnr(tik, xte[:1])):.1f} dB"),
              (rec[0], f"SpectralFilterNet: {float(psnr(rec, xte[:1])):.1f} dB"),
              (Dy[0], "disk blur + noise (unseen)"),
              (recd[0], f"parametric net on disk: {float(psnr(recd, xte[:1])):.1f} dB")]
    fig, axs = plt.subplots(1, 6, figsize=(16, 3.2))
    for a, (img, title) in zip(axs, panels):
        a.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(title, fontsize=8)
        a.axis("off")
    fig.tight_layout()
    fig.savefig("docs/figures/networks_recon.png", dpi=110)
    plt.close(fig)
    print("wrote docs/figures/networks_{filters,unrolled,parametric,recon}.png")


if __name__ == "__main__":
    main()
