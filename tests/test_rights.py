"""Data-subject rights: erasure planning, objection, certificates, encrypted exports."""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepriv.audit import AuditLog
from voicepriv.cli import main
from voicepriv.errors import (
    AccessDenied,
    AuditError,
    ConfigError,
    IntegrityError,
    KeyDestroyedError,
)
from voicepriv.model import (
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Direction,
    HoldScope,
    LegalBasis,
    LegalHold,
    Party,
    Recording,
    RetentionRule,
    Role,
    Segment,
    SubjectKind,
    SubjectRef,
)
from voicepriv.policy.access import Principal
from voicepriv.policy.config import parse_policy
from voicepriv.policy.decision import Decision, KeptPurpose, TrackDecision, decision_to_dict
from voicepriv.policy.jurisdictions import DataProtection, Interception
from voicepriv.rights import (
    ErasureCandidate,
    ErasureCertificate,
    MandatoryPurpose,
    PasswordRecipient,
    PublicKeyRecipient,
    RetainedBy,
    Rights,
    erasure_candidates,
    object_to_processing,
    open_archive,
    plan_erasure,
    seal_archive,
)
from voicepriv.vault.catalog import (
    ArtifactKind,
    Catalog,
    NewRecording,
    RecordingState,
    RestrictionGround,
)
from voicepriv.vault.vault import ReplicaConfig, Vault

POLICY_TOML = """
[organisation]
name = "Acme Contact GmbH"
establishment = "DE"
employees_informed = true
employee_basis_reference = "LIA-agents-2024"

[purposes.quality_assurance]
basis = "consent"
retention = "30 days"

[purposes.training]
basis = "legitimate_interests"
balancing_test = "LIA-2024-03"
retention = "90 days"

[purposes.legal_compliance]
basis = "legal_obligation"
reference = "MiFID II Art. 16(7)"
retention = "5 years"

[notices.main]
version = "v3"
text = "This call may be recorded for quality assurance."
purposes = ["quality_assurance"]

[roles.qa_lead]
purposes = ["quality_assurance", "training"]

[roles.compliance]
purposes = ["legal_compliance", "quality_assurance"]
"""

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SUBJECT = "ab" * 16
OTHER = "cd" * 16


class Signer:
    """An Ed25519 signer standing in for a key provider."""

    def __init__(self, seed: bytes = b"\x05" * 32) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify_key(self) -> bytes:
        return self._key.public_key().public_bytes_raw()


def kept(
    purpose: str,
    basis: LegalBasis,
    deadline: datetime,
    *,
    mandatory: bool = False,
    segments: tuple[Segment, ...] = (Segment(start=0, end=10),),
    reference: str | None = None,
) -> KeptPurpose:
    return KeptPurpose(
        purpose=purpose,
        basis=basis,
        segments=segments,
        retention=RetentionRule(purpose=purpose, keep_for=30 * DAY),
        deadline=deadline,
        reference=reference,
        mandatory=mandatory,
    )


def decision(
    recording: str, *purposes: KeptPurpose, customer: bool = False, agent: bool = True
) -> Decision:
    """A decision keeping *purposes* on the agent's track and, with *customer*, the customer's."""

    def track(role: Role, keep: bool) -> TrackDecision:
        if not keep or not purposes:
            return TrackDecision(role=role, keep=False)
        governing = max(purposes, key=lambda k: k.deadline)
        return TrackDecision(
            role=role,
            keep=True,
            purposes=purposes,
            segments=tuple(s for k in purposes for s in k.segments),
            deadline=governing.deadline,
            governing_purpose=governing.purpose,
        )

    return Decision(
        recording_id=recording,
        agent=track(Role.AGENT, agent),
        customer=track(Role.CUSTOMER, customer),
        obligations=(),
        reasons=(),
        interception=Interception.ALL_PARTY,
        data_protection=(DataProtection.GDPR,),
        jurisdictions=("DK",),
    )


def hold(
    hold_id: str,
    *,
    recordings: frozenset[str] = frozenset(),
    tags: frozenset[str] = frozenset(),
    subjects: frozenset[str] = frozenset(),
    lifted: datetime | None = None,
) -> LegalHold:
    return LegalHold(
        id=hold_id,
        scope=HoldScope(recordings=recordings, tags=tags, subjects=subjects),
        reason=f"litigation {hold_id}",
        placed_at=AT - 30 * DAY,
        lifted_at=lifted,
    )


# --------------------------------------------------------------------------- erasure plan


def test_plan_deletes_free_recordings_and_keeps_held_and_mandatory_ones() -> None:
    qa = kept("quality_assurance", LegalBasis.CONSENT, AT + 10 * DAY)
    mifid = kept(
        "legal_compliance",
        LegalBasis.LEGAL_OBLIGATION,
        AT + 900 * DAY,
        mandatory=True,
        reference="MiFID II Art. 16(7)",
    )
    expired = kept("legal_compliance", LegalBasis.LEGAL_OBLIGATION, AT - DAY, mandatory=True)
    candidates = [
        ErasureCandidate(recording="free", decision=decision("free", qa)),
        ErasureCandidate(recording="by-id", decision=decision("by-id", qa)),
        ErasureCandidate(recording="by-tag", tags=frozenset({"case-9"})),
        ErasureCandidate(recording="by-subject", subject_hashes=frozenset({SUBJECT})),
        ErasureCandidate(recording="mifid", decision=decision("mifid", qa, mifid)),
        ErasureCandidate(recording="expired", decision=decision("expired", expired)),
        ErasureCandidate(recording="lifted", decision=None),
        ErasureCandidate(recording="free", decision=None),  # duplicates count once
    ]
    holds = [
        hold("H-1", recordings=frozenset({"by-id"})),
        hold("H-2", tags=frozenset({"case-9"})),
        hold("H-3", subjects=frozenset({SUBJECT})),
        hold("H-4", recordings=frozenset({"lifted"}), lifted=AT - DAY),
    ]
    plan = plan_erasure(candidates, holds, subject_hashes=[SUBJECT], at=AT)
    assert plan.delete == ("expired", "free", "lifted")
    assert plan.retained_recordings == ("by-id", "by-subject", "by-tag", "mifid")
    why = {r.recording: r for r in plan.retain}
    assert (why["by-id"].by, why["by-id"].ref, why["by-id"].until) == (
        RetainedBy.LEGAL_HOLD,
        "H-1",
        None,
    )
    assert why["mifid"].by is RetainedBy.LEGAL_OBLIGATION
    assert (why["mifid"].ref, why["mifid"].reason) == ("legal_compliance", "MiFID II Art. 16(7)")
    assert why["mifid"].until == AT + 900 * DAY


