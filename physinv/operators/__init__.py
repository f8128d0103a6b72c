"""Linear operators with exact adjoints and factorizations.

See :class:`LinearOperator` for the interface every operator implements.
"""

from ..spectrum import fourier_multiply
from .base import (
    Adjoint,
    Composition,
    FactorizationError,
    Identity,
    LinearOperator,
    Scaled,
    Sum,
    from_config,
    power_iteration,
)
from .convolution import BOUNDARIES, Convolution, Pad
from .factorization import (
    Diagonal,
    Factorization,
    pseudo_inverse_filter,
    tikhonov_filter,
    truncated_svd,
    tsvd_filter,
    wiener_filter,
)
from .fourier import FFT2, FourierFactorization
from .gradient import Gradient
from .matrix import Matrix
from .radon import Radon
from .wavelet import Wavelet2D

__all__ = [
    "LinearOperator", "Identity", "Adjoint", "Composition", "Sum", "Scaled", "FactorizationError",
    "from_config", "power_iteration", "Convolution", "Pad", "BOUNDARIES", "Diagonal",
    "Factorization", "FourierFactorization", "pseudo_inverse_filter", "tikhonov_filter",
    "tsvd_filter", "wiener_filter", "truncated_svd", "FFT2", "fourier_multiply", "Matrix",
    "Wavelet2D", "Gradient", "Radon",
]
