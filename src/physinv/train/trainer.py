"""The Trainer: one seeded, resumable training loop, single-process or under ``torchrun``."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .._random import mix_seed
from .amp import autocast, check_precision, make_grad_scaler
from .checkpoint import (
    CHECKPOINT_VERSION,
    TRAINING_KEYS,
    CheckpointError,
    atomic_save,
    atomic_write_text,
    load_checkpoint,
    remove_stale_temporaries,
)
from .devices import resolve_device, to_device
from .distributed import all_gather_object, all_reduce_mean, barrier, destroy, init_distributed
from .evaluation import evaluate
from .objective import default_forward, loss_terms
from .plotting import plot_curves
from .rng import capture_rng, restore_rng, rng_state, seed_everything, set_rng_state, worker_init
from .sampling import EpochBatches
from .schedules import make_scheduler

__all__ = ["Trainer", "TrainingInterrupted"]

#: The files a Trainer writes in ``output_dir`` (their stale temporaries are removed at start).
OUTPUT_FILES = ("last.pt", "best.pt", "log.jsonl", "curves.png")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) during :meth:`Trainer.fit`, with where the run can be resumed.

    Attributes
    ----------
    step : int
        Optimizer steps completed.
    checkpoint : str or None
        The checkpoint to resume from (``None``: nothing was saved).
    """

    def __init__(self, message: str, step: int = 0, checkpoint: str | None = None) -> None:
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


def _check_arguments(model: Any, train_data: Any, batch_size: Any, epochs: Any, seed: Any,
                     scheduler_interval: Any, clip_grad_norm: Any, early_stopping: Any,
                     checkpoint_every: Any, resume: Any, output_dir: Any) -> None:
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


