"""Static checks are part of the suite: ruff on the code, mypy --strict on src/.

CI runs only the README's test command, so these make "ruff and mypy are clean" a test that
fails the build. They skip, saying why, where the tools are not installed (the ``test``
dependency group installs them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> None:
    pytest.importorskip(module, reason=f"{module} comes with the test dependency group")
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_is_clean() -> None:
    _run("ruff", "check", "src", "tests", "benchmarks", "tools", "noxfile.py", "docs")


def test_ruff_format_is_clean_on_src() -> None:
    _run("ruff", "format", "--check", "src")


@pytest.mark.slow
def test_mypy_strict_is_clean_on_src() -> None:
    _run("mypy", "--strict", "src")
