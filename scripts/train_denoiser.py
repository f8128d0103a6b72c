"""Train the denoiser that ships with physinv (``physinv.nets.pretrained_denoiser``), seeded.

Training data: random patches of the training pictures bundled with
scikit-image (``physinv.bench.splits.TRAIN_IMAGES``: camera, text, page, clock,
grass, gravel, rocket, hubble_deep_field, retina, horse, cell, ihc,
microaneurysms, motorcycle_left, motorcycle_right, lfw_subset) at full
resolution and at half resolution, plus generated textured phantoms, and
their mirror images and rotations. No test picture (astronaut, chelsea,
coffee, coins, moon, brick, ...) is ever read. Each step draws a noise level
per patch uniformly in [0, SIGMA_MAX] and fresh Gaussian noise, so the
network learns every level it is conditioned on. The loop is physinv's own
``Trainer`` (Adam, cosine schedule, checkpoints: an interrupted run resumes).

Usage::

    python scripts/train_denoiser.py                       # writes data/weights/denoiser_v1.pt
    python scripts/train_denoiser.py --steps 200 --out /tmp/d.pt   # a quick check

Afterwards update ``data/manifest.json`` (this script does it when it writes
the shipped file) and record the command, the time and the test PSNR in
docs/networks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from physinv._io import atomic_write
from physinv.bench.splits import IMAGE_ALIASES, training_pictures
from physinv.data import skimage_image
from physinv.data.images import random_patches, textured_phantoms
from physinv.nets.denoiser import PRETRAINED_DENOISERS, Denoiser, UNetDenoiser
from physinv.train import Trainer

DATA = Path(__file__).resolve().parents[1] / "data"
SIGMA_MAX = 0.2


class NoisyPatches(torch.utils.data.Dataset):
    """Clean patches; the noise is drawn in the training step (fresh every time)."""

    def __init__(self, patches: np.ndarray) -> None:
        self.x = torch.from_numpy(patches.astype(np.float32))

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def make_patches(n: int, size: int, seed: int) -> np.ndarray:
    sources = []
    for name in training_pictures():
        full = skimage_image(IMAGE_ALIASES.get(name, name))
        sources.append(full)
        h, w = full.shape
        sources.append(skimage_image(IMAGE_ALIASES.get(name, name), (max(h // 2, size), max(w // 2, size))))
    sources += list(textured_phantoms(8, 128, seed=seed))
    patches = random_patches(sources, size, n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    k = rng.integers(0, 4, size=n)
    flip = rng.integers(0, 2, size=n).astype(bool)
    out = np.stack([np.rot90(p, int(r)) for p, r in zip(patches, k)])
    out[flip] = out[flip, :, ::-1]
    return np.ascontiguousarray(out)


def noisy_forward(model: Denoiser, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sigma = SIGMA_MAX * torch.rand(x.shape[0], dtype=x.dtype, device=x.device)
    y = x + sigma[:, None, None] * torch.randn_like(x)
    return model(y, sigma), x


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=40)
    p.add_argument("--patches", type=int, default=20000)
    p.add_argument("--arch", choices=("unet", "dncnn"), default="unet",
                   help="unet: UNetDenoiser (the shipped default); dncnn: the plain Denoiser")
    p.add_argument("--depth", type=int, default=10, help="dncnn: number of convolutions")
    p.add_argument("--channels", type=int, nargs="+", default=None,
                   help="feature channels (unet: one per scale, default 32 64 128; dncnn: one, default 32)")
    p.add_argument("--blocks", type=int, default=2, help="unet: residual blocks per scale and side")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run-dir", default=None, help="Trainer output (checkpoints; resumes if present)")
    p.add_argument("--out", default=None, help="weights file (default: the shipped file of --arch)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    data = NoisyPatches(make_patches(args.patches, args.patch, args.seed))
    epochs = max(1, round(args.steps * args.batch / len(data)))
    steps_per_epoch = -(-len(data) // args.batch)
    if args.arch == "unet":
        net = UNetDenoiser(channels=tuple(args.channels or (32, 64, 128)), blocks=args.blocks)
    else:
        net = Denoiser(depth=args.depth, channels=(args.channels or [32])[0])
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    run_dir = args.run_dir or os.path.join(tempfile.gettempdir(), f"physinv_denoiser_seed{args.seed}")
    trainer = Trainer(net, optimizer=opt, scheduler=sched, scheduler_interval="step", train_data=data,
                      batch_size=args.batch, epochs=epochs, seed=args.seed, forward=noisy_forward,
                      output_dir=run_dir, resume=True, checkpoint_every=500, progress=True)
    trainer.fit()
    seconds = time.perf_counter() - t0

    blob = {"format": "physinv-denoiser", "version": 2, "class": type(net).__name__, "config": net.config(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
            "training": {"steps": epochs * steps_per_epoch, "batch": args.batch, "patch": args.patch,
                         "patches": len(data), "sigma_max": SIGMA_MAX, "lr": args.lr, "seed": args.seed,
                         "seconds": round(seconds, 1), "threads": args.threads,
                         "torch": str(torch.__version__)}}
    buf = io.BytesIO()
    torch.save(blob, buf)
    raw = buf.getvalue()
    shipped = args.out is None
    shipped_name = PRETRAINED_DENOISERS[args.arch]
    out = Path(args.out) if args.out else DATA / shipped_name
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda fh: fh.write(raw))
    if shipped:
        manifest_path = DATA / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][shipped_name] = {
            "kind": "weights", "made_by": "scripts/train_denoiser.py",
            "sha256": hashlib.sha256(raw).hexdigest(), "shape": None}
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        atomic_write(manifest_path, lambda fh: fh.write(text), mode="w")
    print(f"wrote {out} ({len(raw) / 1e6:.2f} MB) after {seconds:.0f} s", file=sys.stderr)
    return blob["training"]


if __name__ == "__main__":
    main()
