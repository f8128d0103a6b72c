"""Data for learned reconstruction: offline image sources, simulated datasets, HDF5 files.

- :mod:`physinv.data.images`: bundled scikit-image pictures, Shepp–Logan,
  random and random-ellipse phantoms, user image files and HDF5 datasets,
  random patches, leak-free splits.
- :class:`InverseProblemDataset`: ``(y, x)`` pairs ``y = A x + noise`` made on
  the fly, deterministic per index and seed.
- :func:`save_dataset` / :class:`H5Dataset`: a versioned, chunked, compressed
  HDF5 format written atomically and resumably, read lazily.
"""

from .datasets import InverseProblemDataset, sample_generator
from .hdf5 import SCHEMA_VERSION, DatasetFileError, H5Dataset, save_dataset
from .images import (
    SKIMAGE_IMAGES,
    Patches,
    Phantoms,
    available_skimage_images,
    inscribed_disc,
    load_h5_images,
    load_image,
    load_images,
    random_ellipses,
    random_patches,
    random_phantom,
    shepp_logan,
    skimage_image,
    skimage_images,
    split_sources,
    textured_phantoms,
    to_gray_float,
)

__all__ = [
    "InverseProblemDataset", "sample_generator", "SCHEMA_VERSION", "DatasetFileError", "H5Dataset",
    "save_dataset", "SKIMAGE_IMAGES", "Patches", "Phantoms", "available_skimage_images", "load_image",
    "load_images", "load_h5_images", "inscribed_disc", "random_patches", "random_ellipses",
    "random_phantom", "shepp_logan", "skimage_image",
    "skimage_images", "split_sources",
    "textured_phantoms", "to_gray_float",
]
