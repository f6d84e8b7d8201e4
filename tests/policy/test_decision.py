"""Scenario tests for decide(): one call each, the outcome and the reasons that explain it."""

from __future__ import annotations

import json
from datetime import timedelta

import attrs
import pytest
from tests.policy._helpers import START, act, example, notice, policy, recording

from voicepriv.interfaces import IvrInput
from voicepriv.model import (
    ChannelLayout,
    ConsentMethod,
    ConsentState,
    Direction,
    LegalBasis,
    Medium,
    Party,
    Recording,
    Role,
)
from voicepriv.policy.consent import consents_from_ivr
from voicepriv.policy.decision import (
    Decision,
    Obligation,
    decide,
    decision_from_dict,
    decision_to_dict,
)
from voicepriv.policy.jurisdictions import DataProtection, Interception

G, R, W = ConsentState.GRANTED, ConsentState.REFUSED, ConsentState.WITHDRAWN
QA = "quality_assurance"


def reasons(decision: Decision) -> str:
    return "\n".join(str(r) for r in decision.reasons)


def kept(decision: Decision, role: Role = Role.CUSTOMER) -> set[str]:
    return {p.purpose for p in decision.track(role).purposes}


def spans(
    decision: Decision, purpose: str, role: Role = Role.CUSTOMER
) -> list[tuple[float, float]]:
    item = decision.track(role).purpose(purpose)
    assert item is not None
    return [(s.start, s.end) for s in item.segments]


# ---------------------------------------------------------------- inbound, IVR consent per purpose


def test_dk_inbound_ivr_yes_keeps_qa_from_the_keypress() -> None:
    p = example("danish-inbound-support")
    events = consents_from_ivr(p, [IvrInput(prompt="qa", digit="1", offset_s=6.0)])
    d = decide(recording(consents=events), p)
    assert kept(d) == {"documentation", QA}
    assert spans(d, QA) == [(6.0, 300.0)]
    assert d.customer.purpose(QA).basis is LegalBasis.CONSENT  # type: ignore[union-attr]
    assert "kept on consent given by an act" in reasons(d)


def test_dk_inbound_ivr_no_keeps_documentation_only() -> None:
    p = example("danish-inbound-support")
    events = consents_from_ivr(p, [IvrInput(prompt="qa", digit="2", offset_s=6.0)])
    d = decide(recording(consents=events), p)
    assert kept(d) == {"documentation"}
    assert "no valid consent (refused)" in reasons(d)


def test_dk_inbound_unknown_digit_gives_no_consent() -> None:
    p = example("danish-inbound-support")
    events = consents_from_ivr(p, [IvrInput(prompt="qa", digit="9", offset_s=6.0)])
    assert QA not in kept(decide(recording(consents=events), p))


def test_dk_inbound_without_ivr_keeps_no_consent_purposes() -> None:
    d = decide(
        recording(consents=(notice("documentation", 1.0, "2026-01"),)),
        example("danish-inbound-support"),
    )
    assert kept(d) == {"documentation"}
    assert "consent-only purposes fail closed" in reasons(d)


def test_without_any_notice_gdpr_keeps_nothing_and_asks_for_a_notice() -> None:
    d = decide(recording(), policy())
    assert not d.keep
    assert Obligation.PLAY_NOTICE in d.obligations
    assert "GDPR Art. 13" in reasons(d)


def test_yes_to_one_purpose_does_not_cover_another() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2))), policy())
    assert QA in kept(d) and "training" not in kept(d)


def test_two_purposes_two_separate_yeses() -> None:
    events = (notice(QA, 1), act(QA, 2), notice("training", 3), act("training", 4))
    d = decide(recording(consents=events), policy())
    assert {QA, "training"} <= kept(d)
    assert spans(d, "training") == [(4.0, 300.0)]


def test_consent_before_the_notice_is_invalid() -> None:
    d = decide(recording(consents=(act(QA, 1), notice(QA, 5))), policy())
    assert QA not in kept(d)
    assert "before a notice for this purpose" in reasons(d)


