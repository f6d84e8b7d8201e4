"""The audit log: append-only JSON lines, hash-chained, Ed25519-signed, free of clear personal data.

Every event is one line of canonical JSON (sorted keys, no spaces)::

    {"data":{...},"hash":"<sha256 hex>","prev":"<hash of the previous event>","seq":7,
     "sig":"<Ed25519 signature, hex>","time":"2026-11-23T20:07:00.000000+00:00",
     "type":"access_granted"}

``hash`` is the SHA-256 of the canonical JSON of the event without ``hash`` and ``sig``;
``prev`` chains it to the event before (the first event's ``prev`` is 64 zeros); ``sig`` is the
key provider's Ed25519 signature over ``hash``. After each append a signed *head* file
(``<log>.head``) records how many events the log holds and the hash of the last one, so cutting
events off the end is detected too. :func:`verify_log` names the first bad event; the guide
``docs/audit.md`` says what can and cannot be detected.

Event data hold ids, codes, times and keyed hashes only: strings with whitespace or ``@``, and
strings that look like a phone number in any spelling (a ``tel:`` URI, ``+`` or ``00`` and
digits, or seven digits in a row outside the id fields), are refused, so erasure never needs to
rewrite the log. Event times, and times in event data, are written in UTC.

Appends from several threads or processes are serialised by an exclusive ``flock`` on
``<log>.lock``; every :class:`~voicepriv.interfaces.AuditSink` the plugins give
(hook ``voicepriv_audit_sinks``) receives a copy of every event after it was written.
"""

from __future__ import annotations

import collections
import enum
import fcntl
import hashlib
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import attrs
import phonenumbers
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from voicepriv.errors import AuditError, AuditIntegrityError, ConfigError
from voicepriv.interfaces import AuditSink
from voicepriv.model import utc_now

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "EventType",
    "Signer",
    "VerifyReport",
    "check_event_data",
    "head_path",
    "load_sinks",
    "read_events",
    "verify_log",
]

#: ``prev`` of the first event.
GENESIS: Final = "0" * 64

_EVENT_DOMAIN: Final = b"voicepriv-audit-event-v1\n"
_HEAD_DOMAIN: Final = b"voicepriv-audit-head-v1\n"
_FIELDS: Final = frozenset({"log", "seq", "time", "type", "data", "prev", "hash", "sig"})
_LOG_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_KEY: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SAFE: Final = re.compile(r"^[A-Za-z0-9._:/+=#,-]{0,256}$")
_PHONE: Final = re.compile(r"^\+\d{6,15}$")
#: What people write between the digits of a phone number (``/`` only for a whole-value parse:
#: it also separates path-like ids).
_DIAL_SEPARATORS: Final = re.compile(r"[\s\-.()/]")
_RUN_SEPARATORS: Final = re.compile(r"[\s\-.()]")
_INTERNATIONAL: Final = re.compile(r"^(?:\+|00)\d{3,17}$")
#: Digit runs that are not phone numbers, masked before counting digits: ISO 8601 dates and
#: times (extended or basic; a real date of 1900-2999 not glued to more digit groups), UUIDs,
#: and hex tokens of 8+ characters with a letter or of 20+ (longer than phone or card numbers).
_ISO_TIME: Final = re.compile(
    r"(?<!\d)(?<!\d[-.])((?:19|2\d)\d{2}-\d{2}-\d{2})"
    r"(?:T\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?(?![-.]?\d)"
)
_BASIC_TIME: Final = re.compile(r"(?<!\d)\d{8}T\d{4,6}(?:[.,]\d{1,9})?Z?(?!\d)")
_UUID: Final = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
_HEX_TOKEN: Final = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8,}(?![0-9A-Za-z])")
_DIGIT_RUN: Final = re.compile(r"\d{7,}")
#: A phone number in international form inside a longer value (``id-+4512345678``).
_EMBEDDED: Final = re.compile(r"(?<![A-Za-z])tel:|\+\d[\d\-.()/]*")
#: Fields that carry identifiers the organisation or voicepriv assigns (recording, artifact,
#: request, hold, key and principal ids, tags, a retention's ``ref``, the policy's purpose ids:
#: ``purpose``, ``purposes`` and an objection's ``ended``); their numbers may be long
#: (``call-20260302-000123``, an Asterisk ``1709370000.123``), so only the unmistakable phone
#: spellings (``+``, ``00`` or ``tel:``) are refused there.
_ID_FIELDS: Final = frozenset(
    {
        "artifact",
        "artifact_id",
        "artifacts",
        "deleted",
        "ended",
        "erased",
        "hold",
        "key",
        "principal",
        "purpose",
        "purposes",
        "recording",
        "recording_id",
        "recordings",
        "ref",
        "request",
        "tags",
    }
)
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_SIG: Final = re.compile(r"^[0-9a-f]{128}$")
_MAX_DEPTH: Final = 4


