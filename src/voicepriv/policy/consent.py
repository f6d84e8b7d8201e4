"""Is a consent valid for this purpose, and from when to when does it hold?

A consent counts only if it was given by an act (DTMF digit, clear verbal yes, written), after
the notice for that purpose was played (a notice version the policy accepts), for that purpose
alone (events carry one purpose each, so one "yes" never covers two), and without service
depending on it (``conditional_service=True`` makes it invalid, GDPR Art. 7(4)). A refusal or
withdrawal stops the purpose from its offset on (GDPR Art. 7(3)); earlier audio stays lawful.

Where the organisation enables opt-out for a purpose and every applicable law allows it,
"notice played + opt-out offered + not exercised" holds for that purpose only.

Everything here is pure: events in, time intervals (seconds from the call start) out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from voicepriv.errors import PolicyError
from voicepriv.model import ConsentEvent, ConsentMethod, ConsentState, Role
from voicepriv.policy.config import Policy

__all__ = [
    "ConsentBasis",
    "ConsentOutcome",
    "EventIndex",
    "IvrAnswer",
    "chronological",
    "consent_intervals",
    "consents_from_ivr",
    "event_offset",
    "event_seconds",
    "index_events",
    "purpose_consent",
]


class IvrAnswer(Protocol):
    """A keypress answered to an IVR prompt (satisfied by ``voicepriv.interfaces.IvrInput``)."""

    @property
    def prompt(self) -> str:
        """The prompt's id in the policy's ``[ivr]`` tables."""

    @property
    def digit(self) -> str:
        """The DTMF digit pressed."""

    @property
    def offset_s(self) -> float:
        """Seconds from the call start."""


#: Intervals ``(start, end)`` in seconds from the call start, sorted, not overlapping.
Intervals = tuple[tuple[float, float], ...]


class ConsentBasis(enum.Enum):
    """What made a purpose's consent hold: an act, an unexercised opt-out, or nothing."""

    ACT = "act"
    OPT_OUT = "opt_out"
    NONE = "none"


@attrs.frozen(kw_only=True)
class ConsentOutcome:
    """Consent for one purpose and one party: the intervals it covers and why.

    :param problems: why events were not counted (before the notice, conditional service,
        not an act ...), as short sentences.
    """

    intervals: Intervals
    basis: ConsentBasis
    refused: bool
    problems: tuple[str, ...] = ()


def event_seconds(event: ConsentEvent, started_at: datetime) -> float:
    """The event's time in seconds from the call start, not clamped (negative before it)."""
    if event.offset is not None:
        return event.offset.total_seconds()
    assert event.at is not None  # the model requires one of the two
    return (event.at - started_at).total_seconds()


def event_offset(event: ConsentEvent, started_at: datetime, duration_s: float) -> float:
    """The event's time in seconds from the call start, clamped to ``[0, duration]``.

    An event known only by wall-clock time (``at``) before the call (e.g. a written consent
    signed earlier) counts from the start.
    """
    return min(max(event_seconds(event, started_at), 0.0), duration_s)


def chronological(
    group: list[tuple[float, ConsentEvent]], started_at: datetime
) -> list[tuple[float, ConsentEvent]]:
    """Sort one party's ``(offset_s, event)`` pairs of one purpose by time, in place.

    Events before the call all count from offset 0, so their real order is kept by their
    unclamped time: a withdrawal made yesterday follows a consent signed last week, whatever
    order they were listed in. At equal times a refusal or withdrawal comes after a grant, so
    it wins (fail closed).
    """
    if len(group) > 1:
        group.sort(
            key=lambda pair: (
                pair[0],
                event_seconds(pair[1], started_at),
                pair[1].state is not ConsentState.GRANTED,
            )
        )
    return group


#: Events of one party per purpose, as ``(offset_s, event)`` sorted by offset.
EventIndex = Mapping[str, Sequence[tuple[float, ConsentEvent]]]


def index_events(
    events: Iterable[ConsentEvent], started_at: datetime, duration_s: float, role: Role
) -> dict[str, list[tuple[float, ConsentEvent]]]:
    """*role*'s events grouped by purpose with their offsets, each group sorted by time."""
    index: dict[str, list[tuple[float, ConsentEvent]]] = {}
    for event in events:
        if event.role is not role:
            continue
        index.setdefault(event.purpose, []).append(
            (event_offset(event, started_at, duration_s), event)
        )
    for group in index.values():
        chronological(group, started_at)
    return index


def notice_at(
    events: Sequence[tuple[float, ConsentEvent]], versions: frozenset[str]
) -> float | None:
    """Offset of the first notice played in one of *versions*, or ``None``."""
    for offset, event in events:
        if (
            event.method is ConsentMethod.NOTICE_ONLY
            and event.state is ConsentState.GRANTED
            and event.notice_version in versions
        ):
            return offset
    return None


