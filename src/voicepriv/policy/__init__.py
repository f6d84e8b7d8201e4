"""The policy engine: consent law + an organisation's policy -> explained decisions.

Pure functions, no I/O besides reading the jurisdiction data file and a policy TOML. Imports
only :mod:`voicepriv.model` and :mod:`voicepriv.errors`; plugin jurisdiction packs come in
through :func:`load_jurisdictions` (see ``voicepriv.backends.jurisdictions``).
"""

from __future__ import annotations

from voicepriv.policy.access import Denial, Grant, Principal, authorize, require
from voicepriv.policy.config import (
    DigitAction,
    IvrPrompt,
    Notice,
    Organisation,
    Policy,
    PurposePolicy,
    load_policy,
    parse_policy,
)
from voicepriv.policy.consent import consents_from_ivr, purpose_consent
from voicepriv.policy.decision import (
    Decision,
    KeptPurpose,
    Obligation,
    Reason,
    TrackDecision,
    applicable_law,
    decide,
    decision_from_dict,
    decision_to_dict,
)
from voicepriv.policy.jurisdictions import (
    DataProtection,
    Interception,
    JurisdictionRule,
    JurisdictionTable,
    NoticeRule,
    load_jurisdictions,
)
from voicepriv.policy.retention import deadline, due, held, hold_covers

__all__ = [
    "DataProtection",
    "Decision",
    "Denial",
    "DigitAction",
    "Grant",
    "Interception",
    "IvrPrompt",
    "JurisdictionRule",
    "JurisdictionTable",
    "KeptPurpose",
    "Notice",
    "NoticeRule",
    "Obligation",
    "Organisation",
    "Policy",
    "Principal",
    "PurposePolicy",
    "Reason",
    "TrackDecision",
    "applicable_law",
    "authorize",
    "consents_from_ivr",
    "deadline",
    "decide",
    "decision_from_dict",
    "decision_to_dict",
    "due",
    "held",
    "hold_covers",
    "load_jurisdictions",
    "load_policy",
    "parse_policy",
    "purpose_consent",
    "require",
]
