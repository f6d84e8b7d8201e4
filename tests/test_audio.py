"""Audio values, loading, saving, resampling, streaming and every bad-input case."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from voicepriv import audio
from voicepriv.audio import Audio
from voicepriv.errors import AudioError

RATES = st.sampled_from([8000, 16000, 22050, 44100, 48000])
SAMPLES = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 2000), st.integers(1, 2)),
    elements=st.floats(-1.0, 1.0, width=32),
)


def _tone(seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    columns = [0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return Audio(samples=np.stack(columns, axis=1), sample_rate=rate)


@given(SAMPLES, RATES)
def test_float_wav_round_trip_within_1e_4(samples: np.ndarray, rate: int) -> None:
    original = Audio(samples=samples, sample_rate=rate)
    buffer = io.BytesIO()
    audio.save(original, buffer, format="wav", encoding="float")
    buffer.seek(0)
    loaded = audio.load(buffer)
    assert loaded.sample_rate == rate
    assert loaded.samples.shape == original.samples.shape
    assert np.max(np.abs(loaded.samples - original.samples), initial=0.0) <= 1e-4


def _g711_step(x: np.ndarray, law: str) -> np.ndarray:
    """Largest error G.711 allows at each amplitude: half a step, a step being 1/16 of the
    segment's base, so at most |x|/32, plus the smallest step near zero (mu-law 8, A-law 16)."""
    floor = 9 if law == "ulaw" else 17
    return (np.abs(x) * 32768 / 32 + floor) / 32768


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@given(
    samples=hnp.arrays(np.float32, st.integers(1, 4000), elements=st.floats(-0.5, 0.5, width=32))
)
def test_g711_round_trip_within_quantisation(law: str, samples: np.ndarray) -> None:
    original = Audio(samples=samples, sample_rate=8000)
    buffer = io.BytesIO()
    audio.save(original, buffer, format="wav", encoding=law)
    buffer.seek(0)
    loaded = audio.load(buffer)
    assert sf.info(io.BytesIO(buffer.getvalue())).subtype == law.upper()
    error = np.abs(loaded.samples[:, 0] - samples)
    assert np.all(error <= _g711_step(samples, law))


def test_flac_and_pcm16_round_trip(tmp_path: Path) -> None:
    original = _tone(channels=2)
    target = tmp_path / "call.flac"
    audio.save(original, target)
    loaded = audio.load(target)
    assert loaded.channels == 2
    assert np.max(np.abs(loaded.samples - original.samples)) < 1 / 16000


def test_real_telephone_speech_loads_and_streams(shared_data: Path) -> None:
    path = shared_data / "telephone-sample" / "sample.wav"
    whole = audio.load(path)
    blocks = list(audio.stream(path, block_frames=10_000))
    assert all(b.frames <= 10_000 for b in blocks)
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), whole.samples)
    assert audio.info(path).frames == whole.frames


def test_stream_memory_is_bounded_by_block(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as handle:
        for _ in range(20):
            handle.write(np.zeros(80_000, dtype=np.float32))
    sizes = {block.samples.nbytes for block in audio.stream(path, block_frames=4096)}
    assert max(sizes) <= 4096 * 4


@given(st.sampled_from([8000, 16000, 44100]), st.sampled_from([8000, 16000, 48000]))
def test_resample_keeps_duration_and_a_tone(src: int, dst: int) -> None:
    tone = _tone(seconds=0.25, rate=src)
    out = audio.resample(tone, dst)
    assert out.sample_rate == dst
    assert abs(out.duration - tone.duration) < 1 / min(src, dst) + 1e-9
    spectrum = np.abs(np.fft.rfft(out.samples[:, 0]))
    peak_hz = np.argmax(spectrum) * dst / out.frames
    assert abs(peak_hz - 220) < 8


def test_audio_value_behaviour() -> None:
    stereo = _tone(channels=2)
    assert stereo.channel(1).channels == 1
    assert stereo.mono().shape == (stereo.frames,)
    assert stereo.slice(0.1, 0.2).frames == 1600
    assert not stereo.samples.flags.writeable
    assert stereo == Audio(samples=stereo.samples.copy(), sample_rate=16000)
    with pytest.raises(AudioError, match=r"channel: index 2"):
        stereo.channel(2)


# ----------------------------------------------------------------------------- bad input


def _wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    audio.save(_tone(seconds, rate), buffer, format="wav")
    return buffer.getvalue()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.wav: empty file"):
        audio.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"no such file"):
        audio.load(tmp_path / "nothing.wav")


