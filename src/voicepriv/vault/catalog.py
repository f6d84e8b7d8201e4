"""The catalog: what the vault holds, where, until when, and for whom (as keyed hashes).

SQLite by default (WAL mode, versioned migrations); the SQL is standard and goes through
:mod:`voicepriv.vault._db`, which handles the driver's parameter style in one place, so a
PostgreSQL catalog can share the schema and every query.

Tables (see ``docs/vault.md``): ``recordings``, ``recording_tags``, ``artifacts``, ``replicas``,
``subjects`` (HMAC of :attr:`~voicepriv.model.SubjectRef.canonical`, never the clear value),
``consents``, ``deadlines`` (one per purpose; a purpose that expired or was dropped keeps its
row with ``ended_at`` and ``end_reason``), ``legal_holds`` + ``hold_scope``, ``restrictions``
(GDPR Art. 18 restrictions and Art. 21 objections per recording and subject hash) and
``deletions`` (the deletion journal that lets an interrupted deletion resume).

The governing deadline of a recording (``recordings.delete_after``) is always the latest
deadline of the purposes still retaining it; :meth:`Catalog.drop_purposes` and
:meth:`Catalog.expire_purposes` keep it so. Recording metadata that may hold personal
data (party ids, consent evidence, the decision) is kept only *sealed* under the recording key,
so crypto-shredding also erases it.

Times are stored as fixed-width UTC text (``2026-11-23T20:07:00.000000Z``), which sorts and
compares like the instants themselves in any SQL database.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from voicepriv.errors import CatalogError, NotFoundError
from voicepriv.model import ConsentEvent, LegalHold
from voicepriv.vault._db import Database, Migration, connect, migrate

__all__ = [
    "ArtifactEntry",
    "ArtifactKind",
    "Catalog",
    "DeletionEntry",
    "DeletionStep",
    "HoldEntry",
    "NewRecording",
    "PurposeChange",
    "PurposeDeadline",
    "PurposeEnd",
    "RecordingEntry",
    "RecordingState",
    "ReplicaEntry",
    "ReplicaState",
    "RestrictionEntry",
    "RestrictionGround",
    "RestrictionKind",
    "format_time",
    "parse_time",
]


class ArtifactKind(enum.Enum):
    """What an artifact is."""

    AGENT_AUDIO = "agent_audio"
    FULL_AUDIO = "full_audio"
    TRANSCRIPT = "transcript"
    VOICEPRINT = "voiceprint"
    EXPORT = "export"


class RecordingState(enum.Enum):
    """Life of a recording in the catalog."""

    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


class ReplicaState(enum.Enum):
    """State of one artifact at one location."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"
    CORRUPT = "corrupt"
    DELETED = "deleted"


class DeletionStep(enum.Enum):
    """Steps of a deletion, in order; the journal records the last one completed."""

    STARTED = "started"
    KEY_DESTROYED = "key_destroyed"
    REPLICAS_DELETED = "replicas_deleted"
    VERIFIED = "verified"
    FINISHED = "finished"


_STEP_ORDER: Final = {step: index for index, step in enumerate(DeletionStep)}


class PurposeEnd(enum.Enum):
    """Why a purpose stopped retaining a recording before the recording itself was deleted."""

    #: its own deadline passed while another purpose still retains the recording.
    EXPIRED = "expired"
    #: the data subject objected (GDPR Art. 21).
    OBJECTION = "objection"
    #: the controller withdrew the purpose (or consent for it was withdrawn).
    WITHDRAWN = "withdrawn"


class RestrictionKind(enum.Enum):
    """What a data subject asked for about a recording."""

    RESTRICTION = "restriction"  # GDPR Art. 18
    OBJECTION = "objection"  # GDPR Art. 21 (``detail`` holds the purpose objected to)


class RestrictionGround(enum.Enum):
    """Why processing is restricted: the four grounds of GDPR Art. 18(1)."""

    #: (a) the data subject contests the accuracy of the data.
    ACCURACY = "accuracy"
    #: (b) the processing is unlawful and the subject opposes erasure.
    UNLAWFUL = "unlawful"
    #: (c) the controller no longer needs the data, but the subject needs it for legal claims.
    LEGAL_CLAIMS = "legal_claims"
    #: (d) an objection is pending verification of the controller's legitimate grounds.
    OBJECTION_PENDING = "objection_pending"

    @property
    def article(self) -> str:
        """The GDPR paragraph of this ground, e.g. ``"GDPR Art. 18(1)(c)"``."""
        letter = {"accuracy": "a", "unlawful": "b", "legal_claims": "c"}.get(self.value, "d")
        return f"GDPR Art. 18(1)({letter})"


