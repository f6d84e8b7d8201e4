"""Built-in jurisdiction pack plugin: the consent-law table shipped with voicepriv.

Registered through the entry-point group ``voicepriv`` like any vendor pack. It answers
:func:`~voicepriv.hookspecs.voicepriv_jurisdictions` with the built-in table; vendor packs
answer with entries that add to or override it. :func:`plugin_jurisdictions` gathers every
pack into one :class:`~voicepriv.policy.jurisdictions.JurisdictionTable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from voicepriv.plugins import get_plugin_manager, hookimpl
from voicepriv.policy.jurisdictions import (
    JurisdictionRule,
    JurisdictionTable,
    builtin_rules,
    load_jurisdictions,
)

__all__ = ["plugin_jurisdictions", "voicepriv_backend_names", "voicepriv_jurisdictions"]


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """This plugin provides no backend of any kind (it gives jurisdiction entries)."""
    return []


@hookimpl
def voicepriv_jurisdictions() -> Sequence[JurisdictionRule]:
    """The built-in consent-law table (``voicepriv/policy/data/jurisdictions.toml``)."""
    return builtin_rules()


def plugin_jurisdictions(manager: pluggy.PluginManager | None = None) -> JurisdictionTable:
    """The built-in table with every installed pack's entries applied (later packs win).

    pluggy calls the most recently registered plugin first, so results are applied in
    reverse: the built-in pack first, the latest-registered plugin last.
    """
    pm = manager if manager is not None else get_plugin_manager()
    extra: list[JurisdictionRule] = []
    builtin = builtin_rules()
    for answer in reversed(pm.hook.voicepriv_jurisdictions()):
        if answer is not builtin:  # the built-in table is the base, never an override
            extra.extend(answer)
    return load_jurisdictions(extra)
