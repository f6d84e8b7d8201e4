"""The built-in jurisdiction pack plugin, and a vendor pack overriding an entry."""

from __future__ import annotations

from collections.abc import Sequence

from voicepriv.backends import jurisdictions as pack
from voicepriv.plugins import get_plugin_manager, hookimpl
from voicepriv.policy.jurisdictions import Interception, JurisdictionRule, builtin_rules


class _VendorPack:
    @hookimpl
    def voicepriv_jurisdictions(self) -> Sequence[JurisdictionRule]:
        return [
            JurisdictionRule(
                code="US-NY", name="New York (vendor view)", citation="vendor memo",
                interception="all_party", parent="US",
            ),
            JurisdictionRule(code="BR", name="Brazil", citation="LGPD", interception="one_party"),
        ]  # fmt: skip


def test_builtin_pack_is_registered_and_answers() -> None:
    manager = get_plugin_manager(autoload=False)
    answers = manager.hook.voicepriv_jurisdictions()
    assert any(answer is builtin_rules() for answer in answers)
    assert pack.voicepriv_backend_names("storage") == []


def test_plugin_jurisdictions_applies_vendor_overrides() -> None:
    manager = get_plugin_manager(autoload=False)
    vendor = _VendorPack()
    manager.register(vendor, name="vendor-pack")
    try:
        table = pack.plugin_jurisdictions(manager)
    finally:
        manager.unregister(vendor)
    assert table["US-NY"].interception is Interception.ALL_PARTY
    assert table["BR"].citation == "LGPD"
    assert table["US-CA"].interception is Interception.ALL_PARTY


def test_plugin_jurisdictions_without_vendors_is_the_builtin_table() -> None:
    table = pack.plugin_jurisdictions(get_plugin_manager(autoload=False))
    assert dict(table) == {rule.code: rule for rule in builtin_rules()}
