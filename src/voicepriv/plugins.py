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
from voicepriv.errors import PluginError, VoiceprivError

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
    origins: dict[str, str | None] = {}
    # voicepriv's own entry points first, then the others by name: a plugin registered later
    # is asked first by first-result hooks, so a vendor's backend can stand in for a
    # built-in's name, and a jurisdiction pack applies over the built-in table.
    for entry_point in sorted(
        metadata.entry_points(group=hookspecs.PROJECT),
        key=lambda ep: (_distribution(ep) != _OWN_DISTRIBUTION, ep.dist is None, ep.name),
    ):
        dist = _distribution(entry_point)
        if not load_all and dist != _OWN_DISTRIBUTION:
            continue
        if entry_point.name in origins:
            if origins[entry_point.name] == dist:
                continue  # the same distribution seen twice on the path
            raise PluginError(
                f"plugin {entry_point.name!r} of {dist or 'an unknown distribution'} has the "
                f"entry-point name of {origins[entry_point.name] or 'another plugin'}'s; one "
                "would silently replace the other: rename the entry point"
            )
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
            ) from exc
        try:
            manager.register(plugin, name=entry_point.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(
                f"plugin {entry_point.name!r} ({entry_point.value}) cannot be registered: {exc}"
            ) from exc
        origins[entry_point.name] = dist
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements an unknown hook: {exc}") from exc
    return manager


def _distribution(entry_point: metadata.EntryPoint) -> str | None:
    return entry_point.dist.name if entry_point.dist is not None else None


def _claims(manager: pluggy.PluginManager, kind: str) -> dict[str, list[str]]:
    """Each *kind* backend name and the plugins other than voicepriv's own built-ins that say
    they provide it (a plugin may stand in for a built-in's name; two plugins may not share
    one)."""
    claims: dict[str, list[str]] = {}
    for impl in manager.hook.voicepriv_backend_names.get_hookimpls():
        if getattr(impl.plugin, "__name__", "").startswith("voicepriv."):
            continue
        try:
            names: Any = impl.function(kind=kind)
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed to list its {kind} backends: {exc}"
            ) from exc
        for name in names or ():
            claims.setdefault(str(name), []).append(impl.plugin_name)
    return claims


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

    :raises PluginError: nothing provides it (the message lists the installed names), several
        plugins claim the name, or a plugin raised something other than a voicepriv error.
    :raises MissingExtraError: a built-in needs an optional dependency that is not installed.
    """
    hook = getattr(manager.hook, f"voicepriv_{kind}", None)
    if hook is None or kind not in hookspecs.BACKEND_KINDS:
        raise PluginError(f"backend kind {kind!r} is unknown")
    argument = "url" if kind == "storage" else "name"
    if kind != "storage":  # storage answers by URL scheme, not by a listed name
        owners = _claims(manager, kind).get(name, [])
        if len(owners) > 1:
            raise PluginError(
                f"{kind} backend {name!r} is claimed by several plugins ({', '.join(owners)}); "
                "which one answers would depend on their order: uninstall or rename one"
            )
    try:
        result = hook(**{argument: name, "options": dict(options or {})})
    except VoiceprivError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{kind} backend {name!r}: a plugin failed while providing it "
            f"({type(exc).__name__}: {exc})"
        ) from exc
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
