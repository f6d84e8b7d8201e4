"""Rights over per-purpose retention: objection shortens retention through the vault, expired
and withdrawn purposes refuse access, restrictions live in the catalog (legacy rights.db
migrated) and a legal-claims restriction holds the sweep back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_rights import AT, DAY, MIFID, PHONE, QA, STRANGER, TRAINING, Setup, decision
from voicepriv.errors import AccessDenied
from voicepriv.model import (
    Direction,
    Party,
    Recording,
    Role,
)
from voicepriv.policy.access import Principal
from voicepriv.policy.decision import decision_to_dict
from voicepriv.rights import RestrictionGround, Rights
from voicepriv.vault.catalog import PurposeEnd, RecordingState, RestrictionKind

QA_LEAD = Principal(id="qa-3", role="qa_lead")
LAWYER = Principal(id="lawyer-1", role="compliance")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path)
    yield built
    built.close()


def _denials(setup: Setup) -> list[str]:
    return [str(e.data["reason"]) for e in setup.audit.events() if e.type.value == "access_denied"]


def test_objection_shortens_retention_to_the_purposes_left(setup: Setup) -> None:
    setup.add("mixed", (PHONE,), QA, TRAINING)
    setup.add("li-only", (PHONE,), TRAINING)
    setup.add("other", (STRANGER,), TRAINING)
    catalog = setup.vault.catalog
    assert catalog.recording("mixed").delete_after == TRAINING.deadline
    key_id = catalog.recording("li-only").key_id
    result = setup.rights.object([PHONE], now=AT)
    # Retention of "mixed" now ends with its consent purpose, not the objected one.
    assert catalog.recording("mixed").delete_after == QA.deadline
    assert dict(result.delete_after) == {"mixed": QA.deadline}
    training = catalog.purpose_deadlines("mixed")["training"]
    assert training.end_reason is PurposeEnd.OBJECTION and training.ended_at == AT
    # "li-only" had nothing else: crypto-shredded and deleted.
    assert result.deleted == ("li-only",)
    assert catalog.recording("li-only").state is RecordingState.DELETED
    assert setup.vault.keys.is_destroyed(key_id)
    # Someone else's recording is untouched.
    assert catalog.recording("other").delete_after == TRAINING.deadline
    # The sweep deletes "mixed" at the consent deadline, not the training one.
    report = setup.vault.sweep(QA.deadline, cleanup_grace=None)
    assert [r.recording_id for r in report.deleted] == ["mixed"]
    event = next(e for e in setup.audit.events() if e.type.value == "objection")
    assert event.data["retention"] == [
        {"recording": "mixed", "delete_after": "2026-12-23T12:00:00.000000Z"}
    ]


def test_objection_refusal_comes_from_the_catalog(setup: Setup) -> None:
    setup.add("mixed", (PHONE,), QA, TRAINING)
    setup.rights.object([PHONE], now=AT)
    # Even with the per-subject objection rows gone, the dropped purpose stays refused.
    setup.vault.catalog.db.execute("DELETE FROM restrictions")
    with pytest.raises(AccessDenied, match="objected to 'training'"):
        setup.rights.open("mixed", principal=QA_LEAD, purpose="training", now=AT)
    setup.rights.open("mixed", principal=QA_LEAD, purpose="quality_assurance", now=AT)
    assert _denials(setup) == ["objected"]


def _add_with_catalog_deadlines(setup: Setup, recording_id: str, deadlines: dict) -> None:  # type: ignore[type-arg]
    """A recording whose stored decision keeps QA and MIFID longer than the catalog does."""
    recording = Recording(
        id=recording_id,
        started_at=AT - 5 * DAY,
        duration=120,
        direction=Direction.INBOUND,
        parties=(
            Party(role=Role.AGENT, id="agent-7"),
            Party(role=Role.CUSTOMER, jurisdiction="DK", subjects=(PHONE,)),
        ),
    )
    made = decision(recording_id, QA, MIFID)
    setup.vault.put(
        recording,
        {"agent_audio": b"audio"},
        delete_after=None,
        deadlines=deadlines,
        decision=json.dumps(decision_to_dict(made)),
    )


def test_expired_purpose_refuses_access_after_the_sweep(setup: Setup) -> None:
    # The catalog's QA deadline (10 days) is earlier than the decision's (30 days).
    _add_with_catalog_deadlines(
        setup, "call-1", {"quality_assurance": AT + 10 * DAY, "legal_compliance": MIFID.deadline}
    )
    setup.rights.open("call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT)
    report = setup.vault.sweep(AT + 11 * DAY, cleanup_grace=None)
    assert report.expired == (("call-1", "quality_assurance"),)
    assert setup.vault.catalog.recording("call-1").state is RecordingState.ACTIVE
    with pytest.raises(AccessDenied, match="no longer retains it for 'quality_assurance'"):
        setup.rights.open(
            "call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT + 11 * DAY
        )
    setup.rights.open("call-1", principal=LAWYER, purpose="legal_compliance", now=AT + 11 * DAY)
    assert _denials(setup) == ["purpose_expired"]


def test_withdrawn_purpose_refuses_access(setup: Setup) -> None:
    _add_with_catalog_deadlines(
        setup, "call-1", {"quality_assurance": QA.deadline, "legal_compliance": MIFID.deadline}
    )
    setup.vault.drop_purposes("call-1", {"quality_assurance"}, now=AT)
    with pytest.raises(AccessDenied, match="withdrawn"):
        setup.rights.open("call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT)
    assert _denials(setup) == ["purpose_withdrawn"]


def test_legal_claims_restriction_holds_the_sweep_back(setup: Setup) -> None:
    setup.add("claims", (PHONE,), QA)
    setup.add("plain", (STRANGER,), QA)
    setup.rights.restrict([PHONE], now=AT, ground=RestrictionGround.LEGAL_CLAIMS)
    setup.rights.restrict([STRANGER], now=AT, ground=RestrictionGround.ACCURACY)
    (entry,) = setup.vault.catalog.restrictions("claims", RestrictionKind.RESTRICTION)
    assert entry.ground is RestrictionGround.LEGAL_CLAIMS
    report = setup.vault.sweep(QA.deadline, cleanup_grace=None)
    assert [r.recording_id for r in report.deleted] == ["plain"]
    (held,) = report.held
    assert held.recording_id == "claims" and held.restrictions == ("legal_claims",)
    assert "GDPR Art. 18(1)(c)" in held.reason
    events = [e.data for e in setup.audit.events() if e.type.value == "restriction"]
    assert [e.get("ground") for e in events] == ["legal_claims", "accuracy"]
    setup.rights.restrict([PHONE], now=AT + DAY, lift=True)
    report = setup.vault.sweep(QA.deadline, cleanup_grace=None)
    assert [r.recording_id for r in report.deleted] == ["claims"]


def test_legacy_rights_db_is_moved_into_the_catalog(setup: Setup, tmp_path: Path) -> None:
    setup.add("call-1", (PHONE,), QA, TRAINING, MIFID)
    subject = setup.vault.subject_hash(PHONE)
    legacy = setup.vault.config.root / "rights.db"
    connection = sqlite3.connect(legacy)
    connection.execute(
        "CREATE TABLE restrictions (recording_id TEXT NOT NULL, subject_hash TEXT NOT NULL,"
        " kind TEXT NOT NULL, detail TEXT NOT NULL, placed_at TEXT NOT NULL, lifted_at TEXT,"
        " PRIMARY KEY (recording_id, subject_hash, kind, placed_at))"
    )
    connection.executemany(
        "INSERT INTO restrictions VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("call-1", subject, "restriction", "restriction", AT.isoformat(), None),
            ("call-1", subject, "objection", "training", (AT + DAY).isoformat(), None),
            (
                "call-1",
                subject,
                "restriction",
                "restriction",
                (AT - DAY).isoformat(),
                AT.isoformat(),
            ),
        ],
    )
    connection.commit()
    connection.close()
    rights = Rights(setup.vault, setup.policy, setup.audit)
    assert rights.migrated == 3
    assert not legacy.exists() and legacy.with_name("rights.db.migrated").exists()
    catalog = setup.vault.catalog
    assert len(catalog.restrictions("call-1", active=False)) == 3
    assert [r.detail for r in catalog.restrictions("call-1", RestrictionKind.OBJECTION)] == [
        "training"
    ]
    with pytest.raises(AccessDenied, match=r"Art\. 18"):
        rights.open("call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT)
    rights.open("call-1", principal=LAWYER, purpose="legal_compliance", now=AT)
    rights.restrict([PHONE], now=AT + DAY, lift=True)
    with pytest.raises(AccessDenied, match="objected to 'training'"):
        rights.open("call-1", principal=QA_LEAD, purpose="training", now=AT + DAY)
    # Opening again finds nothing left to migrate.
    assert Rights(setup.vault, setup.policy, setup.audit).migrated == 0
