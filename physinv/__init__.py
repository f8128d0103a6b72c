"""physinv: physics-constrained imaging in PyTorch.

Exact linear operators (convolution, tomography, matrices) with adjoints and
factorizations, classical solvers, and networks that keep the physics fixed.
"""

from . import data as data
from . import nets as nets
from . import operators, psf, solvers, testing
from . import train as train
from .operators import Convolution, LinearOperator, Matrix
from .tomo import fbp as fbp

__version__ = "0.1.0"

__all__ = ["operators", "psf", "solvers", "testing", "Convolution", "LinearOperator", "Matrix", "__version__"]
