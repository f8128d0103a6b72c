"""Which built-in pictures train learned methods and which ones test every method.

The two lists are disjoint by construction (a test asserts it): a learned
method never sees a test picture, not even a patch of one. Training uses
only :data:`TRAIN_IMAGES` (pictures bundled with scikit-image) and
generated phantoms whose seeds lie below :data:`TEST_PHANTOM_SEED_OFFSET`;
the benchmarks evaluate on :data:`TEST_IMAGES` (and, on request, on
:data:`TEST_EXTRA_IMAGES`, on test phantoms ``phantom:K`` or on the user's
own files).

Examples
--------
>>> set(TRAIN_IMAGES).isdisjoint(TEST_IMAGES + TEST_EXTRA_IMAGES)
True
>>> split_of("astronaut"), split_of("camera")
('test', 'train')
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "TRAIN_IMAGES",
    "TEST_IMAGES",
    "TEST_EXTRA_IMAGES",
    "TEST_PHANTOM_SEED_OFFSET",
    "IMAGE_ALIASES",
    "split_of",
    "check_disjoint",
    "training_pictures",
    "training_images",
    "square_picture",
]

#: Pictures bundled with scikit-image that learned methods may train on (and
#: nothing else but generated phantoms). Never used for testing.
TRAIN_IMAGES: tuple[str, ...] = (
    "camera", "text", "page", "clock", "grass", "gravel", "rocket", "hubble_deep_field", "retina",
    "horse", "cell", "ihc", "microaneurysms", "motorcycle_left", "motorcycle_right", "lfw_subset",
)

#: The default test pictures of the benchmarks (natural photographs and
#: textures, all bundled with scikit-image).
TEST_IMAGES: tuple[str, ...] = ("astronaut", "brick", "chelsea", "coffee", "coins", "moon")

#: Further bundled pictures on the test side, not in the default set
#: (synthetic drawings: a chessboard, a colour wheel, a logo).
TEST_EXTRA_IMAGES: tuple[str, ...] = ("checkerboard", "colorwheel", "logo")

#: Generated test phantoms ``phantom:K`` use the seed ``TEST_PHANTOM_SEED_OFFSET + K``;
#: phantoms generated for training use seeds below it.
TEST_PHANTOM_SEED_OFFSET: int = 1_000_000

#: Names in the lists above that :func:`physinv.data.images.skimage_image` knows under another name.
IMAGE_ALIASES: dict[str, str] = {"ihc": "immunohistochemistry"}


def split_of(name: str) -> str:
    """``"train"``, ``"test"`` or ``"other"`` for a picture name (aliases count as their target).

    Examples
    --------
    >>> split_of("immunohistochemistry"), split_of("phantom:3"), split_of("my_photo.png")
    ('train', 'test', 'other')
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    canon = {v: k for k, v in IMAGE_ALIASES.items()}.get(name, name)
    if canon in TRAIN_IMAGES:
        return "train"
    if canon in TEST_IMAGES or canon in TEST_EXTRA_IMAGES or name.startswith("phantom:"):
        return "test"
    return "other"


def check_disjoint() -> None:
    """Raise ``AssertionError`` if a picture is on both sides (also through an alias).

    Examples
    --------
    >>> check_disjoint()
    """
    train = set(TRAIN_IMAGES) | {IMAGE_ALIASES.get(n, n) for n in TRAIN_IMAGES}
    test = set(TEST_IMAGES) | set(TEST_EXTRA_IMAGES)
    test |= {IMAGE_ALIASES.get(n, n) for n in test}
    both = train & test
    assert not both, f"pictures in both the training and the test split: {sorted(both)}"


def training_pictures() -> list[str]:
    """The training pictures that the installed scikit-image and physinv's loader provide.

    Names of :data:`TRAIN_IMAGES` that :func:`physinv.data.images.skimage_image`
    cannot load (not bundled with this scikit-image, or not known to the
    loader) are left out; the list is what :func:`training_images` uses.

    Examples
    --------
    >>> "camera" in training_pictures()
    True
    """
    from ..data.images import available_skimage_images

    have = set(available_skimage_images())
    return [n for n in TRAIN_IMAGES if IMAGE_ALIASES.get(n, n) in have]


