"""Access: a role may open a recording only for an allowed purpose the decision covers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.policy._helpers import START, act, notice, policy, recording

from voicepriv.errors import AccessDenied
from voicepriv.model import Role
from voicepriv.policy.access import Denial, Grant, Principal, authorize, require
from voicepriv.policy.decision import decide

QA = "quality_assurance"
POLICY = policy()
DECISION = decide(recording(consents=(notice(QA, 1), act(QA, 2))), POLICY)
NOW = START + timedelta(days=1)


def test_grant_for_an_allowed_covered_purpose_expires() -> None:
    answer = authorize(Principal(id="u1", role="team_lead"), DECISION, QA, POLICY, NOW)
    assert isinstance(answer, Grant)
    assert answer.tracks == (Role.AGENT, Role.CUSTOMER)
    assert answer.expires_at == NOW + timedelta(hours=8)


def test_grant_expiry_never_passes_the_purpose_deadline() -> None:
    qa = DECISION.customer.purpose(QA)
    assert qa is not None
    late = qa.deadline - timedelta(hours=1)
    answer = authorize(Principal(id="u1", role="team_lead"), DECISION, QA, POLICY, late)
    assert isinstance(answer, Grant) and answer.expires_at == qa.deadline


def test_denied_for_a_purpose_the_role_may_not_use() -> None:
    answer = authorize(Principal(id="u2", role="team_lead"), DECISION, "documentation", POLICY, NOW)
    assert (
        isinstance(answer, Denial) and "may not use recordings for 'documentation'" in answer.reason
    )


def test_denied_for_a_purpose_the_decision_does_not_cover() -> None:
    answer = authorize(Principal(id="u3", role="team_lead"), DECISION, "training", POLICY, NOW)
    assert isinstance(answer, Denial) and "is not kept for 'training'" in answer.reason


def test_denied_for_an_unknown_role() -> None:
    answer = authorize(Principal(id="u4", role="intern"), DECISION, QA, POLICY, NOW)
    assert isinstance(answer, Denial) and "'intern' is not defined" in answer.reason


def test_denied_after_the_deadline() -> None:
    answer = authorize(
        Principal(id="u1", role="team_lead"), DECISION, QA, POLICY, START + timedelta(days=400)
    )
    assert isinstance(answer, Denial) and "retention" in answer.reason


def test_require_raises_access_denied() -> None:
    with pytest.raises(AccessDenied, match="u4: role 'intern'"):
        require(Principal(id="u4", role="intern"), DECISION, QA, POLICY, NOW)
    assert require(Principal(id="u1", role="team_lead"), DECISION, QA, POLICY, NOW).purpose == QA
