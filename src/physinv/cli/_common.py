"""Pieces every ``physinv`` command shares: argument validators and common options.

The validators are ``type=`` functions for :mod:`argparse`: they raise
:class:`argparse.ArgumentTypeError`, so argparse itself names the flag in
the error (``argument --size: must be a positive integer, got -5``) and the
command exits with status 2.

:func:`common_parsers` returns the shared options as parent parsers; a
command picks the ones it honours::

    p = subparsers.add_parser("name", parents=[common["out"], common["threads"]])
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "DEFAULT_OUT_DIR",
    "positive_int",
    "nonneg_int",
    "positive_float",
    "nonneg_float",
    "finite_float",
    "probability",
    "device",
    "out_dir",
    "usable_cores",
    "default_threads",
    "common_parsers",
    "apply_runtime_options",
    "prepare_out_dir",
    "study_out",
    "flag_error",
    "study_kwargs",
    "print_counts",
]

#: Folder every study writes into unless ``--out`` says otherwise (created in
#: the current directory; nothing above it is ever created).
DEFAULT_OUT_DIR = "physinv_out"


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """``type=`` validator: an integer >= 1.

    Examples
    --------
    >>> positive_int("3")
    3
    >>> positive_int("-5")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be a positive integer, got -5
    """
    what = "a positive integer"
    value = _int(text, what)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def nonneg_int(text: str) -> int:
    """``type=`` validator: an integer >= 0.

    Examples
    --------
    >>> nonneg_int("0")
    0
    """
    what = "a non-negative integer"
    value = _int(text, what)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def finite_float(text: str) -> float:
    """``type=`` validator: any finite number (no ``nan``/``inf``).

    Examples
    --------
    >>> finite_float("-2.5")
    -2.5
    """
    return _float(text, "a finite number")


def positive_float(text: str) -> float:
    """``type=`` validator: a finite number > 0.

    Examples
    --------
    >>> positive_float("1e-3")
    0.001
    """
    what = "a finite number > 0"
    value = _float(text, what)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def nonneg_float(text: str) -> float:
    """``type=`` validator: a finite number >= 0.

    Examples
    --------
    >>> nonneg_float("0")
    0.0
    """
    what = "a finite number >= 0"
    value = _float(text, what)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def probability(text: str) -> float:
    """``type=`` validator: a number in ``[0, 1]``.

    Examples
    --------
    >>> probability("0.25")
    0.25
    """
    what = "a number in [0, 1]"
    value = _float(text, what)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def device(text: str) -> str:
    """``type=`` validator: a torch device that exists here, returned in canonical form.

    ``auto`` is ``cuda`` when a CUDA device is available, else ``cpu``.
    ``cuda`` or ``cuda:N`` without such a device is an error, never a silent
    fall-back to the CPU.

    Examples
    --------
    >>> device("cpu")
    'cpu'
    >>> device("auto") in ("cpu", "cuda")
    True
    """
    import torch

    value = text.strip().lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text}") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text} asked for, but torch sees no CUDA device "
                                             "(use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text} asked for, but torch sees only "
                                             f"{torch.cuda.device_count()} CUDA device(s)")
        return str(dev)
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text}")


def out_dir(text: str) -> str:
    """``type=`` validator: an output folder that exists or can be made as one new folder.

    The folder itself may be missing (the command creates it), but its parent
    must exist: a typo never silently creates a tree of folders.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> out_dir(d) == d
    True
    >>> out_dir("/nonexistent/run1")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: the parent folder '/nonexistent' of /nonexistent/run1 does not exist
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    parent = p.parent if str(p.parent) else Path(".")
    if not p.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the parent folder {str(parent)!r} of {text} does not exist")
    return text


