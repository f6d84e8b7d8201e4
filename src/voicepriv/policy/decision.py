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
from functools import cache
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
from voicepriv.policy.config import REFERENCED_BASES, Policy, PurposePolicy
from voicepriv.policy.consent import ConsentBasis, index_events, purpose_consent
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


class Obligation(enum.Enum):
    """What the pipeline must do for the decision to hold."""

    DESTROY_CUSTOMER_TRACK = "destroy_customer_track"
    ISOLATE_AGENT_VOICE = "isolate_agent_voice"
    PLAY_NOTICE = "play_notice"
    REDACT_PAYMENT_DATA = "redact_payment_data"
    REVIEW_MINOR = "review_minor"


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
    key = (tuple(parties), medium, vendor, establishment)
    memo: dict[Any, Law] = table.memo
    found = memo.get(key)
    if found is None:
        found = _resolve(table, key[0], medium, vendor, establishment)
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
        li_rule="; ".join(li_rules) or "GDPR Art. 6(1)(f)",
        opt_out_rule="; ".join(opt_rules) or "GDPR Recital 32",
        codes=tuple(dict.fromkeys(codes)),
        reasons=tuple(reasons),
    )


# --------------------------------------------------------------------------- deciding


@cache
def _default_table() -> JurisdictionTable:
    return load_jurisdictions()


def _deadline(rule: RetentionRule, recording: Recording) -> datetime:
    start = recording.started_at
    if rule.trigger is RetentionTrigger.CALL_END:
        start = start + recording.duration
    return start + rule.keep_for


def _segments(intervals: Iterable[tuple[float, float]], label: str) -> tuple[Segment, ...]:
    return tuple(Segment(start=a, end=b, label=label) for a, b in intervals)


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


def _interception_start(
    events: Sequence[ConsentEvent], law: Law, started_at: datetime, duration_s: float
) -> tuple[float | None, str]:
    """Earliest offset from which the customer's notice or consent satisfies all-party law."""
    best: float | None = None
    how = ""
    need_act = not law.notice.notice_suffices
    for event in events:
        if event.role is not Role.CUSTOMER or event.state is not ConsentState.GRANTED:
            continue
        if event.method.is_act:
            if event.conditional_service:
                continue
            kind = f"{event.method.value} consent"
        elif need_act:
            continue
        elif event.method is ConsentMethod.NOTICE_ONLY:
            kind = "notice"
        else:
            continue
        if law.notice_on_recording and event.offset is None:
            continue
        if event.offset is not None:
            offset = event.offset.total_seconds()
        else:
            assert event.at is not None
            offset = (event.at - started_at).total_seconds()
        offset = min(max(offset, 0.0), duration_s)
        if best is None or offset < best:
            best, how = offset, kind
    return best, how


def _refusal_at(events: Sequence[tuple[float, ConsentEvent]], after: float) -> float | None:
    for offset, event in events:
        if event.state is not ConsentState.GRANTED and offset >= after:
            return offset
        if event.state is not ConsentState.GRANTED and offset < after:
            return after
    return None


def _notice_for(
    events: Sequence[tuple[float, ConsentEvent]], versions: frozenset[str]
) -> float | None:
    for offset, event in events:
        if (
            event.method is ConsentMethod.NOTICE_ONLY
            and event.state is ConsentState.GRANTED
            and event.notice_version in versions
        ):
            return offset
    return None


