"""Vault safety: holds placed after the caller's *now*, tampered headers, failed deletes,
deletions racing writes, rewrap against a stale master key, typed errors for bad input."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.vault._helpers import T0, recording

from voicepriv import model
from voicepriv.audio import Audio
from voicepriv.errors import (
    ConfigError,
    IntegrityError,
    KeyProviderError,
    LegalHoldError,
    StorageError,
    VaultError,
)
from voicepriv.interfaces import Storage
from voicepriv.model import utc_now
from voicepriv.vault import ArtifactKind, DeletionReceipt, ReplicaState, Vault
from voicepriv.vault.catalog import RecordingState, RestrictionGround, RestrictionKind


def _hold(rid: str, hold_id: str | None = None) -> model.LegalHold:
    return model.LegalHold(
        id=hold_id or f"lit-{rid}",
        reason="litigation",
        scope={"recordings": [rid]},
        placed_at=utc_now(),
    )


# --------------------------------------------------------------------------- 1. holds vs now


def test_sweep_with_a_past_now_keeps_recordings_under_a_hold_placed_since(vault: Vault) -> None:
    due = utc_now() - timedelta(days=2)
    vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"evidence"}, delete_after=due)
    vault.place_hold(_hold("call-1"))
    report = vault.sweep(utc_now() - timedelta(days=1), cleanup_grace=None)
    assert not report.deleted and not report.planned
    assert [(h.recording_id, h.holds) for h in report.held] == [("call-1", ("lit-call-1",))]
    assert vault.catalog.recording("call-1").state is RecordingState.ACTIVE


def test_delete_with_a_past_now_refuses_a_hold_placed_since(vault: Vault) -> None:
    vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"evidence"}, delete_after=None)
    when = utc_now()  # e.g. the start of an erasure request
    vault.place_hold(_hold("call-1"))
    with pytest.raises(LegalHoldError, match="lit-call-1"):
        vault.delete("call-1", "erasure_request", now=when - timedelta(minutes=5))
    assert vault.catalog.recording("call-1").state is RecordingState.ACTIVE
    assert vault.catalog.deletion("call-1") is None
    assert vault.keys.exists(vault.catalog.recording("call-1").key_id)


def test_sweep_keeps_a_legal_claims_restriction_placed_after_its_now(vault: Vault) -> None:
    due = utc_now() - timedelta(days=2)
    vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"evidence"}, delete_after=due)
    vault.catalog.add_restriction(
        "call-1",
        "h" * 64,
        RestrictionKind.RESTRICTION,
        at=utc_now(),
        ground=RestrictionGround.LEGAL_CLAIMS,
    )
    report = vault.sweep(utc_now() - timedelta(days=1), cleanup_grace=None)
    assert not report.deleted
    assert [h.restrictions for h in report.held] == [("legal_claims",)]


def test_a_hold_lifted_before_the_real_clock_no_longer_keeps(vault: Vault) -> None:
    vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"x"}, delete_after=T0)
    vault.place_hold(
        model.LegalHold(id="old", reason="r", scope={"recordings": ["call-1"]}, placed_at=T0)
    )
    vault.lift_hold("old", T0 + timedelta(days=1))
    report = vault.sweep(T0 + timedelta(days=2), cleanup_grace=None)
    assert [r.recording_id for r in report.deleted] == ["call-1"]


# --------------------------------------------------------------------------- 2. tampered key id


def _object_path(vault: Vault, root: Path, artifact_id: str, location: str) -> Path:
    (replica,) = [r for r in vault.catalog.replicas(artifact_id) if r.location == location]
    return root / replica.object_key


def test_a_header_naming_another_key_fails_over_and_is_reported_corrupt(
    two_replicas: Vault, tmp_path: Path
) -> None:
    data = os.urandom(500)
    (res,) = two_replicas.put(recording(), {ArtifactKind.TRANSCRIPT: data}, delete_after=None)
    path = _object_path(two_replicas, tmp_path / "rep-a", res.artifact_id, "a")
    raw = bytearray(path.read_bytes())
    raw[23 + 5] = ord("0") if raw[23 + 5] != ord("0") else ord("1")  # a hex digit of key_id
    path.write_bytes(bytes(raw))
    assert two_replicas.read(res.artifact_id) == data  # served by replica b
    report = two_replicas.verify()
    assert [(p.location, p.status) for p in report.problems] == [("a", "corrupt")]
    assert res.artifact_id in report.problems[0].detail
    assert "replica a" in report.problems[0].detail


def test_a_header_naming_an_erased_recordings_key_is_not_erased(
    two_replicas: Vault, tmp_path: Path
) -> None:
    (res,) = two_replicas.put(recording(), {ArtifactKind.TRANSCRIPT: b"live"}, delete_after=None)
    two_replicas.put(recording("call-2"), {ArtifactKind.TRANSCRIPT: b"gone"}, delete_after=None)
    two_replicas.delete("call-2", "erasure_request")
    erased = two_replicas.catalog.recording("call-2").key_id
    for location in ("a", "b"):
        path = _object_path(two_replicas, tmp_path / f"rep-{location}", res.artifact_id, location)
        raw = bytearray(path.read_bytes())
        raw[23 : 23 + len(erased)] = erased.encode()
        path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=f"artifact {res.artifact_id}") as info:
        two_replicas.read(res.artifact_id)
    assert not isinstance(info.value, KeyProviderError)
    assert {c.status for c in two_replicas.verify("call-1").checks} == {"corrupt"}


_EDITS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("append"), st.integers(1, 100), st.integers(0, 255)),
)


def test_every_byte_edit_or_truncation_is_an_integrity_error(vault: Vault, tmp_path: Path) -> None:
    (res,) = vault.put(recording(), {ArtifactKind.TRANSCRIPT: os.urandom(300)}, delete_after=None)
    path = _object_path(vault, tmp_path / "vault" / "objects", res.artifact_id, "local")
    original = path.read_bytes()
    replica = vault.catalog.replicas(res.artifact_id)[0]

    @settings(max_examples=200, deadline=None, database=None)
    @given(_EDITS)
    def check(edit: tuple[str, int, int]) -> None:
        how, where, value = edit
        if how == "flip":
            raw = bytearray(original)
            raw[where % len(original)] ^= value
            data = bytes(raw)
        elif how == "truncate":
            data = original[: where % len(original)]
        else:
            data = original + bytes([value]) * where
        path.write_bytes(data)
        try:
            with pytest.raises(IntegrityError) as info:
                vault.read(res.artifact_id)
            assert not isinstance(info.value, KeyProviderError)
            assert [c.status for c in vault.verify().checks] == ["corrupt"]
        finally:
            vault.catalog.set_replica(res.artifact_id, "local", replica.object_key, replica.state)

    check()
    path.write_bytes(original)


# --------------------------------------------------------------------------- 3. failed clean-up


class _CommitsThenTimesOut:
    """Writes land, then report a timeout; the first delete fails (network down)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.failing_deletes = 1

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        self.inner.write(key, chunks)
        raise StorageError(f"storage: timeout after writing {key!r}")

    def delete(self, key: str) -> None:
        if self.failing_deletes:
            self.failing_deletes -= 1
            raise StorageError(f"storage: network down deleting {key!r}")
        self.inner.delete(key)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_failed_clean_up_delete_is_not_marked_deleted_and_erasure_finishes(
    vault: Vault,
) -> None:
    real = vault.storages["local"]
    vault.storages["local"] = _CommitsThenTimesOut(real)  # type: ignore[assignment]
    vault.add_recording(recording(), delete_after=None)
    with pytest.raises(StorageError, match="no replica"):
        vault.put_artifact("call-1", ArtifactKind.TRANSCRIPT, os.urandom(300))
    (artifact,) = vault.catalog.artifacts("call-1")
    (replica,) = vault.catalog.replicas(artifact.id)
    assert real.exists(replica.object_key)
    assert replica.state is ReplicaState.FAILED and "not removed" in (replica.error or "")
    assert artifact.deleted_at is None  # left for cleanup() / delete()
    vault.storages["local"] = real
    receipt = vault.delete("call-1", "erasure_request")
    assert [r.verified_absent for r in receipt.replicas] == [True]
    assert not real.exists(replica.object_key)


