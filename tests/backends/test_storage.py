"""The fsspec storage backend: contract on file:// and memory://, atomic writes, escapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voicepriv import plugins
from voicepriv.backends.storage import FsspecStorage
from voicepriv.errors import NotFoundError, PathEscapeError, StorageError
from voicepriv.interfaces import Storage


@pytest.fixture(params=["file", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, memory_fs: None) -> Storage:
    url = (tmp_path / "root").as_uri() if request.param == "file" else "memory://vpv-test/root"
    store = plugins.backend(plugins.get_plugin_manager(), "storage", url, {})
    assert isinstance(store, Storage)
    return store


def test_contract_round_trip(storage: Storage) -> None:
    storage.write("ab/cd/object-1", [b"hello ", b"world"])
    assert storage.exists("ab/cd/object-1")
    with storage.open("ab/cd/object-1") as handle:
        assert handle.read() == b"hello world"
        handle.seek(6)
        assert handle.read(5) == b"world"
    storage.write("ab/cd/object-1", [b"replaced"])
    with storage.open("ab/cd/object-1") as handle:
        assert handle.read() == b"replaced"
    storage.write("zz", [b""])
    assert list(storage.keys()) == ["ab/cd/object-1", "zz"]
    assert list(storage.keys("ab/")) == ["ab/cd/object-1"]
    storage.delete("ab/cd/object-1")
    storage.delete("ab/cd/object-1")  # idempotent
    assert not storage.exists("ab/cd/object-1")
    with pytest.raises(NotFoundError):
        storage.open("ab/cd/object-1")


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "a//b", "", ".", "a/./b", "a\\b", ".hidden"]
)
def test_keys_that_could_escape_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(PathEscapeError):
        storage.write(key, [b"x"])
    with pytest.raises(PathEscapeError):
        storage.open(key)
    with pytest.raises(PathEscapeError):
        storage.delete(key)


def test_failed_write_leaves_nothing_behind(storage: Storage) -> None:
    storage.write("obj", [b"old"])

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(StorageError, match="cannot write 'obj'"):
        storage.write("obj", broken())
    with storage.open("obj") as handle:
        assert handle.read() == b"old"
    assert list(storage.keys()) == ["obj"]


def test_write_is_atomic_on_local_files(tmp_path: Path) -> None:
    store = FsspecStorage(str(tmp_path))
    seen: list[bool] = []

    def chunks() -> Iterator[bytes]:
        yield b"a" * 10
        seen.append((tmp_path / "obj").exists())
        yield b"b" * 10

    store.write("obj", chunks())
    assert seen == [False]
    assert (tmp_path / "obj").read_bytes() == b"a" * 10 + b"b" * 10
    assert [p.name for p in tmp_path.iterdir()] == ["obj"]


def test_credentials_are_not_in_the_url(tmp_path: Path) -> None:
    manager = plugins.get_plugin_manager()
    assert "fsspec" in plugins.backend_names(manager, "storage")
    store = FsspecStorage("memory://user:secret@host/root")
    assert "secret" not in store.url and "secret" not in repr(store)


def test_unknown_protocol_is_not_claimed() -> None:
    with pytest.raises(Exception, match="no storage backend"):
        plugins.backend(plugins.get_plugin_manager(), "storage", "nosuchproto://x", {})


def test_a_symlinked_folder_cannot_redirect_objects_outside_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "objects").symlink_to(outside, target_is_directory=True)
    store = FsspecStorage(str(root))
    with pytest.raises(PathEscapeError, match="resolves outside the root"):
        store.write("objects/ab/obj", [b"x"])
    with pytest.raises(PathEscapeError):
        store.delete("objects/ab/obj")
    assert not list(outside.rglob("*"))
    store.write("plain/obj", [b"y"])  # ordinary folders are fine


def test_a_root_that_is_itself_a_symlink_still_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    store = FsspecStorage(str(tmp_path / "link"))
    store.write("a/obj", [b"z"])
    assert (tmp_path / "real" / "a" / "obj").read_bytes() == b"z"