def test_consent_after_a_later_grant_counts_from_the_later_act() -> None:
    d = decide(recording(consents=(act(QA, 1), notice(QA, 5), act(QA, 8))), policy())
    assert spans(d, QA) == [(8.0, 300.0)]


def test_consent_with_unknown_notice_version_is_invalid() -> None:
    d = decide(recording(consents=(notice(QA, 1, "v0"), act(QA, 2, version="v0"))), policy())
    assert QA not in kept(d)


def test_notice_alone_is_never_gdpr_consent() -> None:
    d = decide(recording(consents=(notice(QA, 1), notice("documentation", 1))), policy())
    assert QA not in kept(d) and "documentation" in kept(d)


def test_a_purpose_kept_without_consent_needs_its_own_notice() -> None:
    # GDPR Art. 13(1)(c): the customer must be told the purposes; a notice announcing quality
    # assurance (or a consent given for it) does not announce documentation
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2))), policy())
    assert kept(d) == {QA}
    assert "'documentation': the law here needs this purpose announced" in reasons(d)
    assert "GDPR Art. 13(1)(c)" in reasons(d)
    unknown = decide(recording(consents=(notice("documentation", 1, "bogus"),)), policy())
    assert "documentation" not in kept(unknown)
    later = decide(recording(consents=(notice(QA, 1), notice("documentation", 30))), policy())
    assert spans(later, "documentation") == [(30.0, 300.0)]


@pytest.mark.parametrize(
    "method", [ConsentMethod.DTMF, ConsentMethod.VERBAL, ConsentMethod.WRITTEN]
)
def test_every_act_counts(method: ConsentMethod) -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2, method=method))), policy())
    assert QA in kept(d)


def test_conditional_service_makes_consent_invalid() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2, conditional=True))), policy())
    assert QA not in kept(d)
    assert "service depended on it (GDPR Art. 7(4))" in reasons(d)


# ---------------------------------------------------------------- withdrawal


def test_withdrawal_mid_call_stops_the_purpose_there() -> None:
    events = (notice(QA, 1), notice("documentation", 1), act(QA, 2), act(QA, 120, W))
    d = decide(recording(consents=events), policy())
    assert spans(d, QA) == [(2.0, 120.0)]
    assert spans(d, "documentation") == [(1.0, 300.0)]
    assert "GDPR Art. 7(3)" in reasons(d)


def test_withdrawal_then_new_consent_gives_two_ranges() -> None:
    events = (notice(QA, 1), notice("documentation", 1), act(QA, 2), act(QA, 100, W), act(QA, 200))
    d = decide(recording(consents=events), policy())
    assert spans(d, QA) == [(2.0, 100.0), (200.0, 300.0)]
    assert [(s.start, s.end) for s in d.customer.segments] == [(1.0, 300.0)]


def test_a_withdrawal_before_the_call_beats_an_older_consent_in_any_order() -> None:
    signed = attrs.evolve(
        act(QA, 0, method=ConsentMethod.WRITTEN), offset=None, at=START - timedelta(days=7)
    )
    withdrawn = attrs.evolve(act(QA, 0, W), offset=None, at=START - timedelta(days=1))
    for events in ((notice(QA, 1), signed, withdrawn), (notice(QA, 1), withdrawn, signed)):
        assert QA not in kept(decide(recording(consents=events), policy()))
    # at the same instant a withdrawal wins over a grant, whatever the order
    same = (notice(QA, 1), act(QA, 2), act(QA, 30, W), act(QA, 30))
    assert spans(decide(recording(consents=same), policy()), QA) == [(2.0, 30.0)]


