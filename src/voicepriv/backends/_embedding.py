"""What every speaker embedder backend shares: input preparation, windows, options, norms."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.errors import AudioError, ConfigError

__all__ = ["bool_option", "check_window", "prepare_mono", "unit_rows", "window_starts"]

FloatArray = npt.NDArray[np.float32]
#: The rate every built-in embedder works at.
RATE: Final = 16000
_EPS: Final = 1e-10


def prepare_mono(audio: Audio, who: str, telephone: bool) -> FloatArray:
    """Mono samples at 16 kHz, band-limited to the telephone band when asked."""
    if audio.channels != 1:
        raise AudioError(f"{who} embedder: expected mono audio, got {audio.channels} channels")
    if telephone and audio.sample_rate > 8000:
        audio = audio.resampled(8000)
    if audio.sample_rate != RATE:
        audio = audio.resampled(RATE)
    return audio.samples[:, 0]


def unit_rows(matrix: npt.NDArray[Any]) -> FloatArray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    array = np.asarray(matrix, np.float64)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    result: FloatArray = (array / np.maximum(norms, _EPS)).astype(np.float32)
    return result


def check_window(who: str, window_s: float, hop_s: float) -> None:
    """Refuse window lengths and steps that are not positive and finite (a ConfigError)."""
    if not (window_s > 0 and hop_s > 0 and math.isfinite(window_s) and math.isfinite(hop_s)):
        raise ConfigError(
            f"{who} embedder: window_s and hop_s must be positive, got {window_s!r}, {hop_s!r}"
        )


def window_starts(count: int, window: int, hop: int) -> npt.NDArray[np.int64]:
    """Start indices of windows of *window* items every *hop* over *count* items (>= 1)."""
    if count <= window:
        return np.zeros(1, np.int64)
    return np.arange(0, count - window + 1, hop, dtype=np.int64)


def bool_option(who: str, options: Mapping[str, Any], name: str, default: bool) -> bool:
    """Option *name* of *options* as a bool (default *default*); anything else is refused."""
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{who} embedder option {name!r}: expected true or false, got {value!r}")
    return value
