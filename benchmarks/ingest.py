"""Ingest throughput: stereo agent-only calls per second and audio-hours per hour, per step.

Systems measured in the same run, each on a fresh vault (local folder, SQLite, local key file):

* ``agent_only_1_worker``: outbound stereo calls under an agent-side-only policy (decide ->
  echo-cancelling channel isolation -> encrypted store -> catalog -> audit), one process;
* ``agent_only_N_workers``: the same on every core (local process pool);
* ``baseline_keep_both_1_worker``: the same calls inbound with consent: both tracks are
  stored as recorded, no isolation (what isolation costs on top of storing).

Calls are built from the packaged LibriSpeech speech (``voicepriv.demo.build_call``), tiled to
the call length. ``--quick`` runs 4 calls of ~17 s; the default 24 calls of ~69 s.

    python benchmarks/ingest.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicepriv import audio as audio_io
from voicepriv.audio import Audio
from voicepriv.batch import Outcome, discover, run_batch
from voicepriv.demo import CALLER_PHONE, DEMO_POLICY, build_call
from voicepriv.pipeline import IngestTask
from voicepriv.vault import Vault

STEPS = ("intake", "decide", "load", "isolate", "store", "audit")


def _make_calls(folder: Path, calls: int, repeats: int, direction: str) -> float:
    """Write one call WAV and *calls* records pointing at it; return the call length in s."""
    stereo, _, _ = build_call()
    samples = np.tile(stereo.samples, (repeats, 1))
    audio_io.save(Audio(samples=samples, sample_rate=stereo.sample_rate), folder / "call.wav")
    seconds = samples.shape[0] / stereo.sample_rate
    ivr = [{"prompt": "qa", "digit": "1", "offset_s": 0.0}] if direction == "inbound" else []
    records = [
        {
            "call_id": f"bench-{direction}-{i:04d}",
            "started_at": "2026-03-02T09:15:00+01:00",
            "duration_s": seconds,
            "direction": direction,
            "channels": ["agent", "customer"],
            "audio": "call.wav",
            "parties": [
                {"role": "agent", "id": "agent-7", "jurisdiction": "DK"},
                {"role": "customer", "jurisdiction": "DK", "phone": CALLER_PHONE},
            ],
            "ivr": ivr,
        }
        for i in range(calls)
    ]
    (folder / "calls.json").write_text(json.dumps(records))
    return seconds


def _run(system: str, calls: int, repeats: int, direction: str, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="voicepriv-bench-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        seconds = _make_calls(root / "in", calls, repeats, direction)
        (root / "policy.toml").write_text(DEMO_POLICY)
        Vault.create(root / "vault").close()
        task = IngestTask(policy=str(root / "policy.toml"), vault=str(root / "vault"))
        records = discover(root / "in")
        started = time.perf_counter()
        report = run_batch(task, records, workers=workers)
        wall = time.perf_counter() - started
    expected = Outcome.AGENT_ONLY if direction == "outbound" else Outcome.KEPT
    wrong = [o for o in report.outcomes if o.outcome is not expected]
    if wrong:
        raise SystemExit(
            f"{system}: {wrong[0].call_id} ended {wrong[0].outcome}: {wrong[0].reason}"
        )
    row: dict[str, Any] = {
        "system": system,
        "workers": workers,
        "calls": calls,
        "call_s": round(seconds, 2),
        "wall_s": round(wall, 3),
        "calls_per_s": round(calls / wall, 3),
        "audio_hours_per_hour": round(calls * seconds / wall, 1),
    }
    for step in STEPS:
        values = [o.steps_s.get(step, 0.0) for o in report.outcomes]
        row[f"{step}_ms_per_call"] = round(1000 * float(np.mean(values)), 2)
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 short calls (under a minute)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    calls, repeats = (4, 1) if args.quick else (24, 4)
    cores = os.cpu_count() or 1
    rows = [
        _run("agent_only_1_worker", calls, repeats, "outbound", 1),
        _run(f"agent_only_{cores}_workers", calls, repeats, "outbound", cores),
        _run("baseline_keep_both_1_worker", calls, repeats, "inbound", 1),
    ]
    header = ["system", "calls_per_s", "audio_hours_per_hour", *[f"{s}_ms_per_call" for s in STEPS]]
    widths = [max(len(h), 12) for h in header]
    widths[0] = max(len(r["system"]) for r in rows) + 2
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for row in rows:
        cells = [str(row[h]) for h in header]
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    print(
        f"\n{calls} stereo 8 kHz calls of {rows[0]['call_s']} s each; {cores} core(s); "
        "per-step times are per call inside the worker."
    )
    result = {
        "benchmark": "ingest",
        "params": {
            "quick": args.quick,
            "calls": calls,
            "call_s": rows[0]["call_s"],
            "cores": cores,
        },
        "results": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
