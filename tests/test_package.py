"""The package's public face: the API re-exported, nothing heavy imported with it."""

from __future__ import annotations

import json
import subprocess
import sys

import voicepriv


def test_public_api_is_exported_and_documented() -> None:
    for name in voicepriv.__all__:
        value = getattr(voicepriv, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name


HEAVY = [
    "torch",
    "onnxruntime",
    "speechbrain",
    "resemblyzer",
    "scipy.signal",
    "scipy.ndimage",
    "matplotlib",
    "dask",
    "psycopg",
    "s3fs",
]


def _heavy_modules_after(statement: str) -> list[str]:
    report = f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    code = f"import json, sys; {statement}; {report}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_importing_voicepriv_loads_no_model_runtime() -> None:
    assert _heavy_modules_after("import voicepriv") == []


def test_building_the_plugin_manager_loads_no_model_runtime() -> None:
    # Every built-in backend module is imported here (a vault opens one); their scipy,
    # numerical and model dependencies must wait until a backend is used (vault peak memory).
    statement = "import voicepriv.plugins as p; p.get_plugin_manager()"
    assert _heavy_modules_after(statement) == []
