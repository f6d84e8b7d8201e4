"""Mono-call agent isolation: customer leakage, agent retention, DER and speed per embedder.

Two-party calls are generated with :func:`voicepriv.bench.mixer.make_call` from the real
LibriSpeech speech in ``../shared/data`` (fixed seed): turns, pauses, backchannels,
interruptions at a requested overlap of 0 / 10 / 20 % of speech time, and sometimes hold
music. Each call is rendered at 16 kHz (no line) and as an 8 kHz telephone call (the bench's
default :class:`~voicepriv.bench.telephone.ChannelConfig`). The agent is enrolled from three
held-out utterances sent through the same line.

Systems in the same run: ``oracle`` (keeps exactly the agent-only frames of the truth),
``keep-all``, ``vad-only`` (keeps every frame the energy VAD calls speech), and the
``speaker`` and ``segmentation`` separators (``--separators``) at their default operating
points with each embedder available (``mfcc`` and ``campplus`` always; ``onnx`` with the
``onnx`` extra; ``resemblyzer`` with its extra). ``--segmentation-detector`` adds rows
``speaker/NAME/seg-osd``: the speaker separator with the segmentation network as its
overlap detector (threshold 0.4). The separator's
VAD is its default (``"auto"``: silero with the ``onnx`` extra, else energy), and so is its
overlap detector (``"auto"``: the Whisper-encoder detector with the ``whisper`` extra, else
none); ``--without-detector`` adds rows ``speaker/NAME/no-osd`` without it. The detector's
probe was trained on calls of five of the ten speakers (``tools/train_overlap_probe.py``):
measure it with ``--speakers`` set to the other five (2609,3005,3331,367,533).

Metrics (10 ms frames, truth from the mixer's segments): ``leakage_pct`` = customer-active
seconds kept / customer-active seconds; ``leakage_energy_pct`` = the customer's share of
energy in the output: the energy of the customer's clean track in the frames kept from the
mixture, plus, in spans kept from a source separator's estimate (label ``"separated"``),
the customer track's least-squares share of the estimate, over the customer track's energy
(the frame count cannot see what a separated estimate holds; this can); ``retention_pct`` =
agent-only seconds kept / agent-only seconds (what a fail-closed isolator may keep);
``retention_all_pct`` = agent seconds kept / all agent seconds (overlap included, so even
the oracle stays below 100 %);
``der_pct`` = diarization error rate of the kept map against the agent reference segments
(``voicepriv.bench.metrics.der``, collar 0.25 s each side); ``x_realtime`` = call seconds /
CPU seconds of the whole isolation (VAD, overlap detector, embeddings, decisions) on one
thread.

A second table says where the agent-only speech went
(:func:`voicepriv.bench.metrics.retention_losses`, points of retention, mean per call):
``lost_REASON_pct`` for each reason the separator gave for removed frames (``overlap``,
``uncertain``, ``silence``, ``short``, ``customer``; ``removed`` for baselines that give
none), and ``lost_near_customer_pct``, the part of all that lies within 0.3 s of customer
speech, which a 0.3 s guard band around a perfect customer detector would remove as well.

    python benchmarks/mono_isolation.py [--quick] [--json PATH] [--embedders mfcc,onnx]

``--oracle-separation`` adds rows ``speaker/NAME/oracle-sep``: the speaker separator with a
perfect two-voice source separator for its overlapped spans (:class:`OracleSources`: the
agent's clean track and the rest of the mixture), under the separator's recovery rules: the
most a trained separator such as SepFormer could add (``docs/mono-isolation.md``).
``--sepformer DIR`` adds rows ``speaker/NAME/sepformer``: the same with SpeechBrain's
SepFormer from a local directory (extra ``speechbrain``); judge them by ``leakage_energy_pct``.

``--variant LABEL:OPTION=VALUE[:OPTION=VALUE...]`` (repeatable) adds rows
``speaker/NAME/LABEL``: the speaker separator with those options changed, e.g.
``--variant mixtures:frame_model=mixtures`` for the per-call audibility classifier
(``docs/mono-isolation.md``). Values are read as JSON where they parse and may hold colons
(a colon starts a new option only before ``NAME=``).

An embedder may carry options after a colon, ``NAME:OPTION=VALUE[:OPTION=VALUE...]`` (values
read as JSON where they parse, else as text), e.g. ``--embedders campplus,campplus:per_window=true``
for the CAM++ embedder's one-pass and per-window modes side by side; the rows are named
by the whole spec.
"""

