"""The shape of the code: functions stay short, and a component's name lives in its own
module (plus at most two others), so adding one touches one file. (Import cycles:
tests/test_imports.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from saddle.config import FIELDS
from saddle.registry import NOISES, OPTIMIZERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("saddle", "benchmarks")
MAX_FUNCTION_LINES = 80


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
