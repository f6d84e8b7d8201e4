"""Speaker annotations: RTTM text, label timelines and overlap statistics.

An annotation is a sequence of :class:`~voicepriv.model.Segment` whose labels are speakers
(``"agent"``, ``"customer"`` for the call mixer). RTTM is the NIST Rich Transcription format
read by pyannote, dscore and md-eval::

    SPEAKER <uri> 1 <start> <duration> <NA> <NA> <label> <NA> <NA>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voicepriv.errors import BenchError
from voicepriv.model import Segment

__all__ = [
    "activity",
    "from_activity",
    "labels",
    "merge",
    "overlap_ratio",
    "overlap_seconds",
    "read_rttm",
    "speech_seconds",
    "to_rttm",
]

BoolArray = npt.NDArray[np.bool_]


def labels(segments: Iterable[Segment]) -> list[str]:
    """The distinct labels of *segments*, sorted."""
    return sorted({segment.label for segment in segments})


def merge(segments: Iterable[Segment], *, gap: float = 0.0) -> tuple[Segment, ...]:
    """Per label, join segments that overlap or are at most *gap* seconds apart; sorted."""
    by_label: dict[str, list[Segment]] = {}
    for segment in sorted(segments):
        by_label.setdefault(segment.label, []).append(segment)
    out: list[Segment] = []
    for label, items in by_label.items():
        start, end = items[0].start, items[0].end
        for item in items[1:]:
            if item.start <= end + gap:
                end = max(end, item.end)
            else:
                out.append(Segment(start=start, end=end, label=label))
                start, end = item.start, item.end
        out.append(Segment(start=start, end=end, label=label))
    return tuple(sorted(out))


def activity(segments: Iterable[Segment], label: str, *, hop_s: float, frames: int) -> BoolArray:
    """Frame mask of *label*: frame ``i`` covers ``[i*hop_s, (i+1)*hop_s)``; a frame is active
    when its centre lies inside a segment."""
    mask = np.zeros(frames, dtype=bool)
    for segment in segments:
        if segment.label != label:
            continue
        first = max(0, int(np.ceil(segment.start / hop_s - 0.5)))
        last = min(frames, int(np.ceil(segment.end / hop_s - 0.5)))
        mask[first:last] = True
    return mask


def from_activity(mask: npt.ArrayLike, label: str, *, hop_s: float) -> tuple[Segment, ...]:
    """Segments of the runs of ``True`` in a frame *mask* (inverse of :func:`activity`)."""
    values = np.asarray(mask, dtype=bool)
    padded = np.concatenate([[False], values, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return tuple(
        Segment(start=round(s * hop_s, 6), end=round(e * hop_s, 6), label=label)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    )


def _boundaries(
    segments: Sequence[Segment],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Elementary intervals and how many distinct labels are active in each."""
    merged = merge(segments)
    if not merged:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    times = np.unique([t for s in merged for t in (s.start, s.end)])
    counts = np.zeros(max(len(times) - 1, 0), dtype=np.int64)
    for segment in merged:
        first = int(np.searchsorted(times, segment.start))
        last = int(np.searchsorted(times, segment.end))
        counts[first:last] += 1
    return np.diff(times), counts


def speech_seconds(segments: Sequence[Segment]) -> float:
    """Seconds in which at least one label is active (the union)."""
    durations, counts = _boundaries(segments)
    return float(np.sum(durations[counts >= 1]))


def overlap_seconds(segments: Sequence[Segment]) -> float:
    """Seconds in which two or more different labels are active at once."""
    durations, counts = _boundaries(segments)
    return float(np.sum(durations[counts >= 2]))


def overlap_ratio(segments: Sequence[Segment]) -> float:
    """Overlapped speech over total speech (0 when there is no speech)."""
    speech = speech_seconds(segments)
    return overlap_seconds(segments) / speech if speech > 0 else 0.0


def to_rttm(segments: Iterable[Segment], uri: str) -> str:
    """RTTM lines (sorted) for *segments* of recording *uri*."""
    if not uri or any(c.isspace() for c in uri):
        raise BenchError(f"to_rttm: uri must be non-empty without whitespace, got {uri!r}")
    lines = []
    for segment in sorted(segments):
        if any(c.isspace() for c in segment.label) or not segment.label:
            raise BenchError(f"to_rttm: label {segment.label!r} is empty or has whitespace")
        lines.append(
            f"SPEAKER {uri} 1 {segment.start:.3f} {segment.duration:.3f} "
            f"<NA> <NA> {segment.label} <NA> <NA>"
        )
    return "".join(line + "\n" for line in lines)


def read_rttm(source: str | Path) -> Mapping[str, tuple[Segment, ...]]:
    """Parse an RTTM file (or RTTM text when *source* is a ``str`` holding newlines).

    :return: segments per recording uri, sorted. Only ``SPEAKER`` lines are read.
    :raises BenchError: a malformed line, named by its number.
    """
    if isinstance(source, Path) or "\n" not in source:
        name = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchError(f"{name}: cannot read RTTM ({exc})") from exc
    else:
        name, text = "<rttm>", source
    out: dict[str, list[Segment]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith(";") or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise BenchError(f"{name} line {number}: expected 10 RTTM fields, got {len(fields)}")
        try:
            start, duration = float(fields[3]), float(fields[4])
            segment = Segment(start=start, end=round(start + duration, 6), label=fields[7])
        except (ValueError, Exception) as exc:
            raise BenchError(f"{name} line {number}: bad time or label ({exc})") from exc
        out.setdefault(fields[1], []).append(segment)
    return {uri: tuple(sorted(items)) for uri, items in out.items()}
