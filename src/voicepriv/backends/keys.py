"""Built-in key provider ``"local"``: master keys and an Ed25519 signing key in a local file.

The key file is JSON, created with mode ``0600`` and refused when group or others may read or
write it. It holds every master key (the current one wraps, older ones only unwrap, so
rotating never re-encrypts audio) and the Ed25519 key that signs the audit log. Plaintext keys
never leave the provider, and never appear in its repr or in an exception message.

Options (``[keys.options]`` in a vault configuration):

``path``
    the key file (required).
``create``
    ``true`` to create the file when it does not exist (``voicepriv vault init`` does).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from voicepriv.errors import ConfigError, IntegrityError, KeyProviderError
from voicepriv.plugins import hookimpl

__all__ = [
    "NAME",
    "LocalKeyProvider",
    "voicepriv_backend_names",
    "voicepriv_key_provider",
]

#: Name of this provider in vault configurations.
NAME: Final = "local"
_FORMAT: Final = 1
_NONCE: Final = 12
_OPTIONS: Final = frozenset({"path", "create"})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise KeyProviderError(f"{where}: expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise KeyProviderError(f"{where}: not valid base64") from None


def _new_key_id() -> str:
    return "mk-" + os.urandom(8).hex()


class LocalKeyProvider:
    """Master keys and the audit signing key kept in one local file (``0600``).

    :param path: the key file.
    :param create: create the file (with a first master key and a signing key) when missing.
    :raises KeyProviderError: the file is missing, malformed, or readable or writable by
        group or others.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._masters: dict[str, bytes] = {}
        self._current = ""
        self._signing: Ed25519PrivateKey | None = None
        if not self._path.exists():
            if not create:
                raise KeyProviderError(
                    f"key file {self._path}: does not exist (create it with 'voicepriv vault init')"
                )
            self._create()
        self._load()

    def __repr__(self) -> str:
        return f"LocalKeyProvider(path={str(self._path)!r}, master_keys={len(self._masters)})"

    @property
    def name(self) -> str:
        """``"local"``."""
        return NAME

    @property
    def path(self) -> Path:
        """The key file."""
        return self._path

    # ------------------------------------------------------------------ file

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, document: Mapping[str, Any], *, exclusive: bool) -> None:
        data = json.dumps(document, sort_keys=True, indent=1).encode("utf-8")
        target = self._path if exclusive else self._path.with_name(self._path.name + ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            raise KeyProviderError(f"key file {self._path}: already exists") from None
        except OSError as exc:
            raise KeyProviderError(
                f"key file {self._path}: cannot write ({exc.strerror})"
            ) from None
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not exclusive:
            target.replace(self._path)

    def _create(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        key_id = _new_key_id()
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        document = {
            "format": _FORMAT,
            "current": key_id,
            "master_keys": {key_id: _b64(AESGCM.generate_key(bit_length=256))},
            "signing_key": _b64(seed),
        }
        with self._file_lock():
            self._write(document, exclusive=True)

    def _load(self) -> None:
        try:
            info = self._path.stat()
        except OSError as exc:
            raise KeyProviderError(f"key file {self._path}: cannot read ({exc.strerror})") from None
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyProviderError(
                f"key file {self._path}: mode {mode:04o} lets group or others read or write it; "
                f"run 'chmod 600 {self._path}'"
            )
        try:
            document = json.loads(self._path.read_bytes())
        except (OSError, ValueError) as exc:
            raise KeyProviderError(
                f"key file {self._path}: not a voicepriv key file ({type(exc).__name__})"
            ) from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise KeyProviderError(f"key file {self._path}: unknown format")
        masters = document.get("master_keys")
        current = document.get("current")
        if not isinstance(masters, dict) or current not in masters:
            raise KeyProviderError(f"key file {self._path}: no current master key")
        keys = {
            str(key_id): _unb64(value, f"key file {self._path}: master key {key_id}")
            for key_id, value in masters.items()
        }
        if any(len(key) != 32 for key in keys.values()):
            raise KeyProviderError(f"key file {self._path}: a master key is not 32 bytes")
        seed = _unb64(document.get("signing_key"), f"key file {self._path}: signing key")
        if len(seed) != 32:
            raise KeyProviderError(f"key file {self._path}: the signing key is not 32 bytes")
        self._masters = keys
        self._current = str(current)
        self._signing = Ed25519PrivateKey.from_private_bytes(seed)

    # ------------------------------------------------------------------ KeyProvider

    def current_key_id(self) -> str:
        """Id of the master key new wraps use."""
        return self._current

    def key_ids(self) -> tuple[str, ...]:
        """Every master key id held (current and retired), sorted."""
        return tuple(sorted(self._masters))

    def wrap(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        """Encrypt *plaintext* with the current master key, binding *context* and the key id."""
        with self._lock:
            key_id, key = self._current, self._masters[self._current]
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext, key_id.encode("utf-8") + b"\0" + context)
        return key_id, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        """Decrypt what :meth:`wrap` returned; a wrong context or any edit is an IntegrityError."""
        with self._lock:
            key = self._masters.get(key_id)
        if key is None:
            with self._lock:
                self._load()  # another process may have rotated
                key = self._masters.get(key_id)
        if key is None:
            raise KeyProviderError(f"key file {self._path}: no master key with id {key_id!r}")
        if len(wrapped) < _NONCE + 16:
            raise IntegrityError(f"wrapped key under {key_id!r}: too short")
        try:
            return AESGCM(key).decrypt(
                wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode("utf-8") + b"\0" + context
            )
        except InvalidTag:
            raise IntegrityError(
                f"wrapped key under {key_id!r}: authentication failed (tampered or wrong context)"
            ) from None

    def rotate(self) -> str:
        """Add a new current master key and return its id; older keys stay for unwrapping."""
        with self._lock, self._file_lock():
            self._load()
            document = json.loads(self._path.read_bytes())
            key_id = _new_key_id()
            document["master_keys"][key_id] = _b64(AESGCM.generate_key(bit_length=256))
            document["current"] = key_id
            self._write(document, exclusive=False)
            self._load()
        return key_id

    def retire(self, key_id: str) -> None:
        """Destroy the master key *key_id* (never the current one).

        Call it once nothing is wrapped under it any more (after a vault rotation rewrapped
        everything): copies of the key store made before the rotation then become useless.
        """
        with self._lock, self._file_lock():
            self._load()
            if key_id == self._current:
                raise KeyProviderError(f"master key {key_id!r} is current; rotate first")
            document = json.loads(self._path.read_bytes())
            if document["master_keys"].pop(key_id, None) is not None:
                self._write(document, exclusive=False)
            self._load()

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of *message*."""
        assert self._signing is not None
        return self._signing.sign(message)

    def verify_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key matching :meth:`sign`."""
        assert self._signing is not None
        return self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _options(options: Mapping[str, Any]) -> tuple[str, bool]:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(
            f"key provider 'local': unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_OPTIONS))})"
        )
    path = options.get("path")
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ConfigError(f"key provider 'local': option 'path' must be a file path, got {path!r}")
    create = options.get("create", False)
    if not isinstance(create, bool):
        raise ConfigError(f"key provider 'local': option 'create' must be a bool, got {create!r}")
    return str(path), create


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["local"]`` for kind ``"key_provider"``, nothing otherwise."""
    return [NAME] if kind == "key_provider" else []


@hookimpl
def voicepriv_key_provider(name: str, options: Mapping[str, Any]) -> LocalKeyProvider | None:
    """The local key-file provider for name ``"local"`` (options ``path``, ``create``)."""
    if name != NAME:
        return None
    path, create = _options(options)
    return LocalKeyProvider(path, create=create)
