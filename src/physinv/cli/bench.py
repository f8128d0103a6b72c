"""``physinv bench``: the studies (``physinv bench deconv``, ...).

Each study is one function in :data:`STUDIES`, ``add(subparsers, common) ->
None``, that adds its parser to the ``bench`` group and sets its handler;
adding a study is adding one such function to the tuple.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._common import (
    DEFAULT_OUT_DIR,
    flag_error,
    nonneg_int,
    positive_float,
    positive_int,
    prepare_out_dir,
    print_counts,
    study_kwargs,
    study_out,
)

__all__ = ["register", "add_deconv", "handle_deconv", "STUDIES", "DECONV_OUT", "add_learning_curve",
           "handle_learning_curve", "add_merge", "handle_merge", "LEARNING_CURVE_OUT"]

#: Default output folder of ``physinv bench deconv``.
DECONV_OUT = os.path.join(DEFAULT_OUT_DIR, "bench-deconv")


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(part for part in (p.strip() for p in v.split(",")) if part)
    return out


def _psf_type(text: str) -> str:
    from ..bench.deconv import resolve_psf
    from ..psf import parse_spec

    value = text.strip()
    try:
        parse_spec(value)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    except AttributeError:  # pragma: no cover - a physinv without parse_spec: build it to check
        try:
            resolve_psf(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _image_type(text: str) -> str:
    from ..bench.deconv import resolve_images

    try:
        resolve_images([text])
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("images: ")) from None
    return text


def _method_names(text: str) -> str:
    from ..bench.methods import available_methods

    known = [m.name for m in available_methods()]
    bad = [n for n in (p.strip() for p in text.split(",")) if n and n != "all" and n not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; registered: {', '.join(known)} "
                                         "(or 'all'); see --list-methods")
    return text


def _boundary_type(text: str) -> str:
    value = text.strip().lower()
    if value not in ("circular", "valid", "realistic"):
        raise argparse.ArgumentTypeError(f"must be circular or valid (alias realistic), got {text}")
    return "valid" if value == "realistic" else value


def _shard_type(text: str):
    from ..bench._cells import Shard

    try:
        return Shard.parse(text)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _model_choices() -> list[str]:
    from ..operators.convolution import BOUNDARIES

    return sorted(b for b in BOUNDARIES if b != "circular")


# Field of DeconvConfig (as it starts a ValueError message) -> its flag.
_FLAGS = {"images": "--images", "psfs": "--psf", "noises": "--noise", "methods": "--methods",
          "exclude": "--exclude", "boundaries": "--boundary", "size": "--size", "crop": "--crop",
          "margin": "--margin", "model": "--model", "n_train": "--n-train", "device": "--device"}


def _study_parents(common: dict[str, argparse.ArgumentParser]) -> list[argparse.ArgumentParser]:
    """The shared flags of every study: --out, --seed, --threads, --device, --progress."""
    return [common[k] for k in ("out", "seed", "threads", "device", "progress")]


def _add_cell_flags(p: argparse.ArgumentParser, shard_note: str = "") -> None:
    """--shard, --force and --no-figures: the flags of a study made of stored cells."""
    p.add_argument("--shard", metavar="I/N", type=_shard_type, default=None,
                   help=f"compute only shard I of N (1-based){shard_note}")
    p.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="write no PNG figures")


def add_deconv(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``physinv bench deconv`` to the ``bench`` group."""
    from ..bench import deconv, splits

    quick = ", ".join(f"{k}={' '.join(map(str, v)) if isinstance(v, tuple) else v}"
                      for k, v in deconv.QUICK.items())
    p = subparsers.add_parser(
        "deconv",
        parents=_study_parents(common),
        help="which deblurring method wins: every registered method on built-in test pictures",
        description="Run every registered deconvolution method on the same data: test pictures x PSFs x "
        "noise levels x boundaries (circular, and realistic 'valid' data cut from a larger scene). "
        "Writes results.csv, results.md, results.json (provenance), figures/ and cells/ (finished cells, "
        "read back on the next run) to --out, prints the summary table and the goals. "
        "Exit status 1 when some cells failed.",
        epilog="Defaults: --images " + " ".join(splits.TEST_IMAGES) + "; --psf "
        + " ".join(deconv.DEFAULT_PSFS) + "; --noise " + " ".join(f"{s:g}" for s in deconv.DEFAULT_NOISES)
        + f"; both boundaries; --size 128; --crop 8. --quick: {quick}, quick methods only.",
    )
    p.add_argument("--psf", metavar="SPEC", type=_psf_type, action="extend", nargs="+", default=None,
                   help="PSF specs (gaussian:SIGMA, motion:LENGTH,ANGLE, disk:RADIUS, airy:RADIUS, each "
                   "with an optional ,SIZE) or PSF files (.npy/.png/.tif); repeatable")
    p.add_argument("--noise", metavar="SIGMA", type=positive_float, action="extend", nargs="+", default=None,
                   help="noise standard deviations (images in [0, 1]); repeatable")
    p.add_argument("--images", metavar="IMG", type=_image_type, action="extend", nargs="+", default=None,
                   help="bundled picture names, phantom:K (a generated test phantom), image files and "
                   "folders (PNG, TIFF, NPY, JPEG; grey or RGB, values in [0, 1] after scaling), or physinv "
                   "HDF5 datasets (from physinv.data.save_dataset; the 2-D ground truth x is used): "
                   "FILE.h5 for every sample, FILE.h5:3 or FILE.h5:0-9,12 for samples counted from 0 "
                   "(inclusive ranges); named FILE.h5[3] in the tables")
    p.add_argument("--methods", metavar="NAME", type=_method_names, action="extend", nargs="+", default=None,
                   help="methods to run (comma- or space-separated; 'all' for every registered one); "
                   "default: the default selection (see --list-methods)")
    p.add_argument("--exclude", metavar="NAME", type=_method_names, action="extend", nargs="+", default=None,
                   help="methods to leave out")
    p.add_argument("--boundary", metavar="B", type=_boundary_type, action="extend", nargs="+", default=None,
                   help="data boundaries: circular and/or valid (alias realistic); default both")
    p.add_argument("--size", metavar="N", type=positive_int, default=None, help="frame side (default 128)")
    p.add_argument("--crop", metavar="PX", type=nonneg_int, default=None,
                   help="border left out of PSNR/SSIM (default 8)")
    p.add_argument("--margin", metavar="PX", type=nonneg_int, default=None,
                   help="scene margin around the frame, >= the PSF half-width (default 32)")
    p.add_argument("--model", choices=_model_choices(), default=None,
                   help="boundary model of physinv's boundary-aware solvers on realistic data "
                   "(default reflect)")
    p.add_argument("--n-train", metavar="N", type=positive_int, default=None,
                   help="training images for learned methods (default 16)")
    p.add_argument("--quick", action="store_true",
                   help="tiny configuration for CI: 2 small pictures, 2 PSFs, 1 noise level, both "
                   "boundaries, fast methods only")
    _add_cell_flags(p, "; the tables cover every finished cell in --out")
    p.add_argument("--list-methods", action="store_true", help="print the registered methods and exit")
    p.set_defaults(out=None, handler=lambda args: handle_deconv(args, p))


