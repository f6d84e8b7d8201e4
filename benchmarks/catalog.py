"""Catalog at scale: subject look-up, due-for-deletion query and insert rate (SQLite, WAL).

Fills a fresh catalog with N recordings (1,000,000; ``--quick``: 100,000), each with one
subject hash (a tenth are repeat callers), one tag, one consent and one deadline spread over
1,000 days, then measures:

* ``subject_lookup_p99_ms``: p99 of :meth:`Catalog.recordings_for_subject` (target < 5 ms);
* ``due_query_s``: :meth:`Catalog.due_for_deletion` at a time when ~1 % is due (target < 1 s);
* ``inserts_per_s``: recordings per second in batches of 1,000 (one transaction each), and
  ``single_inserts_per_s`` with one transaction per recording.

The baseline, measured in the same run on the same database, is the same queries with the
indexes switched off (``NOT INDEXED``): what the schema's indexes buy.

    python benchmarks/catalog.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from voicepriv.model import ConsentEvent
from voicepriv.vault.catalog import Catalog, NewRecording, RecordingState, format_time

NAME = "catalog"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 1000


def _entries(count: int, seed: int, prefix: str = "r") -> Iterator[NewRecording]:
    rng = random.Random(seed)
    repeat = [os.urandom(32).hex() for _ in range(max(1, count // 100))]
    consent = ConsentEvent(
        role="customer", purpose="quality_assurance", state="granted", method="dtmf", offset=2
    )
    for index in range(count):
        subject = rng.choice(repeat) if rng.random() < 0.1 else os.urandom(32).hex()
        due = T0 + timedelta(days=rng.uniform(0, 1000))
        yield NewRecording(
            id=f"{prefix}{index:08d}",
            key_id=f"rk-{index:032x}",
            started_at=T0,
            duration_s=rng.uniform(30, 900),
            direction="inbound",
            tags=frozenset({f"team-{index % 50}"}),
            delete_after=due,
            deadlines={"quality_assurance": due},
            subject_hashes=frozenset({subject}),
            consents=(consent,),
        )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(count: int, folder: Path) -> list[dict[str, float | str]]:
    """Fill a catalog of *count* recordings and time the queries; one row per system."""
    catalog = Catalog(str(folder / "catalog.db"))
    start = time.perf_counter()
    batch: list[NewRecording] = []
    subjects: list[str] = []
    for entry in _entries(count, seed=1):
        batch.append(entry)
        if len(subjects) < 5000 and len(batch) % 97 == 0:
            subjects.extend(entry.subject_hashes)
        if len(batch) == BATCH:
            catalog.add_recordings(batch)
            batch = []
    if batch:
        catalog.add_recordings(batch)
    inserts_per_s = count / (time.perf_counter() - start)

    singles = 2000
    start = time.perf_counter()
    for entry in _entries(singles, seed=2, prefix="s"):
        catalog.add_recording(entry)
    single_inserts_per_s = singles / (time.perf_counter() - start)

    lookups = []
    for subject in subjects[:2000]:
        start = time.perf_counter()
        found = catalog.recordings_for_subject(subject)
        lookups.append((time.perf_counter() - start) * 1000)
        assert found
    now = T0 + timedelta(days=10)
    start = time.perf_counter()
    due = catalog.due_for_deletion(now)
    due_query_s = time.perf_counter() - start

    scans = []
    for subject in subjects[:5]:
        start = time.perf_counter()
        catalog.db.execute(
            "SELECT s.recording_id FROM subjects s NOT INDEXED JOIN recordings r"
            " ON r.id = s.recording_id WHERE s.subject_hash = ? AND r.state <> ?",
            (subject, RecordingState.DELETED.value),
        )
        scans.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    catalog.db.execute(
        "SELECT id FROM recordings NOT INDEXED WHERE state = ? AND delete_after IS NOT NULL"
        " AND delete_after <= ? ORDER BY delete_after, id",
        (RecordingState.ACTIVE.value, format_time(now)),
    )
    scan_due_s = time.perf_counter() - start
    size_mib = (folder / "catalog.db").stat().st_size / (1 << 20)
    catalog.close()
    return [
        {
            "system": "sqlite_catalog_indexed",
            "recordings": count,
            "subject_lookup_p50_ms": _percentile(lookups, 50),
            "subject_lookup_p99_ms": _percentile(lookups, 99),
            "due_query_s": due_query_s,
            "due_rows": len(due),
            "inserts_per_s": inserts_per_s,
            "single_inserts_per_s": single_inserts_per_s,
            "db_size_mib": size_mib,
        },
        {
            "system": "same_queries_not_indexed",
            "recordings": count,
            "subject_lookup_p99_ms": _percentile(scans, 99),
            "due_query_s": scan_due_s,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 recordings")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args(argv)
    count = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="vpv-catalog-") as folder:
        rows = run(count, Path(folder))
    print(f"{NAME}: {count:,} recordings (SQLite, WAL)")
    print(f"{'system':<26} {'lookup p99 ms':>14} {'due query s':>12} {'inserts/s':>10}")
    for row in rows:
        inserts = row.get("inserts_per_s")
        print(
            f"{row['system']:<26} {row['subject_lookup_p99_ms']:>14.3f} "
            f"{row['due_query_s']:>12.3f} "
            f"{'-' if inserts is None else format(inserts, ',.0f'):>10}"
        )
    indexed = rows[0]
    print(
        f"single-transaction inserts/s: {indexed['single_inserts_per_s']:,.0f}; "
        f"due rows: {indexed['due_rows']:,}; catalog size: {indexed['db_size_mib']:.0f} MiB"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": NAME,
                    "params": {"recordings": count, "batch": BATCH},
                    "results": rows,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