_MIGRATIONS: Final[tuple[Migration, ...]] = (
    (
        1,
        (
            "CREATE TABLE recordings ("
            " id TEXT PRIMARY KEY, key_id TEXT NOT NULL, state TEXT NOT NULL,"
            " started_at TEXT NOT NULL, duration_s REAL NOT NULL, direction TEXT NOT NULL,"
            " delete_after TEXT, created_at TEXT NOT NULL, sealed_metadata BLOB,"
            " deleted_at TEXT)",
            "CREATE INDEX recordings_due ON recordings (state, delete_after)",
            "CREATE TABLE recording_tags ("
            " recording_id TEXT NOT NULL REFERENCES recordings (id), tag TEXT NOT NULL,"
            " PRIMARY KEY (recording_id, tag))",
            "CREATE INDEX recording_tags_tag ON recording_tags (tag)",
            "CREATE TABLE subjects ("
            " subject_hash TEXT NOT NULL, recording_id TEXT NOT NULL REFERENCES recordings (id),"
            " PRIMARY KEY (subject_hash, recording_id))",
            "CREATE INDEX subjects_recording ON subjects (recording_id)",
            "CREATE TABLE consents ("
            " recording_id TEXT NOT NULL REFERENCES recordings (id), seq INTEGER NOT NULL,"
            " role TEXT NOT NULL, purpose TEXT NOT NULL, state TEXT NOT NULL,"
            " method TEXT NOT NULL, offset_s REAL, at TEXT, PRIMARY KEY (recording_id, seq))",
            "CREATE TABLE deadlines ("
            " recording_id TEXT NOT NULL REFERENCES recordings (id), purpose TEXT NOT NULL,"
            " due_at TEXT NOT NULL, PRIMARY KEY (recording_id, purpose))",
            "CREATE INDEX deadlines_due ON deadlines (due_at)",
            "CREATE TABLE artifacts ("
            " id TEXT PRIMARY KEY, recording_id TEXT NOT NULL REFERENCES recordings (id),"
            " kind TEXT NOT NULL, size INTEGER NOT NULL, stored_size INTEGER NOT NULL,"
            " chunk_size INTEGER NOT NULL, media TEXT, created_at TEXT NOT NULL,"
            " deleted_at TEXT)",
            "CREATE INDEX artifacts_recording ON artifacts (recording_id)",
            "CREATE TABLE replicas ("
            " artifact_id TEXT NOT NULL REFERENCES artifacts (id), location TEXT NOT NULL,"
            " object_key TEXT NOT NULL, state TEXT NOT NULL, error TEXT,"
            " attempts INTEGER NOT NULL, updated_at TEXT NOT NULL,"
            " PRIMARY KEY (artifact_id, location))",
            "CREATE INDEX replicas_state ON replicas (state)",
            "CREATE TABLE legal_holds ("
            " id TEXT PRIMARY KEY, reason TEXT NOT NULL, placed_at TEXT NOT NULL,"
            " lifted_at TEXT)",
            "CREATE TABLE hold_scope ("
            " hold_id TEXT NOT NULL REFERENCES legal_holds (id), kind TEXT NOT NULL,"
            " value TEXT NOT NULL, PRIMARY KEY (hold_id, kind, value))",
            "CREATE INDEX hold_scope_value ON hold_scope (kind, value)",
            "CREATE TABLE deletions ("
            " recording_id TEXT PRIMARY KEY, reason TEXT NOT NULL, step TEXT NOT NULL,"
            " started_at TEXT NOT NULL, finished_at TEXT, receipt TEXT)",
        ),
    ),
    (
        2,
        (
            # Per-purpose expiry and dropped purposes: the row stays, marked ended.
            "ALTER TABLE deadlines ADD COLUMN ended_at TEXT",
            "ALTER TABLE deadlines ADD COLUMN end_reason TEXT",
            # Art. 18 restrictions and Art. 21 objections (formerly rights.db).
            "CREATE TABLE restrictions ("
            " recording_id TEXT NOT NULL, subject_hash TEXT NOT NULL, kind TEXT NOT NULL,"
            " detail TEXT NOT NULL, ground TEXT, placed_at TEXT NOT NULL, lifted_at TEXT,"
            " PRIMARY KEY (recording_id, subject_hash, kind, detail, placed_at))",
            "CREATE INDEX restrictions_recording ON restrictions (recording_id, kind)",
            "CREATE INDEX artifacts_incomplete ON artifacts (size, created_at)",
        ),
    ),
)


