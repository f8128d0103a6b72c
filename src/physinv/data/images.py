"""Offline image sources: bundled pictures, phantoms, user files, patches and splits.

Every function here returns numpy ``float64`` arrays with values in ``[0, 1]``
(grayscale, 2-D) and never touches the network.  Randomness takes a ``seed``;
the same seed gives the same images.
"""

from __future__ import annotations

import glob
import hashlib
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .._validate import check_size

__all__ = [
    "SKIMAGE_IMAGES",
    "available_skimage_images",
    "skimage_images",
    "skimage_image",
    "shepp_logan",
    "random_phantom",
    "random_ellipses",
    "inscribed_disc",
    "textured_phantoms",
    "Phantoms",
    "Patches",
    "random_patches",
    "load_image",
    "load_images",
    "load_h5_images",
    "to_gray_float",
    "split_sources",
]

#: scikit-image pictures physinv knows, with the file each one is read from.
#: Only those whose file ships inside the installed scikit-image are offered
#: (see :func:`available_skimage_images`); nothing is ever downloaded.
SKIMAGE_IMAGES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "checkerboard": "chessboard_GRAY.png",
    "clock": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "colorwheel": "color.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "horse": "horse.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "logo": "logo.png",
    "microaneurysms": "microaneurysms.png",
    "moon": "moon.png",
    "page": "page.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}

_IMAGE_EXTS = (".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg", ".bmp")


def _check_seed(seed: Any) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or int(seed) < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_hw(shape: Any, name: str = "shape") -> tuple[int, int]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape), int(shape))
    if (not isinstance(shape, Sequence) or len(shape) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                       for s in shape)):
        raise ValueError(f"{name} must be an int or a pair of positive ints (H, W), got {shape!r}")
    check_size(int(shape[0]) * int(shape[1]), f"an image of shape {tuple(int(s) for s in shape)}", name)
    return int(shape[0]), int(shape[1])


def _rng(seed: int, index: int | None = None) -> np.random.Generator:
    entropy = [seed] if index is None else [seed, index]
    return np.random.default_rng(np.random.SeedSequence(entropy))


# ------------------------------------------------------------------ conversions
def to_gray_float(image: Any, name: str = "image") -> np.ndarray:
    """Convert an image array to a 2-D ``float64`` grayscale array.

    Integer images are scaled by the maximum of their dtype (``uint8`` by
    255, ``uint16`` by 65535; signed integers must be non-negative), booleans
    become 0/1, float images are kept as they are (they must be finite).  RGB(A) images ``(H, W, 3|4)`` are
    converted with the ITU-R 601 luma weights (alpha is dropped, not blended).

    Examples
    --------
    >>> import numpy as np
    >>> to_gray_float(np.array([[0, 255]], dtype=np.uint8))
    array([[0., 1.]])
    >>> to_gray_float(np.array([[0, 65535]], dtype=np.uint16))
    array([[0., 1.]])
    """
    a = np.asarray(image)
    if a.dtype == bool:
        a = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if info.min < 0 and a.size and a.min() < 0:
            raise ValueError(f"{name}: signed integer image with negative values (min {a.min()}); "
                             "rescale it to [0, 1] floats yourself")
        a = a.astype(np.float64) / float(info.max)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    else:
        raise TypeError(f"{name}: expected a real numeric image, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D grayscale or (H, W, 3|4) colour image, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: image contains non-finite values")
    return a


# ------------------------------------------------------------ scikit-image data
def available_skimage_images() -> list[str]:
    """Names of the scikit-image pictures whose files ship with the installed package.

    Examples
    --------
    >>> "camera" in available_skimage_images()
    True
    """
    import skimage.data

    root = skimage.data.data_dir
    return sorted(n for n, f in SKIMAGE_IMAGES.items() if os.path.isfile(os.path.join(root, f)))


