"""Shared plumbing of the physics-constrained networks: holding an operator, casting constants."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..operators import Factorization, LinearOperator

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def real_dtype(x: torch.Tensor) -> torch.dtype:
    """The real compute dtype for ``x`` (half types compute in float32)."""
    if x.is_complex():
        return torch.float64 if x.dtype == torch.complex128 else torch.float32
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def check_image(x: Any, shape: tuple[int, ...], name: str, where: str) -> torch.Tensor:
    """Check that ``x`` is a real floating tensor with trailing ``shape``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    n = len(shape)
    if x.dim() < n or tuple(x.shape[x.dim() - n:]) != tuple(shape):
        raise ValueError(f"{where}: {name} must have trailing shape {tuple(shape)}, got tensor of "
                         f"shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{where}: {name} must be a real floating tensor, got {x.dtype}")
    return x


def check_operator(A: Any, name: str = "A") -> LinearOperator:
    if not isinstance(A, LinearOperator):
        raise TypeError(f"{name} must be a physinv LinearOperator, got {type(A).__name__}")
    return A


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
        """Buffer ``name`` in the compute precision of ``like`` (complex if ``complex_``)."""
        buf = getattr(self, name)
        if buf.device != like.device:
            raise ValueError(f"{type(self).__name__}: input is on {like.device} but the network is on "
                             f"{buf.device}; move one of them with .to(device)")
        real = real_dtype(like)
        key = (name, real, complex_)
        hit = self._cast_cache.get(key)
        if hit is None or hit.device != buf.device:
            hit = buf.to(real)
            if complex_:
                hit = torch.view_as_complex(hit.contiguous())
            self._cast_cache[key] = hit
        return hit

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
