"""The storage contract suite of ``test_storage.py``, run against S3 (s3fs + moto's server).

Every test of ``tests/backends/test_storage.py`` that takes the ``storage`` fixture is collected
here again, unchanged, with ``storage`` rooted in a bucket of a real S3-compatible HTTP server
(moto's server mode on 127.0.0.1, started by a fixture). Nothing leaves the machine.
"""

from __future__ import annotations

import importlib.util
import inspect
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for this module."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_options(endpoint: str) -> dict[str, Any]:
    """storage_options for s3fs against the local server (dummy credentials)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


@pytest.fixture
def storage(s3_endpoint: str) -> Storage:
    """A storage rooted in a fresh bucket of the local S3 server."""
    boto3 = pytest.importorskip("boto3")

    bucket = f"vpv-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
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
