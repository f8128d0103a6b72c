"""End-to-end example: simulate a deblurring dataset, store it in HDF5, train, resume, evaluate.

    python benchmarks/example_training.py --out runs/example            # a few minutes on a CPU
    python benchmarks/example_training.py --out /tmp/ex --quick         # seconds (used by the tests)
    torchrun --nproc_per_node=2 benchmarks/example_training.py --out runs/ddp   # same, 2 processes
"""

import argparse
import math
import os

import torch
from torch import nn

from physinv.data import (
    H5Dataset,
    InverseProblemDataset,
    Patches,
    save_dataset,
    skimage_images,
    split_sources,
)
from physinv.metrics import psnr
from physinv.operators import Convolution
from physinv.psf import gaussian
from physinv.train import Trainer, evaluate, load_weights, seed_everything


class SpectralFilterNet(nn.Module):
    """x = V diag(s / (s^2 + exp(theta))) U^T y with one learned theta per spectral index, then a CNN.

    U, s, V is the exact factorization of the blur (two FFTs). At initialization the network is
    Tikhonov with lam=1e-2 (theta = log lam, and the CNN's last layer is zero), so training starts
    from the classical solution and the physics stays fixed.
    """

    def __init__(self, A, lam=1e-2):
        super().__init__()
        self.F = A.svd()
        self.U, self.V = self.F.U, self.F.V  # registered as submodules: .to(device) moves them
        self.register_buffer("s", self.F.s.float())
        self.theta = nn.Parameter(torch.full(self.s.shape, math.log(lam)))
        self.refine = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def forward(self, y):
        x = self.F.apply_filter(y, self.s / (self.s**2 + self.theta.exp()))
        return x + self.refine(x.unsqueeze(-3)).squeeze(-3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/example")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    args = p.parse_args(argv)
    size, n_train, n_val, n_test, epochs = (16, 64, 16, 16, 2) if args.quick else (48, 2048, 256, 256, 12)
    os.makedirs(args.out, exist_ok=True)

    # 1. Data: patches of bundled pictures; train, validation and test never share a source picture.
    pool = skimage_images()  # every picture bundled with scikit-image (22 in 0.26), in grayscale
    train_src, val_src, test_src = split_sources(pool, test_fraction=0.2, val_fraction=0.15, seed=0)
    print("test pictures:", ", ".join(test_src))
    A = Convolution(gaussian(1.5, size=9), (size, size))  # circular blur, exact adjoint and SVD
    files = {}
    for part, src, n, seed in (("train", train_src, n_train, 1), ("val", val_src, n_val, 2),
                               ("test", test_src, n_test, 3)):
        path = files[part] = os.path.join(args.out, f"{part}.h5")
        if not os.path.exists(path):  # atomic: the file exists only once complete
            ds = InverseProblemDataset(A, Patches(src, size, n=n, seed=seed), noise_sigma=(0.005, 0.03),
                                       seed=seed)
            save_dataset(path, ds)
    train, val, test = (H5Dataset(files[part]) for part in ("train", "val", "test"))

    # 2. Train for half the epochs, as if the job had been stopped ...
    def trainer(n_epochs):
        seed_everything(0)  # the model's random initialization happens here, before the Trainer
        model = SpectralFilterNet(train.operator)  # the operator rebuilt from the file's JSON
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        return Trainer(model, nn.functional.mse_loss, opt, train, val, batch_size=16, epochs=n_epochs,
                       scheduler="exponential", clip_grad_norm=1.0, early_stopping=5,
                       output_dir=os.path.join(args.out, "run"), resume=True, plot=True,
                       progress=not args.quick)

    t = trainer(epochs // 2)
    t.fit()
    # 3. ... then resume: a new Trainer picks up last.pt and continues to the full count.
    t = trainer(epochs)
    print(f"resuming at epoch {t.epoch} (step {t.global_step}) from {t.resumed_from}")
    t.fit()
    t.close()
    if t.rank != 0:
        return None

    # 4. Evaluate the best checkpoint against the plain adjoint and Tikhonov on the test set.
    model = load_weights(SpectralFilterNet(test.operator), os.path.join(args.out, "run", "best.pt"))
    F = test.operator.svd()
    def stacked(ds):
        return (torch.stack(v) for v in zip(*[ds[i] for i in range(len(ds))]))

    yv, xv = stacked(val)  # the classical baseline gets its lambda tuned on the validation set too
    lam = max((10.0**k for k in range(-5, 1)), key=lambda lam: psnr(F.tikhonov(yv, lam), xv).mean().item())
    y, x = stacked(test)
    rows = {"A^T y": psnr(A.adjoint(y), x).mean().item(),
            "Tikhonov (lam=1e-2)": psnr(F.tikhonov(y, 1e-2), x).mean().item(),
            f"Tikhonov (lam={lam:g}, val-tuned)": psnr(F.tikhonov(y, lam), x).mean().item(),
            "learned spectral filter + CNN": evaluate(model, test)["psnr"]}
    for name, value in rows.items():
        print(f"{name:34s} PSNR {value:6.2f} dB")
    return rows


if __name__ == "__main__":
    main()
