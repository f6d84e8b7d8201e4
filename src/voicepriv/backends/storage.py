"""Built-in storage: any URL fsspec knows (``file://``, ``memory://``, ``s3://`` ...).

``url`` and ``storage_options`` are handed to :func:`fsspec.core.url_to_fs` untouched, so every
option fsspec documents for a protocol works (``s3://`` needs the ``s3`` extra: s3fs).

* Writes are atomic: the object is written under a hidden temporary name beside its final
  name, flushed (``fsync`` on local files), then moved into place; readers see the whole
  object or nothing. On object stores the move is the store's copy + delete.
* Keys are relative, ``/``-separated and made of ``[A-Za-z0-9._-]`` segments; anything that
  could leave the root (``..``, absolute paths, backslashes, empty segments, and on local
  disks a symbolic link inside the root pointing outside it) raises
  :class:`~voicepriv.errors.PathEscapeError`.
* Failures raise :class:`~voicepriv.errors.StorageError` naming the location and the key.
* :meth:`FsspecStorage.remove_temporaries` removes temporary objects a crashed write left
  behind (the vault's cleanup calls it after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, Final
from urllib.parse import urlsplit, urlunsplit

import fsspec
from fsspec.core import url_to_fs

from voicepriv.errors import (
    MissingExtraError,
    NotFoundError,
    PathEscapeError,
    StorageError,
    VoiceprivError,
)
from voicepriv.plugins import hookimpl

__all__ = [
    "FsspecStorage",
    "voicepriv_backend_names",
    "voicepriv_storage",
]

_SEGMENT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TEMP_MARK: Final = ".voicepriv-tmp-"
_EXTRAS: Final = {"s3": "s3", "s3a": "s3"}


def _public_url(url: str) -> str:
    """*url* without user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class FsspecStorage:
    """An object store rooted at *url*, through fsspec.

    :param url: root URL (a local path is accepted too).
    :param options: ``storage_options`` for fsspec, passed through untouched.
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self._url = _public_url(url)
        try:
            self._fs, root = url_to_fs(url, **dict(options or {}))
        except ImportError as exc:
            scheme = urlsplit(url).scheme
            extra = _EXTRAS.get(scheme)
            hint = f"pip install 'voicepriv[{extra}]'" if extra else "install its fsspec driver"
            raise MissingExtraError(
                f"storage {self._url}: protocol {scheme!r} needs an optional package ({hint})"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise StorageError(f"storage {self._url}: cannot open ({exc})") from exc
        self._root = str(root).rstrip("/") or "/"
        self._local = "file" in _protocols(self._fs)
        with contextlib.suppress(Exception):
            self._fs.makedirs(self._root, exist_ok=True)

    def __repr__(self) -> str:
        return f"FsspecStorage(url={self._url!r})"

    @property
    def url(self) -> str:
        """The root URL, without credentials."""
        return self._url

    def _path(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise PathEscapeError(f"storage {self._url}: object key {key!r} is empty")
        segments = key.split("/")
        if (
            key.startswith("/")
            or "\\" in key
            or any(not _SEGMENT.fullmatch(seg) or seg in {".", ".."} for seg in segments)
        ):
            raise PathEscapeError(
                f"storage {self._url}: object key {key!r} is not a relative path of "
                "[A-Za-z0-9._-] segments (it could leave the storage root)"
            )
        path = posixpath.normpath(posixpath.join(self._root, key))
        if not (path + "/").startswith(self._root.rstrip("/") + "/"):
            raise PathEscapeError(f"storage {self._url}: object key {key!r} leaves the root")
        if self._local:
            # A symlinked folder inside the root would redirect the object elsewhere.
            real_root = os.path.realpath(self._root)
            real = os.path.realpath(path)
            if os.path.commonpath([real_root, real]) != real_root:
                raise PathEscapeError(
                    f"storage {self._url}: object key {key!r} resolves outside the root "
                    "(through a symbolic link)"
                )
        return path

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        """Store *chunks* under *key* atomically (temporary name, flush, move into place)."""
        path = self._path(key)
        folder, name = posixpath.split(path)
        temp = posixpath.join(folder, f".{name}{_TEMP_MARK}{os.urandom(8).hex()}")
        try:
            self._fs.makedirs(folder, exist_ok=True)
            with self._fs.open(temp, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                if self._local:
                    with contextlib.suppress(AttributeError, OSError, ValueError):
                        os.fsync(handle.fileno())
            self._fs.mv(temp, path)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self._fs.rm(temp)
            if isinstance(exc, VoiceprivError) or not isinstance(exc, Exception):
                raise
            raise StorageError(f"storage {self._url}: cannot write {key!r} ({exc})") from exc

    def open(self, key: str) -> IO[bytes]:
        """Open *key* for reading (seekable)."""
        path = self._path(key)
        try:
            handle: IO[bytes] = self._fs.open(path, "rb")
        except FileNotFoundError:
            raise NotFoundError(f"storage {self._url}: no object {key!r}") from None
        except Exception as exc:
            raise StorageError(f"storage {self._url}: cannot read {key!r} ({exc})") from exc
        return handle

    def delete(self, key: str) -> None:
        """Remove *key*; a missing key is fine."""
        path = self._path(key)
        try:
            self._fs.rm(path)
        except FileNotFoundError:
            return
        except Exception as exc:
            if not self.exists(key):
                return
            raise StorageError(f"storage {self._url}: cannot delete {key!r} ({exc})") from exc

    def exists(self, key: str) -> bool:
        """Whether *key* is stored."""
        path = self._path(key)
        try:
            self._fs.invalidate_cache(path)
            return bool(self._fs.isfile(path))
        except Exception as exc:
            raise StorageError(f"storage {self._url}: cannot check {key!r} ({exc})") from exc

    def size(self, key: str) -> int:
        """Bytes stored under *key*."""
        path = self._path(key)
        try:
            return int(self._fs.size(path))
        except FileNotFoundError:
            raise NotFoundError(f"storage {self._url}: no object {key!r}") from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with *prefix*, temporary objects excluded, sorted."""
        try:
            found = self._fs.find(self._root)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise StorageError(f"storage {self._url}: cannot list ({exc})") from exc
        root = self._root.rstrip("/") + "/"
        for path in sorted(found):
            path = str(path)
            key = path[len(root) :] if path.startswith(root) else path.lstrip("/")
            if _TEMP_MARK in key or any(seg.startswith(".") for seg in key.split("/")):
                continue
            if key.startswith(prefix):
                yield key

    def remove_temporaries(self, older_than: datetime) -> list[str]:
        """Remove temporary objects (left by writes a crash interrupted) last modified before
        *older_than*; return their names relative to the root, sorted.

        A temporary object younger than that may belong to a write still running elsewhere,
        so it is left alone.
        """
        try:
            found = self._fs.find(self._root)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise StorageError(f"storage {self._url}: cannot list ({exc})") from exc
        root = self._root.rstrip("/") + "/"
        removed: list[str] = []
        for path in sorted(str(p) for p in found):
            name = path[len(root) :] if path.startswith(root) else path.lstrip("/")
            if _TEMP_MARK not in posixpath.basename(name):
                continue
            try:
                modified = self._fs.modified(path)
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                if modified >= older_than:
                    continue
                self._fs.rm(path)
            except FileNotFoundError:
                continue  # finished or removed meanwhile
            except Exception as exc:
                raise StorageError(
                    f"storage {self._url}: cannot remove temporary object {name!r} ({exc})"
                ) from exc
            removed.append(name)
        return removed


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["fsspec"]`` for kind ``"storage"`` (every URL fsspec knows), nothing otherwise."""
    return ["fsspec"] if kind == "storage" else []


@hookimpl(trylast=True)
def voicepriv_storage(url: str, options: Mapping[str, Any]) -> FsspecStorage | None:
    """A :class:`FsspecStorage` for *url* when fsspec knows its protocol, else ``None``.

    Registered ``trylast`` so a vendor plugin answering for its own scheme wins.
    """
    scheme = urlsplit(url).scheme
    if scheme and len(scheme) > 1:
        try:
            fsspec.get_filesystem_class(scheme)
        except ValueError:
            return None
        except ImportError:
            pass  # known protocol whose driver is missing: FsspecStorage names the extra
    return FsspecStorage(url, options)