def test_all_party_law_stops_where_the_customer_withdraws_every_act() -> None:
    p = policy(establishment="US-NY")
    events = (notice(QA, 2), notice("documentation", 2), act(QA, 5), act(QA, 20, W))
    d = decide(recording(agent="US-NY", customer="US-MD", consents=events), p)
    assert spans(d, "documentation") == [(5.0, 20.0)] and spans(d, QA) == [(5.0, 20.0)]
    assert "no act stands after that" in reasons(d)
    again = (*events, act(QA, 60))
    d = decide(recording(agent="US-NY", customer="US-MD", consents=again), p)
    assert spans(d, "documentation") == [(5.0, 20.0), (60.0, 300.0)]
    # another purpose's act still standing keeps the call lawful
    both = (*events, notice("training", 2), act("training", 6))
    d = decide(recording(agent="US-NY", customer="US-MD", consents=both), p)
    assert spans(d, "documentation") == [(5.0, 300.0)] and spans(d, QA) == [(5.0, 20.0)]


def test_several_customers_cannot_share_one_customer_act_or_consent() -> None:
    base = recording(
        agent="US-NY",
        customer="US-NY",
        consents=(notice(QA, 1), notice("documentation", 1), act(QA, 2)),
    )
    two = (*base.parties, Party(role=Role.CUSTOMER, jurisdiction="US-MD"))
    d = decide(attrs.evolve(base, parties=two), policy(establishment="US-NY"))
    assert not d.keep and "several are on the call" in reasons(d)
    dk = recording(consents=(notice(QA, 1), notice("documentation", 1), act(QA, 2)))
    d = decide(
        attrs.evolve(dk, parties=(*dk.parties, Party(role=Role.CUSTOMER, jurisdiction="DK"))),
        policy(),
    )
    assert kept(d) == {"documentation"}
    assert "several customers are on the call" in reasons(d)


def test_withdrawal_of_one_purpose_leaves_others() -> None:
    events = (notice(QA, 1), act(QA, 2), notice("training", 1), act("training", 2), act(QA, 50, W))
    d = decide(recording(consents=events), policy())
    assert spans(d, QA) == [(2.0, 50.0)] and spans(d, "training") == [(2.0, 300.0)]


def test_objection_stops_legitimate_interests() -> None:
    events = (notice("documentation", 1), act("documentation", 90, R))
    d = decide(recording(consents=events), policy())
    assert spans(d, "documentation") == [(1.0, 90.0)]
    assert "GDPR Art. 21" in reasons(d)


def test_objection_does_not_stop_a_legal_obligation() -> None:
    events = (notice("legal_compliance", 1), act("legal_compliance", 90, R))
    d = decide(recording(customer="GB", agent="GB", consents=events), policy(establishment="GB"))
    item = d.customer.purpose("legal_compliance")
    assert item is not None and item.mandatory and spans(d, "legal_compliance") == [(1.0, 300.0)]
    assert "Art. 17(3)(b)" in reasons(d)


# ---------------------------------------------------------------- opt-out


def test_dk_opt_out_enabled_counts_for_qa_only() -> None:
    p = policy(qa_extra='opt_out = true\nopt_out_guidance = "Datatilsynet updated guidance"')
    events = (notice(QA, 1), act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED))
    d = decide(recording(consents=events), p)
    assert spans(d, QA) == [(3.0, 300.0)]
    assert "training" not in kept(d)
    assert "opt-out offered and not exercised" in reasons(d)


def test_dk_opt_out_exercised_stops_qa() -> None:
    p = policy(qa_extra='opt_out = true\nopt_out_guidance = "Datatilsynet updated guidance"')
    events = (notice(QA, 1), act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED), act(QA, 4, R))
    assert spans(decide(recording(consents=events), p), QA) == [(3.0, 4.0)]


def test_dk_opt_out_not_enabled_by_policy_is_not_consent() -> None:
    events = (notice(QA, 1), act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED))
    d = decide(recording(consents=events), policy())
    assert QA not in kept(d)
    assert "Recital 32" in reasons(d)


def test_opt_out_is_never_valid_in_germany() -> None:
    p = policy(
        establishment="DE",
        employee_basis="contract",
        qa_extra='opt_out = true\nopt_out_guidance = "Datatilsynet updated guidance"',
        org_extra='works_council_agreement = "BV-2025-3"',
    )
    events = (
        notice(QA, 1),
        act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED),
        notice("training", 1),
        act("training", 2),
    )
    d = decide(recording(agent="DE", customer="DE", consents=events), p)
    assert "training" in kept(d) and QA not in kept(d)
    assert "requires opt-in consent" in reasons(d)
    assert {k.basis for k in d.agent.purposes} == {LegalBasis.CONTRACT}


