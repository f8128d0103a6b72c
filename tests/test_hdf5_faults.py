"""Fault injection on HDF5 dataset files: flipped bytes never read back silently, crafted files are refused.

Every single-byte flip below must either raise ``DatasetFileError`` naming the file, or provably
change nothing that is read back (all samples, noise levels, attributes and the rebuilt
operator's description compared with the originals).  Run this file as a script for a larger
seeded sweep that prints the counts quoted in ``docs/data.md``::

    python tests/test_hdf5_faults.py --flips 2000
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import zlib
from collections import Counter

import h5py
import numpy as np
import pytest
import torch

from physinv.data import DatasetFileError, H5Dataset, InverseProblemDataset, Phantoms, save_dataset
from physinv.data.hdf5 import _seal, check_operator_config
from physinv.operators import Convolution, Identity
from physinv.psf import gaussian


def _make(folder, compression="gzip", n=6, size=8):
    A = Convolution(gaussian(1.0, size=3), (size, size))
    ds = InverseProblemDataset(A, Phantoms(n, size, seed=1), noise_sigma=(0.01, 0.1), seed=0)
    return save_dataset(os.path.join(folder, f"f_{compression}.h5"), ds, compression=compression,
                        chunk_samples=4, metadata={"purpose": "faults"})


def _snapshot(path):
    """Everything a user can read back from a file."""
    h5 = H5Dataset(path)
    items = [tuple(t.numpy().copy() for t in h5[i]) for i in range(len(h5))]
    op = h5.operator
    return {"items": items, "sigma": h5.noise_sigma, "attrs": json.dumps(h5.metadata, sort_keys=True),
            "operator": json.dumps(None if op is None else op.to_config()), "len": len(h5)}


def _same(a, b):
    if a["len"] != b["len"] or a["attrs"] != b["attrs"] or a["operator"] != b["operator"]:
        return False
    if not np.array_equal(a["sigma"], b["sigma"], equal_nan=True):
        return False
    return all(len(p) == len(q) and all(np.array_equal(u, v, equal_nan=True) for u, v in zip(p, q))
               for p, q in zip(a["items"], b["items"]))


def outcome(path, ref):
    """``"open"``/``"read"`` (DatasetFileError naming the file, at open / on a later read), ``"same"``
    (nothing read back changed) or ``"silent"`` (a value read back differs); anything else propagates."""
    try:
        h5 = H5Dataset(path)
    except DatasetFileError as e:
        assert path in str(e), e
        return "open"
    try:
        snap = _snapshot(path)
    except DatasetFileError as e:
        assert path in str(e), e
        return "read"
    finally:
        h5.close()
    return "same" if _same(snap, ref) else "silent"


def _btree_nodes(raw, chunk_offsets):
    """Byte ranges of the v1 B-tree nodes (the chunk index): ``TREE`` signatures whose first child
    pointer is a known chunk address, up to the last used key."""
    out = []
    pos = raw.find(b"TREE")
    while pos >= 0:
        used = struct.unpack_from("<H", raw, pos + 6)[0]
        level = raw[pos + 5]
        for ndim in (2, 3, 4):
            ksize = 8 + 8 * (ndim + 1)
            if pos + 24 + ksize + 8 > len(raw):
                continue
            child = struct.unpack_from("<Q", raw, pos + 24 + ksize)[0]
            if level > 0 or child in chunk_offsets:
                out.append((pos, pos + 24 + (used + 1) * ksize + used * 8))
                break
        pos = raw.find(b"TREE", pos + 4)
    return out


def regions(path):
    """Named byte ranges of a file: data chunks, tables, chunk index, operator description, the rest."""
    raw = open(path, "rb").read()
    reg = {}
    with h5py.File(path, "r") as f:
        for name in ("x", "y", "noise_sigma", "sample_digest"):
            ds = f[name]
            reg[name] = [(i.byte_offset, i.byte_offset + i.size)
                         for i in (ds.id.get_chunk_info(k) for k in range(ds.id.get_num_chunks()))]
        op_text = f.attrs["operator"].encode()
    offsets = {a for name in ("x", "y") for a, _ in reg[name]}
    reg["chunk index"] = _btree_nodes(raw, offsets)
    start = raw.find(op_text)
    assert start >= 0
    reg["operator description"] = [(start, start + len(op_text))]
    taken = np.zeros(len(raw), bool)
    for name in ("x", "y", "noise_sigma", "sample_digest"):
        for a, b in reg[name]:
            taken[a:b] = True
    reg["other metadata"] = [(int(k), int(k) + 1) for k in np.flatnonzero(~taken)]
    return raw, reg


def _positions(ranges, count, rng):
    cells = np.concatenate([np.arange(a, b) for a, b in ranges])
    return rng.choice(cells, size=min(count, cells.size), replace=False)


def sweep(folder, plan, seed=0, compression="gzip"):
    """Flip one byte at seeded positions in each region; return ``{region: Counter(outcomes)}``."""
    path = _make(folder, compression)
    ref = _snapshot(path)
    raw, reg = regions(path)
    rng = np.random.default_rng(seed)
    bad = os.path.join(folder, "flipped.h5")
    result = {}
    for name, count in plan.items():
        c = Counter()
        for pos in _positions(reg[name], count, rng):
            data = bytearray(raw)
            data[pos] ^= int(rng.integers(1, 256))
            with open(bad, "wb") as fh:
                fh.write(data)
            c[outcome(bad, ref)] += 1
        result[name] = c
    return result


_PLAN = {"x": 5, "y": 5, "noise_sigma": 4, "sample_digest": 3, "chunk index": 12,
         "operator description": 6, "other metadata": 12}


@pytest.mark.parametrize("compression", ["gzip", None])
def test_flipped_bytes_never_read_back_silently(tmp_path, compression):
    result = sweep(str(tmp_path), _PLAN, seed=1, compression=compression)
    silent = {k: v["silent"] for k, v in result.items() if v["silent"]}
    assert not silent, result
    # a flip in the stored bytes of a sample or a table always changes a value: it must be detected
    for name in ("x", "y", "noise_sigma", "sample_digest", "operator description"):
        assert result[name]["same"] == 0 or name in ("x", "y"), result
        assert result[name]["open"] + result[name]["read"] > 0, result


def test_misdirected_and_lost_chunk_index_entries(tmp_path):
    """Rewrite a key of the chunk index: the sample's chunk is lost (reads the NaN fill) or another
    sample's chunk is served instead; either raises on read, naming the sample."""
    path = _make(str(tmp_path))
    raw, reg = regions(path)
    with h5py.File(path, "r") as f:
        addr = {f["x"].id.get_chunk_info(k).byte_offset: k for k in range(f["x"].id.get_num_chunks())}
    for target, new_index, message in [(2, 40, "sample 2 of '/x' was never written"),
                                       (3, 4, "does not match its stored digest|never written")]:
        data = bytearray(raw)
        ksize, hit = 8 + 8 * 4, False
        for a, _ in reg["chunk index"]:
            used = struct.unpack_from("<H", data, a + 6)[0]
            for e in range(used):
                key = a + 24 + e * (ksize + 8)
                child = struct.unpack_from("<Q", data, key + ksize)[0]
                if addr.get(child) == target:
                    struct.pack_into("<Q", data, key + 8, new_index)  # the chunk's first coordinate
                    hit = True
        assert hit
        bad = str(tmp_path / f"key{target}.h5")
        with open(bad, "wb") as fh:
            fh.write(data)
        h5 = H5Dataset(bad)  # the number of chunks is still right
        with pytest.raises(DatasetFileError, match=message) as e:
            for i in range(len(h5)):
                h5[i]
        assert bad in str(e.value)


