"""Checkpoint files: atomic writes with a SHA-256 digest, verified reads, weight loading.

File format (version 1)
-----------------------
A checkpoint is one file: a 119-byte ASCII header line followed by the bytes
``torch.save`` produced::

    physinv-checkpoint 1 sha256=<64 hex digits> size=<20 decimal digits>\\n
    <payload: a torch.save zip archive of `size` bytes>

``sha256`` is the digest of the payload.  A reader checks the header, the
payload length and the digest before it hands the payload to
``torch.load(weights_only=True)``, so a file damaged by the disk, a copy or a
transfer (torch's zip reader does not check its CRC-32 sums) is refused with
an error naming the file instead of resuming with corrupted weights.  The
whole file, header included, is written by one :func:`physinv._io.atomic_write`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from .._io import atomic_write

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "load_weights", "atomic_write_text",
           "remove_stale_temporaries", "CHECKPOINT_VERSION", "FORMAT_VERSION", "TRAINING_KEYS"]

#: Version of the training-state schema (the keys of ``last.pt``).
CHECKPOINT_VERSION = 1
#: Version of the file container (header + payload).
FORMAT_VERSION = 1
#: Entries every training checkpoint (``last.pt``) holds.
TRAINING_KEYS = ("physinv_checkpoint", "model", "optimizer", "scheduler", "epoch", "batch_in_epoch",
                 "global_step", "best", "best_epoch", "bad_epochs", "stopped_early", "acc", "acc_n",
                 "last_lr", "history", "rng", "config")

_MAGIC = b"physinv-checkpoint"
_HEADER = re.compile(rb"physinv-checkpoint (\d+) sha256=([0-9a-f]{64}) size=(\d{20})\n")
HEADER_SIZE = len(_MAGIC) + len(b" 1 sha256=") + 64 + len(b" size=") + 20 + 1
# atomic_write writes through tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") in the same folder
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


class CheckpointError(ValueError):
    """A checkpoint file is damaged, truncated, or not a physinv checkpoint (the message names the file)."""


def _header(digest: str, size: int) -> bytes:
    return b"%s %d sha256=%s size=%020d\n" % (_MAGIC, FORMAT_VERSION, digest.encode("ascii"), size)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` with a SHA-256 digest, atomically, to ``path``.

    The file is the physinv checkpoint format (a header line with the digest
    and the length of the payload, then the ``torch.save`` bytes), written to
    a temporary file in the same directory, fsynced and renamed onto
    ``path``: a reader sees the previous file or the new one, never a
    half-written one.  Read it back with :func:`load_checkpoint` (plain
    ``torch.load`` does not read the header).

    Parameters
    ----------
    obj : object
        Tensors and plain containers (what ``torch.load(weights_only=True)``
        accepts).
    path : str or os.PathLike
        Destination; its directory is created if needed.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> p = os.path.join(tempfile.mkdtemp(), "c.pt")
    >>> atomic_save({"w": torch.ones(2)}, p)
    >>> load_checkpoint(p)["w"]
    tensor([1., 1.])
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getbuffer()
    header = _header(hashlib.sha256(payload).hexdigest(), len(payload))

    def write(fh: Any) -> None:
        fh.write(header)
        fh.write(payload)

    atomic_write(path, write)


def _read_verified(path: str) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(HEADER_SIZE)
        payload = fh.read()  # bytes: io.BytesIO(payload) shares the buffer (no second copy)
    m = _HEADER.fullmatch(head)
    if m is None:
        data = head
        if not data:
            raise CheckpointError(f"{path}: damaged checkpoint: the file is empty")
        if data.startswith(b"PK\x03\x04"):
            raise CheckpointError(
                f"{path} is not a physinv checkpoint file: it is a plain torch.save archive without the "
                f"physinv header and SHA-256 digest, so its integrity cannot be checked; if you trust it, "
                f"convert it with physinv.train.atomic_save(torch.load(path, weights_only=True), path)")
        lead = min(len(data), len(_MAGIC))
        if sum(a == b for a, b in zip(data[:lead], _MAGIC)) < max(1, lead - 2):
            raise CheckpointError(
                f"{path} is not a physinv checkpoint file (it does not start with the physinv checkpoint "
                f"header: first bytes {data[:16]!r}); the file is corrupted or of another kind")
        if len(data) < HEADER_SIZE:
            raise CheckpointError(
                f"{path}: damaged checkpoint: {len(data)} bytes, shorter than its {HEADER_SIZE}-byte header "
                f"(the file was truncated)")
        raise CheckpointError(
            f"{path}: damaged checkpoint: its header is not valid (expected 'physinv-checkpoint "
            f"{FORMAT_VERSION} sha256=<digest> size=<bytes>', got {head!r}); the file is corrupted")
    version, digest, size = int(m.group(1)), m.group(2).decode("ascii"), int(m.group(3))
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint file format version {version} is not supported (this "
                              f"physinv reads version {FORMAT_VERSION}): written by a newer physinv, or "
                              f"damaged")
    if len(payload) != size:
        raise CheckpointError(
            f"{path}: damaged checkpoint: {len(payload)} payload bytes where the header announces {size} "
            f"(the file was {'truncated' if len(payload) < size else 'extended'} after it was written)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(
            f"{path}: damaged checkpoint: the SHA-256 digest of its content does not match the one stored "
            f"in its header (the file changed after it was written: a disk, copy or transfer error); do "
            f"not use it: resume from another checkpoint or retrain")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                    required: Sequence[str] = ()) -> Any:
    """Read a file written by :func:`atomic_save`, verify its SHA-256 digest, and unpickle it safely.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint (``last.pt``, ``best.pt``, or any file of :func:`atomic_save`).
    map_location : optional
        Passed to ``torch.load``; default: tensors on the CPU.
    required : sequence of str
        Keys the checkpoint (a dict) must hold.

    Returns
    -------
    object
        What was saved; loaded with ``torch.load(weights_only=True)``, so no
        pickled code is executed.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        (a ``ValueError``) If the file is damaged or truncated (header,
        length or digest check), not a physinv checkpoint file, or lacks a
        ``required`` key.  The message names the file.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> p = os.path.join(tempfile.mkdtemp(), "c.pt")
    >>> atomic_save({"w": torch.zeros(1)}, p)
    >>> try:
    ...     load_checkpoint(p, required=["w", "model"])
    ... except CheckpointError as e:
    ...     print(str(e) == f"{p} is not a physinv checkpoint (missing keys ['model'])")
    True
    """
    path = os.fspath(path)
    payload = _read_verified(path)
    try:
        obj = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - the digest matched: report what torch refused, with the path
        raise CheckpointError(f"{path}: its digest is intact but torch.load(weights_only=True) cannot read "
                              f"it: {type(e).__name__}: {e}") from e
    if required:
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path} is not a physinv checkpoint (it holds a {type(obj).__name__}, "
                                  f"not a dict with keys {list(required)})")
        missing = [k for k in required if k not in obj]
        if missing:
            raise CheckpointError(f"{path} is not a physinv checkpoint (missing keys {missing})")
    return obj


def load_weights(model: nn.Module, path: str | os.PathLike, map_location: Any = "cpu") -> nn.Module:
    """Load the model weights of a :class:`~physinv.train.Trainer` checkpoint (``last.pt`` or ``best.pt``).

    The file is verified like :func:`load_checkpoint` (digest, then
    ``torch.load(weights_only=True)``: no pickled code is executed).

    Parameters
    ----------
    model : nn.Module
        Receives the weights (``load_state_dict``, strict).
    path : str or os.PathLike
        A checkpoint holding a ``"model"`` state dict.
    map_location : optional
        Passed to ``torch.load``.

    Returns
    -------
    nn.Module
        ``model`` itself.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> m = torch.nn.Linear(2, 1)
    >>> p = os.path.join(tempfile.mkdtemp(), "best.pt")
    >>> atomic_save({"model": m.state_dict()}, p)
    >>> m2 = load_weights(torch.nn.Linear(2, 1), p)
    >>> bool(torch.equal(m.weight, m2.weight))
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    ck = load_checkpoint(path, map_location=map_location, required=["model"])
    model.load_state_dict(ck["model"])
    return model


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`physinv._io.atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def remove_stale_temporaries(folder: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Delete temporary files that an interrupted atomic write of one of ``names`` left in ``folder``.

    A process killed while writing ``folder/last.pt`` leaves a full-size
    ``folder/.last.pt.<random>.tmp``; nothing else ever renames or removes it.
    Only files named like the temporaries of ``physinv._io.atomic_write`` for
    one of ``names`` are removed.  Call it only when no other process writes
    those files.

    Parameters
    ----------
    folder : str or os.PathLike
        A directory (a missing one has nothing to clean).
    names : iterable of str
        The file names whose temporaries are removed (e.g. ``"last.pt"``).

    Returns
    -------
    list of str
        The removed paths.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for f in (".last.pt.k2x9_a1b.tmp", ".notes.txt.k2x9_a1b.tmp", "last.pt"):
    ...     open(os.path.join(d, f), "w").close()
    >>> [os.path.basename(p) for p in remove_stale_temporaries(d, ["last.pt"])]
    ['.last.pt.k2x9_a1b.tmp']
    >>> sorted(os.listdir(d))
    ['.notes.txt.k2x9_a1b.tmp', 'last.pt']
    """
    folder = os.fspath(folder)
    wanted = set(names)
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry)
        full = os.path.join(folder, entry)
        if m is not None and m.group("name") in wanted and os.path.isfile(full):
            try:
                os.remove(full)
            except FileNotFoundError:  # removed meanwhile
                continue
            removed.append(full)
    return removed
