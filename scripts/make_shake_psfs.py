"""Reproduce the camera-shake PSFs shipped in ``data/psfs/`` (seeded, deterministic).

Each kernel is ``physinv.psf.shake(size, seed)`` for seeds 1000 to 1003: the
exposure of a point along a random camera trajectory, a smooth random path
whose direction drifts and whose speed varies, as a hand-held shake does (the
kernel is brighter where the camera is slow), rasterised with bilinear
splatting on a fine grid, averaged down to the kernel size, normalised to unit
sum. These are not the measured kernels of
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

from physinv.psf import shake

DATA = Path(__file__).resolve().parents[1] / "data"
SIZES = {"shake_1": 15, "shake_2": 19, "shake_3": 23, "shake_4": 27}


def main() -> None:
    (DATA / "psfs").mkdir(parents=True, exist_ok=True)
    manifest_path = DATA / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}}
    for i, (name, size) in enumerate(SIZES.items()):
        k = shake(size, seed=1000 + i).numpy()
        rel = f"psfs/{name}.npy"
        np.save(DATA / rel, k.astype(np.float64), allow_pickle=False)
        digest = hashlib.sha256((DATA / rel).read_bytes()).hexdigest()
        manifest["files"][rel] = {"sha256": digest, "kind": "psf", "shape": list(k.shape),
                                  "made_by": "scripts/make_shake_psfs.py"}
        print(f"{rel}: {k.shape}, sha256 {digest[:16]}...")
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