@st.composite
def _catalogs(draw: st.DrawFn) -> tuple[list[ErasureCandidate], list[LegalHold]]:
    count = draw(st.integers(0, 12))
    candidates = []
    for i in range(count):
        purposes = []
        if draw(st.booleans()):
            days = draw(st.integers(-5, 5))
            purposes.append(
                kept(
                    "legal_compliance",
                    LegalBasis.LEGAL_OBLIGATION,
                    AT + days * DAY,
                    mandatory=draw(st.booleans()),
                )
            )
        candidates.append(
            ErasureCandidate(
                recording=f"r{i}",
                decision=decision(f"r{i}", *purposes) if purposes else None,
                tags=frozenset(draw(st.sets(st.sampled_from(["a", "b"]), max_size=1))),
            )
        )
    holds = [
        hold(
            f"H{j}",
            recordings=frozenset(
                draw(st.sets(st.sampled_from([f"r{i}" for i in range(12)]), max_size=3))
            ),
            tags=frozenset(draw(st.sets(st.sampled_from(["a", "b"]), max_size=1))),
            lifted=draw(st.sampled_from([None, AT - DAY, AT + DAY])),
        )
        for j in range(draw(st.integers(0, 3)))
    ]
    return candidates, holds


@given(_catalogs())
def test_plan_partitions_candidates_by_hold_and_obligation(
    catalog: tuple[list[ErasureCandidate], list[LegalHold]],
) -> None:
    candidates, holds = catalog
    plan = plan_erasure(candidates, holds, subject_hashes=[SUBJECT], at=AT)
    assert set(plan.delete) | set(plan.retained_recordings) == {c.recording for c in candidates}
    assert not set(plan.delete) & set(plan.retained_recordings)
    for candidate in candidates:
        held = any(
            h.active(AT)
            and (candidate.recording in h.scope.recordings or h.scope.tags & candidate.tags)
            for h in holds
        )
        obliged = candidate.decision is not None and any(
            k.mandatory and k.deadline > AT for t in candidate.decision.tracks for k in t.purposes
        )
        assert (candidate.recording in plan.retained_recordings) == (held or obliged)


# --------------------------------------------------------------------------- objection


def test_objection_removes_only_legitimate_interest_purposes() -> None:
    li = kept(
        "training",
        LegalBasis.LEGITIMATE_INTERESTS,
        AT + 90 * DAY,
        segments=(Segment(start=0, end=5),),
    )
    consent = kept(
        "quality_assurance",
        LegalBasis.CONSENT,
        AT + 30 * DAY,
        segments=(Segment(start=3, end=8),),
    )
    before = decision("r1", li, consent, customer=True)
    after, removed = object_to_processing(before, roles=[Role.CUSTOMER])
    assert removed == frozenset({"training"})
    assert [k.purpose for k in after.customer.purposes] == ["quality_assurance"]
    assert after.customer.deadline == AT + 30 * DAY
    assert after.customer.governing_purpose == "quality_assurance"
    assert after.customer.segments == (Segment(start=3, end=8),)
    assert after.agent == before.agent  # the customer's objection leaves the agent's track
    assert after.reasons[-1].rule == "GDPR Art. 21(1)"
    assert "customer's track" in after.reasons[-1].text
    only_li = decision("r2", li, customer=True, agent=False)
    emptied, _ = object_to_processing(only_li, roles=[Role.CUSTOMER])
    assert not emptied.keep and emptied.deadline is None
    unchanged, none = object_to_processing(decision("r3", consent), roles=[Role.CUSTOMER])
    assert none == frozenset() and unchanged == decision("r3", consent)


def _employee_mirror(customer: Sequence[KeptPurpose]) -> tuple[KeptPurpose, ...]:
    """What decide() keeps on the agent's track under GDPR: every purpose of the customer's, on
    the employment basis (legitimate interests by default), mandatory ones staying mandatory."""
    return tuple(
        attrs.evolve(k, basis=LegalBasis.LEGITIMATE_INTERESTS, reference="LIA-agents-2024")
        for k in customer
    )


def _two_tracks(
    recording: str, customer: Sequence[KeptPurpose], agent: Sequence[KeptPurpose]
) -> Decision:
    def track(role: Role, purposes: Sequence[KeptPurpose]) -> TrackDecision:
        if not purposes:
            return TrackDecision(role=role, keep=False)
        governing = max(purposes, key=lambda k: (k.deadline, k.purpose))
        return TrackDecision(
            role=role,
            keep=True,
            purposes=tuple(purposes),
            segments=tuple(sorted({s for k in purposes for s in k.segments})),
            deadline=governing.deadline,
            governing_purpose=governing.purpose,
        )

    return attrs.evolve(
        decision(recording),
        agent=track(Role.AGENT, agent),
        customer=track(Role.CUSTOMER, customer),
    )


DOCUMENTATION = kept(
    "documentation", LegalBasis.LEGITIMATE_INTERESTS, AT + 700 * DAY, reference="BT-1"
)
CONTRACT = kept("contract_record", LegalBasis.CONTRACT, AT + 365 * DAY, reference="terms s.3")
CONSENTED = kept("quality_assurance", LegalBasis.CONSENT, AT + 180 * DAY)
PUBLIC = kept("emergency_line", LegalBasis.PUBLIC_TASK, AT + 90 * DAY)
STATUTORY = kept("legal_compliance", LegalBasis.LEGAL_OBLIGATION, AT + 1800 * DAY, mandatory=True)


def test_customer_objection_leaves_other_bases_and_the_agents_track() -> None:
    # The reviewer's case: the customer's track holds LI, contract and consent purposes; the
    # agent's mirrors them on the employment basis (LI). Only the customer's LI one goes.
    customer = (DOCUMENTATION, CONTRACT, CONSENTED)
    before = _two_tracks("r1", customer, _employee_mirror(customer))
    after, removed = object_to_processing(before, roles=[Role.CUSTOMER])
    assert removed == frozenset({"documentation"})
    assert [k.purpose for k in after.customer.purposes] == ["contract_record", "quality_assurance"]
    assert after.agent == before.agent
    assert after.keep and after.purposes() == before.purposes()
    # Without the LI purpose the customer's objection removes nothing at all.
    plain = _two_tracks("r2", customer[1:], _employee_mirror(customer[1:]))
    assert object_to_processing(plain, roles=[Role.CUSTOMER]) == (plain, frozenset())


