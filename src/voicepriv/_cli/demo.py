"""``voicepriv demo``: the main job end to end on the embedded default (see voicepriv.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="ingest a real two-party call under a demo policy, erase the caller, verify the audit",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("voicepriv-demo"),
        help="folder to work in (default ./voicepriv-demo)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a previous demo in that folder"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every check passed, 1 when the caller's voice was found stored."""
    from voicepriv.demo import run_demo

    report = run_demo(args.dir, overwrite=args.overwrite)
    return 0 if report.customer_correlation < 0.05 else 1
