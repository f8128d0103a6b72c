"""Shared plumbing of the physics-constrained networks: holding an operator, casting constants."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validate import cached_cast, compute_dtype
from ..operators import Factorization, LinearOperator
from ._record import SavableModule


class PhysicsMismatchError(RuntimeError, ValueError):
    """A state dict holds physics tensors (``s``, ``phase``, ``tf``...) of another operator than the net's."""


class PhysicsModule(SavableModule):
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
        self._physics_names: list[str] = []

    def _physics(self, name: str, tensor: torch.Tensor | None) -> None:
        """Register an operator-derived constant: a non-persistent buffer, rebuilt from the operator.

        It is not part of ``state_dict()``; an old state dict that still holds
        it is checked against this net's value on load (see
        :meth:`_load_from_state_dict`).
        """
        self._physics_names.append(name)
        if tensor is None:
            setattr(self, name, None)
        else:
            self.register_buffer(name, tensor, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # noqa: D401 - nn.Module hook
        for name in getattr(self, "_physics_names", ()):
            key = prefix + name
            if key not in state_dict:
                continue
            old = state_dict.pop(key)
            mine = getattr(self, name)
            same = (mine is not None and isinstance(old, torch.Tensor)
                    and tuple(old.shape) == tuple(mine.shape))
            if same and mine.numel():
                ref = mine.detach().to(torch.float64)
                same = bool(torch.allclose(old.detach().to(device=ref.device, dtype=torch.float64), ref,
                                           rtol=1e-5, atol=1e-5 * float(ref.abs().max())))
            if not same:
                got = "nothing" if mine is None else f"shape {tuple(mine.shape)}"
                raise PhysicsMismatchError(
                    f"{type(self).__name__}.load_state_dict: the state dict holds physics buffer {key!r} "
                    f"(shape {tuple(getattr(old, 'shape', ()))}) that differs from the one this net derives "
                    f"from its operator ({got}): the weights were trained for another operator. The physics "
                    f"is not learned state; build the net on the operator it was trained with")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # -- operators ----------------------------------------------------------
    @property
    def operator(self) -> LinearOperator | None:
        """The operator the network was built on (``None`` if it was built from a factorization).

        It moves with the network (``net.to(device)``) and is what
        :func:`physinv.nets.save_net` stores as a config.
        """
        return self._held.get("A")

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


def check_finite(t: torch.Tensor, name: str, owner: str) -> None:
    """Refuse NaN or inf input, as the solvers do (one reduction when everything is finite)."""
    if t.device.type == "meta" or not t.numel():  # nothing to look at (the device check reports meta)
        return
    if not bool(torch.isfinite(t.detach().sum())):
        if not bool(torch.isfinite(t.detach()).all()):
            raise ValueError(f"{owner}: {name} contains non-finite values (nan or inf)")


def _move(obj: Any, device: torch.device) -> None:
    """Move an operator or a factorization (device only, dtype untouched)."""
    if isinstance(obj, nn.Module):
        for t in list(obj.buffers()) + list(obj.parameters()):
            if t.device != device:
                obj.to(device)
            break
    elif isinstance(obj, Factorization):
        obj.to(device)
