"""Frame-grid helpers shared by the mono separators (10 ms frames): runs, bands, output.

Private: the ``"speaker"`` and ``"segmentation"`` separators decide on the same 10 ms grid,
widen removed speech by guard bands that stop at long pauses, and silence what they do not
keep the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import scipy

from voicepriv.audio import Audio
from voicepriv.model import Segment

#: The decision grid's frame length (seconds).
FRAME_S: Final = 0.01

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def label_runs(labels: npt.NDArray[Any]) -> list[tuple[int, int, Any]]:
    """(start, end, value) of every run of equal values."""
    if labels.size == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    return [(int(s), int(e), labels[s]) for s, e in zip(starts, ends, strict=True)]


def drop_short(mask: BoolArray, frames: int) -> BoolArray:
    """*mask* with True runs shorter than *frames* cleared."""
    if frames <= 1:
        return mask
    out = mask.copy()
    for start, end, value in label_runs(mask):
        if value and end - start < frames:
            out[start:end] = False
    return out


def speech_runs(speech: BoolArray, pause_s: float) -> npt.NDArray[np.int64] | None:
    """Run number of every frame: speech joined across pauses shorter than *pause_s*.

    A pause of at least *pause_s* separates two runs; silent frames inside a longer pause
    get run number 0. ``None`` when *pause_s* is 0 (one run everywhere).
    """
    if pause_s <= 0:
        return None
    pause = max(1, round(pause_s / FRAME_S))
    joined = (
        scipy.ndimage.binary_closing(np.pad(speech, pause), structure=np.ones(pause, bool))[
            pause:-pause
        ]
        | speech
    )
    labels, _ = scipy.ndimage.label(joined)
    result: npt.NDArray[np.int64] = labels.astype(np.int64)
    return result


def dilate_within(mask: BoolArray, frames: int, runs: npt.NDArray[np.int64] | None) -> BoolArray:
    """*mask* grown by *frames* each way, but never across a pause between two speech runs.

    With *runs* (from :func:`speech_runs`), a frame is reached only from a masked frame of
    the same run; run labels grow with time, so the smallest and the largest run number of
    the masked frames within reach tell whether the frame's own run is among them. Frames in
    no run (long pauses) are reached from anywhere within *frames*.
    """
    if frames <= 0:
        return mask.copy()
    size = 2 * frames + 1
    grown: BoolArray = scipy.ndimage.maximum_filter1d(mask.astype(np.uint8), size=size).astype(bool)
    if runs is None:
        return grown
    big = np.iinfo(np.int64).max
    upper = scipy.ndimage.maximum_filter1d(
        np.where(mask, runs, -1), size=size, mode="constant", cval=-1
    )
    lower = scipy.ndimage.minimum_filter1d(
        np.where(mask, runs, big), size=size, mode="constant", cval=big
    )
    same: BoolArray = (upper == runs) | (lower == runs) | (runs == 0)
    result: BoolArray = grown & same
    return result


def spread(mask: BoolArray, before: int, after: int) -> BoolArray:
    """*mask* grown by *before* frames back in time and *after* frames forward: frame ``t``
    is set when a set frame lies in ``[t - after, t + before]``."""
    counts = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    t = np.arange(mask.size)
    low = np.clip(t - after, 0, mask.size)
    high = np.clip(t + before + 1, 0, mask.size)
    grown: BoolArray = counts[high] - counts[low] > 0
    return grown


def centroid(vectors: FloatArray) -> FloatArray:
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    result: FloatArray = mean / norm if norm > 0 else mean
    return result


def silence_outside(audio: Audio, keep: BoolArray) -> Audio:
    """*audio* (mono) with every frame not in *keep* silenced; 10 ms ramps inside kept spans.

    The ramps lie inside the kept spans, so no removed sample leaks through them.
    """
    rate = audio.sample_rate
    hop = round(FRAME_S * rate)
    ramp = max(1, hop)
    gain = np.repeat(keep.astype(np.float32), hop)[: audio.frames]
    if gain.size < audio.frames:
        gain = np.concatenate([gain, np.zeros(audio.frames - gain.size, np.float32)])
    eroded = scipy.ndimage.minimum_filter1d(gain, size=2 * ramp + 1, mode="constant", cval=0.0)
    gain = scipy.ndimage.uniform_filter1d(eroded, size=2 * ramp + 1, mode="constant") * gain
    samples = audio.samples[:, 0] * gain
    return Audio(samples=samples.astype(np.float32), sample_rate=rate)


def labelled_segments(
    labels: npt.NDArray[Any], duration: float, kept_label: str | Collection[str] = "agent"
) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """(kept, removed) segments of a frame label array: runs labelled *kept_label* (one
    label or several) are kept."""
    keep = {kept_label} if isinstance(kept_label, str) else set(kept_label)
    kept: list[Segment] = []
    removed: list[Segment] = []
    for start, end, label in label_runs(labels):
        segment = Segment(start=start * FRAME_S, end=min(end * FRAME_S, duration), label=str(label))
        (kept if label in keep else removed).append(segment)
    return tuple(kept), tuple(removed)
