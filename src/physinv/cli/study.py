"""``physinv study``: studies of how learned inversion should be trained (``losses``, ``jpo``).

Each study lives in its own module of this package, named in
:data:`STUDY_MODULES`; such a module defines ``register(subparsers, common)
-> None``, which adds the study's parser to the ``study`` group and sets its
handler.  The work itself lives in library modules that return results; the
command only parses, runs and prints.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["register", "STUDY_MODULES"]

#: Modules of :mod:`physinv.cli` that each add one ``physinv study`` subcommand.
STUDY_MODULES: tuple[str, ...] = ("_study_losses", "_study_jpo")


def _study_modules() -> Iterator[ModuleType]:
    package = __name__.rsplit(".", 1)[0]
    for name in STUDY_MODULES:
        qualified = f"{package}.{name}"
        try:
            yield importlib.import_module(qualified)
        except ModuleNotFoundError as e:
            if e.name != qualified:  # the module exists but something it imports is missing
                raise


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add the ``study`` group and its studies to ``subparsers``."""
    p = subparsers.add_parser("study", help="studies of loss design and joint parameterized optimization",
                              description="Reproducible studies of how networks should be trained to "
                              "invert. Run 'physinv study STUDY --help' for the options of a study.")
    sub = p.add_subparsers(dest="study", metavar="STUDY", title="studies")
    for module in _study_modules():
        module.register(sub, common)

    def _no_study(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=_no_study)
