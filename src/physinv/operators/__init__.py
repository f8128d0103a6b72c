"""Linear operators with exact adjoints and factorizations.

See :class:`LinearOperator` for the interface every operator implements.
"""

from .base import (
    Adjoint,
    Composition,
    FactorizationError,
    LinearOperator,
    Scaled,
    Sum,
    config_type,
    from_config,
    power_iteration,
)
from .convolution import BOUNDARIES, Convolution, Pad
from .decimation import DECIMATION_MODES, Decimation
from .diagonal import Diagonal, Identity
from .factorization import (
    Factorization,
    FactorizedOperator,
    pseudo_inverse_filter,
    tikhonov_filter,
    tsvd_filter,
    wiener_filter,
)
from .fourier import FFT2, FourierFactorization
from .gradient import Gradient
from .matrix import Matrix, truncated_svd
from .tomography import Radon, radon_matrix_nbytes
from .wavelet import Wavelet2D

__all__ = [
    "LinearOperator", "Identity", "Adjoint", "Composition", "Sum", "Scaled", "FactorizationError",
    "from_config", "config_type", "power_iteration", "Convolution", "Pad", "BOUNDARIES", "Diagonal",
    "Factorization", "FactorizedOperator", "FourierFactorization", "pseudo_inverse_filter",
    "tikhonov_filter", "tsvd_filter", "wiener_filter", "truncated_svd", "FFT2", "Matrix",
    "Wavelet2D", "Gradient", "Radon", "radon_matrix_nbytes", "Decimation", "DECIMATION_MODES",
]
