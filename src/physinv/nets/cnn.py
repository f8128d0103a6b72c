"""Small CNNs and an MLP: refiners for :class:`~physinv.nets.HybridNet` and data-driven baselines.

Every model maps images ``(..., H, W)`` to images of the same shape (a
channel dimension is added and removed internally); inputs must have the
dtype and device of the model's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import nn

from .._validate import check_trailing
from ..operators import LinearOperator
from ..solvers.result import require_operator
from ._record import SavableModule

__all__ = ["DnCNN", "UNet", "MLP", "DataDriven"]


def _check_input(model: nn.Module, x: Any, min_dim: int = 2) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{type(model).__name__}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_dim:
        raise ValueError(f"{type(model).__name__}: input must have shape (..., H, W), got {tuple(x.shape)}")
    p = next(model.parameters())
    if x.dtype != p.dtype or x.device != p.device:
        raise TypeError(f"{type(model).__name__}: input is {x.dtype} on {x.device} but the model is "
                        f"{p.dtype} on {p.device}; use model.to(...) to match")


class DnCNN(SavableModule):
    """DnCNN-style plain CNN: conv-ReLU, ``depth - 2`` x (conv-ReLU), conv (no batch norm).

    Parameters
    ----------
    depth : int
        Number of 3x3 convolution layers (>= 2).
    channels : int
        Feature channels.
    residual : bool
        Return ``x + body(x)`` (a stand-alone denoiser/deblurrer) instead of
        ``body(x)`` (a correction, as :class:`~physinv.nets.HybridNet` wants).
    zero_init : bool
        Zero the last layer, so that ``body(x) = 0`` at initialization.

    Examples
    --------
    >>> import torch
    >>> net = DnCNN(depth=3, channels=8)
    >>> net(torch.rand(2, 16, 16)).abs().max().item()  # zero-initialised last layer
    0.0
    """

    def __init__(self, depth: int = 8, channels: int = 32, residual: bool = False,
                 zero_init: bool = True) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2, got {depth!r}")
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        if zero_init:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.body = nn.Sequential(*layers)
        self.residual = bool(residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        out = self.body(x.reshape(-1, 1, *x.shape[-2:])).reshape(x.shape)
        return x + out if self.residual else out


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(SavableModule):
    """A small U-Net: ``levels`` down/up stages with skip connections.

    Images whose sides are not multiples of ``2**levels`` are reflect-padded
    and cropped back.

    Parameters
    ----------
    channels : int
        Channels at the first level (doubled at each level down).
    levels : int
        Number of 2x down-sampling stages.
    residual, zero_init : bool
        As in :class:`DnCNN`.

    Examples
    --------
    >>> import torch
    >>> net = UNet(channels=4, levels=2, zero_init=False)
    >>> net(torch.rand(3, 18, 20)).shape
    torch.Size([3, 18, 20])
    """

    def __init__(self, channels: int = 16, levels: int = 2, residual: bool = False,
                 zero_init: bool = True) -> None:
        super().__init__()
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an int >= 1, got {levels!r}")
        c = [channels * 2**i for i in range(levels + 1)]
        self.inc = _block(1, c[0])
        self.down = nn.ModuleList([_block(c[i], c[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(c[i + 1], c[i], 2, stride=2) for i in range(levels)])
        self.dec = nn.ModuleList([_block(2 * c[i], c[i]) for i in range(levels)])
        self.out = nn.Conv2d(c[0], 1, 1)
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.levels = levels
        self.residual = bool(residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x)
        H, W = x.shape[-2:]
        m = 2**self.levels
        ph, pw = (-H) % m, (-W) % m
        z = x.reshape(-1, 1, H, W)
        if ph or pw:
            mode = "reflect" if (ph < H and pw < W) else "replicate"
            z = Fn.pad(z, (0, pw, 0, ph), mode=mode)
        skips = [self.inc(z)]
        for blk in self.down:
            skips.append(blk(Fn.avg_pool2d(skips[-1], 2)))
        h = skips[-1]
        for i in reversed(range(self.levels)):
            h = self.dec[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        out = self.out(h)[..., :H, :W].reshape(x.shape)
        return x + out if self.residual else out


class MLP(SavableModule):
    """A fully connected network on flattened trailing dims, for small problems.

    Parameters
    ----------
    in_shape, out_shape : tuple of int
        Trailing input and output shapes.
    hidden : sequence of int
        Hidden layer widths (ReLU between layers).

    Examples
    --------
    >>> import torch
    >>> net = MLP((4, 4), (4, 4), hidden=(32,))
    >>> net(torch.rand(5, 4, 4)).shape
    torch.Size([5, 4, 4])
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int],
                 hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        sizes = [math.prod(self.in_shape), *[int(h) for h in hidden], math.prod(self.out_shape)]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x, min_dim=len(self.in_shape))
        check_trailing(x, self.in_shape, "input", "MLP", real=True)
        n = len(self.in_shape)
        lead = x.shape[: x.dim() - n]
        return self.body(x.reshape(*lead, -1)).reshape(*lead, *self.out_shape)


class DataDriven(SavableModule):
    """A purely data-driven reconstruction: ``model(y)`` or ``model(A^H y)``.

    Parameters
    ----------
    model : nn.Module
        Image-to-image model, e.g. ``DnCNN(residual=True)`` or ``UNet(residual=True)``.
    A : LinearOperator, optional
        Needed for ``input="adjoint"``.
    input : {"y", "adjoint"}
        Feed the data itself or its back-projection ``A^H y``.

    Examples
    --------
    >>> import torch
    >>> net = DataDriven(DnCNN(depth=3, channels=4, residual=True))
    >>> y = torch.rand(2, 8, 8)
    >>> torch.equal(net(y), y)
    True
    """

    def __init__(self, model: nn.Module, A: LinearOperator | None = None, input: str = "y") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if input not in ("y", "adjoint"):
            raise ValueError(f"input must be 'y' or 'adjoint', got {input!r}")
        if input == "adjoint":
            if A is None:
                raise ValueError("input='adjoint' needs the operator A")
            require_operator(A, "DataDriven")
        self.model = model
        self.input = input
        self._A = [A]  # not a submodule: a dtype cast of the model must not touch the physics

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = y
        if self.input == "adjoint":
            z = self._A[0].adjoint(y)
        return self.model(z)
