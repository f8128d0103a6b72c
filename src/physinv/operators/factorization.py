"""Factorizations ``A = U diag(s) V^H`` and the spectral filters that use them.

A :class:`Factorization` holds two operators with orthonormal columns, ``U``
(spectral domain -> ``A.out_shape``) and ``V`` (spectral domain ->
``A.in_shape``), and the non-negative singular values ``s`` laid out in the
spectral domain (a vector for a matrix SVD, an ``(H, W)`` array for the
Fourier factorization of a circular convolution).

A spectral filter ``x = V diag(f(s)) U^H y`` is the closed form of every
quadratic regulariser:

========================  ==========================================
filter                    ``f(s)``
========================  ==========================================
pseudo-inverse            ``1/s`` where ``s > rcond * max(s)`` else 0
truncated SVD (TSVD)      ``1/s`` for the ``k`` largest ``s`` else 0
Tikhonov                  ``s / (s^2 + lam)``
Wiener                    ``s / (s^2 + sigma^2 / P)``
========================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._validate import cached_cast, check_trailing
from .base import LinearOperator, Scaled, from_config

__all__ = [
    "Factorization",
    "FactorizedOperator",
    "pseudo_inverse_filter",
    "tsvd_filter",
    "tikhonov_filter",
    "wiener_filter",
]

Filter = Callable[[torch.Tensor], torch.Tensor]


class Factorization:
    """``A = U diag(s) V^H`` with ``U``, ``V`` having orthonormal columns.

    Parameters
    ----------
    U : LinearOperator
        Maps the spectral domain (shape of ``s``) to the data space.
    s : torch.Tensor
        Non-negative singular values, shaped like the spectral domain.
    V : LinearOperator
        Maps the spectral domain to the image space.
    real : bool, optional
        Whether the factorized operator has real coefficients (then filtered
        real data are real, even where ``U`` and ``V`` are complex); default
        ``U.is_real and V.is_real``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64))
    >>> F = A.svd()
    >>> F.apply_filter(torch.tensor([2.0, 0.5], dtype=torch.float64), lambda s: 1 / s)
    tensor([1., 1.], dtype=torch.float64)
    """

    def __init__(self, U: LinearOperator, s: torch.Tensor, V: LinearOperator,
                 real: bool | None = None) -> None:
        s = torch.as_tensor(s)
        if tuple(s.shape) != U.in_shape or tuple(s.shape) != V.in_shape:
            raise ValueError(
                f"Factorization: s has shape {tuple(s.shape)} but U expects {U.in_shape} "
                f"and V expects {V.in_shape}"
            )
        if s.is_complex() or bool((s < 0).any()):
            raise ValueError("Factorization: s must be real and non-negative")
        self.U, self.s, self.V = U, s, V
        self.real = (U.is_real and V.is_real) if real is None else bool(real)
        self._casts: dict = {}

    @classmethod
    def adjoint_of(cls, f: Factorization) -> Factorization:
        """The factorization of ``A^H`` given that of ``A``: ``A^H = V diag(s) U^H``."""
        return Factorization(f.V, f.s, f.U, real=f.real)

    def scaled(self, c: complex) -> Factorization:
        """The factorization of ``c * A``: the phase of ``c`` goes into ``U``, ``|c|`` into ``s``."""
        mag = abs(c)
        phase = c / mag if mag > 0 else 1.0
        U = self.U if phase == 1.0 else Scaled(self.U, phase)
        return Factorization(U, self.s * mag, self.V, real=self.real and not isinstance(c, complex))

    def to(self, device: torch.device | str) -> Factorization:
        """Move ``U``, ``s`` and ``V`` to ``device`` in place (precision unchanged); returns ``self``."""
        self.U.to(device)
        self.V.to(device)
        self.s = self.s.to(device)
        self._casts = {}
        return self

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Trailing shape of the operator's inputs."""
        return self.V.out_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Trailing shape of the operator's outputs."""
        return self.U.out_shape

    @property
    def rank(self) -> int:
        """Number of singular values that are exactly non-zero."""
        return int((self.s > 0).sum())

    def _s_like(self, x: torch.Tensor) -> torch.Tensor:
        """``s`` in the real precision and on the device of ``x`` (cast once, cached)."""
        return cached_cast(self._casts, "s", self.s, x, move=True, where=type(self).__name__,
                           holder="factorization")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``U diag(s) V^H x`` (rebuilds ``A x``)."""
        z = self.V.adjoint(x)
        return self.U(z * self._s_like(z))

    def apply_filter(self, y: torch.Tensor, f: Filter | torch.Tensor) -> torch.Tensor:
        """Compute ``V diag(f(s)) U^H y``.

        Parameters
        ----------
        y : torch.Tensor
            Data, trailing shape ``out_shape``.
        f : callable or torch.Tensor
            The filter: a function of the singular values (broadcasting over
            ``s``), or its values shaped like ``s`` (possibly with leading
            batch dimensions that broadcast against ``y``'s).

        Returns
        -------
        torch.Tensor
            Real where ``y`` is real and the operator is real.
        """
        check_trailing(y, self.out_shape, "y", "apply_filter")
        fs = self._filter_values(f, y)
        z = self.U.adjoint(y)
        x = self.V(z * fs)
        if x.is_complex() and not y.is_complex() and self.real:
            x = x.real
        return x

    def _filter_values(self, f: Filter | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        s = self._s_like(like)
        fs = f(s) if callable(f) else torch.as_tensor(f, device=like.device)
        if not isinstance(fs, torch.Tensor):
            raise TypeError(f"f must return a tensor, got {type(fs).__name__}")
        if fs.shape[fs.dim() - s.dim():] != s.shape:
            raise ValueError(f"f: filter values must have trailing shape {tuple(s.shape)}, "
                             f"got {tuple(fs.shape)}")
        return fs

    # Ready-made filters -----------------------------------------------------
    def pinv(self, y: torch.Tensor, rcond: float = 1e-6) -> torch.Tensor:
        """Pseudo-inverse with relative cut-off ``rcond``: ``V diag(1/s; s>rcond*max s) U^H y``."""
        return self.apply_filter(y, pseudo_inverse_filter(rcond))

    def tsvd(self, y: torch.Tensor, k: int) -> torch.Tensor:
        """Truncated SVD keeping the ``k`` largest singular values."""
        return self.apply_filter(y, tsvd_filter(k))

    def tikhonov(self, y: torch.Tensor, lam: float) -> torch.Tensor:
        """Tikhonov: minimiser of ``||Ax - y||^2 + lam ||x||^2``."""
        return self.apply_filter(y, tikhonov_filter(lam))

    def wiener(self, y: torch.Tensor, noise_sigma: float, signal_power: Any = 1.0) -> torch.Tensor:
        """Wiener: ``s / (s^2 + sigma^2 / P)`` with per-index signal power ``P``."""
        return self.apply_filter(y, wiener_filter(noise_sigma, signal_power))

    def as_operator(self) -> FactorizedOperator:
        """The product ``U diag(s) V^H`` as an operator (whose :meth:`~LinearOperator.svd` is this).

        Examples
        --------
        >>> import torch
        >>> from physinv.operators import Matrix
        >>> M = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
        >>> B = Matrix(M).svd().as_operator()
        >>> torch.allclose(B.to_dense(), M)
        True
        """
        return FactorizedOperator(self.U, self.s, self.V, real=self.real)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape}, "
                f"spectral_shape={tuple(self.s.shape)})")


class FactorizedOperator(LinearOperator):
    """The operator ``U diag(s) V^H`` of a factorization (use :meth:`Factorization.as_operator`).

    Parameters
    ----------
    U, V : LinearOperator
        Operators with orthonormal columns from the spectral domain (shape of
        ``s``) to the data and the image space.
    s : torch.Tensor
        Non-negative singular values, shaped like the spectral domain.
    real : bool, optional
        Whether the product has real coefficients although ``U`` and ``V``
        are complex (a real circular convolution); then real inputs give
        real outputs. Default ``U.is_real and V.is_real``.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Identity
    >>> B = FactorizedOperator(Identity(3), torch.tensor([3.0, 2.0, 1.0]), Identity(3))
    >>> B(torch.ones(3))
    tensor([3., 2., 1.])
    """

    def __init__(self, U: LinearOperator, s: torch.Tensor, V: LinearOperator,
                 real: bool | None = None) -> None:
        f = Factorization(U, s, V, real=real)  # checks the shapes and the sign of s
        super().__init__(V.out_shape, U.out_shape)
        self.U, self.V = U, V
        self.register_buffer("s", f.s)
        self.is_real = f.real

    def _realify(self, out: torch.Tensor) -> torch.Tensor:
        # real coefficients, real input (complex ones are split by the base class): a real result
        return out.real.contiguous() if self.is_real and out.is_complex() else out

    def _forward(self, x):
        z = self.V.adjoint(x)
        return self._realify(self.U(z * self.buffer_like("s", z)))

    def _adjoint(self, y):
        z = self.U.adjoint(y)
        return self._realify(self.V(z * self.buffer_like("s", z)))

    def _svd(self):
        return Factorization(self.U, self.s, self.V, real=self.is_real)

    def _config(self):
        return {"U": self.U.to_config(), "s": self.s.detach().cpu().tolist(), "V": self.V.to_config(),
                "real": self.is_real}

    @classmethod
    def _from_config(cls, kw):
        return cls(from_config(kw["U"]), torch.tensor(kw["s"], dtype=torch.float64), from_config(kw["V"]),
                   real=kw.get("real"))

    def extra_repr(self):
        return f"spectral_shape={tuple(self.s.shape)}, in_shape={self.in_shape}, out_shape={self.out_shape}"


def _check_nonneg(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def pseudo_inverse_filter(rcond: float = 1e-6) -> Filter:
    """``f(s) = 1/s`` for ``s > rcond * max(s)``, else 0.

    Examples
    --------
    >>> import torch
    >>> pseudo_inverse_filter(0.1)(torch.tensor([4.0, 1.0, 0.1]))
    tensor([0.2500, 1.0000, 0.0000])
    """
    rcond = _check_nonneg(rcond, "rcond")

    def f(s):
        keep = s > rcond * s.max()
        return torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))

    f.elementwise = True  # type: ignore[attr-defined]
    return f


def tsvd_filter(k: int) -> Filter:
    """``f(s) = 1/s`` on the ``k`` largest singular values, 0 elsewhere (ties broken by order).

    Examples
    --------
    >>> import torch
    >>> tsvd_filter(2)(torch.tensor([4.0, 1.0, 2.0]))
    tensor([0.2500, 0.0000, 0.5000])
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")

    def f(s):
        flat = s.reshape(-1)
        keep = torch.zeros_like(flat, dtype=torch.bool)
        if k > 0:
            keep[torch.topk(flat, min(int(k), flat.numel())).indices] = True
        keep = keep & (flat > 0)
        out = torch.where(keep, 1.0 / torch.where(keep, flat, torch.ones_like(flat)),
                          torch.zeros_like(flat))
        return out.reshape(s.shape)

    return f


def tikhonov_filter(lam: float | torch.Tensor) -> Filter:
    """``f(s) = s / (s^2 + lam)``; ``lam`` may be a tensor broadcasting over leading dims.

    Examples
    --------
    >>> import torch
    >>> tikhonov_filter(1.0)(torch.tensor([1.0, 0.0]))
    tensor([0.5000, 0.0000])
    """
    if isinstance(lam, torch.Tensor):
        if not bool(torch.isfinite(lam).all()) or bool((lam < 0).any()):
            raise ValueError("lam must be finite and >= 0")
    else:
        lam = _check_nonneg(lam, "lam")

    def f(s):
        lam_ = lam
        if isinstance(lam_, torch.Tensor):
            lam_ = lam_.to(s).reshape(lam_.shape + (1,) * s.dim())
        den = s * s + lam_
        return torch.where(den > 0, s / torch.where(den > 0, den, torch.ones_like(den)),
                           torch.zeros_like(den))

    f.elementwise = True  # type: ignore[attr-defined]
    return f


def wiener_filter(noise_sigma: float, signal_power: Any = 1.0) -> Filter:
    """``f(s) = s / (s^2 + sigma^2 / P)``: the linear MMSE filter.

    ``P`` is the expected power of the image in each spectral index (in the
    same unitary normalisation as ``s``): a scalar for a flat (white) prior or
    a tensor shaped like ``s``.

    Examples
    --------
    >>> import torch
    >>> wiener_filter(1.0, 1.0)(torch.tensor([1.0]))
    tensor([0.5000])
    """
    sigma = _check_nonneg(noise_sigma, "noise_sigma")

    def f(s):
        P = torch.as_tensor(signal_power, dtype=s.dtype, device=s.device)
        if bool((P < 0).any()) or not bool(torch.isfinite(P).all()):
            raise ValueError("signal_power must be finite and >= 0")
        den = s * s * P + sigma**2
        return torch.where(den > 0, s * P / torch.where(den > 0, den, torch.ones_like(den)),
                           torch.zeros_like(den))

    # a per-index power P is laid out on the full spectrum: only a scalar P is elementwise
    f.elementwise = torch.as_tensor(signal_power).dim() == 0  # type: ignore[attr-defined]
    return f
