"""The key hierarchy: per-artifact data keys, recording keys in the store, shredding, rotation."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicepriv import model
from voicepriv.backends.keys import LocalKeyProvider
from voicepriv.errors import IntegrityError, KeyDestroyedError, KeyProviderError
from voicepriv.vault import ReplicaConfig, Vault
from voicepriv.vault.crypto import DecryptingReader, encrypt_stream, new_header
from voicepriv.vault.keys import KeyHierarchy, KeyStore


@pytest.fixture
def hierarchy(tmp_path: Path) -> Iterator[KeyHierarchy]:
    provider = LocalKeyProvider(tmp_path / "master.key", create=True)
    store = KeyStore("keys.db", base=tmp_path)
    yield KeyHierarchy(provider, store)
    store.close()


def _seal(hierarchy: KeyHierarchy, rk: str, artifact: str, data: bytes) -> bytes:
    key, wrapped = hierarchy.new_data_key(rk, artifact)
    header = new_header(key_id=rk, wrapped_key=wrapped, chunk_size=64)
    return b"".join(encrypt_stream([data], data_key=key, header=header))


def test_data_key_is_bound_to_its_artifact(hierarchy: KeyHierarchy) -> None:
    rk = hierarchy.new_recording_key()
    sealed = _seal(hierarchy, rk, "a-1", b"secret words")
    assert (
        DecryptingReader(io.BytesIO(sealed), hierarchy.unwrapper("a-1")).read() == b"secret words"
    )
    with pytest.raises(IntegrityError, match="a-2"):
        DecryptingReader(io.BytesIO(sealed), hierarchy.unwrapper("a-2"))


def test_destroy_is_idempotent_and_final(hierarchy: KeyHierarchy, tmp_path: Path) -> None:
    rk = hierarchy.new_recording_key()
    other = hierarchy.new_recording_key()
    sealed = _seal(hierarchy, rk, "a-1", b"x" * 100)
    wrapped = hierarchy.store.db.one("SELECT wrapped FROM recording_keys WHERE key_id = ?", (rk,))
    assert wrapped is not None
    assert hierarchy.destroy(rk) is True
    assert hierarchy.destroy(rk) is False
    assert hierarchy.is_destroyed(rk) and not hierarchy.exists(rk) and hierarchy.exists(other)
    with pytest.raises(KeyDestroyedError):
        DecryptingReader(io.BytesIO(sealed), hierarchy.unwrapper("a-1"))
    # secure_delete + WAL truncation: the wrapped key's bytes are gone from the store's files
    for path in tmp_path.glob("keys.db*"):
        assert bytes(wrapped[0]) not in path.read_bytes(), path
    with pytest.raises(KeyProviderError, match="not in the key store"):
        hierarchy.new_data_key("rk-unknown", "a-9")


def test_subject_hash_is_keyed_stable_and_survives_rotation(
    hierarchy: KeyHierarchy, tmp_path: Path
) -> None:
    ref = model.SubjectRef(kind="phone", value="+4512345678")
    first = hierarchy.subject_hash(ref)
    assert len(first) == 64 and "12345678" not in first
    rk = hierarchy.new_recording_key()
    sealed = _seal(hierarchy, rk, "a-1", b"kept")
    hierarchy.rotate()
    fresh = KeyHierarchy(hierarchy.provider, hierarchy.store)
    assert fresh.subject_hash(ref) == first
    assert DecryptingReader(io.BytesIO(sealed), fresh.unwrapper("a-1")).read() == b"kept"
    other = tmp_path / "other"
    other.mkdir()
    elsewhere = KeyHierarchy(
        LocalKeyProvider(other / "master.key", create=True), KeyStore("k.db", base=other)
    )
    assert elsewhere.subject_hash(ref) != first  # keyed: another vault cannot link subjects


def test_reprs_show_no_key_material(hierarchy: KeyHierarchy) -> None:
    rk = hierarchy.new_recording_key()
    key, wrapped = hierarchy.new_data_key(rk, "a-1")
    header = new_header(key_id=rk, wrapped_key=wrapped)
    for text in (repr(hierarchy), repr(hierarchy.store), repr(header)):
        assert key.hex() not in text and wrapped.hex() not in text


def test_streamed_put_keeps_memory_flat(tmp_path: Path) -> None:
    replicas = (
        ReplicaConfig(name="a", url=str(tmp_path / "a")),
        ReplicaConfig(name="b", url=str(tmp_path / "b")),
    )
    with Vault.create(tmp_path / "v", replicas=replicas) as vault:
        vault.add_recording(
            model.Recording(
                id="r",
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
                duration=10,
                direction="inbound",
                parties=[{"role": "agent"}],
            ),
            delete_after=None,
        )
        block = os.urandom(1 << 20)

        def blocks() -> Iterator[bytes]:
            for _ in range(64):
                yield block

        tracemalloc.start()
        result = vault.put_artifact("r", "full_audio", blocks())
        with vault.open_artifact(result.artifact_id) as reader:
            total = sum(len(chunk) for chunk in reader.iter_chunks())
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert total == 64 << 20
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB for a 64 MiB artifact"


class _Failing:
    """A KMS plugin whose client raises its own errors once *broken* names an operation."""

    def __init__(self, inner: LocalKeyProvider) -> None:
        self.inner = inner
        self.broken: set[str] = set()
        self.name = "acme-kms"

    def _check(self, operation: str) -> None:
        if operation in self.broken:
            raise RuntimeError(f"KMS endpoint timed out during {operation}")

    def current_key_id(self) -> str:
        self._check("current_key_id")
        return self.inner.current_key_id()

    def wrap(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        self._check("wrap")
        return self.inner.wrap(plaintext, context=context)

    def unwrap(self, key_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        self._check("unwrap")
        return self.inner.unwrap(key_id, wrapped, context=context)

    def rotate(self) -> str:
        self._check("rotate")
        return self.inner.rotate()

    def sign(self, message: bytes) -> bytes:
        return self.inner.sign(message)

    def verify_key(self) -> bytes:
        return self.inner.verify_key()


def test_a_key_provider_plugins_own_errors_are_typed(tmp_path: Path) -> None:
    # A KMS client's RuntimeError used to escape a put, a read or a rotation untyped.
    failing = _Failing(LocalKeyProvider(tmp_path / "master.key", create=True))
    store = KeyStore("keys.db", base=tmp_path)
    hierarchy = KeyHierarchy(failing, store)
    rk = hierarchy.new_recording_key()
    sealed = _seal(hierarchy, rk, "a-1", b"agent audio")
    for operation, act in (
        ("wrap", hierarchy.new_recording_key),
        ("rotate", hierarchy.rotate),
        ("unwrap", lambda: hierarchy.seal(rk, b"metadata", context=b"call-1")),
    ):
        failing.broken = {operation}
        with pytest.raises(KeyProviderError, match=rf"'acme-kms': {operation}.*RuntimeError: KMS"):
            act()
    failing.broken = set()
    with DecryptingReader(io.BytesIO(sealed), hierarchy.unwrapper("a-1", key_id=rk)) as reader:
        assert reader.read() == b"agent audio"
    store.close()
