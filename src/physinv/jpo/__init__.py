"""Joint parameterized optimization (JPO): one network trained on many inverse problems at once.

Holl and Thuerey, "The Unreasonable Effectiveness of Solving Inverse Problems
with Neural Networks", arXiv 2408.08119, report that a network trained on a
set of inverse problems with the forward model as its only loss (no labels)
often reaches lower losses *on that very set* than BFGS run on each problem
alone. This package measures that claim on physinv's own problems:

- :mod:`physinv.jpo.problems`: the problem families (multimodal, chaotic,
  zero-gradient, imaging) in a registry;
- :mod:`physinv.jpo.optimize`: BFGS / L-BFGS per instance and JPO under one
  budget of forward evaluations per instance;
- :mod:`physinv.jpo.study`: the study behind ``physinv study jpo`` (cells,
  CSV, win fractions with Wilson intervals, figure, provenance).

Examples
--------
>>> from physinv.jpo import get_problem, solve
>>> p = get_problem("wave")
>>> obs, _ = p.generate(4, seed=0)
>>> sorted(solve(p, obs, ("jpo", "bfgs-scipy"), budget=10))
['bfgs-scipy', 'jpo']
"""

from __future__ import annotations

from .optimize import METHODS, MethodResult, jpo, minimize_scipy, minimize_torch, refine, solve
from .problems import PROBLEMS, Problem, get_problem, problem_names

__all__ = ["METHODS", "MethodResult", "jpo", "minimize_scipy", "minimize_torch", "refine", "solve",
           "PROBLEMS", "Problem", "get_problem", "problem_names"]
