"""Who may open a recording, for which purpose, until when.

A principal (a person or service with an organisation role) may open a recording only for a
purpose its role is allowed in the policy *and* the recording's decision covers, and only
before that purpose's retention deadline. The answer is a value: a :class:`Grant` (with an
expiry) or a :class:`Denial` with its reason; :func:`require` raises for enforcing callers.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from voicepriv.errors import AccessDenied
from voicepriv.model import Role
from voicepriv.policy.config import Policy
from voicepriv.policy.decision import Decision

__all__ = ["Denial", "Grant", "Principal", "authorize", "require"]


@attrs.frozen(kw_only=True)
class Principal:
    """Someone asking to open recordings: an id and an organisation role from the policy."""

    id: str
    role: str


@attrs.frozen(kw_only=True)
class Grant:
    """Permission to open *tracks* of a recording for *purpose* until *expires_at*."""

    principal: str
    recording_id: str
    purpose: str
    tracks: tuple[Role, ...]
    expires_at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class Denial:
    """A refusal, with the reason naming what is missing."""

    principal: str
    recording_id: str
    purpose: str
    reason: str


def authorize(
    principal: Principal, decision: Decision, purpose: str, policy: Policy, now: datetime
) -> Grant | Denial:
    """May *principal* open the recording of *decision* for *purpose* at *now*?

    Granted when the role is in the policy, the role may use recordings for *purpose*, some
    track is kept for it, and its deadline has not passed. A grant expires after the policy's
    ``access_grant_hours`` or at the purpose's deadline, whichever comes first.
    """

    def deny(reason: str) -> Denial:
        return Denial(
            principal=principal.id,
            recording_id=decision.recording_id,
            purpose=purpose,
            reason=reason,
        )

    if principal.role not in policy.roles:
        return deny(f"role {principal.role!r} is not defined in policy {policy.source}")
    if purpose not in policy.allowed(principal.role):
        allowed = ", ".join(sorted(policy.allowed(principal.role))) or "none"
        return deny(
            f"role {principal.role!r} may not use recordings for {purpose!r} (allowed: {allowed})"
        )
    tracks = [t for t in decision.tracks if t.covers(purpose)]
    if not tracks:
        kept = ", ".join(sorted(decision.purposes())) or "nothing"
        return deny(
            f"recording {decision.recording_id} is not kept for {purpose!r} (kept for: {kept})"
        )
    deadlines = [k.deadline for t in tracks if (k := t.purpose(purpose)) is not None]
    last = max(deadlines)
    if now >= last:
        return deny(
            f"the retention for {purpose!r} ended at {last.isoformat()}; the recording is due "
            "for deletion"
        )
    expires = min(now + policy.organisation.access_grant, last)
    return Grant(
        principal=principal.id,
        recording_id=decision.recording_id,
        purpose=purpose,
        tracks=tuple(t.role for t in tracks),
        expires_at=expires,
        reason=f"role {principal.role!r} is allowed {purpose!r} and the recording is kept for it",
    )


def require(
    principal: Principal, decision: Decision, purpose: str, policy: Policy, now: datetime
) -> Grant:
    """Like :func:`authorize`, but raise on a denial.

    :raises AccessDenied: with the denial's reason.
    """
    answer = authorize(principal, decision, purpose, policy, now)
    if isinstance(answer, Denial):
        raise AccessDenied(f"{principal.id}: {answer.reason}")
    return answer
