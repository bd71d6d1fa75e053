"""Errors the lab raises for bad input.

Every user-facing error names the offending field, the bad value and what is allowed, and
fits on one line. The CLI turns :class:`SaddleInputError` into that line on stderr and exit
code 2, without a traceback.
"""

from __future__ import annotations

import difflib

__all__ = ["ConfigError", "SaddleInputError", "suggest"]


class SaddleInputError(ValueError):
    """Bad input from the user: a config, a spec, a path or a CLI flag."""


class ConfigError(SaddleInputError):
    """A config field with a value outside its allowed set.

    Attributes:
        field: the config field's name.
        value: the rejected value.
        allowed: a short description of what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str, hint: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        msg = f"{field}: got {_short(value)}; allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a pasted file must not flood the line)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suggest(name: str, candidates) -> str | None:
    """The closest candidate to a misspelled ``name``, or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None
