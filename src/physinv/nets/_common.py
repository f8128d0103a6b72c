"""Shared plumbing of the physics-constrained networks: holding an operator, casting constants."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validate import cached_cast, compute_dtype
from ..operators import Factorization


class PhysicsModule(nn.Module):
    """An ``nn.Module`` that holds a fixed operator and float64 constants derived from it.

    The operator is *not* a registered submodule: ``net.float()``/``net.double()``
    change the trainable parameters only, never the physics (whose complex
    transfer functions a real ``dtype`` cast would destroy).  Device moves
    (``net.to("cuda")``) move the operator too.  Constant buffers are kept in
    float64 (complex ones as a real view) and cast, once per dtype/device, to
    the precision of the input.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cast_cache: dict[tuple, torch.Tensor] = {}
        self._held: dict[str, Any] = {}

    # -- operators ----------------------------------------------------------
    def _hold(self, name: str, obj: Any) -> None:
        self._held[name] = obj

    def _held_device(self) -> torch.device | None:
        for t in list(self.parameters(recurse=False)) + list(self.buffers(recurse=False)):
            return t.device
        return None

    def _apply(self, fn, *args, **kwargs):  # noqa: D401 - nn.Module hook
        self._cast_cache = {}
        out = super()._apply(fn, *args, **kwargs)
        dev = self._held_device()
        if dev is not None:
            for obj in self._held.values():
                _move(obj, dev)
        return out

    # -- constants ------------------------------------------------------------
    def _const(self, name: str, like: torch.Tensor, complex_: bool = False) -> torch.Tensor:
        """Buffer ``name`` in the compute precision of ``like`` (as complex if ``complex_``).

        Cast once per precision by :func:`physinv._validate.cached_cast` (the
        one cast path of physinv); complex constants are stored as a real view.
        """
        t = cached_cast(self._cast_cache, name, getattr(self, name), like, real=compute_dtype(like),
                        where=type(self).__name__, holder="network")
        if complex_:
            return torch.view_as_complex(t if t.is_contiguous() else t.contiguous())
        return t

    def _check_device(self, x: torch.Tensor) -> None:
        dev = self._held_device()
        if dev is not None and dev != x.device:
            raise ValueError(f"{type(self).__name__}: input is on {x.device} but the network is on "
                             f"{dev}; move one of them with .to(device)")


def _move(obj: Any, device: torch.device) -> None:
    """Move an operator or a factorization (device only, dtype untouched)."""
    if isinstance(obj, nn.Module):
        for t in list(obj.buffers()) + list(obj.parameters()):
            if t.device != device:
                obj.to(device)
            break
    elif isinstance(obj, Factorization):
        obj.to(device)
