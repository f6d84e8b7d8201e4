"""Typed core values: who was on a call, what they consented to, what may be kept and for how long.

Every class is an immutable, slotted, validated attrs value. Converters only normalise (a string
to its enum, seconds to :class:`~datetime.timedelta`, a phone number to E.164); validators check
and raise :class:`~voicepriv.errors.ModelError` naming the field, what was expected and the
value received; cross-field checks live in ``__attrs_post_init__``. Change a value with
:func:`attrs.evolve`.

A :class:`Recording` holds metadata and a reference to its audio, never samples.

Serialisation lives in one place: :func:`to_json` / :func:`from_json` (a versioned envelope;
unknown fields are rejected, never dropped). ``docs/schema.md`` documents it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import attrs
import cattrs
import phonenumbers
from cattrs.preconf.json import make_converter

from voicepriv.errors import ModelError

__all__ = [
    "SCHEMA_VERSION",
    "STANDARD_PURPOSES",
    "ChannelLayout",
    "ConsentEvent",
    "ConsentMethod",
    "ConsentState",
    "Direction",
    "HoldScope",
    "LayoutKind",
    "LegalBasis",
    "LegalHold",
    "Medium",
    "Party",
    "Purpose",
    "Recording",
    "RetentionAction",
    "RetentionRule",
    "RetentionTrigger",
    "Role",
    "Segment",
    "SubjectKind",
    "SubjectRef",
    "from_json",
    "to_json",
    "utc_now",
]

#: Version of the JSON envelope written by :func:`to_json`.
SCHEMA_VERSION: Final = 1


# --------------------------------------------------------------------------- vocabularies


class Role(enum.Enum):
    """Who a party is on the call."""

    AGENT = "agent"
    CUSTOMER = "customer"
    SUPERVISOR = "supervisor"
    IVR = "ivr"


class Direction(enum.Enum):
    """Who placed the call: the customer (inbound) or the contact center (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Medium(enum.Enum):
    """How the conversation was carried; some states treat them differently (OR, NV, HI)."""

    PHONE = "phone"
    MOBILE = "mobile"
    VIDEO = "video"
    IN_PERSON = "in_person"


class SubjectKind(enum.Enum):
    """The kind of identifier that points at a data subject."""

    PHONE = "phone"
    CUSTOMER_ID = "customer_id"
    EMAIL = "email"
    OTHER = "other"


class LegalBasis(enum.Enum):
    """GDPR Art. 6(1) lawful bases; the value is the letter of the point."""

    CONSENT = "a"
    CONTRACT = "b"
    LEGAL_OBLIGATION = "c"
    VITAL_INTERESTS = "d"
    PUBLIC_TASK = "e"
    LEGITIMATE_INTERESTS = "f"

    @property
    def article(self) -> str:
        """The citation, e.g. ``"GDPR Art. 6(1)(a)"``."""
        return f"GDPR Art. 6(1)({self.value})"


class ConsentState(enum.Enum):
    """What a consent event says."""

    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class ConsentMethod(enum.Enum):
    """How a consent event was captured.

    ``DTMF``, ``VERBAL`` and ``WRITTEN`` are acts; ``NOTICE_ONLY`` records that a notice was
    played; ``OPT_OUT_OFFERED`` records that the party was offered a way to object.
    """

    DTMF = "dtmf"
    VERBAL = "verbal"
    WRITTEN = "written"
    NOTICE_ONLY = "notice_only"
    OPT_OUT_OFFERED = "opt_out_offered"

    @property
    def is_act(self) -> bool:
        """Whether the method is an affirmative act (keypress, spoken yes, signature)."""
        return self in {ConsentMethod.DTMF, ConsentMethod.VERBAL, ConsentMethod.WRITTEN}


class LayoutKind(enum.Enum):
    """Mono (one mixed track) or stereo (one party per channel)."""

    MONO = "mono"
    STEREO = "stereo"


class RetentionTrigger(enum.Enum):
    """When a retention period starts."""

    CALL_START = "call_start"
    CALL_END = "call_end"


class RetentionAction(enum.Enum):
    """What happens when a retention period ends."""

    DELETE = "delete"
    ANONYMISE = "anonymise"


# --------------------------------------------------------------------------- validators

_T = TypeVar("_T")

_PURPOSE_ID: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RECORDING_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_JURISDICTION: Final = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TAG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")


def _fail(owner: str, field: str, expected: str, value: object) -> ModelError:
    return ModelError(f"{owner}.{field}: expected {expected}, got {value!r}")


class _Matches:
    """Validator: a string matching a pattern."""

    def __init__(self, pattern: re.Pattern[str], expected: str) -> None:
        self.pattern = pattern
        self.expected = expected

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not self.pattern.fullmatch(value):
            raise _fail(type(instance).__name__, attribute.name, self.expected, value)


def _matches(pattern: re.Pattern[str], expected: str) -> _Matches:
    return _Matches(pattern, expected)


class _InstanceOf:
    """Validator: an instance of given types (``None`` allowed when *optional*)."""

    def __init__(self, types: tuple[type, ...], expected: str, optional: bool) -> None:
        self.types = types
        self.expected = expected
        self.optional = optional

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, self.types) or (
            isinstance(value, bool) and bool not in self.types
        ):
            raise _fail(type(instance).__name__, attribute.name, self.expected, value)