def format_time(value: datetime) -> str:
    """*value* (time-zone aware) as fixed-width UTC text that sorts like the instant."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CatalogError(f"catalog time: expected a datetime with a time zone, got {value!r}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _opt_time(text: object) -> datetime | None:
    return None if text is None else parse_time(str(text))


@attrs.frozen(kw_only=True)
class NewRecording:
    """What :meth:`Catalog.add_recording` stores for one recording (no clear personal data).

    :param id: recording id.
    :param key_id: its recording key id in the key store.
    :param started_at: call start.
    :param duration_s: call length in seconds.
    :param direction: ``"inbound"`` or ``"outbound"``.
    :param tags: recording tags (legal holds can cover tags).
    :param delete_after: when the whole recording is due for deletion (``None``: no deadline,
        or the latest of *deadlines* when those are given).
    :param deadlines: per-purpose deadlines; when given, the governing deadline is their
        latest, and a *delete_after* that differs from it is refused.
    :param subject_hashes: keyed hashes of the subjects' identifiers.
    :param consents: the consent events (their evidence is not stored here).
    :param sealed_metadata: recording + decision JSON sealed under the recording key.
    """

    id: str
    key_id: str
    started_at: datetime
    duration_s: float
    direction: str
    tags: frozenset[str] = frozenset()
    delete_after: datetime | None = None
    deadlines: Mapping[str, datetime] = attrs.field(factory=dict)
    subject_hashes: frozenset[str] = frozenset()
    consents: tuple[ConsentEvent, ...] = ()
    sealed_metadata: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class RecordingEntry:
    """A recording as the catalog knows it."""

    id: str
    key_id: str
    state: RecordingState
    started_at: datetime
    duration_s: float
    direction: str
    delete_after: datetime | None
    created_at: datetime
    deleted_at: datetime | None
    tags: frozenset[str]


@attrs.frozen(kw_only=True)
class ArtifactEntry:
    """One artifact: its plaintext size, stored (encrypted) size, chunk size and media info.

    ``media`` describes how to interpret the plaintext, e.g. ``{"format": "pcm_s16le",
    "sample_rate": 8000, "channels": 1}`` for audio (which makes time seeking exact).
    """

    id: str
    recording_id: str
    kind: ArtifactKind
    size: int
    stored_size: int
    chunk_size: int
    media: Mapping[str, Any] | None
    created_at: datetime
    deleted_at: datetime | None


@attrs.frozen(kw_only=True)
class ReplicaEntry:
    """One artifact at one location."""

    artifact_id: str
    location: str
    object_key: str
    state: ReplicaState
    error: str | None
    attempts: int
    updated_at: datetime


@attrs.frozen(kw_only=True)
class HoldEntry:
    """A legal hold that covers a recording, and why."""

    hold_id: str
    reason: str
    via: str


@attrs.frozen(kw_only=True)
class PurposeDeadline:
    """One purpose retaining a recording until *due_at* (``ended_at`` once it stopped)."""

    purpose: str
    due_at: datetime
    ended_at: datetime | None = None
    end_reason: PurposeEnd | None = None

    @property
    def active(self) -> bool:
        """Whether the purpose has not been ended (expired, objected to, withdrawn)."""
        return self.ended_at is None

    def retains(self, at: datetime) -> bool:
        """Whether the purpose still retains the recording at *at*."""
        return self.ended_at is None and self.due_at > at


@attrs.frozen(kw_only=True)
class PurposeChange:
    """What :meth:`Catalog.drop_purposes` changed.

    :param dropped: purposes ended by this call (already ended or unknown ones are not listed).
    :param remaining: the purposes still retaining the recording, with their deadlines.
    :param delete_after: the recording's governing deadline after the change.
    """

    recording_id: str
    dropped: tuple[str, ...]
    remaining: Mapping[str, datetime]
    delete_after: datetime | None

    @property
    def emptied(self) -> bool:
        """Whether no purpose retains the recording any more (it is due for deletion)."""
        return bool(self.dropped) and not self.remaining


@attrs.frozen(kw_only=True)
class RestrictionEntry:
    """A data subject's restriction or objection on one recording.

    :param detail: for an objection the purpose objected to; for a restriction a short code
        (``"restriction"``, ``"erasure_retained"``).
    :param ground: the Art. 18(1) ground of a restriction (``None``: not stated).
    """

    recording_id: str
    subject_hash: str
    kind: RestrictionKind
    detail: str
    ground: RestrictionGround | None
    placed_at: datetime
    lifted_at: datetime | None


@attrs.frozen(kw_only=True)
class DeletionEntry:
    """The deletion journal of one recording."""

    recording_id: str
    reason: str
    step: DeletionStep
    started_at: datetime
    finished_at: datetime | None
    receipt: str | None


def _governing(entry: NewRecording) -> datetime | None:
    """The recording's governing deadline: the latest per-purpose deadline when there are any.

    :raises CatalogError: an explicit ``delete_after`` disagrees with the purposes' latest
        deadline (keeping longer than every purpose, or cutting a purpose short).
    """
    if not entry.deadlines:
        return entry.delete_after
    latest_purpose, latest = max(entry.deadlines.items(), key=lambda item: (item[1], item[0]))
    if entry.delete_after is not None and entry.delete_after != latest:
        raise CatalogError(
            f"catalog: recording {entry.id!r}: delete_after {entry.delete_after.isoformat()} "
            f"is not the latest per-purpose deadline ({latest_purpose!r} until "
            f"{latest.isoformat()}); the governing deadline must be the latest one"
        )
    return latest


class Catalog:
    """The vault's index.

    :param url: ``sqlite:///path.db``, ``sqlite:rel.db`` or a path (relative to *base*).
    :param base: folder relative paths are resolved against.
    """

    def __init__(self, url: str, *, base: Path | None = None) -> None:
        self.db: Database = connect(url, base=base)
        if self.db.dialect == "sqlite":
            # Subject hashes and sealed metadata of erased recordings are overwritten, not
            # left in free pages.
            self.db.execute("PRAGMA secure_delete = ON")
        self.version = migrate(self.db, _MIGRATIONS, table="catalog_version")

    def __repr__(self) -> str:
        return f"Catalog(where={self.db.where!r}, version={self.version})"

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # ------------------------------------------------------------------ recordings

    def add_recording(self, entry: NewRecording) -> None:
        """Store one recording with its tags, subjects, consents and deadlines.

        :raises CatalogError: the id is already in the catalog.
        """
        self.add_recordings([entry])

    def add_recordings(self, entries: Iterable[NewRecording]) -> int:
        """Store many recordings in one transaction; return how many."""
        now = format_time(datetime.now(UTC))
        rows: list[tuple[Any, ...]] = []
        tags: list[tuple[Any, ...]] = []
        subjects: list[tuple[Any, ...]] = []
        consents: list[tuple[Any, ...]] = []
        deadlines: list[tuple[Any, ...]] = []
        for entry in entries:
            delete_after = _governing(entry)
            rows.append(
                (
                    entry.id,
                    entry.key_id,
                    RecordingState.ACTIVE.value,
                    format_time(entry.started_at),
                    float(entry.duration_s),
                    entry.direction,
                    None if delete_after is None else format_time(delete_after),
                    now,
                    entry.sealed_metadata,
                )
            )
            tags.extend((entry.id, tag) for tag in sorted(entry.tags))
            subjects.extend((h, entry.id) for h in sorted(entry.subject_hashes))
            consents.extend(
                (
                    entry.id,
                    seq,
                    event.role.value,
                    event.purpose,
                    event.state.value,
                    event.method.value,
                    None if event.offset is None else event.offset.total_seconds(),
                    None if event.at is None else format_time(event.at),
                )
                for seq, event in enumerate(entry.consents)
            )
            deadlines.extend(
                (entry.id, purpose, format_time(due)) for purpose, due in entry.deadlines.items()
            )
        ids = [row[0] for row in rows]
        if len(set(ids)) != len(ids):
            raise CatalogError(f"{self.db.where}: duplicate recording ids in one batch")
        with self.db.transaction() as db:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ", ".join("?" * len(part))
                clash = db.one(f"SELECT id FROM recordings WHERE id IN ({marks})", part)
                if clash is not None:
                    raise CatalogError(
                        f"{self.db.where}: recording {clash[0]!r} is already in the catalog"
                    )
            db.executemany(
                "INSERT INTO recordings (id, key_id, state, started_at, duration_s, direction,"
                " delete_after, created_at, sealed_metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany("INSERT INTO recording_tags (recording_id, tag) VALUES (?, ?)", tags)
            db.executemany(
                "INSERT INTO subjects (subject_hash, recording_id) VALUES (?, ?)", subjects
            )
            db.executemany(
                "INSERT INTO consents (recording_id, seq, role, purpose, state, method,"
                " offset_s, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                consents,
            )
            db.executemany(
                "INSERT INTO deadlines (recording_id, purpose, due_at) VALUES (?, ?, ?)",
                deadlines,
            )
        return len(rows)

    def recording(self, recording_id: str) -> RecordingEntry:
        """The recording *recording_id*; :class:`NotFoundError` when unknown."""
        row = self.db.one(
            "SELECT id, key_id, state, started_at, duration_s, direction, delete_after,"
            " created_at, deleted_at FROM recordings WHERE id = ?",
            (recording_id,),
        )
        if row is None:
            raise NotFoundError(f"catalog: no recording {recording_id!r}")
        tags = self.db.execute(
            "SELECT tag FROM recording_tags WHERE recording_id = ?", (recording_id,)
        )
        return RecordingEntry(
            id=row[0],
            key_id=row[1],
            state=RecordingState(row[2]),
            started_at=parse_time(row[3]),
            duration_s=float(row[4]),
            direction=row[5],
            delete_after=_opt_time(row[6]),
            created_at=parse_time(row[7]),
            deleted_at=_opt_time(row[8]),
            tags=frozenset(str(t[0]) for t in tags),
        )

    def sealed_metadata(self, recording_id: str) -> bytes | None:
        """The sealed recording + decision JSON (``None`` once deleted)."""
        row = self.db.one("SELECT sealed_metadata FROM recordings WHERE id = ?", (recording_id,))
        if row is None:
            raise NotFoundError(f"catalog: no recording {recording_id!r}")
        return None if row[0] is None else bytes(row[0])

    def recording_ids(self, *, state: RecordingState | None = None) -> list[str]:
        """Every recording id (in one state when given), sorted."""
        if state is None:
            rows = self.db.execute("SELECT id FROM recordings ORDER BY id")
        else:
            rows = self.db.execute(
                "SELECT id FROM recordings WHERE state = ? ORDER BY id", (state.value,)
            )
        return [str(row[0]) for row in rows]

    def recordings_for_subject(self, subject_hash: str) -> list[str]:
        """Recording ids indexed under a subject's keyed hash (live ones only), sorted."""
        rows = self.db.execute(
            "SELECT s.recording_id FROM subjects s JOIN recordings r ON r.id = s.recording_id"
            " WHERE s.subject_hash = ? AND r.state <> ? ORDER BY s.recording_id",
            (subject_hash, RecordingState.DELETED.value),
        )
        return [str(row[0]) for row in rows]

    def due_for_deletion(self, now: datetime, *, limit: int | None = None) -> list[str]:
        """Active recordings whose deadline is at or before *now*, oldest deadline first."""
        sql = (
            "SELECT id FROM recordings WHERE state = ? AND delete_after IS NOT NULL"
            " AND delete_after <= ? ORDER BY delete_after, id"
        )
        params: list[Any] = [RecordingState.ACTIVE.value, format_time(now)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [str(row[0]) for row in self.db.execute(sql, params)]

    def deadlines(self, recording_id: str) -> dict[str, datetime]:
        """Per-purpose deadlines of a recording (ended purposes included; see
        :meth:`purpose_deadlines`)."""
        rows = self.db.execute(
            "SELECT purpose, due_at FROM deadlines WHERE recording_id = ?", (recording_id,)
        )
        return {str(p): parse_time(str(d)) for p, d in rows}

    def purpose_deadlines(self, recording_id: str) -> dict[str, PurposeDeadline]:
        """Every purpose of a recording with its deadline and, once ended, when and why."""
        rows = self.db.execute(
            "SELECT purpose, due_at, ended_at, end_reason FROM deadlines WHERE recording_id = ?",
            (recording_id,),
        )
        return {
            str(p): PurposeDeadline(
                purpose=str(p),
                due_at=parse_time(str(d)),
                ended_at=_opt_time(e),
                end_reason=None if r is None else PurposeEnd(r),
            )
            for p, d, e, r in rows
        }

    def _retain(self, db: Database, recording_id: str, at: datetime) -> datetime | None:
        """Recompute the governing deadline from the purposes not ended; store and return it.

        With no purpose left, the recording is due at *at* (or at its last deadline if that
        was earlier).
        """
        rows = db.execute(
            "SELECT due_at, ended_at FROM deadlines WHERE recording_id = ?", (recording_id,)
        )
        if not rows:
            entry = db.one("SELECT delete_after FROM recordings WHERE id = ?", (recording_id,))
            return None if entry is None else _opt_time(entry[0])
        active = [parse_time(str(due)) for due, ended in rows if ended is None]
        last = max(parse_time(str(due)) for due, _ in rows)
        governing = max(active) if active else min(at, last)
        db.execute(
            "UPDATE recordings SET delete_after = ? WHERE id = ?",
            (format_time(governing), recording_id),
        )
        return governing

    def drop_purposes(
        self,
        recording_id: str,
        purposes: Iterable[str],
        *,
        at: datetime,
        reason: PurposeEnd = PurposeEnd.WITHDRAWN,
    ) -> PurposeChange:
        """End *purposes* of a live recording at *at* and recompute its governing deadline.

        The governing deadline becomes the latest deadline of the purposes still retaining it;
        a recording left with no purpose is due for deletion at *at*. Purposes the recording
        has no deadline for, or that already ended, are ignored (listed in neither ``dropped``
        nor ``remaining``).

        :raises NotFoundError: no such recording.
        :raises CatalogError: the recording is being deleted or is deleted.
        """
        wanted = sorted(set(purposes))
        when = format_time(at)
        with self.db.transaction() as db:
            state = db.one("SELECT state FROM recordings WHERE id = ?", (recording_id,))
            if state is None:
                raise NotFoundError(f"catalog: no recording {recording_id!r}")
            if state[0] != RecordingState.ACTIVE.value:
                raise CatalogError(f"catalog: recording {recording_id!r} is {state[0]}")
            rows = db.execute(
                "SELECT purpose, due_at FROM deadlines WHERE recording_id = ? AND ended_at IS NULL",
                (recording_id,),
            )
            active = {str(p): parse_time(str(d)) for p, d in rows}
            dropped = [p for p in wanted if p in active]
            db.executemany(
                "UPDATE deadlines SET ended_at = ?, end_reason = ?"
                " WHERE recording_id = ? AND purpose = ? AND ended_at IS NULL",
                [(when, reason.value, recording_id, p) for p in dropped],
            )
            governing = self._retain(db, recording_id, at) if dropped else None
            if not dropped:
                row = db.one("SELECT delete_after FROM recordings WHERE id = ?", (recording_id,))
                governing = None if row is None else _opt_time(row[0])
        return PurposeChange(
            recording_id=recording_id,
            dropped=tuple(dropped),
            remaining={p: d for p, d in sorted(active.items()) if p not in dropped},
            delete_after=governing,
        )

    def expire_purposes(self, now: datetime) -> list[tuple[str, str]]:
        """Mark ended every purpose of a live recording whose own deadline is at or before
        *now*; return the ``(recording_id, purpose)`` pairs marked, sorted.

        The recording itself stays while another purpose retains it (its governing deadline
        is the latest, so it is unchanged); access for an expired purpose is refused.
        """
        when = format_time(now)
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT d.recording_id, d.purpose, d.due_at FROM deadlines d"
                " JOIN recordings r ON r.id = d.recording_id"
                " WHERE d.due_at <= ? AND d.ended_at IS NULL AND r.state = ?"
                " ORDER BY d.recording_id, d.purpose",
                (when, RecordingState.ACTIVE.value),
            )
            db.executemany(
                "UPDATE deadlines SET ended_at = ?, end_reason = ?"
                " WHERE recording_id = ? AND purpose = ? AND ended_at IS NULL",
                [(due, PurposeEnd.EXPIRED.value, rid, purpose) for rid, purpose, due in rows],
            )
        return [(str(rid), str(purpose)) for rid, purpose, _ in rows]

    def consent_rows(self, recording_id: str) -> list[tuple[Any, ...]]:
        """(role, purpose, state, method, offset_s, at) of each consent event, in order."""
        return self.db.execute(
            "SELECT role, purpose, state, method, offset_s, at FROM consents"
            " WHERE recording_id = ? ORDER BY seq",
            (recording_id,),
        )

    # ------------------------------------------------------------------ artifacts

    def add_artifact(
        self,
        *,
        artifact_id: str,
        recording_id: str,
        kind: ArtifactKind,
        size: int,
        stored_size: int,
        chunk_size: int,
        media: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an artifact of a live recording."""
        with self.db.transaction() as db:
            state = db.one("SELECT state FROM recordings WHERE id = ?", (recording_id,))
            if state is None:
                raise NotFoundError(f"catalog: no recording {recording_id!r}")
            if state[0] != RecordingState.ACTIVE.value:
                raise CatalogError(f"catalog: recording {recording_id!r} is {state[0]}")
            db.execute(
                "INSERT INTO artifacts (id, recording_id, kind, size, stored_size, chunk_size,"
                " media, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    artifact_id,
                    recording_id,
                    kind.value,
                    size,
                    stored_size,
                    chunk_size,
                    None if media is None else json.dumps(dict(media), sort_keys=True),
                    format_time(datetime.now(UTC)),
                ),
            )

    def set_artifact_size(self, artifact_id: str, *, size: int, stored_size: int) -> None:
        """Record an artifact's sizes once all of it is written (``-1`` while being written)."""
        self.db.execute(
            "UPDATE artifacts SET size = ?, stored_size = ? WHERE id = ?",
            (size, stored_size, artifact_id),
        )

    def abandon_artifact(self, artifact_id: str, at: datetime) -> None:
        """Mark an artifact whose write failed as gone (its replicas were removed)."""
        self.db.execute(
            "UPDATE artifacts SET deleted_at = ? WHERE id = ?", (format_time(at), artifact_id)
        )

    def incomplete_artifacts(self, older_than: datetime) -> list[ArtifactEntry]:
        """Artifacts created before *older_than* whose write never finished (size ``-1``,
        not abandoned): what a crashed put leaves behind."""
        rows = self.db.execute(
            f"SELECT {self._ARTIFACT_COLUMNS} FROM artifacts"
            " WHERE size < 0 AND created_at < ? AND deleted_at IS NULL ORDER BY created_at, id",
            (format_time(older_than),),
        )
        return [self._artifact(row) for row in rows]

    def _artifact(self, row: Sequence[Any]) -> ArtifactEntry:
        return ArtifactEntry(
            id=row[0],
            recording_id=row[1],
            kind=ArtifactKind(row[2]),
            size=int(row[3]),
            stored_size=int(row[4]),
            chunk_size=int(row[5]),
            media=None if row[6] is None else json.loads(row[6]),
            created_at=parse_time(row[7]),
            deleted_at=_opt_time(row[8]),
        )

    _ARTIFACT_COLUMNS: Final = (
        "id, recording_id, kind, size, stored_size, chunk_size, media, created_at, deleted_at"
    )

    def artifact(self, artifact_id: str) -> ArtifactEntry:
        """One artifact; :class:`NotFoundError` when unknown."""
        row = self.db.one(
            f"SELECT {self._ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?", (artifact_id,)
        )
        if row is None:
            raise NotFoundError(f"catalog: no artifact {artifact_id!r}")
        return self._artifact(row)

    def artifacts(self, recording_id: str) -> list[ArtifactEntry]:
        """Every artifact of a recording, oldest first."""
        rows = self.db.execute(
            f"SELECT {self._ARTIFACT_COLUMNS} FROM artifacts WHERE recording_id = ?"
            " ORDER BY created_at, id",
            (recording_id,),
        )
        return [self._artifact(row) for row in rows]

    # ------------------------------------------------------------------ replicas

    def set_replica(
        self,
        artifact_id: str,
        location: str,
        object_key: str,
        state: ReplicaState,
        *,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        """Create or update the replica of *artifact_id* at *location*."""
        now = format_time(datetime.now(UTC))
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO replicas (artifact_id, location, object_key, state, error, attempts,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (artifact_id, location) DO UPDATE SET state = excluded.state,"
                " error = excluded.error, updated_at = excluded.updated_at,"
                " attempts = replicas.attempts + excluded.attempts",
                (artifact_id, location, object_key, state.value, error, int(attempt), now),
            )

    def _replica(self, row: Sequence[Any]) -> ReplicaEntry:
        return ReplicaEntry(
            artifact_id=row[0],
            location=row[1],
            object_key=row[2],
            state=ReplicaState(row[3]),
            error=row[4],
            attempts=int(row[5]),
            updated_at=parse_time(row[6]),
        )

    def replicas(self, artifact_id: str) -> list[ReplicaEntry]:
        """Every replica of an artifact, by location."""
        rows = self.db.execute(
            "SELECT artifact_id, location, object_key, state, error, attempts, updated_at"
            " FROM replicas WHERE artifact_id = ? ORDER BY location",
            (artifact_id,),
        )
        return [self._replica(row) for row in rows]

    def replicas_needing_repair(self) -> list[ReplicaEntry]:
        """Replicas of live artifacts that are pending, failed or corrupt."""
        rows = self.db.execute(
            "SELECT p.artifact_id, p.location, p.object_key, p.state, p.error, p.attempts,"
            " p.updated_at FROM replicas p JOIN artifacts a ON a.id = p.artifact_id"
            " WHERE p.state IN (?, ?, ?) AND a.deleted_at IS NULL ORDER BY p.artifact_id",
            (ReplicaState.PENDING.value, ReplicaState.FAILED.value, ReplicaState.CORRUPT.value),
        )
        return [self._replica(row) for row in rows]

    # ------------------------------------------------------------------ legal holds

    def place_hold(self, hold: LegalHold) -> None:
        """Store a legal hold and its scope (replacing one with the same id)."""
        scope = (
            [("recording", value) for value in sorted(hold.scope.recordings)]
            + [("tag", value) for value in sorted(hold.scope.tags)]
            + [("subject", value) for value in sorted(hold.scope.subjects)]
        )
        with self.db.transaction() as db:
            db.execute("DELETE FROM hold_scope WHERE hold_id = ?", (hold.id,))
            db.execute("DELETE FROM legal_holds WHERE id = ?", (hold.id,))
            db.execute(
                "INSERT INTO legal_holds (id, reason, placed_at, lifted_at) VALUES (?, ?, ?, ?)",
                (
                    hold.id,
                    hold.reason,
                    format_time(hold.placed_at),
                    None if hold.lifted_at is None else format_time(hold.lifted_at),
                ),
            )
            db.executemany(
                "INSERT INTO hold_scope (hold_id, kind, value) VALUES (?, ?, ?)",
                [(hold.id, kind, value) for kind, value in scope],
            )

    def lift_hold(self, hold_id: str, at: datetime) -> None:
        """Mark a hold lifted at *at*."""
        with self.db.transaction() as db:
            if db.one("SELECT 1 FROM legal_holds WHERE id = ?", (hold_id,)) is None:
                raise NotFoundError(f"catalog: no legal hold {hold_id!r}")
            db.execute(
                "UPDATE legal_holds SET lifted_at = ? WHERE id = ?", (format_time(at), hold_id)
            )

    def holds(self) -> list[LegalHold]:
        """Every legal hold, lifted or not."""
        holds = []
        for hold_id, reason, placed, lifted in self.db.execute(
            "SELECT id, reason, placed_at, lifted_at FROM legal_holds ORDER BY id"
        ):
            scope: dict[str, list[str]] = {"recordings": [], "tags": [], "subjects": []}
            for kind, value in self.db.execute(
                "SELECT kind, value FROM hold_scope WHERE hold_id = ?", (hold_id,)
            ):
                scope[
                    {"recording": "recordings", "tag": "tags", "subject": "subjects"}[kind]
                ].append(value)
            holds.append(
                LegalHold(
                    id=hold_id,
                    reason=reason,
                    placed_at=parse_time(placed),
                    lifted_at=_opt_time(lifted),
                    scope=scope,
                )
            )
        return holds

    def holds_covering(self, recording_id: str, at: datetime) -> list[HoldEntry]:
        """Legal holds in force at *at* that cover the recording (by id, tag or subject)."""
        when = format_time(at)
        rows = self.db.execute(
            "SELECT DISTINCT h.id, h.reason, s.kind FROM legal_holds h"
            " JOIN hold_scope s ON s.hold_id = h.id"
            " WHERE h.placed_at <= ? AND (h.lifted_at IS NULL OR h.lifted_at > ?) AND ("
            " (s.kind = 'recording' AND s.value = ?)"
            " OR (s.kind = 'tag' AND s.value IN"
            "  (SELECT tag FROM recording_tags WHERE recording_id = ?))"
            " OR (s.kind = 'subject' AND s.value IN"
            "  (SELECT subject_hash FROM subjects WHERE recording_id = ?)))"
            " ORDER BY h.id, s.kind",
            (when, when, recording_id, recording_id, recording_id),
        )
        return [HoldEntry(hold_id=r[0], reason=r[1], via=r[2]) for r in rows]

    # ------------------------------------------------------------------ restrictions

    def add_restriction(
        self,
        recording_id: str,
        subject_hash: str,
        kind: RestrictionKind,
        *,
        at: datetime,
        detail: str | None = None,
        ground: RestrictionGround | None = None,
    ) -> None:
        """Record a restriction (Art. 18) or an objection (Art. 21) of one subject on one
        recording. Recording the same thing twice at the same instant is a no-op.

        :param detail: the purpose objected to, or a short code (default: the kind's name).
        :param ground: the Art. 18(1) ground of a restriction.
        """
        self.db.execute(
            "INSERT OR IGNORE INTO restrictions (recording_id, subject_hash, kind, detail,"
            " ground, placed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                recording_id,
                subject_hash,
                kind.value,
                detail or kind.value,
                None if ground is None else ground.value,
                format_time(at),
            ),
        )

    def import_restrictions(self, entries: Iterable[RestrictionEntry]) -> int:
        """Store restrictions kept elsewhere (e.g. a legacy ``rights.db``); skip those already
        here. Returns how many were offered."""
        rows = [
            (
                e.recording_id,
                e.subject_hash,
                e.kind.value,
                e.detail,
                None if e.ground is None else e.ground.value,
                format_time(e.placed_at),
                None if e.lifted_at is None else format_time(e.lifted_at),
            )
            for e in entries
        ]
        with self.db.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO restrictions (recording_id, subject_hash, kind, detail,"
                " ground, placed_at, lifted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def lift_restrictions(
        self, recording_id: str, subject_hash: str, kind: RestrictionKind, at: datetime
    ) -> int:
        """Lift every restriction of *kind* one subject placed on one recording; return how
        many were in force."""
        with self.db.transaction() as db:
            row = db.one(
                "SELECT COUNT(*) FROM restrictions WHERE recording_id = ? AND subject_hash = ?"
                " AND kind = ? AND lifted_at IS NULL",
                (recording_id, subject_hash, kind.value),
            )
            db.execute(
                "UPDATE restrictions SET lifted_at = ? WHERE recording_id = ?"
                " AND subject_hash = ? AND kind = ? AND lifted_at IS NULL",
                (format_time(at), recording_id, subject_hash, kind.value),
            )
        return 0 if row is None else int(row[0])

    def restrictions(
        self, recording_id: str, kind: RestrictionKind | None = None, *, active: bool = True
    ) -> list[RestrictionEntry]:
        """Restrictions and objections on a recording (of one kind when given; only those in
        force unless *active* is false), oldest first."""
        sql = (
            "SELECT recording_id, subject_hash, kind, detail, ground, placed_at, lifted_at"
            " FROM restrictions WHERE recording_id = ?"
        )
        params: list[Any] = [recording_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        if active:
            sql += " AND lifted_at IS NULL"
        rows = self.db.execute(sql + " ORDER BY placed_at, subject_hash, detail", params)
        return [
            RestrictionEntry(
                recording_id=str(r[0]),
                subject_hash=str(r[1]),
                kind=RestrictionKind(r[2]),
                detail=str(r[3]),
                ground=None if r[4] is None else RestrictionGround(r[4]),
                placed_at=parse_time(str(r[5])),
                lifted_at=_opt_time(r[6]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ deletion journal

    def begin_deletion(self, recording_id: str, reason: str, at: datetime) -> DeletionEntry:
        """Mark the recording ``deleting`` and open its journal (or return the open one)."""
        with self.db.transaction() as db:
            existing = self.deletion(recording_id)
            if existing is not None:
                return existing
            db.execute(
                "UPDATE recordings SET state = ? WHERE id = ? AND state = ?",
                (RecordingState.DELETING.value, recording_id, RecordingState.ACTIVE.value),
            )
            db.execute(
                "INSERT INTO deletions (recording_id, reason, step, started_at)"
                " VALUES (?, ?, ?, ?)",
                (recording_id, reason, DeletionStep.STARTED.value, format_time(at)),
            )
        entry = self.deletion(recording_id)
        assert entry is not None
        return entry

    def deletion(self, recording_id: str) -> DeletionEntry | None:
        """The deletion journal of a recording, or ``None`` when none was started."""
        row = self.db.one(
            "SELECT recording_id, reason, step, started_at, finished_at, receipt FROM deletions"
            " WHERE recording_id = ?",
            (recording_id,),
        )
        if row is None:
            return None
        return DeletionEntry(
            recording_id=row[0],
            reason=row[1],
            step=DeletionStep(row[2]),
            started_at=parse_time(row[3]),
            finished_at=_opt_time(row[4]),
            receipt=row[5],
        )

    def advance_deletion(self, recording_id: str, step: DeletionStep) -> None:
        """Record that *step* is done (never moves backwards)."""
        current = self.deletion(recording_id)
        if current is None:
            raise NotFoundError(f"catalog: no deletion of {recording_id!r} in progress")
        if _STEP_ORDER[step] > _STEP_ORDER[current.step]:
            self.db.execute(
                "UPDATE deletions SET step = ? WHERE recording_id = ?", (step.value, recording_id)
            )

    def mark_replica_deleted(self, artifact_id: str, location: str) -> None:
        """Record that a replica is verified gone."""
        self.set_replica_state(artifact_id, location, ReplicaState.DELETED)

    def set_replica_state(self, artifact_id: str, location: str, state: ReplicaState) -> None:
        """Change a replica's state only."""
        self.db.execute(
            "UPDATE replicas SET state = ?, updated_at = ? WHERE artifact_id = ? AND location = ?",
            (state.value, format_time(datetime.now(UTC)), artifact_id, location),
        )

    def finish_deletion(self, recording_id: str, receipt: str, at: datetime) -> None:
        """Mark the recording deleted: drop its subject index, sealed metadata, consents and
        restrictions (which carry subject hashes)."""
        when = format_time(at)
        with self.db.transaction() as db:
            db.execute("DELETE FROM subjects WHERE recording_id = ?", (recording_id,))
            db.execute("DELETE FROM consents WHERE recording_id = ?", (recording_id,))
            db.execute("DELETE FROM restrictions WHERE recording_id = ?", (recording_id,))
            db.execute(
                "UPDATE recordings SET state = ?, sealed_metadata = NULL, deleted_at = ?"
                " WHERE id = ?",
                (RecordingState.DELETED.value, when, recording_id),
            )
            db.execute(
                "UPDATE artifacts SET deleted_at = ? WHERE recording_id = ? AND deleted_at IS NULL",
                (when, recording_id),
            )
            db.execute(
                "UPDATE deletions SET step = ?, finished_at = ?, receipt = ?"
                " WHERE recording_id = ?",
                (DeletionStep.FINISHED.value, when, receipt, recording_id),
            )

    def forget(self, recording_id: str, *, reason: str) -> None:
        """Remove every row of a recording whose deletion for *reason* has finished.

        For deletions that undo something that never happened (an ingest rolled back), so the
        same call can be ingested again. Refuses anything else: a recording still active, a
        deletion not finished, or one finished for another reason (its tombstone stays, e.g.
        as the trace of an erasure).

        :raises CatalogError: the recording is not deleted, or was deleted for another reason.
        """
        entry = self.deletion(recording_id)
        if entry is None or entry.finished_at is None or entry.reason != reason:
            raise CatalogError(
                f"{self.db.where}: recording {recording_id!r} has no finished deletion "
                f"for {reason!r}; refusing to forget it"
            )
        with self.db.transaction() as db:
            db.execute(
                "DELETE FROM replicas WHERE artifact_id IN"
                " (SELECT id FROM artifacts WHERE recording_id = ?)",
                (recording_id,),
            )
            for table in ("artifacts", "deadlines", "recording_tags", "deletions"):
                db.execute(f"DELETE FROM {table} WHERE recording_id = ?", (recording_id,))
            db.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))

    def unfinished_deletions(self) -> list[str]:
        """Recordings whose deletion was started and not finished (to resume)."""
        rows = self.db.execute(
            "SELECT recording_id FROM deletions WHERE finished_at IS NULL ORDER BY started_at",
        )
        return [str(row[0]) for row in rows]
