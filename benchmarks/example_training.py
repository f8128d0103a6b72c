"""End-to-end example: simulate a deblurring dataset, store it in HDF5, train, resume, evaluate.

    python benchmarks/example_training.py --out runs/example            # a few minutes on a CPU
    python benchmarks/example_training.py --out /tmp/ex --quick         # seconds (used by the tests)
    torchrun --nproc_per_node=2 benchmarks/example_training.py --out runs/ddp   # same, 2 processes
"""

import argparse
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
from physinv.train import Trainer, evaluate, load_weights


class UnrolledLandweber(nn.Module):
    """x_{k+1} = x_k + t_k A^T (y - A x_k) with learned steps t_k, then a small residual CNN."""

    def __init__(self, A, n_iter=6):
        super().__init__()
        self.A = A  # the exact physics, fixed (its buffers follow .to(device))
        self.steps = nn.Parameter(torch.full((n_iter,), 1.0 / A.norm() ** 2))
        self.refine = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1))

    def forward(self, y):
        x = self.A.adjoint(y)
        for t in self.steps:
            x = x + t * self.A.adjoint(y - self.A(x))
        return x + self.refine(x.unsqueeze(-3)).squeeze(-3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/example")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    args = p.parse_args(argv)
    size, n_train, n_val, n_test, epochs = (16, 64, 16, 16, 2) if args.quick else (48, 2048, 256, 256, 12)
    os.makedirs(args.out, exist_ok=True)

    # 1. Data: patches of bundled pictures; train, validation and test never share a source picture.
    pool = skimage_images(["camera", "moon", "coins", "brick", "grass", "gravel", "text", "page",
                           "clock", "cell", "microaneurysms", "checkerboard"])
    train_src, val_src, test_src = split_sources(pool, test_fraction=0.25, val_fraction=0.17, seed=0)
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
        model = UnrolledLandweber(train.operator)  # the operator rebuilt from the file's JSON
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        return Trainer(model, nn.functional.mse_loss, opt, train, val, batch_size=16, epochs=n_epochs,
                       scheduler="exponential", clip_grad_norm=1.0, early_stopping=5,
                       output_dir=os.path.join(args.out, "run"), resume=True, plot=True,
                       progress=not args.quick)

    t = trainer(epochs // 2)
    t.fit()
    # 3. ... then resume: a new Trainer picks up last.pt and continues to the full count.
    t = trainer(epochs)
    t.fit()
    t.close()
    if t.rank != 0:
        return None

    # 4. Evaluate the best checkpoint against the plain adjoint and Tikhonov on the test set.
    model = load_weights(UnrolledLandweber(test.operator), os.path.join(args.out, "run", "best.pt"))
    F = test.operator.svd()
    y, x = (torch.stack(v) for v in zip(*[test[i] for i in range(len(test))]))
    rows = {"A^T y": psnr(A.adjoint(y), x).mean().item(),
            "Tikhonov (lam=1e-2)": psnr(F.tikhonov(y, 1e-2), x).mean().item(),
            "unrolled Landweber + CNN": evaluate(model, test)["psnr"]}
    for name, value in rows.items():
        print(f"{name:28s} PSNR {value:6.2f} dB")
    return rows


if __name__ == "__main__":
    main()
