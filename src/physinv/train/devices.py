"""Where training runs: resolving the ``device`` argument, moving batches.

The device rule: ``device=None`` picks ``cuda:LOCAL_RANK`` when CUDA is
available (``cuda:0`` without ``torchrun``), else the CPU.  An explicit
device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device``
or a CUDA index) is used as given once it is checked to exist; an index-less
``"cuda"`` means the process's own GPU (``cuda:LOCAL_RANK`` under
``torchrun``, else the current CUDA device).  Anything else is a
``ValueError`` that names ``device``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["resolve_device", "to_device"]


def _cuda_missing() -> str:
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)"


def resolve_device(device: Any = None, local_rank: int | None = None) -> torch.device:
    """Check a user's ``device`` argument and return the ``torch.device`` to run on (with its index).

    Parameters
    ----------
    device : str, torch.device, int or None
        ``None`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, another accelerator type torch knows, or a
        CUDA index.
    local_rank : int, optional
        The GPU of this process under ``torchrun``: ``None`` and index-less
        ``"cuda"`` resolve to ``cuda:local_rank``.  Without it they resolve
        to ``cuda:0`` and the current CUDA device respectively.

    Returns
    -------
    torch.device
        CUDA devices always carry an index.

    Raises
    ------
    ValueError
        If the string is not a device, or the device is not available on
        this machine (no CUDA, index out of range, no MPS).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a device torch knows (expected 'cpu', 'cuda', 'cuda:N', 'mps', ...)
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", 0 if local_rank is None else local_rank)
        return torch.device("cpu")
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda:0', a torch.device or a CUDA "
                         f"index, got {type(device).__name__} {device!r}")
    if isinstance(device, int):
        if device < 0:
            raise ValueError(f"device={device!r}: a CUDA index must be >= 0")
        dev = torch.device("cuda", device)
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError, TypeError):
            raise ValueError(f"device={device!r} is not a device torch knows (expected 'cpu', 'cuda', "
                             f"'cuda:N', 'mps', ...)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available: {_cuda_missing()}; use "
                             f"device='cpu' or leave device=None (CUDA when available, else the CPU)")
        n = torch.cuda.device_count()
        if dev.index is None:
            index = local_rank if local_rank is not None else torch.cuda.current_device()
        else:
            index = dev.index
        if index >= n:
            raise ValueError(f"device={device!r}: there is no CUDA device {index}; this process sees {n} "
                             f"(cuda:0 to cuda:{n - 1})")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device={device!r}: MPS (Apple GPU) is not available on this machine or in "
                             f"this torch build; use device='cpu' or leave device=None")
        return dev
    backend = getattr(torch, dev.type, None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise ValueError(f"device={device!r}: device type {dev.type!r} is not available here (the "
                         f"Trainer runs on 'cpu', 'cuda', 'mps' or an available accelerator)")
    return dev


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (tensor, mapping, list or tuple, nested) to ``device``.

    Examples
    --------
    >>> import torch
    >>> b = to_device((torch.ones(1), {"s": torch.zeros(1)}, "id"), torch.device("cpu"))
    >>> type(b).__name__, b[2]
    ('tuple', 'id')
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