def skimage_images(names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Load bundled scikit-image pictures as grayscale ``float64`` arrays in ``[0, 1]``.

    Parameters
    ----------
    names : iterable of str, optional
        Which pictures (default: all of :func:`available_skimage_images`).
        Asking for one that is not installed locally is an error, never a
        download.

    Returns
    -------
    dict of str to numpy.ndarray

    Examples
    --------
    >>> ims = skimage_images(["camera", "moon"])
    >>> ims["camera"].shape, float(ims["moon"].max()) <= 1.0
    ((512, 512), True)
    """
    import skimage.data
    import skimage.io

    available = available_skimage_images()
    names = available if names is None else list(names)
    out = {}
    for n in names:
        if n not in SKIMAGE_IMAGES:
            raise ValueError(f"names: unknown scikit-image picture {n!r}; known: {sorted(SKIMAGE_IMAGES)}")
        if n not in available:
            raise ValueError(f"names: scikit-image picture {n!r} is not bundled with the installed "
                             f"scikit-image (it would need a download); available: {available}")
        path = os.path.join(skimage.data.data_dir, SKIMAGE_IMAGES[n])
        out[n] = to_gray_float(skimage.io.imread(path), name=n)
    return out


def skimage_image(name: str, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """One bundled scikit-image picture as a grey ``float64`` image in ``[0, 1]``, optionally resized.

    The picture is read from the files that ship with the installed
    scikit-image (never downloaded) and converted like
    :func:`skimage_images`.  Resizing uses :func:`skimage.transform.resize`
    with anti-aliasing; the result is clipped to ``[0, 1]``.

    Parameters
    ----------
    name : str
        A name from :func:`available_skimage_images`, e.g. ``"camera"``.
    size : int or (int, int), optional
        Output size: ``n`` for ``n x n`` or ``(H, W)``.  ``None`` keeps the
        original size.

    Returns
    -------
    numpy.ndarray
        2-D ``float64`` array with values in ``[0, 1]``.

    Raises
    ------
    ValueError
        For an unknown or not-bundled ``name``, or a ``size`` that is not a
        positive int or a pair of positive ints.
    TypeError
        If ``name`` is not a string.

    Examples
    --------
    >>> img = skimage_image("camera", size=64)
    >>> img.shape, img.dtype, 0.0 <= float(img.min()) <= float(img.max()) <= 1.0
    ((64, 64), dtype('float64'), True)
    >>> skimage_image("astronaut", size=(32, 48)).shape
    (32, 48)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a scikit-image picture, got {type(name).__name__}")
    hw = None if size is None else _check_hw(size, "size")
    if name not in SKIMAGE_IMAGES:
        raise ValueError(f"name: unknown scikit-image picture {name!r}; "
                         f"available: {available_skimage_images()}")
    img = skimage_images([name])[name]
    if hw is not None and hw != img.shape:
        from skimage import transform

        img = transform.resize(img, hw, anti_aliasing=True)
    return np.clip(img, 0.0, 1.0)


# -------------------------------------------------------------------- phantoms
# Modified Shepp-Logan ellipses (Toft): intensity, semi-axes a, b, centre x0, y0, angle (degrees).
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in ``[-1, 1]``: ``u`` to the right, ``v`` upwards."""
    H, W = shape
    v = 1.0 - (2.0 * np.arange(H) + 1.0) / H
    u = (2.0 * np.arange(W) + 1.0) / W - 1.0
    return np.meshgrid(u, v, indexing="xy")


def _rotated(u, v, x0, y0, angle):
    c, s = math.cos(angle), math.sin(angle)
    du, dv = u - x0, v - y0
    return c * du + s * dv, -s * du + c * dv


def shepp_logan(shape: Any = 256) -> np.ndarray:
    """The modified Shepp–Logan head phantom, computed analytically at any size.

    Values lie in ``[0, 1]`` (skull 1, brain 0.2, small features 0.3-0.4).

    Parameters
    ----------
    shape : int or (int, int)
        Image size ``(H, W)``; the phantom fills ``[-1, 1]^2``.

    Examples
    --------
    >>> p = shepp_logan(64)
    >>> p.shape, float(p.min()), float(p.max())
    ((64, 64), 0.0, 1.0)
    """
    shape = _check_hw(shape)
    u, v = _grid(shape)
    img = np.zeros(shape)
    for val, a, b, x0, y0, deg in _SHEPP_LOGAN:
        ru, rv = _rotated(u, v, x0, y0, math.radians(deg))
        img[(ru / a) ** 2 + (rv / b) ** 2 <= 1.0] += val
    # the overlapping ellipses add up to exact multiples of 0.1; remove float residue
    return np.clip(np.round(img, 12), 0.0, 1.0)


def _shape_mask(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    kind = rng.integers(3)
    x0, y0 = rng.uniform(-0.8, 0.8, size=2)
    angle = rng.uniform(0, math.pi)
    ru, rv = _rotated(u, v, x0, y0, angle)
    a, b = rng.uniform(0.05, 0.5, size=2)
    if kind == 0:  # ellipse
        return (ru / a) ** 2 + (rv / b) ** 2 <= 1.0
    if kind == 1:  # rectangle
        return (np.abs(ru) <= a) & (np.abs(rv) <= b)
    # triangle: three random vertices around the centre, half-plane tests
    t = np.sort(rng.uniform(0, 2 * math.pi, size=3))
    r = rng.uniform(0.1, 0.6, size=3)
    px, py = r * np.cos(t), r * np.sin(t)  # counter-clockwise
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        ax, ay, bx, by = px[k], py[k], px[(k + 1) % 3], py[(k + 1) % 3]
        inside &= (bx - ax) * (rv - ay) - (by - ay) * (ru - ax) >= 0
    return inside


def random_phantom(shape: Any = 128, kind: str = "piecewise_constant", seed: int = 0,
                   n_shapes: tuple[int, int] = (4, 12)) -> np.ndarray:
    """A random phantom of overlapping ellipses, rectangles and triangles.

    Parameters
    ----------
    shape : int or (int, int)
        Image size.
    kind : {"piecewise_constant", "piecewise_smooth"}
        ``piecewise_constant``: every shape has one intensity.
        ``piecewise_smooth``: every shape (and the background) has an intensity
        plus a smooth field (a linear ramp and a low-frequency cosine) whose
        amplitude keeps the values inside ``[0, 1]``; edges stay sharp.
    seed : int
        Seed; the same seed gives the same phantom.
    n_shapes : (int, int)
        Inclusive range of the number of shapes drawn.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of the given shape with values in ``[0, 1]``.

    Examples
    --------
    >>> p = random_phantom(32, seed=3)
    >>> p.shape, bool((p >= 0).all() and (p <= 1).all())
    ((32, 32), True)
    >>> bool((random_phantom(32, seed=3) == p).all())
    True
    """
    shape = _check_hw(shape)
    if kind not in ("piecewise_constant", "piecewise_smooth"):
        raise ValueError(f"kind must be 'piecewise_constant' or 'piecewise_smooth', got {kind!r}")
    lo, hi = n_shapes
    if not (1 <= lo <= hi):
        raise ValueError(f"n_shapes must be (low, high) with 1 <= low <= high, got {n_shapes!r}")
    rng = _rng(_check_seed(seed))
    u, v = _grid(shape)

    def field(value: float) -> np.ndarray | float:
        if kind == "piecewise_constant":
            return value
        margin = 0.95 * min(value, 1.0 - value)
        share = rng.uniform(0, 1)
        g = rng.normal(size=2)
        g = g / max(np.linalg.norm(g), 1e-12)
        freq = rng.uniform(0.5, 3.0, size=2)
        phase = rng.uniform(0, 2 * math.pi)
        ramp = (g[0] * u + g[1] * v) / math.sqrt(2.0)  # in [-1, 1]
        wave = np.cos(math.pi * (freq[0] * u + freq[1] * v) + phase)
        return value + margin * (share * ramp + (1 - share) * wave)

    img = np.broadcast_to(np.asarray(field(rng.uniform(0.0, 0.3)), dtype=np.float64), shape).copy()
    for _ in range(int(rng.integers(lo, hi + 1))):
        mask = _shape_mask(rng, u, v)
        f = field(rng.uniform(0.05, 1.0))
        img[mask] = f[mask] if isinstance(f, np.ndarray) else f
    return np.clip(img, 0.0, 1.0)  # no-op up to rounding: every field stays within [0, 1]


def inscribed_disc(shape: Any) -> np.ndarray:
    """Boolean mask of the disc every projection angle of a parallel-beam scan sees.

    The disc has radius ``min(H, W) // 2`` around pixel ``(H // 2, W // 2)``
    (row, column); for square images it is the mask of
    :meth:`physinv.operators.Radon.circle_mask` (and of scikit-image's
    ``radon(..., circle=True)``).

    Examples
    --------
    >>> inscribed_disc(4).astype(int)
    array([[0, 0, 1, 0],
           [0, 1, 1, 1],
           [1, 1, 1, 1],
           [0, 1, 1, 1]])
    """
    H, W = _check_hw(shape)
    r = min(H, W) // 2
    yy, xx = np.ogrid[:H, :W]
    return (yy - H // 2) ** 2 + (xx - W // 2) ** 2 <= r * r


def random_ellipses(size: Any = 128, seed: int = 0, n_ellipses: int = 70) -> np.ndarray:
    """A random phantom of overlapping ellipses with signed intensities, for CT learning curves.

    Modelled on the random-ellipse images used for learned CT reconstruction
    (Adler and Oektem, "Learned Primal-Dual Reconstruction", arXiv
    1707.06474; Baguer, Leuschner and Schmidt, "Computed tomography
    reconstruction using deep image prior and learned reconstruction
    methods", arXiv 2003.04989), drawn here with physinv's own generator:

    - the number of ellipses is a Poisson draw of mean ``n_ellipses``, kept
      within ``[1, n_ellipses]``;
    - each ellipse has a centre uniform in ``[-0.9, 0.9]^2`` (the image
      spans ``[-1, 1]^2``), semi-axes ``0.2 x`` an exponential draw of mean 1
      (in the same units), an angle uniform in ``[0, pi)`` and an intensity
      uniform in ``[-0.4, 1]``;
    - the ellipses' indicator functions times their intensities are added
      up; the sum is **clipped at 0** (negative ellipses carve holes, they do
      not make negative values), set to zero outside the inscribed disc
      (:func:`inscribed_disc`) and **divided by its maximum**, so the result
      lies in ``[0, 1]`` and its maximum is exactly 1.

    A draw that is zero everywhere inside the disc (all ellipses negative,
    outside the disc or thinner than a pixel) is replaced by the next draw of
    the same random stream, so the result is still a function of ``seed``
    alone.

    Parameters
    ----------
    size : int or (int, int)
        Image size: ``n`` for ``n x n`` or ``(H, W)``.
    seed : int
        Non-negative seed; the same seed gives the same phantom.
    n_ellipses : int
        Mean, and upper bound, of the number of ellipses (>= 1).

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape ``(H, W)``, values in ``[0, 1]``, zero
        outside the inscribed disc.

    Raises
    ------
    ValueError
        For a bad ``size`` or ``n_ellipses``, or if 1000 draws in a row are
        empty inside the disc (only possible for images of very few pixels).
    TypeError
        For a ``seed`` that is not a non-negative int.

    Examples
    --------
    >>> x = random_ellipses(64, seed=3)
    >>> x.shape, x.dtype, float(x.min()), float(x.max())
    ((64, 64), dtype('float64'), 0.0, 1.0)
    >>> bool((x[~inscribed_disc(64)] == 0).all())
    True
    >>> bool((random_ellipses(64, seed=3) == x).all())
    True
    """
    shape = _check_hw(size, "size")
    if (not isinstance(n_ellipses, numbers.Integral) or isinstance(n_ellipses, bool)
            or not 1 <= n_ellipses <= 10_000):
        raise ValueError(f"n_ellipses must be an int in [1, 10000], got {n_ellipses!r}")
    rng = _rng(_check_seed(seed))
    u, v = _grid(shape)
    disc = inscribed_disc(shape)
    for _ in range(1000):
        k = int(min(max(rng.poisson(n_ellipses), 1), n_ellipses))
        value = rng.uniform(-0.4, 1.0, size=k)
        axes = np.maximum(0.2 * rng.exponential(1.0, size=(k, 2)), 1e-9)
        centre = rng.uniform(-0.9, 0.9, size=(k, 2))
        angle = rng.uniform(0.0, math.pi, size=k)
        img = np.zeros(shape)
        for j in range(k):
            ru, rv = _rotated(u, v, centre[j, 0], centre[j, 1], angle[j])
            img[(ru / axes[j, 0]) ** 2 + (rv / axes[j, 1]) ** 2 <= 1.0] += value[j]
        img = np.where(disc, np.maximum(img, 0.0), 0.0)
        top = float(img.max())
        if top > 0.0:
            return img / top
    raise ValueError(f"size: 1000 random-ellipse draws were empty inside the disc of a {shape} image "
                     "(too few pixels)")


class Phantoms(Sequence):
    """A lazy, indexable set of ``n`` phantoms; item ``i`` depends only on ``(seed, i)``.

    Parameters
    ----------
    n : int
        Number of images.
    shape : int or (int, int)
        Image size.
    kind : {"piecewise_constant", "piecewise_smooth", "shepp_logan"}
        ``shepp_logan`` gives the same phantom for every index.
    seed : int
        Base seed.

    Examples
    --------
    >>> ph = Phantoms(3, 16, seed=1)
    >>> len(ph), ph[2].shape
    (3, (16, 16))
    >>> bool((ph[1] == Phantoms(3, 16, seed=1)[1]).all())
    True
    """

    def __init__(self, n: int, shape: Any = 128, kind: str = "piecewise_constant", seed: int = 0) -> None:
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if kind not in ("piecewise_constant", "piecewise_smooth", "shepp_logan"):
            raise ValueError("kind must be 'piecewise_constant', 'piecewise_smooth' or 'shepp_logan', "
                             f"got {kind!r}")
        self.n, self.shape, self.kind, self.seed = int(n), _check_hw(shape), kind, _check_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        i = _index(i, self.n)
        if self.kind == "shepp_logan":
            return shepp_logan(self.shape)
        seed = int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0])
        return random_phantom(self.shape, self.kind, seed=seed)

    def __repr__(self) -> str:
        return f"Phantoms(n={self.n}, shape={self.shape}, kind={self.kind!r}, seed={self.seed})"


def _index(i: Any, n: int) -> int:
    if not isinstance(i, numbers.Integral) or isinstance(i, bool):
        raise TypeError(f"index must be an int, got {type(i).__name__}")
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} out of range for {n} items")
    return i % n


class Patches(Sequence):
    """A lazy set of ``n`` random patches cut from a list of source images.

    Patch ``i`` depends only on ``(seed, i)``: the source image is chosen
    with probability proportional to its number of valid patch positions,
    then a uniformly random position.

    Parameters
    ----------
    sources : sequence of 2-D arrays, or a dict of them
        Source images (each at least ``size`` in both dimensions).
    size : int or (int, int)
        Patch size ``(h, w)``.
    n : int
        Number of patches.
    seed : int
        Base seed.

    Examples
    --------
    >>> import numpy as np
    >>> src = [np.arange(100.0).reshape(10, 10) / 99]
    >>> p = Patches(src, 4, n=5, seed=0)
    >>> len(p), p[0].shape
    (5, (4, 4))
    """

    def __init__(self, sources: Any, size: Any, n: int, seed: int = 0) -> None:
        if isinstance(sources, Mapping):
            sources = list(sources.values())
        if isinstance(sources, np.ndarray) and sources.ndim == 2:
            sources = [sources]
        self.sources = [to_gray_float(s, name=f"sources[{k}]") for k, s in enumerate(sources)]
        if not self.sources:
            raise ValueError("sources must contain at least one image")
        self.size = _check_hw(size, "size")
        h, w = self.size
        for k, s in enumerate(self.sources):
            if s.shape[0] < h or s.shape[1] < w:
                raise ValueError(f"sources[{k}] has shape {s.shape}, smaller than the patch size {self.size}")
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        self.n, self.seed = int(n), _check_seed(seed)
        counts = np.array([(s.shape[0] - h + 1) * (s.shape[1] - w + 1) for s in self.sources], float)
        self._p = counts / counts.sum()

    def __len__(self) -> int:
        return self.n

    def source_of(self, i: int) -> tuple[int, int, int]:
        """``(source index, row, column)`` of patch ``i``."""
        rng = _rng(self.seed, _index(i, self.n))
        k = int(rng.choice(len(self.sources), p=self._p))
        s = self.sources[k]
        r = int(rng.integers(s.shape[0] - self.size[0] + 1))
        c = int(rng.integers(s.shape[1] - self.size[1] + 1))
        return k, r, c

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        k, r, c = self.source_of(i)
        return self.sources[k][r:r + self.size[0], c:c + self.size[1]].copy()

    def __repr__(self) -> str:
        return f"Patches({len(self.sources)} sources, size={self.size}, n={self.n}, seed={self.seed})"


def random_patches(sources: Any, size: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random patches from ``sources`` as one ``(n, h, w)`` array (see :class:`Patches`).

    Examples
    --------
    >>> random_patches([shepp_logan(64)], 16, n=8, seed=0).shape
    (8, 16, 16)
    """
    p = Patches(sources, size, n, seed)
    check_size(int(n) * p.size[0] * p.size[1], f"{n} patches of shape {p.size}", "n")
    return np.stack(list(p)) if n else np.zeros((0, *p.size))


# ----------------------------------------------------------------- user files
def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as a grayscale ``float64`` array.

    PNG and JPEG (8 or 16 bit) and TIFF (8, 16 bit or float) go through
    ``skimage.io`` (TIFF via tifffile); ``.npy`` through ``numpy.load`` with
    pickling disabled.  Integers are scaled by their dtype's maximum, see
    :func:`to_gray_float`.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "a.npy"), np.full((4, 5), 0.5))
    >>> load_image(os.path.join(d, "a.npy")).shape
    (4, 5)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_image: no such file {path!r}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif ext in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            import skimage.io

            with warnings.catch_warnings():
                # imageio tries its deprecated legacy plugins on unrecognised bytes; the error is what counts
                warnings.simplefilter("ignore", DeprecationWarning)
                arr = skimage.io.imread(path)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"load_image: cannot read {path!r}: {type(e).__name__}: {e}") from e
    return to_gray_float(arr, name=path)


