"""Seed mixing: one integer seed from several, for independent random streams."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["mix_seed"]


def mix_seed(*ints: int) -> int:
    """A 63-bit seed derived from several non-negative integers.

    The integers are mixed with :class:`numpy.random.SeedSequence` (two 32-bit
    words of its output, ``(w0 << 31) ^ w1``), so neighbouring inputs such as
    ``(seed, 5)`` and ``(seed, 6)`` give unrelated streams, and the result
    depends on the order of the inputs.  The value fits a ``torch.Generator``
    seed.

    Parameters
    ----------
    *ints : int
        One or more non-negative integers (Python or numpy integers).

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.

    Raises
    ------
    TypeError
        If an input is not an integer (floats are refused, not truncated).
    ValueError
        If no input is given or one is negative.

    Examples
    --------
    >>> mix_seed(0, 5)
    346450728717391432
    >>> mix_seed(0, 5) == mix_seed(5, 0)
    False
    """
    if not ints:
        raise ValueError("mix_seed needs at least one integer, got none")
    for k, v in enumerate(ints):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise TypeError(f"mix_seed: argument {k} must be a non-negative int, got {v!r} "
                            f"({type(v).__name__})")
        if v < 0:
            raise ValueError(f"mix_seed: argument {k} must be a non-negative int, got {v!r}")
    words = np.random.SeedSequence([int(v) for v in ints]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])
