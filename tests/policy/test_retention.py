"""Retention deadlines, legal holds, and the vectorised due-for-deletion query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy._helpers import START, recording

from voicepriv.errors import PolicyError
from voicepriv.model import HoldScope, LegalHold, RetentionRule, RetentionTrigger
from voicepriv.policy.retention import deadline, due, held, hold_covers, to_datetime64


def test_deadline_counts_from_the_trigger() -> None:
    rec = recording(duration=600.0)
    end_rule = RetentionRule(purpose="quality_assurance", keep_for=timedelta(days=10))
    start_rule = RetentionRule(
        purpose="quality_assurance",
        keep_for=timedelta(days=10),
        trigger=RetentionTrigger.CALL_START,
    )
    assert deadline(end_rule, rec) == START + timedelta(days=10, seconds=600)
    assert deadline(start_rule, rec) == START + timedelta(days=10)


def hold(**scope: object) -> LegalHold:
    return LegalHold(
        id="h1",
        scope=HoldScope(**scope),
        reason="litigation",
        placed_at=START,  # type: ignore[arg-type]
    )


def test_hold_covers_by_recording_tag_or_subject_while_active() -> None:
    h = hold(recordings={"r1"}, tags={"case-7"}, subjects={"ab" * 16})
    now = START + timedelta(days=1)
    assert hold_covers(h, "r1", at=now)
    assert hold_covers(h, "r9", tags={"case-7"}, at=now)
    assert hold_covers(h, "r9", subject_hashes={"ab" * 16}, at=now)
    assert not hold_covers(h, "r9", tags={"other"}, at=now)
    assert not hold_covers(h, "r1", at=START - timedelta(seconds=1))
    lifted = LegalHold(
        id="h2", scope=HoldScope(recordings={"r1"}), reason="x", placed_at=START, lifted_at=now
    )
    assert not hold_covers(lifted, "r1", at=now)


def test_due_returns_expired_unheld_rows() -> None:
    ids = np.array(["a", "b", "c", "d"])
    when = to_datetime64(
        [START, START + timedelta(days=2), START - timedelta(days=1), START + timedelta(days=9)]
    )
    flags = np.array([False, False, True, False])
    got = due(START + timedelta(days=3), ids, when, flags)
    assert got.tolist() == ["a", "b"]


def test_due_never_deletes_rows_without_deadline() -> None:
    ids = np.array(["a", "b"])
    when = np.array(["NaT", "2020-01-01T00:00:00"], dtype="datetime64[us]")
    assert due(START, ids, when).tolist() == ["b"]


def test_due_rejects_mismatched_or_naive_input() -> None:
    with pytest.raises(PolicyError, match="differ"):
        due(START, np.array(["a"]), to_datetime64([START, START]))
    with pytest.raises(PolicyError, match="time zone"):
        due(datetime(2026, 1, 1), np.array(["a"]), to_datetime64([START]))
    with pytest.raises(PolicyError, match="time zone"):
        to_datetime64([datetime(2026, 1, 1)])


def test_held_marks_rows_named_by_active_holds() -> None:
    ids = np.array(["r1", "r2", "r3"])
    mask = held(ids, [hold(recordings={"r2"})], START + timedelta(hours=1))
    assert mask.tolist() == [False, True, False]
    assert held(ids, [], START).tolist() == [False, False, False]


def test_to_datetime64_converts_time_zones_to_utc() -> None:
    from datetime import timezone

    local = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_datetime64([local])[0] == np.datetime64("2026-01-01T10:00:00", "us")


@given(
    st.lists(st.tuples(st.integers(-1000, 1000), st.booleans()), min_size=0, max_size=40),
    st.integers(-1000, 1000),
)
def test_due_matches_the_row_by_row_rule(rows: list[tuple[int, bool]], now_h: int) -> None:
    base = datetime(2026, 6, 1, tzinfo=UTC)
    ids = np.array([f"r{i}" for i in range(len(rows))], dtype=str)
    when = to_datetime64([base + timedelta(hours=h) for h, _ in rows])
    flags = np.array([f for _, f in rows], dtype=bool)
    now = base + timedelta(hours=now_h)
    expected = [f"r{i}" for i, (h, f) in enumerate(rows) if h <= now_h and not f]
    assert due(now, ids, when, flags).tolist() == expected