class EventType(enum.Enum):
    """What an audit event records."""

    CONSENT_CAPTURED = "consent_captured"
    DECISION_MADE = "decision_made"
    ARTIFACT_STORED = "artifact_stored"
    ACCESS_GRANTED = "access_granted"
    ACCESS_DENIED = "access_denied"
    EXPORT = "export"
    DELETION = "deletion"
    HOLD_PLACED = "hold_placed"
    HOLD_LIFTED = "hold_lifted"
    KEY_ROTATED = "key_rotated"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


@runtime_checkable
class Signer(Protocol):
    """What the audit log needs from a key provider: Ed25519 signing and its public key.

    Every :class:`~voicepriv.interfaces.KeyProvider` satisfies it.
    """

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of *message*."""

    def verify_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key matching :meth:`sign`."""


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _is_international(text: str) -> bool:
    """Whether *text* is a phone number in international form: a ``tel:`` URI, or ``+`` / ``00``
    and digits (any separators) that :mod:`phonenumbers` accepts as a possible number."""
    if text[:4].lower() == "tel:":
        return True
    compact = _DIAL_SEPARATORS.sub("", text)
    if not _INTERNATIONAL.fullmatch(compact):
        return False
    if _PHONE.fullmatch(compact):
        return True
    try:
        number = phonenumbers.parse("+" + compact.removeprefix("+").removeprefix("00"), None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def _real_date(match: re.Match[str]) -> str:
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return match.group(0)
    return "~"


def _masked(text: str) -> str:
    """*text* with ISO 8601 times, UUIDs and hex tokens (digests, random ids) replaced by ``~``."""
    masked = _ISO_TIME.sub(_real_date, text)
    masked = _BASIC_TIME.sub("~", masked)
    masked = _UUID.sub("~", masked)
    return _HEX_TOKEN.sub(_hex_token, masked)


def _hex_token(match: re.Match[str]) -> str:
    """``~`` for a digest or random id: a hex letter, or longer than any phone or card number."""
    token = match.group(0)
    return "~" if len(token) >= 20 or any(c.isalpha() for c in token) else token


def _longest_digit_run(masked: str) -> int:
    """The most digits in a row in *masked* once the separators people write inside phone
    numbers (spaces, dashes, dots, parentheses) are removed."""
    runs = _DIGIT_RUN.findall(_RUN_SEPARATORS.sub("", masked))
    return max((len(run) for run in runs), default=0)


def _phone_problem(field: str, text: str) -> str | None:
    """Why *text* (in the data field called *field*) may be a phone number, or ``None``.

    Refused everywhere: a ``tel:`` URI, ``+`` or ``00`` then digits with any separators that
    :mod:`phonenumbers` accepts as a possible number, and any E.164 spelling, as the whole value
    or (``tel:`` or ``+``) inside it. Refused outside the id fields (:data:`_ID_FIELDS`): seven
    or more digits in a row once separators are removed, as a national number
    (``07700 900123``) cannot be parsed without its region. ISO 8601 times, UUIDs and hex
    tokens (digests, random ids) do not count.
    """
    if _is_international(text):
        return "looks like a phone number"
    masked = _masked(text)
    if any(_is_international(m.group(0)) for m in _EMBEDDED.finditer(masked)):
        return "holds a phone number"
    if field in _ID_FIELDS:
        return None
    longest = _longest_digit_run(masked)
    if longest >= 7:
        return f"holds {longest} digits in a row, which may be a phone number"
    return None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _check_value(path: str, value: object, depth: int, field: str = "") -> Any:
    """*value* as plain JSON data, or a ConfigError naming *path* and what is wrong.

    *field* is the key *value* sits under (list items keep their list's key).
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"audit data {path}: expected a finite number, got {value!r}")
        return value
    if isinstance(value, enum.Enum):
        return _check_value(path, value.value, depth, field)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(f"audit data {path}: expected a time with a time zone, got {value}")
        return _utc(value).isoformat()
    if isinstance(value, str):
        if not _SAFE.fullmatch(value):
            raise ConfigError(
                f"audit data {path}: expected an id, code, time or keyed hash (no spaces, no '@', "
                f"at most 256 characters), got a string of {len(value)} characters"
            )
        problem = _phone_problem(field, value)
        if problem is not None:
            raise ConfigError(f"audit data {path}: {problem}; log its keyed hash instead")
        return value
    if depth >= _MAX_DEPTH:
        raise ConfigError(f"audit data {path}: nested more than {_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return _check_data(value, path, depth + 1)
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [
            _check_value(f"{path}[{i}]", item, depth + 1, field) for i, item in enumerate(items)
        ]
    raise ConfigError(
        f"audit data {path}: expected ids, codes, numbers, times or lists of them, "
        f"got {type(value).__name__}"
    )


def check_event_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """*data* as :meth:`AuditLog.append` would write it, or the ConfigError it would raise.

    For callers that change state and log it afterwards: check the event first, so a value
    the log refuses never leaves a change made but not logged.
    """
    return _check_data(data)


def _check_data(data: Mapping[str, Any], path: str = "", depth: int = 0) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigError(f"audit data {path or '<root>'}: key {key!r} is not lower_snake_case")
        checked[key] = _check_value(f"{path}.{key}" if path else key, value, depth, key)
    return checked


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One signed event of the log.

    :param log: the log's random id, fixed by its first event; an event copied from another
        log signed with the same key does not verify here.
    :param seq: zero-based position in the log.
    :param time: ISO 8601 UTC time of the event (``+00:00``).
    :param type: what happened.
    :param data: ids, codes, times and keyed hashes (never clear personal data).
    :param prev: ``hash`` of the previous event (:data:`GENESIS` for the first).
    :param hash: SHA-256 (hex) of the event without ``hash`` and ``sig``.
    :param sig: Ed25519 signature (hex) of ``hash``.
    """

    log: str
    seq: int
    time: str
    type: EventType
    data: Mapping[str, Any] = attrs.field(eq=False)
    prev: str
    hash: str
    sig: str

    def body(self) -> dict[str, Any]:
        """The signed part: every field but ``hash`` and ``sig``, as plain JSON data."""
        return {
            "log": self.log,
            "seq": self.seq,
            "time": self.time,
            "type": self.type.value,
            "data": dict(self.data),
            "prev": self.prev,
        }

    def as_json(self) -> dict[str, Any]:
        """The event as written to the log and given to sinks."""
        return {**self.body(), "hash": self.hash, "sig": self.sig}

    def line(self) -> bytes:
        """The exact bytes of the event's line, without the newline."""
        return _canonical(self.as_json())


def _event_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(body)).hexdigest()


