"""Point-spread functions, normalised to unit sum.

Every constructor returns a ``float64`` :class:`torch.Tensor` of odd size
(centre at ``size // 2``, the :func:`scipy.ndimage.convolve` convention),
unless an explicit ``size`` says otherwise.

:func:`from_spec` builds any of them from a short text such as
``"gaussian:2"`` or ``"motion:9,30"`` (see :data:`SPEC_KINDS`), or reads a
PSF from an ``.npy``, ``.png`` or ``.tif`` file.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np
import torch

from ._validate import check_real, check_size

__all__ = ["gaussian", "motion", "disk", "airy", "shake", "from_array", "from_file", "from_spec",
           "parse_spec", "ParsedSpec", "check_psf", "SPEC_KINDS", "SPEC_FILE_EXTENSIONS"]


def check_psf(psf: Any, image_shape: tuple[int, ...] | None = None, normalize: bool = True) -> torch.Tensor:
    """Validate a PSF and return it as a float tensor (normalised to unit sum if asked).

    Raises a ``ValueError`` naming the problem for non-2-D, non-finite,
    zero-sum or too-large PSFs.

    Examples
    --------
    >>> check_psf([[1.0, 3.0]])
    tensor([[0.2500, 0.7500]], dtype=torch.float64)
    """
    if isinstance(psf, torch.Tensor):
        k = psf.detach()
    else:
        k = torch.as_tensor(np.asarray(psf))
    if k.is_complex():
        raise TypeError("psf must be real, got a complex array")
    if not k.is_floating_point():
        k = k.to(torch.float64)
    if k.dim() != 2:
        raise ValueError(f"psf must be a 2-D array, got {k.dim()}-D with shape {tuple(k.shape)}")
    if k.numel() == 0:
        raise ValueError("psf must not be empty")
    if not bool(torch.isfinite(k).all()):
        raise ValueError("psf contains non-finite values (nan or inf)")
    total = float(k.sum())
    if normalize:
        if total == 0.0:
            raise ValueError("psf sums to zero and cannot be normalised to unit sum")
        if total < 0.0:
            raise ValueError(f"psf sums to {total:.6g} < 0; a PSF is normalised to unit sum, which would "
                             "flip its sign: pass -psf if that is meant")
        k = k / total
    elif bool((k == 0).all()):
        raise ValueError("psf is identically zero")
    if image_shape is not None:
        if k.shape[0] > image_shape[-2] or k.shape[1] > image_shape[-1]:
            raise ValueError(
                f"psf of shape {tuple(k.shape)} is larger than the image {tuple(image_shape[-2:])}"
            )
    return k


def _odd(n: float) -> int:
    n = int(math.ceil(n))
    return n if n % 2 == 1 else n + 1


def _check_size(size: int | None, default: int, name: str = "size", oversample: int = 1) -> int:
    if size is None:
        size, name = default, f"{name} (default from the other arguments)"
    elif not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{name} must be a positive integer, got {size!r}")
    check_size((int(size) * oversample) ** 2, f"a {size}x{size} PSF", name)
    return int(size)


def _positive(value: float, name: str) -> float:
    value = check_real(value, name, finite=False)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _grid(size: int) -> torch.Tensor:
    return torch.arange(size, dtype=torch.float64) - size // 2


def gaussian(sigma: float, size: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian PSF with standard deviation ``sigma`` pixels.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels (> 0).
    size : int, optional
        Side length; default ``2 * ceil(3 * sigma) + 1``.

    Examples
    --------
    >>> k = gaussian(1.0)
    >>> k.shape, round(float(k.sum()), 12)
    (torch.Size([7, 7]), 1.0)
    """
    sigma = _positive(sigma, "sigma")
    size = _check_size(size, 2 * math.ceil(3 * sigma) + 1)
    r = _grid(size)
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return check_psf(torch.outer(g, g))


