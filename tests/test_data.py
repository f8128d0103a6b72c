"""physinv.data: image sources, splits and the simulated InverseProblemDataset."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv.data import (
    InverseProblemDataset,
    Patches,
    Phantoms,
    available_skimage_images,
    images,
    load_image,
    load_images,
    random_patches,
    random_phantom,
    shepp_logan,
    skimage_images,
    split_sources,
    to_gray_float,
)
from physinv.operators import Convolution, Identity, Matrix
from physinv.psf import gaussian


# ------------------------------------------------------------------ sources
def test_bundled_skimage_images_load_offline():
    names = available_skimage_images()
    assert {"camera", "moon", "coins"} <= set(names)
    ims = skimage_images(["camera", "astronaut", "horse"])
    for name, im in ims.items():
        assert im.ndim == 2 and im.dtype == np.float64, name
        assert 0.0 <= im.min() and im.max() <= 1.0, name
    import skimage.data

    np.testing.assert_allclose(ims["camera"], skimage.data.camera() / 255.0)


def test_skimage_unknown_or_not_bundled(monkeypatch):
    with pytest.raises(ValueError, match="unknown scikit-image picture"):
        skimage_images(["no_such_picture"])
    monkeypatch.setitem(images.SKIMAGE_IMAGES, "remote_only", "remote_only_file_that_is_absent.png")
    assert "remote_only" not in available_skimage_images()
    with pytest.raises(ValueError, match="not bundled"):
        skimage_images(["remote_only"])


def test_shepp_logan_matches_scikit_image_reference():
    import skimage.data

    ref = skimage.data.shepp_logan_phantom()  # 400 x 400 modified Shepp-Logan
    mine = shepp_logan(400)
    assert set(np.unique(mine).round(6)) == {0.0, 0.1, 0.2, 0.3, 0.4, 1.0}
    assert np.mean(np.abs(mine - ref) > 0.05) < 0.02  # differences only on ellipse boundaries
    assert np.mean(np.abs(mine[::-1] - ref) > 0.05) > 0.05  # orientation matters: the check can fail
    assert shepp_logan((30, 50)).shape == (30, 50)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), h=st.integers(4, 40), w=st.integers(4, 40),
       kind=st.sampled_from(["piecewise_constant", "piecewise_smooth"]))
def test_random_phantom_range_shape_determinism(seed, h, w, kind):
    p = random_phantom((h, w), kind, seed=seed)
    assert p.shape == (h, w) and p.dtype == np.float64
    assert p.min() >= 0.0 and p.max() <= 1.0
    np.testing.assert_array_equal(p, random_phantom((h, w), kind, seed=seed))


def test_phantom_kinds_differ_in_structure():
    pc = random_phantom(64, "piecewise_constant", seed=0, n_shapes=(5, 5))
    ps = random_phantom(64, "piecewise_smooth", seed=0, n_shapes=(5, 5))
    assert len(np.unique(pc)) <= 6  # background + at most 5 shape values
    assert len(np.unique(ps)) > 500
    assert not np.array_equal(random_phantom(64, seed=1), random_phantom(64, seed=2))
    # before clipping the smooth fields already lie in [0, 1]: clipping changed nothing
    assert 0.0 < ps.min() and ps.max() < 1.0


def test_phantoms_lazy_sequence():
    ph = Phantoms(5, (12, 10), seed=7)
    assert len(ph) == 5
    late = ph[4]
    np.testing.assert_array_equal(late, Phantoms(5, (12, 10), seed=7)[-1])  # independent of access order
    assert not np.array_equal(ph[0], ph[1])
    assert len(ph[1:4]) == 3
    with pytest.raises(IndexError):
        ph[5]
    assert (Phantoms(2, 32, kind="shepp_logan")[1] == shepp_logan(32)).all()
    with pytest.raises(ValueError, match="kind"):
        Phantoms(2, 8, kind="circles")


def test_patches_are_crops_of_their_sources():
    src = [shepp_logan(40), random_phantom((30, 50), seed=1)]
    p = Patches(src, (8, 12), n=20, seed=3)
    for i in range(len(p)):
        k, r, c = p.source_of(i)
        np.testing.assert_array_equal(p[i], src[k][r:r + 8, c:c + 12])
    used = {p.source_of(i)[0] for i in range(len(p))}
    assert used == {0, 1}
    np.testing.assert_array_equal(random_patches(src, (8, 12), 20, seed=3), np.stack(list(p)))
    with pytest.raises(ValueError, match="smaller than the patch size"):
        Patches([np.zeros((4, 4))], 8, n=1)


# --------------------------------------------------------------- user files
def test_load_png_tiff_npy_8_and_16_bit(tmp_path):
    import skimage.io
    import tifffile

    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    a16 = rng.integers(0, 65536, (9, 7), dtype=np.uint16)
    skimage.io.imsave(tmp_path / "a8.png", a8, check_contrast=False)
    skimage.io.imsave(tmp_path / "a16.png", a16, check_contrast=False)
    tifffile.imwrite(tmp_path / "t8.tif", a8)
    tifffile.imwrite(tmp_path / "t16.tiff", a16)
    tifffile.imwrite(tmp_path / "tf.tif", (a16 / 65535.0).astype(np.float32))
    np.save(tmp_path / "n.npy", a16 / 65535.0)
    np.testing.assert_array_equal(load_image(tmp_path / "a8.png"), a8 / 255.0)
    np.testing.assert_array_equal(load_image(tmp_path / "t8.tif"), a8 / 255.0)
    np.testing.assert_array_equal(load_image(tmp_path / "a16.png"), a16 / 65535.0)
    np.testing.assert_array_equal(load_image(tmp_path / "t16.tiff"), a16 / 65535.0)
    np.testing.assert_allclose(load_image(tmp_path / "tf.tif"), a16 / 65535.0, rtol=1e-6)
    np.testing.assert_array_equal(load_image(tmp_path / "n.npy"), a16 / 65535.0)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    skimage.io.imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    want = (rgb / 255.0) @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(load_image(tmp_path / "rgb.png"), want, atol=1e-12)
    ims = load_images(tmp_path)
    assert len(ims) == 7 and all(k.startswith(str(tmp_path)) for k in ims)
    assert len(load_images(str(tmp_path / "*.tif*"))) == 3


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nofile.png"):
        load_image(tmp_path / "nofile.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(os.urandom(200))
    with pytest.raises(ValueError, match="bad.png"):
        load_image(bad)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy"):
        load_image(tmp_path / "obj.npy")  # pickled content is refused
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        load_image(tmp_path / "cube.npy")
    with pytest.raises(ValueError, match="negative values"):
        to_gray_float(np.array([[-3, 5]], dtype=np.int16))
    np.testing.assert_array_equal(to_gray_float(np.array([[0, 32767]], dtype=np.int16)), [[0.0, 1.0]])
    with pytest.raises(ValueError, match="non-finite"):
        to_gray_float(np.array([[np.nan, 0.0]]))
    with pytest.raises(FileNotFoundError):
        load_images(str(tmp_path / "*.nothing"))


# -------------------------------------------------------------------- splits
def test_splits_are_disjoint_and_cover_the_pool():
    pool = {f"im{k}": random_phantom(8, seed=k) for k in range(20)}
    pool["copy_of_im3"] = pool["im3"].copy()  # duplicate pixels must stay on one side
    train, val, test = split_sources(pool, test_fraction=0.25, val_fraction=0.1, seed=4)
    names = [set(train), set(val), set(test)]
    assert set().union(*names) == set(pool)
    assert sum(len(s) for s in names) == len(pool)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert names[a].isdisjoint(names[b])
    side = [i for i, s in enumerate(names) if "im3" in s][0]
    assert "copy_of_im3" in names[side]
    digests = [{images._digest(v) for v in part.values()} for part in (train, val, test)]
    assert digests[0].isdisjoint(digests[2]) and digests[0].isdisjoint(digests[1])
    again = split_sources(pool, test_fraction=0.25, val_fraction=0.1, seed=4)
    assert [set(p) for p in again] == names
    # lists keep working and patches cut afterwards never cross the split
    tr, te = split_sources(list(pool.values()), test_fraction=0.3, seed=1)
    pt = Patches(tr, 4, n=30, seed=0)
    te_d = {images._digest(t) for t in te}
    assert all(images._digest(pt.sources[pt.source_of(i)[0]]) not in te_d for i in range(30))


def test_split_errors():
    with pytest.raises(ValueError, match="test_fraction"):
        split_sources([np.zeros(2)] * 3, test_fraction=1.5)
    with pytest.raises(ValueError, match="distinct source images"):
        split_sources([np.zeros((2, 2))] * 5, test_fraction=0.2)  # all identical: one group only


# ---------------------------------------------------------------- datasets
def _blur(n=16):
    return Convolution(gaussian(1.0, size=5), (n, n))


def test_dataset_deterministic_per_index_and_seed():
    A = _blur()
    ds = InverseProblemDataset(A, Phantoms(6, 16, seed=0), noise_sigma=(0.01, 0.1), seed=3)
    first = [ds[i] for i in range(6)]
    ds2 = InverseProblemDataset(A, Phantoms(6, 16, seed=0), noise_sigma=(0.01, 0.1), seed=3)
    for i in reversed(range(6)):  # other order, other object: same pairs
        y, x = ds2[i]
        assert torch.equal(y, first[i][0]) and torch.equal(x, first[i][1])
    other = InverseProblemDataset(A, Phantoms(6, 16, seed=0), noise_sigma=(0.01, 0.1), seed=4)
    assert not torch.equal(other[0][0], first[0][0])
    assert torch.equal(other[0][1], first[0][1])
    assert len({ds.sigma(i) for i in range(6)}) == 6
    assert all(0.01 <= ds.sigma(i) <= 0.1 for i in range(6))


def test_dataset_same_samples_in_dataloader_workers():
    ds = InverseProblemDataset(_blur(), Phantoms(8, 16, seed=0), noise_sigma=0.05, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, timeout=120)
    ys = torch.cat([b[0] for b in loader])
    assert torch.equal(ys, torch.stack([ds[i][0] for i in range(8)]))


def test_gaussian_noise_statistics():
    A = _blur(64)
    x = np.stack([random_phantom(64, seed=s) for s in range(3)])
    ds = InverseProblemDataset(A, x, noise_sigma=(0.02, 0.2), seed=0, dtype=torch.float64,
                               return_sigma=True)
    for i in range(3):
        y, xi, sigma = ds[i]
        r = y - A(xi)
        assert float(sigma) == pytest.approx(ds.sigma(i))
        # 4096 samples: the std estimate is within ~1.1% (1 sd); allow 5%
        assert float(r.std()) == pytest.approx(float(sigma), rel=0.05)
        assert abs(float(r.mean())) < 4 * float(sigma) / 64
    clean = InverseProblemDataset(A, x, noise_sigma=0.0, dtype=torch.float64)
    y, xi = clean[1]
    assert torch.equal(y, A(xi))


def test_poisson_gaussian_nonnegative_counts_and_moments():
    n = 64
    x = np.full((1, n, n), 0.4)
    photons = 50.0
    ds = InverseProblemDataset(Identity((n, n)), x, noise_sigma=0.0, seed=0, noise="poisson-gaussian",
                               photons=photons, dtype=torch.float64)
    y, _ = ds[0]
    assert float(y.min()) >= 0.0
    counts = y * photons
    assert torch.allclose(counts, counts.round(), atol=1e-9)  # integer photon counts
    m, v = float(y.mean()), float(y.var())
    se_mean = (0.4 / photons / n**2) ** 0.5
    assert abs(m - 0.4) < 4 * se_mean
    assert v == pytest.approx(0.4 / photons, rel=0.1)
    ds2 = InverseProblemDataset(Identity((n, n)), x, noise_sigma=0.05, seed=0, noise="poisson-gaussian",
                                photons=photons, dtype=torch.float64)
    assert float(ds2[0][0].var()) == pytest.approx(0.4 / photons + 0.05**2, rel=0.1)


def test_dataset_errors():
    A = _blur()
    with pytest.raises(ValueError, match="in_shape"):
        InverseProblemDataset(A, np.zeros((2, 8, 8)))[0]
    with pytest.raises(ValueError, match="photons"):
        InverseProblemDataset(A, np.zeros((2, 16, 16)), noise="poisson-gaussian")
    with pytest.raises(ValueError, match="noise must be"):
        InverseProblemDataset(A, np.zeros((2, 16, 16)), noise="laplace")
    with pytest.raises(ValueError, match="noise_sigma"):
        InverseProblemDataset(A, np.zeros((2, 16, 16)), noise_sigma=-1.0)
    with pytest.raises(ValueError, match="low <= high"):
        InverseProblemDataset(A, np.zeros((2, 16, 16)), noise_sigma=(0.2, 0.1))
    with pytest.raises(TypeError, match="LinearOperator"):
        InverseProblemDataset(lambda x: x, np.zeros((2, 16, 16)))
    with pytest.raises(TypeError, match="floating-point"):
        InverseProblemDataset(A, np.zeros((2, 16, 16), dtype=np.uint8))[0]
    neg = Matrix(-np.eye(4))
    with pytest.raises(ValueError, match="A x >= 0"):
        InverseProblemDataset(neg, np.ones((1, 4)), noise="poisson-gaussian", photons=10.0)[0]
    with pytest.raises(IndexError):
        InverseProblemDataset(A, np.zeros((2, 16, 16)))[2]


def test_docs_data_examples_run():
    text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                             "data.md")).read()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    runnable = [b for b in blocks if not b.lstrip().startswith("InverseProblemDataset(A, images")]
    assert len(runnable) == 2
    for code in runnable:
        exec(compile(code, "docs/data.md", "exec"), {})


# ------------------------------------------------------- random-ellipse phantoms
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), h=st.integers(2, 48), w=st.integers(2, 48), k=st.integers(1, 80))
def test_random_ellipses_range_disc_and_determinism(seed, h, w, k):
    from physinv.data import inscribed_disc, random_ellipses

    x = random_ellipses((h, w), seed=seed, n_ellipses=k)
    assert x.shape == (h, w) and x.dtype == np.float64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # divided by its maximum after clipping at 0
    assert (x[~inscribed_disc((h, w))] == 0).all()
    assert (random_ellipses((h, w), seed=seed, n_ellipses=k) == x).all()


def test_random_ellipses_disc_is_the_radon_disc_and_seeds_differ():
    from physinv.data import inscribed_disc, random_ellipses
    from physinv.operators import Radon

    for n in (16, 33, 64):
        assert (Radon(n, 4).circle_mask().numpy() == inscribed_disc(n)).all()
    a, b = random_ellipses(64, seed=0), random_ellipses(64, seed=1)
    assert not np.array_equal(a, b)
    # many overlapping ellipses: a good part of the disc is covered, with many grey levels
    assert 0.2 < float((a > 0).mean()) < 0.95 and len(np.unique(a)) > 20
    # one ellipse: at most two values inside the disc (the ellipse is 1, the rest 0)
    assert set(np.unique(random_ellipses(32, seed=5, n_ellipses=1))) <= {0.0, 1.0}


def test_random_ellipses_bad_arguments():
    from physinv.data import random_ellipses

    with pytest.raises(ValueError, match="n_ellipses"):
        random_ellipses(16, n_ellipses=0)
    with pytest.raises(ValueError, match="n_ellipses"):
        random_ellipses(16, n_ellipses=2.5)
    with pytest.raises(ValueError, match="size"):
        random_ellipses(0)
    with pytest.raises(TypeError, match="seed"):
        random_ellipses(16, seed=-1)


# ---------------------------------------------------- HDF5 datasets as pictures
def test_load_h5_images_names_values_and_selection(tmp_path):
    from physinv.data import load_h5_images, save_dataset

    x = np.random.default_rng(0).random((6, 8, 9))
    f = save_dataset(tmp_path / "set.h5", (2 * x, x), noise_sigma=0.0)
    every = load_h5_images(f)
    assert list(every) == [f"set.h5[{i}]" for i in range(6)]
    assert all(np.array_equal(every[f"set.h5[{i}]"], x[i]) for i in range(6))
    assert all(v.dtype == np.float64 for v in every.values())
    assert list(load_h5_images(f, "0-2,5")) == ["set.h5[0]", "set.h5[1]", "set.h5[2]", "set.h5[5]"]
    assert list(load_h5_images(f, 4)) == ["set.h5[4]"]
    assert list(load_h5_images(f, [3, 1])) == ["set.h5[3]", "set.h5[1]"]
    for bad, word in (("6", "out of range"), ("2-1", "backwards"), ("a", "select must be"), ("", "select"),
                      ("1,1", "more than once"), ([], "no sample"), (1.5, "select must be")):
        with pytest.raises(ValueError, match=word):
            load_h5_images(f, bad)


def test_load_h5_images_refuses_non_2d_samples_and_other_files(tmp_path):
    from physinv.data import DatasetFileError, load_h5_images, save_dataset

    x = np.zeros((2, 3, 4, 4))
    f = save_dataset(tmp_path / "vol.h5", (x, x), noise_sigma=0.0)
    with pytest.raises(ValueError, match=r"vol\.h5.*shape \(3, 4, 4\).*2-D"):
        load_h5_images(f)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(DatasetFileError, match="junk.h5"):
        load_h5_images(junk)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        load_h5_images(tmp_path / "missing.h5")