def load_images(paths: Any) -> dict[str, np.ndarray]:
    """Read several images: a directory, a glob pattern, or a list of paths.

    Returns a dict from path to image (sorted by path), ready for
    :func:`split_sources` or :class:`Patches`.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> for k in range(3):
    ...     np.save(os.path.join(d, f"im{k}.npy"), np.zeros((4, 4)))
    >>> len(load_images(d))
    3
    """
    if isinstance(paths, (str, os.PathLike)):
        p = os.fspath(paths)
        if os.path.isdir(p):
            files = [os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(_IMAGE_EXTS)]
        elif os.path.isfile(p):
            files = [p]
        else:
            files = glob.glob(p)
        if not files:
            raise FileNotFoundError(f"load_images: no image files found at {p!r}")
    else:
        files = [os.fspath(f) for f in paths]
    return {f: load_image(f) for f in sorted(files)}


def _parse_selection(select: Any, n: int, name: str) -> list[int]:
    """Sample indices from ``None`` (all), an int, a sequence of ints or a text ``"3"``, ``"0-9,12"``."""
    if select is None:
        return list(range(n))
    if isinstance(select, str):
        out: list[int] = []
        for part in (p.strip() for p in select.split(",")):
            lo, sep, hi = part.partition("-")
            if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
                raise ValueError(f"select must be indices and inclusive ranges such as '3', '0-9' or "
                                 f"'0-4,7' ({name}), got {select!r}")
            a, b = int(lo), int(hi) if sep else int(lo)
            if b < a:
                raise ValueError(f"select: range {part!r} of {name} runs backwards")
            if b - a >= 10 * max(n, 1):  # the range check below names the problem; this bounds the list
                raise ValueError(f"select: range {part!r} is out of range for the {n} samples of {name}")
            out.extend(range(a, b + 1))
    elif isinstance(select, numbers.Integral) and not isinstance(select, bool):
        out = [int(select)]
    elif isinstance(select, Iterable) and not isinstance(select, (bytes, Mapping)):
        out = []
        for i in select:
            if not isinstance(i, numbers.Integral) or isinstance(i, bool):
                raise ValueError(f"select must hold ints, got {i!r} ({name})")
            out.append(int(i))
    else:
        raise ValueError(f"select must be None, an int, a sequence of ints or a text such as '0-9', "
                         f"got {select!r}")
    if not out:
        raise ValueError(f"select picks no sample of {name}")
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ValueError(f"select: indices {bad[:5]} are out of range for the {n} samples of {name}")
    dup = sorted({i for i in out if out.count(i) > 1})
    if dup:
        raise ValueError(f"select picks samples {dup} of {name} more than once")
    return out


