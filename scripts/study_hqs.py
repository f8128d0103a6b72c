"""A trained UnrolledHQS for a family of blurs against plug-and-play and the oracle Wiener filter.

One network is trained for a whole blur family and range of noise levels, then
evaluated on the protocol of ``scripts/eval_pnp.py`` (the same test pictures,
test PSFs, noise levels, seeded noise, border crop and PSNR), next to the
references of that script computed on the same data in the same run:

- the MMSE Wiener filter with each test image's own power spectrum (oracle),
- plug-and-play HQS, ``physinv.solvers.pnp`` with the shipped denoiser, 8
  iterations (the untrained network computes the same thing, and is scored
  too as a check),
- the trained network.

Design. :class:`physinv.nets.UnrolledHQS` holds its operator fixed, and its
schedule is initialised for one noise level. Here the operator and the noise
level change with every batch, so the trained object is a small wrapper,
:class:`FamilyHQS`: one trainable copy of a shipped denoiser (``--denoiser``; the
prior of every layer) and two vectors of per-layer offsets, ``d_log_sigma`` and
``d_log_alpha``. For a batch blurred by ``A`` with noise ``sigma`` it builds
``UnrolledHQS(A, prior=<the shared prior>, n_layers=K, noise_sigma=sigma)``
(cheap: the FFT of the PSF) and runs it with
``log sigma_k = log sigma_k^DPIR(sigma) + d_log_sigma[k]`` and
``log alpha_k = log alpha_k^DPIR(sigma) + d_log_alpha[k]`` (through
``torch.func.functional_call``). With zero offsets and the shipped weights it
*is* plug-and-play HQS for every operator and noise level; training learns a
correction of DPIR's schedule that still scales with the noise level (as
USRNet's hyper-parameter module does: Zhang, Van Gool and Timofte, "Deep
unfolding network for image super-resolution", arXiv:2003.10428) and the
prior's weights. Nothing is fitted at test time.

Training data: random square patches of the training pictures only
(``physinv.bench.splits.training_images``), random flips and quarter turns;
each batch gets one PSF drawn from a Gaussian (sigma 1-3.5 px), motion
(length 5-20 px, any angle) or disk (radius 1.5-5 px) family (``--families``;
``shake`` adds random camera-shake kernels, ``physinv.psf.shake`` of odd side
9-23 with seeds from 10**6 on, never the test kernels' seeds), and one noise
level uniform in [0.005, 0.04], circular blur, fresh noise every batch
(``physinv.train.fit_simulated``; Adam, a small learning rate for the prior
and a larger one for the offsets, cosine decay; the weights kept are the best
of a few checks on fixed validation patches of the training pictures, or the
untrained ones when no check beats them). The
test PSFs (including the ``shake_*`` kernels) are never used in training.

Usage::

    python scripts/study_hqs.py --quick --out /tmp/hqs       # 20 steps, 2 pictures, 4 PSFs
    python scripts/study_hqs.py --out /tmp/hqs --figures docs/figures
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import Dataset

from physinv import psf
from physinv._io import atomic_write
from physinv.bench import provenance
from physinv.bench.splits import TEST_IMAGES, training_images
from physinv.metrics import psnr
from physinv.nets import UnrolledHQS, pretrained_denoiser
from physinv.nets.denoiser import PRETRAINED_DENOISERS
from physinv.operators import Convolution
from physinv.solvers import pnp
from physinv.train import fit_simulated

#: Every training PSF is zero-padded (centred) to this odd side, so batches of PSFs stack.
PSF_SIDE = 23

#: The training blur families and their parameter ranges (shake: the kernel side, odd).
FAMILIES = {"gaussian": (1.0, 3.5), "motion": (5.0, 20.0), "disk": (1.5, 5.0), "shake": (9, PSF_SIDE)}
#: Families drawn when ``--families`` is not given.
DEFAULT_FAMILIES = ("gaussian", "motion", "disk")
#: Training shake kernels take seeds from here on, far from the test kernels' seeds (1000-1003).
SHAKE_SEED0 = 10**6


def _eval_pnp() -> Any:
    """The module ``scripts/eval_pnp.py`` (its test PSFs define the protocol)."""
    path = Path(__file__).resolve().parent / "eval_pnp.py"
    spec = importlib.util.spec_from_file_location("eval_pnp", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class FamilyHQS(nn.Module):
    """UnrolledHQS for any circular blur and noise level: a shared prior and learned schedule offsets.

    Parameters
    ----------
    n_layers : int
        Unrolled HQS iterations.
    prior : nn.Module, optional
        ``prior(x, sigma)``; default a trainable copy of the shipped denoiser.

    Examples
    --------
    >>> net = FamilyHQS(n_layers=2)
    >>> A = Convolution(psf.gaussian(1.5), (16, 16))
    >>> net(torch.rand(1, 16, 16), A, 0.02).shape
    torch.Size([1, 16, 16])
    """

    def __init__(self, n_layers: int = 8, prior: nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
        if prior is None:
            prior = _trainable(pretrained_denoiser())
        self.n_layers = n_layers
        self.prior = prior.train()
        self.d_log_sigma = nn.Parameter(torch.zeros(n_layers))
        self.d_log_alpha = nn.Parameter(torch.zeros(n_layers))

    def unrolled(self, A: Convolution, noise_sigma: float) -> UnrolledHQS:
        """The UnrolledHQS on ``A`` at DPIR's schedule for ``noise_sigma``, sharing this prior."""
        return UnrolledHQS(A, prior=self.prior, n_layers=self.n_layers, noise_sigma=float(noise_sigma))

    def forward(self, y: torch.Tensor, A: Convolution, noise_sigma: float) -> torch.Tensor:
        net = self.unrolled(A, noise_sigma)
        params = {"log_sigma": net.log_sigma.detach() + self.d_log_sigma,
                  "log_alpha": net.log_alpha.detach() + self.d_log_alpha}
        return functional_call(net, params, (y,))


