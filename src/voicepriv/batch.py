"""Many calls at once: a local process pool by default, a Dask cluster when one is given.

:func:`discover` reads call records (a folder of record files, or one manifest) through the
metadata adapters; :func:`run_batch` runs a *task* (normally
:class:`voicepriv.pipeline.IngestTask`) on each call, keeps a resumable journal, reports progress
and returns a :class:`BatchReport` with the summary table.

The journal is a JSON-lines file (``journal.jsonl`` in the output folder): one line per finished
call, flushed and fsynced as the call finishes. A re-run reads it first and skips every call that
finished (kept, agent-only or destroyed); failed calls are tried again. Only the coordinating
process writes it; workers return outcomes. A crash can leave a call stored but not journaled,
or half ingested; the task settles such a call when it is run again
(:class:`voicepriv.pipeline.IngestTask` reports a finished one as done and erases and re-ingests
an interrupted one).

``engine="dask"`` runs the same task on a ``dask.distributed`` cluster (extra ``dask``); the task
and the records travel to the workers by pickling, so the workers need voicepriv installed and
the audio and vault paths must be reachable from them (a shared folder, or S3).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import IO, Any, Final, Protocol

import attrs

from voicepriv.errors import ConfigError, MissingExtraError, ModelError
from voicepriv.interfaces import IntakeRecord, MetadataAdapter
from voicepriv.plugins import backend, get_plugin_manager

__all__ = [
    "ADAPTER_BY_SUFFIX",
    "JOURNAL_NAME",
    "BatchReport",
    "CallOutcome",
    "CallTask",
    "Journal",
    "Outcome",
    "ProgressBar",
    "discover",
    "run_batch",
]

#: File name of the journal in the output folder.
JOURNAL_NAME: Final = "journal.jsonl"
#: Audio files a folder of call records may hold beside them (never read as records).
_AUDIO_SUFFIXES: Final = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".sph",
        ".gsm",
        ".raw",
        ".pcm",
        ".vox",
    }
)
#: Suffix of the lock file a running batch holds beside its journal.
_LOCK_SUFFIX: Final = ".lock"

#: Which adapter reads a record file, by suffix, when none is named.
ADAPTER_BY_SUFFIX: Final[Mapping[str, str]] = {".json": "generic-json", ".csv": "generic-csv"}


class Outcome(enum.Enum):
    """What happened to one call."""

    KEPT = "kept"
    AGENT_ONLY = "agent_only"
    DESTROYED = "destroyed"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        """Finished for good: a re-run skips it (only failures are retried)."""
        return self is not Outcome.FAILED


@attrs.frozen(kw_only=True)
class CallOutcome:
    """The result of one call in a batch.

    :param call_id: the recording id.
    :param outcome: kept (both voices), agent-only, destroyed (nothing kept) or failed.
    :param reason: one line: why it was destroyed, or the error of a failure.
    :param step: the pipeline step that failed, if any.
    :param audio_s: seconds of audio processed.
    :param elapsed_s: wall-clock seconds the task took.
    :param steps_s: seconds per pipeline step (for the benchmark's breakdown).
    """

    call_id: str
    outcome: Outcome = attrs.field(converter=Outcome)
    reason: str = ""
    step: str | None = None
    audio_s: float = 0.0
    elapsed_s: float = 0.0
    steps_s: Mapping[str, float] = attrs.field(factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The journal line's object."""
        return {
            "call_id": self.call_id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "step": self.step,
            "audio_s": self.audio_s,
            "elapsed_s": self.elapsed_s,
            "steps_s": dict(self.steps_s),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CallOutcome:
        """Inverse of :meth:`as_json`."""
        return cls(
            call_id=str(obj["call_id"]),
            outcome=obj["outcome"],
            reason=str(obj.get("reason", "")),
            step=obj.get("step"),
            audio_s=float(obj.get("audio_s", 0.0)),
            elapsed_s=float(obj.get("elapsed_s", 0.0)),
            steps_s={str(k): float(v) for k, v in (obj.get("steps_s") or {}).items()},
        )


class CallTask(Protocol):
    """What a batch runs per call; must be picklable (it travels to worker processes).

    It returns a :class:`CallOutcome` for every call it could judge, including failures it
    caught; an exception it raises is recorded as a failure of that call.
    """

    def __call__(self, record: IntakeRecord) -> CallOutcome:
        """Process one call."""


# --------------------------------------------------------------------------- discovery


def _adapter(name: str, options: Mapping[str, Any], manager: Any) -> MetadataAdapter:
    found = backend(manager, "metadata_adapter", name, options)
    if not isinstance(found, MetadataAdapter):
        raise ConfigError(
            f"metadata adapter {name!r} does not satisfy the MetadataAdapter protocol"
        )
    return found


def _adapter_for(path: Path, manager: Any) -> MetadataAdapter:
    name = ADAPTER_BY_SUFFIX.get(path.suffix.lower())
    if name is None:
        known = ", ".join(sorted(ADAPTER_BY_SUFFIX))
        raise ConfigError(f"{path}: no adapter for {path.suffix!r} files (known: {known})")
    return _adapter(name, {}, manager)


def discover(
    source: str | os.PathLike[str],
    *,
    adapter: str | None = None,
    adapter_options: Mapping[str, Any] | None = None,
    plugins: Any = None,
) -> list[IntakeRecord]:
    """Every call described under *source*, audio paths made absolute.

    :param source: a manifest (one record file) or a folder: every ``*.json`` / ``*.csv`` file
        in it (not recursive; ``journal.jsonl`` and its lock excluded) is a record file; with
        *adapter*, every other file too, except audio files (``.wav``, ``.flac`` ...).
    :param adapter: metadata adapter name for every file; by default chosen by suffix
        (:data:`ADAPTER_BY_SUFFIX`). A named adapter is resolved once, before any file is read.
    :param adapter_options: options for *adapter*, passed through unchanged (the adapter
        refuses options it does not know); they need a named *adapter*.
    :param plugins: the plugin manager (a fresh one when omitted).
    :raises ConfigError: *source* does not exist, a file has no adapter, or
        *adapter_options* were given without *adapter* or refused by it.
    :raises PluginError: no metadata adapter called *adapter* is installed.
    :raises ModelError: a record file is invalid, or two records share a call id.
    """
    if adapter_options and adapter is None:
        raise ConfigError(
            f"metadata adapter options {', '.join(map(repr, sorted(adapter_options)))} need an "
            "adapter name (without one, each file is read by the generic adapter of its suffix)"
        )
    root = Path(source)
    if root.is_dir():
        files = sorted(
            p
            for p in root.iterdir()
            if p.is_file()
            and (
                p.suffix.lower() in ADAPTER_BY_SUFFIX
                or (adapter is not None and p.suffix.lower() not in _AUDIO_SUFFIXES)
            )
            and p.name not in {JOURNAL_NAME, JOURNAL_NAME + _LOCK_SUFFIX}
        )
    elif root.is_file():
        files = [root]
    else:
        raise ConfigError(f"{root}: no such file or folder of call records")
    manager = plugins if plugins is not None else get_plugin_manager()
    named = None if adapter is None else _adapter(adapter, adapter_options or {}, manager)
    records: list[IntakeRecord] = []
    seen: dict[str, Path] = {}
    for path in files:
        reader = named if named is not None else _adapter_for(path, manager)
        parsed = reader.parse(path.read_bytes(), source=str(path))
        for record in parsed:
            call_id = record.recording.id
            if call_id in seen:
                raise ModelError(f"{path}: call id {call_id!r} also appears in {seen[call_id]}")
            seen[call_id] = path
            audio = record.audio
            if "://" not in audio and not Path(audio).is_absolute():
                audio = str((path.parent / audio).resolve())
            records.append(attrs.evolve(record, audio=audio))
    return records


# --------------------------------------------------------------------------- journal


class Journal:
    """The resumable JSON-lines journal of a batch (one finished call per line).

    A line that does not parse (the torn last line a crash while writing leaves behind) is
    skipped on reading: its call is not done, so a re-run simply runs it again. Appending after
    such a fragment first ends it with a newline, so the new line is never glued onto it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, CallOutcome]:
        """The latest outcome per call id; lines that do not parse are skipped."""
        latest: dict[str, CallOutcome] = {}
        if not self.path.exists():
            return latest
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    outcome = CallOutcome.from_json(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    continue
                latest[outcome.call_id] = outcome
        return latest

    @contextlib.contextmanager
    def claimed(self) -> Iterator[None]:
        """Hold the journal for one batch: an exclusive lock on ``<journal>.lock``.

        Two batches sharing a journal would each take the other's calls in flight for
        interrupted ones and erase them; the second is refused instead.

        :raises ConfigError: another process (or another batch in this one) holds the journal;
            the message names it.
        """
        lock = self.path.with_name(self.path.name + _LOCK_SUFFIX)
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"journal {self.path}: another batch is running on it (lock {lock} is "
                    "held); wait for it to finish, or give this batch its own output folder "
                    "and calls"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def done(self) -> frozenset[str]:
        """Call ids a re-run skips."""
        return frozenset(cid for cid, o in self.read().items() if o.outcome.done)

    def append(self, outcome: CallOutcome) -> None:
        """Add one outcome, durably (flushed and fsynced).

        When the file does not end with a newline (a crash tore its last line), a newline is
        written first: the fragment stays a line of its own, which :meth:`read` skips.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(outcome.as_json(), sort_keys=True) + "\n").encode()
        with self.path.open("a+b") as handle:
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line progress bar on a text stream (stderr by default); no dependency.

    On a terminal the line is redrawn in place; otherwise a line is printed every 10 %.
    """

    def __init__(self, total: int, *, stream: IO[str] | None = None, width: int = 28) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.counts: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.started = time.monotonic()
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def finished(self) -> int:
        """Calls finished so far."""
        return sum(self.counts.values())

    def update(self, outcome: CallOutcome) -> None:
        """Count one finished call and redraw."""
        self.counts[outcome.outcome] += 1
        done = self.finished
        decile = done * 10 // max(self.total, 1)
        if not self._tty and decile == self._last_decile and done != self.total:
            return
        self._last_decile = decile
        filled = self.width * done // max(self.total, 1)
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - done) if done else 0.0
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} calls  "
            f"kept {self.counts[Outcome.KEPT]}  agent-only {self.counts[Outcome.AGENT_ONLY]}  "
            f"destroyed {self.counts[Outcome.DESTROYED]}  failed {self.counts[Outcome.FAILED]}  "
            f"eta {eta:.0f}s"
        )
        self.stream.write(("\r" + line) if self._tty else (line + "\n"))
        if self._tty and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


# --------------------------------------------------------------------------- running


@attrs.frozen(kw_only=True)
class BatchReport:
    """What a batch did: this run's outcomes, the calls skipped as already done, and timing."""

    outcomes: tuple[CallOutcome, ...]
    skipped: tuple[str, ...]
    elapsed_s: float
    engine: str
    workers: int

    def count(self, outcome: Outcome) -> int:
        """How many calls of this run ended with *outcome*."""
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def failed(self) -> tuple[CallOutcome, ...]:
        """This run's failures."""
        return tuple(o for o in self.outcomes if o.outcome is Outcome.FAILED)

    @property
    def audio_s(self) -> float:
        """Seconds of audio processed in this run."""
        return sum(o.audio_s for o in self.outcomes)

    def table(self) -> str:
        """The summary table: counts per outcome, then each failure with its step and reason."""
        rows = [
            ("kept (agent + customer)", self.count(Outcome.KEPT)),
            ("agent-only", self.count(Outcome.AGENT_ONLY)),
            ("destroyed (nothing kept)", self.count(Outcome.DESTROYED)),
            ("failed", self.count(Outcome.FAILED)),
            ("skipped (done earlier)", len(self.skipped)),
        ]
        lines = [f"{'outcome':<26}{'calls':>7}", "-" * 33]
        lines.extend(f"{label:<26}{count:>7}" for label, count in rows)
        lines.append("-" * 33)
        lines.append(
            f"{len(self.outcomes)} call(s), {self.audio_s / 3600:.3f} h of audio in "
            f"{self.elapsed_s:.1f} s ({self.engine}, {self.workers} worker(s))"
        )
        destroyed = [o for o in self.outcomes if o.outcome is Outcome.DESTROYED and o.reason]
        if destroyed:
            lines.append("")
            lines.append("destroyed:")
            lines.extend(f"  {o.call_id}: {o.reason}" for o in destroyed)
        if self.failed:
            lines.append("")
            lines.append("failed:")
            lines.extend(
                f"  {o.call_id}: {f'[{o.step}] ' if o.step else ''}{o.reason}" for o in self.failed
            )
        return "\n".join(lines)


def _guarded(task: CallTask, record: IntakeRecord) -> CallOutcome:
    """Run *task*; an exception becomes a failed outcome naming its type and message."""
    started = time.perf_counter()
    try:
        return task(record)
    except Exception as exc:
        return CallOutcome(
            call_id=record.recording.id,
            outcome=Outcome.FAILED,
            reason=f"{type(exc).__name__}: {exc}".splitlines()[0],
            step=getattr(exc, "step", None),
            elapsed_s=time.perf_counter() - started,
        )


def _local(task: CallTask, records: Sequence[IntakeRecord], workers: int) -> Iterator[CallOutcome]:
    if workers <= 1:
        for record in records:
            yield _guarded(task, record)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[CallOutcome]] = set()
        queue = iter(records)
        for record in queue:
            pending.add(pool.submit(_guarded, task, record))
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
            for record in queue:
                pending.add(pool.submit(_guarded, task, record))
                if len(pending) >= 2 * workers:
                    break


