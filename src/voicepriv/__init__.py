"""voicepriv: record contact-center calls lawfully and usefully.

The public API is re-exported here; nothing heavy is imported (no model, no torch).
"""

from __future__ import annotations

from voicepriv.audio import Audio
from voicepriv.errors import (
    AccessDenied,
    AudioError,
    IntegrityError,
    IsolationError,
    ModelError,
    PolicyError,
    VaultError,
    VoiceprivError,
)
from voicepriv.model import (
    ChannelLayout,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Direction,
    LegalBasis,
    LegalHold,
    Party,
    Purpose,
    Recording,
    RetentionRule,
    Role,
    Segment,
    SubjectRef,
    from_json,
    to_json,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Audio",
    "AudioError",
    "ChannelLayout",
    "ConsentEvent",
    "ConsentMethod",
    "ConsentState",
    "Direction",
    "IntegrityError",
    "IsolationError",
    "LegalBasis",
    "LegalHold",
    "ModelError",
    "Party",
    "PolicyError",
    "Purpose",
    "Recording",
    "RetentionRule",
    "Role",
    "Segment",
    "SubjectRef",
    "VaultError",
    "VoiceprivError",
    "__version__",
    "from_json",
    "to_json",
]
