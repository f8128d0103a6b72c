"""Learned methods registered with the benchmark: trained on the training split, once per setting.

Every learned method is a physinv network trained by
:func:`physinv.train.fit_simulated` (Adam on the mean squared error, fresh
noise for every batch) on the training pictures of the setting, simulated
with the benchmark's own forward model for the setting's PSF, noise level and
boundary (so on realistic data the training data are frames of larger
scenes, as the test data are). None of them sees a test picture.

``spectral-filter-net``
    :class:`physinv.nets.SpectralFilterNet` on the circular blur's exact
    factorization, one learned value per half-spectrum index (initialised as
    Tikhonov). Linear and shift-invariant: at best the oracle MMSE Wiener
    filter of its training set.
``parametric-filter-net``
    ``SpectralFilterNet(parametric=True)``: a small MLP maps each frequency's
    singular value and the noise level to the filter, so it takes the noise
    level (estimated from the data by MAD at test time).
``unrolled-landweber``, ``unrolled-ista``
    :class:`physinv.nets.UnrolledLandweber` (learned steps) and
    :class:`physinv.nets.UnrolledISTA` (learned transform and thresholds) on
    physinv's operator for the data (boundary-aware on realistic data: they
    need only ``A`` and ``A^H``).
``hybrid``
    :class:`physinv.nets.HybridNet`: the spectral filter followed by a small
    residual DnCNN refiner, trained together (circular model).
``unrolled-hqs``
    :class:`physinv.nets.UnrolledHQS` starting from physinv's shipped
    denoiser as its prior (plug-and-play HQS at initialisation), prior,
    penalties and noise schedule fine-tuned for the setting (boundary-aware).

All are off by default (``--methods NAME`` or ``--methods all``): training
costs minutes per setting on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..nets.unrolled import STEP_PARAMETERIZATION
from ..train import fit_simulated
from ..train.simulated import LOOP_VERSION
from ._builtin import mad_noise_sigma
from .methods import Problem, register

__all__ = ["SFN_TRAIN", "LEARNED"]

#: Version of the training procedure (part of every learned method's cell IDs).
_LOOP = LOOP_VERSION

#: Training settings of ``spectral-filter-net`` (part of its cell IDs).
SFN_TRAIN = {"steps": 300, "batch": 8, "lr": 0.1, "lam0_per_sigma2": 30.0, "loop": _LOOP}


def _spectral(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import SpectralFilterNet

    return SpectralFilterNet(A, lam=float(c["lam0_per_sigma2"]) * sigma ** 2)


def _parametric(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import SpectralFilterNet

    return SpectralFilterNet(A, parametric=True, hidden=int(c["hidden"]))


def _landweber(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import UnrolledLandweber

    return UnrolledLandweber(A, n_layers=int(c["layers"]))


def _ista(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import UnrolledISTA

    return UnrolledISTA(A, n_layers=int(c["layers"]), channels=int(c["channels"]),
                        lam=float(c["lam_per_sigma"]) * sigma)


def _hybrid(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import DnCNN, HybridNet

    return HybridNet(_spectral(A, sigma, c), DnCNN(depth=int(c["depth"]), channels=int(c["channels"])))


def _hqs(A, sigma: float, c: Mapping[str, Any]):
    from ..nets import UnrolledHQS

    return UnrolledHQS(A, n_layers=int(c["layers"]), noise_sigma=sigma)


#: name -> (builder(A, sigma, train_config), boundary model, takes the noise level, train config, label)
LEARNED: dict[str, tuple[Callable[..., torch.nn.Module], str, bool, dict[str, Any], str]] = {
    "spectral-filter-net": (_spectral, "circular", False, SFN_TRAIN,
                            "SpectralFilterNet (one learned value per frequency of the circular blur's "
                            "factorization)"),
    "parametric-filter-net": (_parametric, "circular", True,
                              {"steps": 300, "batch": 8, "lr": 1e-2, "hidden": 32, "loop": _LOOP},
                              "SpectralFilterNet(parametric=True) (an MLP of singular value and noise level; "
                              "sigma by MAD at test time)"),
    "unrolled-landweber": (_landweber, "matched", False,
                           {"steps": 300, "batch": 8, "lr": 2e-2, "layers": 10, "loop": _LOOP,
                            "step_parameters": STEP_PARAMETERIZATION},
                           "UnrolledLandweber, 10 layers, learned steps"),
    "unrolled-ista": (_ista, "matched", False,
                      {"steps": 300, "batch": 8, "lr": 1e-3, "layers": 6, "channels": 16,
                       "lam_per_sigma": 1.0, "loop": _LOOP, "step_parameters": STEP_PARAMETERIZATION},
                      "UnrolledISTA, 6 layers, learned 16-channel transforms and thresholds"),
    "hybrid": (_hybrid, "circular", False,
               {"steps": 300, "batch": 8, "lr": 2e-3, "lam0_per_sigma2": 30.0, "depth": 5, "channels": 16,
                "loop": _LOOP},
               "HybridNet: SpectralFilterNet + residual DnCNN refiner (5 layers, 16 channels)"),
    "unrolled-hqs": (_hqs, "matched", False,
                     {"steps": 150, "batch": 4, "lr": 1e-4, "layers": 6, "loop": _LOOP},
                     "UnrolledHQS, 6 layers, prior initialised from the shipped denoiser, fine-tuned"),
}


def _operator(psf: torch.Tensor, size: int, model: str, boundary: str, device: torch.device):
    from ..operators import Convolution

    b = "circular" if model == "circular" or boundary == "circular" else model
    return Convolution(psf.detach().to(device, torch.float64), (size, size), boundary=b).to(device)


def _call(net: torch.nn.Module, y: torch.Tensor, sigma: Any, takes_sigma: bool):
    return net(y, noise_sigma=sigma) if takes_sigma else net(y)


def _make_train(name: str) -> Callable[..., Any]:
    build, model, takes_sigma, _, _ = LEARNED[name]

    def train(images, psf, noise_sigma, boundary, config):
        from .deconv import simulate

        size, margin = int(config["size"]), int(config["margin"])
        dev = torch.device(config["device"])
        g = torch.Generator().manual_seed(int(config["seed"]))
        pairs = [simulate(im, psf.detach().cpu(), 0.0, boundary, size, margin, g) for im in images]
        X = torch.stack([x for x, _ in pairs]).to(dev, torch.float32)
        Y0 = torch.stack([y for _, y in pairs]).to(dev, torch.float32)
        A = _operator(psf, size, model if model == "circular" else config["model"], boundary, dev)
        net = build(A, float(noise_sigma), config).to(dev)
        gd = torch.Generator(device=dev).manual_seed(int(config["seed"]) + 1)
        sigma = float(noise_sigma)

        def measure(batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            y0 = batch[1]  # noise-free data made once; fresh noise for every batch
            noise = torch.randn(y0.shape, generator=gd, device=dev, dtype=y0.dtype)
            return y0 + sigma * noise, torch.full(y0.shape[:1], sigma, device=dev)

        fit_simulated(net, (X, Y0), measure, steps=int(config["steps"]), lr=float(config["lr"]),
                      batch_size=min(int(config["batch"]), X.shape[0]), seed=int(config["seed"]), device=dev,
                      forward=lambda m, b: (_call(m, b[0], b[2], takes_sigma), b[1]))
        return {k: v.detach().cpu() for k, v in net.state_dict().items()}

    return train


def _make_fn(name: str) -> Callable[[Problem], Any]:
    build, model, takes_sigma, config, _ = LEARNED[name]

    def fn(p: Problem):
        A = p.circular_operator() if model == "circular" else p.operator()
        sigma = mad_noise_sigma(p.y)
        net = build(A, sigma, config).to(p.device)
        net.load_state_dict({k: v.to(p.device) for k, v in p.state.items()})
        net.eval()
        with torch.no_grad():
            x = _call(net, p.y.to(torch.float32), sigma, takes_sigma)
        return x.to(torch.float64), ({"sigma_hat": sigma} if takes_sigma else {})

    return fn


for _name, (_build, _model, _sig, _cfg, _label) in LEARNED.items():
    register(_name, _make_fn(_name), oracle=False, family="learned",
             label=f"{_label}, trained on the training split, Adam {_cfg['steps']} steps "
                   f"({'circular model' if _model == 'circular' else 'boundary-aware model'})",
             needs_training=True, train=_make_train(_name), assumes=_model, default=False,
             train_config=_cfg)
