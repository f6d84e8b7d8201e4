"""``voicepriv``: the command line, a thin shell over the library.

Each command group lives in a private module of :mod:`voicepriv._cli` that defines
``register(subparsers)``; it adds its parser(s) and sets ``handler=function(args) -> int``.
Errors from voicepriv are printed as one line naming the input and the problem (exit code 2);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from voicepriv import __version__, _cli
from voicepriv.errors import VoiceprivError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group found in :mod:`voicepriv._cli`."""
    parser = argparse.ArgumentParser(
        prog="voicepriv",
        description="Record contact-center calls lawfully: decide, isolate, encrypt, erase, audit.",
    )
    parser.add_argument("--version", action="version", version=f"voicepriv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(_cli.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_cli.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 1 a check failed, 2 an error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code: int = handler(args)
    except VoiceprivError as exc:
        print(f"voicepriv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voicepriv: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
