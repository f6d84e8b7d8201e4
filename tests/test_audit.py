"""The audit log: chain, signatures, signed head, checkpoints, sinks, locking, CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import re
import tempfile
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voicepriv.audit import (
    GENESIS,
    AuditLog,
    EventType,
    head_path,
    load_sinks,
    read_events,
    verify_log,
)
from voicepriv.cli import main
from voicepriv.errors import AuditError, AuditIntegrityError, ConfigError
from voicepriv.plugins import get_plugin_manager, hookimpl
from voicepriv.vault.catalog import format_time


class Signer:
    """An Ed25519 signer standing in for a key provider."""

    def __init__(self, seed: bytes = b"\x07" * 32) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify_key(self) -> bytes:
        return self._key.public_key().public_bytes_raw()


class ListSink:
    """Collects every event it is given."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def emit(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)


SIGNER = Signer()
KEY = SIGNER.verify_key()


def _event_data(i: int) -> dict[str, Any]:
    return {"recording": f"rec-{i}", "principal": "agent-7", "purpose": "quality_assurance"}


def _write_log(folder: Path, count: int, name: str = "audit.jsonl") -> Path:
    log = AuditLog(folder / name, signer=SIGNER, sinks=[])
    kinds = list(EventType)
    for i in range(count):
        log.append(kinds[i % len(kinds)], _event_data(i))
    return log.path


# Logs of 1..8 events, built once; a forged log signed with the same key for insertions.
_LOGS: dict[int, tuple[list[bytes], bytes]] = {}
_OTHER: list[bytes] = []


def _log_lines(count: int) -> tuple[list[bytes], bytes]:
    if count not in _LOGS:
        with tempfile.TemporaryDirectory() as folder:
            path = _write_log(Path(folder), count)
            _LOGS[count] = (path.read_bytes().splitlines(), head_path(path).read_bytes())
    return _LOGS[count]


def _other_lines() -> list[bytes]:
    if not _OTHER:
        with tempfile.TemporaryDirectory() as folder:
            log = AuditLog(Path(folder) / "other.jsonl", signer=SIGNER, sinks=[])
            for i in range(9):
                log.append(EventType.EXPORT, {"recording": f"other-{i}"})
            _OTHER.extend(log.path.read_bytes().splitlines())
    return _OTHER


def _verify_lines(lines: list[bytes], head: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        head_path(path).write_bytes(head)
        verify_log(path, KEY)


# --------------------------------------------------------------------------- basics


def test_appended_events_chain_sign_and_verify(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 5)
    events = list(read_events(path))
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    assert events[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(events))
    report = verify_log(path, KEY)
    assert (report.count, report.head, report.anchored) == (5, events[-1].hash, True)
    head = json.loads(head_path(path).read_text())
    assert (head["count"], head["head"]) == (5, events[-1].hash)


def test_empty_log_verifies(tmp_path: Path) -> None:
    report = verify_log(tmp_path / "none.jsonl", KEY)
    assert (report.count, report.head) == (0, GENESIS)


def test_wrong_key_fails_at_first_event(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 3)
    with pytest.raises(AuditIntegrityError, match="signature") as info:
        verify_log(path, Signer(b"\x01" * 32).verify_key())
    assert info.value.index == 0


def test_event_time_and_types(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[])
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = log.append("access_denied", {"recording": "r1", "at": at}, at=at)
    assert event.type is EventType.ACCESS_DENIED
    assert event.time == at.isoformat()
    assert event.data["at"] == at.isoformat()
    with pytest.raises(ConfigError, match="'nope' is unknown"):
        log.append("nope", {})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"subject": "jane@example.com"}, "no spaces, no '@'"),
        ({"subject": "+4512345678"}, "phone number"),
        ({"reason": "00447700900123"}, "phone number"),
        ({"reason": "+44-7700-900123"}, "phone number"),
        ({"reason": "+44.7700.900123"}, "phone number"),
        ({"reason": "tel:+447700900123"}, "phone number"),
        ({"reason": "TEL:+44-7700-900123"}, "phone number"),
        ({"reason": "07700900123"}, "11 digits in a row"),
        ({"reason": "0770-90-0123"}, "10 digits in a row"),
        ({"caller": ["ok", "cust-07700900123"]}, r"caller\[1\]: holds 11 digits"),
        ({"removed": [{"note": "(0)7700.900123"}]}, "no spaces"),  # '(' is no id character
        # Id fields take long numbers, but never an unmistakable phone spelling.
        ({"recording": "00447700900123"}, "phone number"),
        ({"recordings": ["r1", "tel:+447700900123"]}, r"recordings\[1\]: looks like a phone"),
        ({"note": "Jane Doe called"}, "no spaces"),
        ({"Bad Key": "x"}, "lower_snake_case"),
        ({"ids": [{"deep": [[[["x"]]]]}]}, "nested"),
        ({"value": float("nan")}, "finite"),
        ({"obj": object()}, "got object"),
    ],
)
def test_clear_personal_data_is_refused(tmp_path: Path, data: dict[str, Any], problem: str) -> None:
    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[])
    with pytest.raises(ConfigError, match=problem):
        log.append(EventType.ERASURE, data)
    assert not log.path.exists() or log.path.read_bytes() == b""


