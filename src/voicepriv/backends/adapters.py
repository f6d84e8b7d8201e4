"""Built-in metadata adapters: the generic call-record layout, as JSON and as CSV.

Registered through the entry-point group ``voicepriv`` like any dialer vendor's adapter. Two
adapters, one layout (documented in ``docs/intake.md``):

``generic-json``
    A JSON object ``{"format": "voicepriv-generic/1", "calls": [...]}``, a list of calls, or one
    call object.
``generic-csv``
    One call per row; parties, IVR answers and consent events are packed into columns.

Both return :class:`~voicepriv.interfaces.IntakeRecord` values. Every problem in a file is
reported at once, each line naming the file, the record (index and call id) and the field:
``calls.json record 2 (call 'c-17') field parties[1].phone: ...``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from voicepriv.errors import ConfigError, ModelError
from voicepriv.interfaces import IntakeRecord, IvrInput, MetadataAdapter
from voicepriv.model import (
    ChannelLayout,
    ConsentEvent,
    Party,
    Recording,
    SubjectKind,
    SubjectRef,
)
from voicepriv.plugins import hookimpl

__all__ = [
    "CSV_COLUMNS",
    "GENERIC_FORMAT",
    "GenericCsvAdapter",
    "GenericJsonAdapter",
    "parse_calls",
    "voicepriv_backend_names",
    "voicepriv_metadata_adapter",
]

#: The ``format`` tag of a generic JSON file.
GENERIC_FORMAT: Final = "voicepriv-generic/1"

#: Columns of a generic CSV file (``call_id``, ``started_at``, ``duration_s``, ``direction``
#: and ``audio`` are required; the others may be empty).
CSV_COLUMNS: Final = (
    "call_id",
    "started_at",
    "duration_s",
    "direction",
    "channels",
    "sample_rate",
    "audio",
    "medium",
    "purposes",
    "tags",
    "agent_id",
    "agent_jurisdiction",
    "customer_id",
    "customer_jurisdiction",
    "customer_phone",
    "customer_email",
    "ivr",
    "consents",
)
_CSV_REQUIRED: Final = ("call_id", "started_at", "duration_s", "direction", "audio")

_CALL_FIELDS: Final = frozenset(
    {
        "call_id",
        "started_at",
        "duration_s",
        "direction",
        "medium",
        "channels",
        "sample_rate",
        "audio",
        "purposes",
        "tags",
        "telemarketing",
        "parties",
        "ivr",
        "consents",
        "on_hold",
    }
)
_PARTY_FIELDS: Final = frozenset(
    {"role", "id", "jurisdiction", "phone", "customer_id", "email", "minor"}
)
_IVR_FIELDS: Final = frozenset({"prompt", "digit", "offset_s"})
_CONSENT_FIELDS: Final = frozenset(
    {
        "role",
        "purpose",
        "state",
        "method",
        "offset_s",
        "at",
        "notice_version",
        "evidence",
        "conditional_service",
    }
)
_SUBJECT_FIELDS: Final = (
    ("phone", SubjectKind.PHONE),
    ("customer_id", SubjectKind.CUSTOMER_ID),
    ("email", SubjectKind.EMAIL),
)


class _Problems:
    """Collects field errors of one file so that all of them are reported at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, field: str, message: str) -> None:
        self.lines.append(f"{self.source} {where} field {field}: {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ModelError("\n".join(self.lines))


def _where(index: int, call_id: object) -> str:
    if isinstance(call_id, str) and call_id:
        return f"record {index} (call {call_id!r})"
    return f"record {index}"


class _Record:
    """Field reader for one call record: every failure is noted with its field path."""

    def __init__(self, problems: _Problems, where: str) -> None:
        self.problems = problems
        self.where = where
        self.failed = False

    def fail(self, field: str, message: str) -> None:
        self.failed = True
        self.problems.add(self.where, field, message)

    def unknown(self, data: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        extra = sorted(set(data) - allowed)
        if extra:
            self.fail(path or "<record>", f"unknown field(s) {', '.join(extra)}")

    def build(self, field: str, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except (ModelError, TypeError, ValueError) as exc:
            self.fail(field, str(exc))
            return None

    def text(self, data: Mapping[str, Any], key: str, path: str, *, required: bool) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.fail(path, "missing")
            return None
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {value!r}")
            return None
        return value

    def number(self, data: Mapping[str, Any], key: str, path: str, *, required: bool) -> float:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.fail(path, "missing")
            return float("nan")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                self.fail(path, f"expected a number, got {value!r}")
                return float("nan")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.fail(path, f"expected a number, got {value!r}")
            return float("nan")
        return float(value)

    def items(self, data: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {value!r}")
            return []
        return value


def _time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ModelError(f"expected an ISO 8601 time with a zone (e.g. +01:00 or Z), got {text!r}")
    return when


def _layout(value: object) -> ChannelLayout:
    if value == "mono":
        return ChannelLayout.mono()
    if isinstance(value, list) and len(value) == 2:
        return ChannelLayout.stereo(value[0], value[1])
    raise ModelError(
        f"expected 'mono' or a list of two roles (channel 0, channel 1), got {value!r}"
    )


def _party(r: _Record, data: object, path: str) -> Party | None:
    if not isinstance(data, Mapping):
        r.fail(path, f"expected an object, got {data!r}")
        return None
    r.unknown(data, _PARTY_FIELDS, path)
    subjects: list[SubjectRef] = []
    for key, kind in _SUBJECT_FIELDS:
        value = r.text(data, key, f"{path}.{key}", required=False)
        if value is not None:
            ref = r.build(f"{path}.{key}", functools.partial(SubjectRef, kind=kind, value=value))
            if ref is not None:
                subjects.append(ref)
    role = data.get("role")
    if role is None:
        r.fail(f"{path}.role", "missing")
        return None
    party: Party | None = r.build(
        path,
        lambda: Party(
            role=role,
            id=data.get("id") or None,
            jurisdiction=data.get("jurisdiction") or None,
            subjects=tuple(subjects),
            minor=bool(data.get("minor", False)),
        ),
    )
    return party


def _ivr(r: _Record, data: object, path: str) -> IvrInput | None:
    if not isinstance(data, Mapping):
        r.fail(path, f"expected an object, got {data!r}")
        return None
    r.unknown(data, _IVR_FIELDS, path)
    prompt = r.text(data, "prompt", f"{path}.prompt", required=True)
    digit = data.get("digit")
    if isinstance(digit, int) and not isinstance(digit, bool):
        digit = str(digit)
    if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#":
        r.fail(f"{path}.digit", f"expected one DTMF key (0-9, * or #), got {digit!r}")
        digit = None
    offset = r.number(data, "offset_s", f"{path}.offset_s", required=True)
    if offset == offset and offset < 0:
        r.fail(f"{path}.offset_s", f"expected seconds >= 0, got {offset}")
        return None
    if prompt is None or digit is None or offset != offset:
        return None
    return IvrInput(prompt=prompt, digit=digit, offset_s=offset)


def _consent(r: _Record, data: object, path: str) -> ConsentEvent | None:
    if not isinstance(data, Mapping):
        r.fail(path, f"expected an object, got {data!r}")
        return None
    r.unknown(data, _CONSENT_FIELDS, path)
    offset = r.number(data, "offset_s", f"{path}.offset_s", required=False)
    at_text = r.text(data, "at", f"{path}.at", required=False)
    at = None if at_text is None else r.build(f"{path}.at", lambda: _time(at_text))
    event: ConsentEvent | None = r.build(
        path,
        lambda: ConsentEvent(
            role=data.get("role", "customer"),
            purpose=data.get("purpose", ""),
            state=data.get("state"),
            method=data.get("method"),
            offset=None if offset != offset else offset,
            at=at,
            notice_version=data.get("notice_version"),
            evidence=data.get("evidence"),
            conditional_service=bool(data.get("conditional_service", False)),
        ),
    )
    return event


def _call(data: object, *, problems: _Problems, index: int) -> IntakeRecord | None:
    """One generic call object -> :class:`IntakeRecord`; failures go to *problems*."""
    if not isinstance(data, Mapping):
        problems.add(f"record {index}", "<record>", f"expected an object, got {data!r}")
        return None
    r = _Record(problems, _where(index, data.get("call_id")))
    r.unknown(data, _CALL_FIELDS, "")
    call_id = r.text(data, "call_id", "call_id", required=True)
    started_text = r.text(data, "started_at", "started_at", required=True)
    started = None if started_text is None else r.build("started_at", lambda: _time(started_text))
    duration = r.number(data, "duration_s", "duration_s", required=True)
    audio = r.text(data, "audio", "audio", required=True)
    channels = data.get("channels")
    layout = None if channels is None else r.build("channels", lambda: _layout(channels))
    parties = [
        _party(r, item, f"parties[{i}]")
        for i, item in enumerate(r.items(data, "parties", "parties"))
    ]
    ivr = [_ivr(r, item, f"ivr[{i}]") for i, item in enumerate(r.items(data, "ivr", "ivr"))]
    consents = [
        _consent(r, item, f"consents[{i}]")
        for i, item in enumerate(r.items(data, "consents", "consents"))
    ]
    purposes = r.items(data, "purposes", "purposes")
    tags = r.items(data, "tags", "tags")
    on_hold = r.items(data, "on_hold", "on_hold")
    rate = data.get("sample_rate")
    if isinstance(rate, str) and rate.strip():
        rate = r.build("sample_rate", functools.partial(int, rate))
    if r.failed or call_id is None or started is None or audio is None:
        return None
    recording: Recording | None = r.build(
        "<record>",
        lambda: Recording(
            id=call_id,
            started_at=started,
            duration=duration,
            direction=data.get("direction"),
            parties=tuple(p for p in parties if p is not None),
            layout=layout,
            sample_rate=rate or None,
            purposes=tuple(purposes),
            consents=tuple(c for c in consents if c is not None),
            medium=data.get("medium") or "phone",
            telemarketing=bool(data.get("telemarketing", False)),
            tags=frozenset(tags),
            source=audio,
            on_hold=tuple(tuple(span) if isinstance(span, list) else span for span in on_hold),
        ),
    )
    if recording is None:
        return None
    return IntakeRecord(
        recording=recording, audio=audio, ivr=tuple(i for i in ivr if i is not None)
    )


@attrs.frozen(kw_only=True)
class GenericJsonAdapter:
    """The generic call-record layout as JSON (see ``docs/intake.md``)."""

    @property
    def name(self) -> str:
        """``"generic-json"``."""
        return "generic-json"

    def parse(self, data: bytes, *, source: str) -> list[IntakeRecord]:
        """Every call in the file; all problems reported at once in one :class:`ModelError`."""
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{source}: not JSON ({exc})") from None
        if isinstance(document, Mapping) and "calls" in document:
            fmt = document.get("format")
            if fmt != GENERIC_FORMAT:
                raise ModelError(f"{source} field format: expected {GENERIC_FORMAT!r}, got {fmt!r}")
            extra = sorted(set(document) - {"format", "calls"})
            if extra:
                raise ModelError(f"{source}: unknown top-level field(s) {', '.join(extra)}")
            calls = document["calls"]
        elif isinstance(document, list):
            calls = document
        else:
            calls = [document]
        if not isinstance(calls, list):
            raise ModelError(f"{source} field calls: expected a list, got {calls!r}")
        return parse_calls(calls, source=source)


def parse_calls(calls: Sequence[object], *, source: str) -> list[IntakeRecord]:
    """Call objects in the generic layout -> :class:`IntakeRecord` values.

    Public so that a vendor adapter can map its own format onto the generic layout and reuse
    this validation (the example plugin does).

    :param source: names the file in error messages.
    :raises ModelError: every problem at once, one line each, naming record and field.
    """
    problems = _Problems(source)
    records = [_call(call, problems=problems, index=i) for i, call in enumerate(calls)]
    problems.raise_if_any()
    return [record for record in records if record is not None]


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def _csv_ivr(cell: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _split(cell):
        prompt, sep, rest = part.partition(":")
        digit, sep2, offset = rest.partition("@")
        if not sep or not sep2:
            raise ModelError(f"expected 'prompt:digit@offset_s', got {part!r}")
        out.append({"prompt": prompt, "digit": digit, "offset_s": offset})
    return out


def _csv_consents(cell: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _split(cell):
        head, sep, offset = part.partition("@")
        fields = head.split(":")
        if not sep or len(fields) != 4:
            raise ModelError(f"expected 'role:purpose:state:method@offset_s', got {part!r}")
        role, purpose, state, method = fields
        out.append(
            {"role": role, "purpose": purpose, "state": state, "method": method, "offset_s": offset}
        )
    return out


def _csv_row(row: Mapping[str, str], problems: _Problems, index: int) -> dict[str, Any] | None:
    """A CSV row in the generic JSON call shape (parties, IVR and consents unpacked)."""
    where = _where(index, row.get("call_id"))
    call: dict[str, Any] = {
        key: row[key]
        for key in ("call_id", "started_at", "duration_s", "direction", "audio", "sample_rate")
        if row.get(key)
    }
    if row.get("medium"):
        call["medium"] = row["medium"]
    channels = (row.get("channels") or "").strip()
    if channels:
        call["channels"] = "mono" if channels == "mono" else channels.split("|")
    call["purposes"] = _split(row.get("purposes") or "")
    call["tags"] = _split(row.get("tags") or "")
    agent = {
        "role": "agent",
        "id": row.get("agent_id"),
        "jurisdiction": row.get("agent_jurisdiction"),
    }
    customer = {
        "role": "customer",
        "jurisdiction": row.get("customer_jurisdiction"),
        "customer_id": row.get("customer_id"),
        "phone": row.get("customer_phone"),
        "email": row.get("customer_email"),
    }
    call["parties"] = [
        {k: v for k, v in agent.items() if v},
        {k: v for k, v in customer.items() if v},
    ]
    ok = True
    for column, unpack in (("ivr", _csv_ivr), ("consents", _csv_consents)):
        try:
            call[column] = unpack(row.get(column) or "")
        except ModelError as exc:
            problems.add(where, column, str(exc))
            ok = False
    return call if ok else None


@attrs.frozen(kw_only=True)
class GenericCsvAdapter:
    """The generic call-record layout as CSV, one call per row (see ``docs/intake.md``)."""

    @property
    def name(self) -> str:
        """``"generic-csv"``."""
        return "generic-csv"

    def parse(self, data: bytes, *, source: str) -> list[IntakeRecord]:
        """Every row's call; all problems reported at once in one :class:`ModelError`."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ModelError(f"{source}: not UTF-8 text ({exc})") from None
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        missing = [c for c in _CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(unknown)}")
            raise ModelError(f"{source} header: {'; '.join(parts)}")
        problems = _Problems(source)
        records: list[IntakeRecord] = []
        for index, row in enumerate(reader):
            if None in row:
                problems.add(_where(index, row.get("call_id")), "<row>", "more cells than columns")
                continue
            call = _csv_row(row, problems, index)
            if call is None:
                continue
            record = _call(call, problems=problems, index=index)
            if record is not None:
                records.append(record)
        problems.raise_if_any()
        return records


_ADAPTERS: Final[Mapping[str, Callable[[], MetadataAdapter]]] = {
    "generic-json": GenericJsonAdapter,
    "generic-csv": GenericCsvAdapter,
}


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``generic-json`` and ``generic-csv`` for ``metadata_adapter``; nothing for other kinds."""
    return sorted(_ADAPTERS) if kind == "metadata_adapter" else []


@hookimpl
def voicepriv_metadata_adapter(name: str, options: Mapping[str, Any]) -> MetadataAdapter | None:
    """The generic adapter called *name*, or ``None`` for names this plugin does not own.

    :raises ConfigError: options were given (the generic adapters take none).
    """
    factory = _ADAPTERS.get(name)
    if factory is None:
        return None
    if options:
        raise ConfigError(
            f"metadata adapter {name!r} takes no options, got {', '.join(sorted(options))}"
        )
    return factory()
