"""Agent enrollment: a :class:`~voicepriv.interfaces.Voiceprint` from clips or earlier calls.

A voiceprint is biometric personal data of the employee. This module only computes it and
turns it into bytes and back (:func:`voiceprint_to_bytes`, :func:`voiceprint_from_bytes`);
it is stored only through the vault, as its own artifact kind :data:`ARTIFACT_KIND`.

The byte format is UTF-8 JSON, the same shape ``voicepriv isolate --agent-voiceprint`` reads::

    {"format": "voicepriv.voiceprint", "version": 1, "agent_id": "...", "embedder": "onnx",
     "dim": 256, "seconds": 41.2, "vector": [...]}
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np

from voicepriv.audio import Audio
from voicepriv.errors import AudioError, ModelError, NotFoundError, VaultError
from voicepriv.interfaces import Embedder, VoiceActivityDetector, Voiceprint
from voicepriv.model import (
    ChannelLayout,
    Direction,
    LayoutKind,
    Party,
    Recording,
    Role,
    SubjectKind,
    SubjectRef,
    utc_now,
)

if TYPE_CHECKING:
    from datetime import datetime

    from voicepriv.audit import AuditLog
    from voicepriv.vault import DeletionReceipt, PutResult, Vault

__all__ = [
    "ARTIFACT_KIND",
    "DEFAULT_KEEP_FOR",
    "FORMAT",
    "MIN_SPEECH_S",
    "VOICEPRINT_TAG",
    "Enrollment",
    "agent_subject",
    "delete_voiceprint",
    "enroll",
    "enroll_clips",
    "enroll_from_calls",
    "load_voiceprint",
    "voiceprint_from_bytes",
    "voiceprint_to_bytes",
]

#: The vault artifact kind voiceprints are stored under.
ARTIFACT_KIND: Final = "voiceprint"
#: The ``format`` tag of serialised voiceprints.
FORMAT: Final = "voicepriv.voiceprint"
_VERSION: Final = 1
#: Tag of the catalog entries that hold voiceprints.
VOICEPRINT_TAG: Final = "voiceprint"
#: Retention of a voiceprint when the caller gives none: one year, renewed by re-enrolling;
#: :func:`delete_voiceprint` removes it at once when the agent leaves.
DEFAULT_KEEP_FOR: Final = timedelta(days=365)
_AGENT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,80}$")
#: Least speech (seconds, as the VAD hears it) a voiceprint may be made from.
MIN_SPEECH_S: Final = 3.0


def _speech_seconds(clip: Audio, vad: VoiceActivityDetector | None) -> float:
    if vad is None:
        from voicepriv.backends.vad import EnergyVad

        vad = EnergyVad()
    activity = vad.detect(clip)
    return float(activity.mask().sum()) * activity.hop_s


def enroll_clips(
    agent_id: str,
    clips: Iterable[Audio],
    embedder: Embedder,
    *,
    vad: VoiceActivityDetector | None = None,
    min_speech_s: float = MIN_SPEECH_S,
) -> Voiceprint:
    """A voiceprint of *agent_id* from enrollment *clips* (mono or multi-channel, any rate).

    Each clip is embedded whole; the embeddings are averaged weighted by each clip's speech
    seconds and L2-normalised. Multi-channel clips are mixed down.

    :raises ModelError: *agent_id* is not one the vault accepts (checked before any clip is
        read, so a refused id never leaves a voiceprint behind).
    :raises AudioError: no clip, or less than *min_speech_s* of speech in all of them.
    """
    _check_new_agent_id(agent_id)
    vectors: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    weights: list[float] = []
    for clip in clips:
        mono = (
            clip if clip.channels == 1 else Audio(samples=clip.mono(), sample_rate=clip.sample_rate)
        )
        seconds = _speech_seconds(mono, vad)
        if seconds <= 0:
            continue
        vectors.append(np.asarray(embedder.embed(mono), np.float64).ravel())
        weights.append(seconds)
    total = float(sum(weights))
    if not vectors or total < min_speech_s:
        raise AudioError(
            f"enrollment of agent {agent_id!r}: {total:.1f} s of speech found, at least "
            f"{min_speech_s:.1f} s needed"
        )
    mean = np.average(np.stack(vectors), axis=0, weights=np.asarray(weights))
    norm = float(np.linalg.norm(mean))
    if norm == 0 or not math.isfinite(norm):
        raise AudioError(f"enrollment of agent {agent_id!r}: the embeddings cancel out")
    return Voiceprint(
        agent_id=agent_id,
        embedder=embedder.name,
        vector=(mean / norm).astype(np.float32),
        seconds=total,
    )


def enroll_from_calls(
    agent_id: str,
    calls: Iterable[tuple[Audio, ChannelLayout]],
    embedder: Embedder,
    *,
    vad: VoiceActivityDetector | None = None,
    min_speech_s: float = MIN_SPEECH_S,
) -> Voiceprint:
    """A voiceprint from the agent channel of earlier dual-channel calls.

    Only the channel the layout gives the agent is read; the customer channel is not touched.

    :raises ModelError: *agent_id* is refused (as by :func:`enroll_clips`), or a layout is
        not stereo or names no agent channel.
    :raises AudioError: a call is not two channels, or too little speech in total.
    """
    _check_new_agent_id(agent_id)
    clips: list[Audio] = []
    for index, (audio, layout) in enumerate(calls):
        if layout.kind is not LayoutKind.STEREO:
            raise ModelError(
                f"enrollment of agent {agent_id!r}: call {index} has a {layout.kind.value} "
                "layout; only dual-channel calls can be used"
            )
        channel = layout.channel_of(Role.AGENT)
        if channel is None:
            raise ModelError(
                f"enrollment of agent {agent_id!r}: the layout of call {index} has no agent channel"
            )
        if audio.channels != 2:
            raise AudioError(
                f"enrollment of agent {agent_id!r}: call {index} has {audio.channels} "
                "channel(s), expected 2"
            )
        clips.append(audio.channel(channel))
    return enroll_clips(agent_id, clips, embedder, vad=vad, min_speech_s=min_speech_s)


def voiceprint_to_bytes(voiceprint: Voiceprint) -> bytes:
    """The voiceprint as UTF-8 JSON bytes (see the module docstring)."""
    vector = np.asarray(voiceprint.vector, np.float32).ravel()
    document = {
        "format": FORMAT,
        "version": _VERSION,
        "agent_id": voiceprint.agent_id,
        "embedder": voiceprint.embedder,
        "dim": int(vector.size),
        "seconds": float(voiceprint.seconds),
        "vector": [float(v) for v in vector],
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def voiceprint_from_bytes(data: bytes, *, source: str = "voiceprint") -> Voiceprint:
    """Parse bytes written by :func:`voiceprint_to_bytes` (or the plain JSON shape).

    :param source: names the input in error messages.
    :raises ModelError: not JSON, a field missing or of the wrong type, a non-finite or
        all-zero vector, or ``dim`` not matching the vector.
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{source}: not a voiceprint (invalid JSON: {exc})") from exc
    if not isinstance(document, dict):
        raise ModelError(f"{source}: not a voiceprint (expected a JSON object)")
    if document.get("format", FORMAT) != FORMAT or document.get("version", _VERSION) > _VERSION:
        raise ModelError(
            f"{source}: unsupported voiceprint format {document.get('format')!r} "
            f"version {document.get('version')!r}"
        )
    problems: list[str] = []
    agent_id = document.get("agent_id")
    embedder = document.get("embedder")
    seconds = document.get("seconds", 0.0)
    raw = document.get("vector")
    if not isinstance(agent_id, str) or not agent_id:
        problems.append(f"agent_id: expected a non-empty string, got {agent_id!r}")
    if not isinstance(embedder, str) or not embedder:
        problems.append(f"embedder: expected a backend name, got {embedder!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        problems.append(f"seconds: expected a number >= 0, got {seconds!r}")
    vector = None
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    ):
        problems.append("vector: expected a non-empty list of numbers")
    else:
        vector = np.asarray(raw, np.float64)
        if not np.isfinite(vector).all() or float(np.linalg.norm(vector)) == 0:
            problems.append("vector: expected finite numbers, not all zero")
        elif "dim" in document and document["dim"] != vector.size:
            problems.append(f"dim: {document['dim']!r} does not match {vector.size} values")
    if problems or vector is None:
        raise ModelError(f"{source}: invalid voiceprint: " + "; ".join(problems))
    assert isinstance(agent_id, str) and isinstance(embedder, str)
    return Voiceprint(
        agent_id=agent_id,
        embedder=embedder,
        vector=(vector / np.linalg.norm(vector)).astype(np.float32),
        seconds=float(seconds),
    )


