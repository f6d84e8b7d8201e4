"""A recording the vault tests store: one agent, one customer with a phone number."""

from __future__ import annotations

from datetime import UTC, datetime

from voicepriv import model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PHONE = "+4512345678"


def recording(
    rid: str = "call-1", *, tags: tuple[str, ...] = (), phone: str = PHONE
) -> model.Recording:
    return model.Recording(
        id=rid,
        started_at=T0,
        duration=60,
        direction="inbound",
        parties=[
            {"role": "agent", "id": "agent-7"},
            {"role": "customer", "subjects": [{"kind": "phone", "value": phone}]},
        ],
        tags=tags,
        consents=[
            {
                "role": "customer",
                "purpose": "quality_assurance",
                "state": "granted",
                "method": "dtmf",
                "offset": 3,
                "evidence": "ivr:42",
            }
        ],
    )
