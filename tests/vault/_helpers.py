"""A recording the vault tests store (one agent, one customer with a phone number), and test
doubles of a key provider."""

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


class WrapOnlyKeys:
    """A key provider's wrapping half: identity wraps under one key id (a test double, not
    crypto), no ``sign`` or ``verify_key``."""

    name = "wrap-only"

    def current_key_id(self) -> str:
        return "k1"

    def wrap(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        return "k1", plaintext

    def unwrap(self, key_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        return wrapped

    def rotate(self) -> str:
        return "k1"


class IdentityKeys(WrapOnlyKeys):
    """A whole key provider of identity wraps and an all-zero signature (a test double)."""

    name = "identity"

    def sign(self, message: bytes) -> bytes:
        return b"\0" * 64

    def verify_key(self) -> bytes:
        return b"\0" * 32
