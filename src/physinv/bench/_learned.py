"""Learned methods registered with the benchmark: trained on the training split, once per setting.

``spectral-filter-net``: :class:`physinv.nets.SpectralFilterNet`, the circular
blur's exact factorization ``x = V diag(f) U^H y`` with one learned value per
half-spectrum index (initialised as Tikhonov), trained with Adam (:func:`physinv.train.fit_simulated`) on the
mean squared error over the training images of the setting (data made with
the benchmark's own simulation for the setting's PSF, noise level and
boundary, fresh noise every step). It is linear and shift-invariant, so it
can at best reach the oracle MMSE Wiener filter of its training set; on
realistic data it learns the best circular-model filter for that data.
"""

from __future__ import annotations

import torch

from ..train import fit_simulated
from .methods import Problem, register

__all__ = ["SFN_TRAIN"]

#: Training settings of ``spectral-filter-net`` (part of its cell IDs).
SFN_TRAIN = {"steps": 300, "batch": 8, "lr": 0.1, "lam0_per_sigma2": 30.0, "loop": "fit_simulated-1"}


def _sfn_train(images, psf, noise_sigma, boundary, config):
    from ..nets import SpectralFilterNet
    from ..operators import Convolution
    from .deconv import simulate

    size, margin = int(config["size"]), int(config["margin"])
    dev = torch.device(config["device"])
    g = torch.Generator().manual_seed(int(config["seed"]))
    xs, ys = [], []
    for im in images:
        x, y = simulate(im, psf.detach().cpu(), 0.0, boundary, size, margin, g)
        xs.append(x)
        ys.append(y)
    X = torch.stack(xs).to(dev, torch.float32)
    Y0 = torch.stack(ys).to(dev, torch.float32)
    A = Convolution(psf.detach().to(dev, torch.float64), (size, size)).to(dev)
    lam0 = float(config["lam0_per_sigma2"]) * float(noise_sigma) ** 2
    net = SpectralFilterNet(A, lam=lam0).to(dev)
    gd = torch.Generator(device=dev).manual_seed(int(config["seed"]) + 1)

    def measure(batch: list[torch.Tensor]) -> torch.Tensor:  # noise-free data made once, fresh noise
        y0 = batch[1]
        return y0 + float(noise_sigma) * torch.randn(y0.shape, generator=gd, device=dev, dtype=y0.dtype)

    fit_simulated(net, (X, Y0), measure, steps=int(config["steps"]), lr=float(config["lr"]),
                  batch_size=min(int(config["batch"]), X.shape[0]), seed=int(config["seed"]), device=dev)
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def _sfn(p: Problem):
    from ..nets import SpectralFilterNet

    net = SpectralFilterNet(p.circular_operator()).to(p.device)
    net.load_state_dict({k: v.to(p.device) for k, v in p.state.items()})
    with torch.no_grad():
        return net(p.y.to(torch.float32)).to(torch.float64)


register("spectral-filter-net", _sfn, oracle=False, family="learned",
         label=f"SpectralFilterNet (one learned value per frequency of the circular blur's factorization), "
               f"trained on the training split, Adam {SFN_TRAIN['steps']} steps (circular model)",
         needs_training=True, train=_sfn_train, assumes="circular", default=False,
         train_config=SFN_TRAIN)
