"""Unrolled Landweber and ISTA: classical iterations with learned per-layer parameters.

At initialization each network computes exactly the classical algorithm it
unrolls (``physinv.solvers.landweber`` / ``physinv.solvers.ista`` with the same
steps and thresholds), to floating-point accuracy, by construction: every
layer runs the solvers' own step (:func:`~physinv.solvers.landweber_step`,
:func:`~physinv.solvers.ista_step`) with the learned step and threshold. Only
the memory-lean Fourier paths (the learned preconditioner, ``fft_path="fused"``)
use specialised kernels, available for any operator whose exact factorization
is a :class:`~physinv.operators.FourierFactorization`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from .._validate import check_real, check_trailing, compute_dtype
from ..operators import LinearOperator
from ..solvers import ista_step, landweber_step, soft_threshold
from ..solvers.result import half_spectrum_path, make_steps, require_operator
from ..spectrum import abs2, filter_half_spectrum, hermitian_symmetrize, plain_filter_half_spectrum
from ..train.amp import float32_physics
from ._common import PhysicsModule, check_finite
from ._record import SavableModule

__all__ = ["UnrolledLandweber", "UnrolledISTA", "LearnedTransform"]

#: What the learned steps of the unrolled networks are (factors of their initial values); the
#: benchmarks put it in the IDs of their cells, so that a change recomputes the cells it affects.
STEP_PARAMETERIZATION = "step-factors"

#: What the Fourier-only options need, in error messages.
_NEEDS_FOURIER = ("an operator whose exact factorization is a FourierFactorization (a circular "
                  "Convolution, a real multiple of one, its adjoint)")


def _steps(step: Any, n_layers: int, A: LinearOperator, name: str = "step", bound: bool = True,
           owner: str = "unrolled network") -> torch.Tensor:
    """Initial per-layer steps; explicit ones are checked against the solvers' bound ``2 / ||A||^2``."""
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    if step is None:
        norm = A.norm()
        if norm == 0:
            raise ValueError("A has zero norm; give step explicitly")
        return torch.full((n_layers,), 1.0 / norm**2, dtype=torch.float64)
    if isinstance(step, (Sequence, torch.Tensor)) and not isinstance(step, str):
        t = torch.as_tensor(step, dtype=torch.float64).reshape(-1)
        if t.numel() != n_layers:
            raise ValueError(f"{name} must be a float or a sequence of n_layers={n_layers} values, "
                             f"got {t.numel()} values")
    else:
        t = torch.full((n_layers,), float(step), dtype=torch.float64)
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0, got {t.tolist()}")
    if bound:  # the rule of solvers.landweber: a larger step makes the iteration diverge
        try:
            make_steps(t.tolist(), n_layers, A.norm(), owner, "error")
        except ValueError as e:
            raise ValueError(str(e).split("; pass check_step")[0]) from None
    return t


class _PlainFourier:
    """``A`` and ``A^H`` of a Fourier-diagonal net through plain autograd of ``torch.fft`` (the reference)."""

    def __init__(self, net: _Unrolled) -> None:
        self.net = net

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        tf = self.net._const("tf", x, complex_=True)
        return torch.fft.irfft2(torch.fft.rfft2(x) * tf, s=self.net.shape)

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        tf = self.net._const("tf", r, complex_=True)
        return torch.fft.irfft2(torch.fft.rfft2(r) * tf.conj(), s=self.net.shape)


