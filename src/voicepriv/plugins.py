"""The plugin host: one pluggy manager with the built-ins and every installed plugin.

Built-in backends are registered through the entry-point group ``voicepriv`` exactly like a
vendor's package. Set ``VOICEPRIV_DISABLE_PLUGIN_AUTOLOAD=1`` to load only voicepriv's own
entry points (tests do, so an installed third-party plugin cannot change their outcome).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Final, TypeVar

import pluggy

from voicepriv import hookspecs
from voicepriv.errors import PluginError

__all__ = [
    "AUTOLOAD_ENV",
    "PluginInfo",
    "backend",
    "backend_names",
    "get_plugin_manager",
    "hookimpl",
    "list_plugins",
]

#: Decorator for hook implementations: ``@hookimpl def voicepriv_separator(...)``.
hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT)

#: Environment variable that turns off loading third-party entry points.
AUTOLOAD_ENV: Final = "VOICEPRIV_DISABLE_PLUGIN_AUTOLOAD"
_OWN_DISTRIBUTION: Final = "voicepriv"

_T = TypeVar("_T")


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def get_plugin_manager(*, autoload: bool | None = None) -> pluggy.PluginManager:
    """Build a plugin manager: specs, built-ins, installed plugins, then ``check_pending()``.

    :param autoload: load third-party entry points; ``None`` reads :data:`AUTOLOAD_ENV`.
    :raises PluginError: a plugin failed to import or implements a hook that does not exist.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    load_all = not _autoload_disabled() if autoload is None else autoload
    for entry_point in sorted(
        metadata.entry_points(group=hookspecs.PROJECT), key=lambda ep: (ep.dist is None, ep.name)
    ):
        dist = entry_point.dist.name if entry_point.dist is not None else None
        if not load_all and dist != _OWN_DISTRIBUTION:
            continue
        if manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
            ) from exc
        manager.register(plugin, name=entry_point.name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements an unknown hook: {exc}") from exc
    return manager


def backend_names(manager: pluggy.PluginManager, kind: str) -> list[str]:
    """Every backend name installed for *kind* (one of ``hookspecs.BACKEND_KINDS``), sorted."""
    if kind not in hookspecs.BACKEND_KINDS:
        raise PluginError(
            f"backend kind {kind!r} is unknown; "
            f"expected one of {', '.join(hookspecs.BACKEND_KINDS)}"
        )
    names: set[str] = set()
    for batch in manager.hook.voicepriv_backend_names(kind=kind):
        names.update(batch)
    return sorted(names)


def backend(
    manager: pluggy.PluginManager,
    kind: str,
    name: str,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """Ask the plugins for the *kind* backend called *name*.

    :raises PluginError: nothing provides it (the message lists the installed names).
    :raises MissingExtraError: a built-in needs an optional dependency that is not installed.
    """
    hook = getattr(manager.hook, f"voicepriv_{kind}", None)
    if hook is None or kind not in hookspecs.BACKEND_KINDS:
        raise PluginError(f"backend kind {kind!r} is unknown")
    argument = "url" if kind == "storage" else "name"
    result = hook(**{argument: name, "options": dict(options or {})})
    if result is None:
        installed = ", ".join(backend_names(manager, kind)) or "none"
        raise PluginError(
            f"no {kind} backend called {name!r} is installed (installed: {installed})"
        )
    return result


class PluginInfo:
    """One registered plugin: its name, its distribution and the hooks it implements."""

    __slots__ = ("distribution", "hooks", "name")

    def __init__(self, name: str, distribution: str | None, hooks: tuple[str, ...]) -> None:
        self.name = name
        self.distribution = distribution
        self.hooks = hooks

    def __repr__(self) -> str:
        return f"PluginInfo(name={self.name!r}, distribution={self.distribution!r})"


def list_plugins(manager: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements, sorted by name."""
    distributions = {
        ep.name: f"{ep.dist.name} {ep.dist.version}"
        for ep in metadata.entry_points(group=hookspecs.PROJECT)
        if ep.dist is not None
    }
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or []))
        infos.append(PluginInfo(name, distributions.get(name), hooks))
    return sorted(infos, key=lambda info: info.name)
