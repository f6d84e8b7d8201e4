"""Data-subject rights: erasure (Art. 17), access export (Art. 15), restriction (Art. 18),
objection (Art. 21), and purpose-bound, audited access to recordings.

Everything here walks from subject identifiers (phone number, customer id, e-mail) to the
catalog's keyed hashes, never the other way round; the audit log receives ids and hashes only.

- :func:`plan_erasure` decides, per matching recording, whether it may be deleted now or is
  retained by a legal hold or a legal obligation (and until when). It is pure and fast.
- :func:`seal_archive` / :func:`open_archive` encrypt an Art. 15 export for a password
  (scrypt + AES-256-GCM) or an X25519 public key.
- :func:`object_to_processing` removes legitimate-interest purposes from a decision.
- :class:`ErasureCertificate` is a signed statement of what was erased and what was kept.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from voicepriv.audit import Signer
from voicepriv.errors import ConfigError, IntegrityError
from voicepriv.model import LegalBasis, LegalHold, Segment
from voicepriv.policy.config import Policy
from voicepriv.policy.decision import Decision, KeptPurpose, Reason, TrackDecision
from voicepriv.policy.retention import hold_covers
from voicepriv.vault.catalog import Catalog

__all__ = [
    "LEGAL_CLAIM_PURPOSES",
    "ErasureCandidate",
    "ErasureCertificate",
    "ErasurePlan",
    "MandatoryPurpose",
    "PasswordRecipient",
    "PublicKeyRecipient",
    "Recipient",
    "RetainedBy",
    "Retention",
    "erasure_candidates",
    "object_to_processing",
    "open_archive",
    "plan_erasure",
    "seal_archive",
]

#: Purposes a restricted recording may still be opened for (Art. 18(2): legal claims).
LEGAL_CLAIM_PURPOSES: Final = frozenset({"dispute_resolution", "legal_compliance"})


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
    until: datetime


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
    """
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
    """
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


def object_to_processing(decision: Decision) -> tuple[Decision, frozenset[str]]:
    """The decision after an objection (Art. 21): legitimate-interest purposes removed.

    Purposes kept on another basis (consent, contract, legal obligation ...) stay. Returns the
    new decision and the purposes removed; a decision with none is returned unchanged.
    """
    removed = frozenset(
        kept.purpose
        for track in decision.tracks
        for kept in track.purposes
        if kept.basis is LegalBasis.LEGITIMATE_INTERESTS and not kept.mandatory
    )
    if not removed:
        return decision, removed
    reason = Reason(
        text=(
            "the data subject objected; purposes based on legitimate interests removed: "
            + ", ".join(sorted(removed))
        ),
        rule="GDPR Art. 21(1)",
    )
    changed = attrs.evolve(
        decision,
        agent=_without(decision.agent, removed),
        customer=_without(decision.customer, removed),
        reasons=(*decision.reasons, reason),
    )
    return changed, removed


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
