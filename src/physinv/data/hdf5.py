"""A versioned HDF5 format for ``(y, x)`` datasets: atomic, resumable, checksummed writes and lazy reads.

Schema version 2 (see ``docs/data.md``)::

    /x              (n, *in_shape)   float32|float64  chunk = 1 sample, compressed, fletcher32, fill NaN
    /y              (n, *out_shape)  float32|float64  chunk = 1 sample, compressed, fletcher32, fill NaN
    /noise_sigma    (n,)             float64          chunked, fletcher32, fill NaN
    /sample_digest  (n, 16)          uint8            BLAKE2b-128 of (index, y, x, sigma) per sample
    attrs: format="physinv-dataset", schema_version=2, n, n_written, complete,
           x_shape, y_shape, operator (JSON of A.to_config() or "null"),
           generator (JSON), fingerprint, seed, physinv_version, created, finished, metadata (JSON),
           operator_sha256, noise_sigma_sha256, sample_digest_sha256, attrs_sha256

Every value read back is checked: the root attributes (which hold the
operator description) against ``attrs_sha256``, the per-sample tables
against their SHA-256 digests, each sample against its digest.  The
operator description is validated (types, fields, depth, shapes, sizes)
before anything is built from it.  Version 1 files are still read, without
checksums.  Nothing is pickled: arrays are HDF5 datasets and descriptions
are JSON strings.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import numbers
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np
import torch

from .._io import fsync_dir

__all__ = ["SCHEMA_VERSION", "MAX_ELEMENTS", "MAX_OPERATOR_DEPTH", "DatasetFileError", "save_dataset",
           "H5Dataset", "check_operator_config"]

#: Version of the on-disk layout written by :func:`save_dataset`.
SCHEMA_VERSION = 2
#: Versions :class:`H5Dataset` reads (version 1 without checksums).
READ_VERSIONS = (1, 2)
FORMAT = "physinv-dataset"
#: Default bound on the elements of one sample, one chunk, one table and on
#: everything a stored operator description implies (arrays, shapes, matrix
#: entries); ``H5Dataset(..., max_elements=...)`` raises it for trusted files.
MAX_ELEMENTS = 2**26
#: Deepest nesting of operators (``Composition``, ``Sum``, ...) a stored description may have.
MAX_OPERATOR_DEPTH = 64
_MAX_DIMS = 32
_MAX_ATTR_ELEMENTS = 2**20
_TABLE_CHUNK = 4096
_DIGEST_SIZE = 16
_DIGEST_PERSON = b"physinv-sample"
_REQUIRED_ATTRS = ("format", "schema_version", "n", "complete", "x_shape", "y_shape", "operator")
_DIGEST_ATTRS = ("operator_sha256", "noise_sigma_sha256", "sample_digest_sha256", "attrs_sha256")
_DATASETS = {1: ("x", "y", "noise_sigma"), 2: ("x", "y", "noise_sigma", "sample_digest")}
# HDF5 filters a dataset file may use (anything else, e.g. a plugin, is refused before reading).
_F_DEFLATE, _F_SHUFFLE, _F_FLETCHER32, _F_LZF = 1, 2, 3, 32000
_KNOWN_FILTERS = {_F_DEFLATE: "deflate", _F_SHUFFLE: "shuffle", _F_FLETCHER32: "fletcher32", _F_LZF: "lzf"}


class DatasetFileError(ValueError):
    """A dataset file is unreadable, corrupt, incomplete or does not follow the schema.

    The message starts with the file's path and says what was being read.
    """


def _version() -> str:
    from .. import __version__

    return __version__


def partial_path(path: str | os.PathLike) -> str:
    """The temporary file :func:`save_dataset` writes before renaming it to ``path``."""
    path = os.path.abspath(os.fspath(path))
    d, name = os.path.split(path)
    return os.path.join(d, f".{name}.partial")


def _as_numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def _le(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous little-endian array (its bytes are what the digests cover)."""
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


# ------------------------------------------------------------------ digests
def _sample_digest(i: int, y: np.ndarray, x: np.ndarray, sigma: np.ndarray) -> bytes:
    """BLAKE2b-128 of sample ``i``: its index, ``y``, ``x`` and its noise level (float64)."""
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_DIGEST_PERSON)
    h.update(struct.pack("<q", int(i)))
    h.update(_le(y).data)
    h.update(_le(x).data)
    h.update(_le(np.asarray(sigma, dtype=np.float64).reshape(1)).data)
    return h.digest()


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(_le(a).data).hexdigest()


def _canonical(v: Any) -> Any:
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, np.ndarray):
        return ["array", v.dtype.str, list(v.shape), v.tolist()]
    if isinstance(v, np.generic):
        return ["scalar", v.dtype.str, v.item()]
    return [type(v).__name__, v]


def _attrs_sha256(raw: dict[str, Any]) -> str:
    """SHA-256 of every root attribute except ``attrs_sha256`` itself, in a canonical JSON form."""
    items = {k: _canonical(v) for k, v in raw.items() if k != "attrs_sha256"}
    text = json.dumps(items, sort_keys=True, default=lambda o: o.hex() if isinstance(o, bytes) else repr(o))
    return hashlib.sha256(text.encode()).hexdigest()


def _text_sha256(s: Any) -> str:
    return hashlib.sha256(str(s).encode()).hexdigest()


def _seal(f: h5py.File) -> None:
    """Write the digests of the per-sample tables, the operator description and the root attributes.

    Called once every sample is in; the attribute digest is written last.
    """
    a = f.attrs
    a["operator_sha256"] = _text_sha256(_decode(a["operator"]))
    a["noise_sigma_sha256"] = _array_sha256(np.asarray(f["noise_sigma"][:], dtype=np.float64))
    a["sample_digest_sha256"] = _array_sha256(np.asarray(f["sample_digest"][:], dtype=np.uint8))
    a["attrs_sha256"] = _attrs_sha256(dict(a.items()))


# ------------------------------------------------------------------ writing
class _ArraySource:
    """``(y, x)`` arrays in memory, presented like a dataset."""

    def __init__(self, y, x, sigma):
        self.y, self.x = _as_numpy(y), _as_numpy(x)
        if len(self.y) != len(self.x):
            raise ValueError(f"data: y has {len(self.y)} samples but x has {len(self.x)}")
        sig = np.broadcast_to(np.asarray(0.0 if sigma is None else sigma, dtype=np.float64), (len(self.x),))
        self.sigma_arr = sig

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.y[i], self.x[i]

    def sigma(self, i):
        return float(self.sigma_arr[i])


