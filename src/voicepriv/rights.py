"""Data-subject rights: erasure (Art. 17), access export (Art. 15), restriction (Art. 18),
objection (Art. 21), and purpose-bound, audited access to recordings.

Everything here walks from subject identifiers (phone number, customer id, e-mail) to the
catalog's keyed hashes, never the other way round; the audit log receives ids and hashes only.

- :func:`plan_erasure` decides, per matching recording, whether it may be deleted now or is
  retained by a legal hold or a legal obligation (and until when). It is pure and fast.
- :func:`seal_archive` / :func:`open_archive` encrypt an Art. 15 export for a password
  (scrypt + AES-256-GCM) or an X25519 public key.
- :func:`object_to_processing` removes, from the objector's own track of a decision, the
  purposes kept on legitimate interests or a public task.
- :class:`ErasureCertificate` is a signed statement of what was erased and what was kept.

Restrictions (with their Art. 18(1) ground) and objections are kept in the vault's catalog
(:meth:`~voicepriv.vault.catalog.Catalog.add_restriction`); an objection also drops from the
catalog the objected purposes that no track keeps any more
(:meth:`~voicepriv.vault.vault.Vault.drop_purposes`), which shortens the retention. Access is
refused for a purpose the catalog no longer retains the recording for (expired, objected to or
withdrawn), whatever the stored decision says; a purpose only a customer objected to, which the
agent's track still keeps, opens the agent's voice alone.

Times (``now``, ``at``) must carry a time zone; a naive one raises
:class:`~voicepriv.errors.ConfigError` naming the parameter.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import os
import sqlite3
import uuid
import wave
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from voicepriv.audit import AuditLog, EventType, Signer, check_event_data
from voicepriv.enrollment import VOICEPRINT_TAG as _VOICEPRINT_TAG
from voicepriv.errors import (
    AccessDenied,
    ConfigError,
    IntegrityError,
    KeyDestroyedError,
    LegalHoldError,
    NotFoundError,
)
from voicepriv.model import (
    LegalBasis,
    LegalHold,
    Recording,
    Role,
    Segment,
    SubjectRef,
    utc_now,
)
from voicepriv.policy.access import Denial, Grant, Principal, authorize
from voicepriv.policy.config import Policy
from voicepriv.policy.decision import (
    Decision,
    KeptPurpose,
    Reason,
    TrackDecision,
    decision_from_dict,
)
from voicepriv.policy.retention import hold_covers
from voicepriv.vault.catalog import (
    ArtifactEntry,
    ArtifactKind,
    Catalog,
    PurposeEnd,
    RecordingState,
    RestrictionEntry,
    RestrictionGround,
    RestrictionKind,
    format_time,
)
from voicepriv.vault.vault import DeletionReceipt, Vault

__all__ = [
    "LEGAL_CLAIM_PURPOSES",
    "OBJECTABLE_BASES",
    "AccessGrant",
    "ErasureCandidate",
    "ErasureCertificate",
    "ErasurePlan",
    "ExportResult",
    "MandatoryPurpose",
    "PasswordRecipient",
    "PublicKeyRecipient",
    "Recipient",
    "RestrictionGround",
    "RestrictionResult",
    "RetainedBy",
    "Retention",
    "Rights",
    "erasure_candidates",
    "import_legacy_state",
    "object_to_processing",
    "open_archive",
    "plan_erasure",
    "seal_archive",
]

#: Purposes a restricted recording may still be opened for (Art. 18(2): legal claims).
LEGAL_CLAIM_PURPOSES: Final = frozenset({"dispute_resolution", "legal_compliance"})
#: Legal bases a data subject may object to (GDPR Art. 21(1): Art. 6(1)(e) and (f)).
OBJECTABLE_BASES: Final = frozenset({LegalBasis.PUBLIC_TASK, LegalBasis.LEGITIMATE_INTERESTS})
#: The decision track carrying each role's voice: employees (agents, supervisors) on the
#: agent's, callers on the customer's; an IVR is no data subject and has none.
_TRACK_OF: Final = {
    Role.AGENT: Role.AGENT,
    Role.SUPERVISOR: Role.AGENT,
    Role.CUSTOMER: Role.CUSTOMER,
}
#: Artifacts carrying the agent's voice alone (opened when only a customer objected).
_AGENT_ONLY: Final = frozenset({ArtifactKind.AGENT_AUDIO, ArtifactKind.VOICEPRINT})


# --------------------------------------------------------------------------- times


def _aware(value: object, where: str) -> datetime:
    """*value* when it is a datetime with a time zone, else a ConfigError naming *where*."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{where}: expected a datetime with a time zone, got {value!r}")
    return value


def _now(now: datetime | None, where: str) -> datetime:
    """*now*, or the current UTC time when it is ``None``; a naive *now* is refused."""
    return utc_now() if now is None else _aware(now, f"{where} now")


