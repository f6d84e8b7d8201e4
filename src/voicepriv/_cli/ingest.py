"""``voicepriv ingest``: many calls into a vault, resumable, locally or on a Dask cluster.

Everything the command is given is checked before a call is ingested (or a vault created with
``--init``): the policy, the separator with its ``--separator-option`` values, and the metadata
adapter with its ``--adapter-option`` values. A bad option fails the command once, naming the
option and the backend, instead of failing every call.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from voicepriv._cli._options import parse_options
from voicepriv.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``ingest`` command."""
    parser = subparsers.add_parser(
        "ingest",
        help="decide, isolate, store and audit every call of a folder or manifest",
        description=(
            "Ingest the calls described by a record file (manifest) or by every *.json / *.csv "
            "record file in a folder. A journal (journal.jsonl in the vault folder) makes "
            "re-runs skip calls already done; failed calls are retried."
        ),
    )
    parser.add_argument("source", type=Path, metavar="DIR_OR_MANIFEST")
    parser.add_argument("--policy", required=True, type=Path, help="the policy TOML")
    parser.add_argument("--vault", required=True, type=Path, help="the vault folder")
    parser.add_argument(
        "--init", action="store_true", help="create the vault first when it does not exist"
    )
    parser.add_argument(
        "--adapter", help="metadata adapter for every record file (default by suffix)"
    )
    parser.add_argument(
        "--adapter-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for the --adapter adapter, which it needs (repeatable); "
        "VALUE is read as JSON when it parses, else as a number, a boolean or text",
    )
    parser.add_argument(
        "--separator",
        help="separator backend for agent-only calls (default by layout: channels for stereo "
        "calls, speaker for mono ones)",
    )
    parser.add_argument(
        "--separator-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for the --separator backend, which it needs (repeatable); "
        "VALUE is read as JSON when it parses, else as a number, a boolean or text",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local worker processes (default: all cores)",
    )
    parser.add_argument("--engine", choices=("local", "dask"), default="local")
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    parser.add_argument(
        "--remove-source",
        action="store_true",
        help="overwrite and delete each input audio file after it was ingested",
    )
    parser.add_argument("--journal", type=Path, help="journal file (default VAULT/journal.jsonl)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch; print the summary table. Exit 1 when a call failed."""
    from voicepriv.batch import JOURNAL_NAME, ProgressBar, discover, run_batch
    from voicepriv.pipeline import IngestTask
    from voicepriv.plugins import backend, get_plugin_manager
    from voicepriv.policy import load_policy
    from voicepriv.vault import Vault

    load_policy(args.policy)  # fail early, with line numbers, before any worker starts
    separator_options = parse_options(args.separator_option, flag="--separator-option")
    adapter_options = parse_options(args.adapter_option, flag="--adapter-option")
    if separator_options and args.separator is None:
        raise ConfigError(
            "--separator-option needs --separator NAME (the default separator depends on each "
            "call's layout, channels or speaker, and they take different options)"
        )
    if adapter_options and args.adapter is None:
        raise ConfigError(
            "--adapter-option needs --adapter NAME (without it each file is read by the "
            "generic adapter of its suffix, which takes no options)"
        )
    manager = get_plugin_manager()
    if args.separator is not None:
        # Resolved once here, so an unknown separator or option fails the command, not each
        # call; the workers resolve it again with the same options.
        backend(manager, "separator", args.separator, separator_options)
    records = discover(
        args.source, adapter=args.adapter, adapter_options=adapter_options, plugins=manager
    )
    vault_path = args.vault.resolve()
    if args.init and not (vault_path / "vault.toml").exists():
        Vault.create(vault_path).close()
    else:
        Vault.open(vault_path).close()
    task = IngestTask(
        policy=str(args.policy.resolve()),
        vault=str(vault_path),
        separator=args.separator,
        separator_options=separator_options,
        remove_source=args.remove_source,
    )
    report = run_batch(
        task,
        records,
        journal=args.journal or vault_path / JOURNAL_NAME,
        workers=args.workers,
        engine=args.engine,
        scheduler=args.scheduler,
        progress=ProgressBar(len(records)),
    )
    print(report.table())
    return 1 if report.failed else 0