def training_images(size: int, n: int | None = None, seed: int = 0,
                    pictures: Sequence[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Training images of ``size x size``: the training pictures, then generated phantoms.

    Each picture is resized (anti-aliased, aspect kept) so that its shorter
    side is ``size`` and the centre square is kept. When ``n`` exceeds the
    number of pictures, textured phantoms
    (:func:`physinv.data.images.textured_phantoms`, seeds ``seed``, which must
    stay below :data:`TEST_PHANTOM_SEED_OFFSET`) fill up the list; when it is
    smaller, the first ``n`` pictures are used.

    Parameters
    ----------
    size : int
        Side length.
    n : int, optional
        Number of images (default: all available training pictures).
    seed : int
        Seed of the phantoms.
    pictures : sequence of str, optional
        Which training pictures, in order (each must be in
        :data:`TRAIN_IMAGES`); default :func:`training_pictures`.

    Returns
    -------
    (list of numpy.ndarray, list of str)
        The images and their names (``"phantom-train:SEED:K"`` for phantoms).

    Examples
    --------
    >>> ims, names = training_images(32, n=2)
    >>> len(ims), ims[0].shape, names[0]
    (2, (32, 32), 'camera')
    """
    from ..data.images import skimage_image, textured_phantoms

    for what, v in (("size", size), ("n", n), ("seed", seed)):
        if v is None and what == "n":
            continue
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < (1 if what != "seed" else 0):
            raise ValueError(f"{what} must be a {'positive' if what != 'seed' else 'non-negative'} int, "
                             f"got {v!r}")
    if seed >= TEST_PHANTOM_SEED_OFFSET:
        raise ValueError(f"seed must be < {TEST_PHANTOM_SEED_OFFSET} (larger seeds are test phantoms), "
                         f"got {seed}")
    if pictures is None:
        names = training_pictures()
    else:
        if isinstance(pictures, str):
            raise TypeError("pictures must be a sequence of names, not a str")
        bad = [p for p in pictures if p not in TRAIN_IMAGES]
        if bad:
            raise ValueError(f"pictures: {bad} are not training pictures; choose from {list(TRAIN_IMAGES)}")
        names = list(pictures)
    if n is not None:
        names = names[:n]
    images, out_names = [], []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            images.append(square_picture(skimage_image(IMAGE_ALIASES.get(name, name)), size))
        out_names.append(name)
    missing = 0 if n is None else n - len(images)
    if missing > 0:
        ph = textured_phantoms(missing, size, seed=int(seed))
        images.extend(np.asarray(p, dtype=np.float64) for p in ph)
        out_names.extend(f"phantom-train:{seed}:{k}" for k in range(missing))
    return images, out_names


def square_picture(img: Any, side: int) -> np.ndarray:
    """Resize ``img`` (anti-aliased, aspect kept) so its shorter side is ``side``; keep the centre square.

    Examples
    --------
    >>> import numpy as np
    >>> square_picture(np.ones((40, 80)), 16).shape
    (16, 16)
    """
    from skimage import transform

    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"img must be a 2-D grey image, got shape {a.shape}")
    if not isinstance(side, numbers.Integral) or isinstance(side, bool) or side < 1:
        raise ValueError(f"side must be a positive int, got {side!r}")
    h, w = a.shape
    scale = side / min(h, w)
    hh, ww = max(side, round(h * scale)), max(side, round(w * scale))
    if (hh, ww) != (h, w):
        a = transform.resize(a, (hh, ww), anti_aliasing=scale < 1)
    top, left = (hh - side) // 2, (ww - side) // 2
    return np.clip(a[top:top + side, left:left + side], 0.0, 1.0)