def test_delete_removes_an_object_left_behind_a_replica_marked_deleted(vault: Vault) -> None:
    (res,) = vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"x" * 100}, delete_after=None)
    vault.catalog.set_replica_state(res.artifact_id, "local", ReplicaState.DELETED)
    (replica,) = vault.catalog.replicas(res.artifact_id)
    receipt = vault.delete("call-1", "erasure_request")
    assert receipt.replicas[0].verified_absent
    assert not vault.storages["local"].exists(replica.object_key)


# --------------------------------------------------------------------------- 4. delete races


def test_a_deletion_during_put_leaves_no_object_and_put_raises(vault: Vault) -> None:
    vault.add_recording(recording(), delete_after=None)
    receipts = []

    def data() -> Iterator[bytes]:
        yield os.urandom(200)
        receipts.append(vault.delete("call-1", "erasure_request"))  # a concurrent erasure
        yield os.urandom(200)

    with pytest.raises(VaultError, match=r"call-1.*deleted while artifact"):
        vault.put_artifact("call-1", ArtifactKind.TRANSCRIPT, data())
    assert all(r.verified_absent for r in receipts[0].replicas)
    assert not list(vault.storages["local"].keys())
    (artifact,) = vault.catalog.artifacts("call-1")
    assert {r.state for r in vault.catalog.replicas(artifact.id)} == {ReplicaState.DELETED}


