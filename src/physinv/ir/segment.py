"""Segmentation of hot objects in reconstructed temperature maps: Otsu's threshold and a small trained CNN.

Two rules, both on temperature maps in kelvin of shape ``(..., H, W)``:

- :func:`otsu_threshold` / :func:`segment_otsu`: the threshold that maximises
  the between-class variance of the frame's histogram (N. Otsu, "A threshold
  selection method from gray-level histograms", IEEE Trans. SMC 9, 1979),
  computed in torch for every frame of a batch at once, on the frame's device.
- :class:`SegmentationHead`: a few 3x3 convolutions on the temperature map,
  trained with :func:`train_segmentation_head` (physinv's
  :class:`~physinv.train.Trainer`, binary cross-entropy plus soft Dice loss).

The head sees ``(T - median(T)) / scale_k`` per frame (default ``scale_k =
10`` K): it looks at temperature contrast against the frame's typical
temperature, so it does not depend on the absolute background temperature.

Examples
--------
>>> import torch
>>> t = torch.full((32, 32), 290.0, dtype=torch.float64)
>>> t[8:16, 8:16] = 305.0
>>> mask = segment_otsu(t)
>>> int(mask.sum()), bool(mask[10, 10])
(64, True)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

__all__ = ["otsu_threshold", "segment_otsu", "SegmentationHead", "soft_dice_loss", "bce_dice_loss",
           "train_segmentation_head", "normalise_temperature", "SCALE_K"]

#: Default temperature scale (kelvin) of the head's input ``(T - median(T)) / SCALE_K``.
SCALE_K = 10.0


def _check_maps(t: Any, name: str, fn: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() < 2 or t.shape[-1] < 1 or t.shape[-2] < 1:
        raise ValueError(f"{fn}: {name} must have shape (..., H, W), got {tuple(t.shape)}")
    if t.is_complex() or not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a real floating tensor, got {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{fn}: {name} must be finite (found NaN or infinity)")
    return t


def otsu_threshold(image: torch.Tensor, nbins: int = 256) -> torch.Tensor:
    """Otsu's threshold of each frame of ``image`` (shape ``(..., H, W)``), one value per frame.

    The frame's value range is split into ``nbins`` equal bins; the returned
    threshold is the centre of the bin after which the between-class variance
    ``w0 w1 (mu0 - mu1)^2`` is largest (the convention of
    ``skimage.filters.threshold_otsu``: pixels ``> threshold`` are foreground).
    A constant frame returns its value (nothing is foreground).

    Parameters
    ----------
    image : torch.Tensor
        Real, finite, floating, ``(..., H, W)``.
    nbins : int
        Number of histogram bins (>= 2).

    Returns
    -------
    torch.Tensor
        Shape ``image.shape[:-2]``, same dtype and device.

    Examples
    --------
    >>> import torch
    >>> x = torch.cat([torch.zeros(50), torch.ones(50)]).reshape(10, 10)
    >>> 0.0 < float(otsu_threshold(x)) < 1.0
    True
    """
    fn = "otsu_threshold"
    image = _check_maps(image, "image", fn)
    if isinstance(nbins, bool) or not isinstance(nbins, numbers.Integral) or nbins < 2:
        raise ValueError(f"{fn}: nbins must be an int >= 2, got {nbins!r}")
    nbins = int(nbins)
    lead = image.shape[:-2]
    x = image.reshape(-1, image.shape[-2] * image.shape[-1])
    dt = torch.float64
    xd = x.to(dt)
    lo = xd.min(dim=1, keepdim=True).values
    hi = xd.max(dim=1, keepdim=True).values
    width = hi - lo
    flat = width <= 0
    safe = torch.where(flat, torch.ones_like(width), width)
    idx = ((xd - lo) / safe * nbins).floor().clamp(0, nbins - 1).long()
    counts = torch.zeros(x.shape[0], nbins, dtype=dt, device=x.device)
    counts.scatter_add_(1, idx, torch.ones_like(xd))
    centers = lo + (torch.arange(nbins, dtype=dt, device=x.device) + 0.5) * safe / nbins
    w1 = counts.cumsum(1)
    w2 = counts.flip(1).cumsum(1).flip(1)
    m1 = (counts * centers).cumsum(1) / w1.clamp_min(1e-300)
    m2 = (counts * centers).flip(1).cumsum(1).flip(1) / w2.clamp_min(1e-300)
    var = w1[:, :-1] * w2[:, 1:] * (m1[:, :-1] - m2[:, 1:]) ** 2
    best = var.argmax(dim=1, keepdim=True)
    thr = centers.gather(1, best)
    thr = torch.where(flat, lo, thr)
    return thr.reshape(lead).to(image.dtype)


def segment_otsu(temperature_k: torch.Tensor, nbins: int = 256) -> torch.Tensor:
    """Boolean mask ``temperature_k > otsu_threshold(temperature_k)``, per frame.

    Examples
    --------
    >>> import torch
    >>> t = torch.tensor([[290.0, 290.0], [300.0, 300.0]])
    >>> segment_otsu(t)
    tensor([[False, False],
            [ True,  True]])
    """
    thr = otsu_threshold(temperature_k, nbins)
    return temperature_k > thr[..., None, None]


def normalise_temperature(temperature_k: torch.Tensor, scale_k: float = SCALE_K) -> torch.Tensor:
    """The head's input: ``(T - median(T)) / scale_k`` with the median over each frame.

    Examples
    --------
    >>> import torch
    >>> normalise_temperature(torch.tensor([[290.0, 300.0, 310.0]]))
    tensor([[-1.,  0.,  1.]])
    """
    flat = temperature_k.reshape(*temperature_k.shape[:-2], -1)
    med = flat.median(dim=-1).values
    return (temperature_k - med[..., None, None]) / scale_k


class SegmentationHead(nn.Module):
    """A small fully convolutional network: temperature map -> logits of "hot object".

    ``depth`` 3x3 convolutions (``channels`` features, ReLU between them, a
    dilation of 1, 2, 4, ... so that the receptive field grows quickly) and a
    1x1 convolution to one logit per pixel. Input ``(..., H, W)`` in kelvin;
    the network normalises it with :func:`normalise_temperature`.

    Parameters
    ----------
    channels : int
        Feature channels (>= 1).
    depth : int
        Number of 3x3 convolutions (>= 1).
    scale_k : float
        Temperature scale of the input normalisation (kelvin, > 0).

    Examples
    --------
    >>> import torch
    >>> head = SegmentationHead(channels=4, depth=2)
    >>> head(torch.full((2, 16, 20), 295.0)).shape
    torch.Size([2, 16, 20])
    >>> head.predict(torch.full((16, 20), 295.0)).dtype
    torch.bool
    """

    def __init__(self, channels: int = 16, depth: int = 3, scale_k: float = SCALE_K) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"SegmentationHead: {name} must be a positive int, got {v!r}")
        if isinstance(scale_k, bool) or not isinstance(scale_k, numbers.Real) or not (
                math.isfinite(scale_k) and scale_k > 0):
            raise ValueError(f"SegmentationHead: scale_k must be a finite number > 0, got {scale_k!r}")
        self.channels, self.depth, self.scale_k = int(channels), int(depth), float(scale_k)
        layers: list[nn.Module] = []
        cin = 1
        for k in range(self.depth):
            d = 2 ** k
            layers += [nn.Conv2d(cin, self.channels, 3, padding=d, dilation=d, padding_mode="replicate"),
                       nn.ReLU()]
            cin = self.channels
        layers.append(nn.Conv2d(cin, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, temperature_k: torch.Tensor) -> torch.Tensor:
        t = _check_maps(temperature_k, "temperature_k", "SegmentationHead")
        w = self.body[0].weight
        z = normalise_temperature(t, self.scale_k).to(w.dtype)
        flat = z.reshape(-1, 1, *t.shape[-2:])
        return self.body(flat).reshape(t.shape)

    @torch.no_grad()
    def predict(self, temperature_k: torch.Tensor) -> torch.Tensor:
        """Boolean mask: logit > 0 (probability > 1/2)."""
        was = self.training
        self.eval()
        try:
            return self(temperature_k) > 0
        finally:
            self.train(was)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)`` per frame, averaged; ``p = sigmoid(logits)``.

    Examples
    --------
    >>> import torch
    >>> t = torch.zeros(1, 4, 4); t[0, :2] = 1
    >>> float(soft_dice_loss(100 * (2 * t - 1), t)) < 1e-6
    True
    """
    p = torch.sigmoid(logits)
    t = target.to(p.dtype)
    inter = (p * t).flatten(-2).sum(-1)
    den = p.flatten(-2).sum(-1) + t.flatten(-2).sum(-1)
    return (1 - (2 * inter + eps) / (den + eps)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The head's training loss as named terms: ``{"bce": ..., "dice": ...}`` (their sum is minimised).

    Examples
    --------
    >>> import torch
    >>> terms = bce_dice_loss(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
    >>> sorted(terms), round(float(terms["bce"]), 4)
    (['bce', 'dice'], 0.6931)
    """
    t = target.to(logits.dtype)
    return {"bce": nn.functional.binary_cross_entropy_with_logits(logits, t),
            "dice": soft_dice_loss(logits, t)}


class _Flips(torch.utils.data.Dataset):
    """Pairs ``(a[n], b[n])``, their flips and (with ``crop``) square crops, deterministic per index.

    Index ``i`` is frame ``i % N`` under one of the four flips; with ``crop``
    there are as many crops per frame and flip as crop-sized tiles fit in the
    frame, each at a position drawn from ``(seed, i)``.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, augment: bool, crop: int | None = None,
                 seed: int = 0) -> None:
        self.a, self.b, self.k = a, b, 4 if augment else 1
        h, w = a.shape[-2:]
        self.crop = None if crop is None or (crop >= h and crop >= w) else (min(crop, h), min(crop, w))
        self.tiles = 1 if self.crop is None else max(1, (h // self.crop[0]) * (w // self.crop[1]))
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.a.shape[0] * self.k * self.tiles

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(i)
        n = i % self.a.shape[0]
        f = (i // self.a.shape[0]) % self.k
        a, b = self.a[n], self.b[n]
        if self.crop is not None:
            from .._random import mix_seed

            g = torch.Generator().manual_seed(mix_seed(self.seed, i))
            ch, cw = self.crop
            y0 = int(torch.randint(0, a.shape[-2] - ch + 1, (1,), generator=g))
            x0 = int(torch.randint(0, a.shape[-1] - cw + 1, (1,), generator=g))
            a, b = a[..., y0:y0 + ch, x0:x0 + cw], b[..., y0:y0 + ch, x0:x0 + cw]
        dims = [(), (-1,), (-2,), (-2, -1)][f]
        if dims:
            a, b = a.flip(dims), b.flip(dims)
        return a, b


def train_segmentation_head(temperature_k: torch.Tensor, mask: torch.Tensor, *,
                            steps: int = 200, batch_size: int = 4, lr: float = 3e-3, channels: int = 16,
                            depth: int = 3, scale_k: float = SCALE_K, augment: bool = True,
                            crop: int | None = 64, seed: int = 0, device: Any = None,
                            progress: bool = False) -> SegmentationHead:
    """Train a :class:`SegmentationHead` on temperature maps and their true masks.

    Uses :class:`physinv.train.Trainer` with :func:`bce_dice_loss`, Adam,
    about ``steps`` optimizer steps (``epochs = ceil(steps / batches per
    epoch)``), flips as augmentation, and (with ``val``) keeps the weights
    with the best validation Dice.

    Parameters
    ----------
    temperature_k : torch.Tensor
        ``(N, H, W)`` temperature maps (kelvin), e.g. reconstructions.
    mask : torch.Tensor
        ``(N, H, W)`` boolean true masks.
    steps, batch_size, lr : int, int, float
        Training budget, batch size (``min(batch_size, frames)``), learning rate.
    channels, depth, scale_k : int, int, float
        The head (see :class:`SegmentationHead`).
    augment : bool
        Add the three flips of every frame.
    crop : int or None
        Train on square tiles of this side (the head is fully convolutional);
        ``None``: whole frames.
    seed : int
        Seeds the initialisation and the sample order.
    device : str or torch.device, optional
        Where to train (default: the device of ``temperature_k``).
    progress : bool
        Show the Trainer's progress bars.

    Returns
    -------
    SegmentationHead
        In evaluation mode, on ``device``.

    Examples
    --------
    >>> import torch
    >>> t = torch.full((2, 16, 16), 290.0)
    >>> t[:, 4:10, 4:10] = 300.0
    >>> m = t > 295
    >>> head = train_segmentation_head(t, m, steps=5, channels=4, depth=2)
    >>> head.predict(t).shape
    torch.Size([2, 16, 16])
    """
    from ..train import Trainer
    from ..train.rng import seed_everything

    fn = "train_segmentation_head"
    t = _check_maps(temperature_k, "temperature_k", fn)
    if t.dim() != 3 or t.shape[0] < 1:
        raise ValueError(f"{fn}: temperature_k must have shape (N, H, W) with N >= 1, got {tuple(t.shape)}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != t.shape:
        raise ValueError(f"{fn}: mask must be a boolean tensor of shape {tuple(t.shape)}, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{fn}: seed must be a non-negative int, got {seed!r}")
    dev = t.device if device is None else torch.device(device)
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, numbers.Integral) or crop < 8):
        raise ValueError(f"{fn}: crop must be None or an int >= 8, got {crop!r}")
    data = _Flips(t.detach().float().to(dev), mask.float().to(dev), augment, crop, int(seed))
    bs = min(int(batch_size), len(data))
    epochs = max(1, math.ceil(int(steps) / math.ceil(len(data) / bs)))
    seed_everything(int(seed))
    head = SegmentationHead(channels, depth, scale_k).to(dev)
    trainer = Trainer(head, loss=bce_dice_loss, train_data=data, batch_size=bs, epochs=epochs,
                      seed=int(seed), lr=lr, progress=progress, device=dev)
    trainer.fit()
    return head.eval()
