"""The ``saddle`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)`` (which adds its
parser and sets ``func``). Bad input of any kind ends in one line on stderr naming what is
wrong and what is allowed, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import NoReturn

from ..errors import SaddleInputError

__all__ = ["main", "entry", "run_program", "build_parser", "ArgumentParser"]

# Subcommand modules, in the order `saddle --help` lists them.
SUBCOMMANDS = ("run", "sweep", "results", "plot", "bounds", "bench", "reproduce")


class UsageError(SaddleInputError):
    pass


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) raised as exceptions."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A negative number is a value, not a flag, in every form a field accepts: argparse
        # knows -3 and -.5 but took --sigma -1e-3 for a missing value.
        self._negative_number_matcher = re.compile(
            r"^-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^-(?:inf|infinity|nan)$",
            re.IGNORECASE)

    def error(self, message: str):  # noqa: D401 - argparse's signature
        if message.startswith("unrecognized arguments:"):
            from ..errors import suggest

            flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    near = suggest(word.split("=")[0], flags)
                    if near:
                        message += f" (did you mean {near}?)"
                    break
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="saddle",
        description="A numerical laboratory for optimizer dynamics at high-dimensional saddles.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"saddle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # subcommand not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            target = _subparser(parser, getattr(args, "command", None)) or parser
            target.error(f"unrecognized arguments: {' '.join(extra)}")
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except SaddleInputError as e:
        print(f"saddle: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saddle: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    """The ``saddle`` program: :func:`main`, ended by :func:`run_program`."""
    run_program(main)


def run_program(program: Callable[[], int | None]) -> NoReturn:
    """Run a program's main function, then exit without the interpreter's teardown.

    pyarrow's native thread pools can abort a finished process at interpreter exit
    (``std::terminate`` on a still-joinable worker, exit code -6; apache/arrow#34314). By
    the time ``program`` returns, every result is on disk and every pool this package
    started is shut down, so the process flushes its streams and leaves with ``os._exit``
    and the program's own exit code. An exception the program does not turn into a
    one-line error (a bug) still ends the ordinary way, with its traceback.
    """
    try:
        code = int(program() or 0)
    except SystemExit as e:  # argparse's --help and --version, sys.exit(0)
        if not (e.code is None or isinstance(e.code, int)):
            raise
        code = e.code or 0
    gc.collect()  # run the finalizers of whatever is already garbage
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to say
            pass
    os._exit(code)


def _subparser(parser: argparse.ArgumentParser, name: str | None):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    entry()
