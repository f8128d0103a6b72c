"""physinv: physics-constrained imaging in PyTorch.

Exact linear operators (convolution, tomography, matrices) with adjoints and
factorizations, classical solvers, and networks that keep the physics fixed.
"""

from . import data, metrics, nets, operators, psf, solvers, testing, train
from .operators import Convolution, LinearOperator, Matrix, Radon
from .solvers import fbp

__version__ = "0.1.0"

__all__ = [
    "operators", "psf", "solvers", "nets", "data", "train", "metrics", "testing",
    "Convolution", "Radon", "LinearOperator", "Matrix", "fbp", "__version__",
]