# --------------------------------------------------------------------------- vault


@attrs.frozen(kw_only=True)
class Enrollment:
    """What :func:`enroll` did.

    :param stored: the new voiceprint artifact (its own catalog entry, ``stored.recording_id``).
    :param replaced: deletion receipts of the agent's older voiceprints (reason
        ``"re_enrollment"``).
    :param held: catalog ids of older voiceprints a legal hold keeps: not deleted, never
        loaded again (:func:`load_voiceprint` reads only the newest); :func:`delete_voiceprint`
        or the retention sweep removes them once the hold is lifted.
    :param notes: one sentence per older voiceprint not deleted (held, or a deletion that
        failed and is resumed by the next :func:`enroll`, :func:`delete_voiceprint` or sweep).
    """

    stored: PutResult
    replaced: tuple[DeletionReceipt, ...] = ()
    held: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _check_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not _AGENT_ID.fullmatch(agent_id):
        raise ModelError(
            f"agent id: expected 1-81 letters, digits, '.', '_', ':' or '-', got {agent_id!r}"
        )
    return agent_id


def _check_new_agent_id(agent_id: str) -> str:
    """:func:`_check_agent_id`, and refuse an id the audit log would refuse in the voiceprint's
    catalog id (one spelled like a phone number, e.g. ``tel:4512345678``): enrolling it could
    never be logged. Only for new voiceprints; stored ones can always be deleted."""
    from voicepriv.audit import check_event_data
    from voicepriv.errors import ConfigError

    _check_agent_id(agent_id)
    try:
        check_event_data({"recording_id": f"voiceprint.{agent_id}"})
    except ConfigError as exc:
        raise ModelError(
            f"agent id {agent_id!r}: the audit log refuses it ({exc}); use a personnel number"
        ) from exc
    return agent_id


