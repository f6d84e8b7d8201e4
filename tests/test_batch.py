"""Batch runs: discovery, local pool, resumable journal, summary table, and a real Dask cluster."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv import audio
from voicepriv.backends.adapters import GenericJsonAdapter
from voicepriv.batch import (
    JOURNAL_NAME,
    CallOutcome,
    Journal,
    Outcome,
    ProgressBar,
    discover,
    run_batch,
)
from voicepriv.errors import ConfigError, ModelError, PipelineError
from voicepriv.interfaces import IntakeRecord, MetadataAdapter
from voicepriv.plugins import get_plugin_manager, hookimpl

TAG_OUTCOME = {"keep": Outcome.KEPT, "agent": Outcome.AGENT_ONLY, "drop": Outcome.DESTROYED}


@attrs.frozen(kw_only=True)
class ProbeTask:
    """Reads each call's real audio header; the outcome comes from the call's tags.

    A call tagged ``fail`` raises a PipelineError until *fix* exists (to test retries).
    """

    fix: str

    def __call__(self, record: IntakeRecord) -> CallOutcome:
        seconds = audio.info(record.audio).duration
        if "fail" in record.recording.tags and not Path(self.fix).exists():
            raise PipelineError(f"{record.recording.id}: separator refused", step="isolate")
        (tag,) = record.recording.tags - {"fail"}
        return CallOutcome(
            call_id=record.recording.id,
            outcome=TAG_OUTCOME[tag],
            reason="no consent" if tag == "drop" else "",
            audio_s=seconds,
        )


def _call(call_id: str, tags: list[str], wav: str) -> dict[str, object]:
    return {
        "call_id": call_id,
        "started_at": "2026-03-02T09:15:00+01:00",
        "duration_s": 1.0,
        "direction": "inbound",
        "channels": ["agent", "customer"],
        "audio": wav,
        "tags": tags,
        "parties": [{"role": "agent", "id": "a1"}, {"role": "customer", "jurisdiction": "DK"}],
    }


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    """A folder with 7 calls: 5 in a JSON file, 2 in a CSV file, each with a real WAV file."""
    folder = tmp_path / "in"
    (folder / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    tags = [["keep"], ["agent"], ["agent"], ["drop"], ["agent", "fail"], ["keep"], ["drop"]]
    for i in range(7):
        samples = 0.1 * rng.standard_normal((8000 + 800 * i, 2)).astype(np.float32)
        audio.save(audio.Audio(samples=samples, sample_rate=8000), folder / "audio" / f"{i}.wav")
    json_calls = [_call(f"c{i}", tags[i], f"audio/{i}.wav") for i in range(5)]
    (folder / "a.json").write_text(
        json.dumps({"format": "voicepriv-generic/1", "calls": json_calls})
    )
    header = "call_id,started_at,duration_s,direction,channels,audio,tags,agent_id\n"
    rows = "".join(
        f"c{i},2026-03-02T10:00:00Z,1,outbound,agent|customer,audio/{i}.wav,{';'.join(tags[i])},a2\n"
        for i in (5, 6)
    )
    (folder / "b.csv").write_text(header + rows)
    (folder / "notes.txt").write_text("not a record file")
    return folder


def test_discover_reads_every_record_file_and_resolves_audio(calls: Path) -> None:
    records = discover(calls)
    assert [r.recording.id for r in records] == [f"c{i}" for i in range(7)]
    assert all(Path(r.audio).is_absolute() and Path(r.audio).exists() for r in records)
    assert discover(calls / "b.csv")[0].recording.id == "c5"


def test_discover_errors(calls: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or folder"):
        discover(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no adapter for '\.txt'"):
        discover(calls / "notes.txt")
    (calls / "c.json").write_text(json.dumps([_call("c1", ["keep"], "audio/1.wav")]))
    with pytest.raises(ModelError, match="call id 'c1' also appears in"):
        discover(calls)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_resume_and_summary(calls: Path, tmp_path: Path, workers: int) -> None:
    records = discover(calls)
    task = ProbeTask(fix=str(tmp_path / "fixed"))
    journal = tmp_path / "out" / JOURNAL_NAME
    stream = io.StringIO()
    report = run_batch(
        task, records, journal=journal, workers=workers, progress=ProgressBar(7, stream=stream)
    )
    assert report.count(Outcome.KEPT) == 2
    assert report.count(Outcome.AGENT_ONLY) == 2
    assert report.count(Outcome.DESTROYED) == 2
    (failed,) = report.failed
    assert failed.call_id == "c4" and failed.step == "isolate"
    assert "separator refused" in failed.reason
    assert sorted(o.call_id for o in report.outcomes) == [f"c{i}" for i in range(7)]
    assert report.audio_s == pytest.approx(sum(1.0 + 0.1 * i for i in range(7) if i != 4))
    table = report.table()
    assert "agent-only" in table and "c4: [isolate] PipelineError" in table
    assert "c3: no consent" in table
    assert "7/7 calls" in stream.getvalue()

    # Re-run: the six finished calls are skipped; the failure is retried and now succeeds.
    (tmp_path / "fixed").touch()
    again = run_batch(task, discover(calls), journal=journal, workers=workers)
    assert [o.call_id for o in again.outcomes] == ["c4"]
    assert again.outcomes[0].outcome is Outcome.AGENT_ONLY
    assert again.skipped == ("c0", "c1", "c2", "c3", "c5", "c6")
    assert Journal(journal).done() == frozenset(f"c{i}" for i in range(7))
    third = run_batch(task, discover(calls), journal=journal, workers=workers)
    assert third.outcomes == () and len(third.skipped) == 7


def test_a_second_batch_on_a_journal_in_use_is_refused(calls: Path, tmp_path: Path) -> None:
    # Two batches on one journal would each erase the calls the other is still storing.
    records = discover(calls)
    task = ProbeTask(fix=str(tmp_path / "fixed"))
    journal = calls / JOURNAL_NAME  # the journal beside the record files
    with Journal(journal).claimed():
        with pytest.raises(ConfigError, match=r"another batch is running on it \(lock .*\.lock"):
            run_batch(task, records, journal=journal)
        assert not journal.exists()
    report = run_batch(task, records, journal=journal)
    assert len(report.outcomes) == 7
    # The lock file left beside the journal is never read as a record file, even when one
    # adapter is named for every file of the folder.
    assert (calls / (JOURNAL_NAME + ".lock")).exists()
    (calls / "b.csv").unlink()
    (calls / "notes.txt").unlink()
    # ... and neither is the call audio kept beside the records.
    (calls / "audio" / "0.wav").rename(calls / "0.wav")
    named = discover(calls, adapter="generic-json")
    assert [r.recording.id for r in named] == [f"c{i}" for i in range(5)]


class _SitePlugin:
    """An inline plugin: metadata adapter ``site-json`` reads generic JSON files and keeps the
    calls whose tags hold its option ``site``; it takes no other option."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return ["site-json"] if kind == "metadata_adapter" else []

    @hookimpl
    def voicepriv_metadata_adapter(
        self, name: str, options: Mapping[str, Any]
    ) -> MetadataAdapter | None:
        if name != "site-json":
            return None
        self.asked.append(dict(options))
        unknown = sorted(set(options) - {"site"})
        if unknown:
            raise ConfigError(f"metadata adapter 'site-json': unknown option(s) {unknown}")
        return _SiteAdapter(str(options.get("site", "")))


