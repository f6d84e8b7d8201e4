"""Data-subject rights and audit: erasure planning in a large catalog, audit-log verification.

``erasure_plan_ms``: one erasure request in a catalog of 1,000,000 recordings (100,000 with
``--quick``): keyed hash of the subject's customer id, look-up of every live recording indexed
under it, legal holds (by recording, tag and subject) and legal-obligation deadlines from the
policy, then :func:`voicepriv.rights.plan_erasure`. Median and 95th percentile over 50
subjects, each holding about four recordings. Target: under 50 ms. Baseline in the same run:
the same look-up with the subject index disabled (a full scan of the subject table).

``audit_verify_events_per_s``: :func:`voicepriv.audit.verify_log` over a signed log of
20,000 events (3,000 with ``--quick``): canonical-form check, chain, SHA-256, Ed25519
signature per event and the signed head. Baseline: a bare SHA-256 chain over the same lines
(no parsing, no signatures), i.e. the cost floor of any hash-chained log.

    python benchmarks/rights.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from voicepriv.audit import AuditLog, EventType, verify_log
from voicepriv.backends.keys import LocalKeyProvider
from voicepriv.model import HoldScope, LegalHold, SubjectKind, SubjectRef
from voicepriv.policy.config import parse_policy
from voicepriv.rights import erasure_candidates, plan_erasure
from voicepriv.vault.catalog import Catalog, NewRecording
from voicepriv.vault.keys import KeyHierarchy, KeyStore

POLICY = """
[organisation]
name = "Bench Contact Ltd"
establishment = "DK"
employees_informed = true
employee_basis_reference = "LIA-1"

[purposes.quality_assurance]
basis = "legitimate_interests"
balancing_test = "LIA-2"
retention = "90 days"

[purposes.legal_compliance]
basis = "legal_obligation"
reference = "MiFID II Art. 16(7)"
retention = "5 years"

