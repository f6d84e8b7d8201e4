"""Compliance reports: RoPA from a policy, retention, violations; JSON and HTML (in Chromium)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicepriv.errors import ConfigError
from voicepriv.policy.config import parse_policy
from voicepriv.reports import (
    HoldNote,
    RetentionEntry,
    RetentionReport,
    RetentionStatus,
    Violation,
    ViolationKind,
    ViolationsReport,
    classify_retention,
    render_html,
    report_json,
    ropa,
)

CHROMIUM = Path("/usr/bin/chromium")
AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

POLICY_TOML = """
[organisation]
name = "Acme Contact GmbH"
establishment = "DE"
employees_informed = true
employee_basis = "legitimate_interests"
employee_basis_reference = "LIA-agents-2024"
works_council_agreement = "BV Telefonie 2024"

[purposes.documentation]
label = "Documentation of orders"
basis = "contract"
reference = "Terms of sale 4.2"
retention = "6 months"

[purposes.legal_compliance]
basis = "legal_obligation"
reference = "MiFID II Art. 16(7)"
retention = "5 years"

[purposes.quality_assurance]
basis = "consent"
retention = "30 days"

[purposes.training]
basis = "legitimate_interests"
balancing_test = "LIA-2024-03"
retention = "90 days"

[notices.main]
version = "v3"
text = "This call may be recorded for quality assurance."
purposes = ["quality_assurance"]

[roles.qa_lead]
purposes = ["quality_assurance", "training"]

[roles.compliance]
purposes = ["legal_compliance", "documentation"]
"""


def _retention() -> RetentionReport:
    entries = []
    for i, offset in enumerate((-40, -1, 5, 20, 200)):
        deadline = AT + offset * DAY
        entries.append(
            RetentionEntry(
                recording=f"rec-{i}",
                stored_at=AT - 100 * DAY,
                deadline=deadline,
                purposes=("quality_assurance",),
                status=classify_retention(deadline, (), at=AT, due_within=30 * DAY),
            )
        )
    hold = HoldNote(id="H-7", reason="<script>alert(1)</script> Smith v. Acme", until=None)
    entries.append(
        RetentionEntry(
            recording="held-1",
            stored_at=AT - 400 * DAY,
            deadline=AT - 10 * DAY,
            purposes=("documentation",),
            status=classify_retention(AT - 10 * DAY, (hold,), at=AT, due_within=30 * DAY),
            holds=(hold,),
        )
    )
    return RetentionReport(at=AT, due_within=30 * DAY, entries=tuple(entries))


def _violations() -> ViolationsReport:
    return ViolationsReport(
        at=AT,
        scanned=6,
        events=12,
        violations=(
            Violation(
                recording="rec-0",
                kind=ViolationKind.PAST_DEADLINE,
                detail="deadline 2026-10-14 passed 40 days ago",
            ),
            Violation(
                recording="rec-3",
                kind=ViolationKind.PURPOSE_NOT_ALLOWED,
                detail="opened by qa-9 for 'analytics'",
                audit_seq=4,
            ),
        ),
    )


def test_ropa_lists_every_purpose_with_basis_retention_and_recipients() -> None:
    policy = parse_policy(POLICY_TOML, "policy.toml")
    report = ropa(policy, at=AT)
    assert report.controller == "Acme Contact GmbH"
    by_purpose = {a.purpose: a for a in report.activities}
    assert set(by_purpose) == set(policy.purposes)
    legal = by_purpose["legal_compliance"]
    assert (legal.basis, legal.basis_reference) == ("GDPR Art. 6(1)(c)", "MiFID II Art. 16(7)")
    assert legal.retention_days == policy.purposes["legal_compliance"].retention.keep_for.days
    assert legal.recipients == ("compliance",)
    assert by_purpose["training"].basis_reference == "LIA-2024-03"
    assert by_purpose["quality_assurance"].recipients == ("qa_lead",)
    data = json.loads(report_json(report))
    assert data["report"] == "ropa"
    assert [a["purpose"] for a in data["activities"]] == sorted(policy.purposes)
    assert data["generated_at"] == AT.isoformat()


@pytest.mark.parametrize(
    ("offset_days", "held", "status"),
    [
        (-1, False, RetentionStatus.OVERDUE),
        (0, False, RetentionStatus.OVERDUE),
        (10, False, RetentionStatus.DUE),
        (31, False, RetentionStatus.KEPT),
        (-5, True, RetentionStatus.HELD),
        (None, False, RetentionStatus.OVERDUE),
    ],
)
def test_retention_status(offset_days: int | None, held: bool, status: RetentionStatus) -> None:
    deadline = None if offset_days is None else AT + offset_days * DAY
    holds = (HoldNote(id="H", reason="litigation"),) if held else ()
    assert classify_retention(deadline, holds, at=AT, due_within=30 * DAY) is status


def test_retention_json_counts() -> None:
    data = json.loads(report_json(_retention()))
    assert data["counts"] == {"overdue": 2, "held": 1, "due": 2, "kept": 1}
    assert data["entries"][5]["holds"][0]["id"] == "H-7"


def test_html_is_self_contained_and_escaped() -> None:
    policy = parse_policy(POLICY_TOML, "policy.toml")
    page = render_html(ropa(policy, at=AT), _retention(), _violations())
    assert page.startswith("<!DOCTYPE html>")
    # No external assets: nothing fetched by src, href, CSS url() or @import.
    assert not re.search(r"\s(src|href)\s*=|url\(|@import", page)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('class="bar ') == 6
    assert 'class="bar overdue"' in page and 'class="bar held"' in page
    assert "MiFID II Art. 16(7)" in page
    assert "past deadline" in page


def test_render_html_needs_a_report() -> None:
    with pytest.raises(ConfigError, match="at least one report"):
        render_html()


@pytest.mark.browser
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed at /usr/bin/chromium "
            "(Debian: apt-get install -y chromium; tests/scripts/system_setup.sh does it)"
        )
    policy = parse_policy(POLICY_TOML, "policy.toml")
    retention = _retention()
    page = tmp_path / "report.html"
    page.write_text(render_html(ropa(policy, at=AT), retention, _violations()), "utf-8")
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # The page's inline check counted the SVG bars the browser laid out with a real width
    # (getBBox exists only on rendered SVG elements).
    laid_out = re.search(r'data-bars-laid-out="(\d+)"', dom)
    assert laid_out is not None, dom[:2000]
    assert int(laid_out.group(1)) == len(retention.entries)
    assert "Records of processing activities" in dom
    assert dom.count("<tr>") >= len(retention.entries) + len(policy.purposes)
