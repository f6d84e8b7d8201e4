"""The key hierarchy: master key (provider) -> recording key (key store) -> data key (header).

* A **data key** is fresh for every artifact. It is wrapped by its recording's key and the
  wrapped form travels in the artifact's header (:mod:`voicepriv.vault.crypto`).
* A **recording key** is fresh for every recording. It is wrapped by the provider's current
  master key and kept only in the **key store**, a small database apart from the artifacts
  and from the catalog (``keys.db`` next to the vault configuration).
* The **master key** never leaves the :class:`~voicepriv.interfaces.KeyProvider`.

**Crypto-shredding**: :meth:`KeyHierarchy.destroy` deletes a recording key's row (SQLite
``secure_delete`` overwrites it, and the WAL is truncated). Every copy of that recording's
artifacts, wherever it is (replicas, backups, a stolen disk), is unreadable from then on.

**Rotation**: :meth:`KeyHierarchy.rotate` asks the provider for a new master key and rewraps
every recording key under it; artifacts are untouched.

Subject identifiers are indexed by :meth:`KeyHierarchy.subject_hash`, an HMAC-SHA256 keyed
with a secret kept (wrapped) in the key store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voicepriv.errors import IntegrityError, KeyDestroyedError, KeyProviderError, VoiceprivError
from voicepriv.interfaces import KeyProvider
from voicepriv.model import SubjectRef, utc_now
from voicepriv.vault._db import Migration, connect, migrate
from voicepriv.vault.crypto import Header

__all__ = ["KeyHierarchy", "KeyStore"]

_NONCE: Final = 12
_T = TypeVar("_T")
_RK_CONTEXT: Final = b"voicepriv/recording-key/v1|"
_DK_CONTEXT: Final = b"voicepriv/data-key/v1|"
_SEAL_CONTEXT: Final = b"voicepriv/sealed/v1|"
_SECRET_CONTEXT: Final = b"voicepriv/secret/v1|"
_SUBJECT_SECRET: Final = "subject_hmac"

_MIGRATIONS: Final[tuple[Migration, ...]] = (
    (
        1,
        (
            "CREATE TABLE recording_keys (key_id TEXT PRIMARY KEY, master_key_id TEXT NOT NULL, "
            "wrapped BLOB NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE destroyed_keys (key_id TEXT PRIMARY KEY, destroyed_at TEXT NOT NULL)",
            "CREATE TABLE secrets (name TEXT PRIMARY KEY, master_key_id TEXT NOT NULL, "
            "wrapped BLOB NOT NULL)",
            "CREATE INDEX recording_keys_master ON recording_keys (master_key_id)",
        ),
    ),
)


def _dk_context(recording_key_id: str, artifact_id: str) -> bytes:
    return _DK_CONTEXT + recording_key_id.encode() + b"|" + artifact_id.encode()


class KeyStore:
    """Wrapped recording keys and vault secrets, in a database apart from artifacts and catalog.

    :param url: ``sqlite:`` URL or path of the store (relative to *base*).
    :param base: folder relative paths are resolved against.
    """

    def __init__(self, url: str, *, base: Path | None = None) -> None:
        self.db = connect(url, base=base, synchronous="FULL")
        if self.db.dialect == "sqlite":
            self.db.execute("PRAGMA secure_delete = ON")
        migrate(self.db, _MIGRATIONS, table="key_store_version")

    def __repr__(self) -> str:
        return f"KeyStore(where={self.db.where!r})"

    def close(self) -> None:
        """Close the database."""
        self.db.close()


class _Typed:
    """A key provider whose failures are :class:`KeyProviderError` naming it and the operation.

    A plugin's own exception (a KMS client error, a ``RuntimeError``) would otherwise escape
    untyped from a put, a read or a rotation; voicepriv's own errors pass unchanged.
    """

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider

    @property
    def name(self) -> str:
        return str(self._provider.name)

    def _call(self, operation: str, function: Callable[[], _T]) -> _T:
        try:
            return function()
        except VoiceprivError:
            raise
        except Exception as exc:
            raise KeyProviderError(
                f"key provider {self.name!r}: {operation} failed ({type(exc).__name__}: {exc})"
            ) from exc

    def current_key_id(self) -> str:
        return self._call("current_key_id", self._provider.current_key_id)

    def wrap(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        return self._call("wrap", lambda: self._provider.wrap(plaintext, context=context))

    def unwrap(self, key_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        return self._call(
            f"unwrap under {key_id}",
            lambda: self._provider.unwrap(key_id, wrapped, context=context),
        )

    def rotate(self) -> str:
        return self._call("rotate", self._provider.rotate)

    def sign(self, message: bytes) -> bytes:
        return self._call("sign", lambda: self._provider.sign(message))

    def verify_key(self) -> bytes:
        return self._call("verify_key", self._provider.verify_key)


class KeyHierarchy:
    """Creates, unwraps, destroys and rotates the keys below a provider's master key.

    :param provider: the master-key provider.
    :param store: where wrapped recording keys live.
    """

    def __init__(self, provider: KeyProvider, store: KeyStore) -> None:
        self.provider: KeyProvider = _Typed(provider)
        self.store = store
        self._subject_key: bytes | None = None

    def __repr__(self) -> str:
        return f"KeyHierarchy(provider={self.provider.name!r}, store={self.store!r})"

    # ------------------------------------------------------------------ recording keys

    def new_recording_key(self) -> str:
        """Create and store a fresh recording key; return its id (random, not derived)."""
        key_id = "rk-" + os.urandom(16).hex()
        master_id, wrapped = self.provider.wrap(
            AESGCM.generate_key(bit_length=256), context=_RK_CONTEXT + key_id.encode()
        )
        with self.store.db.transaction() as db:
            db.execute(
                "INSERT INTO recording_keys (key_id, master_key_id, wrapped, created_at) "
                "VALUES (?, ?, ?, ?)",
                (key_id, master_id, wrapped, utc_now().isoformat()),
            )
        return key_id

    def _recording_key(self, key_id: str) -> bytes:
        row = self.store.db.one(
            "SELECT master_key_id, wrapped FROM recording_keys WHERE key_id = ?", (key_id,)
        )
        if row is None:
            if self.is_destroyed(key_id):
                raise KeyDestroyedError(
                    f"recording key {key_id}: destroyed (the recording was erased)"
                )
            raise KeyProviderError(f"recording key {key_id}: not in the key store")
        return self.provider.unwrap(
            str(row[0]), bytes(row[1]), context=_RK_CONTEXT + key_id.encode()
        )

    def exists(self, key_id: str) -> bool:
        """Whether the recording key is stored (not destroyed)."""
        return (
            self.store.db.one("SELECT 1 FROM recording_keys WHERE key_id = ?", (key_id,))
            is not None
        )

    def is_destroyed(self, key_id: str) -> bool:
        """Whether the recording key was destroyed."""
        return (
            self.store.db.one("SELECT 1 FROM destroyed_keys WHERE key_id = ?", (key_id,))
            is not None
        )

    def destroy(self, key_id: str) -> bool:
        """Crypto-shred: delete the recording key for good; idempotent.

        :return: whether a stored key was deleted now (``False``: it was already gone).
        """
        with self.store.db.transaction() as db:
            existed = db.one("SELECT 1 FROM recording_keys WHERE key_id = ?", (key_id,))
            db.execute("DELETE FROM recording_keys WHERE key_id = ?", (key_id,))
            db.execute(
                "INSERT INTO destroyed_keys (key_id, destroyed_at) VALUES (?, ?) "
                "ON CONFLICT (key_id) DO NOTHING",
                (key_id, utc_now().isoformat()),
            )
        self.truncate_wal()
        return existed is not None

    def truncate_wal(self) -> bool:
        """Truncate the key store's WAL (where destroyed wrapped keys may linger).

        :return: whether it was truncated; ``False`` when another connection's read
            transaction kept the checkpoint busy through every retry.
        """
        return self.store.db.truncate_wal()

    # ------------------------------------------------------------------ data keys

    def new_data_key(self, recording_key_id: str, artifact_id: str) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form for a header.

        The wrap binds the recording key id and *artifact_id*, so an object swapped for
        another artifact's (even of the same recording) fails to open.
        """
        recording_key = self._recording_key(recording_key_id)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        wrapped = nonce + AESGCM(recording_key).encrypt(
            nonce, data_key, _dk_context(recording_key_id, artifact_id)
        )
        return data_key, wrapped

    def unwrap_data_key(
        self,
        header: Header,
        artifact_id: str,
        *,
        key_id: str | None = None,
        where: str | None = None,
    ) -> bytes:
        """The data key of artifact *artifact_id*, from its header.

        :param key_id: the recording key id the catalog expects; a header naming another is
            refused before the key store is asked (a tampered header must never reach another
            recording's key, nor make a live recording look erased).
        :param where: the replica the object came from, for messages.
        :raises KeyDestroyedError: the recording was erased.
        :raises IntegrityError: the header names another recording key, or the wrapped key was
            edited or belongs to another artifact.
        """
        at = f"artifact {artifact_id}" + ("" if where is None else f" at replica {where}")
        if key_id is not None and header.key_id != key_id:
            raise IntegrityError(
                f"{at}: its header names recording key {header.key_id!r}, not the recording's "
                f"{key_id!r} (edited header, or the object of another recording)"
            )
        recording_key = self._recording_key(header.key_id)
        wrapped = header.wrapped_key
        try:
            return AESGCM(recording_key).decrypt(
                wrapped[:_NONCE], wrapped[_NONCE:], _dk_context(header.key_id, artifact_id)
            )
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"{at}: its data key fails authentication "
                "(edited header, or the object of another artifact)"
            ) from None

    def unwrapper(
        self, artifact_id: str, *, key_id: str | None = None, where: str | None = None
    ) -> Callable[[Header], bytes]:
        """:meth:`unwrap_data_key` for one artifact, as a ``DecryptingReader`` wants it.

        :param key_id: the recording key id the catalog expects (always pass it when known).
        :param where: the replica read, for messages.
        """

        def unwrap(header: Header) -> bytes:
            return self.unwrap_data_key(header, artifact_id, key_id=key_id, where=where)

        return unwrap

    # ------------------------------------------------------------------ sealed blobs

    def seal(self, recording_key_id: str, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt a small blob (recording metadata) under a recording key."""
        key = self._recording_key(recording_key_id)
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, _SEAL_CONTEXT + context)

    def open_sealed(self, recording_key_id: str, sealed: bytes, *, context: bytes) -> bytes:
        """Decrypt what :meth:`seal` made; an edit or another context is an IntegrityError."""
        key = self._recording_key(recording_key_id)
        try:
            return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _SEAL_CONTEXT + context)
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"sealed metadata under recording key {recording_key_id} fails authentication "
                "(edited, or sealed for another recording)"
            ) from None

    # ------------------------------------------------------------------ subjects

    def _secret(self, name: str) -> bytes:
        context = _SECRET_CONTEXT + name.encode()
        row = self.store.db.one(
            "SELECT master_key_id, wrapped FROM secrets WHERE name = ?", (name,)
        )
        if row is None:
            master_id, wrapped = self.provider.wrap(os.urandom(32), context=context)
            with self.store.db.transaction() as db:
                db.execute(
                    "INSERT INTO secrets (name, master_key_id, wrapped) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, master_id, wrapped),
                )
            row = self.store.db.one(
                "SELECT master_key_id, wrapped FROM secrets WHERE name = ?", (name,)
            )
            assert row is not None
        return self.provider.unwrap(str(row[0]), bytes(row[1]), context=context)

    def subject_hash(self, subject: SubjectRef) -> str:
        """Keyed hash (HMAC-SHA256, hex) of ``subject.canonical``; the clear value is never kept."""
        if self._subject_key is None:
            self._subject_key = self._secret(_SUBJECT_SECRET)
        return hmac.new(
            self._subject_key, subject.canonical.encode("utf-8"), hashlib.sha256
        ).hexdigest()

    # ------------------------------------------------------------------ rotation

    def rotate(self, *, batch: int = 500) -> str:
        """New master key at the provider; rewrap every recording key and secret under it.

        Artifacts are not touched. Idempotent: re-running after a crash finishes the rewrap.

        :return: the new master key id.
        """
        new_id = self.provider.rotate()
        self.rewrap(batch=batch)
        return new_id

    def rewrap(self, *, batch: int = 500) -> int:
        """Rewrap every key not under the current master key; return how many were rewrapped.

        The target is the master key :meth:`~voicepriv.interfaces.KeyProvider.wrap` actually
        uses, re-learnt on every wrap: when another process rotates meanwhile, the keys already
        under the newer master key are not selected again (no endless loop).
        """
        current = self.provider.current_key_id()
        done = 0
        while True:
            rows = self.store.db.execute(
                "SELECT key_id, master_key_id, wrapped FROM recording_keys "
                "WHERE master_key_id <> ? LIMIT ?",
                (current, batch),
            )
            if not rows:
                break
            target = current
            updates = []
            for key_id, master_id, wrapped in rows:
                context = _RK_CONTEXT + str(key_id).encode()
                plain = self.provider.unwrap(str(master_id), bytes(wrapped), context=context)
                new_master, new_wrapped = self.provider.wrap(plain, context=context)
                current = new_master  # the provider's current key, whoever rotated it
                if new_master != master_id:
                    updates.append((new_master, new_wrapped, key_id, master_id))
            if not updates and current == target:
                break  # nothing changes and nothing new was learnt: stop rather than spin
            with self.store.db.transaction() as db:
                db.executemany(
                    "UPDATE recording_keys SET master_key_id = ?, wrapped = ? "
                    "WHERE key_id = ? AND master_key_id = ?",
                    updates,
                )
            done += len(updates)
        for name, master_id, wrapped in self.store.db.execute(
            "SELECT name, master_key_id, wrapped FROM secrets WHERE master_key_id <> ?", (current,)
        ):
            context = _SECRET_CONTEXT + str(name).encode()
            plain = self.provider.unwrap(str(master_id), bytes(wrapped), context=context)
            new_master, new_wrapped = self.provider.wrap(plain, context=context)
            if new_master == master_id:
                continue
            with self.store.db.transaction() as db:
                db.execute(
                    "UPDATE secrets SET master_key_id = ?, wrapped = ? WHERE name = ?",
                    (new_master, new_wrapped, name),
                )
            done += 1
        return done

    def master_keys_in_use(self) -> set[str]:
        """Master key ids that still wrap something in the key store."""
        rows = self.store.db.execute(
            "SELECT DISTINCT master_key_id FROM recording_keys "
            "UNION SELECT DISTINCT master_key_id FROM secrets"
        )
        return {str(row[0]) for row in rows}
