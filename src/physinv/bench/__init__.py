"""Studies built on the library: reproducible experiments with their figures and tables.

- :mod:`physinv.bench.deconv`: which method wins on a deblurring problem
  (``physinv bench deconv``), on built-in test pictures, both boundaries,
  resumable, with tables, figures and provenance.
- :mod:`physinv.bench.methods`: the one registry of methods the studies
  compare (:func:`register`, :func:`available_methods`).
- :mod:`physinv.bench.splits`: the training and test pictures (disjoint).
- :mod:`physinv.bench._cells`, :mod:`physinv.bench.provenance`: the resumable
  cell store, shards and merge, and the provenance record every study writes.
"""

from . import _builtin, _learned, splits  # noqa: F401 - registers the built-in, then the learned methods
from .methods import (
    DATA_BOUNDARIES,
    Method,
    Problem,
    available_methods,
    get_method,
    register,
    select_methods,
    unregister,
)

__all__ = [
    "splits", "DATA_BOUNDARIES", "Method", "Problem", "available_methods", "get_method", "register",
    "select_methods", "unregister",
]
