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