def test_a_deletion_during_repair_leaves_no_object(two_replicas: Vault, tmp_path: Path) -> None:
    (res,) = two_replicas.put(recording(), {ArtifactKind.TRANSCRIPT: b"x" * 300}, delete_after=None)
    key = two_replicas.catalog.replicas(res.artifact_id)[0].object_key
    two_replicas.storages["b"].delete(key)
    two_replicas.catalog.set_replica(res.artifact_id, "b", key, ReplicaState.FAILED)
    source = two_replicas.storages["a"]
    real_open = source.open
    receipts = []

    def open_then_erase(k: str) -> IO[bytes]:
        handle = real_open(k)
        if not receipts:
            receipts.append(two_replicas.delete("call-1", "erasure_request"))
        return handle

    source.open = open_then_erase  # type: ignore[method-assign]
    report = two_replicas.repair()
    assert report.repaired == () and report.failing == ()
    assert all(r.verified_absent for r in receipts[0].replicas)
    assert not list((tmp_path / "rep-a").rglob("*.vpv"))
    assert not list((tmp_path / "rep-b").rglob("*.vpv"))


# --------------------------------------------------------------------------- 5. stale rewrap


def _limit_wraps(vault: Vault, limit: int = 50) -> None:
    real = vault.provider.wrap
    calls = [0]

    def wrap(plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        calls[0] += 1
        if calls[0] > limit:
            raise AssertionError(f"more than {limit} wraps: rewrap is looping")
        return real(plaintext, context=context)

    vault.provider.wrap = wrap  # type: ignore[method-assign]


def test_rewrap_from_a_handle_opened_before_another_rotation_ends(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", chunk_size=64) as vault:
        vault.add_recording(recording(), delete_after=None)
        with Vault.open(tmp_path / "v") as stale, Vault.open(tmp_path / "v") as other:
            new = other.rotate_key()
            _limit_wraps(stale)
            stale.keys.rewrap(batch=1)
            assert stale.keys.master_keys_in_use() == {new}


def test_overlapping_rotations_end_under_the_newest_master_key(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", chunk_size=64) as vault:
        vault.add_recording(recording(), delete_after=None)
        vault.add_recording(recording("call-2"), delete_after=None)
        with Vault.open(tmp_path / "v") as a, Vault.open(tmp_path / "v") as b:
            real_rotate = a.provider.rotate
            newest = []

            def interleaved() -> str:
                made = real_rotate()
                newest.append(b.rotate_key())  # B rotates between A's rotate and A's rewrap
                return made

            a.provider.rotate = interleaved  # type: ignore[method-assign]
            _limit_wraps(a)
            a.rotate_key()
            assert a.keys.master_keys_in_use() == {newest[0]}
        assert vault.metadata("call-1").recording.id == "call-1"


# --------------------------------------------------------------------------- 7. put kinds


def test_an_unknown_kind_is_refused_before_anything_is_cataloged(vault: Vault) -> None:
    with pytest.raises(ConfigError, match=r"recording 'call-1': artifact kind 'transcipt'"):
        vault.put(recording(), {"transcipt": b"hello"}, delete_after=None)
    assert vault.catalog.recording_ids() == []
    (result,) = vault.put(recording(), {"transcript": b"hello"}, delete_after=None)
    assert vault.read(result.artifact_id) == b"hello"


def test_put_artifact_names_the_recording_for_an_unknown_kind(vault: Vault) -> None:
    vault.add_recording(recording(), delete_after=None)
    with pytest.raises(ConfigError, match=r"recording 'call-1': artifact kind 'nope'"):
        vault.put_artifact("call-1", "nope", b"x")


def test_a_put_that_stores_nothing_is_rolled_back(vault: Vault) -> None:
    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        vault.put(recording(), {"transcript": broken()}, delete_after=None)
    assert vault.catalog.recording_ids() == []
    assert vault.find_subject(model.SubjectRef(kind="phone", value="+4512345678")) == []
    vault.put(recording(), {"transcript": b"retry"}, delete_after=None)
    assert vault.catalog.recording("call-1").state is RecordingState.ACTIVE


def test_a_voiceprint_is_refused_on_a_recording_that_is_not_a_voiceprint_entry(
    vault: Vault,
) -> None:
    vault.add_recording(recording(), delete_after=None)
    for kind in ("voiceprint", ArtifactKind.VOICEPRINT):
        with pytest.raises(ConfigError, match=r"recording 'call-1': artifact kind 'voiceprint'"):
            vault.put_artifact("call-1", kind, b"{}")
    assert vault.catalog.artifacts("call-1") == []
    with pytest.raises(ConfigError, match="voiceprint entry"):
        vault.put(recording("call-2"), {"voiceprint": b"{}"}, delete_after=None)
    assert vault.catalog.recording_ids() == ["call-1"]
    # the voiceprint entries enrollment makes still take them
    tagged = attrs.evolve(recording("vp-1"), tags=frozenset({"voiceprint"}))
    (stored,) = vault.put(tagged, {"voiceprint": b"{}"}, delete_after=None)
    assert vault.read(stored.artifact_id) == b"{}"


# --------------------------------------------------------------------------- 9. typed errors


@pytest.fixture
def audio_artifact(vault: Vault) -> str:
    vault.add_recording(recording(), delete_after=None)
    audio = Audio(samples=np.zeros((800, 1), np.float32), sample_rate=8000)
    return vault.put_audio("call-1", ArtifactKind.AGENT_AUDIO, audio).artifact_id


@pytest.mark.parametrize(
    ("start_s", "end_s", "name"),
    [(float("nan"), None, "start_s"), (0.0, float("inf"), "end_s"), ("x", None, "start_s")],
)
def test_read_audio_refuses_non_finite_times(
    vault: Vault, audio_artifact: str, start_s: float, end_s: float | None, name: str
) -> None:
    with pytest.raises(ConfigError, match=f"artifact {audio_artifact}: {name}"):
        vault.read_audio(audio_artifact, start_s=start_s, end_s=end_s)


def test_reader_seek_with_a_bad_whence_or_offset_is_a_config_error(
    vault: Vault, audio_artifact: str
) -> None:
    with vault.open_artifact(audio_artifact) as reader:
        with pytest.raises(ConfigError, match="whence 3"):
            reader.seek(0, 3)
        with pytest.raises(ConfigError, match="before the start"):
            reader.seek(-1)
        with pytest.raises(ConfigError, match="offset"):
            reader.seek(1.5)  # type: ignore[arg-type]


def test_naive_deadlines_are_refused_naming_the_recording_and_purpose(vault: Vault) -> None:
    aware = datetime(2027, 1, 1, tzinfo=UTC)
    naive = datetime(2027, 1, 1)
    with pytest.raises(ConfigError, match=r"recording 'call-2': deadline of purpose 'qa'"):
        vault.add_recording(
            recording("call-2"), delete_after=None, deadlines={"qa": naive, "legal": aware}
        )
    with pytest.raises(ConfigError, match=r"recording 'call-3': delete_after.*naive"):
        vault.add_recording(recording("call-3"), delete_after=naive, deadlines={"qa": aware})
    assert vault.catalog.recording_ids() == []


def test_tampered_sealed_metadata_names_the_recording(vault: Vault) -> None:
    vault.add_recording(recording(), delete_after=None)
    sealed = bytearray(vault.catalog.sealed_metadata("call-1") or b"")
    sealed[-1] ^= 1
    vault.catalog.db.execute(
        "UPDATE recordings SET sealed_metadata = ? WHERE id = ?", (bytes(sealed), "call-1")
    )
    with pytest.raises(IntegrityError, match="recording 'call-1'"):
        vault.metadata("call-1")


# --------------------------------------------------------------------------- 10. verify


def test_verify_skips_artifacts_still_being_written(vault: Vault) -> None:
    (done,) = vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"done"}, delete_after=None)
    seen = []

    def data() -> Iterator[bytes]:
        yield b"half"
        seen.append(vault.verify())  # another process verifying meanwhile
        yield b"way"

    writing = vault.put_artifact("call-1", ArtifactKind.EXPORT, data())
    (report,) = seen
    assert report.ok and [c.artifact_id for c in report.checks] == [done.artifact_id]
    assert vault.read(writing.artifact_id) == b"halfway"
    (replica,) = vault.catalog.replicas(writing.artifact_id)
    assert replica.state is ReplicaState.OK


# --------------------------------------------------------------------------- 11. WAL


def _files_holding(folder: Path, pattern: str, needle: bytes) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern) if needle in p.read_bytes())