def load_h5_images(path: str | os.PathLike, select: Any = None) -> dict[str, np.ndarray]:
    """The ground-truth images ``x`` of a physinv HDF5 dataset, as test pictures.

    The file is one written by :func:`physinv.data.save_dataset` and is read
    through :class:`physinv.data.H5Dataset`, so every value is checked
    against its stored digest.  Only datasets whose samples ``x`` are 2-D
    images qualify.  The measurements ``y`` are not used.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file.
    select : None, int, sequence of int or str
        Which samples: ``None`` for all of them, one index, a list of
        indices, or a text of indices and inclusive ranges (``"3"``,
        ``"0-9"``, ``"0-4,7"``).  Indices count from 0; each may appear once.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"<file name>[<index>]"`` (e.g. ``"data.h5[3]"``) to a 2-D
        ``float64`` image, in the order of ``select``.  Values are as stored
        (they must be finite; the range is not changed).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        Naming the file: not a physinv dataset (a
        :class:`~physinv.data.DatasetFileError`), samples that are not 2-D,
        or a bad ``select``.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from physinv.data import save_dataset
    >>> x = np.random.default_rng(0).random((4, 6, 6))
    >>> f = save_dataset(os.path.join(tempfile.mkdtemp(), "d.h5"), (x, x), noise_sigma=0.0)
    >>> ims = load_h5_images(f, "1-2")
    >>> list(ims), bool((ims["d.h5[2]"] == x[2]).all())
    (['d.h5[1]', 'd.h5[2]'], True)
    """
    from .hdf5 import H5Dataset

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_h5_images: no such file {path!r}")
    base = os.path.basename(path)
    with H5Dataset(path) as ds:
        if len(ds.x_shape) != 2:
            raise ValueError(f"{path}: the ground-truth samples x have shape {tuple(ds.x_shape)}; only "
                             "2-D images can be used as pictures")
        out = {}
        for i in _parse_selection(select, len(ds), path):
            x = ds[i][1].numpy()
            out[f"{base}[{i}]"] = to_gray_float(x, name=f"{path}[{i}]")
    return out


