"""``physinv ir``: simulated thermal frames, the pipeline on files, the comparison study.

``physinv ir simulate`` writes simulated raw frames with their ground truth
to physinv's IR HDF5 layout; ``physinv ir run`` restores, converts to
temperature and segments the frames of such a file or of a folder of 16-bit
TIFF/PNG frames; ``physinv ir bench`` compares classical,
physics-constrained and data-driven pipelines. The work lives in
:mod:`physinv.ir`; these handlers only parse, call it and print.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import (
    DEFAULT_OUT_DIR,
    flag_error,
    nonneg_float,
    positive_int,
    print_counts,
    study_kwargs,
    study_out,
)

__all__ = ["register", "BENCH_OUT", "RUN_OUT", "shape_type"]

#: Default output folder of ``physinv ir bench``.
BENCH_OUT = os.path.join(DEFAULT_OUT_DIR, "ir-bench")
#: Default output folder of ``physinv ir run``.
RUN_OUT = os.path.join(DEFAULT_OUT_DIR, "ir-run")


def shape_type(text: str) -> tuple[int, int]:
    """``type=`` validator: ``HxW`` (rows x columns), each an integer >= 16.

    Examples
    --------
    >>> shape_type("128x160")
    (128, 160)
    >>> shape_type("12x5")
    Traceback (most recent call last):
        ...
    argparse.ArgumentTypeError: must be HxW with H, W >= 16 (e.g. 128x160), got 12x5
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be HxW with H, W >= 16 (e.g. 128x160), got {text}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"must be HxW with H, W >= 16 (e.g. 128x160), got {text}")
    return h, w


def _h5_path(text: str) -> str:
    if not text.lower().endswith((".h5", ".hdf5")):
        raise argparse.ArgumentTypeError(f"must name an HDF5 file ending in .h5, got {text}")
    parent = os.path.dirname(text) or "."
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"the folder {parent!r} of {text} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder")
    return text


def _input_path(text: str) -> str:
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist (give an .h5 file or a folder of frames)")
    if os.path.isfile(text) and not text.lower().endswith((".h5", ".hdf5")):
        raise argparse.ArgumentTypeError(f"{text} is neither an .h5 file nor a folder of TIFF/PNG frames")
    return text


def _float_list(text: str) -> list[float]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            out.append(_pos(part))
    if not out:
        raise argparse.ArgumentTypeError(f"must be numbers > 0, got {text!r}")
    return out


def _pos(text: str) -> float:
    from ._common import positive_float

    return positive_float(text)


def _int_list(text: str) -> list[int]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            out.append(positive_int(part))
    if not out:
        raise argparse.ArgumentTypeError(f"must be positive integers, got {text!r}")
    return out


def _methods(text: str) -> list[str]:
    from ..ir.bench import METHODS

    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad or text!r}; choose from "
                                         f"{', '.join(METHODS)}")
    return names


def _lc_methods(text: str) -> list[str]:
    if text.strip() == "none":
        return ["none"]
    return _methods(text)


def _shard_type(text: str):
    from ..bench._cells import Shard

    try:
        return Shard.parse(text)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ----------------------------------------------------------------------------- simulate

def _handle_simulate(args: argparse.Namespace) -> int:
    from ..ir.bench import camera_for
    from ..ir.camera import simulate
    from ..ir.io import save_ir

    cam = camera_for(args.camera, args.size) if args.size else camera_for(args.camera, (512, 640))
    frames = simulate(args.frames, cam, seed=args.seed, noise_scale=args.noise_scale, fpn=args.fpn,
                      drift=args.drift)
    path = save_ir(args.out, frames, metadata={"command": "physinv ir simulate", "seed": args.seed,
                                               "noise_scale": args.noise_scale, "fpn": args.fpn,
                                               "drift": args.drift})
    h, w = cam.detector_shape
    print(f"wrote {path}: {args.frames} frame(s) of {h}x{w} {args.camera} counts "
          f"({cam.bits}-bit, NETD {cam.netd_k * 1000:g} mK x {args.noise_scale:g}), with the true "
          f"temperature, mask and NUC maps; {frames.clip_fraction:.2%} of the pixels clipped")
    return 0


