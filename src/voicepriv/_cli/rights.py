"""``voicepriv rights erase|export|restrict|object``: data-subject requests against a vault.

Subjects are named with ``--phone``, ``--email`` and ``--customer-id`` (repeatable). Every
request is written to the audit log (default ``audit.jsonl`` in the vault folder), signed with
the vault's key provider. The log, and the output paths (``--output``, ``--certificate``), are
checked before anything is erased, exported or changed: a log that cannot be appended to, or an
output in a missing folder, stops the command (exit code 2) with nothing done.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from voicepriv._cli.isolate import check_output_path
from voicepriv.audit import AuditLog
from voicepriv.enrollment import agent_subject
from voicepriv.errors import ConfigError
from voicepriv.model import SubjectKind, SubjectRef
from voicepriv.policy.config import load_policy
from voicepriv.rights import PasswordRecipient, PublicKeyRecipient, Recipient, Rights
from voicepriv.vault.catalog import RestrictionGround
from voicepriv.vault.vault import Vault


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``rights`` command group."""
    parser = subparsers.add_parser(
        "rights", help="data-subject requests: erasure, access export, restriction, objection"
    )
    commands = parser.add_subparsers(dest="rights_command", metavar="ACTION", required=True)

    erase = commands.add_parser(
        "erase", help="erase the subject's recordings (Art. 17); print the signed certificate"
    )
    _common(erase)
    erase.add_argument("--certificate", type=Path, help="also write the certificate JSON here")
    erase.add_argument(
        "--dry-run", action="store_true", help="show the plan (what would be erased or kept)"
    )
    erase.set_defaults(handler=run_erase)

    export = commands.add_parser(
        "export", help="write the subject's data as one encrypted archive (Art. 15)"
    )
    _common(export)
    export.add_argument("--output", "-o", type=Path, required=True, help="the archive to write")
    secret = export.add_mutually_exclusive_group(required=True)
    secret.add_argument(
        "--password-env",
        metavar="VAR",
        help="encrypt with the password in this environment variable",
    )
    secret.add_argument(
        "--password-prompt", action="store_true", help="ask for the password on the terminal"
    )
    secret.add_argument(
        "--public-key", help="encrypt to this X25519 public key: 64 hex digits or a file of them"
    )
    export.set_defaults(handler=run_export)

    restrict = commands.add_parser(
        "restrict", help="restrict processing of the subject's recordings (Art. 18)"
    )
    _common(restrict)
    restrict.add_argument("--lift", action="store_true", help="lift the restriction instead")
    restrict.add_argument(
        "--ground",
        choices=[g.value for g in RestrictionGround],
        help="the Art. 18(1) ground; 'legal_claims' (18(1)(c)) also stops retention deletion",
    )
    restrict.set_defaults(handler=run_restrict)

    objection = commands.add_parser(
        "object", help="record an objection (Art. 21): legitimate-interest purposes stop"
    )
    _common(objection)
    objection.set_defaults(handler=run_object)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vault", type=Path, required=True, help="the vault folder")
    parser.add_argument("--policy", type=Path, required=True, help="the organisation policy")
    parser.add_argument(
        "--audit", type=Path, help="the audit log (default: audit.jsonl in the vault folder)"
    )
    parser.add_argument("--phone", action="append", default=[], help="a phone number (E.164)")
    parser.add_argument("--email", action="append", default=[], help="an e-mail address")
    parser.add_argument("--customer-id", action="append", default=[], help="a customer id")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="AGENT_ID",
        help="an employee by agent id (their stored voiceprints)",
    )


def subjects(args: argparse.Namespace) -> list[SubjectRef]:
    """The subject identifiers named on the command line (at least one)."""
    refs = [SubjectRef(kind=SubjectKind.PHONE, value=v) for v in args.phone]
    refs += [SubjectRef(kind=SubjectKind.EMAIL, value=v) for v in args.email]
    refs += [SubjectRef(kind=SubjectKind.CUSTOMER_ID, value=v) for v in args.customer_id]
    refs += [agent_subject(v) for v in args.agent]
    if not refs:
        raise ConfigError("name the data subject with --phone, --email, --customer-id or --agent")
    return refs


