"""Reproduce the camera-shake PSFs shipped in ``data/psfs/`` (seeded, deterministic).

Each kernel is the exposure of a point along a random camera trajectory: a
smooth random path whose direction drifts and whose speed varies, as a
hand-held shake does (the kernel is brighter where the camera is slow),
rasterised with bilinear splatting on a fine grid, averaged down to the kernel
size, normalised to unit sum. These are not the measured kernels of
Levin et al. (2009), which cannot be redistributed here; they are synthetic
non-parametric blurs of the same kind, for testing methods on PSFs that no
parametric family (Gaussian, disk, linear motion) describes.

Usage::

    python scripts/make_shake_psfs.py          # rewrites data/psfs/shake_*.npy and data/manifest.json
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
SIZES = {"shake_1": 15, "shake_2": 19, "shake_3": 23, "shake_4": 27}
SUPER = 4  # rasterise on a 4x finer grid, then average down


def trajectory(rng: np.random.Generator, n_steps: int, extent: float) -> np.ndarray:
    """(n_steps, 2) positions of a random walk with a drifting velocity, scaled to ``extent`` pixels."""
    v = rng.standard_normal(2)
    v /= np.linalg.norm(v)
    phase = rng.uniform(0, 2 * np.pi)
    pos = np.zeros((n_steps, 2))
    for k in range(1, n_steps):
        v = v + 0.08 * rng.standard_normal(2)  # the direction drifts slowly: a smooth curve
        v /= max(np.linalg.norm(v), 1e-12)
        pos[k] = pos[k - 1] + v * (0.3 + 0.7 * np.sin(0.01 * k + phase) ** 2)
    pos -= pos.mean(axis=0)
    span = np.abs(pos).max()
    return pos * (extent / (2 * span)) if span > 0 else pos


def kernel(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fine = size * SUPER
    grid = np.zeros((fine, fine))
    pos = trajectory(rng, 600, extent=0.8 * (size - 2)) * SUPER + (fine - 1) / 2
    # equal exposure per time step: the kernel is brighter where the camera is slow
    weight = np.ones(len(pos))
    i0 = np.floor(pos).astype(int)
    f = pos - i0
    for (di, dj), w in (((0, 0), (1 - f[:, 0]) * (1 - f[:, 1])), ((1, 0), f[:, 0] * (1 - f[:, 1])),
                        ((0, 1), (1 - f[:, 0]) * f[:, 1]), ((1, 1), f[:, 0] * f[:, 1])):
        rows, cols = np.clip(i0[:, 0] + di, 0, fine - 1), np.clip(i0[:, 1] + dj, 0, fine - 1)
        np.add.at(grid, (rows, cols), w * weight)
    k = grid.reshape(size, SUPER, size, SUPER).sum(axis=(1, 3))
    return k / k.sum()


def main() -> None:
    (DATA / "psfs").mkdir(parents=True, exist_ok=True)
    manifest_path = DATA / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}}
    for i, (name, size) in enumerate(SIZES.items()):
        k = kernel(seed=1000 + i, size=size)
        rel = f"psfs/{name}.npy"
        np.save(DATA / rel, k.astype(np.float64), allow_pickle=False)
        digest = hashlib.sha256((DATA / rel).read_bytes()).hexdigest()
        manifest["files"][rel] = {"sha256": digest, "kind": "psf", "shape": list(k.shape),
                                  "made_by": "scripts/make_shake_psfs.py"}
        print(f"{rel}: {k.shape}, sha256 {digest[:16]}...")
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
