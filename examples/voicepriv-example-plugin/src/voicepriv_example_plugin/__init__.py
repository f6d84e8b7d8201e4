"""Example voicepriv plugin: a metadata adapter for the made-up "AcmeDial" dialer export.

Registered by one line in ``pyproject.toml``::

    [project.entry-points.voicepriv]
    acmedial = "voicepriv_example_plugin"

The adapter maps AcmeDial's fields onto voicepriv's generic call layout and lets
:func:`voicepriv.backends.adapters.parse_calls` validate it, so errors name the file, the record
and the field like every built-in adapter's do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voicepriv.backends.adapters import parse_calls
from voicepriv.errors import ConfigError, ModelError
from voicepriv.interfaces import IntakeRecord, MetadataAdapter
from voicepriv.plugins import hookimpl

__all__ = ["AcmeDialAdapter", "voicepriv_backend_names", "voicepriv_metadata_adapter"]

#: The export version this adapter reads.
EXPORT_VERSION = 2

_LAYOUTS: Mapping[str, object] = {
    "AL": ["agent", "customer"],
    "AR": ["customer", "agent"],
    "M": "mono",
}
_DIRECTIONS: Mapping[str, str] = {"IN": "inbound", "OUT": "outbound"}


class AcmeDialAdapter:
    """Reads AcmeDial's nightly JSON export (``{"acmedial_export": 2, "calls": [...]}``).

    :param site: only keep calls of this site (AcmeDial exports can hold several); ``None``
        keeps all.
    """

    def __init__(self, *, site: str | None = None) -> None:
        self.site = site

    @property
    def name(self) -> str:
        """``"acmedial"``."""
        return "acmedial"

    def parse(self, data: bytes, *, source: str) -> list[IntakeRecord]:
        """Every call of the export as an :class:`IntakeRecord`.

        :raises ModelError: not an AcmeDial export, or invalid calls (all reported at once).
        """
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{source}: not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("acmedial_export") != EXPORT_VERSION:
            raise ModelError(
                f"{source} field acmedial_export: expected {EXPORT_VERSION}, "
                f"got {document.get('acmedial_export') if isinstance(document, dict) else None!r}"
            )
        if self.site is not None and document.get("site") != self.site:
            return []
        calls = document.get("calls")
        if not isinstance(calls, list):
            raise ModelError(f"{source} field calls: expected a list, got {calls!r}")
        return parse_calls(
            [_generic(call, source, i) for i, call in enumerate(calls)], source=source
        )


def _generic(call: object, source: str, index: int) -> object:
    """One AcmeDial call as a generic call object (left unchanged when it is not an object)."""
    if not isinstance(call, dict):
        return call
    where = f"{source} record {index} (call {call.get('uuid')!r})"
    try:
        zone = ZoneInfo(str(call.get("tz", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ModelError(f"{where} field tz: unknown time zone {call.get('tz')!r}") from None
    epoch = call.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        raise ModelError(f"{where} field epoch: expected seconds since 1970, got {epoch!r}")
    length = call.get("len_ms")
    if isinstance(length, bool) or not isinstance(length, int | float):
        raise ModelError(f"{where} field len_ms: expected milliseconds, got {length!r}")
    agent = call.get("agent") or {}
    contact = call.get("contact") or {}
    customer = {
        "role": "customer",
        "jurisdiction": contact.get("region"),
        "phone": contact.get("ani"),
        "customer_id": contact.get("crm"),
    }
    return {
        "call_id": call.get("uuid"),
        "started_at": datetime.fromtimestamp(epoch, zone).isoformat(),
        "duration_s": length / 1000.0,
        "direction": _DIRECTIONS.get(str(call.get("dir")), call.get("dir")),
        "channels": _LAYOUTS.get(str(call.get("stereo")), call.get("stereo")),
        "audio": call.get("file"),
        "parties": [
            {"role": "agent", "id": agent.get("login"), "jurisdiction": agent.get("region")},
            {k: v for k, v in customer.items() if v},
        ],
        "ivr": [
            {
                "prompt": step.get("menu"),
                "digit": step.get("key"),
                "offset_s": step.get("t_ms", 0) / 1000.0,
            }
            for step in call.get("ivr_log") or []
        ],
    }


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``acmedial`` for ``metadata_adapter``."""
    return ["acmedial"] if kind == "metadata_adapter" else []


@hookimpl
def voicepriv_metadata_adapter(name: str, options: Mapping[str, Any]) -> MetadataAdapter | None:
    """The AcmeDial adapter, or ``None`` for any other name (the hook is first-result).

    :raises ConfigError: an option other than ``site``.
    """
    if name != "acmedial":
        return None
    unknown = sorted(set(options) - {"site"})
    if unknown:
        raise ConfigError(f"metadata adapter 'acmedial': unknown option(s) {', '.join(unknown)}")
    return AcmeDialAdapter(site=options.get("site"))
