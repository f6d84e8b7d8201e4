"""One hypothesis strategy per model type, reused by every test module."""

from __future__ import annotations

import copy
import string
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from voicepriv import model

_ID_CHARS = string.ascii_letters + string.digits + "._:-"

recording_ids = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(_ID_CHARS, max_size=20),
)
purpose_ids = st.one_of(
    st.sampled_from(sorted(model.STANDARD_PURPOSES)),
    st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
)
jurisdictions = st.sampled_from(
    [
        "US",
        "US-CA",
        "US-NY",
        "US-FL",
        "US-WA",
        "US-TX",
        "DK",
        "DE",
        "FR",
        "GB",
        "SE",
        "NL",
        "AU-NSW",
    ]
)
timezones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])
aware_datetimes = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    timezones,
)
# Whole milliseconds keep float seconds exact through JSON.
durations = st.integers(min_value=1, max_value=10**8).map(lambda ms: timedelta(milliseconds=ms))

phone_numbers = st.sampled_from(
    ["+14155552671", "+4533123456", "+442071838750", "+4930123456", "+33142685300", "+61293744000"]
)
subject_refs = st.one_of(
    st.builds(model.SubjectRef, kind=st.just(model.SubjectKind.PHONE), value=phone_numbers),
    st.builds(
        model.SubjectRef,
        kind=st.just(model.SubjectKind.EMAIL),
        value=st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.(com|dk|de)", fullmatch=True),
    ),
    st.builds(
        model.SubjectRef,
        kind=st.sampled_from([model.SubjectKind.CUSTOMER_ID, model.SubjectKind.OTHER]),
        value=st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=20),
    ),
)
purposes = st.builds(
    model.Purpose,
    id=purpose_ids,
    label=st.text(max_size=20),
    dpv=st.one_of(st.none(), st.just("dpv:ServiceOptimisation")),
)
parties = st.builds(
    model.Party,
    role=st.sampled_from(model.Role),
    id=st.one_of(st.none(), st.text(max_size=10)),
    jurisdiction=st.one_of(st.none(), jurisdictions),
    subjects=st.lists(subject_refs, max_size=3).map(tuple),
    minor=st.booleans(),
)
layouts = st.one_of(
    st.just(model.ChannelLayout.mono()),
    st.permutations([model.Role.AGENT, model.Role.CUSTOMER]).map(
        lambda roles: model.ChannelLayout.stereo(roles[0], roles[1])
    ),
)
retention_rules = st.builds(
    model.RetentionRule,
    purpose=purpose_ids,
    keep_for=durations,
    trigger=st.sampled_from(model.RetentionTrigger),
    action=st.sampled_from(model.RetentionAction),
)
hold_scopes = st.builds(
    model.HoldScope,
    recordings=st.frozensets(recording_ids, max_size=3),
    tags=st.frozensets(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), max_size=3),
    subjects=st.frozensets(st.from_regex(r"[0-9a-f]{32}", fullmatch=True), max_size=2),
)


@st.composite
def legal_holds(draw: st.DrawFn) -> model.LegalHold:
    """A hold, lifted or not, lifted after it was placed."""
    placed = draw(aware_datetimes)
    lifted = draw(st.one_of(st.none(), durations.map(lambda d: placed + d)))
    return model.LegalHold(
        id=draw(recording_ids),
        scope=draw(hold_scopes),
        reason=draw(st.text(string.ascii_letters + " ", min_size=1, max_size=30).filter(str.strip)),
        placed_at=placed,
        lifted_at=lifted,
    )


segments = st.builds(
    lambda start, length, label: model.Segment(
        start=start / 1000, end=(start + length) / 1000, label=label
    ),
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.sampled_from(["", "agent", "customer", "overlap"]),
)


@st.composite
def consent_events(
    draw: st.DrawFn, roles: list[model.Role], duration: timedelta
) -> model.ConsentEvent:
    """A consent event by one of *roles*, inside a call of *duration*."""
    limit = int(duration.total_seconds() * 1000)
    offset = draw(
        st.one_of(st.none(), st.integers(0, limit).map(lambda ms: timedelta(milliseconds=ms)))
    )
    at = draw(aware_datetimes) if offset is None else draw(st.one_of(st.none(), aware_datetimes))
    return model.ConsentEvent(
        role=draw(st.sampled_from(roles)),
        purpose=draw(purpose_ids),
        state=draw(st.sampled_from(model.ConsentState)),
        method=draw(st.sampled_from(model.ConsentMethod)),
        offset=offset,
        at=at,
        notice_version=draw(st.one_of(st.none(), st.sampled_from(["v1", "2026-01"]))),
        evidence=draw(st.one_of(st.none(), st.just("ivr:log:42"))),
        conditional_service=draw(st.booleans()),
    )


