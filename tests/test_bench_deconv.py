"""The deconvolution benchmark (physinv.bench.deconv), its cell store, registry, splits and CLI."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch

from physinv.bench import deconv, splits
from physinv.bench._cells import Cell, CellStore, Shard, canonical_json, config_id, merge_cells, run_cells
from physinv.bench.methods import Problem, get_method, register, select_methods, unregister
from physinv.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED_COLUMNS = ("image", "psf", "noise_sigma", "boundary", "method", "oracle", "psnr", "ssim", "seconds",
                    "family", "n_train", "train_seconds", "label")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def counting_method():
    """A registered method that counts its calls (the blurred input, unchanged)."""
    calls = []

    def fn(p: Problem):
        calls.append(p.boundary)
        return p.y.clone()

    register("test-counting", fn, oracle=False, family="baseline", label="counts its calls", default=False)
    try:
        yield calls
    finally:
        unregister("test-counting")


def tiny(**kw) -> deconv.DeconvConfig:
    base = dict(images=("astronaut", "moon"), psfs=("gaussian:1.2",), noises=(0.02,), size=32, crop=2,
                margin=8, methods=("blurred", "wiener-powerlaw"), figures=False, timing_repeats=1, threads=1)
    base.update(kw)
    return deconv.DeconvConfig(**base)


def _key(rows):
    return sorted((r["image"], r["psf"], r["noise_sigma"], r["boundary"], r["method"], r["psnr"], r["ssim"])
                  for r in rows)


# ---------------------------------------------------------------------- splits
def test_train_and_test_pictures_are_disjoint():
    splits.check_disjoint()
    train = set(splits.TRAIN_IMAGES) | {splits.IMAGE_ALIASES.get(n, n) for n in splits.TRAIN_IMAGES}
    test = set(splits.TEST_IMAGES) | set(splits.TEST_EXTRA_IMAGES)
    assert not train & test
    assert {"astronaut", "chelsea", "coffee", "coins", "moon", "brick"} <= set(splits.TEST_IMAGES)
    assert all(splits.split_of(n) == "train" for n in splits.training_pictures())
    images, names = splits.training_images(16, n=3, seed=0, pictures=["camera"])
    assert names[0] == "camera" and all(n.startswith("phantom-train:") for n in names[1:])
    assert len(images) == 3 and all(im.shape == (16, 16) for im in images)
    with pytest.raises(ValueError, match=r"pictures: \['astronaut'\] are not training pictures"):
        splits.training_images(16, n=1, pictures=["astronaut"])
    with pytest.raises(ValueError, match="seed must be <"):
        splits.training_images(16, n=1, seed=splits.TEST_PHANTOM_SEED_OFFSET)


def test_a_learned_method_may_not_test_on_training_pictures(tmp_path):
    register("test-learned-leak", lambda p: p.y, oracle=False, family="learned", label="x", default=False,
             needs_training=True, train=lambda *a: {"w": torch.zeros(1)})
    try:
        with pytest.raises(ValueError, match=r"images: \['camera'\] belong to the training split"):
            deconv.run(tiny(images=("camera",), methods=("test-learned-leak",)), tmp_path, progress=False)
    finally:
        unregister("test-learned-leak")


# -------------------------------------------------------------------- registry
def test_registry_rejects_duplicates_and_bad_registrations():
    with pytest.raises(ValueError, match="already registered"):
        register("wiener-powerlaw", lambda p: p.y, oracle=False, family="x", label="x")
    with pytest.raises(ValueError, match="needs a callable train"):
        register("test-bad", lambda p: p.y, oracle=False, family="x", label="x", needs_training=True)
    with pytest.raises(ValueError, match="boundaries"):
        register("test-bad", lambda p: p.y, oracle=False, family="x", label="x", boundaries=("mirror",))
    with pytest.raises(ValueError, match="name must be"):
        register("Bad Name", lambda p: p.y, oracle=False, family="x", label="x")
    with pytest.raises(ValueError, match="methods: unknown method"):
        select_methods(["nope"])
    with pytest.raises(KeyError, match="no method named"):
        get_method("test-bad")
    # the default selection holds the fast classical families, the oracles and scikit-image's three;
    # the slow sparse solvers (TV, FISTA: seconds per picture) are in "all" only, to keep the default short
    names = {m.name for m in select_methods()}
    assert {"tikhonov-discrepancy", "tsvd-gcv", "wiener-powerlaw", "cgls-discrepancy",
            "landweber-discrepancy", "richardson-lucy-discrepancy", "tikhonov-oracle",
            "wiener-mmse-oracle", "pnp-hqs",
            "skimage-wiener-oracle", "skimage-unsupervised-wiener", "skimage-richardson-lucy"} <= names
    assert {"fista-wavelet", "tv"}.isdisjoint(names)
    assert {"fista-wavelet", "tv", "ista-wavelet"} <= {m.name for m in select_methods(["all"])}
    oracles = ("tikhonov-oracle", "wiener-mmse-oracle", "skimage-wiener-oracle")
    assert all(get_method(n).oracle for n in oracles)


def test_automatic_methods_never_see_the_truth(tmp_path):
    seen = []

    def spy(p: Problem):
        seen.append((p.truth, p.noise_sigma))
        with pytest.raises(RuntimeError, match="only oracle methods"):
            p.score(p.y)
        return p.y

    register("test-spy", spy, oracle=False, family="baseline", label="spy", default=False)
    try:
        deconv.run(tiny(images=("moon",), methods=("test-spy",)), tmp_path, progress=False)
    finally:
        unregister("test-spy")
    assert seen and all(t is None and s is None for t, s in seen)


# ------------------------------------------------------------------------ math
def test_mmse_wiener_oracle_is_at_least_every_linear_automatic_filter():
    """In expectation over the noise, the MMSE filter with the true spectrum is the best LSI filter."""
    size, margin, sigma = 48, 8, 0.03
    scene = splits.square_picture(deconv.ImageSource("coins", "skimage", "coins").load(size + 2 * margin),
                                  size + 2 * margin)
    k = deconv.resolve_psf("gaussian:1.5")
    linear = ["tikhonov-gcv", "tikhonov-discrepancy", "tsvd-gcv", "wiener-powerlaw", "tikhonov-oracle"]
    mse = {n: 0.0 for n in linear + ["wiener-mmse-oracle"]}
    for draw in range(8):
        x, y = deconv.simulate(scene, k, sigma, "circular", size, margin, torch.Generator().manual_seed(draw))
        for n in mse:
            m = get_method(n)
            p = Problem(y=y, psf=k, boundary="circular", model="circular", seed=draw, crop=0,
                        truth=x if m.oracle else None, noise_sigma=sigma if m.oracle else None)
            out = m.fn(p)
            xr = out[0] if isinstance(out, tuple) else out
            mse[n] += float(((xr - x) ** 2).mean()) / 8
    best = mse.pop("wiener-mmse-oracle")
    assert all(best <= v for v in mse.values()), (best, mse)


def test_valid_data_is_the_frame_of_the_scenes_linear_convolution():
    from physinv.operators import Convolution

    g = torch.Generator().manual_seed(0)
    scene = torch.rand(40, 40, generator=g, dtype=torch.float64)
    k = torch.rand(7, 5, generator=g, dtype=torch.float64)
    k = k / k.sum()
    x, y = deconv.simulate(scene, k, 0.0, "valid", 24, 8)
    full = Convolution(k, (40, 40), boundary="zero")(scene)  # zero padding cannot reach the centre frame
    torch.testing.assert_close(y, full[8:32, 8:32])
    torch.testing.assert_close(x, scene[8:32, 8:32])
    _, yc = deconv.simulate(scene, k, 0.0, "circular", 24, 8)
    torch.testing.assert_close(yc, Convolution(k, (24, 24))(x))
    with pytest.raises(ValueError, match="margin 2 is smaller than the PSF's half-width"):
        deconv.simulate(scene[:28, :28], k, 0.0, "valid", 24, 2)


# ----------------------------------------------------------------------- cells
def test_cell_ids_are_canonical_and_the_store_ignores_foreign_or_broken_files(tmp_path):
    assert canonical_json({"b": 1.0, "a": [2, 0.5]}) == '{"a":[2,0.5],"b":1}'
    assert config_id({"a": 1, "b": (1, 2)}) == config_id({"b": [1.0, 2.0], "a": 1.0})
    assert config_id({"a": 1}) != config_id({"a": 2})
    with pytest.raises(ValueError, match="finite"):
        config_id({"a": float("nan")})
    with pytest.raises(ValueError, match="i/n"):
        Shard.parse("3/2")
    with pytest.raises(ValueError, match="same configuration"):
        run_cells([Cell({"a": 1}), Cell({"a": 1.0})], lambda c: {}, CellStore(tmp_path, "s"), progress=False)
    store = CellStore(tmp_path, "s")
    cell = Cell({"a": 1})
    store.save(cell, {"v": 1})
    with open(store.path(cell.id), "w") as fh:
        fh.write('{"broken')  # a torn or hand-edited file counts as missing
    assert store.load(cell) is None
    CellStore(tmp_path, "other").save(cell, {"v": 2})  # same id, other study
    assert store.load(cell) is None
    got = run_cells([cell], lambda c: {"v": 3}, store, progress=False)
    assert got.computed == 1 and store.load(cell)["result"] == {"v": 3}


# ------------------------------------------------------------------ the study
def test_outputs_are_written_and_parse(tmp_path):
    cfg = tiny(figures=True)
    res = deconv.run(cfg, tmp_path, progress=False, argv=["bench", "deconv"])
    n = 2 * 1 * 1 * 2 * 2
    assert res.computed == n and len(res.rows) == n and res.missing == 0
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and set(REQUIRED_COLUMNS) <= set(rows[0])
    assert {r["boundary"] for r in rows} == {"circular", "valid"}
    assert all(np.isfinite(float(r["psnr"])) and 0 < float(r["ssim"]) <= 1 for r in rows)
    prov = json.loads((tmp_path / "results.json").read_text())
    for key in ("versions", "git", "device", "threads", "seed", "config", "summary", "goals", "counts"):
        assert key in prov
    assert {"physinv", "torch", "numpy", "scipy", "scikit-image"} <= set(prov["versions"])
    assert prov["config"]["size"] == 32 and prov["threads"] == 1 and prov["argv"] == ["bench", "deconv"]
    md = (tmp_path / "results.md").read_text()
    assert "(best automatic)" in md and "95%" in md and "## Goals" in md
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert len(pngs) == 2 * 1 + 1  # one grid per setting of the first picture, plus the chart
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert not list(tmp_path.rglob("*.tmp"))  # every write was atomic
    # the blurred input is the data: its PSNR must be below the restoration's on these mild cases
    by = {(r["image"], r["boundary"], r["method"]): r["psnr"] for r in res.rows}
    assert by[("astronaut", "circular", "wiener-powerlaw")] > by[("astronaut", "circular", "blurred")]


def test_rerun_reads_cells_back_and_force_recomputes(tmp_path, counting_method):
    cfg = tiny(methods=("test-counting", "blurred"))
    first = deconv.run(cfg, tmp_path, progress=False)
    assert len(counting_method) == 4 and first.computed == 8
    again = deconv.run(cfg, tmp_path, progress=False)
    assert len(counting_method) == 4, "a finished cell was recomputed"
    assert again.computed == 0 and again.reused == 8 and _key(again.rows) == _key(first.rows)
    forced = deconv.run(cfg, tmp_path, progress=False, force=True)
    assert len(counting_method) == 8 and forced.computed == 8
    assert _key(forced.rows) == _key(first.rows)  # cells are deterministic
    # a new setting computes only its own cells
    deconv.run(tiny(methods=("test-counting", "blurred"), noises=(0.02, 0.05)), tmp_path, progress=False)
    assert len(counting_method) == 12


def test_shards_partition_the_cells_and_merge_to_the_unsharded_run(tmp_path, counting_method):
    cfg = tiny(methods=("test-counting", "blurred", "wiener-powerlaw"))
    full = deconv.run(cfg, tmp_path / "full", progress=False)
    calls = len(counting_method)
    parts = [deconv.run(cfg, tmp_path / f"s{i}", progress=False, shard=Shard(i, 3)) for i in (1, 2, 3)]
    assert len(counting_method) == 2 * calls  # every cell computed exactly once over the shards
    assert sum(p.computed for p in parts) == full.computed
    ids = [set(r["cell_id"] for r in p.rows) for p in parts]
    assert all(not (a & b) for k, a in enumerate(ids) for b in ids[k + 1:])
    report = merge_cells([tmp_path / f"s{i}" for i in (1, 2, 3)], tmp_path / "merged", "deconv")
    assert report.copied == full.computed and not report.conflicts
    merged = deconv.run(cfg, tmp_path / "merged", progress=False)
    assert merged.computed == 0 and _key(merged.rows) == _key(full.rows)


def test_learned_methods_train_once_per_setting_on_the_training_split(tmp_path):
    trained = []

    def train(images, psf, noise_sigma, boundary, config):
        trained.append((len(images), boundary, config["n_train"]))
        assert all(im.shape == (config["size"] + 2 * config["margin"],) * 2 for im in images)
        return {"scale": torch.tensor(1.0)}

    def fn(p: Problem):
        return p.state["scale"] * p.y

    register("test-learned", fn, oracle=False, family="learned", label="scaled data", default=False,
             needs_training=True, train=train, assumes="learned")
    try:
        cfg = tiny(methods=("test-learned",), n_train=3)
        res = deconv.run(cfg, tmp_path, progress=False)
        assert sorted(trained) == [(3, "circular", 3), (3, "valid", 3)]  # one per setting, not per picture
        assert all(r["n_train"] == 3 and r["train_seconds"] >= 0 for r in res.rows)
        deconv.run(cfg, tmp_path, progress=False, force=True)  # recomputes the cells, reuses the states
        assert len(trained) == 2
        # a damaged stored state is detected (digest) and trained again, never loaded
        pts = sorted((tmp_path / "train").glob("*.pt"))
        assert len(pts) == 2
        data = bytearray(pts[0].read_bytes())
        data[-5] ^= 0xFF
        pts[0].write_bytes(bytes(data))
        deconv.run(cfg, tmp_path, progress=False, force=True)
        assert len(trained) == 3
    finally:
        unregister("test-learned")


# ------------------------------------------------------------------------ CLI
def _cli(tmp_path, *extra):
    return ["bench", "deconv", "--out", str(tmp_path), "--size", "32", "--crop", "2", "--margin", "8",
            "--images", "moon", "--psf", "disk:2", "--noise", "0.02", "--threads", "1", "--no-progress",
            "--no-figures", *extra]


def test_cli_runs_and_prints_the_summary_and_goals(tmp_path, capsys):
    assert main(_cli(tmp_path, "--methods", "blurred,wiener-powerlaw", "tikhonov-oracle")) == 0
    out = capsys.readouterr().out
    assert "(best automatic)" in out and "Goals" in out and "wiener-powerlaw" in out
    assert (tmp_path / "results.csv").is_file()
    assert main(_cli(tmp_path, "--methods", "blurred,wiener-powerlaw", "tikhonov-oracle")) == 0
    assert "0 computed, 6 read back" in capsys.readouterr().out
    assert main(["bench", "deconv", "--list-methods"]) == 0
    assert "skimage-unsupervised-wiener" in capsys.readouterr().out


@pytest.mark.parametrize("args, flag", [
    (["--noise", "-1"], "--noise"),
    (["--psf", "box:3"], "--psf"),
    (["--images", "no_such_picture"], "--images"),
    (["--methods", "no-such-method"], "--methods"),
    (["--exclude", "nope"], "--exclude"),
    (["--boundary", "mirror"], "--boundary"),
    (["--size", "0"], "--size"),
    (["--shard", "3/2"], "--shard"),
    (["--crop", "20"], "--crop"),
    (["--psf", "gaussian:5"], "--psf"),  # 31 x 31: larger than the 32-px frame's margin of 8
    (["--model", "circular"], "--model"),
])
def test_cli_bad_arguments_exit_2_naming_the_flag(tmp_path, capsys, args, flag):
    with pytest.raises(SystemExit) as e:
        main(_cli(tmp_path, *args))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err, err
    assert not (tmp_path / "results.csv").exists()


def test_user_files_and_phantoms_as_test_images(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    np.save(folder / "ramp.npy", np.tile(np.linspace(0, 1, 50), (50, 1)))
    np.save(folder / "bad.npy", np.full((50, 50), 3.0))
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        deconv.run(tiny(images=(str(folder),)), tmp_path / "o1", progress=False)
    os.remove(folder / "bad.npy")
    res = deconv.run(tiny(images=(str(folder), "phantom:1"), methods=("blurred",)), tmp_path / "o2",
                     progress=False)
    assert {r["image"] for r in res.rows} == {"ramp", "phantom:1"}
    assert {r["split"] for r in res.rows} == {"other", "test"}


@pytest.mark.parametrize("name", ["spectral-filter-net", "parametric-filter-net", "unrolled-landweber",
                                  "unrolled-ista", "hybrid", "unrolled-hqs"])
@pytest.mark.parametrize("boundary", ["circular", "valid"])
def test_every_learned_method_trains_and_reconstructs(name, boundary):
    """Each registered network trains (two steps) on the setting's own simulation and reconstructs a frame."""
    from physinv import psf
    from physinv.bench import _learned

    build, model, takes_sigma, cfg, _ = _learned.LEARNED[name]
    method = get_method(name)
    assert method.needs_training and not method.oracle and method.assumes == model
    size, margin = 16, 4
    images = splits.training_images(size + 2 * margin, n=2, seed=0)[0]
    k = psf.gaussian(1.0)
    config = {**cfg, "steps": 2, "batch": 2, "size": size, "margin": margin, "device": "cpu", "seed": 0,
              "model": "circular" if boundary == "circular" else "reflect"}
    state = method.train(images, k, 0.02, boundary, config)
    assert state and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    g = torch.Generator().manual_seed(1)
    truth, y = deconv.simulate(images[0], k, 0.02, boundary, size, margin, g)
    p = Problem(y=y.double(), psf=k.double(), boundary=boundary, model=config["model"], seed=0, state=state)
    out = method.fn(p)
    x = out[0] if isinstance(out, tuple) else out
    assert x.shape == (size, size) and x.dtype == torch.float64 and bool(torch.isfinite(x).all())


