"""``voicepriv audit verify|tail``: check the audit log's chain and signatures, show its end.

A log path that does not exist is an error (exit code 2), not an empty log: a typo, or a log
deleted together with its head, must not read as "OK: 0 events".
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

from voicepriv._cli._options import parse_options
from voicepriv.audit import Checkpoint, read_events, verify_log
from voicepriv.errors import AuditIntegrityError, ConfigError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``audit`` command group."""
    parser = subparsers.add_parser("audit", help="verify or show the tamper-evident audit log")
    commands = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = commands.add_parser(
        "verify", help="check every event's chain, hash and signature, and the signed head"
    )
    verify.add_argument("log", type=Path, help="the audit log (JSON lines)")
    add_key_arguments(verify)
    verify.add_argument(
        "--checkpoint",
        type=Path,
        help="a checkpoint JSON kept outside the log's folder (detects a rollback)",
    )
    verify.set_defaults(handler=run_verify)

    tail = commands.add_parser("tail", help="print the last events as JSON lines")
    tail.add_argument("log", type=Path, help="the audit log (JSON lines)")
    tail.add_argument("-n", "--lines", type=int, default=10, help="how many events (default 10)")
    tail.set_defaults(handler=run_tail)


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that say where the audit signing key (public half, or provider) comes from."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--public-key",
        help="the signer's raw Ed25519 public key: 64 hex digits, or a file holding them",
    )
    group.add_argument("--key-provider", help="ask this key-provider backend for its verify key")
    parser.add_argument(
        "--key-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an option for --key-provider (repeatable), e.g. path=/etc/voicepriv/keys",
    )


def key_provider(args: argparse.Namespace) -> Any:
    """The key provider named by ``--key-provider`` with its ``--key-option`` values."""
    from voicepriv.plugins import backend, get_plugin_manager

    options = parse_options(args.key_option, flag="--key-option")
    return backend(get_plugin_manager(), "key_provider", args.key_provider, options)


def public_key(args: argparse.Namespace) -> bytes:
    """The raw verify key from ``--public-key`` (hex or a file of hex) or ``--key-provider``."""
    if args.public_key is None:
        raw: bytes = key_provider(args).verify_key()
        return raw
    text = args.public_key.strip()
    candidate = Path(text)
    if candidate.is_file():
        text = candidate.read_text(encoding="ascii").strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(
            f"--public-key {args.public_key!r}: expected 64 hex digits or a file holding them"
        ) from None
    if len(raw) != 32:
        raise ConfigError(f"--public-key: expected 32 bytes (64 hex digits), got {len(raw)}")
    return raw


def existing_log(path: Path, flag: str = "audit log") -> Path:
    """*path* when it is an existing file; else a ConfigError naming *flag* and *path*.

    (:func:`~voicepriv.audit.read_events` reads a missing log as empty, which on the command
    line hides a typo.)
    """
    if not path.exists():
        raise ConfigError(f"{flag} {path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, expected the log's JSON-lines file")
    return path


def run_verify(args: argparse.Namespace) -> int:
    """Verify the log; print the count and head, or the first bad event (exit code 1)."""
    existing_log(args.log)
    checkpoint = None
    if args.checkpoint is not None:
        try:
            data = json.loads(args.checkpoint.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--checkpoint {args.checkpoint}: cannot read ({exc})") from exc
        checkpoint = Checkpoint.from_json(data, source=str(args.checkpoint))
    try:
        report = verify_log(args.log, public_key(args), checkpoint=checkpoint)
    except AuditIntegrityError as exc:
        print(f"FAILED at event {exc.index}: {exc}")
        return 1
    print(
        f"OK: {report.count} events, chain and signatures valid; head {report.head[:16]}…"
        + (", end anchored by the signed head" if report.anchored else "")
        + (", extends the checkpoint" if report.checkpoint else "")
    )
    return 0


def run_tail(args: argparse.Namespace) -> int:
    """Print the last ``-n`` events, one JSON object per line."""
    if args.lines < 0:
        raise ConfigError(f"--lines {args.lines}: expected a number >= 0")
    existing_log(args.log)
    for event in collections.deque(read_events(args.log), maxlen=args.lines):
        print(event.line().decode("ascii"))
    return 0