def test_agent_objection_leaves_the_customers_track() -> None:
    customer = (DOCUMENTATION, CONTRACT, CONSENTED, STATUTORY)
    before = _two_tracks("r1", customer, _employee_mirror(customer))
    after, removed = object_to_processing(before, roles=[Role.AGENT])
    assert removed == frozenset({"documentation", "contract_record", "quality_assurance"})
    assert [k.purpose for k in after.agent.purposes] == ["legal_compliance"]  # mandatory stays
    assert after.customer == before.customer
    assert "agent's track" in after.reasons[-1].text
    # A supervisor's voice is on the employees' (agent's) track; an IVR has none.
    assert object_to_processing(before, roles=[Role.SUPERVISOR]) == (after, removed)
    assert object_to_processing(before, roles=[Role.IVR]) == (before, frozenset())
    assert object_to_processing(before, roles=[]) == (before, frozenset())


def test_public_task_is_objectable_too() -> None:
    before = _two_tracks("r1", (PUBLIC, CONSENTED), ())
    after, removed = object_to_processing(before, roles=[Role.CUSTOMER])
    assert removed == frozenset({"emergency_line"})
    assert "public task" in after.reasons[-1].text


def test_objection_roles_must_be_roles() -> None:
    with pytest.raises(ConfigError, match="object_to_processing roles: expected Role values"):
        object_to_processing(decision("r1", DOCUMENTATION), roles=["customer"])  # type: ignore[list-item]


_BASES = list(LegalBasis)


@st.composite
def _kept_purposes(draw: st.DrawFn) -> tuple[KeptPurpose, ...]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True, max_size=5))
    return tuple(
        kept(
            name,
            draw(st.sampled_from(_BASES)),
            AT + draw(st.integers(1, 900)) * DAY,
            mandatory=draw(st.booleans()),
            segments=(Segment(start=0, end=draw(st.integers(1, 60))),),
        )
        for name in names
    )


@given(
    customer=_kept_purposes(),
    agent=_kept_purposes(),
    roles=st.sets(st.sampled_from(list(Role))),
)
def test_objection_touches_only_the_objectors_track(
    customer: tuple[KeptPurpose, ...], agent: tuple[KeptPurpose, ...], roles: set[Role]
) -> None:
    before = _two_tracks("r", customer, agent)
    after, removed = object_to_processing(before, roles=roles)
    objecting = {Role.AGENT if r is Role.SUPERVISOR else r for r in roles} - {Role.IVR}
    expected_removed: set[str] = set()
    for old, new in zip(before.tracks, after.tracks, strict=True):
        if old.role not in objecting:
            assert new == old
            continue
        stays = [
            k
            for k in old.purposes
            if k.mandatory
            or k.basis not in {LegalBasis.LEGITIMATE_INTERESTS, LegalBasis.PUBLIC_TASK}
        ]
        expected_removed |= {k.purpose for k in old.purposes} - {k.purpose for k in stays}
        assert new.purposes == tuple(stays)
        assert new.keep == (bool(stays) and old.keep)
        if stays:
            assert new.deadline == max(k.deadline for k in stays)
    assert removed == expected_removed
    assert (after == before) == (not removed)
    assert object_to_processing(after, roles=roles) == (after, frozenset())


# --------------------------------------------------------------------------- certificate


def test_certificate_signature_covers_every_field() -> None:
    signer = Signer()
    plan = plan_erasure(
        [ErasureCandidate(recording="a"), ErasureCandidate(recording="b")],
        [hold("H-1", recordings=frozenset({"b"}))],
        subject_hashes=[SUBJECT],
        at=AT,
    )
    certificate = ErasureCertificate.issue(
        signer=signer,
        request="req-1",
        issued_at=AT,
        subjects=plan.subjects,
        erased=plan.delete,
        replicas_deleted=2,
        retained=plan.retain,
        audit_seq=7,
    )
    assert certificate.verify(signer.verify_key())
    assert not certificate.verify(Signer(b"\x06" * 32).verify_key())
    assert not attrs.evolve(certificate, erased=("a", "b")).verify(signer.verify_key())
    assert not attrs.evolve(certificate, retained=()).verify(signer.verify_key())
    assert '"by": "legal_hold"' in certificate.as_json()


# --------------------------------------------------------------------------- export archive


def test_password_archive_round_trip_and_wrong_password() -> None:
    recipient = PasswordRecipient(password="correct horse battery", cost=14)
    blob = seal_archive(b"zip bytes", recipient)
    assert b"zip bytes" not in blob
    assert open_archive(blob, password="correct horse battery") == b"zip bytes"
    with pytest.raises(IntegrityError, match="wrong password"):
        open_archive(blob, password="incorrect horse battery")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IntegrityError):
        open_archive(tampered, password="correct horse battery")
    with pytest.raises(ConfigError, match="password="):
        open_archive(blob, private_key=b"\x01" * 32)


def test_public_key_archive_round_trip() -> None:
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    blob = seal_archive(b"x" * 1000, PublicKeyRecipient(public_key=public))
    raw_private = private.private_bytes_raw()
    assert open_archive(blob, private_key=raw_private) == b"x" * 1000
    with pytest.raises(IntegrityError):
        open_archive(blob, private_key=X25519PrivateKey.generate().private_bytes_raw())
    with pytest.raises(IntegrityError, match="not a voicepriv export"):
        open_archive(b"PK\x03\x04 a plain zip", private_key=raw_private)


def test_recipients_validate() -> None:
    with pytest.raises(ConfigError, match="at least 12"):
        PasswordRecipient(password="short")
    with pytest.raises(ConfigError, match="32 raw"):
        PublicKeyRecipient(public_key=b"\x00" * 31)
    assert "horse" not in repr(PasswordRecipient(password="correct horse battery"))


# --------------------------------------------------------------------------- catalog look-up


def test_erasure_candidates_from_the_catalog(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "catalog.db"))
    policy = parse_policy(POLICY_TOML, "policy.toml")

    def add(recording: str, subjects: set[str], *, tags: frozenset[str] = frozenset(), **due: int):
        catalog.add_recording(
            NewRecording(
                id=recording,
                key_id=f"k-{recording}",
                started_at=AT - 10 * DAY,
                duration_s=60.0,
                direction="inbound",
                tags=tags,
                deadlines={p: AT + d * DAY for p, d in due.items()},
                subject_hashes=frozenset(subjects),
            )
        )

    add("free", {SUBJECT}, quality_assurance=20)
    add("mifid", {SUBJECT}, quality_assurance=20, legal_compliance=1800)
    add("mifid-over", {SUBJECT}, legal_compliance=-1)
    add("tagged", {SUBJECT}, tags=frozenset({"case-9"}), quality_assurance=20)
    add("shared", {SUBJECT, OTHER}, quality_assurance=20)
    add("someone-else", {OTHER}, quality_assurance=20)
    catalog.place_hold(hold("H-tag", tags=frozenset({"case-9"})))
    catalog.place_hold(hold("H-other", subjects=frozenset({OTHER})))
    candidates, holds = erasure_candidates(catalog, [SUBJECT], at=AT, policy=policy)
    assert [c.recording for c in candidates] == ["free", "mifid", "mifid-over", "shared", "tagged"]
    plan = plan_erasure(candidates, holds, subject_hashes=[SUBJECT], at=AT)
    assert plan.delete == ("free", "mifid-over")
    why = {(r.recording, r.ref): r for r in plan.retain}
    assert set(why) == {("mifid", "legal_compliance"), ("shared", "H-other"), ("tagged", "H-tag")}
    assert why["mifid", "legal_compliance"].reason == "MiFID II Art. 16(7)"
    assert why["mifid", "legal_compliance"].until == AT + 1800 * DAY
    catalog.close()


