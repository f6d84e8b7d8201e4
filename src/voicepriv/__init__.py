"""voicepriv: record contact-center calls lawfully and usefully.

The public API, re-exported in one place::

    from voicepriv import Vault, decide, ingest, isolate, load_policy

- :func:`load_policy`, :func:`decide`: an organisation's policy and the explained decision for
  one call (pure functions).
- :func:`isolate`: agent-only audio from a stereo or mono call.
- :class:`Vault`: encrypted artifacts, keys, catalog, replicas, deletion and retention sweep.
- :func:`ingest`, :func:`run_batch`: the pipeline for one call or many.
- :class:`Rights`, :class:`AuditLog`: data-subject requests and the signed audit log.

Nothing heavy is imported here: no speaker model, no torch, no onnxruntime.
"""

from __future__ import annotations

from voicepriv.audio import Audio
from voicepriv.audit import AuditLog
from voicepriv.batch import run_batch
from voicepriv.enrollment import Enrollment, enroll
from voicepriv.errors import (
    AccessDenied,
    AudioError,
    IntegrityError,
    IsolationError,
    LegalHoldError,
    ModelError,
    PipelineError,
    PluginError,
    PolicyError,
    VaultError,
    VoiceprivError,
)
from voicepriv.isolation import isolate
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
from voicepriv.pipeline import IngestResult, ingest
from voicepriv.plugins import get_plugin_manager
from voicepriv.policy import Decision, Policy, Principal, authorize, decide, load_policy
from voicepriv.rights import Rights
from voicepriv.vault import Vault

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Audio",
    "AudioError",
    "AuditLog",
    "ChannelLayout",
    "ConsentEvent",
    "ConsentMethod",
    "ConsentState",
    "Decision",
    "Direction",
    "Enrollment",
    "IngestResult",
    "IntegrityError",
    "IsolationError",
    "LegalBasis",
    "LegalHold",
    "LegalHoldError",
    "ModelError",
    "Party",
    "PipelineError",
    "PluginError",
    "Policy",
    "PolicyError",
    "Principal",
    "Purpose",
    "Recording",
    "RetentionRule",
    "Rights",
    "Role",
    "Segment",
    "SubjectRef",
    "Vault",
    "VaultError",
    "VoiceprivError",
    "__version__",
    "authorize",
    "decide",
    "enroll",
    "from_json",
    "get_plugin_manager",
    "ingest",
    "isolate",
    "load_policy",
    "run_batch",
    "to_json",
]
