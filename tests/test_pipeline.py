"""End-to-end ingest on real speech: keep both, agent-only (stereo and mono), refusal, failures."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from voicepriv import audio as audio_io
from voicepriv.audio import Audio
from voicepriv.audit import AuditLog, EventType, read_events, verify_log
from voicepriv.batch import CallOutcome, Journal, Outcome, discover, run_batch
from voicepriv.demo import DEMO_POLICY
from voicepriv.errors import ConfigError, NotFoundError, PipelineError, StorageError
from voicepriv.interfaces import IntakeRecord, IsolationResult, IvrInput
from voicepriv.model import ChannelLayout, Party, Recording
from voicepriv.pipeline import IngestTask, ingest
from voicepriv.plugins import backend, get_plugin_manager
from voicepriv.policy import Policy, parse_policy
from voicepriv.vault import ArtifactKind, RecordingState, Vault

RATE = 8000
PHONE = "+4532123456"


def _speaker(shared_data: Path, speaker: str, count: int) -> list[np.ndarray]:
    files = sorted((shared_data / "librispeech-test-other" / speaker).glob("*.flac"))[:count]
    return [audio_io.load(f, sample_rate=RATE).mono() for f in files]


def _conversation(agent: list[np.ndarray], customer: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Alternating turns: (agent source, customer source), same length, 0.3 s gaps."""
    gap = np.zeros(int(0.3 * RATE), np.float32)
    a_parts: list[np.ndarray] = []
    c_parts: list[np.ndarray] = []
    for mine, theirs in zip(agent, customer, strict=True):
        a_parts += [mine, gap, np.zeros_like(theirs), gap]
        c_parts += [np.zeros_like(mine), gap, theirs, gap]
    return np.concatenate(a_parts), np.concatenate(c_parts)


def _echo(signal: np.ndarray, gain: float = 0.08) -> np.ndarray:
    path = np.zeros(120, np.float32)
    path[[30, 70, 119]] = [gain, -gain / 2, gain / 4]
    return np.convolve(signal, path)[: len(signal)].astype(np.float32)


@pytest.fixture(scope="module")
def sources(shared_data: Path) -> dict[str, np.ndarray]:
    """Agent (reader 3080) and customer (reader 1688) turns, plus enrollment clips."""
    agent, customer = _conversation(
        _speaker(shared_data, "3080", 3)[1:], _speaker(shared_data, "1688", 2)
    )
    return {"agent": agent, "customer": customer}


@pytest.fixture
def policy() -> Policy:
    return parse_policy(DEMO_POLICY, source="demo-policy.toml")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    with Vault.create(tmp_path / "vault") as opened:
        yield opened


@pytest.fixture
def log(vault: Vault) -> AuditLog:
    return AuditLog(vault.config.root / "audit.jsonl", signer=vault.provider, sinks=[])


def _recording(rid: str, direction: str, seconds: float, layout: ChannelLayout) -> Recording:
    return Recording(
        id=rid,
        started_at=datetime(2026, 3, 2, 9, 15, tzinfo=UTC),
        duration=seconds,
        direction=direction,
        parties=[
            Party(role="agent", id="agent-7", jurisdiction="DK"),
            Party(role="customer", jurisdiction="DK", subjects=[{"kind": "phone", "value": PHONE}]),
        ],
        layout=layout,
    )


def _stereo_file(tmp_path: Path, sources: Mapping[str, np.ndarray]) -> tuple[Path, np.ndarray]:
    """Agent channel with the customer's bleed, customer channel with the agent's echo."""
    agent, customer = sources["agent"], sources["customer"]
    stereo = np.stack([agent + _echo(customer), customer + _echo(agent)], axis=1)
    path = tmp_path / "call.wav"
    audio_io.save(Audio(samples=stereo, sample_rate=RATE), path, encoding="float")
    return path, stereo


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 0.0 if denominator == 0 else float(abs(a @ b) / denominator)


