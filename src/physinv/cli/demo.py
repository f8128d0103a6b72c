"""``physinv demo``: deblur a bundled picture and write the comparison figure."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..bench.demo import DEMO_IMAGES, FIGURE_FORMATS, run_demo, save_demo_figure
from ..psf import SPEC_KINDS, parse_spec
from ._common import DEFAULT_OUT_DIR, nonneg_float, nonneg_int, out_dir, positive_float, prepare_out_dir

__all__ = ["register", "handle", "DEFAULT_FILE"]

#: File name of the figure when ``--out`` is a folder.
DEFAULT_FILE = "demo.png"

_DEFAULT_WIDTH = 2.0
_MOTION_ANGLE = 30.0  # degrees, the angle of ``--psf motion``


def _is_folder(text: str) -> bool:
    p = Path(text)
    return p.is_dir() or not p.suffix or text.endswith(("/", os.sep))


def _figure_or_folder(text: str) -> str:
    """``type=`` for ``--out``: a figure file whose extension names its format, or a folder."""
    if _is_folder(text):
        return out_dir(text)
    p = Path(text)
    if p.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"unsupported figure format {p.suffix!r} in {text}; use one of "
            + ", ".join("." + f for f in FIGURE_FORMATS) + " (or end a folder name with /)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(parent)!r} of {text} does not exist "
                                         "(it is not created)")
    return text


def _psf(text: str) -> str:
    """``type=`` for ``--psf``: a kind name (width from ``--width``) or a full spec / file."""
    value = text.strip()
    if value.lower() in SPEC_KINDS:
        return value.lower()
    try:
        parse_spec(value)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command to ``subparsers``."""
    kinds = ", ".join(SPEC_KINDS)
    p = subparsers.add_parser(
        "demo",
        parents=[common["seed"], common["threads"]],
        help="deblur a bundled picture with the exact Fourier factorization (Tikhonov, lambda from the data)",
        description="Blur a bundled scikit-image picture with a known PSF, add Gaussian noise, "
        "reconstruct with the Tikhonov filter applied through the exact Fourier factorization "
        "(lambda by the discrepancy principle with the noise level estimated from the data), "
        "print PSNRs and write a three-panel comparison figure.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--image", default="camera", choices=DEMO_IMAGES, help="bundled picture")
    p.add_argument("--size", type=nonneg_int, default=256,
                   help="resize to SIZE x SIZE (0 keeps the original)")
    p.add_argument("--psf", type=_psf, default="gaussian",
                   help=f"blur kernel: a kind ({kinds}) whose width is --width, or a full spec "
                   "such as gaussian:2.5, motion:9,45 or disk:3,9 (KIND:PARAMS[,SIZE]), or the path of "
                   "a .npy/.png/.tif kernel file. A bare 'motion' moves at 30 degrees")
    p.add_argument("--width", type=positive_float, default=argparse.SUPPRESS,
                   help=f"PSF width in pixels for a bare --psf kind: Gaussian sigma, motion length, "
                   f"disk radius or Airy radius (default: {_DEFAULT_WIDTH})")
    p.add_argument("--noise", type=nonneg_float, default=0.01,
                   help="noise standard deviation (image in [0, 1])")
    p.add_argument("--out", metavar="PATH", type=_figure_or_folder, default=DEFAULT_OUT_DIR,
                   help=f"where the figure goes: a folder (created if missing, {DEFAULT_FILE} is written "
                   "in it) or a file whose extension names the format ("
                   + ", ".join(FIGURE_FORMATS[:6]) + ", ...). The parent folder must exist")
    p.set_defaults(handler=handle)


def psf_spec(args: argparse.Namespace) -> str:
    """The :func:`physinv.psf.from_spec` spec that ``--psf`` and ``--width`` describe.

    Raises
    ------
    ValueError
        If ``--width`` is given together with a full spec (it would be ignored).
    """
    width = getattr(args, "width", None)
    if args.psf in SPEC_KINDS:
        w = _DEFAULT_WIDTH if width is None else width
        return f"motion:{w!r},{_MOTION_ANGLE!r}" if args.psf == "motion" else f"{args.psf}:{w!r}"
    if width is not None:
        raise ValueError(f"--width applies to a bare --psf kind ({', '.join(SPEC_KINDS)}); "
                         f"--psf {args.psf} already says the size, so leave out --width")
    return args.psf


def output_file(out: str) -> Path:
    """The figure file ``--out`` names: the file itself, or ``DEFAULT_FILE`` inside a folder."""
    if _is_folder(out):
        return prepare_out_dir(out) / DEFAULT_FILE
    return Path(out)


def handle(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments; print the PSNRs and write the figure."""
    spec = psf_spec(args)
    r = run_demo(args.image, args.size or None, spec, args.noise, args.seed)
    out = output_file(args.out)
    save_demo_figure(r, out)
    print(f"image={args.image} size={r['shape']} psf={spec} noise sigma={args.noise}")
    print(f"PSNR blurred+noisy : {r['psnr_blurred']:6.2f} dB")
    print(f"PSNR Tikhonov      : {r['psnr_tikhonov']:6.2f} dB   lam={r['lam']:.3e} "
          "(discrepancy principle, noise level estimated from the data)   "
          f"({r['seconds'] * 1e3:.1f} ms)")
    print(f"wrote {out}")
    return 0
