"""The SQLite catalog: concurrent writers, query plans that use the indexes, migrations."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicepriv.errors import CatalogError, NotFoundError
from voicepriv.model import LegalHold
from voicepriv.vault._db import connect
from voicepriv.vault.catalog import Catalog, NewRecording, RecordingState, format_time, parse_time

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PER_PROCESS = 150


def _entry(rid: str, *, due: datetime | None = None, subject: str = "ab" * 16) -> NewRecording:
    return NewRecording(
        id=rid,
        key_id=f"rk-{rid}",
        started_at=T0,
        duration_s=60.0,
        direction="inbound",
        delete_after=due,
        subject_hashes=frozenset({subject}),
        tags=frozenset({"t"}),
    )


def _writer(url: str, worker: int, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    catalog = Catalog(url)
    for index in range(PER_PROCESS):
        rid = f"w{worker}-{index}"
        if index % 3 == 0:
            catalog.add_recordings([_entry(rid), _entry(rid + "-b")])
        else:
            catalog.add_recording(_entry(rid))
    catalog.close()


def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_writer, args=(url, w, start)) for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=240)
        assert process.exitcode == 0
    catalog = Catalog(url)
    ids = catalog.recording_ids()
    expected = {f"w{w}-{i}" for w in range(4) for i in range(PER_PROCESS)}
    expected |= {f"w{w}-{i}-b" for w in range(4) for i in range(0, PER_PROCESS, 3)}
    assert set(ids) == expected and len(ids) == len(expected)
    assert len(catalog.recordings_for_subject("ab" * 16)) == len(expected)
    catalog.close()


def test_subject_and_due_queries_use_indexes(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "c.db"))
    plans = {
        "subject": catalog.db.execute(
            "EXPLAIN QUERY PLAN SELECT s.recording_id FROM subjects s JOIN recordings r"
            " ON r.id = s.recording_id WHERE s.subject_hash = ? AND r.state <> ?",
            ("x", "deleted"),
        ),
        "due": catalog.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM recordings WHERE state = ? AND delete_after"
            " IS NOT NULL AND delete_after <= ? ORDER BY delete_after, id",
            ("active", "z"),
        ),
    }
    for name, plan in plans.items():
        text = " ".join(str(row[-1]) for row in plan)
        assert "SCAN recordings" not in text and "SCAN s" not in text, (name, text)
        assert "USING" in text, (name, text)
    catalog.close()


def test_due_for_deletion_orders_and_filters(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "c.db"))
    catalog.add_recordings(
        [
            _entry("late", due=T0 + timedelta(days=3)),
            _entry("early", due=T0 + timedelta(days=1)),
            _entry("never"),
            _entry("future", due=T0 + timedelta(days=30)),
        ]
    )
    assert catalog.due_for_deletion(T0 + timedelta(days=5)) == ["early", "late"]
    assert catalog.due_for_deletion(T0 + timedelta(days=5), limit=1) == ["early"]
    catalog.begin_deletion("early", "retention", T0)
    assert catalog.due_for_deletion(T0 + timedelta(days=5)) == ["late"]
    assert catalog.unfinished_deletions() == ["early"]
    assert catalog.recording("early").state is RecordingState.DELETING
    catalog.close()


def test_duplicate_recording_is_refused_whole(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "c.db"))
    catalog.add_recording(_entry("a"))
    with pytest.raises(CatalogError, match="'a' is already"):
        catalog.add_recordings([_entry("b"), _entry("a")])
    assert catalog.recording_ids() == ["a"]
    with pytest.raises(NotFoundError):
        catalog.recording("b")
    catalog.close()


def test_holds_cover_by_id_tag_and_subject_only_while_in_force(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "c.db"))
    catalog.add_recordings([_entry("r1"), _entry("r2", subject="cd" * 16)])
    catalog.place_hold(
        LegalHold(
            id="h1",
            scope={"subjects": ["cd" * 16]},
            reason="case",
            placed_at=T0,
            lifted_at=T0 + timedelta(days=2),
        )
    )
    assert catalog.holds_covering("r1", T0 + timedelta(days=1)) == []
    assert [h.hold_id for h in catalog.holds_covering("r2", T0 + timedelta(days=1))] == ["h1"]
    assert catalog.holds_covering("r2", T0 + timedelta(days=3)) == []
    assert catalog.holds_covering("r2", T0 - timedelta(days=1)) == []
    assert catalog.holds()[0].scope.subjects == frozenset({"cd" * 16})
    catalog.close()


def test_migrations_are_versioned_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Catalog(str(tmp_path / "c.db")).close()
    db = connect(str(tmp_path / "c.db"))
    db.execute("INSERT INTO catalog_version (version, applied_at) VALUES (99, 'x')")
    db.close()
    with pytest.raises(CatalogError, match="newer than this voicepriv"):
        Catalog(str(tmp_path / "c.db"))


def test_times_sort_like_instants() -> None:
    a = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    b = datetime(2026, 1, 2, 0, 30, tzinfo=UTC)
    assert format_time(a) < format_time(b)
    assert parse_time(format_time(b)) == b
    with pytest.raises(CatalogError):
        format_time(datetime(2026, 1, 1))
