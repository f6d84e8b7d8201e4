"""The exception tree of voicepriv.

Every error raised on purpose by voicepriv derives from :class:`VoiceprivError`, and also from
the builtin exception that fits it, so callers may catch either (``except ValueError`` still
catches a malformed policy). Every message names the input and the problem, e.g.
``"policy.toml line 12: purpose 'qa' has no legal basis"``.

Decisions are values: :func:`voicepriv.policy.decide` returns a ``Decision`` and never raises
for a call that may not be kept. Only enforcing functions raise (opening a recording without
permission, deleting a recording under a legal hold, ...).
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AudioError",
    "AuditError",
    "AuditIntegrityError",
    "BenchError",
    "CatalogError",
    "ConfigError",
    "IntegrityError",
    "IsolationError",
    "KeyDestroyedError",
    "KeyProviderError",
    "LegalHoldError",
    "MissingExtraError",
    "ModelError",
    "NotFoundError",
    "PathEscapeError",
    "PipelineError",
    "PluginError",
    "PolicyError",
    "StorageError",
    "UnknownJurisdictionError",
    "VaultError",
    "VoiceprivError",
]


class VoiceprivError(Exception):
    """Root of every error voicepriv raises on purpose."""


class ModelError(VoiceprivError, ValueError):
    """A model value is invalid; the message names the field, what was expected and the value."""


class ConfigError(VoiceprivError, ValueError):
    """A configuration value (CLI option, vault settings, backend options) is invalid."""


class AudioError(VoiceprivError, ValueError):
    """Audio input is unusable: empty, truncated, not audio, non-finite, bad rate or layout."""


class PolicyError(VoiceprivError, ValueError):
    """An organisation policy or a jurisdiction pack is malformed (message gives file and line)."""


class UnknownJurisdictionError(PolicyError, LookupError):
    """A jurisdiction code is not known to any loaded jurisdiction pack.

    Raised only by look-ups; :func:`voicepriv.policy.decide` never raises it but falls back to
    the strictest known rule and says so in its reasons.
    """


class AccessDenied(VoiceprivError, PermissionError):  # noqa: N818 - reads like PermissionError
    """A principal asked to open a recording without a permission that covers the purpose."""


class PluginError(VoiceprivError, LookupError):
    """A backend or plugin was asked for by a name nothing provides, or a plugin failed."""


class MissingExtraError(PluginError, ImportError):
    """A built-in backend needs an optional dependency; the message names the extra to install."""


class VaultError(VoiceprivError, OSError):
    """Something went wrong storing, reading or deleting an artifact."""


class StorageError(VaultError):
    """A storage location failed to write, read or delete an object."""


class PathEscapeError(VaultError, ValueError):
    """A path or object key would resolve outside the vault root."""


class IntegrityError(VaultError):
    """Stored bytes were tampered with, truncated, reordered or do not belong together."""


class KeyProviderError(VaultError):
    """A key provider cannot wrap, unwrap, load or protect a key (e.g. a world-readable file)."""


class KeyDestroyedError(KeyProviderError):
    """The key needed to decrypt an artifact has been destroyed (crypto-shredded)."""


class CatalogError(VaultError):
    """The catalog database is unusable, or a catalog operation conflicts with what is stored."""


class NotFoundError(VaultError, LookupError):
    """A recording, artifact or subject is not in the catalog."""


class LegalHoldError(VaultError, PermissionError):
    """A deletion was refused because a legal hold or a legal obligation covers the recording."""


class IsolationError(VoiceprivError, RuntimeError):
    """Agent-voice isolation refused to produce output (e.g. channel roles cannot be known)."""


class AuditError(VoiceprivError, OSError):
    """The audit log cannot be written or read."""


class AuditIntegrityError(AuditError):
    """The audit log was edited, truncated, reordered or had events inserted.

    :attr:`index` is the zero-based line number of the first bad event.
    """

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class PipelineError(VoiceprivError, RuntimeError):
    """An ingest step failed; :attr:`step` names it and nothing partial was kept."""

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(message)
        self.step = step


class BenchError(VoiceprivError, ValueError):
    """A benchmark dataset, manifest or algorithm specification is invalid."""