def _sample_sigma(data: Any, i: int, item: tuple, noise_sigma: Any) -> float:
    if len(item) >= 3:
        return float(_as_numpy(item[2]))
    if hasattr(data, "sigma") and callable(data.sigma):
        return float(data.sigma(i))
    if noise_sigma is None:
        return float("nan")
    arr = np.asarray(noise_sigma, dtype=np.float64)
    return float(arr if arr.ndim == 0 else arr[i])


def _describe(data: Any) -> dict[str, Any]:
    if hasattr(data, "describe") and callable(data.describe):
        return data.describe()
    if isinstance(data, _ArraySource):
        digest = hashlib.sha256(np.ascontiguousarray(data.x).tobytes()
                                + np.ascontiguousarray(data.y).tobytes()).hexdigest()
        return {"generator": "arrays", "sha256": digest}
    return {"generator": f"{type(data).__module__}.{type(data).__qualname__}", "n": len(data)}


def save_dataset(path: str | os.PathLike, data: Any, operator: Any = None, *, noise_sigma: Any = None,
                 metadata: dict[str, Any] | None = None, compression: str | None = "gzip",
                 chunk_samples: int = 64, overwrite: bool = False, resume: bool = True,
                 num_workers: int = 0, progress: bool = False) -> str:
    """Write a ``(y, x)`` dataset to an HDF5 file, atomically, resumably and with checksums.

    The file is written to a temporary sibling ``.<name>.partial`` in blocks
    of ``chunk_samples`` samples; after each block the number of samples
    written is recorded in the file and flushed.  When every sample is in, the
    digests are written (see :class:`H5Dataset` for what they cover), the
    file is marked complete, synced to disk and renamed to ``path`` in one
    step, so ``path`` is either absent or complete.  If the process dies,
    calling ``save_dataset`` again with the same data continues from the last
    recorded block (``resume=True``) after checking that the generator is the
    same (a fingerprint of its description and a re-generated sample);
    otherwise, or if the partial file is damaged, it starts over.

    Parameters
    ----------
    path : str or path-like
        Destination ``.h5`` file.
    data : dataset or (y, x)
        Anything with ``len`` and ``data[i] -> (y, x)`` or ``(y, x, sigma)``,
        e.g. :class:`~physinv.data.InverseProblemDataset` (its operator, seed
        and noise settings are recorded) or an :class:`H5Dataset` (to re-save
        a file in the current schema), or a pair of arrays ``(y, x)`` with
        the samples along the first axis.
    operator : LinearOperator, optional
        Forward model stored as JSON (default: ``data.A`` when present).
    noise_sigma : float or array, optional
        Noise level(s) when ``data`` does not provide them (NaN if unknown).
    metadata : dict, optional
        Extra JSON-able information stored in the ``metadata`` attribute.
    compression : {"gzip", "lzf", None}
        Per-sample chunk compression (the Fletcher-32 checksum filter is
        applied in every case).
    chunk_samples : int
        Samples generated and flushed per block (the resume granularity).
    overwrite : bool
        Replace an existing ``path``.
    resume : bool
        Continue an interrupted write of the same data.
    num_workers : int
        DataLoader workers generating samples in parallel.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    str
        The absolute path written.

    Examples
    --------
    >>> import os, tempfile
    >>> from physinv.operators import Identity
    >>> from physinv.data import InverseProblemDataset, Phantoms, H5Dataset
    >>> ds = InverseProblemDataset(Identity((8, 8)), Phantoms(5, 8), noise_sigma=0.05, seed=0)
    >>> f = save_dataset(os.path.join(tempfile.mkdtemp(), "d.h5"), ds)
    >>> h5 = H5Dataset(f)
    >>> len(h5), bool((h5[3][0] == ds[3][0]).all())
    (5, True)
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"save_dataset: {path!r} exists; pass overwrite=True to replace it")
    if compression not in ("gzip", "lzf", None):
        raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
    if not isinstance(chunk_samples, int) or chunk_samples < 1:
        raise ValueError(f"chunk_samples must be a positive int, got {chunk_samples!r}")
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(a, (np.ndarray, torch.Tensor))
                                                          for a in data):
        data = _ArraySource(data[0], data[1], noise_sigma)
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"data must be a dataset or a (y, x) pair of arrays, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise ValueError("data is empty")
    if operator is None:
        operator = getattr(data, "A", None)
    op_json = "null"
    if operator is not None:
        try:
            op_json = json.dumps(operator.to_config())
        except TypeError as e:
            warnings.warn(f"save_dataset: the operator cannot be described as JSON ({e}); "
                          "storing operator=null", stacklevel=2)

    first = data[0]
    y0, x0 = _as_numpy(first[0]), _as_numpy(first[1])
    if x0.dtype not in (np.float32, np.float64) or y0.dtype != x0.dtype:
        raise TypeError(f"data: x and y must both be float32 or float64, got x {x0.dtype}, y {y0.dtype}")
    generator = _describe(data)
    seed = generator.get("seed") if isinstance(generator, dict) else None
    gen_json = json.dumps(generator, sort_keys=True, default=str)
    fingerprint = hashlib.sha256(json.dumps(
        [gen_json, op_json, n, list(x0.shape), list(y0.shape), str(x0.dtype), compression, chunk_samples]
    ).encode()).hexdigest()

    tmp = partial_path(path)
    start = 0
    f = None
    if resume and os.path.exists(tmp):
        f, start = _reopen_partial(tmp, fingerprint, data)
    if f is None:
        if os.path.exists(tmp):
            os.remove(tmp)
        f = h5py.File(tmp, "w", libver=("v108", "v108"))
        comp: dict[str, Any] = {"fletcher32": True}
        if compression is not None:
            comp.update(compression=compression, shuffle=True)
        if compression == "gzip":
            comp["compression_opts"] = 4
        dt = x0.dtype.newbyteorder("<")
        f.create_dataset("x", shape=(n, *x0.shape), dtype=dt, chunks=(1, *x0.shape), fillvalue=np.nan,
                         **comp)
        f.create_dataset("y", shape=(n, *y0.shape), dtype=dt, chunks=(1, *y0.shape), fillvalue=np.nan,
                         **comp)
        rows = min(n, _TABLE_CHUNK)
        f.create_dataset("noise_sigma", shape=(n,), dtype="<f8", chunks=(rows,), fillvalue=np.nan,
                         fletcher32=True)
        f.create_dataset("sample_digest", shape=(n, _DIGEST_SIZE), dtype=np.uint8,
                         chunks=(rows, _DIGEST_SIZE), fillvalue=0, fletcher32=True)
        a = f.attrs
        a["format"] = FORMAT
        a["schema_version"] = SCHEMA_VERSION
        a["n"] = n
        a["n_written"] = 0
        a["complete"] = False
        a["x_shape"] = np.asarray(x0.shape, dtype=np.int64)
        a["y_shape"] = np.asarray(y0.shape, dtype=np.int64)
        a["operator"] = op_json
        a["generator"] = gen_json
        a["fingerprint"] = fingerprint
        a["seed"] = -1 if seed is None else int(seed)
        a["physinv_version"] = _version()
        a["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        a["metadata"] = json.dumps(metadata or {}, default=str)
        f.flush()
    try:
        _write_blocks(f, data, start, n, chunk_samples, num_workers, progress, noise_sigma, tmp)
        f.attrs["complete"] = True
        f.attrs["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _seal(f)
        f.flush()
    finally:
        f.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))
    return path


def _reopen_partial(tmp: str, fingerprint: str, data: Any) -> tuple[h5py.File | None, int]:
    try:
        f = h5py.File(tmp, "r+")
    except Exception as e:  # noqa: BLE001 - a damaged partial file is discarded
        warnings.warn(f"save_dataset: the partial file {tmp!r} is damaged ({e}); starting over", stacklevel=3)
        return None, 0
    try:
        if f.attrs.get("fingerprint") != fingerprint or f.attrs.get("schema_version") != SCHEMA_VERSION:
            warnings.warn(f"save_dataset: the partial file {tmp!r} was written from other data or "
                          "settings; starting over", stacklevel=3)
            f.close()
            return None, 0
        k = int(f.attrs["n_written"])
        if not 0 <= k <= len(data):
            raise ValueError(f"n_written={k} is out of range")
        if k > 0:
            item = data[k - 1]
            y, x = _as_numpy(item[0]), _as_numpy(item[1])
            sig = np.asarray(f["noise_sigma"][k - 1], dtype=np.float64)
            same = (np.array_equal(f["y"][k - 1], y) and np.array_equal(f["x"][k - 1], x)
                    and _sample_digest(k - 1, y.astype(f["y"].dtype), x.astype(f["x"].dtype), sig)
                    == bytes(f["sample_digest"][k - 1]))
            if not same:
                warnings.warn(f"save_dataset: sample {k - 1} in {tmp!r} differs from the data; "
                              "starting over", stacklevel=3)
                f.close()
                return None, 0
        return f, k
    except Exception as e:  # noqa: BLE001
        f.close()
        warnings.warn(f"save_dataset: cannot resume from {tmp!r} ({e}); starting over", stacklevel=3)
        return None, 0


def _write_blocks(f, data, start, n, chunk, num_workers, progress, noise_sigma, tmp):
    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=start, desc=f"writing {os.path.basename(tmp)}", disable=not progress,
               unit="sample")
    if num_workers > 0:
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, range(start, n)), batch_size=chunk, shuffle=False,
            num_workers=num_workers, collate_fn=list)
        blocks = iter(loader)
    else:
        blocks = ([data[i] for i in range(s, min(s + chunk, n))] for s in range(start, n, chunk))
    pos = start
    for items in blocks:
        m = len(items)
        # cast here, not in HDF5, so the digests cover exactly the stored values
        ys = np.stack([_as_numpy(it[0]) for it in items]).astype(f["y"].dtype, copy=False)
        xs = np.stack([_as_numpy(it[1]) for it in items]).astype(f["x"].dtype, copy=False)
        sig = np.asarray([_sample_sigma(data, pos + j, it, noise_sigma) for j, it in enumerate(items)],
                         dtype=np.float64)
        dig = np.frombuffer(b"".join(_sample_digest(pos + j, ys[j], xs[j], sig[j]) for j in range(m)),
                            dtype=np.uint8).reshape(m, _DIGEST_SIZE)
        f["y"][pos:pos + m] = ys
        f["x"][pos:pos + m] = xs
        f["noise_sigma"][pos:pos + m] = sig
        f["sample_digest"][pos:pos + m] = dig
        pos += m
        f.attrs["n_written"] = pos
        f.flush()
        bar.update(m)
    bar.close()


def _decode(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


# ------------------------------------------- the stored operator description
class _Refused(Exception):
    """An operator description that must not be built (``field`` names where)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class _OperatorCheck:
    """Walk a stored operator description and infer its shapes and size without building anything.

    ``walk`` returns ``(in_shape, out_shape)``; ``self.elements`` adds up the
    elements every node implies (its shapes, its arrays, its matrix entries).
    """

    # type -> (required fields, optional fields): exactly what ``to_config`` writes
    FIELDS: dict[str, tuple[frozenset, frozenset]] = {
        "Identity": (frozenset({"in_shape"}), frozenset()),
        "FFT2": (frozenset({"in_shape"}), frozenset()),
        "Gradient": (frozenset({"in_shape"}), frozenset({"boundary"})),
        "Wavelet2D": (frozenset({"in_shape"}), frozenset({"wavelet", "levels"})),
        "Diagonal": (frozenset({"d"}), frozenset({"complex"})),
        "Matrix": (frozenset({"M", "in_shape", "out_shape"}), frozenset({"complex", "sparse"})),
        "Convolution": (frozenset({"psf", "in_shape"}), frozenset({"boundary"})),
        "Pad": (frozenset({"in_shape", "pad"}), frozenset({"mode", "out_shape"})),
        "Radon": (frozenset({"in_shape", "angles"}), frozenset({"n_detectors", "circle"})),
        "FactorizedOperator": (frozenset({"U", "s", "V"}), frozenset({"real"})),
        "Adjoint": (frozenset({"op"}), frozenset()),
        "Composition": (frozenset({"A", "B"}), frozenset()),
        "Sum": (frozenset({"A", "B"}), frozenset()),
        "Scaled": (frozenset({"op", "c"}), frozenset()),
    }
    # the name an earlier physinv wrote for a field (read as the current one)
    ALIASES: dict[str, tuple[str, str]] = {
        "Identity": ("shape", "in_shape"), "FFT2": ("shape", "in_shape"), "Gradient": ("shape", "in_shape"),
        "Wavelet2D": ("shape", "in_shape"), "Radon": ("image_size", "in_shape"),
    }

    def __init__(self, max_elements: int, max_depth: int = MAX_OPERATOR_DEPTH) -> None:
        self.max_elements, self.max_depth = max_elements, max_depth
        self.elements = 0

    # ------------------------------------------------------------ helpers
    def _count(self, k: int | float, field: str, what: str) -> None:
        if k > self.max_elements:
            raise _Refused(field, f"{what} implies {int(k):,} elements, more than the limit "
                                  f"max_elements={self.max_elements:,}")
        self.elements += int(k)
        if self.elements > self.max_elements:
            raise _Refused(field, f"the description implies more than max_elements="
                                  f"{self.max_elements:,} elements in all")

    def _shape(self, v: Any, field: str, ndim: int | None = None) -> tuple[int, ...]:
        if _is_int(v):
            v = [v]
        if not isinstance(v, list) or not 1 <= len(v) <= _MAX_DIMS:
            raise _Refused(field, f"expected a shape (a list of 1 to {_MAX_DIMS} positive ints), "
                                  f"got {v!r:.80}")
        if not all(_is_int(s) and s >= 1 for s in v):
            raise _Refused(field, f"expected positive ints, got {v!r:.80}")
        if ndim is not None and len(v) != ndim:
            raise _Refused(field, f"expected {ndim} dimensions, got {len(v)}: {v!r:.80}")
        shape = tuple(int(s) for s in v)
        self._count(math.prod(shape), field, f"shape {shape}")
        return shape

    def _dims(self, v: Any, field: str) -> tuple[int, ...]:
        """Dimensions of a nested list of numbers (first elements followed down; ragged lists fail
        when built)."""
        dims = []
        while isinstance(v, list):
            if len(dims) >= _MAX_DIMS:
                raise _Refused(field, f"arrays have at most {_MAX_DIMS} dimensions")
            if not v:
                raise _Refused(field, "an empty array")
            dims.append(len(v))
            v = v[0]
        if not _is_num(v):
            raise _Refused(field, f"expected an array of numbers, found {type(v).__name__}")
        self._count(math.prod(dims), field, f"an array of shape {tuple(dims)}")
        return tuple(dims)

    @staticmethod
    def _flag(node: dict, key: str, field: str) -> bool:
        v = node.get(key, False)
        if not isinstance(v, bool):
            raise _Refused(f"{field}.{key}", f"expected true or false, got {v!r:.40}")
        return v

    # --------------------------------------------------------------- walk
    def walk(self, node: Any, field: str = "operator", depth: int = 1) -> tuple[tuple, tuple]:
        if depth > self.max_depth:
            raise _Refused(field, f"operators nested deeper than {self.max_depth} levels")
        if not isinstance(node, dict):
            raise _Refused(field, f"expected an operator description (an object), got {type(node).__name__}")
        kind = node.get("type")
        if not isinstance(kind, str) or kind not in self.FIELDS:
            raise _Refused(f"{field}.type", f"unknown operator type {kind!r:.60}; only physinv's own "
                                            f"operators are rebuilt from a file: {sorted(self.FIELDS)}")
        required, optional = self.FIELDS[kind]
        if kind in self.ALIASES:
            old, new = self.ALIASES[kind]
            if old in node and new in node:
                raise _Refused(field, f"{kind} has both {old!r} and {new!r} (one name for one field)")
            if old in node:
                node = {(new if k == old else k): v for k, v in node.items()}
        keys = set(node) - {"type"}
        if required - keys:
            raise _Refused(field, f"{kind} lacks the field(s) {sorted(required - keys)}")
        if keys - required - optional:
            raise _Refused(field, f"{kind} has unexpected field(s) {sorted(keys - required - optional)}")
        return getattr(self, f"_{kind}")(node, field, depth)

    def _Identity(self, node, field, depth):
        s = self._shape(node["in_shape"], f"{field}.in_shape")
        return s, s

    def _FFT2(self, node, field, depth):
        s = self._shape(node["in_shape"], f"{field}.in_shape", 2)
        return s, s

    def _Gradient(self, node, field, depth):
        s = self._shape(node["in_shape"], f"{field}.in_shape", 2)
        out = (2, *s)
        self._count(math.prod(out), f"{field}.shape", f"the output shape {out}")
        return s, out

    def _Wavelet2D(self, node, field, depth):
        s = self._shape(node["in_shape"], f"{field}.in_shape", 2)
        lv = node.get("levels")
        if lv is not None and not (_is_int(lv) and 1 <= lv <= 62):
            raise _Refused(f"{field}.levels", f"expected an int from 1 to 62 or null, got {lv!r:.40}")
        return s, s

    def _Diagonal(self, node, field, depth):
        dims = self._dims(node["d"], f"{field}.d")
        if self._flag(node, "complex", field):
            if len(dims) < 2 or dims[-1] != 2:
                raise _Refused(f"{field}.d", f"a complex diagonal needs a last axis of 2 (re, im), "
                                             f"got shape {dims}")
            dims = dims[:-1]
        return dims, dims

    def _Matrix(self, node, field, depth):
        dims = self._dims(node["M"], f"{field}.M")
        cplx = self._flag(node, "complex", field)
        want = 3 if cplx else 2
        if len(dims) != want or (cplx and dims[-1] != 2):
            raise _Refused(f"{field}.M", f"expected a {'complex (m, n, 2)' if cplx else '(m, n)'} "
                                         f"matrix, got shape {dims}")
        m, n = dims[:2]
        if self._flag(node, "sparse", field):
            self._count(2 * m * n, f"{field}.M", "the sparse copies of the matrix")
        ins = self._shape(node["in_shape"], f"{field}.in_shape")
        outs = self._shape(node["out_shape"], f"{field}.out_shape")
        if math.prod(ins) != n:
            raise _Refused(f"{field}.in_shape", f"{ins} has {math.prod(ins)} entries but M has {n} columns")
        if math.prod(outs) != m:
            raise _Refused(f"{field}.out_shape", f"{outs} has {math.prod(outs)} entries but M has {m} rows")
        return ins, outs

    def _Convolution(self, node, field, depth):
        dims = self._dims(node["psf"], f"{field}.psf")
        if len(dims) != 2:
            raise _Refused(f"{field}.psf", f"expected a 2-D PSF, got shape {dims}")
        s = self._shape(node["in_shape"], f"{field}.in_shape", 2)
        if dims[0] > s[0] or dims[1] > s[1]:
            raise _Refused(f"{field}.psf", f"a PSF of shape {dims} is larger than the image {s}")
        # the padded grid (non-circular boundaries) and the transfer function on it
        grid = (s[0] + dims[0], s[1] + dims[1])
        self._count(2 * math.prod(grid), f"{field}.in_shape", f"the convolution grid {grid}")
        return s, s

    def _Pad(self, node, field, depth):
        s = self._shape(node["in_shape"], f"{field}.in_shape", 2)
        pad = node["pad"]
        ok = (isinstance(pad, list) and len(pad) == 2
              and all(isinstance(p, list) and len(p) == 2 and all(_is_int(q) and 0 <= q <= self.max_elements
                                                                  for q in p) for p in pad))
        if not ok:
            raise _Refused(f"{field}.pad", f"expected [[top, bottom], [left, right]] of non-negative ints, "
                                           f"got {pad!r:.80}")
        full = (s[0] + pad[0][0] + pad[0][1], s[1] + pad[1][0] + pad[1][1])
        self._count(math.prod(full), f"{field}.pad", f"the padded shape {full}")
        out = full
        if node.get("out_shape") is not None:
            out = self._shape(node["out_shape"], f"{field}.out_shape", 2)
            if out[0] < full[0] or out[1] < full[1]:
                raise _Refused(f"{field}.out_shape", f"{out} is smaller than the padded shape {full}")
        return s, out

    def _Radon(self, node, field, depth):
        size = node["in_shape"]
        h, w = self._shape([size, size] if _is_int(size) else size, f"{field}.in_shape", 2)
        ang = node["angles"]
        if _is_int(ang):
            if not 1 <= ang <= self.max_elements:
                raise _Refused(f"{field}.angles", f"expected a number of angles from 1 to "
                                                  f"{self.max_elements:,}, got {ang}")
            n_ang = int(ang)
        elif isinstance(ang, list) and ang and all(_is_num(a) for a in ang):
            n_ang = len(ang)
        else:
            raise _Refused(f"{field}.angles", f"expected an int or a non-empty list of numbers (degrees), "
                                              f"got {ang!r:.60}")
        circle = node.get("circle", True)
        if not isinstance(circle, bool):
            raise _Refused(f"{field}.circle", f"expected true or false, got {circle!r:.40}")
        nd = node.get("n_detectors")
        if nd is None:
            nd = h if circle else math.ceil(math.sqrt(2.0) * max(h, w))
        elif not (_is_int(nd) and nd >= 1):
            raise _Refused(f"{field}.n_detectors", f"expected a positive int or null, got {nd!r:.40}")
        out = (n_ang, int(nd))
        self._count(math.prod(out), f"{field}.n_detectors", f"the sinogram shape {out}")
        # a pixel touches at most 2 (|cos| + |sin|) <= 2 sqrt(2) detector bins per angle
        pixels = math.pi / 4 * h * w + 2 * (h + w) if circle else h * w
        self._count(2 * math.sqrt(2.0) * pixels * n_ang, f"{field}.angles",
                    f"a {h}x{w} Radon matrix with {n_ang} angles")
        return (h, w), out

    def _FactorizedOperator(self, node, field, depth):
        dims = self._dims(node["s"], f"{field}.s")
        u_in, u_out = self.walk(node["U"], f"{field}.U", depth + 1)
        v_in, v_out = self.walk(node["V"], f"{field}.V", depth + 1)
        if u_in != dims or v_in != dims:
            raise _Refused(f"{field}.s", f"U and V take {u_in} and {v_in} but s has shape {dims}")
        if node.get("real") is not None and not isinstance(node["real"], bool):
            raise _Refused(f"{field}.real", f"expected true, false or null, got {node['real']!r:.40}")
        return v_out, u_out

    def _Adjoint(self, node, field, depth):
        ins, outs = self.walk(node["op"], f"{field}.op", depth + 1)
        return outs, ins

    def _Composition(self, node, field, depth):
        a_in, a_out = self.walk(node["A"], f"{field}.A", depth + 1)
        b_in, b_out = self.walk(node["B"], f"{field}.B", depth + 1)
        if a_in != b_out:
            raise _Refused(field, f"A @ B: A takes {a_in} but B gives {b_out}")
        return b_in, a_out

    def _Sum(self, node, field, depth):
        a = self.walk(node["A"], f"{field}.A", depth + 1)
        b = self.walk(node["B"], f"{field}.B", depth + 1)
        if a != b:
            raise _Refused(field, f"A + B: A maps {a[0]} -> {a[1]} but B maps {b[0]} -> {b[1]}")
        return a

    def _Scaled(self, node, field, depth):
        c = node["c"]
        ok = (_is_num(c) and math.isfinite(c)) or (
            isinstance(c, list) and len(c) == 2 and all(_is_num(t) and math.isfinite(t) for t in c))
        if not ok:
            raise _Refused(f"{field}.c", f"expected a finite number or [re, im], got {c!r:.60}")
        return self.walk(node["op"], f"{field}.op", depth + 1)


