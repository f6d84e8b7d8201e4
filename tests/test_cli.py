"""The CLI shell: version, help, plugin listing, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voicepriv import __version__
from voicepriv.cli import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"voicepriv {__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_plugins_lists_builtins_and_backend_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "voicepriv-storage" in out
    assert "backends:" in out and "separator" in out


def test_every_command_has_help() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "plugins" in commands
    for name, sub in commands.items():
        assert sub.format_help(), name


def test_console_script_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voicepriv.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "nodir/agent.wav"], "--out nodir/agent.wav: the folder nodir does not exist"),
        (["--out", "outdir"], "expected a .wav or .flac file name"),
        (["--out", "outdir.wav"], "--out outdir.wav: is a folder"),
        (
            ["--out", "agent.wav", "--report", "nodir/r.json"],
            "--report nodir/r.json: the folder nodir does not exist",
        ),
    ],
)
def test_isolate_checks_output_paths_before_writing_anything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    import numpy as np

    from voicepriv import audio
    from voicepriv.audio import Audio

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir.wav").mkdir()
    noise = np.random.default_rng(0).standard_normal((8000, 2)).astype(np.float32) * 0.01
    audio.save(Audio(samples=noise, sample_rate=8000), tmp_path / "call.wav")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["isolate", "call.wav", "--layout", "agent=left", *extra]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # agent.wav not written
