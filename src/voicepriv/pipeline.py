"""Ingest one call: decide -> (destroy | isolate) -> transcribe/redact -> store -> index -> audit.

:func:`ingest` is the one entry point. It

1. turns the call's IVR keypresses into consent events with the policy's IVR configuration
   (:func:`voicepriv.policy.consents_from_ivr`) and merges them into the recording;
2. asks :func:`voicepriv.policy.decide` what may be kept;
3. when nothing may be kept, never even reads the audio (the customer's audio is written
   nowhere, not even to a temporary file); when only the agent may be kept, runs
   :func:`voicepriv.isolation.isolate` in memory; when both may be kept, keeps both tracks; in
   every case samples outside the time ranges the decision allows are silenced;
4. transcribes and redacts the kept audio when a transcriber (and a PII recogniser) is given;
5. stores every artifact encrypted in the vault (which indexes the recording, its subjects'
   keyed hashes, consents and deadlines);
6. appends what happened to the audit log (ids, codes and hashes only).

If any step fails, whatever was already stored is erased again (the recording key is
destroyed and every replica deleted) and :class:`~voicepriv.errors.PipelineError` names the
step. The input file is never modified unless ``remove_source=True`` asks for it to be
overwritten and removed *after* a successful ingest.

:class:`IngestTask` wraps :func:`ingest` for :func:`voicepriv.batch.run_batch`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from voicepriv import audio as audio_io
from voicepriv.audio import Audio
from voicepriv.audit import AuditLog, EventType
from voicepriv.batch import CallOutcome, Outcome
from voicepriv.errors import ConfigError, NotFoundError, PipelineError, VoiceprivError
from voicepriv.interfaces import (
    IntakeRecord,
    IsolationResult,
    IvrInput,
    PiiSpan,
    Recogniser,
    Separator,
    Transcriber,
    Voiceprint,
    Word,
)
from voicepriv.isolation import isolate
from voicepriv.model import LayoutKind, Recording, Role, Segment
from voicepriv.policy import Decision, Policy, consents_from_ivr, decide, decision_to_dict
from voicepriv.vault import ArtifactKind, PutResult, RecordingState, ReplicaState, Vault

if TYPE_CHECKING:
    import pluggy

    from voicepriv.policy import JurisdictionTable

__all__ = [
    "AUDIT_LOG_NAME",
    "STEPS",
    "IngestResult",
    "IngestTask",
    "audit_log_for",
    "ingest",
    "installed_jurisdictions",
]

#: The pipeline's steps, in order (:attr:`PipelineError.step` is one of them).
STEPS: Final = ("intake", "decide", "load", "isolate", "transcribe", "store", "audit", "cleanup")

#: File name of the audit log inside a vault folder (used by the CLI, batch and demo).
AUDIT_LOG_NAME: Final = "audit.jsonl"

_ROLLBACK_REASON: Final = "ingest_rollback"

#: Deletion reason for what an ingest killed half-way (no rollback ran) left in the vault.
_INTERRUPTED_REASON: Final = "interrupted_ingest"

#: Deletion reason for a call an earlier run stored with more than today's decision allows.
_REDECIDED_REASON: Final = "decision_changed"

#: Deletions that undo an ingest that never finished: once done, the call is forgotten and may
#: be ingested again (``put_rollback`` is :meth:`Vault.put`'s own rollback).
_UNDONE_INGEST: Final = frozenset(
    {_ROLLBACK_REASON, _INTERRUPTED_REASON, _REDECIDED_REASON, "put_rollback"}
)


@attrs.frozen(kw_only=True, eq=False)
class IngestResult:
    """What :func:`ingest` did with one call.

    :param recording: the recording as decided on (IVR consent events merged in).
    :param decision: the policy's decision, with its reasons.
    :param outcome: kept (both voices), agent-only, or destroyed (nothing kept).
    :param artifacts: what was stored (empty when destroyed).
    :param isolation: the isolation report for an agent-only call, else ``None``.
    :param destroyed: what was not kept, one short phrase each (``"customer track"`` ...).
    :param redacted: PII spans silenced in the kept audio (when a recogniser ran).
    :param steps_s: wall-clock seconds per step.
    :param audit_seqs: positions of the events appended to the audit log.
    """

    recording: Recording
    decision: Decision
    outcome: Outcome
    artifacts: tuple[PutResult, ...] = ()
    isolation: IsolationResult | None = None
    destroyed: tuple[str, ...] = ()
    redacted: tuple[PiiSpan, ...] = ()
    steps_s: Mapping[str, float] = attrs.field(factory=dict)
    audit_seqs: tuple[int, ...] = ()

    @property
    def audio_s(self) -> float:
        """Length of the call in seconds."""
        return self.recording.duration.total_seconds()

    def summary(self) -> CallOutcome:
        """This result as a batch journal entry."""
        reason = ""
        if self.outcome is Outcome.DESTROYED:
            reason = _first_reason(self.decision)
        return CallOutcome(
            call_id=self.recording.id,
            outcome=self.outcome,
            reason=reason,
            audio_s=self.audio_s,
            elapsed_s=sum(self.steps_s.values()),
            steps_s=dict(self.steps_s),
        )


_NOT_KEPT: Final = re.compile(r"Purpose '([a-z0-9_]+)'.*not kept")


def _first_reason(decision: Decision) -> str:
    """One line saying why nothing was kept: the purposes that failed, else the last reason."""
    failed = [m.group(1) for r in decision.reasons if (m := _NOT_KEPT.search(r.text))]
    if failed:
        return f"no purpose may be kept ({', '.join(failed)}: no valid basis or consent)"
    return str(decision.reasons[-1]) if decision.reasons else "nothing may be kept"


class _Clock:
    """Times each step and names the one that fails."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except PipelineError:
            raise
        except Exception as exc:
            raise PipelineError(f"ingest step {name!r} failed: {exc}", step=name) from exc
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started


