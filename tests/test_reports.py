"""Compliance reports: RoPA from a policy, retention, violations; JSON and HTML (in Chromium)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voicepriv.audit import AuditLog, EventType, read_events
from voicepriv.cli import main
from voicepriv.errors import ConfigError
from voicepriv.model import (
    Direction,
    HoldScope,
    LegalBasis,
    LegalHold,
    Party,
    Recording,
    RetentionRule,
    Role,
    Segment,
    utc_now,
)
from voicepriv.policy.config import parse_policy
from voicepriv.policy.decision import (
    Decision,
    KeptPurpose,
    TrackDecision,
    decision_from_dict,
    decision_to_dict,
)
from voicepriv.policy.jurisdictions import DataProtection, Interception
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
    retention_report,
    ropa,
    stored_recordings,
    violations_scan,
)
from voicepriv.vault.catalog import ArtifactKind
from voicepriv.vault.vault import Vault

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


# --------------------------------------------------------------------------- from a real vault


def _kept(purpose: str, basis: LegalBasis, deadline: datetime) -> KeptPurpose:
    return KeptPurpose(
        purpose=purpose,
        basis=basis,
        segments=(Segment(start=0, end=10),),
        retention=RetentionRule(purpose=purpose, keep_for=30 * DAY),
        deadline=deadline,
    )


def _decision(recording: str, *purposes: KeptPurpose, customer: bool = False) -> Decision:
    def track(role: Role, keep: bool) -> TrackDecision:
        if not keep or not purposes:
            return TrackDecision(role=role, keep=False)
        last = max(purposes, key=lambda k: k.deadline)
        return TrackDecision(
            role=role,
            keep=True,
            purposes=purposes,
            deadline=last.deadline,
            governing_purpose=last.purpose,
        )

    return Decision(
        recording_id=recording,
        agent=track(Role.AGENT, True),
        customer=track(Role.CUSTOMER, customer),
        obligations=(),
        reasons=(),
        interception=Interception.ALL_PARTY,
        data_protection=(DataProtection.GDPR,),
        jurisdictions=("DE",),
    )


def _vault_with_findings(folder: Path) -> tuple[Vault, Path]:
    vault = Vault.create(folder / "vault")
    now = utc_now()

    def put(recording_id: str, made: Decision | None, kind: ArtifactKind) -> None:
        recording = Recording(
            id=recording_id,
            started_at=now - 40 * DAY,
            duration=60,
            direction=Direction.INBOUND,
            parties=(Party(role=Role.AGENT, id="agent-1"), Party(role=Role.CUSTOMER)),
        )
        vault.put(
            recording,
            {kind: b"pcm" * 10},
            delete_after=None if made is None else made.deadline,
            deadlines={}
            if made is None
            else {k.purpose: k.deadline for t in made.tracks for k in t.purposes},
            decision=None if made is None else json.dumps(decision_to_dict(made)),
        )

    qa_future = _kept("quality_assurance", LegalBasis.CONSENT, now + 20 * DAY)
    qa_past = _kept("quality_assurance", LegalBasis.CONSENT, now - 3 * DAY)
    put("ok", _decision("ok", qa_future), ArtifactKind.AGENT_AUDIO)
    put("overdue", _decision("overdue", qa_past), ArtifactKind.AGENT_AUDIO)
    put("held", _decision("held", qa_past), ArtifactKind.AGENT_AUDIO)
    put("full", _decision("full", qa_future), ArtifactKind.FULL_AUDIO)
    put("no-basis", None, ArtifactKind.AGENT_AUDIO)
    vault.place_hold(
        LegalHold(
            id="H-1",
            scope=HoldScope(recordings=frozenset({"held"})),
            reason="litigation",
            placed_at=now - DAY,
        )
    )
    log = AuditLog(vault.config.root / "audit.jsonl", signer=vault.provider, sinks=[])
    log.append(
        EventType.ACCESS_GRANTED,
        {"recording": "ok", "principal": "qa-3", "role": "qa_lead", "purpose": "quality_assurance"},
    )
    log.append(
        EventType.ACCESS_GRANTED,
        {"recording": "ok", "principal": "qa-3", "role": "qa_lead", "purpose": "legal_compliance"},
    )
    return vault, log.path


def test_retention_and_violations_from_a_vault(tmp_path: Path) -> None:
    vault, log = _vault_with_findings(tmp_path)
    policy = parse_policy(POLICY_TOML, "policy.toml")
    with vault:

        def decision(recording_id: str) -> Decision | None:
            text = vault.metadata(recording_id).decision
            return decision_from_dict(json.loads(text)) if text else None

        rows = list(stored_recordings(vault.catalog, decisions=decision))
        retention = retention_report(rows, vault.catalog.holds())
        found = violations_scan(rows, vault.catalog.holds(), read_events(log), policy)
    status = {e.recording: e.status for e in retention.entries}
    assert status == {
        "ok": RetentionStatus.DUE,
        "overdue": RetentionStatus.OVERDUE,
        "held": RetentionStatus.HELD,
        "full": RetentionStatus.DUE,
        "no-basis": RetentionStatus.OVERDUE,
    }
    assert {e.recording: e.replicas for e in retention.entries}["ok"] == 1
    kinds = sorted((v.recording, v.kind.value) for v in found.violations)
    assert kinds == [
        ("full", "customer_track_kept"),
        ("no-basis", "no_valid_basis"),
        ("no-basis", "past_deadline"),
        ("ok", "purpose_not_allowed"),
        ("overdue", "past_deadline"),
    ]
    opened = next(v for v in found.violations if v.kind is ViolationKind.PURPOSE_NOT_ALLOWED)
    assert opened.audit_seq == 1
    assert (found.scanned, found.events) == (5, 2)


def test_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vault, _ = _vault_with_findings(tmp_path)
    vault.close()
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML, encoding="utf-8")
    assert main(["report", "ropa", "--policy", str(policy)]) == 0
    assert json.loads(capsys.readouterr().out)["controller"] == "Acme Contact GmbH"
    page = tmp_path / "retention.html"
    root = str(tmp_path / "vault")
    assert main(["report", "retention", "--vault", root, "--format", "html", "-o", str(page)]) == 0
    assert page.read_text().count('class="bar ') == 5
    capsys.readouterr()
    code = main(["report", "violations", "--vault", root, "--policy", str(policy)])
    assert code == 1
    assert len(json.loads(capsys.readouterr().out)["violations"]) == 5


def _put_voiceprint(
    vault: Vault, recording_id: str, delete_after: datetime, kind: ArtifactKind
) -> None:
    """A catalog entry as ``enrollment.enroll`` makes it: tag ``voiceprint``, no decision."""
    vault.put(
        Recording(
            id=recording_id,
            started_at=utc_now() - DAY,
            duration=10,
            direction=Direction.INBOUND,
            parties=(Party(role=Role.AGENT, id="agent-7"),),
            tags=frozenset({"voiceprint"}),
        ),
        {kind: b"{}" * 10},
        delete_after=delete_after,
    )


def test_voiceprint_entries_are_judged_by_their_own_deadline(tmp_path: Path) -> None:
    policy = parse_policy(POLICY_TOML, "policy.toml")
    now = utc_now()
    with Vault.create(tmp_path / "vault") as vault:
        _put_voiceprint(vault, "voiceprint.agent-7.live", now + 300 * DAY, ArtifactKind.VOICEPRINT)
        _put_voiceprint(vault, "voiceprint.agent-8.old", now - DAY, ArtifactKind.VOICEPRINT)
        # Call audio tagged "voiceprint" is still a call: no decision, no basis.
        _put_voiceprint(vault, "tagged-call", now + 300 * DAY, ArtifactKind.AGENT_AUDIO)
        rows = list(stored_recordings(vault.catalog, decisions=lambda _id: None))
        found = violations_scan(rows, vault.catalog.holds(), [], policy, at=now)
    assert {r.recording: r.is_voiceprint for r in rows} == {
        "voiceprint.agent-7.live": True,
        "voiceprint.agent-8.old": True,
        "tagged-call": False,
    }
    assert sorted((v.recording, v.kind.value) for v in found.violations) == [
        ("tagged-call", "no_valid_basis"),
        ("voiceprint.agent-8.old", "past_deadline"),
    ]


def test_voiceprint_tag_matches_enrollment() -> None:
    from voicepriv import enrollment, reports

    assert reports._VOICEPRINT_TAG == enrollment.VOICEPRINT_TAG


def test_report_violations_with_an_enrolled_agent_and_a_missing_audit_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML, encoding="utf-8")
    with Vault.create(tmp_path / "vault") as vault:
        _put_voiceprint(
            vault, "voiceprint.agent-7.x", utc_now() + 300 * DAY, ArtifactKind.VOICEPRINT
        )
    args = ["report", "violations", "--vault", str(tmp_path / "vault"), "--policy", str(policy)]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["violations"] == []
    # An --audit that does not exist is an error, not a scan of no events.
    assert main([*args, "--audit", str(tmp_path / "audti.jsonl")]) == 2
    assert f"--audit {tmp_path / 'audti.jsonl'}: no such file" in capsys.readouterr().err
