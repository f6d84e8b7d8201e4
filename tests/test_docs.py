"""Documentation is part of the feature: public names documented, links resolve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_CHECK = Path(__file__).resolve().parents[1] / "docs" / "check_docs.py"


def _checker() -> object:
    spec = importlib.util.spec_from_file_location("check_docs", _CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_docs"] = module
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring() -> None:
    assert _checker().undocumented_names() == []  # type: ignore[attr-defined]


def test_every_relative_link_resolves() -> None:
    assert _checker().broken_links() == []  # type: ignore[attr-defined]