def _mask(segments: Sequence[Segment], frames: int, rate: int) -> npt.NDArray[np.bool_]:
    """Frames inside *segments*."""
    keep = np.zeros(frames, dtype=bool)
    for segment in segments:
        start = max(0, int(np.floor(segment.start * rate)))
        end = min(frames, int(np.ceil(segment.end * rate)))
        keep[start:end] = True
    return keep


def _within(audio: Audio, segments: Sequence[Segment]) -> Audio:
    """*audio* with every sample outside *segments* set to zero."""
    keep = _mask(segments, audio.frames, audio.sample_rate)
    if keep.all():
        return audio
    return Audio(samples=audio.samples * keep[:, np.newaxis], sample_rate=audio.sample_rate)


def _audio_sha256(audio: Audio) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio.samples).tobytes()).hexdigest()


def _redact(audio: Audio, words: Sequence[Word], spans: Sequence[PiiSpan]) -> tuple[Audio, str]:
    """Silence *spans* in *audio*; return it and the transcript JSON with the words replaced."""
    silence = _mask(
        [Segment(start=s.start, end=s.end) for s in spans], audio.frames, audio.sample_rate
    )
    cleaned = Audio(samples=audio.samples * ~silence[:, np.newaxis], sample_rate=audio.sample_rate)
    replaced: dict[int, str] = {}
    for span in spans:
        for index in range(span.first, span.last + 1):
            replaced[index] = f"[{span.kind}]"
    transcript = {
        "words": [
            {"text": replaced.get(i, w.text), "start": w.start, "end": w.end}
            for i, w in enumerate(words)
        ],
        "redacted": [{"kind": s.kind, "start": s.start, "end": s.end} for s in spans],
    }
    return cleaned, json.dumps(transcript, sort_keys=True)


def _removable(source: audio_io.Source) -> Path:
    """The local file ``remove_source`` would remove; anything else is refused up front."""
    if isinstance(source, str) and source.startswith("file://"):
        return Path(_local_path(source))
    if (isinstance(source, str) and "://" in source) or not isinstance(source, str | os.PathLike):
        raise PipelineError(
            f"remove_source: only a local file can be securely removed, got {source!r}",
            step="intake",
        )
    return Path(source)


