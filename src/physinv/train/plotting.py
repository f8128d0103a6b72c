"""Training curves as a PNG: losses, validation metrics and the learning rate per epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._io import atomic_write

__all__ = ["plot_curves"]


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Save the logged curves of a training history as a PNG (atomically); nothing for an empty history.

    Parameters
    ----------
    history : sequence of dict
        Per-epoch records as logged by the Trainer (``epoch``, ``lr``,
        ``train_*``, ``val_*``).
    path : str or os.PathLike
        The PNG file.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> hist = [{"epoch": 1, "lr": 0.1, "train_loss": 1.0}, {"epoch": 2, "lr": 0.1, "train_loss": 0.5}]
    >>> plot_curves(hist, p)
    >>> open(p, "rb").read(4)
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    hist = list(history)
    if not hist:
        return
    ep = [r["epoch"] for r in hist]
    keys = sorted({k for r in hist for k in r} - {"epoch", "step", "time", "lr"})
    losses = [k for k in keys if k.startswith("train_") or k.startswith("val_loss")
              or (k.startswith("val_") and k[4:] in {t[6:] for t in keys if t.startswith("train_")})]
    others = [k for k in keys if k not in losses]
    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    for k in losses:
        axes[0].plot(ep, [r.get(k, float("nan")) for r in hist], marker=".", label=k)
    axes[0].set_yscale("log")
    axes[0].set_title("losses")
    for k in others:
        axes[1].plot(ep, [r.get(k, float("nan")) for r in hist], marker=".", label=k)
    axes[1].set_title("validation metrics")
    axes[2].plot(ep, [r["lr"] for r in hist], marker=".")
    axes[2].set_title("learning rate")
    for a in axes:
        a.set_xlabel("epoch")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90))