def agent_subject(agent_id: str) -> SubjectRef:
    """The data-subject reference a voiceprint is indexed under (the employee)."""
    return SubjectRef(kind=SubjectKind.OTHER, value=f"voicepriv-agent:{_check_agent_id(agent_id)}")


def _live_voiceprints(vault: Vault, agent_id: str) -> list[str]:
    """Catalog ids of the agent's voiceprint entries still stored (active, whatever their
    deadline, restrictions or holds), oldest first: what re-enrolling and
    :func:`delete_voiceprint` remove. :func:`load_voiceprint` decides which may be used."""
    from voicepriv.vault import RecordingState

    entries = []
    for recording_id in vault.find_subject(agent_subject(agent_id)):
        entry = vault.catalog.recording(recording_id)
        if entry.state is RecordingState.ACTIVE and VOICEPRINT_TAG in entry.tags:
            entries.append(entry)
    return [e.id for e in sorted(entries, key=lambda e: (e.created_at, e.id))]


def _stored_event(
    result: PutResult, replaced: Iterable[str], held: Iterable[str]
) -> dict[str, Any]:
    """Audit data of a stored voiceprint: ids only (the agent id is never logged apart).

    ``deleted`` lists the older voiceprints replaced (each also has its ``deletion`` event),
    ``held`` those a legal hold kept.
    """
    return {
        "recording_id": result.recording_id,
        "artifact_id": result.artifact_id,
        "kind": result.kind.value,
        "size": result.size,
        "replicas": sorted(result.replicas),
        "tags": [VOICEPRINT_TAG],
        "deleted": sorted(replaced),
        "held": [{"recording": recording_id} for recording_id in sorted(held)],
    }


def _deletion_event(receipt: DeletionReceipt) -> dict[str, Any]:
    return {
        "recording_id": receipt.recording_id,
        "reason": receipt.reason,
        "artifacts": list(receipt.artifacts),
        "key_destroyed": receipt.key_destroyed,
        "tags": [VOICEPRINT_TAG],
    }


