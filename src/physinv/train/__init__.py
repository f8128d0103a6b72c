"""One training loop for learned reconstruction: reproducible, resumable, distributed.

:class:`Trainer` runs the same code single-process on CPU or GPU and under
``torchrun`` with ``DistributedDataParallel``.  Everything that decides the
trajectory of a run (weights, optimizer and scheduler state, the position in
the shuffled sample order, every random-number generator) is saved in an
atomic checkpoint with a SHA-256 digest, so a killed or interrupted run
resumed with ``resume=True`` ends with exactly the weights of an
uninterrupted one, and a damaged checkpoint is refused instead of resumed.

Sample order: epoch ``e`` visits the training set in the order of
``torch.randperm(n, generator=seeded(seed, e))``, cut into global batches of
``batch_size`` samples (the last partial batch is dropped).  Under
``torchrun`` with ``W`` processes each rank takes a contiguous slice of
``batch_size / W`` samples of every global batch and DDP averages the
gradients, so for losses that are means over samples the update equals the
single-process update up to floating-point rounding.

Modules: :mod:`~physinv.train.trainer` (the loop),
:mod:`~physinv.train.checkpoint` (file format, atomic save, verified load),
:mod:`~physinv.train.rng` (seeding and generator states),
:mod:`~physinv.train.sampling` (epoch orders and shards),
:mod:`~physinv.train.distributed` (process groups),
:mod:`~physinv.train.devices` (the ``device`` rule),
:mod:`~physinv.train.evaluation`, :mod:`~physinv.train.schedules`,
:mod:`~physinv.train.objective` (default forward, loss terms),
:mod:`~physinv.train.plotting` and :mod:`~physinv.train.simulated`
(:func:`fit_simulated`: a fixed budget of steps on measurements simulated
afresh for every batch, the loop of physinv's studies).
"""

from .checkpoint import CHECKPOINT_VERSION as CHECKPOINT_VERSION
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, load_weights
from .evaluation import evaluate
from .objective import default_forward as default_forward
from .rng import seed_everything
from .simulated import fit_simulated
from .trainer import Trainer, TrainingInterrupted

__all__ = ["Trainer", "seed_everything", "load_weights", "evaluate", "atomic_save", "load_checkpoint",
           "CheckpointError", "TrainingInterrupted", "fit_simulated"]
