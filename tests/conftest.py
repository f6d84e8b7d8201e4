"""Shared test configuration: hypothesis profiles, plugin isolation, real-speech data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from torch_checkpoint import fake_torch  # noqa: F401  (a fixture, shared by the loader tests)

# Tests see only voicepriv's own plugins unless a test asks for autoloading explicitly.
os.environ.setdefault("VOICEPRIV_DISABLE_PLUGIN_AUTOLOAD", "1")

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VOICEPRIV_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real speech recordings (``../shared/data``); skips when absent."""
    if not (SHARED_DATA / "librispeech-test-other").is_dir():
        pytest.skip(f"real speech data not found at {SHARED_DATA} (set VOICEPRIV_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def memory_fs() -> Iterator[None]:
    """A clean fsspec ``memory://`` filesystem, emptied again after the test."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    yield
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