def _parse_line(raw: bytes, index: int) -> AuditEvent:
    """An event from one line, checking shape and canonical form (not the chain or signature)."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuditIntegrityError(f"audit event {index}: not valid JSON", index=index) from None
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise AuditIntegrityError(
            f"audit event {index}: expected exactly the fields {sorted(_FIELDS)}", index=index
        )
    try:
        kind = EventType(obj["type"])
    except ValueError:
        raise AuditIntegrityError(
            f"audit event {index}: unknown event type {obj['type']!r}", index=index
        ) from None
    seq, prev, digest, sig, time = obj["seq"], obj["prev"], obj["hash"], obj["sig"], obj["time"]
    log = obj["log"]
    if (
        isinstance(seq, bool)
        or not isinstance(seq, int)
        or not isinstance(time, str)
        or not isinstance(obj["data"], dict)
        or not all(isinstance(v, str) for v in (log, prev, digest, sig))
    ):
        raise AuditIntegrityError(f"audit event {index}: a field has the wrong type", index=index)
    event = AuditEvent(
        log=log, seq=seq, time=time, type=kind, data=obj["data"], prev=prev, hash=digest, sig=sig
    )
    if event.line() != raw:
        raise AuditIntegrityError(
            f"audit event {index}: the line is not in canonical form (edited by hand?)",
            index=index,
        )
    return event


@attrs.frozen(kw_only=True)
class Checkpoint:
    """A signed statement "the log held *count* events, the last one hashing to *head*".

    The log keeps the newest in ``<log>.head``; copies kept elsewhere (a SIEM, a ticket, a
    WORM bucket) let :func:`verify_log` detect a log rolled back together with its head file.
    """

    log: str
    count: int
    head: str
    time: str
    sig: str

    def body(self) -> dict[str, Any]:
        """The signed part."""
        return {"log": self.log, "count": self.count, "head": self.head, "time": self.time}

    def as_json(self) -> dict[str, Any]:
        """The checkpoint as plain JSON data."""
        return {**self.body(), "sig": self.sig}

    @classmethod
    def from_json(cls, obj: object, *, source: str) -> Checkpoint:
        """Parse :meth:`as_json` output; *source* names it in errors."""
        if not isinstance(obj, dict) or set(obj) != {"log", "count", "head", "time", "sig"}:
            raise AuditError(f"{source}: expected an object with log, count, head, time and sig")
        log, count, head, time, sig = obj["log"], obj["count"], obj["head"], obj["time"], obj["sig"]
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or count < 0
            or not all(isinstance(v, str) for v in (log, head, time, sig))
        ):
            raise AuditError(f"{source}: a checkpoint field has the wrong type")
        return cls(log=log, count=count, head=head, time=time, sig=sig)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature is valid under *public_key*."""
        return _valid(public_key, _HEAD_DOMAIN + _canonical(self.body()), self.sig)


