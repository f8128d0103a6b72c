"""Loss functions for learned inversion, each returning a dict of named scalar terms.

Misfit in the inverse space (:class:`Misfit`), measurement consistency
through a known differentiable forward model (:class:`MeasurementConsistency`:
any :class:`~physinv.operators.LinearOperator` or differentiable callable),
the encoder-decoder loss with a learned forward surrogate
(:class:`EncoderDecoder`, :class:`EncoderDecoderNet`), the two-step variant
(:class:`Misfit` on the surrogate, then :class:`MeasurementConsistency` of the
:func:`frozen` surrogate), the Hermite-type derivative term
(:class:`DerivativeMatch`, finite difference or exact), the smoothness terms
(:class:`Smoothness`, :class:`GradientPenalty`) and weighted sums
(:class:`Composite`). See :mod:`physinv.losses.terms` and ``docs/losses.md``.

Examples
--------
>>> import torch
>>> from physinv.losses import Composite, MeasurementConsistency, GradientPenalty
>>> loss = Composite({"data": MeasurementConsistency(torch.nn.Identity()), "smooth": GradientPenalty()},
...                  {"smooth": 0.1})
>>> sorted(loss(torch.zeros(1, 4, 4), torch.ones(1, 4, 4)))
['data', 'smooth']
"""

from .terms import (
    NORMS,
    Composite,
    DerivativeMatch,
    EncoderDecoder,
    EncoderDecoderNet,
    GradientPenalty,
    MeasurementConsistency,
    Misfit,
    Smoothness,
    frozen,
    norm,
    total,
)

__all__ = ["NORMS", "norm", "total", "Misfit", "MeasurementConsistency", "EncoderDecoder",
           "EncoderDecoderNet", "DerivativeMatch", "Smoothness", "GradientPenalty", "Composite", "frozen"]