def check_operator_config(config: Any, x_shape: tuple[int, ...], y_shape: tuple[int, ...],
                          max_elements: int = MAX_ELEMENTS) -> int:
    """Validate a stored operator description before anything is built from it.

    Checks the nesting depth (at most :data:`MAX_OPERATOR_DEPTH`), that every
    operator is one of physinv's own with exactly the fields its
    ``to_config`` writes, that every shape and array in it is well formed and
    the shapes chain (``A @ B``, ``A + B``), that it maps ``x_shape`` to
    ``y_shape``, and that everything it implies (shapes, arrays, matrix
    entries, convolution grids) adds up to at most ``max_elements`` elements.

    Parameters
    ----------
    config : dict
        The JSON-decoded description (``A.to_config()``).
    x_shape, y_shape : tuple of int
        The stored sample shapes the operator must map between.
    max_elements : int
        Bound on the elements the description may imply.

    Returns
    -------
    int
        The number of elements the description implies.

    Raises
    ------
    ValueError
        Naming the offending field, e.g. ``operator.A.psf``.

    Examples
    --------
    >>> check_operator_config({"type": "Identity", "in_shape": [4, 4]}, (4, 4), (4, 4))
    16
    >>> try:
    ...     check_operator_config({"type": "Identity", "in_shape": [60000, 60000]}, (4, 4), (4, 4))
    ... except ValueError as e:
    ...     print(str(e).split(" more")[0])
    operator.in_shape: shape (60000, 60000) implies 3,600,000,000 elements,
    """
    check = _OperatorCheck(max_elements)
    try:
        ins, outs = check.walk(config)
    except _Refused as e:
        raise ValueError(str(e)) from None
    if ins != tuple(x_shape) or outs != tuple(y_shape):
        raise ValueError(f"operator: the stored operator maps {ins} -> {outs} but the samples have "
                         f"x {tuple(x_shape)}, y {tuple(y_shape)}")
    return check.elements