def _remove_securely(path: Path) -> None:
    """Overwrite *path* with zeros, flush it to disk, then unlink it."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        block = b"\0" * (1 << 20)
        written = 0
        while written < size:
            n = min(len(block), size - written)
            handle.write(block[:n])
            written += n
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def audit_log_for(vault: Vault) -> AuditLog:
    """The audit log kept in the vault's folder, signed by the vault's key provider."""
    return AuditLog(vault.config.root / AUDIT_LOG_NAME, signer=vault.provider)


def ingest(
    audio_source: audio_io.Source,
    recording: Recording,
    policy: Policy,
    vault: Vault,
    *,
    ivr: Sequence[IvrInput] = (),
    audit: AuditLog | None = None,
    voiceprint: Voiceprint | None = None,
    separator: Separator | str | None = None,
    separator_options: Mapping[str, Any] | None = None,
    transcriber: Transcriber | None = None,
    recogniser: Recogniser | None = None,
    jurisdictions: JurisdictionTable | None = None,
    plugins: pluggy.PluginManager | None = None,
    remove_source: bool = False,
) -> IngestResult:
    """Ingest one call; see the module documentation for the steps.

    :param audio_source: the call's audio (a path or a binary file object).
    :param recording: its metadata (from a metadata adapter).
    :param policy: the organisation's policy.
    :param vault: where kept artifacts go.
    :param ivr: IVR keypresses, mapped to consent events by the policy.
    :param audit: the audit log (default: :func:`audit_log_for` the vault).
    :param voiceprint: the agent's voiceprint (needed for mono agent-only calls; for stereo
        ones it settles an unknown layout or checks the given one, catching swapped channels);
        by default the one ``voicepriv enroll`` stored in the vault for the call's agent party
        id.
    :param separator: separator (or backend name) for agent-only isolation.
    :param separator_options: options for a separator named by *separator*.
    :param transcriber: when given, the kept audio is transcribed and the transcript stored.
    :param recogniser: with a transcriber, PII it finds is silenced and replaced in the text.
    :param jurisdictions: the consent-law table (default: built-in; pass
        :func:`installed_jurisdictions` to include plugin packs, as :class:`IngestTask` does).
    :param plugins: the plugin manager for isolation backends.
    :param remove_source: overwrite and remove the input file after a successful ingest.
    :raises PipelineError: a step failed; :attr:`~PipelineError.step` names it and nothing of
        this call remains stored.
    """
    clock = _Clock()
    log = audit if audit is not None else audit_log_for(vault)
    removable: Path | None = None
    if remove_source:
        removable = _removable(audio_source)
    recording, decision = _decided(clock, recording, policy, ivr, jurisdictions)
    decision_json = json.dumps(decision_to_dict(decision), sort_keys=True, default=str)

    destroyed: list[str] = []
    kept: Audio | None = None
    isolation_report: IsolationResult | None = None
    outcome = Outcome.DESTROYED
    if decision.agent.keep:
        with clock.step("load"):
            layout = recording.layout
            channels = layout.channels if layout is not None else 2
            call = _load(audio_source, channels)
        stereo = call.channels == 2
        if decision.customer.keep:
            outcome = Outcome.KEPT
            with clock.step("isolate"):
                kept = _keep_both(call, recording, decision)
        else:
            outcome = Outcome.AGENT_ONLY
            destroyed.append("customer track" if stereo else "customer speech")
            with clock.step("isolate"):
                # A mono call needs the voiceprint; a stereo call of unknown layout is settled
                # by it or refused (resolve_agent_channel never guesses); a stereo call with a
                # layout is checked against it, so swapped channels are caught, not stored.
                if voiceprint is None:
                    voiceprint = _enrolled_voiceprint(vault, recording)
                isolation_report = isolate(
                    call,
                    recording.layout,
                    separator=separator,
                    voiceprint=voiceprint,
                    options=separator_options,
                    plugins=plugins,
                )
                kept = _within(isolation_report.audio, decision.agent.segments)
        del call
    else:
        destroyed.append("whole call")
        if decision.customer.keep:
            destroyed.append("customer track (kept alone only with the agent's)")

    words: tuple[Word, ...] = ()
    transcript: str | None = None
    spans: tuple[PiiSpan, ...] = ()
    if kept is not None and transcriber is not None:
        with clock.step("transcribe"):
            mono = Audio(samples=kept.mono(), sample_rate=kept.sample_rate)
            words = tuple(transcriber.transcribe(mono))
            if recogniser is not None:
                spans = tuple(recogniser.recognise(words))
            kept, transcript = _redact(kept, words, spans)

    stored: list[PutResult] = []
    cataloged = False
    seqs: list[int] = []
    try:
        if kept is not None:
            with clock.step("store"):
                deadlines: dict[str, datetime] = {}
                for held in (p for t in decision.tracks for p in t.purposes):
                    if held.purpose not in deadlines or held.deadline > deadlines[held.purpose]:
                        deadlines[held.purpose] = held.deadline
                vault.add_recording(
                    recording,
                    delete_after=decision.deadline,
                    deadlines=deadlines,
                    decision=decision_json,
                )
                cataloged = True
                kind = (
                    ArtifactKind.FULL_AUDIO if outcome is Outcome.KEPT else ArtifactKind.AGENT_AUDIO
                )
                stored.append(vault.put_audio(recording.id, kind, kept))
                if transcript is not None:
                    stored.append(
                        vault.put_artifact(
                            recording.id,
                            ArtifactKind.TRANSCRIPT,
                            transcript.encode("utf-8"),
                            media={"format": "json", "words": len(words)},
                        )
                    )
                failed = [r for r in stored if not r.complete]
                if failed:
                    raise PipelineError(
                        f"recording {recording.id}: replica(s) failed for "
                        f"{', '.join(r.artifact_id for r in failed)}",
                        step="store",
                    )
        with clock.step("audit"):
            seqs.extend(
                _audit(log, recording, decision, decision_json, outcome, stored, kept, spans)
            )
    except BaseException as exc:
        _rollback(vault, log, recording.id, cataloged, exc)
        raise
    if removable is not None:
        with clock.step("cleanup"):
            _remove_securely(removable)
    return IngestResult(
        recording=recording,
        decision=decision,
        outcome=outcome,
        artifacts=tuple(stored),
        isolation=isolation_report,
        destroyed=tuple(destroyed),
        redacted=spans,
        steps_s=dict(clock.steps),
        audit_seqs=tuple(seqs),
    )


def _enrolled_voiceprint(vault: Vault, recording: Recording) -> Voiceprint | None:
    """The voiceprint ``voicepriv enroll`` stored in *vault* for the call's agent, if any."""
    from voicepriv.enrollment import load_voiceprint
    from voicepriv.errors import ModelError

    for party in recording.parties_with(Role.AGENT):
        if party.id is None:
            continue
        try:
            return load_voiceprint(vault, party.id)
        except (NotFoundError, ModelError):
            continue
    return None