def enroll(
    vault: Vault,
    voiceprint: Voiceprint,
    *,
    keep_for: timedelta = DEFAULT_KEEP_FOR,
    now: datetime | None = None,
    audit: AuditLog | None = None,
) -> Enrollment:
    """Store *voiceprint* in *vault* (artifact kind ``"voiceprint"``), replacing older ones.

    The voiceprint gets its own catalog entry (tag ``"voiceprint"``, the agent as its only
    party and data subject) with its own key and deadline ``now + keep_for``, so the retention
    sweep, erasure requests for the agent and legal holds apply to it like to any artifact.
    Once the new one is stored, every older voiceprint of the agent is deleted (reason
    ``"re_enrollment"``) except those a legal hold keeps, which are reported in
    :attr:`Enrollment.held` and :attr:`Enrollment.notes`; nothing is raised after the new
    voiceprint is stored but an audit log failure.

    :param audit: when given, checked writable before anything is stored; then one
        ``artifact_stored`` event for the new voiceprint and one ``deletion`` event per older
        one deleted (ids only: the voiceprint's catalog id, never the agent id alone).
    :raises ModelError: the agent id is refused (also one the audit log would refuse), or
        *keep_for* is not positive.
    :raises AccessDenied: processing of the agent's stored voiceprint is restricted (GDPR
        Art. 18) or objected to (Art. 21): a new one would resume what was stopped. Lift the
        restriction first; after an objection, delete the voiceprint (:func:`delete_voiceprint`,
        a deliberate and logged act) once there is a new ground, e.g. the agent's consent.
        Nothing is stored.
    :raises AuditError: the audit log cannot be written (nothing is stored).
    """
    from voicepriv.audit import EventType, check_event_data
    from voicepriv.errors import LegalHoldError

    agent_id = _check_new_agent_id(voiceprint.agent_id)
    if keep_for <= timedelta(0):
        raise ModelError(f"voiceprint retention: expected a positive duration, got {keep_for}")
    now = now or utc_now()
    older = _live_voiceprints(vault, agent_id)
    _refuse_if_stopped(vault, agent_id, older)
    tags: frozenset[str] = frozenset([VOICEPRINT_TAG])
    record = Recording(
        id=f"voiceprint.{agent_id}.{now:%Y%m%dT%H%M%S}.{secrets.token_hex(3)}",
        started_at=now,
        duration=timedelta(seconds=max(voiceprint.seconds, 0.001)),
        direction=Direction.INBOUND,
        parties=(Party(role=Role.AGENT, id=agent_id, subjects=(agent_subject(agent_id),)),),
        tags=tags,  # type: ignore[arg-type]  # attrs plugin: converter=frozenset
    )
    if audit is not None:
        # Nothing is stored unless the events can be logged: ids the log takes, and a
        # writable log.
        check_event_data({"recording_id": record.id, "deleted": older})
        audit.check_writable()
    vault.add_recording(record, delete_after=now + keep_for)
    stored = vault.put_artifact(
        record.id,
        ARTIFACT_KIND,
        voiceprint_to_bytes(voiceprint),
        media={"format": FORMAT, "embedder": voiceprint.embedder},
    )
    # From here on the new voiceprint is stored: an older one that cannot be deleted now is
    # reported, never raised, and the others are still deleted.
    replaced: list[DeletionReceipt] = []
    held: list[str] = []
    notes: list[str] = []
    for recording_id in older:
        try:
            replaced.append(vault.delete(recording_id, "re_enrollment", now=now))
        except LegalHoldError as exc:
            held.append(recording_id)
            notes.append(f"older voiceprint kept: {exc}")
        except VaultError as exc:
            notes.append(
                f"older voiceprint {recording_id} not deleted ({type(exc).__name__}: {exc}); "
                "the next enroll, delete_voiceprint or retention sweep retries"
            )
    if audit is not None:
        audit.append(
            EventType.ARTIFACT_STORED,
            _stored_event(stored, (r.recording_id for r in replaced), held),
            at=now,
        )
        for receipt in replaced:
            audit.append(EventType.DELETION, _deletion_event(receipt), at=now)
    return Enrollment(stored=stored, replaced=tuple(replaced), held=tuple(held), notes=tuple(notes))