# ruff: noqa: E402  (thread limits must be set before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _table import print_table

from voicepriv.audio import Audio
from voicepriv.backends.segmentation import SegmentationSeparator
from voicepriv.backends.sepformer import KEPT_LABEL as SEPARATED
from voicepriv.backends.speaker import SpeakerOptions, SpeakerSeparator
from voicepriv.backends.vad import EnergyVad
from voicepriv.bench.metrics import der, retention_losses
from voicepriv.bench.mixer import Call, CallConfig, make_call
from voicepriv.bench.speakers import scan
from voicepriv.bench.telephone import ChannelConfig
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import MissingExtraError
from voicepriv.interfaces import Embedder, IsolationRequest, IsolationResult, Separator
from voicepriv.model import ChannelLayout, Segment
from voicepriv.plugins import backend, get_plugin_manager

NAME = "mono_isolation"
#: The operating point before 2026-11-24's second session (``--previous`` measures it in the
#: same run): no ceiling on the other cluster's score against the voiceprint, no floor on
#: the customer model's share of the speech, no frame-level overlap detector.
PREVIOUS: dict[str, Any] = {
    "max_other_score": 1.0,
    "min_other_share": 0.0,
    "overlap_detector": "none",
}
#: ``--without-detector`` rows: no frame-level overlap detector (bands default to 0.5 s).
WITHOUT_DETECTOR: dict[str, Any] = {"overlap_detector": "none"}
#: ``--segmentation-detector`` rows: the segmentation network as the overlap detector.
SEGMENTATION_DETECTOR: dict[str, Any] = {
    "overlap_detector": "segmentation",
    "overlap_detector_threshold": 0.4,
}
FRAME = 0.01
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "librispeech-test-other"

Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

#: A removed agent-only frame this close (s) to customer speech is ``lost_near_customer_pct``:
#: a guard band of this width around a perfect customer detector would remove it too
#: (docs/mono-isolation.md: such a detector keeps 86-90 % at 0.3 s).
NEAR_CUSTOMER_S = 0.3

#: The columns naming a row, first in both tables.
_ROW_COLUMNS = (("system", "system", "<34", ""), ("cond", "condition", "<5", ""))
_RETAINED = ("retain%", "retention_pct", ">8", ".1f")

#: First table: leakage, retention, DER, speed.
COLUMNS = (
    *_ROW_COLUMNS,
    ("calls", "calls", ">5", ""),
    ("leak%", "leakage_pct", ">7", ".2f"),
    ("leakmax%", "leakage_max_pct", ">8", ".2f"),
    ("leakE%", "leakage_energy_pct", ">7", ".2f"),
    _RETAINED,
    ("ret_all%", "retention_all_pct", ">8", ".1f"),
    ("DER%", "der_pct", ">7", ".1f"),
    ("ovl%", "overlap_pct", ">6", ".1f"),
    ("xRT", "x_realtime", ">10", ".1f"),
)

#: Reasons for removed frames the second table shows (``lost_REASON_pct``): the separators'
#: labels, and ``removed`` for baselines that give none.
LOSS_REASONS = ("customer", "overlap", "uncertain", "short", "silence", "removed")

#: Second table: retention, the part lost near the customer, and the reasons.
LOSS_COLUMNS = (
    *_ROW_COLUMNS,
    _RETAINED,
    ("near-cust", "lost_near_customer_pct", ">9", ".1f"),
    *((reason, f"lost_{reason}_pct", f">{max(len(reason), 6)}", ".1f") for reason in LOSS_REASONS),
)


class Case:
    """A generated call with its truth activity on the 10 ms grid."""

    def __init__(self, call: Call, frames: int) -> None:
        self.call = call
        self.mix = call.mix
        self.enroll = list(call.enrollment)
        self.agent = np.zeros(frames, bool)
        self.customer = np.zeros(frames, bool)
        for segment in call.segments:
            target = self.agent if segment.label == "agent" else self.customer
            target[round(segment.start / FRAME) : round(segment.end / FRAME)] = True


