"""Agent-voice isolation: agent-only audio from a call, and a report; the customer audio stays here.

:func:`isolate` is the one entry point. It resolves which channel carries the agent
(:func:`resolve_agent_channel`: the channel layout, checked against the agent's voiceprint when
one is given), picks a separator backend through the plugin manager (``"channels"`` for a
dual-channel call, ``"speaker"`` for a mono one, or the one the caller names) and returns its
:class:`~voicepriv.interfaces.IsolationResult`.

Nothing here writes anything: the customer channel lives only in memory, is handed to the
separator as the echo canceller's reference, and is dropped with the input :class:`Audio`.
When the agent channel cannot be known, :class:`~voicepriv.errors.IsolationError` is raised;
this module never guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np

from voicepriv.audio import Audio
from voicepriv.errors import IsolationError
from voicepriv.interfaces import (
    Embedder,
    IsolationRequest,
    IsolationResult,
    Progress,
    Separator,
    Voiceprint,
)
from voicepriv.model import ChannelLayout, LayoutKind, Role
from voicepriv.plugins import backend, get_plugin_manager

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "DEFAULT_MIN_SCORE",
    "DEFAULT_VOICEPRINT_MARGIN",
    "MONO_SEPARATOR",
    "STEREO_SEPARATOR",
    "ChannelDecision",
    "isolate",
    "resolve_agent_channel",
]

#: Separator used for dual-channel calls when none is named.
STEREO_SEPARATOR: Final = "channels"
#: Separator used for mono calls when none is named.
MONO_SEPARATOR: Final = "speaker"
#: Cosine-score lead one channel needs over the other to be called the agent's.
DEFAULT_VOICEPRINT_MARGIN: Final = 0.05
#: Lowest cosine score with which a channel can be called the agent's at all.
DEFAULT_MIN_SCORE: Final = 0.0


@attrs.frozen(kw_only=True)
class ChannelDecision:
    """Which channel of a stereo call is the agent's, and how that was decided.

    :param agent_channel: index of the agent channel (0 = left).
    :param source: ``"layout"`` (metadata only), ``"layout+voiceprint"`` (metadata confirmed
        or corrected by the voiceprint) or ``"voiceprint"`` (no layout given).
    :param swapped: the layout named the other channel and the voiceprint overruled it.
    :param scores: cosine score of each channel against the voiceprint, when one was used.
    :param notes: short sentences for the report.
    """

    agent_channel: int
    source: str
    swapped: bool = False
    scores: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    def layout(self) -> ChannelLayout:
        """The stereo layout this decision implies."""
        roles = [Role.CUSTOMER, Role.CUSTOMER]
        roles[self.agent_channel] = Role.AGENT
        return ChannelLayout.stereo(roles[0], roles[1])


def _embedder_for(voiceprint: Voiceprint, manager: pluggy.PluginManager) -> Embedder:
    found = backend(manager, "embedder", voiceprint.embedder, {})
    if not isinstance(found, Embedder):
        raise IsolationError(
            f"embedder {voiceprint.embedder!r} does not satisfy the Embedder protocol"
        )
    return found


def _channel_scores(
    audio: Audio, voiceprint: Voiceprint, manager: pluggy.PluginManager
) -> tuple[float, ...]:
    embedder = _embedder_for(voiceprint, manager)
    reference = np.asarray(voiceprint.vector, np.float64).ravel()
    norm = float(np.linalg.norm(reference))
    if norm == 0.0:
        raise IsolationError(f"voiceprint of agent {voiceprint.agent_id!r} is an all-zero vector")
    scores = []
    for index in range(audio.channels):
        vector = np.asarray(embedder.embed(audio.channel(index)), np.float64).ravel()
        if vector.shape != reference.shape:
            raise IsolationError(
                f"embedder {voiceprint.embedder!r} gives {vector.size}-dimensional embeddings, "
                f"but the voiceprint of agent {voiceprint.agent_id!r} has {reference.size}"
            )
        length = float(np.linalg.norm(vector))
        scores.append(float(vector @ reference) / (length * norm) if length > 0 else -1.0)
    return tuple(scores)


def resolve_agent_channel(
    audio: Audio,
    layout: ChannelLayout | None,
    voiceprint: Voiceprint | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
    margin: float = DEFAULT_VOICEPRINT_MARGIN,
    min_score: float = DEFAULT_MIN_SCORE,
) -> ChannelDecision:
    """Decide which channel of a dual-channel *audio* is the agent's; never guess.

    With a voiceprint, each channel is embedded with the voiceprint's own embedder (looked up
    by name, kind ``"embedder"``) and scored by cosine similarity. A channel is the agent's
    when its score leads the other's by at least *margin* and reaches *min_score*. A layout
    that names the other channel is then reported as swapped and overruled; a layout the
    voiceprint cannot confirm is kept, with a note.

    :raises IsolationError: the audio is not two channels, the layout is not a stereo layout
        with an agent, or there is no layout and the voiceprint is missing or inconclusive.
    """
    if audio.channels != 2:
        raise IsolationError(
            f"channel roles: expected a 2-channel call, got {audio.channels} channel(s)"
        )
    layout_channel: int | None = None
    if layout is not None:
        if layout.kind is not LayoutKind.STEREO:
            raise IsolationError(
                f"channel roles: the layout says {layout.kind.value}, but the audio has 2 channels"
            )
        layout_channel = layout.channel_of(Role.AGENT)
        if layout_channel is None:
            raise IsolationError(
                f"channel roles: layout {tuple(r.value for r in layout.roles)!r} has no agent"
            )
    if voiceprint is None:
        if layout_channel is None:
            raise IsolationError(
                "channel roles: no channel layout and no agent voiceprint; refusing to guess "
                "which channel is the agent's"
            )
        return ChannelDecision(agent_channel=layout_channel, source="layout")

    manager = plugins if plugins is not None else get_plugin_manager()
    scores = _channel_scores(audio, voiceprint, manager)
    best = int(np.argmax(scores))
    lead = scores[best] - scores[1 - best]
    conclusive = lead >= margin and scores[best] >= min_score
    shown = ", ".join(f"{s:.3f}" for s in scores)
    if layout_channel is None:
        if not conclusive:
            raise IsolationError(
                f"channel roles: no layout, and the voiceprint of agent {voiceprint.agent_id!r} "
                f"cannot tell the channels apart (scores {shown}, margin {margin})"
            )
        return ChannelDecision(
            agent_channel=best,
            source="voiceprint",
            scores=scores,
            notes=(f"agent channel {best} chosen by voiceprint (scores {shown})",),
        )
    if conclusive and best != layout_channel:
        return ChannelDecision(
            agent_channel=best,
            source="layout+voiceprint",
            swapped=True,
            scores=scores,
            notes=(
                f"channels swapped: the layout puts the agent on channel {layout_channel}, "
                f"the voiceprint on channel {best} (scores {shown}); channel {best} used",
            ),
        )
    note = (
        f"voiceprint confirms agent channel {layout_channel} (scores {shown})"
        if conclusive
        else f"voiceprint inconclusive (scores {shown}); layout channel {layout_channel} used"
    )
    return ChannelDecision(
        agent_channel=layout_channel, source="layout+voiceprint", scores=scores, notes=(note,)
    )


def _separator(
    chosen: Separator | str | None,
    default: str,
    options: Mapping[str, Any] | None,
    manager: pluggy.PluginManager | None,
) -> Separator:
    if chosen is not None and not isinstance(chosen, str):
        return chosen
    name = chosen or default
    found = backend(manager or get_plugin_manager(), "separator", name, options)
    if not isinstance(found, Separator):
        raise IsolationError(f"separator {name!r} does not satisfy the Separator protocol")
    return found


def isolate(
    audio: Audio,
    layout: ChannelLayout | None,
    *,
    separator: Separator | str | None = None,
    voiceprint: Voiceprint | None = None,
    options: Mapping[str, Any] | None = None,
    plugins: pluggy.PluginManager | None = None,
    progress: Progress | None = None,
) -> IsolationResult:
    """Agent-only audio of a call, and the report of what was removed and why.

    :param audio: the call: two channels (one party each) or one mixed channel.
    :param layout: the recording's channel layout, ``None`` when unknown.
    :param separator: a :class:`Separator`, or a backend name; default ``"channels"`` for two
        channels and ``"speaker"`` for one.
    :param voiceprint: the agent's voiceprint; checks (or, without a layout, decides) the
        agent channel of a stereo call; required by mono separators.
    :param options: backend options for a separator given by name, passed through unchanged.
    :param plugins: the plugin manager; a fresh one when omitted.
    :param progress: called with (seconds done, seconds total).
    :raises IsolationError: the agent cannot be identified (see :func:`resolve_agent_channel`)
        or the separator refused.
    """
    if audio.channels == 2:
        manager = plugins if plugins is not None else get_plugin_manager()
        decision = resolve_agent_channel(audio, layout, voiceprint, plugins=manager)
        chosen = _separator(separator, STEREO_SEPARATOR, options, manager)
        request = IsolationRequest(
            layout=decision.layout(), voiceprint=voiceprint, progress=progress
        )
        result = chosen.isolate(audio, request)
        return attrs.evolve(
            result,
            agent_channel=decision.agent_channel,
            swapped=decision.swapped or result.swapped,
            notes=decision.notes + tuple(result.notes),
        )
    if audio.channels != 1:
        raise IsolationError(
            f"isolation: expected a mono or 2-channel call, got {audio.channels} channels"
        )
    if layout is not None and layout.kind is not LayoutKind.MONO:
        raise IsolationError(
            f"isolation: the layout says {layout.kind.value}, but the audio has 1 channel"
        )
    chosen = _separator(separator, MONO_SEPARATOR, options, plugins)
    request = IsolationRequest(
        layout=layout or ChannelLayout.mono(), voiceprint=voiceprint, progress=progress
    )
    return chosen.isolate(audio, request)
