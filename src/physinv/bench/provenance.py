"""Provenance of a study run: versions, commit, machine, threads, seed and the full configuration.

Examples
--------
>>> p = collect({"size": 32}, device="cpu", threads=1, seed=0)
>>> sorted(k for k in ("physinv", "torch", "numpy", "scipy", "scikit-image") if k in p["versions"])
['numpy', 'physinv', 'scikit-image', 'scipy', 'torch']
>>> p["config"], p["seed"]
({'size': 32}, 0)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["collect", "git_commit", "package_versions"]

_PACKAGES = ("torch", "numpy", "scipy", "scikit-image", "matplotlib", "tqdm")


def package_versions() -> dict[str, str | None]:
    """Versions of physinv and the packages a study depends on (``None`` when one is not installed).

    Examples
    --------
    >>> "torch" in package_versions()
    True
    """
    from importlib import metadata

    from .. import __version__

    out: dict[str, str | None] = {"physinv": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The git commit of the checkout holding ``path`` (default: physinv's source), or ``None``.

    Returns ``{"commit": sha, "dirty": bool}`` where ``dirty`` says that
    tracked files differ from the commit; ``None`` when physinv is not run
    from a git checkout or git is not available.

    Examples
    --------
    >>> info = git_commit("/")
    >>> info is None or len(info["commit"]) == 40
    True
    """
    where = os.path.dirname(os.path.abspath(__file__)) if path is None else os.fspath(path)
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if len(sha) != 40:
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def collect(config: Mapping[str, Any], *, device: str, threads: int | None, seed: int,
            argv: Sequence[str] | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-able provenance record for one run of a study.

    Parameters
    ----------
    config : mapping
        The study's full configuration.
    device : str
        Torch device the study ran on.
    threads : int or None
        Torch intra-op threads (``None``: the library default, recorded as
        ``torch.get_num_threads()``).
    seed : int
        Base seed.
    argv : sequence of str, optional
        The command line, when run from one.
    extra : mapping, optional
        More entries to record.

    Returns
    -------
    dict
        ``versions``, ``git``, ``python``, ``platform``, ``machine`` (CPU
        count, torch threads, CUDA device name when used), ``device``,
        ``threads``, ``seed``, ``started`` (UTC), ``argv``, ``config``.
    """
    import torch

    machine: dict[str, Any] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                               "processor": platform.processor() or platform.machine()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        machine["cuda_device"] = torch.cuda.get_device_name(torch.device(device))
        machine["cuda_version"] = torch.version.cuda
    rec = {
        "versions": package_versions(),
        "git": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": machine,
        "device": str(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "seed": seed,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv) if argv is not None else None,
        "config": dict(config),
    }
    if extra:
        rec.update(dict(extra))
    return rec
