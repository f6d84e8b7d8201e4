"""Separation bench: every installed separator and the baselines on generated telephone calls.

Calls are mixed from the real LibriSpeech speech in ``../shared/data`` (seed 1): 30 s
two-party conversations with 10 % overlapped speech, backchannels, hold music, level
differences, an 8 kHz G.711 mu-law line with noise and an echo of the customer in the agent
channel (ERL 15-35 dB, delay 20-120 ms). Each call is scored as a mono recording and as a
dual-channel one.

Systems in the same run: baselines ``oracle``, ``keep-all``, ``vad-only``, ``channel-pick``
(stereo) and every separator plugin installed (``channels``, ``speaker`` ...; the agent's
voiceprint comes from two held-out utterances through the same line, ``campplus`` embedder).

Metrics per system and layout, mean over calls with 95 % bootstrap intervals:
``leakage_pct`` / ``leakage_s`` / ``leakage_energy_pct`` (customer speech left), ``retention_pct``
(agent speech kept), ``si_sdri_db``, ``si_sdr_db``, ``sdr_db`` (against the clean agent),
``der_pct`` / ``jer_pct`` (agent track, collar 0.5 s), ``rtf`` and ``x_realtime``, ``peak_mib``.
Writes ``results.jsonl``, ``leaderboard.md`` and, with matplotlib, the plots into ``--out``.

    python benchmarks/separation.py [--quick] [--json PATH] [--calls 50] [--out DIR]
"""

# ruff: noqa: E402  (thread limits are set before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voicepriv.bench import datasets, report, runner, speakers
from voicepriv.bench.mixer import CallConfig
from voicepriv.bench.telephone import EchoConfig
from voicepriv.errors import MissingExtraError

NAME = "separation"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; print the card, the leaderboard and the timing; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 calls of 20 s (under a minute)")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON summary here")
    parser.add_argument("--calls", type=int, default=None, help="number of calls (default 50)")
    parser.add_argument("--out", type=Path, default=Path("bench-results") / NAME)
    parser.add_argument("--algorithms", default="all", help="'all', 'none' or comma-separated")
    parser.add_argument("--data", type=Path, default=DATA, help="speaker corpus")
    args = parser.parse_args(argv)

    calls = args.calls or (6 if args.quick else 50)
    config = CallConfig(
        duration_s=20.0 if args.quick else 30.0,
        overlap_ratio=0.1,
        echo=EchoConfig(delay_s=0.05, erl_db=25.0),
        echo_erl_db=(15.0, 35.0),
        echo_delay_s=(0.02, 0.12),
    )
    started = time.perf_counter()
    corpus = speakers.scan(args.data)
    dataset = datasets.generate(corpus, calls, config, seed=1, name=f"shared-data-{calls}-calls")
    card = dataset.card()
    generated = time.perf_counter() - started
    print(card.markdown())
    algorithms: Any = args.algorithms
    if algorithms not in {"all", "none"}:
        algorithms = [a for a in algorithms.split(",") if a]
    competitors = runner.systems(algorithms)
    results = list(runner.run(dataset, competitors))
    elapsed = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    report.write_jsonl(results, args.out / "results.jsonl")
    board = report.leaderboard(results, title=f"Separation bench ({card.name})")
    board += "\n## Dataset\n\n" + card.markdown()
    (args.out / "leaderboard.md").write_text(board, encoding="utf-8")
    print(board)
    try:
        for path in report.plots(results, args.out):
            print(f"wrote {path}")
    except MissingExtraError as exc:
        print(f"plots skipped: {exc}", file=sys.stderr)
    print(f"{calls} calls, {len(results)} results: {elapsed:.1f} s wall ({generated:.1f} s setup)")

    rows: list[dict[str, Any]] = []
    for summary in report.summarise(results):
        row: dict[str, Any] = {
            "system": summary.system,
            "layout": summary.layout,
            "baseline": summary.baseline,
            "calls": summary.items,
            "refused": summary.refused,
            "errors": summary.errors,
        }
        for metric, value in summary.means.items():
            digits = 8 if metric == "rtf" else 4  # a fast system's RTF is 0.0003...
            row[metric] = round(value, digits)
            low, high = summary.intervals[metric]
            row[f"{metric}_ci_low"] = round(low, digits)
            row[f"{metric}_ci_high"] = round(high, digits)
        if "rtf" in summary.means and summary.means["rtf"] > 0:
            row["x_realtime"] = round(1.0 / summary.means["rtf"], 1)
        row["peak_mib"] = None if summary.peak_mib is None else round(summary.peak_mib, 2)
        rows.append(row)
    if args.json is not None:
        params = {
            "calls": calls,
            "duration_s": config.duration_s,
            "overlap_ratio": config.overlap_ratio,
            "seed": 1,
            "codec": config.channel.codec.value if config.channel else None,
            "echo_erl_db": list(config.echo_erl_db or ()),
            "wall_s": round(elapsed, 1),
            "hours": round(card.hours, 4),
        }
        payload = {"benchmark": NAME, "params": params, "results": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
