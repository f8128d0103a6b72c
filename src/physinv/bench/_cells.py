"""Resumable study cells: IDs from configurations, one atomic JSON file per finished cell, shards, merge.

A study is a list of *cells*, each a small JSON-able configuration (for the
deconvolution benchmark: image x PSF x noise x boundary x method plus every
setting the result depends on). A cell's ID is a hash of its canonical JSON,
so the same configuration always has the same ID, in any process, on any
machine. A finished cell is stored as ``DIR/cells/<id>.json`` (written
atomically); a re-run reads it back instead of computing it again, unless
``force`` is set.

Cells can be split across processes with :class:`Shard` (``--shard i/n``):
a cell belongs to shard ``i`` when the hash of its *group* (by default the
cell itself) modulo ``n`` is ``i - 1``, so every process decides alone and
the shards are disjoint and cover all cells. Cells that share expensive
work (one training run for all test images) share a group and so land in
the same shard. :func:`merge_cells` copies the cells of several output
folders into one, after which a plain re-run there computes nothing and
writes the combined tables.

Examples
--------
>>> import tempfile
>>> store = CellStore(tempfile.mkdtemp(), study="demo")
>>> cells = [Cell({"x": k}) for k in range(4)]
>>> calls = []
>>> def compute(cell):
...     calls.append(cell.config["x"])
...     return {"y": cell.config["x"] ** 2}
>>> run = run_cells(cells, compute, store, progress=False)
>>> [r["result"]["y"] for r in run.records], run.computed
([0, 1, 4, 9], 4)
>>> again = run_cells(cells, compute, store, progress=False)
>>> again.computed, again.reused, len(calls)
(0, 4, 4)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._io import atomic_write

__all__ = [
    "CELL_FORMAT",
    "StudyCounts",
    "canonical_json",
    "config_id",
    "Cell",
    "CellStore",
    "Shard",
    "RunSummary",
    "run_cells",
    "merge_cells",
    "MergeReport",
]

#: Version of the cell file layout (stored in every cell file).
CELL_FORMAT = 2

_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"configuration keys must be str, got {k!r} ({type(k).__name__})")
            out[k] = _canonical(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        v = float(obj)
        if not math.isfinite(v):
            raise ValueError(f"configuration values must be finite, got {v}")
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    raise TypeError(f"configuration values must be JSON-like (dict, list, str, number, bool, None), got "
                    f"{type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """The canonical JSON text of a configuration: sorted keys, no spaces, integral floats as ints.

    ``1`` and ``1.0`` give the same text (so an ID does not depend on how a
    number was typed), tuples become lists; non-finite numbers and objects
    that are not JSON-like raise.

    Examples
    --------
    >>> canonical_json({"b": 1.0, "a": (0.5, "x")})
    '{"a":[0.5,"x"],"b":1}'
    """
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_id(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of :func:`canonical_json` of ``config``.

    Examples
    --------
    >>> config_id({"a": 1}) == config_id({"a": 1.0})
    True
    >>> len(config_id({"a": 1}))
    16
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping, got {type(config).__name__}")
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One unit of work: its configuration (which fixes its ID) and its sharding group.

    Parameters
    ----------
    config : mapping
        Everything the result depends on (JSON-like).
    group : mapping, optional
        Cells with equal groups go to the same shard (default: the cell alone).
    meta : mapping
        Extra information for the computation that is *not* part of the ID
        (labels, display names); not stored as configuration.

    Examples
    --------
    >>> Cell({"a": 1}).id == config_id({"a": 1})
    True
    """

    config: Mapping[str, Any]
    group: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", json.loads(canonical_json(self.config)))
        if self.group is not None:
            object.__setattr__(self, "group", json.loads(canonical_json(self.group)))

    @property
    def id(self) -> str:
        return config_id(self.config)

    @property
    def group_id(self) -> str:
        return config_id(self.config if self.group is None else self.group)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as in ``--shard 2/3``).

    Examples
    --------
    >>> Shard.parse("2/3")
    Shard(index=2, count=3)
    >>> cells = [Cell({"k": k}) for k in range(30)]
    >>> parts = [[c.id for c in cells if Shard(i, 3).owns(c)] for i in (1, 2, 3)]
    >>> sorted(sum(parts, [])) == sorted(c.id for c in cells)
    True
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        for name, v in (("index", self.index), ("count", self.count)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise TypeError(f"shard {name} must be an int, got {v!r}")
        if not (self.count >= 1 and 1 <= self.index <= self.count):
            raise ValueError(f"shard must be i/n with 1 <= i <= n, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"i/n"`` (1 <= i <= n)."""
        if not isinstance(text, str):
            raise TypeError(f"shard must be a str 'i/n', got {type(text).__name__}")
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"shard must look like 'i/n' (e.g. '1/4'), got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, cell: Cell) -> bool:
        """Whether ``cell`` belongs to this shard."""
        return int(cell.group_id, 16) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _record_digest(rec: Mapping[str, Any]) -> str:
    """SHA-256 of a cell record's canonical JSON, its own ``sha256`` field left out."""
    body = {k: v for k, v in rec.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=True).encode()).hexdigest()


class CellStore:
    """Finished cells of one study as ``root/cells/<id>.json`` files, written atomically.

    Parameters
    ----------
    root : str or os.PathLike
        The study's output folder.
    study : str
        Study name, stored in each cell and checked on reading (a cell file
        of another study, or with another configuration under the same ID, is
        treated as missing).

    Examples
    --------
    >>> import tempfile
    >>> s = CellStore(tempfile.mkdtemp(), "demo")
    >>> c = Cell({"a": 1})
    >>> s.load(c) is None
    True
    >>> _ = s.save(c, {"value": 2.5})
    >>> s.load(c)["result"]
    {'value': 2.5}
    """

    def __init__(self, root: str | os.PathLike, study: str) -> None:
        if not isinstance(study, str) or not study:
            raise ValueError(f"study must be a non-empty str, got {study!r}")
        self.root = os.path.abspath(os.fspath(root))
        self.study = study
        self.dir = os.path.join(self.root, "cells")

    def path(self, cell_id: str, suffix: str = ".json") -> str:
        """Where the cell ``cell_id`` is stored (``suffix`` for side files such as previews)."""
        if not isinstance(cell_id, str) or not _ID_RE.match(cell_id):
            raise ValueError(f"cell_id must be 16 hex digits, got {cell_id!r}")
        return os.path.join(self.dir, cell_id + suffix)

    @staticmethod
    def _read(path: str) -> dict[str, Any] | None:
        """A cell record whose SHA-256 matches its content, else ``None`` (missing, unreadable, damaged)."""
        try:
            with open(path, encoding="utf-8") as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or rec.get("sha256") != _record_digest(rec):
            return None
        return rec

    def load(self, cell: Cell) -> dict[str, Any] | None:
        """The stored record of ``cell``, or ``None`` when it is missing, unreadable or for another config."""
        rec = self._read(self.path(cell.id))
        if (rec is None or rec.get("study") != self.study or rec.get("id") != cell.id
                or rec.get("config") != cell.config or not isinstance(rec.get("result"), dict)):
            return None
        return rec

    def save(self, cell: Cell, result: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``result`` for ``cell`` atomically and return the record written."""
        rec = {"format": CELL_FORMAT, "study": self.study, "id": cell.id, "config": cell.config,
               "result": json.loads(json.dumps(dict(result), allow_nan=True)),
               "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        rec["sha256"] = _record_digest(rec)
        text = json.dumps(rec, indent=1, sort_keys=True, allow_nan=True)
        atomic_write(self.path(cell.id), lambda fh: fh.write(text), "w")
        return rec

    def ids(self) -> list[str]:
        """IDs of every cell file present (valid or not)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and _ID_RE.match(n[:-5]))

    def records(self) -> list[dict[str, Any]]:
        """Every readable record of this study in the store (sorted by ID)."""
        out = []
        for cid in self.ids():
            rec = self._read(self.path(cid))
            if rec is None:
                warnings.warn(f"cell file {self.path(cid)} is unreadable or damaged (SHA-256 mismatch); "
                              f"left out (re-run the study to recompute it)", UserWarning, stacklevel=2)
                continue
            if rec.get("study") == self.study and rec.get("id") == cid:
                out.append(rec)
        return out


@dataclass
class RunSummary:
    """What :func:`run_cells` did: the records of the cells of this shard, in the order given."""

    records: list[dict[str, Any]]
    computed: int = 0
    reused: int = 0
    other_shards: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclass(kw_only=True)
class StudyCounts:
    """What one run of a study did with its cells: the fields every study's results share.

    A study's results dataclass derives from it (the fields are keyword-only,
    so they follow the study's own fields) and fills them with :meth:`count`.

    Examples
    --------
    >>> import time
    >>> c = StudyCounts().count(RunSummary(records=[{}], computed=1), n_cells=2, n_records=1,
    ...                         t0=time.perf_counter())
    >>> c.computed, c.missing
    (1, 1)
    """

    computed: int = 0
    reused: int = 0
    other_shards: int = 0
    missing: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def count(self, summary: RunSummary, n_cells: int, n_records: int, t0: float) -> StudyCounts:
        """Take the counts from ``summary``; ``missing`` is ``n_cells - n_records``; seconds since ``t0``."""
        self.computed, self.reused, self.other_shards = summary.computed, summary.reused, summary.other_shards
        self.missing, self.failed = n_cells - n_records, list(summary.failed)
        self.seconds = time.perf_counter() - t0
        return self


def run_cells(cells: Sequence[Cell], compute: Callable[[Cell], Mapping[str, Any]], store: CellStore, *,
              force: bool = False, shard: Shard | None = None, progress: bool = True, desc: str = "cells",
              on_error: str = "raise") -> RunSummary:
    """Compute the cells that are not stored yet (all with ``force``), store each as soon as it is done.

    Parameters
    ----------
    cells : sequence of Cell
        The study, in the order to compute it (put cells that share data next
        to each other). Duplicate IDs are an error.
    compute : callable
        ``compute(cell) -> dict`` (JSON-able).
    store : CellStore
        Where finished cells live.
    force : bool
        Recompute (and overwrite) stored cells.
    shard : Shard, optional
        Only the cells this shard owns.
    progress : bool
        A tqdm progress bar (on stderr).
    desc : str
        Its label.
    on_error : {"raise", "record"}
        ``"record"`` stores nothing for a failing cell, notes ``(id, message)``
        in :attr:`RunSummary.failed` and goes on.

    Returns
    -------
    RunSummary
    """
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    cells = list(cells)
    seen: dict[str, Cell] = {}
    for c in cells:
        if not isinstance(c, Cell):
            raise TypeError(f"cells must be Cell objects, got {type(c).__name__}")
        if c.id in seen:
            raise ValueError(f"two cells have the same configuration (id {c.id}): {c.config}")
        seen[c.id] = c
    mine = [c for c in cells if shard is None or shard.owns(c)]
    summary = RunSummary(records=[], other_shards=len(cells) - len(mine))
    todo = []
    for c in mine:
        rec = None if force else store.load(c)
        if rec is None:
            todo.append(c)
        else:
            summary.reused += 1
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc, unit="cell", leave=False)
    done: dict[str, dict[str, Any]] = {}
    try:
        for c in todo:
            try:
                result = compute(c)
            except Exception as e:  # noqa: BLE001 - recorded or re-raised
                if on_error == "raise":
                    raise
                summary.failed.append((c.id, f"{type(e).__name__}: {e}"))
                continue
            finally:
                if bar is not None:
                    bar.update(1)
            done[c.id] = store.save(c, result)
            summary.computed += 1
    finally:
        if bar is not None:
            bar.close()
    for c in mine:
        rec = done.get(c.id) or store.load(c)
        if rec is not None:
            summary.records.append(rec)
    return summary


