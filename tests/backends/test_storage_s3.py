"""The storage contract suite of ``test_storage.py``, run against S3 (s3fs + moto's server).

Every test of ``tests/backends/test_storage.py`` that takes the ``storage`` fixture is collected
here again, unchanged, with ``storage`` rooted in a bucket of a real S3-compatible HTTP server
(moto's server mode on 127.0.0.1, started by a fixture). Nothing leaves the machine.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3_server import new_bucket, s3_options, s3_server
from voicepriv import plugins
from voicepriv.interfaces import Storage

pytestmark = [pytest.mark.s3]


def _contract_tests() -> dict[str, Any]:
    """The storage-fixture tests of test_storage.py (loaded by path; tests/ is no package)."""
    path = Path(__file__).with_name("test_storage.py")
    spec = importlib.util.spec_from_file_location("_voicepriv_storage_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: func
        for name, func in vars(module).items()
        if name.startswith("test_")
        and callable(func)
        and "storage" in inspect.signature(func).parameters
    }


_CONTRACT = _contract_tests()
globals().update(_CONTRACT)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for this module."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def storage(s3_endpoint: str) -> Storage:
    """A storage rooted in a fresh bucket of the local S3 server."""
    bucket = new_bucket(s3_endpoint)
    store = plugins.backend(
        plugins.get_plugin_manager(), "storage", f"s3://{bucket}/root", s3_options(s3_endpoint)
    )
    assert isinstance(store, Storage)
    return store


def test_the_contract_suite_was_collected() -> None:
    assert {"test_contract_round_trip", "test_failed_write_leaves_nothing_behind"} <= set(_CONTRACT)


def test_objects_really_are_in_the_bucket(storage: Storage, s3_endpoint: str) -> None:
    import s3fs

    storage.write("a/b", [b"payload"])
    bucket = storage.url.removeprefix("s3://").split("/")[0]
    fs = s3fs.S3FileSystem(**s3_options(s3_endpoint))
    assert fs.cat(f"{bucket}/root/a/b") == b"payload"
