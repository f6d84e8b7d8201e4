"""The catalog behaves the same on every backend: SQLite (default) and PostgreSQL.

Each check runs on both; the PostgreSQL run uses a fresh schema on the server named by
``VOICEPRIV_TEST_POSTGRES`` (``tests/scripts/start_postgres.sh``) and skips without it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_writer
from pg_schema import postgres_url
from voicepriv.errors import CatalogError, NotFoundError
from voicepriv.model import ConsentEvent, HoldScope, LegalHold
from voicepriv.vault._db import connect
from voicepriv.vault.catalog import (
    ArtifactKind,
    Catalog,
    DeletionStep,
    NewRecording,
    RecordingState,
    ReplicaState,
)

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        with postgres_url() as url:
            yield url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = Catalog(catalog_url)
    try:
        yield opened
    finally:
        opened.close()


def _recording(rid: str, *, due: datetime | None = None, **extra: object) -> NewRecording:
    return NewRecording(
        id=rid,
        key_id=f"rk-{rid}",
        started_at=T0,
        duration_s=184.2,
        direction="inbound",
        delete_after=due,
        **extra,  # type: ignore[arg-type]
    )


def test_recordings_round_trip(catalog: Catalog) -> None:
    consent = ConsentEvent(
        role="customer", purpose="quality_assurance", state="granted", method="dtmf", offset=6.5
    )
    catalog.add_recording(
        _recording(
            "c1",
            due=T0 + timedelta(days=90),
            tags=frozenset({"support", "payment"}),
            deadlines={"quality_assurance": T0 + timedelta(days=90)},
            subject_hashes=frozenset({"ab" * 16}),
            consents=(consent,),
            sealed_metadata=b"\x00sealed\xff",
        )
    )
    entry = catalog.recording("c1")
    assert entry.state is RecordingState.ACTIVE
    assert entry.duration_s == 184.2  # 8-byte floats on every backend
    assert entry.started_at == T0
    assert entry.tags == frozenset({"support", "payment"})
    assert catalog.sealed_metadata("c1") == b"\x00sealed\xff"
    assert catalog.deadlines("c1") == {"quality_assurance": T0 + timedelta(days=90)}
    assert catalog.consent_rows("c1") == [
        ("customer", "quality_assurance", "granted", "dtmf", 6.5, None)
    ]
    assert catalog.recordings_for_subject("ab" * 16) == ["c1"]
    with pytest.raises(CatalogError, match="already in the catalog"):
        catalog.add_recording(_recording("c1"))
    with pytest.raises(NotFoundError):
        catalog.recording("nope")


def test_a_failed_batch_leaves_nothing(catalog: Catalog) -> None:
    catalog.add_recording(_recording("b"))
    with pytest.raises(CatalogError):
        catalog.add_recordings([_recording("a"), _recording("b")])
    assert catalog.recording_ids() == ["b"]


def test_due_for_deletion_orders_by_deadline(catalog: Catalog) -> None:
    catalog.add_recordings(
        [
            _recording("late", due=T0 + timedelta(days=30)),
            _recording("early", due=T0 + timedelta(days=1)),
            _recording("never"),
        ]
    )
    now = T0 + timedelta(days=40)
    assert catalog.due_for_deletion(now) == ["early", "late"]
    assert catalog.due_for_deletion(now, limit=1) == ["early"]
    assert catalog.due_for_deletion(T0) == []


def test_artifacts_replicas_and_deletion_journal(catalog: Catalog) -> None:
    catalog.add_recording(_recording("r"))
    catalog.add_artifact(
        artifact_id="art-1",
        recording_id="r",
        kind=ArtifactKind.AGENT_AUDIO,
        size=1000,
        stored_size=1100,
        chunk_size=65536,
        media={"rate": 8000, "format": "flac"},
    )
    assert catalog.artifact("art-1").media == {"rate": 8000, "format": "flac"}
    catalog.set_replica("art-1", "file:///a", "k/1", ReplicaState.PENDING, attempt=True)
    catalog.set_replica("art-1", "file:///a", "k/1", ReplicaState.FAILED, error="x", attempt=True)
    catalog.set_replica("art-1", "s3://b", "k/1", ReplicaState.OK)
    replicas = catalog.replicas("art-1")
    assert [(r.location, r.state, r.attempts) for r in replicas] == [
        ("file:///a", ReplicaState.FAILED, 2),
        ("s3://b", ReplicaState.OK, 0),
    ]
    assert [r.location for r in catalog.replicas_needing_repair()] == ["file:///a"]

    catalog.begin_deletion("r", "retention", T0)
    assert catalog.unfinished_deletions() == ["r"]
    catalog.advance_deletion("r", DeletionStep.KEY_DESTROYED)
    deletion = catalog.deletion("r")
    assert deletion is not None and deletion.step is DeletionStep.KEY_DESTROYED
    for location in ("file:///a", "s3://b"):
        catalog.mark_replica_deleted("art-1", location)
    catalog.finish_deletion("r", "receipt-1", T0 + timedelta(minutes=1))
    assert catalog.unfinished_deletions() == []
    assert catalog.recording("r").state is RecordingState.DELETED
    with pytest.raises(CatalogError):
        catalog.add_artifact(
            artifact_id="art-2",
            recording_id="r",
            kind=ArtifactKind.TRANSCRIPT,
            size=1,
            stored_size=1,
            chunk_size=1,
        )


def test_legal_holds(catalog: Catalog) -> None:
    catalog.add_recording(_recording("h1", tags=frozenset({"case-7"})))
    catalog.add_recording(_recording("h2"))
    hold = LegalHold(
        id="hold-1",
        scope=HoldScope(tags=frozenset({"case-7"})),
        reason="litigation 7",
        placed_at=T0,
    )
    catalog.place_hold(hold)
    assert catalog.holds() == [hold]
    (entry,) = catalog.holds_covering("h1", T0 + timedelta(days=1))
    assert (entry.hold_id, entry.reason) == ("hold-1", "litigation 7")
    assert catalog.holds_covering("h2", T0 + timedelta(days=1)) == []
    catalog.lift_hold("hold-1", T0 + timedelta(days=2))
    assert catalog.holds_covering("h1", T0 + timedelta(days=3)) == []


def test_reopening_keeps_data_and_schema(catalog_url: str) -> None:
    first = Catalog(catalog_url)
    first.add_recording(_recording("keep-me"))
    first.close()
    second = Catalog(catalog_url)
    try:
        assert second.recording_ids() == ["keep-me"]
        assert second.version == first.version
    finally:
        second.close()


def test_four_processes_writing_at_once_lose_nothing(catalog_url: str) -> None:
    Catalog(catalog_url).close()
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=catalog_writer.write, args=(catalog_url, w, start)) for w in range(4)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=240)
        assert process.exitcode == 0
    per = catalog_writer.PER_PROCESS
    expected = {f"w{w}-{i}" for w in range(4) for i in range(per)}
    expected |= {f"w{w}-{i}-b" for w in range(4) for i in range(0, per, 3)}
    check = Catalog(catalog_url)
    try:
        ids = check.recording_ids()
        assert set(ids) == expected and len(ids) == len(expected)
        assert len(check.recordings_for_subject("ab" * 16)) == len(expected)
    finally:
        check.close()


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=8))
def test_due_order_matches_python(catalog: Catalog, offsets: list[int]) -> None:
    """Fixed-width UTC text sorts like the instants on every backend."""
    base = len(catalog.recording_ids())
    ids = [f"p{base + i}" for i in range(len(offsets))]
    catalog.add_recordings(
        [
            _recording(rid, due=T0 + timedelta(minutes=off))
            for rid, off in zip(ids, offsets, strict=True)
        ]
    )
    now = T0 + timedelta(days=30)
    due = [rid for rid in catalog.due_for_deletion(now) if rid in ids]
    expected = sorted(ids, key=lambda rid: (offsets[ids.index(rid)], rid))
    assert due == expected


def test_a_recording_being_deleted_is_no_longer_due(catalog: Catalog) -> None:
    catalog.add_recordings([_recording("a", due=T0), _recording("b", due=T0)])
    catalog.begin_deletion("a", "retention", T0)
    assert catalog.due_for_deletion(T0 + timedelta(days=1)) == ["b"]
    assert catalog.recording("a").state is RecordingState.DELETING
    assert catalog.unfinished_deletions() == ["a"]


def test_a_newer_schema_is_refused(catalog_url: str) -> None:
    Catalog(catalog_url).close()
    db = connect(catalog_url)
    try:
        db.execute("INSERT INTO catalog_version (version, applied_at) VALUES (99, 'x')")
    finally:
        db.close()
    with pytest.raises(CatalogError, match="newer than this voicepriv"):
        Catalog(catalog_url)


def _open_together(url: str, openers: int = 6) -> list[BaseException]:
    """Open the catalog at *url* from *openers* threads released at the same moment."""
    import threading

    barrier = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            Catalog(url).close()
        except BaseException as exc:  # collected for the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_many_openers_of_a_fresh_catalog_migrate_it_once(catalog_url: str) -> None:
    # Workers of a batch open the same new catalog at the same moment; every one must get it
    # (SQLite: switching a fresh file to WAL answers "locked" at once to all but one opener).
    assert _open_together(catalog_url) == []
    reopened = Catalog(catalog_url)
    try:
        reopened.add_recording(_recording("after-race"))
        assert reopened.recording_ids() == ["after-race"]
    finally:
        reopened.close()


def test_fresh_sqlite_catalogs_opened_together_never_report_locked(tmp_path: Path) -> None:
    # The WAL switch race hit about one fresh file in fifteen before the fix: open forty.
    for trial in range(40):
        url = f"sqlite:///{tmp_path / f'catalog-{trial}.db'}"
        assert _open_together(url) == [], f"trial {trial}"
