"""``voicepriv ingest``: many calls into a vault, resumable, locally or on a Dask cluster."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


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
    parser.add_argument("--separator", help="separator backend for agent-only calls")
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
    from voicepriv.policy import load_policy
    from voicepriv.vault import Vault

    load_policy(args.policy)  # fail early, with line numbers, before any worker starts
    vault_path = args.vault.resolve()
    if args.init and not (vault_path / "vault.toml").exists():
        Vault.create(vault_path).close()
    else:
        Vault.open(vault_path).close()
    records = discover(args.source, adapter=args.adapter)
    task = IngestTask(
        policy=str(args.policy.resolve()),
        vault=str(vault_path),
        separator=args.separator,
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
