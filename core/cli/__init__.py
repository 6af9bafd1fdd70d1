"""The command line (DESIGN.md §7). ``main.py`` hands its arguments to :func:`main`.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``,
loaded here by name; what they share (``UsageError``, loading a SOURCE) is :mod:`core.cli.common`,
so no subcommand imports this package back.
Exit status: 0 ok, 1 when a source has error diagnostics (or training failed), 2 for usage or
unreadable input, with a one-line message on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.cli.common import UsageError

SUBCOMMANDS = ("summary", "export", "import", "templates", "train", "weights", "evaluate", "sample")


def _module_for(name: str) -> str:
    return {"import": "import_"}.get(name, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py", description="NetCanvas: draw neural networks, check them, train them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"core.cli.{_module_for(name)}")
        except ModuleNotFoundError as exc:
            if exc.name != f"core.cli.{_module_for(name)}":
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse already printed its usage line
        return int(exc.code or 0) and 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `main.py summary … | head`: the reader left; exit quietly like other Unix tools.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


__all__ = ["SUBCOMMANDS", "UsageError", "build_parser", "main"]
