"""Thermal frame files: physinv's checksummed IR HDF5 layout, FLIR ADAS folders, folders of 16-bit frames.

physinv IR HDF5, format version 1 (one file = one :class:`IRFrames`)::

    /counts               (N, h, w)  uint16   raw counts (14-bit values), gzip, one chunk per frame
    /temperature_k        (N, h, w)  float64  ideal detector-grid temperature, kelvin
    /mask                 (N, h, w)  uint8    object mask (0 / 1)
    /radiance             (N, h, w)  float64  clean detector-grid radiance, W m^-2 sr^-1
    /gain, /offset        (h, w)     float64  true gain and offset maps (calibration maps)
    /offset_drift         (h, w)     float64  offset drift rate, counts per K of sensor temperature
    /sensor_temperature_k (N,)       float64
    /n_clipped            (N,)       int64
    /noise_std_radiance   (N,)       float64
    every dataset: attr sha256 (hex digest of its little-endian C-order bytes)
    root attrs: physinv_ir_format = 1, format = "physinv-ir", n_frames, detector_shape,
                camera (JSON), metadata (JSON), created (ISO 8601 UTC), attrs_sha256

Files are written atomically (built in memory, then written to a temporary
file that is renamed over the destination), and every value is checked on
reading: the format and version, each dataset's presence, dtype, shape and
digest, the root attributes' digest, the camera description. Any failure
raises :class:`IRFileError` naming the file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io as _io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write
from .camera import Camera, IRFrames

__all__ = ["IR_FORMAT_VERSION", "IRFileError", "save_ir", "load_ir", "read_flir_adas", "FlirAdas",
           "read_frames", "read_image", "FRAME_EXTENSIONS"]

#: Version of the layout :func:`save_ir` writes (the ``physinv_ir_format`` attribute).
IR_FORMAT_VERSION = 1
_FORMAT = "physinv-ir"
#: File extensions :func:`read_frames` reads.
FRAME_EXTENSIONS = (".tif", ".tiff", ".png")
_COCO_NAMES = ("coco.json", "thermal_annotations.json", "annotations.json")

#: name -> (numpy dtype, "frames" | "map" | "vector")
_DATASETS: dict[str, tuple[str, str]] = {
    "counts": ("<u2", "frames"),
    "temperature_k": ("<f8", "frames"),
    "mask": ("u1", "frames"),
    "radiance": ("<f8", "frames"),
    "gain": ("<f8", "map"),
    "offset": ("<f8", "map"),
    "offset_drift": ("<f8", "map"),
    "sensor_temperature_k": ("<f8", "vector"),
    "n_clipped": ("<i8", "vector"),
    "noise_std_radiance": ("<f8", "vector"),
}
_ROOT_ATTRS = ("physinv_ir_format", "format", "n_frames", "detector_shape", "camera", "metadata", "created")


class IRFileError(ValueError):
    """A thermal frame file (or folder) that cannot be read as what it claims to be; names the file."""


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _attrs_digest(values: dict[str, Any]) -> str:
    canon = json.dumps({k: values[k] for k in _ROOT_ATTRS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _arrays(frames: IRFrames) -> dict[str, np.ndarray]:
    c = frames.counts
    if c.numel() and (int(c.min()) < 0 or int(c.max()) > 65535):
        raise ValueError("frames.counts must lie in [0, 65535] to be stored as uint16")
    out = {
        "counts": c.cpu().numpy().astype("<u2"),
        "mask": frames.mask.cpu().numpy().astype("u1"),
        "n_clipped": frames.n_clipped.cpu().numpy().astype("<i8"),
    }
    for name in ("temperature_k", "radiance", "gain", "offset", "offset_drift", "sensor_temperature_k",
                 "noise_std_radiance"):
        out[name] = getattr(frames, name).detach().cpu().numpy().astype("<f8")
    return out


def save_ir(path: str | os.PathLike, frames: IRFrames, *, metadata: dict[str, Any] | None = None) -> str:
    """Write ``frames`` to ``path`` in physinv's IR HDF5 layout (atomically, with SHA-256 digests).

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.h5``); its folder is created if needed.
    frames : IRFrames
        The frames and their ground truth.
    metadata : dict, optional
        JSON-serialisable description, stored as the ``metadata`` attribute
        (default: ``frames.metadata``).

    Returns
    -------
    str
        The absolute path written.

    Examples
    --------
    >>> import os, tempfile
    >>> from physinv.ir import Camera, simulate
    >>> fr = simulate(2, Camera(detector_shape=(8, 10)), seed=0)
    >>> p = save_ir(os.path.join(tempfile.mkdtemp(), "frames.h5"), fr, metadata={"site": "lab"})
    >>> back = load_ir(p)
    >>> bool(torch.equal(back.counts, fr.counts)), back.camera == fr.camera
    (True, True)
    """
    import h5py

    if not isinstance(frames, IRFrames):
        raise TypeError(f"frames must be IRFrames, got {type(frames).__name__}")
    if frames.counts.numel() and int(frames.counts.max()) > frames.camera.max_count:
        raise ValueError(f"frames.counts exceed the camera's {frames.camera.bits}-bit range")
    try:
        meta_json = json.dumps(frames.metadata if metadata is None else metadata, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata must be JSON-serialisable: {e}") from None
    arrays = _arrays(frames)
    n, h, w = arrays["counts"].shape
    attrs: dict[str, Any] = {
        "physinv_ir_format": IR_FORMAT_VERSION, "format": _FORMAT, "n_frames": int(n),
        "detector_shape": [int(h), int(w)], "camera": json.dumps(frames.camera.to_dict(), sort_keys=True),
        "metadata": meta_json, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    buf = _io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, a in arrays.items():
            kw: dict[str, Any] = {}
            if a.ndim == 3 and a.size:
                kw = {"chunks": (1, h, w), "compression": "gzip", "compression_opts": 4, "shuffle": True}
            d = f.create_dataset(name, data=a, **kw)
            d.attrs["sha256"] = _digest(a)
        for k, v in attrs.items():
            f.attrs[k] = np.asarray(v, dtype=np.int64) if k == "detector_shape" else v
        f.attrs["attrs_sha256"] = _attrs_digest(attrs)
    data = buf.getvalue()
    return atomic_write(path, lambda fh: fh.write(data))


def _attr(f: Any, key: str, path: str) -> Any:
    if key not in f.attrs:
        raise IRFileError(f"{path}: attribute {key!r} is missing; not a complete physinv IR file")
    v = f.attrs[key]
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    elif isinstance(v, np.generic):
        v = v.item()
    return v


def load_ir(path: str | os.PathLike) -> IRFrames:
    """Read a file written by :func:`save_ir`, checking everything (see the module docs).

    Raises
    ------
    FileNotFoundError
        No such file.
    IRFileError
        Not an HDF5 file, truncated or damaged, another format or version,
        a missing dataset, a wrong dtype or shape, a digest mismatch, or a
        bad camera description; the message names the file.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "junk.h5")
    >>> _ = open(p, "wb").write(b"not hdf5")
    >>> load_ir(p)
    Traceback (most recent call last):
    ...
    physinv.ir.io.IRFileError: ...junk.h5: cannot be opened as HDF5 (truncated, damaged or not HDF5): ...
    """
    import h5py

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise IRFileError(f"{path}: cannot be opened as HDF5 (truncated, damaged or not HDF5): {e}") from None
    try:
        with f:
            return _read(f, path)
    except IRFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise IRFileError(f"{path}: damaged physinv IR file: {type(e).__name__}: {e}") from None


def _read(f: Any, path: str) -> IRFrames:
    fmt = _attr(f, "format", path)
    if fmt != _FORMAT:
        raise IRFileError(f"{path}: format attribute is {fmt!r}, not {_FORMAT!r}")
    version = _attr(f, "physinv_ir_format", path)
    if version != IR_FORMAT_VERSION:
        raise IRFileError(f"{path}: physinv_ir_format {version!r} is not supported (this physinv reads "
                          f"version {IR_FORMAT_VERSION})")
    values = {k: _attr(f, k, path) for k in _ROOT_ATTRS}
    if _attr(f, "attrs_sha256", path) != _attrs_digest(values):
        raise IRFileError(f"{path}: root attributes do not match attrs_sha256 (the file was altered or "
                          "damaged)")
    n = values["n_frames"]
    shape = values["detector_shape"]
    if not (isinstance(n, int) and n >= 1 and isinstance(shape, list) and len(shape) == 2):
        raise IRFileError(f"{path}: bad n_frames {n!r} or detector_shape {shape!r}")
    h, w = shape
    try:
        camera = Camera.from_dict(json.loads(values["camera"]))
        metadata = json.loads(values["metadata"])
    except (TypeError, ValueError) as e:
        raise IRFileError(f"{path}: bad camera or metadata description: {e}") from None
    want = {"frames": (n, h, w), "map": (h, w), "vector": (n,)}
    arrays: dict[str, np.ndarray] = {}
    for name, (dtype, kind) in _DATASETS.items():
        if name not in f:
            raise IRFileError(f"{path}: dataset {name!r} is missing")
        d = f[name]
        if d.dtype != np.dtype(dtype) or tuple(d.shape) != want[kind]:
            raise IRFileError(f"{path}: dataset {name!r} is {d.dtype} {tuple(d.shape)}, expected "
                              f"{np.dtype(dtype)} {want[kind]}")
        a = d[()]
        digest = d.attrs.get("sha256")
        if isinstance(digest, bytes):
            digest = digest.decode()
        if digest != _digest(a):
            raise IRFileError(f"{path}: dataset {name!r} does not match its SHA-256 digest (damaged or "
                              "altered)")
        arrays[name] = a
    if int(arrays["counts"].max(initial=0)) > camera.max_count:
        raise IRFileError(f"{path}: counts exceed the camera's {camera.bits}-bit range")
    frames = IRFrames(
        counts=torch.from_numpy(arrays["counts"].astype(np.int32)),
        temperature_k=torch.from_numpy(arrays["temperature_k"]),
        mask=torch.from_numpy(arrays["mask"].astype(bool)),
        radiance=torch.from_numpy(arrays["radiance"]),
        camera=camera,
        gain=torch.from_numpy(arrays["gain"]),
        offset=torch.from_numpy(arrays["offset"]),
        sensor_temperature_k=torch.from_numpy(arrays["sensor_temperature_k"]),
        offset_drift=torch.from_numpy(arrays["offset_drift"]),
        n_clipped=torch.from_numpy(arrays["n_clipped"]),
        noise_std_radiance=torch.from_numpy(arrays["noise_std_radiance"]),
        metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
    )
    return frames


# ------------------------------------------------------------------------------ image folders
def read_image(path: str | os.PathLike, *, bits: int = 16) -> torch.Tensor:
    """One grayscale 8- or 16-bit TIFF or PNG frame as an ``(h, w)`` int32 tensor.

    Raises
    ------
    IRFileError
        Undecodable, not 2-D, not 8/16-bit unsigned, or values above ``2^bits - 1``; names the file.

    Examples
    --------
    >>> import os, tempfile, tifffile
    >>> p = os.path.join(tempfile.mkdtemp(), "f.tiff")
    >>> tifffile.imwrite(p, np.full((4, 5), 9000, dtype=np.uint16))
    >>> read_image(p, bits=14)[0, :2]
    tensor([9000, 9000], dtype=torch.int32)
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        else:
            import skimage.io

            a = skimage.io.imread(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # decoders raise many types on damaged files
        raise IRFileError(f"{path}: cannot be decoded as an image: {type(e).__name__}: {e}") from None
    a = np.asarray(a)
    if a.size == 0:
        raise IRFileError(f"{path}: cannot be decoded as an image: no pixel data (damaged or truncated)")
    if a.ndim != 2:
        raise IRFileError(f"{path}: expected a single-channel 2-D frame, got shape {a.shape}")
    if a.dtype not in (np.uint16, np.uint8):
        raise IRFileError(f"{path}: expected 8- or 16-bit unsigned pixels, got {a.dtype}")
    if a.size and int(a.max()) > 2**bits - 1:
        raise IRFileError(f"{path}: values up to {int(a.max())} exceed the {bits}-bit range "
                          f"(pass bits=16 if the frames are not {bits}-bit raw counts)")
    return torch.from_numpy(a.astype(np.int32))


def _frame_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def read_frames(folder: str | os.PathLike, *, bits: int = 16, return_names: bool = False) -> Any:
    """All 16-bit (or 8-bit) TIFF / PNG frames of a folder, in name order, as ``(N, h, w)`` int32 counts.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of ``.tif``, ``.tiff`` or ``.png`` frames, all of one size.
    bits : int
        Largest accepted value ``2^bits - 1`` (14 for raw 14-bit counts).
    return_names : bool
        Also return the file names.

    Raises
    ------
    FileNotFoundError
        No such folder.
    IRFileError
        No frames, frames of different sizes, or a bad frame (named).

    Examples
    --------
    >>> import os, tempfile, tifffile
    >>> d = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     tifffile.imwrite(os.path.join(d, f"f{i}.tiff"), np.full((4, 5), 100 * i, dtype=np.uint16))
    >>> read_frames(d).shape
    torch.Size([3, 4, 5])
    """
    folder = Path(folder)
    files = _frame_files(folder, FRAME_EXTENSIONS)
    if not files:
        raise IRFileError(f"{folder}: no {'/'.join(FRAME_EXTENSIONS)} frames found")
    frames = []
    for p in files:
        a = read_image(p, bits=bits)
        if frames and a.shape != frames[0].shape:
            raise IRFileError(f"{p}: frame of shape {tuple(a.shape)} differs from {files[0].name}'s "
                              f"{tuple(frames[0].shape)}")
        frames.append(a)
    out = torch.stack(frames)
    return (out, [p.name for p in files]) if return_names else out


# ------------------------------------------------------------------------------ FLIR ADAS
def _load_coco(path: Path) -> dict[str, list[dict[str, Any]]]:
    """COCO labels by image file stem: ``{stem: [{"category", "category_id", "bbox", ...}, ...]}``."""
    try:
        with open(path, encoding="utf-8") as fh:
            coco = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IRFileError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise IRFileError(f"{path}: not a COCO label file (no 'images' list)")
    anns, cats = coco.get("annotations", []), coco.get("categories", [])
    if not isinstance(anns, list) or not isinstance(cats, list):
        raise IRFileError(f"{path}: 'annotations' and 'categories' must be lists")
    try:
        names = {int(c["id"]): str(c["name"]) for c in cats}
        by_id: dict[int, str] = {}
        out: dict[str, list[dict[str, Any]]] = {}
        for im in coco["images"]:
            stem = Path(str(im["file_name"])).stem
            by_id[int(im["id"])] = stem
            out[stem] = []
        for a in anns:
            stem = by_id.get(int(a["image_id"]))
            if stem is None:
                raise IRFileError(f"{path}: annotation {a.get('id')!r} refers to unknown image "
                                  f"{a['image_id']!r}")
            bbox = [float(v) for v in a["bbox"]]
            if len(bbox) != 4:
                raise IRFileError(f"{path}: annotation {a.get('id')!r} has a bbox of {len(bbox)} numbers")
            cid = int(a["category_id"])
            out[stem].append({"category": names.get(cid, str(cid)), "category_id": cid, "bbox": bbox,
                              "id": a.get("id")})
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, IRFileError):
            raise
        raise IRFileError(f"{path}: malformed COCO entry: {type(e).__name__}: {e}") from None
    return out


