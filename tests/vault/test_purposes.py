"""Per-purpose deadlines, dropped and expired purposes, restrictions and the schema migration.

Catalog checks run on SQLite and, with ``VOICEPRIV_TEST_POSTGRES`` set, on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pg_schema import postgres_url
from voicepriv.errors import CatalogError, NotFoundError
from voicepriv.model import Direction, HoldScope, LegalHold, Recording
from voicepriv.vault._db import connect, migrate
from voicepriv.vault.catalog import (
    _MIGRATIONS,
    Catalog,
    NewRecording,
    PurposeEnd,
    RecordingState,
    RestrictionEntry,
    RestrictionGround,
    RestrictionKind,
)
from voicepriv.vault.vault import Vault

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
DAY = timedelta(days=1)


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


def _new(rid: str, deadlines: dict[str, datetime], **extra: object) -> NewRecording:
    return NewRecording(
        id=rid,
        key_id=f"rk-{rid}",
        started_at=T0,
        duration_s=60.0,
        direction="inbound",
        deadlines=deadlines,
        **extra,  # type: ignore[arg-type]
    )


def test_governing_deadline_is_the_latest_purpose(catalog: Catalog) -> None:
    catalog.add_recording(_new("r1", {"qa": T0 + 30 * DAY, "mifid": T0 + 1800 * DAY}))
    assert catalog.recording("r1").delete_after == T0 + 1800 * DAY
    with pytest.raises(CatalogError, match=r"'r2'.*not the latest per-purpose deadline.*'mifid'"):
        catalog.add_recording(
            _new("r2", {"qa": T0 + 30 * DAY, "mifid": T0 + 90 * DAY}, delete_after=T0 + 30 * DAY)
        )
    with pytest.raises(CatalogError, match="not the latest"):
        catalog.add_recording(_new("r3", {"qa": T0 + 30 * DAY}, delete_after=T0 + 31 * DAY))
    catalog.add_recording(_new("r4", {"qa": T0 + 30 * DAY}, delete_after=T0 + 30 * DAY))
    assert catalog.recording_ids() == ["r1", "r4"]


def test_drop_purposes_recomputes_the_governing_deadline(catalog: Catalog) -> None:
    deadlines = {"qa": T0 + 30 * DAY, "training": T0 + 90 * DAY, "billing": T0 + 60 * DAY}
    catalog.add_recording(_new("r1", deadlines))
    change = catalog.drop_purposes(
        "r1", {"training", "unknown"}, at=T0 + DAY, reason=PurposeEnd.OBJECTION
    )
    assert change.dropped == ("training",)
    assert dict(change.remaining) == {"billing": T0 + 60 * DAY, "qa": T0 + 30 * DAY}
    assert change.delete_after == T0 + 60 * DAY
    assert catalog.recording("r1").delete_after == T0 + 60 * DAY
    assert not change.emptied
    ended = catalog.purpose_deadlines("r1")["training"]
    assert (ended.ended_at, ended.end_reason) == (T0 + DAY, PurposeEnd.OBJECTION)
    # Dropping it again changes nothing.
    again = catalog.drop_purposes("r1", {"training"}, at=T0 + 2 * DAY)
    assert again.dropped == () and again.delete_after == T0 + 60 * DAY
    assert catalog.purpose_deadlines("r1")["training"].ended_at == T0 + DAY
    # No purpose left: due at once.
    last = catalog.drop_purposes("r1", {"qa", "billing"}, at=T0 + 3 * DAY)
    assert last.emptied and last.delete_after == T0 + 3 * DAY
    assert catalog.due_for_deletion(T0 + 3 * DAY) == ["r1"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    days=st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 3000), min_size=1
    ),
    drops=st.lists(st.sets(st.sampled_from(["a", "b", "c", "d", "e", "x"])), max_size=3),
)
def test_governing_deadline_is_always_the_latest_remaining(
    tmp_path_factory: pytest.TempPathFactory, days: dict[str, int], drops: list[set[str]]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    catalog = Catalog(f"sqlite:///{folder / 'c.db'}")
    try:
        catalog.add_recording(_new("r", {p: T0 + d * DAY for p, d in days.items()}))
        left = dict(days)
        at = T0
        for step, drop in enumerate(drops):
            at = T0 + step * timedelta(hours=1)
            change = catalog.drop_purposes("r", drop, at=at)
            assert set(change.dropped) == drop & set(left)
            for purpose in drop:
                left.pop(purpose, None)
            want = T0 + max(left.values()) * DAY if left else None
            if want is None:
                assert change.delete_after is not None and change.delete_after <= at
            else:
                assert change.delete_after == want
            assert catalog.recording("r").delete_after == change.delete_after
    finally:
        catalog.close()


def test_expire_purposes_marks_only_past_ones_of_live_recordings(catalog: Catalog) -> None:
    catalog.add_recording(_new("r1", {"qa": T0 + 30 * DAY, "mifid": T0 + 1800 * DAY}))
    catalog.add_recording(_new("r2", {"qa": T0 + 10 * DAY}))
    assert catalog.expire_purposes(T0 + 29 * DAY) == [("r2", "qa")]
    assert catalog.expire_purposes(T0 + 31 * DAY) == [("r1", "qa")]
    assert catalog.expire_purposes(T0 + 31 * DAY) == []
    purposes = catalog.purpose_deadlines("r1")
    assert purposes["qa"].end_reason is PurposeEnd.EXPIRED
    assert purposes["qa"].ended_at == T0 + 30 * DAY
    assert purposes["mifid"].active
    assert catalog.recording("r1").delete_after == T0 + 1800 * DAY
    with pytest.raises(NotFoundError, match="no recording 'r9'"):
        catalog.drop_purposes("r9", {"qa"}, at=T0)


def test_restrictions_round_trip(catalog: Catalog) -> None:
    catalog.add_recording(_new("r1", {"qa": T0 + 30 * DAY}))
    catalog.add_restriction(
        "r1", "ab" * 16, RestrictionKind.RESTRICTION, at=T0, ground=RestrictionGround.LEGAL_CLAIMS
    )
    catalog.add_restriction("r1", "ab" * 16, RestrictionKind.OBJECTION, at=T0, detail="training")
    catalog.add_restriction("r1", "ab" * 16, RestrictionKind.OBJECTION, at=T0, detail="profiling")
    catalog.add_restriction("r1", "ab" * 16, RestrictionKind.OBJECTION, at=T0, detail="training")
    objections = catalog.restrictions("r1", RestrictionKind.OBJECTION)
    assert sorted(r.detail for r in objections) == ["profiling", "training"]
    (restriction,) = catalog.restrictions("r1", RestrictionKind.RESTRICTION)
    assert restriction.ground is RestrictionGround.LEGAL_CLAIMS
    assert restriction.placed_at == T0
    lifted = catalog.lift_restrictions("r1", "ab" * 16, RestrictionKind.RESTRICTION, T0 + DAY)
    assert lifted == 1
    assert catalog.restrictions("r1", RestrictionKind.RESTRICTION) == []
    (old,) = catalog.restrictions("r1", RestrictionKind.RESTRICTION, active=False)
    assert old.lifted_at == T0 + DAY
    imported = RestrictionEntry(
        recording_id="r1",
        subject_hash="cd" * 16,
        kind=RestrictionKind.RESTRICTION,
        detail="restriction",
        ground=None,
        placed_at=T0,
        lifted_at=None,
    )
    assert catalog.import_restrictions([imported, imported]) == 2
    assert catalog.restrictions("r1", RestrictionKind.RESTRICTION) == [imported]


def test_version_1_catalog_is_migrated_in_place(catalog_url: str) -> None:
    db = connect(catalog_url)
    assert migrate(db, _MIGRATIONS[:1], table="catalog_version") == 1
    db.execute(
        "INSERT INTO recordings (id, key_id, state, started_at, duration_s, direction,"
        " delete_after, created_at) VALUES ('old', 'rk', 'active', ?, 1.0, 'inbound', ?, ?)",
        (
            "2026-03-02T09:15:00.000000Z",
            "2026-06-01T00:00:00.000000Z",
            "2026-03-02T09:15:00.000000Z",
        ),
    )
    db.execute(
        "INSERT INTO deadlines (recording_id, purpose, due_at) VALUES ('old', 'qa', ?)",
        ("2026-06-01T00:00:00.000000Z",),
    )
    db.close()
    catalog = Catalog(catalog_url)
    try:
        assert catalog.version == 2
        assert catalog.purpose_deadlines("old")["qa"].active
        assert catalog.expire_purposes(T0 + 365 * DAY) == [("old", "qa")]
        catalog.add_restriction("old", "ab" * 16, RestrictionKind.RESTRICTION, at=T0)
        assert len(catalog.restrictions("old")) == 1
    finally:
        catalog.close()
    assert Catalog(catalog_url).version == 2  # reopening applies nothing twice


# --------------------------------------------------------------------------- through the vault


def _recording(rid: str) -> Recording:
    return Recording(
        id=rid,
        started_at=T0,
        duration=60,
        direction=Direction.INBOUND,
        parties=[{"role": "agent", "id": "agent-7"}, {"role": "customer"}],
    )


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    opened = Vault.create(tmp_path / "vault")
    try:
        yield opened
    finally:
        opened.close()


def test_sweep_expires_a_purpose_and_keeps_the_recording(vault: Vault) -> None:
    deadlines = {"qa": T0 + 30 * DAY, "mifid": T0 + 400 * DAY}
    vault.put(_recording("r1"), {"agent_audio": b"x" * 100}, delete_after=None, deadlines=deadlines)
    report = vault.sweep(T0 + 31 * DAY, cleanup_grace=None)
    assert report.expired == (("r1", "qa"),)
    assert report.deleted == () and report.cleanup is None
    assert vault.catalog.recording("r1").state is RecordingState.ACTIVE
    assert vault.catalog.purpose_deadlines("r1")["qa"].end_reason is PurposeEnd.EXPIRED
    report = vault.sweep(T0 + 401 * DAY, cleanup_grace=None)
    assert [r.recording_id for r in report.deleted] == ["r1"]
    assert report.expired == ()


def test_drop_purposes_shortens_retention_and_empties_to_due(vault: Vault) -> None:
    deadlines = {"qa": T0 + 30 * DAY, "training": T0 + 90 * DAY}
    vault.put(_recording("r1"), {"agent_audio": b"x"}, delete_after=None, deadlines=deadlines)
    assert vault.sweep(T0 + 31 * DAY, dry_run=True).planned == ()
    change = vault.drop_purposes("r1", {"training"}, reason=PurposeEnd.OBJECTION, now=T0)
    assert change.delete_after == T0 + 30 * DAY
    assert vault.sweep(T0 + 31 * DAY, dry_run=True).planned == ("r1",)
    vault.put(_recording("r2"), {"agent_audio": b"x"}, delete_after=None, deadlines=deadlines)
    assert vault.drop_purposes("r2", {"qa", "training"}, now=T0 + DAY).emptied
    assert [r.recording_id for r in vault.sweep(T0 + DAY, cleanup_grace=None).deleted] == ["r2"]


@pytest.mark.parametrize(
    ("ground", "kept"),
    [
        (RestrictionGround.LEGAL_CLAIMS, True),
        (RestrictionGround.ACCURACY, False),
        (None, False),
    ],
)
def test_sweep_holds_back_legal_claims_restrictions(
    vault: Vault, ground: RestrictionGround | None, kept: bool
) -> None:
    vault.put(
        _recording("r1"), {"agent_audio": b"x"}, delete_after=None, deadlines={"qa": T0 + DAY}
    )
    vault.catalog.add_restriction(
        "r1", "ab" * 16, RestrictionKind.RESTRICTION, at=T0, ground=ground
    )
    report = vault.sweep(T0 + 2 * DAY, cleanup_grace=None)
    if not kept:
        assert [r.recording_id for r in report.deleted] == ["r1"]
        return
    (held,) = report.held
    assert held.recording_id == "r1" and held.holds == ()
    assert held.restrictions == ("legal_claims",)
    assert "GDPR Art. 18(1)(c)" in held.reason and "legal claims" in held.reason
    assert report.deleted == ()
    # With a legal hold as well, both reasons are given.
    vault.place_hold(
        LegalHold(
            id="h1",
            scope=HoldScope(recordings=["r1"]),  # type: ignore[list-item]
            reason="case 7",
            placed_at=T0,
        )
    )
    (both,) = vault.sweep(T0 + 2 * DAY, cleanup_grace=None).held
    assert both.holds == ("h1",) and "case 7" in both.reason and "18(1)(c)" in both.reason
    vault.lift_hold("h1", T0 + DAY)
    vault.catalog.lift_restrictions("r1", "ab" * 16, RestrictionKind.RESTRICTION, T0 + DAY)
    assert [r.recording_id for r in vault.sweep(T0 + 2 * DAY).deleted] == ["r1"]
