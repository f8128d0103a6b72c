"""Mixed precision: the precisions a Trainer accepts, their autocast regions, and float32 physics.

Autocast runs matrix products and convolutions of the learned layers in a
16-bit type. The physics of physinv's networks (the operator, its adjoint,
the exact data steps, the FFT filters) is run in float32 instead:
:func:`float32_physics` switches autocast off for the call and casts 16-bit
inputs up. FFTs on half types are limited (CPU FFTs refuse ``bfloat16``,
cuFFT accepts ``float16`` only for power-of-two sizes), sparse products on
the CPU have no ``bfloat16`` kernel, and a forward model computed with an
8-bit mantissa would be silently less exact than the data it is compared to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch

__all__ = ["PRECISIONS", "check_precision", "autocast", "make_grad_scaler", "float32_physics"]

#: The names :class:`~physinv.train.Trainer` accepts as ``precision``.
PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_HALF = (torch.float16, torch.bfloat16)

T = TypeVar("T")


def check_precision(precision: Any, device: Any) -> str:
    """Check that ``precision`` names a precision that can train on ``device``; return it.

    Parameters
    ----------
    precision : {"fp32", "bf16", "fp16"}
        ``"fp32"``: no autocast. ``"bf16"``: autocast to bfloat16 (CPU and
        CUDA devices that support it). ``"fp16"``: autocast to float16 with
        a gradient scaler, CUDA only.
    device : torch.device or str
        The device the model trains on.

    Returns
    -------
    str
        ``precision``.

    Raises
    ------
    ValueError
        If ``precision`` is not one of :data:`PRECISIONS`, or the device
        cannot train in it (the message names ``precision``).

    Examples
    --------
    >>> check_precision("bf16", "cpu")
    'bf16'
    >>> try:
    ...     check_precision("fp16", "cpu")
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    precision='fp16' needs a CUDA device (float16 training relies on torch.amp.GradScaler), got cpu
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device (float16 training relies on "
                         f"torch.amp.GradScaler), got {kind}; use precision='bf16' or 'fp32'")
    if precision == "bf16":
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"precision='bf16' is supported on cpu and cuda devices, got {kind}; "
                             f"use precision='fp32'")
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision='bf16' needs a GPU with bfloat16 support; use precision='fp16' "
                             "or 'fp32'")
    return precision


def autocast(precision: str, device: Any) -> contextlib.AbstractContextManager:
    """The autocast region of ``precision`` on ``device`` (a no-op context for ``"fp32"``).

    Examples
    --------
    >>> import torch
    >>> with autocast("bf16", "cpu"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    >>> with autocast("fp32", "cpu"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision])


def make_grad_scaler(precision: str, device: Any) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` for ``"fp16"`` training, ``None`` for the other precisions.

    Examples
    --------
    >>> make_grad_scaler("bf16", "cpu") is None
    True
    """
    check_precision(precision, device)
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def _autocast_on(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except RuntimeError:  # a device type autocast does not know (meta, ...): never on
        return False


def float32_physics(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` in float32 when autocast is on: the physics is never run in 16 bits.

    Inside an autocast region of the arguments' device, autocast is switched
    off for the call and every float16/bfloat16 tensor among the positional
    and keyword arguments is cast to float32 (the cast is differentiable).
    Outside one, ``fn`` is called unchanged (no cast, no cost).

    Parameters
    ----------
    fn : callable
        The physics: an operator application, a data step, an FFT filter.
    *args, **kwargs
        Its arguments; tensors decide the device type.

    Returns
    -------
    object
        What ``fn`` returns.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(3, 3)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     (a @ a).dtype, float32_physics(torch.matmul, a, a.bfloat16()).dtype
    (torch.bfloat16, torch.float32)
    """
    kinds = {a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)}
    on = [k for k in kinds if _autocast_on(k)]
    if not on:
        return fn(*args, **kwargs)

    def up(a: Any) -> Any:
        return a.float() if isinstance(a, torch.Tensor) and a.dtype in _HALF else a

    with contextlib.ExitStack() as stack:
        for k in on:
            stack.enter_context(torch.autocast(k, enabled=False))
        return fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})
