"""Organisation policy files: examples load, problems are reported with their lines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy._helpers import EXAMPLES, FUZZ, example, parsed_or_refused

from strategies import toml_documents
from voicepriv.errors import PolicyError
from voicepriv.model import ConsentState, LegalBasis
from voicepriv.policy.config import load_policy, parse_duration, parse_policy


@pytest.mark.parametrize(
    "name", ["danish-inbound-support", "us-outbound-sales", "uk-investment-firm"]
)
def test_examples_load_without_warnings(name: str) -> None:
    policy = example(name)
    assert policy.purposes and policy.roles and policy.notices
    assert policy.warnings == ()


def test_example_contents() -> None:
    dk = example("danish-inbound-support")
    assert dk.organisation.establishment == "DK"
    assert dk.purposes["quality_assurance"].basis is LegalBasis.CONSENT
    assert dk.purposes["documentation"].retention.keep_for == timedelta(days=731)
    assert dk.ivr_prompts["qa"].digits["1"].state is ConsentState.GRANTED
    assert dk.ivr_prompts["qa"].digits["2"].purpose == "quality_assurance"
    assert dk.notice_versions["quality_assurance"] == {"2026-01"}
    us = example("us-outbound-sales")
    assert us.outbound_agent_side_only and us.organisation.redact_payment_data
    uk = example("uk-investment-firm")
    assert uk.purposes["legal_compliance"].basis is LegalBasis.LEGAL_OBLIGATION
    assert "16(7)" in (uk.purposes["legal_compliance"].reference or "")
    assert uk.allowed("compliance_officer") == {"legal_compliance"}
    assert uk.allowed("nobody") == frozenset()


@pytest.mark.parametrize(
    ("text", "days"),
    [("6 months", 183), ("2 years", 731), ("5 years", 1827), ("30 days", 30), ("12 weeks", 84)],
)
def test_parse_duration_rounds_up(text: str, days: int) -> None:
    assert parse_duration(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["six months", "0 days", "5 fortnights", ""])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(PolicyError, match="duration"):
        parse_duration(text)


BROKEN = """\
[organisation]
name = "Broken"
establishment = "Denmark"
employees_informed = "yes"

[purposes.qa]
retention = "6 months"

[purposes.doc]
basis = "contract"
retention = "2 lightyears"

[purposes.analytics]
basis = "consent"
retention = "1 year"
opt_out = true

[notices.main]
version = "v1"
text = "hello"
purposes = ["doc", "marketing"]

[roles.lead]
purposes = ["qa", "ghost"]

[ivr.qa]
notice = "main"

[ivr.qa.digits]
"1" = { purpose = "doc", state = "granted" }
"A" = { purpose = "doc", state = "granted" }
"2" = { purpose = "doc", state = "maybe" }
"3" = { purpose = "analytics", state = "granted" }

[extras]
colour = "blue"
"""


def test_every_problem_reported_with_its_line() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(BROKEN, "broken.toml")
    lines = str(info.value).splitlines()
    expected = [
        "broken.toml line 3: establishment must be an ISO 3166 code",
        "broken.toml line 4: 'employees_informed' must be true or false",
        "broken.toml line 6: purpose 'qa' has no legal basis",
        "broken.toml line 11: purpose 'doc': expected a duration",
        "broken.toml line 16: purpose 'analytics': opt_out needs opt_out_guidance",
        "broken.toml line 21: notice 'main' names undeclared purpose 'marketing'",
        "broken.toml line 24: role 'lead' names undeclared purpose 'ghost'",
        "broken.toml line 31: IVR prompt 'qa': 'A' is not a DTMF digit",
        "broken.toml line 32: IVR prompt 'qa' digit '2': state must be",
        "broken.toml line 33: IVR prompt 'qa' digit '3': notice 'main' does not announce",
        "broken.toml line 35: unknown table or key 'extras'",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_syntax_error_names_the_file() -> None:
    with pytest.raises(PolicyError, match=r"bad\.toml: not valid TOML"):
        parse_policy("[organisation\nname=1", "bad.toml")


def test_bundled_consent_digit_is_rejected() -> None:
    text = (EXAMPLES / "danish-inbound-support.toml").read_text(encoding="utf-8")
    text = text.replace(
        '"1" = { purpose = "quality_assurance", state = "granted" }',
        '"1" = { purposes = ["quality_assurance", "training"], state = "granted" }',
    )
    with pytest.raises(PolicyError, match="a single 'yes' never covers two"):
        parse_policy(text, "dk.toml")


def test_warnings_for_documentation_gaps() -> None:
    policy = parse_policy(
        '[organisation]\nname = "x"\n[purposes.doc]\nbasis = "legitimate_interests"\n'
        'retention = "1 year"\n[purposes.qa]\nbasis = "consent"\nretention = "1 year"\n',
        "gaps.toml",
    )
    text = "\n".join(policy.warnings)
    assert "no establishment" in text
    assert "gaps.toml line 3: purpose 'doc': legitimate interests needs a documented" in text
    assert "purpose 'qa' relies on consent but no notice announces it" in text
    assert "employees are not recorded as informed" in text


def test_basis_letters_are_accepted() -> None:
    policy = parse_policy(
        '[organisation]\nname = "x"\nestablishment = "GB"\n[purposes.doc]\nbasis = "b"\n'
        'reference = "terms §3"\nretention = "1 year"\n',
        "letters.toml",
    )
    assert policy.purposes["doc"].basis is LegalBasis.CONTRACT


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "nope.toml")


GOOD = """\
[organisation]
name = "T"
establishment = "DK"
employees_informed = true
employee_basis_reference = "handbook"