# --------------------------------------------------------------------------- with a real vault

PHONE = SubjectRef(kind=SubjectKind.PHONE, value="+45 12 34 56 78")
EMAIL = SubjectRef(kind=SubjectKind.EMAIL, value="Jane.Doe@example.com")
STRANGER = SubjectRef(kind=SubjectKind.CUSTOMER_ID, value="cust-999")


class Setup:
    """A vault with two replicas, a policy, an audit log and the rights service."""

    def __init__(self, folder: Path) -> None:
        self.vault = Vault.create(
            folder / "vault",
            replicas=[
                ReplicaConfig(name="a", url="objects-a"),
                ReplicaConfig(name="b", url="objects-b"),
            ],
        )
        self.policy = parse_policy(POLICY_TOML, "policy.toml")
        self.audit = AuditLog(folder / "audit.jsonl", signer=self.vault.provider, sinks=[])
        self.rights = Rights(self.vault, self.policy, self.audit)

    def close(self) -> None:
        self.rights.close()
        self.vault.close()

    def add(
        self,
        recording_id: str,
        subjects: tuple[SubjectRef, ...],
        *purposes: KeptPurpose,
        tags: frozenset[str] = frozenset(),
        customer: bool = False,
        agent: bool = True,
        made: Decision | None = None,
        kinds: tuple[ArtifactKind, ...] = (ArtifactKind.AGENT_AUDIO,),
        agent_subjects: tuple[SubjectRef, ...] = (),
        more_parties: tuple[Party, ...] = (),
    ) -> str:
        """Store a recording of *subjects* (the customer) with *purposes*, on the agent's track
        and, with *customer*, the customer's (or the decision *made*)."""
        recording = Recording(
            id=recording_id,
            started_at=AT - 5 * DAY,
            duration=120,
            direction=Direction.INBOUND,
            parties=(
                Party(role=Role.AGENT, id="agent-7", subjects=agent_subjects),
                Party(role=Role.CUSTOMER, jurisdiction="DK", subjects=subjects),
                *more_parties,
            ),
            consents=(
                ConsentEvent(
                    role=Role.CUSTOMER,
                    purpose="quality_assurance",
                    state=ConsentState.GRANTED,
                    method=ConsentMethod.DTMF,
                    offset=3,
                    notice_version="v3",
                ),
            ),
            tags=tags,
        )
        deadlines = {k.purpose: k.deadline for k in purposes}
        if made is None:
            made = decision(recording_id, *purposes, customer=customer, agent=agent)
        else:
            for kept in (k for t in made.tracks for k in t.purposes):
                deadlines[kept.purpose] = max(kept.deadline, deadlines.get(kept.purpose, AT))
        self.vault.put(
            recording,
            {
                kind: f"{'audio' if kind is ArtifactKind.AGENT_AUDIO else kind.value} of "
                f"{recording_id}".encode()
                * 100
                for kind in kinds
            },
            delete_after=made.deadline,
            deadlines=deadlines,
            decision=json.dumps(decision_to_dict(made)),
        )
        return recording_id

    def objects(self) -> dict[str, set[str]]:
        return {name: set(storage.keys("objects")) for name, storage in self.vault.storages.items()}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path)
    yield built
    built.close()


QA = kept("quality_assurance", LegalBasis.CONSENT, AT + 30 * DAY)
TRAINING = kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY)
MIFID = kept(
    "legal_compliance",
    LegalBasis.LEGAL_OBLIGATION,
    AT + 1800 * DAY,
    mandatory=True,
    reference="MiFID II Art. 16(7)",
)


def test_access_is_purpose_bound_time_limited_and_audited(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA)
    qa = Principal(id="qa-3", role="qa_lead")
    grant = setup.rights.open("call-1", principal=qa, purpose="quality_assurance", now=AT)
    assert grant.expires_at == AT + setup.policy.organisation.access_grant
    assert setup.rights.read(grant, grant.artifacts[0], now=AT + timedelta(hours=1)).startswith(
        b"audio of call-1"
    )
    with pytest.raises(AccessDenied, match="grant expired"):
        setup.rights.read(grant, grant.artifacts[0], now=grant.expires_at)
    with pytest.raises(AccessDenied, match="may not use recordings for 'legal_compliance'"):
        setup.rights.open("call-1", principal=qa, purpose="legal_compliance", now=AT)
    with pytest.raises(AccessDenied, match="not kept for 'legal_compliance'"):
        setup.rights.open(
            "call-1",
            principal=Principal(id="lawyer-1", role="compliance"),
            purpose="legal_compliance",
            now=AT,
        )
    events = [(e.type.value, e.data.get("reason")) for e in setup.audit.events()]
    assert events == [
        ("access_granted", None),
        ("access_denied", "grant_expired"),
        ("access_denied", "purpose_not_allowed_for_role"),
        ("access_denied", "not_kept_for_purpose"),
    ]
    assert setup.audit.verify().count == 4


def test_restriction_allows_only_legal_claims(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA, MIFID)
    setup.add("call-2", (STRANGER,), QA)
    result = setup.rights.restrict([PHONE], now=AT)
    assert result.recordings == ("call-1",)
    qa = Principal(id="qa-3", role="qa_lead")
    with pytest.raises(AccessDenied, match=r"Art\. 18"):
        setup.rights.open("call-1", principal=qa, purpose="quality_assurance", now=AT)
    lawyer = Principal(id="lawyer-1", role="compliance")
    setup.rights.open("call-1", principal=lawyer, purpose="legal_compliance", now=AT)
    setup.rights.open("call-2", principal=qa, purpose="quality_assurance", now=AT)
    setup.rights.restrict([PHONE], now=AT, lift=True)
    setup.rights.open("call-1", principal=qa, purpose="quality_assurance", now=AT)
    kinds = [e.data.get("reason") for e in setup.audit.events() if e.type.value == "access_denied"]
    assert kinds == ["restricted"]


