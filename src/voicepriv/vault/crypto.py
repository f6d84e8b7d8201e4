"""The streaming encrypted artifact format: chunked AES-256-GCM in the STREAM construction.

An artifact is a header followed by chunks (``docs/format.md`` gives every byte)::

    header  = magic "VPRVAULT" | version u8 | algorithm u8 | chunk_size u32 | nonce_prefix 7B
              | key_id_len u16 | key_id | wrapped_len u16 | wrapped data key
    chunk i = AES-256-GCM(data key, nonce = prefix | i u32 | last u8, aad = SHA-256(header))

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last holds 0 to
``chunk_size`` bytes and is sealed with the last-flag set, so reordering, dropping, truncating or
appending chunks, and any header edit, make :class:`~voicepriv.errors.IntegrityError`.
Plaintext chunk *i* starts at byte ``i * chunk_size``, which makes random access (and time
seeking in PCM audio) a matter of decrypting the one or two chunks covering the range.

Memory stays flat: one chunk of plaintext and one of ciphertext at a time. Keys never appear
in reprs, logs or exception messages.
"""

from __future__ import annotations

import hashlib
import io
import operator
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Final

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voicepriv.errors import ConfigError, IntegrityError

__all__ = [
    "ALGORITHM_AES256GCM_STREAM",
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "NONCE_PREFIX_SIZE",
    "TAG_SIZE",
    "DecryptingReader",
    "Header",
    "encrypt_stream",
    "encrypted_size",
    "new_header",
    "read_header",
]

#: First eight bytes of every artifact.
MAGIC: Final = b"VPRVAULT"
#: Version of the format this module writes and reads.
FORMAT_VERSION: Final = 1
#: Algorithm id 1: AES-256-GCM, STREAM nonces (7-byte prefix, 4-byte counter, 1-byte last flag).
ALGORITHM_AES256GCM_STREAM: Final = 1
#: Plaintext bytes per chunk written by default (256 KiB).
DEFAULT_CHUNK_SIZE: Final = 256 << 10
#: Smallest chunk size accepted (and the smallest that tests use).
MIN_CHUNK_SIZE: Final = 16
#: Largest chunk size accepted (64 MiB): bounds the memory a reader needs.
MAX_CHUNK_SIZE: Final = 64 << 20
#: Random bytes at the start of every chunk nonce.
NONCE_PREFIX_SIZE: Final = 7
#: GCM tag bytes appended to every chunk.
TAG_SIZE: Final = 16
#: Largest number of chunks one artifact may have (the counter is 32 bits).
MAX_CHUNKS: Final = 1 << 32

_FIXED: Final = struct.Struct(">8sBBI7s")  # magic, version, algorithm, chunk_size, nonce prefix
_U16: Final = struct.Struct(">H")
_MAX_KEY_ID: Final = 255
_MAX_WRAPPED: Final = 1024


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise ConfigError(f"chunk_size: expected an integer, got {chunk_size!r}")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ConfigError(
            f"chunk_size: expected {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes, got {chunk_size}"
        )


