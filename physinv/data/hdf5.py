"""A versioned HDF5 format for ``(y, x)`` datasets: atomic, resumable writes and lazy reads.

Schema version 1 (see ``docs/data.md``)::

    /x             (n, *in_shape)   float32|float64   chunk = 1 sample, compressed
    /y             (n, *out_shape)  float32|float64   chunk = 1 sample, compressed
    /noise_sigma   (n,)             float64           Gaussian noise level per sample
    attrs: format="physinv-dataset", schema_version=1, n, n_written, complete,
           x_shape, y_shape, operator (JSON of A.to_config() or "null"),
           generator (JSON), fingerprint, seed, physinv_version, created, metadata (JSON)

Nothing is pickled: arrays are HDF5 datasets and descriptions are JSON strings.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from typing import Any

import h5py
import numpy as np
import torch

from .._io import fsync_dir

__all__ = ["SCHEMA_VERSION", "DatasetFileError", "save_dataset", "H5Dataset"]

#: Version of the on-disk layout written by :func:`save_dataset`.
SCHEMA_VERSION = 1
FORMAT = "physinv-dataset"
_REQUIRED_ATTRS = ("format", "schema_version", "n", "complete", "x_shape", "y_shape", "operator")
_DATASETS = ("x", "y", "noise_sigma")


class DatasetFileError(ValueError):
    """A dataset file is unreadable, incomplete or does not follow the schema."""


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
    """Write a ``(y, x)`` dataset to an HDF5 file, atomically and resumably.

    The file is written to a temporary sibling ``.<name>.partial`` in blocks
    of ``chunk_samples`` samples; after each block the number of samples
    written is recorded in the file and flushed.  When every sample is in, the
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
        and noise settings are recorded), or a pair of arrays ``(y, x)`` with
        the samples along the first axis.
    operator : LinearOperator, optional
        Forward model stored as JSON (default: ``data.A`` when present).
    noise_sigma : float or array, optional
        Noise level(s) when ``data`` does not provide them (NaN if unknown).
    metadata : dict, optional
        Extra JSON-able information stored in the ``metadata`` attribute.
    compression : {"gzip", "lzf", None}
        Per-sample chunk compression.
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
        comp = {} if compression is None else {"compression": compression, "shuffle": True}
        if compression == "gzip":
            comp["compression_opts"] = 4
        f.create_dataset("x", shape=(n, *x0.shape), dtype=x0.dtype, chunks=(1, *x0.shape), **comp)
        f.create_dataset("y", shape=(n, *y0.shape), dtype=y0.dtype, chunks=(1, *y0.shape), **comp)
        f.create_dataset("noise_sigma", shape=(n,), dtype=np.float64)
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
        if k > 0:
            item = data[k - 1]
            same = (np.array_equal(f["y"][k - 1], _as_numpy(item[0]))
                    and np.array_equal(f["x"][k - 1], _as_numpy(item[1])))
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
        f["y"][pos:pos + m] = np.stack([_as_numpy(it[0]) for it in items])
        f["x"][pos:pos + m] = np.stack([_as_numpy(it[1]) for it in items])
        f["noise_sigma"][pos:pos + m] = [_sample_sigma(data, pos + j, it, noise_sigma)
                                         for j, it in enumerate(items)]
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


