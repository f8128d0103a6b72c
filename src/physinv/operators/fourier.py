"""Unitary Fourier transforms and the real-FFT multiply that convolution is built on."""

from __future__ import annotations

from typing import Any

import torch

from .._validate import cached_cast, check_trailing, complex_dtype, compute_dtype, real_dtype
from ..spectrum import filter_half_spectrum, half_weights
from .base import LinearOperator, _renamed
from .diagonal import Diagonal, Identity
from .factorization import Factorization

__all__ = ["FFT2", "FourierFactorization"]


class FFT2(LinearOperator):
    """The unitary 2-D DFT over the last two dimensions (``norm="ortho"``).

    Its adjoint is its inverse. Maps real or complex inputs to complex outputs.

    Parameters
    ----------
    in_shape : (int, int)
        Shape ``(H, W)`` of inputs and outputs.

    Examples
    --------
    >>> import torch
    >>> F = FFT2((4, 4))
    >>> x = torch.randn(4, 4, dtype=torch.float64)
    >>> torch.allclose(F.H(F(x)).real, x)
    True
    """

    is_real = False

    def __init__(self, in_shape: Any) -> None:
        super().__init__(in_shape, in_shape)
        if len(self.in_shape) != 2:
            raise ValueError(f"in_shape must be 2-D (H, W), got {self.in_shape}")

    def _forward(self, x):
        return torch.fft.fft2(x, norm="ortho")

    def _adjoint(self, y):
        return torch.fft.ifft2(y, norm="ortho")

    def _svd(self):
        return Factorization(self, torch.ones(self.in_shape, dtype=torch.float64), Identity(self.in_shape))

    def _exact_norm(self):
        return 1.0

    def _config(self):
        return {"in_shape": list(self.in_shape)}

    @classmethod
    def _from_config(cls, kw):
        return cls(**_renamed(kw, "shape", "in_shape"))


