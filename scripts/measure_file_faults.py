"""Count what happens when the files physinv writes are damaged: refused, harmless, or silently wrong.

For each kind of file physinv writes (an HDF5 dataset, a training checkpoint,
a Radon system-matrix cache) the script writes a small real one, then makes
many damaged copies (one flipped byte at a seeded random position, or a
truncation) and reads each back through the public API. Every outcome is one
of:

- ``refused``: an error that names the file (the promise),
- ``refused-unnamed``: an error that does not name the file,
- ``rebuilt``: the Radon cache is treated as a miss, rebuilt, with a warning naming the file,
- ``same``: everything read back is bit-identical to the original (the byte was unused),
- ``silent``: something read back differs and nothing was said (a broken promise).

Usage::

    python scripts/measure_file_faults.py              # 300 flips per kind (a few minutes)
    python scripts/measure_file_faults.py --flips 40   # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import warnings

import numpy as np
import torch

from physinv.data import DatasetFileError, H5Dataset, InverseProblemDataset, Phantoms, save_dataset
from physinv.operators import Convolution, Radon
from physinv.operators.tomography import cache
from physinv.psf import gaussian
from physinv.train import CheckpointError, Trainer, load_checkpoint


def _damaged(src: str, folder: str, rng: np.random.Generator, n: int):
    raw = open(src, "rb").read()
    for k in range(n):
        bad = bytearray(raw)
        if k % 10 == 9:  # every tenth: a truncation
            bad = bad[: int(rng.integers(1, len(raw)))]
        else:
            pos = int(rng.integers(0, len(raw)))
            bad[pos] ^= int(rng.integers(1, 256))
        path = os.path.join(folder, f"bad{k}{os.path.splitext(src)[1]}")
        with open(path, "wb") as fh:
            fh.write(bytes(bad))
        yield path


def _hdf5_snapshot(path: str):
    with H5Dataset(path) as h5:
        items = [tuple(t.numpy().copy() for t in h5[i]) for i in range(len(h5))]
        op = h5.operator
        return items, h5.noise_sigma.copy(), repr(h5.metadata), repr(None if op is None else op.to_config())


def _equal(a, b) -> bool:
    items_a, sig_a, *rest_a = a
    items_b, sig_b, *rest_b = b
    if rest_a != rest_b or not np.array_equal(sig_a, sig_b, equal_nan=True) or len(items_a) != len(items_b):
        return False
    return all(np.array_equal(u, v, equal_nan=True) for p, q in zip(items_a, items_b) for u, v in zip(p, q))


def hdf5(folder: str, rng, n: int) -> dict[str, int]:
    A = Convolution(gaussian(1.0, size=3), (8, 8))
    ds = InverseProblemDataset(A, Phantoms(6, 8, seed=1), noise_sigma=(0.01, 0.1), seed=0)
    src = save_dataset(os.path.join(folder, "good.h5"), ds, chunk_samples=4, metadata={"purpose": "faults"})
    ref = _hdf5_snapshot(src)
    counts: dict[str, int] = {}
    for path in _damaged(src, folder, rng, n):
        try:
            out = "same" if _equal(_hdf5_snapshot(path), ref) else "silent"
        except DatasetFileError as e:
            out = "refused" if path in str(e) else "refused-unnamed"
        except Exception:  # noqa: BLE001 - counted, not hidden
            out = "refused-unnamed"
        counts[out] = counts.get(out, 0) + 1
    return counts


class _Scale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, y):
        return self.a * y


def checkpoint(folder: str, rng, n: int) -> dict[str, int]:
    x = torch.rand(32, 6, 6, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(0.5 * x, x)
    run = os.path.join(folder, "run")
    Trainer(_Scale(), None, None, data, batch_size=8, epochs=1, output_dir=run, progress=False).fit()
    src = os.path.join(run, "last.pt")
    ref = load_checkpoint(src)
    counts: dict[str, int] = {}
    for path in _damaged(src, folder, rng, n):
        try:
            ck = load_checkpoint(path)
            same = repr(ck) == repr(ref)
            out = "same" if same else "silent"
        except CheckpointError as e:
            out = "refused" if path in str(e) else "refused-unnamed"
        except Exception:  # noqa: BLE001
            out = "refused-unnamed"
        counts[out] = counts.get(out, 0) + 1
    return counts


def radon_cache(folder: str, rng, n: int) -> dict[str, int]:
    angles = [10.0, 60.0, 130.0]
    good = os.path.join(folder, "radon")
    Radon(9, angles, cache_dir=good)
    name = next(f for f in os.listdir(good) if f.startswith("radon_system_"))
    src = os.path.join(good, name)
    cache.clear_memory_cache()
    fresh = Radon(9, angles)
    xs = torch.randn(2, 9, 9, dtype=torch.float64) * fresh.circle_mask()
    ys = torch.randn(2, *fresh.out_shape, dtype=torch.float64)
    counts: dict[str, int] = {}
    for path in _damaged(src, folder, rng, n):
        trial = os.path.join(folder, "trial")
        shutil.rmtree(trial, ignore_errors=True)
        os.makedirs(trial)
        target = os.path.join(trial, name)
        os.replace(path, target)
        cache.clear_memory_cache()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                A = Radon(9, angles, cache_dir=trial)
                ok = torch.equal(A(xs), fresh(xs)) and torch.equal(A.adjoint(ys), fresh.adjoint(ys))
            except Exception as e:  # noqa: BLE001
                out = "refused" if target in str(e) else "refused-unnamed"
                counts[out] = counts.get(out, 0) + 1
                continue
        named = any(target in str(w.message) for w in caught)
        out = ("rebuilt" if named else "same") if ok else "silent"
        counts[out] = counts.get(out, 0) + 1
    cache.clear_memory_cache()
    return counts


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flips", type=int, default=300, help="damaged copies per kind of file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, fn in (("HDF5 dataset", hdf5), ("training checkpoint", checkpoint),
                         ("Radon matrix cache", radon_cache)):
            folder = os.path.join(tmp, kind.replace(" ", "_"))
            os.makedirs(folder)
            results[kind] = fn(folder, np.random.default_rng(args.seed), args.flips)
    cols = ["refused", "rebuilt", "same", "refused-unnamed", "silent"]
    print("| file | damaged copies | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for kind, c in results.items():
        print(f"| {kind} | {sum(c.values())} | " + " | ".join(str(c.get(k, 0)) for k in cols) + " |")
    return results


if __name__ == "__main__":
    main()
