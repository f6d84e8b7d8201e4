"""Bench datasets: generated call sets, LibriMix-style folders and RTTM-annotated recordings.

Every reader returns a :class:`Dataset`: a name, a list of entries that load lazily into
:class:`Item` values (one evaluation case: the audio a separator receives, its channel layout,
the reference segments and, when known, the clean agent and customer sources), and a
:class:`DatasetCard` printed with every run.

* :func:`write_calls` / :func:`read_generated` – a folder made by the call mixer, described by
  ``manifest.json`` (format ``"voicepriv-calls"``); every call gives a mono and a stereo item.
* :func:`read_librimix` – ``mix_both|mix_clean|mix_single/``, ``s1/``, ``s2/`` with the same
  file names; ``s1`` is the agent by default. Reference segments come from the sources'
  speech activity.
* :func:`read_rttm_dir` – audio files with RTTM annotations (uri = file stem); the speaker with
  the most speech is the agent unless named, every other speaker is the customer. No clean
  sources: signal metrics are skipped, isolation metrics use the recording as proxy.
* :func:`open_dataset` – any of the above, recognised from the folder's content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from voicepriv.audio import Audio, info, load, save
from voicepriv.bench import rttm
from voicepriv.bench.mixer import (
    AGENT,
    CUSTOMER,
    HOP_S,
    Call,
    CallConfig,
    make_call_at,
    speech_activity,
)
from voicepriv.bench.speakers import SpeakerCorpus
from voicepriv.errors import AudioError, BenchError
from voicepriv.model import ChannelLayout, LayoutKind, Segment

__all__ = [
    "MANIFEST",
    "Dataset",
    "DatasetCard",
    "Entry",
    "Item",
    "generate",
    "items_of_call",
    "open_dataset",
    "read_generated",
    "read_librimix",
    "read_rttm_dir",
    "write_calls",
]

#: File name of a generated set's manifest.
MANIFEST: Final = "manifest.json"
_FORMAT: Final = "voicepriv-calls"
_AUDIO: Final = (".flac", ".wav")


@attrs.frozen(kw_only=True, eq=False)
class Item:
    """One evaluation case.

    :param item_id: unique within the dataset (``<call>/<layout>`` for generated calls).
    :param call_id: the conversation it comes from (bootstrap confidence intervals resample
        calls, so a call's mono and stereo items stay together).
    :param audio: what the separator receives: mono, or stereo with the agent on channel 0.
    :param layout: the channel layout of *audio*.
    :param segments: reference segments labelled ``"agent"`` / ``"customer"``.
    :param agent: the clean agent source (same rate and length as *audio*), or ``None``.
    :param customer: the clean customer source, or ``None``.
    :param enrollment: held-out agent speech for a voiceprint (may be empty).
    """

    item_id: str
    call_id: str
    audio: Audio
    layout: ChannelLayout
    segments: tuple[Segment, ...]
    agent: Audio | None = None
    customer: Audio | None = None
    enrollment: tuple[Audio, ...] = ()
    agent_speaker: str = ""
    customer_speaker: str = ""

    @property
    def overlap_ratio(self) -> float:
        """Overlapped speech over total speech in the reference."""
        return rttm.overlap_ratio(self.segments)

    @property
    def mixture(self) -> Audio:
        """The unprocessed input to score SI-SDR improvement from: the mono mix, or the agent
        channel of a stereo call."""
        return self.audio if self.audio.channels == 1 else self.audio.channel(0)


def items_of_call(
    call: Call, layouts: Sequence[LayoutKind | str] = ("mono", "stereo")
) -> list[Item]:
    """The evaluation items of a generated call: one per requested layout."""
    out = []
    for layout in layouts:
        kind = LayoutKind(layout) if isinstance(layout, str) else layout
        stereo = kind is LayoutKind.STEREO
        out.append(
            Item(
                item_id=f"{call.call_id}/{kind.value}",
                call_id=call.call_id,
                audio=call.stereo if stereo else call.mix,
                layout=call.stereo_layout if stereo else call.mono_layout,
                segments=call.segments,
                agent=call.agent,
                customer=call.customer,
                enrollment=call.enrollment,
                agent_speaker=call.agent_speaker,
                customer_speaker=call.customer_speaker,
            )
        )
    return out


@attrs.frozen(kw_only=True)
class Entry:
    """A lazily loaded recording: its id, what the card needs, and a loader of its items."""

    entry_id: str
    duration_s: float
    sample_rate: int
    overlap_ratio: float | None
    speakers: tuple[str, ...]
    loader: Callable[[], list[Item]] = attrs.field(eq=False, repr=False)

    def items(self) -> list[Item]:
        """Load the entry's items."""
        return self.loader()


@attrs.frozen(kw_only=True)
class DatasetCard:
    """What a run was measured on: printed with every run and stored in the results."""

    name: str
    kind: str
    recordings: int
    speakers: int
    hours: float
    overlap_pct: float | None
    sample_rates: tuple[int, ...]
    layouts: tuple[str, ...]
    licenses: tuple[str, ...]

    def markdown(self) -> str:
        """The card as a small markdown table."""
        overlap = "n/a" if self.overlap_pct is None else f"{self.overlap_pct:.1f} %"
        rows = [
            ("dataset", f"{self.name} ({self.kind})"),
            ("recordings", str(self.recordings)),
            ("speakers", str(self.speakers)),
            ("hours", f"{self.hours:.3f}"),
            ("overlap of speech", overlap),
            ("sample rates", ", ".join(f"{r} Hz" for r in self.sample_rates)),
            ("layouts", ", ".join(self.layouts)),
            ("licenses", "; ".join(self.licenses) or "not stated"),
        ]
        lines = ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
        return "\n".join(lines) + "\n"


@attrs.frozen(kw_only=True)
class Dataset:
    """A named list of :class:`Entry` values and where they came from."""

    name: str
    kind: str
    root: Path
    entries: tuple[Entry, ...]
    layouts: tuple[str, ...]
    licenses: tuple[str, ...] = ()

    def items(self, limit: int | None = None) -> Iterator[Item]:
        """Every item, entry by entry (at most *limit* entries)."""
        for entry in self.entries[:limit]:
            yield from entry.items()

    def card(self) -> DatasetCard:
        """Speakers, hours, overlap, sample rates and licences of the dataset."""
        durations = [e.duration_s for e in self.entries]
        overlaps = [
            (e.overlap_ratio, e.duration_s) for e in self.entries if e.overlap_ratio is not None
        ]
        weight = sum(d for _, d in overlaps)
        overlap = (
            100.0 * sum(o * d for o, d in overlaps) / weight if overlaps and weight > 0 else None
        )
        return DatasetCard(
            name=self.name,
            kind=self.kind,
            recordings=len(self.entries),
            speakers=len({s for e in self.entries for s in e.speakers if s}),
            hours=sum(durations) / 3600.0,
            overlap_pct=overlap,
            sample_rates=tuple(sorted({e.sample_rate for e in self.entries})),
            layouts=self.layouts,
            licenses=self.licenses,
        )


# --------------------------------------------------------------------------- generated sets


def generate(
    corpus: SpeakerCorpus,
    n: int,
    config: CallConfig | None = None,
    seed: int = 0,
    *,
    layouts: Sequence[str] = ("mono", "stereo"),
    name: str = "generated",
) -> Dataset:
    """A dataset of *n* mixer calls made in memory, never written to disk.

    Each call is generated once to describe it (card), then again when its items are loaded
    (generation is seeded, so both are identical); memory holds one call at a time.
    """
    config = config or CallConfig()
    width = max(4, len(str(n - 1)))
    entries = []
    for index in range(n):
        call = make_call_at(corpus, index, config, seed, id_width=width)

        def loader(index: int = index) -> list[Item]:
            again = make_call_at(corpus, index, config, seed, id_width=width)
            return items_of_call(again, layouts)

        entries.append(
            Entry(
                entry_id=call.call_id,
                duration_s=call.duration,
                sample_rate=call.sample_rate,
                overlap_ratio=call.overlap_ratio,
                speakers=(call.agent_speaker, call.customer_speaker),
                loader=loader,
            )
        )
    licenses = tuple(f"{k}: {v}" for k, v in sorted(corpus.licenses.items()))
    return Dataset(
        name=name,
        kind="generated",
        root=corpus.root,
        entries=tuple(entries),
        layouts=tuple(layouts),
        licenses=licenses,
    )


def _config_json(config: CallConfig) -> dict[str, Any]:
    def value(_instance: object, _field: object, item: Any) -> Any:
        return item.value if hasattr(item, "value") and not isinstance(item, int | float) else item

    result: dict[str, Any] = attrs.asdict(config, value_serializer=value)
    return result


def write_calls(
    calls: Iterable[Call],
    out: str | Path,
    *,
    name: str | None = None,
    seed: int | None = None,
    source: str = "",
    licenses: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write generated calls under *out* (one folder per call) and a ``manifest.json``.

    Each call folder holds ``mix.flac``, ``stereo.flac``, ``agent.flac``, ``customer.flac``
    (16-bit FLAC), ``enroll-<i>.flac`` and ``reference.rttm``.

    :return: the manifest's path.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    config: CallConfig | None = None
    for count, call in enumerate(calls, start=1):
        folder = root / call.call_id
        folder.mkdir(exist_ok=True)
        files = {
            "mix": "mix.flac",
            "stereo": "stereo.flac",
            "agent": "agent.flac",
            "customer": "customer.flac",
        }
        for key, file in files.items():
            save(getattr(call, key), folder / file)
        enroll = []
        for index, audio in enumerate(call.enrollment):
            save(audio, folder / f"enroll-{index}.flac")
            enroll.append(f"{call.call_id}/enroll-{index}.flac")
        (folder / "reference.rttm").write_text(call.rttm(), encoding="utf-8")
        config = call.config
        records.append(
            {
                "id": call.call_id,
                "seed": call.seed,
                "agent_speaker": call.agent_speaker,
                "customer_speaker": call.customer_speaker,
                "duration_s": round(call.duration, 3),
                "sample_rate": call.sample_rate,
                "overlap_ratio": round(call.overlap_ratio, 6),
                "events": [[e.label, e.start, e.end] for e in call.events],
                "echo": None if call.echo is None else attrs.asdict(call.echo),
                "files": {k: f"{call.call_id}/{v}" for k, v in files.items()},
                "rttm": f"{call.call_id}/reference.rttm",
                "enrollment": enroll,
            }
        )
        if progress is not None:
            progress(count)
    manifest = {
        "format": _FORMAT,
        "version": 1,
        "name": name or root.name,
        "seed": seed,
        "source": source,
        "licenses": dict(licenses or {}),
        "config": None if config is None else _config_json(config),
        "calls": records,
    }
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def read_generated(root: str | Path, layouts: Sequence[str] = ("mono", "stereo")) -> Dataset:
    """A set written by :func:`write_calls` (``voicepriv bench make-calls``).

    :raises BenchError: no manifest, or one of another format.
    """
    base = Path(root)
    path = base / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(
            f"{path}: no manifest (make one with 'voicepriv bench make-calls')"
        ) from None
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise BenchError(f"{path}: expected format {_FORMAT!r}, got {manifest.get('format')!r}")
    entries = []
    for record in manifest.get("calls", []):
        try:
            entries.append(_generated_entry(base, record, tuple(layouts)))
        except (KeyError, TypeError) as exc:
            raise BenchError(f"{path}: call record {record!r} lacks {exc}") from None
    licenses = tuple(f"{k}: {v}" for k, v in sorted(manifest.get("licenses", {}).items()))
    return Dataset(
        name=str(manifest.get("name", base.name)),
        kind="generated",
        root=base,
        entries=tuple(entries),
        layouts=tuple(layouts),
        licenses=licenses,
    )


def _generated_entry(base: Path, record: Mapping[str, Any], layouts: tuple[str, ...]) -> Entry:
    call_id = str(record["id"])
    files = {k: base / v for k, v in record["files"].items()}
    rttm_path = base / record["rttm"]
    enrollment = [base / e for e in record.get("enrollment", [])]

    def loader() -> list[Item]:
        segments = rttm.read_rttm(rttm_path).get(call_id, ())
        agent, customer = load(files["agent"]), load(files["customer"])
        enrolled = tuple(load(p) for p in enrollment)
        items = []
        for layout in layouts:
            stereo = layout == "stereo"
            items.append(
                Item(
                    item_id=f"{call_id}/{layout}",
                    call_id=call_id,
                    audio=load(files["stereo" if stereo else "mix"]),
                    layout=ChannelLayout.stereo() if stereo else ChannelLayout.mono(),
                    segments=tuple(segments),
                    agent=agent,
                    customer=customer,
                    enrollment=enrolled,
                    agent_speaker=str(record.get("agent_speaker", "")),
                    customer_speaker=str(record.get("customer_speaker", "")),
                )
            )
        return items

    return Entry(
        entry_id=call_id,
        duration_s=float(record["duration_s"]),
        sample_rate=int(record["sample_rate"]),
        overlap_ratio=float(record["overlap_ratio"]),
        speakers=(str(record.get("agent_speaker", "")), str(record.get("customer_speaker", ""))),
        loader=loader,
    )


# --------------------------------------------------------------------------- LibriMix


def _segments_from_sources(agent: Audio, customer: Audio) -> tuple[Segment, ...]:
    return rttm.merge(
        rttm.from_activity(speech_activity(agent.mono(), agent.sample_rate), AGENT, hop_s=HOP_S)
        + rttm.from_activity(
            speech_activity(customer.mono(), customer.sample_rate), CUSTOMER, hop_s=HOP_S
        )
    )


def read_librimix(root: str | Path, *, mix: str = "auto", agent_source: str = "s1") -> Dataset:
    """A LibriMix-style folder: ``mix_*/<name>.wav`` with ``s1/<name>.wav`` and ``s2/<name>.wav``.

    :param mix: the mixture folder; ``"auto"`` takes ``mix_both``, else ``mix_clean``, else
        ``mix_single``.
    :param agent_source: ``"s1"`` or ``"s2"``: which source is the agent.
    :raises BenchError: the folders are missing or a mixture lacks a source file.
    """
    base = Path(root)
    if agent_source not in {"s1", "s2"}:
        raise BenchError(f"read_librimix: agent_source must be 's1' or 's2', got {agent_source!r}")
    choices = ("mix_both", "mix_clean", "mix_single") if mix == "auto" else (mix,)
    folder = next((base / c for c in choices if (base / c).is_dir()), None)
    if folder is None or not (base / "s1").is_dir() or not (base / "s2").is_dir():
        raise BenchError(f"{base}: expected LibriMix folders {'|'.join(choices)}, s1 and s2")
    other = "s2" if agent_source == "s1" else "s1"
    entries = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in _AUDIO):
        agent_path, customer_path = base / agent_source / path.name, base / other / path.name
        if not agent_path.is_file() or not customer_path.is_file():
            raise BenchError(f"{path}: no matching {agent_source}/{other} source files")
        header = info(path)

        def loader(path: Path = path, a: Path = agent_path, c: Path = customer_path) -> list[Item]:
            mixture, agent, customer = load(path), load(a), load(c)
            frames = min(mixture.frames, agent.frames, customer.frames)
            mixture = Audio(samples=mixture.samples[:frames, :1], sample_rate=mixture.sample_rate)
            agent = Audio(samples=agent.samples[:frames, :1], sample_rate=agent.sample_rate)
            customer = Audio(
                samples=customer.samples[:frames, :1], sample_rate=customer.sample_rate
            )
            return [
                Item(
                    item_id=path.stem,
                    call_id=path.stem,
                    audio=mixture,
                    layout=ChannelLayout.mono(),
                    segments=_segments_from_sources(agent, customer),
                    agent=agent,
                    customer=customer,
                )
            ]

        speakers = tuple(path.stem.split("_")[:2])
        entries.append(
            Entry(
                entry_id=path.stem,
                duration_s=header.duration,
                sample_rate=header.sample_rate,
                overlap_ratio=None,
                speakers=tuple(s.split("-")[0] for s in speakers),
                loader=loader,
            )
        )
    if not entries:
        raise BenchError(f"{folder}: no mixtures found")
    return Dataset(
        name=base.name,
        kind="librimix",
        root=base,
        entries=tuple(entries),
        layouts=("mono",),
        licenses=_licenses(base),
    )


# --------------------------------------------------------------------------- RTTM recordings


def _licenses(base: Path) -> tuple[str, ...]:
    notes = []
    for path in sorted([*base.glob("LICENSE*"), *base.glob("*/LICENSE*")]):
        try:
            first = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            continue
        notes.append(f"{path.relative_to(base)}: {first[0].strip() if first else ''}")
    return tuple(notes)


def read_rttm_dir(root: str | Path, *, agent_label: str | None = None) -> Dataset:
    """Audio files with RTTM annotations: every ``*.rttm`` under *root* is read and each uri is
    matched to the audio file of the same stem.

    :param agent_label: the RTTM speaker that is the agent; default: the one with the most
        speech in each recording. Every other speaker becomes ``"customer"``.
    :raises BenchError: no annotated audio found.
    """
    base = Path(root)
    annotations: dict[str, tuple[Segment, ...]] = {}
    for rttm_path in sorted(base.rglob("*.rttm")):
        for uri, segments in rttm.read_rttm(rttm_path).items():
            annotations.setdefault(uri, segments)
    audio_files = {p.stem: p for p in sorted(base.rglob("*")) if p.suffix.lower() in _AUDIO}
    entries = []
    for uri, segments in sorted(annotations.items()):
        found = audio_files.get(uri)
        if found is None:
            continue
        path = found
        try:
            header = info(path)
        except AudioError:
            continue
        relabelled = _relabel(segments, agent_label)
        if not relabelled:
            continue

        def loader(
            path: Path = path, uri: str = uri, segments: tuple[Segment, ...] = relabelled
        ) -> list[Item]:
            audio = load(path)
            stereo = audio.channels == 2
            return [
                Item(
                    item_id=uri,
                    call_id=uri,
                    audio=audio
                    if stereo
                    else Audio(samples=audio.mono(), sample_rate=audio.sample_rate),
                    layout=ChannelLayout.stereo() if stereo else ChannelLayout.mono(),
                    segments=segments,
                )
            ]

        entries.append(
            Entry(
                entry_id=uri,
                duration_s=header.duration,
                sample_rate=header.sample_rate,
                overlap_ratio=rttm.overlap_ratio(segments),
                speakers=tuple(f"{uri}:{label}" for label in rttm.labels(segments)),
                loader=loader,
            )
        )
    if not entries:
        raise BenchError(f"{base}: no audio file matches an RTTM uri")
    return Dataset(
        name=base.name,
        kind="rttm",
        root=base,
        entries=tuple(entries),
        layouts=("mono",),
        licenses=_licenses(base),
    )


def _relabel(segments: Sequence[Segment], agent_label: str | None) -> tuple[Segment, ...]:
    speech: dict[str, float] = {}
    for s in segments:
        speech[s.label] = speech.get(s.label, 0.0) + s.duration
    if not speech:
        return ()
    agent = agent_label if agent_label is not None else max(sorted(speech), key=lambda k: speech[k])
    if agent not in speech:
        return ()
    return rttm.merge(
        Segment(start=s.start, end=s.end, label=AGENT if s.label == agent else CUSTOMER)
        for s in segments
    )


def open_dataset(root: str | Path) -> Dataset:
    """Recognise *root*: a generated set (``manifest.json``), LibriMix folders, or RTTM files.

    :raises BenchError: none of these.
    """
    base = Path(root)
    if (base / MANIFEST).is_file():
        return read_generated(base)
    if (base / "s1").is_dir() and (base / "s2").is_dir():
        return read_librimix(base)
    if base.is_dir() and any(base.rglob("*.rttm")):
        return read_rttm_dir(base)
    raise BenchError(f"{base}: not a generated call set, a LibriMix folder or RTTM-annotated audio")