def test_opt_out_for_a_dk_customer_is_invalid_when_the_agent_is_in_germany() -> None:
    p = policy(
        employee_basis="contract",
        qa_extra='opt_out = true\nopt_out_guidance = "Datatilsynet updated guidance"',
        org_extra='works_council_agreement = "BV-2025-3"',
    )
    events = (
        notice(QA, 1),
        act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED),
        notice("training", 1),
        act("training", 2, method=ConsentMethod.VERBAL),
    )
    d = decide(recording(agent="DE", customer="DK", consents=events), p)
    assert d.interception is Interception.ALL_PARTY
    assert "training" in kept(d) and QA not in kept(d)
    d_dk = decide(recording(agent="DK", customer="DK", consents=events), p)
    assert QA in kept(d_dk)


# ---------------------------------------------------------------- interstate and cross-border


def test_ny_agent_ca_customer_is_all_party_because_of_the_customer() -> None:
    d = decide(recording(agent="US-NY", customer="US-CA"), policy(establishment="US-NY"))
    assert d.interception is Interception.ALL_PARTY
    assert not d.keep
    assert "customer in US-CA" in d.reasons[0].text


def test_ny_agent_ca_customer_with_notice_keeps_from_the_notice() -> None:
    p = policy(establishment="US-NY")
    d = decide(
        recording(agent="US-NY", customer="US-CA", consents=(notice("documentation", 4),)), p
    )
    assert spans(d, "documentation") == [(4.0, 300.0)]
    assert d.data_protection == ()


def test_ca_agent_ny_customer_is_all_party_because_of_the_agent() -> None:
    d = decide(recording(agent="US-CA", customer="US-NY"), policy(establishment="US-NY"))
    assert d.interception is Interception.ALL_PARTY
    assert "agent in US-CA" in d.reasons[0].text


def test_ny_ny_one_party_keeps_without_notice() -> None:
    d = decide(recording(agent="US-NY", customer="US-NY"), policy(establishment="US-NY"))
    assert d.interception is Interception.ONE_PARTY
    assert kept(d) == {"documentation", "legal_compliance"}
    assert spans(d, "documentation") == [(0.0, 300.0)]


def test_maryland_needs_an_explicit_yes_not_a_notice() -> None:
    p = policy(establishment="US-NY")
    d = decide(
        recording(agent="US-NY", customer="US-MD", consents=(notice("documentation", 2),)), p
    )
    assert not d.keep
    assert "affirmative act" in reasons(d)
    events = (notice(QA, 2), act(QA, 5, method=ConsentMethod.VERBAL))
    d = decide(recording(agent="US-NY", customer="US-MD", consents=events), p)
    assert d.keep and spans(d, "documentation") == [(5.0, 300.0)]


def test_washington_notice_must_be_on_the_recording() -> None:
    p = policy(establishment="US-NY")
    before_call = notice("documentation", 0).__class__(
        role=Role.CUSTOMER, purpose="documentation", state=G, method=ConsentMethod.NOTICE_ONLY,
        at=START - timedelta(minutes=5), notice_version="v1",
    )  # fmt: skip
    d = decide(recording(agent="US-NY", customer="US-WA", consents=(before_call,)), p)
    assert not d.keep and "on the recording itself" in reasons(d)
    d = decide(
        recording(agent="US-NY", customer="US-WA", consents=(notice("documentation", 1),)), p
    )
    assert d.keep


def test_dk_customer_us_org_brings_gdpr() -> None:
    d = decide(recording(agent="US-NY", customer="DK"), policy(establishment="US-NY"))
    assert DataProtection.GDPR in d.data_protection
    assert "the customer in DK" in reasons(d)


