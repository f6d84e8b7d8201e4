"""Everything that touches stored bytes: encrypted artifacts, keys, catalog, replicas, deletion.

Start with :class:`Vault` (``Vault.create(path)`` / ``Vault.open(path)``); ``docs/vault.md`` is
the guide and ``docs/format.md`` the byte-level file format. Nothing heavy is imported here.
"""

from __future__ import annotations

from voicepriv.vault.catalog import ArtifactKind, Catalog, RecordingState, ReplicaState
from voicepriv.vault.crypto import DecryptingReader
from voicepriv.vault.keys import KeyHierarchy, KeyStore
from voicepriv.vault.vault import (
    DeletionReceipt,
    HeldBack,
    PutResult,
    RecordingMetadata,
    RepairReport,
    ReplicaCheck,
    ReplicaConfig,
    ReplicaReceipt,
    SweepReport,
    Vault,
    VaultConfig,
    VerifyReport,
)

__all__ = [
    "ArtifactKind",
    "Catalog",
    "DecryptingReader",
    "DeletionReceipt",
    "HeldBack",
    "KeyHierarchy",
    "KeyStore",
    "PutResult",
    "RecordingMetadata",
    "RecordingState",
    "RepairReport",
    "ReplicaCheck",
    "ReplicaConfig",
    "ReplicaReceipt",
    "ReplicaState",
    "SweepReport",
    "Vault",
    "VaultConfig",
    "VerifyReport",
]
