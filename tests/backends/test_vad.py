"""Tests of the built-in voice activity detectors (``energy`` core, ``silero`` extra onnx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.audio import Audio
from voicepriv.backends import vad as vad_module
from voicepriv.backends.vad import EnergyVad, voicepriv_backend_names, voicepriv_vad
from voicepriv.errors import AudioError, ConfigError
from voicepriv.interfaces import VoiceActivityDetector


def _speech(shared_data: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(
        shared_data / "librispeech-test-other" / "1688" / "1688-142285-0000.flac", dtype="float32"
    )
    return np.asarray(data, np.float32), int(rate)


def test_hooks_name_both_backends_and_only_for_kind_vad() -> None:
    assert voicepriv_backend_names(kind="vad") == ["energy", "silero"]
    assert voicepriv_backend_names(kind="embedder") == []
    assert voicepriv_vad(name="webrtc", options={}) is None
    assert isinstance(voicepriv_vad(name="energy", options={}), VoiceActivityDetector)


def test_energy_unknown_and_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'loudness'"):
        EnergyVad.from_options({"loudness": 3})
    with pytest.raises(ConfigError, match="'margin_db'"):
        EnergyVad.from_options({"margin_db": -1})


def test_energy_rejects_stereo() -> None:
    with pytest.raises(AudioError, match="mono"):
        EnergyVad().detect(Audio(samples=np.zeros((800, 2), np.float32), sample_rate=8000))


def test_energy_digital_silence_is_not_speech() -> None:
    activity = EnergyVad().detect(Audio(samples=np.zeros(16000, np.float32), sample_rate=16000))
    assert activity.probabilities.size == 100
    assert not activity.mask().any()


def test_energy_finds_real_speech_after_silence_and_noise(shared_data: Path) -> None:
    speech, rate = _speech(shared_data)
    rng = np.random.default_rng(0)
    lead = rate  # one second of faint noise before the speech
    noise = rng.normal(0, 1e-3, lead + speech.size).astype(np.float32)
    signal = noise.copy()
    signal[lead:] += speech
    for audio in (
        Audio(samples=signal, sample_rate=rate),
        Audio(samples=signal, sample_rate=rate).resampled(8000),
    ):
        mask = EnergyVad().detect(audio).mask()
        assert mask[:90].mean() == 0.0  # the first 0.9 s is noise only
        assert mask[100:].mean() > 0.6  # LibriSpeech reading: mostly speech


@given(
    seconds=st.floats(min_value=0.0, max_value=1.5),
    rate=st.sampled_from([8000, 16000, 44100]),
    seed=st.integers(0, 2**16),
)
def test_energy_shape_and_range_for_any_input(seconds: float, rate: int, seed: int) -> None:
    frames = int(seconds * rate)
    rng = np.random.default_rng(seed)
    samples = (rng.normal(0, 0.1, frames) * (rng.random(frames) < 0.5)).astype(np.float32)
    activity = EnergyVad().detect(Audio(samples=samples, sample_rate=rate))
    hop = round(0.01 * rate)
    assert activity.probabilities.size == (0 if frames == 0 else -(-frames // hop))
    assert np.all((activity.probabilities >= 0) & (activity.probabilities <= 1))


@pytest.mark.onnx
def test_silero_finds_real_speech(shared_data: Path) -> None:
    pytest.importorskip("onnxruntime")
    speech, rate = _speech(shared_data)
    silence = np.zeros(rate, np.float32)
    audio = Audio(samples=np.concatenate([silence, speech]), sample_rate=rate)
    detector = voicepriv_vad(name="silero", options={})
    assert isinstance(detector, VoiceActivityDetector)
    activity = detector.detect(audio.resampled(8000))
    chunk = activity.hop_s
    first = round(0.9 / chunk)
    assert activity.mask()[:first].mean() == 0.0
    assert activity.mask()[round(1.0 / chunk) :].mean() > 0.5
    assert vad_module.find_silero_model().name.startswith("silero_vad")


@pytest.mark.onnx
def test_silero_rejects_a_missing_model_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError, match="not a file"):
        voicepriv_vad(name="silero", options={"model_path": str(tmp_path / "none.onnx")})
