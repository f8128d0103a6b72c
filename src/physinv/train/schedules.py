"""Learning-rate schedulers by name, or any torch scheduler, for the Trainer."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["SCHEDULERS", "make_scheduler"]

#: The scheduler names the Trainer understands.
SCHEDULERS = ("cosine", "step", "exponential", "plateau", "onecycle")


def make_scheduler(sch: Any, interval: str, optimizer: torch.optim.Optimizer, epochs: int,
                   steps_per_epoch: int, mode: str = "min") -> tuple[Any, str]:
    """The scheduler for ``optimizer`` and the interval it is stepped at.

    Parameters
    ----------
    sch : None, str, LR scheduler or callable
        ``None`` (no schedule); a torch scheduler over ``optimizer``; a
        callable ``optimizer -> scheduler``; or a name:

        * ``"cosine"``: cosine annealing to zero over the run;
        * ``"step"``: x0.1 every third of the run;
        * ``"exponential"``: x0.9 per step of the schedule;
        * ``"plateau"``: x0.1 after 5 epochs without improvement of the
          monitored value (always per epoch);
        * ``"onecycle"``: one-cycle schedule with the optimizer's learning
          rates as maxima (always per optimizer step).
    interval : {"epoch", "step"}
        When the scheduler is stepped (the run length of "cosine" and "step"
        is counted in that unit).
    optimizer : torch.optim.Optimizer
    epochs, steps_per_epoch : int
        Length of the run.
    mode : {"min", "max"}
        Direction of the monitored value (for "plateau").

    Returns
    -------
    scheduler, interval
        ``(None, interval)`` without a schedule.

    Examples
    --------
    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> sch, when = make_scheduler("onecycle", "epoch", opt, epochs=2, steps_per_epoch=5)
    >>> type(sch).__name__, when
    ('OneCycleLR', 'step')
    """
    opt = optimizer
    if sch is None:
        return None, interval
    if isinstance(sch, str):
        steps = epochs * steps_per_epoch
        if sch not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS} or a torch scheduler, got {sch!r}")
        if sch == "cosine":
            total = steps if interval == "step" else epochs
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), interval
        if sch == "step":
            total = steps if interval == "step" else epochs
            return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1), interval
        if sch == "exponential":
            return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9), interval
        if sch == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, patience=5), "epoch"
        lrs = [g["lr"] for g in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lrs, total_steps=steps), "step"
    if callable(sch) and not hasattr(sch, "state_dict"):
        sch = sch(opt)
    if not hasattr(sch, "step") or not hasattr(sch, "state_dict"):
        raise TypeError(f"scheduler must be a torch LR scheduler, a name or a callable, "
                        f"got {type(sch).__name__}")
    return sch, interval