def test_establishment_in_eu_brings_gdpr_for_us_parties() -> None:
    d = decide(recording(agent="US-NY", customer="US-TX"), policy(establishment="DK"))
    assert DataProtection.GDPR in d.data_protection
    assert "establishment in DK" in reasons(d)
    assert not d.keep  # GDPR needs an Art. 13 notice


def test_oregon_video_call_is_all_party() -> None:
    p = policy(establishment="US-NY")
    phone = decide(recording(agent="US-OR", customer="US-OR"), p)
    video = decide(recording(agent="US-OR", customer="US-OR", medium=Medium.VIDEO), p)
    assert (
        phone.interception is Interception.ONE_PARTY
        and video.interception is Interception.ALL_PARTY
    )


@pytest.mark.parametrize(
    ("state", "medium", "expected"),
    [
        ("US-HI", Medium.PHONE, Interception.ONE_PARTY),
        ("US-HI", Medium.IN_PERSON, Interception.ALL_PARTY),
        ("US-NV", Medium.PHONE, Interception.ALL_PARTY),
        ("US-NV", Medium.IN_PERSON, Interception.ONE_PARTY),
    ],
)
def test_channel_matters_in_hawaii_and_nevada(
    state: str, medium: Medium, expected: Interception
) -> None:
    d = decide(recording(agent=state, customer=state, medium=medium), policy(establishment="US-NY"))
    assert d.interception is expected


def test_california_mobile_call_cites_632_7() -> None:
    d = decide(
        recording(agent="US-NY", customer="US-CA", medium=Medium.MOBILE),
        policy(establishment="US-NY"),
    )
    assert "632.7" in reasons(d)


def test_michigan_with_a_vendor_is_all_party() -> None:
    p = policy(establishment="US-NY")
    plain = decide(recording(agent="US-MI", customer="US-MI"), p)
    vendor = decide(recording(agent="US-MI", customer="US-MI", tags=frozenset({"vendor"})), p)
    assert plain.interception is Interception.ONE_PARTY
    assert vendor.interception is Interception.ALL_PARTY and "vendor" in reasons(vendor)


# ---------------------------------------------------------------- unknown jurisdiction


@pytest.mark.parametrize("code", [None, "US-XX", "ZW"])
def test_unknown_jurisdiction_falls_back_to_the_strictest_rule(code: str | None) -> None:
    p = policy(establishment="US-NY")
    d = decide(recording(agent="US-NY", customer=code, consents=(notice("documentation", 1),)), p)
    assert d.interception is Interception.ALL_PARTY
    assert not d.keep  # a notice is not enough under the strictest rule
    assert "strictest rule applies" in reasons(d)
    assert DataProtection.GDPR in d.data_protection


@pytest.mark.parametrize("country", ["US", "AU"])
def test_a_country_whose_state_is_unknown_applies_its_strictest_state(country: str) -> None:
    # not the federal minimum: a customer tagged only "US" may be in Maryland (Kearney)
    p = policy(establishment="US-NY")
    heard = (notice("documentation", 1),)
    d = decide(recording(agent="US-NY", customer=country, consents=heard), p)
    assert d.interception is Interception.ALL_PARTY and not d.keep
    assert f"jurisdiction {country!r} has parts whose laws differ" in reasons(d)
    assert "affirmative act" in reasons(d)
    events = (notice(QA, 2), notice("documentation", 2), act(QA, 5))
    d = decide(recording(agent="US-NY", customer=country, consents=events), p)
    assert d.keep and spans(d, "documentation") == [(5.0, 300.0)]


def test_a_recording_without_a_customer_party_is_decided_as_an_unknown_place() -> None:
    rec = attrs.evolve(
        recording(agent="US-NY", layout=ChannelLayout.mono()),
        parties=(Party(role=Role.AGENT, jurisdiction="US-NY"),),
    )
    d = decide(rec, policy(establishment="US-NY"))
    assert d.interception is Interception.ALL_PARTY and not d.keep
    assert "customer's jurisdiction is missing" in reasons(d)


