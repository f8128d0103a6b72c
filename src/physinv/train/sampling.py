"""Batch samplers: the seeded sample order of each epoch, split over processes; evaluation shards.

Epoch ``e`` visits the training set in the order of
``torch.randperm(n, generator=seeded(mix_seed(seed, e, 0)))``, cut into global
batches of ``batch_size`` samples (the last partial batch is dropped).  Rank
``r`` of ``W`` processes takes the ``r``-th contiguous slice of
``batch_size / W`` samples of every global batch.  The order depends on
nothing else, so a run can resume in the middle of an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .._random import mix_seed

__all__ = ["EpochBatches", "Shard"]


class EpochBatches:
    """Batch sampler: this rank's share of each global batch of one epoch, from batch ``start`` on.

    Parameters
    ----------
    n : int
        Number of samples.
    batch_size : int
        Global batch size (divisible by ``world``).
    seed, epoch : int
        Define the order.
    start : int
        First global batch to yield (batches already done in this epoch).
    rank, world : int
        This process and the number of processes.
    shuffle : bool
        ``False``: the order ``0, 1, ..., n - 1``.

    Examples
    --------
    >>> s = EpochBatches(10, 4, seed=0, epoch=0, start=0, rank=0, world=1, shuffle=False)
    >>> list(s), len(s)
    ([[0, 1, 2, 3], [4, 5, 6, 7]], 2)
    >>> list(EpochBatches(10, 4, 0, 0, start=1, rank=1, world=2, shuffle=False))
    [[6, 7]]
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int, rank: int, world: int,
                 shuffle: bool = True) -> None:
        self.n, self.b, self.seed, self.epoch = n, batch_size, seed, epoch
        self.start, self.rank, self.world, self.shuffle = start, rank, world, shuffle

    def batches_per_epoch(self) -> int:
        """Global batches in one epoch (``n // batch_size``)."""
        return self.n // self.b

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        local = self.b // self.world
        for k in range(self.start, self.batches_per_epoch()):
            glob = order[k * self.b:(k + 1) * self.b]
            yield glob[self.rank * local:(self.rank + 1) * local]


class Shard:
    """Batch sampler over indices ``rank, rank + world, ...`` (evaluation: every sample once, no padding).

    Examples
    --------
    >>> list(Shard(7, 2, rank=1, world=2))
    [[1, 3], [5]]
    """

    def __init__(self, n: int, batch_size: int, rank: int, world: int) -> None:
        self.idx = list(range(rank, n, world))
        self.b = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.idx) / self.b)

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(0, len(self.idx), self.b):
            yield self.idx[k:k + self.b]
