"""Caches of the Radon system matrix: in-process (shared, bounded keep-alive) and on disk (validated).

In-process, operators of equal geometry share one :class:`~.build.System`
(a weak dictionary), and recently used systems of up to :data:`KEEP_BYTES`
bytes in all stay alive after their last operator is gone.

On disk, a system is an ``.npz`` (no pickle) of ``A`` and ``A^T``, written
atomically and named by a hash of the geometry. A file is never trusted: the
zip container checks a CRC-32 of every array, and every field is checked on
load (:func:`check_csr`: geometry key and shapes, dtypes, index ranges,
row pointers, finite values) because the arrays go to sparse kernels that do
no bounds checks. An unreadable or invalid file is a cache miss: the system
is rebuilt and the file rewritten, with a :class:`UserWarning` naming it.
The same holds for the factorizations that :meth:`Radon.svd` caches
(:func:`load_npz` with their own checks).
"""

from __future__ import annotations

import os
import warnings
import weakref
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ..._io import atomic_write
from .build import System, build_system, system_from_arrays
from .geometry import Geometry

__all__ = ["KEEP_BYTES", "InvalidCacheFile", "get_system", "clear_memory_cache", "cache_path",
           "check_csr", "load_npz", "save_arrays"]

T = TypeVar("T")

#: Recently used systems up to this many bytes in all stay cached after their last operator is gone.
KEEP_BYTES = 512 * 2**20
#: Values are checked in pieces of this many entries (bounded temporary memory).
_CHUNK = 2**24

_SYSTEMS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_RECENT: OrderedDict = OrderedDict()

#: What reading a damaged ``.npz`` can raise (besides :class:`InvalidCacheFile`).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


class InvalidCacheFile(ValueError):
    """A cache file that was read but does not hold what it should."""


def clear_memory_cache() -> None:
    """Forget the in-process systems (operators alive keep theirs)."""
    _SYSTEMS.clear()
    _RECENT.clear()


def cache_path(cache_dir: Any, name: str) -> str:
    """``cache_dir / name`` with ``~`` expanded (``cache_dir`` a str or path).

    Examples
    --------
    >>> cache_path("~/x", "a.npz") == os.path.join(os.path.expanduser("~"), "x", "a.npz")
    True
    """
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a str or os.PathLike, got {type(cache_dir).__name__}")
    return os.path.join(os.path.expanduser(os.fspath(cache_dir)), name)


# ------------------------------------------------------------- validation
def _check_finite(name: str, a: np.ndarray) -> None:
    for i in range(0, a.size, _CHUNK):
        if not np.isfinite(a[i:i + _CHUNK]).all():
            raise InvalidCacheFile(f"{name} has non-finite values")


def check_csr(name: str, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
              shape: tuple[int, int]) -> None:
    """Raise :class:`InvalidCacheFile` unless the arrays form a valid float32 CSR matrix of ``shape``.

    Checks the dtypes (float32 values; int32 or int64 indices, the row
    pointers of the same dtype), ``len(indptr) == rows + 1``, that ``indptr``
    starts at 0, never decreases and ends at ``nnz``, that every column
    index is in ``[0, cols)`` and that every value is finite.

    Examples
    --------
    >>> ok = (np.ones(2, np.float32), np.array([0, 2], np.int32), np.array([0, 1, 2], np.int32))
    >>> check_csr("A", *ok, shape=(2, 3))
    >>> check_csr("A", ok[0], np.array([0, 3], np.int32), ok[2], shape=(2, 3))
    Traceback (most recent call last):
        ...
    physinv.operators.tomography.cache.InvalidCacheFile: A: column indices must lie in [0, 3), found [0, 3]
    """
    rows, cols = shape
    if data.dtype != np.float32 or data.ndim != 1:
        raise InvalidCacheFile(f"{name}: values must be a 1-D float32 array, got {data.dtype} of "
                               f"shape {data.shape}")
    if indices.dtype not in (np.int32, np.int64) or indices.ndim != 1:
        raise InvalidCacheFile(f"{name}: column indices must be a 1-D int32 or int64 array, got "
                               f"{indices.dtype} of shape {indices.shape}")
    if indptr.dtype != indices.dtype or indptr.ndim != 1:
        raise InvalidCacheFile(f"{name}: row pointers must be a 1-D {indices.dtype} array, got "
                               f"{indptr.dtype} of shape {indptr.shape}")
    nnz = data.size
    if indices.size != nnz:
        raise InvalidCacheFile(f"{name}: {indices.size} column indices for {nnz} values")
    if indptr.size != rows + 1:
        raise InvalidCacheFile(f"{name}: {indptr.size} row pointers for {rows} rows (expected {rows + 1})")
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise InvalidCacheFile(f"{name}: row pointers must run from 0 to nnz={nnz}, got "
                               f"{int(indptr[0])} to {int(indptr[-1])}")
    if rows and bool((np.diff(indptr) < 0).any()):
        raise InvalidCacheFile(f"{name}: row pointers decrease")
    if nnz:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= cols:
            raise InvalidCacheFile(f"{name}: column indices must lie in [0, {cols}), found [{lo}, {hi}]")
    _check_finite(name, data)


