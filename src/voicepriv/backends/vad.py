"""Built-in voice activity detectors: ``"energy"`` (core) and ``"silero"`` (extra ``onnx``).

``"energy"`` needs only numpy and scipy. It measures the log energy of the telephone band
(100-3800 Hz) in 25 ms frames every 10 ms, tracks the noise floor as a running minimum, and
turns the distance above the floor into a probability (a logistic curve), smoothed with a
median filter and extended by a short hang-over so that word endings are not cut.

``"silero"`` runs the Silero VAD ONNX model with onnxruntime only (no torch). The model file
is taken, in this order, from the ``model_path`` option, from the ``faster-whisper`` wheel
(``faster_whisper/assets/silero_vad*.onnx``) or from the ``silero-vad`` wheel
(``silero_vad/data/silero_vad.onnx``). Both model generations are supported: the one
``faster-whisper`` ships (inputs ``input``, ``h``, ``c``; 64 samples of context + 512 new
samples per 32 ms chunk) and the one ``silero-vad`` ships (inputs ``input``, ``state``, ``sr``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import scipy

from voicepriv.audio import Audio
from voicepriv.backends._options import check_options
from voicepriv.errors import AudioError, ConfigError, MissingExtraError
from voicepriv.interfaces import SpeechActivity
from voicepriv.plugins import hookimpl

__all__ = [
    "ENERGY",
    "SILERO",
    "EnergyVad",
    "SileroVad",
    "find_silero_model",
    "voicepriv_backend_names",
    "voicepriv_vad",
]

#: Name of the numpy/scipy detector.
ENERGY: Final = "energy"
#: Name of the Silero ONNX detector.
SILERO: Final = "silero"

FloatArray = npt.NDArray[np.float32]
_EPS: Final = 1e-10


def _mono(audio: Audio, who: str) -> FloatArray:
    if audio.channels != 1:
        raise AudioError(f"{who} VAD: expected mono audio, got {audio.channels} channels")
    return audio.samples[:, 0]


def _number(owner: str, name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(
            f"{owner} VAD option {name!r}: expected a number in [{low}, {high}], got {value!r}"
        )
    return float(value)


# --------------------------------------------------------------------------- energy


@attrs.frozen(kw_only=True)
class EnergyVad:
    """Band-energy detector with a tracked noise floor; numpy and scipy only.

    :param hop_s: frame step (the :class:`SpeechActivity` resolution).
    :param frame_s: analysis frame length.
    :param margin_db: level above the noise floor at which the probability is 0.5.
    :param slope_db: width of the logistic curve (dB per unit of log-odds).
    :param range_db: frames more than this below the loudest frames are never speech.
    :param floor_window_s: span of the running minimum that tracks the noise floor.
    :param hangover_s: speech probability is held this long after speech ends.
    """

    hop_s: float = 0.01
    frame_s: float = 0.025
    margin_db: float = 12.0
    slope_db: float = 2.5
    range_db: float = 45.0
    floor_window_s: float = 3.0
    hangover_s: float = 0.1

    @property
    def name(self) -> str:
        """``"energy"``."""
        return ENERGY

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EnergyVad:
        """Build from plugin options; unknown or out-of-range values raise ``ConfigError``."""
        known = {field.name for field in attrs.fields(cls)}
        check_options(f"{ENERGY} VAD", options, known)
        limits = {
            "hop_s": (0.001, 0.1),
            "frame_s": (0.005, 0.2),
            "margin_db": (0.0, 60.0),
            "slope_db": (0.1, 20.0),
            "range_db": (10.0, 120.0),
            "floor_window_s": (0.2, 60.0),
            "hangover_s": (0.0, 2.0),
        }
        values = {k: _number(ENERGY, k, v, *limits[k]) for k, v in options.items()}
        return cls(**values)

    def band_db(self, samples: FloatArray, sample_rate: int) -> FloatArray:
        """Log energy (dB re full scale) of the 100-3800 Hz band, one value per hop."""
        hop = max(1, round(self.hop_s * sample_rate))
        frame = max(hop, round(self.frame_s * sample_rate))
        count = max(1, math.ceil(samples.size / hop))
        padded = np.zeros((count - 1) * hop + frame, np.float32)
        padded[: samples.size] = samples
        frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop][:count]
        window = np.hanning(frame).astype(np.float32)
        spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
        band = (freqs >= 100.0) & (freqs <= 3800.0)
        power = spectrum[:, band].sum(axis=1) / (frame * float((window**2).sum()))
        level: FloatArray = (10.0 * np.log10(power + _EPS)).astype(np.float32)
        return level

    def detect(self, audio: Audio) -> SpeechActivity:
        """Speech probability every ``hop_s`` seconds of a mono *audio*."""
        samples = _mono(audio, ENERGY)
        if samples.size == 0:
            return SpeechActivity(hop_s=self.hop_s, probabilities=np.zeros(0, np.float32))
        level = self.band_db(samples, audio.sample_rate)
        smooth = scipy.ndimage.uniform_filter1d(level, size=5, mode="nearest")
        span = max(3, round(self.floor_window_s / self.hop_s))
        floor = scipy.ndimage.minimum_filter1d(smooth, size=span, mode="nearest")
        floor = scipy.ndimage.uniform_filter1d(floor, size=span, mode="nearest")
        floor = np.maximum(floor, float(np.percentile(smooth, 2.0)))
        logits = (smooth - floor - self.margin_db) / self.slope_db
        probability = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        loud = float(np.percentile(level, 99.0))
        probability[(smooth < loud - self.range_db) | (smooth < -80.0)] = 0.0
        probability = scipy.ndimage.median_filter(probability, size=5, mode="nearest")
        hang = round(self.hangover_s / self.hop_s)
        if hang > 0:
            # hold: output[i] = max(input[i - hang : i + 1])
            probability = scipy.ndimage.maximum_filter1d(
                probability, size=hang + 1, origin=hang // 2, mode="nearest"
            )
        return SpeechActivity(hop_s=self.hop_s, probabilities=probability.astype(np.float32))


# --------------------------------------------------------------------------- silero


def find_silero_model() -> Path:
    """Path of a Silero VAD ONNX model shipped in an installed wheel.

    :raises MissingExtraError: neither ``faster-whisper`` nor ``silero-vad`` is installed.
    """
    for package, folder in (("faster_whisper", "assets"), ("silero_vad", "data")):
        try:
            root = resources.files(package).joinpath(folder)
        except ModuleNotFoundError:
            continue
        models = sorted(
            Path(str(entry))
            for entry in root.iterdir()
            if entry.name.startswith("silero_vad") and entry.name.endswith(".onnx")
        )
        if models:
            return models[-1]
    raise MissingExtraError(
        "silero VAD: no Silero model found; install the 'onnx' extra "
        "(pip install 'voicepriv[onnx]'), which brings faster-whisper and its model"
    )


class SileroVad:
    """Silero VAD run with onnxruntime: one probability per 32 ms chunk at 16 kHz.

    :param model_path: the ONNX file; default :func:`find_silero_model`.
    :param threads: onnxruntime intra-op threads.
    """

    _RATE: Final = 16000
    _CHUNK: Final = 512
    _CONTEXT: Final = 64

    def __init__(self, *, model_path: str | Path | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingExtraError(
                "silero VAD needs onnxruntime: install the 'onnx' extra "
                "(pip install 'voicepriv[onnx]')"
            ) from exc
        path = Path(model_path) if model_path is not None else find_silero_model()
        if not path.is_file():
            raise ConfigError(f"silero VAD option 'model_path': {str(path)!r} is not a file")
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self._session.get_inputs()}
        self.model_path = path

    @property
    def name(self) -> str:
        """``"silero"``."""
        return SILERO

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SileroVad:
        """Build from plugin options ``model_path`` and ``threads``."""
        check_options(f"{SILERO} VAD", options, {"model_path", "threads"})
        threads = options.get("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"silero VAD option 'threads': expected an int >= 1, got {threads!r}")
        return cls(model_path=options.get("model_path"), threads=threads)

    def _run_hc(self, chunks: FloatArray) -> FloatArray:
        # faster-whisper's model: every chunk carries 64 samples of context; runs batched.
        context = np.zeros((chunks.shape[0], self._CONTEXT), np.float32)
        context[1:] = chunks[:-1, -self._CONTEXT :]
        batch = np.concatenate([context, chunks], axis=1)
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        outputs = []
        for start in range(0, batch.shape[0], 10000):
            out, h, c = self._session.run(
                None, {"input": batch[start : start + 10000], "h": h, "c": c}
            )
            outputs.append(np.asarray(out, np.float32).reshape(-1))
        return np.concatenate(outputs)

    def _run_state(self, chunks: FloatArray) -> FloatArray:
        # silero-vad's model: recurrent state carried chunk by chunk.
        state = np.zeros((2, 1, 128), np.float32)
        rate = np.array(self._RATE, np.int64)
        context = np.zeros((1, self._CONTEXT), np.float32)
        probabilities = np.empty(chunks.shape[0], np.float32)
        for index, chunk in enumerate(chunks):
            frame = np.concatenate([context, chunk[np.newaxis]], axis=1)
            out, state = self._session.run(None, {"input": frame, "state": state, "sr": rate})
            probabilities[index] = float(np.asarray(out).reshape(-1)[0])
            context = frame[:, -self._CONTEXT :]
        return probabilities

    def detect(self, audio: Audio) -> SpeechActivity:
        """Speech probability every 32 ms of a mono *audio* (resampled to 16 kHz inside)."""
        _mono(audio, SILERO)
        if audio.sample_rate != self._RATE:
            audio = audio.resampled(self._RATE)
        samples = audio.samples[:, 0]
        hop_s = self._CHUNK / self._RATE
        if samples.size == 0:
            return SpeechActivity(hop_s=hop_s, probabilities=np.zeros(0, np.float32))
        count = math.ceil(samples.size / self._CHUNK)
        padded = np.zeros(count * self._CHUNK, np.float32)
        padded[: samples.size] = samples
        chunks = padded.reshape(count, self._CHUNK)
        if {"h", "c"} <= self._inputs:
            probabilities = self._run_hc(chunks)
        else:
            probabilities = self._run_state(chunks)
        return SpeechActivity(hop_s=hop_s, probabilities=np.clip(probabilities, 0.0, 1.0))


# --------------------------------------------------------------------------- hooks


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["energy", "silero"]`` for kind ``"vad"``, nothing otherwise."""
    return [ENERGY, SILERO] if kind == "vad" else []


@hookimpl
def voicepriv_vad(name: str, options: Mapping[str, Any]) -> EnergyVad | SileroVad | None:
    """The ``"energy"`` or ``"silero"`` detector built with *options*, else ``None``."""
    if name == ENERGY:
        return EnergyVad.from_options(options)
    if name == SILERO:
        return SileroVad.from_options(options)
    return None