# --------------------------------------------------------------------- splits
def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str(a.shape).encode() + str(a.dtype).encode() + a.tobytes()).hexdigest()


def split_sources(sources: Any, test_fraction: float = 0.2, seed: int = 0,
                  val_fraction: float = 0.0) -> tuple:
    """Split source images into train / (val /) test sets that never share a source.

    Splitting happens at the level of source images, before any patch is cut,
    so patches of one picture can never land on both sides.  Identical images
    (same pixels) are grouped and always go to the same side.

    Parameters
    ----------
    sources : dict of name to image, or sequence of images
        The pool.  A dict keeps its names in the output.
    test_fraction, val_fraction : float
        Fractions of the (distinct) sources in the test and validation sets;
        each non-zero fraction gets at least one source.
    seed : int
        Seed of the random assignment.

    Returns
    -------
    (train, test) or (train, val, test) when ``val_fraction > 0``; each of the
    same type as ``sources`` (dict or list).

    Examples
    --------
    >>> import numpy as np
    >>> pool = {f"im{k}": np.full((2, 2), k / 9) for k in range(10)}
    >>> train, test = split_sources(pool, test_fraction=0.3, seed=0)
    >>> len(train), len(test), set(train).isdisjoint(test)
    (7, 3, True)
    """
    is_map = isinstance(sources, Mapping)
    items = list(sources.items()) if is_map else list(enumerate(sources))
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not (isinstance(f, numbers.Real) and 0.0 <= f < 1.0):
            raise ValueError(f"{name} must be in [0, 1), got {f!r}")
    if test_fraction + val_fraction >= 1.0:
        raise ValueError(f"test_fraction + val_fraction must be < 1, got {test_fraction + val_fraction}")
    groups: dict[str, list[int]] = {}
    for pos, (_key, img) in enumerate(items):
        groups.setdefault(_digest(np.asarray(img)), []).append(pos)
    keys = sorted(groups)  # order independent of input order
    n = len(keys)
    n_test = 0 if test_fraction == 0 else max(1, round(test_fraction * n))
    n_val = 0 if val_fraction == 0 else max(1, round(val_fraction * n))
    if n_test + n_val >= n:
        raise ValueError(f"split_sources: {n} distinct source images cannot give a non-empty train set "
                         f"with {n_test} test and {n_val} validation images")
    perm = _rng(_check_seed(seed)).permutation(n)
    parts = [perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]]

    def build(idx):
        members = [items[pos] for pos in sorted(pos for j in idx for pos in groups[keys[j]])]
        return dict(members) if is_map else [img for _, img in members]

    train, val, test = (build(p) for p in parts)
    return (train, val, test) if val_fraction > 0 else (train, test)


