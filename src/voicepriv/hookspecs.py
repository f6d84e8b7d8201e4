"""Every hook a voicepriv plugin can implement.

A plugin is a module or object with functions named like the hooks below, decorated with
:data:`voicepriv.plugins.hookimpl`, and registered under the entry-point group ``voicepriv``::

    [project.entry-points.voicepriv]
    mydialer = "mydialer.voicepriv_plugin"

Built-in backends register through that same group. Hooks that give one backend by name are
``firstresult``: the first plugin that answers with something other than ``None`` wins, so a
plugin answers ``None`` for names it does not own. Hooks that collect (``*_names``,
``voicepriv_jurisdictions``, ``voicepriv_audit_sinks``) call every plugin and return a list.

Options are passed through unchanged from the user (an fsspec ``storage_options`` mapping,
backend settings from the CLI or the policy); a backend rejects options it does not know with
:class:`~voicepriv.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from voicepriv.interfaces import (
        AuditSink,
        Embedder,
        KeyProvider,
        MetadataAdapter,
        Recogniser,
        Separator,
        Storage,
        Transcriber,
        VoiceActivityDetector,
    )
    from voicepriv.policy.jurisdictions import JurisdictionRule

__all__ = ["PROJECT", "hookspec"]

#: The pluggy project name; also the entry-point group.
PROJECT = "voicepriv"

hookspec = pluggy.HookspecMarker(PROJECT)

#: Backend kinds that :func:`voicepriv_backend_names` and ``voicepriv plugins`` know about.
BACKEND_KINDS = (
    "storage",
    "key_provider",
    "separator",
    "vad",
    "embedder",
    "transcriber",
    "recogniser",
    "metadata_adapter",
)


@hookspec
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """List the backend names this plugin provides for *kind*.

    Called on every plugin; the results are concatenated. Used by ``voicepriv plugins``, by
    error messages that list the choices, and by the separation bench, which runs every
    installed separator.

    :param kind: one of :data:`BACKEND_KINDS`.
    :return: names (possibly empty). A backend whose optional dependency is missing is still
        listed; asking for it raises :class:`~voicepriv.errors.MissingExtraError`.
    """


@hookspec(firstresult=True)
def voicepriv_storage(url: str, options: Mapping[str, Any]) -> Storage | None:
    """Give a storage rooted at *url*, or ``None`` when this plugin does not handle it.

    The first non-``None`` answer wins. The built-in backend accepts any URL fsspec knows
    (``file://``, ``memory://``, ``s3://`` with the ``s3`` extra ...); a vendor plugin answers
    for its own scheme and returns ``None`` for others.

    :param url: the location's root URL, as the user wrote it.
    :param options: ``storage_options``, passed through to the store untouched.
    """


@hookspec(firstresult=True)
def voicepriv_key_provider(name: str, options: Mapping[str, Any]) -> KeyProvider | None:
    """Give the key provider called *name*, or ``None`` when this plugin has none by that name.

    The first non-``None`` answer wins. Built-in: ``"local"`` (a key file; option ``path``).

    :param name: provider name from the vault configuration.
    :param options: provider options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_separator(name: str, options: Mapping[str, Any]) -> Separator | None:
    """Give the separator called *name*, or ``None`` when this plugin has none by that name.

    The first non-``None`` answer wins.

    :param name: the backend name the user chose, e.g. ``"channels"``.
    :param options: backend options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_vad(name: str, options: Mapping[str, Any]) -> VoiceActivityDetector | None:
    """Give the voice activity detector called *name*, or ``None``.

    The first non-``None`` answer wins.

    :param name: e.g. ``"energy"`` (core) or ``"silero"`` (extra ``onnx``).
    :param options: backend options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_embedder(name: str, options: Mapping[str, Any]) -> Embedder | None:
    """Give the speaker embedder called *name*, or ``None``.

    The first non-``None`` answer wins. A backend that loads weights accepts a local directory
    in *options* (model hubs may be unreachable).

    :param name: e.g. ``"mfcc"``, ``"campplus"``, ``"onnx"``, ``"resemblyzer"``, ``"speechbrain"``.
    :param options: backend options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_transcriber(name: str, options: Mapping[str, Any]) -> Transcriber | None:
    """Give the transcriber called *name*, or ``None``. The first non-``None`` answer wins.

    :param name: backend name.
    :param options: backend options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_recogniser(name: str, options: Mapping[str, Any]) -> Recogniser | None:
    """Give the PII recogniser called *name*, or ``None``. The first non-``None`` answer wins.

    :param name: backend name.
    :param options: backend options, passed through unchanged.
    """


@hookspec(firstresult=True)
def voicepriv_metadata_adapter(name: str, options: Mapping[str, Any]) -> MetadataAdapter | None:
    """Give the dialer metadata adapter called *name*, or ``None``.

    The first non-``None`` answer wins.

    :param name: adapter name, e.g. ``"generic-json"``.
    :param options: adapter options, passed through unchanged.
    """


@hookspec
def voicepriv_jurisdictions() -> Sequence[JurisdictionRule]:
    """Give consent-law entries to add to, or override, the built-in table.

    Called on every plugin. Entries from plugins override built-in entries with the same code;
    between two plugins, the one registered later wins. Return an empty sequence for none.
    """


@hookspec
def voicepriv_audit_sinks(options: Mapping[str, Any]) -> Sequence[AuditSink]:
    """Give audit sinks that receive a copy of every audit event.

    Called on every plugin; every sink returned receives every event after it was appended
    to the log. A sink that raises fails the operation that logged (never silently dropped).

    :param options: audit settings, passed through unchanged.
    """