def test_pennsylvania_unverified_notice_route_needs_an_explicit_yes() -> None:
    p = policy(establishment="US-NY")
    heard = (notice("documentation", 2),)
    d = decide(recording(agent="US-NY", customer="US-PA", consents=heard), p)
    assert not d.keep and "US-PA (Pennsylvania) is encoded from unverified sources" in reasons(d)
    events = (*heard, notice(QA, 2), act(QA, 4))
    assert decide(recording(agent="US-NY", customer="US-PA", consents=events), p).keep


@pytest.mark.parametrize("customer", ["ES", "IT"])
def test_contested_notice_in_spain_and_italy_matters_on_all_party_calls(customer: str) -> None:
    heard = (notice("documentation", 2),)
    d = decide(recording(agent="US-CA", customer=customer, consents=heard), policy())
    assert d.interception is Interception.ALL_PARTY and not d.keep
    d = decide(recording(agent=customer, customer=customer, consents=heard), policy())
    assert d.interception is Interception.ONE_PARTY and "documentation" in kept(d)


def test_an_australian_call_needs_the_caller_told() -> None:
    p = policy(establishment="AU-VIC")
    d = decide(recording(agent="AU-VIC", customer="AU-QLD"), p)
    assert not d.keep and Obligation.PLAY_NOTICE in d.obligations
    told = (notice("documentation", 3),)
    d = decide(recording(agent="AU-VIC", customer="AU-QLD", consents=told), p)
    assert spans(d, "documentation") == [(3.0, 300.0)]


def test_unverified_entry_is_flagged() -> None:
    d = decide(recording(agent="US-NY", customer="US-DE"), policy(establishment="US-NY"))
    assert "unverified" in reasons(d)


# ---------------------------------------------------------------- outbound agent-side only


def test_outbound_agent_only_one_party_keeps_agent_destroys_customer() -> None:
    p = example("us-outbound-sales")
    d = decide(
        recording(
            agent="US-NY",
            customer="US-TX",
            direction=Direction.OUTBOUND,
            layout=ChannelLayout.mono(),
        ),
        p,
    )
    assert d.agent.keep and not d.customer.keep
    assert Obligation.DESTROY_CUSTOMER_TRACK in d.obligations
    assert Obligation.ISOLATE_AGENT_VOICE in d.obligations
    assert {k.basis for k in d.agent.purposes} == {LegalBasis.LEGITIMATE_INTERESTS}


def test_outbound_agent_only_stereo_needs_no_isolation() -> None:
    p = example("us-outbound-sales")
    d = decide(recording(agent="US-NY", customer="US-TX", direction=Direction.OUTBOUND), p)
    assert d.agent.keep and Obligation.ISOLATE_AGENT_VOICE not in d.obligations
    assert Obligation.DESTROY_CUSTOMER_TRACK in d.obligations


def test_outbound_agent_only_all_party_state_without_notice_keeps_nothing() -> None:
    p = example("us-outbound-sales")
    d = decide(recording(agent="US-NY", customer="US-FL", direction=Direction.OUTBOUND), p)
    assert not d.keep and "Gruber v. Yelp" in reasons(d)


def test_outbound_agent_only_all_party_state_with_agent_notice_keeps_agent() -> None:
    p = example("us-outbound-sales")
    events = (notice("quality_assurance", 3, "2026-03"),)
    d = decide(
        recording(agent="US-NY", customer="US-FL", direction=Direction.OUTBOUND, consents=events), p
    )
    assert d.agent.keep and not d.customer.keep
    assert [(s.start, s.end) for s in d.agent.segments] == [(3.0, 300.0)]


def test_outbound_agent_only_gdpr_needs_employees_informed() -> None:
    d = decide(recording(direction=Direction.OUTBOUND), policy(agent_only=True, informed=False))
    assert not d.keep and "employees were not informed" in reasons(d)
    d = decide(recording(direction=Direction.OUTBOUND), policy(agent_only=True))
    assert d.agent.keep and not d.customer.keep
    assert QA not in kept(d, Role.AGENT)  # consent purposes fail closed