class FourierFactorization(Factorization):
    """Exact factorization of a real circular convolution ``A = F^H diag(h) F``.

    With ``h = |h| e^{i phi}``: ``U = F^H diag(e^{i phi})``, ``s = |h|`` and
    ``V = F^H`` (``F`` the unitary DFT). The transfer function on the rfft
    half spectrum is the one source of truth: filters run as two real FFTs on
    the half spectrum (:meth:`apply_half`), and the full-spectrum ``s`` and
    ``U`` are built from it exactly (Hermitian symmetry, no FFT round trip,
    so exact zeros of the transfer function stay zeros) only when asked for.
    Obtain it from ``Convolution(...).svd()``; ``(c * A).svd()`` and
    ``A.H.svd()`` stay on this fast path.

    Parameters
    ----------
    half_transfer : torch.Tensor
        Complex transfer function ``rfft2`` of the centred PSF on the grid,
        shape ``(H, W // 2 + 1)``.
    grid_shape : (int, int)
        The ``(H, W)`` grid of the circular convolution.

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
    >>> F.half_s.shape, F.s.shape
    (torch.Size([16, 9]), torch.Size([16, 16]))
    """

    def __init__(self, half_transfer: torch.Tensor, grid_shape: tuple[int, int]) -> None:
        H, W = (int(v) for v in grid_shape)
        half = torch.as_tensor(half_transfer)
        if tuple(half.shape) != (H, W // 2 + 1):
            raise ValueError(f"FourierFactorization: half_transfer must have shape {(H, W // 2 + 1)} "
                             f"for grid_shape {(H, W)}, got {tuple(half.shape)}")
        half = half.to(complex_dtype(real_dtype(half.dtype)) if half.is_complex() else torch.complex128)
        self._grid = (H, W)
        self._half = half.resolve_conj()
        self._half_s = self._half.abs().to(torch.float64)
        mag = self._half.abs()
        self._half_phase_conj = torch.where(mag > 0, self._half / torch.where(mag > 0, mag, 1),
                                            torch.ones_like(self._half)).conj().resolve_conj()
        self.V = FFT2(self._grid).H
        self.real = True
        self._lazy: dict[str, Any] = {}
        self._casts: dict = {}

    # ---------------------------------------------------- the half spectrum
    @property
    def grid_shape(self) -> tuple[int, int]:
        """The ``(H, W)`` grid of the circular convolution (the spectral shape of ``s``)."""
        return self._grid

    @property
    def half_transfer(self) -> torch.Tensor:
        """The transfer function ``h`` on the rfft half spectrum, shape ``(H, W // 2 + 1)``."""
        return self._half

    @property
    def half_s(self) -> torch.Tensor:
        """``s = |h|`` on the rfft half spectrum (float64), shape ``(H, W // 2 + 1)``."""
        return self._half_s

    @property
    def half_phase_conj(self) -> torch.Tensor:
        """``e^{-i phi}`` on the rfft half spectrum, shape ``(H, W // 2 + 1)``: ``U^H`` after ``F``."""
        return self._half_phase_conj

    @property
    def half_weights(self) -> torch.Tensor:
        """Multiplicity (1 or 2) of each half-spectrum index in the full spectrum (float64)."""
        return half_weights(self._grid, dtype=torch.float64, device=self._half.device)

    def _cast(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # FFTs run in float32 for half-precision inputs: compute_dtype, not the input's dtype
        return cached_cast(self._casts, name, t, like, real=compute_dtype(like), move=True,
                           where=type(self).__name__, holder="factorization")

    def half_transfer_like(self, like: torch.Tensor) -> torch.Tensor:
        """:attr:`half_transfer` in the precision and on the device of ``like`` (cast once, cached)."""
        return self._cast("half_transfer", self._half, like)

    def half_s_like(self, like: torch.Tensor) -> torch.Tensor:
        """:attr:`half_s` in the precision and on the device of ``like`` (cast once, cached)."""
        return self._cast("half_s", self._half_s, like)

    def half_phase_conj_like(self, like: torch.Tensor) -> torch.Tensor:
        """:attr:`half_phase_conj` in the precision and on the device of ``like`` (cast once, cached)."""
        return self._cast("half_phase_conj", self._half_phase_conj, like)

    def apply_half(self, y: torch.Tensor, f_half: torch.Tensor) -> torch.Tensor:
        """``V diag(f) U^H y`` for filter values on the half spectrum: ``irfft2(rfft2(y) e^{-i phi} f)``.

        Parameters
        ----------
        y : torch.Tensor
            Real data ``(..., H, W)``.
        f_half : torch.Tensor
            Filter values on the rfft half spectrum, trailing shape
            ``(H, W // 2 + 1)`` (leading dims broadcast against ``y``'s); real
            values may require a gradient (memory-lean autograd through
            :func:`physinv.spectrum.filter_half_spectrum`).

        Returns
        -------
        torch.Tensor
            Real, trailing shape ``(H, W)``.

        Examples
        --------
        >>> import torch
        >>> from physinv import psf
        >>> from physinv.operators import Convolution
        >>> A = Convolution(psf.gaussian(1.0), (8, 8))
        >>> F = A.svd()
        >>> y = torch.rand(8, 8, dtype=torch.float64)
        >>> torch.allclose(F.apply_half(y, F.half_s), A(y))
        True
        """
        check_trailing(y, self._grid, "y", "apply_half")
        if y.is_complex():
            raise TypeError("apply_half: y must be real; use apply_filter for complex data")
        half = (self._grid[0], self._grid[1] // 2 + 1)
        if not isinstance(f_half, torch.Tensor) or f_half.dim() < 2 or tuple(f_half.shape[-2:]) != half:
            raise ValueError(f"apply_half: f_half must be a tensor with trailing shape {half}, got "
                             f"{getattr(f_half, 'shape', type(f_half).__name__)}")
        ph = self.half_phase_conj_like(y)
        if f_half.is_complex():
            return torch.fft.irfft2(torch.fft.rfft2(y) * (ph * f_half), s=self._grid)
        return filter_half_spectrum(y, f_half, ph, self._grid)

    # ----------------------------------------- full spectrum, built on demand
    def _full(self, t: torch.Tensor, conj_mirror: bool) -> torch.Tensor:
        """Extend a half-spectrum array to the full ``(H, W)`` spectrum by Hermitian symmetry."""
        H, W = self._grid
        ncol = W - (W // 2 + 1)
        if ncol == 0:
            return t.clone()
        rows = (-torch.arange(H, device=t.device)) % H
        cols = torch.arange(W // 2 + 1, W, device=t.device)
        mirror = t[rows][:, W - cols]
        if conj_mirror and mirror.is_complex():
            mirror = mirror.conj()
        return torch.cat([t, mirror], dim=-1).resolve_conj()

    @property
    def s(self) -> torch.Tensor:  # type: ignore[override]
        """Singular values ``|h|`` on the full ``(H, W)`` spectrum (float64)."""
        if "s" not in self._lazy:
            self._lazy["s"] = self._full(self._half_s, conj_mirror=False)
        return self._lazy["s"]

    @property
    def U(self) -> LinearOperator:  # type: ignore[override]
        """``F^H diag(e^{i phi})`` on the full spectrum."""
        if "U" not in self._lazy:
            phase = self._full(self._half_phase_conj, conj_mirror=True).conj().resolve_conj()
            self._lazy["U"] = FFT2(self._grid).H @ Diagonal(phase)
        return self._lazy["U"]

    def to(self, device: torch.device | str) -> FourierFactorization:
        """Move the factorization to ``device`` in place (precision unchanged); returns ``self``."""
        self._half = self._half.to(device)
        self._half_s = self._half_s.to(device)
        self._half_phase_conj = self._half_phase_conj.to(device)
        self.V.to(device)
        self._lazy.clear()
        self._casts.clear()
        return self

    @classmethod
    def adjoint_of(cls, f):
        # A^H is the convolution with the conjugate transfer function: stay on the fast path.
        return cls(f.half_transfer.conj(), f.grid_shape)

    def scaled(self, c: complex) -> Factorization:
        """The factorization of ``c * A``: still two real FFTs per filter for real ``c``."""
        if isinstance(c, complex):  # a complex multiple of a real operator is not real
            return super().scaled(c)
        return type(self)(self._half * c, self._grid)

    def apply_filter(self, y, f):
        """``V diag(f(s)) U^H y``; filters marked ``elementwise`` are evaluated on the half spectrum only."""
        check_trailing(y, self.out_shape, "y", "apply_filter")
        if y.is_complex():
            return super().apply_filter(y, f)
        if callable(f) and getattr(f, "elementwise", False):
            fs = f(self.half_s_like(y))
            if not isinstance(fs, torch.Tensor):
                raise TypeError(f"f must return a tensor, got {type(fs).__name__}")
        else:
            fs = self._filter_values(f, y)[..., : self._grid[-1] // 2 + 1]
        return self.apply_half(y, fs)