# -------------------------------------------------------- HDF5 datasets as pictures
def _h5_set(tmp_path, name="set.h5", n=4, shape=(48, 48)):
    from physinv.data import random_phantom, save_dataset

    x = np.stack([random_phantom(shape, seed=k) for k in range(n)])
    return save_dataset(tmp_path / name, (x, x), noise_sigma=0.0), x


def test_hdf5_dataset_samples_as_test_images(tmp_path):
    f, x = _h5_set(tmp_path)
    srcs = deconv.resolve_images([f])
    assert [s.name for s in srcs] == [f"set.h5[{i}]" for i in range(4)]
    assert [s.name for s in deconv.resolve_images([f + ":1-2"])] == ["set.h5[1]", "set.h5[2]"]
    assert [s.name for s in deconv.resolve_images([f + ":3,0"])] == ["set.h5[3]", "set.h5[0]"]
    # the scene of sample 2 is the stored ground truth, resized like any picture
    assert np.array_equal(srcs[2].load(48), splits.square_picture(x[2], 48))
    res = deconv.run(tiny(images=(f + ":0-1", "moon"), methods=("blurred", "wiener-powerlaw")),
                     tmp_path / "out", progress=False)
    assert {r["image"] for r in res.rows} == {"set.h5[0]", "set.h5[1]", "moon"}
    assert {r["split"] for r in res.rows if r["image"].startswith("set.h5")} == {"other"}
    with open(tmp_path / "out" / "results.csv", newline="") as fh:
        names = {r["image"] for r in csv.DictReader(fh)}
    assert {"set.h5[0]", "set.h5[1]"} <= names
    # the CLI takes the same specs
    assert main(_cli(tmp_path / "cli", "--images", f + ":3", "--methods", "blurred")) == 0
    with open(tmp_path / "cli" / "results.csv", newline="") as fh:
        assert {r["image"] for r in csv.DictReader(fh)} == {"moon", "set.h5[3]"}


def test_hdf5_dataset_errors_name_the_file(tmp_path, capsys):
    from physinv.data import save_dataset

    f, _ = _h5_set(tmp_path, n=2)
    vol = save_dataset(tmp_path / "vol.h5", (np.zeros((2, 2, 8, 8)), np.zeros((2, 2, 8, 8))), noise_sigma=0.0)
    bright = save_dataset(tmp_path / "bright.h5", (np.full((1, 40, 40), 2.0), np.full((1, 40, 40), 2.0)),
                          noise_sigma=0.0)
    for spec, word in ((vol, r"images: .*vol\.h5.*2-D"), (f + ":2", "out of range"),
                       (f + ":x", "select must be"), (str(tmp_path / "no.h5"), "no such dataset file")):
        with pytest.raises(ValueError, match=word):
            deconv.resolve_images([spec])
    with pytest.raises(ValueError, match=r"bright\.h5\[0\].*outside \[0, 1\]"):
        deconv.run(tiny(images=(bright,), methods=("blurred",)), tmp_path / "o", progress=False)
    with pytest.raises(SystemExit) as e:
        main(_cli(tmp_path / "cli", "--images", f + ":5"))
    assert e.value.code == 2 and "--images" in capsys.readouterr().err
