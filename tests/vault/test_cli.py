"""``voicepriv vault ...`` end to end through :func:`voicepriv.cli.main`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from voicepriv import audio as audio_io
from voicepriv import model
from voicepriv.audio import Audio
from voicepriv.cli import main


def _recording_file(tmp_path: Path, rid: str = "call-1") -> Path:
    rec = model.Recording(
        id=rid,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration=5,
        direction="outbound",
        parties=[{"role": "agent"}, {"role": "customer"}],
    )
    path = tmp_path / f"{rid}.json"
    path.write_text(model.to_json(rec), encoding="utf-8")
    return path


def test_init_put_get_verify_sweep_delete_rotate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "v"
    assert (
        main(
            [
                "vault",
                "init",
                str(vault),
                "--replica",
                f"a={tmp_path / 'a'}",
                "--replica",
                f"b={tmp_path / 'b'}",
            ]
        )
        == 0
    )
    data = tmp_path / "notes.txt"
    data.write_bytes(b"transcript text " * 100)
    capsys.readouterr()
    assert (
        main(
            [
                "vault",
                "put",
                "--vault",
                str(vault),
                "--recording",
                str(_recording_file(tmp_path)),
                "--kind",
                "transcript",
                "--delete-after",
                "2026-02-01T00:00:00+00:00",
                str(data),
            ]
        )
        == 0
    )
    artifact = capsys.readouterr().out.strip()
    out = tmp_path / "out.txt"
    assert main(["vault", "get", "--vault", str(vault), artifact, "-o", str(out)]) == 0
    assert out.read_bytes() == data.read_bytes()

    wav = tmp_path / "call.wav"
    audio_io.save(
        Audio(samples=np.linspace(-0.5, 0.5, 16000, dtype=np.float32), sample_rate=8000), wav
    )
    capsys.readouterr()
    assert (
        main(
            [
                "vault",
                "put",
                "--vault",
                str(vault),
                "--recording",
                str(_recording_file(tmp_path)),
                "--kind",
                "agent_audio",
                "--audio",
                str(wav),
            ]
        )
        == 0
    )
    audio_id = capsys.readouterr().out.strip()
    part = tmp_path / "part.wav"
    assert (
        main(
            [
                "vault",
                "get",
                "--vault",
                str(vault),
                audio_id,
                "--start",
                "1",
                "--end",
                "1.5",
                "-o",
                str(part),
            ]
        )
        == 0
    )
    assert audio_io.info(part).frames == 4000

    assert main(["vault", "verify", "--vault", str(vault)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "vault",
                "sweep",
                "--vault",
                str(vault),
                "--now",
                "2026-03-01T00:00:00+00:00",
                "--dry-run",
            ]
        )
        == 0
    )
    swept = capsys.readouterr().out
    assert "would delete call-1" in swept
    assert "crash cleanup" in swept and "would remove 0 unfinished artifact(s)" in swept
    assert main(["vault", "rotate-key", "--vault", str(vault)]) == 0
    capsys.readouterr()
    assert (
        main(["vault", "delete", "--vault", str(vault), "call-1", "--reason", "erasure_request"])
        == 0
    )
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["recording_id"] == "call-1" and len(receipt["replicas"]) == 4
    assert main(["vault", "get", "--vault", str(vault), artifact, "-o", str(out)]) == 2
    assert "erased" in capsys.readouterr().err


def test_new_recording_needs_a_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vault", "init", str(tmp_path / "v")]) == 0
    data = tmp_path / "x.bin"
    data.write_bytes(b"x")
    code = main(
        [
            "vault",
            "put",
            "--vault",
            str(tmp_path / "v"),
            "--recording",
            str(_recording_file(tmp_path)),
            "--kind",
            "export",
            str(data),
        ]
    )
    assert code == 2 and "--delete-after" in capsys.readouterr().err
