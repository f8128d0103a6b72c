"""The JPO study end to end (tiny): CSV columns, method names, resume, figure, provenance, CLI."""

from __future__ import annotations

import csv
import json
import os

import pytest

from physinv.cli import main
from physinv.jpo import study as js


def _tiny(**kw):
    base = dict(problems=("cosine", "billiards"), n_problems=(1, 3), seeds=(0,), budget=8, refine=2,
                hidden=(8,))
    base.update(kw)
    return js.JPOConfig(**base)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    res = js.run(_tiny(), out, progress=False)
    assert res.computed == 4 and res.reused == 0 and res.missing == 0 and not res.failed
    rows = _rows(out / "jpo.csv")
    assert set(js.CSV_COLUMNS) <= set(rows[0])
    for col in ("problem", "n_problems", "seed", "instance", "method", "final_loss"):
        assert col in rows[0]
    # problems x N x seeds x instances x methods
    assert len(rows) == (1 + 3) * 2 * len(js.METHODS)
    for r in rows:
        m = r["method"]
        assert m.startswith("jpo") if "jpo" in m else "bfgs" in m
        assert int(r["evals"]) <= 8
        assert float(r["final_loss"]) <= float(r["start_loss"]) + 1e-12   # every method keeps its best point
        if m != js.REFERENCE:
            assert r["outcome"] in ("win", "tie", "loss")
    # the summary agrees with the per-instance outcomes in the CSV
    summary = _rows(out / "jpo_summary.csv")
    assert {s["reference"] for s in summary} == {js.REFERENCE, js.BEST_BFGS}
    for s in summary:
        mine = [r for r in rows if r["problem"] == s["problem"] and r["n_problems"] == s["n_problems"]
                and r["method"] == s["method"]]
        col = "outcome" if s["reference"] == js.REFERENCE else "outcome_best_bfgs"
        assert int(s["wins"]) == sum(r[col] == "win" for r in mine)
        assert int(s["losses"]) == sum(r[col] == "loss" for r in mine)
        assert int(s["instances"]) == len(mine)
        assert float(s["wilson_low"]) <= float(s["win_fraction"]) <= float(s["wilson_high"])
        if s["reference"] == js.BEST_BFGS:
            assert s["method"].startswith("jpo")
    # best-bfgs is the per-instance minimum of the BFGS-type losses: never beaten more often than bfgs-scipy
    for s in summary:
        if s["reference"] == js.BEST_BFGS:
            plain = next(q for q in summary if q["reference"] == js.REFERENCE and q["method"] == s["method"]
                         and q["problem"] == s["problem"] and q["n_problems"] == s["n_problems"])
            assert int(s["wins"]) <= int(plain["wins"])
    assert os.path.getsize(out / "figures" / "jpo_win_fraction.png") > 1000
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"]["budget"] == 8 and prov["seed"] == 0 and "tie" in prov
    assert "jpo vs bfgs-scipy" in (out / "jpo.md").read_text()
    # resume: nothing recomputed, same table
    again = js.run(_tiny(), out, progress=False)
    assert again.computed == 0 and again.reused == 4
    assert _rows(out / "jpo.csv") == rows
    # a changed setting is a different cell
    more = js.run(_tiny(n_problems=(1, 3, 2)), out, progress=False)
    assert more.computed == 2 and more.reused == 4


def test_config_errors():
    with pytest.raises(ValueError, match="problems: unknown"):
        _tiny(problems=("nope",))
    with pytest.raises(ValueError, match="n_problems"):
        _tiny(n_problems=(0,))
    with pytest.raises(ValueError, match="seeds"):
        _tiny(seeds=(1, 1))
    with pytest.raises(ValueError, match="methods: must include"):
        _tiny(methods=("jpo",))
    with pytest.raises(ValueError, match="refine: must be < budget"):
        _tiny(refine=8)
    with pytest.raises(ValueError, match="lr"):
        _tiny(lr=0.0)
    with pytest.raises(ValueError, match="device"):
        _tiny(device="cuda")
    with pytest.raises(TypeError, match="JPOConfig"):
        js.run({"problems": ("wave",)}, "x")


def test_cli_tiny_run_and_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["study", "jpo", "--out", str(out), "--problems", "cosine", "--n-problems", "2", "--seeds", "0",
            "--budget", "6", "--refine", "2", "--hidden", "8", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "jpo vs bfgs-scipy" in text and "Tie rule" in text and "1 computed" in text
    assert (out / "jpo.csv").exists() and (out / "provenance.json").exists()
    assert main(argv) == 0
    assert "0 computed, 1 read back" in capsys.readouterr().out


def test_cli_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["study", "jpo", "--problems", "nope", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--problems" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["study", "jpo", "--budget", "4", "--refine", "4", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--refine" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["study", "jpo", "--methods", "jpo", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--methods" in capsys.readouterr().err