def config_from_args(args: argparse.Namespace):
    """The :class:`physinv.bench.deconv.DeconvConfig` that parsed arguments describe."""
    from ..bench.deconv import QUICK, DeconvConfig

    given = {"images": args.images, "psfs": args.psf, "noises": args.noise, "size": args.size,
             "crop": args.crop, "margin": args.margin, "model": args.model, "n_train": args.n_train,
             "methods": _split_names(args.methods), "exclude": _split_names(args.exclude),
             "boundaries": args.boundary}
    kw = study_kwargs(QUICK if args.quick else None, given)
    return DeconvConfig(**kw, quick=bool(args.quick), seed=args.seed, device=args.device,
                        threads=args.threads, figures=args.figures)


def handle_deconv(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``physinv bench deconv`` from parsed arguments; print the summary and the goals."""
    from ..bench import deconv

    if args.list_methods:
        print(deconv.methods_table())
        return 0
    try:
        config = config_from_args(args)
        out = study_out(args, DECONV_OUT)
        res = deconv.run(config, out, force=args.force, shard=args.shard, progress=args.progress,
                         argv=sys.argv[1:] if sys.argv else None)
    except ValueError as e:
        flag_error(parser, e, _FLAGS)
    print(res.table)
    print()
    print("Goals")
    for line in res.goals:
        print(line)
    print()
    print_counts(res, args.shard)
    print(f"wrote {res.paths['csv']}, {os.path.basename(res.paths['md'])}, "
          f"{os.path.basename(res.paths['json'])}" + (", figures/" if "figures" in res.paths else ""))
    return 1 if res.failed else 0


#: Default output folder of ``physinv bench learning-curve``.
LEARNING_CURVE_OUT = os.path.join(DEFAULT_OUT_DIR, "bench-learning-curve")


def _int_list(text: str) -> list[int]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            v = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be integers, got {part!r}") from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
        out.append(v)
    return out


def _lc_methods(text: str) -> str:
    from ..bench import learning_curve as lc

    known = set(sum((lc.PHYSICS[p] + lc.DATA_DRIVEN[p] for p in lc.PROBLEMS), ()))
    bad = [n for n in (p.strip() for p in text.split(",")) if n and n not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {', '.join(sorted(known))}")
    return text


_LC_FLAGS = {"problems": "--operator", "methods": "--methods", "sizes": "--sizes", "seeds": "--seeds",
             "steps": "--steps", "epochs": "--epochs", "budget": "--budget", "size": "--size",
             "n_test": "--n-test", "batch": "--batch", "lr": "--lr", "classical": "--classical"}


def add_learning_curve(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``physinv bench learning-curve`` to the ``bench`` group."""
    from ..bench import learning_curve as lc

    p = subparsers.add_parser(
        "learning-curve",
        parents=_study_parents(common),
        help="test PSNR against the number of training images: physics-constrained vs data-driven nets",
        description="Train every learned method from scratch for each training-set size N and seed, "
        "evaluate on a fixed test set disjoint from the training sources, and compare with classical "
        "baselines. Writes results.csv (one row per cell), results.md, results.json (provenance), "
        "figures/ and cells/ to --out. Under torchrun each rank takes its share of the cells and "
        "rank 0 writes the tables. Exit status 1 when some cells failed.",
        epilog="Defaults: --operator blur; --sizes " + ",".join(map(str, lc.DEFAULT_SIZES))
        + "; --seeds 0,1,2; --budget steps --steps 400; image side 64 for blur, 128 for radon (--size sets "
        "both). "
        "--quick: both problems, " + ", ".join(f"{k}={v}" for k, v in lc.QUICK.items() if k != "problems"),
    )
    p.add_argument("--operator", choices=("blur", "radon", "both"), default=None,
                   help="problem: blur (deblurring natural images), radon (sparse-view CT) or both")
    p.add_argument("--methods", metavar="NAME", type=_lc_methods, action="extend", nargs="+", default=None,
                   help="learned methods (comma- or space-separated); default all that apply but "
                   + ", ".join(sorted(set(sum(lc.OPT_IN.values(), ())))) + " (named to run)")
    p.add_argument("--classical", metavar="NAME", action="extend", nargs="+", default=None,
                   help="classical baselines (default all that apply; 'none' for none)")
    p.add_argument("--sizes", metavar="N,...", type=_int_list, action="extend", default=None,
                   help="training-set sizes")
    p.add_argument("--seeds", metavar="S,...", type=_int_list, action="extend", default=None, help="seeds")
    p.add_argument("--budget", choices=("steps", "epochs"), default=None,
                   help="training budget rule: the same number of steps for every N, or epochs x N / batch "
                   "steps capped at --steps")
    p.add_argument("--steps", metavar="K", type=positive_int, default=None, help="gradient steps (or cap)")
    p.add_argument("--epochs", metavar="E", type=positive_int, default=None, help="epochs (--budget epochs)")
    p.add_argument("--batch", metavar="B", type=positive_int, default=None, help="largest batch size")
    p.add_argument("--lr", metavar="LR", type=positive_float, default=None, help="Adam learning rate")
    p.add_argument("--size", metavar="PX", type=positive_int, default=None,
                   help="image side of every problem (default: 64 for blur, 128 for radon)")
    p.add_argument("--n-test", metavar="K", type=positive_int, default=None, help="test images per problem")
    p.add_argument("--quick", action="store_true", help="tiny configuration covering both problems")
    _add_cell_flags(p)
    p.set_defaults(out=None, handler=lambda args: handle_learning_curve(args, p))


def learning_curve_config(args: argparse.Namespace):
    """The :class:`physinv.bench.learning_curve.LearningCurveConfig` of parsed arguments."""
    from ..bench.learning_curve import QUICK, LearningCurveConfig

    classical = _split_names(args.classical)
    if classical is not None and classical == ["none"]:
        classical = []
    given = {"problems": None if args.operator is None else (("blur", "radon") if args.operator == "both"
                                                            else (args.operator,)),
             "methods": _split_names(args.methods), "classical": classical, "sizes": args.sizes,
             "seeds": args.seeds, "budget": args.budget, "steps": args.steps, "epochs": args.epochs,
             "batch": args.batch, "lr": args.lr, "size": args.size, "n_test": args.n_test}
    kw = study_kwargs(QUICK if args.quick else None, given)
    return LearningCurveConfig(**kw, seed=args.seed, device=args.device, threads=args.threads,
                               figures=args.figures)


def _print_lc(res) -> None:
    print(f"Budget rule: {res.budget}")
    print()
    print(res.table)
    print()
    print("Goals")
    for line in res.goals:
        print(line)
    print()


def handle_learning_curve(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``physinv bench learning-curve`` from parsed arguments; print the table and the goals."""
    from ..bench import learning_curve as lc

    try:
        config = learning_curve_config(args)
    except ValueError as e:
        flag_error(parser, e, _LC_FLAGS)
    out = study_out(args, LEARNING_CURVE_OUT)
    res = lc.run(config, out, force=args.force, shard=args.shard, progress=args.progress,
                 argv=sys.argv[1:] if sys.argv else None)
    if res.paths:
        _print_lc(res)
    print_counts(res, args.shard)
    if res.paths:
        print("wrote " + ", ".join(sorted(res.paths.values())))
    return 1 if res.failed else 0


def add_merge(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``physinv bench merge`` (cells of several output folders -> one set of tables)."""
    p = subparsers.add_parser(
        "merge", help="merge the cell files of several learning-curve output folders and write the tables",
        description="Copy the finished learning-curve cells of every DIR (shards, SLURM array tasks) into "
        "--out (default: the first DIR) and write results.csv, results.md, results.json and figures/ "
        "from every cell there. Exit status 1 on conflicting cells.")
    p.add_argument("dirs", metavar="DIR", nargs="+", help="output folders holding cells/")
    p.add_argument("--out", metavar="DIR", default=None, help="merged folder (default: the first DIR)")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="write no PNG figures")
    p.set_defaults(handler=lambda args: handle_merge(args, p))


def handle_merge(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``physinv bench merge``."""
    from ..bench import learning_curve as lc
    from ..bench import provenance
    from ..bench._cells import CellStore, merge_cells

    for d in args.dirs:
        if not os.path.isdir(os.path.join(d, "cells")):
            if parser is not None:
                parser.error(f"argument DIR: {d!r} has no cells/ folder")
            raise ValueError(f"dirs: {d!r} has no cells/ folder")
    out = prepare_out_dir(args.out or args.dirs[0])
    rep = merge_cells(args.dirs, out, lc.STUDY)
    records = CellStore(out, lc.STUDY).records()
    budgets = sorted({r["config"].get("budget", "") for r in records} - {""})
    prov = provenance.collect({"merged": list(args.dirs)}, device="cpu", threads=None, seed=0,
                              argv=sys.argv[1:] if sys.argv else None, extra={"study": lc.STUDY})
    res = lc.report(out, records, budget=", ".join(budgets), figures=args.figures, prov=prov)
    _print_lc(res)
    print(f"merged: {rep.copied} copied, {rep.identical} identical, {len(rep.conflicts)} conflicts, "
          f"{rep.skipped} skipped; {len(records)} cells in {out}")
    for cid in rep.conflicts:
        print(f"CONFLICT cell {cid}: kept the copy in {out}", file=sys.stderr)
    return 1 if rep.conflicts else 0


#: The studies of ``physinv bench``: each adds its subcommand (to add one, append its function).
STUDIES: tuple[Callable[[Any, dict[str, argparse.ArgumentParser]], None], ...] = (
    add_deconv, add_learning_curve, add_merge)


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add the ``bench`` group and its studies to ``subparsers``."""
    p = subparsers.add_parser("bench", help="studies: which method wins, with tables, figures and provenance",
                              description="Reproducible studies on built-in data. Run "
                              "'physinv bench STUDY --help' for the options of a study.")
    sub = p.add_subparsers(dest="study", metavar="STUDY", title="studies")
    for add in STUDIES:
        add(sub, common)

    def _no_study(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=_no_study)
