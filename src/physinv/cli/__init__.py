"""The ``physinv`` command line.

Run ``physinv --help`` for the list of commands and ``physinv COMMAND --help``
for each command's options.

Each command lives in its own module of this package, named in
:data:`COMMAND_MODULES`.  A command module defines
``register(subparsers, common) -> None``, which adds its parser (built on the
shared parent parsers in ``common``, see :func:`physinv.cli._common.common_parsers`)
and calls ``set_defaults(handler=fn)`` with ``fn(args) -> int``, the exit
status.  :func:`main` dispatches through ``args.handler``.

Exit status: 0 on success, 2 for bad arguments or a library ``ValueError``
(printed as ``physinv COMMAND: error: MESSAGE``, no traceback), 1 for a
file-system error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from . import _common

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: Modules of :mod:`physinv.cli` that each define a command (``register(subparsers, common)``).
COMMAND_MODULES: tuple[str, ...] = ("demo", "deblur", "bench", "study", "ir")


def _command_modules() -> Iterator[ModuleType]:
    """Import the command modules by name; a module not written yet is skipped."""
    for name in COMMAND_MODULES:
        qualified = f"{__name__}.{name}"
        try:
            yield importlib.import_module(qualified)
        except ModuleNotFoundError as e:
            if e.name != qualified:  # the module exists but something it imports is missing
                raise


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``physinv`` command, with every command registered.

    Examples
    --------
    >>> p = build_parser()
    >>> p.parse_args(["demo", "--size", "64"]).size
    64
    """
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="physinv",
        description="Physics-constrained imaging: exact operators, classical solvers and "
        "physics-constrained networks.",
        epilog="Run 'physinv COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"physinv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    common = _common.common_parsers()
    for module in _command_modules():
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``physinv`` command; returns the exit status.

    Bad arguments make argparse print the usage and a message naming the flag,
    then exit with status 2 (``SystemExit``).  ``physinv`` without a command
    prints the help and returns 2.

    Examples
    --------
    >>> main([])  # doctest: +ELLIPSIS
    usage: physinv ...
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    command = args.command
    try:
        _common.apply_runtime_options(args)
        return int(handler(args))
    except KeyboardInterrupt:
        print(f"physinv {command}: interrupted", file=sys.stderr)
        return 130
    except ValueError as err:
        print(f"physinv {command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"physinv {command}: error: {err}", file=sys.stderr)
        return 1
