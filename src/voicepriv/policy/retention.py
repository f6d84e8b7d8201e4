"""Retention deadlines and legal holds, and which catalogue rows are due for deletion.

A recording's deadline is the longest lawful retention of the purposes it is kept for (each
purpose remembers its own, see :class:`~voicepriv.policy.decision.KeptPurpose`). A legal hold
in force suspends deletion of everything in its scope. :func:`due` evaluates a whole catalogue
at once with numpy: no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from voicepriv.errors import PolicyError
from voicepriv.model import LegalHold, Recording, RetentionRule, RetentionTrigger

__all__ = ["deadline", "due", "held", "hold_covers", "to_datetime64"]


def deadline(rule: RetentionRule, recording: Recording) -> datetime:
    """When what was recorded for ``rule.purpose`` must go, counted from the rule's trigger."""
    start = recording.started_at
    if rule.trigger is RetentionTrigger.CALL_END:
        start = recording.ended_at
    return start + rule.keep_for


def hold_covers(
    hold: LegalHold,
    recording_id: str,
    *,
    tags: Iterable[str] = (),
    subject_hashes: Iterable[str] = (),
    at: datetime,
) -> bool:
    """Whether *hold* is in force at *at* and its scope covers the recording."""
    if not hold.active(at):
        return False
    scope = hold.scope
    return (
        recording_id in scope.recordings
        or not scope.tags.isdisjoint(tags)
        or not scope.subjects.isdisjoint(subject_hashes)
    )


def to_datetime64(
    values: Sequence[datetime] | npt.NDArray[np.datetime64],
) -> npt.NDArray[np.datetime64]:
    """Aware datetimes (or an existing array) as UTC ``datetime64[us]`` values.

    :raises PolicyError: a naive datetime (its time zone would be a guess).
    """
    if isinstance(values, np.ndarray):
        return values.astype("datetime64[us]")
    out = np.empty(len(values), dtype="datetime64[us]")
    for i, value in enumerate(values):
        if value.tzinfo is None:
            raise PolicyError(f"deadline {value.isoformat()} has no time zone")
        out[i] = np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")
    return out


def held(
    recording_ids: npt.NDArray[np.str_],
    holds: Iterable[LegalHold],
    at: datetime,
) -> npt.NDArray[np.bool_]:
    """Rows whose recording id is named by a hold in force at *at* (vectorised ``isin``).

    Holds scoped by tag or subject are resolved by the catalogue (which knows tags and subject
    hashes) and passed to :func:`due` as its own flags.
    """
    named = sorted({rid for h in holds if h.active(at) for rid in h.scope.recordings})
    if not named:
        return np.zeros(len(recording_ids), dtype=bool)
    return np.isin(recording_ids, np.asarray(named, dtype=recording_ids.dtype))


def due(
    now: datetime,
    recording_ids: npt.ArrayLike,
    deadlines: npt.ArrayLike,
    on_hold: npt.ArrayLike | None = None,
) -> npt.NDArray[np.str_]:
    """The recording ids whose deadline has passed at *now* and that no hold protects.

    :param recording_ids: one id per catalogue row.
    :param deadlines: per row, the governing deadline (``datetime64``, UTC) or ``NaT`` for a
        row without one (never due: a missing deadline keeps nothing alive by itself, the
        catalogue must set one).
    :param on_hold: per row, ``True`` when a legal hold or a mandatory retention covers it.
    :raises PolicyError: the arrays differ in length or *now* has no time zone.
    """
    if now.tzinfo is None:
        raise PolicyError(f"due: now ({now.isoformat()}) has no time zone")
    ids = np.asarray(recording_ids)
    when = np.asarray(deadlines).astype("datetime64[us]")
    flags = np.zeros(len(ids), dtype=bool) if on_hold is None else np.asarray(on_hold, dtype=bool)
    if not len(ids) == len(when) == len(flags):
        raise PolicyError(
            f"due: {len(ids)} ids, {len(when)} deadlines and {len(flags)} hold flags differ"
        )
    cutoff = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "us")
    mask = (when <= cutoff) & ~np.isnat(when) & ~flags
    result: npt.NDArray[np.str_] = ids[mask]
    return result
