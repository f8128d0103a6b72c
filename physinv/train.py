"""One training loop for learned reconstruction: reproducible, resumable, distributed.

:class:`Trainer` runs the same code single-process on CPU or GPU and under
``torchrun`` with ``DistributedDataParallel``.  Everything that decides the
trajectory of a run (weights, optimizer and scheduler state, the position in
the shuffled sample order, every random-number generator) is saved in an
atomic checkpoint, so a killed run resumed with ``resume=True`` ends with
exactly the weights of an uninterrupted one.

Sample order: epoch ``e`` visits the training set in the order of
``torch.randperm(n, generator=seeded(seed, e))``, cut into global batches of
``batch_size`` samples (the last partial batch is dropped).  Under
``torchrun`` with ``W`` processes each rank takes a contiguous slice of
``batch_size / W`` samples of every global batch and DDP averages the
gradients, so for losses that are means over samples the update equals the
single-process update up to floating-point rounding.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._io import atomic_write

__all__ = ["Trainer", "seed_everything", "load_weights", "evaluate", "atomic_save"]

CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------- helpers
def _mix(*ints: int) -> int:
    """A 63-bit seed derived from several integers (SeedSequence mixing)."""
    s = np.random.SeedSequence([int(i) for i in ints]).generate_state(2, np.uint32)
    return (int(s[0]) << 31) ^ int(s[1])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA).

    Examples
    --------
    >>> import torch
    >>> seed_everything(3); a = torch.rand(1)
    >>> seed_everything(3); bool(a == torch.rand(1))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator user code draws from
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    # DataLoader sets torch's seed per worker from its (seeded) generator; derive the others from it
    s = torch.initial_seed()
    random.seed(s)
    np.random.seed(s % 2**32)  # noqa: NPY002


def _rng_state() -> dict[str, Any]:
    npst = np.random.get_state(legacy=False)  # noqa: NPY002
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"bit_generator": npst["bit_generator"],
                  "key": torch.from_numpy(npst["state"]["key"].astype(np.int64)),
                  "pos": int(npst["state"]["pos"]), "has_gauss": int(npst["has_gauss"]),
                  "gauss": float(npst["gauss"])},
        "python": [py[0], list(py[1]), py[2]],
    }


def _set_rng_state(st: Mapping[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    if torch.cuda.is_available() and st["cuda"]:
        torch.cuda.set_rng_state_all(st["cuda"][: torch.cuda.device_count()])
    n = st["numpy"]
    state = {"bit_generator": n["bit_generator"],
             "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
             "has_gauss": n["has_gauss"], "gauss": n["gauss"]}
    np.random.set_state(state)  # noqa: NPY002
    p = st["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same directory, fsync, then rename onto ``path``.

    A reader (or a resumed run) sees either the previous file or the new one,
    never a half-written one.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> p = os.path.join(tempfile.mkdtemp(), "c.pt")
    >>> atomic_save({"w": torch.ones(2)}, p)
    >>> torch.load(p, weights_only=True)["w"]
    tensor([1., 1.])
    """
    atomic_write(path, lambda fh: torch.save(obj, fh))


