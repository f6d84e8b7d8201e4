"""The local key-file provider: permissions, wrapping, rotation, signing, no key in reprs."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from voicepriv import plugins
from voicepriv.backends.keys import LocalKeyProvider
from voicepriv.errors import ConfigError, IntegrityError, KeyProviderError
from voicepriv.interfaces import KeyProvider


def _provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(tmp_path / "master.key", create=True)


def test_created_with_mode_0600_and_satisfies_the_protocol(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    assert isinstance(provider, KeyProvider)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
def test_group_or_world_access_is_refused(tmp_path: Path, mode: int) -> None:
    _provider(tmp_path)
    (tmp_path / "master.key").chmod(mode)
    with pytest.raises(KeyProviderError, match="chmod 600"):
        LocalKeyProvider(tmp_path / "master.key")


def test_missing_file_is_not_created_unless_asked(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="does not exist"):
        LocalKeyProvider(tmp_path / "absent.key")
    assert not (tmp_path / "absent.key").exists()


def test_wrap_binds_the_context_and_detects_edits(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    key_id, wrapped = provider.wrap(b"k" * 32, context=b"rk-1")
    assert provider.unwrap(key_id, wrapped, context=b"rk-1") == b"k" * 32
    with pytest.raises(IntegrityError):
        provider.unwrap(key_id, wrapped, context=b"rk-2")
    edited = bytearray(wrapped)
    edited[-1] ^= 1
    with pytest.raises(IntegrityError):
        provider.unwrap(key_id, bytes(edited), context=b"rk-1")


def test_rotation_keeps_old_keys_for_unwrapping_and_another_process_sees_it(
    tmp_path: Path,
) -> None:
    provider = _provider(tmp_path)
    old_id, wrapped = provider.wrap(b"x" * 32, context=b"c")
    other = LocalKeyProvider(tmp_path / "master.key")
    new_id = provider.rotate()
    assert new_id != old_id and provider.current_key_id() == new_id
    assert provider.unwrap(old_id, wrapped, context=b"c") == b"x" * 32
    later_id, later = provider.wrap(b"y" * 32, context=b"c")
    assert later_id == new_id
    assert other.unwrap(later_id, later, context=b"c") == b"y" * 32  # reloads after rotation
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    provider.retire(old_id)
    with pytest.raises(KeyProviderError, match="no master key"):
        LocalKeyProvider(tmp_path / "master.key").unwrap(old_id, wrapped, context=b"c")


def test_signature_verifies_with_the_published_key(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    signature = provider.sign(b"event")
    Ed25519PublicKey.from_public_bytes(provider.verify_key()).verify(signature, b"event")


def test_no_key_material_in_repr_or_errors(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    document = json.loads((tmp_path / "master.key").read_bytes())
    secrets = [base64.b64decode(v) for v in document["master_keys"].values()]
    secrets.append(base64.b64decode(document["signing_key"]))
    key_id, wrapped = provider.wrap(b"s" * 32, context=b"c")
    try:
        provider.unwrap(key_id, wrapped, context=b"other")
    except IntegrityError as exc:
        message = str(exc)
    texts = [repr(provider), message]
    for secret in secrets:
        for text in texts:
            assert secret.hex() not in text
            assert base64.b64encode(secret).decode() not in text


def test_plugin_hooks(tmp_path: Path) -> None:
    manager = plugins.get_plugin_manager()
    assert "local" in plugins.backend_names(manager, "key_provider")
    provider = plugins.backend(
        manager, "key_provider", "local", {"path": str(tmp_path / "k"), "create": True}
    )
    assert isinstance(provider, LocalKeyProvider)
    with pytest.raises(ConfigError, match="unknown option"):
        plugins.backend(manager, "key_provider", "local", {"path": "x", "colour": 1})
    assert (tmp_path / "k").exists()