def _add_simulate(sub: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", parents=[common["seed"], common["threads"]],
                       help="simulate raw thermal frames with their ground truth into an HDF5 file",
                       description="Simulate raw counts of a thermal camera looking at synthetic scenes of "
                       "hot objects (optics blur, area sampling, temporal noise, fixed pattern) and write "
                       "them, with the ideal temperature map, the object mask and the true NUC maps, to "
                       "physinv's IR HDF5 layout.")
    p.add_argument("--out", metavar="FILE.h5", type=_h5_path, required=True, help="HDF5 file to write")
    p.add_argument("--frames", metavar="N", type=positive_int, default=4, help="number of frames (default 4)")
    p.add_argument("--size", metavar="HxW", type=shape_type, default=None,
                   help="detector rows x columns (default: the camera's own, 512x640; 128x160 is a quick "
                   "choice for trying the pipeline)")
    p.add_argument("--camera", choices=("boson", "tau2"), default="boson",
                   help="camera preset: FLIR Boson (12 um, 40 mK) or Tau 2 (17 um, 50 mK) class "
                   "(default boson)")
    p.add_argument("--noise-scale", metavar="K", type=nonneg_float, default=1.0,
                   help="temporal noise in multiples of the camera's NETD (default 1)")
    p.add_argument("--no-fpn", dest="fpn", action="store_false", help="no fixed-pattern noise")
    p.add_argument("--drift", action="store_true", help="offsets drift with the sensor temperature")
    p.set_defaults(handler=_handle_simulate)


# ----------------------------------------------------------------------------- run

_RUN_FLAGS = {"method": "--method", "segment": "--segment", "camera": "--camera", "fmt": "--format",
              "bits": "--bits", "input": "INPUT"}


def _handle_run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    from ..ir.bench import RunConfig, run_files

    try:
        config = RunConfig(method=args.method, segment=args.segment, camera=args.camera, bits=args.bits,
                           fmt=args.format, device=args.device, threads=args.threads, seed=args.seed)
    except ValueError as e:
        flag_error(parser, e, _RUN_FLAGS)
    out = study_out(args, RUN_OUT)
    try:
        res = run_files(args.input, out, config, force=args.force, progress=args.progress,
                        argv=sys.argv[1:] if sys.argv else None)
    except ValueError as e:
        flag_error(parser, e, _RUN_FLAGS)
    print(res.summary)
    print(f"frames: {res.computed} computed, {res.reused} read back; {res.seconds:.1f} s")
    for cid, msg in res.failed:
        print(f"FAILED frame cell {cid}: {msg}", file=sys.stderr)
    print(f"wrote {res.paths['csv']}, {os.path.basename(res.paths['json'])}, temperature/ ({args.format}), "
          "masks/, overlays/")
    return 1 if res.failed else 0


