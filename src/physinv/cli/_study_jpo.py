"""``physinv study jpo``: joint parameterized optimization against per-instance BFGS / L-BFGS.

The command parses, runs :func:`physinv.jpo.study.run` and prints the win
table; the work lives in :mod:`physinv.jpo`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import (
    DEFAULT_OUT_DIR,
    flag_error,
    positive_float,
    positive_int,
    print_counts,
    study_kwargs,
    study_out,
)
from .bench import _add_cell_flags, _int_list, _split_names

__all__ = ["register", "config_from_args", "handle", "JPO_OUT"]

#: Default output folder of ``physinv study jpo``.
JPO_OUT = os.path.join(DEFAULT_OUT_DIR, "study-jpo")

# Field of JPOConfig (as it starts a ValueError message) -> its flag.
_FLAGS = {"problems": "--problems", "n_problems": "--n-problems", "seeds": "--seeds", "methods": "--methods",
          "budget": "--budget", "refine": "--refine", "hidden": "--hidden", "lr": "--lr",
          "device": "--device", "rtol": "--rtol"}


def _problem_names(text: str) -> str:
    from ..jpo.problems import problem_names

    bad = [n for n in (p.strip() for p in text.split(",")) if n and n not in problem_names()]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown problem(s) {bad}; choose from "
                                         f"{', '.join(problem_names())}")
    return text


def _method_names(text: str) -> str:
    from ..jpo.optimize import METHODS

    bad = [n for n in (p.strip() for p in text.split(",")) if n and n not in METHODS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    return text


def register(subparsers: Any, common: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``physinv study jpo`` to the ``study`` group.

    Examples
    --------
    >>> import argparse
    >>> from physinv.cli._common import common_parsers
    >>> p = argparse.ArgumentParser()
    >>> register(p.add_subparsers(dest="study"), common_parsers())
    >>> p.parse_args(["jpo", "--quick", "--problems", "wave"]).problems
    ['wave']
    """
    from ..jpo import study as js
    from ..jpo.optimize import METHODS
    from ..jpo.problems import problem_names

    quick = ", ".join(f"{k}={' '.join(map(str, v)) if isinstance(v, tuple) else v}"
                      for k, v in js.QUICK.items())
    p = subparsers.add_parser(
        "jpo", parents=[common[k] for k in ("out", "threads", "device", "progress")],
        help="joint parameterized optimization (one network on all instances) vs BFGS per instance",
        description="Solve N instances of each problem with per-instance BFGS / L-BFGS (scipy, torch) and "
        "with joint parameterized optimization (a network trained on all N instances with the forward "
        "model as its loss), all from the same starting points with the same number of forward "
        "evaluations per instance, and report on how many instances each JPO variant reaches a lower "
        "loss than bfgs-scipy, with Wilson intervals, as N grows. Writes jpo.csv, jpo_summary.csv, "
        "jpo.md, provenance.json, figures/jpo_win_fraction.png and cells/ (read back on the next run) "
        "to --out. Exit status 1 when some cells failed.",
        epilog=f"Defaults: --problems {' '.join(problem_names())}; --n-problems "
        f"{','.join(map(str, js.DEFAULT_N))}; --seeds 0,1,2; --budget 200; --refine 50. --quick: {quick}.")
    p.add_argument("--problems", metavar="NAME", type=_problem_names, action="extend", nargs="+",
                   default=None,
                   help=f"problems ({', '.join(problem_names())}; comma- or space-separated)")
    p.add_argument("--n-problems", metavar="N,...", type=_int_list, action="extend", default=None,
                   help="numbers of instances solved jointly (comma-separated)")
    p.add_argument("--seeds", metavar="S,...", type=_int_list, action="extend", default=None,
                   help="seeds (instances, noise, network initialisation)")
    p.add_argument("--methods", metavar="NAME", type=_method_names, action="extend", nargs="+", default=None,
                   help=f"methods ({', '.join(METHODS)}); must include bfgs-scipy, the reference")
    p.add_argument("--budget", metavar="E", type=positive_int, default=None,
                   help="forward evaluations per instance for every method")
    p.add_argument("--refine", metavar="R", type=positive_int, default=None,
                   help="L-BFGS-B evaluations of jpo+lbfgs, taken from the same budget (< --budget)")
    p.add_argument("--lr", metavar="LR", type=positive_float, default=None, help="Adam learning rate of JPO")
    p.add_argument("--hidden", metavar="W,...", type=_int_list, default=None,
                   help="hidden widths of the JPO network (comma-separated)")
    p.add_argument("--rtol", metavar="R", type=positive_float, default=None,
                   help="relative tie tolerance of the comparison (default 1e-3)")
    p.add_argument("--quick", action="store_true", help=f"small configuration (a few minutes): {quick}")
    _add_cell_flags(p)
    p.set_defaults(out=None, handler=lambda args: handle(args, p))


def config_from_args(args: argparse.Namespace):
    """The :class:`physinv.jpo.study.JPOConfig` that parsed arguments describe."""
    from ..jpo.study import QUICK, JPOConfig

    given = {"problems": _split_names(args.problems), "n_problems": args.n_problems, "seeds": args.seeds,
             "methods": _split_names(args.methods), "budget": args.budget, "refine": args.refine,
             "lr": args.lr, "hidden": args.hidden, "rtol": args.rtol}
    kw = study_kwargs(QUICK if args.quick else None, given)
    if "budget" in kw and "refine" not in kw:
        kw["refine"] = max(1, kw["budget"] // 4)
    return JPOConfig(**kw, device=args.device, threads=args.threads, figures=args.figures)


def handle(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``physinv study jpo`` from parsed arguments; print the budget, tie rule and win tables."""
    from ..jpo import study as js

    try:
        config = config_from_args(args)
    except ValueError as e:
        flag_error(parser, e, _FLAGS)
    out = study_out(args, JPO_OUT)
    res = js.run(config, out, force=args.force, shard=args.shard, progress=args.progress,
                 argv=sys.argv[1:] if sys.argv else None)
    print(f"Budget: {res.budget}")
    print(f"Tie rule: {res.tie} (ties count as not won); paper's average: "
          f"{100 * js.PAPER_WIN_FRACTION:.0f}% of problems")
    print()
    print(res.table)
    print()
    print_counts(res, args.shard)
    print("wrote " + ", ".join(sorted(res.paths.values())))
    return 1 if res.failed else 0
