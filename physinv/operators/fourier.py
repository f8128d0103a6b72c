"""Unitary Fourier transforms and the real-FFT multiply that convolution is built on."""

from __future__ import annotations

from typing import Any

import torch

from .base import Identity, LinearOperator
from .factorization import Diagonal, Factorization

__all__ = ["FFT2", "FourierFactorization"]


class FFT2(LinearOperator):
    """The unitary 2-D DFT over the last two dimensions (``norm="ortho"``).

    Its adjoint is its inverse. Maps real or complex inputs to complex outputs.

    Examples
    --------
    >>> import torch
    >>> F = FFT2((4, 4))
    >>> x = torch.randn(4, 4, dtype=torch.float64)
    >>> torch.allclose(F.H(F(x)).real, x)
    True
    """

    is_real = False

    def __init__(self, shape: Any) -> None:
        super().__init__(shape, shape)
        if len(self.in_shape) != 2:
            raise ValueError(f"shape must be 2-D (H, W), got {self.in_shape}")

    def _forward(self, x):
        return torch.fft.fft2(x, norm="ortho")

    def _adjoint(self, y):
        return torch.fft.ifft2(y, norm="ortho")

    def _svd(self):
        return Factorization(self, torch.ones(self.in_shape, dtype=torch.float64), Identity(self.in_shape))

    def _exact_norm(self):
        return 1.0

    def _config(self):
        return {"shape": list(self.in_shape)}


class FourierFactorization(Factorization):
    """Exact factorization of a real circular convolution ``A = F^H diag(h) F``.

    With ``h = |h| e^{i phi}``: ``U = F^H diag(e^{i phi})``, ``s = |h|`` and
    ``V = F^H`` (``F`` the unitary DFT). Filters are applied with two real FFTs
    on the half spectrum, never with a dense matrix. Obtain it from
    ``Convolution(...).svd()``.

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.0), (16, 16))
    >>> F = A.svd()
    >>> x = torch.rand(16, 16, dtype=torch.float64)
    >>> torch.allclose(F.pinv(A(x), rcond=1e-9), x)
    True
    """

    def __init__(self, H_full: torch.Tensor, H_half: torch.Tensor, shape: tuple[int, int]) -> None:
        s = H_full.abs()
        phase = torch.where(s > 0, H_full / torch.where(s > 0, s, torch.ones_like(s)),
                            torch.ones_like(H_full))
        F = FFT2(shape)
        super().__init__(F.H @ Diagonal(phase), s.to(torch.float64), F.H, real=True)
        hs = H_half.abs()
        self._H_full, self._H_half = H_full, H_half
        self._half_phase_conj = torch.where(hs > 0, H_half / torch.where(hs > 0, hs, torch.ones_like(hs)),
                                            torch.ones_like(H_half)).conj().resolve_conj()
        self._shape = tuple(shape)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """The ``(H, W)`` grid of the circular convolution (the spectral shape of ``s``)."""
        return self._shape

    @property
    def half_phase_conj(self) -> torch.Tensor:
        """``e^{-i phi}`` on the rfft half spectrum, shape ``(H, W // 2 + 1)``: ``U^H`` after ``F``."""
        return self._half_phase_conj

    @classmethod
    def adjoint_of(cls, f):
        # A^H is the convolution with the conjugate transfer function: stay on the fast path.
        return cls(f._H_full.conj(), f._H_half.conj(), f._shape)

    def scaled(self, c: complex) -> Factorization:
        """The factorization of ``c * A``: still two real FFTs per filter for real ``c``."""
        if isinstance(c, complex):  # a complex multiple of a real operator is not real
            return super().scaled(c)
        return type(self)(self._H_full * c, self._H_half * c, self._shape)

    def _half(self, fs: torch.Tensor) -> torch.Tensor:
        return fs[..., : self._shape[-1] // 2 + 1]

    def apply_filter(self, y, f):
        LinearOperator._check(y, self.out_shape, "y", "apply_filter")
        if y.is_complex():
            return super().apply_filter(y, f)
        fs = self._half(self._filter_values(f, y))
        ph = self._half_phase_conj.to(device=y.device,
                                      dtype=torch.complex128 if y.dtype == torch.float64 else torch.complex64)
        return torch.fft.irfft2(torch.fft.rfft2(y) * (ph * fs), s=self._shape)
