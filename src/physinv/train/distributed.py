"""Process groups under ``torchrun``: setup, rank information, collectives that are no-ops alone.

With ``WORLD_SIZE > 1`` in the environment (``torchrun`` sets it),
:func:`init_distributed` creates the process group (NCCL on GPUs, gloo on
CPUs) unless the script already did.  The helpers below do nothing in a
single process, so the training code calls them unconditionally.
"""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["dist_info", "init_distributed", "destroy", "barrier", "all_reduce_mean", "all_gather_object"]


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process; ``(0, 1, 0)`` without a process group.

    Examples
    --------
    >>> dist_info()
    (0, 1, 0)
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def init_distributed() -> tuple[int, int, int, bool]:
    """Create the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``) and none exists.

    Returns
    -------
    rank, world, local_rank : int
        As :func:`dist_info` after the setup.
    created : bool
        Whether this call created the group (and :func:`destroy` should end it).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    created = False
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
        created = True
    return (*dist_info(), created)


def destroy() -> None:
    """Destroy the default process group if one is initialized."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: int) -> None:
    """``torch.distributed.barrier()`` when ``world > 1``."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_mean(vals: torch.Tensor, world: int) -> torch.Tensor:
    """The mean of ``vals`` over processes (``vals`` itself when ``world == 1``)."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(vals)
        vals = vals / world
    return vals


def all_gather_object(obj: Any, world: int) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when ``world == 1``)."""
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out
