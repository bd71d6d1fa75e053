"""Shared CLI pieces: config flags that mirror the config fields, and output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import FIELDS, Config, load_toml
from ..errors import SaddleInputError

__all__ = [
    "add_config_arguments",
    "config_from_args",
    "print_json",
    "want_progress",
    "ensure_out_dir",
]


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.toml`` plus one flag per config field (``--escape-rank`` ...)."""
    parser.add_argument(
        "--config", metavar="FILE.toml", help="a TOML file of config fields; flags override it"
    )
    groups: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        g = groups.get(spec.group)
        if g is None:
            g = groups[spec.group] = parser.add_argument_group(f"{spec.group} fields")
        default = "optimizer's default" if spec.default is None else spec.default
        help_text = f"{spec.help} (default: {default})"
        if spec.choices:
            help_text = f"{spec.help}: {{{', '.join(spec.choices)}}} (default: {default})"
        if spec.kind == "bool":
            g.add_argument(
                flag_name(name),
                dest=f"field_{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            # Values stay strings here; Config.from_dict coerces and validates them, so a
            # bad value gets the same one-line error from a flag as from a TOML file.
            g.add_argument(
                flag_name(name),
                dest=f"field_{name}",
                metavar=spec.kind.upper(),
                default=None,
                help=help_text,
            )


def config_from_args(args: argparse.Namespace, **overrides: Any) -> Config:
    data: dict[str, Any] = {}
    if getattr(args, "config", None):
        data.update(load_toml(args.config))
    for name in FIELDS:
        v = getattr(args, f"field_{name}", None)
        if v is not None:
            data[name] = v
    data.update(overrides)
    return Config.from_dict(data)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def print_json(obj: Any) -> None:
    json.dump(_jsonable(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def want_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def ensure_out_dir(path: str | Path, field: str = "--out", create: bool = True) -> Path:
    """A writable output directory, created if missing (its parent must exist)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SaddleInputError(f"{field}: {str(p)!r} exists and is not a directory")
    if not p.exists():
        if not create or not p.parent.exists():
            raise SaddleInputError(
                f"{field}: {str(p)!r} does not exist and its parent {str(p.parent)!r} is missing"
            )
        try:
            p.mkdir()
        except OSError as e:
            raise SaddleInputError(f"{field}: cannot create {str(p)!r}: {e.strerror}") from None
    # A probe file of its own (unique name, removed on close): two sweeps started into one
    # directory at once must not delete each other's probe.
    try:
        with tempfile.TemporaryFile(dir=p, prefix=".saddle-write-test-"):
            pass
    except OSError:
        raise SaddleInputError(f"{field}: {str(p)!r} is not writable") from None
    return p


def start_numerics() -> None:
    """The CLI's numerical settings, set once, after the input is validated and before the
    first computation: x64 on, so that float64 configs run anywhere in a sweep and every
    float32 run of the process sees the same setting (the test suite does the same)."""
    from ..numerics import enable_x64

    enable_x64()
