"""Stereo (dual-channel) agent isolation: echo removal, double-talk quality, speed.

Test calls are built from real LibriSpeech speech (``../shared/data``, two different speakers
per call) with the separation bench's telephone channel (``voicepriv.bench.telephone``: echo
paths, bit-exact G.711) and its SI-SDR (``voicepriv.bench.metrics``). Echo paths: bulk delay
5-120 ms, echo return loss 6-30 dB, a saturating non-linearity, a path change mid-call; 8 kHz
G.711 mu-law and 16 kHz linear PCM.
Every call alternates customer-only, agent-only and double-talk turns. The ``-n60-`` /
``-n50-`` conditions add line noise at -60 / -50 dBFS to both legs (as the separation
bench's telephone line does) with low echo (ERL 25-35 dB, at or under the noise) and one loud
echo (ERL 10 dB) that the noise floor must not excuse. The ``-ae`` conditions also put the
agent's own line echo (ERL 20 / 12 dB, 30 ms) into the customer channel, as the demo call has.

Systems, all measured in the same run on the same calls:

- ``channels``: voicepriv's built-in separator (two-path MDF + suppression + fail-closed gate);
- ``channels-linear``: its echo canceller alone (no suppressor, no silencing), for reference;
- ``webrtc-aec3``: WebRTC's AEC3 from the ``aec-audio-processing`` wheel, when installed;
- ``speexdsp-mdf``: speexdsp's MDF echo canceller (``speexdsp`` package, built against
  Debian's ``libspeexdsp-dev`` with ``swig``), when installed;
- ``keep-agent-channel``: the naive baseline, the agent channel as recorded.

Metrics per row (condition x system): ``erle_db`` over customer-only speech,
``agent_sisdr_db`` of the output against the clean agent speech during double talk,
``x_realtime`` (call seconds per processing second, one thread), ``residual_customer_db``
(output level over customer-only speech, dBFS) and ``residual_detectable_pct`` (share of
20 ms customer-only frames an energy detector at -60 dBFS would still pick up, line noise
included), ``residual_echo_detectable_pct`` (the same share for the part of the output the
customer's speech explains, i.e. residual customer speech with the line noise left out;
per-call Wiener fit from the clean customer speech),
``residual_coherent_db`` (level of the output over customer-only speech that is linearly
explained by the customer, i.e. residual customer speech rather than line noise; Welch
cross-spectra) and ``agent_retention_pct`` (share of 20 ms agent-only speech frames the output
keeps with at least half their energy).

    python benchmarks/stereo_isolation.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import attrs
import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy import signal

from voicepriv.audio import Audio
from voicepriv.backends.channels import ChannelsSeparator, EchoCanceller
from voicepriv.bench import metrics, telephone
from voicepriv.interfaces import IsolationRequest
from voicepriv.model import ChannelLayout

NAME = "stereo_isolation"
Array = npt.NDArray[np.float64]
DATA = Path(
    os.environ.get(
        "VOICEPRIV_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
PATTERN = ("c", "a", "c", "dt", "a", "c", "dt", "c", "a", "dt", "c", "a")
PAIRS = (("1688", "2033"), ("3080", "2414"), ("1998", "367"))


@attrs.frozen(kw_only=True)
class Condition:
    """One simulated telephone call."""

    name: str
    rate: int
    delay_ms: float
    erl_db: float
    nonlinear: bool = False
    path_change: bool = False
    g711: bool = False
    pair: int = 0
    #: Line noise on both legs (white, RMS dBFS), as the separation bench's telephone line;
    #: ``None`` for a nearly noiseless line.
    noise_dbfs: float | None = None
    #: The agent's own line echo in the customer channel (the far hybrid), ERL in dB, 30 ms
    #: bulk delay; ``None``: the customer channel holds the customer only.
    agent_echo_erl_db: float | None = None


@attrs.frozen(kw_only=True)
class Call:
    """Channels of a simulated call and the ground truth needed to score it."""

    mic: Array
    reference: Array
    agent: Array
    echo: Array
    customer: Array
    customer_only: npt.NDArray[np.bool_]
    agent_only: npt.NDArray[np.bool_]
    double_talk: npt.NDArray[np.bool_]
    rate: int


def _speech(speaker: str, rate: int, samples: int) -> Array:
    parts: list[Array] = []
    for path in sorted((DATA / "librispeech-test-other" / speaker).glob("*.flac")):
        data, file_rate = sf.read(path, dtype="float64")
        parts.append(data if file_rate == rate else signal.resample_poly(data, rate, file_rate))
        if sum(p.size for p in parts) >= samples:
            break
    out = np.concatenate(parts)[:samples]
    return 0.05 * out / np.sqrt(np.mean(out**2))


def build_call(condition: Condition, seconds: float) -> Call:
    """The call of *condition*: the agent channel holds agent speech plus customer echo."""
    rate = condition.rate
    n = round(seconds * rate)
    section = n // len(PATTERN)
    gap = round(0.2 * rate)
    agent_gate = np.zeros(n)
    customer_gate = np.zeros(n)
    for index, kind in enumerate(PATTERN):
        span = slice(index * section + gap, (index + 1) * section)
        agent_gate[span] = kind in {"a", "dt"}
        customer_gate[span] = kind in {"c", "dt"}
    agent_speaker, customer_speaker = PAIRS[condition.pair % len(PAIRS)]
    agent = _speech(agent_speaker, rate, n) * agent_gate
    customer = _speech(customer_speaker, rate, n) * customer_gate
    echo = telephone.apply_echo(
        customer,
        rate,
        telephone.EchoConfig(
            delay_s=condition.delay_ms / 1000,
            erl_db=condition.erl_db,
            tail_s=0.06,
            # Loudspeaker / hybrid overdrive: tanh(g x)/g saturates the louder half of speech.
            nonlinearity=6.0 if condition.nonlinear else 0.0,
            change_at_s=seconds / 2 if condition.path_change else None,
            changed_delay_s=(condition.delay_ms / 2 + 10) / 1000 if condition.path_change else None,
        ),
        np.random.default_rng(1),
    )
    mic = agent + echo + np.random.default_rng(5).standard_normal(n) * 3e-5
    reference = customer
    if condition.agent_echo_erl_db is not None:
        reference = reference + telephone.apply_echo(
            agent,
            rate,
            telephone.EchoConfig(delay_s=0.03, erl_db=condition.agent_echo_erl_db, tail_s=0.06),
            np.random.default_rng(3),
        )
    if condition.noise_dbfs is not None:
        mic = mic + telephone.line_noise(
            n, rate, np.random.default_rng(6), level_dbfs=condition.noise_dbfs
        )
        reference = reference + telephone.line_noise(
            n, rate, np.random.default_rng(7), level_dbfs=condition.noise_dbfs
        )
    if condition.g711:
        mic = telephone.codec_roundtrip(mic, "mulaw")
        reference = telephone.codec_roundtrip(reference, "mulaw")
    return Call(
        mic=mic,
        reference=reference,
        agent=agent,
        echo=echo,
        customer=customer,
        customer_only=(customer_gate > 0) & (agent_gate == 0),
        agent_only=(agent_gate > 0) & (customer_gate == 0),
        double_talk=(customer_gate > 0) & (agent_gate > 0),
        rate=rate,
    )


CONDITIONS = (
    Condition(name="8k-g711-d60-erl12", rate=8000, delay_ms=60, erl_db=12, g711=True),
    Condition(name="8k-g711-d5-erl30", rate=8000, delay_ms=5, erl_db=30, g711=True, pair=1),
    Condition(name="8k-g711-d120-erl6", rate=8000, delay_ms=120, erl_db=6, g711=True, pair=2),
    Condition(name="16k-d60-erl12", rate=16000, delay_ms=60, erl_db=12),
    Condition(name="16k-d20-erl20", rate=16000, delay_ms=20, erl_db=20, pair=1),
    Condition(name="8k-nonlinear-d40-erl10", rate=8000, delay_ms=40, erl_db=10, nonlinear=True),
    Condition(
        name="8k-pathchange-d80-erl12", rate=8000, delay_ms=80, erl_db=12, path_change=True, pair=2
    ),
    Condition(
        name="16k-pathchange-d100-erl15", rate=16000, delay_ms=100, erl_db=15, path_change=True
    ),
)
# Line noise as on the separation bench's calls (-60 dBFS default, -50 dBFS noisy) with low
# echo (ERL 25-35 dB: at or under the noise) and one loud echo that the noise must not excuse.
CONDITIONS += (
    Condition(
        name="8k-g711-n60-d60-erl25", rate=8000, delay_ms=60, erl_db=25, g711=True, noise_dbfs=-60
    ),
    Condition(
        name="8k-g711-n60-d30-erl35",
        rate=8000,
        delay_ms=30,
        erl_db=35,
        g711=True,
        noise_dbfs=-60,
        pair=1,
    ),
    Condition(
        name="8k-g711-n50-d90-erl25",
        rate=8000,
        delay_ms=90,
        erl_db=25,
        g711=True,
        noise_dbfs=-50,
        pair=2,
    ),
    Condition(
        name="8k-g711-n50-d60-erl10", rate=8000, delay_ms=60, erl_db=10, g711=True, noise_dbfs=-50
    ),
)
# The agent's own line echo in the customer channel as well (as in `voicepriv demo`): it must
# not make agent turns look like customer speech.
CONDITIONS += (
    Condition(
        name="8k-g711-d60-erl12-ae20",
        rate=8000,
        delay_ms=60,
        erl_db=12,
        g711=True,
        agent_echo_erl_db=20,
    ),
    Condition(
        name="8k-g711-n60-d60-erl25-ae12",
        rate=8000,
        delay_ms=60,
        erl_db=25,
        g711=True,
        noise_dbfs=-60,
        pair=1,
        agent_echo_erl_db=12,
    ),
)
QUICK = (
    "8k-g711-d60-erl12",
    "16k-d60-erl12",
    "8k-nonlinear-d40-erl10",
    "8k-pathchange-d80-erl12",
    "8k-g711-n60-d60-erl25",
    "8k-g711-n50-d60-erl10",
    "8k-g711-d60-erl12-ae20",
)


# --------------------------------------------------------------------------- systems


def run_channels(call: Call) -> Array:
    audio = Audio(samples=np.stack([call.mic, call.reference], axis=1), sample_rate=call.rate)
    result = ChannelsSeparator().isolate(audio, IsolationRequest(layout=ChannelLayout.stereo()))
    return result.audio.samples[:, 0].astype(np.float64)


def run_linear(call: Call) -> Array:
    canceller = EchoCanceller(call.rate)
    error, _ = canceller.process(call.reference, call.mic)
    tail, _ = canceller.flush()
    return np.concatenate([error, tail])


def run_keep(call: Call) -> Array:
    return call.mic.copy()


def _webrtc() -> Callable[[Call], Array] | None:
    try:
        from aec_audio_processing import AudioProcessor
    except ImportError:
        return None

    def run(call: Call) -> Array:
        processor = AudioProcessor(
            enable_aec=True, enable_ns=False, enable_agc=False, enable_vad=False
        )
        processor.set_stream_format(call.rate, 1)
        processor.set_reverse_stream_format(call.rate, 1)
        processor.set_stream_delay(0)
        frame = call.rate // 100
        mic = (np.clip(call.mic, -1, 1) * 32767).astype(np.int16)
        ref = (np.clip(call.reference, -1, 1) * 32767).astype(np.int16)
        out = np.zeros(call.mic.size)
        for start in range(0, mic.size - frame + 1, frame):
            processor.process_reverse_stream(ref[start : start + frame].tobytes())
            block = processor.process_stream(mic[start : start + frame].tobytes())
            out[start : start + frame] = np.frombuffer(block, np.int16) / 32767.0
        return out

    return run


def _speex() -> Callable[[Call], Array] | None:
    try:
        from speexdsp import EchoCanceller as SpeexCanceller
    except ImportError:
        return None

    def run(call: Call) -> Array:
        frame = round(0.02 * call.rate)
        # The same 200 ms echo path length as the channels backend (with speex's own
        # preprocessor-free MDF: echo cancellation only).
        canceller = SpeexCanceller.create(frame, round(0.2 * call.rate), call.rate)
        mic = (np.clip(call.mic, -1, 1) * 32767).astype(np.int16)
        ref = (np.clip(call.reference, -1, 1) * 32767).astype(np.int16)
        out = np.zeros(call.mic.size)
        for start in range(0, mic.size - frame + 1, frame):
            block = canceller.process(
                mic[start : start + frame].tobytes(), ref[start : start + frame].tobytes()
            )
            out[start : start + frame] = np.frombuffer(block, np.int16) / 32767.0
        return out

    return run


# --------------------------------------------------------------------------- metrics


def _si_sdr(estimate: Array, reference: Array) -> float:
    return metrics.si_sdr(estimate, reference)


def score(call: Call, output: Array, seconds: float) -> dict[str, float]:
    co = call.customer_only
    erle = 10 * np.log10(np.sum(call.echo[co] ** 2) / (np.sum(output[co] ** 2) + 1e-20))
    frame = round(0.02 * call.rate)
    usable = (output.size // frame) * frame
    levels = (output[:usable] ** 2).reshape(-1, frame).mean(axis=1)
    co_frames = co[:usable].reshape(-1, frame).all(axis=1)
    detectable = float(np.mean(levels[co_frames] > 1e-6)) * 100 if co_frames.any() else 0.0
    agent_frames = (call.agent[:usable] ** 2).reshape(-1, frame).mean(axis=1)
    ao_frames = call.agent_only[:usable].reshape(-1, frame).all(axis=1)
    speech = ao_frames & (agent_frames > 1e-3 * (agent_frames[ao_frames].mean() + 1e-20))
    retention = float(np.mean(levels[speech] >= 0.5 * agent_frames[speech])) * 100
    return {
        "erle_db": round(float(erle), 2),
        "agent_sisdr_db": round(_si_sdr(output[call.double_talk], call.agent[call.double_talk]), 2),
        "x_realtime": round(call.mic.size / call.rate / max(seconds, 1e-9), 1),
        "residual_customer_db": round(float(10 * np.log10(np.mean(output[co] ** 2) + 1e-20)), 2),
        "residual_detectable_pct": round(detectable, 2),
        "residual_coherent_db": round(_coherent_db(output, call.customer, co), 2),
        "residual_echo_detectable_pct": round(_echo_detectable_pct(output, call, frame), 2),
        "agent_retention_pct": round(retention, 2),
    }


def _coherent_db(output: Array, reference: Array, mask: npt.NDArray[np.bool_]) -> float:
    """Level (dBFS) of the part of *output* on *mask* linearly explained by the customer
    (Welch: the integral of |S_ro|^2 / S_rr), i.e. residual customer speech, not noise."""
    _, s_rr = signal.welch(reference * mask, nperseg=4096)
    _, s_ro = signal.csd(reference * mask, output * mask, nperseg=4096)
    coherent = np.abs(s_ro) ** 2 / (s_rr + 1e-30)
    power = float(np.sum(coherent) * 0.5 / (coherent.size - 1) / max(float(mask.mean()), 1e-9))
    return float(10 * np.log10(power + 1e-20))


def _echo_detectable_pct(output: Array, call: Call, frame: int) -> float:
    """Share (%) of 20 ms customer-only frames whose customer-explained part of *output* is
    above -60 dBFS: residual customer speech a detector could pick up, line noise excluded.

    The customer-explained part is *output* predicted from the clean customer speech by the
    per-call least-squares (Wiener, Welch cross-spectra) filter over customer-only speech.
    """
    mask = call.customer_only
    reference = call.customer * mask
    nperseg = 4096
    _, s_rr = signal.welch(reference, nperseg=nperseg, detrend=False)
    _, s_ro = signal.csd(reference, output * mask, nperseg=nperseg, detrend=False)
    response = np.fft.irfft(s_ro / (s_rr + 1e-30), n=nperseg)
    explained = signal.oaconvolve(reference, response)[: output.size]
    usable = (output.size // frame) * frame
    levels = (explained[:usable] ** 2).reshape(-1, frame).mean(axis=1)
    frames = mask[:usable].reshape(-1, frame).all(axis=1)
    return float(np.mean(levels[frames] > 1e-6)) * 100 if frames.any() else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter calls (< 1 min)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not (DATA / "librispeech-test-other").is_dir():
        print(f"real speech not found at {DATA} (set VOICEPRIV_SHARED_DATA)", file=sys.stderr)
        return 2
    seconds = 24.0 if args.quick else 60.0
    conditions = [c for c in CONDITIONS if not args.quick or c.name in QUICK]
    systems: dict[str, Callable[[Call], Array]] = {
        "channels": run_channels,
        "channels-linear": run_linear,
        "keep-agent-channel": run_keep,
    }
    webrtc = _webrtc()
    notes = []
    if webrtc is not None:
        systems["webrtc-aec3"] = webrtc
    else:
        notes.append("webrtc-aec3 skipped: pip install aec-audio-processing")
    speex = _speex()
    if speex is not None:
        systems["speexdsp-mdf"] = speex
    else:
        notes.append(
            "speexdsp-mdf skipped: apt-get install swig libspeexdsp-dev; pip install speexdsp"
        )
    rows: list[dict[str, Any]] = []
    for condition in conditions:
        call = build_call(condition, seconds)
        for system, run in systems.items():
            started = time.process_time()
            output = run(call)
            elapsed = time.process_time() - started
            rows.append(
                {"system": system, "condition": condition.name, **score(call, output, elapsed)}
            )

    header = (
        f"{'condition':<27} {'system':<19} {'erle_db':>8} {'agent_sisdr_db':>14} "
        f"{'x_realtime':>10} {'residual_customer_db':>20} {'detectable_%':>12} "
        f"{'echo_det_%':>10} {'coherent_db':>11} {'retention_%':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['condition']:<27} {row['system']:<19} {row['erle_db']:>8.1f} "
            f"{row['agent_sisdr_db']:>14.1f} {row['x_realtime']:>10.0f} "
            f"{row['residual_customer_db']:>20.1f} {row['residual_detectable_pct']:>12.1f} "
            f"{row['residual_echo_detectable_pct']:>10.1f} "
            f"{row['residual_coherent_db']:>11.1f} {row['agent_retention_pct']:>11.1f}"
        )
    print()
    summary = []
    for system in systems:
        mine = [r for r in rows if r["system"] == system]
        entry = {
            "system": system,
            "condition": "median",
            "erle_db": round(statistics.median(r["erle_db"] for r in mine), 2),
            "agent_sisdr_db": round(statistics.median(r["agent_sisdr_db"] for r in mine), 2),
            "x_realtime": round(statistics.median(r["x_realtime"] for r in mine), 1),
            "x_realtime_8k": round(
                statistics.median(
                    [r["x_realtime"] for r in mine if r["condition"].startswith("8k")] or [0.0]
                ),
                1,
            ),
            "residual_customer_db": round(
                statistics.median(r["residual_customer_db"] for r in mine), 2
            ),
            "residual_detectable_pct": round(
                statistics.median(r["residual_detectable_pct"] for r in mine), 2
            ),
            "residual_echo_detectable_pct": round(
                statistics.median(r["residual_echo_detectable_pct"] for r in mine), 2
            ),
            "residual_echo_detectable_max_pct": max(
                r["residual_echo_detectable_pct"] for r in mine
            ),
            "x_realtime_8k_min": min(
                [r["x_realtime"] for r in mine if r["condition"].startswith("8k")] or [0.0]
            ),
            "residual_coherent_db": round(
                statistics.median(r["residual_coherent_db"] for r in mine), 2
            ),
            "agent_retention_pct": round(
                statistics.median(r["agent_retention_pct"] for r in mine), 2
            ),
        }
        summary.append(entry)
        print(
            f"median {system:<19} erle_db {entry['erle_db']:6.1f}  agent_sisdr_db "
            f"{entry['agent_sisdr_db']:6.1f}  x_realtime(8k) {entry['x_realtime_8k']:6.0f}  "
            f"residual_customer_db {entry['residual_customer_db']:6.1f}  detectable "
            f"{entry['residual_detectable_pct']:5.1f} %  echo detectable "
            f"{entry['residual_echo_detectable_pct']:5.1f} % (max "
            f"{entry['residual_echo_detectable_max_pct']:5.1f} %)  retention "
            f"{entry['agent_retention_pct']:5.1f} %"
        )
    for note in notes:
        print(note)
    if args.json is not None:
        payload = {
            "benchmark": NAME,
            "params": {
                "quick": args.quick,
                "call_seconds": seconds,
                "conditions": [attrs.asdict(c) for c in conditions],
                "pattern": list(PATTERN),
                "notes": notes,
            },
            "results": rows + summary,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        _plot(rows, args.json.with_suffix(".png"))
    return 0


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    conditions = sorted({r["condition"] for r in rows}, key=[r["condition"] for r in rows].index)
    systems = sorted({r["system"] for r in rows}, key=[r["system"] for r in rows].index)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(systems)
    for index, system in enumerate(systems):
        values = {r["condition"]: r for r in rows if r["system"] == system}
        xs = np.arange(len(conditions)) + index * width
        axes[0].bar(xs, [values[c]["erle_db"] for c in conditions], width, label=system)
        axes[1].bar(xs, [values[c]["agent_sisdr_db"] for c in conditions], width, label=system)
    for axis, title in zip(
        axes, ("ERLE, customer-only (dB)", "agent SI-SDR, double talk (dB)"), strict=True
    ):
        axis.set_title(title)
        axis.set_xticks(np.arange(len(conditions)) + 0.4 - width / 2)
        axis.set_xticklabels(conditions, rotation=45, ha="right", fontsize=7)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
