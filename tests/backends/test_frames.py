"""Tests of the frame-grid helpers the mono separators share."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from voicepriv.audio import Audio
from voicepriv.backends._frames import (
    FRAME_S,
    dilate_within,
    drop_short,
    label_runs,
    labelled_segments,
    silence_outside,
    speech_runs,
    spread,
)


@settings(max_examples=50)
@given(
    speech=st.lists(st.booleans(), min_size=1, max_size=200),
    marks=st.lists(st.integers(0, 199), max_size=5),
    frames=st.integers(0, 60),
    pause_s=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
)
def test_guard_band_never_crosses_a_long_pause(
    speech: list[bool], marks: list[int], frames: int, pause_s: float
) -> None:
    voiced = np.array(speech)
    mask = np.zeros(voiced.size, bool)
    mask[[m for m in marks if m < voiced.size]] = True
    mask &= voiced
    runs = speech_runs(voiced, pause_s)
    plain = dilate_within(mask, frames, None)
    grown = dilate_within(mask, frames, runs)
    assert (grown <= plain).all() and (grown >= mask).all()
    if runs is None:
        assert (grown == plain).all()
        return
    # a reached speech frame has a masked frame of its own run within reach, and every
    # frame of a run with a masked frame within reach is reached
    for i in np.flatnonzero(voiced):
        near = mask[max(0, i - frames) : i + frames + 1] & (
            runs[max(0, i - frames) : i + frames + 1] == runs[i]
        )
        assert grown[i] == near.any()
    # runs: speech split only at pauses of at least pause_s (10 ms frames)
    assert (runs[voiced] > 0).all()
    for left, right in itertools.pairwise(np.flatnonzero(voiced)):
        gap = right - left - 1
        assert (runs[left] == runs[right]) == (gap < round(pause_s / FRAME_S))


@given(st.lists(st.sampled_from(["agent", "customer", "silence"]), max_size=80))
def test_label_runs_and_segments_tile_the_labels(labels: list[str]) -> None:
    array = np.array(labels, dtype=object)
    runs = label_runs(array)
    assert sum(end - start for start, end, _ in runs) == len(labels)
    for (_, end, value), (start, _, following) in itertools.pairwise(runs):
        assert end == start and value != following
    kept, removed = labelled_segments(array, len(labels) * FRAME_S)
    assert {s.label for s in kept} <= {"agent"}
    assert "agent" not in {s.label for s in removed}
    total = sum(s.end - s.start for s in (*kept, *removed))
    assert abs(total - len(labels) * FRAME_S) < 1e-6


@given(st.lists(st.booleans(), max_size=100), st.integers(0, 20))
def test_drop_short_only_clears_runs_shorter_than_the_minimum(mask: list[bool], n: int) -> None:
    array = np.array(mask, bool)
    out = drop_short(array, n)
    assert (out <= array).all()
    for start, end, value in label_runs(out):
        if value:
            assert end - start >= n or n <= 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.sampled_from([8000, 16000]))
def test_silence_outside_keeps_nothing_of_a_removed_frame(mask: list[bool], rate: int) -> None:
    keep = np.array(mask, bool)
    hop = round(FRAME_S * rate)
    audio = Audio(samples=np.ones(keep.size * hop, np.float32), sample_rate=rate)
    out = silence_outside(audio, keep).samples[:, 0]
    removed = np.repeat(~keep, hop)
    assert (out[removed] == 0).all()
    assert (np.abs(out) <= 1.0 + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=120),
    before=st.integers(0, 30),
    after=st.integers(0, 30),
)
def test_bands_reach_before_and_after_every_flag(mask: list[bool], before: int, after: int) -> None:
    flags = np.array(mask)
    grown = spread(flags, before, after)
    expected = np.zeros(flags.size, bool)
    for at in np.flatnonzero(flags):
        expected[max(0, at - before) : at + after + 1] = True
    assert np.array_equal(grown, expected)
