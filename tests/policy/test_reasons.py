"""Reasons read well: every citation appears once in a reason's rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from tests.policy._helpers import BASE, example, recording

from strategies import recordings
from voicepriv.model import Recording
from voicepriv.policy import decide
from voicepriv.policy.config import parse_policy


@pytest.mark.parametrize(
    "policy_name", ["danish-inbound-support", "us-outbound-sales", "uk-investment-firm"]
)
@given(recording=recordings())
def test_no_citation_is_repeated_within_a_reason(policy_name: str, recording: Recording) -> None:
    decision = decide(recording, example(policy_name))
    for reason in decision.reasons:
        cites = [c.strip() for c in reason.rule.split(";") if c.strip()]
        assert len(cites) == len(set(cites)), reason


def test_a_jurisdiction_shared_by_parties_and_establishment_is_cited_once() -> None:
    # DK agent, DK customer and a DK establishment: the DK rule reaches the legitimate-interests
    # reason three times over; it must be cited once.
    text = BASE.format(
        establishment="DK",
        informed="true",
        agent_only="false",
        qa_extra="",
        org_extra="",
        employee_basis="legitimate_interests",
    )
    text += '\n[purposes.analytics]\nbasis = "legitimate_interests"\nbalancing_test = "BT-2"\n'
    text += 'retention = "1 year"\n'
    decision = decide(recording("DK", "DK", purposes=("analytics",)), parse_policy(text, "t.toml"))
    refused = [r for r in decision.reasons if "'analytics'" in r.text]
    assert refused, [str(r) for r in decision.reasons]
    for reason in refused:
        cites = [c.strip() for c in reason.rule.split(";") if c.strip()]
        assert len(cites) == len(set(cites)), reason
