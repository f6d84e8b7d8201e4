"""Single-speaker utterances grouped by speaker, from common corpus layouts.

:func:`scan` understands:

* **LibriSpeech** – ``<root>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` (and the flat
  ``<root>/<speaker>/<speaker>-...flac`` of ``../shared/data/librispeech-test-other``);
* **VCTK** – ``<root>/wav48/<p225>/p225_001.wav`` or
  ``wav48_silence_trimmed/p225/p225_001_mic1.flac``;
* **Common Voice** – ``<root>/validated.tsv`` (or ``train.tsv`` ...) with ``client_id`` and
  ``path`` columns, clips under ``<root>/clips/``;
* **folders** – any ``<root>/<speaker>/**/*.wav|flac`` (``layout="folders"``);
* the voicepriv shared data folder: a root holding ``librispeech-test-other/`` uses it.

In the auto layouts a file belongs to the nearest ancestor folder whose name starts its file
name (``3005/…/3005-163389-0005.flac``, ``p225/p225_001.wav``); other files are ignored, so
multi-speaker recordings next to the corpus (e.g. meeting excerpts) are never mistaken for a
speaker.
"""

from __future__ import annotations

import csv
import enum
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from voicepriv.audio import Audio, load
from voicepriv.errors import BenchError

__all__ = ["AUDIO_SUFFIXES", "CACHE_UTTERANCES", "Layout", "SpeakerCorpus", "scan"]

#: File suffixes read as audio.
AUDIO_SUFFIXES: Final = frozenset({".flac", ".wav", ".mp3", ".ogg", ".opus"})
#: How many loaded utterances a :class:`SpeakerCorpus` keeps in memory.
CACHE_UTTERANCES: Final = 256
_SHARED_LIBRISPEECH: Final = "librispeech-test-other"


class Layout(enum.Enum):
    """How a corpus folder is organised."""

    AUTO = "auto"
    LIBRISPEECH = "librispeech"
    VCTK = "vctk"
    COMMONVOICE = "commonvoice"
    FOLDERS = "folders"


@attrs.frozen(kw_only=True, eq=False)
class SpeakerCorpus:
    """Utterance files per speaker, with the corpus's licence notes.

    :param root: the folder scanned.
    :param layout: the layout that was recognised.
    :param files: utterance paths per speaker id, each sorted.
    :param licenses: first line of every ``LICENSE*`` / ``README*`` file found at the root or
        one level below, keyed by file name (for dataset cards).
    """

    root: Path
    layout: Layout
    files: Mapping[str, tuple[Path, ...]]
    licenses: Mapping[str, str] = attrs.field(factory=dict)
    _cache: OrderedDict[tuple[Path, int], Audio] = attrs.field(
        factory=OrderedDict, init=False, repr=False
    )

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker ids, sorted."""
        return tuple(sorted(self.files))

    def utterances(self, speaker: str) -> tuple[Path, ...]:
        """Files of *speaker*."""
        try:
            return self.files[speaker]
        except KeyError:
            raise BenchError(f"{self.root}: no speaker {speaker!r}") from None

    def load(
        self, speaker: str, sample_rate: int, indices: Sequence[int] | None = None
    ) -> list[Audio]:
        """Utterances of *speaker* (all, or those at *indices*) as mono audio at *sample_rate*.

        The last :data:`CACHE_UTTERANCES` utterances loaded are kept in memory.
        """
        files = self.utterances(speaker)
        chosen = range(len(files)) if indices is None else indices
        out = []
        for index in chosen:
            key = (files[index], sample_rate)
            audio = self._cache.get(key)
            if audio is None:
                audio = load(files[index], sample_rate=sample_rate)
                if audio.channels > 1:
                    audio = Audio(samples=audio.mono(), sample_rate=audio.sample_rate)
                self._cache[key] = audio
                while len(self._cache) > CACHE_UTTERANCES:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            out.append(audio)
        return out


def _licenses(root: Path) -> dict[str, str]:
    notes: dict[str, str] = {}
    for pattern in ("LICENSE*", "*/LICENSE*", "README*"):
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                try:
                    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                except OSError:
                    continue
                notes[str(path.relative_to(root))] = lines[0].strip() if lines else ""
    return notes


def _nearest_speaker(path: Path, root: Path) -> str | None:
    stem = path.stem
    for parent in path.relative_to(root).parents:
        if parent == Path():
            break
        name = parent.name
        if stem.startswith(name) and len(stem) > len(name) and not stem[len(name)].isalnum():
            return name
    return None


def _common_voice(root: Path) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for name in ("validated.tsv", "train.tsv", "dev.tsv", "test.tsv"):
        table = root / name
        if not table.is_file():
            continue
        with table.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                client, clip = row.get("client_id"), row.get("path")
                if not client or not clip:
                    raise BenchError(f"{table}: expected client_id and path columns")
                path = root / "clips" / clip
                if path.is_file():
                    files.setdefault(client, []).append(path)
        break
    return files


def scan(
    root: str | Path, layout: Layout | str = Layout.AUTO, *, min_utterances: int = 1
) -> SpeakerCorpus:
    """Find the utterances of every speaker under *root*.

    :param layout: ``"auto"`` (default) or a :class:`Layout` value to force one.
    :param min_utterances: speakers with fewer files are left out.
    :raises BenchError: the folder does not exist or holds no speaker.
    """
    base = Path(root)
    kind = layout if isinstance(layout, Layout) else Layout(layout)
    if not base.is_dir():
        raise BenchError(f"{base}: not a folder of speakers")
    if kind is Layout.AUTO and (base / _SHARED_LIBRISPEECH).is_dir():
        inner = scan(base / _SHARED_LIBRISPEECH, Layout.LIBRISPEECH, min_utterances=min_utterances)
        return attrs.evolve(inner, root=base)
    files: dict[str, list[Path]] = {}
    if kind in {Layout.AUTO, Layout.COMMONVOICE}:
        files = _common_voice(base)
        if files:
            kind = Layout.COMMONVOICE
        elif kind is Layout.COMMONVOICE:
            raise BenchError(f"{base}: no Common Voice table (validated.tsv) with clips found")
    if not files:
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
                continue
            if kind is Layout.FOLDERS:
                relative = path.relative_to(base)
                speaker = relative.parts[0] if len(relative.parts) > 1 else None
            else:
                speaker = _nearest_speaker(path, base)
            if speaker is not None:
                files.setdefault(speaker, []).append(path)
        if kind is Layout.AUTO:
            kind = (
                Layout.VCTK
                if any(s.startswith("p") and s[1:].isdigit() for s in files)
                else Layout.LIBRISPEECH
            )
    kept = {s: tuple(sorted(p)) for s, p in files.items() if len(p) >= min_utterances}
    if not kept:
        raise BenchError(f"{base}: no speaker folders with utterances found (layout {kind.value})")
    return SpeakerCorpus(root=base, layout=kind, files=kept, licenses=_licenses(base))
