"""Consent validity per purpose, and IVR keypresses mapped to consent events."""

from __future__ import annotations

import pytest
from tests.policy._helpers import START, act, example, notice

from voicepriv.errors import PolicyError
from voicepriv.interfaces import IvrInput
from voicepriv.model import ConsentEvent, ConsentMethod, ConsentState, Role
from voicepriv.policy.consent import (
    ConsentBasis,
    consents_from_ivr,
    event_offset,
    index_events,
    purpose_consent,
)

V1 = frozenset({"v1"})


def outcome(*events: ConsentEvent, opt_out: bool = False, duration: float = 100.0):  # type: ignore[no-untyped-def]
    group = index_events(events, START, duration, Role.CUSTOMER).get("quality_assurance", [])
    return purpose_consent(group, duration_s=duration, notice_versions=V1, opt_out_allowed=opt_out)


QA = "quality_assurance"


def test_grant_after_notice_holds_to_the_end() -> None:
    result = outcome(notice(QA, 1), act(QA, 2))
    assert result.intervals == ((2.0, 100.0),) and result.basis is ConsentBasis.ACT


def test_events_out_of_order_are_sorted() -> None:
    assert outcome(act(QA, 2), notice(QA, 1)).intervals == ((2.0, 100.0),)


def test_refusal_then_grant() -> None:
    result = outcome(notice(QA, 1), act(QA, 2, ConsentState.REFUSED), act(QA, 30))
    assert result.intervals == ((30.0, 100.0),) and result.refused


def test_withdrawal_at_the_grant_instant_keeps_nothing() -> None:
    assert outcome(notice(QA, 1), act(QA, 2), act(QA, 2, ConsentState.WITHDRAWN)).intervals == ()


def test_notice_only_is_not_consent() -> None:
    assert outcome(notice(QA, 1)).intervals == ()


def test_opt_out_needs_notice_first() -> None:
    offer = act(QA, 1, method=ConsentMethod.OPT_OUT_OFFERED)
    assert outcome(offer, notice(QA, 5), opt_out=True).intervals == ()
    assert outcome(notice(QA, 1), offer, opt_out=True).basis is ConsentBasis.OPT_OUT


def test_objection_before_opt_out_offer_blocks_it() -> None:
    events = (
        notice(QA, 1),
        act(QA, 2, ConsentState.REFUSED),
        act(QA, 3, method=ConsentMethod.OPT_OUT_OFFERED),
    )
    assert outcome(*events, opt_out=True).intervals == ()


def test_event_offset_from_wall_clock_and_clamped() -> None:
    from datetime import timedelta

    before = ConsentEvent(
        role=Role.CUSTOMER,
        purpose=QA,
        state=ConsentState.GRANTED,
        method=ConsentMethod.WRITTEN,
        at=START - timedelta(days=3),
    )
    during = ConsentEvent(
        role=Role.CUSTOMER,
        purpose=QA,
        state=ConsentState.GRANTED,
        method=ConsentMethod.WRITTEN,
        at=START + timedelta(seconds=12),
    )
    assert event_offset(before, START, 100.0) == 0.0
    assert event_offset(during, START, 100.0) == 12.0
    assert event_offset(during, START, 5.0) == 5.0


def test_written_consent_before_the_call_counts_from_the_start_after_notice() -> None:
    from datetime import timedelta

    written = ConsentEvent(
        role=Role.CUSTOMER, purpose=QA, state=ConsentState.GRANTED, method=ConsentMethod.WRITTEN,
        at=START - timedelta(days=1), notice_version="v1",
    )  # fmt: skip
    early_notice = ConsentEvent(
        role=Role.CUSTOMER, purpose=QA, state=ConsentState.GRANTED,
        method=ConsentMethod.NOTICE_ONLY, at=START - timedelta(days=1, minutes=1),
        notice_version="v1",
    )  # fmt: skip
    assert outcome(early_notice, written).intervals == ((0.0, 100.0),)


def test_ivr_mapping_emits_notice_then_digit() -> None:
    policy = example("danish-inbound-support")
    events = consents_from_ivr(
        policy,
        [
            IvrInput(prompt="qa", digit="1", offset_s=5.0),
            IvrInput(prompt="training", digit="2", offset_s=9.0),
        ],
    )
    notices = [e for e in events if e.method is ConsentMethod.NOTICE_ONLY]
    acts = [e for e in events if e.method is ConsentMethod.DTMF]
    assert {(e.purpose, e.notice_version) for e in notices} == {
        ("documentation", "2026-01"), ("quality_assurance", "2026-01"), ("training", "2026-01"),
    }  # fmt: skip
    assert [(e.purpose, e.state) for e in acts] == [
        ("quality_assurance", ConsentState.GRANTED),
        ("training", ConsentState.REFUSED),
    ]
    assert all(e.role is Role.CUSTOMER and e.offset is not None for e in events)
    assert acts[0].evidence == "ivr:qa:1"


def test_ivr_unknown_prompt_is_an_error_unknown_digit_is_ignored() -> None:
    policy = example("danish-inbound-support")
    with pytest.raises(PolicyError, match="IVR prompt 'survey' is not configured"):
        consents_from_ivr(policy, [IvrInput(prompt="survey", digit="1", offset_s=1.0)])
    events = consents_from_ivr(policy, [IvrInput(prompt="qa", digit="7", offset_s=1.0)])
    assert all(e.method is ConsentMethod.NOTICE_ONLY for e in events)