def embedder_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME:OPTION=VALUE:...`` -> (name, options); values parsed as JSON when they parse.

    A colon starts a new option only when an option name and ``=`` follow it, so JSON values
    may hold colons: ``sep:overlap_separator_options={"source": "/models/sepformer"}``.
    """
    name, *pairs = re.split(r":(?=[A-Za-z_][A-Za-z0-9_]*=)", spec)
    if ":" in name:
        raise SystemExit(f"{spec!r}: expected NAME:OPTION=VALUE[:OPTION=VALUE...]")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return name, options


def _utterances() -> dict[str, list[Audio]]:
    corpus = scan(DATA)
    return {speaker: corpus.load(speaker, 16000) for speaker in corpus.speakers}


def build_calls(
    count: int, seconds: float, seed: int, only: Sequence[str] | None = None
) -> list[tuple[str, Case]]:
    """*count* calls per condition (16 kHz clean and 8 kHz telephone), overlap 0/10/20 %.

    Calls come from :func:`voicepriv.bench.mixer.make_call` (turns, pauses, backchannels,
    interruptions, hold music); the agent is enrolled from three held-out utterances sent
    through the same line. *only* restricts the calls to those speaker ids (both parties).
    """
    rng = np.random.default_rng(seed)
    speakers = _utterances()
    names = sorted(speakers)
    if only is not None:
        unknown = sorted(set(only) - set(names))
        if unknown or len(set(only)) < 2:
            raise SystemExit(f"--speakers: need two or more of {names}; unknown: {unknown}")
        names = sorted(set(only))
    cases: list[tuple[str, Case]] = []
    for index in range(count):
        a, c = rng.choice(len(names), size=2, replace=False)
        agent_utts = list(speakers[names[a]])
        order = rng.permutation(len(agent_utts))
        enroll = [agent_utts[i] for i in order[:3]]
        in_call = [agent_utts[i] for i in order[3:]]
        overlap = (0.0, 0.1, 0.2)[index % 3]
        for label, channel in (("16k", None), ("8k", ChannelConfig())):
            config = CallConfig(
                duration_s=seconds, overlap_ratio=overlap, channel=channel, echo=None
            )
            call = make_call(
                in_call,
                speakers[names[c]],
                config,
                seed=seed * 1000 + index,
                agent_speaker=names[a],
                customer_speaker=names[c],
                enrollment=enroll,
            )
            frames = int(np.ceil(call.mix.duration / FRAME))
            cases.append((f"{label}/ov{int(overlap * 100)}", Case(call, frames)))
    return cases


def customer_energy(
    kept: BoolArray, case: Case, labels: npt.NDArray[np.object_] | None, output: Audio | None
) -> float:
    """Share (0-1) of the customer track's energy in the output (see ``leakage_energy_pct``)."""
    customer = case.call.customer.samples[:, 0].astype(np.float64)
    hop = round(FRAME * case.call.customer.sample_rate)
    total = float(np.sum(customer**2))
    if total == 0.0:
        return 0.0
    separated = np.zeros(kept.size, bool) if labels is None else labels == SEPARATED
    plain = np.repeat(kept & ~separated, hop)[: customer.size]
    energy = float(np.sum(customer[: plain.size][plain] ** 2))
    if output is not None:
        agent = case.call.agent.samples[:, 0].astype(np.float64)
        out = output.samples[:, 0].astype(np.float64)
        for start, end in _spans(separated):
            span = slice(start * hop, end * hop)
            basis = np.stack([agent[span], customer[span]], axis=1)
            share = np.linalg.lstsq(basis, out[span], rcond=None)[0][1]
            energy += float(share**2 * np.sum(customer[span] ** 2))
    return energy / total


