"""Builders shared by the policy tests: recordings, consent events and small policies."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import settings

from voicepriv.errors import PolicyError
from voicepriv.model import (
    ChannelLayout,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Direction,
    Medium,
    Party,
    Recording,
    Role,
)
from voicepriv.policy.config import Policy, load_policy, parse_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def example(name: str) -> Policy:
    """One of the shipped example policies."""
    return load_policy(EXAMPLES / f"{name}.toml")


def notice(purpose: str, offset: float, version: str = "v1") -> ConsentEvent:
    """A notice for *purpose* played to the customer at *offset*."""
    return ConsentEvent(
        role=Role.CUSTOMER,
        purpose=purpose,
        state=ConsentState.GRANTED,
        method=ConsentMethod.NOTICE_ONLY,
        offset=offset,
        notice_version=version,
    )


def act(
    purpose: str,
    offset: float,
    state: ConsentState = ConsentState.GRANTED,
    method: ConsentMethod = ConsentMethod.DTMF,
    *,
    version: str | None = "v1",
    conditional: bool = False,
) -> ConsentEvent:
    """A customer's consent act (grant / refusal / withdrawal) for *purpose*."""
    return ConsentEvent(
        role=Role.CUSTOMER,
        purpose=purpose,
        state=state,
        method=method,
        offset=offset,
        notice_version=version,
        conditional_service=conditional,
    )


def recording(
    agent: str | None = "DK",
    customer: str | None = "DK",
    *,
    consents: tuple[ConsentEvent, ...] = (),
    direction: Direction = Direction.INBOUND,
    layout: ChannelLayout | None = None,
    duration: float = 300.0,
    medium: Medium = Medium.PHONE,
    purposes: tuple[str, ...] = (),
    tags: frozenset[str] = frozenset(),
    minor: bool = False,
) -> Recording:
    """A two-party call (agent + customer)."""
    return Recording(
        id="call-1",
        started_at=START,
        duration=duration,
        direction=direction,
        parties=(
            Party(role=Role.AGENT, jurisdiction=agent),
            Party(role=Role.CUSTOMER, jurisdiction=customer, minor=minor),
        ),
        layout=layout if layout is not None else ChannelLayout.stereo(),
        consents=consents,
        medium=medium,
        purposes=purposes,
        tags=tags,
    )


BASE = """
[organisation]
name = "Test Org"
establishment = "{establishment}"
employees_informed = {informed}
employee_basis = "{employee_basis}"
employee_basis_reference = "handbook 4.2"
{org_extra}

[outbound]
agent_side_only = {agent_only}

[purposes.documentation]
basis = "legitimate_interests"
balancing_test = "BT-1"
retention = "2 years"

[purposes.quality_assurance]
basis = "consent"
retention = "6 months"
{qa_extra}

[purposes.training]
basis = "consent"
retention = "6 months"

[purposes.legal_compliance]
basis = "legal_obligation"
reference = "MiFID II Art. 16(7)"
retention = "5 years"

[notices.main]
version = "v1"
text = "We record calls."
purposes = ["documentation", "quality_assurance", "training", "legal_compliance"]

[ivr.qa]
notice = "main"

[ivr.qa.digits]
"1" = {{ purpose = "quality_assurance", state = "granted" }}
"2" = {{ purpose = "quality_assurance", state = "refused" }}

[roles.team_lead]
purposes = ["quality_assurance", "training"]

[roles.compliance]
purposes = ["legal_compliance", "documentation"]
"""


def policy(
    *,
    establishment: str = "DK",
    informed: bool = True,
    agent_only: bool = False,
    qa_extra: str = "",
    org_extra: str = "",
    employee_basis: str = "legitimate_interests",
) -> Policy:
    """A test policy with documentation (LI), QA and training (consent), legal compliance."""
    return parse_policy(
        BASE.format(
            establishment=establishment,
            informed=str(informed).lower(),
            agent_only=str(agent_only).lower(),
            qa_extra=qa_extra,
            org_extra=org_extra,
            employee_basis=employee_basis,
        ),
        "test.toml",
    )


#: Five times the profile's examples: each is cheap, and a bad value must meet a good document.
FUZZ = settings(max_examples=5 * settings().max_examples)


def _toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _toml_inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    pairs = ", ".join(f"{_toml_key(k)} = {_toml_inline(v)}" for k, v in value.items())
    return "{ " + pairs + " }"


def dump_toml(doc: dict[str, Any], header_depth: int) -> str:
    """*doc* as TOML text: tables down to *header_depth* under ``[headers]``, deeper ones inline."""
    lines: list[str] = []

    def emit(path: tuple[str, ...], table: dict[str, Any]) -> None:
        if path:
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        nested = []
        for key, value in table.items():
            if isinstance(value, dict) and len(path) < header_depth:
                nested.append((key, value))
            else:
                lines.append(f"{_toml_key(key)} = {_toml_inline(value)}")
        for key, value in nested:
            emit((*path, key), value)

    emit((), doc)
    return "\n".join(lines) + "\n"


def assert_policy_error(exc: PolicyError, source: str) -> None:
    """Every line of a parser's error names *source*."""
    lines = str(exc).splitlines()
    assert lines and all(line.startswith(source) for line in lines), str(exc)


T = TypeVar("T")


def parsed_or_refused(
    doc: dict[str, Any], header_depth: int, parse: Callable[[str, str], T]
) -> T | None:
    """*doc* written as TOML and given to *parse*: its result, or ``None`` when it raised a
    :class:`PolicyError` whose every line names the file (anything else escapes the test)."""
    text = dump_toml(doc, header_depth)
    assert tomllib.loads(text) == doc, text  # the fuzzer wrote what it drew
    try:
        return parse(text, "fuzz.toml")
    except PolicyError as exc:
        assert_policy_error(exc, "fuzz.toml")
        return None
