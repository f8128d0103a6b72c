"""Classical reconstruction, written only against the :class:`~physinv.operators.LinearOperator` interface.

Spectral filters through a factorization (:func:`tikhonov`, :func:`tsvd`,
:func:`wiener`, :func:`spectral_filter`), automatic parameter choice
(:func:`choose_lambda`: GCV, discrepancy principle, L-curve), and iterative
methods (:func:`landweber`, :func:`cgls`, :func:`ista`, :func:`fista`,
:func:`richardson_lucy`, :func:`tv`), plug-and-play with any denoiser
(:func:`pnp`, its exact data step :func:`quadratic_data_step`), with the one copy of each iteration
(:func:`landweber_step`, :func:`ista_step`) that the unrolled networks of
:mod:`physinv.nets` run too. Every solver returns a
:class:`SolverResult`; every solver is batched over the leading dimensions
of ``y`` (see :mod:`physinv.solvers.result` for the stopping rules).
A filter that amplifies beyond :data:`MAX_GAIN`, or a parameter the data
contradict, raises an :class:`IllConditionedWarning` instead of returning a
silently wrong result.
"""

from .fbp import fbp, filter_sinogram, ramp_filter
from .iterative import cgls, landweber, landweber_step, richardson_lucy
from .parameter import choose_lambda, estimate_noise, mad_noise_sigma
from .pnp import pnp, pnp_schedule, quadratic_data_step
from .result import MAX_GAIN, IllConditionedWarning, SolverResult
from .sparse import fista, ista, ista_step, soft_threshold
from .spectral import signal_power, spectral_filter, tikhonov, tsvd, wiener
from .tv import tv, tv_norm

__all__ = [
    "SolverResult", "IllConditionedWarning", "MAX_GAIN",
    "tikhonov", "tsvd", "wiener", "spectral_filter", "signal_power", "choose_lambda",
    "estimate_noise", "mad_noise_sigma",
    "landweber", "cgls", "richardson_lucy", "ista", "fista", "soft_threshold", "tv", "tv_norm",
    "landweber_step", "ista_step",
    "fbp", "ramp_filter", "filter_sinogram", "pnp", "pnp_schedule", "quadratic_data_step",
]
