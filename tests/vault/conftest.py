"""Fixtures shared by the vault tests: a vault with small chunks, and one with two replicas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voicepriv.vault import ReplicaConfig, Vault


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    with Vault.create(tmp_path / "vault", chunk_size=64) as opened:
        yield opened


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[Vault]:
    replicas = (
        ReplicaConfig(name="a", url=str(tmp_path / "rep-a")),
        ReplicaConfig(name="b", url=str(tmp_path / "rep-b")),
    )
    with Vault.create(tmp_path / "vault2", replicas=replicas, chunk_size=64) as opened:
        yield opened
