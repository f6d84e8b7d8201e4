"""The vault facade: put / open / delete / sweep / verify / repair / rotate across every replica.

A vault is a folder holding ``vault.toml`` (its configuration), the catalog, the key store and
(by default) the local key file and one local replica::

    vault = Vault.create("/srv/vault")  # embedded default: folder + SQLite + key file
    vault.put(recording, {ArtifactKind.AGENT_AUDIO: pcm_bytes}, delete_after=deadline)
    with vault.open_artifact(artifact_id) as stream: ...  # seekable, decrypts chunk by chunk
    receipt = vault.delete(recording.id, "erasure_request")
    report = vault.sweep(utc_now(), dry_run=True)
    vault.drop_purposes(recording.id, {"training"}, reason=PurposeEnd.OBJECTION)

The governing deadline of a recording is always the latest deadline of the purposes still
retaining it. :meth:`Vault.sweep` marks a purpose whose own deadline passed as expired (the
recording stays while another purpose retains it), deletes what is due except what a legal hold
or a legal-claims restriction (GDPR Art. 18(1)(c)) keeps, and removes what crashed writes left
behind (:meth:`Vault.cleanup`).

Storage and key providers come from the plugin manager, so a replica may be any fsspec URL
(``s3://bucket/prefix`` with ``storage_options``) or a vendor's scheme.

The vault never imports the policy engine: deadlines and purposes arrive as plain values.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import queue
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final, cast

import attrs
import numpy as np
import pluggy

from voicepriv import model
from voicepriv.audio import Audio
from voicepriv.audit import AuditLog, EventType, check_event_data
from voicepriv.errors import (
    ConfigError,
    IntegrityError,
    KeyDestroyedError,
    KeyProviderError,
    LegalHoldError,
    NotFoundError,
    PluginError,
    StorageError,
    VaultError,
    VoiceprivError,
)
from voicepriv.interfaces import KeyProvider, Storage, TemporaryCleaner
from voicepriv.model import LegalHold, Recording, SubjectRef, utc_now
from voicepriv.plugins import backend, get_plugin_manager
from voicepriv.vault.catalog import (
    ArtifactEntry,
    ArtifactKind,
    Catalog,
    DeletionStep,
    HoldEntry,
    NewRecording,
    PurposeChange,
    PurposeEnd,
    RecordingState,
    ReplicaState,
    RestrictionGround,
    RestrictionKind,
)
from voicepriv.vault.crypto import (
    DEFAULT_CHUNK_SIZE,
    DecryptingReader,
    encrypt_stream,
    encrypted_size,
    new_header,
)
from voicepriv.vault.keys import KeyHierarchy, KeyStore

__all__ = [
    "CLEANUP_GRACE",
    "CONFIG_NAME",
    "CleanupReport",
    "DeletionReceipt",
    "HeldBack",
    "PutResult",
    "RecordingMetadata",
    "RepairReport",
    "ReplicaCheck",
    "ReplicaConfig",
    "ReplicaReceipt",
    "SweepReport",
    "Vault",
    "VaultConfig",
    "VerifyReport",
]

#: Name of the configuration file in a vault folder.
CONFIG_NAME: Final = "vault.toml"
_CONFIG_FORMAT: Final = 1
#: How old a temporary object or an unfinished artifact must be before :meth:`Vault.sweep`
#: treats it as left by a crash (longer than any write takes).
CLEANUP_GRACE: Final = timedelta(hours=24)
_READ_BLOCK: Final = 1 << 20
#: Deletion reason of a recording rolled back because its put stored nothing.
_PUT_ROLLBACK: Final = "put_rollback"
_QUEUE_DEPTH: Final = 4
_SAMPLE_FORMATS: Final[dict[str, np.dtype[Any]]] = {
    "pcm_s16le": np.dtype("<i2"),
    "pcm_f32le": np.dtype("<f4"),
}

Data = bytes | bytearray | memoryview | Iterable[bytes] | IO[bytes]


# --------------------------------------------------------------------------- configuration


@attrs.frozen(kw_only=True)
class ReplicaConfig:
    """One location of the vault.

    :param name: short name recorded with every replica (``[A-Za-z0-9_-]``).
    :param url: root URL (any fsspec URL, or a vendor plugin's scheme); a relative path is
        resolved against the vault folder.
    :param storage_options: passed to the storage backend untouched.
    """

    name: str
    url: str
    storage_options: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ConfigError(
                f"replica name: expected letters, digits, '_' or '-', got {self.name!r}"
            )
        if not self.url:
            raise ConfigError(f"replica {self.name!r}: url is empty")


@attrs.frozen(kw_only=True)
class VaultConfig:
    """A vault's settings, as ``vault.toml`` holds them.

    :param root: the vault folder (relative paths in the file are resolved against it).
    :param replicas: where artifacts are written (at least one).
    :param catalog_url: the catalog database.
    :param key_provider: key provider name (``"local"`` by default).
    :param key_options: key provider options (a relative ``path`` is resolved against root).
    :param key_store_url: the key store database (wrapped recording keys).
    :param chunk_size: plaintext bytes per encrypted chunk.
    """

    root: Path
    replicas: tuple[ReplicaConfig, ...]
    catalog_url: str = "sqlite:catalog.db"
    key_provider: str = "local"
    key_options: Mapping[str, Any] = attrs.field(factory=lambda: {"path": "master.key"})
    key_store_url: str = "sqlite:keys.db"
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __attrs_post_init__(self) -> None:
        if not self.replicas:
            raise ConfigError("vault config: expected at least one replica")
        names = [r.name for r in self.replicas]
        if len(set(names)) != len(names):
            raise ConfigError(f"vault config: replica names repeat in {names}")

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> VaultConfig:
        """Read ``<root>/vault.toml``."""
        folder = Path(root)
        path = folder / CONFIG_NAME
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: no vault here (create one with 'voicepriv vault init')"
            ) from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read ({exc})") from None
        if document.get("format") != _CONFIG_FORMAT:
            raise ConfigError(f"{path}: format {document.get('format')!r} is not supported")
        try:
            replicas = tuple(
                ReplicaConfig(
                    name=str(r["name"]),
                    url=str(r["url"]),
                    storage_options=dict(r.get("storage_options", {})),
                )
                for r in document["replicas"]
            )
            keys = document.get("keys", {})
            return cls(
                root=folder,
                replicas=replicas,
                catalog_url=str(document.get("catalog", {}).get("url", "sqlite:catalog.db")),
                key_provider=str(keys.get("provider", "local")),
                key_options=dict(keys.get("options", {})),
                key_store_url=str(keys.get("store", "sqlite:keys.db")),
                chunk_size=int(document.get("chunk_size", DEFAULT_CHUNK_SIZE)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: malformed ({type(exc).__name__}: {exc})") from None

    def dump(self) -> str:
        """The TOML text of this configuration."""
        lines = [
            "# voicepriv vault configuration (see docs/vault.md)",
            f"format = {_CONFIG_FORMAT}",
            f"chunk_size = {self.chunk_size}",
            "",
            "[catalog]",
            f"url = {_toml(self.catalog_url)}",
            "",
            "[keys]",
            f"provider = {_toml(self.key_provider)}",
            f"store = {_toml(self.key_store_url)}",
            f"options = {_toml(dict(self.key_options))}",
        ]
        for replica in self.replicas:
            lines += [
                "",
                "[[replicas]]",
                f"name = {_toml(replica.name)}",
                f"url = {_toml(replica.url)}",
                f"storage_options = {_toml(dict(replica.storage_options))}",
            ]
        return "\n".join(lines) + "\n"

    def resolve(self, url: str) -> str:
        """*url* with a relative local path made absolute against the root."""
        if "://" in url or url.startswith(("sqlite:", "/")):
            return url
        return str((self.root / url).resolve())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise ConfigError(f"vault config: cannot write {type(value).__name__} values")


# --------------------------------------------------------------------------- results


@attrs.frozen(kw_only=True)
class PutResult:
    """One stored artifact: its id and each location's outcome (``None`` = written)."""

    artifact_id: str
    recording_id: str
    kind: ArtifactKind
    size: int
    replicas: Mapping[str, str | None]

    @property
    def complete(self) -> bool:
        """Whether every replica was written."""
        return all(error is None for error in self.replicas.values())


@attrs.frozen(kw_only=True)
class RecordingMetadata:
    """A recording's metadata and the caller's decision JSON, from the sealed catalog copy."""

    recording: Recording
    decision: str | None


@attrs.frozen(kw_only=True)
class ReplicaReceipt:
    """One replica removed by a deletion."""

    artifact_id: str
    location: str
    object_key: str
    verified_absent: bool


@attrs.frozen(kw_only=True)
class DeletionReceipt:
    """Proof of a deletion: ids, replicas, times, reason; no personal data."""

    recording_id: str
    key_id: str
    reason: str
    requested_at: datetime
    completed_at: datetime
    key_destroyed: bool
    artifacts: tuple[str, ...]
    replicas: tuple[ReplicaReceipt, ...]
    #: whether the key store's write-ahead log was truncated after the key was destroyed
    #: (``False``: another connection kept it busy, and the destroyed wrapped key may stay in
    #: ``keys.db-wal`` until the next checkpoint; ``None`` in receipts older than this field).
    key_store_wal_truncated: bool | None = None

    def to_json(self) -> str:
        """Canonical JSON of the receipt."""
        return json.dumps(
            {
                "recording_id": self.recording_id,
                "key_id": self.key_id,
                "reason": self.reason,
                "requested_at": self.requested_at.isoformat(),
                "completed_at": self.completed_at.isoformat(),
                "key_destroyed": self.key_destroyed,
                "artifacts": list(self.artifacts),
                "replicas": [attrs.asdict(r) for r in self.replicas],
                "key_store_wal_truncated": self.key_store_wal_truncated,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> DeletionReceipt:
        """Parse what :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            recording_id=data["recording_id"],
            key_id=data["key_id"],
            reason=data["reason"],
            requested_at=datetime.fromisoformat(data["requested_at"]),
            completed_at=datetime.fromisoformat(data["completed_at"]),
            key_destroyed=data["key_destroyed"],
            artifacts=tuple(data["artifacts"]),
            replicas=tuple(ReplicaReceipt(**r) for r in data["replicas"]),
            key_store_wal_truncated=data.get("key_store_wal_truncated"),
        )


@attrs.frozen(kw_only=True)
class HeldBack:
    """A recording the sweep did not delete, and why.

    :param holds: the legal holds keeping it.
    :param restrictions: the Art. 18(1) grounds of restrictions keeping it
        (``"legal_claims"``).
    """

    recording_id: str
    reason: str
    holds: tuple[str, ...] = ()
    restrictions: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CleanupReport:
    """What :meth:`Vault.cleanup` removed (or, with ``dry_run``, would remove).

    :param older_than: only leftovers from before this instant were touched.
    :param artifacts: unfinished artifacts (size ``-1``) abandoned, their objects deleted on
        every replica.
    :param temporaries: per location, the temporary objects removed.
    :param skipped: per location, why it was not cleaned (it cannot list temporary objects,
        or it failed).
    """

    older_than: datetime
    dry_run: bool
    artifacts: tuple[str, ...] = ()
    temporaries: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    skipped: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SweepReport:
    """What a retention sweep did (or, with ``dry_run``, would do)."""

    now: datetime
    dry_run: bool
    planned: tuple[str, ...]
    deleted: tuple[DeletionReceipt, ...]
    held: tuple[HeldBack, ...]
    failed: tuple[HeldBack, ...]
    #: ``(recording_id, purpose)`` of purposes whose own deadline passed while another
    #: purpose still retains the recording (marked expired by this sweep).
    expired: tuple[tuple[str, str], ...] = ()
    #: what the crash cleanup removed (``None`` when it was not run).
    cleanup: CleanupReport | None = None


@attrs.frozen(kw_only=True)
class ReplicaCheck:
    """Re-reading one replica: status ``"ok"``, ``"missing"``, ``"corrupt"`` or ``"error"``."""

    artifact_id: str
    location: str
    status: str
    detail: str = ""


@attrs.frozen(kw_only=True)
class VerifyReport:
    """Every replica checked by :meth:`Vault.verify`."""

    checks: tuple[ReplicaCheck, ...]

    @property
    def ok(self) -> bool:
        """Whether every replica read back whole and authentic."""
        return all(check.status == "ok" for check in self.checks)

    @property
    def problems(self) -> tuple[ReplicaCheck, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if check.status != "ok")


@attrs.frozen(kw_only=True)
class RepairReport:
    """Replicas rewritten by :meth:`Vault.repair`, and those still failing (with the error)."""

    repaired: tuple[tuple[str, str], ...]
    failing: tuple[ReplicaCheck, ...]


# --------------------------------------------------------------------------- helpers


class _Source:
    """Iterates the caller's data in blocks, counts bytes, remembers the caller's own error."""

    def __init__(self, data: Data) -> None:
        self._data = data
        self.count = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._blocks()
        except GeneratorExit:
            raise  # the consumer stopped reading: not the caller's error
        except BaseException as exc:
            self.error = exc
            raise

    def _blocks(self) -> Iterator[bytes]:
        data = self._data
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data).cast("B")
            self.count = len(view)
            yield view  # type: ignore[misc]
            return
        if hasattr(data, "read"):
            reader: IO[bytes] = data  # type: ignore[assignment]
            while block := reader.read(_READ_BLOCK):
                self.count += len(block)
                yield block
            return
        for block in data:
            if not isinstance(block, bytes | bytearray | memoryview):
                raise ConfigError(
                    f"artifact data: expected bytes blocks, got {type(block).__name__}"
                )
            self.count += memoryview(block).nbytes
            yield block


_END: Final = object()
_ABORT: Final = object()


class _AbortedError(Exception):
    """The producer failed; the replica writer must not commit."""


def _copy_blocks(handle: IO[bytes], location: str) -> Iterator[bytes]:
    """The blocks of *handle*, an object opened on replica *location*."""
    with _storage_errors(location, "reading an object to copy"), handle:
        while block := handle.read(_READ_BLOCK):
            yield block


@contextlib.contextmanager
def _storage_errors(location: str, action: str) -> Iterator[None]:
    """Raise what a storage backend raises while doing *action* on replica *location* as a
    :class:`StorageError` naming both (a :class:`VoiceprivError` is already typed: it passes).
    """
    try:
        yield
    except VoiceprivError:
        raise
    except Exception as exc:
        raise StorageError(
            f"replica {location!r}: {action} failed ({type(exc).__name__}: {exc})"
        ) from exc


class _ReplicaStream(io.RawIOBase):
    """A replica's object as a storage backend opened it, whose failures are
    :class:`StorageError` naming the replica: the caller of :meth:`Vault.open_artifact` reads
    it long after the vault handed it over."""

    def __init__(self, handle: IO[bytes], location: str, key: str) -> None:
        super().__init__()
        self._handle = handle
        self._where = (location, f"reading {key}")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with _storage_errors(*self._where):
            return self._handle.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with _storage_errors(*self._where):
            return self._handle.seek(offset, whence)

    def tell(self) -> int:
        with _storage_errors(*self._where):
            return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            try:
                with _storage_errors(*self._where):
                    self._handle.close()
            finally:
                super().close()


class _Tracked:
    """Chunks handed to a storage writer; remembers whether it read them to the end."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        self.ended = True


def _write(location: str, storage: Storage, key: str, chunks: Iterable[bytes]) -> None:
    """``storage.write(key, chunks)``, failing with a :class:`StorageError` naming *location*
    when the backend fails or returns before it read *chunks* to the end (the object it
    committed would be truncated)."""
    tracked = _Tracked(chunks)
    with _storage_errors(location, f"writing {key}"):
        storage.write(key, tracked)
    if not tracked.ended:
        raise StorageError(
            f"replica {location!r}: writing {key} returned before reading the data to the end "
            f"(its storage {type(storage).__name__} breaks the Storage contract); the object "
            "is incomplete"
        )


def _check_backend(backend_obj: object, protocol: type, what: str) -> None:
    """Refuse *backend_obj* unless it satisfies the runtime-checkable *protocol*.

    :param what: names the backend in the message (``"storage 's3://b' of replica 'r'"``).
    :raises PluginError: naming *what*, the Protocol and the members missing.
    """
    members = sorted(name for name in vars(protocol) if not name.startswith("_"))
    try:
        conforms = isinstance(backend_obj, protocol)
        missing = [name for name in members if not hasattr(backend_obj, name)]
        missing += [
            f"{name} (not callable)"
            for name in members
            if name not in missing
            and callable(vars(protocol)[name])
            and not callable(getattr(backend_obj, name))
        ]
    except Exception as exc:
        raise PluginError(
            f"{what}: cannot check the {type(backend_obj).__name__} its plugin gave against "
            f"voicepriv.interfaces.{protocol.__name__} ({type(exc).__name__}: {exc})"
        ) from exc
    if not conforms or missing:
        raise PluginError(
            f"{what}: its plugin gave a {type(backend_obj).__name__}, which is not a "
            f"voicepriv.interfaces.{protocol.__name__}: missing "
            f"{', '.join(missing) or 'a member its runtime check wants'}"
        )


def _artifact_kind(recording_id: str, kind: ArtifactKind | str) -> ArtifactKind:
    """*kind* as an :class:`ArtifactKind`, or a ConfigError naming the recording and kind."""
    try:
        return ArtifactKind(kind)
    except ValueError:
        raise ConfigError(
            f"recording {recording_id!r}: artifact kind {kind!r} is unknown "
            f"(expected one of {sorted(k.value for k in ArtifactKind)})"
        ) from None


def _check_instants(
    recording_id: str, delete_after: datetime | None, deadlines: Mapping[str, datetime]
) -> None:
    """Refuse naive or non-datetime deadlines, naming the recording and the purpose."""
    named = [("delete_after", delete_after)] + [
        (f"deadline of purpose {purpose!r}", due) for purpose, due in deadlines.items()
    ]
    for what, value in named:
        if value is None and what == "delete_after":
            continue
        if not isinstance(value, datetime):
            raise ConfigError(
                f"recording {recording_id!r}: {what}: expected a datetime, got {value!r}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(
                f"recording {recording_id!r}: {what}: expected a timezone-aware datetime, "
                f"got naive {value.isoformat()}"
            )


def _seconds(artifact_id: str, name: str, value: float | None) -> float | None:
    """*value* as finite seconds, or a ConfigError naming the artifact and the parameter."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"artifact {artifact_id}: {name}: expected seconds, got {value!r}"
        ) from None
    if not math.isfinite(seconds):
        raise ConfigError(f"artifact {artifact_id}: {name}: expected finite seconds, got {value!r}")
    return seconds


def _new_id(prefix: str) -> str:
    return f"{prefix}-{os.urandom(16).hex()}"


def _deletion_event(
    recording_id: str, reason: str, receipt: DeletionReceipt | None, *, already: bool = False
) -> dict[str, object]:
    """The ``deletion`` event of a recording (ids and codes only); with *receipt* ``None``,
    the shape it will have, to check before deleting."""
    return {
        "recording": recording_id,
        "reason": reason if receipt is None else receipt.reason,
        "key_destroyed": True if receipt is None else receipt.key_destroyed,
        "replicas_deleted": 0 if receipt is None else len(receipt.replicas),
        **({"already_deleted": True} if already else {}),
    }


def _check_deletion_log(audit: AuditLog, recording_ids: Sequence[str], reason: str) -> None:
    """Refuse before deleting anything when *audit* could not log these deletions."""
    audit.check_writable()
    for recording_id in recording_ids:
        check_event_data(_deletion_event(recording_id, reason, None, already=True))


def _log_deletion(audit: AuditLog, receipt: DeletionReceipt, *, already: bool) -> None:
    """Append the ``deletion`` event of *receipt* (at the real clock: when it was made)."""
    audit.append(
        EventType.DELETION,
        _deletion_event(receipt.recording_id, receipt.reason, receipt, already=already),
    )


# --------------------------------------------------------------------------- the vault


class Vault:
    """Encrypted artifacts on every configured replica, indexed by a catalog.

    Build one with :meth:`create` or :meth:`open`; close it (or use ``with``) when done.

    :param config: the vault's configuration.
    :param manager: plugin manager giving storage and key providers (default: a new one).
    :raises PluginError: a plugin gave a key provider or storage lacking a member of
        :class:`~voicepriv.interfaces.KeyProvider` / :class:`~voicepriv.interfaces.Storage`.
    """

    def __init__(self, config: VaultConfig, *, manager: pluggy.PluginManager | None = None) -> None:
        self.config = config
        manager = manager or get_plugin_manager()
        options = dict(config.key_options)
        if isinstance(options.get("path"), str):
            options["path"] = config.resolve(options["path"])
        self.provider: KeyProvider = backend(manager, "key_provider", config.key_provider, options)
        _check_backend(self.provider, KeyProvider, f"key provider {config.key_provider!r}")
        self.storages: dict[str, Storage] = {}
        for replica in config.replicas:
            url = config.resolve(replica.url)
            storage = backend(manager, "storage", url, replica.storage_options)
            _check_backend(storage, Storage, f"storage {url!r} of replica {replica.name!r}")
            self.storages[replica.name] = storage
        # Opened once every backend is known to fit: a refused plugin leaves nothing open.
        self.keys = KeyHierarchy(self.provider, KeyStore(config.key_store_url, base=config.root))
        self.catalog = Catalog(config.catalog_url, base=config.root)
        self.chunk_size = config.chunk_size
        # Test seam: called with each deletion step's name right after it is recorded.
        self._after_step: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        return f"Vault(root={str(self.config.root)!r}, replicas={list(self.storages)})"

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the catalog and the key store."""
        self.catalog.close()
        self.keys.store.close()

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        replicas: Sequence[ReplicaConfig] = (),
        key_provider: str = "local",
        key_options: Mapping[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        manager: pluggy.PluginManager | None = None,
    ) -> Vault:
        """Create a vault in folder *path* (default: one local replica ``objects/``).

        With the ``local`` key provider a key file ``master.key`` (mode 0600) is created.
        ``vault.toml`` is written last, once the storage and key-provider plugins were checked,
        so a failed ``create`` can be run again.

        :raises ConfigError: a vault already exists there, or *key_options* of the ``local``
            provider hold ``create``. Its ``path`` defaults to ``master.key``.
        :raises PluginError: a plugin gave a storage or key provider that does not fit its
            Protocol (no ``vault.toml`` is written).
        """
        root = Path(path).resolve()
        if (root / CONFIG_NAME).exists():
            raise ConfigError(f"{root / CONFIG_NAME}: a vault already exists here")
        options = dict(key_options or {})
        if key_provider == "local":
            if "create" in options:
                raise ConfigError(
                    "key provider 'local': option 'create' is not kept in vault.toml (it would "
                    "silently make a new master key whenever the key file goes missing); "
                    "create makes the key file itself"
                )
            options.setdefault("path", "master.key")
        root.mkdir(parents=True, exist_ok=True)
        config = VaultConfig(
            root=root,
            replicas=tuple(replicas) or (ReplicaConfig(name="local", url="objects"),),
            key_provider=key_provider,
            key_options=options,
            chunk_size=chunk_size,
        )
        if key_provider == "local":
            creating = dict(options, create=True)
            creating["path"] = config.resolve(str(creating["path"]))
            backend(manager or get_plugin_manager(), "key_provider", key_provider, creating)
        # Opened (every plugin checked) before the configuration is written: a refused plugin
        # leaves no vault.toml behind, so a corrected `create` can run again.
        vault = cls(config, manager=manager)
        try:
            (root / CONFIG_NAME).write_text(config.dump(), encoding="utf-8")
        except BaseException:
            vault.close()
            raise
        return vault

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, manager: pluggy.PluginManager | None = None
    ) -> Vault:
        """Open the vault in folder *path*."""
        return cls(VaultConfig.load(Path(path).resolve()), manager=manager)

    # ------------------------------------------------------------------ put

    def add_recording(
        self,
        recording: Recording,
        *,
        delete_after: datetime | None,
        deadlines: Mapping[str, datetime] | None = None,
        decision: str | None = None,
    ) -> str:
        """Catalog a recording: new recording key, keyed subject hashes, sealed metadata.

        :param delete_after: when the recording is due for deletion (``None``: no deadline;
            pass the policy's answer, never a default).
        :param deadlines: per-purpose deadlines; ``delete_after`` defaults to the latest.
        :param decision: the caller's decision JSON, kept sealed under the recording key.
        :return: the recording key id.
        """
        deadlines = dict(deadlines or {})
        _check_instants(recording.id, delete_after, deadlines)
        if delete_after is None and deadlines:
            delete_after = max(deadlines.values())
        key_id = self.keys.new_recording_key()
        try:
            metadata = json.dumps({"recording": model.to_json(recording), "decision": decision})
            sealed = self.keys.seal(
                key_id, metadata.encode("utf-8"), context=recording.id.encode("utf-8")
            )
            self.catalog.add_recording(
                NewRecording(
                    id=recording.id,
                    key_id=key_id,
                    started_at=recording.started_at,
                    duration_s=recording.duration.total_seconds(),
                    direction=recording.direction.value,
                    tags=recording.tags,
                    delete_after=delete_after,
                    deadlines=deadlines,
                    subject_hashes=frozenset(self.keys.subject_hash(s) for s in recording.subjects),
                    consents=recording.consents,
                    sealed_metadata=sealed,
                )
            )
        except BaseException:
            self.keys.destroy(key_id)
            raise
        return key_id

    def put(
        self,
        recording: Recording,
        artifacts: Mapping[ArtifactKind | str, Data],
        *,
        delete_after: datetime | None,
        deadlines: Mapping[str, datetime] | None = None,
        decision: str | None = None,
    ) -> tuple[PutResult, ...]:
        """Catalog *recording* and store each artifact on every replica.

        Every artifact kind is checked before anything is cataloged. When the first artifact
        cannot be stored, the recording is rolled back (deleted for reason ``put_rollback``
        and forgotten), so a corrected retry can put it again; once one artifact is stored,
        the recording stays and the error is raised.

        :return: one :class:`PutResult` per artifact; a failed replica is recorded there and
            in the catalog, and :meth:`repair` (also run after every put) rewrites it.
        :raises ConfigError: an artifact kind is unknown (nothing is cataloged).
        """
        kinds = [(_artifact_kind(recording.id, kind), data) for kind, data in artifacts.items()]
        self.add_recording(
            recording, delete_after=delete_after, deadlines=deadlines, decision=decision
        )
        results: list[PutResult] = []
        try:
            for kind, data in kinds:
                results.append(self.put_artifact(recording.id, kind, data))
        except BaseException as exc:
            if not results:
                self._roll_back(recording.id, exc)
            raise
        return tuple(results)

    def _roll_back(self, recording_id: str, cause: BaseException) -> None:
        """Undo :meth:`add_recording` after a put stored nothing; *cause* stays the error
        raised. Best effort: a legal hold covering the new recording, or a failing store,
        leaves it for the caller (an unfinished deletion is resumed by :meth:`sweep`), and a
        note on *cause* says so."""
        try:
            self.delete(recording_id, _PUT_ROLLBACK)
            self.catalog.forget(recording_id, reason=_PUT_ROLLBACK)
        except Exception as exc:  # the original error must stay the one raised
            cause.add_note(
                f"rollback of recording {recording_id!r} also failed: {type(exc).__name__}: {exc}"
            )

    def put_artifact(
        self,
        recording_id: str,
        kind: ArtifactKind | str,
        data: Data,
        *,
        media: Mapping[str, Any] | None = None,
    ) -> PutResult:
        """Encrypt *data* (bytes, an iterable of bytes, or a binary file) onto every replica.

        Streams: memory stays flat whatever the size; plaintext never touches a disk.

        :raises ConfigError: *kind* is unknown, or is ``"voiceprint"`` on a recording that is
            not a voiceprint entry (tag ``"voiceprint"``, made by
            :func:`voicepriv.enrollment.enroll`): a voiceprint stored elsewhere would outlive
            the agent's deletion.
        :raises StorageError: no replica could be written to the end (nothing is kept). A
            replica whose storage failed, or whose writer returned before reading the data to
            the end, is a failed replica (``PutResult.replicas`` gives its error).
        """
        kind = _artifact_kind(recording_id, kind)
        entry = self.catalog.recording(recording_id)
        if entry.state is not RecordingState.ACTIVE:
            raise VaultError(f"vault: recording {recording_id!r} is {entry.state.value}")
        # The tag is voicepriv.enrollment.VOICEPRINT_TAG (not imported: the vault does not
        # depend on enrollment).
        if kind is ArtifactKind.VOICEPRINT and "voiceprint" not in entry.tags:
            raise ConfigError(
                f"recording {recording_id!r}: artifact kind 'voiceprint' is only stored in a "
                "voiceprint entry (tag 'voiceprint'); enroll the agent with "
                "voicepriv.enrollment.enroll or `voicepriv enroll` instead"
            )
        artifact_id = _new_id("a")
        object_key = f"objects/{artifact_id[2:4]}/{artifact_id}.vpv"
        data_key, wrapped = self.keys.new_data_key(entry.key_id, artifact_id)
        header = new_header(key_id=entry.key_id, wrapped_key=wrapped, chunk_size=self.chunk_size)
        self.catalog.add_artifact(
            artifact_id=artifact_id,
            recording_id=recording_id,
            kind=kind,
            size=-1,
            stored_size=-1,
            chunk_size=self.chunk_size,
            media=media,
        )
        for name in self.storages:
            self.catalog.set_replica(artifact_id, name, object_key, ReplicaState.PENDING)
        source = _Source(data)
        try:
            errors = self._fan_out(
                encrypt_stream(source, data_key=data_key, header=header), object_key
            )
        except BaseException:
            self._abandon(artifact_id, object_key)
            raise
        if source.error is not None:
            self._abandon(artifact_id, object_key)
            raise source.error
        if all(error is not None for error in errors.values()):
            self._abandon(artifact_id, object_key)
            details = "; ".join(f"{name}: {error}" for name, error in errors.items())
            raise StorageError(
                f"vault: no replica of {kind.value} could be written ({details})"
            ) from next(error for error in errors.values() if error is not None)
        # A deletion may have run while the object was written (another thread or process):
        # commit the artifact only if the recording is still active, in one transaction with
        # the check, so a deletion starting afterwards sees (and removes) the object.
        with self.catalog.db.transaction():
            state = self._recording_state(recording_id)
            if state is RecordingState.ACTIVE:
                self.catalog.set_artifact_size(
                    artifact_id,
                    size=source.count,
                    stored_size=encrypted_size(source.count, header),
                )
                for name, error in errors.items():
                    self.catalog.set_replica(
                        artifact_id,
                        name,
                        object_key,
                        ReplicaState.OK if error is None else ReplicaState.FAILED,
                        error=None if error is None else str(error),
                        attempt=True,
                    )
        if state is not RecordingState.ACTIVE:
            self._abandon(artifact_id, object_key)
            raise VaultError(
                f"vault: recording {recording_id!r} became "
                f"{'unknown' if state is None else state.value} while artifact {artifact_id} "
                f"({kind.value}) was being written; the object was removed"
            )
        result = PutResult(
            artifact_id=artifact_id,
            recording_id=recording_id,
            kind=kind,
            size=source.count,
            replicas={n: None if e is None else str(e) for n, e in errors.items()},
        )
        if self.catalog.replicas_needing_repair():
            self.repair()
        return result

    def put_audio(
        self,
        recording_id: str,
        kind: ArtifactKind | str,
        audio: Audio,
        *,
        sample_format: str = "pcm_s16le",
        block_frames: int = 1 << 16,
    ) -> PutResult:
        """Store *audio* as raw interleaved PCM, so :meth:`read_audio` seeks to any time exactly.

        :param sample_format: ``"pcm_s16le"`` (16-bit, what telephony carries) or
            ``"pcm_f32le"`` (lossless float32).
        """
        if sample_format not in _SAMPLE_FORMATS:
            raise ConfigError(
                f"sample_format: expected one of {sorted(_SAMPLE_FORMATS)}, got {sample_format!r}"
            )
        dtype = _SAMPLE_FORMATS[sample_format]

        def blocks() -> Iterator[bytes]:
            for start in range(0, audio.frames, block_frames):
                block = audio.samples[start : start + block_frames]
                if dtype.kind == "i":
                    block = np.clip(np.rint(block * 32767.0), -32768, 32767)
                yield block.astype(dtype).tobytes()

        media = {
            "format": sample_format,
            "sample_rate": audio.sample_rate,
            "channels": int(audio.samples.shape[1]),
        }
        return self.put_artifact(recording_id, kind, blocks(), media=media)

    def _fan_out(self, stream: Iterator[bytes], key: str) -> dict[str, BaseException | None]:
        """Write *stream* to every replica at once; return each location's error or ``None``.

        A replica is written only when its writer read *stream* to the end; one that failed
        or stopped reading is fed no more (and, once every replica has, *stream* neither).
        """
        if len(self.storages) == 1:
            ((name, storage),) = self.storages.items()
            try:
                _write(name, storage, key, stream)
            except VoiceprivError as exc:
                return {name: exc}
            return {name: None}
        queues = {name: queue.Queue[object](maxsize=_QUEUE_DEPTH) for name in self.storages}
        errors: dict[str, BaseException | None] = {}

        def worker(name: str, storage: Storage, inbox: queue.Queue[object]) -> None:
            ended = False

            def items() -> Iterator[bytes]:
                nonlocal ended
                while True:
                    item = inbox.get()
                    if item is _END or item is _ABORT:
                        ended = True
                        if item is _ABORT:
                            raise _AbortedError("the artifact's data failed")
                        return
                    yield item  # type: ignore[misc]

            try:
                _write(name, storage, key, items())
            except BaseException as exc:
                errors[name] = exc  # from now on the main thread feeds it no more
                while not ended:  # but it may be blocked on a put made before it saw that
                    ended = inbox.get() in (_END, _ABORT)
            else:
                errors[name] = None

        threads = [
            threading.Thread(target=worker, args=(name, self.storages[name], inbox), daemon=True)
            for name, inbox in queues.items()
        ]
        for thread in threads:
            thread.start()
        try:
            for chunk in stream:
                # Until the stream ends, a location is in *errors* only once its writer failed.
                feeding = [inbox for name, inbox in queues.items() if name not in errors]
                if not feeding:
                    break
                for inbox in feeding:
                    inbox.put(chunk)
        except BaseException:
            for inbox in queues.values():
                inbox.put(_ABORT)
            for thread in threads:
                thread.join()
            raise
        for inbox in queues.values():
            inbox.put(_END)
        for thread in threads:
            thread.join()
        return errors

    def _recording_state(self, recording_id: str) -> RecordingState | None:
        """The recording's state now (``None`` once its rows were forgotten)."""
        try:
            return self.catalog.recording(recording_id).state
        except NotFoundError:
            return None

    def _abandon(self, artifact_id: str, object_key: str) -> None:
        """Remove what a failed put wrote. A replica is marked ``deleted`` only once its
        delete succeeded; otherwise it is marked ``failed`` and the artifact stays unfinished,
        so :meth:`cleanup` (after its grace) or :meth:`delete` removes the object later."""
        left = False
        for name, storage in self.storages.items():
            try:
                with _storage_errors(name, f"deleting {object_key}"):
                    storage.delete(object_key)
            except VoiceprivError as exc:
                left = True
                self.catalog.set_replica(
                    artifact_id,
                    name,
                    object_key,
                    ReplicaState.FAILED,
                    error=f"not removed after a failed write ({exc})",
                )
                continue
            self.catalog.set_replica_state(artifact_id, name, ReplicaState.DELETED)
        if not left:
            self.catalog.abandon_artifact(artifact_id, utc_now())

    # ------------------------------------------------------------------ read

    def open_artifact(self, artifact_id: str) -> DecryptingReader:
        """A seekable plaintext stream of an artifact, read from the first healthy replica.

        :raises KeyDestroyedError: the recording was erased.
        :raises IntegrityError: every readable replica failed authentication.
        """
        artifact = self.catalog.artifact(artifact_id)
        recording = self.catalog.recording(artifact.recording_id)
        if artifact.deleted_at is not None or recording.state is not RecordingState.ACTIVE:
            if self.keys.is_destroyed(recording.key_id):
                raise KeyDestroyedError(f"artifact {artifact_id}: erased (its key is destroyed)")
            raise NotFoundError(f"artifact {artifact_id}: deleted")
        problems: list[str] = []
        replicas = sorted(
            self.catalog.replicas(artifact_id), key=lambda r: r.state is not ReplicaState.OK
        )
        for replica in replicas:
            storage = self.storages.get(replica.location)
            if storage is None or replica.state is ReplicaState.DELETED:
                continue
            try:
                with _storage_errors(replica.location, f"reading {replica.object_key}"):
                    stream = _ReplicaStream(
                        storage.open(replica.object_key), replica.location, replica.object_key
                    )
                    reader = DecryptingReader(
                        cast(IO[bytes], stream),
                        self.keys.unwrapper(
                            artifact_id, key_id=recording.key_id, where=replica.location
                        ),
                    )
            except KeyDestroyedError:
                raise
            except (IntegrityError, StorageError, NotFoundError) as exc:
                problems.append(f"{replica.location}: {exc}")
                continue
            if reader.header.key_id != recording.key_id or reader.size != artifact.size:
                reader.close()
                problems.append(f"{replica.location}: object does not match the catalog")
                continue
            return reader
        raise IntegrityError(
            f"artifact {artifact_id}: no replica could be opened ({'; '.join(problems) or 'none'})"
        )

    def read(self, artifact_id: str) -> bytes:
        """The whole plaintext of an artifact (use :meth:`open_artifact` for large ones)."""
        with self.open_artifact(artifact_id) as reader:
            return reader.read() or b""

    def read_audio(
        self, artifact_id: str, *, start_s: float = 0.0, end_s: float | None = None
    ) -> Audio:
        """The audio between *start_s* and *end_s* of a PCM artifact, decrypting only the
        chunks that cover it."""
        start = _seconds(artifact_id, "start_s", start_s) or 0.0
        end = _seconds(artifact_id, "end_s", end_s)
        artifact = self.catalog.artifact(artifact_id)
        media = artifact.media or {}
        fmt = media.get("format")
        if fmt not in _SAMPLE_FORMATS:
            raise ConfigError(f"artifact {artifact_id}: not PCM audio (media {media!r})")
        dtype = _SAMPLE_FORMATS[str(fmt)]
        rate, channels = int(media["sample_rate"]), int(media["channels"])
        frame_bytes = dtype.itemsize * channels
        frames = artifact.size // frame_bytes
        first = min(frames, max(0, math.floor(start * rate)))
        last = frames if end is None else min(frames, max(first, math.ceil(end * rate)))
        with self.open_artifact(artifact_id) as reader:
            raw = reader.read_range(first * frame_bytes, (last - first) * frame_bytes)
        samples = np.frombuffer(raw, dtype=dtype).reshape(-1, channels).astype(np.float32)
        if dtype.kind == "i":
            samples /= 32768.0
        return Audio(samples=samples, sample_rate=rate)

    def metadata(self, recording_id: str) -> RecordingMetadata:
        """The recording and decision stored with it (decrypted from the sealed copy)."""
        entry = self.catalog.recording(recording_id)
        sealed = self.catalog.sealed_metadata(recording_id)
        if sealed is None:
            raise KeyDestroyedError(f"recording {recording_id}: erased")
        try:
            plain = self.keys.open_sealed(
                entry.key_id, sealed, context=recording_id.encode("utf-8")
            )
        except IntegrityError as exc:
            raise IntegrityError(f"recording {recording_id!r}: {exc}") from None
        document = json.loads(plain)
        return RecordingMetadata(
            recording=model.from_json(Recording, document["recording"]),
            decision=document["decision"],
        )

    def find_subject(self, subject: SubjectRef) -> list[str]:
        """Live recordings indexed under *subject* (looked up by its keyed hash)."""
        return self.catalog.recordings_for_subject(self.keys.subject_hash(subject))

    def subject_hash(self, subject: SubjectRef) -> str:
        """The keyed hash the catalog (and legal holds) use for *subject*."""
        return self.keys.subject_hash(subject)

    # ------------------------------------------------------------------ holds

    def place_hold(self, hold: LegalHold) -> None:
        """Place (or replace) a legal hold; what it covers is never deleted while in force."""
        self.catalog.place_hold(hold)

    def lift_hold(self, hold_id: str, at: datetime | None = None) -> None:
        """Lift a legal hold at *at* (default: now)."""
        self.catalog.lift_hold(hold_id, at or utc_now())

    # ------------------------------------------------------------------ purposes

    def drop_purposes(
        self,
        recording_id: str,
        purposes: Iterable[str],
        *,
        reason: PurposeEnd = PurposeEnd.WITHDRAWN,
        now: datetime | None = None,
    ) -> PurposeChange:
        """Stop retaining a recording for *purposes*; its deadline becomes the latest of the
        purposes left.

        A recording left with no purpose is due for deletion at *now*: the caller deletes it
        (:meth:`delete`) or the next :meth:`sweep` does, unless a legal hold keeps it.
        """
        return self.catalog.drop_purposes(
            recording_id, purposes, at=now or utc_now(), reason=reason
        )

    # ------------------------------------------------------------------ cleanup

    def cleanup(self, older_than: datetime, *, dry_run: bool = False) -> CleanupReport:
        """Remove what crashed writes left behind before *older_than*, on every replica.

        Unfinished artifacts (the catalog still says size ``-1``) have their object deleted at
        every location and are marked abandoned; temporary objects are removed from every
        replica whose storage can list them (:class:`~voicepriv.interfaces.TemporaryCleaner`).
        Pass an instant older than any write still running (:data:`CLEANUP_GRACE` ago).
        """
        artifacts = self.catalog.incomplete_artifacts(older_than)
        temporaries: dict[str, tuple[str, ...]] = {}
        skipped: dict[str, str] = {}
        if dry_run:
            return CleanupReport(
                older_than=older_than, dry_run=True, artifacts=tuple(a.id for a in artifacts)
            )
        abandoned: list[str] = []
        for artifact in artifacts:
            problems: list[str] = []
            for replica in self.catalog.replicas(artifact.id):
                storage = self.storages.get(replica.location)
                if storage is None:
                    problems.append(f"{replica.location}: not configured")
                    continue
                try:
                    with _storage_errors(replica.location, f"deleting {replica.object_key}"):
                        storage.delete(replica.object_key)
                except VoiceprivError as exc:
                    problems.append(f"{replica.location}: {exc}")
                    continue
                self.catalog.set_replica_state(artifact.id, replica.location, ReplicaState.DELETED)
            if problems:
                for problem in problems:
                    location, _, detail = problem.partition(": ")
                    skipped[location] = f"artifact {artifact.id}: {detail}"
                continue
            self.catalog.abandon_artifact(artifact.id, utc_now())
            abandoned.append(artifact.id)
        for name, storage in self.storages.items():
            if not isinstance(storage, TemporaryCleaner):
                skipped.setdefault(name, "its storage cannot list temporary objects")
                continue
            try:
                with _storage_errors(name, "removing temporary objects"):
                    removed = storage.remove_temporaries(older_than)
            except VoiceprivError as exc:
                skipped[name] = str(exc)
                continue
            if removed:
                temporaries[name] = tuple(removed)
        return CleanupReport(
            older_than=older_than,
            dry_run=False,
            artifacts=tuple(abandoned),
            temporaries=temporaries,
            skipped=skipped,
        )

    # ------------------------------------------------------------------ delete

    def _step(self, name: str) -> None:
        if self._after_step is not None:
            self._after_step(name)

    def delete(
        self,
        recording_id: str,
        reason: str,
        *,
        now: datetime | None = None,
        audit: AuditLog | None = None,
    ) -> DeletionReceipt:
        """Erase a recording: destroy its key, delete every replica, verify, mark the catalog.

        Idempotent and resumable: calling it again after an interruption finishes the job
        (and calling it on a deleted recording returns the stored receipt).

        :param reason: a short code (``"retention"``, ``"erasure_request"``); no personal data.
        :param now: the instant the deletion is made for (default: the real clock). Legal
            holds are checked both at *now* and at the real clock, so a hold placed after
            *now* still refuses the deletion.
        :param audit: log the deletion there (a ``deletion`` event: recording id, reason,
            whether the key was destroyed, replicas deleted). The log is checked to be
            writable, and the event to be acceptable, before anything is deleted. Called on a
            recording already deleted, the event says ``already_deleted: true``: the request
            is logged, not a second deletion.
        :raises LegalHoldError: a legal hold in force covers the recording (nothing is done).
        :raises StorageError: a replica could not be deleted; the key is already destroyed
            and a later call (or :meth:`sweep`) resumes.
        :raises AuditError: *audit* cannot be written (nothing is done).
        """
        if not reason.strip() or len(reason) > 200:
            raise ConfigError(f"deletion reason: expected 1 to 200 characters, got {reason!r}")
        if audit is None:
            return self._delete(recording_id, reason, now=now, legal_claims=False)
        _check_deletion_log(audit, [recording_id], reason)
        journal = self.catalog.deletion(recording_id)
        done_before = journal is not None and journal.receipt is not None
        receipt = self._delete(recording_id, reason, now=now, legal_claims=False)
        _log_deletion(audit, receipt, already=done_before)
        return receipt

    def _delete(
        self, recording_id: str, reason: str, *, now: datetime | None, legal_claims: bool
    ) -> DeletionReceipt:
        """:meth:`delete`; with *legal_claims*, a legal-claims restriction also refuses it."""
        now = now or utc_now()
        entry = self.catalog.recording(recording_id)
        journal = self.catalog.deletion(recording_id)
        if journal is not None and journal.receipt is not None:
            return DeletionReceipt.from_json(journal.receipt)
        if journal is None:
            # Holds are checked in the transaction that starts the deletion, at the caller's
            # *now* and at the real clock: a hold placed after the caller's *now* (a backlog
            # sweep, an erasure request that began earlier) is in force when the key is
            # destroyed, and must win.
            with self.catalog.db.transaction():
                if legal_claims:
                    kept = self._held_back(recording_id, now)
                    if kept is not None:
                        raise LegalHoldError(f"recording {recording_id}: kept ({kept.reason})")
                holds = self._holds_in_force(recording_id, now)
                if holds:
                    listed = ", ".join(f"{h.hold_id} ({h.reason}, by {h.via})" for h in holds)
                    raise LegalHoldError(f"recording {recording_id}: under legal hold {listed}")
                journal = self.catalog.begin_deletion(recording_id, reason, now)
            self._step(DeletionStep.STARTED.value)
        destroyed_now = self.keys.destroy(entry.key_id)
        self.catalog.advance_deletion(recording_id, DeletionStep.KEY_DESTROYED)
        self._step(DeletionStep.KEY_DESTROYED.value)
        artifacts = self.catalog.artifacts(recording_id)
        for artifact in artifacts:
            for replica in self.catalog.replicas(artifact.id):
                storage = self._storage_for(replica.location)
                with _storage_errors(replica.location, f"deleting {replica.object_key}"):
                    # A replica marked deleted whose object is still there (a clean-up
                    # delete that failed) is deleted again, whatever its state says.
                    if replica.state is ReplicaState.DELETED and not storage.exists(
                        replica.object_key
                    ):
                        continue
                    storage.delete(replica.object_key)
        self.catalog.advance_deletion(recording_id, DeletionStep.REPLICAS_DELETED)
        self._step(DeletionStep.REPLICAS_DELETED.value)
        receipts: list[ReplicaReceipt] = []
        for artifact in artifacts:
            for replica in self.catalog.replicas(artifact.id):
                storage = self._storage_for(replica.location)
                with _storage_errors(replica.location, f"checking {replica.object_key}"):
                    still_there = storage.exists(replica.object_key)
                if still_there:
                    raise StorageError(
                        f"recording {recording_id}: replica at {replica.location} still exists "
                        "after deletion (the key is destroyed; retry to finish)"
                    )
                self.catalog.mark_replica_deleted(artifact.id, replica.location)
                receipts.append(
                    ReplicaReceipt(
                        artifact_id=artifact.id,
                        location=replica.location,
                        object_key=replica.object_key,
                        verified_absent=True,
                    )
                )
        self.catalog.advance_deletion(recording_id, DeletionStep.VERIFIED)
        self._step(DeletionStep.VERIFIED.value)
        receipt = DeletionReceipt(
            recording_id=recording_id,
            key_id=entry.key_id,
            reason=journal.reason,
            requested_at=journal.started_at,
            completed_at=now,
            key_destroyed=destroyed_now or self.keys.is_destroyed(entry.key_id),
            artifacts=tuple(a.id for a in artifacts),
            replicas=tuple(receipts),
            key_store_wal_truncated=self.keys.truncate_wal(),
        )
        self.catalog.finish_deletion(recording_id, receipt.to_json(), now)
        # The subject index rows just removed must not linger in catalog.db-wal either; a
        # busy checkpoint is retried by the next deletion (each one truncates everything).
        self.catalog.db.truncate_wal()
        self._step(DeletionStep.FINISHED.value)
        return receipt

    def _storage_for(self, location: str) -> Storage:
        storage = self.storages.get(location)
        if storage is None:
            raise StorageError(
                f"vault: replica location {location!r} is no longer configured in "
                f"{self.config.root / CONFIG_NAME}; add it back to finish this operation"
            )
        return storage

    def _holds_in_force(self, recording_id: str, now: datetime) -> list[HoldEntry]:
        """Legal holds covering the recording in force at *now* or at the real clock."""
        found = {
            (h.hold_id, h.via): h
            for at in (now, utc_now())
            for h in self.catalog.holds_covering(recording_id, at)
        }
        return [found[key] for key in sorted(found)]

    def _held_back(self, recording_id: str, now: datetime) -> HeldBack | None:
        """Why a due recording must be kept (legal holds, legal-claims restrictions), or None.

        Checked at *now* and at the real clock (a hold or restriction placed after the
        caller's *now* is in force when the deletion happens).
        """
        holds = self._holds_in_force(recording_id, now)
        latest = max(now, utc_now())
        claims = [
            r
            for r in self.catalog.restrictions(recording_id, RestrictionKind.RESTRICTION)
            if r.ground is RestrictionGround.LEGAL_CLAIMS and r.placed_at <= latest
        ]
        if not holds and not claims:
            return None
        reasons = [f"{h.hold_id}: {h.reason} (by {h.via})" for h in holds]
        if claims:
            reasons.append(
                f"restricted under {RestrictionGround.LEGAL_CLAIMS.article}: the data subject "
                f"needs it for legal claims ({len(claims)} request(s) since "
                f"{min(r.placed_at for r in claims).isoformat()})"
            )
        return HeldBack(
            recording_id=recording_id,
            reason="; ".join(reasons),
            holds=tuple(sorted({h.hold_id for h in holds})),
            restrictions=(RestrictionGround.LEGAL_CLAIMS.value,) if claims else (),
        )

    def sweep(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = False,
        cleanup_grace: timedelta | None = CLEANUP_GRACE,
        audit: AuditLog | None = None,
    ) -> SweepReport:
        """Delete every recording past its deadline, except what a legal hold or a
        legal-claims restriction (GDPR Art. 18(1)(c)) keeps.

        Unfinished deletions are resumed first. Purposes whose own deadline passed are marked
        expired (``expired`` lists those of recordings that stay). Then :meth:`cleanup`
        removes what crashed writes left more than *cleanup_grace* before the earlier of
        *now* and the real clock (``None``: skip it). With *dry_run*, nothing changes and
        ``planned`` lists what would be deleted.

        :param audit: log each deletion there as it is made (a ``deletion`` event, as
            :meth:`delete` logs). The log is checked to be writable, and every event to be
            acceptable, before anything is deleted; a sweep interrupted half-way has logged
            each deletion it finished.
        :raises AuditError: *audit* cannot be written (nothing is done).
        """
        now = now or utc_now()
        planned: list[str] = []
        deleted: list[DeletionReceipt] = []
        held: list[HeldBack] = []
        failed: list[HeldBack] = []
        resume = self.catalog.unfinished_deletions()
        candidates = resume + [r for r in self.catalog.due_for_deletion(now) if r not in resume]
        if audit is not None and not dry_run:
            _check_deletion_log(audit, candidates, "retention")
        expired = [] if dry_run else self.catalog.expire_purposes(now)
        for recording_id in candidates:
            if recording_id not in resume:
                kept = self._held_back(recording_id, now)
                if kept is not None:
                    held.append(kept)
                    continue
            planned.append(recording_id)
            if dry_run:
                continue
            try:
                receipt = self._delete(recording_id, "retention", now=now, legal_claims=True)
                deleted.append(receipt)
            except LegalHoldError:
                # A hold or restriction placed since the check above: keep it.
                planned.remove(recording_id)
                kept = self._held_back(recording_id, now)
                held.append(kept or HeldBack(recording_id=recording_id, reason="legal hold"))
            except VaultError as exc:
                failed.append(HeldBack(recording_id=recording_id, reason=str(exc)))
            else:
                if audit is not None:
                    _log_deletion(audit, receipt, already=False)
        cleaned = None
        if cleanup_grace is not None:
            # Never younger than the grace in real time, whatever *now* the caller passes.
            cleaned = self.cleanup(min(now, utc_now()) - cleanup_grace, dry_run=dry_run)
        return SweepReport(
            now=now,
            dry_run=dry_run,
            planned=tuple(planned),
            deleted=tuple(deleted),
            held=tuple(held),
            failed=tuple(failed),
            expired=tuple(pair for pair in expired if pair[0] not in planned),
            cleanup=cleaned,
        )

    # ------------------------------------------------------------------ verify / repair

    def _check(self, artifact: ArtifactEntry, location: str, key: str, key_id: str) -> ReplicaCheck:
        storage = self.storages.get(location)
        if storage is None:
            return ReplicaCheck(
                artifact_id=artifact.id, location=location, status="error", detail="not configured"
            )
        try:
            unwrap = self.keys.unwrapper(artifact.id, key_id=key_id, where=location)
            with (
                _storage_errors(location, f"reading {key}"),
                DecryptingReader(storage.open(key), unwrap) as reader,
            ):
                if reader.header.key_id != key_id:
                    raise IntegrityError("header names another recording key")
                size = sum(len(chunk) for chunk in reader.iter_chunks())
            if size != artifact.size:
                raise IntegrityError(f"holds {size} bytes, the catalog says {artifact.size}")
        except NotFoundError as exc:
            return ReplicaCheck(
                artifact_id=artifact.id, location=location, status="missing", detail=str(exc)
            )
        except IntegrityError as exc:
            return ReplicaCheck(
                artifact_id=artifact.id, location=location, status="corrupt", detail=str(exc)
            )
        except (StorageError, KeyProviderError) as exc:
            return ReplicaCheck(
                artifact_id=artifact.id, location=location, status="error", detail=str(exc)
            )
        return ReplicaCheck(artifact_id=artifact.id, location=location, status="ok")

    def verify(self, recording_id: str | None = None) -> VerifyReport:
        """Re-read every replica of live artifacts (of one recording, or all) and authenticate it.

        A replica that fails is marked ``corrupt`` / ``failed`` in the catalog for
        :meth:`repair`; one that reads back fine is marked ``ok``.
        """
        ids = (
            [recording_id]
            if recording_id is not None
            else self.catalog.recording_ids(state=RecordingState.ACTIVE)
        )
        checks: list[ReplicaCheck] = []
        for rid in ids:
            entry = self.catalog.recording(rid)
            if entry.state is not RecordingState.ACTIVE:
                continue
            for artifact in self.catalog.artifacts(rid):
                if artifact.deleted_at is not None or artifact.size < 0:
                    continue  # gone, or still being written (or left by a crashed put)
                for replica in self.catalog.replicas(artifact.id):
                    if replica.state is ReplicaState.DELETED:
                        continue
                    check = self._check(
                        artifact, replica.location, replica.object_key, entry.key_id
                    )
                    checks.append(check)
                    state = {
                        "ok": ReplicaState.OK,
                        "corrupt": ReplicaState.CORRUPT,
                    }.get(check.status, ReplicaState.FAILED)
                    if state is not replica.state:
                        self.catalog.set_replica(
                            artifact.id,
                            replica.location,
                            replica.object_key,
                            state,
                            error=check.detail or None,
                        )
        return VerifyReport(checks=tuple(checks))

    def repair(self) -> RepairReport:
        """Rewrite every failed, pending or corrupt replica from a healthy one, then verify it."""
        repaired: list[tuple[str, str]] = []
        failing: list[ReplicaCheck] = []
        for replica in self.catalog.replicas_needing_repair():
            artifact = self.catalog.artifact(replica.artifact_id)
            if artifact.size < 0:
                continue  # still being written (or abandoned by a crash): nothing to copy yet
            recording = self.catalog.recording(artifact.recording_id)
            if recording.state is not RecordingState.ACTIVE:
                continue
            sources = [
                r
                for r in self.catalog.replicas(artifact.id)
                if r.state is ReplicaState.OK and r.location in self.storages
            ]
            error = "no healthy replica to copy from"
            copied = False
            for source in sources:
                try:
                    target = self._storage_for(replica.location)
                    with _storage_errors(source.location, f"opening {source.object_key}"):
                        handle = self.storages[source.location].open(source.object_key)
                    try:
                        _write(
                            replica.location,
                            target,
                            replica.object_key,
                            _copy_blocks(handle, source.location),
                        )
                    finally:  # the target may fail before it reads (and so closes) the source
                        with _storage_errors(source.location, "closing an object copied"):
                            handle.close()
                except VoiceprivError as exc:
                    error = str(exc)
                    continue
                check = self._check(
                    artifact, replica.location, replica.object_key, recording.key_id
                )
                if check.status == "ok":
                    copied = True
                    break
                error = check.detail
            # Keep what was written only if no deletion ran meanwhile (checked in the
            # transaction that records the outcome, so a deletion starting later removes it).
            with self.catalog.db.transaction():
                alive = self._recording_state(recording.id) is RecordingState.ACTIVE
                if alive:
                    self.catalog.set_replica(
                        artifact.id,
                        replica.location,
                        replica.object_key,
                        ReplicaState.OK if copied else ReplicaState.FAILED,
                        error=None if copied else error,
                        attempt=True,
                    )
            if not alive:
                with (
                    contextlib.suppress(VoiceprivError),
                    _storage_errors(replica.location, f"deleting {replica.object_key}"),
                ):
                    self._storage_for(replica.location).delete(replica.object_key)
            elif copied:
                repaired.append((artifact.id, replica.location))
            else:
                failing.append(
                    ReplicaCheck(
                        artifact_id=artifact.id,
                        location=replica.location,
                        status="error",
                        detail=error,
                    )
                )
        return RepairReport(repaired=tuple(repaired), failing=tuple(failing))

    # ------------------------------------------------------------------ keys

    def rotate_key(self) -> str:
        """New master key; every recording key is rewrapped under it (audio is untouched)."""
        return self.keys.rotate()