def _instance_of(*types: type, expected: str, optional: bool = False) -> _InstanceOf:
    return _InstanceOf(types, expected, optional)


class _Each:
    """Validator: run *inner* on every element of a tuple or frozenset."""

    def __init__(self, inner: Callable[[object, attrs.Attribute[Any], Any], None]) -> None:
        self.inner = inner

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        for item in value:
            self.inner(instance, attribute, item)


def _each(inner: Callable[[object, attrs.Attribute[Any], Any], None]) -> _Each:
    return _Each(inner)


_E = TypeVar("_E", bound=enum.Enum)


def _enum(kind: type[_E], value: object) -> _E:
    """*value* as a member of *kind*, or a ModelError listing the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise ModelError(f"{kind.__name__}: expected one of {choices}, got {value!r}") from None


def _tuple(convert: Callable[[Any], _T], value: object) -> tuple[_T, ...]:
    """*value* (a sequence, not a string) as a tuple of converted items."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ModelError(f"expected a sequence, got {value!r}")
    return tuple(convert(item) for item in value)


def _identity(value: _T) -> _T:
    return value


def _to_timedelta(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in {float("inf"), float("-inf")}:
            raise ModelError(f"duration: expected a finite number of seconds, got {value!r}")
        return timedelta(seconds=value)
    return value


def _nonnegative_timedelta(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise _fail(type(instance).__name__, attribute.name, "a non-negative duration", value)


def _positive_timedelta(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise _fail(type(instance).__name__, attribute.name, "a positive duration", value)


def _aware_datetime(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name != "started_at" and attribute.name != "placed_at":
        return
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise _fail(type(instance).__name__, attribute.name, "a datetime with a time zone", value)


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _upper_optional(value: object) -> object:
    return None if value is None else _upper(value)


def _subject_kind(value: object) -> SubjectKind:
    return _enum(SubjectKind, value)


def _role(value: object) -> Role:
    return _enum(Role, value)


def _consent_state(value: object) -> ConsentState:
    return _enum(ConsentState, value)


def _consent_method(value: object) -> ConsentMethod:
    return _enum(ConsentMethod, value)


def _layout_kind(value: object) -> LayoutKind:
    return _enum(LayoutKind, value)


def _direction(value: object) -> Direction:
    return _enum(Direction, value)


def _medium(value: object) -> Medium:
    return _enum(Medium, value)


def _retention_trigger(value: object) -> RetentionTrigger:
    return _enum(RetentionTrigger, value)


def _retention_action(value: object) -> RetentionAction:
    return _enum(RetentionAction, value)


# --------------------------------------------------------------------------- values


def _normalise_subject(kind: SubjectKind, value: str) -> str:
    if kind is SubjectKind.PHONE:
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ModelError(
                f"SubjectRef.value: expected a phone number in international form "
                f"(+<country code>...), got {value!r}"
            ) from None
        if not phonenumbers.is_possible_number(number):
            raise ModelError(f"SubjectRef.value: {value!r} is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind is SubjectKind.EMAIL:
        email = value.strip().lower()
        if not _EMAIL.fullmatch(email):
            raise ModelError(f"SubjectRef.value: expected an e-mail address, got {value!r}")
        return email
    stripped = value.strip()
    if not stripped or len(stripped) > 256:
        raise ModelError(
            f"SubjectRef.value: expected 1 to 256 characters for a {kind.value}, got {value!r}"
        )
    return stripped


@attrs.frozen(kw_only=True)
class SubjectRef:
    """An identifier pointing at a data subject: a phone number, customer id, e-mail ...

    The value is normalised on construction: phone numbers to E.164 (``+4512345678``), e-mail
    addresses to lower case, others stripped. Catalogs store only keyed hashes of it.
    """

    kind: SubjectKind = attrs.field(converter=_subject_kind)
    value: str = attrs.field(validator=_instance_of(str, expected="a string"), repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "value", _normalise_subject(self.kind, self.value))

    def __repr__(self) -> str:
        return f"SubjectRef(kind={self.kind.value!r}, value=<redacted>)"

    @property
    def canonical(self) -> str:
        """``"<kind>:<normalised value>"``: what keyed hashes are computed over."""
        return f"{self.kind.value}:{self.value}"


@attrs.frozen(kw_only=True, order=True)
class Purpose:
    """A purpose a recording may be kept for, with a stable id and an optional W3C DPV term."""

    id: str = attrs.field(validator=_matches(_PURPOSE_ID, "a lower_snake_case purpose id"))
    label: str = attrs.field(default="", eq=False, order=False)
    dpv: str | None = attrs.field(default=None, eq=False, order=False)


#: The standard purpose catalogue, keyed by id. Organisations may declare more in their policy.
STANDARD_PURPOSES: Final[Mapping[str, Purpose]] = {
    p.id: p
    for p in (
        Purpose(
            id="documentation", label="Documentation of agreements", dpv="dpv:RecordManagement"
        ),
        Purpose(id="quality_assurance", label="Quality assurance", dpv="dpv:ServiceOptimisation"),
        Purpose(id="training", label="Employee training", dpv="dpv:HumanResourceManagement"),
        Purpose(id="dispute_resolution", label="Dispute resolution", dpv="dpv:DisputeManagement"),
        Purpose(id="legal_compliance", label="Legal compliance", dpv="dpv:LegalCompliance"),
        Purpose(id="analytics", label="Analytics", dpv="dpv:ServiceOptimisation"),
        Purpose(
            id="fraud_prevention", label="Fraud prevention", dpv="dpv:FraudPreventionAndDetection"
        ),
    )
}

_purpose_id = _matches(_PURPOSE_ID, "a lower_snake_case purpose id")
_jurisdiction = _matches(_JURISDICTION, "an ISO 3166 code such as 'US-CA' or 'DK'")


def _optional_jurisdiction(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _jurisdiction(instance, attribute, value)


def _subject_ref(value: object) -> SubjectRef:
    if isinstance(value, SubjectRef):
        return value
    if isinstance(value, Mapping):
        return SubjectRef(kind=value.get("kind"), value=value.get("value", ""))
    raise ModelError(f"SubjectRef: expected a SubjectRef or a mapping, got {value!r}")


def _subjects(value: object) -> tuple[SubjectRef, ...]:
    return _tuple(_subject_ref, value)


@attrs.frozen(kw_only=True)
class Party:
    """A participant: role, optional id, jurisdiction (``None`` = unknown) and identifiers.

    An unknown jurisdiction is never treated as permissive by the policy engine.
    """

    role: Role = attrs.field(converter=_role)
    id: str | None = attrs.field(
        default=None, validator=_instance_of(str, expected="a string or None", optional=True)
    )
    jurisdiction: str | None = attrs.field(
        default=None, converter=_upper_optional, validator=_optional_jurisdiction
    )
    subjects: tuple[SubjectRef, ...] = attrs.field(default=(), converter=_subjects, repr=False)
    minor: bool = attrs.field(default=False, validator=_instance_of(bool, expected="a bool"))


def _offset(value: object) -> object:
    if value is None or isinstance(value, timedelta):
        return value
    return _to_timedelta(value)


@attrs.frozen(kw_only=True)
class ConsentEvent:
    """One consent act, refusal, withdrawal, notice or opt-out offer, for one purpose.

    ``offset`` is the time since the call started; ``at`` a wall-clock time; at least one of
    the two is required. ``conditional_service=True`` records that service depended on the
    answer, which makes a consent invalid (GDPR Art. 7(4)).
    """

    role: Role = attrs.field(converter=_role)
    purpose: str = attrs.field(validator=_purpose_id)
    state: ConsentState = attrs.field(converter=_consent_state)
    method: ConsentMethod = attrs.field(converter=_consent_method)
    offset: timedelta | None = attrs.field(default=None, converter=_offset)
    at: datetime | None = attrs.field(default=None, validator=_aware_datetime)
    notice_version: str | None = attrs.field(
        default=None, validator=_instance_of(str, expected="a string or None", optional=True)
    )
    evidence: str | None = attrs.field(
        default=None, validator=_instance_of(str, expected="a string or None", optional=True)
    )
    conditional_service: bool = attrs.field(
        default=False, validator=_instance_of(bool, expected="a bool")
    )

    def __attrs_post_init__(self) -> None:
        if self.offset is None and self.at is None:
            raise ModelError("ConsentEvent: expected an offset or a timestamp (at), got neither")
        if self.offset is not None and (
            not isinstance(self.offset, timedelta) or self.offset < timedelta(0)
        ):
            raise _fail("ConsentEvent", "offset", "a non-negative duration", self.offset)


def _roles(value: object) -> tuple[Role, ...]:
    return _tuple(_role, value)


@attrs.frozen(kw_only=True)
class ChannelLayout:
    """Which role is on which channel.

    Mono: one mixed track, ``roles`` empty. Stereo: two channels, ``roles[i]`` is the role
    recorded on channel *i* (0 = left).
    """

    kind: LayoutKind = attrs.field(converter=_layout_kind)
    roles: tuple[Role, ...] = attrs.field(default=(), converter=_roles)

    def __attrs_post_init__(self) -> None:
        if self.kind is LayoutKind.MONO and self.roles:
            raise ModelError(f"ChannelLayout.roles: expected none for mono, got {self.roles!r}")
        if self.kind is LayoutKind.STEREO and (len(self.roles) != 2 or len(set(self.roles)) != 2):
            raise ModelError(
                "ChannelLayout.roles: expected two different roles for stereo, "
                f"got {tuple(r.value for r in self.roles)!r}"
            )

    @classmethod
    def mono(cls) -> ChannelLayout:
        """One mixed track."""
        return cls(kind=LayoutKind.MONO)

    @classmethod
    def stereo(
        cls, left: Role | str = Role.AGENT, right: Role | str = Role.CUSTOMER
    ) -> ChannelLayout:
        """Two channels, *left* on channel 0 and *right* on channel 1."""
        return cls(kind=LayoutKind.STEREO, roles=(left, right))

    @property
    def channels(self) -> int:
        """Number of channels the layout describes."""
        return 1 if self.kind is LayoutKind.MONO else len(self.roles)

    def channel_of(self, role: Role) -> int | None:
        """The channel index carrying *role* alone, or ``None`` (mono, or role absent)."""
        return self.roles.index(role) if role in self.roles else None


def _consent(value: object) -> ConsentEvent:
    if isinstance(value, ConsentEvent):
        return value
    if isinstance(value, Mapping):
        return ConsentEvent(**value)
    raise ModelError(f"ConsentEvent: expected a ConsentEvent or a mapping, got {value!r}")


def _consents(value: object) -> tuple[ConsentEvent, ...]:
    return _tuple(_consent, value)


def _party(value: object) -> Party:
    if isinstance(value, Party):
        return value
    if isinstance(value, Mapping):
        return Party(**value)
    raise ModelError(f"Party: expected a Party or a mapping, got {value!r}")


def _parties(value: object) -> tuple[Party, ...]:
    return _tuple(_party, value)


def _hold_segments(value: object) -> tuple[Segment, ...]:
    def one(item: object) -> Segment:
        if isinstance(item, Segment):
            return item
        if isinstance(item, Mapping):
            return Segment(**item)
        if isinstance(item, tuple | list) and len(item) == 2:
            return Segment(start=item[0], end=item[1], label="hold")
        raise ModelError(f"Recording.on_hold: expected (start, end) spans, got {item!r}")

    return tuple(sorted(_tuple(one, value)))


def _layout(value: object) -> object:
    if value is None or isinstance(value, ChannelLayout):
        return value
    if isinstance(value, str):
        if value == "mono":
            return ChannelLayout.mono()
        return value
    if isinstance(value, Mapping):
        return ChannelLayout(**value)
    return value


def _optional_rate(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 4000 <= value <= 384000:
        raise _fail(
            type(instance).__name__, attribute.name, "a sample rate in Hz (4000-384000)", value
        )


@attrs.frozen(kw_only=True)
class Recording:
    """A recorded call's metadata: who, where, when, how it was recorded, what was consented.

    Holds a reference to the audio (``source``), never samples. ``layout=None`` means the
    channel layout is unknown; isolation then refuses unless a voiceprint settles it.
    ``on_hold`` lists the spans (seconds from the start) the customer was on hold; the policy
    never keeps them.
    """

    id: str = attrs.field(
        validator=_matches(_RECORDING_ID, "an id of letters, digits, '.', '_', ':' or '-'")
    )
    started_at: datetime = attrs.field(validator=_aware_datetime)
    duration: timedelta = attrs.field(converter=_to_timedelta, validator=_positive_timedelta)
    direction: Direction = attrs.field(converter=_direction)
    parties: tuple[Party, ...] = attrs.field(converter=_parties)
    layout: ChannelLayout | None = attrs.field(
        default=None,
        converter=_layout,
        validator=_instance_of(ChannelLayout, expected="a ChannelLayout or None", optional=True),
    )
    sample_rate: int | None = attrs.field(default=None, validator=_optional_rate)
    purposes: tuple[str, ...] = attrs.field(
        default=(), converter=tuple, validator=_each(_purpose_id)
    )
    consents: tuple[ConsentEvent, ...] = attrs.field(default=(), converter=_consents)
    medium: Medium = attrs.field(default=Medium.PHONE, converter=_medium)
    telemarketing: bool = attrs.field(
        default=False, validator=_instance_of(bool, expected="a bool")
    )
    tags: frozenset[str] = attrs.field(
        default=frozenset(), converter=frozenset, validator=_each(_matches(_TAG, "a short tag"))
    )
    source: str | None = attrs.field(
        default=None, validator=_instance_of(str, expected="a string or None", optional=True)
    )
    on_hold: tuple[Segment, ...] = attrs.field(default=(), converter=_hold_segments)

    def __attrs_post_init__(self) -> None:
        if not self.parties:
            raise ModelError("Recording.parties: expected at least one party, got none")
        roles = {party.role for party in self.parties}
        if self.layout is not None:
            missing = [r.value for r in self.layout.roles if r not in roles]
            if missing:
                raise ModelError(
                    f"Recording.layout: channel role(s) {missing} are not among the parties"
                )
        for index, event in enumerate(self.consents):
            if event.role not in roles:
                raise ModelError(
                    f"Recording.consents[{index}].role: {event.role.value!r} is not a party "
                    "of this recording"
                )
            if event.offset is not None and event.offset > self.duration:
                raise ModelError(
                    f"Recording.consents[{index}].offset: {event.offset.total_seconds()} s is "
                    f"after the end of the call ({self.duration.total_seconds()} s)"
                )
        for index, span in enumerate(self.on_hold):
            if span.end > self.duration.total_seconds():
                raise ModelError(
                    f"Recording.on_hold[{index}]: ends at {span.end} s, after the end of the "
                    f"call ({self.duration.total_seconds()} s)"
                )
        if len(set(self.purposes)) != len(self.purposes):
            raise ModelError(f"Recording.purposes: duplicates in {self.purposes!r}")

    @property
    def ended_at(self) -> datetime:
        """When the call ended."""
        return self.started_at + self.duration

    def parties_with(self, role: Role) -> tuple[Party, ...]:
        """The parties having *role*."""
        return tuple(p for p in self.parties if p.role is role)

    @property
    def subjects(self) -> tuple[SubjectRef, ...]:
        """Every subject identifier of every party."""
        return tuple(s for p in self.parties for s in p.subjects)


def _to_purpose_id(value: object) -> object:
    return value.id if isinstance(value, Purpose) else value


@attrs.frozen(kw_only=True)
class RetentionRule:
    """Keep what was recorded for *purpose* for *keep_for*, counted from *trigger*, then act."""

    purpose: str = attrs.field(converter=_to_purpose_id, validator=_purpose_id)
    keep_for: timedelta = attrs.field(converter=_to_timedelta, validator=_positive_timedelta)
    trigger: RetentionTrigger = attrs.field(
        default=RetentionTrigger.CALL_END, converter=_retention_trigger
    )
    action: RetentionAction = attrs.field(
        default=RetentionAction.DELETE, converter=_retention_action
    )


@attrs.frozen(kw_only=True)
class HoldScope:
    """What a legal hold covers: listed recordings, tagged recordings, or subjects' recordings.

    ``subjects`` holds keyed hashes (hex) of :attr:`SubjectRef.canonical`, never clear values.
    An empty scope covers nothing.
    """

    recordings: frozenset[str] = attrs.field(
        default=frozenset(),
        converter=frozenset,
        validator=_each(_matches(_RECORDING_ID, "a recording id")),
    )
    tags: frozenset[str] = attrs.field(
        default=frozenset(), converter=frozenset, validator=_each(_matches(_TAG, "a short tag"))
    )
    subjects: frozenset[str] = attrs.field(
        default=frozenset(),
        converter=frozenset,
        validator=_each(_matches(re.compile(r"^[0-9a-f]{16,128}$"), "a hex keyed hash")),
    )


def _scope(value: object) -> object:
    if isinstance(value, Mapping):
        return HoldScope(**value)
    return value


@attrs.frozen(kw_only=True)
class LegalHold:
    """A legal hold: while not lifted, nothing in its scope may be deleted."""

    id: str = attrs.field(validator=_matches(_RECORDING_ID, "a hold id"))
    scope: HoldScope = attrs.field(
        converter=_scope, validator=_instance_of(HoldScope, expected="a HoldScope")
    )
    reason: str = attrs.field(validator=_instance_of(str, expected="a reason"))
    placed_at: datetime = attrs.field(validator=_aware_datetime)
    lifted_at: datetime | None = attrs.field(default=None, validator=_aware_datetime)

    def __attrs_post_init__(self) -> None:
        if not self.reason.strip():
            raise ModelError("LegalHold.reason: expected a non-empty reason, got ''")
        if self.lifted_at is not None and self.lifted_at < self.placed_at:
            raise ModelError(
                f"LegalHold.lifted_at: {self.lifted_at.isoformat()} is before placed_at "
                f"{self.placed_at.isoformat()}"
            )

    def active(self, at: datetime) -> bool:
        """Whether the hold is in force at *at*."""
        return self.placed_at <= at and (self.lifted_at is None or at < self.lifted_at)


def _seconds(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _finite_nonneg(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, float) or not 0.0 <= value < float("inf"):
        raise _fail(
            type(instance).__name__, attribute.name, "a finite number of seconds >= 0", value
        )


@attrs.frozen(kw_only=True, order=True)
class Segment:
    """A labelled time span ``[start, end)`` in seconds; sorts by start, then end, then label."""

    start: float = attrs.field(converter=_seconds, validator=_finite_nonneg)
    end: float = attrs.field(converter=_seconds, validator=_finite_nonneg)
    label: str = attrs.field(default="", validator=_instance_of(str, expected="a label"))

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise ModelError(f"Segment.end: {self.end} is before start {self.start}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


# --------------------------------------------------------------------------- JSON

_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (
        SubjectRef,
        Purpose,
        Party,
        ConsentEvent,
        ChannelLayout,
        Recording,
        RetentionRule,
        HoldScope,
        LegalHold,
        Segment,
    )
}


def _make_converter() -> cattrs.Converter:
    converter = make_converter(forbid_extra_keys=True, omit_if_default=False)

    def dump_datetime(value: datetime) -> str:
        return value.isoformat()

    def load_datetime(value: object, _type: type) -> datetime:
        if not isinstance(value, str):
            raise ModelError(f"expected an ISO 8601 time, got {value!r}")
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ModelError(f"expected an ISO 8601 time, got {value!r}") from None

    def dump_timedelta(value: timedelta) -> float:
        return value.total_seconds()

    def load_timedelta(value: object, _type: type) -> timedelta:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"expected a number of seconds, got {value!r}")
        return timedelta(seconds=value)

    converter.register_unstructure_hook(datetime, dump_datetime)
    converter.register_structure_hook(datetime, load_datetime)
    converter.register_unstructure_hook(timedelta, dump_timedelta)
    converter.register_structure_hook(timedelta, load_timedelta)
    converter.register_unstructure_hook(frozenset, lambda value: sorted(value))
    converter.register_unstructure_hook(
        SubjectRef, lambda ref: {"kind": ref.kind.value, "value": ref.value}
    )
    return converter


_CONVERTER: Final = _make_converter()


def to_json(value: object) -> str:
    """Serialise a model value into the versioned JSON envelope.

    ``{"schema": 1, "type": "Recording", "data": {...}}``; see ``docs/schema.md``.
    """
    name = type(value).__name__
    if _TYPES.get(name) is not type(value):
        raise ModelError(f"to_json: {name} is not a voicepriv model type")
    envelope = {"schema": SCHEMA_VERSION, "type": name, "data": _CONVERTER.unstructure(value)}
    return json.dumps(envelope, ensure_ascii=False, sort_keys=True)


def _describe(exc: BaseException, path: str = "") -> list[str]:
    """Every leaf error of a cattrs exception group, with its field path."""
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without_notes = exc.group_exceptions()
        messages: list[str] = []
        for plain in without_notes:
            messages.extend(_describe(plain, path))
        for inner, note in with_notes:
            name = getattr(note, "name", None)
            index = getattr(note, "index", None)
            step = f".{name}" if name is not None else f"[{index}]" if index is not None else ""
            messages.extend(_describe(inner, path + step))
        return messages
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        keys = ", ".join(sorted(exc.extra_fields))
        return [f"{path or '<root>'}: unknown field(s) {keys} (from a newer schema?)"]
    if isinstance(exc, KeyError):
        return [f"{path}: missing required field"]
    return [f"{path}: {exc}" if path else str(exc)]


def from_json(kind: type[_T], text: str | bytes) -> _T:
    """Parse what :func:`to_json` wrote back into a *kind* value.

    :raises ModelError: not JSON, not an envelope, another type, a newer schema version, an
        unknown field, or invalid field values (all reported at once).
    """
    try:
        envelope = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"from_json: not JSON ({exc})") from None
    if not isinstance(envelope, dict) or set(envelope) != {"schema", "type", "data"}:
        raise ModelError("from_json: expected an object with exactly 'schema', 'type' and 'data'")
    if envelope["schema"] != SCHEMA_VERSION:
        raise ModelError(
            f"from_json: schema version {envelope['schema']!r} is not supported "
            f"(this voicepriv reads version {SCHEMA_VERSION})"
        )
    if envelope["type"] != kind.__name__ or _TYPES.get(kind.__name__) is not kind:
        raise ModelError(f"from_json: expected type {kind.__name__!r}, got {envelope['type']!r}")
    try:
        return _CONVERTER.structure(envelope["data"], kind)
    except ModelError as exc:
        raise ModelError(f"from_json {kind.__name__}: {exc}") from None
    except (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError) as exc:
        problems = "; ".join(_describe(exc))
        raise ModelError(f"from_json {kind.__name__}: {problems}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(f"from_json {kind.__name__}: {exc}") from None


def utc_now() -> datetime:
    """The current time in UTC (one place to read the clock)."""
    return datetime.now(UTC)