def test_ids_hashes_uuids_and_times_pass_the_phone_check(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[])
    data = {
        # Id fields: recording, artifact, request, key, hold and principal ids, tags.
        "recording": "call-20260302-000123",
        "recordings": ["1709370000.123", "0012345"],
        "artifact": "a-" + "1234567890" * 3 + "ab",
        "request": "req-12345678901234567890123456789012",
        "key": "mk-1234567890123456",
        "principal": "E12345678",
        "tags": ["case-2026-0012345"],
        "hold": "H-2026-0012345",
        # The policy's purpose ids (lower_snake_case, may name a campaign by number).
        "purpose": "campaign_2026001",
        "purposes": ["campaign_2026001", "quality_assurance"],
        "ended": ["campaign_2026001"],
        # Anywhere: hex digests (with a letter), UUIDs, ISO 8601 times, codes, numbers.
        "decision_sha256": "0123456789" * 6 + "abcd",
        "subjects": ["9876543210" * 6 + "ef01"],
        "uuid": "12345678-1234-5678-1234-567812345678",
        "delete_after": "2026-12-23T12:00:00.000000Z",
        "until": "2026-12-23T12:00:00.123456+05:30",
        "day": "2026-12-23",
        "voiceprint": "voiceprint.agent-7.20260302T090000.ab12cd",
        "jurisdictions": ["US-NY", "DK"],
        "size": 123456789012,
        "offset_s": 1234567.5,
        "short": "123456",
    }
    event = log.append(EventType.ARTIFACT_STORED, data)
    assert event.data["recording"] == "call-20260302-000123"
    assert verify_log(log.path, KEY).count == 1


@given(
    uid=st.uuids(),
    blob=st.binary(),
    when=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
    ),
)
@settings(max_examples=100, deadline=None)
def test_digests_uuids_and_times_always_pass(uid: uuid.UUID, blob: bytes, when: datetime) -> None:
    data = {
        "uuid": str(uid),
        "uuid_hex": uid.hex,
        "req": f"req-{uid.hex}",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "blake2": hashlib.blake2b(blob, digest_size=16).hexdigest(),
        "stamp": format_time(when),
        "iso": when.isoformat(),
        "iso_utc": when.astimezone(UTC).isoformat(),
    }
    with tempfile.TemporaryDirectory() as folder:
        log = AuditLog(Path(folder) / "a.jsonl", signer=SIGNER, sinks=[])
        assert dict(log.append(EventType.EXPORT, data).data) == data


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_TYPES = [
    t
    for t in vars(phonenumbers.PhoneNumberType).values()
    if isinstance(t, int) and t != phonenumbers.PhoneNumberType.UNKNOWN
]
_FORMATS = {
    "e164": phonenumbers.PhoneNumberFormat.E164,
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
    "rfc3966": phonenumbers.PhoneNumberFormat.RFC3966,
}


