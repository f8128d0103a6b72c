"""The exact line-integral weights of the parallel-beam Radon transform of a bilinear image.

The image is read as its bilinear interpolant ``f(x, y) = sum_p x_p
tent(x - x_p) tent(y - y_p)`` and each detector value is the *exact* line
integral of ``f``. The line integral of one pixel's tent at angle ``theta``
is the convolution ``K_theta = tent_{|cos theta|} * tent_{|sin theta|}`` of
two unit-area tents with half widths ``|cos theta|`` and ``|sin theta|`` (a
piecewise cubic of half width at most ``sqrt 2``), so

    ``y[a, k] = sum_p x_p K_theta_a(t_k - t_p(theta_a))``.

This is the model that scikit-image's rotate-and-sum approximates by
unit-step sampling along each ray; here the integral is exact, which removes
the angle-dependent moire of that sampling (and of pixel-driven projectors).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_parameters", "kernel_weights"]


def kernel_parameters(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-angle constants ``(a, b, c, half)`` of :func:`kernel_weights` (float64).

    ``a >= b`` are the tents' half widths ``max`` and ``min`` of
    ``|cos theta|, |sin theta|`` (``b`` set to 0 within 1e-9 of an axis,
    where ``K`` is the tent itself), ``c = 1 / (6 a^2 b^2)`` (0 where
    ``b = 0``) and ``half = a + b`` the half width of ``K``'s support.

    Parameters
    ----------
    angles : numpy.ndarray
        Angles in degrees.

    Examples
    --------
    >>> a, b, c, half = kernel_parameters(np.array([0.0, 45.0]))
    >>> np.round(a, 4).tolist(), np.round(b, 4).tolist(), np.round(half, 4).tolist()
    ([1.0, 0.7071], [0.0, 0.7071], [1.0, 1.4142])
    """
    th = np.deg2rad(np.asarray(angles, dtype=np.float64))
    cos_t, sin_t = np.abs(np.cos(th)), np.abs(np.sin(th))
    a = np.maximum(cos_t, sin_t)
    b = np.minimum(cos_t, sin_t)
    half = a + b
    b = np.where(b < 1e-9, 0.0, b)  # K is the tent itself on the axes
    c = np.where(b > 0, 1.0 / (6.0 * np.where(b > 0, b, 1.0) ** 2), 0.0) / a**2
    return a, b, c, half


def kernel_weights(d: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``K(d) = tent_a * tent_b`` (unit-area tents, half widths ``a >= b``), written stably.

    ``tent_a`` is a sum of three ramps; a ramp convolved with ``tent_b``
    differs from the ramp only within ``b`` of its kink, by
    ``q(tau) = (b - |tau|)_+^3 / (6 b^2)``. Hence
    ``K = tent_a + (q(d + a) - 2 q(d) + q(d - a)) / a^2``, free of the
    cancellation of the textbook truncated-power formula when ``b`` is small.

    Parameters
    ----------
    d : numpy.ndarray
        Offsets from the pixel's projected centre, in detector bins.
    a, b, c : numpy.ndarray
        From :func:`kernel_parameters`; all four arrays broadcast. The
        builder passes float32 arrays and gets float32 weights.

    Returns
    -------
    numpy.ndarray
        The weights, non-negative, of unit integral in ``d``.

    Examples
    --------
    At 0 degrees ``K`` is the unit tent:

    >>> kernel_weights(np.array([0.0, 0.5, 1.0]), np.array(1.0), np.array(0.0), np.array(0.0))
    array([1. , 0.5, 0. ])

    At 45 degrees it is the convolution of two tents of half width
    ``1/sqrt 2``, of unit area:

    >>> a, b, c, _ = kernel_parameters(np.array([45.0]))
    >>> t = np.linspace(-1.5, 1.5, 30001)
    >>> round(float(kernel_weights(t, a, b, c).sum() * (t[1] - t[0])), 6)
    1.0
    """
    inv_a = 1.0 / a
    ad = np.abs(d)
    out = ad * inv_a
    np.subtract(1.0, out, out=out)
    np.maximum(out, 0.0, out=out)
    out *= inv_a
    for shift, sign in ((a, 1.0), (-a, 1.0), (None, -2.0)):
        if shift is None:
            t = np.subtract(b, ad)
        else:
            t = d + shift
            np.abs(t, out=t)
            np.subtract(b, t, out=t)
        np.maximum(t, 0.0, out=t)
        r = t * t
        r *= t
        r *= c if sign == 1.0 else -2.0 * c
        out += r
    return out