# ------------------------------------------------------------------ reading
class H5Dataset(torch.utils.data.Dataset):
    """Read a file written by :func:`save_dataset` lazily, one sample at a time, checking every value.

    When the object is made the file is validated: schema version, required
    datasets and attributes, agreeing shapes and sample counts, the number of
    chunks actually stored, bounded sizes (``max_elements``), and for schema
    version 2 the SHA-256 digests of the root attributes (which hold the
    operator, generator and metadata descriptions) and of the per-sample
    tables (noise levels, sample digests).  Every sample read is checked
    against its own digest, so a flipped byte, a lost chunk or a misdirected
    chunk index entry raises instead of returning wrong values.  Every
    problem raises :class:`DatasetFileError` naming the file and what was
    being read.  Samples are read through a handle opened on first access in
    each process (the tables are reloaded and checked there too), so the
    dataset can be handed to a ``DataLoader`` with several workers (fork or
    spawn); the handle itself is never pickled.

    Schema version 1 files (no checksums) are still read; re-save them with
    ``save_dataset(new_path, old, operator=old.operator)`` to get checksums.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    return_sigma : bool
        Items are ``(y, x, sigma)`` instead of ``(y, x)``.
    dtype : torch.dtype, optional
        Convert samples to this dtype (default: as stored).
    max_elements : int
        Largest number of elements one sample, one chunk, a per-sample table
        or the stored operator description (everything it implies) may have;
        raise it to read a trusted file with larger ones.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from physinv.data import save_dataset
    >>> x = np.random.default_rng(0).random((4, 6, 6)).astype(np.float32)
    >>> f = save_dataset(os.path.join(tempfile.mkdtemp(), "a.h5"), (2 * x, x), noise_sigma=0.0)
    >>> ds = H5Dataset(f)
    >>> y0, x0 = ds[0]
    >>> len(ds), tuple(x0.shape), bool((y0 == 2 * x0).all())
    (4, (6, 6), True)
    """

    def __init__(self, path: str | os.PathLike, return_sigma: bool = False,
                 dtype: torch.dtype | None = None, max_elements: int = MAX_ELEMENTS) -> None:
        if not _is_int(max_elements) or max_elements < 1:
            raise ValueError(f"max_elements must be a positive int, got {max_elements!r}")
        self.path = os.path.abspath(os.fspath(path))
        self.return_sigma, self.dtype = bool(return_sigma), dtype
        self.max_elements = int(max_elements)
        self._h: h5py.File | None = None
        self._pid: int | None = None
        self._tables: tuple[np.ndarray, np.ndarray | None] | None = None
        self._readers: dict[str, Any] = {}
        self._op = None
        self.attrs, self.n, self.x_shape, self.y_shape = self._validate()

    # ------------------------------------------------------------ validation
    def _error(self, problem: str) -> DatasetFileError:
        return DatasetFileError(f"{self.path}: {problem}")

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn any error h5py (or a corrupt value) raises while reading ``what`` into a DatasetFileError."""
        try:
            yield
        except DatasetFileError:
            raise
        except Exception as e:  # noqa: BLE001 - h5py raises OSError, RuntimeError, KeyError, ValueError...
            raise self._error(f"cannot read {what} (corrupt file?): {type(e).__name__}: {e}") from e

    def _read_attrs(self, f: h5py.File) -> dict[str, Any]:
        size = os.path.getsize(self.path)
        raw = {}
        for name in list(f.attrs):
            with self._reading(f"attribute {name!r}"):
                aid = f.attrs.get_id(name)
                shape = aid.shape or ()
                if math.prod(shape) > _MAX_ATTR_ELEMENTS or aid.get_storage_size() > size:
                    raise self._error(f"attribute {name!r} claims {math.prod(shape):,} elements "
                                      f"({aid.get_storage_size():,} bytes) in a {size:,}-byte file")
                raw[name] = f.attrs[name]
        return raw

    def _validate(self):
        if not os.path.exists(self.path):
            if os.path.exists(partial_path(self.path)):
                raise FileNotFoundError(f"{self.path}: no such file, but an unfinished write "
                                        f"{partial_path(self.path)!r} exists; run save_dataset again to "
                                        "finish it")
            raise FileNotFoundError(f"{self.path}: no such file")
        try:
            f = h5py.File(self.path, "r")
        except Exception as e:  # noqa: BLE001
            raise self._error(f"not a readable HDF5 file (truncated or corrupt?): {e}") from e
        with f:
            with self._reading("the root attributes"):
                raw = self._read_attrs(f)
                attrs = {k: _decode(v) for k, v in raw.items()}
            if "format" in attrs and attrs["format"] != FORMAT:
                raise self._error(f"not a physinv dataset (format attribute is {attrs['format']!r})")
            if "schema_version" not in attrs:
                raise self._error("missing attribute 'schema_version' (not a physinv dataset file?)")
            ver = attrs["schema_version"]
            if not _is_int(ver) or ver not in READ_VERSIONS:
                newer = _is_int(ver) and ver > SCHEMA_VERSION
                raise self._error(
                    f"schema version {ver!r} is not supported; this physinv ({_version()}) reads versions "
                    f"{', '.join(map(str, READ_VERSIONS))}"
                    + (" (the file was written by a newer physinv)" if newer else ""))
            missing = [a for a in _REQUIRED_ATTRS + (_DIGEST_ATTRS if ver >= 2 else ()) if a not in attrs]
            if missing:
                raise self._error(f"missing attribute(s) {missing}")
            if not attrs["complete"]:
                raise self._error(f"incomplete file: only {attrs.get('n_written', '?')} of {attrs['n']} "
                                  "samples were written")
            for name in _DATASETS[ver]:
                with self._reading(f"dataset '/{name}'"):
                    ok = name in f and isinstance(f[name], h5py.Dataset)
                if not ok:
                    raise self._error(f"missing dataset '/{name}'")
            with self._reading("the dataset layout"):
                n, x_shape, y_shape = self._check_layout(f, attrs, ver)
            for key in ("operator", "generator", "metadata"):
                if key in attrs:
                    try:
                        attrs[key] = json.loads(attrs[key])
                    except (TypeError, ValueError, RecursionError) as e:
                        what = "too deeply nested" if isinstance(e, RecursionError) else str(e)
                        raise self._error(f"attribute {key!r} is not valid JSON: {what}") from None
            if ver >= 2:
                if _attrs_sha256(raw) != attrs["attrs_sha256"]:
                    raise self._error("the root attributes do not match their SHA-256 digest "
                                      "(attrs_sha256): the file is corrupt or was modified")
                if _text_sha256(_decode(raw["operator"])) != attrs["operator_sha256"]:
                    raise self._error("the stored operator description does not match its SHA-256 "
                                      "digest (operator_sha256)")
            self._tables = self._load_tables(f, attrs, ver, n)
            self._pid = os.getpid()
        return attrs, n, x_shape, y_shape

    def _check_layout(self, f: h5py.File, attrs: dict, ver: int):
        n = attrs["n"]
        if not _is_int(n) or n < 1:
            raise self._error(f"attribute 'n' must be a positive int, got {n!r}")
        lens = {name: f[name].shape[0] if f[name].ndim else None for name in _DATASETS[ver]}
        if any(v != n for v in lens.values()):
            raise self._error(f"datasets disagree on the number of samples: {lens}, attribute n={n}")
        if n > self.max_elements:
            raise self._error(f"n={n:,} samples is more than max_elements={self.max_elements:,}")
        x_shape, y_shape = tuple(attrs["x_shape"]), tuple(attrs["y_shape"])
        if f["x"].shape[1:] != x_shape or f["y"].shape[1:] != y_shape:
            raise self._error(f"sample shapes {f['x'].shape[1:]} (x), {f['y'].shape[1:]} (y) disagree "
                              f"with the attributes x_shape={x_shape}, y_shape={y_shape}")
        if f["x"].dtype != f["y"].dtype or f["x"].dtype not in (np.float32, np.float64):
            raise self._error(f"x and y must be float32 or float64 of the same dtype, got "
                              f"{f['x'].dtype} and {f['y'].dtype}")
        if f["noise_sigma"].shape != (n,) or f["noise_sigma"].dtype != np.float64:
            raise self._error(f"'/noise_sigma' must be float64 of shape ({n},), got "
                              f"{f['noise_sigma'].dtype} {f['noise_sigma'].shape}")
        dg = f["sample_digest"] if ver >= 2 else None
        if dg is not None and (dg.shape != (n, _DIGEST_SIZE) or dg.dtype != np.uint8):
            raise self._error(f"'/sample_digest' must be uint8 of shape ({n}, {_DIGEST_SIZE}), got "
                              f"{dg.dtype} {dg.shape}")
        for name in _DATASETS[ver]:
            ds = f[name]
            per_sample = math.prod(ds.shape[1:])
            if per_sample > self.max_elements:
                raise self._error(f"a sample of '/{name}' has {per_sample:,} elements ({ds.shape[1:]}), more "
                                  f"than max_elements={self.max_elements:,}")
            self._check_filters(ds, name)
            if ds.chunks is None:
                continue
            if math.prod(ds.chunks) > self.max_elements:
                raise self._error(f"'/{name}' is stored in chunks of {math.prod(ds.chunks):,} elements "
                                  f"{ds.chunks}, more than max_elements={self.max_elements:,}")
            want = math.prod(-(-d // c) for d, c in zip(ds.shape, ds.chunks))
            have = ds.id.get_num_chunks()
            if have != want:
                raise self._error(f"'/{name}' should have {want} stored chunks but its chunk index lists "
                                  f"{have}: samples are missing (corrupt chunk index?)")
        return int(n), x_shape, y_shape

    def _check_filters(self, ds: h5py.Dataset, name: str) -> None:
        dcpl = ds.id.get_create_plist()
        for k in range(dcpl.get_nfilters()):
            code, _flags, values, _label = dcpl.get_filter(k)
            if code not in _KNOWN_FILTERS:
                raise self._error(f"'/{name}' uses HDF5 filter {code}, which physinv does not read "
                                  f"(known: {sorted(_KNOWN_FILTERS.values())})")
            limit = math.prod(ds.chunks or ds.shape) * ds.dtype.itemsize
            if code == _F_LZF and len(values) >= 3 and values[2] > limit:
                raise self._error(f"'/{name}': the lzf filter claims chunks of {values[2]:,} bytes")

    def _load_tables(self, f: h5py.File, attrs: dict, ver: int, n: int):
        with self._reading("'/noise_sigma'"):
            sig = np.asarray(f["noise_sigma"][:], dtype=np.float64)
        dig = None
        if ver >= 2:
            if _array_sha256(sig) != attrs["noise_sigma_sha256"]:
                raise self._error("'/noise_sigma' does not match its SHA-256 digest (noise_sigma_sha256): "
                                  "the file is corrupt")
            with self._reading("'/sample_digest'"):
                dig = np.asarray(f["sample_digest"][:], dtype=np.uint8)
            if _array_sha256(dig) != attrs["sample_digest_sha256"]:
                raise self._error("'/sample_digest' does not match its SHA-256 digest "
                                  "(sample_digest_sha256): the file is corrupt")
        return sig, dig

    # -------------------------------------------------------------- reading
    def _file(self) -> h5py.File:
        pid = os.getpid()
        if self._h is None or self._pid != pid:
            try:
                h = h5py.File(self.path, "r")
            except Exception as e:  # noqa: BLE001
                raise self._error(f"cannot open: {e}") from e
            if self._tables is None or self._pid != pid:  # a new process checks the tables itself
                try:
                    self._tables = self._load_tables(h, self.attrs, self.attrs["schema_version"], self.n)
                except BaseException:
                    h.close()
                    raise
            self._h, self._pid, self._readers = h, pid, {}
        return self._h

    def _reader(self, f: h5py.File, name: str):
        """How to read one sample of ``name``: a bounded deflate decoder, or HDF5's own reader."""
        r = self._readers.get(name)
        if r is None:
            ds = f[name]
            dcpl = ds.id.get_create_plist()
            pipeline = [dcpl.get_filter(k)[0] for k in range(dcpl.get_nfilters())]
            use_own = (self.attrs["schema_version"] >= 2 and _F_DEFLATE in pipeline
                       and ds.chunks == (1, *ds.shape[1:]))
            r = (ds, pipeline if use_own else None)
            self._readers[name] = r
        return r

    def _read_sample(self, f: h5py.File, name: str, i: int) -> np.ndarray:
        ds, pipeline = self._reader(f, name)
        if pipeline is None:
            return ds[i]
        # HDF5's deflate filter inflates a chunk whatever its size; decode it here with a bound
        shape, dtype = ds.shape[1:], ds.dtype
        nbytes = math.prod(shape) * dtype.itemsize
        coord = (i,) + (0,) * len(shape)
        info = ds.id.get_chunk_info_by_coord(coord)
        if info.byte_offset is None:
            raise self._error(f"sample {i} of '/{name}' was never written (its chunk is missing from the "
                              "chunk index)")
        if info.size > nbytes + 1024 + nbytes // 8:
            raise self._error(f"sample {i} of '/{name}': a stored chunk of {info.size:,} bytes for "
                              f"{nbytes:,} bytes of data")
        mask, raw = ds.id.read_direct_chunk(coord)
        buf = bytes(raw)
        for k in reversed(range(len(pipeline))):
            if mask & (1 << k):
                continue
            code = pipeline[k]
            if code == _F_FLETCHER32:
                buf = buf[:-4]  # every sample is checked against its own digest below
            elif code == _F_DEFLATE:
                d = zlib.decompressobj()
                out = d.decompress(buf, nbytes + 1)
                if len(out) != nbytes or not d.eof:
                    raise self._error(f"sample {i} of '/{name}': the compressed chunk does not inflate to "
                                      f"{nbytes:,} bytes")
                buf = out
            elif code == _F_SHUFFLE:
                b = np.frombuffer(buf, dtype=np.uint8)
                if b.size != nbytes:
                    raise self._error(f"sample {i} of '/{name}': {b.size:,} bytes instead of {nbytes:,}")
                buf = b.reshape(dtype.itemsize, -1).T.tobytes()
            else:
                raise self._error(f"sample {i} of '/{name}': unexpected HDF5 filter {code}")
        if len(buf) != nbytes:
            raise self._error(f"sample {i} of '/{name}': {len(buf):,} bytes instead of {nbytes:,}")
        return np.frombuffer(buf, dtype=dtype).reshape(shape).copy()

    def _missing_chunk(self, f: h5py.File, i: int) -> DatasetFileError | None:
        for name in ("y", "x"):
            ds = f[name]
            if ds.chunks is None:
                continue
            with self._reading(f"the chunk index of '/{name}'"):
                info = ds.id.get_chunk_info_by_coord((i,) + (0,) * (ds.ndim - 1))
            if info.byte_offset is None:
                return self._error(f"sample {i} of '/{name}' was never written (its chunk is missing from "
                                   "the chunk index)")
        return None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples in {self.path}")
        i = int(index) % self.n
        f = self._file()
        sig, dig = self._tables  # type: ignore[misc]
        with self._reading(f"sample {i}"):
            y, x = self._read_sample(f, "y", i), self._read_sample(f, "x", i)
        if dig is None:  # schema version 1: no digests, but a missing chunk must not read back as zeros
            missing = self._missing_chunk(f, i)
            if missing is not None:
                raise missing
        elif _sample_digest(i, y, x, sig[i]) != dig[i].tobytes():
            raise self._missing_chunk(f, i) or self._error(
                f"sample {i} does not match its stored digest (sample_digest): the file is corrupt")
        y, x = torch.from_numpy(y), torch.from_numpy(x)
        if self.dtype is not None:
            y, x = y.to(self.dtype), x.to(self.dtype)
        if self.return_sigma:
            return y, x, torch.tensor(float(sig[i]), dtype=x.dtype)
        return y, x

    def sigma(self, i: int) -> float:
        """The noise level of sample ``i`` (float64; NaN when unknown)."""
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} samples in {self.path}")
        self._file()
        return float(self._tables[0][int(i) % self.n])  # type: ignore[index]

    def describe(self) -> dict[str, Any]:
        """Where the samples come from (for :func:`save_dataset` when re-saving this file)."""
        return {"generator": "physinv.data.H5Dataset", "source": os.path.basename(self.path),
                "source_fingerprint": self.attrs.get("fingerprint"),
                "source_generator": self.attrs.get("generator")}

    @property
    def schema_version(self) -> int:
        """The schema version of the file (1: no checksums; 2: every value checked)."""
        return int(self.attrs["schema_version"])

    @property
    def noise_sigma(self) -> np.ndarray:
        """The noise level of every sample (checked against its digest)."""
        self._file()
        return self._tables[0].copy()  # type: ignore[index]

    @property
    def metadata(self) -> dict[str, Any]:
        """All root attributes, JSON ones decoded (operator, generator, metadata)."""
        return dict(self.attrs)

    @property
    def operator(self):
        """The forward model rebuilt from the stored JSON (cached; ``None`` if not stored).

        The description is validated first (see :func:`check_operator_config`):
        nothing is built from a description that is too deep, names an unknown
        operator or field, has inconsistent shapes, does not map ``x_shape`` to
        ``y_shape``, or implies more than ``max_elements`` elements.
        """
        if self._op is None and self.attrs["operator"] is not None:
            from ..operators import from_config

            cfg = self.attrs["operator"]
            try:
                check_operator_config(cfg, self.x_shape, self.y_shape, self.max_elements)
            except ValueError as e:
                raise self._error(f"the stored operator description is refused: {e}") from None
            try:
                op = from_config(cfg)
            except Exception as e:  # noqa: BLE001
                raise self._error(f"cannot rebuild the operator from its JSON description: {e}") from e
            if op.in_shape != self.x_shape or op.out_shape != self.y_shape:
                raise self._error(f"the stored operator maps {op.in_shape} -> {op.out_shape} but the "
                                  f"samples have x {self.x_shape}, y {self.y_shape}")
            self._op = op
        return self._op

    def close(self) -> None:
        """Close this process's file handle (reopened on next access)."""
        if self._h is not None and self._pid == os.getpid():
            self._h.close()
        self._h, self._readers = None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h"], state["_pid"], state["_tables"], state["_readers"] = None, None, None, {}
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"H5Dataset({self.path!r}, n={self.n}, x_shape={self.x_shape}, y_shape={self.y_shape})"
