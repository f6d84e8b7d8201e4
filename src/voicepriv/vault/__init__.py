"""Everything that touches stored bytes: encrypted artifacts, keys, catalog, replicas, deletion.

Start with :class:`Vault` (``Vault.create(path)`` / ``Vault.open(path)``); ``docs/vault.md`` is
the guide and ``docs/format.md`` the byte-level file format. Nothing heavy is imported here.
"""

from __future__ import annotations

from voicepriv.vault.catalog import (
    ArtifactKind,
    Catalog,
    RecordingState,
    ReplicaState,
    RestrictionGround,
)
from voicepriv.vault.crypto import DecryptingReader
from voicepriv.vault.keys import KeyHierarchy, KeyStore
from voicepriv.vault.vault import (
    CLEANUP_GRACE,
    CleanupReport,
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
    "CLEANUP_GRACE",
    "ArtifactKind",
    "Catalog",
    "CleanupReport",
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
    "RestrictionGround",
    "SweepReport",
    "Vault",
    "VaultConfig",
    "VerifyReport",
]
