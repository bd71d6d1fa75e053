"""Shared CLI pieces: config flags that mirror the config fields, and output helpers."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from ..config import FIELDS, Config, load_toml
from ..errors import SaddleInputError

__all__ = [
    "add_config_arguments",
    "config_from_args",
    "print_json",
    "want_progress",
    "PlainProgress",
    "progress_bar",
    "ensure_out_dir",
    "show_store_warnings",
    "os_errors_in_one_line",
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
        text = spec.help
        if spec.choices:
            text = f"{text}: {{{', '.join(spec.choices)}}}"
        if "(default" in spec.help:
            help_text = text  # the field's help states its default itself
        elif spec.default is None:
            help_text = f"{text} (default: {_component_default(name)})"
        else:
            help_text = f"{text} (default: {spec.default})"
        help_text = help_text.replace("%", "%%")  # argparse %-formats help strings
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


def _component_default(name: str) -> str:
    """Where a field without a global default gets its value: the component's default."""
    from ..registry import FAMILIES

    for reg in FAMILIES:
        if name in reg.fields():
            return f"the {reg.family}'s; see below" if reg.family == "optimizer" else \
                f"the {reg.family}'s"
    return "none"


def optimizer_defaults_epilog() -> str:
    """One line per optimizer with its default hyperparameters (its spec's ``defaults``)."""
    from ..registry import OPTIMIZERS

    lines = ["optimizer defaults (a flag not given takes its optimizer's value):"]
    for spec in OPTIMIZERS:
        vals = ", ".join(f"{k}={v}" for k, v in spec.defaults.items() if v is not None)
        lines.append(textwrap.fill(f"{spec.name}: {vals or '-'}", width=78,
                                   initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


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


def positive_int(flag: str, value: Any) -> int | None:
    """A flag's value as an integer >= 1 (ASCII digits only), None if not given."""
    if value is None:
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise SaddleInputError(f"{flag}: got {_short(value)}; allowed: an integer >= 1")
    return int(text)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def want_progress(args: argparse.Namespace) -> str | None:
    """How to show progress: ``"bar"`` (a rich bar, stderr is a terminal), ``"lines"``
    (plain lines every few seconds, for logs and pipes) or None (``--quiet``)."""
    if getattr(args, "quiet", False):
        return None
    return "bar" if sys.stderr.isatty() else "lines"


# Seconds between two plain progress lines (a command shorter than this prints none).
PROGRESS_EVERY = 5.0


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class PlainProgress:
    """Plain progress lines on stderr for when it is not a terminal: ``saddle: NAME: runs
    DONE/TOTAL (P%), elapsed H:MM:SS, ETA H:MM:SS``, at most one every
    :data:`PROGRESS_EVERY` seconds, the first after that long, and a last one at the end if
    any was printed (so a command that takes a few seconds stays silent)."""

    def __init__(self, label: str = "runs", every: float | None = None, clock=None):
        import time

        self.label = label
        self.every = PROGRESS_EVERY if every is None else every
        self._now = clock or time.monotonic
        self.t0 = self._now()
        self.last = self.t0
        self.total: int | None = None
        self.done = 0
        self.counts: dict | None = None
        self.printed = False

    def start(self, total: int, skipped: int = 0) -> None:
        self.total, self.skipped = total, skipped

    def update(self, done: int, counts: dict | None = None) -> None:
        """Runs done so far (absolute)."""
        self.done = done
        self.counts = counts
        now = self._now()
        if now - self.last >= self.every:
            self.last = now
            self.line(now)

    def advance(self, k: int, counts: dict | None = None) -> None:
        self.update(self.done + k, counts)

    def line(self, now: float | None = None) -> None:
        now = self._now() if now is None else now
        elapsed = now - self.t0
        total = self.total
        text = f"saddle: {self.label}: runs {self.done}"
        if total:
            text += f"/{total} ({100 * self.done / total:.0f}%)"
        if self.counts:
            text += (f", {self.counts.get('escaped', 0)} escaped, "
                     f"{self.counts.get('censored', 0)} censored, "
                     f"{self.counts.get('diverged', 0)} diverged")
        text += f", elapsed {_clock(elapsed)}"
        if total and 0 < self.done < total:
            text += f", ETA {_clock(elapsed * (total - self.done) / self.done)}"
        print(text, file=sys.stderr, flush=True)
        self.printed = True

    def finish(self) -> None:
        if self.printed:
            self.line()


def progress_bar(columns: str = "runs", console=None):
    """A rich progress bar that fits 80 columns: name, bar, done/total, then the escaped
    and diverged counts (``columns="counts"``) or the elapsed time, and the ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # Widths at the worst: label 14 (+ " (+N)" stored), bar 12, done/total 13, counts 16,
    # elapsed or ETA 11: within 80 columns with rich's one-space separators.
    cols = [TextColumn("[bold]{task.description}"), BarColumn(bar_width=12),
            MofNCompleteColumn()]
    if columns == "counts":
        # escaped (green) and diverged (red); the rest of the done runs are censored
        cols.append(TextColumn("[green]✓{task.fields[escaped]}[/] "
                               "[red]✗{task.fields[diverged]}[/]"))
    else:
        cols.append(TimeElapsedColumn())
    cols += [TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*cols, transient=columns != "counts", console=console)


def short_name(name: str, width: int = 14) -> str:
    """A bar's label cut to ``width`` characters (the bar must fit 80 columns)."""
    return name if len(name) <= width else name[: width - 1] + "…"


def ensure_out_dir(path: str | Path, field: str = "--out", create: bool = True) -> Path:
    """A writable output directory, created if missing (its parent must exist)."""
    if not str(path).strip():
        # Path("") is the current directory: an empty value is a mistake, not a choice.
        raise SaddleInputError(f"{field}: got {str(path)!r}; allowed: a directory path")
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


class _StderrHandler(logging.Handler):
    """``saddle: warning: ...`` lines on the *current* sys.stderr (a progress bar replaces
    sys.stderr while it runs, and its lines then stay above the bar)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"saddle: warning: {' '.join(self.format(record).split())}",
                  file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def show_store_warnings() -> None:
    """Print the store's warnings (a part moved to quarantine ...) on stderr, one line
    each. Idempotent; the library itself only logs (logger ``saddle.store``)."""
    logger = logging.getLogger("saddle")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler(logging.WARNING))
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    # Propagation stays on: with a handler here the root logger's last resort (a second,
    # bare copy) is not used, and handlers an embedding program or pytest put on the root
    # logger still see the records.


# Errors of the machine, not of the code: the disk is full, read-only or not ours.
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "EFBIG")
    if hasattr(errno, n))


@contextlib.contextmanager
def os_errors_in_one_line(what: str):
    """Turn a full, read-only or forbidden filesystem while ``what`` into one line (exit 2),
    without a traceback; other OSErrors are bugs and keep theirs."""
    try:
        yield
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f" {e.filename}" if e.filename else ""
        name = errno.errorcode.get(e.errno, "")
        raise SaddleInputError(f"{what}: cannot write{where}: {e.strerror} ({name})") from None
