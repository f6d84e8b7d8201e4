"""An organisation's recording policy, loaded from TOML and validated with line numbers.

A policy declares the purposes recordings are kept for (each with its GDPR Art. 6 basis and
retention), which roles may use recordings for which purposes, whether outbound calls keep
the agent side only, the notices played to callers (text + version), and the IVR prompts whose
digits grant or refuse consent per purpose. ``docs/policy.md`` is the guide.

Every problem in a file is reported at once, each with its line:
``policy.toml line 12: purpose 'qa' has no legal basis``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import attrs

from voicepriv.errors import PolicyError
from voicepriv.model import ConsentState, LegalBasis, RetentionRule
from voicepriv.policy._toml import Located

__all__ = [
    "BASIS_NAMES",
    "DigitAction",
    "IvrPrompt",
    "Notice",
    "Organisation",
    "Policy",
    "PurposePolicy",
    "load_policy",
    "parse_duration",
    "parse_policy",
]

#: Names accepted for a legal basis besides its letter (``"a"`` .. ``"f"``).
BASIS_NAMES: Final[Mapping[str, LegalBasis]] = {
    "consent": LegalBasis.CONSENT,
    "contract": LegalBasis.CONTRACT,
    "legal_obligation": LegalBasis.LEGAL_OBLIGATION,
    "vital_interests": LegalBasis.VITAL_INTERESTS,
    "public_task": LegalBasis.PUBLIC_TASK,
    "legitimate_interests": LegalBasis.LEGITIMATE_INTERESTS,
}
#: Bases that need the purpose mapped to a documented reference (contract, statute ...).
REFERENCED_BASES: Final = frozenset(
    {
        LegalBasis.CONTRACT,
        LegalBasis.LEGAL_OBLIGATION,
        LegalBasis.VITAL_INTERESTS,
        LegalBasis.PUBLIC_TASK,
    }
)

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(day|week|month|year)s?\s*$")
_UNIT_DAYS: Final = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}
_PURPOSE_ID: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_JURISDICTION: Final = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_DIGIT: Final = re.compile(r"^[0-9*#]$")
_STATES: Final = {state.value: state for state in ConsentState}


def parse_duration(text: str) -> timedelta:
    """``"6 months"``, ``"2 years"``, ``"30 days"``, ``"12 weeks"`` as a :class:`timedelta`.

    Months count 30.4375 days and years 365.25 days, rounded *up* to whole days, so a legal
    minimum (MiFID II: 5 years) is never cut short by a leap day.

    :raises PolicyError: the text is not ``<number> <day|week|month|year>[s]``.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise PolicyError(
            f"expected a duration such as '6 months', '2 years' or '30 days', got {text!r}"
        )
    days = math.ceil(float(match.group(1)) * _UNIT_DAYS[match.group(2)])
    if days <= 0:
        raise PolicyError(f"expected a positive duration, got {text!r}")
    return timedelta(days=days)


@attrs.frozen(kw_only=True)
class Organisation:
    """Who the controller is and what it has done for its employees.

    :param establishment: jurisdiction where the organisation is established (GDPR Art. 3(1)
        applies to an EU/EEA establishment whatever the parties' locations).
    :param employees_informed: agents were told in advance that calls are recorded.
    :param employee_basis: the basis for keeping the agent's voice (employment).
    :param employee_basis_reference: where that basis is documented (contract, balancing test).
    :param works_council_agreement: reference of the works agreement (needed in DE).
    """

    name: str
    establishment: str | None = None
    employees_informed: bool = False
    employee_basis: LegalBasis = LegalBasis.LEGITIMATE_INTERESTS
    employee_basis_reference: str | None = None
    works_council_agreement: str | None = None
    third_party_processors: bool = False
    redact_payment_data: bool = False
    access_grant: timedelta = timedelta(hours=8)