@st.composite
def _phone_spellings(draw: st.DrawFn) -> tuple[str, bool]:
    """A possible phone number of any region and type, with random trailing digits, written
    in one of phonenumbers' formats (or as dialled from another region), spaces replaced by
    one of the separators people use; and whether it is written with ``+``, ``00`` and the
    country code, or as a ``tel:`` URI."""
    region = draw(st.sampled_from(_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES)))
    assume(example is not None)
    national = str(example.national_number)
    keep = draw(st.integers(min(3, len(national)), len(national)))
    tail = draw(st.text("0123456789", min_size=len(national) - keep, max_size=len(national) - keep))
    number = phonenumbers.parse(f"+{example.country_code}{national[:keep]}{tail}", None)
    assume(phonenumbers.is_possible_number(number))
    style = draw(st.sampled_from([*_FORMATS, "abroad"]))
    if style == "abroad":
        text = phonenumbers.format_out_of_country_calling_number(
            number, draw(st.sampled_from(_REGIONS))
        )
    else:
        text = phonenumbers.format_number(number, _FORMATS[style])
    if style == "national" or (style == "abroad" and not text.startswith(("+", "00"))):
        # A national number without its region is only recognisable by its length.
        assume(sum(c.isdigit() for c in text) >= 7)
    compact = "".join(c for c in text if c.isdigit() or c == "+")
    prefixes = {f"+{number.country_code}", f"00{number.country_code}"}
    significant = phonenumbers.national_significant_number(number)
    international = style == "rfc3966" or (
        compact.endswith(significant) and compact[: -len(significant)] in prefixes
    )
    return text.replace(" ", draw(st.sampled_from([" ", "-", ".", ""]))), international


@given(spelling=_phone_spellings())
@settings(max_examples=200, deadline=None)
def test_any_phone_number_in_any_spelling_is_refused(spelling: tuple[str, bool]) -> None:
    text, international = spelling
    with tempfile.TemporaryDirectory() as folder:
        log = AuditLog(Path(folder) / "a.jsonl", signer=SIGNER, sinks=[])
        with pytest.raises(ConfigError, match=r"^audit data reason: "):
            log.append(EventType.ACCESS_DENIED, {"reason": text})
        with pytest.raises(ConfigError, match=r"^audit data caller\[0\]: "):
            log.append(EventType.ACCESS_DENIED, {"caller": [f"id-{text}"]})
        if international:  # refused even where long numbers are ids
            with pytest.raises(ConfigError, match=r"^audit data recording: "):
                log.append(EventType.ACCESS_DENIED, {"recording": text})
        assert not log.path.exists()


def test_event_times_are_written_in_utc(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[])
    new_york = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    event = log.append(EventType.HOLD_PLACED, {"hold": "H-1", "placed_at": new_york}, at=new_york)
    assert event.time == "2026-03-02T14:00:00+00:00"
    assert event.data["placed_at"] == "2026-03-02T14:00:00+00:00"
    assert log.append(EventType.HOLD_LIFTED, {"hold": "H-1"}).time.endswith("+00:00")
    for bad in (datetime(2026, 3, 2, 9, 0), "2026-03-02T09:00:00+00:00"):
        with pytest.raises(
            ConfigError, match=r"^AuditLog.append at: expected a datetime with a time zone"
        ):
            log.append(EventType.HOLD_LIFTED, {"hold": "H-1"}, at=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):  # ConfigError is a ValueError too
        log.append(EventType.HOLD_LIFTED, {"hold": "H-1"}, at=datetime(2026, 3, 2))
    assert [e.seq for e in log.events()] == [0, 1]
    assert verify_log(log.path, KEY).count == 2


@given(
    at=st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
    )
)
@settings(max_examples=40, deadline=None)
def test_any_aware_time_is_written_as_utc_and_round_trips(at: datetime) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = AuditLog(Path(folder) / "a.jsonl", signer=SIGNER, sinks=[])
        event = log.append(EventType.ACCESS_GRANTED, {"recording": "r1", "expires_at": at}, at=at)
        (written,) = log.events()
        for text in (written.time, written.data["expires_at"]):
            parsed = datetime.fromisoformat(text)
            assert parsed.utcoffset() == timedelta(0) and text.endswith("+00:00")
            # The same instant (``==`` across zones is False for a time in a fold, PEP 495).
            assert parsed == at.astimezone(UTC) and parsed.timestamp() == at.timestamp()
        assert written == event