def test_objection_removes_legitimate_interest_purposes(setup: Setup) -> None:
    # Decisions keeping the customer's voice only (the agent's track keeps nothing).
    setup.add("mixed", (PHONE,), QA, TRAINING, customer=True, agent=False)
    setup.add("li-only", (PHONE,), TRAINING, customer=True, agent=False)
    result = setup.rights.object([PHONE], now=AT)
    assert result.removed_purposes == {"li-only": ("training",), "mixed": ("training",)}
    assert result.ended_purposes == result.removed_purposes
    assert result.removed_from == {"li-only": (Role.CUSTOMER,), "mixed": (Role.CUSTOMER,)}
    assert result.deleted == ("li-only",)
    trainer = Principal(id="qa-3", role="qa_lead")
    with pytest.raises(AccessDenied, match="objected"):
        setup.rights.open("mixed", principal=trainer, purpose="training", now=AT)
    setup.rights.open("mixed", principal=trainer, purpose="quality_assurance", now=AT)
    assert setup.vault.catalog.recordings_for_subject(setup.vault.subject_hash(PHONE)) == ["mixed"]


AGENT = SubjectRef(kind=SubjectKind.OTHER, value="agent-7")


def _mirrored(recording: str, *customer: KeptPurpose) -> Decision:
    return _two_tracks(recording, customer, _employee_mirror(customer))


def _objection_event(setup: Setup) -> dict[str, Any]:
    return dict(next(e for e in setup.audit.events() if e.type.value == "objection").data)


def test_customer_objection_keeps_recordings_kept_on_other_bases(setup: Setup) -> None:
    # The reviewer's end-to-end case: kept on contract and consent for the customer, on the
    # employment basis for the agent. The customer's objection removes and deletes nothing.
    made = _mirrored("call-1", CONTRACT, CONSENTED)
    setup.add("call-1", (PHONE,), made=made, kinds=(ArtifactKind.FULL_AUDIO,))
    before = setup.vault.catalog.recording("call-1")
    result = setup.rights.object([PHONE], now=AT)
    assert (result.removed_purposes, result.deleted) == ({}, ())
    after = setup.vault.catalog.recording("call-1")
    assert after.state is RecordingState.ACTIVE and after.delete_after == before.delete_after
    assert not setup.vault.keys.is_destroyed(after.key_id)
    assert _objection_event(setup)["removed"] == []
    assert "deletion" not in [e.type.value for e in setup.audit.events()]
    lawyer = Principal(id="lawyer-1", role="compliance")
    setup.rights.open("call-1", principal=lawyer, purpose="quality_assurance", now=AT)


def test_customer_objection_spares_the_agents_voice(setup: Setup) -> None:
    made = _mirrored(
        "both", CONSENTED, kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY)
    )
    setup.add(
        "both", (PHONE,), made=made, kinds=(ArtifactKind.AGENT_AUDIO, ArtifactKind.FULL_AUDIO)
    )
    setup.add(
        "full-only",
        (PHONE,),
        made=attrs.evolve(made, recording_id="full-only"),
        kinds=(ArtifactKind.FULL_AUDIO,),
    )
    deadline = setup.vault.catalog.recording("both").delete_after
    result = setup.rights.object([PHONE], now=AT)
    assert result.removed_purposes == {"both": ("training",), "full-only": ("training",)}
    # The agent's track still keeps "training": the catalog keeps retaining the recording.
    assert result.ended_purposes == {"both": (), "full-only": ()}
    assert result.removed_from["both"] == (Role.CUSTOMER,)
    assert result.deleted == () and dict(result.delete_after) == {
        "both": deadline,
        "full-only": deadline,
    }
    assert setup.vault.catalog.purpose_deadlines("both")["training"].end_reason is None
    assert _objection_event(setup)["removed"][0] == {
        "recording": "both",
        "tracks": ["customer"],
        "purposes": ["training"],
        "bases": ["legitimate_interests"],
        "ended": [],
    }
    # Opened for the objected purpose, only the agent's voice is handed out.
    trainer = Principal(id="qa-3", role="qa_lead")
    grant = setup.rights.open("both", principal=trainer, purpose="training", now=AT)
    kinds = {setup.vault.catalog.artifact(a).kind for a in grant.artifacts}
    assert kinds == {ArtifactKind.AGENT_AUDIO}
    assert list(setup.audit.events())[-1].data["scope"] == "agent_voice_only"
    full = setup.rights.open("both", principal=trainer, purpose="quality_assurance", now=AT)
    assert len(full.artifacts) == 2
    assert "scope" not in list(setup.audit.events())[-1].data
    with pytest.raises(AccessDenied, match="no stored artifact holds the agent's voice alone"):
        setup.rights.open("full-only", principal=trainer, purpose="training", now=AT)


def test_a_customer_objection_leaving_their_track_empty_deletes_their_stored_voice(
    setup: Setup,
) -> None:
    # The customer's track kept only a legitimate-interest purpose, which the agent's track
    # keeps on the employment basis too. After the objection the customer's voice may no
    # longer be processed: a full mix is deleted; agent-only audio is not their voice.
    made = _mirrored("mix", kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY))
    setup.add("mix", (PHONE,), made=made, kinds=(ArtifactKind.FULL_AUDIO,))
    setup.add(
        "agent-side",
        (PHONE,),
        made=attrs.evolve(made, recording_id="agent-side"),
        kinds=(ArtifactKind.AGENT_AUDIO,),
    )
    result = setup.rights.object([PHONE], now=AT)
    assert result.removed_from == {"agent-side": (Role.CUSTOMER,), "mix": (Role.CUSTOMER,)}
    assert result.deleted == ("mix",)
    assert setup.vault.catalog.recording("mix").state is RecordingState.DELETED
    assert setup.vault.catalog.recording("agent-side").state is RecordingState.ACTIVE


def test_agent_objection_leaves_the_customers_purposes(setup: Setup) -> None:
    training = kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY)
    made = _mirrored("call-1", CONSENTED, training, STATUTORY)
    setup.add(
        "call-1",
        (PHONE,),
        made=made,
        kinds=(ArtifactKind.AGENT_AUDIO, ArtifactKind.FULL_AUDIO),
        agent_subjects=(AGENT,),
    )
    result = setup.rights.object([AGENT], now=AT)
    # The agent's employment basis (LI) goes for every non-mandatory purpose; the customer's
    # track keeps them, so the catalog still retains the recording and nothing is deleted.
    assert result.removed_purposes == {"call-1": ("quality_assurance", "training")}
    assert result.removed_from == {"call-1": (Role.AGENT,)}
    assert result.ended_purposes == {"call-1": ()} and result.deleted == ()
    # Every artifact carries the agent's voice: refused for the objected purposes.
    qa = Principal(id="qa-3", role="qa_lead")
    with pytest.raises(AccessDenied, match="objected to 'quality_assurance'"):
        setup.rights.open("call-1", principal=qa, purpose="quality_assurance", now=AT)
    lawyer = Principal(id="lawyer-1", role="compliance")
    setup.rights.open("call-1", principal=lawyer, purpose="legal_compliance", now=AT)
    # The customer then objects too: "training" has no track left, so the catalog drops it.
    again = setup.rights.object([PHONE], now=AT + DAY)
    assert again.removed_purposes == {"call-1": ("training",)}
    assert again.ended_purposes == {"call-1": ("training",)}
    assert setup.vault.catalog.purpose_deadlines("call-1")["training"].end_reason is not None


