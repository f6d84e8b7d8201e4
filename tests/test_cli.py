"""The CLI shell: version, help, plugin listing, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest
from tests.vault._helpers import IdentityKeys

from voicepriv import __version__
from voicepriv.cli import build_parser, main
from voicepriv.errors import ConfigError
from voicepriv.plugins import get_plugin_manager, hookimpl


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


def _vault_with_calls(folder: Path, *deadlines: str) -> Path:
    """A vault holding call-0, call-1, ... (agent audio), each with the given deadline."""
    from datetime import datetime

    from voicepriv.model import Direction, Party, Recording, Role
    from voicepriv.vault import ArtifactKind, Vault

    root = folder / "vault"
    with Vault.create(root) as vault:
        for i, deadline in enumerate(deadlines):
            recording = Recording(
                id=f"call-{i}",
                started_at=datetime.fromisoformat("2026-01-05T09:00:00+00:00"),
                duration=60,
                direction=Direction.INBOUND,
                parties=(Party(role=Role.AGENT, id="agent-7"), Party(role=Role.CUSTOMER)),
            )
            vault.put(
                recording,
                {ArtifactKind.AGENT_AUDIO: b"pcm" * 100},
                delete_after=datetime.fromisoformat(deadline),
            )
    return root


def test_vault_delete_and_sweep_write_deletion_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.audit import read_events

    root = _vault_with_calls(tmp_path, "2027-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00")
    log = tmp_path / "logs" / "audit.jsonl"
    assert (
        main(
            [
                "vault",
                "delete",
                "call-0",
                "--vault",
                str(root),
                "--reason",
                "erasure_request",
                "--audit",
                str(log),
            ]
        )
        == 0
    )
    sweep = ["vault", "sweep", "--vault", str(root), "--now", "2026-03-01T00:00:00+00:00"]
    assert main([*sweep, "--dry-run", "--audit", str(log)]) == 0
    assert main([*sweep, "--audit", str(log)]) == 0
    capsys.readouterr()
    events = [(e.type.value, e.data["recording"], e.data["reason"]) for e in read_events(log)]
    assert events == [
        ("deletion", "call-0", "erasure_request"),
        ("deletion", "call-1", "retention"),
    ]
    # Without --audit, the vault's own log.
    root2 = _vault_with_calls(tmp_path / "second", "2026-02-01T00:00:00+00:00")
    assert (
        main(["vault", "sweep", "--vault", str(root2), "--now", "2026-03-01T00:00:00+00:00"]) == 0
    )
    assert [e.data["recording"] for e in read_events(root2 / "audit.jsonl")] == ["call-0"]


def test_vault_delete_and_sweep_delete_nothing_they_cannot_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.vault import Vault

    root = _vault_with_calls(tmp_path, "2026-02-01T00:00:00+00:00")
    bad = tmp_path / "auditdir"
    bad.mkdir()
    delete = ["vault", "delete", "call-0", "--vault", str(root)]
    assert main([*delete, "--reason", "erasure_request", "--audit", str(bad)]) == 2
    assert f"{bad}: cannot open the audit log" in capsys.readouterr().err
    sweep = ["vault", "sweep", "--vault", str(root), "--now", "2026-03-01T00:00:00+00:00"]
    assert main([*sweep, "--audit", str(bad)]) == 2
    assert f"{bad}: cannot open the audit log" in capsys.readouterr().err
    # A reason the log refuses (free text) is refused before deleting.
    assert main([*delete, "--reason", "asked by phone"]) == 2
    assert "audit data reason" in capsys.readouterr().err
    with Vault.open(root) as vault:
        assert vault.catalog.recording_ids() == ["call-0"]
        assert vault.read(vault.catalog.artifacts("call-0")[0].id) == b"pcm" * 100


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("outdir", "-o/--output outdir: is a folder, expected a file name"),
        ("nodir/x.bin", "-o/--output nodir/x.bin: the folder nodir does not exist"),
    ],
)
def test_vault_get_checks_its_output_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    from voicepriv.vault import Vault

    root = _vault_with_calls(tmp_path, "2027-01-01T00:00:00+00:00")
    with Vault.open(root) as vault:
        artifact = vault.catalog.artifacts("call-0")[0].id
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outdir").mkdir()
    capsys.readouterr()
    assert main(["vault", "get", artifact, "--vault", str(root), "-o", target]) == 2
    assert message in capsys.readouterr().err
    assert main(["vault", "get", artifact, "--vault", str(root), "-o", "out.bin"]) == 0
    assert (tmp_path / "out.bin").read_bytes() == b"pcm" * 100
    assert not list(tmp_path.glob(".*.partial"))


class _VendorKeys(IdentityKeys):
    """Stands for a vendor's KMS key provider."""

    name = "test-kms"


