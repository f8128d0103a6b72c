"""Checks shared by the configurations of physinv's studies.

Their errors start with the field's name and a colon (``"seeds: ..."``), the
form the command line maps to the flag of that field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["int_list"]


def int_list(name: str, vals: Any, low: int, unique: bool = True) -> tuple[int, ...]:
    """A non-empty tuple of ints ``>= low`` (distinct unless ``unique=False``) from ``vals``.

    Examples
    --------
    >>> int_list("seeds", [0, 1], 0)
    (0, 1)
    >>> int_list("sizes", (4, 4), 1)
    Traceback (most recent call last):
    ...
    ValueError: sizes: duplicates in (4, 4)
    """
    vals = tuple(vals)
    if not vals or any(not isinstance(v, int) or isinstance(v, bool) or v < low for v in vals):
        raise ValueError(f"{name}: must be a non-empty list of ints >= {low}, got {vals}")
    if unique and len(set(vals)) != len(vals):
        raise ValueError(f"{name}: duplicates in {vals}")
    return vals