def purpose_consent(
    events: Sequence[tuple[float, ConsentEvent]],
    *,
    duration_s: float,
    notice_versions: frozenset[str],
    opt_out_allowed: bool,
) -> ConsentOutcome:
    """Consent of one party for one purpose over the call.

    :param events: that party's events for that purpose, ``(offset_s, event)`` sorted by time
        (see :func:`index_events`).
    :param notice_versions: notice versions the policy accepts for the purpose; a consent
        given before one of them was played does not count.
    :param opt_out_allowed: the policy enables opt-out for the purpose and every applicable law
        allows it.
    :return: the intervals covered; adding a valid grant never shrinks them, adding a refusal
        or withdrawal never grows them.
    """
    intervals, basis, refused, problems = consent_intervals(
        events,
        duration_s=duration_s,
        notice_versions=notice_versions,
        opt_out_allowed=opt_out_allowed,
    )
    return ConsentOutcome(intervals=intervals, basis=basis, refused=refused, problems=problems)


def consent_intervals(
    events: Sequence[tuple[float, ConsentEvent]],
    *,
    duration_s: float,
    notice_versions: frozenset[str],
    opt_out_allowed: bool,
) -> tuple[Intervals, ConsentBasis, bool, tuple[str, ...]]:
    """:func:`purpose_consent` as a plain tuple ``(intervals, basis, refused, problems)``.

    The decision engine's hot path uses it to skip building a value it takes apart at once.
    """
    noticed = notice_at(events, notice_versions)
    intervals: list[tuple[float, float]] = []
    problems: list[str] = []
    start: float | None = None
    basis = ConsentBasis.NONE
    refused = False
    for offset, event in events:
        state = event.state
        if state is not ConsentState.GRANTED:
            refused = True
            if start is not None:
                if offset > start:
                    intervals.append((start, offset))
                start = None
            continue
        method = event.method
        if method is ConsentMethod.NOTICE_ONLY:
            continue
        if event.conditional_service:
            problems.append(
                f"consent at {offset:g} s ignored: service depended on it (GDPR Art. 7(4))"
            )
            continue
        if noticed is None or offset < noticed:
            problems.append(
                f"consent at {offset:g} s ignored: given before a notice for this purpose "
                "was played (GDPR Art. 7(1), 13)"
            )
            continue
        if method is ConsentMethod.OPT_OUT_OFFERED:
            if not opt_out_allowed:
                problems.append(
                    f"opt-out offered at {offset:g} s is not consent here (GDPR Recital 32)"
                )
                continue
            if refused:
                continue  # an objection already made is not undone by offering the opt-out
            if start is None:
                start = offset
                basis = ConsentBasis.OPT_OUT if basis is ConsentBasis.NONE else basis
            continue
        if event.notice_version is not None and event.notice_version not in notice_versions:
            problems.append(
                f"consent at {offset:g} s ignored: notice version {event.notice_version!r} "
                "is not one the policy accepts"
            )
            continue
        if start is None:
            start = offset
        basis = ConsentBasis.ACT
    if start is not None and duration_s > start:
        intervals.append((start, duration_s))
    return (
        tuple(intervals),
        basis if intervals else ConsentBasis.NONE,
        refused,
        tuple(problems),
    )


def consents_from_ivr(policy: Policy, ivr_inputs: Iterable[IvrAnswer]) -> tuple[ConsentEvent, ...]:
    """Turn IVR keypresses into consent events using the policy's IVR prompt configuration.

    Each input (e.g. :class:`voicepriv.interfaces.IvrInput`) has ``prompt`` (str), ``digit``
    (str) and ``offset_s`` (float). For each, the prompt's notice is recorded as played (one
    ``NOTICE_ONLY`` event per purpose it announces, with its version) at the keypress offset,
    then the digit's action (grant, refuse or withdraw, for exactly one purpose) as a ``DTMF``
    event by the customer. A digit the prompt does not map gives no consent (keeps less).

    :raises PolicyError: a prompt that is not in the policy.
    """
    out: list[ConsentEvent] = []
    noticed: set[tuple[str, str, float]] = set()
    for item in ivr_inputs:
        prompt_id = str(item.prompt)
        digit = str(item.digit)
        offset = timedelta(seconds=float(item.offset_s))
        prompt = policy.ivr_prompts.get(prompt_id)
        if prompt is None:
            known = ", ".join(sorted(policy.ivr_prompts)) or "none"
            raise PolicyError(
                f"{policy.source}: IVR prompt {prompt_id!r} is not configured (known: {known})"
            )
        notice = policy.notices[prompt.notice]
        for purpose in notice.purposes:
            key = (purpose, notice.version, offset.total_seconds())
            if key in noticed:
                continue
            noticed.add(key)
            out.append(
                ConsentEvent(
                    role=Role.CUSTOMER,
                    purpose=purpose,
                    state=ConsentState.GRANTED,
                    method=ConsentMethod.NOTICE_ONLY,
                    offset=offset,
                    notice_version=notice.version,
                    evidence=f"ivr:{prompt_id}",
                )
            )
        action = prompt.digits.get(digit)
        if action is None:
            continue
        out.append(
            ConsentEvent(
                role=Role.CUSTOMER,
                purpose=action.purpose,
                state=action.state,
                method=ConsentMethod.DTMF,
                offset=offset,
                notice_version=notice.version,
                evidence=f"ivr:{prompt_id}:{digit}",
            )
        )
    return tuple(out)
