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


def test_importing_voicepriv_loads_no_model_runtime() -> None:
    heavy = [
        "torch",
        "onnxruntime",
        "speechbrain",
        "resemblyzer",
        "scipy.signal",
        "matplotlib",
        "dask",
        "psycopg",
        "s3fs",
    ]
    code = (
        "import json, sys, voicepriv; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