def _valid(public_key: Ed25519PublicKey, message: bytes, sig_hex: str) -> bool:
    if not _SIG.fullmatch(sig_hex):
        return False
    try:
        public_key.verify(bytes.fromhex(sig_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def head_path(path: str | os.PathLike[str]) -> Path:
    """Where the signed head of the log at *path* is kept (``<log>.head``)."""
    log = Path(path)
    return log.with_name(log.name + ".head")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _read_head(path: Path) -> Checkpoint | None:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the audit head ({exc})") from exc
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuditError(f"{path}: the audit head is not JSON") from None
    return Checkpoint.from_json(obj, source=str(path))


def _last_line(handle: Any, size: int) -> bytes | None:
    """The last line of an open binary file of *size* bytes, without its newline.

    ``None`` for an empty file; ``b""`` when the file does not end with a newline (an append
    was cut off).
    """
    if size == 0:
        return None
    handle.seek(size - 1)
    if handle.read(1) != b"\n":
        return b""
    position = size - 1
    chunks: list[bytes] = []
    while position > 0:
        step = min(4096, position)
        position -= step
        handle.seek(position)
        chunk = handle.read(step)
        cut = chunk.rfind(b"\n")
        if cut != -1:
            chunks.append(chunk[cut + 1 :])
            break
        chunks.append(chunk)
    return b"".join(reversed(chunks))


def load_sinks(options: Mapping[str, Any] | None = None, manager: Any = None) -> list[AuditSink]:
    """Every audit sink the installed plugins give (hook ``voicepriv_audit_sinks``).

    :param options: audit settings, passed to the plugins unchanged.
    :param manager: a plugin manager; ``None`` builds one with :func:`get_plugin_manager`.
    """
    if manager is None:
        from voicepriv.plugins import get_plugin_manager

        manager = get_plugin_manager()
    sinks: list[AuditSink] = []
    for batch in manager.hook.voicepriv_audit_sinks(options=dict(options or {})):
        for sink in batch:
            if not isinstance(sink, AuditSink):
                raise ConfigError(f"audit sink {sink!r} has no emit(event) method")
            sinks.append(sink)
    return sinks


class AuditLog:
    """An append-only, hash-chained, signed log in one JSON-lines file.

    :param path: the log file; ``<path>.head`` and ``<path>.lock`` sit next to it.
    :param signer: the key provider (or any :class:`Signer`) whose Ed25519 key signs.
    :param sinks: where copies of events go; ``None`` asks the plugins
        (:func:`load_sinks` with *sink_options*).
    :param sink_options: options for the plugins' ``voicepriv_audit_sinks``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        signer: Signer,
        sinks: Sequence[AuditSink] | None = None,
        sink_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self._signer = signer
        self._sinks = tuple(load_sinks(sink_options) if sinks is None else sinks)
        self._thread_lock = threading.Lock()

    @property
    def head_path(self) -> Path:
        """The signed head file."""
        return head_path(self.path)

    def verify_key(self) -> bytes:
        """The raw Ed25519 public key that verifies this log."""
        return self._signer.verify_key()

    def append(
        self, type: EventType | str, data: Mapping[str, Any], *, at: datetime | None = None
    ) -> AuditEvent:
        """Append one event, update the signed head, then give a copy to every sink.

        :param type: the event type (or its value, e.g. ``"access_denied"``).
        :param data: ids, codes, numbers, times and keyed hashes; clear personal data (text
            with spaces or ``@``, phone numbers in any spelling) raises
            :class:`~voicepriv.errors.ConfigError`. Times in it are written in UTC.
        :param at: the event time, with a time zone (default: now); written in UTC.
        :raises ConfigError: an unknown *type*, refused *data*, or an *at* that is not a
            datetime with a time zone.
        :raises AuditIntegrityError: the log's last line is incomplete or does not match its
            head; nothing is appended to a log that is already broken.
        :raises AuditError: the log cannot be written.
        """
        try:
            kind = EventType(type)
        except ValueError:
            choices = ", ".join(t.value for t in EventType)
            raise ConfigError(
                f"audit event type {type!r} is unknown; expected one of {choices}"
            ) from None
        checked = _check_data(data)
        if at is None:
            moment = utc_now()
        elif isinstance(at, datetime) and at.tzinfo is not None and at.utcoffset() is not None:
            moment = _utc(at)
        else:
            raise ConfigError(
                f"AuditLog.append at: expected a datetime with a time zone, got {at!r}"
            )
        when = moment.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, _FileLock(_lock_path(self.path)):
            event = self._append_locked(kind, checked, when)
        for sink in self._sinks:
            sink.emit(event.as_json())
        return event

    def check_writable(self) -> None:
        """Raise unless an event could be appended now; change nothing in the log.

        For callers about to do something irreversible (erase, export, delete) and log it
        afterwards: check first, so a log that cannot be written never leaves the action done
        but unlogged. Creates the log's folder and lock file as :meth:`append` would, but not
        the log itself.

        :raises AuditIntegrityError: the log's last line is incomplete or does not match its
            head (:meth:`append` would refuse it).
        :raises AuditError: the log, its head or its folder cannot be written; the message
            names the path.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot create the audit log's folder ({exc})") from exc
        with self._thread_lock, _FileLock(_lock_path(self.path)):
            if self.path.exists() or self.path.is_symlink():
                try:
                    handle = self.path.open("r+b")
                except OSError as exc:
                    raise AuditError(f"{self.path}: cannot open the audit log ({exc})") from exc
                with handle:
                    self._next_position(handle)
            else:
                head = _read_head(self.head_path)
                if head is not None and head.count:
                    raise AuditIntegrityError(
                        f"{self.path}: the log is missing but its head says {head.count} events",
                        index=0,
                    )
            folder = self.path.parent
            if not os.access(folder, os.W_OK | os.X_OK):
                raise AuditError(
                    f"{self.path}: cannot write the audit log (its folder {folder} is not writable)"
                )
            if self.head_path.is_dir():
                raise AuditError(f"{self.head_path}: cannot write the audit head (it is a folder)")

    def _next_position(self, handle: Any) -> tuple[int, str, str]:
        """``(seq, prev, log id)`` of the next event of the open log, or the integrity error
        that forbids appending to it."""
        size = handle.seek(0, os.SEEK_END)
        last_raw = _last_line(handle, size)
        head = _read_head(self.head_path)
        if last_raw == b"":
            raise AuditIntegrityError(
                f"{self.path}: the last line is incomplete; run 'voicepriv audit verify'",
                index=-1,
            )
        if last_raw is None:
            if head is not None and head.count:
                raise AuditIntegrityError(
                    f"{self.path}: the log is empty but its head says {head.count} events",
                    index=0,
                )
            return 0, GENESIS, uuid.uuid4().hex
        last = _parse_line(last_raw, -1)
        if last.hash != _event_hash(last.body()):
            raise AuditIntegrityError(
                f"{self.path}: the last event does not match its hash", index=last.seq
            )
        # A head one event behind means the previous append was interrupted between
        # writing the line and writing the head; this append re-anchors it.
        if head is None or not (
            head.log == last.log
            and (
                (head.count == last.seq + 1 and head.head == last.hash)
                or (head.count == last.seq and head.head == last.prev)
            )
        ):
            raise AuditIntegrityError(
                f"{self.path}: the log ends at event {last.seq} but its head "
                f"{'is missing' if head is None else f'says {head.count} events'}; "
                "run 'voicepriv audit verify'",
                index=last.seq + 1 if head is None else min(head.count, last.seq + 1),
            )
        return last.seq + 1, last.hash, last.log

    def _append_locked(self, kind: EventType, data: dict[str, Any], when: str) -> AuditEvent:
        try:
            handle = self.path.open("a+b")
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot open the audit log ({exc})") from exc
        with handle:
            seq, prev, log_id = self._next_position(handle)
            body = {
                "log": log_id,
                "seq": seq,
                "time": when,
                "type": kind.value,
                "data": data,
                "prev": prev,
            }
            digest = _event_hash(body)
            signature = self._signer.sign(_EVENT_DOMAIN + bytes.fromhex(digest)).hex()
            event = AuditEvent(
                log=log_id,
                seq=seq,
                time=when,
                type=kind,
                data=data,
                prev=prev,
                hash=digest,
                sig=signature,
            )
            try:
                handle.write(event.line() + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditError(f"{self.path}: cannot append to the audit log ({exc})") from exc
        self._write_head(log_id, seq + 1, digest, when)
        return event

    def _sign_checkpoint(self, log: str, count: int, head: str, when: str) -> Checkpoint:
        body = {"log": log, "count": count, "head": head, "time": when}
        sig = self._signer.sign(_HEAD_DOMAIN + _canonical(body)).hex()
        return Checkpoint(log=log, count=count, head=head, time=when, sig=sig)

    def _write_head(self, log: str, count: int, head: str, when: str) -> None:
        checkpoint = self._sign_checkpoint(log, count, head, when)
        target = self.head_path
        temporary = target.with_name(target.name + f".{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(_canonical(checkpoint.as_json()) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(target)
        except OSError as exc:
            raise AuditError(f"{target}: cannot write the audit head ({exc})") from exc

    def checkpoint(self) -> Checkpoint:
        """A signed checkpoint of the log as it is now, to keep somewhere else."""
        with self._thread_lock, _FileLock(_lock_path(self.path)):
            log, count, last = "", 0, GENESIS
            for event in read_events(self.path):
                log, count, last = event.log, count + 1, event.hash
        return self._sign_checkpoint(log, count, last, utc_now().isoformat())

    def events(self) -> Iterator[AuditEvent]:
        """Every event in order (shape checked; use :meth:`verify` for the chain)."""
        return read_events(self.path)

    def tail(self, count: int = 10) -> list[AuditEvent]:
        """The last *count* events."""
        if count <= 0:
            return []
        return list(collections.deque(read_events(self.path), maxlen=count))

    def verify(self, *, checkpoint: Checkpoint | None = None) -> VerifyReport:
        """Verify the whole log with this log's own public key (see :func:`verify_log`)."""
        return verify_log(self.path, self.verify_key(), checkpoint=checkpoint)


class _FileLock:
    """An exclusive ``flock`` on a lock file, held for a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot lock the audit log ({exc})") from exc
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_events(path: str | os.PathLike[str]) -> Iterator[AuditEvent]:
    """Every event of the log at *path*, in file order (a missing file has none).

    Checks each line's shape and canonical form only; :func:`verify_log` checks the rest.
    """
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed by the with block below
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the audit log ({exc})") from exc
    with handle:
        for index, raw in enumerate(handle):
            if not raw.endswith(b"\n"):
                raise AuditIntegrityError(
                    f"audit event {index}: the line is incomplete (cut off?)", index=index
                )
            yield _parse_line(raw[:-1], index)


@attrs.frozen(kw_only=True)
class VerifyReport:
    """What a successful verification established.

    :param count: events verified.
    :param head: hash of the last event (:data:`GENESIS` for an empty log).
    :param anchored: the signed head file matched (so the end was not cut off).
    :param checkpoint: an external checkpoint was given and the log extends it.
    """

    count: int
    head: str
    anchored: bool
    checkpoint: bool


def _public_key(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigError(
            f"audit verify key: expected 32 raw Ed25519 bytes, got {len(raw)} bytes"
        ) from None


def verify_log(
    path: str | os.PathLike[str],
    verify_key: bytes,
    *,
    checkpoint: Checkpoint | None = None,
    require_head: bool = True,
) -> VerifyReport:
    """Check every event of the log at *path*; raise at the first bad one.

    Checked, in order, for each line ``i``: it is complete, canonical JSON with the right
    fields; ``seq == i``; ``prev`` is the hash of event ``i - 1``; ``hash`` matches the content;
    the signature verifies under *verify_key*. Then the signed head (``<log>.head``) must count
    exactly the events present and name the last hash, and an external *checkpoint*, when
    given, must be a prefix of the log.

    :param verify_key: the raw Ed25519 public key of the signer (pin it; never read it from
        the log).
    :param checkpoint: a checkpoint kept elsewhere (detects a rollback of log and head).
    :param require_head: a missing head file is an error (default) unless the log is empty.
    :raises AuditIntegrityError: with :attr:`~voicepriv.errors.AuditIntegrityError.index`, the
        zero-based line of the first bad event (for a cut-off end, the first missing one).
    """
    key = _public_key(verify_key)
    prev = GENESIS
    count = 0
    checkpoint_seen = checkpoint is not None and checkpoint.count == 0
    if checkpoint is not None and not checkpoint.verify(key):
        raise AuditError("audit checkpoint: the signature does not verify under this key")
    head = _read_head(head_path(path))
    if head is not None and not head.verify(key):
        raise AuditIntegrityError(
            f"{head_path(path)}: the head's signature does not verify", index=0
        )
    expected_log = head.log if head is not None else None
    if checkpoint is not None and checkpoint.count:
        if expected_log is not None and checkpoint.log != expected_log:
            raise AuditError("audit checkpoint: it was taken of another log than this head's")
        expected_log = checkpoint.log
    for index, event in enumerate(read_events(path)):
        if expected_log is None:
            expected_log = event.log
        if event.log != expected_log or not _LOG_ID.fullmatch(event.log):
            raise AuditIntegrityError(
                f"audit event {index}: belongs to another audit log ({event.log!r}, "
                f"expected {expected_log!r})",
                index=index,
            )
        if event.seq != index:
            raise AuditIntegrityError(
                f"audit event {index}: sequence number {event.seq}, expected {index} "
                "(an event was removed, inserted or moved here)",
                index=index,
            )
        if event.prev != prev:
            raise AuditIntegrityError(
                f"audit event {index}: does not chain to event {index - 1} "
                "(an event before it was removed, inserted, moved or edited)",
                index=index,
            )
        if not _HEX64.fullmatch(event.hash) or event.hash != _event_hash(event.body()):
            raise AuditIntegrityError(
                f"audit event {index}: content does not match its hash (edited)", index=index
            )
        if not _valid(key, _EVENT_DOMAIN + bytes.fromhex(event.hash), event.sig):
            raise AuditIntegrityError(
                f"audit event {index}: the signature does not verify (forged or re-hashed)",
                index=index,
            )
        prev = event.hash
        count = index + 1
        if checkpoint is not None and checkpoint.count == count:
            if checkpoint.head != event.hash:
                raise AuditIntegrityError(
                    f"audit event {index}: differs from the checkpoint of {checkpoint.time} "
                    "(the log was rewritten since)",
                    index=index,
                )
            checkpoint_seen = True
    if checkpoint is not None and not checkpoint_seen:
        raise AuditIntegrityError(
            f"the log has {count} events but the checkpoint of {checkpoint.time} saw "
            f"{checkpoint.count}: events from index {count} on were cut off",
            index=count,
        )
    anchored = False
    if head is None:
        if require_head and count:
            raise AuditIntegrityError(
                f"{head_path(path)} is missing: cannot rule out that events were cut off the end",
                index=count,
            )
    else:
        if head.count > count:
            raise AuditIntegrityError(
                f"the log has {count} events but its signed head says {head.count}: "
                f"events from index {count} on were cut off",
                index=count,
            )
        if head.count < count:
            raise AuditIntegrityError(
                f"audit event {head.count}: not covered by the signed head, which says "
                f"{head.count} events (appended without the key, or an append was interrupted)",
                index=head.count,
            )
        if head.head != prev:
            raise AuditIntegrityError(
                f"audit event {count - 1}: differs from the signed head", index=max(count - 1, 0)
            )
        anchored = True
    return VerifyReport(
        count=count, head=prev, anchored=anchored, checkpoint=checkpoint is not None
    )
