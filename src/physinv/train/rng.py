"""Random-number generators of a training run: seeding, state capture and restore, DataLoader workers.

Everything random in a run flows from one seed: Python's :mod:`random`,
numpy's global generator and torch's CPU and CUDA generators are seeded by
:func:`seed_everything`, their states go into every checkpoint
(:func:`rng_state`, restored by :func:`set_rng_state`), and DataLoader workers
derive their own seeds from the loader's seeded generator (:func:`worker_init`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "worker_init", "rng_state", "set_rng_state", "capture_rng", "restore_rng"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        Any Python integer; numpy receives ``seed % 2**32``.

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


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed ``random`` and numpy from the worker's torch seed.

    The DataLoader seeds torch in each worker from its (seeded) generator;
    Python's and numpy's global generators are derived from that seed, so
    datasets that draw from them are reproducible too.

    Examples
    --------
    >>> import random, torch
    >>> _ = torch.manual_seed(7); worker_init(0); a = random.random()
    >>> _ = torch.manual_seed(7); worker_init(0); a == random.random()
    True
    """
    s = torch.initial_seed()
    random.seed(s)
    np.random.seed(s % 2**32)  # noqa: NPY002


def rng_state() -> dict[str, Any]:
    """The global generator states as tensors and plain containers (loadable with ``weights_only=True``).

    Returns
    -------
    dict
        ``{"torch", "cuda", "numpy", "python"}``: torch's CPU state, the
        CUDA states (one per device, empty without CUDA), numpy's global
        MT19937 state and Python's ``random`` state.

    Examples
    --------
    >>> import torch
    >>> st = rng_state(); a = torch.rand(3)
    >>> set_rng_state(st); bool(torch.equal(a, torch.rand(3)))
    True
    """
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


def set_rng_state(st: Mapping[str, Any]) -> None:
    """Restore the global generators from a :func:`rng_state` dict.

    CUDA states are restored for the devices this process sees (at most as
    many as were saved).
    """
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


def capture_rng() -> tuple[Any, ...]:
    """A cheap in-memory snapshot of the global generator states (for :func:`restore_rng`).

    Unlike :func:`rng_state` it keeps the native objects (no conversion), so
    it can be taken at every training step.

    Examples
    --------
    >>> import torch
    >>> snap = capture_rng(); a = torch.rand(2)
    >>> restore_rng(snap); bool(torch.equal(a, torch.rand(2)))
    True
    """
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return (torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())  # noqa: NPY002


def restore_rng(snapshot: tuple[Any, ...]) -> None:
    """Put the global generators back to a :func:`capture_rng` snapshot."""
    cpu, cuda, npst, py = snapshot
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    np.random.set_state(npst)  # noqa: NPY002
    random.setstate(py)