class _SiteAdapter:
    name = "site-json"

    def __init__(self, site: str) -> None:
        self.site = site

    def parse(self, data: bytes, *, source: str) -> list[IntakeRecord]:
        records = GenericJsonAdapter().parse(data, source=source)
        return [r for r in records if self.site in r.recording.tags]


@pytest.fixture
def site_plugins() -> Iterator[tuple[pluggy.PluginManager, _SitePlugin]]:
    manager = get_plugin_manager()
    plugin = _SitePlugin()
    manager.register(plugin, name="test-site-json")
    try:
        yield manager, plugin
    finally:
        manager.unregister(plugin)


def test_discover_hands_adapter_options_to_the_named_adapter_once(
    tmp_path: Path, site_plugins: tuple[pluggy.PluginManager, _SitePlugin]
) -> None:
    manager, plugin = site_plugins
    folder = tmp_path / "sites"
    folder.mkdir()
    for name, tags in (("a", ["cph", "aar", "cph"]), ("b", ["aar", "cph"])):
        calls = [_call(f"{name}{i}", [tag], f"{i}.wav") for i, tag in enumerate(tags)]
        (folder / f"{name}.json").write_text(json.dumps(calls))
    records = discover(
        folder, adapter="site-json", adapter_options={"site": "cph"}, plugins=manager
    )
    assert [r.recording.id for r in records] == ["a0", "a2", "b1"]
    assert plugin.asked == [{"site": "cph"}]  # resolved once, not once per file
    # A refused option fails before any file is read, even in a folder without records.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ConfigError, match=r"metadata adapter 'site-json': unknown option\(s\) \['zone'\]"
    ):
        discover(empty, adapter="site-json", adapter_options={"zone": "x"}, plugins=manager)
    with pytest.raises(ConfigError, match="'site' need an adapter name"):
        discover(folder, adapter_options={"site": "cph"}, plugins=manager)
    with pytest.raises(ConfigError, match="'generic-json' takes no options, got site"):
        discover(folder, adapter="generic-json", adapter_options={"site": "cph"})


