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
    ChannelLayout,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Direction,
    LegalBasis,
    Party,
    Recording,
    Role,
    SubjectKind,
    SubjectRef,
)
from voicepriv.policy import decide, parse_policy
from voicepriv.policy.access import Principal
from voicepriv.policy.decision import Decision, decision_to_dict
from voicepriv.rights import RestrictionGround, Rights
from voicepriv.vault.catalog import ArtifactKind, PurposeEnd, RecordingState, RestrictionKind

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
    # The customer's voice alone is kept (the agent's track keeps nothing), so the purposes
    # the customer objects to retain the recording for no one any more.
    setup.add("mixed", (PHONE,), QA, TRAINING, customer=True, agent=False)
    setup.add("li-only", (PHONE,), TRAINING, customer=True, agent=False)
    setup.add("other", (STRANGER,), TRAINING, customer=True, agent=False)
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
    setup.add("mixed", (PHONE,), QA, TRAINING, customer=True, agent=False)
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
    setup.add("call-1", (PHONE,), QA, TRAINING, MIFID, customer=True, agent=False)
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


DK_POLICY = parse_policy(
    """
[organisation]
name = "Test Org"
establishment = "DK"
employees_informed = true
employee_basis = "legitimate_interests"
employee_basis_reference = "handbook 4.2"

[purposes.documentation]
basis = "legitimate_interests"
balancing_test = "BT-1"
retention = "2 years"

[purposes.contract_record]
basis = "contract"
reference = "terms s.3"
retention = "1 year"

[purposes.quality_assurance]
basis = "consent"
retention = "6 months"

[notices.main]
version = "v1"
text = "We record calls."
purposes = ["documentation", "contract_record", "quality_assurance"]

[roles.qa_lead]
purposes = ["quality_assurance", "documentation"]
""",
    "dk-policy.toml",
)
AGENT_REF = SubjectRef(kind=SubjectKind.OTHER, value="agent-7")


def _decided_call(setup: Setup, purposes: tuple[str, ...]) -> Decision:
    """A Danish call as decide() sees it, stored with agent audio and the full call."""

    def event(purpose: str, method: ConsentMethod, offset: float) -> ConsentEvent:
        return ConsentEvent(
            role=Role.CUSTOMER,
            purpose=purpose,
            state=ConsentState.GRANTED,
            method=method,
            offset=offset,
            notice_version="v1",
        )

    recording = Recording(
        id="call-1",
        started_at=AT - 5 * DAY,
        duration=300,
        direction=Direction.INBOUND,
        parties=(
            Party(role=Role.AGENT, jurisdiction="DK", subjects=(AGENT_REF,)),
            Party(role=Role.CUSTOMER, jurisdiction="DK", subjects=(PHONE,)),
        ),
        layout=ChannelLayout.stereo(),
        consents=(
            *(event(p, ConsentMethod.NOTICE_ONLY, 0.0) for p in purposes),
            event("quality_assurance", ConsentMethod.DTMF, 2.0),
        ),
        purposes=purposes,
    )
    made = decide(recording, DK_POLICY)
    setup.vault.put(
        recording,
        {ArtifactKind.AGENT_AUDIO: b"agent" * 100, ArtifactKind.FULL_AUDIO: b"both" * 100},
        delete_after=made.deadline,
        deadlines={k.purpose: k.deadline for t in made.tracks for k in t.purposes},
        decision=json.dumps(decision_to_dict(made)),
    )
    return made


def test_objection_to_a_decided_call_keeps_contract_and_consent(setup: Setup) -> None:
    # The reviewer's end-to-end case: kept on contract and consent for the customer (and on
    # the employment basis for the agent); the customer's objection used to delete it.
    made = _decided_call(setup, ("contract_record", "quality_assurance"))
    bases = {k.purpose: k.basis for k in made.customer.purposes}
    assert bases == {
        "contract_record": LegalBasis.CONTRACT,
        "quality_assurance": LegalBasis.CONSENT,
    }
    assert {k.basis for k in made.agent.purposes} == {LegalBasis.LEGITIMATE_INTERESTS}
    rights = Rights(setup.vault, DK_POLICY, setup.audit)
    key_id = setup.vault.catalog.recording("call-1").key_id
    result = rights.object([PHONE], now=AT)
    assert (dict(result.removed_purposes), result.deleted) == ({}, ())
    entry = setup.vault.catalog.recording("call-1")
    assert entry.state is RecordingState.ACTIVE and entry.delete_after == made.deadline
    assert not setup.vault.keys.is_destroyed(key_id)
    rights.open("call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT)


def test_objections_by_customer_then_agent_add_up(setup: Setup) -> None:
    made = _decided_call(setup, ("documentation", "contract_record", "quality_assurance"))
    rights = Rights(setup.vault, DK_POLICY, setup.audit)
    first = rights.object([PHONE], now=AT)
    # Only the customer's LI purpose goes; the agent's track keeps it, so the catalog too.
    assert first.removed_purposes == {"call-1": ("documentation",)}
    assert first.removed_from == {"call-1": (Role.CUSTOMER,)}
    assert first.ended_purposes == {"call-1": ()} and first.deleted == ()
    grant = rights.open("call-1", principal=QA_LEAD, purpose="documentation", now=AT)
    assert [setup.vault.catalog.artifact(a).kind for a in grant.artifacts] == [
        ArtifactKind.AGENT_AUDIO
    ]
    # The agent objects too: the agent's track loses its employment basis for every purpose;
    # "documentation" is kept by no track any more and stops retaining the recording.
    second = rights.object([AGENT_REF], now=AT + DAY)
    assert second.removed_purposes == {
        "call-1": ("contract_record", "documentation", "quality_assurance")
    }
    assert second.removed_from == {"call-1": (Role.AGENT,)}
    assert second.ended_purposes == {"call-1": ("documentation",)}
    assert second.deleted == ()
    assert second.delete_after["call-1"] == max(
        k.deadline for k in made.customer.purposes if k.purpose != "documentation"
    )
    with pytest.raises(AccessDenied, match="objected to 'documentation'"):
        rights.open("call-1", principal=QA_LEAD, purpose="documentation", now=AT + DAY)
    with pytest.raises(AccessDenied, match="objected to 'quality_assurance'"):
        rights.open("call-1", principal=QA_LEAD, purpose="quality_assurance", now=AT + DAY)
    removed = [
        entry
        for e in setup.audit.events()
        if e.type.value == "objection"
        for entry in e.data["removed"]
    ]
    assert [(r["tracks"], r["ended"]) for r in removed] == [
        (["customer"], []),
        (["agent"], ["documentation"]),
    ]
    assert setup.audit.verify().count == len(list(setup.audit.events()))
