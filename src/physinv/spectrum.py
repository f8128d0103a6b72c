"""Half-spectrum FFT helpers and the one memory-lean FFT autograd function of physinv.

Every fixed linear map that is diagonal in the real-FFT domain (circular
convolution, a spectral filter of it, one unrolled Landweber layer) goes
through :func:`filter_half_spectrum`, which computes
``add + scale * irfft2(rfft2(y) * c * f, s=shape)``, where ``f`` is a *real*,
possibly trainable filter on the rfft half spectrum and ``c`` an optional
constant complex factor (a transfer function or its conjugate phase).  Its
custom backward is the adjoint map (two FFTs) and keeps no complex spectra
alive.  :func:`fourier_multiply` is the case ``f = 1``: plain circular
convolution with a fixed transfer function.

Half-spectrum bookkeeping (:func:`column_weights`, :func:`half_weights`,
:func:`abs2`, :func:`hermitian_symmetrize`) lives here too, for the solvers
and networks that work on the rfft half spectrum directly.

Gradient with respect to ``f``
------------------------------
With ``N = H W``, ``G = rfft2(g)`` (``g`` the incoming gradient) and
``Y = rfft2(y)``, Parseval's identity for the unnormalised DFT,
``sum_n g[n] x[n] = (1/N) sum_k conj(G[k]) X[k]`` over the *full* spectrum,
gives::

    dL/df[k1, k2] = w[k2] / N * Re(conj(G[k1, k2]) * Y[k1, k2] * c[k1, k2])

where ``w = 2`` for the columns ``0 < k2 < W/2`` (each stands for itself and
its Hermitian mirror ``-k``) and ``w = 1`` for the DC column ``k2 = 0`` and,
for even ``W``, the Nyquist column ``k2 = W/2`` (the inverse real FFT uses
only the Hermitian part of those columns, so an entry and its mirror share
the value ``(f[k1] + f[-k1]) / 2``; the derivative of that is ``1/2`` times
the two mirrored terms, which add up to one real part).
"""

from __future__ import annotations

import torch

__all__ = [
    "filter_half_spectrum",
    "plain_filter_half_spectrum",
    "fourier_multiply",
    "fast_fft_length",
    "column_weights",
    "half_weights",
    "abs2",
    "hermitian_symmetrize",
]

_HALF = (torch.float16, torch.bfloat16)