def test_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.append(CallOutcome(call_id="x", outcome="kept", steps_s={"store": 0.5}))
    with journal.path.open("ab") as handle:
        handle.write(b'{"call_id": "y", "outc')
    assert journal.read() == {
        "x": CallOutcome(call_id="x", outcome=Outcome.KEPT, steps_s={"store": 0.5})
    }


def test_append_after_a_torn_line_keeps_the_new_entry(tmp_path: Path) -> None:
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.append(CallOutcome(call_id="call-1", outcome="kept"))
    with journal.path.open("ab") as handle:  # a crash while writing call-2's line
        handle.write(b'{"audio_s": 0.0, "call_id": "call-2", "ou')
    journal.append(CallOutcome(call_id="call-3", outcome="agent_only"))
    assert journal.done() == frozenset({"call-1", "call-3"})  # call-2 is simply run again
    assert journal.path.read_bytes().endswith(b"\n")


_call_ids = st.text(alphabet="abc-1", min_size=1, max_size=6)
_outcomes = st.builds(
    CallOutcome,
    call_id=_call_ids,
    outcome=st.sampled_from(Outcome),
    reason=st.text(max_size=20),
    audio_s=st.floats(min_value=0, max_value=1e4, allow_nan=False),
)


@given(
    before=st.lists(_outcomes, max_size=5),
    after=st.lists(_outcomes, min_size=1, max_size=5),
    cut=st.floats(min_value=0, max_value=1),
)
def test_appends_after_any_truncation_read_back(
    before: list[CallOutcome], after: list[CallOutcome], cut: float
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal(Path(folder) / JOURNAL_NAME)
        for outcome in before:
            journal.append(outcome)
        if journal.path.exists():  # a crash cuts the file anywhere
            data = journal.path.read_bytes()
            journal.path.write_bytes(data[: int(len(data) * cut)])
        for outcome in after:
            journal.append(outcome)
        read = journal.read()
        latest = {o.call_id: o for o in after}
        assert {cid: read[cid] for cid in latest} == latest


def test_bad_engine_settings() -> None:
    task = ProbeTask(fix="/nonexistent")
    with pytest.raises(ConfigError, match="engine"):
        run_batch(task, [], engine="spark")
    with pytest.raises(ConfigError, match="scheduler"):
        run_batch(task, [], engine="dask")
    with pytest.raises(ConfigError, match="workers"):
        run_batch(task, [], workers=0)


@pytest.mark.dask
@pytest.mark.slow
def test_same_job_on_a_dask_cluster(calls: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    # Worker processes cannot import this test module: ship ProbeTask's code by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster:
            # no default Client here: run_batch must connect by the address alone
            assert len(cluster.workers) == 2
            task = ProbeTask(fix=str(tmp_path / "fixed"))
            journal = tmp_path / JOURNAL_NAME
            report = run_batch(
                task,
                discover(calls),
                journal=journal,
                engine="dask",
                scheduler=cluster.scheduler_address,
            )
            assert sorted(o.call_id for o in report.outcomes) == [f"c{i}" for i in range(7)]
            assert report.count(Outcome.DESTROYED) == 2
            assert [o.call_id for o in report.failed] == ["c4"]
            (tmp_path / "fixed").touch()
            again = run_batch(
                task,
                discover(calls),
                journal=journal,
                engine="dask",
                scheduler=cluster.scheduler_address,
            )
            assert [(o.call_id, o.outcome) for o in again.outcomes] == [("c4", Outcome.AGENT_ONLY)]
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
