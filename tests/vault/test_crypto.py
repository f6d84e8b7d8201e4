"""The streaming AEAD format: round trips, random access and every tamper case."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.errors import IntegrityError
from voicepriv.vault import crypto

KEY = bytes(range(32))
CHUNK = 64


def _seal(data: bytes, *, chunk_size: int = CHUNK, pieces: int = 3) -> tuple[crypto.Header, bytes]:
    header = crypto.new_header(key_id="rk-test", wrapped_key=b"w" * 60, chunk_size=chunk_size)
    step = max(1, len(data) // pieces)
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return header, b"".join(crypto.encrypt_stream(parts, data_key=KEY, header=header))


def _open(sealed: bytes) -> crypto.DecryptingReader:
    return crypto.DecryptingReader(io.BytesIO(sealed), lambda _header: KEY)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    header, sealed = _seal(data)
    assert len(sealed) == crypto.encrypted_size(size, header)
    reader = _open(sealed)
    assert reader.size == size
    assert reader.read() == data
    assert b"".join(_open(sealed).iter_chunks()) == data


@given(st.binary(max_size=700), st.integers(0, 800), st.integers(0, 800))
def test_random_access_matches_slicing(data: bytes, offset: int, length: int) -> None:
    _header, sealed = _seal(data)
    assert _open(sealed).read_range(offset, length) == data[offset : offset + length]


def test_header_round_trips_and_hides_the_wrapped_key() -> None:
    header, sealed = _seal(b"abc")
    parsed = crypto.read_header(io.BytesIO(sealed))
    assert parsed == header
    assert "w" * 10 not in repr(parsed)


@given(st.data())
def test_any_flipped_bit_is_detected(data: st.DataObject) -> None:
    plaintext = data.draw(st.binary(min_size=0, max_size=300))
    _header, sealed = _seal(plaintext)
    position = data.draw(st.integers(0, len(sealed) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = bytearray(sealed)
    tampered[position] ^= 1 << bit
    with pytest.raises(IntegrityError):
        _open(bytes(tampered)).read()


def _chunks_of(sealed: bytes, header: crypto.Header) -> list[bytes]:
    body = sealed[header.size :]
    step = header.chunk_size + crypto.TAG_SIZE
    return [body[i : i + step] for i in range(0, len(body), step)]


def test_reordered_chunks_are_detected() -> None:
    header, sealed = _seal(os.urandom(4 * CHUNK + 5))
    chunks = _chunks_of(sealed, header)
    chunks[0], chunks[1] = chunks[1], chunks[0]
    with pytest.raises(IntegrityError):
        _open(header.encode() + b"".join(chunks)).read()


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    header, sealed = _seal(os.urandom(4 * CHUNK + 5))
    chunks = _chunks_of(sealed, header)
    with pytest.raises(IntegrityError):
        _open(header.encode() + b"".join(chunks[:-1])).read()
    with pytest.raises(IntegrityError):
        _open(header.encode()).read()


def test_appended_chunk_is_detected() -> None:
    header, sealed = _seal(os.urandom(3 * CHUNK))
    chunks = _chunks_of(sealed, header)
    with pytest.raises(IntegrityError):
        _open(sealed + chunks[0]).read()


def test_chunks_spliced_from_another_artifact_with_the_same_key_are_detected() -> None:
    data = os.urandom(3 * CHUNK)
    header_a, _sealed_a = _seal(data)
    header_b, sealed_b = _seal(data)
    with pytest.raises(IntegrityError):
        _open(header_a.encode() + sealed_b[header_b.size :]).read()


def test_not_an_artifact_and_unknown_version() -> None:
    with pytest.raises(IntegrityError, match="magic"):
        _open(b"RIFF" + bytes(60)).read()
    _header, sealed = _seal(b"x")
    bumped = bytearray(sealed)
    bumped[8] = 9
    with pytest.raises(IntegrityError, match="version 9"):
        _open(bytes(bumped))


def _blocks(count: int, size: int) -> Iterator[bytes]:
    seed = hashlib.sha256(b"voicepriv").digest()
    base = (seed * (size // len(seed) + 1))[:size]
    for index in range(count):
        yield index.to_bytes(8, "big") + base[8:]


@pytest.mark.slow
def test_one_gib_streams_through_a_file(tmp_path: Path) -> None:
    block, count = 4 << 20, 256  # 1 GiB
    header = crypto.new_header(key_id="rk-big", wrapped_key=b"w" * 60, chunk_size=4 << 20)
    expected = hashlib.sha256()
    for piece in _blocks(count, block):
        expected.update(piece)
    target = tmp_path / "big.vpv"
    with target.open("wb") as out:
        for sealed in crypto.encrypt_stream(_blocks(count, block), data_key=KEY, header=header):
            out.write(sealed)
    assert target.stat().st_size == crypto.encrypted_size(block * count, header)
    got = hashlib.sha256()
    with crypto.DecryptingReader(target.open("rb"), lambda _h: KEY) as reader:
        assert reader.size == block * count
        for plain in reader.iter_chunks():
            got.update(plain)
        middle = reader.read_range(block * 100 + 5, 16)
    assert got.digest() == expected.digest()
    block_100 = next(b for i, b in enumerate(_blocks(101, block)) if i == 100)
    assert middle == block_100[5:21]


@given(st.data())
def test_any_truncation_or_extension_is_detected(data: st.DataObject) -> None:
    plaintext = data.draw(st.binary(min_size=0, max_size=400))
    _header, sealed = _seal(plaintext)
    cut = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(IntegrityError):
        _open(sealed[:cut]).read()
    extra = data.draw(st.binary(min_size=1, max_size=100))
    with pytest.raises(IntegrityError):
        _open(sealed + extra).read()


class _CountingStream(io.BytesIO):
    """Counts the bytes a reader pulls from the stored object."""

    pulled = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.pulled += len(chunk)
        return chunk


def test_seeking_near_the_end_reads_only_the_covering_chunks() -> None:
    chunk = 4096
    data = os.urandom(200 * chunk)
    header, sealed = _seal(data, chunk_size=chunk)
    stream = _CountingStream(sealed)
    reader = crypto.DecryptingReader(stream, lambda _h: KEY)
    offset = 150 * chunk + 4000
    assert reader.read_range(offset, 200) == data[offset : offset + 200]
    # the header plus the two chunks the range straddles, nothing before them
    assert stream.pulled <= header.size + 2 * (chunk + crypto.TAG_SIZE)