class _Builder:
    """Mutable scratch state of one decision."""

    def __init__(self, recording: Recording, policy: Policy, law: Law) -> None:
        self.recording = recording
        self.policy = policy
        self.law = law
        self.reasons: list[Reason] = list(law.reasons)
        self.obligations: set[Obligation] = set()
        self.duration = recording.duration.total_seconds()

    def why(self, text: str, rule: str) -> None:
        self.reasons.append(Reason(text=text, rule=rule))

    def track(self, role: Role, kept: Sequence[KeptPurpose]) -> TrackDecision:
        if not kept:
            return TrackDecision(role=role, keep=False)
        governing = kept[0]
        for item in kept[1:]:
            if item.deadline > governing.deadline:
                governing = item
        spans = _union((s.start, s.end) for item in kept for s in item.segments)
        return TrackDecision(
            role=role,
            keep=True,
            purposes=tuple(kept),
            segments=_segments(spans, role.value),
            deadline=governing.deadline,
            governing_purpose=governing.purpose,
        )

    def finish(self, agent: Sequence[KeptPurpose], customer: Sequence[KeptPurpose]) -> Decision:
        agent_track = self.track(Role.AGENT, agent)
        customer_track = self.track(Role.CUSTOMER, customer)
        if not customer_track.keep and self.recording.parties_with(Role.CUSTOMER):
            self.obligations.add(Obligation.DESTROY_CUSTOMER_TRACK)
            if agent_track.keep:
                layout = self.recording.layout
                if layout is None or layout.kind is LayoutKind.MONO:
                    self.obligations.add(Obligation.ISOLATE_AGENT_VOICE)
                    self.why(
                        "The recording is mono or its layout is unknown: the agent's voice must "
                        "be isolated and the customer's voice removed before storage",
                        "policy: privacy by default",
                    )
        if agent_track.keep or customer_track.keep:
            tags = self.recording.tags
            if self.policy.organisation.redact_payment_data or tags & _PAYMENT_TAGS:
                self.obligations.add(Obligation.REDACT_PAYMENT_DATA)
                self.why(
                    "Card security codes must never be stored: suppress or delete the payment "
                    "spans at authorisation",
                    "PCI DSS Req. 3.3.1",
                )
                if any(k.mandatory for k in (*agent_track.purposes, *customer_track.purposes)):
                    self.why(
                        "Conflict: a mandatory recording duty also applies; redact only the "
                        "card data spans and keep the rest of the transaction record",
                        "PCI DSS Req. 3.3.1 vs MiFID II Art. 16(7) / FCA SYSC 10A",
                    )
        order = [o for o in Obligation if o in self.obligations]
        return Decision(
            recording_id=self.recording.id,
            agent=agent_track,
            customer=customer_track,
            obligations=tuple(order),
            reasons=tuple(self.reasons),
            interception=self.law.interception,
            data_protection=tuple(sorted(self.law.regimes, key=lambda d: d.value)),
            jurisdictions=self.law.codes,
            policy=self.policy.source,
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
    vendor = org.third_party_processors or bool(recording.tags & _VENDOR_TAGS)
    law = applicable_law(
        table,
        tuple((p.role, p.jurisdiction) for p in recording.parties),
        medium=recording.medium,
        vendor=vendor,
        establishment=org.establishment or "EU",
    )
    b = _Builder(recording, policy, law)
    duration = b.duration
    if org.establishment is None:
        b.why(
            "The policy names no establishment: GDPR is assumed to apply (strictest reading)",
            "GDPR Art. 3(1)",
        )

    # 1. interception
    t0 = 0.0
    needs_notice = law.interception is Interception.ALL_PARTY or law.regimes
    if needs_notice:
        b.obligations.add(Obligation.PLAY_NOTICE)
    if law.interception is Interception.ALL_PARTY:
        start, how = _interception_start(recording.consents, law, recording.started_at, duration)
        route = (
            "an affirmative act (notice alone is not enough or is contested here)"
            if not law.notice.notice_suffices
            else "a notice or consent"
            + (" on the recording itself" if law.notice_on_recording else "")
        )
        if start is None:
            b.why(
                f"All-party law needs {route} from the customer; none was recorded, so nothing "
                "is kept, not even the agent's side",
                "Gruber v. Yelp (Cal. Ct. App. 2020); " + law.reasons[0].rule,
            )
            return b.finish((), ())
        t0 = start
        b.why(f"All-party law satisfied from {t0:g} s by the customer's {how}", law.reasons[0].rule)

    # 2. the agent's voice (employment)
    agent_ok = True
    if law.lawful_basis_needed:
        problem = None
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
        if problem is not None:
            agent_ok = False
            b.why(f"The agent's voice may not be kept: {problem[0]}; nothing is kept", problem[1])
            return b.finish((), ())

    requested: list[str] = []
    for pid in recording.purposes or tuple(policy.purposes):
        if pid in policy.purposes:
            requested.append(pid)
        else:
            b.why(
                f"Purpose {pid!r} is not declared in the policy: not kept",
                f"policy {policy.source}",
            )
    employee_ref = org.employee_basis_reference

    # 3. outbound, agent side only
    if policy.outbound_agent_side_only and recording.direction is Direction.OUTBOUND:
        b.why(
            "Outbound call under an agent-side-only policy: the customer's voice is destroyed; "
            "the agent's side is kept on the employment basis",
            f"{org.employee_basis.article}; policy {policy.source} [outbound]",
        )
        agent: list[KeptPurpose] = []
        for pid in requested:
            pp = policy.purposes[pid]
            if pp.basis is LegalBasis.CONSENT:
                b.why(
                    f"Purpose {pid!r} relies on consent, which the customer's absent voice "
                    "cannot give for the agent: not kept",
                    "GDPR Art. 6(1)(a), 7(4)",
                )
                continue
            agent.append(
                KeptPurpose(
                    purpose=pid,
                    basis=org.employee_basis,
                    segments=_segments([(t0, duration)], pid),
                    retention=pp.retention,
                    deadline=_deadline(pp.retention, recording),
                    reference=employee_ref,
                    mandatory=pp.basis is LegalBasis.LEGAL_OBLIGATION,
                )
            )
        return b.finish(agent, ())

    # 4. purposes of the conversation (customer consent / basis)
    index = index_events(recording.consents, recording.started_at, duration)
    minor = any(p.minor for p in recording.parties_with(Role.CUSTOMER))
    if minor:
        b.obligations.add(Obligation.REVIEW_MINOR)
        b.why(
            "A customer is a minor: consent-based purposes are not kept and the call is escalated "
            "for review (unverified area of law)",
            "GDPR Art. 8 (unverified for calls)",
        )
    sensitive = bool(recording.tags & SENSITIVE_TAGS) and law.lawful_basis_needed
    art13_at: float | None = None
    if law.regimes:
        art13_at, _ = _interception_start(
            recording.consents,
            attrs.evolve(law, notice=NoticeRule.YES, notice_on_recording=False),
            recording.started_at,
            duration,
        )
    customer: list[KeptPurpose] = []
    for pid in requested:
        pp = policy.purposes[pid]
        intervals = _purpose_intervals(b, pp, index, t0, art13_at, minor, sensitive)
        if intervals:
            customer.append(
                KeptPurpose(
                    purpose=pid,
                    basis=pp.basis,
                    segments=_segments(intervals, pid),
                    retention=pp.retention,
                    deadline=_deadline(pp.retention, recording),
                    reference=pp.reference or pp.balancing_test,
                    mandatory=pp.basis is LegalBasis.LEGAL_OBLIGATION,
                )
            )
    agent = []
    if agent_ok:
        for kept in customer:
            agent.append(
                attrs.evolve(
                    kept,
                    basis=org.employee_basis if law.lawful_basis_needed else kept.basis,
                    reference=employee_ref if law.lawful_basis_needed else kept.reference,
                )
            )
    return b.finish(agent, customer)


def _purpose_intervals(
    b: _Builder,
    pp: PurposePolicy,
    index: Mapping[tuple[Role, str], Sequence[tuple[float, ConsentEvent]]],
    t0: float,
    art13_at: float | None,
    minor: bool,
    sensitive: bool,
) -> list[tuple[float, float]]:
    pid = pp.id
    law = b.law
    duration = b.duration
    events = index.get((Role.CUSTOMER, pid), ())
    if sensitive and pp.special_category_condition is None:
        b.why(
            f"Purpose {pid!r}: the call holds special-category or identity data and the policy "
            "names no Art. 9(2) condition: not kept",
            "GDPR Art. 9; Datatilsynet guidance (DK)",
        )
        return []
    if pp.basis is LegalBasis.CONSENT:
        if minor:
            return []
        allowed = pp.opt_out and (law.opt_out_purposes is None or pid in law.opt_out_purposes)
        if pp.opt_out and not allowed:
            b.why(
                f"Purpose {pid!r}: the policy enables opt-out, but the law here requires opt-in "
                "consent; the opt-out is ignored",
                law.opt_out_rule + "; GDPR Recital 32",
            )
        outcome = purpose_consent(
            events,
            duration_s=duration,
            notice_versions=b.policy.notice_versions.get(pid, frozenset()),
            opt_out_allowed=allowed,
        )
        for problem in outcome.problems:
            b.why(f"Purpose {pid!r}: {problem}", "GDPR Art. 7")
        intervals = _clip(outcome.intervals, t0, duration)
        if not intervals:
            b.why(
                f"Purpose {pid!r}: no valid consent"
                f"{' (refused)' if outcome.refused else ''}: not kept; consent-only purposes "
                "fail closed",
                "GDPR Art. 6(1)(a), 7",
            )
            return []
        if outcome.basis is ConsentBasis.OPT_OUT:
            b.why(
                f"Purpose {pid!r}: notice played, opt-out offered and not exercised; valid for "
                "this purpose only as the policy enables it",
                f"{pp.opt_out_guidance}; {law.opt_out_rule}",
            )
        else:
            b.why(
                f"Purpose {pid!r}: kept on consent given by an act after the notice, from "
                f"{intervals[0][0]:g} s",
                "GDPR Art. 6(1)(a), 7",
            )
        if intervals[-1][1] < duration or len(intervals) > 1:
            b.why(
                f"Purpose {pid!r}: consent withdrawn or refused at "
                f"{', '.join(f'{end:g} s' for _, end in intervals if end < duration)}; "
                "recording for it stops there, earlier audio stays lawful",
                "GDPR Art. 7(3)",
            )
        return intervals
    if pp.basis in REFERENCED_BASES and pp.reference is None:
        b.why(
            f"Purpose {pid!r}: {pp.basis.article} but the policy maps it to no contract or "
            "statute: not kept",
            f"{pp.basis.article}; GDPR Art. 5(2)",
        )
        return []
    if pp.basis is LegalBasis.LEGITIMATE_INTERESTS:
        if pp.balancing_test is None:
            b.why(
                f"Purpose {pid!r}: legitimate interests without a documented balancing test: "
                "not kept",
                "GDPR Art. 6(1)(f), 5(2)",
            )
            return []
        if law.li_purposes is not None and pid not in law.li_purposes:
            b.why(
                f"Purpose {pid!r}: legitimate interests are not accepted for it here: not kept",
                law.li_rule,
            )
            return []
    start = t0
    if law.regimes:
        if art13_at is None:
            b.why(
                f"Purpose {pid!r}: no notice was played to the customer: not kept",
                "GDPR Art. 13"
                if law.lawful_basis_needed
                else "; ".join(r.value for r in law.regimes),
            )
            return []
        start = max(start, art13_at)
    if law.purpose_notice:
        at = _notice_for(events, b.policy.notice_versions.get(pid, frozenset()))
        if at is None:
            b.why(
                f"Purpose {pid!r}: the law here needs this purpose announced; no notice for it: "
                "not kept",
                "PIPEDA Principle 4.2; OPC guidance; DPDP Act 2023 s. 5",
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
    b.why(
        f"Purpose {pid!r}: kept on {pp.basis.article} ({pp.reference or pp.balancing_test}) "
        f"from {start:g} s",
        pp.basis.article,
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
