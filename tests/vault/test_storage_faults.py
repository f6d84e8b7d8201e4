"""Storage and key-provider plugins that break their Protocol: a writer that stops reading
early, bare ``OSError`` from writes, deletes and opens, objects that are not backends at all.

The faulty storages below wrap a replica's real storage and break one method, as a vendor
plugin might; the vault must record a failed replica, raise typed errors, keep the caller's
error when its rollback fails too, and never hang.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import pytest
from tests.vault._helpers import WrapOnlyKeys, recording

from voicepriv.errors import NotFoundError, PluginError, StorageError
from voicepriv.interfaces import Storage
from voicepriv.plugins import get_plugin_manager, hookimpl
from voicepriv.vault import ArtifactKind, ReplicaConfig, ReplicaState, Vault, VaultConfig
from voicepriv.vault.catalog import RecordingState

T = TypeVar("T")

#: Enough data for many 64-byte chunks: more than the fan-out queues hold.
DATA = os.urandom(64 * 40 + 7)


class _Wrapped:
    """A replica's real storage, delegated to method by method."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    @property
    def url(self) -> str:
        return self.inner.url

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        self.inner.write(key, chunks)

    def open(self, key: str) -> IO[bytes]:
        return self.inner.open(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return self.inner.keys(prefix)


class _StopsReading(_Wrapped):
    """Commits the first chunk only and returns as if it had written everything."""

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.inner.write(key, [chunk])
            return


class _DiskFull(_Wrapped):
    """Every write fails with a bare ``OSError`` once it has the first chunk."""

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        for _ in chunks:
            raise OSError(errno.ENOSPC, "No space left on device")


class _DiskFullDeletesFail(_DiskFull):
    """Writes and deletes both fail with a bare ``OSError``."""

    def delete(self, key: str) -> None:
        raise OSError(errno.EIO, "I/O error deleting")


class _DeletesFail(_Wrapped):
    """Deletes fail with a bare ``OSError``."""

    def delete(self, key: str) -> None:
        raise OSError(errno.EIO, "I/O error deleting")


class _OpensFail(_Wrapped):
    """Opening fails with a bare ``OSError``."""

    def open(self, key: str) -> IO[bytes]:
        raise OSError(errno.EIO, "I/O error opening")


class _FailingHandle:
    """A file object that fails with a bare ``OSError`` once its reader goes past *limit*."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self.inner, self.limit = inner, limit

    def read(self, size: int = -1) -> bytes:
        if self.inner.tell() > self.limit:
            raise OSError(errno.EIO, "connection reset while reading")
        return self.inner.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        self.inner.close()


class _ReadsFailLater(_Wrapped):
    """Opens fine; the handle's reads fail once past the first kilobyte."""

    def open(self, key: str) -> IO[bytes]:
        return _FailingHandle(self.inner.open(key), 1024)  # type: ignore[return-value]


def _in_time(call: Callable[[], T], seconds: float = 30.0) -> T:
    """*call*'s result, failing the test (instead of hanging it) when it takes too long."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (deadlocked)"
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _recording_gone(vault: Vault, recording_id: str) -> bool:
    try:
        vault.catalog.recording(recording_id)
    except NotFoundError:
        return True
    return False


# --------------------------------------------------------------------------- writers stopping early


def test_a_writer_that_stops_reading_early_fails_the_put_and_keeps_nothing(vault: Vault) -> None:
    real = vault.storages["local"]
    vault.storages["local"] = _StopsReading(real)
    with pytest.raises(StorageError, match=r"'local'.*before reading the data to the end"):
        vault.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    assert _recording_gone(vault, "call-1")  # rolled back: nothing cataloged as stored
    assert list(real.keys()) == []  # the truncated object was removed


def test_a_writer_that_stops_reading_early_beside_a_healthy_replica_neither_hangs_nor_counts(
    two_replicas: Vault,
) -> None:
    two_replicas.storages["b"] = _StopsReading(two_replicas.storages["b"])
    (result,) = _in_time(
        lambda: two_replicas.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    )
    assert result.size == len(DATA)
    assert result.replicas["a"] is None
    assert "before reading the data to the end" in str(result.replicas["b"])
    assert not result.complete  # what the ingest pipeline checks before it trusts a put
    states = {r.location: r.state for r in two_replicas.catalog.replicas(result.artifact_id)}
    assert states == {"a": ReplicaState.OK, "b": ReplicaState.FAILED}
    assert two_replicas.read(result.artifact_id) == DATA


# --------------------------------------------------------------------------- bare errors


def test_a_bare_oserror_from_the_only_replica_is_a_storage_error_and_rolls_back(
    vault: Vault,
) -> None:
    vault.storages["local"] = _DiskFull(vault.storages["local"])
    with pytest.raises(StorageError, match=r"'local'.*No space left") as raised:
        vault.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    assert isinstance(raised.value.__cause__, OSError)
    assert isinstance(raised.value.__cause__.__cause__, OSError)  # the plugin's own error
    assert _recording_gone(vault, "call-1")


def test_a_bare_oserror_on_one_replica_keeps_the_healthy_copy_and_repair_reports_it(
    two_replicas: Vault,
) -> None:
    two_replicas.storages["b"] = _DiskFull(two_replicas.storages["b"])
    (result,) = two_replicas.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    assert result.replicas["a"] is None and not result.complete
    assert "'b'" in str(result.replicas["b"]) and "No space left" in str(result.replicas["b"])
    assert two_replicas.catalog.recording("call-1").state is RecordingState.ACTIVE
    assert two_replicas.read(result.artifact_id) == DATA
    report = two_replicas.repair()  # the same bare error again: reported, not raised
    assert [(c.location, "No space left" in c.detail) for c in report.failing] == [("b", True)]


class _RefusesWrites(_Wrapped):
    """Every write fails before it reads a chunk (a read-only bucket)."""

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        raise OSError(errno.EROFS, "Read-only file system")


class _KeepsHandles(_Wrapped):
    """Remembers every handle it opened."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.handles: list[IO[bytes]] = []

    def open(self, key: str) -> IO[bytes]:
        handle = self.inner.open(key)
        self.handles.append(handle)
        return handle


def test_repair_closes_the_source_when_the_target_fails_before_reading(
    two_replicas: Vault,
) -> None:
    two_replicas.storages["b"] = _DiskFull(two_replicas.storages["b"])
    two_replicas.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    source = _KeepsHandles(two_replicas.storages["a"])
    two_replicas.storages["a"] = source
    two_replicas.storages["b"] = _RefusesWrites(two_replicas.storages["b"])
    report = two_replicas.repair()
    assert [(c.location, "Read-only" in c.detail) for c in report.failing] == [("b", True)]
    assert source.handles and all(handle.closed for handle in source.handles)


def test_a_failed_rollback_keeps_the_original_error_and_notes_the_rollback(vault: Vault) -> None:
    real = vault.storages["local"]
    vault.storages["local"] = _DiskFullDeletesFail(real)
    with pytest.raises(StorageError, match="No space left") as raised:
        vault.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    notes = getattr(raised.value, "__notes__", [])
    assert any("rollback of recording 'call-1' also failed" in n for n in notes), notes
    assert any("I/O error deleting" in n for n in notes), notes
    # The key is destroyed; the unfinished deletion resumes once the store works again.
    assert vault.catalog.recording("call-1").state is RecordingState.DELETING
    vault.storages["local"] = real
    assert [r.recording_id for r in vault.sweep(cleanup_grace=None).deleted] == ["call-1"]


def test_a_bare_oserror_deleting_is_a_failed_sweep_entry_not_a_crash(vault: Vault) -> None:
    real = vault.storages["local"]
    vault.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    vault.storages["local"] = _DeletesFail(real)
    with pytest.raises(StorageError, match=r"'local'.*I/O error deleting"):
        vault.delete("call-1", "erasure_request")
    report = vault.sweep(cleanup_grace=None)  # resumes the unfinished deletion
    assert [(f.recording_id, "I/O error deleting" in f.reason) for f in report.failed] == [
        ("call-1", True)
    ]
    vault.storages["local"] = real
    assert [r.recording_id for r in vault.sweep(cleanup_grace=None).deleted] == ["call-1"]
    assert list(real.keys()) == []


def test_a_bare_oserror_opening_a_replica_is_reported_and_read_uses_the_other(
    two_replicas: Vault,
) -> None:
    (result,) = two_replicas.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    two_replicas.storages["a"] = _OpensFail(two_replicas.storages["a"])
    assert two_replicas.read(result.artifact_id) == DATA
    report = two_replicas.verify()
    assert [(p.location, p.status) for p in report.problems] == [("a", "error")]
    assert "I/O error opening" in report.problems[0].detail


# --------------------------------------------------------------------- backends checked at open


class _NoSigning(WrapOnlyKeys):
    """A key provider lacking ``sign`` and ``verify_key``."""

    name = "half-kms"


class _WriteIsNotAMethod(_Wrapped):
    write = "not a method"  # type: ignore[assignment]


class _Backends:
    """An inline plugin giving *storage* for ``fake://`` URLs and *provider* as ``half-kms``."""

    def __init__(self, storage: object, provider: object) -> None:
        self.storage = storage
        self.provider = provider

    @hookimpl
    def voicepriv_storage(self, url: str, options: Mapping[str, Any]) -> object:
        return self.storage if url.startswith("fake://") else None

    @hookimpl
    def voicepriv_key_provider(self, name: str, options: Mapping[str, Any]) -> object:
        return self.provider if name == "half-kms" else None


def _open_with(config: VaultConfig, plugin: _Backends) -> None:
    manager = get_plugin_manager()
    manager.register(plugin, name="inline-backends")
    try:
        Vault(config, manager=manager).close()
    finally:
        manager.unregister(plugin)


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (lambda real: {"url": "fake://x"}, "missing delete, exists, open, url, write"),
        (_WriteIsNotAMethod, "missing write (not callable)"),
    ],
    ids=["dict", "write-not-callable"],
)
def test_a_storage_plugin_giving_a_non_storage_is_refused_at_open(
    tmp_path: Path, make: Callable[[Storage], object], missing: str
) -> None:
    with Vault.create(tmp_path / "v") as made:
        real = made.storages["local"]
        config = attrs.evolve(
            made.config, replicas=(ReplicaConfig(name="vendor", url="fake://bucket"),)
        )
    with pytest.raises(PluginError, match=r"'fake://bucket' of replica 'vendor'") as raised:
        _open_with(config, _Backends(make(real), _NoSigning()))
    assert "voicepriv.interfaces.Storage" in str(raised.value)
    assert missing in str(raised.value)


