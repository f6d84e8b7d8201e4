"""``voicepriv enroll``: an agent's voiceprint from enrollment clips, stored in the vault.

The voiceprint is biometric personal data of the employee: it is written only into a vault
(``--vault``, its own artifact kind and retention) or, for tests and pipelines that hand it
on, to a JSON file the agent's organisation is responsible for (``--out``). Storing a
voiceprint in the vault and deleting one are written to the audit log (``--audit``, default
``audit.jsonl`` in the vault folder), signed with the vault's key provider.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicepriv import audio as audio_io
from voicepriv._cli._options import parse_options
from voicepriv._cli.isolate import check_output_path, write_file
from voicepriv.audio import Audio
from voicepriv.audit import AuditLog
from voicepriv.enrollment import (
    DEFAULT_KEEP_FOR,
    Enrollment,
    agent_subject,
    delete_voiceprint,
    enroll,
    enroll_clips,
    voiceprint_to_bytes,
)
from voicepriv.errors import ConfigError
from voicepriv.interfaces import Embedder
from voicepriv.plugins import backend, get_plugin_manager

if TYPE_CHECKING:
    from voicepriv.vault import Vault

_SIDES = {"left": 0, "right": 1}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``enroll`` command."""
    parser = subparsers.add_parser(
        "enroll",
        help="make an agent's voiceprint from clips and store it in the vault",
        description=(
            "Embed the agent's speech in CLIP(s) and store the voiceprint in the vault "
            "(replacing an older one), or write it as JSON with --out. With --agent-side, "
            "each clip is a dual-channel call and only the agent's side is read. "
            "--delete removes the agent's voiceprints from the vault (e.g. when they leave). "
            "Storing and deleting are written to the audit log."
        ),
    )
    parser.add_argument("agent_id", metavar="AGENT_ID", help="the employee's id")
    parser.add_argument("clips", metavar="CLIP", nargs="*", type=Path, help="enrollment audio")
    parser.add_argument("--vault", type=Path, metavar="DIR", help="store it in this vault")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the voiceprint JSON here")
    parser.add_argument(
        "--audit", type=Path, help="the audit log (default: audit.jsonl in the vault folder)"
    )
    parser.add_argument(
        "--embedder",
        default="campplus",
        help=(
            "embedder backend (default: campplus, core install; onnx needs the onnx extra; "
            "mfcc is a weak baseline)"
        ),
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="embedder option (repeatable), e.g. telephone=true",
    )
    parser.add_argument(
        "--agent-side",
        choices=sorted(_SIDES),
        help="clips are dual-channel calls; read only this side",
    )
    parser.add_argument(
        "--keep-days",
        type=int,
        default=DEFAULT_KEEP_FOR.days,
        help=f"retention of the voiceprint in days (default {DEFAULT_KEEP_FOR.days})",
    )
    parser.add_argument(
        "--delete", action="store_true", help="delete the agent's voiceprints from --vault"
    )
    parser.set_defaults(handler=run)


def _clip(path: Path, side: str | None) -> Audio:
    audio = audio_io.load(path, max_channels=2)
    if side is None:
        return (
            audio
            if audio.channels == 1
            else Audio(samples=audio.mono(), sample_rate=audio.sample_rate)
        )
    if audio.channels != 2:
        raise ConfigError(
            f"{path}: --agent-side given, but the file has {audio.channels} channel(s)"
        )
    return audio.channel(_SIDES[side])


def _audit_log(args: argparse.Namespace, vault: Vault) -> AuditLog:
    """``--audit``, or ``audit.jsonl`` in the vault folder, signed by the vault's provider."""
    return AuditLog(args.audit or vault.config.root / "audit.jsonl", signer=vault.provider)


def run(args: argparse.Namespace) -> int:
    """Enroll (or with ``--delete`` remove) the agent's voiceprint."""
    from voicepriv.vault import Vault

    # A refused agent id fails before any clip is read or any file written.
    agent_subject(args.agent_id)
    if args.audit is not None and args.vault is None:
        raise ConfigError("--audit needs --vault (only vault changes are logged)")
    if args.delete:
        if args.vault is None or args.clips:
            raise ConfigError("--delete needs --vault and no CLIP")
        with Vault.open(args.vault) as vault:
            receipts = delete_voiceprint(vault, args.agent_id, audit=_audit_log(args, vault))
        print(f"deleted {len(receipts)} voiceprint(s) of agent {args.agent_id}")
        return 0
    if not args.clips:
        raise ConfigError("enroll: give at least one CLIP")
    if args.vault is None and args.out is None:
        raise ConfigError("enroll: give --vault DIR (or --out FILE) to keep the voiceprint")
    if args.keep_days < 1:
        raise ConfigError(f"--keep-days: expected at least 1, got {args.keep_days}")
    if args.out is not None:
        check_output_path(args.out, "--out")
    options = parse_options(args.option, flag="--option")
    embedder = backend(get_plugin_manager(), "embedder", args.embedder, options)
    if not isinstance(embedder, Embedder):
        raise ConfigError(f"embedder {args.embedder!r} does not satisfy the Embedder protocol")
    clips = [_clip(path, args.agent_side) for path in args.clips]
    voiceprint = enroll_clips(args.agent_id, clips, embedder)
    where = []
    result: Enrollment | None = None
    if args.vault is None:
        write_file(args.out, voiceprint_to_bytes(voiceprint), "--out")
        where.append(str(args.out))
    else:
        with Vault.open(args.vault) as vault:
            log = _audit_log(args, vault)
            # Nothing is written before the vault opened and its audit log proved writable.
            log.check_writable()
            # The file first: when it cannot be written, the vault (and the voiceprint
            # enrolled before, which enrolling replaces) is left untouched.
            if args.out is not None:
                write_file(args.out, voiceprint_to_bytes(voiceprint), "--out")
                where.append(str(args.out))
            result = enroll(vault, voiceprint, keep_for=timedelta(days=args.keep_days), audit=log)
        where.insert(0, f"vault {args.vault} (artifact {result.stored.artifact_id})")
    print(
        f"agent {args.agent_id}: voiceprint from {voiceprint.seconds:.1f} s of speech "
        f"({voiceprint.embedder}, {voiceprint.vector.size} dims) -> {', '.join(where)}"
    )
    if result is not None:
        if result.replaced:
            print(f"replaced {len(result.replaced)} older voiceprint(s)")
        for note in result.notes:
            print(f"note: {note}")
    return 0