def _load(source: audio_io.Source, channels: int) -> Audio:
    """Read the call: a local path or file object, or an fsspec URL (``s3://...``)."""
    if isinstance(source, str) and "://" in source and not source.startswith("file://"):
        import fsspec

        with fsspec.open(source, "rb") as handle:
            return audio_io.load(handle, max_channels=channels)
    if isinstance(source, str) and source.startswith("file://"):
        source = _local_path(source)
    return audio_io.load(source, max_channels=channels)


def _local_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path)


def _keep_both(call: Audio, recording: Recording, decision: Decision) -> Audio:
    """Both voices, each only within the time ranges its track may be kept."""
    layout = recording.layout
    if call.channels == 2 and layout is not None and layout.kind is LayoutKind.STEREO:
        columns = []
        for index, role in enumerate(layout.roles):
            track = decision.agent if role is Role.AGENT else decision.customer
            segments = track.segments if role in (Role.AGENT, Role.CUSTOMER) else ()
            columns.append(_within(call.channel(index), segments).samples[:, 0])
        return Audio(samples=np.stack(columns, axis=1), sample_rate=call.sample_rate)
    # One mixed track: a span may be kept only where both voices may be kept.
    agent = _mask(decision.agent.segments, call.frames, call.sample_rate)
    customer = _mask(decision.customer.segments, call.frames, call.sample_rate)
    both = agent & customer
    return Audio(samples=call.samples * both[:, np.newaxis], sample_rate=call.sample_rate)


