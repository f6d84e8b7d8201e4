"""CAM++ window embeddings on long calls: speed and memory, one pass per call vs per window.

What the mono separators ask of the ``campplus`` embedder: a 0.8 s window every 0.1 s over a
whole call (``CamPlusPlusEmbedder.embed_windows``). The call is real LibriSpeech speech from
``../shared/data`` (the readers' utterances one after another, repeated up to the length).
Each measurement runs in a child process of its own.

Rows: ``mode`` (``one-pass``, the default, or ``per-window``), ``minutes`` of audio,
``x_realtime`` (audio seconds / CPU seconds of ``embed_windows``, one thread),
``speedup`` (x_realtime / that of ``per-window`` on the shortest call, in the same run),
``traced_peak_mib`` (peak of the memory numpy and Python allocate during the call, counted by
``tracemalloc``) and ``windows``. Target: beyond the 2-minute pieces the network runs on,
memory grows no faster than a few copies of the audio (16 kHz float32 is 3.7 MiB a minute).

Verification rows (``eer_pct``, :func:`voicepriv.bench.metrics.equal_error_rate`): each of the
ten readers enrolled from three utterances (``embed``), and 0.8 s windows every 0.1 s of 30 s
of its later utterances (10 s with ``--quick``) scored against every voiceprint, per mode and
bandwidth (16 kHz, and band-limited through 8 kHz with ``telephone``; 16 kHz only with
``--quick``).

    python benchmarks/campplus_windows.py [--quick] [--json PATH]
"""

# ruff: noqa: E402  (thread limits must be set before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from _table import print_table

NAME = "campplus_windows"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "librispeech-test-other"


def _speech(seconds: float) -> np.ndarray:
    from voicepriv.bench.speakers import scan

    corpus = scan(DATA)
    pieces = [
        clip.samples.ravel() for speaker in corpus.speakers for clip in corpus.load(speaker, 16000)
    ]
    speech = np.concatenate(pieces)
    total = round(seconds * 16000)
    return np.resize(speech, total).astype(np.float32)


def child(mode: str, minutes: float) -> dict[str, Any]:
    """One measurement (runs in its own process)."""
    from voicepriv.audio import Audio
    from voicepriv.backends.campplus import CamPlusPlusEmbedder

    embedder = CamPlusPlusEmbedder(per_window=mode == "per-window")
    samples = _speech(minutes * 60.0)
    warm = Audio(samples=samples[: 16000 * 3], sample_rate=16000)
    embedder.embed_windows(warm, window_s=0.8, hop_s=0.1)  # weights loaded, caches filled
    audio = Audio(samples=samples, sample_rate=16000)
    tracemalloc.start()
    start = time.process_time()
    centres, _ = embedder.embed_windows(audio, window_s=0.8, hop_s=0.1)
    spent = time.process_time() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "mode": mode,
        "minutes": minutes,
        "windows": int(centres.size),
        "x_realtime": round(audio.duration / max(spent, 1e-6), 1),
        "traced_peak_mib": round(traced / 2**20, 1),
    }


def verification(seconds: float, telephone: bool) -> list[dict[str, Any]]:
    """Equal error rates of 0.8 s window embeddings against voiceprints, both modes."""
    from voicepriv.audio import Audio
    from voicepriv.backends.campplus import CamPlusPlusEmbedder
    from voicepriv.bench.metrics import equal_error_rate
    from voicepriv.bench.speakers import scan

    corpus = scan(DATA)
    modes = {
        mode: CamPlusPlusEmbedder(telephone=telephone, per_window=mode == "per-window")
        for mode in ("one-pass", "per-window")
    }
    prints, calls = [], []
    for speaker in corpus.speakers:
        clips = corpus.load(speaker, 16000)
        enrollment = np.concatenate([clip.samples.ravel() for clip in clips[:3]])
        prints.append(modes["one-pass"].embed(Audio(samples=enrollment, sample_rate=16000)))
        later = np.concatenate([clip.samples.ravel() for clip in clips[3:]])
        calls.append(Audio(samples=later[: round(seconds * 16000)], sample_rate=16000))
    voiceprints = np.stack(prints)
    rows = []
    for mode, embedder in modes.items():
        same, other = [], []
        start = time.process_time()
        for index, call in enumerate(calls):
            scores = embedder.embed_windows(call, window_s=0.8, hop_s=0.1)[1] @ voiceprints.T
            same.append(scores[:, index])
            other.append(np.delete(scores, index, axis=1).ravel())
        spent = time.process_time() - start
        rows.append(
            {
                "mode": mode,
                "bandwidth": "8k" if telephone else "16k",
                "windows": int(sum(s.size for s in same)),
                "eer_pct": round(
                    100 * equal_error_rate(np.concatenate(same), np.concatenate(other)), 2
                ),
                "x_realtime": round(sum(c.duration for c in calls) / max(spent, 1e-6), 1),
            }
        )
    return rows


def _run_child(mode: str, minutes: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(minutes)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter calls and less speech")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "MINUTES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]))))
        return 0
    if not DATA.is_dir():
        print(f"real speech not found at {DATA}", file=sys.stderr)
        return 2
    lengths = (0.5, 2.0) if args.quick else (1.0, 5.0, 20.0)
    rows = [_run_child("per-window", lengths[0])]
    rows += [_run_child("one-pass", minutes) for minutes in lengths]
    baseline = rows[0]["x_realtime"]
    for row in rows:
        row["speedup"] = round(row["x_realtime"] / baseline, 1)
    columns = (
        ("mode", "mode", "<10", ""),
        ("minutes", "minutes", ">7", ".1f"),
        ("windows", "windows", ">8", "d"),
        ("xRT", "x_realtime", ">7", ".1f"),
        ("speedup", "speedup", ">8", ".1f"),
        ("traced MiB", "traced_peak_mib", ">11", ".1f"),
    )
    print_table(rows, columns)
    seconds = 10.0 if args.quick else 30.0
    checks = verification(seconds, False) + ([] if args.quick else verification(seconds, True))
    print()
    print_table(
        checks,
        (
            ("mode", "mode", "<10", ""),
            ("band", "bandwidth", "<4", ""),
            ("windows", "windows", ">8", "d"),
            ("EER%", "eer_pct", ">6", ".2f"),
            ("xRT", "x_realtime", ">6", ".1f"),
        ),
    )
    if args.json:
        params = {
            "quick": args.quick,
            "window_s": 0.8,
            "hop_s": 0.1,
            "minutes": lengths,
            "verification_seconds_per_reader": seconds,
        }
        args.json.write_text(
            json.dumps(
                {"benchmark": NAME, "params": params, "results": rows, "verification": checks},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
