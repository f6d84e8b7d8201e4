"""``voicepriv policy check`` and ``voicepriv policy explain``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.policy._helpers import EXAMPLES, act, notice, recording

from voicepriv.cli import main
from voicepriv.model import to_json


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(EXAMPLES / "uk-investment-firm.toml")]) == 0
    assert "OK - 2 purposes" in capsys.readouterr().out


def test_check_reports_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[organisation]\nname = "x"\n\n[purposes.qa]\nretention = "6 months"\n')
    assert main(["policy", "check", str(bad)]) == 1
    assert f"error: {bad} line 4: purpose 'qa' has no legal basis" in capsys.readouterr().err


def _recording_file(tmp_path: Path) -> Path:
    rec = recording(
        consents=(
            notice("documentation", 1, "2026-01"),  # the welcome notice announces both
            notice("quality_assurance", 1, "2026-01"),
            act("quality_assurance", 2, version="2026-01"),
        )
    )
    path = tmp_path / "call.json"
    path.write_text(to_json(rec))
    return path


def test_explain_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "policy",
            "explain",
            str(_recording_file(tmp_path)),
            "--policy",
            str(EXAMPLES / "danish-inbound-support.toml"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "recording call-1: KEEP" in out and "quality_assurance: GDPR Art. 6(1)(a)" in out
    assert "reasons:" in out


def test_explain_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "policy", "explain", str(_recording_file(tmp_path)),
            "--policy", str(EXAMPLES / "danish-inbound-support.toml"), "--json",
        ]
    )  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["keep"] is True
    assert {p["purpose"] for p in data["customer"]["purposes"]} == {
        "documentation",
        "quality_assurance",
    }


def test_explain_bad_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{}")
    assert (
        main(
            [
                "policy",
                "explain",
                str(path),
                "--policy",
                str(EXAMPLES / "danish-inbound-support.toml"),
            ]
        )
        == 1
    )
    assert "error:" in capsys.readouterr().err