def _default_mode(monitor: str, mode: str | None) -> str:
    if mode is None:
        mode = "max" if any(k in monitor for k in ("psnr", "ssim", "dice", "iou")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


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
        index (and epoch) for exact resumption (physinv datasets are). A
        ``train_data`` with a ``set_epoch(epoch)`` method is told the epoch
        (0-based) before each epoch starts, a resumed one included.  A dataset of
        single tensors needs ``forward`` (and ``loss``) or ``step_fn``.
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
        Without it nothing is written (and nothing can be resumed).  Stale
        temporary files of those names (left by a run killed while writing)
        are removed when the Trainer is built.
    checkpoint_every : int, optional
        Also checkpoint every this many optimizer steps (besides each epoch).
    resume : bool or str
        ``True``: continue from ``output_dir/last.pt`` if it exists; a path:
        continue from that checkpoint.  The checkpoint's SHA-256 digest is
        verified first: a damaged file raises
        :class:`~physinv.train.CheckpointError`.
    plot : bool
        Save a matplotlib figure of the curves after each epoch.
    progress : bool
        tqdm progress bars (rank 0 only).
    num_workers : int
        DataLoader worker processes.
    device : str, torch.device or int, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ...; default: the
        local CUDA device when available (``cuda:LOCAL_RANK``), else the CPU.
        A device that does not exist here is a ``ValueError``.
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
    distributed : bool
        Join the ``torchrun`` process group (the default). ``False`` trains
        in this process alone even under ``torchrun``, on this process's
        default device (``cuda:LOCAL_RANK`` where there are GPUs): for
        studies whose processes each train their own models.
    precision : {"fp32", "bf16", "fp16"}
        Arithmetic of the training forward pass and loss. ``"fp32"`` (the
        default): none changed. ``"bf16"``: ``torch.autocast`` to bfloat16 on
        the device (CPU, or a CUDA GPU that supports it). ``"fp16"``:
        autocast to float16 with a ``torch.amp.GradScaler`` (CUDA only),
        whose state is part of the checkpoint. Parameters, optimizer state and
        validation stay float32; physinv's networks run their physics (the
        operator, the FFT filters, the data steps) in float32 inside the
        autocast region (:func:`physinv.train.amp.float32_physics`). A run
        resumes only with the precision it was started with.

    Notes
    -----
    Ctrl-C during :meth:`fit` saves the training state when it can (single
    process, ``output_dir`` set, not in the middle of a weight update),
    prints one line to stderr with the step reached, the checkpoint and how
    to continue, and raises :class:`TrainingInterrupted` (a
    ``KeyboardInterrupt``).  A resumed run then ends with exactly the
    weights of an uninterrupted one.

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
                 val_batch_size: int | None = None, deterministic: bool = False,
                 distributed: bool = True, precision: str = "fp32") -> None:
        _check_arguments(model, train_data, batch_size, epochs, seed, scheduler_interval, clip_grad_norm,
                         early_stopping, checkpoint_every, resume, output_dir)
        if deterministic:
            torch.use_deterministic_algorithms(True)
        self.train_data, self.val_data = train_data, val_data
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.loss = loss if loss is not None else nn.functional.mse_loss
        self.forward = forward or default_forward
        self.step_fn = step_fn
        self.clip_grad_norm, self.early_stopping, self.min_delta = clip_grad_norm, early_stopping, min_delta
        self.monitor = monitor or ("val_psnr" if val_data is not None else "train_loss")
        self.mode = _default_mode(self.monitor, mode)
        self.output_dir = None if output_dir is None else os.path.abspath(os.fspath(output_dir))
        self.checkpoint_every, self.plot, self.num_workers = checkpoint_every, plot, num_workers
        self.metrics = metrics
        self.val_batch_size = val_batch_size or batch_size
        self.distributed = bool(distributed)

        self._setup_processes()
        self.progress = progress and self.rank == 0
        self._place_on_device(device)
        self.precision = check_precision(precision, self.device)
        self.scaler = make_grad_scaler(self.precision, self.device)
        seed_everything(seed + self.rank)
        self._wrap_model(model)
        self.optimizer = self._make_optimizer(optimizer, lr)
        self.scheduler, self.scheduler_interval = self._make_scheduler(scheduler, scheduler_interval)
        self._reset_state()
        if self.rank == 0 and self.output_dir is not None:
            remove_stale_temporaries(self.output_dir, OUTPUT_FILES)
        if resume:
            self._resume(resume)

    # ---------------------------------------------------------------- setup
    def _setup_processes(self) -> None:
        """Join (or create) the torchrun process group; check that batches split evenly over it."""
        self._owns_group = False
        self.rank, self.world, self.local_rank = self._init_distributed()
        if self.batch_size % self.world:
            raise ValueError(f"batch_size={self.batch_size} must be divisible by the number of processes "
                             f"({self.world}) so that every rank gets an equal share of each global batch")
        if len(self.train_data) < self.batch_size:
            raise ValueError(f"train_data has {len(self.train_data)} samples, fewer than "
                             f"batch_size={self.batch_size}")

    def _init_distributed(self) -> tuple[int, int, int]:
        if not self.distributed:
            return 0, 1, int(os.environ.get("LOCAL_RANK", "0") or 0)
        rank, world, local, created = init_distributed()
        self._owns_group = self._owns_group or created
        return rank, world, local

    def _place_on_device(self, device: Any) -> None:
        """Resolve ``device`` (checked, with an index for CUDA) and make it this process's current GPU."""
        self.device = resolve_device(device, self.local_rank if self.world > 1 or device is None else None)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    def _wrap_model(self, model: nn.Module) -> None:
        """``self.module``: the model on the device; ``self.model``: the same, DDP-wrapped under torchrun."""
        self.module = model.to(self.device)
        self.model: nn.Module = self.module
        if self.world > 1 and any(p.requires_grad for p in self.module.parameters()):
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DDP(self.module, device_ids=ids)

    def _make_optimizer(self, optimizer: Any, lr: float) -> torch.optim.Optimizer:
        if optimizer is None:
            return torch.optim.Adam(self.module.parameters(), lr=lr)
        if isinstance(optimizer, torch.optim.Optimizer):
            return optimizer
        if not callable(optimizer):
            raise TypeError(f"optimizer must be a torch Optimizer or a callable, "
                            f"got {type(optimizer).__name__}")
        return optimizer(self.module.parameters())

    def _make_scheduler(self, sch: Any, interval: str) -> tuple[Any, str]:
        return make_scheduler(sch, interval, self.optimizer, self.epochs,
                              len(self.train_data) // self.batch_size, self.mode)

    def _reset_state(self) -> None:
        """The progress counters of a run that has not started."""
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
        self._last_checkpoint: tuple[str, int] | None = None  # (path, global step) of the latest save
        # Ctrl-C safety: while _updating, weights and counters may disagree (no save possible);
        # otherwise _clean_rng is the RNG state that belongs with the counters
        self._updating = False
        self._clean_rng: tuple[Any, ...] | None = None

    def _resume(self, resume: bool | str | os.PathLike) -> None:
        path = (os.path.join(self.output_dir, "last.pt") if resume is True
                else os.path.abspath(os.fspath(resume)))
        if os.path.exists(path):
            self._load(path)
        elif resume is not True:
            raise FileNotFoundError(f"resume: no checkpoint at {path!r}")

    def close(self) -> None:
        """Destroy the process group if this trainer created it (call at the end of a torchrun script)."""
        if self._owns_group:
            destroy()
            self._owns_group = False

    # ----------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        all_rng = all_gather_object(rng_state(), self.world)
        state = {
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
        if self.precision != "fp32":  # an fp32 checkpoint keeps the keys it always had
            state["config"]["precision"] = self.precision
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def save_checkpoint(self, name: str = "last.pt") -> str | None:
        """Write the full training state atomically to ``output_dir/name`` (rank 0; collective call).

        The file carries a SHA-256 digest of its content (see
        :func:`~physinv.train.load_checkpoint`).  Returns the path on rank 0
        with an ``output_dir``, else ``None``.
        """
        state = self._state()  # collective under DDP: every rank must call
        path = None
        if self.rank == 0 and self.output_dir is not None:
            path = os.path.join(self.output_dir, name)
            atomic_save(state, path)
        self._barrier()
        if self.output_dir is not None:
            self._last_checkpoint = (os.path.join(self.output_dir, name), self.global_step)
        return path

    def _barrier(self) -> None:
        barrier(self.world)

    def _load(self, path: str) -> None:
        try:
            ck = load_checkpoint(path, map_location="cpu")
            missing = [k for k in TRAINING_KEYS if not isinstance(ck, dict) or k not in ck]
            if missing:
                weights_only = isinstance(ck, dict) and "model" in ck
                raise CheckpointError(
                    f"{path} is not a physinv checkpoint (missing keys {missing})"
                    + ("; it holds only model weights (like best.pt): load those with load_weights and "
                       "resume from last.pt" if weights_only else ""))
        except CheckpointError as e:
            raise CheckpointError(f"resume: {e}") from None
        if ck["physinv_checkpoint"] != CHECKPOINT_VERSION:
            raise CheckpointError(f"resume: {path!r} is a physinv training checkpoint of version "
                                  f"{ck['physinv_checkpoint']!r}; this physinv reads version "
                                  f"{CHECKPOINT_VERSION}")
        cfg = ck["config"]
        mine = {"seed": self.seed, "batch_size": self.batch_size, "n_train": len(self.train_data)}
        missing = [k for k in mine if not isinstance(cfg, Mapping) or k not in cfg]
        if missing:
            raise CheckpointError(f"resume: {path} is not a physinv checkpoint (missing keys "
                                  f"{['config.' + k for k in missing]})")
        bad = {k: (cfg[k], v) for k, v in mine.items() if cfg[k] != v}
        if cfg.get("precision", "fp32") != self.precision:
            bad["precision"] = (cfg.get("precision", "fp32"), self.precision)
        if bad:
            raise ValueError(f"resume: {path!r} was written by a run with different settings "
                             f"(checkpoint, now): {bad}; exact continuation is impossible")
        if self.scaler is not None and not isinstance(ck.get("scaler"), Mapping):
            raise CheckpointError(f"resume: {path} is not a physinv checkpoint of a precision='fp16' run "
                                  f"(missing key 'scaler')")
        self.module.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None and ck["scheduler"] is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(ck["scaler"])
        for k in ("epoch", "batch_in_epoch", "global_step", "best", "best_epoch", "bad_epochs",
                  "stopped_early", "history"):
            setattr(self, k, ck[k])
        self._acc, self._acc_n, self._last_lr = dict(ck["acc"]), ck["acc_n"], ck["last_lr"]
        rngs = ck["rng"]
        if len(rngs) == self.world:
            set_rng_state(rngs[self.rank])
        else:
            warnings.warn(f"resume: the checkpoint holds RNG states of {len(rngs)} processes but this run "
                          f"has {self.world}; random layers (dropout) will draw different numbers",
                          stacklevel=4)
            set_rng_state(rngs[0])
            torch.manual_seed(mix_seed(self.seed, self.rank, self.global_step))
        self.resumed_from = path
        self._last_checkpoint = (path, self.global_step)

    # --------------------------------------------------------------- training
    def _train_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        with autocast(self.precision, self.device):  # a no-op context in fp32
            if self.step_fn is not None:
                return loss_terms(self.step_fn(self.model, batch))
            pred, target = self.forward(self.model, batch)
            return loss_terms(self.loss(pred, target))

    def _reduce(self, vals: torch.Tensor) -> torch.Tensor:
        return all_reduce_mean(vals, self.world)

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def _begin_update(self) -> None:
        """From here until :meth:`_end_update`, weights, optimizer and counters may disagree."""
        self._updating = True

    def _end_update(self) -> None:
        """Weights and counters agree again; remember the RNG state that goes with them."""
        self._clean_rng = capture_rng()
        self._updating = False

    def fit(self) -> list[dict[str, Any]]:
        """Run (or continue) training; returns the per-epoch history (also in ``log.jsonl``).

        Raises
        ------
        TrainingInterrupted
            On Ctrl-C, after saving the state when possible and printing how
            to resume (one line on stderr).
        RuntimeError
            If an earlier ``fit`` was interrupted in the middle of a weight
            update: this Trainer's state is inconsistent, resume a new one.
        """
        if self._updating:
            raise RuntimeError(
                f"this Trainer was interrupted in the middle of optimizer step {self.global_step + 1}, so "
                f"its weights and counters disagree; build a new Trainer with resume=True to continue "
                f"from the last checkpoint ({self._describe_last_checkpoint()})")
        if self.rank == 0 and self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
        self._end_update()
        try:
            self._run_epochs()
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:
            raise self._interrupted() from None
        return self.history

    def _run_epochs(self) -> None:
        from tqdm.auto import tqdm

        n = len(self.train_data)
        while self.epoch < self.epochs and not self.stopped_early:
            epoch = self.epoch
            if callable(getattr(self.train_data, "set_epoch", None)):
                self.train_data.set_epoch(epoch)
            sampler = EpochBatches(n, self.batch_size, self.seed, epoch, self.batch_in_epoch,
                                   self.rank, self.world)
            gen = torch.Generator().manual_seed(mix_seed(self.seed, epoch, self.batch_in_epoch, 1))
            loader = torch.utils.data.DataLoader(
                self.train_data, batch_sampler=sampler, num_workers=self.num_workers,
                worker_init_fn=worker_init, generator=gen, pin_memory=self.device.type == "cuda")
            t0 = time.time()
            self.model.train()
            bar = tqdm(total=sampler.batches_per_epoch(), initial=self.batch_in_epoch,
                       desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.progress, leave=False)
            try:
                for batch in loader:
                    self._step(to_device(batch, self.device), epoch)
                    bar.update(1)
                    bar.set_postfix(loss=f"{self._acc['loss'] / self._acc_n:.4g}")
                    if self.checkpoint_every and self.global_step % self.checkpoint_every == 0:
                        self.save_checkpoint()
            finally:
                bar.close()
            self._end_epoch(epoch, time.time() - t0)

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
        if self.scaler is None:
            terms["loss"].backward()
        else:  # fp16: scaled loss, gradients unscaled before clipping; a step with inf/nan is skipped
            self.scaler.scale(terms["loss"]).backward()
            if self.clip_grad_norm is not None:
                self.scaler.unscale_(self.optimizer)
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip_grad_norm)
        self._begin_update()
        self._last_lr = self._lr()
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        self.global_step += 1
        self.batch_in_epoch += 1
        for k, v in zip(names, vals.tolist()):
            self._acc[k] = self._acc.get(k, 0.0) + v
        self._acc_n += 1
        self._end_update()

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
                           loss, self.device, self.num_workers, distributed=self.distributed)
            rec.update({f"val_{k}": v for k, v in val.items()})
        rec["time"] = seconds
        if self.monitor not in rec:
            raise KeyError(f"monitor={self.monitor!r} is not among the logged quantities {sorted(rec)}")
        value = float(rec[self.monitor])
        self._begin_update()
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
            atomic_write_text("".join(json.dumps(r) + "\n" for r in self.history),
                              os.path.join(self.output_dir, "log.jsonl"))
            if self.plot:
                self.plot_curves(os.path.join(self.output_dir, "curves.png"))
        self._end_update()
        self.save_checkpoint()

    # --------------------------------------------------------- interruption
    def _describe_last_checkpoint(self) -> str:
        if self._last_checkpoint is None:
            return "none was written yet" if self.output_dir is not None else "none: no output_dir"
        path, step = self._last_checkpoint
        return f"{path}, step {step}"

    def _interrupted(self) -> TrainingInterrupted:
        """Save what can be saved after Ctrl-C; print and return the exception that tells how to resume."""
        bpe = len(self.train_data) // self.batch_size
        where = (f"step {self.global_step} of {self.epochs * bpe} (epoch {self.epoch + 1}/{self.epochs}, "
                 f"batch {self.batch_in_epoch}/{bpe} done)")
        if not self._updating and self._clean_rng is not None:
            restore_rng(self._clean_rng)  # undo what the unfinished step drew: fit() continues exactly
        saved = None
        if self._updating:
            note = " in the middle of a weight update, which cannot be saved"
        elif self.output_dir is None:
            note = "; calling fit() again on this Trainer continues the run"
        elif self.world > 1:
            note = "; checkpoints are collective under torchrun, so none was written now"
        else:
            try:
                saved = self.save_checkpoint()
                note = f"; saved the training state to {saved}"
            except Exception as e:  # noqa: BLE001 - reported on the one line
                note = f"; saving the state failed ({type(e).__name__}: {e})"
        if self.output_dir is None:
            how = "; nothing was saved (no output_dir), so a new run starts from the beginning"
        elif saved is not None:
            how = f"; continue with Trainer(..., output_dir={self.output_dir!r}, resume=True).fit()"
        elif self._last_checkpoint is not None:
            path, step = self._last_checkpoint
            arg = True if path == os.path.join(self.output_dir, "last.pt") else path
            how = (f"; the last checkpoint is {path} (step {step}): continue with "
                   f"Trainer(..., output_dir={self.output_dir!r}, resume={arg!r}).fit()")
        else:
            how = "; no checkpoint was written yet, so running again starts from the beginning"
        message = f"Trainer interrupted after {where}{note}{how}"
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)
        checkpoint = saved if saved is not None else (None if self._last_checkpoint is None
                                                      else self._last_checkpoint[0])
        return TrainingInterrupted(message, self.global_step, checkpoint)

    # ------------------------------------------------------------- reporting
    def plot_curves(self, path: str | os.PathLike) -> None:
        """Save the logged curves (losses, validation metrics, learning rate) as a PNG."""
        plot_curves(self.history, path)

    def evaluate(self, data: Any, batch_size: int | None = None) -> dict[str, float]:
        """Mean validation metrics (and loss) of the current model on ``data``."""
        loss = None if self.step_fn is not None else self.loss
        return evaluate(self.module, data, batch_size or self.val_batch_size, self.forward, self.metrics,
                        loss, self.device, self.num_workers, distributed=self.distributed)