def test_a_busy_key_store_checkpoint_is_reported_not_claimed(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", chunk_size=64) as vault:
        key_id = vault.add_recording(recording(), delete_after=None)
        row = vault.keys.store.db.one(
            "SELECT wrapped FROM recording_keys WHERE key_id = ?", (key_id,)
        )
        assert row is not None
        wrapped = bytes(row[0])
        reader = sqlite3.connect(tmp_path / "v" / "keys.db", isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM recording_keys").fetchall()
            receipt = vault.delete("call-1", "erasure_request")
            assert receipt.key_destroyed and receipt.key_store_wal_truncated is False
            assert DeletionReceipt.from_json(receipt.to_json()) == receipt
            reader.execute("COMMIT")
        finally:
            reader.close()
        assert vault.keys.truncate_wal()
        assert _files_holding(tmp_path / "v", "keys.db*", wrapped) == []


def test_erasure_leaves_no_key_or_subject_hash_in_database_files(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v", chunk_size=64) as vault:
        vault.put(recording(), {ArtifactKind.TRANSCRIPT: b"x"}, delete_after=None)
        subject = vault.subject_hash(model.SubjectRef(kind="phone", value="+4512345678"))
        receipt = vault.delete("call-1", "erasure_request")
        assert receipt.key_store_wal_truncated is True
        assert _files_holding(tmp_path / "v", "catalog.db*", subject.encode()) == []