def _add_run(sub: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    from ..ir.bench import RUN_METHODS

    p = sub.add_parser("run", parents=[common[k] for k in ("out", "seed", "threads", "device", "progress")],
                       help="restore, convert to temperature and segment the frames of a file or folder",
                       description="Run the infrared pipeline (counts -> NUC -> radiance -> restoration "
                       "-> temperature -> hot-object mask) on an IR HDF5 file (its NUC maps and ground truth "
                       "are used) or a folder of 16-bit TIFF/PNG raw frames (the camera's nominal maps, no "
                       "ground truth). Writes temperature maps, masks, overlays, metrics.csv (metrics only "
                       "where ground truth exists), results.json (provenance) and cells/ (a re-run computes "
                       "only new frames).")
    p.add_argument("input", metavar="INPUT", type=_input_path, help="an .h5 file or a folder of frames")
    p.add_argument("--method", choices=RUN_METHODS, default="wiener",
                   help="restoration on the detector grid (default wiener)")
    p.add_argument("--segment", choices=("otsu",), default="otsu", help="segmentation rule (default otsu)")
    p.add_argument("--camera", choices=("boson", "tau2"), default="boson",
                   help="camera of a folder of frames (an HDF5 file names its own; default boson)")
    p.add_argument("--bits", metavar="B", type=positive_int, default=16,
                   help="largest accepted raw value 2^B - 1 of frame files (default 16)")
    p.add_argument("--format", choices=("png", "tiff", "npy"), default="png",
                   help="temperature maps as 16-bit PNG/TIFF of round(100 x kelvin), or NPY float32 kelvin "
                   "(default png)")
    p.add_argument("--force", action="store_true", help="recompute frames that are already stored")
    p.set_defaults(out=None, handler=lambda args: _handle_run(args, p))


# ----------------------------------------------------------------------------- bench

_BENCH_FLAGS = {"camera": "--camera", "detector_shape": "--size", "noise_levels": "--noise-levels",
                "methods": "--methods", "n_train": "--n-train", "n_test": "--n-test", "sizes": "--sizes",
                "seeds": "--seeds", "steps": "--steps", "lc_methods": "--lc-methods"}


def bench_config(args: argparse.Namespace):
    """The :class:`physinv.ir.bench.IRBenchConfig` of parsed ``physinv ir bench`` arguments."""
    from ..ir.bench import QUICK, IRBenchConfig

    given = {"camera": args.camera, "detector_shape": args.size, "noise_levels": args.noise_levels,
             "methods": args.methods, "n_train": args.n_train, "n_test": args.n_test, "sizes": args.sizes,
             "seeds": args.seeds, "steps": args.steps,
             "lc_methods": None if args.lc_methods is None else [m for m in args.lc_methods if m != "none"]}
    kw = study_kwargs(QUICK if args.quick else None, given)
    return IRBenchConfig(**kw, fpn=args.fpn, quick=bool(args.quick), seed=args.seed, device=args.device,
                         threads=args.threads, figures=args.figures)


def _handle_bench(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    from ..ir import bench

    try:
        config = bench_config(args)
    except ValueError as e:
        flag_error(parser, e, _BENCH_FLAGS)
    out = study_out(args, BENCH_OUT)
    res = bench.run(config, out, force=args.force, shard=args.shard, progress=args.progress,
                    argv=sys.argv[1:] if sys.argv else None)
    print(res.table)
    print()
    print("Goals")
    for line in res.goals:
        print(line)
    print()
    print_counts(res, args.shard)
    print("wrote " + ", ".join(sorted(res.paths.values())))
    return 1 if res.failed else 0


def _add_bench(sub: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    from ..ir import bench

    quick = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                      for k, v in bench.QUICK.items())
    p = sub.add_parser(
        "bench", parents=[common[k] for k in ("out", "seed", "threads", "device", "progress")],
        help="classical vs physics-constrained vs data-driven pipelines on simulated thermal frames",
        description="Compare pipelines (restoration + segmentation) on simulated frames at several noise "
        "levels (multiples of the camera's NETD), and the learned ones over training-set sizes. Writes "
        "results.csv (one row per method and noise level), learning_curve.csv, results.md, results.json "
        "(provenance), figures/ and cells/ (a re-run reads finished cells back) to --out; prints the table "
        "and the goals. "
        "Exit status 1 when some cells failed.",
        epilog="Defaults: --camera boson --size 128x160 --noise-levels "
        + ",".join(f"{v:g}" for v in bench.NOISE_LEVELS) + " --n-train 16 --n-test 8 --sizes 1,2,4,8,16 "
        "--seeds 0,1,2 --steps 300. --quick: " + quick)
    p.add_argument("--camera", choices=bench.CAMERAS, default=None, help="camera preset (default boson)")
    p.add_argument("--size", metavar="HxW", type=shape_type, default=None,
                   help="detector shape (default 128x160)")
    p.add_argument("--noise-levels", metavar="K,...", type=_float_list, default=None,
                   help="noise levels in multiples of the NETD")
    p.add_argument("--methods", metavar="M,...", type=_methods, default=None,
                   help="methods to compare (default all): " + ", ".join(bench.METHODS))
    p.add_argument("--n-train", metavar="N", type=positive_int, default=None,
                   help="training frames of the learned methods in the comparison")
    p.add_argument("--n-test", metavar="N", type=positive_int, default=None, help="test frames")
    p.add_argument("--sizes", metavar="N,...", type=_int_list, default=None,
                   help="learning-curve training sizes")
    p.add_argument("--seeds", metavar="S,...", type=_int_list, default=None, help="learning-curve seeds")
    p.add_argument("--lc-methods", metavar="M,...", type=_lc_methods, default=None,
                   help="learned methods of the learning curve ('none' for no learning curve; default "
                   "spectral+head,none+head,unet-mask)")
    p.add_argument("--steps", metavar="K", type=positive_int, default=None,
                   help="Adam steps of every learned method")
    p.add_argument("--no-fpn", dest="fpn", action="store_false", help="simulate no fixed-pattern noise")
    p.add_argument("--quick", action="store_true", help="small configuration (about 3 minutes on 2 cores)")
    p.add_argument("--shard", metavar="I/N", type=_shard_type, default=None, help="compute only shard I of N")
    p.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="write no PNG figures")
    p.set_defaults(out=None, handler=lambda args: _handle_bench(args, p))


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add the ``ir`` group (``simulate``, ``run``, ``bench``) to ``subparsers``."""
    p = subparsers.add_parser("ir", help="infrared imaging: simulate frames, run the pipeline, compare "
                              "pipelines",
                              description="Thermal-camera imaging. Run 'physinv ir COMMAND --help' for the "
                              "options of a command.")
    sub = p.add_subparsers(dest="ir_command", metavar="COMMAND", title="commands")
    _add_simulate(sub, common)
    _add_run(sub, common)
    _add_bench(sub, common)

    def _no_command(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=_no_command)
