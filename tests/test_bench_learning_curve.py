"""``physinv bench learning-curve``: cells, resume, shards, torchrun, merge, CLI errors."""

from __future__ import annotations

import csv
import os
import sys

import pytest
from _procs import run_group, torchrun_env

from physinv.bench import learning_curve as lc
from physinv.bench._cells import Cell, CellStore, Shard

TINY = dict(problems=("blur", "radon"), methods=("spectral", "landweber", "unet"), sizes=(2, 3), seeds=(0,),
            size=16, n_test=1, steps=3, classical=("fbp", "tikhonov-gcv"), threads=1)
# Columns that depend on the machine's speed, not on the computation.
TIMING = ("train_seconds",)


def _csv(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    out = tmp_path_factory.mktemp("lc")
    threads = torch.get_num_threads()
    try:
        res = lc.run(lc.LearningCurveConfig(**TINY), out, progress=False)
    finally:
        torch.set_num_threads(threads)
    yield out, res


def test_cells_cover_grid_and_skip_inapplicable():
    cells = lc.make_cells(lc.LearningCurveConfig(**TINY))
    learned = [c for c in cells if c.config["family"] != "classical"]
    # spectral applies to blur only: blur 3 methods, radon 2 (landweber, unet), x 2 sizes x 1 seed
    assert len(learned) == (3 + 2) * 2
    classical = {(c.config["problem"], c.config["method"]) for c in cells
                 if c.config["family"] == "classical"}
    assert classical == {("blur", "tikhonov-gcv"), ("radon", "fbp")}
    assert len({c.id for c in cells}) == len(cells)
    assert all(c.config["n_val"] == max(1, c.config["n_train"] // 4) for c in learned)


def test_budget_rules():
    steps = lc.LearningCurveConfig(sizes=(4, 256), steps=100)
    assert steps.n_steps(4) == steps.n_steps(256) == 100
    ep = lc.LearningCurveConfig(sizes=(4, 256), steps=100, budget="epochs", epochs=10, batch=4)
    assert ep.n_steps(4) == 10 and ep.n_steps(16) == 40 and ep.n_steps(256) == 100  # capped
    assert "capped" in ep.budget_text()


@pytest.mark.parametrize("kw, word", [({"problems": ("mri",)}, "problems"), ({"sizes": (0,)}, "sizes"),
                                      ({"seeds": (1, 1)}, "seeds"), ({"budget": "time"}, "budget"),
                                      ({"methods": ("magic",)}, "methods"), ({"steps": 0}, "steps"),
                                      ({"lr": -1.0}, "lr")])
def test_bad_config(kw, word):
    with pytest.raises(ValueError, match=f"^{word}:"):
        lc.LearningCurveConfig(**kw)


def test_outputs_and_resume(tiny_run):
    out, res = tiny_run
    assert not res.failed and res.missing == 0
    rows = _csv(out / "results.csv")
    assert len(rows) == len(lc.make_cells(lc.LearningCurveConfig(**TINY)))
    with open(out / "results.csv", newline="") as fh:
        assert set(lc.CSV_COLUMNS) <= set(next(csv.reader(fh)))
    for r in rows:
        assert 0.0 < float(r["psnr"]) < 80.0 and -1.0 <= float(r["ssim"]) <= 1.0
        if r["family"] != "classical":
            assert int(r["steps"]) == 3 and int(r["parameters"]) > 0
    assert (out / "figures" / "learning_curve_blur.png").stat().st_size > 1000
    assert (out / "results.json").exists() and "N=2" in res.table
    again = lc.run(lc.LearningCurveConfig(**TINY), out, progress=False)
    assert again.computed == 0 and again.reused == len(rows)
    assert _csv(out / "results.csv") == rows


def test_deterministic_cell(tiny_run):
    out, _ = tiny_run
    cell = next(c for c in lc.make_cells(lc.LearningCurveConfig(**TINY)) if c.config["method"] == "landweber")
    stored = CellStore(out, lc.STUDY).load(cell)["result"]
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        fresh = lc.compute_cell(cell)
    finally:
        torch.set_num_threads(threads)
    assert fresh["psnr_each"] == stored["psnr_each"]


def test_shards_then_merge_equal_single_run(tiny_run, tmp_path):
    import torch

    out, _ = tiny_run
    cfg = lc.LearningCurveConfig(**TINY)
    threads = torch.get_num_threads()
    try:
        for i in (1, 2):
            lc.run(cfg, tmp_path / f"s{i}", shard=Shard(i, 2), progress=False)
    finally:
        torch.set_num_threads(threads)
    from physinv.cli import main

    assert main(["bench", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out",
                 str(tmp_path / "m"), "--no-figures"]) == 0
    assert _csv(tmp_path / "m" / "results.csv") == _csv(out / "results.csv")


def test_goals_from_rows():
    rows = [{"problem": "blur", "method": m, "family": f, "n_train": n, "psnr": v}
            for m, f, n, v in [("spectral", "physics", 16, 25.0), ("spectral", "physics", 256, 25.3),
                               ("unet", "data-driven", 16, 23.5)]]
    g = lc.goals(rows)
    assert g[0].startswith("MET") and "+1.50 dB" in g[0]
    assert g[1].startswith("MET") and "+0.30 dB" in g[1]
    rows[2]["psnr"] = 24.5
    assert lc.goals(rows)[0].startswith("MISSED")


def test_cli_bad_arguments_exit_2(tmp_path, capsys):
    from physinv.cli import main

    for argv, flag in ((["--sizes", "4,x"], "--sizes"), (["--sizes", "0"], "--sizes"),
                       (["--methods", "magic"], "--methods"), (["--classical", "magic"], "--classical"),
                       (["--shard", "3/2"], "--shard"), (["--operator", "mri"], "--operator")):
        with pytest.raises(SystemExit) as e:
            main(["bench", "learning-curve", "--out", str(tmp_path), *argv])
        assert e.value.code == 2, argv
        assert f"argument {flag}" in capsys.readouterr().err, argv
    with pytest.raises(SystemExit) as e:
        main(["bench", "merge", str(tmp_path / "nowhere")])
    assert e.value.code == 2


def test_torchrun_two_processes_equal_single_run(tiny_run, tmp_path):
    out, _ = tiny_run
    args = ["--operator", "both", "--methods", "spectral,landweber,unet", "--sizes", "2,3", "--seeds", "0",
            "--size", "16", "--n-test", "1", "--steps", "3", "--classical", "fbp", "tikhonov-gcv",
            "--no-progress", "--threads", "1"]
    r = run_group(lambda attempt: [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                   "--nproc-per-node", "2", "-m", "physinv", "bench", "learning-curve",
                                   "--out", str(tmp_path / f"tr{attempt}"), *args],
                  timeout=240, attempts=3, env=torchrun_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert _csv(os.path.join(r.args[r.args.index("--out") + 1], "results.csv")) == _csv(out / "results.csv")


@pytest.mark.slow
def test_quick_study_both_problems(tmp_path):
    from physinv.cli import main

    assert main(["bench", "learning-curve", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    rows = _csv(tmp_path / "results.csv")
    assert {r["problem"] for r in rows} == {"blur", "radon"}
    assert {int(r["seed"]) for r in rows if r["family"] != "classical"} == {0, 1}
    assert (tmp_path / "figures" / "learning_curve_radon.png").exists()


def test_image_side_defaults_per_problem_and_size_overrides_both(capsys):
    cfg = lc.LearningCurveConfig(problems=("blur", "radon"), sizes=(4,), seeds=(0,))
    assert cfg.size is None and cfg.size_for("blur") == 64 and cfg.size_for("radon") == 128
    sides = {c.config["problem"]: c.config["size"] for c in lc.make_cells(cfg)}
    assert sides == {"blur": 64, "radon": 128}
    fixed = lc.LearningCurveConfig(problems=("blur", "radon"), sizes=(4,), seeds=(0,), size=32)
    assert {c.config["size"] for c in lc.make_cells(fixed)} == {32}
    assert lc.LearningCurveConfig(**lc.QUICK).size_for("radon") == lc.QUICK["size"] <= 32
    with pytest.raises(ValueError, match="^size:"):
        lc.LearningCurveConfig(size=4)
    from physinv.cli import main

    with pytest.raises(SystemExit) as e:
        main(["bench", "learning-curve", "--help"])
    assert e.value.code == 0
    assert "128 for radon" in " ".join(capsys.readouterr().out.split())


def test_ct_cells_name_their_phantoms_and_blur_cells_do_not():
    cells = lc.make_cells(lc.LearningCurveConfig(**TINY))
    for c in cells:
        if c.config["problem"] == "radon":
            assert c.config["phantoms"] == lc.CT_PHANTOMS
            legacy = {k: v for k, v in c.config.items() if k != "phantoms"}
            assert Cell(legacy).id != c.id  # cells from other phantoms are never read back
        else:
            assert "phantoms" not in c.config
    radon = next(c for c in cells if c.config["problem"] == "radon")
    other = dict(radon.config, phantoms={**lc.CT_PHANTOMS, "version": 0})
    with pytest.raises(ValueError, match="CT phantoms"):
        lc.compute_cell(Cell(other))


def test_ct_images_are_random_ellipses_with_disjoint_seeds():
    import numpy as np
    import torch

    from physinv.bench import splits
    from physinv.data import random_ellipses

    test = lc._test_images("radon", 16, 2)
    for k, x in enumerate(test):
        assert np.array_equal(x, random_ellipses(16, seed=splits.TEST_PHANTOM_SEED_OFFSET + k))
    train = lc._train_images("radon", 16, 3, seed=2)
    for k, x in enumerate(train):
        assert np.array_equal(x, random_ellipses(16, seed=2 * 10_000 + k))
    assert not any(np.array_equal(a, b) for a in train for b in test)
    d = lc._Data("radon", 16, 2, 0)  # the phantoms already vanish outside the disc the scan sees
    assert torch.equal(d.x_test, torch.as_tensor(np.stack(test), dtype=torch.float32))


def test_primal_dual_started_from_fbp_begins_at_fbp(tmp_path):
    # with a vanishing learning rate the trained network is still its start: FBP, to the digit
    import torch

    threads = torch.get_num_threads()
    try:
        res = lc.run(lc.LearningCurveConfig(problems=("radon",), methods=("primal-dual-fbp",), sizes=(2,),
                                            seeds=(0,), size=16, n_test=2, steps=2, lr=1e-12,
                                            classical=("fbp",), threads=1), tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    by = {r["method"]: r for r in res.rows}
    assert by["primal-dual-fbp"]["family"] == "physics"
    assert abs(float(by["primal-dual-fbp"]["psnr"]) - float(by["fbp"]["psnr"])) < 1e-3


def test_default_methods_leave_out_the_opt_in_ones_only():
    cfg = lc.LearningCurveConfig()
    for problem in lc.PROBLEMS:
        everything = lc.PHYSICS[problem] + lc.DATA_DRIVEN[problem]
        assert set(cfg.methods_for(problem)) == set(everything) - set(lc.OPT_IN[problem])
    assert "primal-dual-fbp" in cfg.methods_for("radon") and "primal-dual" not in cfg.methods_for("radon")
    named = lc.LearningCurveConfig(methods=("primal-dual", "unet"))
    assert named.methods_for("radon") == ("primal-dual", "unet")