def _aware_field(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _aware(value, f"{type(instance).__name__}.{attribute.name}")


# --------------------------------------------------------------------------- erasure planning


class RetainedBy(enum.Enum):
    """Why a recording survives an erasure request (GDPR Art. 17(3))."""

    LEGAL_HOLD = "legal_hold"
    LEGAL_OBLIGATION = "legal_obligation"


@attrs.frozen(kw_only=True)
class Retention:
    """One reason a recording is kept despite an erasure request, and until when.

    :param ref: the hold id, or the purpose kept under a legal obligation.
    :param reason: the hold's reason, or the statute the purpose is mapped to.
    :param until: when the reason ends; ``None`` for a hold that is open until lifted.
    """

    recording: str
    by: RetainedBy
    ref: str
    reason: str
    until: datetime | None


@attrs.frozen(kw_only=True)
class MandatoryPurpose:
    """A purpose a recording must be kept for under a legal obligation, until *until*."""

    purpose: str
    reference: str
    until: datetime = attrs.field(validator=_aware_field)


@attrs.frozen(kw_only=True)
class ErasureCandidate:
    """A catalogued recording where the subject is a party.

    :param decision: the stored decision (``None`` when the catalog has none: nothing then
        obliges keeping it).
    :param tags: the recording's tags (holds may be scoped by tag).
    :param subject_hashes: keyed hashes of subjects of the recording that holds may be scoped
        by.
    :param mandatory: legal obligations known from the catalog's per-purpose deadlines and the
        policy (used besides, or instead of, the decision's mandatory purposes).
    """

    recording: str
    decision: Decision | None = None
    tags: frozenset[str] = frozenset()
    subject_hashes: frozenset[str] = frozenset()
    mandatory: tuple[MandatoryPurpose, ...] = ()


@attrs.frozen(kw_only=True)
class ErasurePlan:
    """What an erasure request will do: recordings to delete and recordings retained (why)."""

    subjects: tuple[str, ...]
    at: datetime
    delete: tuple[str, ...]
    retain: tuple[Retention, ...]

    @property
    def retained_recordings(self) -> tuple[str, ...]:
        """Every retained recording id, once each, sorted."""
        return tuple(sorted({r.recording for r in self.retain}))


def _mandatory(decision: Decision, at: datetime) -> list[KeptPurpose]:
    return [
        kept
        for track in decision.tracks
        for kept in track.purposes
        if kept.mandatory and kept.basis is LegalBasis.LEGAL_OBLIGATION and kept.deadline > at
    ]


def plan_erasure(
    candidates: Iterable[ErasureCandidate],
    holds: Sequence[LegalHold],
    *,
    subject_hashes: Iterable[str],
    at: datetime,
) -> ErasurePlan:
    """Split *candidates* into recordings erased now and recordings retained, with reasons.

    A recording is retained while a legal hold in force covers it (by id, tag or subject) or
    while one of its purposes is kept under a legal obligation (``KeptPurpose.mandatory``,
    Art. 17(3)(b)) whose deadline has not passed. Everything else is deleted. Pure: no I/O.

    :raises ConfigError: *at* is not a datetime with a time zone.
    """
    _aware(at, "plan_erasure at")
    delete: list[str] = []
    retain: list[Retention] = []
    seen: set[str] = set()
    active = [hold for hold in holds if hold.active(at)]
    for candidate in candidates:
        if candidate.recording in seen:
            continue
        seen.add(candidate.recording)
        reasons = [
            Retention(
                recording=candidate.recording,
                by=RetainedBy.LEGAL_HOLD,
                ref=hold.id,
                reason=hold.reason,
                until=hold.lifted_at,
            )
            for hold in active
            if hold_covers(
                hold,
                candidate.recording,
                tags=candidate.tags,
                subject_hashes=candidate.subject_hashes,
                at=at,
            )
        ]
        by_purpose: dict[str, MandatoryPurpose] = {}
        obligations = [m for m in candidate.mandatory if m.until > at]
        if candidate.decision is not None:
            obligations.extend(
                MandatoryPurpose(
                    purpose=kept.purpose,
                    reference=kept.reference or kept.basis.article,
                    until=kept.deadline,
                )
                for kept in _mandatory(candidate.decision, at)
            )
        for obligation in obligations:
            current = by_purpose.get(obligation.purpose)
            if current is None or obligation.until > current.until:
                by_purpose[obligation.purpose] = obligation
        reasons.extend(
            Retention(
                recording=candidate.recording,
                by=RetainedBy.LEGAL_OBLIGATION,
                ref=m.purpose,
                reason=m.reference,
                until=m.until,
            )
            for m in sorted(by_purpose.values(), key=lambda m: m.purpose)
        )
        if reasons:
            retain.extend(reasons)
        else:
            delete.append(candidate.recording)
    return ErasurePlan(
        subjects=tuple(sorted(set(subject_hashes))),
        at=at,
        delete=tuple(sorted(delete)),
        retain=tuple(sorted(retain, key=lambda r: (r.recording, r.by.value, r.ref))),
    )


def erasure_candidates(
    catalog: Catalog,
    subject_hashes: Iterable[str],
    *,
    at: datetime,
    policy: Policy | None = None,
    holds: Sequence[LegalHold] | None = None,
) -> tuple[list[ErasureCandidate], list[LegalHold]]:
    """Look up every live recording indexed under *subject_hashes* in *catalog*.

    Each candidate carries its tags, the subject hashes that subject-scoped holds in force
    name, and — when *policy* is given — the purposes of its catalogued deadlines that the
    policy bases on a legal obligation and that have not ended. Returns the candidates and the
    holds (read from the catalog unless given), ready for :func:`plan_erasure`.

    :raises ConfigError: *at* is not a datetime with a time zone.
    """
    _aware(at, "erasure_candidates at")
    all_holds = catalog.holds() if holds is None else list(holds)
    ids: set[str] = set()
    for subject in set(subject_hashes):
        ids.update(catalog.recordings_for_subject(subject))
    held_subjects: dict[str, set[str]] = {}
    for hold in all_holds:
        if hold.active(at):
            for subject in hold.scope.subjects:
                for recording in catalog.recordings_for_subject(subject):
                    held_subjects.setdefault(recording, set()).add(subject)
    obligations: dict[str, str] = {}
    if policy is not None:
        obligations = {
            pid: purpose.reference or purpose.basis.article
            for pid, purpose in policy.purposes.items()
            if purpose.basis is LegalBasis.LEGAL_OBLIGATION
        }
    candidates = []
    for recording in sorted(ids):
        entry = catalog.recording(recording)
        mandatory: tuple[MandatoryPurpose, ...] = ()
        if obligations:
            mandatory = tuple(
                MandatoryPurpose(purpose=purpose, reference=obligations[purpose], until=due)
                for purpose, due in sorted(catalog.deadlines(recording).items())
                if purpose in obligations and due > at
            )
        candidates.append(
            ErasureCandidate(
                recording=recording,
                tags=entry.tags,
                subject_hashes=frozenset(held_subjects.get(recording, ())),
                mandatory=mandatory,
            )
        )
    return candidates, all_holds


# --------------------------------------------------------------------------- objection


def _merge(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    merged: list[Segment] = []
    for segment in sorted(segments):
        if merged and segment.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Segment(start=last.start, end=max(last.end, segment.end), label=last.label)
        else:
            merged.append(Segment(start=segment.start, end=segment.end, label=segment.label))
    return tuple(merged)


def _without(track: TrackDecision, purposes: frozenset[str]) -> TrackDecision:
    remaining = tuple(k for k in track.purposes if k.purpose not in purposes)
    if remaining == track.purposes:
        return track
    if not remaining:
        return attrs.evolve(
            track, keep=False, purposes=(), segments=(), deadline=None, governing_purpose=None
        )
    governing = max(remaining, key=lambda k: (k.deadline, k.purpose))
    return attrs.evolve(
        track,
        keep=track.keep,
        purposes=remaining,
        segments=_merge(s for k in remaining for s in k.segments),
        deadline=governing.deadline,
        governing_purpose=governing.purpose,
    )


def _track_of(role: Role) -> Role | None:
    """The track carrying *role*'s voice (employees on the agent's), ``None`` for an IVR."""
    return _TRACK_OF.get(role)


def object_to_processing(
    decision: Decision, *, roles: Iterable[Role]
) -> tuple[Decision, frozenset[str]]:
    """The decision after an objection (GDPR Art. 21(1)) by a party in one of *roles*.

    Only the objector's own track changes: its purposes kept on legitimate interests
    (Art. 6(1)(f)) or a public task (Art. 6(1)(e)) — :data:`OBJECTABLE_BASES` — are removed,
    unless mandatory. Its purposes on another basis (consent, contract, legal obligation ...)
    stay, and the other track is untouched: a customer's objection does not end the agent's
    employment basis, and an agent's objection does not end the customer's consent or contract.
    The agent's track carries agents and supervisors, the customer's track customers; an IVR has
    no track. Returns the new decision and the purposes removed from the objector's track(s); a
    decision with none is returned unchanged.

    :param roles: the roles the objecting data subject has on the call (usually one).
    :raises ConfigError: *roles* holds something that is not a :class:`~voicepriv.model.Role`.
    """
    objectors = tuple(roles)
    for role in objectors:
        if not isinstance(role, Role):
            raise ConfigError(f"object_to_processing roles: expected Role values, got {role!r}")
    tracks = {track for track in map(_track_of, objectors) if track is not None}
    changed = decision
    removed: set[str] = set()
    reasons: list[Reason] = []
    for track in (decision.agent, decision.customer):
        if track.role not in tracks:
            continue
        gone = frozenset(
            kept.purpose
            for kept in track.purposes
            if kept.basis in OBJECTABLE_BASES and not kept.mandatory
        )
        if not gone:
            continue
        removed |= gone
        if track.role is Role.AGENT:
            changed = attrs.evolve(changed, agent=_without(track, gone))
        else:
            changed = attrs.evolve(changed, customer=_without(track, gone))
        kept_on = sorted({k.basis.name.lower() for k in track.purposes if k.purpose in gone})
        reasons.append(
            Reason(
                text=(
                    f"The {track.role.value} objected: purposes of the {track.role.value}'s track "
                    f"kept on {' or '.join(b.replace('_', ' ') for b in kept_on)} removed: "
                    + ", ".join(sorted(gone))
                    + "; its other purposes and the other track are unchanged"
                ),
                rule="GDPR Art. 21(1)",
            )
        )
    if not removed:
        return decision, frozenset()
    return attrs.evolve(changed, reasons=(*decision.reasons, *reasons)), frozenset(removed)


# --------------------------------------------------------------------------- certificate

_CERTIFICATE_DOMAIN: Final = b"voicepriv-erasure-certificate-v1\n"


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@attrs.frozen(kw_only=True)
class ErasureCertificate:
    """A signed statement of an erasure request's outcome (Ed25519, the audit signing key).

    :param request: the request id (also in the audit log's ``erasure`` event).
    :param subjects: keyed hashes of the identifiers the request named.
    :param erased: recordings whose keys were destroyed and replicas deleted.
    :param replicas_deleted: stored objects deleted in total.
    :param retained: what was kept, why and until when.
    :param audit_seq: position of the ``erasure`` event in the audit log.
    :param verify_key: hex of the public key that verifies :attr:`signature`.
    """

    request: str
    issued_at: datetime
    subjects: tuple[str, ...]
    erased: tuple[str, ...]
    replicas_deleted: int
    retained: tuple[Retention, ...]
    audit_seq: int | None
    verify_key: str
    signature: str

    def body(self) -> dict[str, Any]:
        """The signed content, as plain JSON data."""
        return {
            "request": self.request,
            "issued_at": self.issued_at.isoformat(),
            "subjects": list(self.subjects),
            "erased": list(self.erased),
            "replicas_deleted": self.replicas_deleted,
            "retained": [
                {
                    "recording": r.recording,
                    "by": r.by.value,
                    "ref": r.ref,
                    "reason": r.reason,
                    "until": _when(r.until),
                }
                for r in self.retained
            ],
            "audit_seq": self.audit_seq,
            "verify_key": self.verify_key,
        }

    def as_json(self) -> str:
        """The certificate as indented JSON (body plus ``signature``)."""
        return json.dumps({**self.body(), "signature": self.signature}, indent=2)

    def verify(self, public_key: bytes) -> bool:
        """Whether the signature is valid under the raw Ed25519 *public_key* (pin it)."""
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                bytes.fromhex(self.signature), _CERTIFICATE_DOMAIN + _canonical(self.body())
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def issue(
        cls,
        *,
        signer: Signer,
        request: str,
        issued_at: datetime,
        subjects: Sequence[str],
        erased: Sequence[str],
        replicas_deleted: int,
        retained: Sequence[Retention],
        audit_seq: int | None,
    ) -> ErasureCertificate:
        """Build and sign a certificate with *signer* (the key provider)."""
        unsigned = cls(
            request=request,
            issued_at=issued_at,
            subjects=tuple(subjects),
            erased=tuple(erased),
            replicas_deleted=replicas_deleted,
            retained=tuple(retained),
            audit_seq=audit_seq,
            verify_key=signer.verify_key().hex(),
            signature="",
        )
        signature = signer.sign(_CERTIFICATE_DOMAIN + _canonical(unsigned.body())).hex()
        return attrs.evolve(unsigned, signature=signature)


# --------------------------------------------------------------------------- export encryption

_EXPORT_MAGIC: Final = b"VPEXPORT\x01"
_MODE_PASSWORD: Final = b"P"
_MODE_X25519: Final = b"X"
_HKDF_INFO: Final = b"voicepriv-export-v1"


@attrs.frozen(kw_only=True)
class PasswordRecipient:
    """Encrypt an export with a password: scrypt (N = 2**cost, r = 8, p = 1) + AES-256-GCM.

    Give the password to the data subject through another channel than the archive.
    """

    password: str = attrs.field(repr=False)
    cost: int = 17

    def __attrs_post_init__(self) -> None:
        if len(self.password) < 12:
            raise ConfigError(
                f"PasswordRecipient.password: expected at least 12 characters, got "
                f"{len(self.password)}"
            )
        if not 14 <= self.cost <= 22:
            raise ConfigError(f"PasswordRecipient.cost: expected 14 to 22, got {self.cost}")


@attrs.frozen(kw_only=True)
class PublicKeyRecipient:
    """Encrypt an export to an X25519 public key (raw 32 bytes): ephemeral ECDH + HKDF + AES-GCM."""

    public_key: bytes = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ConfigError(
                f"PublicKeyRecipient.public_key: expected 32 raw X25519 bytes, got "
                f"{len(self.public_key)}"
            )


Recipient = PasswordRecipient | PublicKeyRecipient


def _scrypt(password: str, salt: bytes, cost: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**cost, r=8, p=1).derive(password.encode("utf-8"))


def _hkdf(shared: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(shared)


def seal_archive(data: bytes, recipient: Recipient) -> bytes:
    """*data* encrypted for *recipient*; the header is bound to the ciphertext as associated data.

    Layout: ``VPEXPORT\\x01`` | ``P`` | cost | salt (16) | nonce (12) | ciphertext+tag, or
    ``VPEXPORT\\x01`` | ``X`` | ephemeral public key (32) | nonce (12) | ciphertext+tag.
    """
    nonce = os.urandom(12)
    if isinstance(recipient, PasswordRecipient):
        salt = os.urandom(16)
        key = _scrypt(recipient.password, salt, recipient.cost)
        header = _EXPORT_MAGIC + _MODE_PASSWORD + bytes([recipient.cost]) + salt + nonce
    else:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public_key))
        key = _hkdf(shared, ephemeral_public + recipient.public_key)
        header = _EXPORT_MAGIC + _MODE_X25519 + ephemeral_public + nonce
    return header + AESGCM(key).encrypt(nonce, data, header)


def open_archive(
    blob: bytes, *, password: str | None = None, private_key: bytes | None = None
) -> bytes:
    """Decrypt what :func:`seal_archive` wrote, with the password or the X25519 private key.

    :raises IntegrityError: not an export, the wrong password or key, or tampered bytes.
    :raises ConfigError: the secret given does not fit the archive's mode.
    """
    magic = len(_EXPORT_MAGIC)
    if not blob.startswith(_EXPORT_MAGIC) or len(blob) < magic + 1 + 12 + 16:
        raise IntegrityError("export archive: not a voicepriv export (bad magic or too short)")
    mode = blob[magic : magic + 1]
    if mode == _MODE_PASSWORD:
        if password is None:
            raise ConfigError("export archive: encrypted with a password; give password=")
        cost = blob[magic + 1]
        if not 14 <= cost <= 22:
            raise IntegrityError(f"export archive: scrypt cost {cost} is out of range")
        salt = blob[magic + 2 : magic + 18]
        end = magic + 18 + 12
        key = _scrypt(password, salt, cost)
    elif mode == _MODE_X25519:
        if private_key is None:
            raise ConfigError("export archive: encrypted to an X25519 key; give private_key=")
        ephemeral_public = blob[magic + 1 : magic + 33]
        end = magic + 33 + 12
        own = X25519PrivateKey.from_private_bytes(private_key)
        shared = own.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _hkdf(shared, ephemeral_public + own.public_key().public_bytes_raw())
    else:
        raise IntegrityError(f"export archive: unknown mode {mode!r}")
    header, nonce = blob[:end], blob[end - 12 : end]
    try:
        return AESGCM(key).decrypt(nonce, blob[end:], header)
    except InvalidTag:
        raise IntegrityError(
            "export archive: cannot decrypt (wrong password or key, or the file was altered)"
        ) from None


# --------------------------------------------------------------------------- the rights service


def _legacy_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def import_legacy_state(path: Path, catalog: Catalog) -> int:
    """Move the restrictions and objections of a legacy ``rights.db`` into *catalog*.

    Rows are copied idempotently (a row already in the catalog is skipped), then the file is
    renamed ``<name>.migrated`` so it is never read again. Returns how many rows were found
    (0 when there is no such file).
    """
    if not path.is_file():
        return 0
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT recording_id, subject_hash, kind, detail, placed_at, lifted_at"
            " FROM restrictions"
        ).fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: cannot read the legacy restrictions ({exc})") from exc
    finally:
        connection.close()
    entries = [
        RestrictionEntry(
            recording_id=str(recording),
            subject_hash=str(subject),
            kind=RestrictionKind(kind),
            detail=str(detail),
            ground=None,
            placed_at=_legacy_time(str(placed)),
            lifted_at=None if lifted is None else _legacy_time(str(lifted)),
        )
        for recording, subject, kind, detail, placed, lifted in rows
    ]
    catalog.import_restrictions(entries)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.replace(path.with_name(path.name + ".migrated"))
    return len(entries)


