"""Regenerate the formula blocks of docs/theory/*.md from the theory registry.

Each page holds, between the markers ``<!-- formulas:begin -->`` and
``<!-- formulas:end -->``, one block per result whose ``page`` is that page: its title, the
sympy LaTeX of ``Result.latex`` and of its definitions, its assumptions and its D-dependence.
Run ``python docs/theory/_generate.py`` after changing a result; ``--check`` exits 1 when a
page is stale (for CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from saddle import theory  # noqa: E402

BEGIN, END = "<!-- formulas:begin -->", "<!-- formulas:end -->"


def block(r) -> str:
    lines = [f"### `{r.name}`: {r.title}", "", f"Kind: **{r.kind}** on `{r.quantity}`"
             + (f", optimizer `{r.optimizer}`." if r.optimizer else "."), "", "$$", r.latex, "$$"]
    defs = r.definition_latex()
    if defs:
        lines += ["", "where", "", "$$", r" ,\qquad ".join(defs), "$$"]
    lines += ["", "Assumptions:", ""]
    for a in r.assumptions:
        where = "trajectory state" if a.on == "state" else "config"
        lines.append(f"- `{a.name}` ({where}): {a.description}")
    lines += ["", f"Dimension dependence: {r.d_dependence}."]
    if r.summary:
        lines += ["", f"Note: {r.summary}."]
    return "\n".join(lines)


def render(page: str) -> str:
    blocks = [block(r) for r in theory.RESULTS.values() if r.page == page]
    return "\n\n".join([BEGIN, *blocks, END])


def update(path: Path) -> tuple[str, str]:
    text = path.read_text()
    if BEGIN not in text:
        return text, text
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return text, head + render(path.stem) + tail


def main(argv: list[str]) -> int:
    stale = []
    for path in sorted(HERE.glob("*.md")):
        old, new = update(path)
        if old != new:
            stale.append(path.name)
            if "--check" not in argv:
                path.write_text(new)
    if "--check" in argv and stale:
        print("stale:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
