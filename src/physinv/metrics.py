"""Batched image-quality metrics in torch.

Every metric compares images over their last two dimensions and returns one
value per image: a tensor with the leading (batch, channel) shape of its
inputs. ``psnr`` and ``ssim`` follow ``skimage.metrics`` conventions (SSIM:
7x7 uniform window, sample covariance, K1=0.01, K2=0.03) and agree with it to
float precision.

Input policy: floating inputs are compared in their own precision (half
types in float32); integer inputs (e.g. ``uint8`` images) are compared
exactly in float64, and ``data_range`` then defaults, as in scikit-image,
to the width of the integer dtype's range (255 for ``uint8``); floating
inputs default to ``data_range=1``. Boolean and complex inputs are refused
(boolean masks go to :func:`dice` and :func:`iou`). NaN propagates: an image
containing NaN gets a NaN score, as in numpy and scikit-image.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from ._validate import check_real

__all__ = ["mse", "psnr", "ssim", "dice", "iou"]


def _pair(x: torch.Tensor, ref: torch.Tensor, name: str = "x", images: bool = True
          ) -> tuple[torch.Tensor, torch.Tensor]:
    for n, t in ((name, x), ("ref", ref)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{n} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{n} must have at least 2 dimensions (..., H, W), got shape {tuple(t.shape)}")
    for n, t in ((name, x), ("ref", ref)) if images else ():
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{n} must be a real image tensor (floating or integer), got {t.dtype}")
    if x.shape != ref.shape:
        raise ValueError(f"{name} and ref must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(ref.shape)}")
    return x, ref


def _as_float(x: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair in the precision metrics compute in: float64 for integers, float32 for half types."""
    if x.is_floating_point() and ref.is_floating_point():
        dtype = torch.promote_types(torch.promote_types(x.dtype, ref.dtype), torch.float32)
    else:
        dtype = torch.float64
    return x.to(dtype), ref.to(dtype)


def _check_range(data_range: float | None, ref: torch.Tensor | None = None) -> float:
    if data_range is None:
        if ref is not None and not ref.is_floating_point():
            info = torch.iinfo(ref.dtype)
            return float(info.max - info.min)
        return 1.0
    if isinstance(data_range, bool) or not isinstance(data_range, (numbers.Real, torch.Tensor)):
        raise TypeError(f"data_range must be a real number, got {type(data_range).__name__} "
                        f"{data_range!r:.40}")
    data_range = check_real(data_range, "data_range", finite=False)
    if not (data_range > 0 and data_range < float("inf")):
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
    x, ref = _as_float(*_pair(x, ref))
    d = (x - ref).abs() ** 2
    return d.mean(dim=(-2, -1))


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / mse)`` in dB, per image.

    Parameters
    ----------
    x, ref : torch.Tensor
        Estimate and reference, same shape ``(..., H, W)``.
    data_range : float, optional
        Dynamic range of the reference. Default: the width of the dtype's
        range for integer inputs (255 for ``uint8``, as scikit-image), 1 for
        floating inputs (images in [0, 1]).

    Examples
    --------
    >>> import torch
    >>> ref = torch.zeros(1, 8, 8)
    >>> psnr(ref + 0.1, ref).round(decimals=3)
    tensor([20.])
    >>> u = torch.full((1, 8, 8), 100, dtype=torch.uint8)
    >>> psnr(u + 1, u).round(decimals=2)  # data_range 255 from the dtype
    tensor([48.1300], dtype=torch.float64)
    """
    _pair(x, ref)
    data_range = _check_range(data_range, ref)
    err = mse(x, ref)
    return 10.0 * torch.log10(data_range**2 / err)


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float | None = None, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image, matching ``skimage.metrics.structural_similarity``.

    Uses a ``win_size`` x ``win_size`` uniform window, sample covariances and
    the mean over the pixels whose window lies inside the image.
    ``data_range`` defaults as in :func:`psnr` (255 for ``uint8``).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x)
    tensor([1., 1.])
    """
    x, ref = _pair(x, ref)
    data_range = _check_range(data_range, ref)
    for name, v in (("k1", k1), ("k2", k2)):
        if check_real(v, name) <= 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if isinstance(win_size, bool) or not isinstance(win_size, numbers.Integral):
        raise TypeError(f"win_size must be an odd integer >= 3, got {type(win_size).__name__} {win_size!r}")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    H, W = x.shape[-2:]
    if H < win_size or W < win_size:
        raise ValueError(f"images of shape {(H, W)} are smaller than win_size={win_size}")
    lead = x.shape[:-2]
    out_dtype = x.dtype if x.is_floating_point() else torch.float64
    x, ref = _as_float(x, ref)
    X = x.reshape(-1, 1, H, W)
    Y = ref.reshape(-1, 1, H, W)
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
    return s.mean(dim=(-2, -1)).reshape(lead).to(out_dtype)


def _masks(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _pair(pred, target, "pred", images=False)
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
