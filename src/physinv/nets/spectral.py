"""Spectral-filter networks: the fixed ``U^H``, ``V`` of an operator's factorization and a learned diagonal.

For ``A = U diag(s) V^H`` the network is ``x = V diag(f) U^H y``: the four
layers ``g -> H' -> U' -> Lambda -> V -> f`` of Mohammad-Djafari et al., "Deep Learning and
Inverse Problems" (arXiv 2309.00802), with only ``Lambda = diag(f)``
trained. For a circular convolution ``U^H = diag(e^{-i phi}) F`` and
``V = F^H``, so the network costs two real FFTs and learns one real number
per rfft half-spectrum index (the output stays real).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validate import check_int, check_real, check_trailing, complex_dtype, compute_dtype
from ..operators import FactorizationError, LinearOperator
from ..operators.factorization import Factorization
from ..solvers.result import half_spectrum_path, require_operator
from ..spectrum import filter_half_spectrum, plain_filter_half_spectrum
from ..train.amp import float32_physics
from ._common import PhysicsModule, check_finite
from ._record import SavableModule

__all__ = ["SpectralFilterNet", "ParametricFilter"]

_ALTERNATIVES = ("use UnrolledLandweber or UnrolledISTA (they need only A and A^H), HybridNet "
                 "around one of them, or a truncated numerical factorization: "
                 "SpectralFilterNet(A.svd(k=...)) (also accepted directly as a Factorization)")


def _factorize(A: Any) -> Factorization:
    if isinstance(A, Factorization):
        return A
    require_operator(A, "SpectralFilterNet")
    if not A.has_svd:
        raise FactorizationError(
            f"SpectralFilterNet needs an exact factorization A = U diag(s) V^H, and "
            f"{type(A).__name__} has none; {_ALTERNATIVES}")
    try:
        return A.svd()
    except FactorizationError as err:  # pragma: no cover - has_svd said yes
        raise FactorizationError(f"SpectralFilterNet: {err}; {_ALTERNATIVES}") from err


class _Spectrum:
    """What a spectral filter needs from a factorization, in float64."""

    def __init__(self, F: Factorization, real: bool | None = None) -> None:
        self.F = F
        # A real operator maps real data to real images even when its U, V are complex
        # (a Fourier factorization, whose U carries the PSF's phase): the imaginary part is rounding.
        self.real = F.real if real is None else bool(real)
        # Any factorization that is a FourierFactorization (a circular convolution, a real
        # multiple of one, its adjoint, a subclass) runs on the rfft half spectrum.
        self.fourier = half_spectrum_path(F) is not None
        if self.fourier:
            H, W = F.grid_shape
            self.shape = (H, W)
            self.s = F.half_s.to(torch.float64)
            self.phase = F.half_phase_conj.to(torch.complex128).resolve_conj()
            fy = torch.fft.fftfreq(H, dtype=torch.float64)[:, None]
            fx = torch.fft.rfftfreq(W, dtype=torch.float64)[None, :]
            self.radius = torch.sqrt(fy**2 + fx**2).to(self.s.device)
        else:
            self.shape = None
            self.s = F.s.to(torch.float64)
            self.phase = None
            self.radius = None
        self.in_shape = F.in_shape
        self.out_shape = F.out_shape

    def apply(self, y: torch.Tensor, f: torch.Tensor, phase: torch.Tensor | None,
              plain: bool = False) -> torch.Tensor:
        if self.fourier:
            if plain:
                return plain_filter_half_spectrum(y, f, phase, self.shape)
            return filter_half_spectrum(y, f, phase, self.shape)
        x = self.F.apply_filter(y, f)
        if x.is_complex() and not y.is_complex() and self.real:
            x = x.real
        return x


class ParametricFilter(SavableModule):
    """A learned filter ``f(s, sigma) = s / (s^2 + r)``, ``r = sigma^2 exp(h(features))``.

    ``h`` is a small MLP shared by every spectral index. Its features are
    ``log s``, ``log sigma`` and, where the factorization is a Fourier one,
    the spatial frequency ``|omega|`` (cycles/pixel). With ``h = -log P`` this
    is exactly the Wiener filter for a signal power spectrum ``P(omega)``:
    the MLP learns the image prior, while the blur (``s``) and the noise
    level (``sigma^2``) enter in closed form, which is why one trained filter
    transfers to operators and noise levels it did not see.

    Parameters
    ----------
    hidden : int
        Width of the two hidden layers.
    use_frequency : bool
        Feed ``|omega|`` to the MLP when the operator is a Fourier one.
    s_floor : float
        ``log`` is taken of ``max(s, s_floor)``.

    Examples
    --------
    >>> import torch
    >>> g = ParametricFilter(hidden=8)
    >>> s = torch.tensor([1.0, 0.1, 0.0])
    >>> g(s, torch.tensor(0.1)).shape
    torch.Size([3])
    """

    def __init__(self, hidden: int = 32, use_frequency: bool = True, s_floor: float = 1e-6) -> None:
        super().__init__()
        hidden = check_int(hidden, "hidden", minimum=1)
        self.use_frequency = bool(use_frequency)
        self.s_floor = float(s_floor)
        self.n_features = 3
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, s: torch.Tensor, sigma: torch.Tensor,
                radius: torch.Tensor | None = None) -> torch.Tensor:
        """Filter values, shape ``sigma.shape + s.shape``."""
        dt = self.mlp[0].weight.dtype
        s = s.to(dt)
        sigma = torch.as_tensor(sigma, dtype=dt, device=s.device)
        lead = sigma.shape
        ls = torch.log(torch.clamp(s, min=self.s_floor)).expand(lead + s.shape)
        lsig = torch.log(sigma).reshape(lead + (1,) * s.dim()).expand(lead + s.shape)
        if radius is not None and self.use_frequency:
            rad = (4.0 * radius.to(dt)).expand(lead + s.shape)
        else:
            rad = torch.zeros_like(ls)
        feats = torch.stack([ls / 4.0, lsig / 4.0, rad], dim=-1)
        h = self.mlp(feats).squeeze(-1)
        r = torch.exp(2.0 * lsig + h)
        return s / (s * s + r)


class SpectralFilterNet(PhysicsModule):
    """``x = V diag(f) U^H y`` with fixed ``U``, ``V`` from ``A.svd()`` and a learned filter ``f``.

    Parameters
    ----------
    A : LinearOperator or Factorization
        An operator with an exact factorization (``A.has_svd``: circular
        :class:`~physinv.operators.Convolution`, dense
        :class:`~physinv.operators.Matrix`, ...) or a factorization itself,
        e.g. ``A.svd(k=50)`` for any operator.
    lam : float
        The filter starts as Tikhonov, ``f = s / (s^2 + lam)``, so that at
        initialization ``net(y)`` equals ``solvers.tikhonov(A, y, lam).x``
        (``parametric=False``).
    parametric : bool
        ``False``: one trainable value per spectral index (for a Fourier
        factorization, per rfft half-spectrum index, so the output is real).
        ``True``: ``f = ParametricFilter(s, sigma, |omega|)``, a small MLP
        shared by all indices; the network then takes ``(y, noise_sigma)``
        and can be applied to another operator (``net(y, sigma, A=A2)`` or
        :meth:`from_filter`).
    hidden : int
        MLP width for ``parametric=True``.
    dtype : torch.dtype
        Dtype of the trainable parameters (inputs of either precision are
        accepted; the computation follows the input).
    fft_path : {"custom", "autograd"}
        Fourier factorizations: the memory-lean custom autograd function
        (default) or plain autograd through ``torch.fft`` (reference).

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.5, 9), (32, 32))
    >>> net = SpectralFilterNet(A, lam=1e-2, dtype=torch.float64)
    >>> y = A(torch.rand(4, 32, 32, dtype=torch.float64))
    >>> torch.allclose(net(y), A.svd().tikhonov(y, 1e-2))
    True
    >>> sum(p.numel() for p in net.parameters())  # one per half-spectrum index
    544
    """

    def __init__(self, A: LinearOperator | Factorization, lam: float = 1e-2, parametric: bool = False,
                 hidden: int = 32, dtype: torch.dtype = torch.float32, fft_path: str = "custom") -> None:
        super().__init__()
        lam = check_real(lam, "lam")
        if lam < 0:
            raise ValueError(f"lam must be finite and >= 0, got {lam}")
        if fft_path not in ("custom", "autograd"):
            raise ValueError(f"fft_path must be 'custom' or 'autograd', got {fft_path!r}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.fft_path = fft_path
        self.parametric = bool(parametric)
        self.lam = lam
        spec = _Spectrum(_factorize(A), real=A.is_real if isinstance(A, LinearOperator) else None)
        self._hold("spectrum", spec.F)
        if isinstance(A, LinearOperator):
            self._hold("A", A)
        self._spec = spec
        self.in_shape, self.out_shape = spec.in_shape, spec.out_shape
        # physics, not learned state: non-persistent, rebuilt from the operator
        self._physics("s", spec.s.clone())
        self._physics("phase", None if spec.phase is None else torch.view_as_real(spec.phase).clone())
        self._physics("radius", None if spec.radius is None else spec.radius.clone())
        if self.parametric:
            self.filter_fn = ParametricFilter(hidden=hidden).to(dtype)
            self.filter = None
        else:
            den = spec.s**2 + lam
            init = torch.where(den > 0, spec.s / torch.where(den > 0, den, torch.ones_like(den)),
                               torch.zeros_like(den))
            self.filter = nn.Parameter(init.to(dtype))
            self.filter_fn = None
        self._others: dict[int, tuple[LinearOperator, _Spectrum]] = {}

    # ----------------------------------------------------------------- build
    @classmethod
    def from_filter(cls, A: LinearOperator | Factorization, net: SpectralFilterNet) -> SpectralFilterNet:
        """A parametric network for operator ``A`` sharing ``net``'s trained filter module.

        Examples
        --------
        >>> import torch
        >>> from physinv import psf
        >>> from physinv.operators import Convolution
        >>> net = SpectralFilterNet(Convolution(psf.gaussian(1.5, 9), (16, 16)), parametric=True)
        >>> net2 = SpectralFilterNet.from_filter(Convolution(psf.disk(2.0), (16, 16)), net)
        >>> net2.filter_fn is net.filter_fn
        True
        """
        if not isinstance(net, SpectralFilterNet) or not net.parametric:
            raise TypeError("net must be a SpectralFilterNet built with parametric=True")
        dtype = net.filter_fn.mlp[0].weight.dtype
        new = cls(A, parametric=True, dtype=dtype, fft_path=net.fft_path)
        new.filter_fn = net.filter_fn
        return new.to(net.filter_fn.mlp[0].weight.device)

    # ----------------------------------------------------------------- apply
    def filter_values(self, noise_sigma: Any = None, A: LinearOperator | None = None) -> torch.Tensor:
        """The current filter ``f`` on the spectral grid (half spectrum for Fourier factorizations)."""
        s, radius = self.s, self.radius
        if A is not None:
            spec = self._spectrum_of(A)
            s = spec.s.to(self.s.device)
            radius = None if spec.radius is None else spec.radius.to(self.s.device)
        if not self.parametric:
            if A is not None:
                raise ValueError("A= is only supported for parametric=True networks")
            return self.filter
        sigma = self._sigma(noise_sigma, s)
        return self.filter_fn(s, sigma, radius)

    def _sigma(self, noise_sigma: Any, like: torch.Tensor) -> torch.Tensor:
        if noise_sigma is None:
            raise ValueError("a parametric SpectralFilterNet needs noise_sigma (float or tensor of the "
                             "batch shape)")
        sig = torch.as_tensor(noise_sigma, dtype=torch.float64 if like.dtype == torch.float64 else like.dtype,
                              device=like.device)
        if not bool(torch.isfinite(sig).all()) or bool((sig <= 0).any()):
            raise ValueError("noise_sigma must be finite and > 0")
        return sig

    def _spectrum_of(self, A: LinearOperator) -> _Spectrum:
        hit = self._others.get(id(A))
        if hit is None or hit[0] is not A:
            hit = (A, _Spectrum(_factorize(A), real=A.is_real if isinstance(A, LinearOperator) else None))
            self._others[id(A)] = hit
        return hit[1]

    def forward(self, y: torch.Tensor, noise_sigma: Any = None,
                A: LinearOperator | None = None) -> torch.Tensor:
        """Reconstruct ``x`` from data ``y`` (``(..., *out_shape)``).

        ``noise_sigma`` (parametric only): a float, or a tensor whose dims
        match the first leading dims of ``y`` (e.g. ``(B,)`` for ``y`` of shape
        ``(B, C, H, W)``). ``A`` (parametric only): apply the learned filter
        to another operator's factorization.
        """
        if A is not None and not self.parametric:
            raise ValueError("A= is only supported for parametric=True networks")
        spec = self._spec if A is None else self._spectrum_of(A)
        check_trailing(y, spec.out_shape, "y", type(self).__name__, real=True)
        check_finite(y, "y", type(self).__name__)
        self._check_device(y)
        rd = compute_dtype(y)
        if self.parametric:
            if A is None:
                s = self._const("s", y)
                radius = None if spec.radius is None else self._const("radius", y)
            else:
                s = spec.s.to(device=y.device, dtype=rd)
                radius = None if spec.radius is None else spec.radius.to(device=y.device, dtype=rd)
            sigma = self._sigma(noise_sigma, s)
            n_lead = y.dim() - len(spec.out_shape)
            if sigma.dim() > n_lead:
                raise ValueError(f"noise_sigma has shape {tuple(sigma.shape)} but y has only {n_lead} "
                                 "leading dims")
            if sigma.dim():
                sigma = sigma.reshape(tuple(sigma.shape) + (1,) * (n_lead - sigma.dim()))
            f = self.filter_fn(s, sigma, radius).to(rd)
        else:
            if noise_sigma is not None:
                raise ValueError("noise_sigma is only used by parametric=True networks")
            f = self.filter.to(rd)
        if spec.fourier:
            if A is None:
                phase = self._const("phase", y, complex_=True)
            else:
                phase = spec.phase.to(device=y.device, dtype=complex_dtype(rd))
            return spec.apply(y, f, phase, plain=self.fft_path == "autograd")
        return float32_physics(spec.apply, y, f, None)  # dense factors: never in 16 bits under autocast

    def extra_repr(self) -> str:
        kind = "parametric" if self.parametric else f"diagonal, init Tikhonov lam={self.lam}"
        return f"{kind}, in_shape={self.in_shape}, out_shape={self.out_shape}, fft_path={self.fft_path!r}"