def motion(length: float, angle: float = 0.0, size: int | None = None) -> torch.Tensor:
    """Linear motion blur of ``length`` pixels at ``angle`` degrees (counter-clockwise from +x).

    The segment is rasterised by supersampling so fractional lengths and any
    angle give a smooth, unit-sum kernel.

    Examples
    --------
    >>> k = motion(5, 0)
    >>> k.shape, int((k.sum(0) > 0).sum())
    (torch.Size([5, 5]), 5)
    """
    length = _positive(length, "length")
    angle = check_real(angle, "angle")
    size = _check_size(size, _odd(length))
    n = max(64, check_size(int(16 * length), "a supersampled motion path", "length"))
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    th = math.radians(float(angle))
    xs = t * math.cos(th)
    ys = -t * math.sin(th)
    k = torch.zeros(size, size, dtype=torch.float64)
    c = size // 2
    # Bilinear splatting of the supersampled segment.
    for px, py in ((xs, ys),):
        x0 = torch.floor(px)
        y0 = torch.floor(py)
        fx, fy = px - x0, py - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                ix = (x0 + dx).long() + c
                iy = (y0 + dy).long() + c
                ok = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
                k.index_put_((iy[ok], ix[ok]), (wx * wy)[ok], accumulate=True)
    return check_psf(k)