def _audit(
    log: AuditLog,
    recording: Recording,
    decision: Decision,
    decision_json: str,
    outcome: Outcome,
    stored: Sequence[PutResult],
    kept: Audio | None,
    spans: Sequence[PiiSpan],
) -> list[int]:
    seqs: list[int] = []
    if recording.consents:
        event = log.append(
            EventType.CONSENT_CAPTURED,
            {
                "recording_id": recording.id,
                "events": [
                    {
                        "role": c.role,
                        "purpose": c.purpose,
                        "state": c.state,
                        "method": c.method,
                        "offset_s": None if c.offset is None else c.offset.total_seconds(),
                    }
                    for c in recording.consents
                ],
            },
        )
        seqs.append(event.seq)
    event = log.append(
        EventType.DECISION_MADE,
        {
            "recording_id": recording.id,
            "outcome": outcome,
            "agent_kept": decision.agent.keep,
            "customer_kept": decision.customer.keep,
            "purposes": sorted(decision.purposes()),
            "obligations": [o.value for o in decision.obligations],
            "jurisdictions": list(decision.jurisdictions),
            "reasons": len(decision.reasons),
            "decision_sha256": hashlib.sha256(decision_json.encode("utf-8")).hexdigest(),
            "deadline": decision.deadline,
        },
    )
    seqs.append(event.seq)
    for result in stored:
        data: dict[str, Any] = {
            "recording_id": recording.id,
            "artifact_id": result.artifact_id,
            "kind": result.kind,
            "size": result.size,
            "replicas": sorted(result.replicas),
        }
        if result.kind is not ArtifactKind.TRANSCRIPT and kept is not None:
            data["audio_sha256"] = _audio_sha256(kept)
            data["pii_spans_silenced"] = len(spans)
        seqs.append(log.append(EventType.ARTIFACT_STORED, data).seq)
    return seqs


def _decided(
    clock: _Clock,
    recording: Recording,
    policy: Policy,
    ivr: Sequence[IvrInput],
    jurisdictions: JurisdictionTable | None,
) -> tuple[Recording, Decision]:
    """The recording with its IVR keypresses as consent events (step ``intake``), and the
    decision on it (step ``decide``)."""
    with clock.step("intake"):
        extra = consents_from_ivr(policy, ivr) if ivr else ()
        if extra:
            recording = attrs.evolve(recording, consents=recording.consents + tuple(extra))
    with clock.step("decide"):
        decision = decide(recording, policy, jurisdictions=jurisdictions)
    return recording, decision


def _undo(vault: Vault, log: AuditLog, recording_id: str, reason: str) -> None:
    """Erase an ingest that did not finish, audit the deletion, then forget the recording.

    :meth:`Vault.delete` resumes a deletion already begun (keeping its first reason). The call
    was never ingested: its tombstone is dropped so it can be ingested afresh (the audit log
    keeps the trace of the deletion).
    """
    receipt = vault.delete(recording_id, reason)
    log.append(
        EventType.DELETION,
        {
            "recording_id": recording_id,
            "reason": receipt.reason,
            "artifacts": list(receipt.artifacts),
            "key_destroyed": receipt.key_destroyed,
        },
    )
    vault.catalog.forget(recording_id, reason=receipt.reason)


def _rollback(
    vault: Vault, log: AuditLog, recording_id: str, cataloged: bool, cause: BaseException
) -> None:
    """Erase what this ingest stored; the original error stays the one raised."""
    if not cataloged:
        return
    try:
        _undo(vault, log, recording_id, _ROLLBACK_REASON)
    except Exception as exc:  # the original error must stay the one raised
        cause.add_note(f"rollback of {recording_id} also failed: {type(exc).__name__}: {exc}")


def _finished(vault: Vault, recording_id: str) -> tuple[ArtifactKind, tuple[str, ...]] | None:
    """The audio kind and artifact ids an ingest stored for *recording_id*, when it stored
    them completely: one audio artifact (and at most a transcript), every live artifact
    written to the end (size >= 0) on every replica (all ``ok``). ``None`` otherwise."""
    live = [a for a in vault.catalog.artifacts(recording_id) if a.deleted_at is None]
    audio = [a.kind for a in live if a.kind in (ArtifactKind.FULL_AUDIO, ArtifactKind.AGENT_AUDIO)]
    extra = [a for a in live if a.kind is not ArtifactKind.TRANSCRIPT and a.kind not in audio]
    if len(audio) != 1 or extra or sum(a.kind is ArtifactKind.TRANSCRIPT for a in live) > 1:
        return None
    for artifact in live:
        replicas = vault.catalog.replicas(artifact.id)
        if artifact.size < 0 or not replicas:
            return None
        if any(r.state is not ReplicaState.OK for r in replicas):
            return None
    return audio[0], tuple(a.id for a in live)