[roles.qa]
purposes = ["quality_assurance"]
"""

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PER_SUBJECT = 4


def _build_catalog(
    folder: Path, recordings: int, hierarchy: KeyHierarchy
) -> tuple[Catalog, list[str]]:
    catalog = Catalog(str(folder / "catalog.db"))
    subjects = recordings // PER_SUBJECT
    rng = random.Random(7)
    hashes = [
        hierarchy.subject_hash(SubjectRef(kind=SubjectKind.CUSTOMER_ID, value=f"cust-{i:07d}"))
        for i in range(subjects)
    ]
    batch: list[NewRecording] = []
    for i in range(recordings):
        started = AT - timedelta(days=rng.uniform(1, 700))
        deadlines = {"quality_assurance": started + timedelta(days=90)}
        if rng.random() < 0.2:
            deadlines["legal_compliance"] = started + timedelta(days=1827)
        batch.append(
            NewRecording(
                id=f"rec-{i:07d}",
                key_id=f"k{i:07d}",
                started_at=started,
                duration_s=rng.uniform(30, 900),
                direction="inbound",
                tags=frozenset({f"team-{i % 50}"}),
                delete_after=max(deadlines.values()),
                deadlines=deadlines,
                subject_hashes=frozenset({hashes[i % subjects]}),
            )
        )
        if len(batch) == 50_000:
            catalog.add_recordings(batch)
            batch.clear()
    if batch:
        catalog.add_recordings(batch)
    holds = [
        LegalHold(
            id=f"H-{j}",
            scope=HoldScope(
                recordings=frozenset({f"rec-{rng.randrange(recordings):07d}" for _ in range(20)}),
                tags=frozenset({"team-7"}) if j == 0 else frozenset(),
                subjects=frozenset({hashes[rng.randrange(subjects)]}) if j == 1 else frozenset(),
            ),
            reason=f"litigation {j}",
            placed_at=AT - timedelta(days=30),
        )
        for j in range(10)
    ]
    for hold in holds:
        catalog.place_hold(hold)
    return catalog, hashes


def _bench_erasure(recordings: int, folder: Path) -> tuple[list[dict[str, Any]], int]:
    provider = LocalKeyProvider(folder / "keys.json", create=True)
    hierarchy = KeyHierarchy(provider, KeyStore(str(folder / "keys.db")))
    policy = parse_policy(POLICY, "bench-policy.toml")
    started = time.perf_counter()
    catalog, hashes = _build_catalog(folder, recordings, hierarchy)
    build_s = time.perf_counter() - started
    print(f"catalog of {recordings:,} recordings built in {build_s:.1f} s")
    rng = random.Random(11)
    targets = [rng.randrange(len(hashes)) for _ in range(50)]
    holds = catalog.holds()

    def plan(index: int) -> tuple[float, int]:
        begin = time.perf_counter()
        subject = hierarchy.subject_hash(
            SubjectRef(kind=SubjectKind.CUSTOMER_ID, value=f"cust-{index:07d}")
        )
        candidates, _ = erasure_candidates(catalog, [subject], at=AT, policy=policy, holds=holds)
        result = plan_erasure(candidates, holds, subject_hashes=[subject], at=AT)
        return (time.perf_counter() - begin) * 1000, len(result.delete) + len(result.retain)

    def scan(index: int) -> tuple[float, int]:
        begin = time.perf_counter()
        subject = hashes[index]
        rows = catalog.db.execute(
            "SELECT recording_id FROM subjects WHERE +subject_hash = ?", (subject,)
        )
        return (time.perf_counter() - begin) * 1000, len(rows)

    plan(targets[0])  # warm the page cache and imports
    rows = []
    for system, run in (
        ("voicepriv erasure plan (indexed look-up + holds + obligations)", plan),
        ("baseline: subject look-up by full scan, no planning", scan),
    ):
        timings, found = zip(*(run(t) for t in targets), strict=True)
        rows.append(
            {
                "system": system,
                "recordings": recordings,
                "erasure_plan_ms": round(statistics.median(timings), 3),
                "erasure_plan_p95_ms": round(sorted(timings)[int(0.95 * len(timings)) - 1], 3),
                "recordings_per_subject": round(statistics.mean(found), 2),
            }
        )
        if "baseline" in system:
            break
    catalog.close()
    return rows, int(build_s)


def _bench_audit(events: int, folder: Path) -> list[dict[str, Any]]:
    provider = LocalKeyProvider(folder / "audit-keys.json", create=True)
    log = AuditLog(folder / "audit.jsonl", signer=provider, sinks=[])
    started = time.perf_counter()
    for i in range(events):
        log.append(
            EventType.ACCESS_GRANTED,
            {"recording": f"rec-{i:07d}", "principal": "qa-lead-3", "purpose": "quality_assurance"},
        )
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_log(log.path, provider.verify_key())
    verify_s = time.perf_counter() - started
    assert report.count == events
    started = time.perf_counter()
    digest = b"\0" * 32
    with log.path.open("rb") as handle:
        for line in handle:
            digest = hashlib.sha256(digest + line).digest()
    baseline_s = time.perf_counter() - started
    return [
        {
            "system": "voicepriv audit verify (canonical form, chain, SHA-256, Ed25519, head)",
            "events": events,
            "audit_verify_events_per_s": round(events / verify_s, 1),
            "audit_append_events_per_s": round(events / append_s, 1),
        },
        {
            "system": "baseline: bare SHA-256 line chain",
            "events": events,
            "audit_verify_events_per_s": round(events / baseline_s, 1),
        },
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON when asked."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 recordings, 3,000 events")
    parser.add_argument("--json", type=Path, help="write results as JSON here")
    args = parser.parse_args(argv)
    recordings = 100_000 if args.quick else 1_000_000
    events = 3_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory(prefix="voicepriv-bench-rights-") as tmp:
        folder = Path(tmp)
        erasure, build_s = _bench_erasure(recordings, folder)
        audit = _bench_audit(events, folder)
    print()
    print(f"{'system':<66} {'plan ms (median)':>16} {'p95 ms':>8}")
    for row in erasure:
        median, p95 = row["erasure_plan_ms"], row["erasure_plan_p95_ms"]
        print(f"{row['system']:<66} {median:>16.3f} {p95:>8.3f}")
    print(f"target: erasure_plan_ms < 50 in a {recordings:,}-recording catalog")
    print()
    print(f"{'system':<72} {'events/s':>12}")
    for row in audit:
        print(f"{row['system']:<72} {row['audit_verify_events_per_s']:>12,.0f}")
    print(f"(appends: {audit[0]['audit_append_events_per_s']:,.0f} events/s, fsync per event)")
    if args.json:
        payload = {
            "benchmark": "rights",
            "params": {
                "recordings": recordings,
                "audit_events": events,
                "recordings_per_subject": PER_SUBJECT,
                "subjects_timed": 50,
                "catalog_build_s": build_s,
                "quick": args.quick,
            },
            "results": erasure + audit,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