def test_a_key_provider_plugin_lacking_methods_is_refused_at_open(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as made:
        config = attrs.evolve(made.config, key_provider="half-kms", key_options={})
    with pytest.raises(PluginError, match=r"key provider 'half-kms'") as raised:
        _open_with(config, _Backends(None, _NoSigning()))
    assert "voicepriv.interfaces.KeyProvider: missing sign, verify_key" in str(raised.value)


def test_a_create_refused_by_a_plugin_can_be_run_again(tmp_path: Path) -> None:
    # vault.toml used to be written first: the retry then said "a vault already exists here".
    vendor = (ReplicaConfig(name="vendor", url="fake://bucket"),)
    manager = get_plugin_manager()
    plugin = _Backends({"url": "fake://bucket"}, _NoSigning())
    manager.register(plugin, name="inline-backends")
    try:
        with pytest.raises(PluginError, match="replica 'vendor'"):
            Vault.create(tmp_path / "v", replicas=vendor, manager=manager)
    finally:
        manager.unregister(plugin)
    assert not (tmp_path / "v" / "vault.toml").exists()
    with Vault.create(tmp_path / "v") as made:
        assert list(made.storages) == ["local"]


def test_a_bare_oserror_while_the_caller_reads_an_opened_artifact_is_a_storage_error(
    vault: Vault,
) -> None:
    # The vault hands the reader over; a storage's handle failing later escaped as OSError.
    (result,) = vault.put(recording(), {ArtifactKind.EXPORT: DATA}, delete_after=None)
    vault.storages["local"] = _ReadsFailLater(vault.storages["local"])
    with vault.open_artifact(result.artifact_id) as reader:
        reader.seek(len(DATA) - 10)
        with pytest.raises(StorageError, match=r"replica 'local': reading .*OSError"):
            reader.read()
