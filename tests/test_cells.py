"""Study cells: a damaged cell file (one changed digit) is never read back as a result."""

from __future__ import annotations

import pytest

from physinv.bench._cells import Cell, CellStore


def test_a_changed_digit_in_a_cell_file_is_detected(tmp_path):
    store = CellStore(tmp_path, "demo")
    cell = Cell({"method": "x", "n": 4})
    store.save(cell, {"psnr": 27.125, "nan": float("nan")})
    assert store.load(cell)["result"]["psnr"] == 27.125
    assert len(store.records()) == 1
    path = store.path(cell.id)
    text = open(path).read()
    assert "27.125" in text
    with open(path, "w") as fh:
        fh.write(text.replace("27.125", "29.125"))
    assert store.load(cell) is None  # recomputed by the next run, never used
    with pytest.warns(UserWarning, match="damaged"):
        assert store.records() == []
