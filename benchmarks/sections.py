"""The benchmark's section letters, checked without importing the numerical stack."""

from __future__ import annotations

SECTIONS = "ABCDGN"


def parse_sections(text: str | None) -> str | None:
    """The ``--sections`` value, upper-cased; None for the default. Raises ValueError with
    the one-line message both front ends print."""
    if text is None:
        return None
    if not text or set(text.upper()) - set(SECTIONS):
        raise ValueError(f"--sections: got {text!r}; allowed: letters from {SECTIONS}")
    return text.upper()
