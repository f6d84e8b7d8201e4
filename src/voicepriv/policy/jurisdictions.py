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
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

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


def _medium_map(value: object) -> tuple[tuple[Medium, Interception], ...]:
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, Iterable):
        items = value
    else:
        raise PolicyError(f"JurisdictionRule.medium: expected a mapping, got {value!r}")
    out = []
    for medium, rule in items:
        m = medium if isinstance(medium, Medium) else Medium(medium)
        r = rule if isinstance(rule, Interception) else Interception[str(rule).upper()]
        out.append((m, r))
    return tuple(sorted(out, key=lambda pair: pair[0].value))


def _optional_frozenset(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError(f"expected a list of purpose ids, got {value!r}")
    return frozenset(str(v) for v in value)


def _interception(value: object) -> Interception:
    if isinstance(value, Interception):
        return value
    try:
        return Interception[str(value).upper()]
    except KeyError:
        raise PolicyError(
            f"JurisdictionRule.interception: expected 'one_party' or 'all_party', got {value!r}"
        ) from None


def _notice(value: object) -> NoticeRule:
    if isinstance(value, NoticeRule):
        return value
    try:
        return NoticeRule[str(value).upper()]
    except KeyError:
        choices = ", ".join(repr(n.name.lower()) for n in NoticeRule)
        raise PolicyError(
            f"JurisdictionRule.notice: expected one of {choices}, got {value!r}"
        ) from None


def _data_protection(value: object) -> DataProtection:
    if isinstance(value, DataProtection):
        return value
    try:
        return DataProtection(value)
    except ValueError:
        choices = ", ".join(repr(d.value) for d in DataProtection)
        raise PolicyError(
            f"JurisdictionRule.data_protection: expected one of {choices}, got {value!r}"
        ) from None


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
    """

    code: str = attrs.field(validator=attrs.validators.matches_re(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"))
    name: str
    citation: str
    interception: Interception = attrs.field(converter=_interception)
    notice: NoticeRule = attrs.field(default=NoticeRule.YES, converter=_notice)
    notice_on_recording: bool = False
    written: bool = False
    parent: str | None = None
    medium: tuple[tuple[Medium, Interception], ...] = attrs.field(default=(), converter=_medium_map)
    vendor_all_party: bool = False
    data_protection: DataProtection = attrs.field(
        default=DataProtection.NONE, converter=_data_protection
    )
    opt_out_purposes: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    opt_out_citation: str = ""
    li_purposes: frozenset[str] | None = attrs.field(default=None, converter=_optional_frozenset)
    works_council: bool = False
    purpose_notice: bool = False
    employees_told: bool = False
    verified: bool = True
    sources: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    notes: str = ""

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

_FIELDS: Final = frozenset(a.name for a in attrs.fields(JurisdictionRule)) - {"code"}


def parse_rules(text: str, source: str) -> tuple[JurisdictionRule, ...]:
    """Parse a jurisdiction pack (TOML with a ``[rules]`` table of inline entries).

    :raises PolicyError: naming *source* and the line of every bad entry, all at once.
    """
    doc = Located(text, source)
    table = doc.data.get("rules")
    if not isinstance(table, dict):
        raise PolicyError(f"{source}: expected a [rules] table of jurisdiction entries")
    problems: list[str] = []
    rules: list[JurisdictionRule] = []
    for code, entry in table.items():
        where = doc.where(("rules", code))
        if not isinstance(entry, dict):
            problems.append(f"{where}: entry {code!r} must be a table")
            continue
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            problems.append(f"{where}: entry {code!r} has unknown field(s) {', '.join(unknown)}")
            continue
        try:
            rules.append(JurisdictionRule(code=code, **entry))
        except (PolicyError, ValueError, TypeError, KeyError) as exc:
            problems.append(f"{where}: entry {code!r}: {exc}")
    known = {r.code for r in rules}
    for rule in rules:
        if rule.parent is not None and rule.parent not in known:
            problems.append(
                f"{doc.where(('rules', rule.code))}: entry {rule.code!r} has unknown parent "
                f"{rule.parent!r}"
            )
    if problems:
        raise PolicyError("\n".join(problems))
    return tuple(rules)


@cache
def builtin_rules() -> tuple[JurisdictionRule, ...]:
    """The built-in table, read once from the package's ``data/jurisdictions.toml``."""
    text = (
        resources.files("voicepriv.policy")
        .joinpath("data/jurisdictions.toml")
        .read_text(encoding="utf-8")
    )
    return parse_rules(text, "voicepriv/policy/data/jurisdictions.toml")


class JurisdictionTable(Mapping[str, JurisdictionRule]):
    """A read-only table of jurisdiction rules keyed by code, with ancestor resolution."""

    def __init__(self, rules: Iterable[JurisdictionRule]) -> None:
        self._rules: dict[str, JurisdictionRule] = {}
        for rule in rules:
            self._rules[rule.code] = rule
        for rule in self._rules.values():
            if rule.parent is not None and rule.parent not in self._rules:
                raise PolicyError(
                    f"jurisdiction {rule.code!r}: parent {rule.parent!r} is not in the table"
                )
        self._chains: dict[str, tuple[JurisdictionRule, ...]] = {}
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