def score(
    kept: BoolArray,
    case: Case,
    labels: npt.NDArray[np.object_] | None = None,
    output: Audio | None = None,
) -> dict[str, float]:
    """Leakage, retention, DER (collar 0.25 s each side) and where the agent-only speech went.

    *labels* are the separator's frame labels (its kept label where kept, else its reason
    for removing the frame); without them every removed frame counts as ``"removed"``.
    *output* is the separator's audio (needed to score spans kept from a separated estimate).
    """
    energy_share = customer_energy(kept, case, labels, output)
    n = min(kept.size, case.agent.size)
    kept, agent, customer = kept[:n], case.agent[:n], case.customer[:n]
    if labels is None:
        labels = np.where(kept, "agent", "removed").astype(object)
    labels = np.where(kept, "agent", labels[:n]).astype(object)
    solo = agent & ~customer
    reference = [s for s in case.call.segments if s.label == "agent"]
    hypothesis = [Segment(start=s * FRAME, end=e * FRAME, label="agent") for s, e in _spans(kept)]
    diar = der(reference, hypothesis, collar=0.5, uem=(0.0, n * FRAME))
    lost: dict[str, float] = {}
    if solo.any():
        losses = retention_losses(agent, customer, labels, hop_s=FRAME, near_s=NEAR_CUSTOMER_S)
        lost["lost_near_customer_pct"] = 100.0 * losses.near_customer
        lost.update({f"lost_{r}_pct": 100.0 * share for r, share in losses.by_reason.items()})
    return lost | {
        "leakage_pct": 100.0 * float((kept & customer).sum()) / max(float(customer.sum()), 1.0),
        "leakage_s": float((kept & customer).sum()) * FRAME,
        "leakage_energy_pct": 100.0 * energy_share,
        "retention_pct": 100.0 * float((kept & solo).sum()) / max(float(solo.sum()), 1.0),
        "retention_all_pct": 100.0 * float((kept & agent).sum()) / max(float(agent.sum()), 1.0),
        "der_pct": 100.0 * diar.rate,
        "overlap_pct": 100.0
        * float((agent & customer).sum())
        / max(float((agent | customer).sum()), 1.0),
    }


