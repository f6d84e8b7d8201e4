"""``voicepriv bench``: generate calls, run the separation bench, write the report.

::

    voicepriv bench make-calls --speakers DIR --out DIR [--n 200] [--seed 1] [--overlap 0.1]
    voicepriv bench run --data DIR [--algorithms all] [--out DIR] [--limit N]
    voicepriv bench report [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from voicepriv.bench import datasets, mixer, report, runner, speakers
from voicepriv.bench.telephone import ChannelConfig, Codec
from voicepriv.errors import BenchError, MissingExtraError

_DEFAULT_RESULTS = "bench-results"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``bench`` command group."""
    parser = subparsers.add_parser("bench", help="separation bench: make calls, run, report")
    commands = parser.add_subparsers(dest="bench_command", metavar="COMMAND", required=True)

    make = commands.add_parser("make-calls", help="generate two-party calls from a speaker corpus")
    make.add_argument(
        "--speakers", required=True, type=Path, help="folder of utterances by speaker"
    )
    make.add_argument("--out", required=True, type=Path, help="folder to write the call set to")
    make.add_argument("--n", type=int, default=200, help="number of calls (default 200)")
    make.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    make.add_argument("--duration", type=float, default=30.0, help="seconds per call (default 30)")
    make.add_argument("--overlap", type=float, default=0.1, help="overlap ratio (default 0.1)")
    make.add_argument("--layout", default="auto", choices=[k.value for k in speakers.Layout])
    make.add_argument("--codec", default="mulaw", choices=[c.value for c in Codec])
    make.add_argument("--wideband", action="store_true", help="no telephone channel (16 kHz)")
    make.add_argument("--noise-dbfs", type=float, default=-60.0, help="line noise (default -60)")
    make.add_argument("--packet-loss", type=float, default=0.0, help="packet loss rate (0-1)")
    make.add_argument(
        "--echo-erl", default="15,35", help="echo return loss range in dB, 'low,high' (15,35)"
    )
    make.set_defaults(handler=_make_calls)

    run = commands.add_parser("run", help="run separators and baselines over a dataset")
    run.add_argument("--data", required=True, type=Path, help="call set, LibriMix or RTTM folder")
    run.add_argument("--algorithms", default="all", help="'all', 'none' or comma-separated names")
    run.add_argument("--out", type=Path, default=Path(_DEFAULT_RESULTS), help="results folder")
    run.add_argument("--limit", type=int, default=None, help="at most this many recordings")
    run.add_argument("--layouts", default=None, help="comma-separated: mono,stereo")
    run.add_argument(
        "--embedder", default="campplus", help="embedder for agent voiceprints (campplus)"
    )
    run.add_argument(
        "--oracle-enrollment",
        action="store_true",
        help="enroll agents without held-out speech from their reference stretches (optimistic)",
    )
    run.add_argument("--no-plots", action="store_true", help="skip the plots")
    run.set_defaults(handler=_run)

    rep = commands.add_parser("report", help="leaderboard and plots from a results folder")
    rep.add_argument("--results", type=Path, default=Path(_DEFAULT_RESULTS), help="results folder")
    rep.add_argument("--no-plots", action="store_true", help="skip the plots")
    rep.set_defaults(handler=_report)


def _make_calls(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise BenchError(f"--n: expected a positive number of calls, got {args.n}")
    corpus = speakers.scan(args.speakers, args.layout)
    channel = (
        None
        if args.wideband
        else ChannelConfig(
            codec=args.codec, noise_dbfs=args.noise_dbfs, packet_loss=args.packet_loss
        )
    )
    try:
        low, high = (float(v) for v in args.echo_erl.split(","))
    except ValueError:
        raise BenchError(f"--echo-erl: expected 'low,high' in dB, got {args.echo_erl!r}") from None
    config = mixer.CallConfig(
        duration_s=args.duration,
        overlap_ratio=args.overlap,
        channel=channel,
        echo_erl_db=(low, high),
        echo_delay_s=(0.02, 0.12),
    )
    print(f"{corpus.root}: {len(corpus.speakers)} speakers ({corpus.layout.value})")

    def progress(count: int) -> None:
        print(f"\r{count}/{args.n} calls", end="", file=sys.stderr, flush=True)

    path = datasets.write_calls(
        mixer.make_calls(corpus, args.n, config, args.seed),
        args.out,
        seed=args.seed,
        source=str(corpus.root),
        licenses=corpus.licenses,
        progress=progress,
    )
    print(file=sys.stderr)
    print(datasets.read_generated(args.out).card().markdown())
    print(f"wrote {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    dataset = datasets.open_dataset(args.data)
    card = dataset.card()
    print(card.markdown())
    algorithms: str | list[str] = args.algorithms
    if algorithms not in {"all", "none"}:
        algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    competitors = runner.systems(algorithms)
    layouts = args.layouts.split(",") if args.layouts else None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []

    def progress(result: runner.Result) -> None:
        status = "" if result.status == "ok" else f" ({result.status})"
        print(f"{result.item_id:<28} {result.system:<14}{status}", file=sys.stderr)

    for result in runner.run(
        dataset,
        competitors,
        layouts=layouts,
        embedder=args.embedder,
        limit=args.limit,
        progress=progress,
        oracle_enrollment=args.oracle_enrollment,
    ):
        results.append(result)
    elapsed = time.perf_counter() - started
    report.write_jsonl(results, out / "results.jsonl")
    (out / "card.md").write_text(card.markdown(), encoding="utf-8")
    (out / "run.json").write_text(
        json.dumps(
            {
                "data": str(args.data),
                "algorithms": [s.name for s in competitors],
                "embedder": args.embedder,
                "limit": args.limit,
                "oracle_enrollment": args.oracle_enrollment,
                "seconds": round(elapsed, 2),
                "card": attrs.asdict(card),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"{len(results)} results in {elapsed:.1f} s -> {out / 'results.jsonl'}")
    return _write_report(out, results, plots=not args.no_plots)


def _report(args: argparse.Namespace) -> int:
    results = report.read_jsonl(args.results / "results.jsonl")
    return _write_report(args.results, results, plots=not args.no_plots)


def _write_report(out: Path, results: list[runner.Result], *, plots: bool) -> int:
    card = out / "card.md"
    board = report.leaderboard(results)
    if card.is_file():
        board += "\n## Dataset\n\n" + card.read_text(encoding="utf-8")
    (out / "leaderboard.md").write_text(board, encoding="utf-8")
    print(board)
    if plots:
        try:
            for path in report.plots(results, out):
                print(f"wrote {path}")
        except MissingExtraError as exc:
            print(f"voicepriv: plots skipped: {exc}", file=sys.stderr)
    return 0
