"""The layer rule of the package, checked on its source: no module imports from a higher layer, and
the import graph has no cycle except the one documented lazy call.

Layers, bottom to top (docs/architecture.md draws them)::

    0 utilities   physinv._validate, _io, _random, spectrum, psf, metrics
    1 operators   physinv.operators (and physinv.testing, the operator battery)
    2 methods     physinv.solvers, physinv.data, physinv.losses
    3 learning    physinv.nets, physinv.train
    4 studies     physinv.bench, physinv.deblur, physinv.jpo, physinv.ir
    5 interface   physinv.cli

The package root (``physinv/__init__.py``, ``physinv/__main__.py``) sits above everything.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import physinv

ROOT = Path(physinv.__file__).resolve().parent

LAYERS: dict[str, int] = {
    "physinv._validate": 0, "physinv._io": 0, "physinv._random": 0, "physinv._version": 0,
    "physinv.spectrum": 0, "physinv.psf": 0, "physinv.metrics": 0, "physinv.assets": 0,
    "physinv.operators": 1, "physinv.testing": 1,
    "physinv.solvers": 2, "physinv.data": 2, "physinv.losses": 2,
    "physinv.nets": 3, "physinv.train": 3,
    "physinv.bench": 4, "physinv.deblur": 4, "physinv.jpo": 4, "physinv.ir": 4,
    "physinv.cli": 5,
}
TOP = ("physinv", "physinv.__main__")

#: The one lazy import allowed to point back into a module's own import chain:
#: ``LinearOperator.svd(k=...)`` reaches the numerical truncated SVD, which needs ``Matrix``
#: (an operator built on the base class). Everything else imports one way.
ALLOWED_LAZY_CYCLE_EDGES: set[tuple[str, str]] = {("physinv.operators.base", "physinv.operators.matrix")}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_package(name: str) -> bool:
    return (ROOT.parent / Path(*name.split(".")) / "__init__.py").exists()


def layer_of(name: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def _resolve(mod: str, node: ast.ImportFrom) -> list[str]:
    pkg = mod if is_package(mod) else mod.rpartition(".")[0]
    base_parts = pkg.split(".")
    if node.level > 1:
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
    base = ".".join(base_parts) if node.level else ""
    target = ".".join(p for p in (base, node.module or "") if p)
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if (ROOT.parent / Path(*sub.split("."))).with_suffix(".py").exists() or is_package(sub):
            out.append(sub)
        else:
            out.append(target)
    return out


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported physinv module, lazy) for every import in the file, TYPE_CHECKING blocks excluded."""
    mod = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub, lazy)
                continue
            child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, lazy) for a in child.names if a.name.split(".")[0] == "physinv")
            elif isinstance(child, ast.ImportFrom):
                if child.level or (child.module or "").split(".")[0] == "physinv":
                    found.extend((t, lazy) for t in _resolve(mod, child))
            visit(child, child_lazy)

    visit(tree, False)
    return found


SOURCES = sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_layer():
    unknown = [module_name(p) for p in SOURCES
               if module_name(p) not in TOP and layer_of(module_name(p)) is None]
    assert not unknown, f"modules without a layer (add them to LAYERS and docs/architecture.md): {unknown}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_import_from_a_higher_layer(path):
    mod = module_name(path)
    if mod in TOP:
        return
    mine = layer_of(mod)
    bad = [(t, lazy) for t, lazy in imports_of(path)
           if t not in TOP and layer_of(t) is not None and layer_of(t) > mine]
    assert not bad, f"{mod} (layer {mine}) imports from higher layers: {bad}"


def _graph(include_lazy: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        mod = module_name(path)
        if mod in TOP:
            continue
        edges = graph.setdefault(mod, set())
        for target, lazy in imports_of(path):
            if lazy and not include_lazy:
                continue
            if target in TOP or mod == target or mod.startswith(target + "."):
                continue  # a module's own package __init__ is no edge
            if (mod, target) in ALLOWED_LAZY_CYCLE_EDGES:
                continue
            edges.add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle():
    assert _cycles(_graph(include_lazy=True)) == []


def test_every_module_imports_on_its_own():
    """Importing any module first (no package-level import order to lean on) works."""
    import subprocess
    import sys

    mods = [module_name(p) for p in SOURCES if module_name(p) not in TOP and p.name != "__main__.py"]
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    for k in [k for k in sys.modules if k == 'physinv' or k.startswith('physinv.')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n")
    res = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def test_resolver_sees_relative_imports():
    """The checker itself: a relative import inside operators resolves to the operators package."""
    spec = importlib.util.find_spec("physinv.operators.convolution")
    assert spec is not None
    targets = {t for t, _ in imports_of(Path(spec.origin))}
    assert any(t.startswith("physinv.operators.") for t in targets)
    assert layer_of("physinv.operators.convolution") == 1
    assert layer_of("physinv.cli.bench") == 5


def test_shipped_assets_module_imports_nothing_from_physinv():
    # data/__init__.py is installed as physinv.assets (layer 0): a leaf, stdlib and numpy only.
    path = ROOT.parents[1] / "data" / "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [ast.unparse(n) for n in ast.walk(tree)
           if (isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("physinv")))
           or (isinstance(n, ast.Import) and any(a.name.startswith("physinv") for a in n.names))]
    assert not bad, f"physinv.assets must not import from physinv: {bad}"
