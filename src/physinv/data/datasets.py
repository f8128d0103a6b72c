"""On-the-fly simulated measurement datasets ``y = A x + noise``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._random import mix_seed
from ..operators.base import LinearOperator

__all__ = ["InverseProblemDataset", "sample_generator"]

NOISE_MODELS = ("gaussian", "poisson-gaussian")


def sample_generator(seed: int, index: int) -> torch.Generator:
    """A CPU ``torch.Generator`` that depends only on ``(seed, index)``.

    The two integers are mixed with :class:`numpy.random.SeedSequence`, so
    neighbouring seeds and indices give unrelated streams.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(2, generator=sample_generator(0, 5))
    >>> bool((a == torch.rand(2, generator=sample_generator(0, 5))).all())
    True
    """
    return torch.Generator(device="cpu").manual_seed(mix_seed(seed, index))


def _check_sigma(noise_sigma: Any) -> float | tuple[float, float]:
    if isinstance(noise_sigma, numbers.Real) and not isinstance(noise_sigma, bool):
        s = float(noise_sigma)
        if not (np.isfinite(s) and s >= 0):
            raise ValueError(f"noise_sigma must be finite and >= 0, got {noise_sigma!r}")
        return s
    if isinstance(noise_sigma, Sequence) and len(noise_sigma) == 2:
        lo, hi = (float(v) for v in noise_sigma)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
            raise ValueError(f"noise_sigma range must satisfy 0 <= low <= high, got {tuple(noise_sigma)!r}")
        return (lo, hi)
    raise TypeError(f"noise_sigma must be a float or a (low, high) pair, got {noise_sigma!r}")


def _describe_images(images: Any) -> str:
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return f"{type(images).__name__} of shape {tuple(images.shape)}"
    if isinstance(images, (list, tuple)):
        return f"{type(images).__name__} of {len(images)} images"
    return repr(images)[:500]


class InverseProblemDataset(Dataset):
    """Pairs ``(y, x)`` with ``y = A x + noise``, simulated on the fly.

    Sample ``i`` depends only on ``(seed, i)`` (and on image ``i``): the noise
    level and the noise are drawn from :func:`sample_generator`, so any
    worker, process or epoch produces the same pair for the same index.

    Parameters
    ----------
    A : LinearOperator
        The forward model; images must have shape ``A.in_shape``.  It is
        applied on the CPU without gradients.
    images : sequence of arrays or tensors
        Anything indexable with a length: an ``(N, *in_shape)`` array, a list,
        :class:`~physinv.data.Phantoms`, :class:`~physinv.data.Patches`.
    noise_sigma : float or (float, float)
        Standard deviation of the additive Gaussian noise (in image units), or
        a range ``(low, high)`` from which each sample draws its own level
        uniformly.
    seed : int
        Base seed.
    noise : {"gaussian", "poisson-gaussian"}
        ``gaussian``: ``y = A x + sigma n``.  ``poisson-gaussian``:
        ``y = Poisson(photons * A x) / photons + sigma n``, so ``E[y] = A x`` and
        ``Var[y] = A x / photons + sigma^2``; needs ``A x >= 0`` (round-off
        negatives down to ``-1e-6 max|A x|`` count as 0, anything below is an error).
    photons : float, optional
        Expected photon count at intensity 1 (required for Poisson noise).
    dtype : torch.dtype
        Dtype of the returned tensors (float32 or float64).
    return_sigma : bool
        If True, items are ``(y, x, sigma)`` with ``sigma`` a 0-d tensor.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> from physinv.data import Phantoms
    >>> ds = InverseProblemDataset(Identity((8, 8)), Phantoms(4, 8), noise_sigma=0.1, seed=0)
    >>> y, x = ds[0]
    >>> y.shape, x.dtype
    (torch.Size([8, 8]), torch.float32)
    >>> bool((ds[0][0] == y).all())
    True
    """

    def __init__(self, A: LinearOperator, images: Any, noise_sigma: Any = 0.0, seed: int = 0,
                 noise: str = "gaussian", photons: float | None = None,
                 dtype: torch.dtype = torch.float32, return_sigma: bool = False) -> None:
        if not isinstance(A, LinearOperator):
            raise TypeError(f"A must be a physinv LinearOperator, got {type(A).__name__}")
        if not hasattr(images, "__len__") or not hasattr(images, "__getitem__"):
            raise TypeError(f"images must be an indexable sequence with a length, got "
                            f"{type(images).__name__}")
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        if noise == "poisson-gaussian":
            if photons is None or not (isinstance(photons, numbers.Real) and np.isfinite(photons)
                                       and photons > 0):
                raise ValueError(f"photons must be a finite number > 0 for Poisson noise, got {photons!r}")
            photons = float(photons)
        elif photons is not None:
            raise ValueError("photons is only used with noise='poisson-gaussian'")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise TypeError(f"seed must be a non-negative int, got {seed!r}")
        self.A, self.images = A, images
        self.noise_sigma = _check_sigma(noise_sigma)
        self.seed, self.noise, self.photons = int(seed), noise, photons
        self.dtype, self.return_sigma = dtype, bool(return_sigma)

    def __len__(self) -> int:
        return len(self.images)

    def _draw_sigma(self, g: torch.Generator) -> float:
        if isinstance(self.noise_sigma, tuple):
            lo, hi = self.noise_sigma
            u = float(torch.rand((), generator=g, dtype=torch.float64))
            return lo + (hi - lo) * u
        return self.noise_sigma

    def sigma(self, index: int) -> float:
        """The Gaussian noise level of sample ``index`` (without simulating it)."""
        return self._draw_sigma(sample_generator(self.seed, self._index(index)))

    def _index(self, index: Any) -> int:
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        return int(index) % n

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as a tensor of ``self.dtype``, checked against ``A.in_shape``."""
        index = self._index(index)
        img = self.images[index]
        x = img.detach().cpu() if isinstance(img, torch.Tensor) else torch.from_numpy(np.asarray(img))
        if not x.is_floating_point():
            raise TypeError(f"images[{index}]: expected a real floating-point image, got dtype {x.dtype} "
                            "(convert integer images with physinv.data.to_gray_float)")
        x = x.to(self.dtype)
        if tuple(x.shape) != self.A.in_shape:
            raise ValueError(f"images[{index}] has shape {tuple(x.shape)} but the operator expects "
                             f"in_shape {self.A.in_shape}")
        return x

    def __getitem__(self, index: int):
        index = self._index(index)
        x = self.image(index)
        g = sample_generator(self.seed, index)
        sigma = self._draw_sigma(g)
        with torch.no_grad():
            ax = self.A(x)
            if self.noise == "poisson-gaussian":
                floor = -1e-6 * max(float(ax.abs().max()), 1.0)
                if float(ax.min()) < floor:
                    raise ValueError(f"sample {index}: Poisson noise needs A x >= 0, but min(A x) = "
                                     f"{float(ax.min()):.3g}")
                rate = (ax.clamp_min(0) * self.photons).to(torch.float64)
                y = (torch.poisson(rate, generator=g) / self.photons).to(self.dtype)
            else:
                y = ax.clone()
            if sigma > 0:
                y = y + sigma * torch.randn(y.shape, generator=g, dtype=self.dtype)
        if self.return_sigma:
            return y, x, torch.tensor(sigma, dtype=self.dtype)
        return y, x

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of how the samples are generated (stored in HDF5 files)."""
        try:
            op = self.A.to_config()
        except TypeError:
            op = None
        sig = list(self.noise_sigma) if isinstance(self.noise_sigma, tuple) else self.noise_sigma
        return {"generator": "physinv.data.InverseProblemDataset", "operator": op, "noise": self.noise,
                "noise_sigma": sig, "photons": self.photons, "seed": self.seed, "n": len(self),
                "dtype": str(self.dtype).replace("torch.", ""), "images": _describe_images(self.images)}

    def __repr__(self) -> str:
        return (f"InverseProblemDataset(A={type(self.A).__name__}, n={len(self)}, noise={self.noise!r}, "
                f"noise_sigma={self.noise_sigma}, seed={self.seed})")
