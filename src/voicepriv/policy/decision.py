"""``decide(recording, policy) -> Decision``: what of a call may be kept, why, and until when.

Every decision combines two layers, and its reasons name both:

1. **Interception law**: may the call be recorded at all? The strictest rule of every party's
   jurisdiction applies (a New York agent and a California customer: all-party consent); an
   unknown jurisdiction resolves to the strictest rule. In an all-party jurisdiction nothing is
   kept without the notice or consent the law asks for, not even the agent's side
   (Gruber v. Yelp).
2. **Data-protection law**: for which purposes, on which GDPR / UK GDPR basis, wherever a party
   is in the EU/EEA or the UK or the organisation is established there.

The result is a value, per track (agent, customer): keep or destroy, purposes kept with their
legal basis and time ranges, a retention deadline per purpose (the longest governs the track),
obligations for the pipeline, and reasons, each citing the rule applied. Privacy by default:
anything missing or uncertain keeps less.

:func:`decision_to_dict` / :func:`decision_from_dict` give the JSON form stored by the vault and
the audit log.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Final

import attrs

from voicepriv.errors import PolicyError
from voicepriv.model import (
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Direction,
    LayoutKind,
    LegalBasis,
    Medium,
    Recording,
    RetentionRule,
    RetentionTrigger,
    Role,
    Segment,
)
from voicepriv.policy.config import Policy, PurposePolicy
from voicepriv.policy.consent import ConsentBasis, chronological, consent_intervals, notice_at
from voicepriv.policy.jurisdictions import (
    STRICTEST,
    DataProtection,
    Interception,
    JurisdictionRule,
    JurisdictionTable,
    NoticeRule,
    load_jurisdictions,
)

__all__ = [
    "DECISION_SCHEMA",
    "SENSITIVE_TAGS",
    "Decision",
    "KeptPurpose",
    "Law",
    "Obligation",
    "Reason",
    "TrackDecision",
    "applicable_law",
    "decide",
    "decision_from_dict",
    "decision_to_dict",
]

#: Version of the dict written by :func:`decision_to_dict`.
DECISION_SCHEMA: Final = 1
#: Recording tags that mark special-category or identity content (GDPR Art. 9; DK guidance).
SENSITIVE_TAGS: Final = frozenset({"health", "special_category", "national_id"})
_PAYMENT_TAGS: Final = frozenset({"payment", "card_payment"})
_VENDOR_TAGS: Final = frozenset({"vendor", "ai_transcription"})
_NOTICE_SLOTS: Final = (0, 1)
_ALL_SLOTS: Final = (0, 1, 2, 3)
#: What makes a purpose need its own notice: (PIPEDA / DPDP purpose notice, GDPR basis needed).
_PURPOSE_NOTICE_RULES: Final = {
    (True, False): "PIPEDA Principle 4.2; OPC guidance; DPDP Act 2023 s. 5",
    (False, True): "GDPR Art. 13(1)(c)",
    (True, True): "GDPR Art. 13(1)(c); PIPEDA Principle 4.2; DPDP Act 2023 s. 5",
}
_ACTS: Final = frozenset({ConsentMethod.DTMF, ConsentMethod.VERBAL, ConsentMethod.WRITTEN})


class Obligation(enum.Enum):
    """What the pipeline must do for the decision to hold."""

    DESTROY_CUSTOMER_TRACK = "destroy_customer_track"
    ISOLATE_AGENT_VOICE = "isolate_agent_voice"
    PLAY_NOTICE = "play_notice"
    REDACT_PAYMENT_DATA = "redact_payment_data"
    REVIEW_MINOR = "review_minor"


_OBLIGATION_ORDER: Final = tuple(Obligation)


@attrs.frozen(kw_only=True)
class Reason:
    """One short sentence explaining a step of the decision, and the rule or statute it applied."""

    text: str
    rule: str

    def __str__(self) -> str:
        return f"{self.text} [{self.rule}]"


@attrs.frozen(kw_only=True)
class KeptPurpose:
    """A purpose a track is kept for: legal basis, time ranges, retention and deadline.

    :param reference: the document backing the basis (contract clause, statute, balancing test,
        consent evidence), if any.
    :param mandatory: kept under a legal obligation: objection and erasure do not apply until
        *deadline* (GDPR Art. 17(3)(b)).
    """

    purpose: str
    basis: LegalBasis
    segments: tuple[Segment, ...]
    retention: RetentionRule
    deadline: datetime
    reference: str | None = None
    mandatory: bool = False


@attrs.frozen(kw_only=True)
class TrackDecision:
    """The decision for one track (the agent's or the customer's voice).

    :param segments: the time ranges that may be kept (the union over purposes).
    :param deadline: the governing retention deadline: the longest lawful one of its purposes.
    """

    role: Role
    keep: bool
    purposes: tuple[KeptPurpose, ...] = ()
    segments: tuple[Segment, ...] = ()
    deadline: datetime | None = None
    governing_purpose: str | None = None

    def covers(self, purpose: str) -> bool:
        """Whether the track is kept for *purpose*."""
        return any(p.purpose == purpose for p in self.purposes)

    def purpose(self, purpose: str) -> KeptPurpose | None:
        """The kept purpose called *purpose*, or ``None``."""
        for kept in self.purposes:
            if kept.purpose == purpose:
                return kept
        return None


@attrs.frozen(kw_only=True)
class Decision:
    """What of one recording may be kept, for what, until when, and why."""

    recording_id: str
    agent: TrackDecision
    customer: TrackDecision
    obligations: tuple[Obligation, ...]
    reasons: tuple[Reason, ...]
    interception: Interception
    data_protection: tuple[DataProtection, ...]
    jurisdictions: tuple[str, ...]
    policy: str = ""

    @property
    def keep(self) -> bool:
        """Whether anything of the recording may be kept."""
        return self.agent.keep or self.customer.keep

    @property
    def tracks(self) -> tuple[TrackDecision, TrackDecision]:
        """``(agent, customer)``."""
        return (self.agent, self.customer)

    @property
    def deadline(self) -> datetime | None:
        """The deadline governing the whole artifact (the latest of both tracks)."""
        deadlines = [t.deadline for t in self.tracks if t.deadline is not None]
        return max(deadlines) if deadlines else None

    @property
    def governing_purpose(self) -> str | None:
        """The purpose whose retention governs :attr:`deadline`."""
        best: TrackDecision | None = None
        for track in self.tracks:
            if track.deadline is not None and (best is None or track.deadline > best.deadline):  # type: ignore[operator]
                best = track
        return None if best is None else best.governing_purpose

    def purposes(self) -> frozenset[str]:
        """Every purpose some track is kept for."""
        return frozenset(p.purpose for t in self.tracks for p in t.purposes)

    def covers(self, purpose: str) -> bool:
        """Whether some track is kept for *purpose*."""
        return self.agent.covers(purpose) or self.customer.covers(purpose)

    def track(self, role: Role) -> TrackDecision:
        """The agent's or the customer's track decision."""
        if role is Role.AGENT:
            return self.agent
        if role is Role.CUSTOMER:
            return self.customer
        raise PolicyError(
            f"Decision.track: only agent and customer tracks exist, got {role.value!r}"
        )

    def explain(self) -> str:
        """A readable multi-line account: tracks, purposes, deadlines, obligations, reasons."""
        lines = [f"recording {self.recording_id}: {'KEEP' if self.keep else 'DESTROY'}"]
        lines.append(
            f"  law: {self.interception.label} interception; data protection: "
            f"{', '.join(d.value for d in self.data_protection) or 'none'}; "
            f"jurisdictions: {', '.join(self.jurisdictions)}"
        )
        for track in self.tracks:
            lines.append(f"  {track.role.value} track: {'keep' if track.keep else 'destroy'}")
            for kept in track.purposes:
                spans = ", ".join(f"{s.start:g}-{s.end:g} s" for s in kept.segments)
                lines.append(
                    f"    {kept.purpose}: {kept.basis.article}"
                    f"{' (mandatory)' if kept.mandatory else ''}; {spans}; "
                    f"until {kept.deadline.isoformat()}"
                )
            if track.deadline is not None:
                lines.append(
                    f"    governing deadline {track.deadline.isoformat()} "
                    f"({track.governing_purpose})"
                )
        if self.obligations:
            lines.append(f"  obligations: {', '.join(o.value for o in self.obligations)}")
        lines.append("  reasons:")
        lines.extend(f"    - {reason}" for reason in self.reasons)
        return "\n".join(lines)


# --------------------------------------------------------------------------- applicable law


@attrs.frozen(kw_only=True)
class Law:
    """The law applying to one call: the strictest of every party's jurisdiction.

    :param opt_out_purposes: purposes where an opt-out model may count (``None`` = no
        data-protection rule restricts it).
    :param li_purposes: purposes legitimate interests may cover (``None`` = any).
    """

    interception: Interception
    notice: NoticeRule
    notice_on_recording: bool
    regimes: frozenset[DataProtection]
    lawful_basis_needed: bool
    purpose_notice: bool
    works_council: bool
    opt_out_purposes: frozenset[str] | None
    li_purposes: frozenset[str] | None
    li_rule: str
    opt_out_rule: str
    codes: tuple[str, ...]
    reasons: tuple[Reason, ...]
    data_protection: tuple[DataProtection, ...] = ()


def _dp_rule(chain: tuple[JurisdictionRule, ...]) -> JurisdictionRule | None:
    for rule in chain:
        if rule.data_protection is not DataProtection.NONE:
            return rule
    return None


_EEA_UK: Final = frozenset({DataProtection.GDPR, DataProtection.UK_GDPR})


def applicable_law(
    table: JurisdictionTable,
    parties: Sequence[tuple[Role, str | None]],
    *,
    medium: Medium = Medium.PHONE,
    vendor: bool = False,
    establishment: str | None = None,
) -> Law:
    """Resolve the law for a call between *parties* (``(role, jurisdiction code)`` pairs).

    Interception: the strictest rule of every party's jurisdiction and its ancestors (an
    unknown or missing one counts as :data:`~voicepriv.policy.jurisdictions.STRICTEST`).
    Data protection: every regime of a party's jurisdiction or of the *establishment*.
    Results are memoised per table.
    """
    return _memo_law(table, _law_key(parties, medium, vendor, establishment), parties)


def _law_key(
    parties: Iterable[tuple[Role, str | None]],
    medium: Medium,
    vendor: bool,
    establishment: str | None,
) -> tuple[Any, ...]:
    # Keyed by enum values, not members: hashing a member runs Python code.
    return (
        tuple([(role._value_, code) for role, code in parties]),
        medium._value_,
        vendor,
        establishment,
    )


def _memo_law(
    table: JurisdictionTable, key: tuple[Any, ...], parties: Iterable[tuple[Role, str | None]]
) -> Law:
    memo: dict[Any, Law] = table.memo
    found = memo.get(key)
    if found is None:
        found = _resolve(table, tuple(parties), Medium(key[1]), key[2], key[3])
        memo[key] = found
    return found


def _who(role: Role, code: str | None) -> str:
    return f"the {role.value} in {code if code else 'an unknown place'}"


def _resolve(
    table: JurisdictionTable,
    parties: tuple[tuple[Role, str | None], ...],
    medium: Medium,
    vendor: bool,
    establishment: str | None,
) -> Law:
    reasons: list[Reason] = []
    interception = Interception.ONE_PARTY
    notice = NoticeRule.YES
    strict_by: list[tuple[str, JurisdictionRule]] = []
    on_recording = False
    regimes: set[DataProtection] = set()
    regime_by: list[str] = []
    purpose_notice = works_council = False
    opt_out: frozenset[str] | None = None
    li: frozenset[str] | None = None
    li_rules: list[str] = []
    opt_rules: list[str] = []
    codes: list[str] = []
    chains: list[tuple[str, tuple[JurisdictionRule, ...], bool]] = []
    for role, code in parties:
        if role not in (Role.AGENT, Role.CUSTOMER, Role.SUPERVISOR):
            continue
        chain = table.chain(code)
        if chain[0] is STRICTEST:
            reasons.append(
                Reason(
                    text=f"The {role.value}'s jurisdiction "
                    f"{'is missing' if code is None else repr(code) + ' is unknown'}: "
                    "the strictest rule applies (all-party consent with an explicit act, GDPR "
                    "opt-in consent), never a permissive one",
                    rule=STRICTEST.citation,
                )
            )
        codes.append(code or "??")
        parts = table.parts(code)
        if parts:
            reasons.append(
                Reason(
                    text=f"The {role.value}'s jurisdiction {code!r} has parts whose laws differ "
                    f"({len(parts)} in the table) and the part is unknown: every part's rule "
                    "applies, the strictest wins",
                    rule=f"{chain[0].cite}; Kearney v. Salomon Smith Barney (Cal. 2006)",
                )
            )
            for part in parts:
                chains.append((f"{_who(role, code)} (part unknown)", table.chain(part), True))
        else:
            chains.append((_who(role, code), chain, True))
    if establishment is not None:
        chains.append(
            (
                f"the organisation's establishment in {establishment}",
                table.chain(establishment),
                False,
            )
        )
    for who, chain, is_party in chains:
        for rule in chain:
            if not rule.verified:
                reasons.append(
                    Reason(
                        text=f"{rule.code} ({rule.name}) is encoded from unverified sources: "
                        f"applied conservatively. {rule.notes}".strip(),
                        rule=rule.cite,
                    )
                )
        dp = _dp_rule(chain)
        if dp is not None:
            if dp.data_protection not in regimes:
                regime_by.append(f"{dp.data_protection.value} ({who}: {dp.cite})")
            regimes.add(dp.data_protection)
            purpose_notice = purpose_notice or dp.purpose_notice
            if dp.data_protection in _EEA_UK or dp.purpose_notice:
                mine = dp.opt_out_purposes
                opt_out = mine if opt_out is None else opt_out & mine
                opt_rules.append(f"{dp.code}: {dp.opt_out_citation or dp.cite}")
                if dp.li_purposes is not None:
                    li = dp.li_purposes if li is None else li & dp.li_purposes
                    li_rules.append(f"{dp.code}: {dp.cite}")
            works_council = works_council or any(r.works_council for r in chain)
        if not is_party:
            continue
        for rule in chain:
            rule_interception = rule.interception_for(medium)
            if vendor and rule.vendor_all_party:
                rule_interception = Interception.ALL_PARTY
            if rule_interception > interception:
                interception = rule_interception
                strict_by = []
            if rule_interception == interception == Interception.ALL_PARTY:
                strict_by.append((who, rule))
            notice = max(notice, rule.notice)
            on_recording = on_recording or rule.notice_on_recording
            if medium is Medium.MOBILE and rule.code == "US-CA":
                reasons.append(
                    Reason(
                        text="Mobile call with a California party: § 632.7 applies whether or "
                        "not the call is confidential",
                        rule="Cal. Penal Code § 632.7; Smith v. LoanMe (2021)",
                    )
                )
            if vendor and rule.vendor_all_party:
                reasons.append(
                    Reason(
                        text=f"A third-party vendor processes the call: {rule.code} treats it as "
                        "all-party (participant exceptions do not cover vendors)",
                        rule=f"{rule.cite}; CIPA § 631 capability test (Ambriz v. Google, 2025)",
                    )
                )
    if interception is Interception.ALL_PARTY:
        seen: dict[str, JurisdictionRule] = {}
        for who, rule in strict_by:
            seen.setdefault(who, rule)
        made = "; ".join(f"{who} ({rule.code}: {rule.cite})" for who, rule in seen.items())
        reasons.insert(
            0,
            Reason(
                text=f"Interception: all-party consent applies, made strict by {made}; "
                "a call across jurisdictions applies the strictest rule",
                rule="; ".join(dict.fromkeys(rule.cite for rule in seen.values())),
            ),
        )
    else:
        cites = "; ".join(dict.fromkeys(r.cite for _, ch, p in chains if p for r in ch))
        reasons.insert(
            0,
            Reason(
                text=f"Interception: one-party consent in every party's jurisdiction "
                f"({', '.join(codes)}); the organisation's agent is a party",
                rule=cites or "none",
            ),
        )
    if regimes:
        reasons.append(
            Reason(
                text=f"Data protection applies: {'; '.join(regime_by)}",
                rule="GDPR Art. 3; UK GDPR Art. 3"
                if regimes & _EEA_UK
                else "; ".join(sorted(r.value for r in regimes)),
            )
        )
    return Law(
        interception=interception,
        notice=notice,
        notice_on_recording=on_recording,
        regimes=frozenset(regimes),
        lawful_basis_needed=bool(regimes & _EEA_UK),
        purpose_notice=purpose_notice,
        works_council=works_council,
        opt_out_purposes=opt_out,
        li_purposes=li,
        li_rule="; ".join(dict.fromkeys(li_rules)) or "GDPR Art. 6(1)(f)",
        opt_out_rule="; ".join(dict.fromkeys(opt_rules)) or "GDPR Recital 32",
        codes=tuple(dict.fromkeys(codes)),
        reasons=tuple(reasons),
        data_protection=tuple(sorted(regimes, key=lambda d: d.value)),
    )


# --------------------------------------------------------------------------- deciding


@cache
def _default_table() -> JurisdictionTable:
    return load_jurisdictions()


@lru_cache(maxsize=8192)
def _reason(template: str, rule: str, *args: object) -> Reason:
    """A reason from a ``str.format`` template, memoised: most reasons repeat verbatim."""
    return Reason(text=template.format(*args), rule=rule)


def _deadline(rule: RetentionRule, started_at: datetime, ended_at: datetime) -> datetime:
    if rule.trigger is RetentionTrigger.CALL_END:
        return ended_at + rule.keep_for
    return started_at + rule.keep_for


def _segments(
    intervals: Iterable[tuple[float, float]],
    memo: dict[tuple[tuple[float, float], ...], tuple[Segment, ...]],
    hold: Sequence[tuple[float, float]] = (),
) -> tuple[Segment, ...]:
    """Segments for *intervals* less the *hold* spans, shared between purposes and tracks of
    one decision (the memo belongs to one decision, so its hold spans are fixed)."""
    key = tuple(intervals)
    found = memo.get(key)
    if found is None:
        spans = _subtract(key, hold) if hold else key
        if len(spans) == 1:
            found = (Segment(start=spans[0][0], end=spans[0][1]),)
        else:
            found = tuple([Segment(start=a, end=b) for a, b in spans])
        memo[key] = found
    return found


def _subtract(
    intervals: Sequence[tuple[float, float]], holes: Sequence[tuple[float, float]]
) -> tuple[tuple[float, float], ...]:
    """*intervals* with every span of *holes* (sorted, disjoint) cut out."""
    out: list[tuple[float, float]] = []
    for a, b in intervals:
        for h0, h1 in holes:
            if h1 <= a or h0 >= b:
                continue
            if h0 > a:
                out.append((a, h0))
            a = max(a, h1)
            if a >= b:
                break
        if b > a:
            out.append((a, b))
    return tuple(out)


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _clip(
    intervals: Iterable[tuple[float, float]], start: float, end: float
) -> list[tuple[float, float]]:
    out = []
    for a, b in intervals:
        a, b = max(a, start), min(b, end)
        if b > a:
            out.append((a, b))
    return out


#: The customer's earliest (offset, how) for: notice or act; the same on the recording;
#: a valid act; a valid act on the recording.
_Notices = tuple[float | None, str, float | None, str, float | None, str, float | None, str]


def _earliest(notices: _Notices, *, need_act: bool, on_recording: bool) -> tuple[float | None, str]:
    """Earliest offset satisfying the route, and what satisfied it."""
    slot = (4 if need_act else 0) + (2 if on_recording else 0)
    return notices[slot], notices[slot + 1]  # type: ignore[return-value]


def _scan(
    recording: Recording, duration_s: float
) -> tuple[dict[str, list[tuple[float, ConsentEvent]]], _Notices]:
    """One pass over the consents: the customer's events per purpose (with offsets, sorted)
    and the earliest notice / valid act, anywhere and on the recording."""
    index: dict[str, list[tuple[float, ConsentEvent]]] = {}
    best: list[float | None] = [None, None, None, None]
    how = ["", "", "", ""]
    customer = Role.CUSTOMER
    granted = ConsentState.GRANTED
    notice_only = ConsentMethod.NOTICE_ONLY
    dtmf, verbal, written = ConsentMethod.DTMF, ConsentMethod.VERBAL, ConsentMethod.WRITTEN
    slots: tuple[int, ...]
    started_at = recording.started_at
    for event in recording.consents:
        if event.role is not customer:
            continue
        delta = event.offset
        on_recording = delta is not None
        if delta is None:
            assert event.at is not None
            delta = event.at - started_at
        offset = delta.total_seconds()
        if offset < 0.0:
            offset = 0.0
        elif offset > duration_s:
            offset = duration_s
        group = index.get(event.purpose)
        if group is None:
            index[event.purpose] = [(offset, event)]
        else:
            group.append((offset, event))
        if event.state is not granted:
            continue
        method = event.method
        if method is notice_only:
            slots, kind = _NOTICE_SLOTS, "notice"
        elif event.conditional_service:
            continue
        elif method is dtmf:
            slots, kind = _ALL_SLOTS, "dtmf consent"
        elif method is verbal:
            slots, kind = _ALL_SLOTS, "verbal consent"
        elif method is written:
            slots, kind = _ALL_SLOTS, "written consent"
        else:
            continue
        for slot in slots:
            if slot & 1 and not on_recording:
                continue
            current = best[slot]
            if current is None or offset < current:
                best[slot] = offset
                how[slot] = kind
    for group in index.values():
        chronological(group, started_at)
    return index, (best[0], how[0], best[1], how[1], best[2], how[2], best[3], how[3])


def _customers(recording: Recording) -> int:
    return sum(1 for party in recording.parties if party.role is Role.CUSTOMER)


def _without_act(
    index: Mapping[str, Sequence[tuple[float, ConsentEvent]]],
    t0: float,
    duration: float,
    *,
    on_recording: bool,
) -> list[tuple[float, float]]:
    """Spans after *t0* in which no affirmative act of the customer stands (sorted, merged).

    An act (DTMF, verbal or written grant, service not conditional on it, on the recording
    where the law asks for that) stands from its offset until the next refusal or withdrawal
    for the same purpose.
    """
    standing: list[tuple[float, float]] = []
    for events in index.values():
        since: float | None = None
        for offset, event in events:
            if event.state is ConsentState.GRANTED:
                if (
                    since is None
                    and event.method in _ACTS
                    and not event.conditional_service
                    and (event.offset is not None or not on_recording)
                ):
                    since = offset
            elif since is not None:
                if offset > since:
                    standing.append((since, offset))
                since = None
        if since is not None:
            standing.append((since, duration))
    gaps: list[tuple[float, float]] = []
    edge = t0
    for start, end in _union(standing):
        if start > edge:
            gaps.append((edge, start))
        edge = max(edge, end)
    if edge < duration:
        gaps.append((edge, duration))
    return gaps


def _refusal_at(events: Sequence[tuple[float, ConsentEvent]], after: float) -> float | None:
    for offset, event in events:
        if event.state is not ConsentState.GRANTED and offset >= after:
            return offset
        if event.state is not ConsentState.GRANTED and offset < after:
            return after
    return None


_DESTROYED_AGENT: Final = TrackDecision(role=Role.AGENT, keep=False)
_DESTROYED_CUSTOMER: Final = TrackDecision(role=Role.CUSTOMER, keep=False)


class _Builder:
    """Mutable scratch state of one decision."""

    __slots__ = (
        "cut",
        "duration",
        "ended_at",
        "hold",
        "law",
        "obligations",
        "policy",
        "reasons",
        "recording",
        "segment_memo",
    )

    def __init__(
        self, recording: Recording, policy: Policy, law: Law, reasons: Sequence[Reason]
    ) -> None:
        self.recording = recording
        self.policy = policy
        self.law = law
        self.reasons: list[Reason] = list(reasons)
        self.obligations: list[Obligation] = []
        self.duration = recording.duration.total_seconds()
        self.ended_at = recording.started_at + recording.duration
        self.segment_memo: dict[tuple[tuple[float, float], ...], tuple[Segment, ...]] = {}
        #: time on hold (sorted, merged): never kept, whatever the purpose
        self.hold = _union((s.start, s.end) for s in recording.on_hold)
        #: everything cut from whatever is kept: hold, and spans no interception act covers
        self.cut = self.hold

    def oblige(self, obligation: Obligation) -> None:
        if obligation not in self.obligations:
            self.obligations.append(obligation)

    def why(self, text: str, rule: str) -> None:
        self.reasons.append(Reason(text=text, rule=rule))

    def because(self, template: str, rule: str, *args: object) -> None:
        """Add a reason whose text is *template* formatted with *args* (memoised)."""
        self.reasons.append(_reason(template, rule, *args))

    def track(self, role: Role, kept: Sequence[KeptPurpose]) -> TrackDecision:
        if not kept:
            return _DESTROYED_AGENT if role is Role.AGENT else _DESTROYED_CUSTOMER
        governing = kept[0]
        for item in kept[1:]:
            if item.deadline > governing.deadline:
                governing = item
        segments = kept[0].segments
        for item in kept:
            if item.segments is not segments:
                spans = _union((s.start, s.end) for item in kept for s in item.segments)
                segments = _segments(spans, self.segment_memo)
                break
        return TrackDecision(
            role=role,
            keep=True,
            purposes=tuple(kept),
            segments=segments,
            deadline=governing.deadline,
            governing_purpose=governing.purpose,
        )

    def finish(self, agent: Sequence[KeptPurpose], customer: Sequence[KeptPurpose]) -> Decision:
        agent_track = self.track(Role.AGENT, agent)
        customer_track = self.track(Role.CUSTOMER, customer)
        if not customer_track.keep and any(
            party.role is Role.CUSTOMER for party in self.recording.parties
        ):
            self.oblige(Obligation.DESTROY_CUSTOMER_TRACK)
            if agent_track.keep:
                layout = self.recording.layout
                if layout is None or layout.kind is LayoutKind.MONO:
                    self.oblige(Obligation.ISOLATE_AGENT_VOICE)
                    self.because(
                        "The recording is mono or its layout is unknown: the agent's voice must "
                        "be isolated and the customer's voice removed before storage",
                        "policy: privacy by default",
                    )
        if agent_track.keep or customer_track.keep:
            tags = self.recording.tags
            if self.policy.organisation.redact_payment_data or not tags.isdisjoint(_PAYMENT_TAGS):
                self.oblige(Obligation.REDACT_PAYMENT_DATA)
                self.because(
                    "Card security codes must never be stored: suppress or delete the payment "
                    "spans at authorisation",
                    "PCI DSS Req. 3.3.1",
                )
                if any(k.mandatory for k in (*agent_track.purposes, *customer_track.purposes)):
                    self.because(
                        "Conflict: a mandatory recording duty also applies; redact only the "
                        "card data spans and keep the rest of the transaction record",
                        "PCI DSS Req. 3.3.1 vs MiFID II Art. 16(7) / FCA SYSC 10A",
                    )
        order = [o for o in _OBLIGATION_ORDER if o in self.obligations]
        return Decision(
            recording_id=self.recording.id,
            agent=agent_track,
            customer=customer_track,
            obligations=tuple(order),
            reasons=tuple(self.reasons),
            interception=self.law.interception,
            data_protection=self.law.data_protection,
            jurisdictions=self.law.codes,
            policy=self.policy.source,
        )


@attrs.frozen(kw_only=True, eq=False)
class _Plan:
    """Everything about a decision fixed by the law, the policy and the call's direction.

    Memoised per table: computed once per combination, then every call only scans its own
    consent events.
    """

    reasons: tuple[Reason, ...]
    play_notice: bool
    all_party: bool
    need_act: bool
    on_recording: bool
    interception_failed: Reason
    interception_rule: str
    agent_problem: Reason | None
    agent_only: bool
    purposes: tuple[PurposePolicy, ...]
    post: tuple[Reason, ...]


_PLAN_MEMO_LIMIT: Final = 50_000


def _plan(law: Law, policy: Policy, recording: Recording, outbound: bool) -> _Plan:
    org = policy.organisation
    reasons = list(law.reasons)
    if org.establishment is None:
        reasons.append(
            Reason(
                text="The policy names no establishment: GDPR is assumed to apply "
                "(strictest reading)",
                rule="GDPR Art. 3(1)",
            )
        )
    all_party = law.interception is Interception.ALL_PARTY
    need_act = not law.notice.notice_suffices
    route = (
        "an affirmative act (notice alone is not enough or is contested here)"
        if need_act
        else "a notice or consent" + (" on the recording itself" if law.notice_on_recording else "")
    )
    failed = Reason(
        text=f"All-party law needs {route} from the customer; none was recorded, so nothing "
        "is kept, not even the agent's side",
        rule="Gruber v. Yelp (Cal. Ct. App. 2020); " + law.reasons[0].rule,
    )
    problem: tuple[str, str] | None = None
    if law.lawful_basis_needed:
        if not org.employees_informed:
            problem = (
                "employees were not informed in advance",
                "GDPR Art. 13; CNIL guidance; Interception by Businesses Regs 2018",
            )
        elif org.employee_basis_reference is None:
            problem = ("the agent's basis is not documented", "GDPR Art. 5(2), 6(1)")
        elif org.employee_basis is LegalBasis.CONSENT:
            problem = ("employee consent is not freely given", "GDPR Art. 7(4), Recital 43")
        elif (
            org.employee_basis is LegalBasis.LEGITIMATE_INTERESTS and law.li_purposes == frozenset()
        ):
            problem = ("legitimate interests are not accepted here", law.li_rule)
        elif law.works_council and org.works_council_agreement is None:
            problem = ("no works-council agreement is referenced", "BetrVG § 87(1) no. 6")
    agent_problem = (
        None
        if problem is None
        else Reason(
            text=f"The agent's voice may not be kept: {problem[0]}; nothing is kept",
            rule=problem[1],
        )
    )
    purposes: list[PurposePolicy] = []
    post: list[Reason] = []
    for pid in recording.purposes or tuple(policy.purposes):
        pp = policy.purposes.get(pid)
        if pp is None:
            post.append(
                Reason(
                    text=f"Purpose {pid!r} is not declared in the policy: not kept",
                    rule=f"policy {policy.source}",
                )
            )
        else:
            purposes.append(pp)
    agent_only = policy.outbound_agent_side_only and outbound
    if agent_only:
        post.append(
            Reason(
                text="Outbound call under an agent-side-only policy: the customer's voice is "
                "destroyed; the agent's side is kept on the employment basis",
                rule=f"{org.employee_basis.article}; policy {policy.source} [outbound]",
            )
        )
        kept = []
        for pp in purposes:
            if pp.basis is LegalBasis.CONSENT:
                post.append(
                    Reason(
                        text=f"Purpose {pp.id!r} relies on consent, which the customer's absent "
                        "voice cannot give for the agent: not kept",
                        rule="GDPR Art. 6(1)(a), 7(4)",
                    )
                )
            else:
                kept.append(pp)
        purposes = kept
    return _Plan(
        reasons=tuple(reasons),
        play_notice=all_party or bool(law.regimes),
        all_party=all_party,
        need_act=need_act,
        on_recording=law.notice_on_recording,
        interception_failed=failed,
        interception_rule=law.reasons[0].rule,
        agent_problem=agent_problem,
        agent_only=agent_only,
        purposes=tuple(purposes),
        post=tuple(post),
    )


def decide(
    recording: Recording, policy: Policy, *, jurisdictions: JurisdictionTable | None = None
) -> Decision:
    """Decide what of *recording* may be kept under *policy*; never raises for a lawful "no".

    :param jurisdictions: the consent-law table (built-in by default; pass
        ``load_jurisdictions(extra)`` to include plugin packs).
    """
    table = jurisdictions if jurisdictions is not None else _default_table()
    org = policy.organisation
    vendor = org.third_party_processors or not recording.tags.isdisjoint(_VENDOR_TAGS)
    parties = [(p.role, p.jurisdiction) for p in recording.parties]
    if not any(role is Role.CUSTOMER for role, _ in parties):
        parties.append((Role.CUSTOMER, None))  # nobody said where the other side is
    key = _law_key(parties, recording.medium, vendor, org.establishment or "EU")
    outbound = recording.direction is Direction.OUTBOUND
    memo = table.memo
    both = memo.get((key, policy, outbound, recording.purposes))
    if both is None:
        law = _memo_law(table, key, parties)
        both = (law, _plan(law, policy, recording, outbound))
        if len(memo) > _PLAN_MEMO_LIMIT:
            memo.clear()  # bounded: reloaded policies must not grow it forever
        memo[(key, policy, outbound, recording.purposes)] = both
    law, plan = both
    b = _Builder(recording, policy, law, plan.reasons)
    duration = b.duration
    if plan.play_notice:
        b.oblige(Obligation.PLAY_NOTICE)
    index, notices = _scan(recording, duration)

    # 1. interception: in all-party law nothing is kept before the notice / consent
    t0 = 0.0
    if plan.all_party:
        start, how = _earliest(notices, need_act=plan.need_act, on_recording=plan.on_recording)
        if start is None:
            b.reasons.append(plan.interception_failed)
            return b.finish((), ())
        if plan.need_act and _customers(recording) > 1:
            b.why(
                "All-party law needs an act of every customer; several are on the call and "
                "consent events do not say which of them acted, so nothing is kept",
                plan.interception_rule,
            )
            return b.finish((), ())
        t0 = start
        b.because("All-party law satisfied by the customer's {}", plan.interception_rule, how)
        if plan.need_act:
            gaps = _without_act(index, t0, duration, on_recording=plan.on_recording)
            if gaps:
                b.cut = _union((*b.hold, *gaps))
                b.why(
                    "All-party law: the customer withdrew or refused every affirmative act by "
                    f"{', '.join(f'{a:g} s' for a, _ in gaps)}; no act stands after that, so "
                    "nothing after it is kept until a new one (earlier audio stays lawful)",
                    plan.interception_rule + "; GDPR Art. 7(3)",
                )

    # 2. the agent's voice (employment)
    if plan.agent_problem is not None:
        b.reasons.append(plan.agent_problem)
        return b.finish((), ())
    b.reasons.extend(plan.post)
    employee_ref = org.employee_basis_reference

    # 3. outbound, agent side only: customer destroyed, agent kept on the employment basis
    _explain_hold(b)
    if plan.agent_only:
        segments = _segments(((t0, duration),), b.segment_memo, b.cut)
        agent = (
            []
            if not segments
            else [
                KeptPurpose(
                    purpose=pp.id,
                    basis=org.employee_basis,
                    segments=segments,
                    retention=pp.retention,
                    deadline=_deadline(pp.retention, recording.started_at, b.ended_at),
                    reference=employee_ref,
                    mandatory=pp.basis is LegalBasis.LEGAL_OBLIGATION,
                )
                for pp in plan.purposes
            ]
        )
        return b.finish(agent, ())

    # 4. purposes of the conversation (customer consent / basis)
    minor = False
    for party in recording.parties:
        if party.minor and party.role is Role.CUSTOMER:
            minor = True
    if minor:
        b.oblige(Obligation.REVIEW_MINOR)
        b.because(
            "A customer is a minor: consent-based purposes are not kept and the call is "
            "escalated for review (unverified area of law)",
            "GDPR Art. 8 (unverified for calls)",
        )
    sensitive = law.lawful_basis_needed and not recording.tags.isdisjoint(SENSITIVE_TAGS)
    art13_at = notices[0] if law.regimes else None
    customer: list[KeptPurpose] = []
    for pp in plan.purposes:
        intervals = _purpose_intervals(b, pp, index, t0, art13_at, minor, sensitive)
        kept_spans = _segments(intervals, b.segment_memo, b.cut) if intervals else ()
        if kept_spans:
            customer.append(
                KeptPurpose(
                    purpose=pp.id,
                    basis=pp.basis,
                    segments=kept_spans,
                    retention=pp.retention,
                    deadline=_deadline(pp.retention, recording.started_at, b.ended_at),
                    reference=pp.reference or pp.balancing_test,
                    mandatory=pp.basis is LegalBasis.LEGAL_OBLIGATION,
                )
            )
    agent = customer
    if law.lawful_basis_needed:
        agent = [
            KeptPurpose(
                purpose=kept.purpose,
                basis=org.employee_basis,
                segments=kept.segments,
                retention=kept.retention,
                deadline=kept.deadline,
                reference=employee_ref,
                mandatory=kept.mandatory,
            )
            for kept in customer
        ]
    return b.finish(agent, customer)


def _explain_hold(b: _Builder) -> None:
    """Say that time on hold is cut from whatever is kept, citing the strictest source."""
    if not b.hold:
        return
    seconds = sum(end - start for start, end in b.hold)
    dutch = "NL" in b.law.codes
    b.why(
        f"The customer was on hold for {seconds:g} s: that time is never kept (no conversation "
        "takes place; data minimisation)"
        + ("; in the Netherlands callers on hold must not be recorded" if dutch else ""),
        "GDPR Art. 5(1)(c)" + ("; Dutch DPA guidance (S41-S43)" if dutch else ""),
    )


def _purpose_intervals(
    b: _Builder,
    pp: PurposePolicy,
    index: Mapping[str, Sequence[tuple[float, ConsentEvent]]],
    t0: float,
    art13_at: float | None,
    minor: bool,
    sensitive: bool,
) -> list[tuple[float, float]]:
    pid = pp.id
    law = b.law
    duration = b.duration
    events = index.get(pid, ())
    if sensitive and pp.special_category_condition is None:
        b.because(
            "Purpose {!r}: the call holds special-category or identity data and the policy "
            "names no Art. 9(2) condition: not kept",
            "GDPR Art. 9; Datatilsynet guidance (DK)",
            pid,
        )
        return []
    if pp.basis is LegalBasis.CONSENT:
        if minor:
            return []
        if _customers(b.recording) > 1:
            b.because(
                "Purpose {!r}: several customers are on the call and consent events do not say "
                "which of them consented: not kept (each voice needs its own consent)",
                "GDPR Art. 6(1)(a), 7(1)",
                pid,
            )
            return []
        allowed = pp.opt_out and (law.opt_out_purposes is None or pid in law.opt_out_purposes)
        if pp.opt_out and not allowed:
            b.why(
                f"Purpose {pid!r}: the policy enables opt-out, but the law here requires opt-in "
                "consent; the opt-out is ignored",
                law.opt_out_rule + "; GDPR Recital 32",
            )
        found, how, refused, problems = consent_intervals(
            events,
            duration_s=duration,
            notice_versions=b.policy.notice_versions.get(pid, frozenset()),
            opt_out_allowed=allowed,
        )
        for problem in problems:
            b.why(f"Purpose {pid!r}: {problem}", "GDPR Art. 7")
        intervals = _clip(found, t0, duration)
        if not intervals:
            b.because(
                "Purpose {!r}: no valid consent{}: not kept; consent-only purposes fail closed",
                "GDPR Art. 6(1)(a), 7",
                pid,
                " (refused)" if refused else "",
            )
            return []
        if how is ConsentBasis.OPT_OUT:
            b.why(
                f"Purpose {pid!r}: notice played, opt-out offered and not exercised; valid for "
                "this purpose only as the policy enables it",
                f"{pp.opt_out_guidance}; {law.opt_out_rule}",
            )
        else:
            b.because(
                "Purpose {!r}: kept on consent given by an act after the notice for it",
                "GDPR Art. 6(1)(a), 7",
                pid,
            )
        if intervals[-1][1] < duration or len(intervals) > 1:
            b.why(
                f"Purpose {pid!r}: consent withdrawn or refused at "
                f"{', '.join(f'{end:g} s' for _, end in intervals if end < duration)}; "
                "recording for it stops there, earlier audio stays lawful",
                "GDPR Art. 7(3)",
            )
        return intervals
    if pp.referenced and pp.reference is None:
        b.because(
            "Purpose {!r}: {} but the policy maps it to no contract or statute: not kept",
            pp.article + "; GDPR Art. 5(2)",
            pid,
            pp.article,
        )
        return []
    if pp.basis is LegalBasis.LEGITIMATE_INTERESTS:
        if pp.balancing_test is None:
            b.because(
                "Purpose {!r}: legitimate interests without a documented balancing test: not kept",
                "GDPR Art. 6(1)(f), 5(2)",
                pid,
            )
            return []
        if law.li_purposes is not None and pid not in law.li_purposes:
            b.because(
                "Purpose {!r}: legitimate interests are not accepted for it here: not kept",
                law.li_rule,
                pid,
            )
            return []
    start = t0
    if law.regimes:
        if art13_at is None:
            b.because(
                "Purpose {!r}: no notice was played to the customer: not kept",
                "GDPR Art. 13" if law.lawful_basis_needed else "PIPEDA; DPDP Act 2023",
                pid,
            )
            return []
        start = max(start, art13_at)
    if law.purpose_notice or law.lawful_basis_needed:
        at = notice_at(events, b.policy.notice_versions.get(pid, frozenset()))
        if at is None:
            b.because(
                "Purpose {!r}: the law here needs this purpose announced; no notice for it "
                "in a version the policy accepts: not kept",
                _PURPOSE_NOTICE_RULES[law.purpose_notice, law.lawful_basis_needed],
                pid,
            )
            return []
        start = max(start, at)
    end = duration
    if pp.basis is LegalBasis.LEGAL_OBLIGATION:
        if any(e.state is not ConsentState.GRANTED for _, e in events):
            b.why(
                f"Purpose {pid!r}: the customer objected, but objection and erasure do not apply "
                "during mandatory retention",
                f"GDPR Art. 17(3)(b), 21; {pp.reference}",
            )
    else:
        stop = _refusal_at(events, start)
        if stop is not None:
            end = stop
            b.why(
                f"Purpose {pid!r}: the customer objected at {stop:g} s; kept only before that",
                "GDPR Art. 21",
            )
    if end <= start:
        return []
    b.because(
        "Purpose {!r}: kept on {} ({})",
        pp.article,
        pid,
        pp.article,
        pp.reference or pp.balancing_test,
    )
    return [(start, end)]


# --------------------------------------------------------------------------- serialisation


def _segment_dict(s: Segment) -> dict[str, Any]:
    return {"start": s.start, "end": s.end, "label": s.label}


def _track_dict(t: TrackDecision) -> dict[str, Any]:
    return {
        "role": t.role.value,
        "keep": t.keep,
        "purposes": [
            {
                "purpose": k.purpose,
                "basis": k.basis.value,
                "segments": [_segment_dict(s) for s in k.segments],
                "retention": {
                    "keep_for_s": k.retention.keep_for.total_seconds(),
                    "trigger": k.retention.trigger.value,
                    "action": k.retention.action.value,
                },
                "deadline": k.deadline.isoformat(),
                "reference": k.reference,
                "mandatory": k.mandatory,
            }
            for k in t.purposes
        ],
        "segments": [_segment_dict(s) for s in t.segments],
        "deadline": None if t.deadline is None else t.deadline.isoformat(),
        "governing_purpose": t.governing_purpose,
    }


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """The JSON-ready form of *decision* (stored by the vault and the audit log)."""
    return {
        "schema": DECISION_SCHEMA,
        "recording_id": decision.recording_id,
        "keep": decision.keep,
        "agent": _track_dict(decision.agent),
        "customer": _track_dict(decision.customer),
        "obligations": [o.value for o in decision.obligations],
        "reasons": [{"text": r.text, "rule": r.rule} for r in decision.reasons],
        "interception": decision.interception.label,
        "data_protection": [d.value for d in decision.data_protection],
        "jurisdictions": list(decision.jurisdictions),
        "policy": decision.policy,
    }


def _segment_from(d: Mapping[str, Any]) -> Segment:
    return Segment(start=d["start"], end=d["end"], label=d.get("label", ""))


def _track_from(d: Mapping[str, Any]) -> TrackDecision:
    deadline = d["deadline"]
    return TrackDecision(
        role=Role(d["role"]),
        keep=bool(d["keep"]),
        purposes=tuple(
            KeptPurpose(
                purpose=k["purpose"],
                basis=LegalBasis(k["basis"]),
                segments=tuple(_segment_from(s) for s in k["segments"]),
                retention=RetentionRule(
                    purpose=k["purpose"],
                    keep_for=timedelta(seconds=k["retention"]["keep_for_s"]),
                    trigger=k["retention"]["trigger"],
                    action=k["retention"]["action"],
                ),
                deadline=datetime.fromisoformat(k["deadline"]),
                reference=k["reference"],
                mandatory=bool(k["mandatory"]),
            )
            for k in d["purposes"]
        ),
        segments=tuple(_segment_from(s) for s in d["segments"]),
        deadline=None if deadline is None else datetime.fromisoformat(deadline),
        governing_purpose=d["governing_purpose"],
    )


def decision_from_dict(data: Mapping[str, Any]) -> Decision:
    """Rebuild a :class:`Decision` from :func:`decision_to_dict` output.

    :raises PolicyError: a newer schema, or missing / malformed fields (naming the field).
    """
    if data.get("schema") != DECISION_SCHEMA:
        raise PolicyError(
            f"decision: schema {data.get('schema')!r} is not supported (expected {DECISION_SCHEMA})"
        )
    try:
        return Decision(
            recording_id=data["recording_id"],
            agent=_track_from(data["agent"]),
            customer=_track_from(data["customer"]),
            obligations=tuple(Obligation(o) for o in data["obligations"]),
            reasons=tuple(Reason(text=r["text"], rule=r["rule"]) for r in data["reasons"]),
            interception=Interception[data["interception"].replace("-", "_").upper()],
            data_protection=tuple(DataProtection(d) for d in data["data_protection"]),
            jurisdictions=tuple(data["jurisdictions"]),
            policy=data.get("policy", ""),
        )
    except KeyError as exc:
        raise PolicyError(f"decision: missing or unknown field {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise PolicyError(f"decision: malformed value: {exc}") from None