@dataclass
class MergeReport:
    """What :func:`merge_cells` did."""

    copied: int = 0
    identical: int = 0
    conflicts: list[str] = dataclasses.field(default_factory=list)
    skipped: int = 0


def merge_cells(sources: Iterable[str | os.PathLike], dest: str | os.PathLike, study: str) -> MergeReport:
    """Copy the finished cells of ``study`` from several output folders (shards) into ``dest``.

    A cell already in ``dest`` with the same result is counted as identical;
    with a different result it is a conflict: ``dest`` keeps its own, the ID
    is listed. Side files of a cell (``<id>.*``, e.g. previews) are copied
    with it. Files of other studies are skipped.

    Examples
    --------
    >>> import tempfile
    >>> a, b, d = (tempfile.mkdtemp() for _ in range(3))
    >>> _ = CellStore(a, "s").save(Cell({"k": 1}), {"v": 1})
    >>> _ = CellStore(b, "s").save(Cell({"k": 2}), {"v": 2})
    >>> merge_cells([a, b], d, "s").copied, len(CellStore(d, "s").records())
    (2, 2)
    """
    dst = CellStore(dest, study)
    report = MergeReport()
    for src_root in sources:
        src = CellStore(src_root, study)
        if os.path.abspath(src.root) == dst.root:
            continue
        for rec in src.records():
            cid = rec["id"]
            try:
                cell = Cell(rec["config"])
            except (TypeError, ValueError):
                report.skipped += 1
                continue
            if cell.id != cid:
                report.skipped += 1
                continue
            have = dst.load(cell)
            if have is not None:
                if have["result"] == rec["result"]:
                    report.identical += 1
                else:
                    report.conflicts.append(cid)
                continue
            for name in sorted(os.listdir(src.dir)):
                if name.startswith(cid + ".") and not name.endswith(".json"):
                    with open(os.path.join(src.dir, name), "rb") as fh:
                        data = fh.read()
                    atomic_write(os.path.join(dst.dir, name), lambda fh, data=data: fh.write(data))
            text = json.dumps(rec, indent=1, sort_keys=True, allow_nan=True)
            atomic_write(dst.path(cid), lambda fh, text=text: fh.write(text), "w")
            report.copied += 1
    return report
