"""Training on measurements simulated afresh at every step, with a fixed budget of steps.

:func:`fit_simulated` is how physinv's studies train a network: the ground-truth
images are fixed, the measurements ``y = A x + noise`` of every batch are drawn
anew (so a network never sees the same noise twice), the budget is a number of
optimizer steps, and the weights kept are those that scored best on a fixed
validation set, checked a few times during the run. It is a thin layer over
:class:`~physinv.train.Trainer`, which runs the loop.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from .checkpoint import load_weights
from .evaluation import evaluate
from .trainer import Trainer

#: Changes whenever the loop's results change for the same arguments; studies put it in their cell
#: IDs so that results of an older loop are recomputed, never mixed with new ones. Version 2: the
#: untrained weights compete with the validation checks (a run never ends below its start).
LOOP_VERSION = "fit_simulated-2"

__all__ = ["fit_simulated"]


class _Cycle(Dataset):
    """Item ``i`` of epoch ``e`` is image ``(e L + i) mod N`` (with its extras), ``L`` the epoch length.

    Over the whole run the images are visited in turn, so no image is seen
    more than once more often than any other, whatever ``L`` and ``N``.
    """

    def __init__(self, images: tuple[torch.Tensor, ...], length: int) -> None:
        self.images, self.length, self.epoch = images, length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
        j = (self.epoch * self.length + i) % len(self.images[0])
        return self.images[0][j] if len(self.images) == 1 else tuple(t[j] for t in self.images)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def fit_simulated(model: nn.Module, images: torch.Tensor | tuple[torch.Tensor, ...],
                  measure: Callable[..., Any], *, steps: int, batch_size: int, lr: float = 1e-3,
                  val_data: Any = None, checks: int = 5,
                  forward: Callable | None = None, loss: Callable | None = None, optimizer: Any = None,
                  scheduler: Any = None, metrics: Any = None, seed: int = 0, device: Any = None,
                  precision: str = "fp32", progress: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` for ``steps`` optimizer steps on measurements simulated afresh for every batch.

    Parameters
    ----------
    model : nn.Module
        The network, trained in place; on return it holds the weights that
        scored best on ``val_data``, the untrained ones included (the last
        ones without ``val_data``).
    images : Tensor or tuple of Tensors
        ``(N, ...)`` ground-truth training images, or a tuple ``(x, extra,
        ...)`` of tensors of ``N`` items each, batched together (for example
        noise-free measurements made once from a larger scene).
    measure : callable
        ``measure(x) -> y`` or ``-> (y, sigma)``: simulated measurements of a
        batch of images (given the tuple ``(x, extra, ...)`` when ``images``
        is one), with fresh noise on every call (it runs without gradients;
        seed its generator for a reproducible run).
    steps : int
        Optimizer steps (rounded up to a multiple of ``checks``).
    batch_size : int
        Images per step (at most ``N``).
    lr : float
        Learning rate of the default optimizer (Adam).
    val_data : Dataset, optional
        Fixed validation items ``(y, x)`` or ``(y, x, sigma)``; the model is
        scored on it before training and ``checks`` times during it (mean
        PSNR unless ``metrics`` say otherwise) and the best weights are kept:
        a run whose training diverges returns its starting weights, not a
        collapsed network.
    checks : int
        How many times the run is validated (the Trainer's epochs).
    forward : callable, optional
        ``forward(model, (y, x, sigma)) -> (prediction, target)``; default
        ``(model(y), x)``. Also used on ``val_data``.
    loss : callable, optional
        ``loss(prediction, target)``: a scalar or a dict of named terms (default MSE).
    optimizer, scheduler, metrics : optional
        As for :class:`~physinv.train.Trainer` (for example an optimizer with
        parameter groups, ``"cosine"`` stepped per step, or the validation
        metrics; the first metric picks the best weights).
    seed : int
        Seeds the order in which images are visited.
    device, precision : optional
        As for :class:`~physinv.train.Trainer` (default: this process's
        device, float32).
    progress : bool
        Progress bars.

    Returns
    -------
    list of dict
        The Trainer's history, one record per check.

    Notes
    -----
    Every process trains its own model (the Trainer's ``distributed=False``),
    so a study can give different models to different ``torchrun`` processes.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(8, 4, 4, generator=g)
    >>> model = torch.nn.Conv2d(1, 1, 3, padding=1)
    >>> measure = lambda xb: 0.5 * xb + 0.01 * torch.randn(xb.shape, generator=g)
    >>> fwd = lambda m, b: (m(b[0].unsqueeze(1)).squeeze(1), b[1])
    >>> val = TensorDataset(0.5 * x, x)
    >>> hist = fit_simulated(model, x, measure, steps=10, batch_size=4, lr=1e-2, val_data=val, forward=fwd)
    >>> len(hist), hist[-1]["step"]
    (5, 10)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    tensors = tuple(images) if isinstance(images, (tuple, list)) else (images,)
    if (not tensors or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors)
            or not len(tensors[0]) or any(len(t) != len(tensors[0]) for t in tensors)):
        raise ValueError("images must be a non-empty (N, ...) tensor or a tuple of tensors of N items each")
    n_images = len(tensors[0])
    if not callable(measure):
        raise TypeError(f"measure must be callable, got {type(measure).__name__}")
    steps, checks = _positive_int(steps, "steps"), _positive_int(checks, "checks")
    batch_size = _positive_int(batch_size, "batch_size")
    if batch_size > n_images:
        raise ValueError(f"batch_size ({batch_size}) must be at most the number of images ({n_images})")
    checks = min(checks, steps)
    per_check = math.ceil(steps / checks)
    fwd = forward or (lambda m, b: (m(b[0]), b[1]))
    mse = loss or nn.functional.mse_loss

    def step_fn(m: nn.Module, batch: Any) -> Any:
        x = batch if len(tensors) == 1 else batch[0]
        with torch.no_grad():
            meas = measure(batch)
        y, sigma = meas if isinstance(meas, tuple) else (meas, None)
        pred, target = fwd(m, (y, x, sigma))
        return mse(pred, target)

    validate = val_data is not None
    if validate:  # the score to beat: the untrained network's
        start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        start = evaluate(model, val_data, batch_size, fwd, metrics, None, device,
                         distributed=False)[next(iter(metrics)) if metrics else "psnr"]
    with tempfile.TemporaryDirectory(prefix="physinv-fit-") as out:
        data = _Cycle(tensors, per_check * batch_size)
        trainer = Trainer(model, loss=mse, optimizer=optimizer, train_data=data, val_data=val_data,
                          batch_size=batch_size, epochs=checks, seed=seed, lr=lr, scheduler=scheduler,
                          scheduler_interval="step", output_dir=out if validate else None,
                          progress=progress, device=device, forward=fwd if validate else None,
                          step_fn=step_fn, metrics=metrics, distributed=False, precision=precision,
                          monitor=f"val_{next(iter(metrics))}" if validate and metrics else None)
        history = trainer.fit()
        if validate:
            if trainer.best is not None and (math.isnan(start) or not trainer._improved(start)):
                load_weights(model, f"{out}/best.pt")
            else:  # no check beat the start (or every one was NaN): keep the untrained weights
                model.load_state_dict(start_state)
    return history
