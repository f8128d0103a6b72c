"""Validation metrics of a model over a dataset, per image, sharded over processes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .devices import resolve_device, to_device
from .distributed import dist_info
from .objective import default_forward, loss_terms
from .rng import worker_init
from .sampling import Shard

__all__ = ["evaluate"]


def evaluate(model: nn.Module, data: Any, batch_size: int = 16,
             forward: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]] | None = None,
             metrics: Mapping[str, Callable] | None = None, loss: Callable | None = None,
             device: Any = None, num_workers: int = 0, distributed: bool = True) -> dict[str, float]:
    """Mean metrics of ``model`` over a dataset (per image), distributed-aware.

    Parameters
    ----------
    model : nn.Module
        Called as ``forward(model, batch) -> (prediction, target)`` (default
        ``(model(y), x)``) in eval mode without gradients.
    data : Dataset
        Items ``(y, x, ...)``.
    batch_size : int
        Batch size per process.
    forward : callable, optional
        ``forward(model, batch) -> (prediction, target)``.
    metrics : dict of name to callable, optional
        ``fn(pred, target)`` returning one value per image (e.g.
        :func:`physinv.metrics.psnr`); default ``{"psnr": psnr}``.
    loss : callable, optional
        Also report the mean of ``loss(pred, target)`` (per batch, weighted by
        batch size) as ``"loss"`` (plus its named terms).
    device : str or torch.device, optional
        Where batches go (checked as the Trainer's ``device``); default: the
        device of the model's first parameter or buffer, else the CPU.
    num_workers : int
        DataLoader worker processes.
    distributed : bool
        Split the samples over the process group when there is one (the
        default); ``False`` evaluates every sample in this process alone.

    Returns
    -------
    dict of str to float

    Notes
    -----
    Under ``torchrun`` rank ``r`` of ``W`` takes samples ``r, r + W, ...`` and
    the sums and counts are all-reduced, so every rank returns the means over
    the whole dataset.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x = torch.rand(6, 8, 8)
    >>> r = evaluate(torch.nn.Identity(), TensorDataset(x + 0.1, x), batch_size=4)
    >>> round(r["psnr"], 3)
    20.0
    """
    from ..metrics import psnr

    forward = forward or default_forward
    metrics = {"psnr": psnr} if metrics is None else dict(metrics)
    rank, world, local = dist_info() if distributed else (0, 1, 0)
    if device is None:
        device = next((p.device for p in model.parameters()), None) or next(
            (b.device for b in model.buffers()), torch.device("cpu"))
    else:
        device = resolve_device(device, local if world > 1 else None)
    loader = torch.utils.data.DataLoader(data, batch_sampler=Shard(len(data), batch_size, rank, world),
                                         num_workers=num_workers, worker_init_fn=worker_init)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                batch = to_device(batch, device)
                pred, target = forward(model, batch)
                for name, fn in metrics.items():
                    v = torch.as_tensor(fn(pred, target)).detach().to(torch.float64)
                    sums[name] = sums.get(name, 0.0) + float(v.sum())
                    counts[name] = counts.get(name, 0.0) + v.numel()
                if loss is not None:
                    nb = len(batch[0]) if isinstance(batch, (list, tuple)) else 1
                    for k, t in loss_terms(loss(pred, target)).items():
                        sums[k] = sums.get(k, 0.0) + float(t) * nb
                        counts[k] = counts.get(k, 0.0) + nb
    finally:
        model.train(was_training)
    names = sorted(sums)
    if world > 1:
        import torch.distributed as dist

        # every rank must know every name: gather name lists first
        all_names: list[list[str]] = [[] for _ in range(world)]
        dist.all_gather_object(all_names, names)
        names = sorted(set().union(*all_names))
        dev = device if torch.device(device).type == "cuda" else torch.device("cpu")
        t = torch.tensor([[sums.get(k, 0.0), counts.get(k, 0.0)] for k in names], dtype=torch.float64,
                         device=dev)
        dist.all_reduce(t)
        sums = {k: float(t[i, 0]) for i, k in enumerate(names)}
        counts = {k: float(t[i, 1]) for i, k in enumerate(names)}
    return {k: sums[k] / counts[k] for k in names if counts.get(k, 0) > 0}