class _Unrolled(PhysicsModule):
    def __init__(self, A: LinearOperator, fft_path: str) -> None:
        super().__init__()
        require_operator(A, type(self).__name__)
        if fft_path not in ("custom", "autograd", "fused"):
            raise ValueError(f"fft_path must be 'custom', 'autograd' or 'fused', got {fft_path!r}")
        F = half_spectrum_path(A.svd() if A.has_svd else None)
        if fft_path in ("autograd", "fused") and F is None:
            raise ValueError(f"fft_path={fft_path!r} needs {_NEEDS_FOURIER}, got {type(A).__name__}; "
                             "use fft_path='custom'")
        self._hold("A", A)
        self.fft_path = fft_path
        if F is not None:  # the transfer function, from the factorization's half spectrum
            self._physics("tf", torch.view_as_real(F.half_transfer.to(torch.complex128)
                                                   .resolve_conj()).clone())
            self.shape = tuple(F.grid_shape)
        else:
            self._physics("tf", None)
            self.shape = None

    @property
    def A(self) -> LinearOperator:
        """The fixed forward operator."""
        return self._held["A"]

    def _check_input(self, y: torch.Tensor, x0: torch.Tensor | None) -> None:
        check_trailing(y, self.A.out_shape, "y", type(self).__name__, real=True)
        check_finite(y, "y", type(self).__name__)
        self._check_device(y)
        dev = next(iter(self.A.buffers()), None)
        if dev is not None and dev.device != y.device:
            raise ValueError(f"{type(self).__name__}: y is on {y.device} but A is on {dev.device}")
        if x0 is not None:
            check_trailing(x0, self.A.in_shape, "x0", type(self).__name__, real=True)

    def _op(self) -> Any:
        """What the layers apply as ``A`` / ``A^H``: the operator, or its plain-autograd FFT form."""
        return _PlainFourier(self) if self.fft_path == "autograd" else self.A

    def _init_steps(self, t: torch.Tensor, dtype: torch.dtype) -> None:
        # steps t_k = step_unit_k * step_factors_k: the learned factors start at 1, so an optimizer's
        # move is relative to the initial step whatever the operator's scale (1 / ||A||^2 is 3e-4 for
        # a 128x128 Radon transform, where a move of Adam's size in the step itself diverges)
        self.register_buffer("step_unit", t.to(dtype))
        self.step_factors = nn.Parameter(torch.ones(t.numel(), dtype=dtype))

    @property
    def steps(self) -> torch.Tensor:
        """The per-layer steps ``t_k = step_unit[k] * step_factors[k]``, computed from the parameters.

        A new tensor on every access: change the steps through ``step_factors``
        (the learned parameter, 1 at initialization) or ``step_unit`` (the
        initial steps, a buffer).
        """
        return self.step_unit * self.step_factors

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # noqa: D401 - nn.Module hook
        # a state dict written before the steps were factored holds the steps themselves:
        # they become the unit, with factors 1 (the same steps, exactly)
        old = prefix + "steps"
        if old in state_dict and prefix + "step_factors" not in state_dict:
            t = state_dict.pop(old)
            state_dict[prefix + "step_unit"] = t.detach().clone()
            state_dict[prefix + "step_factors"] = torch.ones_like(t)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class UnrolledLandweber(_Unrolled):
    """``n_layers`` Landweber steps ``x_{k+1} = x_k + t_k P A^H (y - A x_k)`` with learned ``t_k``.

    Parameters
    ----------
    A : LinearOperator
        Any operator (only ``A`` and ``A^H`` are used).
    n_layers : int
        Number of unrolled iterations.
    step : float or sequence of float, optional
        Initial steps (one for all layers or one per layer); default
        ``1 / ||A||^2``. At initialization the network equals
        ``solvers.landweber(A, y, n_layers, step=step)``. They are kept as the
        buffer ``step_unit``; the network learns ``step_factors`` (1 at
        initialization), ``t_k = step_unit[k] * step_factors[k]`` (the
        :attr:`steps` property), so an optimizer moves each step relative to
        its initial size whatever the operator's norm.
    precondition : bool
        Learn a Fourier-domain preconditioner ``P`` (one real value per rfft
        half-spectrum index, shared by the layers, initialised to 1). Needs an
        operator whose exact factorization is a
        :class:`~physinv.operators.FourierFactorization` (a circular
        :class:`~physinv.operators.Convolution`, a real multiple of one, its adjoint).
    dtype : torch.dtype
        Dtype of the parameters.
    fft_path : {"custom", "autograd", "fused"}
        ``"custom"``: layer by layer through the operator (its memory-lean FFT
        autograd functions), each layer :func:`~physinv.solvers.landweber_step`.
        ``"autograd"``: layer by layer with plain autograd through ``torch.fft``
        (the reference). ``"fused"``: for a Fourier-factorizable operator
        every layer is diagonal in Fourier space, so the whole net
        is one spectral filter ``x = F^-1[phi_K(|h|^2) conj(h) F y]`` with
        ``phi_{k+1} = (1 - t_k p |h|^2) phi_k + t_k p``; computed with two
        FFTs, differentiable in ``t`` and ``p`` (same function, rounding aside).

    Examples
    --------
    >>> import torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> A = Convolution(psf.gaussian(1.0, 7), (16, 16))
    >>> net = UnrolledLandweber(A, 5, dtype=torch.float64)
    >>> y = A(torch.rand(2, 16, 16, dtype=torch.float64))
    >>> x = torch.zeros_like(y)
    >>> for _ in range(5):
    ...     x = x + A.adjoint(y - A(x)) / A.norm() ** 2
    >>> torch.allclose(net(y), x)
    True
    """

    def __init__(self, A: LinearOperator, n_layers: int, step: Any = None, precondition: bool = False,
                 dtype: torch.dtype = torch.float32, fft_path: str = "custom") -> None:
        super().__init__(A, fft_path)
        self.n_layers = n_layers
        self._init_steps(_steps(step, n_layers, A, bound=not precondition, owner="UnrolledLandweber"), dtype)
        if precondition:
            if self.tf is None:
                raise ValueError(f"precondition=True needs {_NEEDS_FOURIER} (a Fourier-diagonal A^H A), "
                                 f"got {type(A).__name__}")
            H, W = self.shape
            self.precond = nn.Parameter(torch.ones(H, W // 2 + 1, dtype=dtype))
        else:
            self.precond = None

    def forward(self, y: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Run the ``n_layers`` iterations from ``x0`` (default zero)."""
        self._check_input(y, x0)
        # every layer is physics (A, A^H, FFT filters): under autocast it runs in float32
        return float32_physics(self._run, y, x0)

    def _run(self, y: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        rd = compute_dtype(y)
        steps = self.steps.to(rd)
        if self.fft_path == "fused":
            return self._fused(y, x0, steps)
        x = torch.zeros(y.shape[:-len(self.A.out_shape)] + self.A.in_shape, dtype=y.dtype,
                        device=y.device) if x0 is None else x0
        p = None if self.precond is None else self.precond.to(rd)
        op = self._op()
        for k in range(self.n_layers):
            if p is None:  # the solver's own step
                x = landweber_step(op, x, y, steps[k])
                continue
            r = y - op(x)
            c = self._const("tf", r, complex_=True).conj()
            if self.fft_path == "autograd":
                x = x + steps[k] * plain_filter_half_spectrum(r, p, c, self.shape)
            else:  # one autograd node per layer that keeps only rfft2(r) (r is a temporary)
                x = filter_half_spectrum(r, p, c, self.shape, scale=steps[k], add=x, keep_spectrum=True)
        return x

    def filter_factors(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi, psi)`` on the half spectrum: ``x_K = F^-1[phi conj(h) F y + psi F x0]``.

        Needs an operator whose exact factorization is a FourierFactorization.
        """
        if self.tf is None:
            raise ValueError(f"filter_factors needs {_NEEDS_FOURIER}")
        like = torch.empty(0, dtype=dtype, device=self.tf.device)
        a = abs2(self._const("tf", like, complex_=True))
        steps = self.steps.to(dtype)
        p = None if self.precond is None else hermitian_symmetrize(self.precond.to(dtype), self.shape[1])
        phi = torch.zeros_like(a)
        psi = torch.ones_like(a)
        for k in range(self.n_layers):
            tp = steps[k] if p is None else steps[k] * p
            damp = 1 - tp * a
            phi = damp * phi + tp
            psi = damp * psi
        return phi, psi

    def _fused(self, y, x0, steps):
        rd = compute_dtype(y)
        phi, psi = self.filter_factors(rd)
        c = self._const("tf", y, complex_=True).conj()
        x = filter_half_spectrum(y, phi, c, self.shape)
        if x0 is not None:
            x = x + filter_half_spectrum(x0, psi, None, self.shape)
        return x

    def extra_repr(self) -> str:
        return (f"n_layers={self.n_layers}, precondition={self.precond is not None}, "
                f"fft_path={self.fft_path!r}")


class LearnedTransform(SavableModule):
    """An ISTA-Net style learned sparsifying transform pair ``(F, F~)`` for one layer.

    ``F``: conv3x3(1->C) - ReLU - conv3x3(C->C); ``F~`` mirrors it back to one
    channel; no biases, so ``F(0) = F~(0) = 0``. Works on ``(..., H, W)`` images.

    Examples
    --------
    >>> import torch
    >>> T = LearnedTransform(4)
    >>> T.synthesis(T.analysis(torch.rand(2, 8, 8))).shape
    torch.Size([2, 8, 8])
    """

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.fwd = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3, padding=1, bias=False))
        self.bwd = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU(),
                                 nn.Conv2d(channels, 1, 3, padding=1, bias=False))

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        return self.fwd(x.reshape(-1, 1, *x.shape[-2:])).reshape(*lead, -1, *x.shape[-2:])

    def synthesis(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-3]
        return self.bwd(z.reshape(-1, *z.shape[-3:])).reshape(*lead, *z.shape[-2:])