def test_naive_times_are_refused_naming_the_parameter(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA)
    naive = datetime(2026, 1, 1)
    qa = Principal(id="qa-3", role="qa_lead")
    calls = {
        "Rights.object now": lambda: setup.rights.object([PHONE], now=naive),
        "Rights.erase now": lambda: setup.rights.erase([PHONE], now=naive),
        "Rights.plan_erasure now": lambda: setup.rights.plan_erasure([PHONE], now=naive),
        "Rights.restrict now": lambda: setup.rights.restrict([PHONE], now=naive),
        "Rights.open now": lambda: setup.rights.open(
            "call-1", principal=qa, purpose="quality_assurance", now=naive
        ),
        "Rights.lift_hold now": lambda: setup.rights.lift_hold("H-1", now=naive),
        "Rights.rotate_key now": lambda: setup.rights.rotate_key(now=naive),
        "plan_erasure at": lambda: plan_erasure([], [], subject_hashes=[SUBJECT], at=naive),
        "erasure_candidates at": lambda: erasure_candidates(
            setup.vault.catalog, [SUBJECT], at=naive
        ),
        "MandatoryPurpose.until": lambda: MandatoryPurpose(
            purpose="legal_compliance", reference="MiFID", until=naive
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ConfigError, match=rf"^{name}: expected a datetime with a time zone"):
            call()
    with pytest.raises(ValueError, match="time zone"):  # also the builtin
        setup.rights.object([PHONE], now=naive)
    assert list(setup.audit.events()) == []
    assert setup.vault.catalog.recording("call-1").state is RecordingState.ACTIVE


def test_erasure_deletes_every_replica_keeps_held_and_certifies(setup: Setup) -> None:
    setup.add("free", (PHONE,), QA)
    setup.add("also-free", (EMAIL,), QA)
    setup.add("held", (PHONE,), QA)
    setup.add("mifid", (PHONE, EMAIL), QA, MIFID)
    setup.add("stranger", (STRANGER,), QA)
    setup.vault.place_hold(hold("H-1", recordings=frozenset({"held"})))
    before = setup.objects()
    certificate = setup.rights.erase([PHONE, EMAIL], now=AT)
    assert certificate.verify(setup.vault.provider.verify_key())
    assert certificate.erased == ("also-free", "free")
    assert [(r.recording, r.by, r.ref) for r in certificate.retained] == [
        ("held", RetainedBy.LEGAL_HOLD, "H-1"),
        ("mifid", RetainedBy.LEGAL_OBLIGATION, "legal_compliance"),
    ]
    assert certificate.retained[1].until == AT + 1800 * DAY
    assert certificate.replicas_deleted == 4  # two recordings x two replicas
    after = setup.objects()
    for name in ("a", "b"):
        assert len(before[name] - after[name]) == 2
    for recording in ("free", "also-free"):
        with pytest.raises(KeyDestroyedError):
            setup.vault.metadata(recording)
    for recording in ("held", "mifid", "stranger"):
        assert setup.vault.metadata(recording).recording.id == recording
    qa = Principal(id="qa-3", role="qa_lead")
    with pytest.raises(AccessDenied, match="it was erased"):
        setup.rights.open("free", principal=qa, purpose="quality_assurance", now=AT)
    with pytest.raises(AccessDenied, match="no such recording"):
        setup.rights.open("never-was", principal=qa, purpose="quality_assurance", now=AT)
    # Retained recordings are restricted to the reason that keeps them.
    with pytest.raises(AccessDenied, match="restricted"):
        setup.rights.open(
            "mifid",
            principal=Principal(id="qa-3", role="qa_lead"),
            purpose="quality_assurance",
            now=AT,
        )
    report = setup.audit.verify()
    types = [e.type.value for e in setup.audit.events()]
    assert types.count("deletion") == 2
    assert types[-4:] == ["erasure", "access_denied", "access_denied", "access_denied"]
    reasons = [e.data.get("reason") for e in setup.audit.events()][-3:]
    assert reasons == ["erased", "not_found", "restricted"]
    erasure = next(e for e in setup.audit.events() if e.type.value == "erasure")
    assert certificate.audit_seq == erasure.seq < report.count
    log = setup.audit.path.read_text()
    assert "+4512345678" not in log and "jane.doe@example.com" not in log


@given(
    layout=st.lists(
        st.tuples(st.sets(st.sampled_from([0, 1, 2]), min_size=1), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=12, deadline=None)
def test_erasure_removes_exactly_the_subjects_unheld_recordings(
    layout: list[tuple[set[int], bool]],
) -> None:
    people = [PHONE, EMAIL, STRANGER]
    with tempfile.TemporaryDirectory() as folder:
        built = Setup(Path(folder))
        try:
            for index, (who, held) in enumerate(layout):
                built.add(f"r{index}", tuple(people[i] for i in sorted(who)), QA)
                if held:
                    built.vault.place_hold(hold(f"H{index}", recordings=frozenset({f"r{index}"})))
            objects = built.objects()
            by_recording = {
                f"r{i}": {
                    r.object_key
                    for a in built.vault.catalog.artifacts(f"r{i}")
                    for r in built.vault.catalog.replicas(a.id)
                }
                for i in range(len(layout))
            }
            certificate = built.rights.erase([PHONE], now=AT)
            expected = {f"r{i}" for i, (who, held) in enumerate(layout) if 0 in who and not held}
            assert set(certificate.erased) == expected
            assert {r.recording for r in certificate.retained} == {
                f"r{i}" for i, (who, held) in enumerate(layout) if 0 in who and held
            }
            gone = {key for keys in (by_recording[r] for r in expected) for key in keys}
            for name, keys in built.objects().items():
                assert keys == objects[name] - gone
            for recording in by_recording:
                state = built.vault.catalog.recording(recording).state.value
                assert (state == "deleted") == (recording in expected)
        finally:
            built.close()


def test_export_holds_exactly_the_subjects_data(setup: Setup, tmp_path: Path) -> None:
    setup.add("mine-1", (PHONE,), QA)
    setup.add("mine-2", (EMAIL, PHONE), QA, MIFID)
    setup.add("not-mine", (STRANGER,), QA)
    target = tmp_path / "export.vpx"
    result = setup.rights.export(
        [PHONE], target, PasswordRecipient(password="correct horse battery", cost=14), now=AT
    )
    assert result.recordings == ("mine-1", "mine-2")
    plain = open_archive(target.read_bytes(), password="correct horse battery")
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        names = set(archive.namelist())
        assert names == {
            "summary.txt",
            "manifest.json",
            "recordings/mine-1/agent_audio.bin",
            "recordings/mine-2/agent_audio.bin",
        }
        assert archive.read("recordings/mine-1/agent_audio.bin").startswith(b"audio of mine-1")
        manifest = json.loads(archive.read("manifest.json"))
        summary = archive.read("summary.txt").decode()
    assert [m["recording"] for m in manifest] == ["mine-1", "mine-2"]
    assert manifest[1]["purposes"][1]["legal_basis"] == "GDPR Art. 6(1)(c)"
    assert manifest[0]["consents"][0]["state"] == "granted"
    assert "agent-7" not in json.dumps(manifest)
    assert "We keep 2 recording(s)" in summary and "Acme Contact GmbH" in summary
    event = list(setup.audit.events())[-1]
    assert event.type.value == "export" and event.data["archive_sha256"] == result.sha256


def _exported_manifest(setup: Setup, tmp_path: Path) -> list[dict[str, Any]]:
    """The manifest of an Art. 15 export for PHONE, decrypted."""
    target = tmp_path / "export.vpx"
    setup.rights.export(
        [PHONE], target, PasswordRecipient(password="correct horse battery", cost=14), now=AT
    )
    plain = open_archive(target.read_bytes(), password="correct horse battery")
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        manifest: list[dict[str, Any]] = json.loads(archive.read("manifest.json"))
    return manifest


def test_export_withholds_consents_another_customer_may_have_given(
    setup: Setup, tmp_path: Path
) -> None:
    other = Party(role=Role.CUSTOMER, jurisdiction="DK", subjects=(STRANGER,))
    setup.add("conference", (PHONE,), QA, more_parties=(other,))
    (entry,) = _exported_manifest(setup, tmp_path)
    assert entry["consents"] == []
    assert "several parties share the role(s) customer" in entry["consents_withheld"]


def test_export_lists_purposes_as_objections_left_them(setup: Setup, tmp_path: Path) -> None:
    training = kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY)
    setup.add("call-1", (PHONE,), made=_mirrored("call-1", CONSENTED, training))
    setup.rights.object([PHONE], now=AT)
    (entry,) = _exported_manifest(setup, tmp_path)
    tracks = {p["purpose"]: p["tracks"] for p in entry["purposes"]}
    # the customer's voice is no longer kept for training; the agent's still is
    assert tracks["training"] == ["agent"]
    assert tracks[CONSENTED.purpose] == ["agent", "customer"]


def test_rights_cli(
    setup: Setup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup.add("free", (PHONE,), QA)
    setup.add("mifid", (PHONE,), QA, MIFID)
    setup.add("other", (STRANGER,), QA)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML, encoding="utf-8")
    common = [
        "--vault",
        str(setup.vault.config.root),
        "--policy",
        str(policy),
        "--audit",
        str(setup.audit.path),
        "--phone",
        "+4512345678",
    ]
    assert main(["rights", "restrict", *common, "--ground", "legal_claims"]) == 0
    assert "restricted 2 recording(s): free, mifid" in capsys.readouterr().out
    grounds = {r.ground for r in setup.vault.catalog.restrictions("free")}
    assert grounds == {RestrictionGround.LEGAL_CLAIMS}
    assert main(["rights", "restrict", *common, "--lift"]) == 0
    capsys.readouterr()
    assert setup.vault.catalog.restrictions("free") == []
    assert main(["rights", "restrict", *common]) == 0
    capsys.readouterr()
    monkeypatch.setenv("EXPORT_PW", "correct horse battery")
    archive = tmp_path / "out.vpx"
    assert (
        main(["rights", "export", *common, "-o", str(archive), "--password-env", "EXPORT_PW"]) == 0
    )
    assert "2 recording(s)" in capsys.readouterr().out
    assert main(["rights", "erase", *common, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would erase 1 recording(s): free" in out and "would keep mifid" in out
    certificate = tmp_path / "certificate.json"
    assert main(["rights", "erase", *common, "--certificate", str(certificate)]) == 0
    written = json.loads(certificate.read_text())
    assert written["erased"] == ["free"] and written["retained"][0]["recording"] == "mifid"
    assert (
        main(["rights", "erase", "--vault", str(setup.vault.config.root), "--policy", str(policy)])
        == 2
    )
    assert "--phone, --email, --customer-id or --agent" in capsys.readouterr().err
    types = [e.type.value for e in setup.audit.events()]
    assert types == ["restriction"] * 3 + ["export", "deletion", "erasure"]
    assert setup.audit.verify().count == 6


def test_rights_cli_object_says_whose_voice_stops(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    training = kept("training", LegalBasis.LEGITIMATE_INTERESTS, AT + 60 * DAY)
    setup.add("call-1", (PHONE,), made=_mirrored("call-1", CONSENTED, training))
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML, encoding="utf-8")
    root, log = str(setup.vault.config.root), str(setup.audit.path)
    args = ["--vault", root, "--policy", str(policy), "--audit", log, "--phone", "+4512345678"]
    assert main(["rights", "object", *args]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "call-1: the customer's voice no longer used for training "
        "(the other party's voice is still kept for training)"
    )


def test_holds_and_key_rotation_are_audited(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA)
    subject = setup.vault.subject_hash(PHONE)
    placed = setup.rights.place_hold(hold("H-9", subjects=frozenset({subject})))
    assert setup.vault.catalog.holds_covering("call-1", AT)[0].hold_id == "H-9"
    lifted = setup.rights.lift_hold("H-9", now=AT)
    assert not setup.vault.catalog.holds_covering("call-1", AT + DAY)
    key = setup.rights.rotate_key(now=AT)
    events = list(setup.audit.events())
    assert [e.type.value for e in events] == ["hold_placed", "hold_lifted", "key_rotated"]
    assert (placed, lifted) == (0, 1)
    assert events[0].data["subjects"] == [subject]
    assert "litigation" not in setup.audit.path.read_text()
    assert events[2].data["key"] == key == setup.vault.provider.current_key_id()


def test_a_hold_the_log_would_refuse_is_not_placed(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA)
    with pytest.raises(ConfigError, match="phone number"):
        # an id that is a phone number
        setup.rights.place_hold(hold("00447700900123", recordings=frozenset({"call-1"})))
    assert setup.vault.catalog.holds() == []
    assert list(setup.audit.events()) == []


def test_erasure_resumes_an_interrupted_deletion(setup: Setup) -> None:
    setup.add("call-1", (PHONE,), QA)
    setup.add("call-2", (PHONE,), QA)

    def crash(step: str) -> None:
        if step == "key_destroyed":
            raise RuntimeError("power cut")

    setup.vault._after_step = crash
    with pytest.raises(RuntimeError, match="power cut"):
        setup.rights.erase([PHONE], now=AT)
    setup.vault._after_step = None
    # Requests skip the half-deleted recording; a second erasure finishes both.
    assert setup.rights.restrict([PHONE], now=AT).recordings == ("call-2",)
    certificate = setup.rights.erase([PHONE], now=AT)
    assert certificate.erased == ("call-1", "call-2")
    assert all(setup.objects()[name] == set() for name in ("a", "b"))
    assert setup.audit.verify().count == 4  # restriction, 2 deletions, erasure


# --------------------------------------------------------------------------- nothing unlogged


def test_requests_change_nothing_when_the_audit_log_cannot_be_written(
    setup: Setup, tmp_path: Path
) -> None:
    setup.add("free", (PHONE,), QA, TRAINING)
    setup.add("mifid", (PHONE,), QA, MIFID)
    bad = tmp_path / "auditdir"
    bad.mkdir()
    rights = Rights(setup.vault, setup.policy, AuditLog(bad, signer=setup.vault.provider, sinks=[]))
    objects = setup.objects()
    keys = setup.vault.provider.current_key_id()
    archive = tmp_path / "out.vpx"
    calls = {
        "erase": lambda: rights.erase([PHONE], now=AT),
        "export": lambda: rights.export(
            [PHONE], archive, PasswordRecipient(password="correct horse battery"), now=AT
        ),
        "restrict": lambda: rights.restrict([PHONE], now=AT),
        "object": lambda: rights.object([PHONE], now=AT),
        "place_hold": lambda: rights.place_hold(hold("H-1", recordings=frozenset({"free"}))),
        "rotate_key": lambda: rights.rotate_key(now=AT),
    }
    for name, call in calls.items():
        with pytest.raises(AuditError, match=re.escape(f"{bad}: cannot open the audit log")):
            call()
        assert setup.objects() == objects, name
    assert not archive.exists() and list(tmp_path.glob("*.tmp")) == []
    assert setup.vault.catalog.restrictions("free") == []
    assert setup.vault.catalog.restrictions("mifid") == []
    assert setup.vault.catalog.holds() == []
    assert setup.vault.provider.current_key_id() == keys
    assert set(setup.vault.catalog.purpose_deadlines("free")) == {"quality_assurance", "training"}
    assert setup.rights.plan_erasure([PHONE], now=AT).delete == ("free",)


def test_erasure_checks_its_events_before_shredding(setup: Setup) -> None:
    setup.add("00447700900123", (PHONE,), QA)  # an id the log refuses (a phone number)
    objects = setup.objects()
    with pytest.raises(ConfigError, match=r"audit data recording: looks like a phone number"):
        setup.rights.erase([PHONE], now=AT)
    assert setup.objects() == objects
    assert list(setup.audit.events()) == []


def test_export_checks_its_destination_first_and_leaves_no_temporary_file(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.add("free", (PHONE,), QA)
    recipient = PasswordRecipient(password="correct horse battery")
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(ConfigError, match=re.escape(f"destination {folder}: is a folder")):
        setup.rights.export([PHONE], folder, recipient, now=AT)
    with pytest.raises(ConfigError, match=r"the folder .*missing does not exist"):
        setup.rights.export([PHONE], tmp_path / "missing" / "x.vpx", recipient, now=AT)

    def refuse(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(ConfigError, match="cannot write \\(No space left on device\\)"):
        setup.rights.export([PHONE], tmp_path / "x.vpx", recipient, now=AT)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("x.vpx")) == []
    assert list(folder.iterdir()) == []
    assert list(setup.audit.events()) == []


def _cli_args(setup: Setup, tmp_path: Path, audit: Path) -> list[str]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML, encoding="utf-8")
    return [
        "--vault",
        str(setup.vault.config.root),
        "--policy",
        str(policy),
        "--audit",
        str(audit),
        "--phone",
        "+4512345678",
    ]


def test_rights_cli_acts_only_with_a_writable_log_and_output_paths(
    setup: Setup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup.add("free", (PHONE,), QA)
    objects = setup.objects()
    bad = tmp_path / "auditdir"
    bad.mkdir()
    monkeypatch.setenv("EXPORT_PW", "correct horse battery")
    archive = tmp_path / "out.vpx"
    common = _cli_args(setup, tmp_path, bad)
    assert (
        main(["rights", "export", *common, "-o", str(archive), "--password-env", "EXPORT_PW"]) == 2
    )
    assert f"{bad}: cannot open the audit log" in capsys.readouterr().err
    assert main(["rights", "erase", *common]) == 2
    assert f"{bad}: cannot open the audit log" in capsys.readouterr().err
    assert not archive.exists() and setup.objects() == objects
    common = _cli_args(setup, tmp_path, setup.audit.path)
    missing = tmp_path / "missing" / "cert.json"
    assert main(["rights", "erase", *common, "--certificate", str(missing)]) == 2
    assert f"--certificate {missing}: the folder" in capsys.readouterr().err
    export_to = tmp_path / "missing" / "x.vpx"
    args = ["-o", str(export_to), "--password-env", "EXPORT_PW"]
    assert main(["rights", "export", *common, *args]) == 2
    assert f"--output {export_to}: the folder" in capsys.readouterr().err
    assert setup.objects() == objects and list(setup.audit.events()) == []


def test_rights_cli_prints_the_certificate_when_writing_it_fails(
    setup: Setup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup.add("free", (PHONE,), QA)
    certificate = tmp_path / "cert.json"
    real = Path.write_text

    def full_disk(self: Path, *args: Any, **kwargs: Any) -> int:
        if self == certificate:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    common = _cli_args(setup, tmp_path, setup.audit.path)
    assert main(["rights", "erase", *common, "--certificate", str(certificate)]) == 2
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["erased"] == ["free"]
    assert printed["verify_key"] == setup.vault.provider.verify_key().hex()
    assert len(printed["signature"]) == 128
    assert f"--certificate {certificate}: cannot write" in captured.err
