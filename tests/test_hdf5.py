"""The HDF5 dataset format: round trip, atomic + resumable writes, lazy reads, every bad-file case."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
import torch

import physinv
from physinv.data import (
    SCHEMA_VERSION,
    DatasetFileError,
    H5Dataset,
    InverseProblemDataset,
    Phantoms,
    save_dataset,
)
from physinv.data.hdf5 import _seal, partial_path
from physinv.operators import Convolution, Matrix
from physinv.psf import gaussian


def _ds(n=10, seed=0, size=12):
    A = Convolution(gaussian(1.0, size=5), (size, size))
    return InverseProblemDataset(A, Phantoms(n, size, seed=1), noise_sigma=(0.01, 0.1), seed=seed)


class Failing:
    """Wraps a dataset; raises at index ``fail_at`` and records which indices were generated."""

    def __init__(self, ds, fail_at=None, check_absent=None):
        self.ds, self.fail_at, self.check_absent, self.seen = ds, fail_at, check_absent, []

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        if self.check_absent is not None:
            assert not os.path.exists(self.check_absent), "final file visible before the write finished"
        if i == self.fail_at:
            raise RuntimeError(f"simulated crash at sample {i}")
        self.seen.append(i)
        return self.ds[i]

    def sigma(self, i):
        return self.ds.sigma(i)

    def describe(self):
        return self.ds.describe()

    @property
    def A(self):
        return self.ds.A


def test_round_trip_samples_sigma_operator_metadata(tmp_path):
    ds = _ds()
    path = save_dataset(tmp_path / "d.h5", ds, metadata={"purpose": "test"})
    h5 = H5Dataset(path)
    assert len(h5) == len(ds)
    for i in range(len(ds)):
        y, x = h5[i]
        y0, x0 = ds[i]
        assert torch.equal(y, y0) and torch.equal(x, x0) and y.dtype == torch.float32
    np.testing.assert_array_equal(h5.noise_sigma, [ds.sigma(i) for i in range(len(ds))])
    op = h5.operator
    assert op.to_config() == ds.A.to_config()
    x = ds[3][1]
    assert torch.equal(op(x), ds.A(x))
    md = h5.metadata
    assert md["schema_version"] == SCHEMA_VERSION and md["complete"] and md["n_written"] == len(ds)
    assert md["physinv_version"] == physinv.__version__ and md["seed"] == 0
    assert md["generator"]["noise_sigma"] == [0.01, 0.1] and md["metadata"] == {"purpose": "test"}
    assert "T" in md["created"]
    with h5py.File(path) as f:  # chunked per sample and compressed
        assert f["x"].chunks == (1, 12, 12) and f["x"].compression == "gzip"
        assert f["y"].chunks == (1, 12, 12)
        # schema 2: every dataset carries a checksum; never-written chunks read as NaN
        assert all(f[k].fletcher32 for k in ("x", "y", "noise_sigma", "sample_digest"))
        assert all(np.isnan(f[k].fillvalue) for k in ("x", "y", "noise_sigma"))
        assert f["noise_sigma"].chunks is not None and f["sample_digest"].shape == (len(ds), 16)
    assert h5.schema_version == 2 and h5.sigma(4) == ds.sigma(4)
    for k in ("attrs_sha256", "operator_sha256", "noise_sigma_sha256", "sample_digest_sha256"):
        assert len(md[k]) == 64
    y, x, s = H5Dataset(path, return_sigma=True, dtype=torch.float64)[2]
    assert y.dtype == torch.float64 and float(s) == pytest.approx(ds.sigma(2))
    assert not os.path.exists(partial_path(path))


def test_arrays_lzf_and_large_operator_json(tmp_path):
    rng = np.random.default_rng(0)
    M = rng.standard_normal((60, 144))
    A = Matrix(M, in_shape=(12, 12), out_shape=(60,))
    x = rng.random((5, 12, 12))
    y = np.einsum("ij,nj->ni", M, x.reshape(5, -1))
    path = save_dataset(tmp_path / "m.h5", (y, x), operator=A, noise_sigma=0.0, compression="lzf")
    with h5py.File(path) as f:
        assert f["x"].compression == "lzf" and f["x"].fletcher32
    assert len(json.dumps(A.to_config())) > 64 * 1024 // 4  # a big attribute (dense storage needed)
    h5 = H5Dataset(path)
    np.testing.assert_array_equal(h5[4][1].numpy(), x[4])
    assert h5.x_shape == (12, 12) and h5.y_shape == (60,)
    np.testing.assert_allclose(h5.operator(torch.from_numpy(x[4])).numpy(), y[4], rtol=1e-12)
    with pytest.raises(FileExistsError, match="overwrite"):
        save_dataset(path, (y, x))
    save_dataset(path, (2 * y, x), overwrite=True, compression=None)
    assert torch.equal(H5Dataset(path)[0][0], torch.from_numpy(2 * y[0]))
    with h5py.File(path) as f:  # the checksum filter also without compression
        assert f["x"].compression is None and f["x"].fletcher32 and f["noise_sigma"].fletcher32


def test_interrupted_write_is_invisible_then_resumes(tmp_path):
    ds = _ds(n=23)
    path = str(tmp_path / "r.h5")
    crash = Failing(ds, fail_at=17, check_absent=path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_dataset(path, crash, chunk_samples=5)
    assert not os.path.exists(path)
    with h5py.File(partial_path(path)) as f:
        assert f.attrs["n_written"] == 15 and not f.attrs["complete"]
    with pytest.raises(FileNotFoundError, match="unfinished write"):
        H5Dataset(path)
    again = Failing(ds, check_absent=path)
    save_dataset(path, again, chunk_samples=5)
    # resumed: sample 0 (dtype probe), 14 (consistency check), then only 15..22 were generated
    assert again.seen == [0, 14, *range(15, 23)]
    ref = save_dataset(tmp_path / "ref.h5", ds, chunk_samples=5)
    a, b = H5Dataset(path), H5Dataset(ref)
    for i in range(23):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    np.testing.assert_array_equal(a.noise_sigma, b.noise_sigma)


_KILLED_WRITER = """
import os, signal
from physinv.data import InverseProblemDataset, Phantoms, save_dataset
from physinv.operators import Identity

