"""Checks every mono separator's report must pass (shared by the separator tests)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voicepriv.audio import Audio
from voicepriv.interfaces import IsolationRequest, IsolationResult, Separator, Voiceprint
from voicepriv.model import ChannelLayout

#: Reasons a mono separator may give for a removed span.
REMOVED_LABELS = frozenset({"customer", "overlap", "uncertain", "silence", "short"})


def isolate_mono(
    separator: Separator, audio: Audio, voiceprint: Voiceprint | None
) -> IsolationResult:
    """Run *separator* on a mono call with *voiceprint*."""
    return separator.isolate(
        audio, IsolationRequest(layout=ChannelLayout.mono(), voiceprint=voiceprint)
    )


def check_report(result: IsolationResult, audio: Audio) -> None:
    """Kept and removed spans tile the call; removed spans are exact silence; nothing louder."""
    spans = sorted(result.kept + result.removed, key=lambda s: s.start)
    assert spans[0].start == 0.0
    assert spans[-1].end == pytest.approx(audio.duration, abs=0.011)
    for left, right in itertools.pairwise(spans):
        assert right.start == pytest.approx(left.end)
    out = result.audio.samples[:, 0]
    assert out.shape[0] == audio.frames
    for segment in result.removed:
        start = round(segment.start * audio.sample_rate)
        end = round(segment.end * audio.sample_rate)
        assert not out[start:end].any(), segment
    assert np.all(np.abs(out) <= np.abs(audio.samples[:, 0]) + 1e-7)
    assert {s.label for s in result.kept} <= {"agent"}
    assert {s.label for s in result.removed} <= REMOVED_LABELS
    assert 0.0 <= result.residual_leakage <= 1.0
    assert 0.0 <= result.confidence <= 1.0