class FlirAdas:
    """A FLIR ADAS split folder: raw 14-bit thermal frames with their COCO labels, read lazily.

    Layouts: version 1 (2018) keeps the raw frames in ``Data/*.tiff``;
    version 2 (2022) in ``analyticsData/*.tiff`` with labels in
    ``coco.json``. Labels are read from the first of ``coco.json``,
    ``thermal_annotations.json``, ``annotations.json`` in the split folder,
    matched to frames by file stem (the JSON names the 8-bit preview images,
    the raw frames share their stems). Use :func:`read_flir_adas`.

    Items are ``(counts, labels, name)``: ``(h, w)`` int32 counts, a list of
    ``{"category", "category_id", "bbox" (x, y, w, h), "id"}`` (empty for a
    labelled frame without objects, ``None`` where no label file lists the
    frame) and the file name.
    """

    def __init__(self, folder: str | os.PathLike, version: Any = "auto") -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder")
        if version == "auto":
            if (self.folder / "analyticsData").is_dir():
                version = 2
            elif (self.folder / "Data").is_dir():
                version = 1
            else:
                raise IRFileError(f"{self.folder}: neither a FLIR ADAS v1 split (Data/*.tiff) nor a v2 split "
                                  "(analyticsData/*.tiff)")
        if version not in (1, 2):
            raise ValueError(f"version must be 'auto', 1 or 2, got {version!r}")
        self.version = int(version)
        sub = self.folder / ("Data" if self.version == 1 else "analyticsData")
        if not sub.is_dir():
            raise IRFileError(f"{self.folder}: FLIR ADAS v{self.version} frames belong in {sub.name}/, which "
                              "is missing")
        self.files = _frame_files(sub, (".tif", ".tiff"))
        if not self.files:
            raise IRFileError(f"{sub}: no .tiff frames")
        found = [self.folder / n for n in _COCO_NAMES if (self.folder / n).is_file()]
        self.label_file: Path | None = found[0] if found else None
        self.labels = _load_coco(self.label_file) if self.label_file is not None else None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, list[dict[str, Any]] | None, str]:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        p = self.files[i]
        counts = read_image(p, bits=14)
        labels = None if self.labels is None else self.labels.get(p.stem)
        return counts, labels, p.name

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[dict[str, Any]] | None, str]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"FlirAdas({str(self.folder)!r}, version={self.version}, frames={len(self)})"


