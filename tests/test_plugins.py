"""The plugin host: built-ins through entry points, inline plugins, clear errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pluggy
import pytest

from voicepriv import hookspecs, plugins
from voicepriv.errors import PluginError
from voicepriv.plugins import hookimpl


class _Inline:
    """A plugin registered in code; names one separator."""

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return ["inline-sep"] if kind == "separator" else []

    @hookimpl
    def voicepriv_separator(self, name: str, options: Mapping[str, Any]) -> object | None:
        return ("inline", dict(options)) if name == "inline-sep" else None


@pytest.fixture
def manager() -> Iterator[pluggy.PluginManager]:
    pm = plugins.get_plugin_manager()
    plugin = _Inline()
    pm.register(plugin, name="inline")
    try:
        yield pm
    finally:
        pm.unregister(plugin)


def test_builtins_register_through_entry_points() -> None:
    infos = plugins.list_plugins(plugins.get_plugin_manager())
    builtin = [i for i in infos if i.name.startswith("voicepriv-")]
    assert builtin, "voicepriv's own entry points were not loaded"
    assert all(i.distribution and i.distribution.startswith("voicepriv ") for i in builtin)


def test_inline_plugin_answers_and_options_pass_through(manager: pluggy.PluginManager) -> None:
    assert "inline-sep" in plugins.backend_names(manager, "separator")
    assert plugins.backend(manager, "separator", "inline-sep", {"k": 1}) == ("inline", {"k": 1})


def test_unknown_backend_lists_installed(manager: pluggy.PluginManager) -> None:
    with pytest.raises(PluginError, match=r"no separator backend called 'nope'.*inline-sep"):
        plugins.backend(manager, "separator", "nope")
    with pytest.raises(PluginError, match="backend kind 'teleporter'"):
        plugins.backend_names(manager, "teleporter")


def test_misspelled_hook_is_caught_by_check_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    class Typo:
        @hookimpl
        def voicepriv_seperator(self, name: str) -> None:  # misspelled on purpose
            return None

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_autoload_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "1")
    own_only = {i.name for i in plugins.list_plugins(plugins.get_plugin_manager())}
    everything = {i.name for i in plugins.list_plugins(plugins.get_plugin_manager(autoload=True))}
    assert own_only <= everything
    assert all(name.startswith("voicepriv-") for name in own_only)


def test_every_hookspec_is_documented() -> None:
    for name in dir(hookspecs):
        if name.startswith("voicepriv_"):
            doc = getattr(hookspecs, name).__doc__ or ""
            assert len(doc) > 80, f"{name} needs a docstring saying what it receives and returns"
            assert (
                "None" in doc or "every plugin" in doc.lower() or "called on every" in doc.lower()
            )


class _Dist:
    def __init__(self, name: str) -> None:
        self.name = name
        self.version = "1.0"


class _EntryPoint:
    """An installed entry point (name, distribution) whose module is *plugin*."""

    def __init__(self, name: str, dist: str, plugin: object) -> None:
        self.name, self.dist, self.plugin = name, _Dist(dist), plugin
        self.value = f"{dist}.plugin"

    def load(self) -> object:
        return self.plugin


def _installed(monkeypatch: pytest.MonkeyPatch, *extra: _EntryPoint) -> None:
    """voicepriv's own entry points plus *extra*, as installed distributions would list them."""
    own = list(plugins.metadata.entry_points(group=hookspecs.PROJECT))
    monkeypatch.setattr(
        plugins.metadata, "entry_points", lambda group: [*extra, *own] if group else []
    )


class _Pack:
    """A vendor's jurisdiction pack whose entry-point name sorts before voicepriv's own."""

    def __init__(self, rules: list[Any]) -> None:
        self.rules = rules

    @hookimpl
    def voicepriv_jurisdictions(self) -> list[Any]:
        return self.rules


def test_a_pack_sorting_before_the_builtins_still_applies_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Entry points registered by name: a pack called "acme" came before
    # "voicepriv-jurisdictions", and ingest's table let the built-in table overwrite it.
    import attrs

    from voicepriv.backends.jurisdictions import plugin_jurisdictions
    from voicepriv.pipeline import installed_jurisdictions
    from voicepriv.policy import load_jurisdictions

    builtin = load_jurisdictions()
    stricter = attrs.evolve(builtin["DK"], li_purposes=frozenset())
    assert stricter != builtin["DK"]
    _installed(monkeypatch, _EntryPoint("acme", "acme-dialer", _Pack([stricter])))
    pm = plugins.get_plugin_manager(autoload=True)
    names = [name for name, _ in pm.list_name_plugin()]
    assert names.index("acme") > names.index("voicepriv-jurisdictions")
    assert installed_jurisdictions(pm)["DK"] == stricter
    assert plugin_jurisdictions(pm)["DK"] == stricter


def test_an_entry_point_named_like_a_builtin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # It used to replace voicepriv's own key providers silently.
    _installed(monkeypatch, _EntryPoint("voicepriv-keys", "acme-kms", _Inline()))
    with pytest.raises(PluginError, match=r"'voicepriv-keys' of acme-kms has the entry-point name"):
        plugins.get_plugin_manager(autoload=True)


def test_a_plugin_with_a_malformed_hook_is_a_plugin_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class WrongArgument:
        @hookimpl
        def voicepriv_separator(self, nmae: str) -> None:  # not an argument of the spec
            return None

    _installed(monkeypatch, _EntryPoint("acme", "acme-dialer", WrongArgument()))
    with pytest.raises(PluginError, match=r"plugin 'acme' .* cannot be registered"):
        plugins.get_plugin_manager(autoload=True)


def test_two_plugins_claiming_one_name_are_refused(manager: pluggy.PluginManager) -> None:
    impostor = _Inline()
    manager.register(impostor, name="impostor")
    try:
        with pytest.raises(PluginError, match=r"'inline-sep' is claimed by several .*inline"):
            plugins.backend(manager, "separator", "inline-sep")
    finally:
        manager.unregister(impostor)
    # One plugin claiming it again (standing in for a built-in's name is allowed too, see
    # tests/test_isolation.py): it answers.
    assert plugins.backend(manager, "separator", "inline-sep") == ("inline", {})


def test_a_plugin_raising_is_a_plugin_error_naming_the_backend(
    manager: pluggy.PluginManager,
) -> None:
    class Broken:
        @hookimpl
        def voicepriv_metadata_adapter(self, name: str, options: Mapping[str, Any]) -> None:
            raise RuntimeError("dialer API down")

    broken = Broken()
    manager.register(broken, name="broken")
    try:
        with pytest.raises(
            PluginError, match=r"metadata_adapter backend 'generic-json'.*RuntimeError: dialer"
        ):
            plugins.backend(manager, "metadata_adapter", "generic-json")
    finally:
        manager.unregister(broken)
