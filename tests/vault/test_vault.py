"""The vault facade: put/read across replicas, crypto-shredding, deletion resume, sweep, holds."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from tests.vault._helpers import PHONE, T0, recording

import strategies
from voicepriv import model
from voicepriv.audio import Audio
from voicepriv.audit import AuditLog, EventType, read_events, verify_log
from voicepriv.errors import (
    AuditError,
    ConfigError,
    IntegrityError,
    KeyDestroyedError,
    LegalHoldError,
    StorageError,
)
from voicepriv.vault import ArtifactKind, ReplicaConfig, ReplicaState, Vault
from voicepriv.vault.catalog import RecordingState
from voicepriv.vault.crypto import DecryptingReader


def test_put_and_read_back_with_metadata(vault: Vault) -> None:
    data = os.urandom(1000)
    (result,) = vault.put(
        recording(),
        {ArtifactKind.TRANSCRIPT: data},
        delete_after=T0 + timedelta(days=30),
        decision='{"keep": true}',
    )
    assert result.complete and result.size == 1000
    assert vault.read(result.artifact_id) == data
    with vault.open_artifact(result.artifact_id) as stream:
        stream.seek(500)
        assert stream.read(10) == data[500:510]
    meta = vault.metadata("call-1")
    assert meta.recording == recording() and meta.decision == '{"keep": true}'
    assert vault.find_subject(model.SubjectRef(kind="phone", value="+45 12 34 56 78")) == ["call-1"]


def test_reopening_the_vault_reads_the_same_data(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as first:
        (result,) = first.put(recording(), {"export": b"hello"}, delete_after=None)
    with Vault.open(tmp_path / "v") as second:
        assert second.read(result.artifact_id) == b"hello"
    with pytest.raises(ConfigError, match="already exists"):
        Vault.create(tmp_path / "v")


def test_local_key_options_default_the_key_file_and_refuse_create(tmp_path: Path) -> None:
    # the local provider's key file defaults to master.key
    with Vault.create(tmp_path / "v", key_options={}) as vault:
        assert dict(vault.config.key_options) == {"path": "master.key"}
    assert (tmp_path / "v" / "master.key").exists()
    # kept in vault.toml, `create` would make a new master key whenever the file went missing
    # (options without `path` used to fail here with a bare KeyError, after making the folder)
    with pytest.raises(ConfigError, match="'create' is not kept"):
        Vault.create(tmp_path / "w", key_options={"create": True})
    assert not (tmp_path / "w").exists()


def test_catalog_and_key_store_hold_no_clear_subject_or_evidence(
    vault: Vault, tmp_path: Path
) -> None:
    vault.put(recording(), {"transcript": b"x"}, delete_after=None)
    for path in (tmp_path / "vault").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert PHONE.encode() not in blob and b"12345678" not in blob, path
            assert b"ivr:42" not in blob and b"agent-7" not in blob, path


def test_audio_seeks_to_a_time_offset(vault: Vault) -> None:
    rate = 8000
    t = np.arange(rate * 3) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    vault.add_recording(recording(), delete_after=None)
    result = vault.put_audio(
        "call-1", ArtifactKind.AGENT_AUDIO, Audio(samples=samples, sample_rate=rate)
    )
    part = vault.read_audio(result.artifact_id, start_s=1.25, end_s=1.5)
    assert part.frames == rate // 4 and part.sample_rate == rate
    np.testing.assert_allclose(part.samples[:, 0], samples[10000:12000], atol=1 / 32767)
    lossless = vault.put_audio(
        "call-1", "full_audio", Audio(samples=samples, sample_rate=rate), sample_format="pcm_f32le"
    )
    np.testing.assert_array_equal(
        vault.read_audio(lossless.artifact_id, start_s=2.0).samples[:, 0], samples[16000:]
    )


def test_no_plaintext_on_disk_after_put(vault: Vault, tmp_path: Path) -> None:
    marker = b"PLAINTEXT-AUDIO-MARKER-" + os.urandom(16).hex().encode()
    data = (marker + os.urandom(200)) * 50

    def scan(folder: Path) -> list[Path]:
        found = []
        for path in folder.rglob("*"):
            try:
                if path.is_file() and marker in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
        return found

    before = set(Path(tempfile.gettempdir()).iterdir())
    vault.put(recording(), {"agent_audio": [data[:777], data[777:]]}, delete_after=None)
    assert scan(tmp_path) == []
    new_temp = set(Path(tempfile.gettempdir()).iterdir()) - before
    for entry in new_temp:
        if entry.is_dir():
            assert scan(entry) == []
        elif entry.is_file():
            assert marker not in entry.read_bytes()


def test_crypto_shredding_makes_a_copied_replica_unreadable(vault: Vault, tmp_path: Path) -> None:
    data = os.urandom(500)
    (result,) = vault.put(recording(), {"agent_audio": data}, delete_after=None)
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "vault" / "objects", backup)
    (copied,) = backup.rglob("*.vpv")
    unwrap = vault.keys.unwrapper(result.artifact_id)
    with DecryptingReader(copied.open("rb"), unwrap) as stream:  # readable before erasure
        assert stream.read() == data
    receipt = vault.delete("call-1", "erasure_request")
    assert receipt.key_destroyed and receipt.artifacts == (result.artifact_id,)
    assert all(r.verified_absent for r in receipt.replicas)
    assert "12345678" not in receipt.to_json()
    assert not list((tmp_path / "vault" / "objects").rglob("*.vpv"))
    with pytest.raises(KeyDestroyedError):
        DecryptingReader(copied.open("rb"), unwrap)
    with pytest.raises(KeyDestroyedError):
        vault.read(result.artifact_id)
    with pytest.raises(KeyDestroyedError):
        vault.metadata("call-1")
    assert vault.find_subject(model.SubjectRef(kind="phone", value=PHONE)) == []
    assert vault.delete("call-1", "erasure_request") == receipt  # idempotent


class _CrashError(Exception):
    pass


@pytest.mark.parametrize(
    "crash_after", ["started", "key_destroyed", "replicas_deleted", "verified"]
)
def test_deletion_resumes_after_a_crash_between_steps(tmp_path: Path, crash_after: str) -> None:
    replicas = (
        ReplicaConfig(name="a", url=str(tmp_path / "rep-a")),
        ReplicaConfig(name="b", url=str(tmp_path / "rep-b")),
    )
    vault = Vault.create(tmp_path / "v", replicas=replicas, chunk_size=64)
    results = vault.put(
        recording(), {"agent_audio": b"a" * 300, "transcript": b"t"}, delete_after=T0
    )

    def crash(step: str) -> None:
        if step == crash_after:
            raise _CrashError(step)

    vault._after_step = crash
    with pytest.raises(_CrashError):
        vault.delete("call-1", "erasure_request")
    vault.close()  # the process "dies"; a new one opens the vault
    resumed = Vault.open(tmp_path / "v")
    assert resumed.catalog.recording("call-1").state is RecordingState.DELETING
    report = resumed.sweep(T0 + timedelta(days=1))
    assert [r.recording_id for r in report.deleted] == ["call-1"]
    receipt = report.deleted[0]
    assert receipt.reason == "erasure_request" and receipt.key_destroyed
    assert sorted(receipt.artifacts) == sorted(r.artifact_id for r in results)
    assert len(receipt.replicas) == 4
    assert resumed.catalog.recording("call-1").state is RecordingState.DELETED
    assert not list(tmp_path.rglob("*.vpv"))
    assert resumed.delete("call-1", "other") == receipt
    resumed.close()


def test_sweep_deletes_due_recordings_and_reports_holds(vault: Vault) -> None:
    vault.put(recording("due-1"), {"transcript": b"1"}, delete_after=T0 + timedelta(days=1))
    vault.put(recording("due-held", tags=("litigation",)), {"transcript": b"2"}, delete_after=T0)
    vault.put(
        recording("later", phone="+4587654321"),
        {"transcript": b"3"},
        delete_after=T0 + timedelta(days=90),
    )
    vault.put(recording("by-subject", phone="+4511112222"), {"transcript": b"4"}, delete_after=T0)
    vault.place_hold(
        model.LegalHold(id="case-9", scope={"tags": ["litigation"]}, reason="case 9", placed_at=T0)
    )
    subject = vault.subject_hash(model.SubjectRef(kind="phone", value="+4511112222"))
    vault.place_hold(
        model.LegalHold(id="case-10", scope={"subjects": [subject]}, reason="case 10", placed_at=T0)
    )
    now = T0 + timedelta(days=10)
    plan = vault.sweep(now, dry_run=True)
    assert plan.planned == ("due-1",) and not plan.deleted
    assert {h.recording_id: h.holds for h in plan.held} == {
        "due-held": ("case-9",),
        "by-subject": ("case-10",),
    }
    assert vault.catalog.recording("due-1").state is RecordingState.ACTIVE
    with pytest.raises(LegalHoldError, match="case-9"):
        vault.delete("due-held", "erasure_request", now=now)
    report = vault.sweep(now)
    assert [r.recording_id for r in report.deleted] == ["due-1"]
    vault.lift_hold("case-9", now)
    after = vault.sweep(now + timedelta(seconds=1))
    assert [r.recording_id for r in after.deleted] == ["due-held"]
    assert [h.recording_id for h in after.held] == ["by-subject"]
    assert vault.catalog.recording("later").state is RecordingState.ACTIVE


def _log(vault: Vault, name: str = "audit.jsonl") -> AuditLog:
    return AuditLog(vault.config.root / name, signer=vault.provider, sinks=[])


def test_delete_and_sweep_log_each_deletion_when_given_a_log(vault: Vault) -> None:
    for rid in ("gone-1", "due-1", "due-2"):
        vault.put(
            recording(rid, phone=f"+45{rid[-1]}1112222"), {"transcript": b"x"}, delete_after=T0
        )
    log = _log(vault)
    receipt = vault.delete("gone-1", "erasure_request", audit=log)
    report = vault.sweep(T0 + timedelta(days=1), audit=log)
    again = vault.delete("gone-1", "erasure_request", audit=log)
    assert again == receipt
    events = list(read_events(log.path))
    assert [e.type for e in events] == [EventType.DELETION] * 4
    assert [e.data["recording"] for e in events] == ["gone-1", "due-1", "due-2", "gone-1"]
    reasons = [e.data["reason"] for e in events]
    assert reasons == ["erasure_request", "retention", "retention", "erasure_request"]
    assert all(e.data["key_destroyed"] for e in events[:3])
    assert [r.recording_id for r in report.deleted] == ["due-1", "due-2"]
    # A repeated request is logged as such, not as a second deletion.
    assert "already_deleted" not in events[0].data and events[3].data["already_deleted"] is True
    verify_log(log.path, vault.provider.verify_key())


def test_nothing_is_deleted_when_the_log_cannot_take_the_event(
    vault: Vault, tmp_path: Path
) -> None:
    vault.put(recording("due-1"), {"transcript": b"x"}, delete_after=T0)
    (tmp_path / "a-file").write_text("x")
    unwritable = AuditLog(tmp_path / "a-file" / "audit.jsonl", signer=vault.provider, sinks=[])
    with pytest.raises(AuditError):
        vault.delete("due-1", "erasure_request", audit=unwritable)
    with pytest.raises(AuditError):
        vault.sweep(T0 + timedelta(days=1), audit=unwritable)
    with pytest.raises(ConfigError, match="phone"):
        vault.delete("due-1", "caller-07700900123", audit=_log(vault))
    assert vault.catalog.recording("due-1").state is RecordingState.ACTIVE
    assert not vault.catalog.deletion("due-1")
    assert not (vault.config.root / "audit.jsonl").exists()


def test_both_replicas_written_and_verified(two_replicas: Vault, tmp_path: Path) -> None:
    data = os.urandom(3000)
    (result,) = two_replicas.put(recording(), {"agent_audio": data}, delete_after=None)
    assert result.replicas == {"a": None, "b": None}
    assert len(list((tmp_path / "rep-a").rglob("*.vpv"))) == 1
    assert len(list((tmp_path / "rep-b").rglob("*.vpv"))) == 1
    assert two_replicas.verify().ok


def test_corrupt_replica_is_found_and_repaired(two_replicas: Vault, tmp_path: Path) -> None:
    data = os.urandom(3000)
    (result,) = two_replicas.put(recording(), {"agent_audio": data}, delete_after=None)
    (obj,) = (tmp_path / "rep-b").rglob("*.vpv")
    raw = bytearray(obj.read_bytes())
    raw[-40] ^= 0x10
    obj.write_bytes(bytes(raw))
    report = two_replicas.verify()
    assert [(p.location, p.status) for p in report.problems] == [("b", "corrupt")]
    assert two_replicas.read(result.artifact_id) == data  # served by the healthy replica
    repaired = two_replicas.repair()
    assert repaired.repaired == ((result.artifact_id, "b"),)
    assert two_replicas.verify().ok


def test_failed_replica_write_is_recorded_and_retried(two_replicas: Vault) -> None:
    real = two_replicas.storages["b"]

    class Broken:
        url = real.url

        def write(self, key: str, chunks: object) -> None:
            for _ in chunks:  # type: ignore[attr-defined]
                raise StorageError("storage b: disk full")

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    two_replicas.storages["b"] = Broken()  # type: ignore[assignment]
    data = os.urandom(700)
    (result,) = two_replicas.put(recording(), {"transcript": data}, delete_after=None)
    assert result.replicas["a"] is None and "disk full" in str(result.replicas["b"])
    (state_b,) = [r for r in two_replicas.catalog.replicas(result.artifact_id) if r.location == "b"]
    assert state_b.state is ReplicaState.FAILED and "disk full" in (state_b.error or "")
    two_replicas.storages["b"] = real
    assert two_replicas.repair().repaired == ((result.artifact_id, "b"),)
    assert two_replicas.verify().ok
    assert not real.exists("nothing") and real.exists(state_b.object_key)


def test_every_replica_failing_keeps_nothing(vault: Vault) -> None:
    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise RuntimeError("caller failed")

    vault.add_recording(recording(), delete_after=None)
    with pytest.raises(RuntimeError, match="caller failed"):
        vault.put_artifact("call-1", "export", broken())
    assert not list(vault.storages["local"].keys())


def test_rotation_keeps_everything_readable(vault: Vault, tmp_path: Path) -> None:
    (result,) = vault.put(recording(), {"transcript": b"before"}, delete_after=None)
    (obj,) = (tmp_path / "vault" / "objects").rglob("*.vpv")
    sealed_before = obj.read_bytes()
    old = vault.provider.current_key_id()
    new = vault.rotate_key()
    assert new != old and vault.keys.master_keys_in_use() == {new}
    assert obj.read_bytes() == sealed_before  # audio not re-encrypted
    assert vault.read(result.artifact_id) == b"before"
    assert vault.find_subject(model.SubjectRef(kind="phone", value=PHONE)) == ["call-1"]
    vault.provider.retire(old)  # type: ignore[attr-defined]
    with Vault.open(tmp_path / "vault") as reopened:
        assert reopened.read(result.artifact_id) == b"before"


def test_swapped_objects_are_detected(vault: Vault, tmp_path: Path) -> None:
    one, two = vault.put(recording(), {"transcript": b"one", "export": b"two"}, delete_after=None)
    storage = vault.storages["local"]
    key_one = vault.catalog.replicas(one.artifact_id)[0].object_key
    key_two = vault.catalog.replicas(two.artifact_id)[0].object_key
    with storage.open(key_two) as handle:
        storage.write(key_one, [handle.read()])
    with pytest.raises(IntegrityError):
        vault.read(one.artifact_id)


@settings(max_examples=10, deadline=None)
@given(strategies.recordings())
def test_any_recording_round_trips_its_metadata(
    tmp_path_factory: pytest.TempPathFactory, rec: model.Recording
) -> None:
    folder = tmp_path_factory.mktemp("v")
    with Vault.create(folder / "v") as vault:
        vault.add_recording(rec, delete_after=None)
        assert vault.metadata(rec.id).recording == rec
        for subject in rec.subjects:
            assert rec.id in vault.find_subject(subject)


def test_a_failing_source_keeps_nothing_on_any_replica(two_replicas: Vault, tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"a" * 1000
        raise RuntimeError("caller failed")

    two_replicas.add_recording(recording(), delete_after=None)
    with pytest.raises(RuntimeError, match="caller failed"):
        two_replicas.put_artifact("call-1", "export", broken())
    for folder in ("rep-a", "rep-b"):
        assert [p for p in (tmp_path / folder).rglob("*") if p.is_file()] == []
    assert two_replicas.verify().checks == ()


def test_a_memory_replica_beside_a_folder(tmp_path: Path, memory_fs: None) -> None:
    replicas = (
        ReplicaConfig(name="disk", url=str(tmp_path / "disk")),
        ReplicaConfig(name="mem", url="memory://vpv-vault/replica"),
    )
    with Vault.create(tmp_path / "v", replicas=replicas, chunk_size=128) as vault:
        data = os.urandom(5000)
        (result,) = vault.put(recording(), {"agent_audio": data}, delete_after=None)
        assert result.complete
        assert len(list(vault.storages["mem"].keys())) == 1
        vault.storages["disk"].delete(vault.catalog.replicas(result.artifact_id)[0].object_key)
        assert vault.read(result.artifact_id) == data  # served from memory://
        assert [(p.location, p.status) for p in vault.verify().problems] == [("disk", "missing")]
        assert vault.repair().repaired == ((result.artifact_id, "disk"),)
        receipt = vault.delete("call-1", "retention")
        assert {r.location for r in receipt.replicas} == {"disk", "mem"}
        assert list(vault.storages["mem"].keys()) == []