def _events(vault: Vault) -> list[Any]:
    return list(read_events(vault.config.root / "audit.jsonl"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stereo_inbound_with_consent_keeps_both(
    tmp_path: Path, sources: dict[str, np.ndarray], policy: Policy, vault: Vault, log: AuditLog
) -> None:
    path, stereo = _stereo_file(tmp_path, sources)
    before = _sha(path)
    seconds = len(stereo) / RATE
    ivr = [
        IvrInput(prompt="qa", digit="1", offset_s=0.0),
        IvrInput(prompt="training", digit="2", offset_s=0.0),
    ]
    result = ingest(
        path,
        _recording("in-1", "inbound", seconds, ChannelLayout.stereo()),
        policy,
        vault,
        ivr=ivr,
        audit=log,
    )
    assert result.outcome is Outcome.KEPT
    assert result.decision.covers("quality_assurance")
    assert not result.decision.covers("training")
    (artifact,) = result.artifacts
    kept = vault.read_audio(artifact.artifact_id)
    assert kept.channels == 2
    # both tracks stored as recorded (16-bit PCM), nothing silenced: consent came at 0 s
    assert np.max(np.abs(kept.samples - np.clip(stereo, -1, 1))) < 1e-3
    meta = vault.metadata("in-1")
    assert {c.purpose for c in meta.recording.consents} >= {"quality_assurance", "training"}
    kinds = [e.type for e in _events(vault)]
    assert kinds == [EventType.CONSENT_CAPTURED, EventType.DECISION_MADE, EventType.ARTIFACT_STORED]
    assert _sha(path) == before  # the input is untouched
    verify_log(vault.config.root / "audit.jsonl", vault.provider.verify_key())


def test_stereo_outbound_agent_only_keeps_no_customer_sample(
    tmp_path: Path, sources: dict[str, np.ndarray], policy: Policy, vault: Vault, log: AuditLog
) -> None:
    path, stereo = _stereo_file(tmp_path, sources)
    before = _sha(path)
    files_before = {p for p in tmp_path.rglob("*") if p.is_file()}
    seconds = len(stereo) / RATE
    result = ingest(
        path,
        _recording("out-1", "outbound", seconds, ChannelLayout.stereo()),
        policy,
        vault,
        audit=log,
    )
    assert result.outcome is Outcome.AGENT_ONLY
    assert result.destroyed == ("customer track",)
    assert result.isolation is not None and result.isolation.agent_channel == 0
    # Every stored artifact, decrypted, against the customer's input channel and its bleed.
    customer_channel = stereo[:, 1]
    bleed = _echo(sources["customer"])
    for entry in vault.catalog.artifacts("out-1"):
        kept = vault.read_audio(entry.id).mono()
        assert len(kept) == len(customer_channel)
        assert _corr(kept, customer_channel) < 0.02
        assert _corr(kept, sources["customer"]) < 0.02
        assert _corr(kept, bleed) < 0.05
        assert _corr(kept, sources["agent"]) > 0.3  # the separator silences what it doubts
    # Nothing but the vault's own files was written, and no file holds the customer's PCM.
    created = {p for p in tmp_path.rglob("*") if p.is_file()} - files_before
    assert all(p.is_relative_to(vault.config.root) for p in created)
    pcm = np.clip(np.rint(sources["customer"] * 32767), -32768, 32767).astype("<i2").tobytes()
    start = int(np.argmax(np.abs(sources["customer"]) > 0.05)) * 2
    probe = pcm[start : start + 64]
    assert all(probe not in p.read_bytes() for p in created)
    assert _sha(path) == before


@pytest.mark.slow
def test_mono_agent_only_via_enrollment(
    tmp_path: Path,
    shared_data: Path,
    sources: dict[str, np.ndarray],
    policy: Policy,
    vault: Vault,
    log: AuditLog,
) -> None:
    agent, customer = sources["agent"], sources["customer"]
    mono = agent + customer
    path = tmp_path / "mono.wav"
    audio_io.save(Audio(samples=mono, sample_rate=RATE), path, encoding="float")
    enrollment_module = pytest.importorskip("voicepriv.enrollment")
    embedder = backend(get_plugin_manager(), "embedder", "mfcc")
    enrollment = [Audio(samples=x, sample_rate=RATE) for x in _speaker(shared_data, "3080", 6)[3:]]
    voiceprint = enrollment_module.enroll_clips("agent-7", enrollment, embedder)
    result = ingest(
        path,
        _recording("mono-1", "outbound", len(mono) / RATE, ChannelLayout.mono()),
        policy,
        vault,
        audit=log,
        voiceprint=voiceprint,
    )
    assert result.outcome is Outcome.AGENT_ONLY
    assert result.destroyed == ("customer speech",)
    (entry,) = vault.catalog.artifacts("mono-1")
    kept = vault.read_audio(entry.id).mono()
    # whatever the separator kept is agent speech: the customer-only spans are silent
    customer_only = (np.abs(customer) > 0) & (agent == 0)
    assert float(np.sum(kept[customer_only] ** 2)) <= 0.01 * float(
        np.sum(customer[customer_only] ** 2)
    )
    assert _corr(kept, customer) < 0.1

    # The same call through the batch task: the voiceprint is picked by the agent's id.
    from voicepriv.batch import run_batch
    from voicepriv.interfaces import IntakeRecord
    from voicepriv.pipeline import IngestTask

    (tmp_path / "policy.toml").write_text(DEMO_POLICY)
    task = IngestTask(
        policy=str(tmp_path / "policy.toml"),
        vault=str(vault.config.root),
        voiceprints=(voiceprint,),
    )
    record = IntakeRecord(
        recording=_recording("mono-2", "outbound", len(mono) / RATE, ChannelLayout.mono()),
        audio=str(path),
    )
    assert task.voiceprint_for(record.recording) is voiceprint
    (outcome,) = run_batch(task, [record]).outcomes
    assert outcome.outcome is Outcome.AGENT_ONLY, outcome.reason
    without = run_batch(
        attrs.evolve(task, voiceprints=()),
        [attrs.evolve(record, recording=attrs.evolve(record.recording, id="mono-3"))],
    )
    (failed,) = without.failed
    assert failed.step == "isolate"
    # Once the agent is enrolled in the vault (`voicepriv enroll`), the pipeline finds it.
    enrollment_module.enroll(vault, voiceprint)
    again = run_batch(
        attrs.evolve(task, voiceprints=()),
        [attrs.evolve(record, recording=attrs.evolve(record.recording, id="mono-3"))],
    )
    assert [o.outcome for o in again.outcomes] == [Outcome.AGENT_ONLY]


def test_refusal_keeps_nothing_and_audits_the_decision(
    tmp_path: Path, policy: Policy, vault: Vault, log: AuditLog
) -> None:
    missing = tmp_path / "never-read.wav"  # the audio of a refused call is not even opened
    ivr = [
        IvrInput(prompt="qa", digit="2", offset_s=0.5),
        IvrInput(prompt="training", digit="2", offset_s=1.0),
    ]
    result = ingest(
        missing,
        _recording("no-1", "inbound", 20.0, ChannelLayout.stereo()),
        policy,
        vault,
        ivr=ivr,
        audit=log,
    )
    assert result.outcome is Outcome.DESTROYED
    assert result.artifacts == ()
    assert vault.catalog.recording_ids() == []
    assert list(vault.storages["local"].keys()) == []
    events = _events(vault)
    assert [e.type for e in events] == [EventType.CONSENT_CAPTURED, EventType.DECISION_MADE]
    assert events[1].data["outcome"] == "destroyed"
    assert events[1].data["recording_id"] == "no-1"
    assert "no purpose may be kept" in result.summary().reason


class _BrokenSink:
    def emit(self, event: Mapping[str, Any]) -> None:
        if event["type"] == "artifact_stored":
            raise OSError("SIEM unreachable")


@pytest.mark.parametrize("where", ["store", "audit"])
def test_failure_mid_pipeline_leaves_nothing_stored(
    tmp_path: Path,
    sources: dict[str, np.ndarray],
    policy: Policy,
    vault: Vault,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    path, stereo = _stereo_file(tmp_path, sources)
    before = _sha(path)
    log = AuditLog(
        vault.config.root / "audit.jsonl",
        signer=vault.provider,
        sinks=[_BrokenSink()] if where == "audit" else [],
    )
    if where == "store":
        real = vault.put_audio

        def put_then_fail(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)  # the artifact is fully written ...
            raise StorageError("disk full")  # ... then the step fails

        monkeypatch.setattr(vault, "put_audio", put_then_fail)
    with pytest.raises(PipelineError) as info:
        ingest(
            path,
            _recording("f-1", "outbound", len(stereo) / RATE, ChannelLayout.stereo()),
            policy,
            vault,
            audit=log,
            remove_source=True,
        )
    assert info.value.step == where
    assert where in str(info.value)
    assert list(vault.storages["local"].keys()) == []  # no object left on any replica
    with pytest.raises(NotFoundError):  # rolled back: not even a tombstone is left ...
        vault.catalog.recording("f-1")
    assert vault.catalog.recording_ids() == []
    assert _sha(path) == before  # remove_source only applies after success
    # ... so a retry once the fault is gone ingests the same call afresh.
    monkeypatch.undo()
    retry = ingest(
        path,
        _recording("f-1", "outbound", len(stereo) / RATE, ChannelLayout.stereo()),
        policy,
        vault,
        audit=AuditLog(vault.config.root / "audit.jsonl", signer=vault.provider),
    )
    assert retry.artifacts
    assert vault.catalog.recording("f-1").state is RecordingState.ACTIVE


def test_remove_source_after_success(
    tmp_path: Path, sources: dict[str, np.ndarray], policy: Policy, vault: Vault, log: AuditLog
) -> None:
    path, stereo = _stereo_file(tmp_path, sources)
    ingest(
        path,
        _recording("rm-1", "outbound", len(stereo) / RATE, ChannelLayout.stereo()),
        policy,
        vault,
        audit=log,
        remove_source=True,
    )
    assert not path.exists()


def _demo_calls(folder: Path, prefix: str, *, consent: bool = True) -> Path:
    """*folder* holding the demo call as an inbound and an outbound call (``calls.json``), the
    caller pressing 1 for quality assurance when *consent*; ids ``PREFIX-inbound`` ..."""
    import json

    from voicepriv.demo import build_call

    stereo, _, _ = build_call()
    folder.mkdir()
    audio_io.save(stereo, folder / "call.wav")
    ivr = [{"prompt": "qa", "digit": "1", "offset_s": 0.1}] if consent else []
    records = [
        {
            "call_id": f"{prefix}-{direction}",
            "started_at": "2026-03-02T09:15:00+01:00",
            "duration_s": stereo.duration,
            "direction": direction,
            "channels": ["agent", "customer"],
            "audio": "call.wav",
            "parties": [
                {"role": "agent", "id": "a1", "jurisdiction": "DK"},
                {"role": "customer", "jurisdiction": "DK", "phone": PHONE},
            ],
            "ivr": ivr,
        }
        for direction in ("inbound", "outbound")
    ]
    (folder / "calls.json").write_text(json.dumps(records))
    return folder


def test_cli_ingest_folder_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`voicepriv ingest DIR --policy P --vault V`: summary table, then a re-run skips all."""

    from voicepriv.cli import main

    argv = _ingest_argv(tmp_path, "--workers", "2", prefix="cli")
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "kept (agent + customer)         1" in out.out
    assert "agent-only                      1" in out.out
    assert "2/2 calls" in out.err
    assert main(argv) == 0
    assert "skipped (done earlier)          2" in capsys.readouterr().out
    with Vault.open(tmp_path / "vault") as vault:
        assert vault.catalog.recording_ids() == ["cli-inbound", "cli-outbound"]


def _ingest_argv(tmp_path: Path, *extra: str, prefix: str = "opt") -> list[str]:
    """``voicepriv ingest`` of the demo calls (ids ``PREFIX-inbound``, ``PREFIX-outbound``)
    into ``tmp_path/vault`` (``--init``, one worker unless *extra* says otherwise)."""
    calls = tmp_path / "calls"
    if not calls.exists():
        _demo_calls(calls, prefix)
        (tmp_path / "policy.toml").write_text(DEMO_POLICY)
    return [
        "ingest",
        str(calls),
        "--policy",
        str(tmp_path / "policy.toml"),
        "--vault",
        str(tmp_path / "vault"),
        "--init",
        "--workers",
        "1",
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--separator", "channels", "--separator-option", "colour=red"],
            "channels separator: unknown option(s) 'colour'",
        ),
        (
            ["--separator", "channels", "--separator-option", "step=2"],
            "channels separator option 'step': expected a number in (0, 1], got 2",
        ),
        (["--separator-option", "step=0.5"], "--separator-option needs --separator NAME"),
        (["--separator", "channels", "--separator-option", "step"], "expected KEY=VALUE"),
        (
            ["--separator", "channels", "--separator-option", 'step={"a": 1'],
            "--separator-option step: '{\"a\": 1' is not valid JSON",
        ),
        (["--separator", "nope"], "no separator backend called 'nope' is installed"),
        (["--adapter-option", "site=cph"], "--adapter-option needs --adapter NAME"),
        (
            ["--adapter", "generic-json", "--adapter-option", "site=cph"],
            "metadata adapter 'generic-json' takes no options, got site",
        ),
    ],
)
def test_cli_ingest_refuses_bad_backend_options_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """One clear error for the command, not one failure per call; nothing created."""
    from voicepriv.cli import main

    assert main(_ingest_argv(tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "vault").exists()  # --init created no vault, nothing ingested


def test_cli_ingest_hands_separator_options_to_the_separator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicepriv import isolation
    from voicepriv.cli import main

    asked: list[tuple[str, dict[str, Any]]] = []
    real = isolation.backend

    def spy(manager: Any, kind: str, name: str, options: Any = None) -> Any:
        asked.append((name, dict(options or {})))
        return real(manager, kind, name, options)

    monkeypatch.setattr(isolation, "backend", spy)  # one worker: the calls run in this process
    options = ["--separator-option", "leakage_threshold=0.05", "--separator-option", "prime_s=10"]
    assert main(_ingest_argv(tmp_path, "--separator", "channels", *options)) == 0
    assert "agent-only                      1" in capsys.readouterr().out
    # The agent-only call's isolation got the options, parsed (numbers, not text).
    assert asked == [("channels", {"leakage_threshold": 0.05, "prime_s": 10})]


def test_ingest_task_passes_separator_options_and_stays_a_batch_task(tmp_path: Path) -> None:
    import pickle

    records, task = _batch_calls(tmp_path)
    outbound = [r for r in records if r.recording.id == "b-outbound"]  # agent-only: isolated
    given: dict[str, Any] = {"colour": "red"}
    bad = attrs.evolve(task, separator="channels", separator_options=given)
    given["step"] = 0.5  # the task holds its own copy
    assert bad.separator_options == {"colour": "red"}
    assert pickle.loads(pickle.dumps(bad)) == bad  # travels to worker processes
    assert hash(bad) == hash(attrs.evolve(bad, separator_options={}))  # options not hashed
    (failed,) = run_batch(bad, outbound).outcomes
    assert (failed.outcome, failed.step) == (Outcome.FAILED, "isolate")
    assert "channels separator: unknown option(s) 'colour'" in failed.reason
    good = attrs.evolve(task, separator="channels", separator_options={"leakage_threshold": 0.05})
    assert [o.outcome for o in run_batch(good, outbound).outcomes] == [Outcome.AGENT_ONLY]
    # Options without a separator name: the default separator depends on each call's layout.
    with pytest.raises(ConfigError, match=r"separator options 'step' need a separator name"):
        IngestTask(policy=task.policy, vault=task.vault, separator_options={"step": 0.5})


class _ClockTranscriber:
    """Test double: one word per second of audio (the real ones are plugins with models)."""

    name = "clock"

    def transcribe(self, audio: Audio) -> tuple[Any, ...]:
        from voicepriv.interfaces import Word

        return tuple(
            Word(text=f"w{i}", start=float(i), end=float(i) + 0.9)
            for i in range(int(audio.duration))
        )


class _CardRecogniser:
    """Test double: words 2 and 3 are a card number."""

    name = "cards"

    def recognise(self, words: Any) -> tuple[Any, ...]:
        from voicepriv.interfaces import PiiSpan

        return (
            PiiSpan(kind="card_number", first=2, last=3, start=words[2].start, end=words[3].end),
        )


def test_transcript_redaction_silences_audio_and_text(
    tmp_path: Path, sources: dict[str, np.ndarray], policy: Policy, vault: Vault, log: AuditLog
) -> None:
    import json

    path, stereo = _stereo_file(tmp_path, sources)
    ivr = [IvrInput(prompt="qa", digit="1", offset_s=0.0)]
    result = ingest(
        path,
        _recording("tx-1", "inbound", len(stereo) / RATE, ChannelLayout.stereo()),
        policy,
        vault,
        ivr=ivr,
        audit=log,
        transcriber=_ClockTranscriber(),
        recogniser=_CardRecogniser(),
    )
    assert [a.kind.value for a in result.artifacts] == ["full_audio", "transcript"]
    kept = vault.read_audio(result.artifacts[0].artifact_id).samples
    assert np.all(kept[2 * RATE : int(3.9 * RATE)] == 0)  # the span is silenced on both channels
    assert np.any(kept[int(4.0 * RATE) : 5 * RATE] != 0)
    transcript = json.loads(vault.read(result.artifacts[1].artifact_id))
    texts = [w["text"] for w in transcript["words"]]
    assert texts[:5] == ["w0", "w1", "[card_number]", "[card_number]", "w4"]
    stored = [e for e in _events(vault) if e.type is EventType.ARTIFACT_STORED]
    assert stored[0].data["pii_spans_silenced"] == 1


def test_audio_from_an_fsspec_url(
    tmp_path: Path,
    sources: dict[str, np.ndarray],
    policy: Policy,
    vault: Vault,
    log: AuditLog,
    memory_fs: None,
) -> None:
    import fsspec

    path, stereo = _stereo_file(tmp_path, sources)
    with fsspec.open("memory://incoming/call.wav", "wb") as handle:
        handle.write(path.read_bytes())
    recording = _recording("url-1", "outbound", len(stereo) / RATE, ChannelLayout.stereo())
    with pytest.raises(PipelineError, match="only a local file") as info:
        ingest(
            "memory://incoming/call.wav", recording, policy, vault, audit=log, remove_source=True
        )
    assert info.value.step == "intake"
    result = ingest("memory://incoming/call.wav", recording, policy, vault, audit=log)
    assert result.outcome is Outcome.AGENT_ONLY
    uri = ingest(
        path.as_uri(),
        attrs.evolve(recording, id="url-2"),
        policy,
        vault,
        audit=log,
        remove_source=True,
    )
    assert uri.outcome is Outcome.AGENT_ONLY and not path.exists()


def test_installed_jurisdiction_packs_reach_the_decision(policy: Policy) -> None:
    """A vendor pack overriding DK changes what the batch task decides."""
    from voicepriv.pipeline import installed_jurisdictions
    from voicepriv.plugins import hookimpl
    from voicepriv.policy import consents_from_ivr, decide, load_jurisdictions

    builtin = load_jurisdictions()

    class LenientDenmark:
        @hookimpl
        def voicepriv_jurisdictions(self) -> list[Any]:
            return [attrs.evolve(builtin["DK"], li_purposes=None)]

    manager = get_plugin_manager()
    recording = _recording("j-1", "inbound", 20.0, ChannelLayout.stereo())
    ivr = [IvrInput(prompt="qa", digit="2", offset_s=0.5)]
    recording = attrs.evolve(recording, consents=consents_from_ivr(policy, ivr))
    plain = decide(recording, policy, jurisdictions=installed_jurisdictions(manager))
    assert not plain.covers("dispute_resolution")
    plugin = LenientDenmark()
    manager.register(plugin, name="lenient-dk")
    try:
        lenient = decide(recording, policy, jurisdictions=installed_jurisdictions(manager))
    finally:
        manager.unregister(plugin)
    assert lenient.covers("dispute_resolution")


@pytest.mark.slow
@pytest.mark.parametrize("agent_channel", [0, 1])
def test_stereo_call_of_unknown_layout_is_settled_by_the_enrolled_voiceprint(
    tmp_path: Path,
    shared_data: Path,
    sources: dict[str, np.ndarray],
    policy: Policy,
    vault: Vault,
    log: AuditLog,
    agent_channel: int,
) -> None:
    from voicepriv.enrollment import enroll, enroll_clips

    path, stereo = _stereo_file(tmp_path, sources)
    if agent_channel == 1:
        audio_io.save(Audio(samples=stereo[:, ::-1], sample_rate=RATE), path, encoding="float")
    recording = attrs.evolve(
        _recording("unk-1", "outbound", len(stereo) / RATE, ChannelLayout.stereo()), layout=None
    )
    # Not enrolled: nothing settles the layout, nothing is stored.
    with pytest.raises(PipelineError, match="no channel layout and no agent voiceprint"):
        ingest(path, recording, policy, vault, audit=log)
    assert list(vault.catalog.artifacts("unk-1")) == []
    embedder = backend(get_plugin_manager(), "embedder", "campplus")
    # Seven utterances: the agent channel scores 0.76 against the 0.75 floor (three: 0.74,
    # refused), the customer's 0.19.
    enrollment = [Audio(samples=x, sample_rate=RATE) for x in _speaker(shared_data, "3080", 10)[3:]]
    enroll(vault, enroll_clips("agent-7", enrollment, embedder))
    # The same call with a layout that says agent = left: the enrolled voiceprint checks it.
    # It used to be loaded only for mono calls and stereo calls without a layout, so a call
    # recorded the other way round stored the customer's channel as "agent-only" audio.
    with_layout = attrs.evolve(recording, id="lay-1", layout=ChannelLayout.stereo())
    for call in (recording, with_layout):
        result = ingest(path, call, policy, vault, audit=log)
        assert result.outcome is Outcome.AGENT_ONLY
        assert result.isolation is not None and result.isolation.agent_channel == agent_channel
        assert result.isolation.swapped is (call is with_layout and agent_channel == 1)
        (entry,) = vault.catalog.artifacts(call.id)
        kept = vault.read_audio(entry.id).mono()
        assert _corr(kept, sources["customer"]) < 0.02
        assert _corr(kept, sources["agent"]) > 0.3


# --------------------------------------------------------------------------- batch re-runs


class _Killed(BaseException):
    """Stands for the process dying: not an Exception, so no batch guard catches it."""


@attrs.frozen
class _CrashAfter:
    """Runs the task, then "loses power" after *call_id* is stored, before it is journaled."""

    inner: IngestTask
    call_id: str

    def __call__(self, record: IntakeRecord) -> CallOutcome:
        outcome = self.inner(record)
        if record.recording.id == self.call_id:
            raise _Killed("power cut before the journal line")
        return outcome


def _batch_calls(tmp_path: Path, *, consent: bool = True) -> tuple[list[IntakeRecord], IngestTask]:
    """The demo call as an inbound call (kept) and an outbound one (agent-only)."""

    calls = _demo_calls(tmp_path / f"calls-{consent}", "b", consent=consent)
    (tmp_path / "policy.toml").write_text(DEMO_POLICY)
    if not (tmp_path / "vault").exists():
        Vault.create(tmp_path / "vault").close()
    return discover(calls), IngestTask(
        policy=str(tmp_path / "policy.toml"), vault=str(tmp_path / "vault")
    )


def _live(vault: Vault, rid: str) -> list[Any]:
    return [a for a in vault.catalog.artifacts(rid) if a.deleted_at is None]


def test_rerun_reports_a_call_stored_before_the_crash_as_done(tmp_path: Path) -> None:
    records, task = _batch_calls(tmp_path)
    journal = tmp_path / "journal.jsonl"
    with pytest.raises(_Killed):
        run_batch(_CrashAfter(task, "b-inbound"), records, journal=journal)
    assert Journal(journal).read() == {}

    again = run_batch(task, records, journal=journal)
    assert again.failed == ()
    by_id = {o.call_id: o for o in again.outcomes}
    assert by_id["b-inbound"].outcome is Outcome.KEPT
    assert "earlier run" in by_id["b-inbound"].reason
    assert by_id["b-outbound"].outcome is Outcome.AGENT_ONLY
    assert Journal(journal).done() == frozenset({"b-inbound", "b-outbound"})
    assert run_batch(task, records, journal=journal).skipped == ("b-inbound", "b-outbound")
    with Vault.open(tmp_path / "vault") as vault:
        (stored,) = _live(vault, "b-inbound")  # stored once, not twice
        assert stored.kind is ArtifactKind.FULL_AUDIO
        assert not any(e.type is EventType.DELETION for e in _events(vault))


@pytest.mark.parametrize("where", ["put_audio", "audit"])
def test_rerun_erases_and_reingests_an_interrupted_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from voicepriv import pipeline

    records, task = _batch_calls(tmp_path)
    inbound = [r for r in records if r.recording.id == "b-inbound"]
    journal = tmp_path / "journal.jsonl"

    def killed(*_args: Any, **_kwargs: Any) -> Any:
        raise _Killed(f"killed in {where}")

    # A killed process runs no rollback: cataloged (and maybe stored), never audited.
    monkeypatch.setattr(pipeline, "_rollback", lambda *_args: None)
    if where == "put_audio":
        monkeypatch.setattr(Vault, "put_audio", killed)
    else:
        monkeypatch.setattr(pipeline, "_audit", killed)
    with pytest.raises(_Killed):
        run_batch(task, inbound, journal=journal)
    with Vault.open(tmp_path / "vault") as vault:
        assert vault.catalog.recording("b-inbound").state is RecordingState.ACTIVE
        assert len(_live(vault, "b-inbound")) == (0 if where == "put_audio" else 1)
    monkeypatch.undo()

    again = run_batch(task, inbound, journal=journal)
    assert [(o.call_id, o.outcome) for o in again.outcomes] == [("b-inbound", Outcome.KEPT)]
    assert Journal(journal).done() == frozenset({"b-inbound"})
    with Vault.open(tmp_path / "vault") as vault:
        (stored,) = _live(vault, "b-inbound")
        assert stored.size > 0
        assert len(list(vault.storages["local"].keys())) == 1  # the leftover object is gone
        events = _events(vault)
        (deletion,) = [e for e in events if e.type is EventType.DELETION]
        assert deletion.data["reason"] == "interrupted_ingest"
        stored_events = [e for e in events if e.type is EventType.ARTIFACT_STORED]
        assert [e.data["artifact_id"] for e in stored_events] == [stored.id]
        assert [e.seq for e in events if e.type is EventType.DECISION_MADE][-1] > deletion.seq


def test_rerun_never_reingests_an_erased_call(tmp_path: Path) -> None:
    records, task = _batch_calls(tmp_path)
    inbound = [r for r in records if r.recording.id == "b-inbound"]
    run_batch(task, inbound)  # no journal: the re-run has only the vault to go by
    with Vault.open(tmp_path / "vault") as vault:
        vault.delete("b-inbound", "erasure_request")
    (again,) = run_batch(task, inbound).outcomes
    assert again.outcome is Outcome.DESTROYED
    assert "erasure_request" in again.reason
    with Vault.open(tmp_path / "vault") as vault:
        assert vault.catalog.recording("b-inbound").state is RecordingState.DELETED
        assert list(vault.storages["local"].keys()) == []


def test_rerun_keeps_no_more_than_todays_decision(tmp_path: Path) -> None:
    records, task = _batch_calls(tmp_path)
    inbound = [r for r in records if r.recording.id == "b-inbound"]
    assert run_batch(task, inbound).outcomes[0].outcome is Outcome.KEPT
    # The same call again, now without the customer's consent (a corrected record).
    corrected, _ = _batch_calls(tmp_path, consent=False)
    (again,) = run_batch(task, [r for r in corrected if r.recording.id == "b-inbound"]).outcomes
    assert again.outcome is not Outcome.KEPT
    with Vault.open(tmp_path / "vault") as vault:
        assert all(a.kind is not ArtifactKind.FULL_AUDIO for a in _live(vault, "b-inbound"))
        reasons = [e.data["reason"] for e in _events(vault) if e.type is EventType.DELETION]
        assert reasons == ["decision_changed"]


def test_rerun_removes_the_source_an_interrupted_cleanup_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicepriv import pipeline

    records, task = _batch_calls(tmp_path)
    inbound = [r for r in records if r.recording.id == "b-inbound"]
    task = attrs.evolve(task, remove_source=True)

    def killed(_path: Path) -> None:
        raise _Killed("killed while removing the source")

    monkeypatch.setattr(pipeline, "_remove_securely", killed)
    with pytest.raises(_Killed):
        run_batch(task, inbound)
    monkeypatch.undo()
    assert Path(inbound[0].audio).exists()
    (again,) = run_batch(task, inbound).outcomes
    assert again.outcome is Outcome.KEPT
    assert not Path(inbound[0].audio).exists()


def test_a_purpose_id_with_a_number_is_stored_and_audited(
    tmp_path: Path, sources: dict[str, np.ndarray], vault: Vault, log: AuditLog
) -> None:
    # Purpose ids are the policy's own codes; a numbered campaign must not read as a phone
    # number to the audit log (which used to refuse the decision event and roll every call back).
    numbered = parse_policy(
        DEMO_POLICY.replace("quality_assurance", "campaign_2026001"), source="numbered.toml"
    )
    path, stereo = _stereo_file(tmp_path, sources)
    result = ingest(
        path,
        _recording("in-2", "inbound", len(stereo) / RATE, ChannelLayout.stereo()),
        numbered,
        vault,
        ivr=[IvrInput(prompt="qa", digit="1", offset_s=0.0)],
        audit=log,
    )
    assert result.outcome is Outcome.KEPT
    assert result.decision.covers("campaign_2026001")
    made = next(e for e in _events(vault) if e.type is EventType.DECISION_MADE)
    assert "campaign_2026001" in made.data["purposes"]
    verify_log(vault.config.root / "audit.jsonl", vault.provider.verify_key())


class _PassThrough:
    """A third-party separator that hands the whole stereo call back."""

    name = "pass-through"

    def isolate(self, audio: Audio, request: Any) -> IsolationResult:
        return IsolationResult(
            audio=audio, kept=(), removed=(), residual_leakage=0.0, confidence=1.0
        )


def test_a_separator_returning_the_customer_channel_stores_nothing(
    tmp_path: Path, sources: dict[str, np.ndarray], policy: Policy, vault: Vault, log: AuditLog
) -> None:
    # It used to be stored as "agent-only" audio: two channels, the customer's included.
    path, stereo = _stereo_file(tmp_path, sources)
    with pytest.raises(PipelineError, match="2 channels") as raised:
        ingest(
            path,
            _recording("out-2", "outbound", len(stereo) / RATE, ChannelLayout.stereo()),
            policy,
            vault,
            audit=log,
            separator=_PassThrough(),
        )
    assert raised.value.step == "isolate"
    assert vault.catalog.artifacts("out-2") == []
