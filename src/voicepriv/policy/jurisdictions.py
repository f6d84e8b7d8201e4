"""Consent law per jurisdiction, and the law that applies to a call.

Two layers decide whether a call may be kept: **interception law** (may the call be recorded at
all: one-party or all-party consent, per jurisdiction) and **data-protection law** (for which
purposes it may be kept, on which GDPR / UK GDPR basis). Every entry of the built-in table
(``policy/data/jurisdictions.toml``) cites its statute; plugin jurisdiction packs add or override
entries through :func:`load_jurisdictions`.

A call applies the strictest rule of every party's jurisdiction; an unknown jurisdiction is
never permissive: it resolves to :data:`STRICTEST`, and the decision says so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar

import attrs

from voicepriv.errors import PolicyError, UnknownJurisdictionError
from voicepriv.model import Medium
from voicepriv.policy._toml import Located

__all__ = [
    "STRICTEST",
    "UNKNOWN_CODE",
    "DataProtection",
    "Interception",
    "JurisdictionRule",
    "JurisdictionTable",
    "NoticeRule",
    "builtin_rules",
    "load_jurisdictions",
    "parse_rules",
]

_E = TypeVar("_E", bound=enum.Enum)


class Interception(enum.IntEnum):
    """Who must consent to a call being recorded; higher is stricter."""

    ONE_PARTY = 0
    ALL_PARTY = 1

    @property
    def label(self) -> str:
        """``"one-party"`` or ``"all-party"``."""
        return self.name.lower().replace("_", "-")


class NoticeRule(enum.IntEnum):
    """Where consent is needed, is an announcement enough? Higher is stricter.

    ``YES``: an announcement is enough or not needed. ``STATUTORY``: the statute names notice
    as a route. ``IMPLIED``: clear notice + staying on the line is implied consent.
    ``CONTESTED``: sources disagree; treated as ``NO``. ``NO``: an affirmative act is needed.
    """

    YES = 0
    STATUTORY = 1
    IMPLIED = 2
    CONTESTED = 3
    NO = 4

    @property
    def notice_suffices(self) -> bool:
        """Whether a played announcement satisfies an all-party rule."""
        return self <= NoticeRule.IMPLIED


class DataProtection(enum.Enum):
    """The data-protection regime of a jurisdiction."""

    NONE = "none"
    GDPR = "gdpr"
    UK_GDPR = "uk_gdpr"
    PIPEDA = "pipeda"
    DPDP = "dpdp"

    @property
    def needs_lawful_basis(self) -> bool:
        """Whether every purpose needs a GDPR Art. 6 lawful basis (GDPR and UK GDPR)."""
        return self in {DataProtection.GDPR, DataProtection.UK_GDPR}


_CODE: Final = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def _member(kind: type[_E], field: str, value: object, *, by_name: bool) -> _E:
    """*value* as a member of *kind* (by lower-case name or by value); a string, never coerced."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind[value.upper()] if by_name else kind(value)
        except (KeyError, ValueError):
            pass
    choices = ", ".join(repr(m.name.lower() if by_name else m.value) for m in kind)
    raise PolicyError(f"JurisdictionRule.{field}: expected one of {choices}, got {value!r}")


def _medium_map(value: object) -> tuple[tuple[Medium, Interception], ...]:
    """``{medium = "all_party"}`` (or ``(medium, rule)`` pairs) as sorted pairs of enums."""
    if isinstance(value, Mapping):
        items: list[tuple[object, object]] = list(value.items())
    elif isinstance(value, tuple | list) and all(
        isinstance(pair, tuple | list) and len(pair) == 2 for pair in value
    ):
        items = [(pair[0], pair[1]) for pair in value]
    else:
        raise PolicyError(
            "JurisdictionRule.medium: expected a table of medium = 'one_party' | 'all_party', "
            f"got {value!r}"
        )
    out = [
        (
            _member(Medium, "medium", medium, by_name=False),
            _member(Interception, "medium", rule, by_name=True),
        )
        for medium, rule in items
    ]
    return tuple(sorted(out, key=lambda pair: pair[0].value))


def _interception(value: object) -> Interception:
    return _member(Interception, "interception", value, by_name=True)


def _notice(value: object) -> NoticeRule:
    return _member(NoticeRule, "notice", value, by_name=True)


def _data_protection(value: object) -> DataProtection:
    return _member(DataProtection, "data_protection", value, by_name=False)