def test_tail_returns_the_last_events(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 6)
    log = AuditLog(path, signer=SIGNER, sinks=[])
    assert [e.seq for e in log.tail(2)] == [4, 5]
    assert log.tail(0) == []


# --------------------------------------------------------------------------- tampering


def _mutations(draw: st.DrawFn, count: int) -> tuple[str, list[bytes], int]:
    """One single-event mutation of a log of *count* events: (name, lines, position touched)."""
    lines, _ = _log_lines(count)
    lines = list(lines)
    kinds = ["edit_field", "flip_byte", "delete", "insert_copy", "insert_forged"]
    if count >= 2:
        kinds += ["swap", "move"]
    kind = draw(st.sampled_from(kinds))
    if kind == "edit_field":
        k = draw(st.integers(0, count - 1))
        obj = json.loads(lines[k])
        field = draw(st.sampled_from(["seq", "time", "type", "data", "prev", "hash", "sig"]))
        replacement = {
            "seq": obj["seq"] + draw(st.integers(1, 5)),
            "time": "2001-01-01T00:00:00+00:00",
            "type": "deletion" if obj["type"] != "deletion" else "export",
            "data": {**obj["data"], "recording": "rec-x"},
            "prev": "1" * 64,
            "hash": "2" * 64,
            "sig": obj["sig"][:-1] + ("0" if obj["sig"][-1] != "0" else "1"),
        }[field]
        obj[field] = replacement
        lines[k] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        return kind, lines, k
    if kind == "flip_byte":
        k = draw(st.integers(0, count - 1))
        position = draw(st.integers(0, len(lines[k]) - 1))
        byte = draw(st.integers(0x20, 0x7E).filter(lambda b: b != lines[k][position]))
        lines[k] = lines[k][:position] + bytes([byte]) + lines[k][position + 1 :]
        return kind, lines, k
    if kind == "delete":
        k = draw(st.integers(0, count - 1))
        del lines[k]
        return kind, lines, k
    if kind == "insert_copy":
        k = draw(st.integers(0, count))
        lines.insert(k, lines[draw(st.integers(0, count - 1))])
        return kind, lines, k
    if kind == "insert_forged":
        k = draw(st.integers(0, count))
        lines.insert(k, _other_lines()[draw(st.integers(0, 8))])
        return kind, lines, k
    i = draw(st.integers(0, count - 2))
    j = draw(st.integers(i + 1, count - 1))
    if kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
        return kind, lines, i
    source, target = draw(st.permutations([i, j]))
    lines.insert(target, lines.pop(source))
    return kind, lines, min(i, j)


@st.composite
def _tampered(draw: st.DrawFn, count: int) -> tuple[int, str, list[bytes], int]:
    return (count, *_mutations(draw, count))


@given(case=st.integers(1, 8).flatmap(_tampered))
def test_every_single_event_tampering_is_detected_at_its_index(
    case: tuple[int, str, list[bytes], int],
) -> None:
    count, kind, lines, _ = case
    original, head = _log_lines(count)
    # The first bad event is the first line that differs from the untouched log (inserting a
    # copy of an event right before itself is the same as inserting it right after).
    expected = next(
        (i for i, (a, b) in enumerate(zip(lines, original, strict=False)) if a != b),
        min(len(lines), len(original)),
    )
    with pytest.raises(AuditIntegrityError) as info:
        _verify_lines(lines, head)
    assert info.value.index == expected, (kind, str(info.value))


@pytest.mark.parametrize("count", [1, 4, 8])
def test_untouched_logs_verify(count: int) -> None:
    lines, head = _log_lines(count)
    _verify_lines(list(lines), head)


def test_cut_off_end_is_detected_by_the_signed_head(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 5)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))
    with pytest.raises(AuditIntegrityError, match="cut off") as info:
        verify_log(path, KEY)
    assert info.value.index == 3


def test_missing_or_forged_head_is_detected(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 3)
    original = head_path(path).read_bytes()
    head = json.loads(original)
    head["count"] = 2
    head_path(path).write_text(json.dumps(head))
    with pytest.raises(AuditIntegrityError, match="head's signature") as info:
        verify_log(path, KEY)
    assert info.value.index == 0
    head_path(path).unlink()
    with pytest.raises(AuditIntegrityError, match="missing") as info:
        verify_log(path, KEY)
    assert info.value.index == 3
    assert verify_log(path, KEY, require_head=False).anchored is False


