"""``voicepriv report ropa|retention|violations``: compliance reports as JSON or HTML."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from voicepriv._cli.audit import existing_log
from voicepriv.audit import read_events
from voicepriv.errors import ConfigError
from voicepriv.policy.config import load_policy
from voicepriv.policy.decision import Decision, decision_from_dict
from voicepriv.reports import (
    render_html,
    report_json,
    retention_report,
    ropa,
    stored_recordings,
    violations_scan,
)
from voicepriv.vault.vault import Vault


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``report`` command group."""
    parser = subparsers.add_parser(
        "report", help="compliance reports: RoPA (Art. 30), retention, violations"
    )
    commands = parser.add_subparsers(dest="report_command", metavar="REPORT", required=True)

    ropa_parser = commands.add_parser(
        "ropa", help="records of processing activities (GDPR Art. 30) from the policy"
    )
    ropa_parser.add_argument("--policy", type=Path, required=True, help="the organisation policy")
    _output(ropa_parser)
    ropa_parser.set_defaults(handler=run_ropa)

    retention = commands.add_parser(
        "retention", help="what is overdue, due, held or kept, with a timeline"
    )
    retention.add_argument("--vault", type=Path, required=True, help="the vault folder")
    retention.add_argument(
        "--due-within-days", type=int, default=30, help="'due' horizon in days (default 30)"
    )
    _output(retention)
    retention.set_defaults(handler=run_retention)

    violations = commands.add_parser(
        "violations",
        help="recordings kept without basis, past deadline, with a customer track that should "
        "be gone, or opened for a purpose not allowed",
    )
    violations.add_argument("--vault", type=Path, required=True, help="the vault folder")
    violations.add_argument("--policy", type=Path, required=True, help="the organisation policy")
    violations.add_argument(
        "--audit",
        type=Path,
        help="the audit log, which must exist (default: audit.jsonl in the vault folder)",
    )
    _output(violations)
    violations.set_defaults(handler=run_violations)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("json", "html"), default="json", help="output format (json)"
    )
    parser.add_argument("--output", "-o", type=Path, help="write here instead of stdout")


def _emit(args: argparse.Namespace, report: Any) -> int:
    text = render_html(report) if args.format == "html" else report_json(report) + "\n"
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def run_ropa(args: argparse.Namespace) -> int:
    """Print or write the RoPA."""
    return _emit(args, ropa(load_policy(args.policy)))


def run_retention(args: argparse.Namespace) -> int:
    """Print or write the retention report of a vault."""
    if args.due_within_days < 0:
        raise ConfigError(f"--due-within-days {args.due_within_days}: expected a number >= 0")
    with Vault.open(args.vault) as vault:
        report = retention_report(
            stored_recordings(vault.catalog),
            vault.catalog.holds(),
            due_within=timedelta(days=args.due_within_days),
        )
    return _emit(args, report)


def run_violations(args: argparse.Namespace) -> int:
    """Print or write the violations scan; exit code 1 when something was found."""
    policy = load_policy(args.policy)
    # An explicit --audit must exist (a typo would scan no events); the vault's own log may be
    # missing in a vault that has logged nothing yet.
    explicit = None if args.audit is None else existing_log(args.audit, "--audit")
    with Vault.open(args.vault) as vault:

        def decision(recording_id: str) -> Decision | None:
            text = vault.metadata(recording_id).decision
            return decision_from_dict(json.loads(text)) if text else None

        log = explicit or vault.config.root / "audit.jsonl"
        report = violations_scan(
            list(stored_recordings(vault.catalog, decisions=decision)),
            vault.catalog.holds(),
            read_events(log),
            policy,
        )
    _emit(args, report)
    return 1 if report.violations else 0