class _Catching(torch.utils.data.Dataset):
    """Reports, per index, the reading process and the error raised there (a worker's exception would
    otherwise stop the DataLoader)."""

    def __init__(self, h5):
        self.h5 = h5

    def __len__(self):
        return len(self.h5)

    def __getitem__(self, i):
        try:
            self.h5[i]
        except DatasetFileError as e:
            return os.getpid(), str(e)
        return os.getpid(), "ok"


def test_corrupt_sample_is_detected_in_dataloader_workers(tmp_path):
    path = _make(str(tmp_path))
    _, reg = regions(path)
    data = bytearray(open(path, "rb").read())
    a, b = reg["x"][3]
    data[(a + b) // 2] ^= 0x5A
    bad = str(tmp_path / "worker.h5")
    with open(bad, "wb") as fh:
        fh.write(data)
    h5 = H5Dataset(bad)
    loader = torch.utils.data.DataLoader(_Catching(h5), batch_size=2, num_workers=2, collate_fn=list,
                                         timeout=120)
    got = [item for batch in loader for item in batch]
    assert all(pid != os.getpid() for pid, _ in got)  # read in the workers
    assert [m for _, m in got if m != "ok"] == [m for _, m in got][3:4]
    assert got[3][1].startswith(f"{bad}: ") and "sample 3" in got[3][1]


def test_decompression_bomb_is_not_inflated(tmp_path):
    path = _make(str(tmp_path))
    with h5py.File(path, "r+") as f:
        f["x"].id.write_direct_chunk((1, 0, 0), zlib.compress(b"\0" * (16 * 2**20)))  # 16 MiB
        f["y"].id.write_direct_chunk((2, 0, 0), zlib.compress(b"\0" * 2**20, 9) + b"\0" * 4)  # 1 MiB
    h5 = H5Dataset(path)
    h5[0]
    with pytest.raises(DatasetFileError, match=r"sample 1 of '/x': a stored chunk of [\d,]+ bytes"):
        h5[1]
    with pytest.raises(DatasetFileError, match="sample 2 of '/y': the compressed chunk does not inflate"):
        h5[2]


# -------------------------------------------------- crafted operator descriptions
def _craft(path, operator=None, **attrs):
    """Rewrite root attributes and re-seal the file, as a crafted file with valid digests would be."""
    with h5py.File(path, "r+") as f:
        if operator is not None:
            f.attrs["operator"] = operator if isinstance(operator, str) else json.dumps(operator)
        for k, v in attrs.items():
            f.attrs[k] = v
        _seal(f)
    return path


def _nest(depth, leaf):
    node = leaf
    for _ in range(depth):
        node = {"type": "Scaled", "op": node, "c": 1.0}
    return node


_CONV = {"type": "Convolution", "psf": [[1.0]], "in_shape": [8, 8], "boundary": "circular"}


@pytest.mark.parametrize("config, field, message", [
    ({**_CONV, "in_shape": [60000, 60000]}, r"operator\.in_shape",
     "implies 3,600,000,000 elements, more than the limit"),
    ({"type": "Radon", "image_size": 2048, "angles": 180}, r"operator\.angles",
     "a 2048x2048 Radon matrix with 180 angles implies [\\d,]+ elements, more than the limit"),
    ({"type": "Radon", "image_size": [8, 8], "angles": 10**12}, r"operator\.angles",
     "expected a number of angles from 1 to 67,108,864"),
    ({"type": "Composition", "A": {"type": "Identity", "shape": [8, 8]},
      "B": {"type": "Composition", "A": {"type": "Matrix", "M": [[1.0] * 64] * 3, "in_shape": [64],
                                          "out_shape": [3]},
            "B": {"type": "Identity", "shape": [8, 8]}}},
     r"operator\.B", r"A takes \(64,\) but B gives \(8, 8\)"),
    (_nest(100, _CONV), r"operator(\.op){64}", "nested deeper than 64 levels"),
    ({"type": "Evil", "shape": [8, 8]}, r"operator\.type", "unknown operator type 'Evil'"),
    ({"type": "Radon", "image_size": 8, "angles": 4, "cache_dir": "/tmp/x"}, r"operator",
     r"unexpected field\(s\) \['cache_dir'\]"),
    ({"type": "Wavelet2D", "shape": [8, 8], "levels": 10**9}, r"operator\.levels", "from 1 to 62"),
    ({**_CONV, "psf": [[[[1.0]]]]}, r"operator\.psf", "expected a 2-D PSF"),
    ({"type": "Identity", "shape": [8, 9]}, "operator", r"maps \(8, 9\) -> \(8, 9\) but the samples"),
    ({"type": "Composition", "A": {**_CONV, "in_shape": [4000, 4000]},
      "B": {**_CONV, "in_shape": [4000, 4000]}}, r"operator\.B\.in_shape",
     "more than max_elements=67,108,864 elements in all"),
])
def test_crafted_operator_description_refused_before_building(tmp_path, monkeypatch, config, field,
                                                             message):
    path = _craft(_make(str(tmp_path)), operator=config)
    h5 = H5Dataset(path)  # the samples are fine
    import physinv.operators

    def never(cfg):
        raise AssertionError("an operator was built from a refused description")

    monkeypatch.setattr(physinv.operators, "from_config", never)
    with pytest.raises(DatasetFileError, match=message) as e:
        _ = h5.operator
    assert path in str(e.value) and "refused" in str(e.value)
    assert __import__("re").search(field, str(e.value)), str(e.value)


def test_legitimate_descriptions_pass_the_check():
    from physinv.operators import Gradient, Matrix, Pad, Radon, Wavelet2D

    ops = [Convolution(gaussian(1.0, size=5), (16, 16), boundary="reflect"), Gradient((16, 16)),
           Wavelet2D((16, 16), "db2", 2), Pad((16, 16), ((1, 2), (3, 4)), "reflect"),
           Radon(16, 5), 2.5 * Identity((16, 16)) @ Identity((16, 16)),
           Matrix(torch.ones(3, 256, dtype=torch.float64), in_shape=(16, 16)).H,
           Identity((16, 16)) + Identity((16, 16)) * (1 + 2j)]
    for A in ops:
        n = check_operator_config(A.to_config(), A.in_shape, A.out_shape)
        assert n >= math.prod(A.in_shape)
    with pytest.raises(ValueError, match=r"operator\.in_shape"):  # a bound the user can lower
        check_operator_config(ops[0].to_config(), (16, 16), (16, 16), max_elements=100)
    # field names written by an earlier physinv, and a factorization written out as an operator
    assert check_operator_config({"type": "Identity", "shape": [4]}, (4,), (4,)) == 4
    assert check_operator_config({"type": "Radon", "image_size": 8, "angles": [0.0, 90.0]}, (8, 8), (2, 8))
    fact = {"type": "FactorizedOperator", "U": {"type": "Identity", "in_shape": [3]}, "s": [3.0, 2.0, 1.0],
            "V": {"type": "Identity", "in_shape": [3]}, "real": True}
    assert check_operator_config(fact, (3,), (3,))
    with pytest.raises(ValueError, match=r"operator\.s: U and V take \(3,\) and \(3,\) but s has shape"):
        check_operator_config({**fact, "s": [1.0, 2.0]}, (3,), (3,))
    with pytest.raises(ValueError, match="has both 'shape' and 'in_shape'"):
        check_operator_config({"type": "Identity", "shape": [4], "in_shape": [4]}, (4,), (4,))


def test_deep_or_oversized_json_and_attributes_are_refused(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this
    path = _craft(_make(str(tmp_path)), metadata=deep)
    with pytest.raises(DatasetFileError, match="'metadata' is not valid JSON: too deeply nested") as e:
        H5Dataset(path)
    assert path in str(e.value)
    (tmp_path / "b").mkdir()
    path = _craft(_make(str(tmp_path / "b")), big=np.zeros(2**21, np.uint8))
    with pytest.raises(DatasetFileError, match="attribute 'big' claims 2,097,152 elements"):
        H5Dataset(path)


def test_huge_samples_are_refused_on_open(tmp_path):
    path = str(tmp_path / "huge.h5")
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        f.create_dataset("x", shape=(1, 60000, 60000), dtype="<f4", chunks=(1, 1000, 1000), fillvalue=np.nan)
        f.create_dataset("y", shape=(1, 60000, 60000), dtype="<f4", chunks=(1, 1000, 1000), fillvalue=np.nan)
        f.create_dataset("noise_sigma", shape=(1,), dtype="<f8", chunks=(1,))
        f.create_dataset("sample_digest", shape=(1, 16), dtype=np.uint8, chunks=(1, 16))
        a = f.attrs
        for k, v in {"format": "physinv-dataset", "schema_version": 2, "n": 1, "n_written": 1,
                     "complete": True, "x_shape": np.array([60000, 60000]),
                     "y_shape": np.array([60000, 60000]), "operator": "null"}.items():
            a[k] = v
        _seal(f)
    assert os.path.getsize(path) < 50_000
    with pytest.raises(DatasetFileError, match=r"a sample of '/x' has 3,600,000,000 elements") as e:
        H5Dataset(path)
    assert path in str(e.value)
    with pytest.raises(DatasetFileError, match=r"'/x' should have 3600 stored chunks but its chunk index "
                                               r"lists 0"):
        H5Dataset(path, max_elements=2**32)


def test_lost_chunk_is_detected_on_open(tmp_path):
    """A file whose chunk index lists fewer chunks than samples (a chunk never written) is refused."""
    path = str(tmp_path / "lost.h5")
    with h5py.File(path, "w", libver=("v108", "v108")) as f:
        for name in ("x", "y"):
            f.create_dataset(name, shape=(3, 4, 4), dtype="<f4", chunks=(1, 4, 4), fillvalue=np.nan,
                             fletcher32=True)[[0, 2]] = np.ones((2, 4, 4))
        f.create_dataset("noise_sigma", data=np.zeros(3), chunks=(3,))
        f.create_dataset("sample_digest", data=np.zeros((3, 16), np.uint8), chunks=(3, 16))
        for k, v in {"format": "physinv-dataset", "schema_version": 2, "n": 3, "n_written": 3,
                     "complete": True, "x_shape": np.array([4, 4]), "y_shape": np.array([4, 4]),
                     "operator": "null"}.items():
            f.attrs[k] = v
        _seal(f)
    with pytest.raises(DatasetFileError, match="'/x' should have 3 stored chunks but its chunk index "
                                               "lists 2"):
        H5Dataset(path)


def main(argv=None):  # pragma: no cover - the sweep quoted in docs/data.md
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flips", type=int, default=2000, help="flips per compression setting")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    share = {k: v / sum(_PLAN.values()) for k, v in _PLAN.items()}
    total = Counter()
    for compression in ("gzip", None):
        with tempfile.TemporaryDirectory() as d:
            plan = {k: max(1, round(args.flips * s)) for k, s in share.items()}
            res = sweep(d, plan, seed=args.seed, compression=compression)
        print(f"compression={compression!r}")
        for name, c in res.items():
            print(f"  {name:22s} flips={sum(c.values()):5d}  detected at open={c['open']:5d}  "
                  f"on read={c['read']:5d}  unchanged={c['same']:5d}  silent={c['silent']:3d}")
            total.update(c)
    print(f"all: {dict(total)}")
    return 1 if total["silent"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