@attrs.frozen(kw_only=True)
class PurposePolicy:
    """One declared purpose: its legal basis, retention and the documents that back it.

    :param reference: for contract / legal obligation / vital interests / public task, the
        contract clause or statute the purpose is mapped to (e.g. ``"MiFID II Art. 16(7)"``).
    :param balancing_test: for legitimate interests, the reference of the documented test.
    :param opt_out: notice + offered opt-out not exercised counts for this purpose, where the
        jurisdiction allows it (e.g. QA in DK); needs *opt_out_guidance*.
    :param special_category_condition: GDPR Art. 9(2) condition for sensitive content.
    """

    id: str
    label: str = ""
    basis: LegalBasis
    retention: RetentionRule
    reference: str | None = None
    balancing_test: str | None = None
    opt_out: bool = False
    opt_out_guidance: str | None = None
    special_category_condition: str | None = None
    #: Whether the basis needs a contract or statute reference (b, c, d, e).
    referenced: bool = attrs.field(init=False)
    #: The basis's citation, e.g. ``"GDPR Art. 6(1)(a)"``.
    article: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "referenced", self.basis in REFERENCED_BASES)
        object.__setattr__(self, "article", self.basis.article)


@attrs.frozen(kw_only=True)
class Notice:
    """A notice played to callers: its text, version and the purposes it announces.

    :param accepted_versions: versions still valid as proof the notice was played (the current
        *version* is always among them).
    """

    id: str
    version: str
    text: str
    purposes: tuple[str, ...]
    accepted_versions: frozenset[str]


@attrs.frozen(kw_only=True)
class DigitAction:
    """What one IVR digit means: grant, refuse or withdraw consent for one purpose."""

    purpose: str
    state: ConsentState


@attrs.frozen(kw_only=True)
class IvrPrompt:
    """An IVR prompt: the notice it plays and what each digit means."""

    id: str
    notice: str
    digits: Mapping[str, DigitAction]


