"""Audio values and audio I/O.

:class:`Audio` is an immutable value: float32 samples shaped ``(frames, channels)`` and a sample
rate. Everything that reads or writes sound goes through this module, so every input is
validated once, with an :class:`~voicepriv.errors.AudioError` that names the file and the
problem.

Reading supports everything libsndfile reads (WAV incl. 8 kHz G.711 mu-law / A-law, FLAC, OGG,
AIFF ...), stereo dual-channel files, and streaming in blocks (:func:`stream`) so long files are
never loaded whole.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import attrs
import numpy as np
import numpy.typing as npt
import soundfile as sf

from voicepriv.errors import AudioError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "Audio",
    "AudioInfo",
    "Source",
    "info",
    "load",
    "resample",
    "save",
    "stream",
    "to_bytes",
]

#: Lowest sample rate accepted (Hz). Below this nothing intelligible is left of speech.
MIN_SAMPLE_RATE: Final = 4_000
#: Highest sample rate accepted (Hz); higher values are treated as corrupt headers.
MAX_SAMPLE_RATE: Final = 384_000
#: Default ceiling on an input file's size: 4 GiB. Pass ``max_bytes`` to change it.
DEFAULT_MAX_BYTES: Final = 4 * 1024**3
_MAX_CHANNELS: Final = 32

#: Where audio can come from: a path, or a binary file object.
Source = str | os.PathLike[str] | IO[bytes]

FloatArray = npt.NDArray[np.float32]


def _as_samples(value: object) -> FloatArray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise AudioError(f"samples: expected a 1-D or 2-D array, got {array.ndim} dimensions")
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@attrs.frozen(kw_only=True, eq=False)
class Audio:
    """Float32 samples shaped ``(frames, channels)`` at ``sample_rate`` Hz.

    The sample array is read-only; derive new values with the methods below. Construction
    validates: at least one channel, a sample rate in
    [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`] and finite samples.
    """

    samples: FloatArray = attrs.field(converter=_as_samples, repr=False)
    sample_rate: int = attrs.field()

    @sample_rate.validator
    def _check_rate(self, _attribute: attrs.Attribute[int], value: int) -> None:
        _check_sample_rate(value, "sample_rate")

    def __attrs_post_init__(self) -> None:
        if self.samples.shape[1] < 1:
            raise AudioError("samples: expected at least one channel, got 0")
        if self.samples.shape[1] > _MAX_CHANNELS:
            raise AudioError(
                f"samples: expected at most {_MAX_CHANNELS} channels, got {self.samples.shape[1]}"
            )
        if not np.isfinite(self.samples).all():
            bad = int(np.argmax(~np.isfinite(self.samples).all(axis=1)))
            raise AudioError(f"samples: non-finite value (NaN or inf) at frame {bad}")

    @property
    def frames(self) -> int:
        """Number of frames (samples per channel)."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def channel(self, index: int) -> Audio:
        """One channel as a mono :class:`Audio`."""
        if not -self.channels <= index < self.channels:
            raise AudioError(f"channel: index {index} out of range for {self.channels} channels")
        return Audio(samples=self.samples[:, index], sample_rate=self.sample_rate)

    def mono(self) -> FloatArray:
        """The channels averaged into one 1-D float32 array."""
        if self.channels == 1:
            return self.samples[:, 0]
        mixed: FloatArray = self.samples.mean(axis=1, dtype=np.float32)
        return mixed

    def slice(self, start_s: float, end_s: float) -> Audio:
        """Frames between *start_s* and *end_s* seconds (clipped to the audio)."""
        start = max(0, round(start_s * self.sample_rate))
        end = min(self.frames, round(end_s * self.sample_rate))
        return Audio(samples=self.samples[start : max(start, end)], sample_rate=self.sample_rate)

    def resampled(self, sample_rate: int) -> Audio:
        """This audio at *sample_rate* Hz (polyphase filter, see :func:`resample`)."""
        return resample(self, sample_rate)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Audio):
            return NotImplemented
        return self.sample_rate == other.sample_rate and np.array_equal(self.samples, other.samples)

    __hash__ = None  # type: ignore[assignment]


@attrs.frozen(kw_only=True)
class AudioInfo:
    """What a file's header says, checked: frames, rate, channels, container and subtype."""

    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _check_sample_rate(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise AudioError(f"{name}: expected an integer sample rate in Hz, got {value!r}")
    if not MIN_SAMPLE_RATE <= int(value) <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name}: sample rate {value} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


#: Container signatures whose header declares the size of the sample data: (form tag, form
#: type(s), sample-data chunk id, byte order, bytes of the data chunk that are not samples).
_SIZED_CONTAINERS: Final = (
    (b"RIFF", (b"WAVE",), b"data", "little"),
    (b"FORM", (b"AIFF", b"AIFC"), b"SSND", "big"),
)
#: Declared data sizes that mean "unknown" (a streaming writer that never patched its header).
_UNKNOWN_SIZES: Final = (0, 0xFFFFFFFF)
_MAX_CHUNKS: Final = 10_000


def _declared_data(handle: IO[bytes], total: int) -> tuple[int, int] | None:
    """``(declared, held)`` bytes of the sample data chunk of a WAV/AIFF at *handle*'s position.

    *total* is the number of bytes from that position to the end. ``None`` when the container
    is not one whose header declares the data size, or declares it as unknown.
    """
    head = handle.read(12)
    found = [
        (data_id, order)
        for form, kinds, data_id, order in _SIZED_CONTAINERS
        if len(head) == 12 and head[:4] == form and head[8:12] in kinds
    ]
    if not found:
        return None
    data_id, order = found[0]
    position = 12
    for _ in range(_MAX_CHUNKS):
        chunk = handle.read(8)
        if len(chunk) < 8:
            return None  # no data chunk at all: libsndfile refuses such files itself
        size = int.from_bytes(chunk[4:8], "little" if order == "little" else "big")
        position += 8
        if chunk[:4] == data_id:
            if size in _UNKNOWN_SIZES:
                return None
            return size, max(0, total - position)
        position += size + (size & 1)
        if position >= total:
            return None
        handle.seek(size + (size & 1), io.SEEK_CUR)
    return None


def _check_size(source: Source, name: str, max_bytes: int) -> None:
    """Refuse an empty, oversized or truncated *source* before libsndfile sees it.

    The size of a file object is what lies between its position and its end (seek/tell);
    its position is restored. A WAV or AIFF whose data chunk declares more bytes than the file
    holds is truncated: libsndfile would shrink the frame count silently.
    """
    if isinstance(source, str | os.PathLike):
        try:
            size = Path(source).stat().st_size
        except FileNotFoundError:
            raise AudioError(f"{name}: no such file") from None
        except OSError as exc:
            raise AudioError(f"{name}: cannot read ({exc.strerror})") from exc
    else:
        try:
            start = source.tell()
            size = source.seek(0, io.SEEK_END) - start
            source.seek(start)
        except (OSError, AttributeError, ValueError) as exc:
            raise AudioError(
                f"{name}: the file object cannot seek, so its size cannot be checked "
                f"against the limit of {max_bytes} bytes ({exc})"
            ) from exc
    if size == 0:
        raise AudioError(f"{name}: empty file")
    if size > max_bytes:
        raise AudioError(f"{name}: {size} bytes is over the limit of {max_bytes} bytes")
    try:
        if isinstance(source, str | os.PathLike):
            with Path(source).open("rb") as handle:
                declared = _declared_data(handle, size)
        else:
            try:
                declared = _declared_data(source, size)
            finally:
                source.seek(start)
    except OSError as exc:
        raise AudioError(f"{name}: cannot read ({exc})") from exc
    if declared is not None and declared[1] < declared[0]:
        raise AudioError(
            f"{name}: truncated data, the header declares {declared[0]} bytes of samples but "
            f"the file holds {declared[1]}"
        )


def _open(
    source: Source, *, max_bytes: int, max_channels: int | None
) -> tuple[sf.SoundFile, AudioInfo]:
    """Open *source* with libsndfile after every header check."""
    name = _name(source)
    _check_size(source, name, max_bytes)
    try:
        handle = sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        text = str(exc).lower()
        problem = (
            "empty or truncated header"
            if "truncated" in text or "short" in text
            else ("not a readable audio file")
        )
        raise AudioError(f"{name}: {problem} ({exc})") from exc
    except (RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: not a readable audio file ({exc})") from exc
    try:
        file_info = AudioInfo(
            frames=int(handle.frames),
            sample_rate=int(handle.samplerate),
            channels=int(handle.channels),
            format=str(handle.format),
            subtype=str(handle.subtype),
        )
        _check_sample_rate(file_info.sample_rate, f"{name}: sample_rate")
        if file_info.frames <= 0:
            raise AudioError(f"{name}: holds no audio frames")
        if max_channels is not None and file_info.channels > max_channels:
            raise AudioError(
                f"{name}: {file_info.channels} channels, but the layout allows {max_channels}"
            )
        if file_info.channels > _MAX_CHANNELS:
            raise AudioError(f"{name}: {file_info.channels} channels is more than {_MAX_CHANNELS}")
    except BaseException:
        handle.close()
        raise
    return handle, file_info


def info(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> AudioInfo:
    """Read and check a file's header without reading its samples."""
    handle, file_info = _open(source, max_bytes=max_bytes, max_channels=None)
    handle.close()
    return file_info


def _read_block(handle: sf.SoundFile, frames: int, name: str, position: int) -> FloatArray:
    try:
        block = handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{name}: corrupt audio data near frame {position} ({exc})") from exc
    if not np.isfinite(block).all():
        bad = position + int(np.argmax(~np.isfinite(block).all(axis=1)))
        raise AudioError(f"{name}: non-finite sample (NaN or inf) at frame {bad}")
    samples: FloatArray = block
    return samples


def load(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_channels: int | None = None,
    sample_rate: int | None = None,
) -> Audio:
    """Read a whole file into an :class:`Audio`, validated.

    :param source: a path or a binary file object.
    :param max_bytes: refuse files larger than this.
    :param max_channels: refuse files with more channels than this (e.g. the layout's count).
    :param sample_rate: when given, resample to this rate.
    :raises AudioError: empty file, truncated header or data, non-audio bytes, NaN/inf samples,
        zero or absurd sample rate, too many channels, file too large.
    """
    name = _name(source)
    handle, file_info = _open(source, max_bytes=max_bytes, max_channels=max_channels)
    with handle:
        samples = _read_block(handle, file_info.frames, name, 0)
    if samples.shape[0] < file_info.frames:
        raise AudioError(
            f"{name}: truncated data, header promises {file_info.frames} frames "
            f"but only {samples.shape[0]} could be read"
        )
    audio = Audio(samples=samples, sample_rate=file_info.sample_rate)
    if sample_rate is not None and sample_rate != audio.sample_rate:
        audio = resample(audio, sample_rate)
    return audio


def stream(
    source: Source,
    *,
    block_frames: int = 65_536,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_channels: int | None = None,
) -> Iterator[Audio]:
    """Yield a file as consecutive :class:`Audio` blocks of at most *block_frames* frames.

    Memory stays bounded by one block whatever the file's length. Every block is validated as it
    is read; a truncated file raises :class:`AudioError` when the missing part is reached.
    """
    if block_frames <= 0:
        raise AudioError(f"block_frames: expected a positive number of frames, got {block_frames}")
    name = _name(source)
    handle, file_info = _open(source, max_bytes=max_bytes, max_channels=max_channels)
    with handle:
        position = 0
        while position < file_info.frames:
            block = _read_block(handle, block_frames, name, position)
            if block.shape[0] == 0:
                raise AudioError(
                    f"{name}: truncated data, header promises {file_info.frames} frames "
                    f"but the data ends at frame {position}"
                )
            position += block.shape[0]
            yield Audio(samples=block, sample_rate=file_info.sample_rate)


_SUBTYPES: Final = {
    "float": "FLOAT",
    "pcm16": "PCM_16",
    "pcm24": "PCM_24",
    "ulaw": "ULAW",
    "alaw": "ALAW",
}


def save(
    audio: Audio,
    target: str | os.PathLike[str] | IO[bytes],
    *,
    format: str | None = None,
    encoding: str = "pcm16",
) -> None:
    """Write *audio* as WAV or FLAC.

    :param target: a path (format from its suffix) or a binary file object (give *format*).
    :param format: ``"wav"`` or ``"flac"``; inferred from a path's suffix when omitted.
    :param encoding: ``"pcm16"``, ``"pcm24"``, ``"float"`` (WAV only), ``"ulaw"`` or
        ``"alaw"`` (G.711, WAV only).
    """
    if format is None:
        if not isinstance(target, str | os.PathLike):
            raise AudioError("save: give format='wav' or 'flac' when writing to a file object")
        format = Path(target).suffix.lstrip(".").lower()
    fmt = format.lower()
    if fmt not in {"wav", "flac"}:
        raise AudioError(f"save: format {format!r} is not supported, expected 'wav' or 'flac'")
    if encoding not in _SUBTYPES:
        raise AudioError(f"save: encoding {encoding!r} is not one of {sorted(_SUBTYPES)}")
    if fmt == "flac" and encoding not in {"pcm16", "pcm24"}:
        raise AudioError(f"save: FLAC stores pcm16 or pcm24, not {encoding!r}")
    samples = np.clip(audio.samples, -1.0, 1.0) if encoding != "float" else audio.samples
    try:
        sf.write(
            target, samples, audio.sample_rate, subtype=_SUBTYPES[encoding], format=fmt.upper()
        )
    except (sf.LibsndfileError, OSError, RuntimeError) as exc:
        raise AudioError(f"{_name(target)}: cannot write {fmt.upper()} audio ({exc})") from exc


def to_bytes(audio: Audio, *, format: str = "flac", encoding: str = "pcm16") -> bytes:
    """Encode *audio* into an in-memory file (see :func:`save`)."""
    buffer = io.BytesIO()
    save(audio, buffer, format=format, encoding=encoding)
    return buffer.getvalue()


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Resample with a polyphase anti-aliasing filter (:func:`scipy.signal.resample_poly`)."""
    _check_sample_rate(sample_rate, "sample_rate")
    if sample_rate == audio.sample_rate:
        return audio
    from scipy import signal  # imported here: scipy.signal costs ~100 MiB and ~1 s to import

    divisor = math.gcd(sample_rate, audio.sample_rate)
    up, down = sample_rate // divisor, audio.sample_rate // divisor
    out = signal.resample_poly(audio.samples, up, down, axis=0).astype(np.float32)
    return Audio(samples=out, sample_rate=sample_rate)
