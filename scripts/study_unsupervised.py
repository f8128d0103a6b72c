"""Deblurring networks trained without ground truth: measurement consistency vs the supervised misfit.

A ``SpectralFilterNet`` (one learned gain per Fourier index, started at
Tikhonov with ``lam = 1``) is trained on Gaussian-blurred (sigma 2, circular
boundary) pictures of 64 x 64 with white noise sigma = 0.01. The training
pictures are the scikit-image training split (camera, text, page, ...; see
:mod:`physinv.bench.splits`), the test pictures are the disjoint test split
(astronaut, brick, chelsea, coffee, coins, moon). Losses (:mod:`physinv.losses`):

* supervised: ``Misfit("l2")`` between ``net(y)`` and the clean image;
* unsupervised: ``MeasurementConsistency(A)``, ``||A net(y) - y||^2``, from the
  blurred data alone, optionally plus ``w * GradientPenalty()`` (quadratic
  gradient prior) for a few weights ``w``.

Each network is trained by :class:`physinv.train.Trainer` with the same budget
(Adam, lr 0.05, batch 8, the noisy training data fixed once), for each of the
budgets in ``--epochs`` (separate runs from the same start), so that the
table shows how each loss behaves as training goes on. The Wiener filter
(power-law signal spectrum, the true noise level) and the Tikhonov start are
the baselines. The script prints the mean test PSNR (dB) of each.

Usage: ``python scripts/study_unsupervised.py [--epochs 30,300,3000] [--threads 2]`` (about a minute).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import TensorDataset

from physinv import psf
from physinv.bench import splits
from physinv.data.images import skimage_image
from physinv.losses import Composite, GradientPenalty, MeasurementConsistency, Misfit
from physinv.metrics import psnr
from physinv.nets import SpectralFilterNet
from physinv.operators import Convolution
from physinv.solvers import wiener
from physinv.train import Trainer

SIZE = 64
NOISE = 0.01
WEIGHTS = (0.01, 0.1, 1.0)


def _data(A, images, seed):
    x = torch.stack([torch.as_tensor(im, dtype=torch.float32) for im in images])
    g = torch.Generator().manual_seed(seed)
    return A(x) + NOISE * torch.randn(x.shape, generator=g), x


def _train(A, loss, data, *, supervised, epochs, seed):
    torch.manual_seed(seed)
    net = SpectralFilterNet(A, lam=1.0)
    forward = None if supervised else (lambda m, b: (m(b[0]), b[0]))
    t = Trainer(net, loss=loss, train_data=data, batch_size=8, epochs=epochs, lr=0.05, seed=seed,
                forward=forward, progress=False)
    hist = t.fit()
    return net, hist[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", default="30,300,3000",
                    help="comma-separated training budgets (epochs); each is a separate run from the start")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    budgets = [int(e) for e in args.epochs.split(",") if e.strip()]
    if not budgets or min(budgets) < 1:
        ap.error(f"argument --epochs: must be positive integers, got {args.epochs!r}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    A = Convolution(psf.gaussian(2.0, 15), (SIZE, SIZE))
    train_images, train_names = splits.training_images(SIZE)
    y_tr, x_tr = _data(A, train_images, args.seed)
    y_te, x_te = _data(A, [splits.square_picture(skimage_image(n), SIZE) for n in splits.TEST_IMAGES],
                       args.seed + 1)

    def score(x_hat):
        return float(psnr(x_hat.clamp(0, 1), x_te).mean())

    rows = [("Wiener (power-law PSD, true sigma)",
             score(wiener(A, y_te.double(), NOISE, "power-law").x.float())), ]
    with torch.no_grad():
        rows.append(("Tikhonov lam=1 (the networks' start)", score(SpectralFilterNet(A, lam=1.0)(y_te))))
    runs = [("supervised: Misfit l2 (needs x)", Misfit("l2"), TensorDataset(y_tr, x_tr), True),
            ("unsupervised: MeasurementConsistency", MeasurementConsistency(A), TensorDataset(y_tr), False)]
    for w in WEIGHTS:
        loss = Composite({"data": MeasurementConsistency(A), "smooth": GradientPenalty()}, {"smooth": w})
        runs.append((f"unsupervised: + {w:g} GradientPenalty", loss, TensorDataset(y_tr), False))
    for name, loss, data, sup in runs:
        scores = []
        for epochs in budgets:
            net, last = _train(A, loss, data, supervised=sup, epochs=epochs, seed=args.seed)
            with torch.no_grad():
                scores.append(score(net(y_te)))
            terms = ", ".join(f"{k[6:]}={v:.3g}" for k, v in last.items()
                              if k.startswith("train_") and k != "train_loss")
            print(f"  {name}, {epochs} epochs: final {terms}", flush=True)
        rows.append((name, *scores))
    print(f"\nGaussian blur sigma 2, noise {NOISE}, {SIZE}x{SIZE}; train on {len(train_names)} pictures "
          f"({', '.join(train_names[:4])}, ...), test on {', '.join(splits.TEST_IMAGES)}; seed {args.seed}; "
          f"{len(y_tr) // 8 + (len(y_tr) % 8 > 0)} steps per epoch\n")
    print("| method | " + " | ".join(f"{e} epochs" for e in budgets) + " |")
    print("|:---|" + "---:|" * len(budgets))
    for name, *vals in rows:
        vals = vals * len(budgets) if len(vals) == 1 else vals
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    print(f"\nmean test PSNR (dB); {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