class _VendorKeysPlugin:
    """An inline plugin giving key provider ``test-kms`` (options ``region``, ``timeout_s``)."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return ["test-kms"] if kind == "key_provider" else []

    @hookimpl
    def voicepriv_key_provider(self, name: str, options: Mapping[str, Any]) -> object:
        if name != "test-kms":
            return None
        self.asked.append(dict(options))
        unknown = sorted(set(options) - {"region", "timeout_s"})
        if unknown:
            raise ConfigError(f"key provider 'test-kms': unknown option(s) {unknown}")
        return _VendorKeys()


@pytest.fixture
def vendor_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[pluggy.PluginManager, _VendorKeysPlugin]]:
    """``voicepriv vault init`` sees the ``test-kms`` key provider (unregistered afterwards)."""
    from voicepriv._cli import vault as vault_cli

    manager = get_plugin_manager()
    plugin = _VendorKeysPlugin()
    manager.register(plugin, name="test-kms")
    monkeypatch.setattr(vault_cli, "get_plugin_manager", lambda: manager)
    try:
        yield manager, plugin
    finally:
        manager.unregister(plugin)


def test_vault_init_chooses_a_plugin_key_provider_with_options(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    vendor_keys: tuple[pluggy.PluginManager, _VendorKeysPlugin],
) -> None:
    from voicepriv.vault import Vault, VaultConfig

    manager, plugin = vendor_keys
    root = tmp_path / "v"
    options = ["--key-provider-option", "region=eu-north-1", "--key-provider-option", "timeout_s=5"]
    assert main(["vault", "init", str(root), "--key-provider", "test-kms", *options]) == 0
    assert "key provider test-kms" in capsys.readouterr().out
    assert plugin.asked == [{"region": "eu-north-1", "timeout_s": 5}]  # numbers parsed
    config = VaultConfig.load(root)
    assert config.key_provider == "test-kms"
    assert dict(config.key_options) == {"region": "eu-north-1", "timeout_s": 5}
    assert not (root / "master.key").exists()
    with Vault.open(root, manager=manager) as vault:
        assert vault.provider.name == "test-kms"


def test_vault_init_key_provider_options_of_the_local_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import stat

    from voicepriv.vault import Vault, VaultConfig

    root = tmp_path / "v"
    argv = ["vault", "init", str(root), "--key-provider", "local"]
    assert main([*argv, "--key-provider-option", "path=../keys/master.key"]) == 0
    key_file = tmp_path / "keys" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (root / "master.key").exists()
    assert dict(VaultConfig.load(root).key_options) == {"path": "../keys/master.key"}
    with Vault.open(root) as vault:
        assert vault.provider.name == "local"
    # `create` would be kept in vault.toml and re-create a lost key file on every open.
    other = tmp_path / "w"
    assert main(["vault", "init", str(other), "--key-provider-option", "create=true"]) == 2
    assert "option 'create' is not kept in vault.toml" in capsys.readouterr().err
    assert not other.exists()


def test_vault_init_refuses_an_unknown_key_provider_and_creates_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    vendor_keys: tuple[pluggy.PluginManager, _VendorKeysPlugin],
) -> None:
    from voicepriv.vault import VaultConfig

    _, plugin = vendor_keys
    target = tmp_path / "new" / "vault"
    init = ["vault", "init", str(target)]
    assert main([*init, "--key-provider", "acme-kms"]) == 2
    assert (
        "--key-provider acme-kms: no key provider by that name is installed "
        "(installed: local, test-kms)"
    ) in capsys.readouterr().err
    assert plugin.asked == []
    assert not (tmp_path / "new").exists()
    # Options a provider refuses: the folders the command made are removed again ...
    refused = [
        (["--key-provider", "test-kms", "--key-provider-option", "zone=x"], "['zone']"),
        (["--key-provider-option", "colour=red"], "key provider 'local': unknown option(s) colour"),
        (["--key-provider-option", "colour"], "expected KEY=VALUE, got 'colour'"),
    ]
    for extra, message in refused:
        assert main([*init, *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "new").exists()
    # ... but never a folder that was there before, and the corrected command runs.
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["vault", "init", str(existing), "--key-provider-option", "colour=red"]) == 2
    assert existing.is_dir() and not list(existing.iterdir())
    assert main([*init, "--key-provider", "test-kms"]) == 0
    assert VaultConfig.load(target).key_provider == "test-kms"