def read_flir_adas(folder: str | os.PathLike, version: Any = "auto") -> FlirAdas:
    """Open a FLIR ADAS split folder (v1 ``Data/`` or v2 ``analyticsData/`` + ``coco.json``).

    Raises
    ------
    FileNotFoundError
        No such folder.
    IRFileError
        A folder of neither layout, no frames, a bad label file (all named).

    Examples
    --------
    >>> import json, os, tempfile, tifffile
    >>> d = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(d, "analyticsData"))
    >>> tifffile.imwrite(os.path.join(d, "analyticsData", "video-1.tiff"), np.full((4, 5), 8000, np.uint16))
    >>> coco = {"images": [{"id": 0, "file_name": "data/video-1.jpg"}],
    ...         "categories": [{"id": 1, "name": "person"}],
    ...         "annotations": [{"id": 5, "image_id": 0, "category_id": 1, "bbox": [1, 1, 2, 2]}]}
    >>> _ = open(os.path.join(d, "coco.json"), "w").write(json.dumps(coco))
    >>> ds = read_flir_adas(d)
    >>> counts, labels, name = ds[0]
    >>> ds.version, counts.shape, labels[0]["category"], name
    (2, torch.Size([4, 5]), 'person', 'video-1.tiff')
    """
    return FlirAdas(folder, version)