class UnrolledISTA(_Unrolled):
    """Unrolled ISTA/LISTA: ``x_{k+1} = W^H S_{theta_k}(W(x_k + t_k A^H (y - A x_k)))``.

    Parameters
    ----------
    A : LinearOperator
        Forward operator.
    n_layers : int
        Number of unrolled iterations.
    transform : None, LinearOperator or "learned"
        ``None``: threshold in the pixel domain. An orthogonal operator
        ``W`` (e.g. :class:`~physinv.operators.Wavelet2D`): threshold its
        coefficients. ``"learned"``: a per-layer convolutional transform pair
        (:class:`LearnedTransform`, ISTA-Net style): with ``v`` the gradient
        step and ``z = F(v)``, ``x_{k+1} = v - F~(z - S_theta(z))`` removes the
        coefficients below the threshold (if ``F~ F = I`` this is
        ``F~(S_theta(F v))``); bias-free convolutions make ``theta = 0`` an exact
        gradient step.
    lam : float
        Regularisation weight; thresholds start at ``lam * t_k``.
    step : float or sequence, optional
        Initial steps, default ``1 / ||A||^2``. At initialization (fixed
        transform) the net equals ``solvers.ista(A, y, lam, n_layers, step=step,
        transform=W)``. As in :class:`UnrolledLandweber` the network learns
        factors of them (``step_factors``, 1 at initialization; ``steps`` is
        their product with the buffer ``step_unit``); the thresholds
        (``thresholds``) are learned as they are, in the units of the
        thresholded coefficients.
    channels : int
        Channels of the learned transform.
    dtype : torch.dtype
        Dtype of the parameters.
    fft_path : {"custom", "autograd"}
        As in :class:`UnrolledLandweber` (``"fused"`` does not apply: the
        thresholding is not diagonal in Fourier space).
    checkpoint : bool
        Gradient checkpointing: in training mode with gradients enabled, keep
        only each layer's input for the backward pass and recompute the
        layer (the learned transform's feature maps above all) there, with
        ``torch.utils.checkpoint`` (non-reentrant). Same outputs and
        gradients, about one more forward pass per training step. Worth it
        with ``transform="learned"``; a pixel-domain or fixed-transform layer
        keeps about two images for its backward pass anyway.

    Notes
    -----
    :class:`UnrolledLandweber` has no such option: each of its layers keeps
    one image for the backward pass (``A^H r`` for the gradient of its step,
    or the half spectrum of ``r`` with a preconditioner), which is what a
    checkpoint would keep, and ``fft_path="fused"`` keeps one filter for the
    whole network. Under autocast the gradient steps run in float32
    (:func:`physinv.train.amp.float32_physics`), the learned transform in the
    autocast type.

    Examples
    --------
    >>> import torch
    >>> from physinv.operators import Matrix
    >>> A = Matrix(torch.eye(3, dtype=torch.float64))
    >>> net = UnrolledISTA(A, 1, lam=0.5, step=1.0, dtype=torch.float64)
    >>> net(torch.tensor([2.0, 0.2, -1.0], dtype=torch.float64)).detach()
    tensor([ 1.5000,  0.0000, -0.5000], dtype=torch.float64)
    """

    def __init__(self, A: LinearOperator, n_layers: int, transform: Any = None, lam: float = 1e-2,
                 step: Any = None, channels: int = 16, dtype: torch.dtype = torch.float32,
                 fft_path: str = "custom", checkpoint: bool = False) -> None:
        if fft_path == "fused":
            raise ValueError("fft_path='fused' is only available for UnrolledLandweber")
        if not isinstance(checkpoint, bool):
            raise TypeError(f"UnrolledISTA: checkpoint must be a bool, got {type(checkpoint).__name__}")
        super().__init__(A, fft_path)
        self.checkpoint = checkpoint
        lam = check_real(lam, "lam")
        if lam < 0:
            raise ValueError(f"lam must be finite and >= 0, got {lam}")
        self.n_layers = n_layers
        self.lam = lam
        t = _steps(step, n_layers, A, owner="UnrolledISTA")
        self._init_steps(t, dtype)
        self.thresholds = nn.Parameter((lam * t).to(dtype))
        self.learned = None
        self.kind = "pixel"
        if isinstance(transform, str):
            if transform != "learned":
                raise ValueError(f"transform must be None, a LinearOperator or 'learned', got {transform!r}")
            if len(A.in_shape) != 2:
                raise ValueError(f"transform='learned' needs 2-D images, A.in_shape={A.in_shape}")
            self.learned = nn.ModuleList([LearnedTransform(channels) for _ in range(n_layers)]).to(dtype)
            self.kind = "learned"
        elif transform is not None:
            require_operator(transform, type(self).__name__, "transform")
            if transform.in_shape != A.in_shape:
                raise ValueError(f"transform must act on A.in_shape={A.in_shape}, got in_shape "
                                 f"{transform.in_shape}")
            self._hold("W", transform)
            self.kind = "fixed"

    def forward(self, y: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Run the ``n_layers`` iterations from ``x0`` (default zero)."""
        self._check_input(y, x0)
        rd = compute_dtype(y)
        steps, thr = self.steps.to(rd), self.thresholds.to(rd)
        x = torch.zeros(y.shape[:-len(self.A.out_shape)] + self.A.in_shape, dtype=y.dtype,
                        device=y.device) if x0 is None else x0
        recompute = self.checkpoint and self.training and torch.is_grad_enabled()
        for k in range(self.n_layers):
            if recompute:
                x = _checkpoint(self._layer, k, x, y, steps[k], thr[k], use_reentrant=False)
            else:
                x = self._layer(k, x, y, steps[k], thr[k])
        return x

    def _layer(self, k: int, x: torch.Tensor, y: torch.Tensor, step: torch.Tensor,
               threshold: torch.Tensor) -> torch.Tensor:
        """Layer ``k``: the solver's ISTA step, or a gradient step and the learned transform's shrinkage."""
        op = self._op()
        if self.kind != "learned":  # the solver's own step (W is None in the pixel domain)
            return float32_physics(ista_step, op, x, y, step, threshold, self._held.get("W"))
        v = float32_physics(landweber_step, op, x, y, step)
        T = self.learned[k]
        z = T.analysis(v)
        # remove what the learned transform calls noise (its coefficients below the
        # threshold); bias-free convolutions make theta = 0 an exact gradient step
        return v - T.synthesis(z - soft_threshold(z, threshold))

    def extra_repr(self) -> str:
        return (f"n_layers={self.n_layers}, transform={self.kind!r}, lam={self.lam}, "
                f"checkpoint={self.checkpoint}")
