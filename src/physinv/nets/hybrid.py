"""A physics block followed by a residual CNN refiner."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._record import SavableModule

__all__ = ["HybridNet"]


class HybridNet(SavableModule):
    """``p = physics(y, ...)``, ``x = p + refiner(p)``.

    Parameters
    ----------
    physics : nn.Module
        A physics block: :class:`~physinv.nets.SpectralFilterNet`,
        :class:`~physinv.nets.UnrolledLandweber`, :class:`~physinv.nets.UnrolledISTA`...
    refiner : nn.Module
        An image-to-image correction, e.g. ``DnCNN()`` or ``UNet()`` (their
        default zero-initialised last layer makes the hybrid equal the physics
        block at initialization).
    freeze_physics : bool
        Do not train the physics block's parameters.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> from physinv.nets import SpectralFilterNet
    >>> from physinv.nets.cnn import DnCNN
    >>> A = Convolution(psf.gaussian(1.5, 9), (16, 16))
    >>> phys = SpectralFilterNet(A, lam=1e-2)
    >>> net = HybridNet(phys, DnCNN(depth=3, channels=8))
    >>> y = torch.rand(2, 16, 16)
    >>> torch.equal(net(y), phys(y))
    True
    """

    def __init__(self, physics: nn.Module, refiner: nn.Module, freeze_physics: bool = False) -> None:
        super().__init__()
        for name, m in (("physics", physics), ("refiner", refiner)):
            if not isinstance(m, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(m).__name__}")
        self.physics = physics
        self.refiner = refiner
        if freeze_physics:
            for p in physics.parameters():
                p.requires_grad_(False)

    def forward(self, y: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Physics reconstruction plus the learned correction; extra args go to the physics block."""
        p = self.physics(y, *args, **kwargs)
        return p + self.refiner(p)