def disk(radius: float, size: int | None = None) -> torch.Tensor:
    """Uniform disk (defocus) PSF of ``radius`` pixels, anti-aliased by 8x supersampling.

    Examples
    --------
    >>> k = disk(2.0)
    >>> k.shape
    torch.Size([5, 5])
    """
    radius = _positive(radius, "radius")
    size = _check_size(size, 2 * math.ceil(radius) + 1, oversample=8)
    ss = 8
    r = (torch.arange(size * ss, dtype=torch.float64) + 0.5) / ss - 0.5 - size // 2
    inside = (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2
    k = inside.to(torch.float64).reshape(size, ss, size, ss).mean(dim=(1, 3))
    return check_psf(k)


def airy(radius: float, size: int | None = None) -> torch.Tensor:
    """Airy pattern (diffraction-limited circular aperture).

    ``radius`` is the radius of the first dark ring in pixels:
    ``I(r) = (2 J1(v) / v)^2`` with ``v = 3.8317 r / radius``.

    Examples
    --------
    >>> k = airy(3.0)
    >>> bool(k[k.shape[0] // 2, k.shape[1] // 2] == k.max())
    True
    """
    from scipy.special import j1

    radius = _positive(radius, "radius")
    size = _check_size(size, 2 * math.ceil(3 * radius) + 1)
    r = _grid(size).numpy()
    rr = np.hypot(r[:, None], r[None, :])
    v = 3.8317059702075125 * rr / radius
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(v == 0, 1.0, (2 * j1(v) / np.where(v == 0, 1.0, v)) ** 2)
    return check_psf(torch.from_numpy(a))


def _shake_path(rng: np.random.Generator, n_steps: int, extent: float) -> np.ndarray:
    """(n_steps, 2) positions of a walk whose direction drifts and speed varies, spanning ``extent``."""
    v = rng.standard_normal(2)
    v /= np.linalg.norm(v)
    phase = rng.uniform(0, 2 * np.pi)
    pos = np.zeros((n_steps, 2))
    for k in range(1, n_steps):
        v = v + 0.08 * rng.standard_normal(2)  # the direction drifts slowly: a smooth curve
        v /= max(np.linalg.norm(v), 1e-12)
        pos[k] = pos[k - 1] + v * (0.3 + 0.7 * np.sin(0.01 * k + phase) ** 2)
    pos -= pos.mean(axis=0)
    span = np.abs(pos).max()
    return pos * (extent / (2 * span)) if span > 0 else pos


def shake(size: int, seed: int) -> torch.Tensor:
    """A synthetic camera-shake PSF: the exposure of a point along a random hand-held trajectory.

    The path is a random walk whose direction drifts slowly and whose speed
    varies (the kernel is brighter where the camera is slow), spanning 80 %
    of the kernel, splatted bilinearly on a 4x finer grid and averaged down.
    Kernels of this kind, thin and irregular, are described by no parametric
    family (Gaussian, disk, linear motion); the measured kernels of Levin et
    al. (2009) are the classic example. The four ``psfs/shake_*.npy`` kernels
    of :mod:`physinv.assets` are ``shake(15, 1000)``, ``shake(19, 1001)``,
    ``shake(23, 1002)`` and ``shake(27, 1003)``:
    draw training kernels from other seeds.

    Parameters
    ----------
    size : int
        Side length (odd, >= 3).
    seed : int
        Seed of the trajectory (same seed and size, same kernel, up to rounding
        across numpy versions).

    Examples
    --------
    >>> k = shake(15, seed=7)
    >>> k.shape, round(float(k.sum()), 12), bool((k >= 0).all())
    (torch.Size([15, 15]), 1.0, True)
    """
    size = _check_size(size, 15, oversample=4)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, got {size}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    sup = 4
    rng = np.random.default_rng(int(seed))
    fine = size * sup
    grid = np.zeros((fine, fine))
    pos = _shake_path(rng, 600, extent=0.8 * (size - 2)) * sup + (fine - 1) / 2
    i0 = np.floor(pos).astype(int)
    f = pos - i0
    for (di, dj), w in (((0, 0), (1 - f[:, 0]) * (1 - f[:, 1])), ((1, 0), f[:, 0] * (1 - f[:, 1])),
                        ((0, 1), (1 - f[:, 0]) * f[:, 1]), ((1, 1), f[:, 0] * f[:, 1])):
        rows, cols = np.clip(i0[:, 0] + di, 0, fine - 1), np.clip(i0[:, 1] + dj, 0, fine - 1)
        np.add.at(grid, (rows, cols), w)  # equal exposure per time step
    k = grid.reshape(size, sup, size, sup).sum(axis=(1, 3))
    return check_psf(torch.from_numpy(k / k.sum()), normalize=False)


def from_array(a: Any) -> torch.Tensor:
    """A user PSF (numpy or torch, 2-D, finite, non-zero sum) normalised to unit sum.

    Examples
    --------
    >>> from_array([[0.0, 2.0, 0.0], [0.0, 2.0, 0.0]])
    tensor([[0.0000, 0.5000, 0.0000],
            [0.0000, 0.5000, 0.0000]], dtype=torch.float64)
    """
    return check_psf(a)


# ----------------------------------------------------------------- text specs
#: The PSF kinds :func:`from_spec` understands: kind -> ``(syntax, meaning)``.
#: Parameters are in pixels (angles in degrees); ``SIZE`` is the side length of
#: the kernel and defaults as in the constructor of the same name.
SPEC_KINDS: dict[str, tuple[str, str]] = {
    "gaussian": ("gaussian:SIGMA[,SIZE]", "isotropic Gaussian, standard deviation SIGMA (see gaussian)"),
    "motion": ("motion:LENGTH[,ANGLE_DEG[,SIZE]]",
               "linear motion of LENGTH pixels at ANGLE_DEG degrees counter-clockwise from +x, "
               "default 0 (see motion)"),
    "disk": ("disk:RADIUS[,SIZE]", "uniform disk (defocus) of RADIUS (see disk)"),
    "airy": ("airy:RADIUS[,SIZE]", "Airy pattern, first dark ring at RADIUS (see airy)"),
}

#: File types :func:`from_spec` and :func:`from_file` read.
SPEC_FILE_EXTENSIONS: tuple[str, ...] = (".npy", ".png", ".tif", ".tiff")

# kind -> (constructor, names of its float parameters, number of required ones, default side length)
_SPEC_PARAMS: dict[str, tuple[Any, tuple[str, ...], int, Any]] = {
    "gaussian": (gaussian, ("SIGMA",), 1, lambda sigma: 2 * math.ceil(3 * sigma) + 1),
    "motion": (motion, ("LENGTH", "ANGLE_DEG"), 1, lambda length, angle=0.0: _odd(length)),
    "disk": (disk, ("RADIUS",), 1, lambda radius: 2 * math.ceil(radius) + 1),
    "airy": (airy, ("RADIUS",), 1, lambda radius: 2 * math.ceil(3 * radius) + 1),
}


def _spec_help() -> str:
    forms = ", ".join(syntax for syntax, _ in SPEC_KINDS.values())
    return f"expected one of {forms}, or the path of an existing {'/'.join(SPEC_FILE_EXTENSIONS)} file"


def from_file(path: str | os.PathLike) -> torch.Tensor:
    """Read a PSF from a ``.npy``, ``.png`` or ``.tif``/``.tiff`` file, normalised to unit sum.

    NPY files are read without pickling; PNG through scikit-image; TIFF
    through tifffile (integer or float samples).  A colour image is accepted
    only when its red, green and blue channels are equal (a grey picture
    stored as RGB); alpha is dropped.  The array then goes through
    :func:`check_psf`, so it must be 2-D, finite, and have a non-zero sum.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    torch.Tensor
        ``float64`` kernel with unit sum.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not an existing file.
    ValueError
        For an unsupported extension, an unreadable file, or a kernel that
        fails :func:`check_psf`; the message names the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "k.npy")
    >>> np.save(p, np.array([[1.0, 3.0]]))
    >>> from_file(p)
    tensor([[0.2500, 0.7500]], dtype=torch.float64)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"psf file {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext not in SPEC_FILE_EXTENSIONS:
        raise ValueError(f"psf file {path!r}: unsupported extension {ext!r}; "
                         f"expected one of {', '.join(SPEC_FILE_EXTENSIONS)}")
    try:
        if ext == ".npy":
            a = np.load(path, allow_pickle=False)
        elif ext in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        else:
            import skimage.io

            a = skimage.io.imread(path)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"psf file {path!r} cannot be read: {type(e).__name__}: {e}") from e
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        rgb = a[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise ValueError(f"psf file {path!r} is a colour image with differing channels, shape "
                             f"{a.shape}; a PSF must be grey (save it as one channel)")
        a = rgb[..., 0]
    if a.dtype == bool or np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)  # normalise in float64, whatever the file stores
    try:
        return check_psf(a)
    except (TypeError, ValueError) as e:
        raise ValueError(f"psf file {path!r}: {e}") from e


def _parse_number(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"psf spec {spec!r}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"psf spec {spec!r}: {what} must be finite, got {text!r}")
    return value


def _parse_size(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"psf spec {spec!r}: SIZE must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"psf spec {spec!r}: SIZE must be a positive integer, got {text!r}")
    return value


class ParsedSpec(NamedTuple):
    """A PSF spec taken apart by :func:`parse_spec` (nothing built, nothing read yet)."""

    #: One of :data:`SPEC_KINDS`, or ``"file"``.
    kind: str
    #: The numeric parameters in the order of the constructor (empty for a file).
    params: tuple[float, ...]
    #: The explicit ``SIZE``, or ``None`` for the constructor's default.
    size: int | None
    #: The file path when ``kind == "file"``, else ``None``.
    path: str | None

    def default_side(self) -> int | None:
        """Side length of the kernel the spec builds (``None`` for a file: known once read)."""
        if self.kind == "file":
            return None
        if self.size is not None:
            return self.size
        return _SPEC_PARAMS[self.kind][3](*self.params)


def parse_spec(spec: str | os.PathLike) -> ParsedSpec:
    """Check a PSF spec and take it apart without building the kernel.

    Accepts exactly what :func:`from_spec` accepts and raises the same
    errors for malformed text, so it is cheap enough to validate user input
    (a command-line flag) before any large array is allocated.  A file is
    only checked to exist and to have a supported extension.

    Parameters
    ----------
    spec : str or os.PathLike
        See :func:`from_spec`.

    Returns
    -------
    ParsedSpec

    Raises
    ------
    ValueError
        For an unknown kind, a missing, extra, malformed or non-positive
        parameter, or a file of an unsupported type.
    TypeError
        If ``spec`` is not a string or path.

    Examples
    --------
    >>> parse_spec("motion:9,30")
    ParsedSpec(kind='motion', params=(9.0, 30.0), size=None, path=None)
    >>> parse_spec("gaussian:2,15").default_side()
    15
    >>> parse_spec("disk:-1")
    Traceback (most recent call last):
        ...
    ValueError: psf spec 'disk:-1': RADIUS must be > 0, got -1.0; expected disk:RADIUS[,SIZE]
    """
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and os.path.isfile(spec)):
        path = os.fspath(spec)
        if not os.path.isfile(path):
            raise ValueError(f"psf spec {path!r}: no such file")
        ext = os.path.splitext(path)[1].lower()
        if ext not in SPEC_FILE_EXTENSIONS:
            raise ValueError(f"psf spec {path!r}: unsupported file extension {ext!r}; "
                             f"expected one of {', '.join(SPEC_FILE_EXTENSIONS)}")
        return ParsedSpec("file", (), None, path)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str such as 'gaussian:2' or a file path, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ValueError(f"psf spec is empty; {_spec_help()}")
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in _SPEC_PARAMS:
        if not colon and (os.sep in text or "/" in text or os.path.splitext(text)[1]):
            raise ValueError(f"psf spec {spec!r}: no such file, and not a PSF kind; {_spec_help()}")
        raise ValueError(f"psf spec {spec!r}: unknown kind {kind!r}; {_spec_help()}")
    _build, names, required, _side = _SPEC_PARAMS[kind]
    syntax = SPEC_KINDS[kind][0]
    parts = [p.strip() for p in rest.split(",")] if rest.strip() else []
    if len(parts) < required:
        raise ValueError(f"psf spec {spec!r}: {kind} needs {', '.join(names[:required])}; "
                         f"expected {syntax}")
    if any(p == "" for p in parts):
        raise ValueError(f"psf spec {spec!r}: empty parameter; expected {syntax}")
    if len(parts) > len(names) + 1:
        raise ValueError(f"psf spec {spec!r}: too many parameters ({len(parts)}); expected {syntax}")
    params = tuple(_parse_number(p, n, spec) for p, n in zip(parts, names))
    if params[0] <= 0:
        raise ValueError(f"psf spec {spec!r}: {names[0]} must be > 0, got {params[0]}; expected {syntax}")
    size = _parse_size(parts[len(names)], spec) if len(parts) > len(names) else None
    return ParsedSpec(kind, params, size, None)


def from_spec(spec: str | os.PathLike, max_size: int | None = None) -> torch.Tensor:
    """A PSF from a short text spec or a file path, normalised to unit sum.

    Parameters
    ----------
    spec : str or os.PathLike
        Either ``KIND:P1[,P2...]`` with a kind of :data:`SPEC_KINDS`:

        ==================================== ==============================================
        ``gaussian:SIGMA[,SIZE]``            :func:`gaussian` ``(SIGMA, size=SIZE)``
        ``motion:LENGTH[,ANGLE_DEG[,SIZE]]`` :func:`motion` ``(LENGTH, ANGLE_DEG, size=SIZE)``
        ``disk:RADIUS[,SIZE]``               :func:`disk` ``(RADIUS, size=SIZE)``
        ``airy:RADIUS[,SIZE]``               :func:`airy` ``(RADIUS, size=SIZE)``
        ==================================== ==============================================

        or the path of an existing ``.npy``, ``.png``, ``.tif``/``.tiff``
        file (read by :func:`from_file`).  An existing file always wins over
        the ``KIND:`` reading.  Kinds are case-insensitive; spaces around
        the parts are ignored.
    max_size : int, optional
        Refuse, before building it, a kernel whose side would exceed
        ``max_size`` pixels (e.g. the image size; guards against a typo
        such as ``gaussian:2000`` allocating gigabytes).

    Returns
    -------
    torch.Tensor
        ``float64`` kernel with unit sum, exactly what the constructor (or
        :func:`from_file`) returns.

    Raises
    ------
    ValueError
        For an unknown kind, a missing, extra, malformed or non-positive
        parameter (see :func:`parse_spec`), or a kernel larger than
        ``max_size``; the message quotes the spec and lists the accepted forms.
    TypeError
        If ``spec`` is not a string or path.

    Examples
    --------
    >>> k = from_spec("gaussian:1.5")
    >>> torch.equal(k, gaussian(1.5)), round(float(k.sum()), 12)
    (True, 1.0)
    >>> from_spec("motion:9,30,11").shape
    torch.Size([11, 11])
    >>> from_spec("box:3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: psf spec 'box:3': unknown kind 'box'; expected one of gaussian:SIGMA[,SIZE], ...
    """
    if max_size is not None:
        max_size = _check_size(max_size, 0, "max_size")
    parsed = parse_spec(spec)
    if parsed.kind == "file":
        k = from_file(parsed.path)  # type: ignore[arg-type]
        if max_size is not None and max(k.shape) > max_size:
            raise ValueError(f"psf spec {parsed.path!r}: the kernel in the file has shape "
                             f"{tuple(k.shape)}, larger than max_size={max_size}")
        return k
    build = _SPEC_PARAMS[parsed.kind][0]
    syntax = SPEC_KINDS[parsed.kind][0]
    side = parsed.default_side()
    if max_size is not None and side is not None and side > max_size:
        raise ValueError(f"psf spec {spec!r}: the kernel would be {side} x {side} pixels, larger than "
                         f"max_size={max_size}; use a smaller parameter or give SIZE ({syntax})")
    try:
        return build(*parsed.params, size=parsed.size)
    except ValueError as e:  # pragma: no cover - parse_spec already checks what the constructors check
        raise ValueError(f"psf spec {spec!r}: {e}; expected {syntax}") from e