def _service(args: argparse.Namespace, *, writes: bool = True) -> tuple[Vault, Rights]:
    """The vault and the rights service; with *writes*, the audit log is checked first
    (:meth:`AuditLog.check_writable`), so a bad ``--audit`` stops the command before it acts."""
    vault = Vault.open(args.vault)
    try:
        policy = load_policy(args.policy)
        log_path = args.audit or vault.config.root / "audit.jsonl"
        log = AuditLog(log_path, signer=vault.provider)
        if writes:
            log.check_writable()
        return vault, Rights(vault, policy, log)
    except BaseException:
        vault.close()
        raise


def run_erase(args: argparse.Namespace) -> int:
    """Erase (or, with ``--dry-run``, plan erasing) the subject's recordings."""
    refs = subjects(args)
    if args.certificate is not None and not args.dry_run:
        check_output_path(args.certificate, "--certificate")
    vault, rights = _service(args, writes=not args.dry_run)
    with vault, rights:
        if args.dry_run:
            plan = rights.plan_erasure(refs)
            print(f"would erase {len(plan.delete)} recording(s): {', '.join(plan.delete) or '-'}")
            for kept in plan.retain:
                until = kept.until.isoformat() if kept.until else "the hold is lifted"
                print(f"would keep {kept.recording}: {kept.by.value} {kept.ref} until {until}")
            return 0
        certificate = rights.erase(refs)
    text = certificate.as_json()
    # Printed first: the erasure is done, so its signed certificate must never be lost.
    print(text, flush=True)
    if args.certificate is not None:
        try:
            args.certificate.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"--certificate {args.certificate}: cannot write ({exc.strerror or exc}); "
                "the erasure was done and its certificate is printed above"
            ) from exc
    return 0


def _recipient(args: argparse.Namespace) -> Recipient:
    if args.public_key is not None:
        text = args.public_key.strip()
        if Path(text).is_file():
            text = Path(text).read_text(encoding="ascii").strip()
        try:
            return PublicKeyRecipient(public_key=bytes.fromhex(text))
        except ValueError:
            raise ConfigError(
                f"--public-key {args.public_key!r}: expected 64 hex digits or a file of them"
            ) from None
    if args.password_env is not None:
        password = os.environ.get(args.password_env)
        if not password:
            raise ConfigError(f"--password-env {args.password_env}: the variable is not set")
        return PasswordRecipient(password=password)
    return PasswordRecipient(password=getpass.getpass("export password: "))


def run_export(args: argparse.Namespace) -> int:
    """Write the encrypted access export."""
    refs = subjects(args)
    check_output_path(args.output, "--output")
    vault, rights = _service(args)
    with vault, rights:
        result = rights.export(refs, args.output, _recipient(args))
    print(
        f"wrote {result.path} ({len(result.recordings)} recording(s), {len(result.files)} "
        f"file(s)); sha256 {result.sha256}; audit event {result.audit_seq}"
    )
    return 0


def run_restrict(args: argparse.Namespace) -> int:
    """Restrict (or lift the restriction of) the subject's recordings."""
    refs = subjects(args)
    vault, rights = _service(args)
    with vault, rights:
        ground = None if args.ground is None else RestrictionGround(args.ground)
        result = rights.restrict(refs, lift=args.lift, ground=ground)
    verb = "lifted the restriction of" if args.lift else "restricted"
    print(f"{verb} {len(result.recordings)} recording(s): {', '.join(result.recordings) or '-'}")
    return 0


def run_object(args: argparse.Namespace) -> int:
    """Record an objection to legitimate-interest processing."""
    refs = subjects(args)
    vault, rights = _service(args)
    with vault, rights:
        result = rights.object(refs)
    for recording, purposes in sorted(result.removed_purposes.items()):
        tracks = " and ".join(
            f"the {role.value}'s voice" for role in result.removed_from[recording]
        )
        ended = result.ended_purposes.get(recording, ())
        kept = [p for p in purposes if p not in ended]
        print(
            f"{recording}: {tracks} no longer used for {', '.join(purposes)}"
            + (f" (the other party's voice is still kept for {', '.join(kept)})" if kept else "")
        )
    if result.deleted:
        print(f"deleted (objector's voice left without a purpose): {', '.join(result.deleted)}")
    if result.voiceprints_stopped:
        print(
            "voiceprint no longer used (not loaded for isolation; re-enrolling is refused until "
            f"it is deleted): {', '.join(result.voiceprints_stopped)}"
        )
    if not result.removed_purposes and not result.voiceprints_stopped:
        print("no recording of this subject is kept on legitimate interests")
    return 0