def _atomic_text(text: str, path: str) -> None:
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def load_weights(model: nn.Module, path: str | os.PathLike, map_location: Any = "cpu") -> nn.Module:
    """Load the model weights of a :class:`Trainer` checkpoint (``last.pt`` or ``best.pt``) into ``model``.

    Uses ``torch.load(weights_only=True)``: no pickled code is executed.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> m = torch.nn.Linear(2, 1)
    >>> p = os.path.join(tempfile.mkdtemp(), "best.pt")
    >>> atomic_save({"model": m.state_dict()}, p)
    >>> m2 = load_weights(torch.nn.Linear(2, 1), p)
    >>> bool(torch.equal(m.weight, m2.weight))
    True
    """
    ck = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if not isinstance(ck, dict) or "model" not in ck:
        raise ValueError(f"{os.fspath(path)}: not a physinv checkpoint (no 'model' entry)")
    model.load_state_dict(ck["model"])
    return model


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def default_forward(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(y), x)`` for a batch ``(y, x, ...)``: the default way a model meets the data."""
    return model(batch[0]), batch[1]


def _loss_terms(out: Any) -> dict[str, torch.Tensor]:
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


class _EpochBatches:
    """Batch sampler: this rank's share of each global batch of one epoch, from batch ``start`` on."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int, rank: int, world: int,
                 shuffle: bool = True) -> None:
        self.n, self.b, self.seed, self.epoch = n, batch_size, seed, epoch
        self.start, self.rank, self.world, self.shuffle = start, rank, world, shuffle

    def batches_per_epoch(self) -> int:
        return self.n // self.b

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(_mix(self.seed, self.epoch, 0))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        local = self.b // self.world
        for k in range(self.start, self.batches_per_epoch()):
            glob = order[k * self.b:(k + 1) * self.b]
            yield glob[self.rank * local:(self.rank + 1) * local]


