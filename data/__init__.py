"""Small files that physinv ships (installed as the package ``physinv.assets``).

Every file is listed in ``manifest.json`` with its SHA-256 digest, its shape and
the script that reproduces it; :func:`load_array` verifies the digest before it
returns anything, so a damaged installation is refused, never used.

Examples
--------
>>> from physinv import assets
>>> "psfs/shake_1.npy" in assets.names()
True
>>> k = assets.load_array("psfs/shake_1.npy")
>>> k.shape, round(float(k.sum()), 6)
((15, 15), 1.0)
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["AssetError", "manifest", "names", "read_bytes", "load_array"]


class AssetError(RuntimeError):
    """A shipped file is missing, unknown or does not match its recorded digest."""


@lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, Any]]:
    """The recorded description of every shipped file, keyed by its relative path."""
    text = resources.files(__name__).joinpath("manifest.json").read_text(encoding="utf-8")
    return json.loads(text)["files"]


def names(kind: str | None = None) -> list[str]:
    """Relative paths of the shipped files, optionally only those of one ``kind`` (e.g. ``"psf"``)."""
    return sorted(n for n, meta in manifest().items() if kind is None or meta.get("kind") == kind)


def read_bytes(name: str) -> bytes:
    """The bytes of the shipped file ``name``, verified against its SHA-256 digest.

    Raises
    ------
    AssetError
        If ``name`` is not in the manifest, the file is missing, or its digest differs.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    meta = manifest().get(name)
    if meta is None:
        raise AssetError(f"unknown asset {name!r}; shipped files: {', '.join(names())}")
    node = resources.files(__name__).joinpath(*name.split("/"))
    try:
        data = node.read_bytes()
    except OSError as exc:
        raise AssetError(f"asset {name!r} is missing from the installation ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["sha256"]:
        raise AssetError(f"asset {name!r} is damaged: SHA-256 {digest} differs from the recorded "
                         f"{meta['sha256']}; reinstall physinv")
    return data


def load_array(name: str) -> np.ndarray:
    """The shipped ``.npy`` file ``name`` as a numpy array, digest-checked, never unpickled."""
    arr = np.load(io.BytesIO(read_bytes(name)), allow_pickle=False)
    shape = manifest()[name].get("shape")
    if shape is not None and list(arr.shape) != list(shape):
        raise AssetError(f"asset {name!r} has shape {arr.shape}, the manifest records {tuple(shape)}")
    return arr
