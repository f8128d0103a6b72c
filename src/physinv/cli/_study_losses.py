"""``physinv study losses``: which loss lets a network learn an inverse of ``y = x^2``.

The command parses, calls :func:`physinv.bench.loss_design.run` and prints
the summary table and the findings; the study lives in the library.
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
    positive_float,
    positive_int,
    print_counts,
    study_kwargs,
    study_out,
)
from .bench import _add_cell_flags, _int_list, _split_names

__all__ = ["register", "handle", "config_from_args", "LOSSES_OUT"]

#: Default output folder of ``physinv study losses``.
LOSSES_OUT = os.path.join(DEFAULT_OUT_DIR, "study-losses")

# Field of LossDesignConfig (as it starts a ValueError message) -> its flag.
_FLAGS = {"losses": "--losses", "norms": "--norms", "seeds": "--seeds", "n_samples": "--samples",
          "forward_layers": "--forward-layers", "inverse_layers": "--inverse-layers", "width": "--width",
          "steps": "--steps", "lr": "--lr", "epsilon": "--epsilon",
          "derivative_weight": "--derivative-weight", "smooth_weight": "--smooth-weight",
          "log_every": "--log-every"}


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``physinv study losses`` to the ``study`` group.

    Examples
    --------
    >>> import argparse
    >>> from physinv.cli._common import common_parsers
    >>> root = argparse.ArgumentParser()
    >>> register(root.add_subparsers(), common_parsers())
    >>> root.parse_args(["losses", "--quick", "--steps", "10"]).steps
    10
    """
    from ..bench import loss_design as ld

    quick = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                      for k, v in ld.QUICK.items())
    p = subparsers.add_parser(
        "losses",
        parents=[common[k] for k in ("out", "threads", "device", "progress")],
        help="loss design on y = x^2: inverse misfit vs measurement consistency vs encoder-decoder",
        description="Train inverse networks of F(x) = x^2 on [-33, 33] with each loss (inverse-space misfit, "
        "measurement consistency through the exact F, encoder-decoder, two-step) and each norm (l1, l2) over "
        "several seeds; the three-sample Hermite experiment (finite-difference and exact derivative term) "
        "and the reduced-sample encoder-decoder with and without the smoothness term. Writes losses.csv, "
        "summary.md, provenance.json, figures/ and cells/ (finished cells, read back on the next run) to "
        "--out, prints the summary table and the findings. Exit status 1 when some cells failed.",
        epilog=f"Defaults: seeds 0,1,2; width 32; steps 2000; lr 0.001; 5 forward and 11 inverse layers; "
        f"1000 samples; rescaling on. --quick: {quick}.",
    )
    p.add_argument("--losses", metavar="NAME", action="extend", nargs="+", default=None,
                   help="losses of the main experiment (comma- or space-separated) from "
                   + ", ".join(ld.LOSSES))
    p.add_argument("--norms", metavar="NORM", action="extend", nargs="+", default=None,
                   help="norms: l1 and/or l2 (default both)")
    p.add_argument("--seeds", metavar="S,...", type=_int_list, action="extend", default=None,
                   help="seeds of the network initializations")
    p.add_argument("--steps", metavar="K", type=positive_int, default=None,
                   help="full-batch Adam steps per training phase")
    p.add_argument("--width", metavar="W", type=positive_int, default=None,
                   help="hidden width of both networks")
    p.add_argument("--forward-layers", metavar="L", type=positive_int, default=None,
                   help="fully connected layers of the forward surrogate (default 5)")
    p.add_argument("--inverse-layers", metavar="L", type=positive_int, default=None,
                   help="fully connected layers of the inverse network (default 11)")
    p.add_argument("--samples", metavar="N", type=positive_int, default=None,
                   help="equidistant training samples in [-33, 33] (default 1000)")
    p.add_argument("--lr", metavar="LR", type=positive_float, default=None, help="Adam learning rate")
    p.add_argument("--epsilon", metavar="EPS", type=positive_float, default=None,
                   help="finite-difference step of the Hermite and smoothness terms (default 1)")
    p.add_argument("--derivative-weight", metavar="W", type=nonneg_float, default=None,
                   help="weight of the Hermite derivative term (default 1)")
    p.add_argument("--smooth-weight", metavar="W", type=nonneg_float, default=None,
                   help="weight of the smoothness term (default 1)")
    p.add_argument("--log-every", metavar="K", type=positive_int, default=None,
                   help="record the loss terms every K steps (default steps/50)")
    p.add_argument("--no-rescale", dest="rescale", action="store_false",
                   help="train on y itself instead of y rescaled to [0, 1]")
    p.add_argument("--no-hermite", dest="hermite", action="store_false",
                   help="skip the three-sample Hermite experiment")
    p.add_argument("--no-reduced", dest="reduced", action="store_false",
                   help="skip the reduced-sample encoder-decoder experiment")
    p.add_argument("--quick", action="store_true",
                   help="small networks and a short budget (about 2 minutes on one core)")
    _add_cell_flags(p, "; the tables cover every finished cell in --out")
    p.set_defaults(out=None, handler=lambda args: handle(args, p))


def config_from_args(args: argparse.Namespace):
    """The :class:`physinv.bench.loss_design.LossDesignConfig` that parsed arguments describe."""
    from ..bench.loss_design import QUICK, LossDesignConfig

    given = {"losses": _split_names(args.losses), "norms": _split_names(args.norms), "seeds": args.seeds,
             "steps": args.steps, "width": args.width, "forward_layers": args.forward_layers,
             "inverse_layers": args.inverse_layers, "n_samples": args.samples, "lr": args.lr,
             "epsilon": args.epsilon, "derivative_weight": args.derivative_weight,
             "smooth_weight": args.smooth_weight, "log_every": args.log_every}
    kw = study_kwargs(QUICK if args.quick else None, given)
    return LossDesignConfig(**kw, rescale=args.rescale, hermite=args.hermite, reduced=args.reduced,
                            device=args.device, threads=args.threads, figures=args.figures)


def handle(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``physinv study losses`` from parsed arguments; print the table and the findings."""
    from ..bench import loss_design as ld

    try:
        config = config_from_args(args)
    except ValueError as e:
        flag_error(parser, e, _FLAGS)
    out = study_out(args, LOSSES_OUT)
    res = ld.run(config, out, force=args.force, shard=args.shard, progress=args.progress,
                 argv=sys.argv[1:] if sys.argv else None)
    print(res.table)
    print()
    print("Findings")
    for line in res.findings:
        print(f"- {line}")
    print()
    print_counts(res, args.shard)
    print("wrote " + ", ".join(sorted(res.paths.values())))
    return 1 if res.failed else 0