class _Shard:
    """Batch sampler over indices ``rank, rank + world, ...`` (evaluation, no padding)."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int) -> None:
        self.idx = list(range(rank, n, world))
        self.b = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.idx) / self.b)

    def __iter__(self):
        for k in range(0, len(self.idx), self.b):
            yield self.idx[k:k + self.b]


def _dist_info() -> tuple[int, int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def evaluate(model: nn.Module, data: Any, batch_size: int = 16,
             forward: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]] | None = None,
             metrics: Mapping[str, Callable] | None = None, loss: Callable | None = None,
             device: Any = None, num_workers: int = 0) -> dict[str, float]:
    """Mean metrics of ``model`` over a dataset (per image), distributed-aware.

    Parameters
    ----------
    model : nn.Module
        Called as ``forward(model, batch) -> (prediction, target)`` (default
        ``(model(y), x)``) in eval mode without gradients.
    data : Dataset
        Items ``(y, x, ...)``.
    metrics : dict of name to callable, optional
        ``fn(pred, target)`` returning one value per image (e.g.
        :func:`physinv.metrics.psnr`); default ``{"psnr": psnr}``.
    loss : callable, optional
        Also report the mean of ``loss(pred, target)`` (per batch, weighted by
        batch size) as ``"loss"`` (plus its named terms).

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x = torch.rand(6, 8, 8)
    >>> r = evaluate(torch.nn.Identity(), TensorDataset(x + 0.1, x), batch_size=4)
    >>> round(r["psnr"], 3)
    20.0
    """
    from .metrics import psnr

    forward = forward or default_forward
    metrics = {"psnr": psnr} if metrics is None else dict(metrics)
    rank, world, local = _dist_info()
    if device is None:
        device = next((p.device for p in model.parameters()), None) or next(
            (b.device for b in model.buffers()), torch.device("cpu"))
    loader = torch.utils.data.DataLoader(data, batch_sampler=_Shard(len(data), batch_size, rank, world),
                                         num_workers=num_workers, worker_init_fn=_worker_init)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                batch = _to_device(batch, device)
                pred, target = forward(model, batch)
                for name, fn in metrics.items():
                    v = torch.as_tensor(fn(pred, target)).detach().to(torch.float64)
                    sums[name] = sums.get(name, 0.0) + float(v.sum())
                    counts[name] = counts.get(name, 0.0) + v.numel()
                if loss is not None:
                    nb = len(batch[0]) if isinstance(batch, (list, tuple)) else 1
                    for k, t in _loss_terms(loss(pred, target)).items():
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


_SCHEDULERS = ("cosine", "step", "exponential", "plateau", "onecycle")


class Trainer:
    """Train a reconstruction model on ``(y, x)`` data; checkpoint, resume, early-stop, scale out.

    Parameters
    ----------
    model : nn.Module
        The network (physinv operators and nets are modules).  Moved to
        ``device``; wrapped in ``DistributedDataParallel`` under ``torchrun``.
    loss : callable, optional
        ``loss(pred, target)`` returning a scalar tensor or a dict of named
        scalar terms whose sum is the loss (each term is logged).  Default:
        mean squared error.  For exact single/multi-process equivalence the
        loss should be a mean over the samples of the batch.
    optimizer : torch.optim.Optimizer or callable, optional
        An optimizer over ``model.parameters()``, or ``params -> optimizer``.
        Default: Adam with learning rate ``lr``.
    train_data, val_data : Dataset
        Items ``(y, x)`` or ``(y, x, sigma, ...)``; must be deterministic per
        index for exact resumption (physinv datasets are).
    batch_size : int
        Global batch size (all processes together); must be divisible by the
        number of processes.
    epochs : int
        Number of passes over ``train_data``.
    seed : int
        Seeds the sample order, the DataLoader workers and all global RNGs.  The
        model is built before the Trainer: seed its initialization yourself
        (:func:`seed_everything`) for runs that are reproducible across processes.
    lr : float
        Learning rate of the default optimizer.
    scheduler : LR scheduler, str or callable, optional
        A torch scheduler over ``optimizer``, a callable ``optimizer ->
        scheduler``, or a name: ``"cosine"`` (to zero over the run),
        ``"step"`` (x0.1 every third of the run), ``"exponential"`` (x0.9 per
        epoch), ``"plateau"`` (x0.1 after 5 epochs without improvement of
        ``monitor``), ``"onecycle"`` (stepped per batch).
    scheduler_interval : {"epoch", "step"}
        When a scheduler is stepped ("onecycle" is always per step).
    clip_grad_norm : float, optional
        Clip the global gradient norm to this value.
    early_stopping : int, optional
        Stop after this many epochs without improvement of ``monitor`` by more
        than ``min_delta``.
    monitor : str, optional
        Logged quantity that defines "best" (default ``"val_psnr"`` with
        validation data, else ``"train_loss"``); ``mode`` ``"max"`` or
        ``"min"`` (default: max for psnr/ssim, min otherwise).
    output_dir : str, optional
        Where ``last.pt``, ``best.pt``, ``log.jsonl`` and ``curves.png`` go.
        Without it nothing is written (and nothing can be resumed).
    checkpoint_every : int, optional
        Also checkpoint every this many optimizer steps (besides each epoch).
    resume : bool or str
        ``True``: continue from ``output_dir/last.pt`` if it exists; a path:
        continue from that checkpoint.
    plot : bool
        Save a matplotlib figure of the curves after each epoch.
    progress : bool
        tqdm progress bars (rank 0 only).
    num_workers : int
        DataLoader worker processes.
    device : str or torch.device, optional
        Default: the local CUDA device when available, else the CPU.
    forward : callable, optional
        ``forward(model, batch) -> (prediction, target)``; default
        ``(model(y), x)``.  Use it for models that need more than ``y`` (for
        example ``lambda m, b: (m(b[0], b[2]), b[1])`` with the noise level).
    step_fn : callable, optional
        ``step_fn(model, batch) -> loss or dict of terms``: replaces
        ``forward`` + ``loss`` for the training objective (for losses that need
        the measurements or the operator); validation still uses ``forward``.
    metrics : dict of name to callable, optional
        Validation metrics ``fn(pred, target)`` per image; default PSNR.
    val_batch_size : int, optional
        Validation batch size per process (default ``batch_size``).
    deterministic : bool
        Call ``torch.use_deterministic_algorithms(True)`` (needed for bitwise
        reproducibility of some CUDA kernels).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x = torch.rand(32, 8, 8)
    >>> data = TensorDataset(0.5 * x, x)
    >>> model = torch.nn.Sequential(torch.nn.Flatten(-2), torch.nn.Linear(64, 64),
    ...                             torch.nn.Unflatten(-1, (8, 8)))
    >>> t = Trainer(model, train_data=data, val_data=data, batch_size=8, epochs=2, lr=1e-2, progress=False)
    >>> hist = t.fit()
    >>> len(hist), sorted(hist[-1])[:4]
    (2, ['epoch', 'lr', 'step', 'time'])
    """

    def __init__(self, model: nn.Module, loss: Callable | None = None, optimizer: Any = None,
                 train_data: Any = None, val_data: Any = None, *, batch_size: int = 16, epochs: int = 10,
                 seed: int = 0, lr: float = 1e-3, scheduler: Any = None, scheduler_interval: str = "epoch",
                 clip_grad_norm: float | None = None, early_stopping: int | None = None,
                 min_delta: float = 0.0, monitor: str | None = None, mode: str | None = None,
                 output_dir: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 resume: bool | str = False, plot: bool = False, progress: bool = True,
                 num_workers: int = 0, device: Any = None, forward: Callable | None = None,
                 step_fn: Callable | None = None, metrics: Mapping[str, Callable] | None = None,
                 val_batch_size: int | None = None, deterministic: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if train_data is None or not (hasattr(train_data, "__len__") and hasattr(train_data, "__getitem__")):
            raise TypeError(f"train_data must be a map-style Dataset, got {type(train_data).__name__}")
        for name, v in (("batch_size", batch_size), ("epochs", epochs)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm!r}")
        if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
            raise ValueError(f"early_stopping must be a positive int (patience in epochs), "
                             f"got {early_stopping!r}")
        if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
            raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every!r}")
        if resume and output_dir is None and not isinstance(resume, (str, os.PathLike)):
            raise ValueError("resume=True needs output_dir (where last.pt is looked for)")
        if deterministic:
            torch.use_deterministic_algorithms(True)

        self.train_data, self.val_data = train_data, val_data
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.loss = loss if loss is not None else nn.functional.mse_loss
        self.forward = forward or default_forward
        self.step_fn = step_fn
        self.clip_grad_norm, self.early_stopping, self.min_delta = clip_grad_norm, early_stopping, min_delta
        self.monitor = monitor or ("val_psnr" if val_data is not None else "train_loss")
        if mode is None:
            mode = "max" if any(k in self.monitor for k in ("psnr", "ssim", "dice", "iou")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.output_dir = None if output_dir is None else os.path.abspath(os.fspath(output_dir))
        self.checkpoint_every, self.plot, self.num_workers = checkpoint_every, plot, num_workers
        self.metrics = metrics
        self.val_batch_size = val_batch_size or batch_size

        # -- distributed setup
        self._owns_group = False
        self.rank, self.world, self.local_rank = self._init_distributed()
        if batch_size % self.world:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes "
                             f"({self.world}) so that every rank gets an equal share of each global batch")
        if len(train_data) < batch_size:
            raise ValueError(f"train_data has {len(train_data)} samples, fewer than batch_size={batch_size}")
        self.progress = progress and self.rank == 0
        if device is None:
            device = f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(seed + self.rank)

        self.module = model.to(self.device)
        self.model: nn.Module = self.module
        if self.world > 1 and any(p.requires_grad for p in self.module.parameters()):
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DDP(self.module, device_ids=ids)

        if optimizer is None:
            optimizer = torch.optim.Adam(self.module.parameters(), lr=lr)
        elif not isinstance(optimizer, torch.optim.Optimizer):
            if not callable(optimizer):
                raise TypeError(f"optimizer must be a torch Optimizer or a callable, "
                                f"got {type(optimizer).__name__}")
            optimizer = optimizer(self.module.parameters())
        self.optimizer = optimizer
        self.scheduler, self.scheduler_interval = self._make_scheduler(scheduler, scheduler_interval)

        # -- state
        self.epoch = 0  # completed epochs
        self.batch_in_epoch = 0  # completed batches of the current epoch
        self.global_step = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stopped_early = False
        self.history: list[dict[str, Any]] = []
        self._acc: dict[str, float] = {}
        self._acc_n = 0
        self._last_lr: float | None = None  # learning rate of the latest optimizer step (logged)
        self.resumed_from: str | None = None
        if resume:
            path = (os.path.join(self.output_dir, "last.pt") if resume is True
                    else os.path.abspath(os.fspath(resume)))
            if os.path.exists(path):
                self._load(path)
            elif resume is not True:
                raise FileNotFoundError(f"resume: no checkpoint at {path!r}")

    # ---------------------------------------------------------------- setup
    def _init_distributed(self) -> tuple[int, int, int]:
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and dist.is_available() and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group(backend=backend)
            self._owns_group = True
        return _dist_info()

    def close(self) -> None:
        """Destroy the process group if this trainer created it (call at the end of a torchrun script)."""
        import torch.distributed as dist

        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    def _make_scheduler(self, sch: Any, interval: str):
        opt = self.optimizer
        if sch is None:
            return None, interval
        if isinstance(sch, str):
            steps = self.epochs * (len(self.train_data) // self.batch_size)
            if sch not in _SCHEDULERS:
                raise ValueError(f"scheduler must be one of {_SCHEDULERS} or a torch scheduler, got {sch!r}")
            if sch == "cosine":
                total = steps if interval == "step" else self.epochs
                return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), interval
            if sch == "step":
                total = steps if interval == "step" else self.epochs
                return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1), interval
            if sch == "exponential":
                return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9), interval
            if sch == "plateau":
                return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=self.mode, patience=5), "epoch"
            lrs = [g["lr"] for g in opt.param_groups]
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lrs, total_steps=steps), "step"
        if callable(sch) and not hasattr(sch, "state_dict"):
            sch = sch(opt)
        if not hasattr(sch, "step") or not hasattr(sch, "state_dict"):
            raise TypeError(f"scheduler must be a torch LR scheduler, a name or a callable, "
                            f"got {type(sch).__name__}")
        return sch, interval

    # ----------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        rng = _rng_state()
        if self.world > 1:
            import torch.distributed as dist

            all_rng: list[Any] = [None] * self.world
            dist.all_gather_object(all_rng, rng)
        else:
            all_rng = [rng]
        return {
            "physinv_checkpoint": CHECKPOINT_VERSION,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step,
            "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early, "acc": dict(self._acc), "acc_n": self._acc_n,
            "last_lr": self._last_lr, "history": self.history, "rng": all_rng,
            "config": {"seed": self.seed, "batch_size": self.batch_size, "n_train": len(self.train_data),
                       "epochs": self.epochs, "world_size": self.world},
        }

    def save_checkpoint(self, name: str = "last.pt") -> str | None:
        """Write the full training state atomically to ``output_dir/name`` (rank 0; collective call)."""
        state = self._state()  # collective under DDP: every rank must call
        path = None
        if self.rank == 0 and self.output_dir is not None:
            path = os.path.join(self.output_dir, name)
            atomic_save(state, path)
        self._barrier()
        return path

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _load(self, path: str) -> None:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"resume: cannot read checkpoint {path!r}: {e}") from e
        if not isinstance(ck, dict) or ck.get("physinv_checkpoint") != CHECKPOINT_VERSION:
            raise ValueError(f"resume: {path!r} is not a physinv training checkpoint (version "
                             f"{CHECKPOINT_VERSION})")
        cfg = ck["config"]
        mine = {"seed": self.seed, "batch_size": self.batch_size, "n_train": len(self.train_data)}
        bad = {k: (cfg[k], v) for k, v in mine.items() if cfg[k] != v}
        if bad:
            raise ValueError(f"resume: {path!r} was written by a run with different settings "
                             f"(checkpoint, now): {bad}; exact continuation is impossible")
        self.module.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None and ck["scheduler"] is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        for k in ("epoch", "batch_in_epoch", "global_step", "best", "best_epoch", "bad_epochs",
                  "stopped_early", "history"):
            setattr(self, k, ck[k])
        self._acc, self._acc_n, self._last_lr = dict(ck["acc"]), ck["acc_n"], ck["last_lr"]
        rngs = ck["rng"]
        if len(rngs) == self.world:
            _set_rng_state(rngs[self.rank])
        else:
            warnings.warn(f"resume: the checkpoint holds RNG states of {len(rngs)} processes but this run "
                          f"has {self.world}; random layers (dropout) will draw different numbers",
                          stacklevel=3)
            _set_rng_state(rngs[0])
            torch.manual_seed(_mix(self.seed, self.rank, self.global_step))
        self.resumed_from = path

    # --------------------------------------------------------------- training
    def _train_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        if self.step_fn is not None:
            return _loss_terms(self.step_fn(self.model, batch))
        pred, target = self.forward(self.model, batch)
        return _loss_terms(self.loss(pred, target))

    def _reduce(self, vals: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(vals)
            vals = vals / self.world
        return vals

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def fit(self) -> list[dict[str, Any]]:
        """Run (or continue) training; returns the per-epoch history (also in ``log.jsonl``)."""
        from tqdm.auto import tqdm

        if self.rank == 0 and self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
        n = len(self.train_data)
        while self.epoch < self.epochs and not self.stopped_early:
            epoch = self.epoch
            sampler = _EpochBatches(n, self.batch_size, self.seed, epoch, self.batch_in_epoch,
                                    self.rank, self.world)
            gen = torch.Generator().manual_seed(_mix(self.seed, epoch, self.batch_in_epoch, 1))
            loader = torch.utils.data.DataLoader(
                self.train_data, batch_sampler=sampler, num_workers=self.num_workers,
                worker_init_fn=_worker_init, generator=gen, pin_memory=self.device.type == "cuda")
            t0 = time.time()
            self.model.train()
            bar = tqdm(total=sampler.batches_per_epoch(), initial=self.batch_in_epoch,
                       desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.progress, leave=False)
            for batch in loader:
                self._step(_to_device(batch, self.device), epoch)
                bar.update(1)
                bar.set_postfix(loss=f"{self._acc['loss'] / self._acc_n:.4g}")
                if self.checkpoint_every and self.global_step % self.checkpoint_every == 0:
                    self.save_checkpoint()
            bar.close()
            self._end_epoch(epoch, time.time() - t0)
        return self.history

    def _step(self, batch: Any, epoch: int) -> None:
        terms = self._train_terms(batch)
        names = list(terms)
        vals = self._reduce(torch.stack([t.detach().to(torch.float64) for t in terms.values()]))
        if not bool(torch.isfinite(vals).all()):
            bad = {k: float(v) for k, v in zip(names, vals)}
            raise FloatingPointError(
                f"Trainer: non-finite loss at step {self.global_step + 1} (epoch {epoch + 1}, batch "
                f"{self.batch_in_epoch + 1}): {bad}; the last checkpoint is from step "
                f"{self._last_ckpt_step()}")
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip_grad_norm)
        self._last_lr = self._lr()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        self.global_step += 1
        self.batch_in_epoch += 1
        for k, v in zip(names, vals.tolist()):
            self._acc[k] = self._acc.get(k, 0.0) + v
        self._acc_n += 1

    def _last_ckpt_step(self) -> str:
        if self.output_dir is None:
            return "none (no output_dir)"
        if self.checkpoint_every:
            return str(self.global_step - self.global_step % self.checkpoint_every)
        return "the end of the previous epoch"

    def _end_epoch(self, epoch: int, seconds: float) -> None:
        rec: dict[str, Any] = {"epoch": epoch + 1, "step": self.global_step,
                               "lr": self._last_lr if self._last_lr is not None else self._lr()}
        for k, v in self._acc.items():
            rec["train_loss" if k == "loss" else f"train_{k}"] = v / max(self._acc_n, 1)
        if self.val_data is not None:
            loss = None if self.step_fn is not None else self.loss
            val = evaluate(self.module, self.val_data, self.val_batch_size, self.forward, self.metrics,
                           loss, self.device, self.num_workers)
            rec.update({f"val_{k}": v for k, v in val.items()})
        rec["time"] = seconds
        if self.monitor not in rec:
            raise KeyError(f"monitor={self.monitor!r} is not among the logged quantities {sorted(rec)}")
        value = float(rec[self.monitor])
        self.history.append(rec)
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(value)
            else:
                self.scheduler.step()
        if math.isfinite(value) and self._improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch + 1, 0
            if self.rank == 0 and self.output_dir is not None:
                atomic_save({"model": self.module.state_dict(), "epoch": epoch + 1,
                             "monitor": self.monitor, "value": value},
                            os.path.join(self.output_dir, "best.pt"))
        else:
            self.bad_epochs += 1
        if self.early_stopping is not None and self.bad_epochs >= self.early_stopping:
            self.stopped_early = True
        self.epoch, self.batch_in_epoch = epoch + 1, 0
        self._acc, self._acc_n = {}, 0
        if self.progress:
            from tqdm.auto import tqdm

            shown = {k: f"{v:.4g}" for k, v in rec.items() if k not in ("epoch", "step", "time")}
            tqdm.write(f"epoch {epoch + 1}/{self.epochs} "
                       + " ".join(f"{k}={v}" for k, v in shown.items()))
        if self.rank == 0 and self.output_dir is not None:
            _atomic_text("".join(json.dumps(r) + "\n" for r in self.history),
                         os.path.join(self.output_dir, "log.jsonl"))
            if self.plot:
                self.plot_curves(os.path.join(self.output_dir, "curves.png"))
        self.save_checkpoint()

    # ------------------------------------------------------------- reporting
    def plot_curves(self, path: str | os.PathLike) -> None:
        """Save the logged curves (losses, validation metrics, learning rate) as a PNG."""
        from matplotlib.figure import Figure

        hist = self.history
        if not hist:
            return
        ep = [r["epoch"] for r in hist]
        keys = sorted({k for r in hist for k in r} - {"epoch", "step", "time", "lr"})
        losses = [k for k in keys if k.startswith("train_") or k.startswith("val_loss")
                  or (k.startswith("val_") and k[4:] in {t[6:] for t in keys if t.startswith("train_")})]
        others = [k for k in keys if k not in losses]
        fig = Figure(figsize=(11, 3.4))
        axes = fig.subplots(1, 3)
        for k in losses:
            axes[0].plot(ep, [r.get(k, float("nan")) for r in hist], marker=".", label=k)
        axes[0].set_yscale("log")
        axes[0].set_title("losses")
        for k in others:
            axes[1].plot(ep, [r.get(k, float("nan")) for r in hist], marker=".", label=k)
        axes[1].set_title("validation metrics")
        axes[2].plot(ep, [r["lr"] for r in hist], marker=".")
        axes[2].set_title("learning rate")
        for a in axes:
            a.set_xlabel("epoch")
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=7)
        fig.tight_layout()
        tmp = os.fspath(path) + ".tmp.png"
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, os.fspath(path))

    def evaluate(self, data: Any, batch_size: int | None = None) -> dict[str, float]:
        """Mean validation metrics (and loss) of the current model on ``data``."""
        loss = None if self.step_fn is not None else self.loss
        return evaluate(self.module, data, batch_size or self.val_batch_size, self.forward, self.metrics,
                        loss, self.device, self.num_workers)
