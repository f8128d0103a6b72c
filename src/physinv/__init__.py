"""physinv: physics-constrained imaging in PyTorch.

Exact linear operators (convolution, tomography, matrices) with adjoints and
factorizations, classical solvers, and networks that keep the physics fixed.
"""

from . import assets, data, metrics, nets, operators, psf, solvers, testing, train
from ._validate import DEFAULT_MAX_ELEMENTS, check_size, limits, max_elements, set_max_elements
from .deblur import deblur
from .operators import Convolution, LinearOperator, Matrix, Radon
from .solvers import fbp

__version__ = "0.1.0"

__all__ = [
    "operators", "psf", "solvers", "nets", "data", "train", "metrics", "testing",
    "assets", "Convolution", "Radon", "LinearOperator", "Matrix", "fbp", "deblur", "__version__",
    "set_max_elements", "limits", "max_elements", "DEFAULT_MAX_ELEMENTS", "check_size",
]
