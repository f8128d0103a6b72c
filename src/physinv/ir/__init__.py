"""Infrared imaging: Planck radiometry, synthetic thermal scenes, a camera simulator, calibration and files.

* :mod:`physinv.ir.physics`: in-band black-body radiance, its derivative and inverse.
* :mod:`physinv.ir.scene`: seeded temperature maps with hot objects and their masks.
* :mod:`physinv.ir.camera`: :class:`Camera` (Boson and Tau 2 classes) and :func:`simulate`.
* :mod:`physinv.ir.calibration`: counts, radiance and temperature; two-point and scene-based NUC; drift.
* :mod:`physinv.ir.io`: physinv's IR HDF5 files, FLIR ADAS folders, folders of 16-bit frames.
* :mod:`physinv.ir.pipeline`: :class:`Pipeline`: counts -> radiance -> restoration with any physinv
  method -> temperature -> hot-object mask, and its metrics.
* :mod:`physinv.ir.segment`: Otsu thresholding in torch and a small trainable segmentation head.
* :mod:`physinv.ir.bench`: the ``physinv ir bench`` study (classical, physics-constrained and
  data-driven pipelines at three noise levels, and a learning curve of Dice).
"""

from .calibration import (
    NUC,
    SceneNUC,
    counts_to_radiance,
    counts_to_temperature,
    fit_offset_drift,
    radiance_to_counts,
    scene_based_nuc,
    temperature_to_counts,
    two_point_nuc,
)
from .camera import Camera, IRFrames, drifted_offset, heat_diffusion_sigma, simulate
from .io import FlirAdas, IRFileError, load_ir, read_flir_adas, read_frames, read_image, save_ir
from .physics import (
    PlanckTable,
    band_radiance,
    band_radiance_derivative,
    planck_table,
    radiance_to_temperature,
    spectral_radiance,
)
from .pipeline import Pipeline, PipelineResult, RadianceScale, Reconstruct, train_spectral
from .scene import SHAPES, Scene, flat_scene, make_scene
from .segment import SegmentationHead, otsu_threshold, segment_otsu, train_segmentation_head

__all__ = [
    "band_radiance", "band_radiance_derivative", "radiance_to_temperature", "spectral_radiance",
    "PlanckTable", "planck_table", "Scene", "make_scene", "flat_scene", "SHAPES", "Camera", "IRFrames",
    "simulate", "drifted_offset", "heat_diffusion_sigma", "counts_to_radiance", "radiance_to_counts",
    "counts_to_temperature", "temperature_to_counts", "NUC", "two_point_nuc", "fit_offset_drift",
    "scene_based_nuc", "SceneNUC", "save_ir", "load_ir", "IRFileError", "read_flir_adas", "FlirAdas",
    "read_frames", "read_image", "Pipeline", "PipelineResult", "RadianceScale", "Reconstruct",
    "train_spectral", "SegmentationHead", "otsu_threshold", "segment_otsu", "train_segmentation_head",
]