def _all_strings(value: object) -> bool:
    return isinstance(value, tuple | list | set | frozenset) and all(
        isinstance(v, str) for v in value
    )


# Converters only normalise (a list of strings to a frozenset or tuple); anything else is left
# as it is for the validators below to reject, so a bare string never becomes its characters.


def _to_frozenset(value: Any) -> Any:
    return frozenset(value) if _all_strings(value) else value


def _to_tuple(value: Any) -> Any:
    return tuple(value) if _all_strings(value) else value


def _is_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise PolicyError(
            f"JurisdictionRule.{attribute.name}: expected true or false, got {value!r}"
        )


def _is_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise PolicyError(f"JurisdictionRule.{attribute.name}: expected a string, got {value!r}")


def _is_filled_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(
            f"JurisdictionRule.{attribute.name}: expected a non-empty string, got {value!r}"
        )


def _is_code(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _CODE.match(value):
        raise PolicyError(
            f"JurisdictionRule.{attribute.name}: expected an ISO 3166 code such as 'DK' or "
            f"'US-CA' (or 'EU'), got {value!r}"
        )


def _is_optional_code(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_code(instance, attribute, value)


def _is_strings(kind: type[tuple[str, ...]] | type[frozenset[str]]) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind) or not _all_strings(value):
            raise PolicyError(
                f"JurisdictionRule.{attribute.name}: expected a list of strings, got {value!r}"
            )

    return check


_is_string_set: Final = _is_strings(frozenset)
_is_string_tuple: Final = _is_strings(tuple)


def _is_optional_string_set(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _is_string_set(instance, attribute, value)


@attrs.frozen(kw_only=True)
class JurisdictionRule:
    """The consent law of one jurisdiction, with its citation.

    :param code: ISO 3166 code (``"US-CA"``, ``"DK"``) or ``"EU"`` for the GDPR default.
    :param parent: the code this entry inherits from (a state's country, ``"EU"``); the
        effective rule is the strictest of an entry and its ancestors.
    :param interception: one-party or all-party consent to record.
    :param notice: whether an announcement satisfies an all-party rule.
    :param notice_on_recording: the announcement must be on the recording (CT, WA).
    :param medium: per-medium override of *interception* (OR, NV).
    :param vendor_all_party: a third-party vendor on the call makes it all-party (MI, CA).
    :param data_protection: the regime that decides purposes and lawful bases.
    :param opt_out_purposes: purposes for which an organisation may enable an opt-out model.
    :param li_purposes: purposes legitimate interests may cover (``None`` = any).
    :param works_council: recording employees needs a works-council agreement (DE).
    :param purpose_notice: every purpose kept must have been announced (PIPEDA, DPDP).
    :param employees_told: the law names a duty to tell employees in advance (FR, UK).
    :param verified: ``False`` when sources disagree or are missing (treated conservatively).
    :raises PolicyError: a field of the wrong type (``verified = "false"``, ``sources = "S1"``:
        flags are booleans, texts are strings, lists are lists of strings, never a bare string)
        or an unknown value, naming the field and the value received.
    """

    code: str = attrs.field(validator=_is_code)
    name: str = attrs.field(validator=_is_filled_text)
    citation: str = attrs.field(validator=_is_filled_text)
    interception: Interception = attrs.field(converter=_interception)
    notice: NoticeRule = attrs.field(default=NoticeRule.YES, converter=_notice)
    notice_on_recording: bool = attrs.field(default=False, validator=_is_bool)
    written: bool = attrs.field(default=False, validator=_is_bool)
    parent: str | None = attrs.field(default=None, validator=_is_optional_code)
    medium: tuple[tuple[Medium, Interception], ...] = attrs.field(default=(), converter=_medium_map)
    vendor_all_party: bool = attrs.field(default=False, validator=_is_bool)
    data_protection: DataProtection = attrs.field(
        default=DataProtection.NONE, converter=_data_protection
    )
    opt_out_purposes: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_frozenset, validator=_is_string_set
    )
    opt_out_citation: str = attrs.field(default="", validator=_is_text)
    li_purposes: frozenset[str] | None = attrs.field(
        default=None, converter=_to_frozenset, validator=_is_optional_string_set
    )
    works_council: bool = attrs.field(default=False, validator=_is_bool)
    purpose_notice: bool = attrs.field(default=False, validator=_is_bool)
    employees_told: bool = attrs.field(default=False, validator=_is_bool)
    verified: bool = attrs.field(default=True, validator=_is_bool)
    sources: tuple[str, ...] = attrs.field(
        default=(), converter=_to_tuple, validator=_is_string_tuple
    )
    notes: str = attrs.field(default="", validator=_is_text)

    def interception_for(self, medium: Medium) -> Interception:
        """The interception rule for a call carried over *medium*."""
        for m, rule in self.medium:
            if m is medium:
                return rule
        return self.interception

    @property
    def cite(self) -> str:
        """The citation, marked ``(unverified)`` when the entry is not verified."""
        return self.citation if self.verified else f"{self.citation} (unverified)"


#: Code used in reasons for a party whose jurisdiction is missing or not in any table.
UNKNOWN_CODE: Final = "??"

#: The rule applied to an unknown jurisdiction: at least as strict as every known entry.
STRICTEST: Final = JurisdictionRule(
    code="ZZ",
    name="unknown jurisdiction (strictest rule)",
    citation="Kearney v. Salomon Smith Barney (2006): unknown location -> all-party; "
    "GDPR Art. 6 with opt-in consent",
    interception=Interception.ALL_PARTY,
    notice=NoticeRule.NO,
    notice_on_recording=True,
    vendor_all_party=True,
    data_protection=DataProtection.GDPR,
    opt_out_purposes=frozenset(),
    li_purposes=frozenset(),
    works_council=True,
    purpose_notice=True,
    employees_told=True,
    verified=True,
)

_ATTRIBUTES: Final = {a.name: a for a in attrs.fields(JurisdictionRule)}
_FIELDS: Final = frozenset(_ATTRIBUTES) - {"code"}
_REQUIRED: Final = frozenset(
    name for name, a in _ATTRIBUTES.items() if a.default is attrs.NOTHING and name != "code"
)


def _field_problem(name: str, value: object) -> str | None:
    """What is wrong with *value* for the field *name*, or ``None`` (converter, then validator)."""
    attribute = _ATTRIBUTES[name]
    try:
        if callable(attribute.converter):  # ours are plain one-argument functions
            value = attribute.converter(value)
        if attribute.validator is not None:
            attribute.validator(None, attribute, value)
    except PolicyError as exc:
        return str(exc)
    return None


def _parent_problems(rules: Mapping[str, JurisdictionRule], codes: Iterable[str]) -> dict[str, str]:
    """For each of *codes* whose ancestry in *rules* is broken, what is wrong with it.

    An entry is reported when its own parent is missing from *rules* or when its chain of
    parents leads back to it (an entry leading into a cycle it is not part of is not: the
    entries of the cycle are).
    """
    found: dict[str, str] = {}
    for code in codes:
        rule = rules[code]
        if rule.parent is not None and rule.parent not in rules:
            found[code] = f"has unknown parent {rule.parent!r}"
            continue
        path = [code]
        while rule.parent is not None and rule.parent in rules and rule.parent not in path:
            path.append(rule.parent)
            rule = rules[rule.parent]
        if rule.parent == code:
            found[code] = "has a parent cycle: " + " -> ".join([*path, code])
    return found


def parse_rules(
    text: str, source: str, *, base: Iterable[JurisdictionRule] | None = None
) -> tuple[JurisdictionRule, ...]:
    """Parse a jurisdiction pack (TOML with a ``[rules]`` table of inline entries).

    Every field is checked for its type (``verified = "false"`` is an error, not a true value;
    ``sources = "S1"`` is an error, not ``("S", "1")``), and every entry's parent must exist and
    lead to no cycle in *base* with the pack applied over it.

    :param base: the entries the pack adds to or overrides, which its parents may name
        (default: the built-in table).
    :raises PolicyError: naming *source* and the line of every problem, all at once.
    """
    doc = Located(text, source)
    table = doc.data.get("rules")
    if not isinstance(table, dict):
        raise PolicyError(f"{source}: expected a [rules] table of jurisdiction entries")
    problems: list[tuple[int, str]] = []

    def fail(path: tuple[str, ...], message: str) -> None:
        problems.append((doc.line(path) or 0, f"{doc.where(path)}: {message}"))

    rules: dict[str, JurisdictionRule] = {}
    for code, entry in table.items():
        path = ("rules", code)
        if not isinstance(entry, dict):
            fail(path, f"entry {code!r} must be a table, got {entry!r}")
            continue
        before = len(problems)
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            fail(path, f"entry {code!r} has unknown field(s) {', '.join(unknown)}")
        for name in sorted(_REQUIRED - set(entry)):
            fail(path, f"entry {code!r} needs {name!r}")
        for name, value in {"code": code, **entry}.items():
            problem = _field_problem(name, value) if name in _ATTRIBUTES else None
            if problem is not None:
                fail((*path, name), f"entry {code!r}: {problem}")
        if len(problems) == before:
            rules[code] = JurisdictionRule(code=code, **entry)
    merged = {rule.code: rule for rule in (builtin_rules() if base is None else base)}
    merged.update(rules)
    # A parent that is an entry of this pack with problems of its own is not reported again.
    broken = set(table) - set(rules)
    checked = [code for code, rule in rules.items() if rule.parent not in broken]
    for code, problem in _parent_problems(merged, checked).items():
        fail(("rules", code, "parent"), f"entry {code!r} {problem}")
    if problems:
        raise PolicyError("\n".join(message for _, message in sorted(problems, key=_first)))
    return tuple(rules.values())


def _first(problem: tuple[int, str]) -> int:
    return problem[0]


@cache
def builtin_rules() -> tuple[JurisdictionRule, ...]:
    """The built-in table, read once from the package's ``data/jurisdictions.toml``."""
    text = (
        resources.files("voicepriv.policy")
        .joinpath("data/jurisdictions.toml")
        .read_text(encoding="utf-8")
    )
    return parse_rules(text, "voicepriv/policy/data/jurisdictions.toml", base=())


class JurisdictionTable(Mapping[str, JurisdictionRule]):
    """A read-only table of jurisdiction rules keyed by code, with ancestor resolution.

    :raises PolicyError: an entry's parent is not in the table, or parents form a cycle.
    """

    def __init__(self, rules: Iterable[JurisdictionRule]) -> None:
        self._rules: dict[str, JurisdictionRule] = {}
        for rule in rules:
            self._rules[rule.code] = rule
        problems = _parent_problems(self._rules, self._rules)
        if problems:
            raise PolicyError(
                "\n".join(f"jurisdiction {code!r} {problem}" for code, problem in problems.items())
            )
        self._chains: dict[str, tuple[JurisdictionRule, ...]] = {}
        below: dict[str, list[str]] = {}
        for code, rule in self._rules.items():
            parent = rule.parent
            while parent is not None:  # acyclic: checked above
                below.setdefault(parent, []).append(code)
                parent = self._rules[parent].parent
        self._parts = {code: tuple(sorted(parts)) for code, parts in below.items()}
        #: Memo of values derived from this table (e.g. the law for a set of parties).
        self.memo: dict[Any, Any] = {}

    def __getitem__(self, code: str) -> JurisdictionRule:
        try:
            return self._rules[code]
        except KeyError:
            raise UnknownJurisdictionError(
                f"jurisdiction {code!r} is not in any loaded jurisdiction pack"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def parts(self, code: str | None) -> tuple[str, ...]:
        """Every entry below *code* (its descendants: the states of ``"US"``), sorted by code;
        ``()`` for an entry without parts, an unknown code or ``None``."""
        return () if code is None else self._parts.get(code, ())

    def chain(self, code: str | None) -> tuple[JurisdictionRule, ...]:
        """*code*'s rule followed by its ancestors; ``(STRICTEST,)`` when unknown or ``None``."""
        if code is None:
            return (STRICTEST,)
        found = self._chains.get(code)
        if found is not None:
            return found
        rule = self._rules.get(code)
        if rule is None:
            return (STRICTEST,)
        chain = [rule]
        seen = {rule.code}
        while chain[-1].parent is not None:
            parent = self._rules[chain[-1].parent]
            if parent.code in seen:
                raise PolicyError(f"jurisdiction {code!r}: parent cycle through {parent.code!r}")
            seen.add(parent.code)
            chain.append(parent)
        result = tuple(chain)
        self._chains[code] = result
        return result

    def knows(self, code: str | None) -> bool:
        """Whether *code* is in the table."""
        return code is not None and code in self._rules


def load_jurisdictions(extra: Iterable[JurisdictionRule] = ()) -> JurisdictionTable:
    """The built-in table with *extra* entries added or overriding by code (later wins).

    Plugin packs are gathered by the caller (``voicepriv.backends.jurisdictions
    .plugin_jurisdictions``): the policy package never imports the plugin manager.
    """
    return JurisdictionTable((*builtin_rules(), *extra))
