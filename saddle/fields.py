"""Config fields: a name, a default, a coercing check and a line of help.

Every component (landscape family, noise model, optimizer) declares its fields with the
constructors here, so validation and error texts are the same everywhere: a bad value raises
:class:`~saddle.errors.ConfigError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, suggest

__all__ = ["FieldSpec", "float_field", "int_field", "choice_field", "bool_field"]


# --------------------------------------------------------------------------------------
# Field checks. Each takes the raw value and returns the coerced one or raises ConfigError.


def _is_bool(v):
    return isinstance(v, bool)


# Numbers as text: ASCII digits only. Python's int() and float() also accept other scripts'
# digits ('１２', '١٢') and underscores ('1_0'); a config value is written in ASCII.
_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
    re.ASCII | re.IGNORECASE,
)


def _parse_number(text: str) -> int | float:
    """An int or float from ASCII text, or ValueError."""
    s = text.strip()
    if _INT_TEXT.fullmatch(s) and len(s) <= 400:  # int() of longer text is slow or refused
        return int(s)
    if _FLOAT_TEXT.fullmatch(s):
        return float(s)
    raise ValueError(text)


def _to_int(name: str, v: Any, lo: int | None = None, hi: int | None = None) -> int:
    allowed = "an integer" + _range_text(lo, hi)
    if _is_bool(v):
        raise ConfigError(name, v, allowed)
    if isinstance(v, str):
        try:
            v = _parse_number(raw := v)
        except ValueError:
            raise ConfigError(name, v, allowed) from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(name, raw, allowed)  # the text as given, not 'inf'
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise ConfigError(name, v, allowed)
        v = int(v)
    if not isinstance(v, int):
        raise ConfigError(name, v, allowed)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(name, v, allowed)
    return v


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {hi}"
    return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _to_float(
    name: str,
    v: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    allowed = "a finite number" + _range_text(lo, hi, lo_open, hi_open)
    if _is_bool(v):
        raise ConfigError(name, v, allowed)
    if isinstance(v, str):
        try:
            v = float(_parse_number(raw := v))
        except (ValueError, OverflowError):
            raise ConfigError(name, v, allowed) from None
        if not math.isfinite(v):
            raise ConfigError(name, raw, allowed)  # the text as given, not 'inf'
    if not isinstance(v, int | float):
        raise ConfigError(name, v, allowed)
    try:
        v = float(v)
    except OverflowError:  # an int beyond float's range
        raise ConfigError(name, v, allowed) from None
    if not math.isfinite(v):
        raise ConfigError(name, v, allowed)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(name, v, allowed)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(name, v, allowed)
    return v


def _to_choice(name: str, v: Any, choices: tuple[str, ...]) -> str:
    allowed = "one of " + ", ".join(choices)
    if not isinstance(v, str) or v not in choices:
        hint = None
        if isinstance(v, str):
            s = suggest(v, choices)
            hint = f"did you mean {s!r}?" if s else None
        raise ConfigError(name, v, allowed, hint)
    return v


def _to_bool(name: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    raise ConfigError(name, v, "true or false")


@dataclass(frozen=True)
class FieldSpec:
    """One config field: its default, a coercing check and a one-line description."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    kind: str = "float"  # int, float, str, bool: what the CLI parses

    def coerce(self, value: Any) -> Any:
        return self.check(value)


def float_field(name, default, help, group, **kw):
    return FieldSpec(name, default, lambda v: _to_float(name, v, **kw), help, group)


def int_field(name, default, help, group, **kw):
    return FieldSpec(name, default, lambda v: _to_int(name, v, **kw), help, group, kind="int")


def choice_field(name, default, choices, help, group):
    return FieldSpec(
        name, default, lambda v: _to_choice(name, v, choices), help, group, choices, "str"
    )


def bool_field(name, default, help, group):
    return FieldSpec(name, default, lambda v: _to_bool(name, v), help, group, kind="bool")
