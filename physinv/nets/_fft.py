"""Memory-lean autograd for the Fourier-domain spectral-filter layer.

:func:`spectral_filter` computes ``irfft2(rfft2(y) * c * f, s=shape)`` where
``f`` is a *real*, possibly trainable filter on the rfft half spectrum and
``c`` an optional constant complex factor (the conjugate phase of a transfer
function, or a whole conjugate transfer function).  The custom backward
recomputes the two FFTs it needs instead of keeping complex spectra alive.

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

__all__ = ["spectral_filter", "column_weights", "plain_spectral_filter", "hermitian_symmetrize"]

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


class _SpectralFilter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, f, c, shape, scale, add, keep_spectrum):  # type: ignore[override]
        m = f if c is None else c * f
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
            m = f if c is None else c.conj() * f
            if scale is not None:
                m = m * scale
            gy = torch.fft.irfft2(G * m, s=shape).sum_to_size(ctx.y_shape)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[4]:
            prod = (y if ctx.keep_spectrum else torch.fft.rfft2(y)) * G.conj()
            if c is not None:
                prod = prod * c
            w = column_weights(shape[-1], dtype=f.dtype, device=f.device) / (shape[0] * shape[1])
            dfull = prod.real * w  # d<g, irfft2(Y c f)>/df, before reduction to f's shape
            if ctx.needs_input_grad[4]:
                gscale = (dfull * f).sum().reshape(scale.shape)
            if ctx.needs_input_grad[1]:
                gf = (dfull if scale is None else dfull * scale).sum_to_size(f.shape)
        if ctx.needs_input_grad[5]:
            gadd = g.sum_to_size(ctx.add_shape)
        return gy, gf, None, None, gscale, gadd, None


def _check(y: torch.Tensor, f: torch.Tensor, c: torch.Tensor | None, shape: tuple[int, int]) -> None:
    if not isinstance(y, torch.Tensor) or not isinstance(f, torch.Tensor):
        raise TypeError("spectral_filter: y and f must be torch.Tensors, got "
                        f"{type(y).__name__} and {type(f).__name__}")
    half = (shape[0], shape[1] // 2 + 1)
    if y.dim() < 2 or tuple(y.shape[-2:]) != tuple(shape):
        raise ValueError(f"spectral_filter: y must have trailing shape {tuple(shape)}, got "
                         f"{tuple(y.shape)}")
    if f.is_complex() or f.dim() < 2 or tuple(f.shape[-2:]) != half:
        raise ValueError(f"spectral_filter: f must be real with trailing shape {half} (the rfft "
                         f"half spectrum of {tuple(shape)}), got {f.dtype} {tuple(f.shape)}")
    if c is not None and (tuple(c.shape[-2:]) != half):
        raise ValueError(f"spectral_filter: c must have trailing shape {half}, got {tuple(c.shape)}")
    for name, t in (("f", f), ("c", c)):
        if t is not None and t.device != y.device:
            raise ValueError(f"spectral_filter: y is on {y.device} but {name} is on {t.device}; "
                             "move them to one device")


def spectral_filter(y: torch.Tensor, f: torch.Tensor, c: torch.Tensor | None = None,
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
    f : torch.Tensor
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
    >>> out = spectral_filter(y, f)
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
    if f.dtype != y.dtype:
        f = f.to(y.dtype)
    if c is not None:
        want = torch.complex128 if y.dtype == torch.float64 else torch.complex64
        if c.dtype != want:
            c = c.to(want)
    if scale is not None:
        if not isinstance(scale, torch.Tensor) or scale.dim() != 0:
            raise ValueError(f"spectral_filter: scale must be a 0-d tensor, got {scale!r:.80}")
        scale = scale.to(y.dtype)
    if add is not None:
        add = add.to(y.dtype) if add.dtype in _HALF else add
    grads = any(t is not None and t.requires_grad for t in (y, f, scale, add))
    if torch.is_grad_enabled() and grads:
        out = _SpectralFilter.apply(y, f, c, shape, scale, add, keep_spectrum)
    else:
        out = plain_spectral_filter(y, f, c, shape)
        if scale is not None:
            out = out * scale
        if add is not None:
            out = out + add
    return out.to(dtype) if dtype in _HALF else out


def plain_spectral_filter(y: torch.Tensor, f: torch.Tensor, c: torch.Tensor | None = None,
                          shape: tuple[int, int] | None = None) -> torch.Tensor:
    """The same map through plain autograd of ``torch.fft`` (the reference for tests and benchmarks).

    Examples
    --------
    >>> import torch
    >>> y = torch.randn(8, 8, dtype=torch.float64)
    >>> torch.allclose(plain_spectral_filter(y, 2 * torch.ones(8, 5, dtype=torch.float64)), 2 * y)
    True
    """
    shape = tuple(y.shape[-2:]) if shape is None else tuple(shape)
    m = f if c is None else c * f
    return torch.fft.irfft2(torch.fft.rfft2(y) * m, s=shape)
