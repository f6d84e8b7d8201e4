"""``voicepriv vault init|put|get|verify|delete|sweep|rotate-key``: the encrypted vault.

``delete`` and ``sweep`` write a ``deletion`` event (recording id, reason code, whether the key
was destroyed, replicas deleted) for every recording they delete to the audit log (``--audit``,
default ``audit.jsonl`` in the vault folder), signed with the vault's key provider; the log is
checked before anything is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from voicepriv import audio as audio_io
from voicepriv._cli._options import parse_options
from voicepriv._cli.isolate import check_output_path
from voicepriv.audit import AuditLog
from voicepriv.errors import ConfigError, NotFoundError, PluginError
from voicepriv.model import Recording, from_json, utc_now
from voicepriv.plugins import backend_names, get_plugin_manager
from voicepriv.vault import ArtifactKind, ReplicaConfig, Vault
from voicepriv.vault.crypto import DEFAULT_CHUNK_SIZE

#: Environment variable naming the vault folder when ``--vault`` is not given.
VAULT_ENV = "VOICEPRIV_VAULT"


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected a time with a zone (e.g. +00:00), got {text!r}")
    return value


def _replica(text: str) -> ReplicaConfig:
    name, sep, url = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=URL, got {text!r}")
    return ReplicaConfig(name=name, url=url)


def _add_vault(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vault",
        type=Path,
        default=None,
        help=f"the vault folder (default: ${VAULT_ENV}, else the current folder)",
    )


def _open(args: argparse.Namespace) -> Vault:
    folder = args.vault or Path(os.environ.get(VAULT_ENV, "."))
    return Vault.open(folder)


def _add_audit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit",
        type=Path,
        help="the audit log deletions are written to (default: audit.jsonl in the vault folder)",
    )


def _audit_log(args: argparse.Namespace, vault: Vault) -> AuditLog:
    """The audit log of ``--audit`` (default ``audit.jsonl`` in the vault folder), checked to
    be writable before anything is deleted."""
    log = AuditLog(args.audit or vault.config.root / "audit.jsonl", signer=vault.provider)
    log.check_writable()
    return log


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``vault`` command group."""
    parser = subparsers.add_parser("vault", help="encrypted storage, erasure and retention sweep")
    commands = parser.add_subparsers(dest="vault_command", metavar="ACTION", required=True)

    init = commands.add_parser("init", help="create a vault (folder, catalog, key file)")
    init.add_argument("path", type=Path, help="the new vault's folder")
    init.add_argument(
        "--replica",
        type=_replica,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a location (any fsspec URL or folder); repeat for several (default: local=objects)",
    )
    init.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="bytes per chunk")
    init.add_argument(
        "--key-provider",
        default="local",
        metavar="NAME",
        help="the key-provider backend holding the master key (default: local, a key file "
        "master.key in the vault folder)",
    )
    init.add_argument(
        "--key-provider-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for --key-provider (repeatable), kept in vault.toml; VALUE is read as "
        "JSON when it parses, else as a number, a boolean or text",
    )
    init.set_defaults(handler=run_init)

    put = commands.add_parser("put", help="encrypt a file into the vault for a recording")
    _add_vault(put)
    put.add_argument("file", type=Path, help="the artifact's file")
    put.add_argument("--recording", type=Path, required=True, help="the recording's JSON")
    put.add_argument(
        "--kind", choices=[k.value for k in ArtifactKind], required=True, help="artifact kind"
    )
    put.add_argument(
        "--delete-after",
        type=_time,
        help="deadline (ISO 8601 with zone); required for a recording new to the vault",
    )
    put.add_argument("--no-deadline", action="store_true", help="keep with no deadline")
    put.add_argument("--decision", type=Path, help="decision JSON to keep sealed with it")
    put.add_argument(
        "--audio",
        action="store_true",
        help="decode the audio file and store PCM (enables time seeking with 'get --start')",
    )
    put.set_defaults(handler=run_put)

    get = commands.add_parser("get", help="decrypt an artifact")
    _add_vault(get)
    get.add_argument("artifact", help="artifact id")
    get.add_argument("-o", "--output", type=Path, help="output file (default: standard output)")
    get.add_argument("--start", type=float, help="PCM audio: first second (writes WAV)")
    get.add_argument("--end", type=float, help="PCM audio: last second (writes WAV)")
    get.set_defaults(handler=run_get)

    verify = commands.add_parser("verify", help="re-read and authenticate every replica")
    _add_vault(verify)
    verify.add_argument("--recording", help="only this recording")
    verify.add_argument("--repair", action="store_true", help="rewrite bad replicas afterwards")
    verify.set_defaults(handler=run_verify)

    delete = commands.add_parser("delete", help="erase a recording (crypto-shred + delete)")
    _add_vault(delete)
    delete.add_argument("recording", help="recording id")
    delete.add_argument(
        "--reason", required=True, help="a short code (no spaces), e.g. erasure_request"
    )
    _add_audit(delete)
    delete.set_defaults(handler=run_delete)

    sweep = commands.add_parser("sweep", help="delete what is past its deadline (holds respected)")
    _add_vault(sweep)
    sweep.add_argument("--now", type=_time, help="the time to sweep at (default: now)")
    sweep.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    _add_audit(sweep)
    sweep.set_defaults(handler=run_sweep)

    rotate = commands.add_parser("rotate-key", help="new master key; rewrap recording keys")
    _add_vault(rotate)
    rotate.set_defaults(handler=run_rotate)


