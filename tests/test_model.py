"""The core model: validation, normalisation and the versioned JSON round trip."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import ALL_MODELS, recordings
from voicepriv import model
from voicepriv.errors import ModelError
from voicepriv.model import (
    ChannelLayout,
    ConsentEvent,
    LegalHold,
    Party,
    Recording,
    Role,
    Segment,
    SubjectRef,
    from_json,
    to_json,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _recording(**changes: Any) -> Recording:
    values: dict[str, Any] = {
        "id": "call-1",
        "started_at": NOW,
        "duration": 120,
        "direction": "inbound",
        "parties": [
            Party(role="agent", jurisdiction="DK"),
            Party(role="customer", jurisdiction="DK"),
        ],
    }
    values.update(changes)
    return Recording(**values)


@pytest.mark.parametrize("kind", list(ALL_MODELS), ids=lambda k: k.__name__)
@given(data=st.data())
def test_json_round_trip_is_identity(kind: type[Any], data: st.DataObject) -> None:
    value = data.draw(ALL_MODELS[kind])
    assert from_json(kind, to_json(value)) == value


@given(recordings())
def test_json_envelope_is_versioned(recording: Recording) -> None:
    envelope = json.loads(to_json(recording))
    assert envelope["schema"] == model.SCHEMA_VERSION
    assert envelope["type"] == "Recording"


@given(recordings(), st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
def test_unknown_field_is_rejected_not_dropped(recording: Recording, field: str) -> None:
    envelope = json.loads(to_json(recording))
    if field in envelope["data"]:
        return
    envelope["data"][field] = 1
    with pytest.raises(ModelError, match=f"unknown field.*{field}"):
        from_json(Recording, json.dumps(envelope))


def test_newer_schema_version_is_rejected() -> None:
    envelope = json.loads(to_json(_recording()))
    envelope["schema"] = model.SCHEMA_VERSION + 1
    with pytest.raises(ModelError, match="schema version"):
        from_json(Recording, json.dumps(envelope))


def test_wrong_type_and_garbage_are_rejected() -> None:
    text = to_json(_recording())
    with pytest.raises(ModelError, match="expected type 'Party'"):
        from_json(Party, text)
    with pytest.raises(ModelError, match="not JSON"):
        from_json(Recording, "{nope")
    with pytest.raises(ModelError, match="exactly"):
        from_json(Recording, "[1, 2]")


def test_all_field_errors_are_reported_at_once() -> None:
    envelope = json.loads(to_json(_recording()))
    envelope["data"]["direction"] = "sideways"
    envelope["data"]["medium"] = "pigeon"
    with pytest.raises(ModelError) as caught:
        from_json(Recording, json.dumps(envelope))
    assert "direction" in str(caught.value) and "medium" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+1 (415) 555-2671", "+14155552671"), ("+45 33 12 34 56", "+4533123456")],
)
def test_phone_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert SubjectRef(kind="phone", value=raw).value == expected


def test_subject_values_are_normalised_and_redacted_in_repr() -> None:
    email = SubjectRef(kind="email", value="  Jane.Doe@Example.COM ")
    assert email.value == "jane.doe@example.com"
    assert email.canonical == "email:jane.doe@example.com"
    assert "jane" not in repr(email)
    assert "+1415" not in repr(
        Party(role="customer", subjects=[SubjectRef(kind="phone", value="+14155552671")])
    )


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: SubjectRef(kind="phone", value="5552671"), "SubjectRef.value"),
        (lambda: SubjectRef(kind="email", value="not-an-email"), "SubjectRef.value"),
        (lambda: SubjectRef(kind="customer_id", value="   "), "SubjectRef.value"),
        (lambda: SubjectRef(kind="fax", value="1"), "SubjectKind"),
        (lambda: Party(role="boss"), "Role"),
        (lambda: Party(role="agent", jurisdiction="California"), "Party.jurisdiction"),
        (lambda: Party(role="agent", minor="no"), "Party.minor"),
        (lambda: model.Purpose(id="Quality Assurance"), "Purpose.id"),
        (lambda: ChannelLayout(kind="stereo", roles=("agent", "agent")), "ChannelLayout.roles"),
        (lambda: ChannelLayout(kind="mono", roles=("agent",)), "ChannelLayout.roles"),
        (
            lambda: ConsentEvent(
                role="customer", purpose="training", state="granted", method="dtmf"
            ),
            "ConsentEvent",
        ),
        (
            lambda: ConsentEvent(
                role="customer", purpose="training", state="maybe", method="dtmf", offset=1
            ),
            "ConsentState",
        ),
        (
            lambda: ConsentEvent(
                role="customer", purpose="training", state="granted", method="dtmf", offset=-1
            ),
            "ConsentEvent.offset",
        ),
        (lambda: _recording(id="../etc/passwd"), "Recording.id"),
        (lambda: _recording(started_at=datetime(2026, 1, 1)), "Recording.started_at"),
        (lambda: _recording(duration=0), "Recording.duration"),
        (lambda: _recording(duration=float("nan")), "duration"),
        (lambda: _recording(parties=[]), "Recording.parties"),
        (lambda: _recording(sample_rate=0), "Recording.sample_rate"),
        (lambda: _recording(purposes=["qa", "qa"]), "Recording.purposes"),
        (
            lambda: _recording(layout=ChannelLayout.stereo("agent", "supervisor")),
            "Recording.layout",
        ),
        (
            lambda: _recording(
                consents=[
                    ConsentEvent(
                        role="ivr", purpose="training", state="granted", method="dtmf", offset=1
                    )
                ]
            ),
            "Recording.consents[0].role",
        ),
        (
            lambda: _recording(
                consents=[
                    ConsentEvent(
                        role="customer",
                        purpose="training",
                        state="granted",
                        method="dtmf",
                        offset=500,
                    )
                ]
            ),
            "Recording.consents[0].offset",
        ),
        (lambda: model.RetentionRule(purpose="training", keep_for=-5), "RetentionRule.keep_for"),
        (lambda: LegalHold(id="h1", scope={}, reason=" ", placed_at=NOW), "LegalHold.reason"),
        (
            lambda: LegalHold(
                id="h1", scope={}, reason="court", placed_at=NOW, lifted_at=NOW - timedelta(days=1)
            ),
            "LegalHold.lifted_at",
        ),
        (lambda: model.HoldScope(subjects={"+4512345678"}), "HoldScope.subjects"),
        (lambda: Segment(start=2, end=1), "Segment.end"),
        (lambda: _recording(on_hold=[(100, 130)]), "Recording.on_hold[0]"),
        (lambda: _recording(on_hold=["later"]), "Recording.on_hold"),
        (lambda: Segment(start=-1, end=1), "Segment.start"),
    ],
)
def test_validators_reject_with_model_error_naming_the_field(factory: Any, field: str) -> None:
    with pytest.raises(ModelError, match=field.replace("[", r"\[").replace("]", r"\]")):
        factory()


@given(st.text(max_size=12).filter(lambda s: s.strip().upper() not in {"US", "DK"}))
def test_jurisdiction_validator_rejects_non_iso_codes(text: str) -> None:
    try:
        party = Party(role="agent", jurisdiction=text)
    except ModelError:
        return
    assert party.jurisdiction is not None
    assert model._JURISDICTION.fullmatch(party.jurisdiction)


def test_model_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Party(role="nobody")


def test_values_are_frozen_and_evolve() -> None:
    recording = _recording()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        recording.id = "other"  # type: ignore[misc]
    changed = attrs.evolve(recording, direction="outbound")
    assert changed.direction is model.Direction.OUTBOUND
    with pytest.raises(ModelError):
        attrs.evolve(recording, duration=-1)


def test_layout_helpers_and_recording_helpers() -> None:
    layout = ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT)
    assert layout.channel_of(Role.AGENT) == 1
    assert ChannelLayout.mono().channel_of(Role.AGENT) is None
    recording = _recording(layout=layout)
    assert recording.ended_at == NOW + timedelta(seconds=120)
    assert [p.role for p in recording.parties_with(Role.CUSTOMER)] == [Role.CUSTOMER]


def test_legal_hold_activity_window() -> None:
    hold = LegalHold(
        id="h1",
        scope={"recordings": {"call-1"}},
        reason="litigation",
        placed_at=NOW,
        lifted_at=NOW + timedelta(days=1),
    )
    assert hold.active(NOW)
    assert not hold.active(NOW + timedelta(days=2))
    assert not hold.active(NOW - timedelta(seconds=1))


@given(
    st.lists(st.builds(Segment, start=st.integers(0, 100), end=st.integers(100, 200)), min_size=2)
)
def test_segments_sort_by_start_then_end(items: list[Segment]) -> None:
    ordered = sorted(items)
    assert all((a.start, a.end) <= (b.start, b.end) for a, b in itertools.pairwise(ordered))


def test_legal_basis_cites_article() -> None:
    assert model.LegalBasis.LEGITIMATE_INTERESTS.article == "GDPR Art. 6(1)(f)"
    assert model.ConsentMethod.DTMF.is_act and not model.ConsentMethod.NOTICE_ONLY.is_act
