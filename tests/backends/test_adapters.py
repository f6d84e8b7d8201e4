"""The built-in generic metadata adapters (JSON and CSV), found through the plugin manager."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.errors import ConfigError, ModelError
from voicepriv.interfaces import IntakeRecord, IvrInput, MetadataAdapter
from voicepriv.model import (
    ConsentMethod,
    ConsentState,
    Direction,
    LayoutKind,
    Role,
    SubjectKind,
)
from voicepriv.plugins import backend, backend_names, get_plugin_manager

CALL: dict[str, Any] = {
    "call_id": "c-1001",
    "started_at": "2026-03-02T09:15:00+01:00",
    "duration_s": 184.2,
    "direction": "inbound",
    "channels": ["agent", "customer"],
    "sample_rate": 8000,
    "audio": "audio/c-1001.wav",
    "purposes": ["quality_assurance"],
    "tags": ["support"],
    "parties": [
        {"role": "agent", "id": "agent-17", "jurisdiction": "DK"},
        {
            "role": "customer",
            "jurisdiction": "dk",
            "phone": "+45 32 12 34 56",
            "customer_id": "CUST-0042",
            "email": "Kunde@Example.dk",
        },
    ],
    "ivr": [{"prompt": "recording_consent", "digit": "1", "offset_s": 6.5}],
    "consents": [
        {
            "role": "customer",
            "purpose": "dispute_resolution",
            "state": "refused",
            "method": "verbal",
            "offset_s": 20,
        }
    ],
}

CSV_TEXT = (
    "call_id,started_at,duration_s,direction,channels,sample_rate,audio,purposes,tags,"
    "agent_id,agent_jurisdiction,customer_id,customer_jurisdiction,customer_phone,"
    "customer_email,ivr,consents\n"
    "c-1001,2026-03-02T09:15:00+01:00,184.2,inbound,agent|customer,8000,audio/c-1001.wav,"
    "quality_assurance,support,agent-17,DK,CUST-0042,DK,+4532123456,kunde@example.dk,"
    "recording_consent:1@6.5,customer:dispute_resolution:refused:verbal@20\n"
    "c-1002,2026-03-02T10:00:00Z,60,outbound,mono,,audio/c-1002.wav,,,agent-3,US-NY,,US-CA,"
    ",,,\n"
)


@pytest.fixture(scope="module")
def manager() -> Any:
    return get_plugin_manager(autoload=False)


def _adapter(manager: Any, name: str) -> MetadataAdapter:
    found = backend(manager, "metadata_adapter", name)
    assert isinstance(found, MetadataAdapter)
    return found


def _check_first(record: IntakeRecord) -> None:
    rec = record.recording
    assert rec.id == "c-1001"
    assert rec.started_at.utcoffset() == timedelta(hours=1)
    assert rec.duration == timedelta(seconds=184.2)
    assert rec.direction is Direction.INBOUND
    assert rec.layout is not None and rec.layout.roles == (Role.AGENT, Role.CUSTOMER)
    assert rec.sample_rate == 8000
    assert rec.purposes == ("quality_assurance",)
    assert rec.tags == frozenset({"support"})
    customer = rec.parties_with(Role.CUSTOMER)[0]
    assert customer.jurisdiction == "DK"
    subjects = {s.kind: s.value for s in customer.subjects}
    assert subjects == {
        SubjectKind.PHONE: "+4532123456",
        SubjectKind.CUSTOMER_ID: "CUST-0042",
        SubjectKind.EMAIL: "kunde@example.dk",
    }
    assert rec.parties_with(Role.AGENT)[0].id == "agent-17"
    assert record.audio == "audio/c-1001.wav" == rec.source
    assert record.ivr == (IvrInput(prompt="recording_consent", digit="1", offset_s=6.5),)
    (event,) = rec.consents
    assert event.purpose == "dispute_resolution"
    assert event.state is ConsentState.REFUSED
    assert event.method is ConsentMethod.VERBAL
    assert event.offset == timedelta(seconds=20)


def test_both_adapters_are_listed_and_found(manager: Any) -> None:
    names = backend_names(manager, "metadata_adapter")
    assert {"generic-json", "generic-csv"} <= set(names)
    assert _adapter(manager, "generic-json").name == "generic-json"
    assert _adapter(manager, "generic-csv").name == "generic-csv"


def test_unknown_options_are_refused(manager: Any) -> None:
    with pytest.raises(ConfigError, match="takes no options"):
        backend(manager, "metadata_adapter", "generic-json", {"dialect": "x"})


@pytest.mark.parametrize(
    "document",
    [
        {"format": "voicepriv-generic/1", "calls": [CALL]},
        [CALL],
        CALL,
    ],
    ids=["envelope", "list", "single"],
)
def test_json_shapes(manager: Any, document: object) -> None:
    records = _adapter(manager, "generic-json").parse(
        json.dumps(document).encode(), source="calls.json"
    )
    assert len(records) == 1
    _check_first(records[0])


def test_csv_rows(manager: Any) -> None:
    records = _adapter(manager, "generic-csv").parse(CSV_TEXT.encode(), source="calls.csv")
    assert len(records) == 2
    _check_first(records[0])
    mono = records[1].recording
    assert mono.layout is not None and mono.layout.kind is LayoutKind.MONO
    assert mono.direction is Direction.OUTBOUND
    assert mono.sample_rate is None
    assert records[1].ivr == ()
    assert mono.parties_with(Role.CUSTOMER)[0].subjects == ()


def test_json_errors_name_file_record_and_field_all_at_once(manager: Any) -> None:
    bad_phone = json.loads(json.dumps(CALL))
    bad_phone["parties"][1]["phone"] = "not a number"
    bad_time = dict(CALL, call_id="c-2", started_at="2026-03-02T09:15:00")
    bad_digit = dict(CALL, call_id="c-3", ivr=[{"prompt": "p", "digit": "12", "offset_s": 1}])
    unknown = dict(CALL, call_id="c-4", agent_name="Ann")
    document = {"format": "voicepriv-generic/1", "calls": [bad_phone, bad_time, bad_digit, unknown]}
    with pytest.raises(ModelError) as info:
        _adapter(manager, "generic-json").parse(json.dumps(document).encode(), source="d.json")
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("d.json record 0 (call 'c-1001') field parties[1].phone:")
    assert lines[1].startswith("d.json record 1 (call 'c-2') field started_at:")
    assert "with a zone" in lines[1]
    assert lines[2].startswith("d.json record 2 (call 'c-3') field ivr[0].digit:")
    assert "unknown field(s) agent_name" in lines[3]


def test_json_model_rule_violations_are_reported(manager: Any) -> None:
    late = dict(
        CALL,
        consents=[
            {
                "role": "customer",
                "purpose": "quality_assurance",
                "state": "granted",
                "method": "verbal",
                "offset_s": 999,
            }
        ],
    )
    with pytest.raises(ModelError, match=r"x\.json record 0 \(call 'c-1001'\).*after the end"):
        _adapter(manager, "generic-json").parse(json.dumps(late).encode(), source="x.json")


def test_json_wrong_format_and_not_json(manager: Any) -> None:
    adapter = _adapter(manager, "generic-json")
    with pytest.raises(ModelError, match=r"a\.json field format"):
        adapter.parse(json.dumps({"format": "other/9", "calls": []}).encode(), source="a.json")
    with pytest.raises(ModelError, match=r"b\.json: not JSON"):
        adapter.parse(b"{nope", source="b.json")


def test_csv_errors(manager: Any) -> None:
    adapter = _adapter(manager, "generic-csv")
    with pytest.raises(ModelError, match=r"h\.csv header: missing column"):
        adapter.parse(b"call_id,audio\nx,y\n", source="h.csv")
    with pytest.raises(ModelError, match=r"h\.csv header: unknown column"):
        adapter.parse(
            CSV_TEXT.replace("consents\n", "consents,extra\n", 1).encode(), source="h.csv"
        )
    broken = CSV_TEXT.replace("recording_consent:1@6.5", "recording_consent-1")
    with pytest.raises(ModelError, match=r"r.csv record 0 \(call 'c-1001'\) field ivr:"):
        adapter.parse(broken.encode(), source="r.csv")
    bad_direction = CSV_TEXT.replace(",outbound,", ",sideways,")
    with pytest.raises(ModelError, match=r"record 1 \(call 'c-1002'\).*sideways"):
        adapter.parse(bad_direction.encode(), source="r.csv")


@given(
    duration=st.floats(min_value=1.0, max_value=36_000.0, allow_nan=False),
    offsets=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=4),
    digits=st.lists(st.sampled_from("0123456789*#"), min_size=4, max_size=4),
)
def test_json_and_csv_agree(duration: float, offsets: list[float], digits: list[str]) -> None:
    """The same call written as JSON and as CSV parses to the same IntakeRecord."""
    manager = get_plugin_manager(autoload=False)
    ivr = [
        {"prompt": f"p{i}", "digit": digits[i], "offset_s": round(o * duration, 3)}
        for i, o in enumerate(offsets)
    ]
    call = dict(CALL, duration_s=duration, ivr=ivr, consents=[])
    cells = ";".join(f"{i['prompt']}:{i['digit']}@{i['offset_s']!r}" for i in ivr)
    row = (
        "call_id,started_at,duration_s,direction,channels,sample_rate,audio,purposes,tags,"
        "agent_id,agent_jurisdiction,customer_id,customer_jurisdiction,customer_phone,"
        "customer_email,ivr\n"
        f"c-1001,2026-03-02T09:15:00+01:00,{duration!r},inbound,agent|customer,8000,"
        f"audio/c-1001.wav,quality_assurance,support,agent-17,DK,CUST-0042,DK,+4532123456,"
        f"kunde@example.dk,{cells}\n"
    )
    (from_json,) = _adapter(manager, "generic-json").parse(json.dumps(call).encode(), source="j")
    (from_csv,) = _adapter(manager, "generic-csv").parse(row.encode(), source="c")
    assert from_json == from_csv


def test_json_hold_spans_reach_the_recording(manager: Any) -> None:
    call = {**CALL, "on_hold": [[30, 45.5]]}
    (record,) = _adapter(manager, "generic-json").parse(
        json.dumps(call).encode(), source="calls.json"
    )
    assert [(s.start, s.end) for s in record.recording.on_hold] == [(30.0, 45.5)]
    bad = {**CALL, "on_hold": [[30, 400]]}
    with pytest.raises(ModelError, match="on_hold"):
        _adapter(manager, "generic-json").parse(json.dumps(bad).encode(), source="calls.json")
