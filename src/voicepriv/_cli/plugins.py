"""``voicepriv plugins``: what is installed and which hooks each plugin implements."""

from __future__ import annotations

import argparse
from typing import Any

from voicepriv import hookspecs
from voicepriv.plugins import backend_names, get_plugin_manager, list_plugins


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``plugins`` command."""
    parser = subparsers.add_parser("plugins", help="list installed plugins, hooks and backends")
    parser.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    """Print every plugin, its distribution and hooks, then the backends per kind."""
    manager = get_plugin_manager()
    for info in list_plugins(manager):
        print(f"{info.name}  ({info.distribution or 'registered in code'})")
        for hook in info.hooks:
            print(f"    {hook}")
    print()
    print("backends:")
    for kind in hookspecs.BACKEND_KINDS:
        print(f"  {kind:<17} {', '.join(backend_names(manager, kind)) or '-'}")
    return 0
