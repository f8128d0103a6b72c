"""A small training run used by tests/test_train.py in subprocesses and under torchrun.

    python tests/_train_script.py --out DIR [--kill-at-step N] [--kill-in-write N] [--resume] [--dropout]
    python -m torch.distributed.run --nproc_per_node=2 tests/_train_script.py --out DIR

Writes DIR/final.pt (the final weights, rank 0) and, through the Trainer,
DIR/last.pt, DIR/best.pt and DIR/log.jsonl.  With --kill-at-step N the process
SIGKILLs itself while computing the loss of optimizer step N, so nothing gets
a chance to clean up.  With --kill-in-write N it SIGKILLs itself during the
N-th write of last.pt, after the temporary file is complete and before it is
renamed, leaving that temporary behind.  In-process tests pass
``interrupt_at=N`` to :func:`build` to raise ``KeyboardInterrupt`` (Ctrl-C)
from the loss of step N instead.
"""

from __future__ import annotations

import argparse
import os
import signal

import torch
from torch import nn

from physinv.data import InverseProblemDataset, Phantoms
from physinv.operators import Convolution
from physinv.psf import gaussian
from physinv.train import Trainer, atomic_save


class SmallNet(nn.Module):
    """A residual CNN on (B, H, W) images, optionally with dropout (to exercise the RNG state)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Conv2d(6, 1, 3, padding=1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.body(y.unsqueeze(-3)).squeeze(-3)


def build(out: str | None, epochs: int = 3, dropout: float = 0.0, kill_at: int | None = None,
          resume: bool = False, checkpoint_every: int | None = 3, batch_size: int = 4,
          n_train: int = 16, progress: bool = False, seed: int = 5,
          interrupt_at: int | None = None) -> Trainer:
    torch.manual_seed(0)
    A = Convolution(gaussian(1.0, size=5), (16, 16))
    train = InverseProblemDataset(A, Phantoms(n_train, 16, seed=1), noise_sigma=(0.01, 0.05), seed=2)
    val = InverseProblemDataset(A, Phantoms(6, 16, seed=3), noise_sigma=0.02, seed=4)
    model = SmallNet(dropout)
    calls = {"n": 0}

    def loss(pred, target):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if kill_at is not None and calls["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if interrupt_at is not None and calls["n"] == interrupt_at:
                raise KeyboardInterrupt
        return {"mse": nn.functional.mse_loss(pred, target), "l1": 0.1 * (pred - target).abs().mean()}

    t = Trainer(model, loss, torch.optim.Adam(model.parameters(), lr=3e-3), train, val,
                batch_size=batch_size, epochs=epochs, seed=seed, scheduler="cosine", clip_grad_norm=1.0,
                output_dir=out, checkpoint_every=checkpoint_every, resume=resume, progress=progress)
    t.loss_calls = calls
    return t


def _kill_in_write(n: int) -> None:
    """SIGKILL this process in the n-th rename of a temporary file onto last.pt (the write is complete)."""
    replace, count = os.replace, {"n": 0}

    def killing_replace(src, dst, **kw):
        if os.path.basename(os.fspath(dst)) == "last.pt":
            count["n"] += 1
            if count["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return replace(src, dst, **kw)

    os.replace = killing_replace


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dropout", action="store_true")
    p.add_argument("--kill-at-step", type=int, default=None)
    p.add_argument("--kill-in-write", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.kill_in_write is not None:
        _kill_in_write(a.kill_in_write)
    t = build(a.out, a.epochs, 0.3 if a.dropout else 0.0, a.kill_at_step, a.resume)
    t.fit()
    if t.rank == 0:
        atomic_save({"model": t.module.state_dict(), "history": t.history, "steps_run": t.loss_calls["n"],
                     "resumed_from": t.resumed_from, "world": t.world}, os.path.join(a.out, "final.pt"))
    t.close()


if __name__ == "__main__":
    main()