@attrs.frozen(kw_only=True, eq=False)
class Policy:
    """A validated organisation policy (see ``docs/policy.md``).

    :param warnings: non-fatal findings (e.g. legitimate interests without a balancing test:
        valid TOML, but :func:`~voicepriv.policy.decide` will not keep that purpose).
    """

    source: str
    organisation: Organisation
    purposes: Mapping[str, PurposePolicy]
    roles: Mapping[str, frozenset[str]]
    outbound_agent_side_only: bool = False
    notices: Mapping[str, Notice] = attrs.field(factory=dict)
    ivr_prompts: Mapping[str, IvrPrompt] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()
    notice_versions: Mapping[str, frozenset[str]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        versions: dict[str, set[str]] = {p: set() for p in self.purposes}
        for notice in self.notices.values():
            for purpose in notice.purposes:
                versions.setdefault(purpose, set()).update(notice.accepted_versions)
        object.__setattr__(self, "notice_versions", {p: frozenset(v) for p, v in versions.items()})

    def allowed(self, role: str) -> frozenset[str]:
        """Purposes *role* may use recordings for (empty for an unknown role)."""
        return self.roles.get(role, frozenset())


# --------------------------------------------------------------------------- parsing

_TOP: Final = frozenset({"organisation", "outbound", "purposes", "notices", "roles", "ivr"})
_ORG: Final = frozenset(
    {
        "name",
        "establishment",
        "employees_informed",
        "employee_basis",
        "employee_basis_reference",
        "works_council_agreement",
        "third_party_processors",
        "redact_payment_data",
        "access_grant_hours",
    }
)
_PURPOSE: Final = frozenset(
    {
        "label",
        "basis",
        "retention",
        "reference",
        "balancing_test",
        "opt_out",
        "opt_out_guidance",
        "special_category_condition",
    }
)
_NOTICE: Final = frozenset({"version", "text", "purposes", "accepted_versions"})


class _Reader:
    """Collects every problem of one document with its line."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.problems: list[tuple[int, str]] = []
        self.declared: set[str] = set()
        self.warnings: list[str] = []

    def fail(self, path: tuple[str, ...], message: str) -> None:
        line = self.doc.line(path) or 0
        self.problems.append((line, f"{self.doc.where(path)}: {message}"))

    def warn(self, path: tuple[str, ...], message: str) -> None:
        self.warnings.append(f"{self.doc.where(path)}: {message}")

    def table(
        self, value: object, path: tuple[str, ...], fields: frozenset[str] | None
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"[{'.'.join(path)}] must be a table, got {value!r}")
            return {}
        if fields is not None:
            for key in sorted(set(value) - fields):
                self.fail((*path, key), f"unknown key {key!r} in [{'.'.join(path)}]")
        return value

    def text(
        self, table: Mapping[str, Any], path: tuple[str, ...], key: str, *, required: bool = False
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.fail(path, f"[{'.'.join(path)}] needs {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail((*path, key), f"{key!r} must be a non-empty string, got {value!r}")
            return None
        return value.strip()

    def flag(self, table: Mapping[str, Any], path: tuple[str, ...], key: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.fail((*path, key), f"{key!r} must be true or false, got {value!r}")
            return False
        return value

    def basis(self, value: object, path: tuple[str, ...]) -> LegalBasis | None:
        if isinstance(value, str):
            name = value.strip().lower()
            if name in BASIS_NAMES:
                return BASIS_NAMES[name]
            for basis in LegalBasis:
                if name == basis.value:
                    return basis
        choices = ", ".join(repr(n) for n in BASIS_NAMES)
        self.fail(path, f"legal basis must be one of {choices} (or 'a'..'f'), got {value!r}")
        return None

    def strings(self, value: object, path: tuple[str, ...], what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, f"{what} must be a list of strings, got {value!r}")
            return ()
        return tuple(value)


def _organisation(r: _Reader, data: dict[str, Any]) -> Organisation:
    path = ("organisation",)
    org = r.table(data.get("organisation"), path, _ORG)
    if "organisation" not in data:
        r.fail((), "missing [organisation] table (name, establishment, employees_informed)")
    name = r.text(org, path, "name", required="organisation" in data) or "?"
    establishment = r.text(org, path, "establishment")
    if establishment is not None and not _JURISDICTION.match(establishment):
        r.fail(
            (*path, "establishment"),
            "establishment must be an ISO 3166 code such as 'DK' or 'US-NY', "
            f"got {establishment!r}",
        )
        establishment = None
    if establishment is None and "organisation" in data:
        r.warn(path, "no establishment: GDPR is assumed to apply (strictest reading)")
    basis = LegalBasis.LEGITIMATE_INTERESTS
    if "employee_basis" in org:
        basis = r.basis(org["employee_basis"], (*path, "employee_basis")) or basis
    hours = org.get("access_grant_hours", 8)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 366:
        r.fail(
            (*path, "access_grant_hours"),
            f"access_grant_hours must be a positive number of hours, got {hours!r}",
        )
        hours = 8
    informed = r.flag(org, path, "employees_informed")
    reference = r.text(org, path, "employee_basis_reference")
    if not informed and "organisation" in data:
        r.warn(
            (*path, "employees_informed"),
            "employees are not recorded as informed: under GDPR / UK GDPR no agent track is kept",
        )
    if reference is None and "organisation" in data:
        r.warn(
            path,
            "no employee_basis_reference: the agent's voice has no documented basis under GDPR",
        )
    return Organisation(
        name=name,
        establishment=establishment,
        employees_informed=informed,
        employee_basis=basis,
        employee_basis_reference=reference,
        works_council_agreement=r.text(org, path, "works_council_agreement"),
        third_party_processors=r.flag(org, path, "third_party_processors"),
        redact_payment_data=r.flag(org, path, "redact_payment_data"),
        access_grant=timedelta(hours=float(hours)),
    )


def _purposes(r: _Reader, data: dict[str, Any]) -> dict[str, PurposePolicy]:
    out: dict[str, PurposePolicy] = {}
    table = r.table(data.get("purposes"), ("purposes",), None)
    if not table:
        r.fail(("purposes",), "the policy declares no purposes ([purposes.<id>] tables)")
    r.declared.update(table)
    for pid, raw in table.items():
        path = ("purposes", pid)
        if not _PURPOSE_ID.match(pid):
            r.fail(path, f"purpose id {pid!r} must be lower_snake_case")
            continue
        entry = r.table(raw, path, _PURPOSE)
        if "basis" not in entry:
            r.fail(path, f"purpose {pid!r} has no legal basis")
            basis = None
        else:
            basis = r.basis(entry["basis"], (*path, "basis"))
        retention = None
        if "retention" not in entry:
            r.fail(path, f"purpose {pid!r} has no retention")
        else:
            try:
                retention = RetentionRule(purpose=pid, keep_for=parse_duration(entry["retention"]))
            except PolicyError as exc:
                r.fail((*path, "retention"), f"purpose {pid!r}: {exc}")
        label = r.text(entry, path, "label") or ""
        reference = r.text(entry, path, "reference")
        balancing = r.text(entry, path, "balancing_test")
        opt_out = r.flag(entry, path, "opt_out")
        guidance = r.text(entry, path, "opt_out_guidance")
        if opt_out and guidance is None:
            r.fail(
                (*path, "opt_out"),
                f"purpose {pid!r}: opt_out needs opt_out_guidance citing the guidance "
                "that allows it",
            )
        if opt_out and basis is not None and basis is not LegalBasis.CONSENT:
            r.fail(
                (*path, "opt_out"),
                f"purpose {pid!r}: opt_out only applies to a consent basis, not {basis.article}",
            )
        if basis in REFERENCED_BASES and reference is None:
            r.warn(
                path,
                f"purpose {pid!r}: {basis.article if basis else ''} needs a 'reference' "
                "mapping it to a contract or statute; it will not be kept",
            )
        if basis is LegalBasis.LEGITIMATE_INTERESTS and balancing is None:
            r.warn(
                path,
                f"purpose {pid!r}: legitimate interests needs a documented "
                "'balancing_test' reference; it will not be kept",
            )
        if basis is None or retention is None:
            continue
        out[pid] = PurposePolicy(
            id=pid,
            label=label,
            basis=basis,
            retention=retention,
            reference=reference,
            balancing_test=balancing,
            opt_out=opt_out,
            opt_out_guidance=guidance,
            special_category_condition=r.text(entry, path, "special_category_condition"),
        )
    return out


def _notices(
    r: _Reader, data: dict[str, Any], purposes: Mapping[str, PurposePolicy]
) -> dict[str, Notice]:
    out: dict[str, Notice] = {}
    for nid, raw in r.table(data.get("notices"), ("notices",), None).items():
        path = ("notices", nid)
        entry = r.table(raw, path, _NOTICE)
        version = r.text(entry, path, "version", required=True)
        text = r.text(entry, path, "text", required=True)
        listed = r.strings(entry.get("purposes", []), (*path, "purposes"), "purposes")
        for pid in listed:
            if pid not in r.declared:
                r.fail((*path, "purposes"), f"notice {nid!r} names undeclared purpose {pid!r}")
        accepted = r.strings(
            entry.get("accepted_versions", []), (*path, "accepted_versions"), "accepted_versions"
        )
        if any(not v.strip() for v in accepted):
            r.fail(
                (*path, "accepted_versions"),
                f"notice {nid!r}: accepted_versions must be non-empty strings, "
                f"got {list(accepted)!r}",
            )
            accepted = ()
        if version is not None and text is not None:
            out[nid] = Notice(
                id=nid,
                version=version,
                text=text,
                purposes=listed,
                accepted_versions=frozenset({version, *accepted}),
            )
    for pid, purpose in purposes.items():
        if purpose.basis is LegalBasis.CONSENT and not any(pid in n.purposes for n in out.values()):
            r.warn(
                ("purposes", pid),
                f"purpose {pid!r} relies on consent but no notice announces it: "
                "consent can never be valid",
            )
    return out


def _roles(
    r: _Reader, data: dict[str, Any], purposes: Mapping[str, PurposePolicy]
) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for role, raw in r.table(data.get("roles"), ("roles",), None).items():
        path = ("roles", role)
        entry = r.table(raw, path, frozenset({"purposes"}))
        listed = r.strings(entry.get("purposes", []), (*path, "purposes"), "purposes")
        for pid in listed:
            if pid not in r.declared:
                r.fail((*path, "purposes"), f"role {role!r} names undeclared purpose {pid!r}")
        out[role] = frozenset(listed)
    return out


def _ivr(
    r: _Reader,
    data: dict[str, Any],
    notices: Mapping[str, Notice],
    purposes: Mapping[str, PurposePolicy],
) -> dict[str, IvrPrompt]:
    out: dict[str, IvrPrompt] = {}
    for pid, raw in r.table(data.get("ivr"), ("ivr",), None).items():
        path = ("ivr", pid)
        entry = r.table(raw, path, frozenset({"notice", "digits"}))
        notice = r.text(entry, path, "notice", required=True)
        if notice is not None and notice not in notices:
            r.fail((*path, "notice"), f"IVR prompt {pid!r} plays unknown notice {notice!r}")
            notice = None
        digits: dict[str, DigitAction] = {}
        for digit, action in r.table(entry.get("digits"), (*path, "digits"), None).items():
            dpath = (*path, "digits", digit)
            if not _DIGIT.match(digit):
                r.fail(dpath, f"IVR prompt {pid!r}: {digit!r} is not a DTMF digit (0-9, *, #)")
                continue
            if not isinstance(action, dict) or set(action) != {"purpose", "state"}:
                r.fail(
                    dpath,
                    f"IVR prompt {pid!r} digit {digit!r} must be "
                    '{ purpose = "...", state = "granted|refused|withdrawn" } '
                    f"(one purpose: a single 'yes' never covers two), got {action!r}",
                )
                continue
            purpose, state = action["purpose"], action["state"]
            if not isinstance(purpose, str):
                r.fail(
                    (*dpath, "purpose"),
                    f"IVR prompt {pid!r} digit {digit!r}: purpose must be one purpose id "
                    f"(a string: a single 'yes' never covers two), got {purpose!r}",
                )
            consent_state = _STATES.get(state) if isinstance(state, str) else None
            if consent_state is None:
                r.fail(
                    (*dpath, "state"),
                    f"IVR prompt {pid!r} digit {digit!r}: state must be 'granted', "
                    f"'refused' or 'withdrawn', got {state!r}",
                )
            if not isinstance(purpose, str) or consent_state is None:
                continue
            if purpose not in r.declared:
                r.fail(
                    dpath,
                    f"IVR prompt {pid!r} digit {digit!r} names undeclared purpose {purpose!r}",
                )
                continue
            if purpose not in purposes:
                continue  # declared but invalid: reported where it is declared
            if notice is not None and purpose not in notices[notice].purposes:
                r.fail(
                    dpath,
                    f"IVR prompt {pid!r} digit {digit!r}: notice {notice!r} does not "
                    f"announce purpose {purpose!r}",
                )
                continue
            digits[digit] = DigitAction(purpose=purpose, state=consent_state)
        if notice is not None:
            out[pid] = IvrPrompt(id=pid, notice=notice, digits=digits)
    return out


def _line(problem: tuple[int, str]) -> int:
    return problem[0]


def parse_policy(text: str, source: str = "policy.toml") -> Policy:
    """Parse and validate a policy from TOML *text*; *source* names it in messages.

    :raises PolicyError: every problem at once, one per line, each with ``<source> line N``.
    """
    doc = Located(text, source)
    r = _Reader(doc)
    data = doc.data
    for key in sorted(set(data) - _TOP):
        r.fail((key,), f"unknown table or key {key!r} (expected one of {', '.join(sorted(_TOP))})")
    organisation = _organisation(r, data)
    purposes = _purposes(r, data)
    notices = _notices(r, data, purposes)
    roles = _roles(r, data, purposes)
    ivr = _ivr(r, data, notices, purposes)
    outbound = r.table(data.get("outbound"), ("outbound",), frozenset({"agent_side_only"}))
    agent_only = r.flag(outbound, ("outbound",), "agent_side_only")
    if r.problems:
        raise PolicyError("\n".join(message for _, message in sorted(r.problems, key=_line)))
    return Policy(
        source=source,
        organisation=organisation,
        purposes=purposes,
        roles=roles,
        outbound_agent_side_only=agent_only,
        notices=notices,
        ivr_prompts=ivr,
        warnings=tuple(r.warnings),
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at *path* (the only I/O of the policy package).

    :raises PolicyError: unreadable file, invalid TOML or invalid policy (with line numbers).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{file}: cannot read policy: {exc}") from None
    return parse_policy(text, str(file))
