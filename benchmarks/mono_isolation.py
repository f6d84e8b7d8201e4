"""Mono-call agent isolation: customer leakage, agent retention, DER and speed per embedder.

Two-party conversations are mixed from the real LibriSpeech speech in ``../shared/data``
(fixed seed): alternating turns of 1.5-6 s, pauses, short backchannels ("mm-hm"-length
snippets of the other speaker inside a long turn) and interruptions, at a target overlap of
0-20 % of speech time. Each call is rendered at 16 kHz and as an 8 kHz telephone call
(300-3400 Hz band-pass, 8-bit mu-law, noise). The agent is enrolled from three held-out
utterances, rendered at the call's bandwidth (8 kHz calls: telephone-rendered clips, as when
enrolling from the agent channel of earlier calls).

Systems in the same run: ``oracle`` (keeps exactly the agent-only frames of the truth),
``keep-all``, ``vad-only`` (keeps every frame the energy VAD calls speech) and the
``speaker`` separator with each embedder available (``mfcc`` always; ``onnx`` with the
``onnx`` extra; ``resemblyzer`` with its extra).

Metrics (10 ms frames): ``leakage_pct`` = customer-active seconds kept / customer-active
seconds; ``retention_pct`` = agent-active seconds kept / agent-active seconds (overlapped
agent speech counts, so the oracle stays below 100 %); ``der_pct`` = (missed + false-alarm)
seconds of the kept map against the agent-only truth over agent-only seconds, with a 0.25 s
collar around truth boundaries; ``x_realtime`` = call seconds / processing seconds on one
thread.

    python benchmarks/mono_isolation.py [--quick] [--json PATH] [--embedders mfcc,onnx]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy import ndimage, signal

from voicepriv.audio import Audio
from voicepriv.backends.embedders import voicepriv_embedder
from voicepriv.backends.speaker import SpeakerOptions, SpeakerSeparator
from voicepriv.backends.vad import EnergyVad
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import MissingExtraError
from voicepriv.interfaces import Embedder, IsolationRequest
from voicepriv.model import ChannelLayout

NAME = "mono_isolation"
FRAME = 0.01
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "librispeech-test-other"

Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class Call:
    """A mixed call with its truth activity on the 10 ms grid."""

    def __init__(self, mix: Audio, agent: BoolArray, customer: BoolArray, enroll: list[Audio]):
        self.mix = mix
        self.agent = agent
        self.customer = customer
        self.enroll = enroll


def _speakers() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        out[folder.name] = sorted(folder.glob("*.flac"))
    return out


def _load(path: Path) -> Array:
    data, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return np.asarray(data, np.float32)


def activity(track: Array, rate: int) -> BoolArray:
    """Truth activity of one clean source track: band energy within 35 dB of its peak."""
    level = EnergyVad().band_db(track, rate)
    active = level > float(level.max()) - 35.0
    return ndimage.binary_closing(active, structure=np.ones(15)) & (level > -75.0)


def make_call(
    agent_clips: Sequence[Array],
    customer_clips: Sequence[Array],
    rng: np.random.Generator,
    *,
    seconds: float,
    overlap: float,
    rate: int = 16000,
) -> tuple[Array, Array]:
    """Two source tracks of a conversation (agent, customer) at 16 kHz."""
    streams = [np.concatenate(agent_clips), np.concatenate(customer_clips)]
    cursor = [0, 0]
    total = int(seconds * rate)
    tracks = [np.zeros(total + rate * 8, np.float32) for _ in range(2)]

    def take(who: int, length: int) -> Array:
        stream = streams[who]
        start = cursor[who] % max(1, stream.size - length)
        cursor[who] = start + length
        piece = stream[start : start + length].copy()
        return piece * np.float32(10 ** (rng.uniform(-3, 3) / 20))

    t = int(rng.uniform(0.2, 0.8) * rate)
    who = int(rng.integers(2))
    while t < total:
        length = int(rng.uniform(1.5, 6.0) * rate)
        piece = take(who, length)
        tracks[who][t : t + piece.size] += piece
        if length > 3 * rate and rng.random() < 0.4:  # backchannel of the other party
            back = take(1 - who, int(rng.uniform(0.3, 0.6) * rate))
            at = t + int(rng.uniform(0.3, 0.7) * length)
            tracks[1 - who][at : at + back.size] += back
        if rng.random() < 2.5 * overlap:  # interruption: next turn starts early
            gap = -int(rng.uniform(0.3, 1.2) * rate)
        else:
            gap = int(rng.uniform(0.1, 0.9) * rate)
        t = max(t + length + gap, t + rate // 2)
        who = 1 - who
    return tracks[0][:total], tracks[1][:total]


def telephone(mix: Array, rng: np.random.Generator) -> Audio:
    """8 kHz narrowband rendering: band-pass 300-3400 Hz, mu-law 8 bit, 35 dB SNR noise."""
    narrow = Audio(samples=mix, sample_rate=16000).resampled(8000).samples[:, 0]
    sos = signal.butter(4, [300, 3400], btype="band", fs=8000, output="sos")
    band = signal.sosfilt(sos, narrow).astype(np.float32)
    peak = float(np.abs(band).max()) or 1.0
    x = np.clip(band / peak * 0.7, -1, 1)
    mu = 255.0
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    decoded = np.sign(coded) * ((1 + mu) ** np.abs(coded) - 1) / mu
    rms = float(np.sqrt(np.mean(decoded**2)))
    noisy = decoded + rng.normal(0, rms * 10 ** (-35 / 20), decoded.size)
    return Audio(samples=noisy.astype(np.float32), sample_rate=8000)


def build_calls(count: int, seconds: float, seed: int) -> list[tuple[str, Call]]:
    """*count* calls per condition (16 kHz and 8 kHz), overlap targets cycling 0/10/20 %."""
    rng = np.random.default_rng(seed)
    speakers = _speakers()
    names = sorted(speakers)
    calls: list[tuple[str, Call]] = []
    for index in range(count):
        a, c = rng.choice(len(names), size=2, replace=False)
        agent_files = list(speakers[names[a]])
        rng.shuffle(agent_files)
        customer_files = [_load(p) for p in speakers[names[c]]]
        enroll = [_load(p) for p in agent_files[:3]]
        agent_clips = [_load(p) for p in agent_files[3:]]
        overlap = (0.0, 0.1, 0.2)[index % 3]
        agent, customer = make_call(
            agent_clips, customer_clips=customer_files, rng=rng, seconds=seconds, overlap=overlap
        )
        truth_a = activity(agent, 16000)
        truth_c = activity(customer, 16000)
        mix = agent + customer
        mix = mix + rng.normal(0, 10 ** (-55 / 20), mix.size).astype(np.float32)
        enroll_audio = [Audio(samples=e, sample_rate=16000) for e in enroll]
        wide = Audio(samples=mix, sample_rate=16000)
        calls.append((f"16k/ov{int(overlap * 100)}", Call(wide, truth_a, truth_c, enroll_audio)))
        # narrowband calls are enrolled from narrowband audio (as from earlier calls' agent side)
        enroll_narrow = [telephone(e, rng) for e in enroll]
        calls.append(
            (f"8k/ov{int(overlap * 100)}", Call(telephone(mix, rng), truth_a, truth_c, enroll_narrow))
        )
    return calls


def score(kept: BoolArray, call: Call) -> dict[str, float]:
    """Leakage, retention and collared DER of a kept-frame mask against the truth."""
    n = min(kept.size, call.agent.size)
    kept, agent, customer = kept[:n], call.agent[:n], call.customer[:n]
    solo = agent & ~customer
    boundary = np.flatnonzero(np.diff(solo.astype(np.int8)) != 0)
    collar = np.zeros(n, bool)
    collar[boundary] = True
    collar = ndimage.binary_dilation(collar, structure=np.ones(51))
    scored = ~collar
    miss = float((solo & ~kept & scored).sum())
    false_alarm = float((kept & ~solo & scored).sum())
    reference = max(float((solo & scored).sum()), 1.0)
    return {
        "leakage_pct": 100.0 * float((kept & customer).sum()) / max(float(customer.sum()), 1.0),
        "leakage_s": float((kept & customer).sum()) * FRAME,
        "retention_pct": 100.0 * float((kept & agent).sum()) / max(float(agent.sum()), 1.0),
        "der_pct": 100.0 * (miss + false_alarm) / reference,
        "overlap_pct": 100.0 * float((agent & customer).sum()) / max(float((agent | customer).sum()), 1.0),
    }


def kept_mask(segments: Sequence[Any], frames: int) -> BoolArray:
    """Segments -> boolean mask on the 10 ms grid."""
    mask = np.zeros(frames, bool)
    for seg in segments:
        mask[round(seg.start / FRAME) : round(seg.end / FRAME)] = True
    return mask


def run_system(
    name: str,
    calls: Sequence[tuple[str, Call]],
    decide: Callable[[Call], BoolArray],
) -> list[dict[str, Any]]:
    """Per-condition and overall rows for one system."""
    rows: dict[str, list[dict[str, float]]] = {}
    for condition, call in calls:
        start = time.process_time()
        kept = decide(call)
        spent = max(time.process_time() - start, 1e-6)
        metrics = score(kept, call)
        metrics["x_realtime"] = call.mix.duration / spent
        metrics["seconds"] = call.mix.duration
        rows.setdefault(condition.split("/")[0], []).append(metrics)
        rows.setdefault("all", []).append(metrics)
    out = []
    for condition, items in rows.items():
        row: dict[str, Any] = {"system": name, "condition": condition, "calls": len(items)}
        total_s = sum(i["seconds"] for i in items)
        for key in ("leakage_pct", "retention_pct", "der_pct", "overlap_pct"):
            row[key] = round(float(np.mean([i[key] for i in items])), 2)
        row["leakage_max_pct"] = round(max(i["leakage_pct"] for i in items), 2)
        row["leakage_s"] = round(sum(i["leakage_s"] for i in items), 2)
        row["x_realtime"] = round(total_s / sum(i["seconds"] / i["x_realtime"] for i in items), 1)
        out.append(row)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter calls (< 1 min)")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--embedders", default="mfcc,onnx,resemblyzer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls", type=int, help="calls per condition")
    args = parser.parse_args(argv)
    count = args.calls or (3 if args.quick else 9)
    seconds = 30.0 if args.quick else 60.0
    if not DATA.is_dir():
        print(f"real speech not found at {DATA}", file=sys.stderr)
        return 2
    calls = build_calls(count, seconds, args.seed)
    results: list[dict[str, Any]] = []
    frames_of = lambda call: int(np.ceil(call.mix.duration / FRAME))  # noqa: E731
    results += run_system("oracle", calls, lambda c: c.agent & ~c.customer)
    results += run_system("keep-all", calls, lambda c: np.ones(frames_of(c), bool))
    vad = EnergyVad()

    def vad_only(call: Call) -> BoolArray:
        probability = vad.detect(call.mix).probabilities
        return np.repeat(probability >= 0.5, round(vad.hop_s / FRAME))

    results += run_system("vad-only", calls, vad_only)
    for name in [n.strip() for n in args.embedders.split(",") if n.strip()]:
        try:
            embedder = voicepriv_embedder(name=name, options={})
        except MissingExtraError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        assert isinstance(embedder, Embedder)
        embedder.embed(calls[0][1].enroll[0])  # warm-up (model load, numba)
        separator = SpeakerSeparator(SpeakerOptions(), embedder=embedder, vad=vad)
        prints: dict[int, Any] = {}

        def speaker(call: Call, sep: SpeakerSeparator = separator, emb: Embedder = embedder) -> BoolArray:
            key = id(call.enroll)
            if key not in prints:
                prints[key] = enroll_clips("agent", call.enroll, emb)
            result = sep.isolate(
                call.mix, IsolationRequest(layout=ChannelLayout.mono(), voiceprint=prints[key])
            )
            return kept_mask(result.kept, frames_of(call))

        # enrollment is done once per agent, outside the timed isolation
        for _, call in calls:
            if id(call.enroll) not in prints:
                prints[id(call.enroll)] = enroll_clips("agent", call.enroll, embedder)
        results += run_system(f"speaker/{name}", calls, speaker)
    header = f"{'system':<20} {'cond':<5} {'calls':>5} {'leak%':>7} {'leakmax%':>8} {'retain%':>8} {'DER%':>7} {'ovl%':>6} {'xRT':>8}"
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['system']:<20} {row['condition']:<5} {row['calls']:>5} {row['leakage_pct']:>7.2f} "
            f"{row['leakage_max_pct']:>8.2f} {row['retention_pct']:>8.2f} {row['der_pct']:>7.2f} "
            f"{row['overlap_pct']:>6.1f} {row['x_realtime']:>8.1f}"
        )
    if args.json:
        params = {"quick": args.quick, "seed": args.seed, "calls_per_condition": count,
                  "call_seconds": seconds, "options": "SpeakerOptions() defaults"}
        args.json.write_text(json.dumps({"benchmark": NAME, "params": params, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
