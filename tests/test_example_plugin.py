"""The example plugin installs like any vendor package and is discovered through its entry point.

The wheel is built here from the example's ``pyproject.toml`` (name, version and the
``voicepriv`` entry points) and its ``src/`` tree, then installed with pip into the running
interpreter's environment, offline and without a build backend, and uninstalled afterwards.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import pytest

from voicepriv.errors import ConfigError, ModelError
from voicepriv.interfaces import IvrInput, MetadataAdapter
from voicepriv.model import Direction, Role
from voicepriv.plugins import backend, backend_names, get_plugin_manager, list_plugins

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "voicepriv-example-plugin"
DIST = "voicepriv-example-plugin"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(project: Path, out: Path) -> Path:
    """A pure-Python wheel of *project* (PEP 427), from its pyproject.toml and src/ tree."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((project / "src").rglob("*.py")):
        files[path.relative_to(project / "src").as_posix()] = path.read_bytes()
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: {meta['description']}\nRequires-Python: {meta['requires-python']}\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: voicepriv-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    entry_lines = []
    for group, points in meta["entry-points"].items():
        entry_lines.append(f"[{group}]")
        entry_lines.extend(f"{key} = {value}" for key, value in points.items())
    files[f"{info}/entry_points.txt"] = ("\n".join(entry_lines) + "\n").encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in files.items():
        writer.writerow([arcname, _digest(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = record.getvalue().encode()
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in files.items():
            archive.writestr(arcname, data)
    return wheel


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example plugin pip-installed into this environment for the module's tests."""
    wheel = build_wheel(EXAMPLE, tmp_path_factory.mktemp("wheel"))
    _pip("install", "--no-deps", "--no-index", str(wheel))
    try:
        yield
    finally:
        _pip("uninstall", "-y", DIST)


def test_discovered_through_the_entry_point(installed: None) -> None:
    assert metadata.distribution(DIST).version == "0.1.0"
    manager = get_plugin_manager(autoload=True)
    names = {info.name: info for info in list_plugins(manager)}
    assert "acmedial" in names
    assert names["acmedial"].distribution == f"{DIST} 0.1.0"
    assert set(names["acmedial"].hooks) == {
        "voicepriv_backend_names",
        "voicepriv_metadata_adapter",
    }
    assert "acmedial" in backend_names(manager, "metadata_adapter")


def test_not_loaded_when_autoload_is_off(installed: None) -> None:
    manager = get_plugin_manager(autoload=False)
    assert "acmedial" not in backend_names(manager, "metadata_adapter")


def test_adapter_parses_the_sample(installed: None) -> None:
    adapter = backend(get_plugin_manager(autoload=True), "metadata_adapter", "acmedial")
    assert isinstance(adapter, MetadataAdapter)
    sample = EXAMPLE / "samples" / "acmedial-export.json"
    first, second = adapter.parse(sample.read_bytes(), source=sample.name)
    rec = first.recording
    assert rec.id == "7f3c2a10-acme-0001"
    assert rec.direction is Direction.INBOUND
    assert rec.started_at.utcoffset() == timedelta(hours=1)  # Copenhagen in March: CET
    assert rec.duration == timedelta(seconds=95)
    assert rec.layout is not None and rec.layout.roles == (Role.AGENT, Role.CUSTOMER)
    assert first.ivr == (IvrInput(prompt="recording_consent", digit="1", offset_s=4.2),)
    assert second.recording.layout is not None
    assert second.recording.layout.roles == (Role.CUSTOMER, Role.AGENT)
    assert second.recording.parties_with(Role.CUSTOMER)[0].jurisdiction == "US-CA"
    assert second.recording.started_at.utcoffset() == timedelta(hours=-5)


def test_adapter_errors_name_file_record_and_field(installed: None) -> None:
    adapter = backend(get_plugin_manager(autoload=True), "metadata_adapter", "acmedial")
    sample = EXAMPLE / "samples" / "acmedial-export.json"
    broken = sample.read_text().replace('"ani": "+4532123456"', '"ani": "12"')
    with pytest.raises(ModelError, match=r"x\.json record 0 .* field parties\[1\]\.phone"):
        adapter.parse(broken.encode(), source="x.json")
    site_only = backend(
        get_plugin_manager(autoload=True), "metadata_adapter", "acmedial", {"site": "other"}
    )
    assert site_only.parse(sample.read_bytes(), source="s.json") == []
    with pytest.raises(ConfigError, match="unknown option"):
        backend(get_plugin_manager(autoload=True), "metadata_adapter", "acmedial", {"x": 1})