def test_inbound_call_under_agent_only_policy_is_a_normal_call() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2))), policy(agent_only=True))
    assert d.customer.keep


def test_germany_agent_voice_needs_a_works_council_agreement() -> None:
    d = decide(
        recording(agent="DE", customer="DE", consents=(notice(QA, 1), act(QA, 2))),
        policy(establishment="DE"),
    )
    assert not d.keep and "BetrVG" in reasons(d)


def test_germany_rejects_legitimate_interests_for_the_agent() -> None:
    p = policy(establishment="DE", org_extra='works_council_agreement = "BV-1"')
    d = decide(recording(agent="DE", customer="DE", consents=(notice(QA, 1), act(QA, 2))), p)
    assert not d.keep and "legitimate interests are not accepted" in reasons(d)


# ---------------------------------------------------------------- legal bases


def test_legitimate_interests_without_balancing_test_fails_closed() -> None:
    p = policy()
    no_test = type(p)(
        source=p.source,
        organisation=p.organisation,
        purposes={**p.purposes, "documentation": p.purposes["documentation"].__class__(
            id="documentation", basis=LegalBasis.LEGITIMATE_INTERESTS,
            retention=p.purposes["documentation"].retention,
        )},
        roles=p.roles, notices=p.notices, ivr_prompts=p.ivr_prompts,
    )  # fmt: skip
    d = decide(recording(consents=(notice("documentation", 1),)), no_test)
    assert "documentation" not in kept(d)
    assert "without a documented balancing test" in reasons(d)


def test_dk_rejects_legitimate_interests_for_qa() -> None:
    from voicepriv.policy.config import parse_policy

    li_qa = parse_policy(
        """
[organisation]
name = "x"
establishment = "DK"
employees_informed = true
employee_basis_reference = "h"
[purposes.quality_assurance]
basis = "legitimate_interests"
balancing_test = "BT-9"
retention = "6 months"
""",
        "li.toml",
    )
    d = decide(recording(consents=(notice(QA, 1),)), li_qa)
    assert not d.keep and "not accepted for it here" in reasons(d)


def test_legal_obligation_without_reference_fails_closed() -> None:
    from voicepriv.policy.config import parse_policy

    p = parse_policy(
        '[organisation]\nname="x"\nestablishment="GB"\nemployees_informed=true\n'
        'employee_basis_reference="h"\n[purposes.legal_compliance]\nbasis="c"\n'
        'retention="5 years"\n',
        "lo.toml",
    )
    assert any("reference" in w for w in p.warnings)
    d = decide(recording(agent="GB", customer="GB", consents=(notice("x_notice", 1),)), p)
    assert not d.keep and "maps it to no contract or statute" in reasons(d)


def test_uk_mifid_firm_keeps_five_years_mandatory() -> None:
    p = example("uk-investment-firm")
    events = consents_from_ivr(p, [IvrInput(prompt="qa", digit="2", offset_s=4.0)])
    d = decide(recording(agent="GB", customer="GB", consents=events), p)
    assert kept(d) == {"legal_compliance"}
    item = d.customer.purpose("legal_compliance")
    assert item is not None and item.mandatory
    assert d.deadline is not None and d.deadline >= START + timedelta(days=5 * 365 + 1)
    assert d.governing_purpose == "legal_compliance"
    assert DataProtection.UK_GDPR in d.data_protection


def test_retention_per_purpose_and_the_longest_governs() -> None:
    events = (notice(QA, 1), notice("documentation", 1), act(QA, 2))
    d = decide(recording(consents=events, purposes=(QA, "documentation")), policy())
    qa = d.customer.purpose(QA)
    doc = d.customer.purpose("documentation")
    assert qa is not None and doc is not None
    assert qa.deadline < doc.deadline == d.customer.deadline
    assert d.customer.governing_purpose == "documentation"


def test_recording_purposes_restrict_and_undeclared_are_reported() -> None:
    events = (notice(QA, 1), act(QA, 2))
    d = decide(recording(consents=events, purposes=(QA, "marketing")), policy())
    assert kept(d) == {QA}
    assert "'marketing' is not declared" in reasons(d)