@st.composite
def hold_spans(draw: st.DrawFn, duration: timedelta) -> tuple[model.Segment, ...]:
    """Up to two spans inside a call of *duration* (whole milliseconds)."""
    limit = int(duration.total_seconds() * 1000)
    spans = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, limit))
        end = draw(st.integers(start, limit))
        spans.append(model.Segment(start=start / 1000, end=end / 1000, label="hold"))
    return tuple(spans)


@st.composite
def recordings(draw: st.DrawFn) -> model.Recording:
    """A valid recording: an agent and a customer at least, consents by its parties."""
    agent = draw(
        parties.map(lambda p: model.Party(role=model.Role.AGENT, jurisdiction=p.jurisdiction))
    )
    customer = draw(
        parties.filter(lambda p: p.role is model.Role.CUSTOMER)
        | parties.map(
            lambda p: model.Party(
                role=model.Role.CUSTOMER, jurisdiction=p.jurisdiction, subjects=p.subjects
            )
        )
    )
    others = draw(st.lists(parties, max_size=2))
    all_parties = (agent, customer, *others)
    duration = draw(durations)
    roles = sorted({p.role for p in all_parties}, key=lambda r: r.value)
    return model.Recording(
        id=draw(recording_ids),
        started_at=draw(aware_datetimes),
        duration=duration,
        direction=draw(st.sampled_from(model.Direction)),
        parties=all_parties,
        layout=draw(st.one_of(st.none(), layouts)),
        sample_rate=draw(st.one_of(st.none(), st.sampled_from([8000, 16000, 44100]))),
        purposes=tuple(draw(st.lists(purpose_ids, unique=True, max_size=3))),
        consents=tuple(draw(st.lists(consent_events(roles, duration), max_size=4))),
        medium=draw(st.sampled_from(model.Medium)),
        telemarketing=draw(st.booleans()),
        tags=draw(st.frozensets(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), max_size=3)),
        source=draw(st.one_of(st.none(), st.just("file:///calls/1.wav"))),
        on_hold=draw(hold_spans(duration)),
    )


#: Every model type with a strategy for it (for round-trip tests).
ALL_MODELS = {
    model.SubjectRef: subject_refs,
    model.Purpose: purposes,
    model.Party: parties,
    model.ChannelLayout: layouts,
    model.Recording: recordings(),
    model.RetentionRule: retention_rules,
    model.HoldScope: hold_scopes,
    model.LegalHold: legal_holds(),
    model.Segment: segments,
    model.ConsentEvent: consent_events(list(model.Role), timedelta(hours=1)),
}


# --------------------------------------------------------------------------- TOML documents
# TOML-like values (strings, integers, floats, booleans, lists and tables), and valid documents
# with a few of their values replaced by such values, keys removed or keys added: the policy
# and jurisdiction-pack parser fuzzers.

#: Words and keys the policy and pack parsers know.
WORDS = [
    "one_party", "all_party", "implied", "no", "gdpr", "none", "phone", "video", "consent",
    "contract", "legitimate_interests", "a", "6 months", "0 days", "granted", "refused",
    "withdrawn", "main", "v1", "1", "*", "XA", "XB", "EU", "US", "", " ", "parent", "verified",
    "sources", "label", "purpose", "purposes", "state", "digits", "notice",
]  # fmt: skip
toml_texts = st.one_of(
    st.sampled_from(WORDS),
    purpose_ids,
    jurisdictions,
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=8),
)
toml_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), toml_texts
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_texts, inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path of every table key and list item inside *value*, outermost first."""
    if isinstance(value, dict):
        items: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    return [p for key, item in items for p in [(*path, key), *_paths(item, (*path, key))]]


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """*base* with one to three changes anywhere in it: a value replaced by any TOML value, a
    key or list item removed, or a key or list item added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        *outer, last = draw(st.sampled_from(paths))
        container: Any = doc
        for step in outer:
            container = container[step]
        change = draw(st.sampled_from(["replace", "remove", "add"]))
        if change == "replace":
            container[last] = draw(toml_values)
        elif change == "remove":
            del container[last]
        elif isinstance(container, dict):
            container[draw(toml_texts)] = draw(toml_values)
        else:
            container.insert(int(last), draw(toml_values))
    return doc


def toml_documents(base: str) -> st.SearchStrategy[dict[str, Any]]:
    """The TOML document *base* with a few changes (:func:`mutated`), or any table at all."""
    return mutated(tomllib.loads(base)) | st.dictionaries(toml_texts, toml_values, max_size=4)