def test_rollback_of_log_and_head_is_caught_by_an_external_checkpoint(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 3)
    old_log, old_head = path.read_bytes(), head_path(path).read_bytes()
    log = AuditLog(path, signer=SIGNER, sinks=[])
    log.append(EventType.DELETION, {"recording": "rec-9"})
    checkpoint = log.checkpoint()
    assert checkpoint.count == 4
    assert log.verify(checkpoint=checkpoint).checkpoint
    # The attacker restores both files as they were before the deletion was logged.
    path.write_bytes(old_log)
    head_path(path).write_bytes(old_head)
    assert verify_log(path, KEY).count == 3  # consistent on its own ...
    with pytest.raises(AuditIntegrityError, match="checkpoint") as info:
        verify_log(path, KEY, checkpoint=checkpoint)  # ... but not with the checkpoint
    assert info.value.index == 3


def test_append_refuses_a_broken_log(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 4)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    log = AuditLog(path, signer=SIGNER, sinks=[])
    with pytest.raises(AuditIntegrityError, match="head says 4"):
        log.append(EventType.EXPORT, {"recording": "r"})
    path.write_bytes(b"".join(lines) + b'{"seq":')
    with pytest.raises(AuditIntegrityError, match="incomplete"):
        log.append(EventType.EXPORT, {"recording": "r"})


def test_append_re_anchors_after_an_interrupted_append(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 2)
    stale_head = head_path(path).read_bytes()
    log = AuditLog(path, signer=SIGNER, sinks=[])
    log.append(EventType.EXPORT, {"recording": "r"})
    head_path(path).write_bytes(stale_head)  # as if the process died before writing the head
    with pytest.raises(AuditIntegrityError, match="not covered") as info:
        verify_log(path, KEY)
    assert info.value.index == 2
    log.append(EventType.EXPORT, {"recording": "r2"})
    assert verify_log(path, KEY).count == 4


# --------------------------------------------------------------------------- sinks


def test_every_event_goes_to_every_sink(tmp_path: Path) -> None:
    first, second = ListSink(), ListSink()
    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[first, second])
    events = [log.append(EventType.ACCESS_GRANTED, _event_data(i)) for i in range(3)]
    assert first.events == second.events == [e.as_json() for e in events]


def test_sinks_come_from_the_plugin_hook(tmp_path: Path) -> None:
    sink = ListSink()

    class Plugin:
        @hookimpl
        def voicepriv_audit_sinks(self, options: Mapping[str, Any]) -> list[ListSink]:
            assert options == {"siem": "on"}
            return [sink]

    manager = get_plugin_manager(autoload=False)
    plugin = Plugin()
    manager.register(plugin)
    try:
        sinks = load_sinks({"siem": "on"}, manager)
        log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=sinks)
        event = log.append(EventType.HOLD_PLACED, {"hold": "H-1"})
    finally:
        manager.unregister(plugin)
    assert sink.events == [event.as_json()]


def test_a_failing_sink_fails_the_append_after_the_event_is_logged(tmp_path: Path) -> None:
    class Broken:
        def emit(self, event: Mapping[str, Any]) -> None:
            raise RuntimeError("SIEM unreachable")

    log = AuditLog(tmp_path / "a.jsonl", signer=SIGNER, sinks=[Broken()])
    with pytest.raises(RuntimeError, match="SIEM"):
        log.append(EventType.EXPORT, {"recording": "r"})
    assert verify_log(log.path, KEY).count == 1


# --------------------------------------------------------------------------- concurrency


def _append_many(path: str, worker: int, count: int) -> None:
    log = AuditLog(path, signer=SIGNER, sinks=[])
    for i in range(count):
        log.append(EventType.ACCESS_GRANTED, {"worker": worker, "i": i})


