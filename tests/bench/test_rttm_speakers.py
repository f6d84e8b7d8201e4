"""RTTM helpers and speaker corpus layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.bench import rttm
from voicepriv.bench.speakers import Layout, scan
from voicepriv.errors import BenchError
from voicepriv.model import Segment


def seg(start: float, end: float, label: str) -> Segment:
    return Segment(start=start, end=end, label=label)


def test_overlap_and_speech_seconds_hand_computed() -> None:
    segments = [seg(0, 4, "agent"), seg(3, 6, "customer"), seg(5.5, 7, "agent")]
    assert rttm.speech_seconds(segments) == pytest.approx(7.0)
    assert rttm.overlap_seconds(segments) == pytest.approx(1.5)
    assert rttm.overlap_ratio(segments) == pytest.approx(1.5 / 7.0)
    assert rttm.overlap_ratio([]) == 0.0


def test_merge_joins_same_label_only() -> None:
    merged = rttm.merge(
        [seg(0, 1, "a"), seg(0.5, 2, "a"), seg(2.05, 3, "a"), seg(1, 2, "b")], gap=0.1
    )
    assert merged == (seg(0, 3, "a"), seg(1, 2, "b"))


@given(st.lists(st.booleans(), max_size=200))
def test_activity_round_trips_through_segments(mask: list[bool]) -> None:
    segments = rttm.from_activity(mask, "x", hop_s=0.01)
    back = rttm.activity(segments, "x", hop_s=0.01, frames=len(mask))
    assert back.tolist() == mask


def test_rttm_text_round_trip_and_errors(tmp_path: Path) -> None:
    segments = (seg(0.5, 1.25, "agent"), seg(1.0, 3.0, "customer"))
    text = rttm.to_rttm(segments, "call-1")
    assert text.splitlines()[0] == "SPEAKER call-1 1 0.500 0.750 <NA> <NA> agent <NA> <NA>"
    path = tmp_path / "x.rttm"
    path.write_text(text + "SPEAKER other 1 0 1 <NA> <NA> b <NA> <NA>\n")
    parsed = rttm.read_rttm(path)
    assert parsed["call-1"] == segments and set(parsed) == {"call-1", "other"}
    path.write_text("SPEAKER x 1 zero 1 <NA> <NA> a <NA> <NA>\n")
    with pytest.raises(BenchError, match="line 1"):
        rttm.read_rttm(path)
    with pytest.raises(BenchError, match="uri"):
        rttm.to_rttm(segments, "has space")


def _tone(path: Path, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * 8000)) / 8000
    sf.write(path, 0.1 * np.sin(2 * np.pi * 200 * t), 8000)


def test_scan_librispeech_vctk_common_voice_and_folders(tmp_path: Path) -> None:
    libri = tmp_path / "libri"
    for speaker in ("19", "26"):
        for n in range(3):
            _tone(libri / speaker / "198" / f"{speaker}-198-000{n}.flac")
    _tone(libri / "meetings" / "ES2004a.flac")  # not a speaker's file: ignored
    corpus = scan(libri)
    assert corpus.layout is Layout.LIBRISPEECH and corpus.speakers == ("19", "26")
    assert len(corpus.utterances("19")) == 3
    assert corpus.load("19", 16000)[0].sample_rate == 16000

    vctk = tmp_path / "vctk"
    for speaker in ("p225", "p226"):
        _tone(vctk / "wav48_silence_trimmed" / speaker / f"{speaker}_001_mic1.flac")
    assert scan(vctk).layout is Layout.VCTK and scan(vctk).speakers == ("p225", "p226")

    cv = tmp_path / "cv"
    for clip in ("a.wav", "b.wav", "c.wav"):
        _tone(cv / "clips" / clip)
    (cv / "validated.tsv").write_text("client_id\tpath\nAAA\ta.wav\nAAA\tb.wav\nBBB\tc.wav\n")
    corpus = scan(cv)
    assert corpus.layout is Layout.COMMONVOICE and len(corpus.utterances("AAA")) == 2

    folders = tmp_path / "plain"
    _tone(folders / "alice" / "one.wav")
    _tone(folders / "bob" / "x" / "two.wav")
    assert scan(folders, "folders").speakers == ("alice", "bob")
    with pytest.raises(BenchError, match="no speaker"):
        scan(folders)
    with pytest.raises(BenchError, match="not a folder"):
        scan(tmp_path / "missing")
    with pytest.raises(BenchError, match="no speaker"):
        corpus.utterances("nobody")


def test_scan_shared_data(shared_data: Path) -> None:
    corpus = scan(shared_data)
    assert len(corpus.speakers) == 10
    assert all(len(corpus.utterances(s)) == 10 for s in corpus.speakers)
    assert any("LibriSpeech" in note for note in corpus.licenses.values())
