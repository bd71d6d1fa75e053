"""The shape of the code: imports run one way, functions stay short, and a component's name
lives in its own module (plus at most two others), so adding one touches one file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from saddle.config import FIELDS
from saddle.registry import NOISES, OPTIMIZERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("saddle", "benchmarks")
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of the tree that ``name`` imports, at the top or inside functions."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[: len(base) - node.level + 1]
                mod = ".".join(stem + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _package_of(module: str, known: set[str]) -> str:
    return module if (ROOT / module.replace(".", "/") / "__init__.py").exists() else \
        module.rpartition(".")[0]


def test_no_import_cycles_between_modules():
    mods = _modules()
    known = set(mods)
    graph = {m: _imports(m, p, known) for m, p in mods.items()}
    # A package's __init__ re-exporting its submodules is not a cycle with them: drop edges
    # from a module to the packages that contain it.
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _function_lengths():
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    body = node.body
                    if body and isinstance(body[0], ast.Expr) and isinstance(
                            getattr(body[0], "value", None), ast.Constant):
                        body = body[1:]  # the docstring does not count
                    if body:
                        n = body[-1].end_lineno - body[0].lineno + 1
                        yield f"{p.relative_to(ROOT)}::{node.name}", n


def test_no_function_over_80_lines():
    long = [(f, n) for f, n in _function_lengths() if n > MAX_FUNCTION_LINES]
    assert not long, long


def _string_constants(path: Path) -> set[str]:
    """The string literals of a module, except its ``__all__`` (names, not components)."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.update(id(c) for c in ast.walk(node.value))
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip}


@pytest.mark.parametrize("registry", [OPTIMIZERS, NOISES], ids=["optimizers", "noises"])
def test_component_names_appear_in_at_most_three_library_files(registry):
    strings = {p: _string_constants(p) for p in sorted((ROOT / "saddle").rglob("*.py"))}
    # A name that is also a value of another choice field (noise "none" and Muon's scaling
    # "none") cannot be told apart by text; those are skipped.
    other_choices = {c for name, f in FIELDS.items() if f.choices and name != registry.family
                     for c in f.choices}
    for spec in registry:
        if spec.name in other_choices:
            continue
        where = [str(p.relative_to(ROOT)) for p, s in strings.items() if spec.name in s]
        assert len(where) <= 3, (spec.name, where)
