"""No import cycles among the lab's own modules (saddle, with saddle.theory, and benchmarks).

Every ``import`` and ``from ... import`` counts, at module level or inside a function:
a lazy import only hides a cycle until the function runs. Relative imports are resolved
against the importing module; ``from pkg import name`` is an edge to ``pkg.name`` when that
is a module and to ``pkg`` otherwise. A submodule's implicit import of its parent package
is not an edge (every package would otherwise form a cycle with its own submodules).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("saddle", "benchmarks")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, whether it is a package's __init__)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _targets(node, package: str, modules) -> list[str]:
    """The lab modules an import statement loads."""

    def known(name):
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in modules:
                return ".".join(parts[:k])
        return None

    if isinstance(node, ast.Import):
        return [t for t in (known(a.name) for a in node.names) if t]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        full = ".".join(base + ([node.module] if node.module else []))
    else:
        full = node.module
    out = []
    for a in node.names:
        sub = f"{full}.{a.name}"
        t = sub if sub in modules else known(full)
        if t:
            out.append(t)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, (path, is_pkg) in modules.items():
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[mod].update(t for t in _targets(node, package, modules) if t != mod)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while comp[-1:] != [v]:
                comp.append(stack.pop())
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_checker_resolves_relative_and_lazy_imports():
    graph = import_graph()
    assert "saddle.config" in graph["saddle.engine.structure"]  # from ..config import ...
    # lazy, inside a function
    assert "saddle.kernels.elementwise" in graph["saddle.engine.numba_adapter"]
    # from . import resolvent
    assert "saddle.theory.resolvent" in graph["saddle.theory.diagnostics"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []
