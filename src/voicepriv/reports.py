"""Compliance reports: records of processing (Art. 30), retention, and a violations scan.

Each report is a typed value with one JSON form (:func:`report_json`) and one readable,
self-contained HTML page (:func:`render_html`: inline CSS and SVG, no external assets, no
network). The retention page draws a timeline of every recording's retention: a bar from when
it was stored to its deadline, coloured by status, with legal holds extending past it.

- :func:`ropa` builds the record of processing activities from an organisation's
  :class:`~voicepriv.policy.config.Policy`.
- :func:`retention_report` classifies catalogued recordings as overdue, due, held or kept.
- :func:`violations_scan` finds recordings kept without a valid basis, past their deadline,
  keeping a customer track that should have been destroyed, or opened for a purpose the policy
  does not allow (from the audit log).
"""

from __future__ import annotations

import enum
import html
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from voicepriv.errors import ConfigError
from voicepriv.model import LegalHold, Role, utc_now
from voicepriv.policy.retention import hold_covers
from voicepriv.vault.catalog import ArtifactKind, Catalog, RecordingState, ReplicaState

if TYPE_CHECKING:
    from voicepriv.audit import AuditEvent
    from voicepriv.policy.config import Policy
    from voicepriv.policy.decision import Decision

__all__ = [
    "TECHNICAL_MEASURES",
    "HoldNote",
    "RetentionEntry",
    "RetentionReport",
    "RetentionStatus",
    "Ropa",
    "RopaActivity",
    "StoredRecording",
    "Violation",
    "ViolationKind",
    "ViolationsReport",
    "classify_retention",
    "render_html",
    "report_json",
    "retention_report",
    "ropa",
    "stored_recordings",
    "violations_scan",
]

#: Art. 30(1)(g): the technical and organisational measures voicepriv itself applies.
TECHNICAL_MEASURES: Final = (
    "Each stored artifact is encrypted with its own AES-256-GCM data key, wrapped by a "
    "per-recording key held through the key provider.",
    "Erasure destroys the recording key (crypto-shredding), so every replica and backup "
    "becomes unreadable at once, then deletes every replica.",
    "Subject identifiers (phone numbers, customer ids, e-mail addresses) are stored only as "
    "keyed hashes.",
    "Opening a recording needs a principal, a purpose the policy allows for the principal's "
    "role, and a time-limited grant; every grant and denial is logged.",
    "An append-only, hash-chained, Ed25519-signed audit log records consent, decisions, "
    "storage, access, export, deletion, legal holds and key rotation.",
    "When only the agent's voice may be kept, the customer's voice is removed before storage "
    "and never written anywhere.",
)


# --------------------------------------------------------------------------- RoPA


@attrs.frozen(kw_only=True)
class RopaActivity:
    """One processing activity (one declared purpose) of the record of processing activities.

    :param basis: the Art. 6(1) citation, e.g. ``"GDPR Art. 6(1)(f)"``.
    :param basis_reference: the contract/statute reference or the balancing test's reference.
    :param retention_days: Art. 30(1)(f): when the data are erased, in days from the call.
    :param recipients: roles that may open recordings for this purpose.
    """

    purpose: str
    label: str
    basis: str
    basis_name: str
    basis_reference: str | None
    data_subjects: tuple[str, ...]
    data_categories: tuple[str, ...]
    recipients: tuple[str, ...]
    retention_days: int
    retention_action: str
    special_category_condition: str | None
    opt_out: bool


@attrs.frozen(kw_only=True)
class Ropa:
    """Records of processing activities (GDPR Art. 30(1)), generated from a policy."""

    generated_at: datetime
    policy_source: str
    controller: str
    establishment: str | None
    processors: str
    transfers: str
    activities: tuple[RopaActivity, ...]
    employee_basis: str
    employee_basis_reference: str | None
    works_council_agreement: str | None
    technical_measures: tuple[str, ...]
    warnings: tuple[str, ...]


_DATA_CATEGORIES: Final = (
    "voice recording of the call (agent side only where the policy or law requires it)",
    "call metadata: time, duration, direction, jurisdictions",
    "subject identifiers (phone number, customer id, e-mail) as keyed hashes",
    "consent events (what was consented to, when, how)",
)


def ropa(policy: Policy, *, at: datetime | None = None) -> Ropa:
    """The Art. 30 record of processing activities for *policy*, one activity per purpose."""
    activities = []
    for pid in sorted(policy.purposes):
        purpose = policy.purposes[pid]
        reference = purpose.reference or purpose.balancing_test
        categories = list(_DATA_CATEGORIES)
        if policy.organisation.redact_payment_data:
            categories.append("transcripts, with payment data redacted")
        activities.append(
            RopaActivity(
                purpose=pid,
                label=purpose.label or pid.replace("_", " ").capitalize(),
                basis=purpose.basis.article,
                basis_name=purpose.basis.name.lower(),
                basis_reference=reference,
                data_subjects=("customers (callers and called parties)", "contact-center agents"),
                data_categories=tuple(categories),
                recipients=tuple(
                    sorted(role for role, allowed in policy.roles.items() if pid in allowed)
                ),
                retention_days=purpose.retention.keep_for.days,
                retention_action=purpose.retention.action.value,
                special_category_condition=purpose.special_category_condition,
                opt_out=purpose.opt_out,
            )
        )
    org = policy.organisation
    return Ropa(
        generated_at=at or utc_now(),
        policy_source=policy.source,
        controller=org.name,
        establishment=org.establishment,
        processors=(
            "third-party processors are used (list them with their contracts, Art. 28)"
            if org.third_party_processors
            else "none declared in the policy"
        ),
        transfers="not declared in the policy: record any transfer outside the EEA (Art. 44-49)",
        activities=tuple(activities),
        employee_basis=org.employee_basis.article,
        employee_basis_reference=org.employee_basis_reference,
        works_council_agreement=org.works_council_agreement,
        technical_measures=TECHNICAL_MEASURES,
        warnings=policy.warnings,
    )


# --------------------------------------------------------------------------- retention


class RetentionStatus(enum.Enum):
    """Where a stored recording stands against its deadline."""

    OVERDUE = "overdue"
    HELD = "held"
    DUE = "due"
    KEPT = "kept"


@attrs.frozen(kw_only=True)
class HoldNote:
    """A legal hold or legal obligation keeping a recording, and until when (``None``: open)."""

    id: str
    reason: str
    until: datetime | None = None


@attrs.frozen(kw_only=True)
class RetentionEntry:
    """One stored recording in the retention report."""

    recording: str
    stored_at: datetime
    deadline: datetime | None
    purposes: tuple[str, ...]
    status: RetentionStatus
    holds: tuple[HoldNote, ...] = ()
    replicas: int = 0


@attrs.frozen(kw_only=True)
class RetentionReport:
    """What is overdue, due within *due_within*, held, or simply kept, as of *at*."""

    at: datetime
    due_within: timedelta
    entries: tuple[RetentionEntry, ...]

    def counts(self) -> dict[str, int]:
        """Number of entries per status."""
        totals = {status.value: 0 for status in RetentionStatus}
        for entry in self.entries:
            totals[entry.status.value] += 1
        return totals


def classify_retention(
    deadline: datetime | None, holds: Sequence[HoldNote], *, at: datetime, due_within: timedelta
) -> RetentionStatus:
    """The status of a recording with *deadline* and active *holds* at *at*.

    Held wins over overdue (a hold forbids deletion); a missing deadline is overdue (privacy by
    default: nothing may be kept without one).
    """
    if holds:
        return RetentionStatus.HELD
    if deadline is None or deadline <= at:
        return RetentionStatus.OVERDUE
    if deadline <= at + due_within:
        return RetentionStatus.DUE
    return RetentionStatus.KEPT


# --------------------------------------------------------------------------- violations


class ViolationKind(enum.Enum):
    """What a violations scan can find."""

    NO_VALID_BASIS = "no_valid_basis"
    PAST_DEADLINE = "past_deadline"
    CUSTOMER_TRACK_KEPT = "customer_track_kept"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"


@attrs.frozen(kw_only=True)
class Violation:
    """One finding: which recording, what is wrong, and the evidence in one sentence."""

    recording: str
    kind: ViolationKind
    detail: str
    audit_seq: int | None = None


@attrs.frozen(kw_only=True)
class ViolationsReport:
    """Every finding of a scan, as of *at*, over *scanned* recordings and *events* audit events."""

    at: datetime
    scanned: int
    events: int
    violations: tuple[Violation, ...]


# --------------------------------------------------------------------------- building reports


@attrs.frozen(kw_only=True)
class StoredRecording:
    """What the reports need to know about one stored (not deleted) recording.

    Built from the vault catalog by :func:`stored_recordings`.

    :param decision: the decision stored with it (``None``: none was stored).
    :param deadline: the governing retention deadline in the catalog.
    :param tracks: the tracks actually stored (an agent-only artifact has ``{AGENT}``).
    :param purposes: purposes with a catalogued deadline.
    :param artifact_kinds: the kinds of its live artifacts (an enrolled agent's voiceprint
        entry holds only ``voiceprint`` artifacts).
    """

    recording: str
    stored_at: datetime
    decision: Decision | None
    deadline: datetime | None
    purposes: tuple[str, ...] = ()
    tracks: frozenset[Role] = frozenset()
    replicas: int = 0
    tags: frozenset[str] = frozenset()
    subject_hashes: frozenset[str] = frozenset()
    artifact_kinds: frozenset[ArtifactKind] = frozenset()

    @property
    def is_voiceprint(self) -> bool:
        """Whether this is an enrolled agent's voiceprint entry (tag ``"voiceprint"``, no
        call decision, only voiceprint artifacts), kept under its own deadline rather than a
        call's decision."""
        return (
            _VOICEPRINT_TAG in self.tags
            and self.decision is None
            and self.artifact_kinds <= {ArtifactKind.VOICEPRINT}
        )


#: The tag :func:`voicepriv.enrollment.enroll` gives voiceprint entries (``VOICEPRINT_TAG``;
#: not imported, to keep this module free of the audio stack).
_VOICEPRINT_TAG: Final = "voiceprint"

_TRACKS: Final = {
    ArtifactKind.AGENT_AUDIO: frozenset({Role.AGENT}),
    ArtifactKind.FULL_AUDIO: frozenset({Role.AGENT, Role.CUSTOMER}),
}


def stored_recordings(
    catalog: Catalog, *, decisions: Callable[[str], Decision | None] | None = None
) -> Iterator[StoredRecording]:
    """Every live recording of *catalog* as a :class:`StoredRecording`.

    :param decisions: gives the stored decision of a recording id (the vault unseals it);
        without it, ``decision`` is ``None`` and only the catalogued deadlines are used.
    """
    # Subject-scoped holds: which recordings each named subject hash indexes.
    held_subjects: dict[str, set[str]] = {}
    for hold in catalog.holds():
        for subject in hold.scope.subjects:
            for recording in catalog.recordings_for_subject(subject):
                held_subjects.setdefault(recording, set()).add(subject)
    for recording_id in catalog.recording_ids(state=RecordingState.ACTIVE):
        entry = catalog.recording(recording_id)
        artifacts = [a for a in catalog.artifacts(recording_id) if a.deleted_at is None]
        tracks = frozenset(role for a in artifacts for role in _TRACKS.get(a.kind, ()))
        replicas = sum(
            1
            for a in artifacts
            for r in catalog.replicas(a.id)
            if r.state is not ReplicaState.DELETED
        )
        yield StoredRecording(
            recording=recording_id,
            stored_at=entry.created_at,
            decision=None if decisions is None else decisions(recording_id),
            deadline=entry.delete_after,
            purposes=tuple(sorted(catalog.deadlines(recording_id))),
            tracks=tracks,
            replicas=replicas,
            tags=entry.tags,
            subject_hashes=frozenset(held_subjects.get(recording_id, ())),
            artifact_kinds=frozenset(a.kind for a in artifacts),
        )


def _holds_for(row: StoredRecording, holds: Sequence[LegalHold], at: datetime) -> list[HoldNote]:
    return [
        HoldNote(id=hold.id, reason=hold.reason, until=hold.lifted_at)
        for hold in holds
        if hold_covers(hold, row.recording, tags=row.tags, subject_hashes=row.subject_hashes, at=at)
    ]


def retention_report(
    rows: Iterable[StoredRecording],
    holds: Sequence[LegalHold],
    *,
    at: datetime | None = None,
    due_within: timedelta = timedelta(days=30),
) -> RetentionReport:
    """Classify every stored recording: overdue, due within *due_within*, held, or kept."""
    when = at or utc_now()
    entries = []
    for row in rows:
        notes = _holds_for(row, holds, when)
        purposes = row.purposes
        if not purposes and row.decision is not None:
            purposes = tuple(sorted(row.decision.purposes()))
        entries.append(
            RetentionEntry(
                recording=row.recording,
                stored_at=row.stored_at,
                deadline=row.deadline,
                purposes=purposes,
                status=classify_retention(row.deadline, notes, at=when, due_within=due_within),
                holds=tuple(notes),
                replicas=row.replicas,
            )
        )
    return RetentionReport(at=when, due_within=due_within, entries=tuple(entries))


def violations_scan(
    rows: Iterable[StoredRecording],
    holds: Sequence[LegalHold],
    events: Iterable[AuditEvent],
    policy: Policy,
    *,
    at: datetime | None = None,
) -> ViolationsReport:
    """Find recordings kept without a valid basis, past their deadline, keeping a customer
    track that should have been destroyed, or opened for a purpose not allowed.

    An enrolled agent's voiceprint entry (:attr:`StoredRecording.is_voiceprint`) has no call
    decision; it is judged by its own retention deadline only (past it, or none, and no hold:
    ``past_deadline``).

    *events* are audit events; every ``access_granted`` is checked against the policy's role
    permissions (``role`` and ``purpose`` in its data) and the recording's decision.
    """
    when = at or utc_now()
    found: list[Violation] = []
    decisions: dict[str, Decision | None] = {}
    scanned = 0
    for row in rows:
        scanned += 1
        decision = row.decision
        decisions[row.recording] = decision
        # A voiceprint entry has no call decision: only its own deadline (below) counts.
        if not row.is_voiceprint and (decision is None or not decision.keep):
            found.append(
                Violation(
                    recording=row.recording,
                    kind=ViolationKind.NO_VALID_BASIS,
                    detail="stored, but its decision keeps nothing"
                    if decision is not None
                    else "stored without a recorded decision (no purpose, no legal basis)",
                )
            )
        elif decision is not None:
            unknown = sorted(p for p in decision.purposes() if p not in policy.purposes)
            if unknown and len(unknown) == len(decision.purposes()):
                found.append(
                    Violation(
                        recording=row.recording,
                        kind=ViolationKind.NO_VALID_BASIS,
                        detail=f"kept only for purposes the policy no longer declares: "
                        f"{', '.join(unknown)}",
                    )
                )
        if decision is not None and Role.CUSTOMER in row.tracks and not decision.customer.keep:
            found.append(
                Violation(
                    recording=row.recording,
                    kind=ViolationKind.CUSTOMER_TRACK_KEPT,
                    detail="the customer's voice is stored but the decision says to destroy it",
                )
            )
        if (row.deadline is None or row.deadline <= when) and not _holds_for(row, holds, when):
            detail = (
                "no retention deadline recorded"
                if row.deadline is None
                else f"deadline {row.deadline.isoformat()} passed "
                f"{(when - row.deadline).days} day(s) ago and no legal hold applies"
            )
            found.append(
                Violation(recording=row.recording, kind=ViolationKind.PAST_DEADLINE, detail=detail)
            )
    count = 0
    for event in events:
        count += 1
        if event.type.value != "access_granted":
            continue
        recording = str(event.data.get("recording", ""))
        purpose = str(event.data.get("purpose", ""))
        role = str(event.data.get("role", ""))
        problems = []
        if purpose not in policy.allowed(role):
            problems.append(f"role {role!r} may not use recordings for {purpose!r}")
        decision = decisions.get(recording)
        if decision is not None and not decision.covers(purpose):
            problems.append(f"the recording is not kept for {purpose!r}")
        if problems:
            found.append(
                Violation(
                    recording=recording,
                    kind=ViolationKind.PURPOSE_NOT_ALLOWED,
                    detail=f"opened by {event.data.get('principal', '?')} at {event.time}: "
                    + "; ".join(problems),
                    audit_seq=event.seq,
                )
            )
    return ViolationsReport(at=when, scanned=scanned, events=count, violations=tuple(found))


# --------------------------------------------------------------------------- JSON

_Report = Ropa | RetentionReport | ViolationsReport


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def report_json(report: _Report) -> str:
    """A report as JSON: ``{"report": "ropa"|"retention"|"violations", ...fields}``."""
    kind = {Ropa: "ropa", RetentionReport: "retention", ViolationsReport: "violations"}.get(
        type(report)
    )
    if kind is None:
        raise ConfigError(f"report_json: {type(report).__name__} is not a voicepriv report")
    body: dict[str, Any] = {"report": kind, **_plain(report)}
    if isinstance(report, RetentionReport):
        body["counts"] = report.counts()
    return json.dumps(body, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- HTML

_CSS: Final = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1b1b1b;
 padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}.muted{color:#666}.warn{color:#8a4b00}
.overdue{color:#b00020}.held{color:#5b2a86}.due{color:#8a6d00}.kept{color:#1e6b30}
.legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;vertical-align:middle;margin-right:.3rem}
"""

#: Bar colours of the retention timeline, per status.
_COLOURS: Final = {
    RetentionStatus.OVERDUE: "#d32f2f",
    RetentionStatus.HELD: "#7e57c2",
    RetentionStatus.DUE: "#f9a825",
    RetentionStatus.KEPT: "#43a047",
}

# A tiny inline check the page runs on itself: how many timeline bars were laid out with a
# positive width. A headless browser test reads the result from the DOM.
_SELF_CHECK: Final = """
<script>
document.addEventListener("DOMContentLoaded", function () {
  var bars = document.querySelectorAll("svg.timeline rect.bar");
  var laid = 0;
  bars.forEach(function (bar) { if (bar.getBBox().width > 0) { laid += 1; } });
  document.body.setAttribute("data-bars-laid-out", String(laid));
});
</script>
"""

_MAX_ROWS: Final = 400


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _page(title: str, sections: str, generated: datetime) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{_e(title)}</h1>"
        f'<p class="muted">Generated {_e(generated.isoformat())} by voicepriv.</p>'
        f"{sections}{_SELF_CHECK}</body></html>\n"
    )


def _ropa_html(report: Ropa) -> str:
    org = (
        f"<p><b>Controller:</b> {_e(report.controller)}"
        f" · <b>Establishment:</b> {_e(report.establishment or 'not declared')}"
        f" · <b>Policy:</b> {_e(report.policy_source)}</p>"
        f"<p><b>Agents' voices:</b> {_e(report.employee_basis)}"
        f" ({_e(report.employee_basis_reference or 'no documented reference')})"
        + (
            f" · works agreement {_e(report.works_council_agreement)}"
            if report.works_council_agreement
            else ""
        )
        + f"</p><p><b>Processors:</b> {_e(report.processors)} · <b>Transfers:</b> "
        f"{_e(report.transfers)}</p>"
    )
    rows = [
        (
            f"<b>{_e(a.label)}</b><br><code>{_e(a.purpose)}</code>",
            f"{_e(a.basis)} ({_e(a.basis_name.replace('_', ' '))})<br>"
            f'<span class="muted">{_e(a.basis_reference or "no reference")}</span>',
            "<br>".join(_e(s) for s in a.data_subjects),
            "<br>".join(_e(c) for c in a.data_categories),
            _e(", ".join(a.recipients) or "nobody may open them"),
            f"{a.retention_days} days, then {_e(a.retention_action)}",
        )
        for a in report.activities
    ]
    table = _table(
        (
            "Purpose",
            "Legal basis",
            "Data subjects",
            "Personal data",
            "Recipients (roles)",
            "Erasure",
        ),
        rows,
        "ropa",
    )
    measures = "<ul>" + "".join(f"<li>{_e(m)}</li>" for m in report.technical_measures) + "</ul>"
    warnings = (
        '<h2>Policy warnings</h2><ul class="warn">'
        + "".join(f"<li>{_e(w)}</li>" for w in report.warnings)
        + "</ul>"
        if report.warnings
        else ""
    )
    return (
        "<section id='ropa'><h2>Records of processing activities (GDPR Art. 30)</h2>"
        f"{org}{table}<h2>Technical and organisational measures (Art. 30(1)(g))</h2>"
        f"{measures}{warnings}</section>"
    )


def _timeline_svg(report: RetentionReport) -> str:
    """An inline SVG timeline: one bar per recording from storage to deadline (or hold end)."""
    entries = sorted(
        report.entries,
        key=lambda e: (e.deadline or e.stored_at, e.recording),
    )[:_MAX_ROWS]
    if not entries:
        return '<p class="muted">No stored recordings.</p>'
    ends = []
    for entry in entries:
        ends.append(entry.deadline or entry.stored_at)
        ends.extend(h.until for h in entry.holds if h.until is not None)
    start = min(min(e.stored_at for e in entries), report.at)
    end = max(*ends, report.at + report.due_within)
    span = max((end - start).total_seconds(), 1.0)
    label_w, chart_w, row_h, top = 170, 760, 18, 28
    height = top + row_h * len(entries) + 24

    def x(when: datetime) -> float:
        return label_w + chart_w * (when - start).total_seconds() / span

    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{label_w + chart_w + 20}" height="{height}" '
        f'viewBox="0 0 {label_w + chart_w + 20} {height}" '
        f'aria-label="Retention timeline of {len(entries)} recordings">'
    ]
    for tick in range(5):
        when = start + (end - start) * (tick / 4)
        tx = x(when)
        anchor = ("start", "middle", "middle", "middle", "end")[tick]
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{tx:.1f}" y="{top - 10}" font-size="11" text-anchor="{anchor}" '
            f'fill="#555">{_e(_day(when))}</text>'
        )
    for row, entry in enumerate(entries):
        y = top + row * row_h
        until = entry.deadline or report.at
        bar_start, bar_end = x(entry.stored_at), x(max(until, entry.stored_at))
        width = max(bar_end - bar_start, 2.0)
        colour = _COLOURS[entry.status]
        tip = (
            f"{entry.recording}: stored {_day(entry.stored_at)}, deadline "
            f"{_day(entry.deadline)}, {entry.status.value}"
        )
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
            f"{_e(entry.recording[:28])}</text>"
            f'<rect class="bar {entry.status.value}" data-recording="{_e(entry.recording)}" '
            f'x="{bar_start:.1f}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" '
            f'fill="{colour}"><title>{_e(tip)}</title></rect>'
        )
        for hold in entry.holds:
            hold_end = x(hold.until) if hold.until is not None else label_w + chart_w
            parts.append(
                f'<rect class="hold" x="{bar_end:.1f}" y="{y + 6}" '
                f'width="{max(hold_end - bar_end, 2.0):.1f}" height="{row_h - 12}" '
                f'fill="none" stroke="{_COLOURS[RetentionStatus.HELD]}" stroke-dasharray="3 2">'
                f"<title>{_e(f'hold {hold.id}: {hold.reason}')}</title></rect>"
            )
    now = x(report.at)
    parts.append(
        f'<line class="now" x1="{now:.1f}" y1="{top - 6}" x2="{now:.1f}" y2="{height - 20}" '
        f'stroke="#000" stroke-width="1.5"/>'
        f'<text x="{now:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">now</text>'
        "</svg>"
    )
    return "".join(parts)


def _retention_html(report: RetentionReport) -> str:
    counts = report.counts()
    legend = '<p class="legend">' + "".join(
        f'<span><i class="swatch" style="background:{_COLOURS[s]}"></i>'
        f"{_e(s.value)}: {counts[s.value]}</span>"
        for s in RetentionStatus
    )
    legend += (
        f'<span class="muted">"due" = deadline within {report.due_within.days} days; '
        "dashed = legal hold</span></p>"
    )
    truncated = (
        f'<p class="muted">The chart shows the first {_MAX_ROWS} of {len(report.entries)} '
        "recordings by deadline; the table lists all.</p>"
        if len(report.entries) > _MAX_ROWS
        else ""
    )
    rows = [
        (
            f"<code>{_e(e.recording)}</code>",
            _e(_day(e.stored_at)),
            _e(_day(e.deadline)),
            f'<span class="{e.status.value}">{_e(e.status.value)}</span>',
            _e(", ".join(e.purposes)),
            "<br>".join(
                f"{_e(h.id)}: {_e(h.reason)} (until {_e(_day(h.until) if h.until else 'lifted')})"
                for h in e.holds
            ),
        )
        for e in sorted(report.entries, key=lambda e: (e.status.value, e.recording))
    ]
    table = _table(
        ("Recording", "Stored", "Deadline", "Status", "Purposes", "Holds"), rows, "retention"
    )
    return (
        "<section id='retention'><h2>Retention</h2>"
        f"<p>As of {_e(report.at.isoformat())}.</p>{legend}{truncated}"
        f"{_timeline_svg(report)}{table}</section>"
    )


def _violations_html(report: ViolationsReport) -> str:
    if not report.violations:
        found = '<p class="kept">No violations found.</p>'
    else:
        found = _table(
            ("Recording", "Finding", "Evidence", "Audit event"),
            (
                (
                    f"<code>{_e(v.recording)}</code>",
                    f'<span class="overdue">{_e(v.kind.value.replace("_", " "))}</span>',
                    _e(v.detail),
                    _e("" if v.audit_seq is None else v.audit_seq),
                )
                for v in report.violations
            ),
            "violations",
        )
    return (
        "<section id='violations'><h2>Violations</h2>"
        f"<p>Scanned {report.scanned} recordings and {report.events} audit events as of "
        f"{_e(report.at.isoformat())}: {len(report.violations)} finding(s).</p>{found}</section>"
    )


def render_html(*reports: _Report, title: str = "voicepriv compliance report") -> str:
    """One self-contained HTML page (inline CSS + SVG, no external assets) for *reports*."""
    if not reports:
        raise ConfigError("render_html: expected at least one report")
    sections = []
    generated = utc_now()
    for report in reports:
        if isinstance(report, Ropa):
            sections.append(_ropa_html(report))
            generated = report.generated_at
        elif isinstance(report, RetentionReport):
            sections.append(_retention_html(report))
            generated = report.at
        elif isinstance(report, ViolationsReport):
            sections.append(_violations_html(report))
            generated = report.at
        else:
            raise ConfigError(f"render_html: {type(report).__name__} is not a voicepriv report")
    return _page(title, "".join(sections), generated)
