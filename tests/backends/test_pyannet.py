"""Tests of the numpy segmentation network (pyannote segmentation-3.0) and its loaders."""

from __future__ import annotations

import pickle
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_checkpoint import Storage, Tensor, save_state_dict, write_checkpoint
from voicepriv.audio import Audio
from voicepriv.backends.pyannet import (
    CHUNK_S,
    EXPECTED_SHAPES,
    FRAMES_PER_CHUNK,
    POWERSET,
    SegmentationModel,
    SegmentationOverlapDetector,
    chunk_starts,
    read_torch_state_dict,
    segment,
)
from voicepriv.errors import AudioError, ConfigError

#: Log-probabilities of pyannote's own PyanNet code (the copy senko vendors, with
#: asteroid-filterbanks, torch 2.13 CPU) for samples 160000-320000 of AMI ``trn08.flac``:
#: one speaker alone, another alone, nobody, and overlap all occur in it.
REFERENCE = Path(__file__).parent / "data" / "pyannet_reference.npz"


@pytest.fixture(scope="module")
def model() -> SegmentationModel:
    return SegmentationModel.bundled()


def test_bundled_weights_match_pyannotes_reference_implementation(
    model: SegmentationModel, shared_data: Path
) -> None:
    samples, rate = sf.read(shared_data / "ami-excerpts" / "trn08.flac", dtype="float32")
    assert rate == 16000
    with np.load(REFERENCE) as reference:
        expected = reference["log_probabilities"]
    got = model.log_probabilities(samples[None, 160000:320000])[0]
    assert got.shape == (FRAMES_PER_CHUNK, len(POWERSET))
    assert np.abs(np.exp(got) - np.exp(expected)).max() < 1e-3
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() > 0.995
    # the call holds overlap, and the network says so
    assert np.isin(got.argmax(axis=1), [4, 5, 6]).any()


def test_weights_round_trip_through_npz(model: SegmentationModel, tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez(path, **model.weights())
    again = SegmentationModel.from_path(path)
    chunk = np.random.default_rng(0).normal(0, 0.1, (1, 160000)).astype(np.float32)
    assert np.array_equal(model.log_probabilities(chunk), again.log_probabilities(chunk))
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "pyannote_segmentation_3.0.npz").write_bytes(path.read_bytes())
    assert SegmentationModel.from_path(directory).weights().keys() == EXPECTED_SHAPES.keys()


def test_bad_weights_are_refused_with_every_problem_named(model: SegmentationModel) -> None:
    weights: dict[str, Any] = dict(model.weights())
    del weights["classifier.bias"]
    weights["linear.0.weight"] = np.zeros((3, 3), np.float32)
    weights["linear.1.bias"] = np.full(128, np.nan, np.float32)
    with pytest.raises(ConfigError) as caught:
        SegmentationModel(weights, source="mine.npz")
    message = str(caught.value)
    assert "mine.npz" in message
    assert "classifier.bias is missing" in message
    assert "linear.0.weight has shape (3, 3)" in message
    assert "linear.1.bias is not finite" in message


def test_unreadable_model_paths_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        SegmentationModel.from_path(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match=r"none of pytorch_model\.bin"):
        SegmentationModel.from_path(tmp_path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive at all")
    with pytest.raises(ConfigError, match="unreadable"):
        SegmentationModel.from_path(garbage)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, a=np.zeros(1000))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ConfigError, match=r"truncated\.npz"):
        SegmentationModel.from_path(truncated)


def test_network_input_is_checked(model: SegmentationModel) -> None:
    with pytest.raises(AudioError, match="shape"):
        model.log_probabilities(np.zeros((1, 1000), np.float32))
    bad = np.zeros((1, 160000), np.float32)
    bad[0, 5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        model.log_probabilities(bad)


# --------------------------------------------------------------------------- checkpoint reader


def test_reads_a_torch_checkpoint_without_torch(
    fake_torch: types.ModuleType, model: SegmentationModel, tmp_path: Path
) -> None:
    path = tmp_path / "pytorch_model.bin"
    save_state_dict(path, model.weights(), extra={"pytorch-lightning_version": "2.0.2"})
    read = read_torch_state_dict(path)
    assert read.keys() == model.weights().keys()
    for name, value in model.weights().items():
        assert np.array_equal(read[name], value), name
    loaded = SegmentationModel.from_path(tmp_path)  # the directory layout pyannote uses
    chunk = np.random.default_rng(1).normal(0, 0.1, (1, 160000)).astype(np.float32)
    assert np.array_equal(loaded.log_probabilities(chunk), model.log_probabilities(chunk))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class _Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, ("touch should-not-exist",))

    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"state_dict": _Evil()}, protocol=2))
    with pytest.raises(ConfigError, match="refusing to load"):
        read_torch_state_dict(path)
    assert not (Path.cwd() / "should-not-exist").exists()


