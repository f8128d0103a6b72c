"""Batched image-quality metrics in torch.

Every metric compares images over their last two dimensions and returns one
value per image: a tensor with the leading (batch, channel) shape of its
inputs. ``psnr`` and ``ssim`` follow ``skimage.metrics`` conventions (SSIM:
7x7 uniform window, sample covariance, K1=0.01, K2=0.03) and agree with it to
float precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mse", "psnr", "ssim", "dice", "iou"]


def _pair(x: torch.Tensor, ref: torch.Tensor, name: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    for n, t in ((name, x), ("ref", ref)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{n} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{n} must have at least 2 dimensions (..., H, W), got shape {tuple(t.shape)}")
    if x.shape != ref.shape:
        raise ValueError(f"{name} and ref must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(ref.shape)}")
    return x, ref


def _check_range(data_range: float) -> float:
    data_range = float(data_range)
    if not (data_range > 0 and torch.isfinite(torch.tensor(data_range))):
        raise ValueError(f"data_range must be finite and > 0, got {data_range}")
    return data_range


def mse(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image.

    Examples
    --------
    >>> import torch
    >>> mse(torch.zeros(2, 4, 4), torch.ones(2, 4, 4))
    tensor([1., 1.])
    """
    x, ref = _pair(x, ref)
    d = (x - ref).abs() ** 2
    return d.mean(dim=(-2, -1))


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / mse)`` in dB, per image.

    Parameters
    ----------
    x, ref : torch.Tensor
        Estimate and reference, same shape ``(..., H, W)``.
    data_range : float
        Dynamic range of the reference (1 for images in [0, 1]).

    Examples
    --------
    >>> import torch
    >>> ref = torch.zeros(1, 8, 8)
    >>> psnr(ref + 0.1, ref).round(decimals=3)
    tensor([20.])
    """
    data_range = _check_range(data_range)
    err = mse(x, ref)
    return 10.0 * torch.log10(data_range**2 / err)


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image, matching ``skimage.metrics.structural_similarity``.

    Uses a ``win_size`` x ``win_size`` uniform window, sample covariances and
    the mean over the pixels whose window lies inside the image.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x)
    tensor([1., 1.])
    """
    x, ref = _pair(x, ref)
    data_range = _check_range(data_range)
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    H, W = x.shape[-2:]
    if H < win_size or W < win_size:
        raise ValueError(f"images of shape {(H, W)} are smaller than win_size={win_size}")
    lead = x.shape[:-2]
    dtype = torch.promote_types(x.dtype, torch.float32)
    X = x.reshape(-1, 1, H, W).to(dtype)
    Y = ref.reshape(-1, 1, H, W).to(dtype)
    stack = torch.cat([X, Y, X * X, Y * Y, X * Y], dim=1)
    m = F.avg_pool2d(stack, win_size, stride=1)
    ux, uy, uxx, uyy, uxy = m.unbind(1)
    n = win_size * win_size
    cov = n / (n - 1)
    vx = cov * (uxx - ux * ux)
    vy = cov * (uyy - uy * uy)
    vxy = cov * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1)).reshape(lead).to(x.dtype if x.is_floating_point() else dtype)


def _masks(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _pair(pred, target, "pred")
    if pred.dtype != torch.bool or target.dtype != torch.bool:
        raise TypeError(f"pred and target must be boolean masks, got {pred.dtype} and {target.dtype}")
    return pred, target


def dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice coefficient ``2|P&T| / (|P| + |T|)`` per mask (1 where both are empty).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[True, True], [False, False]])
    >>> t = torch.tensor([[True, False], [False, False]])
    >>> dice(p, t)
    tensor(0.6667)
    """
    pred, target = _masks(pred, target)
    inter = (pred & target).sum(dim=(-2, -1)).double()
    total = pred.sum(dim=(-2, -1)).double() + target.sum(dim=(-2, -1)).double()
    out = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    return out.float()


def iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union ``|P&T| / |P|T|`` per mask (1 where both are empty).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[True, True], [False, False]])
    >>> t = torch.tensor([[True, False], [False, False]])
    >>> iou(p, t)
    tensor(0.5000)
    """
    pred, target = _masks(pred, target)
    inter = (pred & target).sum(dim=(-2, -1)).double()
    union = (pred | target).sum(dim=(-2, -1)).double()
    out = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return out.float()
