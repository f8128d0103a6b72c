"""How a model meets a batch (the default forward) and how a loss's output becomes logged terms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["default_forward", "loss_terms", "describe_batch"]


def describe_batch(batch: Any) -> str:
    """A short description of a batch's structure, for error messages.

    Examples
    --------
    >>> import torch
    >>> describe_batch(torch.zeros(4, 8, 8))
    'a Tensor of shape (4, 8, 8)'
    >>> describe_batch([torch.zeros(4, 8, 8)])
    'a list of 1 item: [Tensor of shape (4, 8, 8)]'
    """
    def one(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            return f"Tensor of shape {tuple(v.shape)}"
        return type(v).__name__

    if isinstance(batch, torch.Tensor):
        return f"a {one(batch)}"
    if isinstance(batch, Mapping):
        return f"a {type(batch).__name__} with keys {list(batch)[:8]}"
    if isinstance(batch, (list, tuple)):
        n = len(batch)
        items = ", ".join(one(v) for v in batch[:4]) + (", ..." if n > 4 else "")
        return f"a {type(batch).__name__} of {n} item{'s' if n != 1 else ''}: [{items}]"
    return f"a {type(batch).__name__}"


def default_forward(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(y), x)`` for a batch ``(y, x, ...)``: the default way a model meets the data.

    Raises
    ------
    TypeError
        If the batch is not a tuple or list of at least two entries, for
        example a dataset of single images: a stacked ``(B, H, W)`` tensor
        would otherwise be read as ``y = image 0``, ``x = image 1``.

    Examples
    --------
    >>> import torch
    >>> pred, target = default_forward(torch.nn.Identity(), (torch.ones(2, 3), torch.zeros(2, 3)))
    >>> pred.shape, target.shape
    (torch.Size([2, 3]), torch.Size([2, 3]))
    """
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        single = isinstance(batch, torch.Tensor) or isinstance(batch, (list, tuple))
        raise TypeError(
            f"the default forward expects each batch to be a (y, x, ...) tuple or list (measurements, "
            f"targets, ...), got {describe_batch(batch)}: the dataset returns "
            f"{'single tensors' if single else 'items of another structure'}. Give it items (y, x), or "
            f"say how the model uses such a batch with forward=lambda model, batch: (prediction, target) "
            f"(plus loss=...) or step_fn=lambda model, batch: loss")
    return model(batch[0]), batch[1]


def loss_terms(out: Any) -> dict[str, torch.Tensor]:
    """``{"loss": total, **terms}`` from a loss's output (a scalar tensor or a dict of named scalar terms).

    Examples
    --------
    >>> import torch
    >>> t = loss_terms({"mse": torch.tensor(1.0), "tv": torch.tensor(0.5)})
    >>> {k: float(v) for k, v in t.items()}
    {'loss': 1.5, 'mse': 1.0, 'tv': 0.5}
    """
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise ValueError(f"the loss must be a scalar tensor, got shape {tuple(out.shape)}")
        return {"loss": out.reshape(())}
    if isinstance(out, Mapping):
        if not out:
            raise ValueError("the loss returned an empty dict")
        if "loss" in out:
            raise ValueError("a loss dict holds named terms whose sum is the loss; do not name a term 'loss'")
        terms = {}
        for k, v in out.items():
            if not isinstance(v, torch.Tensor) or v.numel() != 1:
                raise ValueError(f"loss term {k!r} must be a scalar tensor, got {v!r:.80}")
            terms[str(k)] = v.reshape(())
        total = sum(terms.values())
        return {"loss": total, **terms}
    raise TypeError(f"the loss must return a scalar tensor or a dict of them, got {type(out).__name__}")