@attrs.frozen(kw_only=True)
class AccessGrant:
    """Permission to read one recording's artifacts for one purpose until *expires_at*.

    Returned by :meth:`Rights.open`; :meth:`Rights.read` refuses it once expired.
    """

    principal: str
    role: str
    recording: str
    purpose: str
    expires_at: datetime
    artifacts: tuple[str, ...]
    audit_seq: int


@attrs.frozen(kw_only=True)
class ExportResult:
    """What an access export (Art. 15) wrote.

    :param sha256: digest of the encrypted archive (also in the audit log).
    """

    request: str
    path: Path
    recordings: tuple[str, ...]
    files: tuple[str, ...]
    sha256: str
    audit_seq: int


@attrs.frozen(kw_only=True)
class RestrictionResult:
    """Recordings marked (or unmarked) by a restriction or objection request.

    :param removed_purposes: per recording, the purposes an objection removed from the
        objector's track (those it kept on legitimate interests or a public task).
    :param ended_purposes: per recording, the removed purposes no track keeps any more, which
        the catalog therefore no longer retains the recording for (the others stay for the
        other party's track).
    :param removed_from: per recording, the tracks (:class:`~voicepriv.model.Role`) the
        purposes were removed from.
    :param deleted: recordings an objection left with no purpose at all, hence deleted.
    :param delete_after: per recording an objection kept, its new governing deadline.
    :param voiceprints_stopped: the agent's voiceprint entries an objection stopped (never
        loaded again; re-enrolling is refused until they are deleted).
    """

    request: str
    kind: str
    recordings: tuple[str, ...]
    removed_purposes: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    ended_purposes: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    removed_from: Mapping[str, tuple[Role, ...]] = attrs.field(factory=dict)
    deleted: tuple[str, ...] = ()
    audit_seq: int = -1
    delete_after: Mapping[str, datetime | None] = attrs.field(factory=dict)
    voiceprints_stopped: tuple[str, ...] = ()


