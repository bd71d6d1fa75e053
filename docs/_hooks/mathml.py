"""MkDocs hook: typeset the pages' math at build time as MathML, so the site needs no script
and no network to show formulas.

``pymdownx.arithmatex`` (generic mode) leaves each formula as ``<span class="arithmatex">\\(
... \\)</span>`` (inline) or ``<div class="arithmatex">\\[ ... \\]</div>`` (display), the TeX
HTML-escaped. This hook converts each one with ``latex2mathml``; browsers render MathML
natively. A formula the converter cannot read fails the build (``mkdocs build --strict`` is the
docs check), rather than leaving raw TeX on the page.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _mathml(tex: str, display: str, where: str) -> str:
    tex = html.unescape(tex).strip()
    try:
        return convert(tex, display=display)
    except Exception as e:  # the converter raises several types; name the formula
        raise ValueError(f"{where}: cannot convert formula {tex!r} to MathML: {e}") from e


def on_page_content(html_text: str, page, config, files) -> str:
    where = page.file.src_path
    html_text = _BLOCK.sub(
        lambda m: '<div class="arithmatex math-display">'
        + _mathml(m.group(1), "block", where) + "</div>", html_text)
    return _INLINE.sub(
        lambda m: '<span class="arithmatex">' + _mathml(m.group(1), "inline", where)
        + "</span>", html_text)
