"""Orthogonal 2-D discrete wavelet transform with periodic boundary, in torch.

With periodic extension the one-level analysis of a length-``N`` signal
(``N`` even) by an orthonormal scaling filter ``h`` and its quadrature mirror
``g[k] = (-1)^k h[L-1-k]``,

``a[n] = sum_k h[k] x[(2n + k) mod N]``,  ``d[n] = sum_k g[k] x[(2n + k) mod N]``,

is an orthogonal ``N x N`` matrix, so the multi-level separable transform
:class:`Wavelet2D` satisfies ``W^H W = W W^H = I`` exactly (up to rounding).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from .._validate import as_shape, check_size
from .base import LinearOperator, _renamed

__all__ = ["Wavelet2D", "WAVELETS", "daubechies_filter"]


def daubechies_filter(n_moments: int) -> tuple[float, ...]:
    """Orthonormal Daubechies scaling filter with ``n_moments`` vanishing moments (length ``2 * n_moments``).

    Computed by spectral factorization of the Daubechies polynomial
    ``P(y) = sum_k C(N-1+k, k) y^k`` with ``y = sin^2(w/2)``, keeping the roots
    inside the unit circle (the extremal-phase filters of Daubechies' table),
    normalised to ``sum(h) = sqrt(2)``.

    Examples
    --------
    >>> [round(c, 6) for c in daubechies_filter(2)]
    [0.482963, 0.836516, 0.224144, -0.12941]
    """
    N = int(n_moments)
    if N < 1:
        raise ValueError(f"n_moments must be >= 1, got {n_moments!r}")
    y_times_z = np.array([-0.25, 0.5, -0.25])  # z * sin^2(w/2), highest power of z first
    total = np.zeros(2 * N - 1)
    for k in range(N):
        term = np.array([1.0])
        for _ in range(k):
            term = np.polymul(term, y_times_z)
        term = np.concatenate([term, np.zeros(N - 1 - k)])
        total = np.polyadd(total, math.comb(N - 1 + k, k) * term)
    roots = np.roots(total) if N > 1 else np.zeros(0)
    h = np.array([1.0])
    for _ in range(N):
        h = np.polymul(h, [1.0, 1.0])
    for r in roots[np.abs(roots) < 1]:
        h = np.polymul(h, [1.0, -r])
    h = np.real(h)
    h = h * math.sqrt(2.0) / h.sum()
    return tuple(float(c) for c in h)


#: Orthonormal scaling (low-pass) filters ``h`` with ``sum(h) = sqrt(2)``, ``sum(h**2) = 1``.
WAVELETS: dict[str, tuple[float, ...]] = {"haar": daubechies_filter(1)}
WAVELETS.update({f"db{n}": daubechies_filter(n) for n in range(1, 7)})


def _two_adic(n: int) -> int:
    """The largest ``J`` with ``n`` divisible by ``2**J``."""
    return (n & -n).bit_length() - 1


def _max_levels(n: int, length: int) -> int:
    """Largest ``J`` with ``n`` divisible by ``2**J`` and ``n / 2**J >= length / 2``."""
    j = 0
    while n % (2 ** (j + 1)) == 0 and n // 2 ** (j + 1) >= max(length // 2, 1):
        j += 1
    return j


class Wavelet2D(LinearOperator):
    """Orthogonal multi-level 2-D wavelet transform (periodic boundary), ``(..., H, W) -> (..., H, W)``.

    The coefficients are laid out in the usual pyramid: the coarsest
    approximation in the top-left ``(H / 2^J, W / 2^J)`` block, and at each
    level ``j`` the three detail bands to its right, below and diagonal.
    Being orthogonal, the adjoint is the inverse transform.

    Parameters
    ----------
    in_shape : (int, int)
        Image shape ``(H, W)``; both must be divisible by ``2**levels``.
    wavelet : {"haar", "db1", ..., "db6"}
        Daubechies orthonormal wavelet with ``n`` vanishing moments for
        ``"db<n>"`` (``"haar"`` equals ``"db1"``).
    levels : int, optional
        Number of decomposition levels (default: as many as the shape allows
        while the coarsest band stays at least half the filter length, at
        least 1).

    Examples
    --------
    >>> import torch
    >>> W = Wavelet2D((16, 16), "db2", levels=2)
    >>> x = torch.rand(3, 16, 16, dtype=torch.float64)
    >>> c = W(x)
    >>> torch.allclose(W.H(c), x), torch.allclose(c.norm(), x.norm())
    (True, True)
    """

    def __init__(self, in_shape: Any, wavelet: str = "haar", levels: int | None = None) -> None:
        shape = as_shape(in_shape, "in_shape")
        if len(shape) != 2:
            raise ValueError(f"in_shape must be (H, W), got {shape}")
        if wavelet not in WAVELETS:
            raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")
        h = torch.tensor(WAVELETS[wavelet], dtype=torch.float64)
        L = h.numel()
        H, W = shape
        check_size(H * W, f"a {H}x{W} image", "in_shape")
        if H % 2 or W % 2:
            raise ValueError(f"in_shape must have even sides for a wavelet transform, got {shape}")
        if levels is None:
            levels = max(1, min(_max_levels(H, L), _max_levels(W, L)))
        if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        levels = int(levels)
        most = min(_two_adic(H), _two_adic(W))
        if levels > most:
            raise ValueError(f"levels={levels} is more than in_shape {shape} allows: at most {most} "
                             f"(both sides must be divisible by 2**levels)")
        if H % 2**levels or W % 2**levels:
            raise ValueError(f"in_shape {shape} is not divisible by 2**levels = {2**levels}")
        super().__init__(shape, shape)
        self.wavelet = wavelet
        self.levels = levels
        g = torch.tensor([(-1) ** k * float(h[L - 1 - k]) for k in range(L)], dtype=torch.float64)
        self.register_buffer("filt", torch.stack([h, g], dim=1))  # (L, 2): analysis filters
        self._idx: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _index(self, n: int, device: torch.device) -> torch.Tensor:
        key = (n, device)
        idx = self._idx.get(key)
        if idx is None:
            L = self.filt.shape[0]
            idx = (2 * torch.arange(n // 2)[:, None] + torch.arange(L)[None, :]) % n
            idx = idx.to(device)
            self._idx[key] = idx
        return idx

    # one level along the last dimension ------------------------------------
    # a[n] = sum_k h[k] x_ext[2n + k] (and d with g) on the periodic extension
    # x_ext = [x, x[:L-2]] is a stride-2 cross-correlation: one conv1d; the synthesis is its
    # polyphase adjoint, one stride-1 conv1d producing the even and odd samples.
    # Bands shorter than the filter use an explicit (periodised) index table instead.
    def _analysis_last(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        f = self.buffer_like("filt", x)
        L = f.shape[0]
        if L - 2 > n:
            idx = self._index(n, x.device)
            ad = x[..., idx] @ f  # (..., n/2, 2)
            return ad.transpose(-1, -2).reshape(x.shape)
        ext = torch.cat([x, x[..., : L - 2]], dim=-1) if L > 2 else x
        lead = ext.shape[:-1]
        out = torch.nn.functional.conv1d(ext.reshape(-1, 1, ext.shape[-1]), f.T.unsqueeze(1), stride=2)
        return out.reshape(lead + (n,))

    def _synthesis_last(self, c: torch.Tensor) -> torch.Tensor:
        n = c.shape[-1]
        f = self.buffer_like("filt", c)
        L = f.shape[0]
        if L - 2 > n:
            idx = self._index(n, c.device)
            ad = c.reshape(c.shape[:-1] + (2, n // 2)).transpose(-1, -2)  # (..., n/2, 2)
            contrib = (ad @ f.T).reshape(c.shape[:-1] + (-1,))  # (..., n/2 * L)
            return c.new_zeros(c.shape).index_add_(-1, idx.reshape(-1), contrib)
        # polyphase synthesis: x[2p + r] = sum_j (a[p - j] h[2j + r] + d[p - j] g[2j + r]), r = 0, 1,
        # a stride-1 cross-correlation of the periodically left-extended (a, d) with 2 x 2 x L/2 weights
        lead = c.shape[:-1]
        half = L // 2
        ad = c.reshape(-1, 2, n // 2)
        if half > 1:
            ad = torch.cat([ad[..., n // 2 - (half - 1):], ad], dim=-1)
        w = f.flip(0).reshape(half, 2, 2).permute(1, 2, 0)  # (r', channel, t): f[L-1-2t-r'] ...
        w = w.flip(0)  # ... so that row r holds f[2(half-1-t) + r]
        out = torch.nn.functional.conv1d(ad, w)  # (-1, 2, n/2): even and odd samples
        return out.transpose(-1, -2).reshape(lead + (n,))

    def _analysis2d(self, x):
        x = self._analysis_last(x)
        return self._analysis_last(x.transpose(-1, -2)).transpose(-1, -2)

    def _synthesis2d(self, c):
        c = self._synthesis_last(c.transpose(-1, -2)).transpose(-1, -2)
        return self._synthesis_last(c)

    def _forward(self, x):
        return self._fwd(x, self.levels)

    def _fwd(self, x, level):
        y = self._analysis2d(x)
        if level == 1:
            return y
        h2, w2 = x.shape[-2] // 2, x.shape[-1] // 2
        tl = self._fwd(y[..., :h2, :w2], level - 1)
        top = torch.cat([tl, y[..., :h2, w2:]], dim=-1)
        return torch.cat([top, y[..., h2:, :]], dim=-2)

    def _adjoint(self, c):
        return self._inv(c, self.levels)

    def _inv(self, c, level):
        if level > 1:
            h2, w2 = c.shape[-2] // 2, c.shape[-1] // 2
            tl = self._inv(c[..., :h2, :w2], level - 1)
            top = torch.cat([tl, c[..., :h2, w2:]], dim=-1)
            c = torch.cat([top, c[..., h2:, :]], dim=-2)
        return self._synthesis2d(c)

    def _exact_norm(self):
        return 1.0

    def band_slices(self) -> list[tuple[slice, slice]]:
        """The ``(rows, cols)`` slices of every band, coarsest approximation first.

        Examples
        --------
        >>> Wavelet2D((8, 8), levels=1).band_slices()[0]
        (slice(0, 4, None), slice(0, 4, None))
        """
        H, W = self.in_shape
        h, w = H >> self.levels, W >> self.levels
        out = [(slice(0, h), slice(0, w))]
        for _ in range(self.levels):
            out += [(slice(0, h), slice(w, 2 * w)), (slice(h, 2 * h), slice(0, w)),
                    (slice(h, 2 * h), slice(w, 2 * w))]
            h, w = 2 * h, 2 * w
        return out

    def _config(self):
        return {"in_shape": list(self.in_shape), "wavelet": self.wavelet, "levels": self.levels}

    @classmethod
    def _from_config(cls, kw):
        return cls(**_renamed(kw, "shape", "in_shape"))

    def extra_repr(self):
        return f"in_shape={self.in_shape}, wavelet={self.wavelet!r}, levels={self.levels}"