def _spans(mask: BoolArray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def kept_mask(segments: Sequence[Any], frames: int) -> BoolArray:
    """Segments -> boolean mask on the 10 ms grid."""
    mask = np.zeros(frames, bool)
    for seg in segments:
        mask[round(seg.start / FRAME) : round(seg.end / FRAME)] = True
    return mask


def frame_labels(result: IsolationResult, frames: int) -> npt.NDArray[np.object_]:
    """A separator's answer on the 10 ms grid: the kept label where kept, else the reason."""
    labels = np.full(frames, "unlabelled", dtype=object)
    for seg in (*result.removed, *result.kept):
        labels[round(seg.start / FRAME) : round(seg.end / FRAME)] = seg.label
    return labels


class OracleSources:
    """A perfect two-voice separator for the benchmark's calls (``--oracle-separation``).

    Set :attr:`case` to the call being isolated; :meth:`separate` finds the piece it is
    given in that call's mixture and returns the agent's clean track there and the rest of
    the mixture (the customer, hold music, and the line's noise and distortion).
    """

    name = "oracle"

    def __init__(self) -> None:
        self.case: Case | None = None

    def separate(self, audio: Audio) -> Array:
        """``(2, frames)``: the agent's track and the mixture minus it."""
        assert self.case is not None, "set OracleSources.case before isolating"
        mix = self.case.mix.samples[:, 0]
        piece = audio.samples[:, 0]
        loud = np.flatnonzero(piece)
        first = int(loud[0]) if loud.size else 0
        for at in np.flatnonzero(mix == piece[first]) - first:
            if at >= 0 and np.array_equal(mix[at : at + piece.size], piece):
                agent = self.case.call.agent.samples[at : at + piece.size, 0]
                return np.stack([agent, piece - agent]).astype(np.float32)
        raise ValueError("OracleSources: the piece is not part of the current call")


#: A system's answer for one call: kept frames, or kept frames and every frame's label,
#: and optionally the output audio.
Decision = (
    BoolArray
    | tuple[BoolArray, npt.NDArray[np.object_]]
    | tuple[BoolArray, npt.NDArray[np.object_], Audio]
)


def _unpack(
    decision: Decision,
) -> tuple[BoolArray, npt.NDArray[np.object_] | None, Audio | None]:
    if not isinstance(decision, tuple):
        return decision, None, None
    if len(decision) == 2:
        return decision[0], decision[1], None
    return decision[0], decision[1], decision[2]


def run_system(
    name: str,
    calls: Sequence[tuple[str, Case]],
    decide: Callable[[Case], Decision],
) -> list[dict[str, Any]]:
    """Per-condition and overall rows for one system."""
    rows: dict[str, list[dict[str, float]]] = {}
    for condition, call in calls:
        start = time.process_time()
        decision = decide(call)
        spent = max(time.process_time() - start, 1e-6)
        kept, labels, output = _unpack(decision)
        metrics = score(kept, call, labels, output)
        metrics["x_realtime"] = call.mix.duration / spent
        metrics["seconds"] = call.mix.duration
        rows.setdefault(condition.split("/")[0], []).append(metrics)
        rows.setdefault("all", []).append(metrics)
    out = []
    for condition, items in rows.items():
        row: dict[str, Any] = {"system": name, "condition": condition, "calls": len(items)}
        total_s = sum(i["seconds"] for i in items)
        averaged = ("leakage_pct", "leakage_energy_pct", "retention_pct", "retention_all_pct")
        for key in (*averaged, "der_pct", "overlap_pct"):
            row[key] = round(float(np.mean([i[key] for i in items])), 2)
        # a reason a call never gave cost that call nothing
        for key in sorted({k for i in items for k in i if k.startswith("lost_")}):
            row[key] = round(float(np.mean([i.get(key, 0.0) for i in items])), 2)
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
    parser.add_argument("--embedders", default="mfcc,onnx,campplus,resemblyzer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls", type=int, help="calls per condition")
    parser.add_argument(
        "--speakers",
        help="comma-separated speaker ids to build calls from (e.g. a held-out half)",
    )
    parser.add_argument(
        "--without-detector",
        action="store_true",
        help="also run each embedder without the overlap detector (speaker/NAME/no-osd)",
    )
    parser.add_argument(
        "--segmentation-detector",
        action="store_true",
        help="also run each embedder with the segmentation network as overlap detector "
        "(speaker/NAME/seg-osd)",
    )
    parser.add_argument(
        "--separators",
        default="speaker,segmentation",
        help="mono separators to measure (speaker, segmentation)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:OPTION=VALUE[:...]",
        help="also run the speaker separator with these options (rows speaker/NAME/LABEL)",
    )
    parser.add_argument(
        "--oracle-separation",
        action="store_true",
        help="also run each embedder with a perfect source separator for overlapped spans "
        "(speaker/NAME/oracle-sep)",
    )
    parser.add_argument(
        "--sepformer",
        type=Path,
        metavar="DIR",
        help="also run each embedder with SepFormer from DIR (SpeechBrain's layout) for "
        "overlapped spans (speaker/NAME/sepformer; extra speechbrain)",
    )
    parser.add_argument(
        "--previous",
        action="store_true",
        help="also run each embedder at the previous defaults (rows speaker/NAME/previous)",
    )
    args = parser.parse_args(argv)
    count = args.calls or (3 if args.quick else 9)
    seconds = 30.0 if args.quick else 60.0
    if not DATA.is_dir():
        print(f"real speech not found at {DATA}", file=sys.stderr)
        return 2
    only = [n.strip() for n in args.speakers.split(",")] if args.speakers else None
    calls = build_calls(count, seconds, args.seed, only)
    results: list[dict[str, Any]] = []

    def frames_of(call: Case) -> int:
        return int(np.ceil(call.mix.duration / FRAME))

    results += run_system("oracle", calls, lambda c: c.agent & ~c.customer)
    results += run_system("keep-all", calls, lambda c: np.ones(frames_of(c), np.bool_))
    vad = EnergyVad()

    def vad_only(call: Case) -> BoolArray:
        probability = vad.detect(call.mix).probabilities
        return np.repeat(probability >= 0.5, round(vad.hop_s / FRAME))

    results += run_system("vad-only", calls, vad_only)
    for name in [n.strip() for n in args.embedders.split(",") if n.strip()]:
        try:
            embedder = backend(get_plugin_manager(), "embedder", *embedder_spec(name))
        except MissingExtraError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        assert isinstance(embedder, Embedder)
        embedder.embed(calls[0][1].enroll[0])  # warm-up (model load, numba)
        separator = SpeakerSeparator(SpeakerOptions(), embedder=embedder)
        separator.speech_frames(calls[0][1].mix, 1)  # warm-up (VAD model load)
        separator.detected_overlap(calls[0][1].mix, 1)  # warm-up (overlap model load)
        prints: dict[int, Any] = {}

        def speaker(
            call: Case, sep: Separator = separator, known: dict[int, Any] = prints
        ) -> Decision:
            request = IsolationRequest(
                layout=ChannelLayout.mono(), voiceprint=known[id(call.enroll)]
            )
            result = sep.isolate(call.mix, request)
            frames = frames_of(call)
            return kept_mask(result.kept, frames), frame_labels(result, frames), result.audio

        # enrollment is done once per agent, outside the timed isolation
        for _, call in calls:
            if id(call.enroll) not in prints:
                prints[id(call.enroll)] = enroll_clips("agent", call.enroll, embedder)
        separators = {n.strip() for n in args.separators.split(",")}
        if "speaker" in separators:
            results += run_system(f"speaker/{name}", calls, speaker)
        if "segmentation" in separators:
            segmenter = SegmentationSeparator(embedder=embedder)
            segmenter.model()  # load the network outside the timed isolation

            def segmented(
                call: Case, sep: SegmentationSeparator = segmenter, known: dict[int, Any] = prints
            ) -> Decision:
                return speaker(call, sep, known)

            results += run_system(f"segmentation/{name}", calls, segmented)
        variants = [
            ("previous", PREVIOUS, args.previous),
            ("no-osd", WITHOUT_DETECTOR, args.without_detector),
            ("seg-osd", SEGMENTATION_DETECTOR, args.segmentation_detector),
        ]
        variants += [(*embedder_spec(spec), True) for spec in args.variant]
        sepformer: dict[str, Any] = {
            "overlap_separator": "sepformer",
            "overlap_separator_options": {"source": str(args.sepformer)},
        }
        variants.append(("sepformer", sepformer, args.sepformer is not None))
        for label, changed, wanted in variants:
            if not wanted:
                continue
            other = SpeakerSeparator(SpeakerOptions.from_mapping(changed), embedder=embedder)
            other.detected_overlap(calls[0][1].mix, 1)  # warm-up (overlap model load)

            def variant(
                call: Case, sep: SpeakerSeparator = other, known: dict[int, Any] = prints
            ) -> Decision:
                return speaker(call, sep, known)

            results += run_system(f"speaker/{name}/{label}", calls, variant)
        if args.oracle_separation:
            oracle = OracleSources()
            with_oracle = SpeakerSeparator(
                SpeakerOptions(), embedder=embedder, source_separator=oracle
            )
            with_oracle.detected_overlap(calls[0][1].mix, 1)  # warm-up (overlap model load)

            def oracle_separated(
                call: Case,
                sep: SpeakerSeparator = with_oracle,
                sources: OracleSources = oracle,
                known: dict[int, Any] = prints,
            ) -> Decision:
                sources.case = call
                return speaker(call, sep, known)

            results += run_system(f"speaker/{name}/oracle-sep", calls, oracle_separated)
    print_table(results, COLUMNS)
    print(
        "\nwhere the agent-only speech went (points of retention, mean per call; near-cust "
        f"= removed within {NEAR_CUSTOMER_S:g} s of customer speech, any reason)"
    )
    print_table(results, LOSS_COLUMNS)
    if args.json:
        params = {
            "quick": args.quick,
            "seed": args.seed,
            "calls_per_condition": count,
            "speakers": only,
            "call_seconds": seconds,
            "options": "SpeakerOptions() defaults",
            "previous_options": PREVIOUS if args.previous else None,
            "no_detector_options": WITHOUT_DETECTOR if args.without_detector else None,
            "segmentation_detector_options": (
                SEGMENTATION_DETECTOR if args.segmentation_detector else None
            ),
            "separators": args.separators,
            "variants": [list(embedder_spec(spec)) for spec in args.variant],
            "oracle_separation": args.oracle_separation,
            "sepformer": str(args.sepformer) if args.sepformer else None,
        }
        args.json.write_text(
            json.dumps({"benchmark": NAME, "params": params, "results": results}, indent=2)
        )
        plot(results, args.json.with_suffix(".png"))
    return 0


def plot(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Leakage against retention per system (overall rows), when matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in results if r["condition"] == "all"]
    figure, axes = plt.subplots(figsize=(6, 4))
    for row in rows:
        axes.scatter(row["retention_pct"], row["leakage_pct"])
        axes.annotate(row["system"], (row["retention_pct"], row["leakage_pct"]), fontsize=8)
    axes.axhline(1.0, linestyle="--", linewidth=0.8)
    axes.axvline(85.0, linestyle="--", linewidth=0.8)
    axes.set_xlabel("agent-only retention (%)")
    axes.set_ylabel("customer leakage (%)")
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_title("mono isolation: targets leakage <= 1 %, retention >= 85 %")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