def _new_folders(path: Path) -> list[Path]:
    """The folders creating *path* would make (*path* first, then its missing parents)."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def run_init(args: argparse.Namespace) -> int:
    """Create the vault (with ``--key-provider`` and its options); print where it went.

    The key provider's name is checked against the installed ones before anything is created;
    a create refused later (a bad option, a replica) removes the folders it made when they are
    still empty, and leaves no ``vault.toml``, so the corrected command can simply run again.
    """
    options = parse_options(args.key_provider_option, flag="--key-provider-option")
    manager = get_plugin_manager()
    installed = backend_names(manager, "key_provider")
    if args.key_provider not in installed:
        raise PluginError(
            f"--key-provider {args.key_provider}: no key provider by that name is installed "
            f"(installed: {', '.join(installed) or 'none'})"
        )
    path = args.path.resolve()
    made = _new_folders(path)
    try:
        vault = Vault.create(
            path,
            replicas=args.replica,
            key_provider=args.key_provider,
            key_options=options or None,
            chunk_size=args.chunk_size,
            manager=manager,
        )
    except BaseException:
        for folder in made:  # deepest first; stops at one holding anything
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    with vault:
        print(f"vault created at {vault.config.root} (key provider {args.key_provider})")
        for name, storage in vault.storages.items():
            print(f"  replica {name}: {storage.url}")
    return 0


def run_put(args: argparse.Namespace) -> int:
    """Store one artifact; prints its id and each replica's outcome."""
    try:
        recording = from_json(Recording, args.recording.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{args.recording}: cannot read ({exc.strerror})") from None
    decision = args.decision.read_text(encoding="utf-8") if args.decision else None
    with _open(args) as vault:
        try:
            vault.catalog.recording(recording.id)
        except NotFoundError:
            if args.delete_after is None and not args.no_deadline:
                raise ConfigError(
                    f"recording {recording.id}: give --delete-after (or --no-deadline)"
                ) from None
            vault.add_recording(recording, delete_after=args.delete_after, decision=decision)
        if args.audio:
            result = vault.put_audio(recording.id, args.kind, audio_io.load(args.file))
        else:
            try:
                with args.file.open("rb") as handle:
                    result = vault.put_artifact(recording.id, args.kind, handle)
            except OSError as exc:
                raise ConfigError(f"{args.file}: cannot read ({exc.strerror})") from None
    print(result.artifact_id)
    for name, error in result.replicas.items():
        print(f"  {name}: {'ok' if error is None else 'FAILED ' + error}", file=sys.stderr)
    return 0 if result.complete else 1


def run_get(args: argparse.Namespace) -> int:
    """Decrypt an artifact to a file or standard output."""
    if args.output is not None:
        check_output_path(args.output, "-o/--output")
    with _open(args) as vault:
        if args.start is not None or args.end is not None:
            if args.output is None:
                raise ConfigError("get --start/--end: give -o FILE.wav")
            part = vault.read_audio(args.artifact, start_s=args.start or 0.0, end_s=args.end)
            audio_io.save(part, args.output)
            return 0
        with vault.open_artifact(args.artifact) as reader:
            if args.output is None:
                for chunk in reader.iter_chunks():
                    sys.stdout.buffer.write(chunk)
                return 0
            partial = args.output.with_name(f".{args.output.name}.partial")
            try:
                with partial.open("wb") as out:
                    for chunk in reader.iter_chunks():
                        out.write(chunk)
                partial.replace(args.output)
            except OSError as exc:
                raise ConfigError(
                    f"-o/--output {args.output}: cannot write ({exc.strerror or exc})"
                ) from exc
            finally:
                partial.unlink(missing_ok=True)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Authenticate every replica; exit 1 when one is bad (after repair, if asked)."""
    with _open(args) as vault:
        report = vault.verify(args.recording)
        print(f"checked {len(report.checks)} replica(s), {len(report.problems)} problem(s)")
        for problem in report.problems:
            print(
                f"  {problem.artifact_id} at {problem.location}: {problem.status} {problem.detail}"
            )
        if args.repair and not report.ok:
            repaired = vault.repair()
            for artifact_id, location in repaired.repaired:
                print(f"  repaired {artifact_id} at {location}")
            report = vault.verify(args.recording)
    return 0 if report.ok else 1


def run_delete(args: argparse.Namespace) -> int:
    """Erase a recording and log its ``deletion`` event; prints the deletion receipt as JSON."""
    with _open(args) as vault:
        receipt = vault.delete(args.recording, args.reason, audit=_audit_log(args, vault))
    print(json.dumps(json.loads(receipt.to_json()), indent=2))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """Retention sweep (or its plan with ``--dry-run``); each deletion is audited."""
    now = args.now or utc_now()
    with _open(args) as vault:
        if args.dry_run:
            report = vault.sweep(now, dry_run=True)
        else:
            report = vault.sweep(now, audit=_audit_log(args, vault))
    verb = "would delete" if report.dry_run else "deleted"
    done = report.planned if report.dry_run else tuple(r.recording_id for r in report.deleted)
    print(f"sweep at {report.now.isoformat()}: {verb} {len(done)}, held {len(report.held)}")
    for recording_id in done:
        print(f"  {verb} {recording_id}")
    for held in report.held:
        print(f"  held {held.recording_id}: {held.reason}")
    for recording_id, purpose in report.expired:
        print(f"  purpose {purpose!r} of {recording_id} expired (the recording stays for others)")
    if report.cleanup is not None:
        cleanup = report.cleanup
        verb = "would remove" if cleanup.dry_run else "removed"
        temporaries = sum(len(keys) for keys in cleanup.temporaries.values())
        print(
            f"  crash cleanup (leftovers before {cleanup.older_than.isoformat()}): {verb} "
            f"{len(cleanup.artifacts)} unfinished artifact(s), {temporaries} temporary object(s)"
        )
        for location, why in cleanup.skipped.items():
            print(f"  cleanup skipped {location}: {why}")
    for failed in report.failed:
        print(f"  FAILED {failed.recording_id}: {failed.reason}")
    return 1 if report.failed else 0


def run_rotate(args: argparse.Namespace) -> int:
    """Rotate the master key."""
    with _open(args) as vault:
        key_id = vault.rotate_key()
    print(f"new master key {key_id}; every recording key rewrapped")
    return 0