[purposes.quality_assurance]
basis = "consent"
retention = "6 months"

[purposes.training]
basis = "consent"
retention = "6 months"

[notices.main]
version = "v1"
text = "We record."
purposes = ["quality_assurance", "training"]

[ivr.qa]
notice = "main"

[ivr.qa.digits]
"1" = { purpose = "quality_assurance", state = "granted" }
"""


def test_ivr_digit_purpose_list_is_reported_with_its_line() -> None:
    text = GOOD.replace(
        '"1" = { purpose = "quality_assurance", state = "granted" }',
        '"1" = { purpose = ["quality_assurance", "training"], state = "granted" }\n'
        '"2" = { purpose = { id = "training" }, state = ["granted"] }',
    )
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "ivr.toml")
    lines = str(info.value).splitlines()
    assert lines == [
        "ivr.toml line 24: IVR prompt 'qa' digit '1': purpose must be one purpose id (a string: "
        "a single 'yes' never covers two), got ['quality_assurance', 'training']",
        "ivr.toml line 25: IVR prompt 'qa' digit '2': purpose must be one purpose id (a string: "
        "a single 'yes' never covers two), got {'id': 'training'}",
        "ivr.toml line 25: IVR prompt 'qa' digit '2': state must be 'granted', 'refused' or "
        "'withdrawn', got ['granted']",
    ]


@pytest.mark.parametrize("label", ['{ en = "QA" }', "5", "true", '["QA"]', '""'])
def test_purpose_label_must_be_a_string(label: str) -> None:
    text = GOOD.replace("[purposes.training]\n", f"[purposes.training]\nlabel = {label}\n")
    with pytest.raises(PolicyError, match=r"^label\.toml line 12: 'label' must be a non-empty str"):
        parse_policy(text, "label.toml")


def test_purpose_label_is_kept() -> None:
    text = GOOD.replace("[purposes.training]\n", '[purposes.training]\nlabel = "Training"\n')
    policy = parse_policy(text, "label.toml")
    assert policy.purposes["training"].label == "Training"
    assert policy.purposes["quality_assurance"].label == ""


def test_accepted_versions_must_not_be_blank() -> None:
    text = GOOD.replace('text = "We record."', 'text = "We record."\naccepted_versions = [""]')
    with pytest.raises(PolicyError, match=r"^v\.toml line 18: notice 'main': accepted_versions"):
        parse_policy(text, "v.toml")


RICH = (
    GOOD
    + """"2" = { purpose = "training", state = "refused" }

[purposes.documentation]
label = "Documentation"
basis = "legitimate_interests"
balancing_test = "BT-1"
retention = "2 years"

[purposes.contract_record]
basis = "b"
reference = "terms s.3"
retention = "1 year"
special_category_condition = "Art. 9(2)(f)"

[notices.old]
version = "v2"
text = "We record calls."
purposes = ["documentation"]
accepted_versions = ["v1"]

[roles.lead]
purposes = ["quality_assurance", "documentation"]

[outbound]
agent_side_only = true
"""
)


def test_rich_policy_is_valid() -> None:
    policy = parse_policy(RICH, "rich.toml")
    assert policy.warnings == () and len(policy.ivr_prompts["qa"].digits) == 2


# --------------------------------------------------------------------------- fuzzing
# Valid documents with a few values replaced, keys removed or added (tests/strategies.py): one
# wrong value in an otherwise good document is what a parser is most likely to let through.


@FUZZ
@given(toml_documents(RICH), st.integers(0, 3))
def test_policy_parser_raises_only_policy_errors(doc: dict[str, Any], header_depth: int) -> None:
    policy = parsed_or_refused(doc, header_depth, parse_policy)
    if policy is None:
        return
    assert all(isinstance(p.label, str) for p in policy.purposes.values())
    for prompt in policy.ivr_prompts.values():
        assert all(d.purpose in policy.purposes for d in prompt.digits.values())
    for notice in policy.notices.values():
        assert all(isinstance(v, str) and v.strip() for v in notice.accepted_versions)