def load_npz(path: str, read: Callable[[Any], T]) -> T | None:
    """``read(z)`` of the ``.npz`` at ``path`` (``z`` reads arrays lazily, by name), or None.

    None for a missing file and, with a :class:`UserWarning` naming the file
    and the reason, for one that cannot be read or that ``read`` rejects by
    raising :class:`InvalidCacheFile` (the caller then recomputes and
    rewrites it).
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            return read(z)
    except (InvalidCacheFile, *_READ_ERRORS) as err:
        warnings.warn(f"Radon: ignoring the cache file {path}: {type(err).__name__}: {err}; "
                      "recomputing it and rewriting the file", UserWarning, stacklevel=2)
        return None


def save_arrays(path: str, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` to a temporary file in the same directory, then rename it into place."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


# -------------------------------------------------------- system matrices
def _system_reader(geom: Geometry) -> Callable[[Any], System]:
    m, n = geom.shape

    def read(z: Any) -> System:
        key, shape, angles = str(z["key"]), z["shape"], z["angles"]  # small: checked first
        if key != geom.key:
            raise InvalidCacheFile(f"it holds another geometry (key {key!r}, expected {geom.key!r})")
        if shape.shape != (2,) or tuple(int(s) for s in shape) != (m, n):
            raise InvalidCacheFile(f"it holds a matrix of shape {shape.tolist()}, expected [{m}, {n}]")
        if angles.dtype != np.float64 or angles.tobytes() != geom.angles.tobytes():
            raise InvalidCacheFile("its angles differ from the operator's")
        a = tuple(z[name] for name in ("data", "indices", "indptr"))
        check_csr("A", *a, shape=(m, n))
        at = tuple(z[name] for name in ("data_t", "indices_t", "indptr_t"))
        check_csr("A^T", *at, shape=(n, m))
        if a[0].size != at[0].size:
            raise InvalidCacheFile(f"A has {a[0].size} entries but A^T {at[0].size}")
        return system_from_arrays(geom, a, at)

    return read


def _save_system(path: str, geom: Geometry, system: System) -> None:
    # both matrices: the transpose costs more than reading them back
    A, AT = system.A, system.AT
    save_arrays(path, key=np.array(geom.key), shape=np.array(geom.shape), angles=geom.angles,
                data=A.values().numpy(), indices=A.col_indices().numpy(),
                indptr=A.crow_indices().numpy(), data_t=AT.values().numpy(),
                indices_t=AT.col_indices().numpy(), indptr_t=AT.crow_indices().numpy())


def _load_or_build(geom: Geometry, progress: bool, path: str | None) -> System:
    if path is not None:
        loaded = load_npz(path, _system_reader(geom))
        if loaded is not None:
            return loaded
    system = build_system(geom, progress)
    if path is not None:
        _save_system(path, geom, system)
    return system


def get_system(geom: Geometry, progress: bool = False, cache_dir: Any = None) -> System:
    """The shared system of ``geom``: from memory, else from ``cache_dir``, else built.

    With ``cache_dir`` the file exists afterwards (a system found in memory is
    written there if it is missing).

    Examples
    --------
    >>> g = Geometry.from_args(6, 2)
    >>> get_system(g) is get_system(Geometry.from_args(6, [0.0, 90.0]))
    True
    """
    key = geom.key
    path = None if cache_dir is None else cache_path(cache_dir, f"radon_system_{key}.npz")
    sysm = _SYSTEMS.get(key)
    if sysm is None:
        sysm = _load_or_build(geom, progress, path)
        _SYSTEMS[key] = sysm
    elif path is not None and not os.path.exists(path):
        _save_system(path, geom, sysm)
    if sysm.nbytes <= KEEP_BYTES:  # keep recent small systems alive for rebuilt operators
        _RECENT[key] = sysm
        _RECENT.move_to_end(key)
        while sum(v.nbytes for v in _RECENT.values()) > KEEP_BYTES:
            _RECENT.popitem(last=False)
    return sysm
