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

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np
import numpy.typing as npt

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
    "DEFAULT_VOICEPRINT_MARGIN",
    "DOMINANCE_DB",
    "ECHO_LOOKBACK_S",
    "MIN_CHANNEL_SPEECH_S",
    "MONO_SEPARATOR",
    "STEREO_SEPARATOR",
    "ChannelDecision",
    "default_min_score",
    "isolate",
    "resolve_agent_channel",
]

#: Separator used for dual-channel calls when none is named.
STEREO_SEPARATOR: Final = "channels"
#: Separator used for mono calls when none is named.
MONO_SEPARATOR: Final = "speaker"
#: Cosine-score lead one channel needs over the other to be called the agent's.
DEFAULT_VOICEPRINT_MARGIN: Final = 0.05
#: Least speech of its own (seconds) each channel must hold before the voiceprint scores it.
MIN_CHANNEL_SPEECH_S: Final = 1.5
#: A channel's speech frame is its own when it is this much louder than the other channel's
#: loudest frame over the preceding :data:`ECHO_LOOKBACK_S` (echo and bleed of the other side
#: are quieter than their source, and arrive late).
DOMINANCE_DB: Final = 3.0
#: Echo path length allowed for when deciding whose speech a frame holds.
ECHO_LOOKBACK_S: Final = 0.25


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


class _TooLittleSpeechError(IsolationError):
    """A channel holds too little speech of its own for the voiceprint to score it."""

    def __init__(self, held: str, message: str) -> None:
        super().__init__(message)
        self.held = held


def default_min_score(embedder: str) -> float:
    """Cosine score a channel needs against a voiceprint made by *embedder* to be the agent's.

    The whole-voice floor of the mono speaker separator
    (:data:`voicepriv.backends.speaker.DEFAULT_MIN_CLUSTER_SCORES`): it is calibrated for an
    embedding of much of one voice's speech (a channel's own speech here), where another
    speaker scores at most 0.57 with ``campplus`` at 8 kHz. The per-window floor
    (``DEFAULT_MIN_SCORES``, 0.35 for ``campplus``) is too low for that: a customer channel
    scored 0.38-0.53 against another LibriSpeech reader's voiceprint.

    :raises IsolationError: *embedder* has no calibrated floor (give ``min_score``).
    """
    from voicepriv.backends.speaker import DEFAULT_MIN_CLUSTER_SCORES

    try:
        return DEFAULT_MIN_CLUSTER_SCORES[embedder]
    except KeyError:
        raise IsolationError(
            f"channel roles: embedder {embedder!r} has no calibrated minimum score for the "
            f"voiceprint check (known: {', '.join(sorted(DEFAULT_MIN_CLUSTER_SCORES))}); "
            "give min_score"
        ) from None


def _own_speech(audio: Audio) -> tuple[npt.NDArray[np.bool_], ...]:
    """Per channel, a sample mask of speech that is that channel's own (not the other's echo).

    A 10 ms frame counts when the energy VAD hears speech in it and its band level is
    :data:`DOMINANCE_DB` over the other channel's loudest frame in the last
    :data:`ECHO_LOOKBACK_S`: echo, bleed and their tails are quieter than their source.
    """
    import scipy.ndimage

    from voicepriv.backends.vad import EnergyVad

    vad = EnergyVad()
    rate = audio.sample_rate
    hop = max(1, round(vad.hop_s * rate))
    look = max(1, round(ECHO_LOOKBACK_S / vad.hop_s))
    channels = [np.ascontiguousarray(audio.channel(i).mono(), np.float32) for i in range(2)]
    levels = [vad.band_db(samples, rate) for samples in channels]
    masks = []
    for index, samples in enumerate(channels):
        other = levels[1 - index]
        # loudest of the other channel over the current and the preceding *look* frames
        envelope = scipy.ndimage.maximum_filter1d(
            other, size=look + 1, origin=look // 2, mode="nearest"
        )
        speech = vad.detect(Audio(samples=samples, sample_rate=rate)).mask()
        frames = min(speech.size, levels[index].size)
        own = speech[:frames] & (levels[index][:frames] >= envelope[:frames] + DOMINANCE_DB)
        mask = np.zeros(samples.size, bool)
        expanded = np.repeat(own, hop)[: samples.size]
        mask[: expanded.size] = expanded
        masks.append(mask)
    return tuple(masks)


def _score(
    vector: npt.ArrayLike, reference: npt.NDArray[np.float64], voiceprint: Voiceprint
) -> float:
    embedded = np.asarray(vector, np.float64).ravel()
    if embedded.shape != reference.shape:
        raise IsolationError(
            f"embedder {voiceprint.embedder!r} gives {embedded.size}-dimensional embeddings, "
            f"but the voiceprint of agent {voiceprint.agent_id!r} has {reference.size}"
        )
    length = float(np.linalg.norm(embedded))
    return float(embedded @ reference) / length if length > 0 else -1.0


