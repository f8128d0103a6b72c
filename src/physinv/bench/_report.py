"""Shared by the studies: confidence intervals, markdown tables and atomic writers for their outputs.

Examples
--------
>>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
>>> round(m, 3), round(lo, 3), round(hi, 3)
(2.0, -0.484, 4.484)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._io import atomic_write

__all__ = ["mean_ci", "markdown_table", "write_text", "write_json", "write_csv", "save_figure",
           "CI_METHOD"]

#: How :func:`mean_ci` computes its interval (written into every report).
CI_METHOD = "two-sided Student t-interval of the mean, 95 %"


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval ``(mean, low, high)``.

    With a single value the interval is ``(nan, nan)``; non-finite values
    are an error (a method that produced NaN must be reported, not averaged).

    Examples
    --------
    >>> mean_ci([2.0])[0], math.isnan(mean_ci([2.0])[1])
    (2.0, True)
    """
    from scipy import stats

    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_ci needs at least one value")
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"mean_ci: values must be finite, got {v}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = len(v)
    m = sum(v) / n
    if n == 1:
        return m, math.nan, math.nan
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    h = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return m, m - h, m + h


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub-flavoured markdown table (``align``: one of ``l r c`` per column, default left).

    Examples
    --------
    >>> print(markdown_table(["a", "b"], [[1, "x"]], "rl"))
    | a | b |
    |---:|:---|
    | 1 | x |
    """
    header = list(header)
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align must have one letter per column ({len(header)}), got {align!r}")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    for r in rows:
        r = list(r)
        if len(r) != len(header):
            raise ValueError(f"row {r} has {len(r)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(_fmt(c) for c in r) + " |")
    return "\n".join(lines)


def write_text(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike, obj: Any) -> str:
    """Write ``obj`` as indented JSON atomically (NaN and infinities become ``null``)."""
    def clean(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, Mapping):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    return write_text(path, json.dumps(clean(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Write ``rows`` (dicts) as CSV with exactly ``columns`` (missing entries empty), atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return write_text(path, buf.getvalue())


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 90) -> str:
    """Save a matplotlib figure as PNG atomically.

    Works with a bare :class:`matplotlib.figure.Figure` (no pyplot, no
    global backend); a pyplot figure stays open (close it yourself).
    """
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