def pad_psf(k: torch.Tensor, side: int = PSF_SIDE) -> torch.Tensor:
    """Zero-pad an odd-sized PSF, centred, to ``side x side`` (the blur is unchanged)."""
    h, w = k.shape
    if h % 2 == 0 or w % 2 == 0 or h > side or w > side:
        raise ValueError(f"psf must be odd-sized and at most {side}x{side}, got {tuple(k.shape)}")
    ph, pw = (side - h) // 2, (side - w) // 2
    return torch.nn.functional.pad(k, (pw, pw, ph, ph))


def random_psf(rng: np.random.Generator, families: tuple[str, ...] = DEFAULT_FAMILIES
               ) -> tuple[torch.Tensor, str]:
    """One PSF of the training family (padded to ``PSF_SIDE``) and its description."""
    family = families[int(rng.integers(len(families)))]
    lo, hi = FAMILIES[family]
    if family == "shake":  # random camera shake, seeds disjoint from the shipped test kernels
        side = int(rng.integers(lo // 2, hi // 2 + 1)) * 2 + 1
        seed = SHAKE_SEED0 + int(rng.integers(0, 2**30))
        return pad_psf(psf.shake(side, seed)), f"shake:{side},{seed}"
    v = float(rng.uniform(lo, hi))
    if family == "gaussian":
        k, desc = psf.gaussian(v), f"gaussian:{v:.2f}"
    elif family == "motion":
        angle = float(rng.uniform(0.0, 180.0))
        k, desc = psf.motion(v, angle), f"motion:{v:.1f},{angle:.0f}"
    else:
        k, desc = psf.disk(v), f"disk:{v:.2f}"
    return pad_psf(k.to(torch.float64)), desc


def _trainable(prior: nn.Module) -> nn.Module:
    """``prior`` with gradients on (the shipped denoisers come frozen)."""
    for q in prior.parameters():
        q.requires_grad_(True)
    return prior


def _run_net(model: FamilyHQS, y: torch.Tensor, info: dict[str, Any]) -> torch.Tensor:
    """The network on a batch with one PSF (training) or one PSF per item (collated validation)."""
    k, s = info["psf"], info["sigma"]
    shape = tuple(y.shape[-2:])
    if k.dim() == 2:
        return model(y, Convolution(k, shape), float(s))
    return torch.stack([model(y[i:i + 1], Convolution(k[i], shape), float(s[i]))[0] for i in range(len(y))])


class _Fixed(Dataset):
    """Fixed validation items ``(y, x, {"psf", "sigma"})``."""

    def __init__(self, items: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        return self.items[i]


def patches(size: int, patch: int, n: int, seed: int) -> torch.Tensor:
    """``n`` random ``patch x patch`` crops (random flips and quarter turns) of the training pictures."""
    ims, _ = training_images(size)
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        im = ims[j % len(ims)]
        r, c = rng.integers(0, size - patch + 1, size=2)
        p = im[r:r + patch, c:c + patch]
        p = np.rot90(p, int(rng.integers(4)))
        if rng.integers(2):
            p = p[:, ::-1]
        out.append(np.ascontiguousarray(p))
    return torch.from_numpy(np.stack(out)).float()


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 of the state dict (names, dtypes, shapes and raw bytes, in name order)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        a = t.detach().cpu().contiguous().numpy()
        h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def train(args: argparse.Namespace) -> tuple[FamilyHQS, dict[str, Any]]:
    """Train a :class:`FamilyHQS` on the training pictures; returns it and a record of the run."""
    torch.manual_seed(args.seed)
    model = FamilyHQS(n_layers=args.layers, prior=_trainable(pretrained_denoiser(name=args.denoiser)))
    X = patches(args.train_size, args.patch, args.n_patches, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    g = torch.Generator().manual_seed(args.seed + 2)
    drawn: list[str] = []

    def measure(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        k, desc = random_psf(rng, tuple(args.families))
        sigma = float(rng.uniform(*args.train_sigma))
        drawn.append(desc)
        y = Convolution(k, tuple(x.shape[-2:]))(x) + sigma * torch.randn(x.shape, generator=g)
        return y.float(), {"psf": k, "sigma": sigma}

    # validation: other crops of the training pictures, one fixed PSF and noise level each
    Xv = patches(args.train_size, args.patch, args.n_val, args.seed + 1000)
    vrng = np.random.default_rng(args.seed + 1001)
    val = []
    for x in Xv:
        k, _ = random_psf(vrng, tuple(args.families))
        s = float(vrng.uniform(*args.train_sigma))
        y = Convolution(k, tuple(x.shape))(x) + s * torch.randn(x.shape, generator=g)
        val.append((y.float(), x, {"psf": k, "sigma": torch.tensor(s)}))

    with torch.no_grad():  # the untrained network (plug-and-play) on the validation patches
        val_init = float(np.mean([float(psnr(_run_net(model, y[None], {"psf": k["psf"],
                                                                    "sigma": k["sigma"]})[0], x))
                                  for y, x, k in val]))
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    prior = list(model.prior.parameters())
    opt = torch.optim.Adam([{"params": prior, "lr": args.lr_prior},
                            {"params": [model.d_log_sigma, model.d_log_alpha], "lr": args.lr_schedule}])
    t = time.perf_counter()
    history = fit_simulated(model, X, measure, steps=args.steps, batch_size=args.batch, optimizer=opt,
                            scheduler="cosine", val_data=_Fixed(val), checks=args.checks, seed=args.seed,
                            forward=lambda m, b: (_run_net(m, b[0], b[2]), b[1]), device="cpu",
                            progress=args.progress)
    train_s = time.perf_counter() - t
    best = max((r["val_psnr"] for r in history if "val_psnr" in r), default=-math.inf)
    kept = "best check"
    if not best > val_init:  # training never beat plug-and-play on validation: keep the start
        model.load_state_dict(start)
        kept = "untrained (no check beat it)"
    model.eval()
    families = {f: sum(d.startswith(f) for d in drawn) for f in args.families}
    record = {"train_s": train_s, "history": history, "val_psnr_init": val_init, "kept": kept,
              "psfs_drawn": families,
              "sha256": weights_sha256(model),
              "sigma_factor": model.d_log_sigma.detach().exp().tolist(),
              "alpha_factor": model.d_log_alpha.detach().exp().tolist()}
    return model, record


def evaluate(args: argparse.Namespace, model: FamilyHQS) -> list[dict[str, Any]]:
    """The eval_pnp protocol: oracle Wiener, PnP, the untrained and the trained network per case."""
    D = pretrained_denoiser(name=args.denoiser)
    init = FamilyHQS(n_layers=args.layers, prior=pretrained_denoiser(name=args.denoiser)).eval()
    g = torch.Generator().manual_seed(args.seed)
    c = args.crop

    def score(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(psnr(a[..., c:-c, c:-c], b[..., c:-c, c:-c], data_range=1.0))

    rows = []
    protocol = _eval_pnp().cases(args.psfs, args.sigmas, args.images, args.size, g)
    for pname, sigma, name, A, F, x, y, P in protocol:
        row: dict[str, Any] = {"psf": pname, "sigma": sigma, "image": name,
                               "wiener_oracle": score(F.wiener(y, sigma, P), x)}
        t = time.perf_counter()
        row["pnp"] = score(pnp(A, y, D, sigma, n_iter=args.layers, factorization=F).x, x)
        row["pnp_s"] = time.perf_counter() - t
        with torch.no_grad():
            row["hqs_init"] = score(init(y, A, sigma), x)
            t = time.perf_counter()
            row["hqs_trained"] = score(model(y, A, sigma), x)
            row["hqs_s"] = time.perf_counter() - t
        rows.append(row)
        if args.verbose:
            print(f"{pname} {sigma} {name}: wiener* {row['wiener_oracle']:.2f} pnp {row['pnp']:.2f} "
                  f"init {row['hqs_init']:.2f} trained {row['hqs_trained']:.2f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]], psfs: list[str], sigmas: list[float]) -> tuple[str, list[dict]]:
    """The markdown table per PSF x noise and the mean, and its rows as dicts."""
    lines = ["| PSF | noise | Wiener (oracle spectrum) | PnP | trained UnrolledHQS | PnP - Wiener | "
             "trained - Wiener | trained - PnP |", "|---|---|---|---|---|---|---|---|"]
    out = []
    for q, s in [(q, s) for q in psfs for s in sigmas] + [("**mean**", None)]:
        sel = [r for r in rows if q == "**mean**" or (r["psf"] == q and r["sigma"] == s)]
        keys = ("wiener_oracle", "pnp", "hqs_init", "hqs_trained")
        m = {k: float(np.mean([r[k] for r in sel])) for k in keys}
        out.append({"psf": q, "sigma": s, **m})
        lines.append(f"| {q} | {'' if s is None else s} | {m['wiener_oracle']:.2f} | {m['pnp']:.2f} | "
                     f"{m['hqs_trained']:.2f} | {m['pnp'] - m['wiener_oracle']:+.2f} | "
                     f"{m['hqs_trained'] - m['wiener_oracle']:+.2f} | {m['hqs_trained'] - m['pnp']:+.2f} |")
    return "\n".join(lines), out


def figures(folder: str, means: list[dict], record: dict[str, Any], dpi: int = 110) -> list[str]:
    """``hqs_gain.png`` (gain over the oracle Wiener per case), ``hqs_schedule.png`` (learned offsets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    written = []
    cases = [m for m in means if m["sigma"] is not None]
    labels = [f"{m['psf']} / {m['sigma']}" for m in cases]
    pos = np.arange(len(cases))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(cases)), 4.2))
    ax.bar(pos - 0.2, [m["pnp"] - m["wiener_oracle"] for m in cases], 0.4, label="PnP (shipped denoiser)")
    ax.bar(pos + 0.2, [m["hqs_trained"] - m["wiener_oracle"] for m in cases], 0.4,
           label="trained UnrolledHQS")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(pos, labels, fontsize=7, rotation=55, ha="right")
    ax.set_xlabel("test PSF / noise sigma")
    ax.set_ylabel("PSNR gain over oracle Wiener (dB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(folder, "hqs_gain.png")
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    plt.close(fig)
    written.append(path)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.0, 3.2))
    k = np.arange(1, len(record["sigma_factor"]) + 1)
    a1.plot(k, record["sigma_factor"], "o-", label="sigma_k / DPIR")
    a1.plot(k, record["alpha_factor"], "s-", label="alpha_k / DPIR")
    a1.axhline(1, color="k", lw=0.8)
    a1.set_yscale("log")
    a1.set_xlabel("layer k")
    a1.set_title("learned schedule (factor on DPIR's)", fontsize=9)
    a1.legend(fontsize=8)
    h = [r for r in record["history"] if "val_psnr" in r]
    a2.plot([0] + [r["step"] for r in h], [record["val_psnr_init"]] + [r["val_psnr"] for r in h], "o-")
    a2.set_xlabel("optimizer step")
    a2.set_ylabel("validation PSNR (dB)")
    a2.set_title("validation patches (training pictures)", fontsize=9)
    fig.tight_layout()
    path = os.path.join(folder, "hqs_schedule.png")
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for results.json (and figures by default)")
    p.add_argument("--figures", default=None, help="folder for hqs_*.png (default --out)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--images", nargs="+", default=list(TEST_IMAGES))
    p.add_argument("--psfs", nargs="+", default=None, help="test PSFs (default: all of eval_pnp)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.01, 0.03])
    p.add_argument("--crop", type=int, default=8)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 300, 20 with --quick)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--train-size", type=int, default=192, help="training pictures resized to this side")
    p.add_argument("--n-patches", type=int, default=1024)
    p.add_argument("--n-val", type=int, default=12)
    p.add_argument("--checks", type=int, default=None, help="validation checks (default 5, 2 with --quick)")
    p.add_argument("--lr-prior", type=float, default=5e-5)
    p.add_argument("--lr-schedule", type=float, default=2e-2)
    p.add_argument("--train-sigma", type=float, nargs=2, default=[0.005, 0.04])
    p.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES), choices=sorted(FAMILIES),
                   help="training blur families (shake: random camera-shake kernels of other seeds "
                        "than the test kernels)")
    p.add_argument("--denoiser", choices=sorted(PRETRAINED_DENOISERS), default=None,
                   help="shipped denoiser that starts the prior (default: physinv's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    all_psfs = list(_eval_pnp().PSFS)
    if args.psfs is None:
        args.psfs = all_psfs
    bad = [q for q in args.psfs if q not in all_psfs]
    if bad:
        p.error(f"--psfs: unknown {bad}; choose from {all_psfs}")
    if args.quick:
        args.images, args.psfs = args.images[:2], args.psfs[:2] + args.psfs[4:6]
    args.steps = args.steps or (20 if args.quick else 300)
    args.checks = args.checks or (2 if args.quick else 5)
    lo, hi = args.train_sigma
    if not (0 < lo <= hi and math.isfinite(hi)):
        p.error(f"--train-sigma must be 0 < low <= high, got {args.train_sigma}")
    torch.set_num_threads(args.threads)
    config = {k: v for k, v in vars(args).items() if k not in ("progress", "verbose")}
    prov = provenance.collect(config, device="cpu", threads=args.threads, seed=args.seed,
                              argv=sys.argv if argv is None else argv)
    t0 = time.perf_counter()
    model, record = train(args)
    rows = evaluate(args, model)
    text, means = table(rows, args.psfs, args.sigmas)
    total = time.perf_counter() - t0
    print(text)
    hist = [r for r in record["history"] if "val_psnr" in r]
    print(f"\n{len(rows)} cases at {args.size}x{args.size}, {args.threads} thread(s). "
          f"Training {record['train_s']:.0f} s ({args.steps} steps of {args.batch} patches "
          f"{args.patch}x{args.patch}, {args.layers} layers; PSFs drawn {record['psfs_drawn']}); "
          f"validation PSNR at init {record['val_psnr_init']:.2f}, by check "
          f"{[round(r['val_psnr'], 2) for r in hist]}, kept: {record['kept']}. "
          f"Per image: PnP {np.mean([r['pnp_s'] for r in rows]):.2f} s, trained "
          f"{np.mean([r['hqs_s'] for r in rows]):.2f} s. "
          f"Untrained network vs pnp: max |PSNR difference| "
          f"{max(abs(r['hqs_init'] - r['pnp']) for r in rows):.4f} dB. Total {total:.0f} s.")
    print(f"weights SHA-256 {record['sha256']}")
    print("learned sigma factors", [round(v, 3) for v in record["sigma_factor"]])
    print("learned alpha factors", [round(v, 3) for v in record["alpha_factor"]])
    os.makedirs(args.out, exist_ok=True)
    written = figures(args.figures or args.out, means, record)
    out = {"rows": rows, "means": means, "training": record, "total_s": total, "config": config,
           "provenance": prov, "figures": written}
    atomic_write(os.path.join(args.out, "results.json"),
                 lambda f: json.dump(out, f, indent=1, default=str), mode="w")
    return out


if __name__ == "__main__":
    main()