def test_broken_checkpoints_are_config_errors(fake_torch: types.ModuleType, tmp_path: Path) -> None:
    not_zip = tmp_path / "plain.bin"
    not_zip.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(ConfigError, match=r"plain\.bin"):
        read_torch_state_dict(not_zip)
    empty = tmp_path / "empty.bin"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("something.txt", "hello")
    with pytest.raises(ConfigError, match="expected one"):
        read_torch_state_dict(empty)
    storage = Storage("0", np.zeros(4, np.float32))
    short = tmp_path / "short.bin"
    write_checkpoint(short, {"w": Tensor(storage, (4, 4))}, [storage])
    with pytest.raises(ConfigError, match=r"short\.bin"):
        read_torch_state_dict(short)
    missing = tmp_path / "missing-storage.bin"
    write_checkpoint(missing, {"w": Tensor(storage, (4,))}, [])
    with pytest.raises(ConfigError, match=r"missing-storage\.bin"):
        read_torch_state_dict(missing)
    with pytest.raises(ConfigError, match="no such file"):
        read_torch_state_dict(tmp_path / "absent.bin")


# --------------------------------------------------------------------------- whole calls


@given(
    duration=st.floats(0.1, 400.0, allow_nan=False),
    step=st.floats(0.5, CHUNK_S, allow_nan=False),
)
def test_chunks_cover_the_whole_call(duration: float, step: float) -> None:
    starts = chunk_starts(duration, step)
    assert starts[0] == 0.0
    assert (np.diff(starts) > 0).all()
    assert (np.diff(starts) <= step + 1e-9).all()
    assert starts[-1] + CHUNK_S >= duration - 1e-9
    assert (starts + CHUNK_S <= max(duration, CHUNK_S) + 1e-9).all()


@settings(max_examples=10, deadline=None)
@given(
    frames=st.integers(1, 3000),
    start=st.floats(0.0, 20.0, allow_nan=False),
)
def test_on_grid_covers_exactly_the_chunk(frames: int, start: float) -> None:
    from voicepriv.backends.pyannet import Segmentation

    probabilities = np.random.default_rng(0).random((1, FRAMES_PER_CHUNK, 7)).astype(np.float32)
    result = Segmentation(starts=np.array([start]), probabilities=probabilities, duration=30.0)
    covered, values = result.on_grid(0, frames, 0.01)
    centres = (np.arange(frames) + 0.5) * 0.01
    inside = (centres >= start) & (centres < start + CHUNK_S)
    expected = np.flatnonzero(inside)
    assert list(range(covered.start, covered.stop)) == expected.tolist()
    assert values.shape == (expected.size, 7)


def test_segment_checks_its_input(model: SegmentationModel) -> None:
    stereo = Audio(samples=np.zeros((16000, 2), np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="mono"):
        segment(stereo, model=model)
    mono = Audio(samples=np.zeros(16000, np.float32), sample_rate=16000)
    with pytest.raises(ConfigError, match="step_s"):
        segment(mono, step_s=0, model=model)
    with pytest.raises(ConfigError, match="batch"):
        segment(mono, model=model, batch=0)
    with pytest.raises(ConfigError, match="step_s"):
        SegmentationOverlapDetector(model, step_s=11)


def test_segment_hears_a_real_meeting_and_its_overlap(
    model: SegmentationModel, shared_data: Path
) -> None:
    samples, rate = sf.read(shared_data / "ami-excerpts" / "trn08.flac", dtype="float32")
    audio = Audio(samples=samples, sample_rate=rate)
    seen: list[tuple[float, float]] = []
    result = segment(
        audio, step_s=5.0, model=model, batch=2, progress=lambda d, t: seen.append((d, t))
    )
    assert result.starts.tolist() == chunk_starts(audio.duration, 5.0).tolist()
    assert seen[-1][0] == pytest.approx(audio.duration) and len(seen) == 3
    # the same chunk at 8 kHz (upsampled inside) still hears speech
    narrow = segment(audio.resampled(8000), step_s=5.0, model=model)
    assert narrow.probabilities.shape == result.probabilities.shape
    speech = 1 - narrow.probabilities[..., 0]
    assert (speech > 0.5).mean() > 0.5
    detector = SegmentationOverlapDetector(model)
    activity = detector.detect(audio)
    assert detector.name == "segmentation"
    assert activity.hop_s == 0.01
    assert activity.probabilities.size == int(np.ceil(audio.duration / 0.01))
    assert activity.probabilities.min() >= 0.0 and activity.probabilities.max() <= 1.0
    assert (activity.probabilities[1600:3200] > 0.5).any()  # trn08 16-32 s holds overlap