@pytest.mark.parametrize("keep", [4, 12, 30, 43])
def test_truncated_header(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(_wav_bytes()[:keep])
    with pytest.raises(AudioError, match=r"cut.wav"):
        audio.load(path)


def test_truncated_data_is_reported(tmp_path: Path) -> None:
    data = bytearray(_wav_bytes(seconds=1.0))
    path = tmp_path / "short.flac"
    # A FLAC stream cut in the middle: the header promises more frames than the data holds.
    flac = io.BytesIO()
    audio.save(_tone(1.0, 16000), flac, format="flac")
    path.write_bytes(flac.getvalue()[: len(flac.getvalue()) // 2])
    with pytest.raises(AudioError, match=r"short.flac: (truncated|corrupt)"):
        audio.load(path)
    wav = tmp_path / "short.wav"
    wav.write_bytes(bytes(data[: len(data) // 2]))
    # libsndfile reads a short WAV data chunk as fewer frames; we never return silently short audio
    loaded_or_error: object
    try:
        loaded_or_error = audio.load(wav)
    except AudioError as exc:
        loaded_or_error = exc
    if isinstance(loaded_or_error, Audio):
        assert loaded_or_error.frames == audio.info(wav).frames


def test_non_audio_bytes(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not a recording\n" * 40)
    with pytest.raises(AudioError, match=r"notes.wav: not a readable audio file"):
        audio.load(path)


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    samples = np.zeros(800, dtype=np.float32)
    samples[123] = np.nan
    sf.write(path, samples, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: non-finite sample .* at frame 123"):
        audio.load(path)
    with pytest.raises(AudioError, match=r"non-finite"):
        Audio(samples=np.array([0.0, np.inf]), sample_rate=8000)


def _with_rate(data: bytes, rate: int) -> bytes:
    patched = bytearray(data)
    patched[24:28] = struct.pack("<I", rate)
    patched[28:32] = struct.pack("<I", rate * 2)
    return bytes(patched)


@pytest.mark.parametrize("rate", [0, 1, 1_000_000_000])
def test_zero_or_absurd_sample_rate(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "rate.wav"
    path.write_bytes(_with_rate(_wav_bytes(), rate))
    with pytest.raises(AudioError, match=r"rate.wav"):
        audio.load(path)
    with pytest.raises(AudioError, match=r"sample_rate"):
        Audio(samples=np.zeros(10), sample_rate=rate)


def test_more_channels_than_layout(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    audio.save(_tone(channels=3), path)
    with pytest.raises(AudioError, match=r"three.wav: 3 channels, but the layout allows 2"):
        audio.load(path, max_channels=2)
    with pytest.raises(AudioError, match=r"3 channels"):
        list(audio.stream(path, max_channels=2))


def test_file_over_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(_wav_bytes(seconds=1.0))
    with pytest.raises(AudioError, match=r"big.wav: .* over the limit of 1000 bytes"):
        audio.load(path, max_bytes=1000)


def test_save_rejects_unknown_format_and_encoding(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"format 'mp3'"):
        audio.save(_tone(), tmp_path / "x.mp3")
    with pytest.raises(AudioError, match=r"FLAC stores"):
        audio.save(_tone(), tmp_path / "x.flac", encoding="ulaw")


# --------------------------------------------------------------------------- truncation, limits


def _wav_with_trailing_chunk(frames: int, *, odd: bool) -> tuple[bytes, int]:
    """A 16-bit mono WAV of *frames* frames followed by a LIST chunk; and where its data ends."""
    samples = (np.arange(frames) % 200 - 100).astype("<i2").tobytes()
    if odd:  # an 8-bit-like odd data size needs a pad byte; keep 16-bit but add one sample byte
        samples = samples[:-1]
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 8000, 16000, 2, 16)
    data = struct.pack("<4sI", b"data", len(samples)) + samples + b"\0" * (len(samples) & 1)
    listing = struct.pack("<4sI", b"LIST", 12) + b"INFOabcdefgh"
    body = b"WAVE" + fmt + data + listing
    return b"RIFF" + struct.pack("<I", len(body)) + body, 12 + len(fmt) + len(data)


def test_truncated_wav_is_refused_naming_the_file_and_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    audio.save(_tone(5.0, 16000), path, encoding="pcm16")
    whole = path.read_bytes()
    path.write_bytes(whole[: int(len(whole) * 0.4)])
    for call in (audio.load, lambda p: list(audio.stream(p)), audio.info):
        with pytest.raises(
            AudioError, match=r"cut\.wav: truncated data.*160000 bytes.*holds 63973"
        ):
            call(path)
    with pytest.raises(AudioError, match="truncated data"):
        audio.load(io.BytesIO(whole[: int(len(whole) * 0.4)]))


@given(st.integers(8, 400), st.booleans(), st.data())
def test_any_truncation_of_a_wav_raises_or_loads_every_frame(
    frames: int, odd: bool, data: st.DataObject
) -> None:
    whole, data_end = _wav_with_trailing_chunk(frames, odd=odd)
    expected = audio.load(io.BytesIO(whole)).frames
    cut = data.draw(st.integers(0, len(whole)), label="cut")
    try:
        loaded = audio.load(io.BytesIO(whole[:cut]))
    except AudioError:
        return
    # only trailing non-data bytes (the LIST chunk, the pad byte) may be missing
    assert cut >= data_end - (1 if odd else 0)
    assert loaded.frames == expected


def test_max_bytes_is_enforced_for_file_objects_too(tmp_path: Path) -> None:
    data = audio.to_bytes(_tone(1.0, 8000), format="wav")
    with pytest.raises(AudioError, match=rf"<stream>: {len(data)} bytes is over the limit of 1000"):
        audio.load(io.BytesIO(data), max_bytes=1000)
    # counted from the object's position, which is restored
    buffer = io.BytesIO(b"x" * 5000 + data)
    buffer.seek(5000)
    assert audio.load(buffer, max_bytes=len(data)).frames == 8000


def test_save_to_a_missing_folder_or_a_folder_raises_audio_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nodir.a\.wav: cannot write WAV audio"):
        audio.save(_tone(), tmp_path / "nodir" / "a.wav")
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match=r"dir\.wav: cannot write WAV audio"):
        audio.save(_tone(), folder)