class Dying:
    def __init__(self, ds):
        self.ds, self.A = ds, ds.A
    def __len__(self):
        return len(self.ds)
    def __getitem__(self, i):
        if i == 25:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.ds[i]
    def sigma(self, i):
        return self.ds.sigma(i)
    def describe(self):
        return self.ds.describe()

ds = InverseProblemDataset(Identity((8, 8)), Phantoms(40, 8, seed=0), noise_sigma=0.1, seed=0)
save_dataset(PATH, Dying(ds), chunk_samples=10)
"""


def test_sigkilled_write_resumes_without_loss(tmp_path):
    from physinv.data import InverseProblemDataset, Phantoms
    from physinv.operators import Identity

    path = str(tmp_path / "k.h5")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", f"PATH = {path!r}\n" + _KILLED_WRITER], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr[-2000:]
    assert not os.path.exists(path)
    ds = InverseProblemDataset(Identity((8, 8)), Phantoms(40, 8, seed=0), noise_sigma=0.1, seed=0)
    again = Failing(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unclosed file must reopen cleanly, not be discarded
        save_dataset(path, again, chunk_samples=10)
    assert again.seen == [0, 19, *range(20, 40)]
    h5 = H5Dataset(path)
    assert all(torch.equal(h5[i][0], ds[i][0]) for i in range(40))


def test_resume_with_other_data_or_damaged_partial_starts_over(tmp_path):
    path = str(tmp_path / "o.h5")
    with pytest.raises(RuntimeError):
        save_dataset(path, Failing(_ds(n=12, seed=0), fail_at=8), chunk_samples=4)
    other = Failing(_ds(n=12, seed=9))
    with pytest.warns(UserWarning, match="other data"):
        save_dataset(path, other, chunk_samples=4)
    assert other.seen == [0, *range(12)]
    assert torch.equal(H5Dataset(path)[5][0], _ds(n=12, seed=9)[5][0])
    path2 = str(tmp_path / "p.h5")
    with open(partial_path(path2), "wb") as fh:
        fh.write(os.urandom(3000))
    with pytest.warns(UserWarning, match="damaged"):
        save_dataset(path2, _ds(n=4))
    assert len(H5Dataset(path2)) == 4


def test_worker_processes_and_pickling(tmp_path):
    ds = _ds(n=9)
    h5 = H5Dataset(save_dataset(tmp_path / "w.h5", ds))
    h5[0]  # open a handle in this process first: workers must not reuse it
    clone = pickle.loads(pickle.dumps(h5))
    assert clone._h is None and torch.equal(clone[4][0], ds[4][0])
    loader = torch.utils.data.DataLoader(h5, batch_size=2, num_workers=2, timeout=120)
    ys = torch.cat([b[0] for b in loader])
    assert torch.equal(ys, torch.stack([ds[i][0] for i in range(9)]))
    with h5:
        assert torch.equal(h5[-1][1], ds[8][1])
    assert h5._h is None


# ------------------------------------------------------------ bad files
@pytest.fixture
def good(tmp_path):
    return save_dataset(tmp_path / "good.h5", _ds(n=6))


def _mutate(path, fn, reseal=False):
    """Change a file with h5py; ``reseal`` rewrites its digests (a crafted file that is self-consistent)."""
    with h5py.File(path, "r+") as f:
        fn(f)
        if reseal:
            _seal(f)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.h5"):
        H5Dataset(tmp_path / "nothing.h5")


def test_truncated_file(good):
    size = os.path.getsize(good)
    with open(good, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(DatasetFileError, match="truncated or corrupt") as e:
        H5Dataset(good)
    assert good in str(e.value)


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.h5"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DatasetFileError, match="not a readable HDF5 file") as e:
        H5Dataset(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("mutation, message", [
    (lambda f: f.attrs.__setitem__("schema_version", 99), "schema version 99 is not supported.*newer"),
    (lambda f: f.attrs.__setitem__("schema_version", 0), "schema version 0 is not supported"),
    (lambda f: f.attrs.__delitem__("schema_version"), "missing attribute 'schema_version'"),
    (lambda f: f.attrs.__delitem__("operator"), r"missing attribute\(s\) \['operator'\]"),
    (lambda f: f.attrs.__setitem__("operator", "{not json"), "'operator' is not valid JSON"),
    (lambda f: f.attrs.__setitem__("format", "something-else"), "not a physinv dataset"),
    (lambda f: f.attrs.__setitem__("complete", False), "incomplete file"),
    (lambda f: f.__delitem__("y"), "missing dataset '/y'"),
    (lambda f: (f.__delitem__("y"), f.create_dataset("y", data=np.zeros((5, 12, 12), np.float32))),
     "disagree on the number of samples"),
    (lambda f: f.attrs.__setitem__("x_shape", [12, 13]), "disagree with the attributes"),
    (lambda f: (f.__delitem__("x"), f.create_dataset("x", data=np.zeros((6, 12, 12), np.int16))),
     "float32 or float64"),
])
def test_schema_violations(good, mutation, message):
    _mutate(good, mutation)
    with pytest.raises(DatasetFileError, match=message) as e:
        H5Dataset(good)
    assert good in str(e.value)


def test_operator_disagreeing_with_samples(good):
    other = Convolution(gaussian(1.0, size=3), (8, 8)).to_config()
    _mutate(good, lambda f: f.attrs.__setitem__("operator", json.dumps(other)), reseal=True)
    h5 = H5Dataset(good)  # the samples themselves are fine
    assert h5[0][0].shape == (12, 12)
    with pytest.raises(DatasetFileError, match=r"maps \(8, 8\)"):
        _ = h5.operator


@pytest.mark.parametrize("mutation", [
    lambda f: f.attrs.__setitem__("seed", 7),
    lambda f: f.attrs.__setitem__("metadata", json.dumps({"purpose": "other"})),
    lambda f: f.attrs.__setitem__("extra", 1),
])
def test_modified_attributes_fail_their_digest(good, mutation):
    _mutate(good, mutation)
    with pytest.raises(DatasetFileError, match="root attributes do not match their SHA-256 digest") as e:
        H5Dataset(good)
    assert good in str(e.value)


def test_modified_tables_and_samples_fail_their_digests(good):
    _mutate(good, lambda f: f["noise_sigma"].__setitem__(2, 0.5))
    with pytest.raises(DatasetFileError, match="'/noise_sigma' does not match its SHA-256 digest"):
        H5Dataset(good)
    _mutate(good, lambda f: None, reseal=True)
    _mutate(good, lambda f: f["x"].__setitem__(4, np.zeros((12, 12), np.float32)))
    h5 = H5Dataset(good)
    assert torch.equal(h5[3][1], _ds(n=6)[3][1])
    with pytest.raises(DatasetFileError, match="sample 4 does not match its stored digest") as e:
        h5[4]
    assert good in str(e.value)


def test_unknown_filter_is_refused(good):
    def scaleoffset(f):
        x = f["x"][:]
        del f["x"]
        f.create_dataset("x", data=x, chunks=(1, 12, 12), scaleoffset=3)
    _mutate(good, scaleoffset)
    with pytest.raises(DatasetFileError, match="'/x' uses HDF5 filter 6, which physinv does not read"):
        H5Dataset(good)


def _write_v1(path, ds, skip=None):
    """A schema version 1 file, as physinv 0.1 wrote it (no checksums, zero fill)."""
    n = len(ds)
    y0, x0 = ds[0]
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        for name, t in (("x", x0), ("y", y0)):
            f.create_dataset(name, shape=(n, *t.shape), dtype=np.float32, chunks=(1, *t.shape),
                             compression="gzip", shuffle=True)
        f.create_dataset("noise_sigma", shape=(n,), dtype=np.float64)
        for i in range(n):
            if i != skip:
                f["y"][i], f["x"][i] = ds[i][0].numpy(), ds[i][1].numpy()
            f["noise_sigma"][i] = ds.sigma(i)
        for k, v in {"format": "physinv-dataset", "schema_version": 1, "n": n, "n_written": n,
                     "complete": True, "x_shape": np.asarray(x0.shape), "y_shape": np.asarray(y0.shape),
                     "operator": json.dumps(ds.A.to_config()), "generator": "{}", "fingerprint": "",
                     "seed": 0, "physinv_version": "0.1.0", "created": "2024-01-01T00:00:00+00:00",
                     "metadata": "{}"}.items():
            f.attrs[k] = v
    return str(path)


def test_version_1_files_are_read_and_resaved(tmp_path):
    ds = _ds(n=5)
    old = H5Dataset(_write_v1(tmp_path / "v1.h5", ds))
    assert old.schema_version == 1 and len(old) == 5
    assert all(torch.equal(old[i][0], ds[i][0]) and torch.equal(old[i][1], ds[i][1]) for i in range(5))
    np.testing.assert_array_equal(old.noise_sigma, [ds.sigma(i) for i in range(5)])
    assert old.operator.to_config() == ds.A.to_config()
    new = H5Dataset(save_dataset(tmp_path / "v2.h5", old, operator=old.operator))
    assert new.schema_version == SCHEMA_VERSION == 2
    assert all(torch.equal(new[i][0], ds[i][0]) and torch.equal(new[i][1], ds[i][1]) for i in range(5))
    np.testing.assert_array_equal(new.noise_sigma, old.noise_sigma)
    assert new.operator.to_config() == ds.A.to_config()
    assert new.metadata["generator"]["source"] == "v1.h5"
    # a version 1 file with a sample that was never written: refused on open, not read back as zeros
    with pytest.raises(DatasetFileError, match="'/x' should have 5 stored chunks but its chunk index "
                                               "lists 4"):
        H5Dataset(_write_v1(tmp_path / "hole.h5", ds, skip=2))