def column_weights(width: int, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Multiplicity of each rfft column in the full spectrum (``1`` for DC/Nyquist, else ``2``).

    Examples
    --------
    >>> column_weights(6)
    tensor([1., 2., 2., 1.], dtype=torch.float64)
    >>> column_weights(5)
    tensor([1., 2., 2.], dtype=torch.float64)
    """
    w = torch.full((width // 2 + 1,), 2.0, dtype=dtype, device=device)
    w[0] = 1.0
    if width % 2 == 0:
        w[-1] = 1.0
    return w


def half_weights(shape: tuple[int, int], dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """:func:`column_weights` broadcast over the rfft half spectrum ``(H, W // 2 + 1)`` of ``shape``.

    ``sum(half_weights(shape) * abs2(rfft2(x)))`` equals ``sum(abs2(fft2(x)))``
    for real ``x`` (Parseval on the half spectrum).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(4, 6, dtype=torch.float64)
    >>> full = abs2(torch.fft.fft2(x)).sum()
    >>> half = (half_weights((4, 6)) * abs2(torch.fft.rfft2(x))).sum()
    >>> bool(torch.isclose(full, half))
    True
    """
    H, W = int(shape[-2]), int(shape[-1])
    return column_weights(W, dtype=dtype, device=device).expand(H, W // 2 + 1)


def abs2(z: torch.Tensor) -> torch.Tensor:
    """``|z|^2`` without the square root of ``abs`` (real tensors are squared).

    Examples
    --------
    >>> import torch
    >>> abs2(torch.tensor([3 + 4j]))
    tensor([25.])
    """
    if z.is_complex():
        return z.real * z.real + z.imag * z.imag
    return z * z


def hermitian_symmetrize(f: torch.Tensor, width: int) -> torch.Tensor:
    """Average a real half-spectrum filter with its mirror ``f[-k1]`` on the DC and Nyquist columns.

    ``irfft2`` sees only this symmetrized filter; making it explicit matters
    where the filter enters non-linearly (e.g. products of per-layer filters).

    Examples
    --------
    >>> import torch
    >>> f = torch.arange(12.0).reshape(4, 3)  # width 4: columns 0 and 2 are DC and Nyquist
    >>> hermitian_symmetrize(f, 4)[:, 0]
    tensor([0., 6., 6., 6.])
    """
    idx = (-torch.arange(f.shape[-2], device=f.device)) % f.shape[-2]
    cols = [0] + ([width // 2] if width % 2 == 0 and width > 1 else [])
    out = f.clone()
    for col in cols:
        out[..., col] = 0.5 * (f[..., col] + f[..., idx, col])
    return out


class _HalfSpectrumFilter(torch.autograd.Function):
    """``add + scale * irfft2(rfft2(y) * m)`` with ``m = c * f`` (``f`` or ``c`` may be absent)."""

    @staticmethod
    def forward(ctx, y, f, c, shape, scale, add, keep_spectrum):  # type: ignore[override]
        m = c if f is None else (f if c is None else c * f)
        Y = torch.fft.rfft2(y)
        out = torch.fft.irfft2(Y * m, s=shape)
        if scale is not None:
            out = out * scale
        if add is not None:
            out = out + add
        # Keep only what the backward needs when f or scale needs a gradient:
        # y itself (free when the caller keeps y alive anyway; rfft2(y) is then
        # recomputed), or its half spectrum when y is a temporary
        # (keep_spectrum: about the same bytes as y, one FFT less).
        need_y = ctx.needs_input_grad[1] or ctx.needs_input_grad[4]
        ctx.keep_spectrum = bool(keep_spectrum)
        ctx.save_for_backward((Y if keep_spectrum else y) if need_y else None, f, c, scale)
        ctx.shape = shape
        ctx.y_shape = y.shape
        ctx.add_shape = None if add is None else add.shape
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        y, f, c, scale = ctx.saved_tensors
        shape = ctx.shape
        G = torch.fft.rfft2(g)
        gy = gf = gscale = gadd = None
        if ctx.needs_input_grad[0]:
            m = c.conj() if f is None else (f if c is None else c.conj() * f)
            if scale is not None:
                m = m * scale
            gy = torch.fft.irfft2(G * m, s=shape).sum_to_size(ctx.y_shape)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[4]:
            prod = (y if ctx.keep_spectrum else torch.fft.rfft2(y)) * G.conj()
            if c is not None:
                prod = prod * c
            real = prod.real.dtype
            w = column_weights(shape[-1], dtype=real, device=g.device) / (shape[0] * shape[1])
            dfull = prod.real * w  # d<g, irfft2(Y c f)>/df, before reduction to f's shape
            if ctx.needs_input_grad[4]:
                gscale = (dfull if f is None else dfull * f).sum().reshape(scale.shape)
            if ctx.needs_input_grad[1]:
                gf = (dfull if scale is None else dfull * scale).sum_to_size(f.shape)
        if ctx.needs_input_grad[5]:
            gadd = g.sum_to_size(ctx.add_shape)
        return gy, gf, None, None, gscale, gadd, None


def _check(y: torch.Tensor, f: torch.Tensor | None, c: torch.Tensor | None, shape: tuple[int, int]
           ) -> None:
    fn = "filter_half_spectrum"
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{fn}: y must be a torch.Tensor, got {type(y).__name__}")
    if f is None and c is None:
        raise ValueError(f"{fn}: give a filter f, a complex factor c, or both")
    for name, t in (("f", f), ("c", c)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    half = (shape[0], shape[1] // 2 + 1)
    if y.dim() < 2 or tuple(y.shape[-2:]) != tuple(shape):
        raise ValueError(f"{fn}: y must have trailing shape {tuple(shape)}, got {tuple(y.shape)}")
    if y.is_complex():
        raise TypeError(f"{fn}: y must be real (the rfft of a real image), got {y.dtype}")
    if f is not None and (f.is_complex() or f.dim() < 2 or tuple(f.shape[-2:]) != half):
        raise ValueError(f"{fn}: f must be real with trailing shape {half} (the rfft half spectrum of "
                         f"{tuple(shape)}), got {f.dtype} {tuple(f.shape)}")
    if c is not None and (c.dim() < 2 or tuple(c.shape[-2:]) != half):
        raise ValueError(f"{fn}: c must have trailing shape {half}, got {tuple(c.shape)}")
    for name, t in (("f", f), ("c", c)):
        if t is not None and t.device != y.device:
            raise ValueError(f"{fn}: y is on {y.device} but {name} is on {t.device}; "
                             "move them to one device")


def filter_half_spectrum(y: torch.Tensor, f: torch.Tensor | None = None, c: torch.Tensor | None = None,
                         shape: tuple[int, int] | None = None, scale: torch.Tensor | None = None,
                         add: torch.Tensor | None = None, keep_spectrum: bool = False) -> torch.Tensor:
    """``add + scale * irfft2(rfft2(y) * c * f, s=shape)`` with a memory-lean custom backward.

    The optional scalar ``scale`` and summand ``add`` let one unrolled layer
    ``x + t * P A^H r`` be a single autograd node that keeps only ``r``: the
    gradient of ``scale`` comes from the same spectra as that of ``f``.

    Parameters
    ----------
    y : torch.Tensor
        Real images ``(..., H, W)``: float32/float64, or float16/bfloat16
        (computed in float32, returned in the input dtype).
    f : torch.Tensor, optional
        Real filter on the rfft half spectrum ``(..., H, W // 2 + 1)``, may
        require a gradient; leading dims broadcast against ``y``'s.
    c : torch.Tensor, optional
        Constant complex factor on the half spectrum (never differentiated);
        it must be Hermitian on the DC/Nyquist columns, as the rfft of a real
        array is, for the map to be a real circular convolution.
    shape : (int, int), optional
        Spatial shape, default ``y.shape[-2:]``.
    scale : torch.Tensor, optional
        A 0-d (possibly trainable) factor.
    add : torch.Tensor, optional
        A (possibly differentiable) tensor added to the result.
    keep_spectrum : bool
        For the gradient of ``f``/``scale`` keep ``rfft2(y)`` (about the bytes
        of ``y``) instead of ``y`` and save one FFT in the backward: the better
        choice when ``y`` is a temporary that nothing else keeps alive.

    Returns
    -------
    torch.Tensor
        Real, with the broadcast leading shape of ``y`` and ``f``.

    Examples
    --------
    >>> import torch
    >>> y = torch.randn(2, 8, 8, dtype=torch.float64)
    >>> f = torch.ones(8, 5, dtype=torch.float64, requires_grad=True)
    >>> out = filter_half_spectrum(y, f)
    >>> torch.allclose(out, y)
    True
    >>> out.sum().backward(); f.grad.shape
    torch.Size([8, 5])
    """
    shape = tuple(y.shape[-2:]) if shape is None else tuple(int(v) for v in shape)
    _check(y, f, c, shape)
    dtype = y.dtype
    if dtype in _HALF:
        y = y.float()
    if f is not None and f.dtype != y.dtype:
        f = f.to(y.dtype)
    if c is not None:
        want = torch.complex128 if y.dtype == torch.float64 else torch.complex64
        if c.dtype != want:
            c = c.to(want)
    if scale is not None:
        if not isinstance(scale, torch.Tensor) or scale.dim() != 0:
            raise ValueError(f"filter_half_spectrum: scale must be a 0-d tensor, got {scale!r:.80}")
        scale = scale.to(y.dtype)
    if add is not None:
        add = add.to(y.dtype) if add.dtype in _HALF else add
    if c is not None and c.requires_grad:
        raise ValueError("filter_half_spectrum: c is a constant and must not require a gradient; "
                         "use plain_filter_half_spectrum for a learned complex factor")
    grads = any(t is not None and t.requires_grad for t in (y, f, scale, add))
    if torch.is_grad_enabled() and grads:
        out = _HalfSpectrumFilter.apply(y, f, c, shape, scale, add, keep_spectrum)
    else:
        out = plain_filter_half_spectrum(y, f, c, shape)
        if scale is not None:
            out = out * scale
        if add is not None:
            out = out + add
    return out.to(dtype) if dtype in _HALF else out


def plain_filter_half_spectrum(y: torch.Tensor, f: torch.Tensor | None = None,
                               c: torch.Tensor | None = None,
                               shape: tuple[int, int] | None = None) -> torch.Tensor:
    """The same map through plain autograd of ``torch.fft`` (the reference for tests and benchmarks).

    Examples
    --------
    >>> import torch
    >>> y = torch.randn(8, 8, dtype=torch.float64)
    >>> torch.allclose(plain_filter_half_spectrum(y, 2 * torch.ones(8, 5, dtype=torch.float64)), 2 * y)
    True
    """
    shape = tuple(y.shape[-2:]) if shape is None else tuple(shape)
    m = c if f is None else (f if c is None else c * f)
    return torch.fft.irfft2(torch.fft.rfft2(y) * m, s=shape)


def fourier_multiply(x: torch.Tensor, H: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Real circular convolution in Fourier space: ``irfft2(rfft2(x) * H, s=shape)``.

    ``H`` is a transfer function on the rfft half spectrum of ``shape``. With
    a gradient to record and a constant ``H`` this runs the memory-lean
    :func:`filter_half_spectrum` (backward = the adjoint, nothing but ``H``
    kept); with a learned ``H`` plain autograd; with no graph to record the
    spectrum is multiplied in place (one allocation fewer).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 8, 8)
    >>> H = torch.ones(8, 5, dtype=torch.complex64)
    >>> torch.allclose(fourier_multiply(x, H, (8, 8)), x, atol=1e-6)
    True
    """
    if H.requires_grad:
        return torch.fft.irfft2(torch.fft.rfft2(x) * H, s=shape)
    if torch.is_grad_enabled() and x.requires_grad:
        return _HalfSpectrumFilter.apply(x, None, H, tuple(shape), None, None, False)
    X = torch.fft.rfft2(x)
    if X.dtype != H.dtype:  # e.g. half-precision spectra
        return torch.fft.irfft2(X * H, s=shape)
    return torch.fft.irfft2(X.mul_(H), s=shape)


def fast_fft_length(n: int) -> int:
    """Smallest ``2^a 3^b 5^c 7^d >= n`` (lengths that FFT libraries transform fastest).

    Examples
    --------
    >>> fast_fft_length(97), fast_fft_length(128), fast_fft_length(1)
    (98, 128, 1)
    """
    best = 1 << (n - 1).bit_length()
    p7 = 1
    while p7 < best:
        p5 = p7
        while p5 < best:
            p3 = p5
            while p3 < best:
                p2 = p3
                while p2 < n:
                    p2 *= 2
                best = min(best, p2)
                p3 *= 3
            p5 *= 5
        p7 *= 7
    return best