def _audited(log: AuditLog, recording_id: str, artifact_ids: Sequence[str]) -> bool:
    """Whether *log* holds the decision and every stored artifact of *recording_id*."""
    decided = False
    missing = set(artifact_ids)
    for event in log.events():
        if event.data.get("recording_id") != recording_id:
            continue
        if event.type is EventType.DECISION_MADE:
            decided = True
        elif event.type is EventType.ARTIFACT_STORED:
            missing.discard(str(event.data.get("artifact_id")))
    return decided and not missing


def _settle_earlier(
    vault: Vault,
    log: AuditLog,
    recording: Recording,
    policy: Policy,
    *,
    ivr: Sequence[IvrInput],
    jurisdictions: JurisdictionTable,
) -> CallOutcome | None:
    """Settle what an earlier run, killed before it journaled this call, left in the vault.

    :return: the call's outcome when nothing is left to do: an earlier ingest stored it
        completely (every artifact written on every replica, the decision and each artifact
        audited) and keeps no more than today's decision allows (kept / agent-only); or the
        recording was deleted for another reason (an erasure, retention), so it is not ingested
        again (destroyed). ``None`` when the call is to be ingested: it is not in the catalog,
        or what an interrupted ingest left (or a stored call keeping more than the decision
        now allows) was erased first, the deletion audited and the recording forgotten.
    :raises PipelineError: the decision cannot be made (step ``intake`` / ``decide``), or
        the leftover cannot be erased, e.g. under a legal hold (step ``store``).
    """
    try:
        entry = vault.catalog.recording(recording.id)
    except NotFoundError:
        return None
    clock = _Clock()
    seconds = recording.duration.total_seconds()
    if entry.state is not RecordingState.ACTIVE:
        deletion = vault.catalog.deletion(recording.id)
        reason = deletion.reason if deletion is not None else entry.state.value
        if reason not in _UNDONE_INGEST:
            return CallOutcome(
                call_id=recording.id,
                outcome=Outcome.DESTROYED,
                reason=f"deleted from the vault earlier (reason {reason!r}); not ingested again",
                audio_s=seconds,
            )
        with clock.step("store"):
            _undo(vault, log, recording.id, reason)
        return None
    recording, decision = _decided(clock, recording, policy, ivr, jurisdictions)
    stored = _finished(vault, recording.id)
    if stored is not None and _audited(log, recording.id, stored[1]):
        outcome = Outcome.KEPT if stored[0] is ArtifactKind.FULL_AUDIO else Outcome.AGENT_ONLY
        allowed = decision.agent.keep and (outcome is Outcome.AGENT_ONLY or decision.customer.keep)
        if allowed:
            return CallOutcome(
                call_id=recording.id,
                outcome=outcome,
                reason="stored by an earlier run that ended before journaling it",
                audio_s=seconds,
            )
        reason = _REDECIDED_REASON
    else:
        reason = _INTERRUPTED_REASON
    with clock.step("store"):
        _undo(vault, log, recording.id, reason)
    return None


# --------------------------------------------------------------------------- batch task


def _identity(path: str) -> tuple[int, int, int]:
    """(device, inode, mtime) of *path*: a file replaced or edited is opened afresh."""
    stat = Path(path).stat()
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns)


def installed_jurisdictions(manager: pluggy.PluginManager | None = None) -> JurisdictionTable:
    """The consent-law table with every installed jurisdiction pack applied over the built-in
    one (later packs win): :func:`voicepriv.backends.jurisdictions.plugin_jurisdictions`, the
    table ``voicepriv policy explain`` uses too."""
    from voicepriv.backends.jurisdictions import plugin_jurisdictions

    return plugin_jurisdictions(manager)