def _channel_scores(
    audio: Audio, voiceprint: Voiceprint, embedder: Embedder
) -> tuple[tuple[float | None, ...], str]:
    """Cosine score of each channel's own speech against *voiceprint*, ``None`` for a channel
    with less than :data:`MIN_CHANNEL_SPEECH_S` of its own speech (silent, line noise, only the
    other side's echo), and a phrase naming those channels (``""`` when there are none).

    :raises IsolationError: the voiceprint is unusable.
    """
    reference = np.asarray(voiceprint.vector, np.float64).ravel()
    norm = float(np.linalg.norm(reference))
    if norm == 0.0 or not np.isfinite(norm):
        raise IsolationError(
            f"voiceprint of agent {voiceprint.agent_id!r} is an all-zero or non-finite vector"
        )
    reference = reference / norm
    masks = _own_speech(audio)
    seconds = [float(mask.sum()) / audio.sample_rate for mask in masks]
    short = [i for i, s in enumerate(seconds) if s < MIN_CHANNEL_SPEECH_S]
    held = ", ".join(f"channel {i}: {seconds[i]:.1f} s" for i in short)
    scores = tuple(
        None
        if i in short
        else _score(
            embedder.embed(
                Audio(samples=audio.channel(i).mono()[mask], sample_rate=audio.sample_rate)
            ),
            reference,
            voiceprint,
        )
        for i, mask in enumerate(masks)
    )
    return scores, held


def _partly_scored(
    scores: tuple[float | None, ...],
    held: str,
    layout_channel: int | None,
    voiceprint: Voiceprint,
    floor: float,
) -> ChannelDecision:
    """The decision when a channel has too little speech of its own to be scored.

    Without a layout nothing is decided. With one, an unscorable layout channel leaves the
    layout (nothing to check; the agent said little, so little is kept). A scored layout
    channel must reach *floor* on its own: the other channel cannot be compared, so a voice
    that does not sound like the agent there (the customer's, when the channels are swapped and
    the agent spoke briefly) is refused, never kept.
    """
    message = (
        f"channel roles: the voiceprint of agent {voiceprint.agent_id!r} cannot compare the "
        f"channels: too little speech of its own ({held}; at least {MIN_CHANNEL_SPEECH_S} s "
        "each)"
    )
    if layout_channel is None:
        raise _TooLittleSpeechError(
            held,
            f"{message}; a silent or echo-only channel is never taken for the agent's, "
            "refusing to choose",
        )
    score = scores[layout_channel]
    if score is None:
        # Nothing to check the layout against; no evidence of a swap either: the layout
        # stands, as it would without a voiceprint.
        return ChannelDecision(
            agent_channel=layout_channel,
            source="layout",
            notes=(f"voiceprint could not check the layout ({held}); layout used",),
        )
    if score < floor:
        raise IsolationError(
            f"{message}, and the layout's agent channel {layout_channel} scores {score:.3f}, "
            f"under the agent's floor {floor:.2f} for embedder {voiceprint.embedder!r}: it may "
            "be the customer's (channels swapped); refusing to keep it. (An agent whose own "
            "channel scores low needs a better voiceprint: enroll from their stereo calls, "
            "voicepriv enroll --agent-side.)"
        )
    return ChannelDecision(
        agent_channel=layout_channel,
        source="layout+voiceprint",
        scores=tuple(-1.0 if s is None else s for s in scores),
        notes=(
            f"voiceprint confirms agent channel {layout_channel} ({score:.3f}; the other "
            f"channel has too little speech to compare: {held})",
        ),
    )


