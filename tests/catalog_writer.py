"""A catalog writer process body, importable by name so ``spawn`` child processes can run it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voicepriv.vault.catalog import Catalog, NewRecording

PER_PROCESS = 60


def entry(rid: str) -> NewRecording:
    """A minimal catalog entry with one subject hash."""
    return NewRecording(
        id=rid,
        key_id=f"rk-{rid}",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=60.0,
        direction="inbound",
        subject_hashes=frozenset({"ab" * 16}),
    )


def write(url: str, worker: int, start: Any) -> None:
    """Wait for *start*, then add PER_PROCESS recordings (every third call a batch of two)."""
    start.wait()
    catalog = Catalog(url)
    try:
        for index in range(PER_PROCESS):
            rid = f"w{worker}-{index}"
            if index % 3 == 0:
                catalog.add_recordings([entry(rid), entry(rid + "-b")])
            else:
                catalog.add_recording(entry(rid))
    finally:
        catalog.close()