def _dask(task: CallTask, records: Sequence[IntakeRecord], scheduler: str) -> Iterator[CallOutcome]:
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtraError(
            "the dask engine needs dask.distributed: pip install 'voicepriv[dask]'"
        ) from exc
    client_class: Any = distributed.Client
    as_completed: Any = distributed.as_completed
    with client_class(scheduler, set_as_default=False) as client:
        futures = client.map(
            _guarded,
            [task] * len(records),
            records,
            pure=False,
            key=[f"voicepriv-ingest-{r.recording.id}-{os.urandom(4).hex()}" for r in records],
        )
        for future in as_completed(futures, loop=client.loop):
            yield future.result()


def run_batch(
    task: CallTask,
    records: Iterable[IntakeRecord],
    *,
    journal: Journal | str | os.PathLike[str] | None = None,
    workers: int = 1,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Callable[[CallOutcome], None] | ProgressBar | None = None,
) -> BatchReport:
    """Run *task* on every call not yet done, journal each outcome, and report.

    :param task: a picklable :class:`CallTask` (e.g. :class:`voicepriv.pipeline.IngestTask`).
    :param records: the calls (see :func:`discover`).
    :param journal: the journal (or its path); calls it lists as done are skipped.
    :param workers: local worker processes (``1`` runs in this process).
    :param engine: ``"local"`` or ``"dask"``.
    :param scheduler: the Dask scheduler address (``tcp://host:8786``), required for dask.
    :param progress: called with each outcome as it finishes (a :class:`ProgressBar` works).
    :raises ConfigError: unknown engine, no scheduler for dask, fewer than one worker, or
        another batch holds the journal (:meth:`Journal.claimed`).
    """
    if engine not in {"local", "dask"}:
        raise ConfigError(f"engine: expected 'local' or 'dask', got {engine!r}")
    if engine == "dask" and not scheduler:
        raise ConfigError("engine 'dask' needs a scheduler address (--scheduler tcp://HOST:PORT)")
    if workers < 1:
        raise ConfigError(f"workers: expected at least 1, got {workers}")
    book = Journal(journal) if isinstance(journal, str | os.PathLike) else journal
    with book.claimed() if book is not None else contextlib.nullcontext():
        return _run(task, records, book, workers, engine, scheduler, progress)


def _run(
    task: CallTask,
    records: Iterable[IntakeRecord],
    book: Journal | None,
    workers: int,
    engine: str,
    scheduler: str | None,
    progress: Callable[[CallOutcome], None] | ProgressBar | None,
) -> BatchReport:
    """:func:`run_batch` once its arguments are checked and its journal held."""
    done = book.done() if book is not None else frozenset()
    listed = list(records)
    todo = [r for r in listed if r.recording.id not in done]
    skipped = tuple(sorted(r.recording.id for r in listed if r.recording.id in done))
    started = time.perf_counter()
    outcomes: list[CallOutcome] = []
    stream = (
        _local(task, todo, workers) if engine == "local" else _dask(task, todo, scheduler or "")
    )
    for outcome in stream:
        if book is not None:
            book.append(outcome)
        outcomes.append(outcome)
        if isinstance(progress, ProgressBar):
            progress.update(outcome)
        elif progress is not None:
            progress(outcome)
    return BatchReport(
        outcomes=tuple(outcomes),
        skipped=skipped,
        elapsed_s=time.perf_counter() - started,
        engine=engine,
        workers=workers,
    )
