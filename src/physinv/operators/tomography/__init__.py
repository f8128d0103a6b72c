"""Parallel-beam tomography: the :class:`Radon` operator and the parts it is built from.

=====================  ==============================================================
module                 job
=====================  ==============================================================
``geometry``           argument checks, the circle mask, storage order, matrix sizes
``kernel``             the exact line-integral weights of a bilinear pixel
``build``              the threaded builder of the CSR pair ``A``, ``A^T``
``cache``              in-process sharing (bounded keep-alive) and validated disk cache
``radon``              the :class:`Radon` operator (products, exports, SVD)
=====================  ==============================================================

Filtered back-projection lives with the solvers: :func:`physinv.solvers.fbp`.
"""

from .geometry import radon_matrix_nbytes
from .radon import MAX_BYTES, SVD_MAX_BYTES, Radon

__all__ = ["Radon", "radon_matrix_nbytes", "MAX_BYTES", "SVD_MAX_BYTES"]