class H5Dataset(torch.utils.data.Dataset):
    """Read a file written by :func:`save_dataset` lazily, one sample at a time.

    The file is validated when the object is made (schema version, required
    datasets and attributes, agreeing shapes) and any problem raises
    :class:`DatasetFileError` naming the file.  Samples are read on demand
    through a handle opened on first access in each process, so the dataset
    can be handed to a ``DataLoader`` with several workers (fork or spawn);
    the handle itself is never pickled.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    return_sigma : bool
        Items are ``(y, x, sigma)`` instead of ``(y, x)``.
    dtype : torch.dtype, optional
        Convert samples to this dtype (default: as stored).

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
                 dtype: torch.dtype | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.return_sigma, self.dtype = bool(return_sigma), dtype
        self._h: h5py.File | None = None
        self._pid: int | None = None
        self._op = None
        self.attrs, self.n, self.x_shape, self.y_shape = self._validate()

    # ------------------------------------------------------------ validation
    def _error(self, problem: str) -> DatasetFileError:
        return DatasetFileError(f"{self.path}: {problem}")

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
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            missing = [a for a in _REQUIRED_ATTRS if a not in attrs]
            if "format" in attrs and attrs["format"] != FORMAT:
                raise self._error(f"not a physinv dataset (format attribute is {attrs['format']!r})")
            if "schema_version" not in attrs:
                raise self._error("missing attribute 'schema_version' (not a physinv dataset file?)")
            ver = attrs["schema_version"]
            if ver != SCHEMA_VERSION:
                newer = isinstance(ver, int) and ver > SCHEMA_VERSION
                raise self._error(
                    f"schema version {ver!r} is not supported; this physinv ({_version()}) reads version "
                    f"{SCHEMA_VERSION}" + (" (the file was written by a newer physinv)" if newer else ""))
            if missing:
                raise self._error(f"missing attribute(s) {missing}")
            if not attrs["complete"]:
                raise self._error(f"incomplete file: only {attrs.get('n_written', '?')} of {attrs['n']} "
                                  "samples were written")
            for name in _DATASETS:
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise self._error(f"missing dataset '/{name}'")
            n = int(attrs["n"])
            lens = {name: f[name].shape[0] if f[name].ndim else None for name in _DATASETS}
            if any(v != n for v in lens.values()):
                raise self._error(f"datasets disagree on the number of samples: {lens}, attribute n={n}")
            x_shape, y_shape = tuple(attrs["x_shape"]), tuple(attrs["y_shape"])
            if f["x"].shape[1:] != x_shape or f["y"].shape[1:] != y_shape:
                raise self._error(f"sample shapes {f['x'].shape[1:]} (x), {f['y'].shape[1:]} (y) disagree "
                                  f"with the attributes x_shape={x_shape}, y_shape={y_shape}")
            if f["x"].dtype != f["y"].dtype or f["x"].dtype not in (np.float32, np.float64):
                raise self._error(f"x and y must be float32 or float64 of the same dtype, got "
                                  f"{f['x'].dtype} and {f['y'].dtype}")
            for key in ("operator", "generator", "metadata"):
                if key in attrs:
                    try:
                        attrs[key] = json.loads(attrs[key])
                    except (TypeError, ValueError) as e:
                        raise self._error(f"attribute {key!r} is not valid JSON: {e}") from e
        return attrs, n, x_shape, y_shape

    # -------------------------------------------------------------- reading
    def _file(self) -> h5py.File:
        pid = os.getpid()
        if self._h is None or self._pid != pid:
            try:
                self._h = h5py.File(self.path, "r")
            except Exception as e:  # noqa: BLE001
                raise self._error(f"cannot open: {e}") from e
            self._pid = pid
        return self._h

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples in {self.path}")
        i = int(index) % self.n
        f = self._file()
        try:
            y, x, s = f["y"][i], f["x"][i], f["noise_sigma"][i]
        except Exception as e:  # noqa: BLE001
            raise self._error(f"cannot read sample {i} (corrupt data?): {e}") from e
        y, x = torch.from_numpy(y), torch.from_numpy(x)
        if self.dtype is not None:
            y, x = y.to(self.dtype), x.to(self.dtype)
        if self.return_sigma:
            return y, x, torch.tensor(float(s), dtype=x.dtype)
        return y, x

    @property
    def noise_sigma(self) -> np.ndarray:
        """The noise level of every sample (read in full)."""
        return np.asarray(self._file()["noise_sigma"][:])

    @property
    def metadata(self) -> dict[str, Any]:
        """All root attributes, JSON ones decoded (operator, generator, metadata)."""
        return dict(self.attrs)

    @property
    def operator(self):
        """The forward model rebuilt from the stored JSON (cached; ``None`` if not stored)."""
        if self._op is None and self.attrs["operator"] is not None:
            from ..operators import from_config

            try:
                op = from_config(self.attrs["operator"])
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
        self._h, self._pid = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h"], state["_pid"] = None, None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"H5Dataset({self.path!r}, n={self.n}, x_shape={self.x_shape}, y_shape={self.y_shape})"
