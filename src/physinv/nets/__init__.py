"""Physics-constrained networks: keep what the physics knows fixed, learn only what is unknown.

- :class:`SpectralFilterNet`: fixed ``U^H``, ``V`` of ``A = U diag(s) V^H`` and a
  learned diagonal (or a learned function of ``s`` and the noise level).
- :class:`UnrolledLandweber`, :class:`UnrolledISTA`: classical iterations with
  learned per-layer steps/thresholds; every layer runs the solvers' own step
  (:func:`physinv.solvers.landweber_step`, :func:`physinv.solvers.ista_step`),
  so they equal the solvers at initialization by construction.
- :class:`HybridNet`: a physics block followed by a residual CNN refiner.
- :mod:`physinv.nets.cnn`: ``UNet``, ``DnCNN``, ``MLP`` and the
  :class:`DataDriven` wrapper for purely data-driven baselines.
- Beyond the linear limit: :class:`Denoiser`, :class:`UNetDenoiser` (both
  :class:`ResidualDenoiser`) and :func:`pretrained_denoiser`
  (the denoiser that ships with physinv, a prior for
  :func:`physinv.solvers.pnp`), :class:`UnrolledHQS` (the exact data step and
  a learned prior in every layer) and :class:`LearnedPrimalDual`.
- :func:`save_net` / :func:`load_net`: one call each to keep a network with
  its operator's config and weights, and to rebuild it (digest-checked).
"""

from . import cnn
from ._common import PhysicsMismatchError
from ._record import SavableModule
from .cnn import MLP, DataDriven, DnCNN, UNet
from .denoiser import Denoiser, ResidualDenoiser, UNetDenoiser, pretrained_denoiser
from .hqs import UnrolledHQS
from .hybrid import HybridNet
from .io import NetFileError, load_net, save_net
from .primal_dual import LearnedPrimalDual
from .spectral import ParametricFilter, SpectralFilterNet
from .unrolled import LearnedTransform, UnrolledISTA, UnrolledLandweber

__all__ = [
    "SpectralFilterNet", "ParametricFilter", "UnrolledLandweber", "UnrolledISTA", "LearnedTransform",
    "HybridNet", "UNet", "DnCNN", "MLP", "DataDriven", "cnn", "Denoiser", "UNetDenoiser", "ResidualDenoiser",
    "pretrained_denoiser",
    "UnrolledHQS", "LearnedPrimalDual", "PhysicsMismatchError", "SavableModule", "save_net", "load_net",
    "NetFileError",
]