def textured_phantoms(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Piecewise-smooth test images in [0, 1]: a 1/f^1.5 random field plus 2-5 random ellipses.

    Natural-image-like spectra (power law) with sharp edges; what the network
    benchmarks and tests train on. Deterministic for a given ``seed``.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side length.
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray
        ``(n, size, size)`` float64.

    Examples
    --------
    >>> x = textured_phantoms(2, 32, seed=1)
    >>> x.shape, float(x.min()) >= 0, float(x.max()) <= 1
    ((2, 32, 32), True, True)
    """
    import torch

    for name, v in (("n", n), ("size", size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    check_size(n * size * size, f"{n} images of {size}x{size}", "n, size")
    f64 = torch.float64
    g = torch.Generator().manual_seed(_check_seed(seed))
    fy = torch.fft.fftfreq(size, dtype=f64)[:, None]
    fx = torch.fft.fftfreq(size, dtype=f64)[None, :]
    amp = 1.0 / (0.02 + torch.sqrt(fy**2 + fx**2)) ** 1.5
    field = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, size, size, generator=g, dtype=f64)) * amp).real
    img = 0.5 + 0.1 * field / field.flatten(1).std(1)[:, None, None]
    yy, xx = torch.meshgrid(torch.arange(size, dtype=f64), torch.arange(size, dtype=f64), indexing="ij")
    for i in range(n):
        for _ in range(int(torch.randint(2, 6, (1,), generator=g))):
            cy, cx = (torch.rand(2, generator=g, dtype=f64) * size).tolist()
            ry, rx = ((0.08 + 0.25 * torch.rand(2, generator=g, dtype=f64)) * size).tolist()
            v = 0.6 * (float(torch.rand(1, generator=g)) - 0.5)
            img[i] += v * (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).to(f64)
    return img.clamp(0, 1).numpy()