@functools.lru_cache(maxsize=4)
def _open_context(
    policy_path: str, vault_path: str, _versions: tuple[object, ...]
) -> tuple[Policy, Vault, AuditLog, JurisdictionTable]:
    from voicepriv.policy import load_policy

    vault = Vault.open(vault_path)
    return load_policy(policy_path), vault, audit_log_for(vault), installed_jurisdictions()


def _context(
    policy_path: str, vault_path: str
) -> tuple[Policy, Vault, AuditLog, JurisdictionTable]:
    """Policy, vault and audit log, opened once per worker process (again when changed)."""
    versions = (_identity(policy_path), _identity(str(Path(vault_path) / "vault.toml")))
    return _open_context(policy_path, vault_path, versions)


def _option_dict(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A private copy of backend *options* (``None``: none)."""
    return dict(options or {})


@attrs.frozen(kw_only=True)
class IngestTask:
    """:func:`ingest` as a picklable batch task (see :func:`voicepriv.batch.run_batch`).

    Each worker process opens the policy and the vault once and reuses them.

    :param policy: path of the policy TOML.
    :param vault: path of the vault folder.
    :param separator: separator backend name for agent-only calls (default by layout).
    :param separator_options: options for *separator*, passed through to :func:`ingest`
        unchanged (and checked by the separator when a call is isolated: resolve it once with
        :func:`voicepriv.plugins.backend` to refuse bad options before a batch starts, as
        ``voicepriv ingest`` does). Compared, but not hashed.
    :param remove_source: overwrite and remove each input file after it is ingested.
    :param voiceprints: enrolled agents' voiceprints; a call uses the one whose
        ``agent_id`` is its agent party's id (mono agent-only calls need one).
    :raises ConfigError: *separator_options* without a *separator*: the default separator
        depends on each call's layout (``channels`` or ``speaker``), and they take different
        options.
    """

    policy: str
    vault: str
    separator: str | None = None
    separator_options: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_option_dict, hash=False
    )
    remove_source: bool = False
    voiceprints: tuple[Voiceprint, ...] = attrs.field(default=(), converter=tuple, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.separator_options and self.separator is None:
            names = ", ".join(map(repr, sorted(self.separator_options)))
            raise ConfigError(
                f"IngestTask: separator options {names} need a separator name (the default "
                "separator depends on each call's layout, and they take different options)"
            )

    def voiceprint_for(self, recording: Recording) -> Voiceprint | None:
        """The voiceprint of the call's agent, if enrolled."""
        agents = {p.id for p in recording.parties_with(Role.AGENT) if p.id}
        for voiceprint in self.voiceprints:
            if voiceprint.agent_id in agents:
                return voiceprint
        return None

    def __call__(self, record: IntakeRecord) -> CallOutcome:
        """Ingest one call; a failure becomes a failed outcome naming the step."""
        started = time.perf_counter()
        recording = attrs.evolve(
            record.recording, consents=record.recording.consents + record.extra_consents
        )
        try:
            policy, vault, log, table = _context(self.policy, self.vault)
            earlier = _settle_earlier(
                vault, log, recording, policy, ivr=record.ivr, jurisdictions=table
            )
            if earlier is not None:
                if self.remove_source:  # the earlier run may have died before removing it
                    with _Clock().step("cleanup"):
                        removable = _removable(record.audio)
                        if removable.exists():
                            _remove_securely(removable)
                return attrs.evolve(earlier, elapsed_s=time.perf_counter() - started)
            result = ingest(
                record.audio,
                recording,
                policy,
                vault,
                ivr=record.ivr,
                audit=log,
                voiceprint=self.voiceprint_for(record.recording),
                jurisdictions=table,
                separator=self.separator,
                separator_options=self.separator_options or None,
                remove_source=self.remove_source,
            )
        except VoiceprivError as exc:
            return CallOutcome(
                call_id=record.recording.id,
                outcome=Outcome.FAILED,
                reason=str(exc).splitlines()[0],
                step=getattr(exc, "step", None),
                audio_s=record.recording.duration.total_seconds(),
                elapsed_s=time.perf_counter() - started,
            )
        return result.summary()