def resolve_agent_channel(
    audio: Audio,
    layout: ChannelLayout | None,
    voiceprint: Voiceprint | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
    margin: float = DEFAULT_VOICEPRINT_MARGIN,
    min_score: float | None = None,
) -> ChannelDecision:
    """Decide which channel of a dual-channel *audio* is the agent's; never guess.

    With a voiceprint, each channel's own speech (see :data:`DOMINANCE_DB`) is embedded with
    the voiceprint's own embedder (looked up by name, kind ``"embedder"``) and scored by cosine
    similarity. A channel is the agent's when its score reaches *min_score* and leads the
    other's by at least *margin*. That channel confirms the layout, or overrules a layout that
    names the other channel (reported as swapped). Without a layout, a voiceprint that singles
    out neither channel, or a channel with too little speech of its own to be scored
    (:data:`MIN_CHANNEL_SPEECH_S`), decides nothing. With a layout, the voiceprint only ever
    removes risk: an unscorable layout channel, or a layout channel leading by *margin* without
    reaching *min_score*, leaves the layout as it would stand without a voiceprint (with a
    note); scores that lean to the other channel by *margin* without reaching *min_score*
    contradict the layout without confirming a swap, and nothing is decided; so do scores where
    neither channel leads and the layout's is under *min_score*, and a layout channel under
    *min_score* whose other channel cannot be scored (a swapped call whose agent spoke
    briefly). A silent or echo-only channel is never taken for the agent's (a swap needs the
    other channel's own speech to reach *min_score*).

    :param min_score: the agent's floor; default :func:`default_min_score` of the
        voiceprint's embedder.
    :raises IsolationError: the audio is not two channels, the layout is not a stereo layout
        with an agent, there is no layout and no voiceprint, or the voiceprint cannot single
        out the agent's channel.
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
    embedder = _embedder_for(voiceprint, manager)
    floor = default_min_score(voiceprint.embedder) if min_score is None else float(min_score)
    scored, held = _channel_scores(audio, voiceprint, embedder)
    if held:
        return _partly_scored(scored, held, layout_channel, voiceprint, floor)
    scores = tuple(float(score) for score in scored if score is not None)
    best = int(np.argmax(scores))
    lead = scores[best] - scores[1 - best]
    shown = ", ".join(f"{s:.3f}" for s in scores)
    conclusive = lead >= margin and scores[best] >= floor
    if not conclusive and (layout_channel is None or (best != layout_channel and lead >= margin)):
        checked = (
            "no layout"
            if layout_channel is None
            else f"the voiceprint leans to channel {best}, not the layout's {layout_channel}"
        )
        raise IsolationError(
            f"channel roles: {checked}, and the voiceprint of agent {voiceprint.agent_id!r} "
            f"singles out neither channel (scores {shown}; the agent's needs at least "
            f"{floor:.2f} for embedder {voiceprint.embedder!r} and a lead of {margin}); "
            "refusing to choose"
        )
    if not conclusive:
        assert layout_channel is not None  # refused above without a layout
        if scores[layout_channel] < floor and not lead >= margin:
            # Neither channel leads: nothing vouches for the layout's channel.
            raise IsolationError(
                f"channel roles: the voiceprint of agent {voiceprint.agent_id!r} confirms "
                f"neither channel (scores {shown}; the agent's needs at least {floor:.2f} for "
                f"embedder {voiceprint.embedder!r}, or a lead of {margin} over the other "
                f"channel); refusing to keep channel {layout_channel}"
            )
        return ChannelDecision(
            agent_channel=layout_channel,
            source="layout+voiceprint",
            scores=scores,
            notes=(
                f"voiceprint inconclusive but not against the layout (scores {shown}); "
                f"layout channel {layout_channel} used",
            ),
        )
    if layout_channel is None:
        return ChannelDecision(
            agent_channel=best,
            source="voiceprint",
            scores=scores,
            notes=(f"agent channel {best} chosen by voiceprint (scores {shown})",),
        )
    if best != layout_channel:
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
    return ChannelDecision(
        agent_channel=layout_channel,
        source="layout+voiceprint",
        scores=scores,
        notes=(f"voiceprint confirms agent channel {layout_channel} (scores {shown})",),
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
    voiceprint_min_score: float | None = None,
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
    :param voiceprint_min_score: the score a stereo channel needs against *voiceprint* to be
        the agent's (``min_score`` of :func:`resolve_agent_channel`; default: the embedder's
        calibrated floor, which a third-party embedder must give here).
    :raises IsolationError: the agent cannot be identified (see :func:`resolve_agent_channel`)
        or the separator refused.
    """
    if audio.channels == 2:
        manager = plugins if plugins is not None else get_plugin_manager()
        decision = resolve_agent_channel(
            audio, layout, voiceprint, plugins=manager, min_score=voiceprint_min_score
        )
        chosen = _separator(separator, STEREO_SEPARATOR, options, manager)
        request = IsolationRequest(
            layout=decision.layout(), voiceprint=voiceprint, progress=progress, plugins=manager
        )
        result = _checked(chosen, audio, chosen.isolate(audio, request))
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
        layout=layout or ChannelLayout.mono(),
        voiceprint=voiceprint,
        progress=progress,
        plugins=plugins,
    )
    return _checked(chosen, audio, chosen.isolate(audio, request))


def _checked(separator: Separator, call: Audio, result: object) -> IsolationResult:
    """*result* when it keeps the :class:`Separator` contract's shape for *call*; otherwise
    :class:`IsolationError` naming the separator, so nothing of it is stored.

    The shape is what can be checked without knowing the voices: an :class:`IsolationResult`
    whose audio is one channel at the call's rate and length (a stereo result could carry the
    customer's channel; a shorter or resampled one no longer lines up with the decision's
    segments), and a confidence and residual leakage between 0 and 1.
    """
    name = getattr(separator, "name", type(separator).__name__)
    where = f"separator {name!r}"
    if not isinstance(result, IsolationResult) or not isinstance(result.audio, Audio):
        raise IsolationError(f"{where}: expected an IsolationResult, got {type(result).__name__}")
    out = result.audio
    problems = []
    if out.channels != 1:
        problems.append(f"{out.channels} channels (agent-only audio is one channel)")
    if out.sample_rate != call.sample_rate:
        problems.append(f"{out.sample_rate} Hz (the call is {call.sample_rate} Hz)")
    if out.frames != call.frames:
        problems.append(f"{out.frames} frames (the call has {call.frames})")
    for field in ("confidence", "residual_leakage"):
        value = getattr(result, field)
        if not (isinstance(value, numbers.Real) and 0.0 <= float(value) <= 1.0):
            problems.append(f"{field} {value!r} (expected 0 to 1)")
    if problems:
        raise IsolationError(
            f"{where} broke its contract, so nothing it returned is kept: " + "; ".join(problems)
        )
    return result