def _refuse_if_stopped(vault: Vault, agent_id: str, stored: Iterable[str]) -> None:
    """Raise :class:`AccessDenied` when a restriction or objection in force on one of the
    agent's *stored* voiceprints stops their processing: re-enrolling would resume it."""
    from voicepriv.errors import AccessDenied
    from voicepriv.vault.catalog import RestrictionKind

    for recording_id in stored:
        kinds = {r.kind for r in vault.catalog.restrictions(recording_id)}
        if RestrictionKind.RESTRICTION in kinds:
            raise AccessDenied(
                f"agent {agent_id!r}: processing of their voiceprint {recording_id} is "
                "restricted (GDPR Art. 18); lift the restriction before enrolling them again"
            )
        if RestrictionKind.OBJECTION in kinds:
            raise AccessDenied(
                f"agent {agent_id!r} objected to the processing of their voiceprint "
                f"{recording_id} (GDPR Art. 21); a new voiceprint needs a new ground (e.g. "
                "their consent): delete the objected one first (delete_voiceprint, "
                "voicepriv enroll --delete), then enroll"
            )


def _unusable(vault: Vault, recording_id: str, delete_after: datetime | None, now: datetime) -> str:
    """Why the voiceprint in *recording_id* may not be used at *now* (``""``: it may)."""
    from voicepriv.vault.catalog import RestrictionKind

    if delete_after is not None and delete_after <= now:
        return f"its deadline {delete_after.isoformat()} has passed (enroll the agent again)"
    restrictions = vault.catalog.restrictions(recording_id)
    if any(r.kind is RestrictionKind.RESTRICTION for r in restrictions):
        return "its processing is restricted (GDPR Art. 18) until the restriction is lifted"
    if any(r.kind is RestrictionKind.OBJECTION for r in restrictions):
        return "the agent objected to its processing (GDPR Art. 21)"
    return ""


def load_voiceprint(vault: Vault, agent_id: str, *, now: datetime | None = None) -> Voiceprint:
    """The agent's current voiceprint from *vault*: the newest one stored, if it may be used.

    An older voiceprint (kept by a legal hold after re-enrollment) is never handed out.

    :param now: the instant the voiceprint is to be used at (default: the real clock).
    :raises NotFoundError: the agent has no usable voiceprint: never enrolled, deleted, past its
        deadline (even before the retention sweep ran), or restricted (GDPR Art. 18) or
        objected to (Art. 21); the message says which.
    """
    from voicepriv.vault import ArtifactKind

    now = now or utc_now()
    for recording_id in reversed(_live_voiceprints(vault, agent_id)):
        artifacts = [
            a for a in vault.catalog.artifacts(recording_id) if a.kind is ArtifactKind.VOICEPRINT
        ]
        if not artifacts:
            continue  # an entry whose put failed: look at the one before
        why = _unusable(
            vault, recording_id, vault.catalog.recording(recording_id).delete_after, now
        )
        if why:
            raise NotFoundError(
                f"vault: the voiceprint of agent {agent_id!r} ({recording_id}) may not be "
                f"used: {why}"
            )
        return voiceprint_from_bytes(
            vault.read(artifacts[0].id), source=f"voiceprint of agent {agent_id!r}"
        )
    raise NotFoundError(f"vault: agent {agent_id!r} has no voiceprint (enroll the agent first)")


def delete_voiceprint(
    vault: Vault,
    agent_id: str,
    *,
    reason: str = "agent_left",
    now: datetime | None = None,
    audit: AuditLog | None = None,
) -> tuple[DeletionReceipt, ...]:
    """Crypto-shred and delete every live voiceprint of *agent_id* (e.g. when they leave).

    :param audit: when given, checked first (writable, and taking the ids and *reason*);
        one ``deletion`` event per voiceprint deleted (ids only).
    :raises ConfigError: the audit log would refuse a catalog id or *reason* (nothing deleted).
    :raises LegalHoldError: a legal hold covers a voiceprint (nothing more is deleted; those
        deleted before it are logged).
    """
    from voicepriv.audit import EventType, check_event_data

    stored = _live_voiceprints(vault, agent_id)
    if audit is not None:
        check_event_data({"deleted": stored, "reason": reason})
        audit.check_writable()
    receipts: list[DeletionReceipt] = []
    try:
        for recording_id in stored:
            receipts.append(vault.delete(recording_id, reason, now=now))
    finally:
        if audit is not None:
            for receipt in receipts:
                audit.append(EventType.DELETION, _deletion_event(receipt), at=now)
    return tuple(receipts)