def test_concurrent_appends_from_processes_keep_the_chain(tmp_path: Path) -> None:
    path = str(tmp_path / "a.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(path, w, 15)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    report = verify_log(path, KEY)
    assert report.count == 60
    seen = {(e.data["worker"], e.data["i"]) for e in read_events(path)}
    assert seen == {(w, i) for w in range(4) for i in range(15)}


# --------------------------------------------------------------------------- CLI


def test_cli_verify_and_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_log(tmp_path, 4)
    key_file = tmp_path / "audit.pub"
    key_file.write_text(KEY.hex())
    assert main(["audit", "verify", str(path), "--public-key", str(key_file)]) == 0
    assert "OK: 4 events" in capsys.readouterr().out
    assert main(["audit", "tail", str(path), "-n", "2"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in shown] == [2, 3]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2] + lines[1] + lines[3])
    assert main(["audit", "verify", str(path), "--public-key", KEY.hex()]) == 1
    assert "FAILED at event 1" in capsys.readouterr().out


def test_cli_checkpoint_and_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_log(tmp_path, 2)
    checkpoint = AuditLog(path, signer=SIGNER, sinks=[]).checkpoint()
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(checkpoint.as_json()))
    args = ["audit", "verify", str(path), "--public-key", KEY.hex(), "--checkpoint", str(saved)]
    assert main(args) == 0
    assert "extends the checkpoint" in capsys.readouterr().out
    assert main(["audit", "verify", str(path), "--public-key", "zz"]) == 2
    assert "expected 64 hex digits" in capsys.readouterr().err


def test_unreadable_head_is_an_audit_error(tmp_path: Path) -> None:
    path = _write_log(tmp_path, 1)
    head_path(path).write_text("not json")
    with pytest.raises(AuditError, match="not JSON"):
        verify_log(path, KEY)


def test_signed_by_the_local_key_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.backends.keys import LocalKeyProvider

    key_file = tmp_path / "master.key"
    provider = LocalKeyProvider(key_file, create=True)
    log = AuditLog(tmp_path / "a.jsonl", signer=provider, sinks=[])
    log.append(EventType.KEY_ROTATED, {"key": provider.rotate()})
    assert verify_log(log.path, provider.verify_key()).count == 1
    args = ["audit", "verify", str(log.path), "--key-provider", "local"]
    assert main([*args, "--key-option", f"path={key_file}"]) == 0
    assert "OK: 1 events" in capsys.readouterr().out
    assert main([*args, "--key-option", "nonsense"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_check_writable_passes_and_changes_nothing(tmp_path: Path) -> None:
    fresh = AuditLog(tmp_path / "new" / "audit.jsonl", signer=SIGNER, sinks=[])
    fresh.check_writable()
    assert not fresh.path.exists()  # the log itself is created by the first append only
    path = _write_log(tmp_path, 3)
    before = path.read_bytes(), head_path(path).read_bytes()
    AuditLog(path, signer=SIGNER, sinks=[]).check_writable()
    assert (path.read_bytes(), head_path(path).read_bytes()) == before


def test_check_writable_refuses_what_append_would_refuse(tmp_path: Path) -> None:
    folder = tmp_path / "auditdir"
    folder.mkdir()
    with pytest.raises(AuditError, match=re.escape(f"{folder}: cannot open the audit log")):
        AuditLog(folder, signer=SIGNER, sinks=[]).check_writable()
    (tmp_path / "file").write_text("x")
    with pytest.raises(AuditError, match="cannot create the audit log's folder"):
        AuditLog(tmp_path / "file" / "audit.jsonl", signer=SIGNER, sinks=[]).check_writable()
    path = _write_log(tmp_path, 2)
    with path.open("ab") as handle:
        handle.write(b'{"cut":')
    with pytest.raises(AuditIntegrityError, match="last line is incomplete"):
        AuditLog(path, signer=SIGNER, sinks=[]).check_writable()
    other = _write_log(tmp_path, 2, name="other.jsonl")
    other.unlink()  # the head is left: events were cut off
    with pytest.raises(AuditIntegrityError, match="missing but its head says 2 events"):
        AuditLog(other, signer=SIGNER, sinks=[]).check_writable()


@pytest.mark.parametrize("command", ["verify", "tail"])
def test_cli_refuses_a_log_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "audti.jsonl"
    key = [] if command == "tail" else ["--public-key", KEY.hex()]
    assert main(["audit", command, str(missing), *key]) == 2
    captured = capsys.readouterr()
    assert f"audit log {missing}: no such file" in captured.err
    assert "OK" not in captured.out