@attrs.frozen(kw_only=True)
class Header:
    """The header of one encrypted artifact.

    :param chunk_size: plaintext bytes per chunk (the last chunk may hold fewer).
    :param nonce_prefix: 7 random bytes starting every chunk nonce of this artifact.
    :param key_id: id of the key that wrapped the data key (a per-recording key id).
    :param wrapped_key: the artifact's data key, wrapped by that key (opaque here).
    :param version: format version.
    :param algorithm: algorithm id.
    """

    chunk_size: int
    nonce_prefix: bytes = attrs.field(repr=False)
    key_id: str
    wrapped_key: bytes = attrs.field(repr=False)
    version: int = FORMAT_VERSION
    algorithm: int = ALGORITHM_AES256GCM_STREAM

    def __attrs_post_init__(self) -> None:
        _check_chunk_size(self.chunk_size)
        if len(self.nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ConfigError(
                f"Header.nonce_prefix: expected {NONCE_PREFIX_SIZE} bytes, "
                f"got {len(self.nonce_prefix)}"
            )
        encoded = self.key_id.encode("utf-8")
        if not 1 <= len(encoded) <= _MAX_KEY_ID:
            raise ConfigError(
                f"Header.key_id: expected 1 to {_MAX_KEY_ID} bytes, got {len(encoded)}"
            )
        if not 1 <= len(self.wrapped_key) <= _MAX_WRAPPED:
            raise ConfigError(
                f"Header.wrapped_key: expected 1 to {_MAX_WRAPPED} bytes, "
                f"got {len(self.wrapped_key)}"
            )

    def encode(self) -> bytes:
        """The header's bytes, exactly as stored."""
        key_id = self.key_id.encode("utf-8")
        return b"".join(
            (
                _FIXED.pack(
                    MAGIC, self.version, self.algorithm, self.chunk_size, self.nonce_prefix
                ),
                _U16.pack(len(key_id)),
                key_id,
                _U16.pack(len(self.wrapped_key)),
                self.wrapped_key,
            )
        )

    @property
    def size(self) -> int:
        """Length of the encoded header in bytes."""
        return _FIXED.size + 4 + len(self.key_id.encode("utf-8")) + len(self.wrapped_key)

    def associated_data(self) -> bytes:
        """SHA-256 of the encoded header: the associated data of every chunk."""
        return hashlib.sha256(self.encode()).digest()


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise IntegrityError(f"artifact has more than {MAX_CHUNKS} chunks")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _read_exact(stream: IO[bytes], size: int, what: str) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise IntegrityError(f"encrypted artifact: truncated {what}")
    return bytes(data)


def read_header(stream: IO[bytes]) -> Header:
    """Parse the header at the current position of *stream* (left just after it).

    :raises IntegrityError: not a voicepriv artifact, an unknown version or algorithm, or a
        truncated or malformed header.
    """
    fixed = _read_exact(stream, _FIXED.size, "header")
    magic, version, algorithm, chunk_size, prefix = _FIXED.unpack(fixed)
    if magic != MAGIC:
        raise IntegrityError("encrypted artifact: bad magic (not a voicepriv vault object)")
    if version != FORMAT_VERSION:
        raise IntegrityError(
            f"encrypted artifact: format version {version} is not supported "
            f"(this voicepriv reads {FORMAT_VERSION})"
        )
    if algorithm != ALGORITHM_AES256GCM_STREAM:
        raise IntegrityError(f"encrypted artifact: unknown algorithm id {algorithm}")
    (key_len,) = _U16.unpack(_read_exact(stream, 2, "header"))
    key_id_raw = _read_exact(stream, key_len, "header key id")
    (wrapped_len,) = _U16.unpack(_read_exact(stream, 2, "header"))
    wrapped = _read_exact(stream, wrapped_len, "header wrapped key")
    try:
        key_id = key_id_raw.decode("utf-8")
        return Header(
            chunk_size=chunk_size,
            nonce_prefix=prefix,
            key_id=key_id,
            wrapped_key=wrapped,
            version=version,
            algorithm=algorithm,
        )
    except (UnicodeDecodeError, ConfigError) as exc:
        raise IntegrityError(f"encrypted artifact: malformed header ({exc})") from None


def encrypted_size(plaintext_size: int, header: Header) -> int:
    """Bytes an artifact of *plaintext_size* bytes takes with *header*."""
    chunks = max(1, -(-plaintext_size // header.chunk_size))
    return header.size + plaintext_size + chunks * TAG_SIZE


def new_header(*, key_id: str, wrapped_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Header:
    """A header with a fresh random nonce prefix."""
    return Header(
        chunk_size=chunk_size,
        nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
        key_id=key_id,
        wrapped_key=wrapped_key,
    )


def _check_key(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise ConfigError(f"data key: expected 32 bytes, got {len(key)}")
    return AESGCM(key)


def encrypt_stream(
    chunks: Iterable[bytes | bytearray | memoryview],
    *,
    data_key: bytes,
    header: Header,
) -> Iterator[bytes]:
    """Encrypt the plaintext *chunks* (any sizes); yield the header, then each sealed chunk.

    Holds at most one chunk of plaintext plus the piece being consumed; the input is never
    copied to disk.
    """
    aead = _check_key(data_key)
    size = header.chunk_size
    prefix = header.nonce_prefix
    aad = header.associated_data()
    yield header.encode()
    buffer = bytearray()
    index = 0
    for piece in chunks:
        view = memoryview(piece).cast("B")
        # Seal whole chunks straight from the input when nothing is buffered.
        while len(buffer) + len(view) > size:
            if buffer:
                take = size - len(buffer)
                buffer += view[:take]
                view = view[take:]
                yield aead.encrypt(_nonce(prefix, index, False), bytes(buffer), aad)
                buffer.clear()
            else:
                yield aead.encrypt(_nonce(prefix, index, False), view[:size], aad)
                view = view[size:]
            index += 1
        buffer += view
    yield aead.encrypt(_nonce(prefix, index, True), bytes(buffer), aad)


class DecryptingReader(io.RawIOBase):
    """A read-only, seekable view of an artifact's plaintext; decrypts chunk by chunk.

    ``seek`` is free: only the chunks covering what is read are fetched and authenticated.
    Any tampering raises :class:`~voicepriv.errors.IntegrityError` from ``read``.

    :param stream: the stored object, opened for reading; must be seekable.
    :param unwrap: gives the 32-byte data key for a header (raises when the key is gone).
    """

    def __init__(self, stream: IO[bytes], unwrap: Callable[[Header], bytes]) -> None:
        super().__init__()
        self._stream = stream
        try:
            stream.seek(0)
            self.header = read_header(stream)
            self._aead = _check_key(unwrap(self.header))
            self._aad = self.header.associated_data()
            self._body = self.header.size
            total = stream.seek(0, io.SEEK_END)
            body = total - self._body
            full = self.header.chunk_size + TAG_SIZE
            if body < TAG_SIZE:
                raise IntegrityError("encrypted artifact: truncated (no final chunk)")
            self._chunks = -(-body // full)
            last_len = body - (self._chunks - 1) * full
            if last_len < TAG_SIZE:
                raise IntegrityError("encrypted artifact: truncated final chunk")
        except BaseException:
            stream.close()  # a rejected object is not left open
            raise
        #: Plaintext size in bytes (authenticated once the last chunk is read).
        self.size = (self._chunks - 1) * self.header.chunk_size + last_len - TAG_SIZE
        self._position = 0
        self._cached_index = -1
        self._cached = b""

    def __repr__(self) -> str:
        return f"DecryptingReader(key_id={self.header.key_id!r}, size={self.size})"

    def readable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """Always true."""
        return True

    def tell(self) -> int:
        """Current plaintext position."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a plaintext position (no decryption happens here)."""
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}
        if whence not in bases:
            raise ConfigError(
                f"seek: whence {whence!r} is not SEEK_SET (0), SEEK_CUR (1) or SEEK_END (2)"
            )
        try:
            target = bases[whence] + operator.index(offset)
        except TypeError:
            raise ConfigError(f"seek: offset: expected an integer, got {offset!r}") from None
        if target < 0:
            raise ConfigError(f"seek: position {target} is before the start")
        self._position = target
        return target

    def chunk(self, index: int) -> bytes:
        """Plaintext of chunk *index*, authenticated."""
        if index == self._cached_index:
            return self._cached
        if not 0 <= index < self._chunks:
            raise IndexError(f"chunk {index} is out of range (artifact has {self._chunks})")
        full = self.header.chunk_size + TAG_SIZE
        self._stream.seek(self._body + index * full)
        last = index == self._chunks - 1
        expected = (self.size - index * self.header.chunk_size + TAG_SIZE) if last else full
        sealed = _read_exact(self._stream, expected, f"chunk {index}")
        try:
            plain = self._aead.decrypt(
                _nonce(self.header.nonce_prefix, index, last), sealed, self._aad
            )
        except InvalidTag:
            raise IntegrityError(
                f"encrypted artifact: chunk {index} of {self._chunks} failed authentication "
                "(tampered, reordered, truncated or wrong key)"
            ) from None
        self._cached_index, self._cached = index, plain
        return plain

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill *buffer* from the current position; 0 at the end."""
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self.size:
            index, within = divmod(self._position, self.header.chunk_size)
            plain = self.chunk(index)
            take = min(len(plain) - within, len(view) - done)
            view[done : done + take] = plain[within : within + take]
            done += take
            self._position += take
        if self._position >= self.size and self.size == 0:
            self.chunk(0)  # authenticate the empty final chunk
        return done

    def read_range(self, offset: int, length: int) -> bytes:
        """*length* plaintext bytes from *offset* (fewer at the end)."""
        self.seek(offset)
        return self.read(max(0, length)) or b""

    def iter_chunks(self) -> Iterator[bytes]:
        """Every chunk's plaintext in order, each authenticated (the whole artifact)."""
        for index in range(self._chunks):
            yield self.chunk(index)
        self._cached_index, self._cached = -1, b""

    def close(self) -> None:
        """Close the underlying stream."""
        if not self.closed:
            self._stream.close()
        super().close()