def test_agent_track_mirrors_customer_purposes_on_employee_basis() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2))), policy())
    assert kept(d, Role.AGENT) == kept(d)
    assert {k.basis for k in d.agent.purposes} == {LegalBasis.LEGITIMATE_INTERESTS}


# ---------------------------------------------------------------- other edge cases


def test_minor_customer_escalates_and_drops_consent_purposes() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2)), minor=True), policy())
    assert QA not in kept(d) and Obligation.REVIEW_MINOR in d.obligations


def test_sensitive_content_needs_art9_condition() -> None:
    d = decide(
        recording(consents=(notice(QA, 1), act(QA, 2)), tags=frozenset({"health"})), policy()
    )
    assert not d.keep and "Art. 9" in reasons(d)


def test_payment_call_requires_redaction_and_flags_mifid_conflict() -> None:
    p = example("uk-investment-firm")
    d = decide(
        recording(agent="GB", customer="GB", consents=(notice("legal_compliance", 1, "v3"),)), p
    )
    assert Obligation.REDACT_PAYMENT_DATA in d.obligations
    assert "PCI DSS Req. 3.3.1 vs MiFID II" in reasons(d)


def test_every_reason_cites_a_rule() -> None:
    d = decide(
        recording(agent="US-NY", customer="DK", consents=(notice(QA, 1), act(QA, 2))), policy()
    )
    assert d.reasons and all(r.rule.strip() and r.text.strip() for r in d.reasons)


def test_supervisor_jurisdiction_counts_too() -> None:
    r = recording(agent="US-NY", customer="US-NY")
    r = Recording(
        id=r.id, started_at=r.started_at, duration=r.duration, direction=r.direction,
        parties=(*r.parties, Party(role=Role.SUPERVISOR, jurisdiction="US-FL")),
    )  # fmt: skip
    assert decide(r, policy(establishment="US-NY")).interception is Interception.ALL_PARTY


# ---------------------------------------------------------------- serialisation


def test_decision_round_trips_through_json() -> None:
    d = decide(recording(consents=(notice(QA, 1), act(QA, 2), act(QA, 50, W))), policy())
    data = json.loads(json.dumps(decision_to_dict(d)))
    assert decision_from_dict(data) == d


def test_decision_from_dict_rejects_other_schema() -> None:
    from voicepriv.errors import PolicyError

    d = decide(recording(), policy())
    data = decision_to_dict(d) | {"schema": 99}
    with pytest.raises(PolicyError, match="schema 99"):
        decision_from_dict(data)
    broken = decision_to_dict(d)
    del broken["agent"]
    with pytest.raises(PolicyError, match="agent"):
        decision_from_dict(broken)


@pytest.mark.parametrize(("state", "cited"), [("NL", "Dutch DPA"), ("DK", "Art. 5(1)(c)")])
def test_time_on_hold_is_never_kept(state: str, cited: str) -> None:
    p = policy(establishment=state)
    consents = (notice("documentation", 1.0),)
    held = attrs.evolve(
        recording(state, state, consents=consents, purposes=("documentation",)),
        on_hold=((60.0, 90.0),),
    )
    plain = decide(attrs.evolve(held, on_hold=()), p)
    d = decide(held, p)
    assert plain.keep, reasons(plain)
    for track in d.tracks:
        if track.keep:
            assert all(s.end <= 60.0 or s.start >= 90.0 for s in track.segments)
            assert any(s.end == 60.0 for s in track.segments)
    assert "on hold for 30 s" in reasons(d) and cited in reasons(d)


def test_a_call_entirely_on_hold_keeps_nothing() -> None:
    p = policy(establishment="US-NY", agent_only=True)
    held = attrs.evolve(
        recording("US-NY", "US-TX", direction=Direction.OUTBOUND, duration=120.0),
        on_hold=((0.0, 120.0),),
    )
    assert decide(attrs.evolve(held, on_hold=()), p).keep
    assert not decide(held, p).keep