_RESTRICTION: Final = RestrictionKind.RESTRICTION.value
_OBJECTION: Final = RestrictionKind.OBJECTION.value


def _denial_code(principal: Principal, decision: Decision, purpose: str, policy: Policy) -> str:
    """A short code for the audit log saying why :func:`authorize` denied (no free text)."""
    if principal.role not in policy.roles:
        return "unknown_role"
    if purpose not in policy.allowed(principal.role):
        return "purpose_not_allowed_for_role"
    if not decision.covers(purpose):
        return "not_kept_for_purpose"
    return "retention_ended"


def _request_id() -> str:
    return "req-" + uuid.uuid4().hex


class Rights:
    """Purpose-bound access and data-subject requests over one vault, one policy, one log.

    :param vault: the vault holding the recordings.
    :param policy: the organisation's policy (roles, purposes, legal bases).
    :param audit: the audit log every grant, denial and request is written to.
    :param state_path: a legacy restrictions database (default ``rights.db`` in the vault
        folder); when it exists its rows are moved into the catalog on open (restrictions and
        objections now live in the catalog, so a PostgreSQL catalog carries them too).
    """

    def __init__(
        self,
        vault: Vault,
        policy: Policy,
        audit: AuditLog,
        *,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.vault = vault
        self.policy = policy
        self.audit = audit
        path = Path(state_path) if state_path is not None else vault.config.root / "rights.db"
        self.migrated = import_legacy_state(path, vault.catalog)

    def close(self) -> None:
        """Nothing to release: the vault and the log belong to the caller."""

    def __enter__(self) -> Rights:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def decision(self, recording_id: str) -> Decision | None:
        """The decision stored (sealed) with a recording, or ``None`` when none was stored."""
        text = self.vault.metadata(recording_id).decision
        if not text:
            return None
        return decision_from_dict(json.loads(text))

    def subject_hashes(self, subjects: Iterable[SubjectRef]) -> list[str]:
        """Keyed hashes of *subjects*, as the catalog indexes them."""
        hashes = sorted({self.vault.subject_hash(s) for s in subjects})
        if not hashes:
            raise ConfigError("data-subject request: expected at least one subject identifier")
        return hashes

    def _roles(self, recording: Recording, hashes: Iterable[str]) -> frozenset[Role]:
        """The roles of the parties of *recording* one of whose identifiers hashes to one of
        *hashes*."""
        wanted = set(hashes)
        return frozenset(
            party.role
            for party in recording.parties
            if any(self.vault.subject_hash(s) in wanted for s in party.subjects)
        )

    def _after_objections(
        self, recording_id: str, recording: Recording, decision: Decision
    ) -> Decision:
        """*decision* (as stored, never rewritten) without the purposes that objections in
        force already removed from the objectors' tracks, so objections add up."""
        by_track: dict[Role, set[str]] = {}
        for row in self.vault.catalog.restrictions(recording_id, RestrictionKind.OBJECTION):
            for role in self._roles(recording, (row.subject_hash,)):
                track = _track_of(role)
                if track is not None:
                    by_track.setdefault(track, set()).add(row.detail)
        if not by_track:
            return decision
        return attrs.evolve(
            decision,
            agent=_without(decision.agent, frozenset(by_track.get(Role.AGENT, ()))),
            customer=_without(decision.customer, frozenset(by_track.get(Role.CUSTOMER, ()))),
        )

    def _recordings(self, hashes: Sequence[str]) -> dict[str, set[str]]:
        """Active recording ids indexed under *hashes*, with the hashes that matched each
        (a recording whose deletion was interrupted is no longer exported or restricted)."""
        found: dict[str, set[str]] = {}
        for subject in hashes:
            for recording in self.vault.catalog.recordings_for_subject(subject):
                if self.vault.catalog.recording(recording).state is RecordingState.ACTIVE:
                    found.setdefault(recording, set()).add(subject)
        return found

    # ------------------------------------------------------------------ access

    def open(
        self,
        recording_id: str,
        *,
        principal: Principal,
        purpose: str,
        now: datetime | None = None,
    ) -> AccessGrant:
        """Grant *principal* access to a recording for *purpose*, or raise; audited either way.

        Needs a role and purpose the policy allows, a stored decision keeping the recording
        for that purpose before its deadline, no objection to that purpose, and — for a
        restricted recording — a legal-claims purpose (:data:`LEGAL_CLAIM_PURPOSES`). When only
        a customer objected to the purpose and the agent's track still keeps it, the grant
        covers only the artifacts holding the agent's voice alone (agent audio, voiceprints)
        and its ``access_granted`` event says ``scope: agent_voice_only``. The grant expires
        after the policy's ``access_grant_hours`` or at the deadline.

        :raises AccessDenied: with the reason (after the denial is logged).
        """
        when = _now(now, "Rights.open")
        base = {"recording": recording_id, "principal": principal.id, "role": principal.role}
        answer: Grant | Denial | None = None
        decision: Decision | None = None
        code: str | None
        scope: frozenset[ArtifactKind] | None = None
        try:
            metadata = self.vault.metadata(recording_id)
        except KeyDestroyedError:
            code, message = "erased", "it was erased"
        except NotFoundError:
            code, message = "not_found", "no such recording in the vault"
        else:
            if metadata.decision:
                decision = decision_from_dict(json.loads(metadata.decision))
            code, message, scope = self._refusal(
                recording_id, metadata.recording, decision, purpose, when
            )
        if code is None and decision is not None:
            answer = authorize(principal, decision, purpose, self.policy, when)
            if isinstance(answer, Denial):
                code = _denial_code(principal, decision, purpose, self.policy)
                message = answer.reason
        if not isinstance(answer, Grant):
            self.audit.append(
                EventType.ACCESS_DENIED, {**base, "purpose": purpose, "reason": code}, at=when
            )
            raise AccessDenied(f"{principal.id} may not open {recording_id}: {message}")
        artifacts = tuple(
            a.id
            for a in self.vault.catalog.artifacts(recording_id)
            if a.deleted_at is None
            and a.kind is not ArtifactKind.EXPORT
            and (scope is None or a.kind in scope)
        )
        granted: dict[str, Any] = {**base, "purpose": purpose, "expires_at": answer.expires_at}
        if scope is not None:
            granted["scope"] = "agent_voice_only"
        event = self.audit.append(EventType.ACCESS_GRANTED, granted, at=when)
        return AccessGrant(
            principal=principal.id,
            role=principal.role,
            recording=recording_id,
            purpose=purpose,
            expires_at=answer.expires_at,
            artifacts=artifacts,
            audit_seq=event.seq,
        )

    def _refusal(
        self,
        recording_id: str,
        recording: Recording,
        decision: Decision | None,
        purpose: str,
        when: datetime,
    ) -> tuple[str | None, str, frozenset[ArtifactKind] | None]:
        """Why a request must be refused before the policy is asked (code, sentence), and the
        artifact kinds a grant may cover (``None``: all)."""
        if decision is None:
            return "no_decision", "no decision is stored with it", None
        catalog = self.vault.catalog
        if catalog.restrictions(recording_id, RestrictionKind.RESTRICTION) and (
            purpose not in LEGAL_CLAIM_PURPOSES
        ):
            return (
                "restricted",
                "processing is restricted (GDPR Art. 18); it may only be opened for "
                + ", ".join(sorted(LEGAL_CLAIM_PURPOSES)),
                None,
            )
        objected = f"the data subject objected to {purpose!r} (GDPR Art. 21)"
        deadline = catalog.purpose_deadlines(recording_id).get(purpose)
        if deadline is not None and deadline.end_reason is PurposeEnd.OBJECTION:
            return "objected", objected, None
        objectors = {
            r.subject_hash
            for r in catalog.restrictions(recording_id, RestrictionKind.OBJECTION)
            if r.detail == purpose
        }
        scope: frozenset[ArtifactKind] | None = None
        if objectors:
            # Only customers objected and the agent's track still keeps the purpose: the
            # agent's voice alone may still be used for it; anything else is refused.
            roles = self._roles(recording, objectors)
            if not (
                roles
                and all(_track_of(role) is Role.CUSTOMER for role in roles)
                and decision.agent.covers(purpose)
            ):
                return "objected", objected, None
            if not any(
                a.deleted_at is None and a.kind in _AGENT_ONLY
                for a in catalog.artifacts(recording_id)
            ):
                return (
                    "objected",
                    objected + "; no stored artifact holds the agent's voice alone",
                    None,
                )
            scope = _AGENT_ONLY
        if deadline is not None and not deadline.retains(when):
            ended = deadline.ended_at if deadline.ended_at is not None else deadline.due_at
            how = "expired" if deadline.end_reason in (None, PurposeEnd.EXPIRED) else "withdrawn"
            return (
                "purpose_" + how,
                f"the catalog no longer retains it for {purpose!r} ({how} at "
                f"{min(ended, deadline.due_at).isoformat()})",
                None,
            )
        return None, "", scope

    def read(self, grant: AccessGrant, artifact_id: str, *, now: datetime | None = None) -> bytes:
        """The plaintext of one artifact under *grant*.

        :raises AccessDenied: the grant expired, or the artifact is not the grant's recording
            (logged as ``access_denied``).
        """
        when = _now(now, "Rights.read")
        code = None
        if when >= grant.expires_at:
            code = "grant_expired"
        elif artifact_id not in grant.artifacts:
            code = "artifact_not_in_grant"
        if code is not None:
            self.audit.append(
                EventType.ACCESS_DENIED,
                {
                    "recording": grant.recording,
                    "artifact": artifact_id,
                    "principal": grant.principal,
                    "role": grant.role,
                    "purpose": grant.purpose,
                    "reason": code,
                },
                at=when,
            )
            raise AccessDenied(
                f"{grant.principal}: grant for {grant.recording} does not allow reading "
                f"{artifact_id} ({code.replace('_', ' ')})"
            )
        return self.vault.read(artifact_id)

    # ------------------------------------------------------------------ holds and keys

    def place_hold(self, hold: LegalHold) -> int:
        """Place a legal hold in the vault and log ``hold_placed`` (id and scope, not the reason
        text, which may name people); return the audit event's position.

        :raises ConfigError: the event would be refused by the log (checked before the hold is
            placed, so a hold is never placed without its event).
        """
        data = {
            "hold": hold.id,
            "recordings": sorted(hold.scope.recordings),
            "tags": sorted(hold.scope.tags),
            "subjects": sorted(hold.scope.subjects),
            "placed_at": hold.placed_at,
        }
        self.audit.check_writable()
        check_event_data(data)
        self.vault.place_hold(hold)
        event = self.audit.append(EventType.HOLD_PLACED, data, at=hold.placed_at)
        return event.seq

    def lift_hold(self, hold_id: str, *, now: datetime | None = None) -> int:
        """Lift a legal hold and log ``hold_lifted``; return the audit event's position."""
        when = _now(now, "Rights.lift_hold")
        self.audit.check_writable()
        check_event_data({"hold": hold_id})
        self.vault.lift_hold(hold_id, when)
        return self.audit.append(EventType.HOLD_LIFTED, {"hold": hold_id}, at=when).seq

    def rotate_key(self, *, now: datetime | None = None) -> str:
        """Rotate the vault's master key and log ``key_rotated``; return the new key id."""
        when = _now(now, "Rights.rotate_key")
        self.audit.check_writable()
        key_id = self.vault.rotate_key()
        self.audit.append(EventType.KEY_ROTATED, {"key": key_id}, at=when)
        return key_id

    # ------------------------------------------------------------------ erasure

    def plan_erasure(
        self, subjects: Iterable[SubjectRef], *, now: datetime | None = None
    ) -> ErasurePlan:
        """What :meth:`erase` would do, without changing anything."""
        when = _now(now, "Rights.plan_erasure")
        hashes = self.subject_hashes(subjects)
        candidates, holds = erasure_candidates(
            self.vault.catalog, hashes, at=when, policy=self.policy
        )
        candidates = [
            attrs.evolve(c, decision=self._decision_or_none(c.recording)) for c in candidates
        ]
        return plan_erasure(candidates, holds, subject_hashes=hashes, at=when)

    def _decision_or_none(self, recording_id: str) -> Decision | None:
        """The stored decision, or ``None`` when an interrupted deletion already shredded it."""
        try:
            return self.decision(recording_id)
        except KeyDestroyedError:
            return None

    def erase(
        self, subjects: Iterable[SubjectRef], *, now: datetime | None = None
    ) -> ErasureCertificate:
        """Erase every recording where the subject is a party (GDPR Art. 17).

        Deletable recordings are crypto-shredded and every replica deleted; recordings a legal
        hold or a legal obligation retains are kept, restricted to that reason, and listed in
        the certificate with until when. Every deletion and the request are audited; the
        certificate is signed with the key provider's Ed25519 key.
        """
        when = _now(now, "Rights.erase")
        request = _request_id()
        plan = self.plan_erasure(subjects, now=when)
        # Nothing is shredded unless every event of it can be logged.
        self.audit.check_writable()
        for recording in plan.delete:
            check_event_data(_deletion_data(recording, "erasure_request", request, None))
        check_event_data(_erasure_data(request, plan.subjects, plan.delete, plan.retain, 0))
        retained = list(plan.retain)
        erased: list[str] = []
        replicas = 0
        for recording in plan.delete:
            try:
                receipt = self.vault.delete(recording, "erasure_request", now=when)
            except LegalHoldError:
                # A hold placed after planning: keep it, say so.
                retained.extend(
                    Retention(
                        recording=recording,
                        by=RetainedBy.LEGAL_HOLD,
                        ref=h.hold_id,
                        reason=h.reason,
                        until=None,
                    )
                    for h in self.vault.catalog.holds_covering(recording, when)
                )
                continue
            erased.append(recording)
            replicas += len(receipt.replicas)
            self.audit.append(
                EventType.DELETION,
                _deletion_data(recording, "erasure_request", request, receipt),
                at=when,
            )
        for recording in sorted({r.recording for r in retained}):
            for subject in plan.subjects:
                self.vault.catalog.add_restriction(
                    recording,
                    subject,
                    RestrictionKind.RESTRICTION,
                    at=when,
                    detail="erasure_retained",
                )
        event = self.audit.append(
            EventType.ERASURE,
            _erasure_data(request, plan.subjects, erased, retained, replicas),
            at=when,
        )
        return ErasureCertificate.issue(
            signer=self.vault.provider,
            request=request,
            issued_at=when,
            subjects=plan.subjects,
            erased=erased,
            replicas_deleted=replicas,
            retained=sorted(retained, key=lambda r: (r.recording, r.by.value, r.ref)),
            audit_seq=event.seq,
        )

    # ------------------------------------------------------------------ export

    def export(
        self,
        subjects: Iterable[SubjectRef],
        destination: str | os.PathLike[str],
        recipient: Recipient,
        *,
        now: datetime | None = None,
    ) -> ExportResult:
        """Write one encrypted archive with everything kept about the subject (GDPR Art. 15).

        The archive (a ZIP, sealed with :func:`seal_archive`) holds ``summary.txt`` (plain
        language), ``manifest.json`` (per recording: date, duration, the subject's role,
        purposes, legal bases, deadlines, consent history), and the decrypted audio and
        transcripts of the subject's own calls only. Identifiers of other parties (agent ids,
        other subjects) are left out. The export is audited with the archive's SHA-256.
        """
        when = _now(now, "Rights.export")
        request = _request_id()
        refs = list(subjects)
        hashes = self.subject_hashes(refs)
        canonical = {ref.canonical for ref in refs}
        target = Path(destination)
        _check_output_path(target, "Rights.export destination")
        found = self._recordings(hashes)
        encryption = "password" if isinstance(recipient, PasswordRecipient) else "x25519"
        # No archive is written unless its export event can be logged.
        self.audit.check_writable()
        check_event_data(_export_data(request, hashes, sorted(found), "0" * 64, encryption))
        manifest: list[dict[str, Any]] = []
        buffer = io.BytesIO()
        files: list[str] = []
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for recording_id in sorted(found):
                metadata = self.vault.metadata(recording_id)
                recording = metadata.recording
                decision = (
                    # as it stands now: the purposes objections removed are not listed
                    self._after_objections(
                        recording_id,
                        recording,
                        decision_from_dict(json.loads(metadata.decision)),
                    )
                    if metadata.decision
                    else None
                )
                roles = sorted(
                    {
                        party.role.value
                        for party in recording.parties
                        if any(s.canonical in canonical for s in party.subjects)
                    }
                )
                entry = _manifest_entry(recording, decision, roles, self.vault, recording_id)
                for artifact in self.vault.catalog.artifacts(recording_id):
                    if artifact.deleted_at is not None:
                        continue
                    name = _export_file(archive, self.vault, recording_id, artifact)
                    if name is not None:
                        files.append(name)
                        entry["files"].append(name)
                manifest.append(entry)
            summary = _summary(manifest, self.policy, when)
            archive.writestr("summary.txt", summary)
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
            files = ["summary.txt", "manifest.json", *files]
        sealed = seal_archive(buffer.getvalue(), recipient)
        temporary = target.with_name(target.name + ".tmp")
        try:
            temporary.write_bytes(sealed)
            temporary.replace(target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigError(
                f"Rights.export destination {target}: cannot write ({exc.strerror or exc})"
            ) from exc
        digest = hashlib.sha256(sealed).hexdigest()
        event = self.audit.append(
            EventType.EXPORT,
            _export_data(request, hashes, sorted(found), digest, encryption),
            at=when,
        )
        return ExportResult(
            request=request,
            path=target,
            recordings=tuple(sorted(found)),
            files=tuple(files),
            sha256=digest,
            audit_seq=event.seq,
        )

    # ------------------------------------------------------------------ restriction / objection

    def restrict(
        self,
        subjects: Iterable[SubjectRef],
        *,
        now: datetime | None = None,
        lift: bool = False,
        ground: RestrictionGround | None = None,
    ) -> RestrictionResult:
        """Restrict processing of the subject's recordings (GDPR Art. 18), or lift it.

        Restricted recordings are kept, and :meth:`open` refuses every purpose but legal
        claims (:data:`LEGAL_CLAIM_PURPOSES`). Retention deletion goes on, except under
        ground :attr:`RestrictionGround.LEGAL_CLAIMS` (Art. 18(1)(c): the subject needs the
        data for legal claims), where :meth:`Vault.sweep` holds the recording back and says
        why until the restriction is lifted.

        :param ground: the Art. 18(1) ground, recorded with the restriction.
        """
        when = _now(now, "Rights.restrict")
        request = _request_id()
        hashes = self.subject_hashes(subjects)
        found = self._recordings(hashes)
        data = {
            "request": request,
            "subjects": hashes,
            "recordings": sorted(found),
            "action": "lift" if lift else "restrict",
            **({} if lift or ground is None else {"ground": ground.value}),
        }
        self.audit.check_writable()
        check_event_data(data)
        for recording, matched in sorted(found.items()):
            for subject in sorted(matched):
                if lift:
                    self.vault.catalog.lift_restrictions(
                        recording, subject, RestrictionKind.RESTRICTION, when
                    )
                else:
                    self.vault.catalog.add_restriction(
                        recording, subject, RestrictionKind.RESTRICTION, at=when, ground=ground
                    )
        event = self.audit.append(EventType.RESTRICTION, data, at=when)
        return RestrictionResult(
            request=request,
            kind="lift" if lift else _RESTRICTION,
            recordings=tuple(sorted(found)),
            audit_seq=event.seq,
        )

    def _objector_voice_left(self, recording: str, roles: Iterable[Role], after: Decision) -> bool:
        """Whether a customer's objection left their track with no purpose while stored
        artifacts still hold their voice (the agent's track keeping purposes of its own).

        Such a recording is deleted: the customer's voice may no longer be processed, and a
        stored mix cannot be reduced to the agent's side after the fact (fail closed).
        """
        if Role.CUSTOMER not in set(roles) or after.customer.keep:
            return False
        return any(a.kind not in _AGENT_ONLY for a in self.vault.catalog.artifacts(recording))

    def object(
        self, subjects: Iterable[SubjectRef], *, now: datetime | None = None
    ) -> RestrictionResult:
        """Record an objection (GDPR Art. 21): the objector's legitimate-interest purposes stop.

        For each of the subject's recordings, the subject's role on the call (customer, or
        agent / supervisor) names their track of the stored decision; the purposes that track
        keeps on legitimate interests or a public task (:data:`OBJECTABLE_BASES`, not mandatory
        ones) are removed from it (:func:`object_to_processing`) and refused from now on for the
        subject's voice. The subject's purposes on other bases, and the other party's track,
        are untouched. A removed purpose that no track keeps any more is dropped from the
        catalog (:meth:`Vault.drop_purposes`), so the retention shortens to the latest deadline
        of the purposes left; one the other track still keeps stays in the catalog, and
        :meth:`open` then hands out for it only artifacts without the objector's voice. A
        recording left with no purpose at all is deleted (crypto-shredded) unless a legal hold
        or obligation keeps it; so is one whose customer objected until their track kept
        nothing, when a stored artifact other than the agent's audio holds their voice (a mix
        cannot be cut down to the agent's side afterwards; the agent's purposes end with it).
        """
        when = _now(now, "Rights.object")
        request = _request_id()
        hashes = self.subject_hashes(subjects)
        found = self._recordings(hashes)
        # Nothing changes unless its events can be logged (the recordings' ids are checked
        # as any deletion would log them; the rest are codes and keyed hashes).
        self.audit.check_writable()
        for recording in sorted(found):
            check_event_data(_deletion_data(recording, "objection", request, None))
        check_event_data({"request": request, "subjects": hashes, "deleted": sorted(found)})
        removed: dict[str, tuple[str, ...]] = {}
        ended: dict[str, tuple[str, ...]] = {}
        removed_from: dict[str, tuple[Role, ...]] = {}
        logged: list[dict[str, Any]] = []
        emptied: list[str] = []
        shortened: dict[str, datetime | None] = {}
        voiceprints: list[str] = []
        for recording in sorted(found):
            metadata = self.vault.metadata(recording)
            if not metadata.decision:
                if _VOICEPRINT_TAG in metadata.recording.tags:
                    # The agent's voiceprint (no call decision): an objection stops its use
                    # (load_voiceprint refuses it) until deleted or re-enrolled with consent.
                    for subject in sorted(found[recording]):
                        self.vault.catalog.add_restriction(
                            recording,
                            subject,
                            RestrictionKind.OBJECTION,
                            at=when,
                            detail=_VOICEPRINT_TAG,
                        )
                    voiceprints.append(recording)
                continue
            decision = self._after_objections(
                recording,
                metadata.recording,
                decision_from_dict(json.loads(metadata.decision)),
            )
            roles = self._roles(metadata.recording, found[recording])
            after, purposes = object_to_processing(decision, roles=roles)
            if not purposes:
                continue
            tracks = tuple(
                before.role
                for before, now_kept in zip(decision.tracks, after.tracks, strict=True)
                if before.purposes != now_kept.purposes
            )
            bases = sorted(
                {
                    kept.basis.name.lower()
                    for track in decision.tracks
                    if track.role in tracks
                    for kept in track.purposes
                    if kept.purpose in purposes
                }
            )
            stopped = tuple(sorted(purposes - after.purposes()))
            removed[recording] = tuple(sorted(purposes))
            ended[recording] = stopped
            removed_from[recording] = tracks
            logged.append(
                {
                    "recording": recording,
                    "tracks": [t.value for t in tracks],
                    "purposes": list(removed[recording]),
                    "bases": bases,
                    "ended": list(stopped),
                }
            )
            for subject in sorted(found[recording]):
                for purpose in sorted(purposes):
                    self.vault.catalog.add_restriction(
                        recording, subject, RestrictionKind.OBJECTION, at=when, detail=purpose
                    )
            change = self.vault.drop_purposes(
                recording, stopped, reason=PurposeEnd.OBJECTION, now=when
            )
            if (
                not after.keep
                or change.emptied
                or self._objector_voice_left(recording, roles, after)
            ):
                emptied.append(recording)
            else:
                shortened[recording] = change.delete_after
        deleted: list[str] = []
        if emptied:
            candidates, holds = erasure_candidates(
                self.vault.catalog, hashes, at=when, policy=self.policy
            )
            plan = plan_erasure(
                [c for c in candidates if c.recording in emptied],
                holds,
                subject_hashes=hashes,
                at=when,
            )
            for recording in plan.delete:
                receipt = self.vault.delete(recording, "objection", now=when)
                deleted.append(recording)
                self.audit.append(
                    EventType.DELETION,
                    _deletion_data(recording, "objection", request, receipt),
                    at=when,
                )
        event = self.audit.append(
            EventType.OBJECTION,
            {
                "request": request,
                "subjects": hashes,
                "removed": logged,
                "voiceprints_stopped": len(voiceprints),
                "deleted": deleted,
                "retention": [
                    {"recording": r, "delete_after": None if d is None else format_time(d)}
                    for r, d in sorted(shortened.items())
                ],
            },
            at=when,
        )
        return RestrictionResult(
            request=request,
            kind=_OBJECTION,
            recordings=tuple(sorted(found)),
            removed_purposes=removed,
            ended_purposes=ended,
            removed_from=removed_from,
            deleted=tuple(deleted),
            audit_seq=event.seq,
            delete_after=shortened,
            voiceprints_stopped=tuple(voiceprints),
        )


# --------------------------------------------------------------------------- event data


def _deletion_data(
    recording: str, reason: str, request: str, receipt: DeletionReceipt | None
) -> dict[str, Any]:
    """The ``deletion`` event of *recording* (with *receipt* ``None``: the shape it will have,
    to check before deleting)."""
    return {
        "recording": recording,
        "reason": reason,
        "request": request,
        "key_destroyed": True if receipt is None else receipt.key_destroyed,
        "replicas_deleted": 0 if receipt is None else len(receipt.replicas),
    }


def _erasure_data(
    request: str,
    subjects: Sequence[str],
    erased: Sequence[str],
    retained: Sequence[Retention],
    replicas: int,
) -> dict[str, Any]:
    """The ``erasure`` event of a request."""
    return {
        "request": request,
        "subjects": list(subjects),
        "erased": list(erased),
        "retained": [
            {"recording": r.recording, "by": r.by, "ref": r.ref, "until": r.until} for r in retained
        ],
        "replicas_deleted": replicas,
    }


def _export_data(
    request: str, subjects: Sequence[str], recordings: Sequence[str], digest: str, encryption: str
) -> dict[str, Any]:
    """The ``export`` event of an access export."""
    return {
        "request": request,
        "subjects": list(subjects),
        "recordings": list(recordings),
        "archive_sha256": digest,
        "encryption": encryption,
    }


def _check_output_path(path: Path, what: str) -> None:
    """Refuse an output *path* that cannot be written, before anything is done.

    :param what: names the parameter or option in the message (``--output``).
    :raises ConfigError: *path* is a folder, or its folder does not exist.
    """
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder, expected a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"{what} {path}: the folder {path.parent} does not exist")


# --------------------------------------------------------------------------- export helpers


def _manifest_entry(
    recording: Recording,
    decision: Decision | None,
    roles: Sequence[str],
    vault: Vault,
    recording_id: str,
) -> dict[str, Any]:
    purposes: list[dict[str, Any]] = []
    if decision is not None:
        seen: set[str] = set()
        for track in decision.tracks:
            for kept in track.purposes:
                if kept.purpose in seen:
                    continue
                seen.add(kept.purpose)
                purposes.append(
                    {
                        "purpose": kept.purpose,
                        "legal_basis": kept.basis.article,
                        "basis_name": kept.basis.name.lower().replace("_", " "),
                        "reference": kept.reference,
                        "kept_until": kept.deadline.isoformat(),
                        "tracks": sorted(
                            t.role.value for t in decision.tracks if t.covers(kept.purpose)
                        ),
                    }
                )
    # Consent events carry a role, not a party: with two customers on the call, a customer's
    # events may be the other customer's answers, which are not the requester's data.
    counts = Counter(party.role for party in recording.parties)
    shared = {role for role, count in counts.items() if count > 1}
    consents = [
        {
            "role": event.role.value,
            "purpose": event.purpose,
            "state": event.state.value,
            "method": event.method.value,
            "offset_s": None if event.offset is None else event.offset.total_seconds(),
            "at": None if event.at is None else event.at.isoformat(),
        }
        for event in recording.consents
        if event.role.value in roles and event.role not in shared
    ]
    entry = vault.catalog.recording(recording_id)
    withheld = sorted(role.value for role in shared if role.value in roles)
    return {
        "recording": recording_id,
        "started_at": recording.started_at.isoformat(),
        "duration_s": recording.duration.total_seconds(),
        "direction": recording.direction.value,
        "your_role": list(roles),
        "purposes": purposes,
        "delete_after": None if entry.delete_after is None else entry.delete_after.isoformat(),
        "consents": consents,
        **(
            {
                "consents_withheld": f"several parties share the role(s) {', '.join(withheld)}; "
                "consent events do not say which of them answered"
            }
            if withheld
            else {}
        ),
        "files": [],
    }


def _export_file(
    archive: zipfile.ZipFile, vault: Vault, recording_id: str, artifact: ArtifactEntry
) -> str | None:
    """Write one decrypted artifact into the archive; return its name (``None``: not exported).

    Voiceprints are the agent's biometric data and earlier exports are not the subject's
    recording: neither is exported.
    """
    if artifact.kind in {ArtifactKind.VOICEPRINT, ArtifactKind.EXPORT}:
        return None
    media = dict(artifact.media or {})
    if artifact.kind in {ArtifactKind.AGENT_AUDIO, ArtifactKind.FULL_AUDIO}:
        if media.get("format") == "pcm_s16le":
            name = f"recordings/{recording_id}/{artifact.kind.value}.wav"
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as wav:
                wav.setnchannels(int(media.get("channels", 1)))
                wav.setsampwidth(2)
                wav.setframerate(int(media.get("sample_rate", 8000)))
                wav.writeframes(vault.read(artifact.id))
            archive.writestr(name, buffer.getvalue())
            return name
        suffix = str(media.get("format", "bin"))
        name = f"recordings/{recording_id}/{artifact.kind.value}.{suffix}"
    else:
        name = f"transcripts/{recording_id}/{artifact.kind.value}.txt"
    with archive.open(name, "w") as out, vault.open_artifact(artifact.id) as reader:
        for block in iter(lambda: reader.read(1 << 20), b""):
            out.write(block)
    return name


def _summary(manifest: Sequence[Mapping[str, Any]], policy: Policy, at: datetime) -> str:
    """The plain-language summary at the top of an export."""
    org = policy.organisation.name
    lines = [
        f"What {org} keeps about you",
        "=" * (len(org) + 20),
        "",
        f"This archive was prepared on {at:%d %B %Y} in answer to your request for access to "
        "your personal data (GDPR Article 15).",
        "",
    ]
    if not manifest:
        lines.append("We found no recordings of calls in which you took part.")
    else:
        lines.append(
            f"We keep {len(manifest)} recording(s) of calls in which you took part. For each "
            "call, this is what we keep, why, on which legal basis and until when:"
        )
        for entry in manifest:
            started = datetime.fromisoformat(entry["started_at"])
            minutes = max(1, round(entry["duration_s"] / 60))
            lines += [
                "",
                f"- Call on {started:%d %B %Y at %H:%M} UTC (about {minutes} minute(s), "
                f"{entry['direction']}), reference {entry['recording']}.",
            ]
            for purpose in entry["purposes"]:
                label = policy.purposes.get(purpose["purpose"])
                name = (label.label if label is not None and label.label else "") or purpose[
                    "purpose"
                ].replace("_", " ")
                tracks = " and ".join(
                    "your voice" if t == "customer" else "the agent's voice"
                    for t in purpose["tracks"]
                )
                until = datetime.fromisoformat(purpose["kept_until"])
                lines.append(
                    f"  * {name}: we keep {tracks} on the basis of {purpose['basis_name']} "
                    f"({purpose['legal_basis']}) until {until:%d %B %Y}."
                )
            if not entry["purposes"]:
                lines.append("  * No purpose is recorded for this call.")
            if entry["consents"]:
                answers = ", ".join(
                    f"{c['state']} for {c['purpose'].replace('_', ' ')} ({c['method']})"
                    for c in entry["consents"]
                )
                lines.append(f"  * What you told us during the call: {answers}.")
            if entry["files"]:
                lines.append(f"  * Included in this archive: {', '.join(entry['files'])}.")
    lines += [
        "",
        "You may ask us to correct or erase this data, to restrict its use, or object to its "
        "use for our legitimate interests (GDPR Articles 16-18 and 21). Some recordings must be "
        "kept by law until the date shown; we can then only keep them for that reason. You "
        "may also complain to your data-protection supervisory authority.",
        "",
        "manifest.json holds the same information in machine-readable form.",
    ]
    return "\n".join(lines) + "\n"
