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

import numpy as np

from voicepriv.audio import Audio
from voicepriv.errors import AudioError, ModelError
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

    from voicepriv.vault import DeletionReceipt, PutResult, Vault

__all__ = [
    "ARTIFACT_KIND",
    "DEFAULT_KEEP_FOR",
    "FORMAT",
    "MIN_SPEECH_S",
    "VOICEPRINT_TAG",
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

    :raises AudioError: no clip, or less than *min_speech_s* of speech in all of them.
    """
    if not agent_id:
        raise ModelError("enrollment: agent_id must not be empty")
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

    :raises ModelError: a layout is not stereo or names no agent channel.
    :raises AudioError: a call is not two channels, or too little speech in total.
    """
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


def _check_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not _AGENT_ID.fullmatch(agent_id):
        raise ModelError(
            f"agent id: expected 1-81 letters, digits, '.', '_', ':' or '-', got {agent_id!r}"
        )
    return agent_id


def agent_subject(agent_id: str) -> SubjectRef:
    """The data-subject reference a voiceprint is indexed under (the employee)."""
    return SubjectRef(kind=SubjectKind.OTHER, value=f"voicepriv-agent:{_check_agent_id(agent_id)}")


def _live_voiceprints(vault: Vault, agent_id: str) -> list[str]:
    """Catalog ids of the agent's live voiceprint entries, oldest first."""
    from voicepriv.vault import RecordingState

    entries = []
    for recording_id in vault.find_subject(agent_subject(agent_id)):
        entry = vault.catalog.recording(recording_id)
        if entry.state is RecordingState.ACTIVE and VOICEPRINT_TAG in entry.tags:
            entries.append(entry)
    return [e.id for e in sorted(entries, key=lambda e: (e.created_at, e.id))]


def enroll(
    vault: Vault,
    voiceprint: Voiceprint,
    *,
    keep_for: timedelta = DEFAULT_KEEP_FOR,
    now: datetime | None = None,
) -> PutResult:
    """Store *voiceprint* in *vault* (artifact kind ``"voiceprint"``), replacing older ones.

    The voiceprint gets its own catalog entry (tag ``"voiceprint"``, the agent as its only
    party and data subject) with its own key and deadline ``now + keep_for``, so the retention
    sweep, erasure requests for the agent and legal holds apply to it like to any artifact.
    An earlier voiceprint of the same agent is deleted (reason ``"re_enrollment"``) once the
    new one is stored.
    """
    agent_id = _check_agent_id(voiceprint.agent_id)
    if keep_for <= timedelta(0):
        raise ModelError(f"voiceprint retention: expected a positive duration, got {keep_for}")
    now = now or utc_now()
    older = _live_voiceprints(vault, agent_id)
    tags: frozenset[str] = frozenset([VOICEPRINT_TAG])
    record = Recording(
        id=f"voiceprint.{agent_id}.{now:%Y%m%dT%H%M%S}.{secrets.token_hex(3)}",
        started_at=now,
        duration=timedelta(seconds=max(voiceprint.seconds, 0.001)),
        direction=Direction.INBOUND,
        parties=(Party(role=Role.AGENT, id=agent_id, subjects=(agent_subject(agent_id),)),),
        tags=tags,  # type: ignore[arg-type]  # attrs plugin: converter=frozenset
    )
    vault.add_recording(record, delete_after=now + keep_for)
    result = vault.put_artifact(
        record.id,
        ARTIFACT_KIND,
        voiceprint_to_bytes(voiceprint),
        media={"format": FORMAT, "embedder": voiceprint.embedder},
    )
    for recording_id in older:
        vault.delete(recording_id, "re_enrollment", now=now)
    return result


def load_voiceprint(vault: Vault, agent_id: str) -> Voiceprint:
    """The agent's current voiceprint from *vault*.

    :raises NotFoundError: the agent has no live voiceprint (never enrolled, deleted, expired).
    """
    from voicepriv.errors import NotFoundError
    from voicepriv.vault import ArtifactKind

    for recording_id in reversed(_live_voiceprints(vault, agent_id)):
        for artifact in vault.catalog.artifacts(recording_id):
            if artifact.kind is ArtifactKind.VOICEPRINT:
                return voiceprint_from_bytes(
                    vault.read(artifact.id), source=f"voiceprint of agent {agent_id!r}"
                )
    raise NotFoundError(f"vault: agent {agent_id!r} has no voiceprint (enroll the agent first)")


def delete_voiceprint(
    vault: Vault, agent_id: str, *, reason: str = "agent_left", now: datetime | None = None
) -> tuple[DeletionReceipt, ...]:
    """Crypto-shred and delete every live voiceprint of *agent_id* (e.g. when they leave).

    :raises LegalHoldError: a legal hold covers a voiceprint (nothing more is deleted).
    """
    return tuple(
        vault.delete(recording_id, reason, now=now)
        for recording_id in _live_voiceprints(vault, agent_id)
    )