def prepare_out_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` if missing (one level only) and return it.

    Raises
    ------
    FileNotFoundError
        If the parent folder does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> prepare_out_dir(os.path.join(tempfile.mkdtemp(), "run")).is_dir()
    True
    """
    p = Path(os.fspath(path))
    p.mkdir(exist_ok=True)
    return p


def usable_cores() -> int:
    """Number of CPU cores this process may run on (its affinity mask where the platform has one).

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The default of ``--threads``: ``min(4, usable_cores())``.

    Examples
    --------
    >>> 1 <= default_threads() <= 4
    True
    """
    return min(4, usable_cores())


_THREADS_HELP = (
    "number of CPU threads torch may use (default: min(4, usable cores) = %(default)s). "
    "Torch's own default of one thread per core oversubscribes a machine shared with other "
    "work and can make small solves several times slower"
)


def common_parsers() -> dict[str, argparse.ArgumentParser]:
    """Parent parsers of the options shared by commands.

    Returns
    -------
    dict
        ``out`` (``--out DIR``), ``seed`` (``--seed N``), ``threads``
        (``--threads N``), ``device`` (``--device DEV``) and ``progress``
        (``--no-progress``), each an :class:`argparse.ArgumentParser` made
        with ``add_help=False`` for ``parents=[...]``.

    Examples
    --------
    >>> import argparse
    >>> common = common_parsers()
    >>> p = argparse.ArgumentParser(parents=[common["seed"], common["threads"]])
    >>> p.parse_args(["--seed", "3", "--threads", "1"]).seed
    3
    """
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--out", metavar="DIR", type=out_dir, default=DEFAULT_OUT_DIR,
                     help=f"output folder of the study (default: a folder named after the study in "
                     f"{DEFAULT_OUT_DIR}/ in the current directory, e.g. {DEFAULT_OUT_DIR}/bench-deconv); it "
                     "is created if missing, but its parent folder must exist")
    seed = argparse.ArgumentParser(add_help=False)
    seed.add_argument("--seed", metavar="N", type=nonneg_int, default=0,
                      help="random seed; the same seed gives the same results (default: %(default)s)")
    threads = argparse.ArgumentParser(add_help=False)
    threads.add_argument("--threads", metavar="N", type=positive_int, default=default_threads(),
                         help=_THREADS_HELP)
    dev = argparse.ArgumentParser(add_help=False)
    dev.add_argument("--device", metavar="DEV", type=device, default="cpu",
                     help="torch device: cpu, cuda, cuda:N, or auto (cuda when available) "
                     "(default: %(default)s)")
    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="do not show progress bars")
    return {"out": out, "seed": seed, "threads": threads, "device": dev, "progress": progress}


def apply_runtime_options(args: Any) -> None:
    """Apply the process-wide options found on parsed ``args`` (today: ``--threads``).

    Examples
    --------
    >>> import argparse, torch
    >>> before = torch.get_num_threads()
    >>> apply_runtime_options(argparse.Namespace(threads=1))
    >>> torch.get_num_threads()
    1
    >>> torch.set_num_threads(before)
    """
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))


# ------------------------------------------------------------------ what every study command does
def study_out(args: argparse.Namespace, default: str) -> str:
    """A study's output folder: ``--out``, or ``default`` under :data:`DEFAULT_OUT_DIR` (both created)."""
    if args.out is None:
        prepare_out_dir(DEFAULT_OUT_DIR)
        return str(prepare_out_dir(default))
    return str(prepare_out_dir(args.out))


def flag_error(parser: argparse.ArgumentParser | None, e: ValueError, flags: Mapping[str, str]) -> NoReturn:
    """Report a configuration error ``"field: ..."`` as argparse's error naming the flag of ``field``.

    ``flags`` maps configuration fields to command-line flags. argparse then
    exits with status 2; an error that names no known field is raised again.

    Examples
    --------
    >>> p = argparse.ArgumentParser(prog="physinv x")
    >>> try:
    ...     flag_error(p, ValueError("steps: must be >= 1, got 0"), {"steps": "--steps"})
    ... except SystemExit as stop:
    ...     print(stop.code)
    2
    """
    msg = str(e)
    for field, flag in flags.items():
        if parser is not None and msg.startswith((f"{field}:", f"{field} ")):
            parser.error(f"argument {flag}: {msg}")
    raise e


def study_kwargs(quick: Mapping[str, Any] | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of a study's configuration: the ``--quick`` preset, then the flags given.

    Flags left out (``None``) keep the preset's or the configuration's
    default; lists become tuples.

    Examples
    --------
    >>> study_kwargs({"steps": 10, "seeds": (0, 1)}, {"steps": None, "seeds": [3]})
    {'steps': 10, 'seeds': (3,)}
    """
    kw: dict[str, Any] = dict(quick or {})
    kw.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items() if v is not None})
    return kw


def print_counts(res: Any, shard: Any = None) -> None:
    """Print what a study run did with its cells, and each failed cell (to stderr)."""
    where = f", shard {shard}" if shard else ""
    print(f"cells: {res.computed} computed, {res.reused} read back, {res.other_shards} in other shards"
          f"{where}, {res.missing} missing from the tables; {res.seconds:.1f} s")
    for cid, msg in res.failed:
        print(f"FAILED cell {cid}: {msg}", file=sys.stderr)

