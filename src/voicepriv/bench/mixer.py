"""The call mixer: realistic two-party telephone calls from single-speaker utterances.

:func:`make_call` composes one call from an agent's and a customer's utterances:

* **turn taking** – the agent opens, then the parties alternate; each turn is a piece of an
  utterance 1.5-8 s long, cut at pauses;
* **pauses and overlap** – between turns either a pause (log-normal, mean ``pause_s``, with
  occasional long silences) or an overlap (the next speaker starts before the previous one
  ends). The amount of overlap is steered so that overlapped speech / total speech tracks
  ``overlap_ratio`` through the call (a running controller), so every call, and any number of
  calls together, land close to the requested ratio;
* **backchannels** – short snippets (0.25-0.7 s) of the listener inside the speaker's turn
  (``backchannel_prob`` of the turns of 2 s or more), when the overlap budget allows: one may
  run a snippet ahead of it, the following turn changes overlap less to pay it back; a call
  with ``overlap_ratio`` 0 has none. A snippet is spoken: its active level is within
  ``backchannel_min_level_db`` of its utterance's (a short cut at an onset is otherwise often
  a breath or a word's soft tail, 10-40 dB under the speech, that the truth would still call
  speech);
* **hold music** – synthesised tones (a random pentatonic melody of soft chords) while both
  parties are silent;
* **levels** – each party's active speech level is drawn per call (dBFS ranges);
* **telephone channel** (:mod:`voicepriv.bench.telephone`) – 8 kHz, 300-3400 Hz, G.711, line
  noise, optional packet loss; the agent channel carries an echo of the customer.

Speech activity of every utterance is found with a frame-energy detector (10 ms frames), so the
reference segments (:attr:`Call.segments`) follow the speech itself, not utterance boundaries.

Determinism: one :class:`numpy.random.Generator` seeded with *seed* drives every choice, so the
same inputs and seed give bit-identical audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

import attrs
import numpy as np
import numpy.typing as npt
from scipy import signal

from voicepriv.audio import Audio
from voicepriv.bench import rttm
from voicepriv.bench.telephone import (
    ChannelConfig,
    EchoConfig,
    apply_channel,
    apply_echo,
    band_limit,
)
from voicepriv.errors import BenchError
from voicepriv.model import ChannelLayout, Segment

if TYPE_CHECKING:
    from voicepriv.bench.speakers import SpeakerCorpus

__all__ = [
    "AGENT",
    "CUSTOMER",
    "HOP_S",
    "Call",
    "CallConfig",
    "hold_music",
    "make_call",
    "make_call_at",
    "make_calls",
    "speech_activity",
]

#: Label of the agent in segments and RTTM.
AGENT: Final = "agent"
#: Label of the customer in segments and RTTM.
CUSTOMER: Final = "customer"
#: Frame step of the activity analysis and of every placement (s).
HOP_S: Final = 0.01

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _range(value: object) -> tuple[float, float]:
    if isinstance(value, int | float):
        return (float(value), float(value))
    if isinstance(value, tuple | list) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    raise BenchError(f"CallConfig: expected a number or a (low, high) pair, got {value!r}")


def _check_range(
    instance: object, attribute: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
) -> None:
    if not value[0] <= value[1]:
        raise BenchError(
            f"CallConfig.{attribute.name}: expected (low, high) with low <= high, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class CallConfig:
    """How calls are composed. Ranges are ``(low, high)``, drawn uniformly per call or turn.

    :param duration_s: the conversation stops adding turns after this many seconds.
    :param sample_rate: rate the utterances are mixed at (before the telephone channel).
    :param overlap_ratio: requested overlapped speech / total speech, in [0, 0.5].
    :param max_overlap_s: longest overlap at one change of turn.
    :param turn_s: length of a turn.
    :param pause_s: mean pause between turns (log-normal).
    :param long_pause_prob: probability that a pause is a long silence instead.
    :param long_pause_s: length of a long silence.
    :param backchannel_prob: probability of a listener backchannel in a turn of 2 s or more.
    :param backchannel_s: length of a backchannel.
    :param backchannel_min_level_db: the lowest active level of a backchannel, in dB (<= 0)
        relative to its utterance's active level; a quieter snippet is drawn again (a few
        tries, then the turn has none).
    :param hold_prob: probability that the call has a hold (music) section.
    :param hold_s: length of the hold section.
    :param hold_level_dbfs: RMS of the hold music.
    :param agent_level_dbfs: active speech level of the agent.
    :param customer_level_dbfs: active speech level of the customer.
    :param channel: the telephone line (``None``: no channel, everything stays at
        *sample_rate*, full band, no noise).
    :param echo: the echo of the customer in the agent channel (``None``: no echo).
    :param echo_erl_db: when given, each call's echo return loss is drawn from this range
        (overriding ``echo.erl_db``).
    :param echo_delay_s: when given, each call's echo delay is drawn from this range.
    :param customer_echo: an echo of the agent in the customer channel (line echo), or ``None``.
    :param activity_range_db: frames this far below an utterance's loud frames are non-speech.
    """

    duration_s: float = 30.0
    sample_rate: int = 16_000
    overlap_ratio: float = 0.1
    max_overlap_s: float = 2.5
    turn_s: tuple[float, float] = attrs.field(
        default=(1.5, 8.0), converter=_range, validator=_check_range
    )
    pause_s: float = 0.5
    long_pause_prob: float = 0.05
    long_pause_s: tuple[float, float] = attrs.field(
        default=(2.0, 5.0), converter=_range, validator=_check_range
    )
    backchannel_prob: float = 0.3
    backchannel_s: tuple[float, float] = attrs.field(
        default=(0.25, 0.7), converter=_range, validator=_check_range
    )
    backchannel_min_level_db: float = -10.0
    hold_prob: float = 0.1
    hold_s: tuple[float, float] = attrs.field(
        default=(4.0, 10.0), converter=_range, validator=_check_range
    )
    hold_level_dbfs: float = -30.0
    agent_level_dbfs: tuple[float, float] = attrs.field(
        default=(-28.0, -20.0), converter=_range, validator=_check_range
    )
    customer_level_dbfs: tuple[float, float] = attrs.field(
        default=(-34.0, -18.0), converter=_range, validator=_check_range
    )
    channel: ChannelConfig | None = attrs.field(factory=ChannelConfig)
    echo: EchoConfig | None = attrs.field(factory=EchoConfig)
    echo_erl_db: tuple[float, float] | None = None
    echo_delay_s: tuple[float, float] | None = None
    customer_echo: EchoConfig | None = None
    activity_range_db: float = 40.0

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.overlap_ratio <= 0.5:
            raise BenchError(
                f"CallConfig.overlap_ratio: expected a value in [0, 0.5], got {self.overlap_ratio}"
            )
        if self.duration_s <= 0 or self.turn_s[0] <= 0:
            raise BenchError(
                "CallConfig: duration_s and turn_s must be positive, "
                f"got {self.duration_s} and {self.turn_s}"
            )
        if self.backchannel_min_level_db > 0:
            raise BenchError(
                "CallConfig.backchannel_min_level_db: expected a level <= 0 dB, "
                f"got {self.backchannel_min_level_db}"
            )
        for name in ("long_pause_prob", "backchannel_prob", "hold_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BenchError(
                    f"CallConfig.{name}: expected a probability in [0, 1], got {value}"
                )
        if self.channel is not None and self.channel.sample_rate > self.sample_rate:
            raise BenchError(
                f"CallConfig: channel rate {self.channel.sample_rate} Hz is above the mixing "
                f"rate {self.sample_rate} Hz"
            )

    @property
    def output_rate(self) -> int:
        """Sample rate of every audio in a :class:`Call` made with this config."""
        return self.sample_rate if self.channel is None else self.channel.sample_rate


@attrs.frozen(kw_only=True, eq=False)
class Call:
    """One generated two-party call. Every audio is mono except :attr:`stereo`; all have the
    same rate and length and are time-aligned.

    :param call_id: identifier (used as RTTM uri and folder name).
    :param seed: the seed it was made with.
    :param agent: the agent's clean speech as it enters the line (band-limited, no noise,
        codec or echo): the target of agent isolation.
    :param customer: the customer's clean speech, likewise.
    :param other: non-speech far-end sound (hold music), silence when there is none.
    :param mix: mono recording: both legs summed, then the telephone line.
    :param stereo: dual-channel recording: channel 0 the agent leg (agent + echo of the
        customer), channel 1 the customer leg (customer + hold music [+ line echo of the agent]).
    :param segments: reference speaker segments labelled ``"agent"`` / ``"customer"``.
    :param events: other annotated spans: ``"hold"``, ``"silence"`` (long pauses) and
        ``"backchannel"``.
    :param enrollment: held-out utterances of the agent (not in the call) for voiceprints,
        sent through the same telephone line; empty unless :func:`make_calls` reserved some.
    :param echo: the echo path actually used for the agent channel (per-call draws applied).
    """

    call_id: str
    seed: int
    agent: Audio
    customer: Audio
    other: Audio
    mix: Audio
    stereo: Audio
    segments: tuple[Segment, ...]
    events: tuple[Segment, ...] = ()
    agent_speaker: str = ""
    customer_speaker: str = ""
    enrollment: tuple[Audio, ...] = ()
    echo: EchoConfig | None = None
    config: CallConfig = attrs.field(factory=CallConfig, repr=False)

    @property
    def sample_rate(self) -> int:
        """Rate of every audio of the call."""
        return self.mix.sample_rate

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.mix.duration

    @property
    def overlap_ratio(self) -> float:
        """Overlapped speech over total speech, from :attr:`segments`."""
        return rttm.overlap_ratio(self.segments)

    @property
    def mono_layout(self) -> ChannelLayout:
        """Layout of :attr:`mix`."""
        return ChannelLayout.mono()

    @property
    def stereo_layout(self) -> ChannelLayout:
        """Layout of :attr:`stereo`: agent left, customer right."""
        return ChannelLayout.stereo("agent", "customer")

    def rttm(self) -> str:
        """The reference segments as RTTM text (uri = :attr:`call_id`)."""
        return rttm.to_rttm(self.segments, self.call_id)


# --------------------------------------------------------------------------- analysis


def _runs(mask: BoolArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def speech_activity(
    samples: npt.ArrayLike, sample_rate: int, *, range_db: float = 40.0, hop_s: float = HOP_S
) -> BoolArray:
    """Speech frames of a clean single-speaker signal (frames of *hop_s*, tail dropped).

    A frame is speech when its energy is within *range_db* of the loud (98th percentile)
    frames and above -70 dBFS; gaps under 0.15 s are filled and islands under 0.05 s dropped.
    """
    x = np.asarray(samples, dtype=np.float64)
    hop = round(hop_s * sample_rate)
    frames = x.size // hop
    if frames == 0:
        return np.zeros(0, dtype=bool)
    energy = np.mean(x[: frames * hop].reshape(frames, hop) ** 2, axis=1)
    level = 10.0 * np.log10(energy + 1e-12)
    loud = float(np.percentile(level, 98))
    mask: BoolArray = level >= max(loud - range_db, -70.0)
    starts, ends = _runs(~mask)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if s > 0 and e < frames and (e - s) * hop_s < 0.15:
            mask[s:e] = True
    starts, ends = _runs(mask)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if (e - s) * hop_s < 0.05:
            mask[s:e] = False
    return mask


@attrs.frozen(kw_only=True, eq=False)
class _Utterance:
    samples: FloatArray  # whole frames only
    active: BoolArray  # per frame
    gain: float  # scales the utterance to 0 dBFS active level


def _prepare(utterances: Sequence[Audio], rate: int, range_db: float, who: str) -> list[_Utterance]:
    hop = round(HOP_S * rate)
    out: list[_Utterance] = []
    for audio in utterances:
        if audio.sample_rate != rate:
            audio = audio.resampled(rate)
        x = audio.mono().astype(np.float64)
        active = speech_activity(x, rate, range_db=range_db)
        if active.sum() < 10:
            continue
        frames = active.size
        x = x[: frames * hop]
        power = np.mean(x.reshape(frames, hop)[active] ** 2)
        out.append(_Utterance(samples=x, active=active, gain=1.0 / np.sqrt(power)))
    if not out:
        raise BenchError(f"make_call: no {who} utterance holds at least 0.1 s of speech")
    return out


@attrs.define
class _Piece:
    samples: FloatArray
    active: BoolArray


def _cut(utt: _Utterance, length: int, rng: np.random.Generator, hop: int) -> _Piece:
    """About *length* frames of *utt*, starting at a speech onset and ending at a pause."""
    onsets, offsets = _runs(utt.active)
    total = utt.active.size
    start = int(onsets[rng.integers(onsets.size)]) if onsets.size else 0
    if total - start > length:
        late = offsets[(offsets > start) & (offsets <= start + length)]
        end = int(late[-1]) if late.size else start + length
    else:
        end = int(offsets[-1])
    active = utt.active[start:end].copy()
    first = int(np.argmax(active))
    last = active.size - int(np.argmax(active[::-1]))
    active = active[first:last]
    samples = utt.samples[(start + first) * hop : (start + last) * hop] * utt.gain
    ramp = min(round(0.005 * hop / HOP_S), samples.size // 2)
    if ramp > 0:
        window = np.linspace(0.0, 1.0, ramp)
        samples = samples.copy()
        samples[:ramp] *= window
        samples[-ramp:] *= window[::-1]
    return _Piece(samples=samples, active=active)


def hold_music(
    seconds: float, sample_rate: int, rng: np.random.Generator, *, level_dbfs: float = -30.0
) -> FloatArray:
    """Synthesised hold music: a random pentatonic melody of soft three-note chords.

    Notes last 0.25-0.6 s with attack/decay envelopes; the result has RMS *level_dbfs*.
    """
    n = max(0, round(seconds * sample_rate))
    out = np.zeros(n)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    position = 0
    while position < n:
        length = min(n - position, round(rng.uniform(0.25, 0.6) * sample_rate))
        root = 220.0 * 2.0 ** (scale[rng.integers(scale.size)] / 12.0)
        t = np.arange(length) / sample_rate
        chord = sum(
            np.sin(2 * np.pi * root * ratio * t) / (k + 1)
            for k, ratio in enumerate((1.0, 1.25, 1.5))
        )
        envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)
        out[position : position + length] = np.asarray(chord) * envelope
        position += length
    rms = float(np.sqrt(np.mean(out**2))) if n else 0.0
    if rms > 0:
        out *= 10.0 ** (level_dbfs / 20.0) / rms
    return out


# --------------------------------------------------------------------------- composition


class _Timeline:
    """Activity per party on the 10 ms grid, and the pieces placed so far."""

    def __init__(self, capacity: int) -> None:
        self.active = np.zeros((2, capacity), dtype=bool)
        self.pieces: list[tuple[int, int, _Piece, float]] = []  # (party, start, piece, level)
        self.overlap = 0
        self.union = 0
        self.end = 0
        self.party_end = [0, 0]

    def ensure(self, frames: int) -> None:
        if frames > self.active.shape[1]:
            grown = np.zeros((2, max(frames, 2 * self.active.shape[1])), dtype=bool)
            grown[:, : self.active.shape[1]] = self.active
            self.active = grown

    def gains(self, party: int, start: int, piece: _Piece) -> tuple[int, int]:
        """(overlap frames added, union frames added) if *piece* of *party* went at *start*."""
        self.ensure(start + piece.active.size)
        other = self.active[1 - party, start : start + piece.active.size]
        own = self.active[party, start : start + piece.active.size]
        new = piece.active & ~own
        return int(np.sum(new & other)), int(np.sum(new & ~other))

    def place(self, party: int, start: int, piece: _Piece, level: float) -> None:
        overlap, union = self.gains(party, start, piece)
        self.overlap += overlap
        self.union += union
        self.active[party, start : start + piece.active.size] |= piece.active
        self.pieces.append((party, start, piece, level))
        stop = start + piece.active.size
        self.end = max(self.end, stop)
        self.party_end[party] = max(self.party_end[party], stop)


def _overlap_start(
    timeline: _Timeline, party: int, piece: _Piece, wanted: float, earliest: int, latest: int
) -> int:
    """The start in [earliest, latest] whose overlap with the other party is closest to *wanted*."""
    if earliest >= latest:
        return latest
    other = timeline.active[1 - party, earliest : latest + piece.active.size].astype(np.float64)
    counts = np.correlate(other, piece.active.astype(np.float64), mode="valid")
    best = np.abs(counts - wanted)
    # prefer the latest start among equally good ones (the least disruptive interruption)
    index = best.size - 1 - int(np.argmin(best[::-1]))
    return earliest + index


def _level(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    return float(10.0 ** (rng.uniform(*bounds) / 20.0))


def make_call(
    agent_utts: Sequence[Audio],
    customer_utts: Sequence[Audio],
    config: CallConfig | None = None,
    seed: int = 0,
    *,
    call_id: str | None = None,
    agent_speaker: str = "",
    customer_speaker: str = "",
    enrollment: Sequence[Audio] = (),
) -> Call:
    """Compose one call from the agent's and the customer's single-speaker utterances.

    :param agent_utts: utterances of the agent (any rate; resampled to ``config.sample_rate``).
    :param customer_utts: utterances of the customer.
    :param config: composition and channel settings (default :class:`CallConfig`).
    :param seed: seeds every random choice; the same inputs and seed give the same bytes.
    :param call_id: the call's id (default ``"call-<seed>"``).
    :param agent_speaker: the agent's speaker id, recorded in the call.
    :param customer_speaker: the customer's speaker id, recorded in the call.
    :param enrollment: held-out agent utterances, carried into :attr:`Call.enrollment`.
    :raises BenchError: no utterance of a party holds speech.
    """
    config = config or CallConfig()
    rng = np.random.default_rng(seed)
    rate = config.sample_rate
    hop = round(HOP_S * rate)
    pools = (
        _prepare(agent_utts, rate, config.activity_range_db, "agent"),
        _prepare(customer_utts, rate, config.activity_range_db, "customer"),
    )
    levels = (_level(config.agent_level_dbfs, rng), _level(config.customer_level_dbfs, rng))
    target = config.overlap_ratio
    horizon = round(config.duration_s / HOP_S)
    timeline = _Timeline(horizon * 2 + 1000)
    events: list[Segment] = []
    hold_at: int | None = None
    hold_turn = int(rng.integers(2, 8)) if rng.random() < config.hold_prob else -1
    hold_frames = round(rng.uniform(*config.hold_s) / HOP_S)
    max_overlap = round(config.max_overlap_s / HOP_S)
    gap_min = round(0.1 / HOP_S)

    party = 0
    turn = 0
    position = round(rng.uniform(0.2, 1.0) / HOP_S)
    while position < horizon:
        length = round(rng.uniform(*config.turn_s) / HOP_S)
        pool = pools[party]
        piece = _cut(pool[int(rng.integers(len(pool)))], length, rng, hop)
        if turn == 0:
            start = position
        else:
            n_new = int(piece.active.sum())
            wanted = (target * (timeline.union + n_new) - timeline.overlap) / (1.0 + target)
            wanted = min(wanted, max_overlap * rng.uniform(0.5, 1.0), 0.8 * n_new)
            earliest = max(position - max_overlap, timeline.party_end[party] + gap_min)
            if turn == hold_turn:
                hold_at = position + round(rng.uniform(0.3, 1.0) / HOP_S)
                events.append(
                    Segment(
                        start=hold_at * HOP_S, end=(hold_at + hold_frames) * HOP_S, label="hold"
                    )
                )
                start = hold_at + hold_frames + round(rng.uniform(0.3, 1.0) / HOP_S)
            elif wanted >= 5 and earliest < position:
                start = _overlap_start(timeline, party, piece, wanted, earliest, position)
            elif rng.random() < config.long_pause_prob:
                pause = round(rng.uniform(*config.long_pause_s) / HOP_S)
                events.append(
                    Segment(start=position * HOP_S, end=(position + pause) * HOP_S, label="silence")
                )
                start = position + pause
            else:
                sigma = 0.5
                pause_s = rng.lognormal(np.log(config.pause_s) - sigma**2 / 2, sigma)
                start = max(position + round(pause_s / HOP_S), timeline.party_end[party] + gap_min)
        timeline.place(party, start, piece, levels[party])
        position = start + piece.active.size
        _backchannel(
            timeline,
            party,
            start,
            piece,
            pools[1 - party],
            levels[1 - party],
            config,
            rng,
            hop,
            events,
        )
        position = max(position, timeline.end)
        party = 1 - party
        turn += 1
    total_frames = timeline.end + round(rng.uniform(0.3, 1.0) / HOP_S)
    return _render(
        timeline,
        total_frames,
        hold_at,
        hold_frames,
        events,
        config,
        rng,
        seed=seed,
        call_id=call_id or f"call-{seed}",
        agent_speaker=agent_speaker,
        customer_speaker=customer_speaker,
        enrollment=enrollment,
    )


#: Draws of a backchannel snippet before the turn goes without one.
_SNIPPET_TRIES = 8


def _spoken_snippet(
    pool: list[_Utterance], length: int, min_level_db: float, rng: np.random.Generator, hop: int
) -> _Piece | None:
    """A cut of at most *length* frames whose active level is at least *min_level_db* relative
    to its utterance's (pieces are scaled to 0 dB active level), or ``None``."""
    for _ in range(_SNIPPET_TRIES):
        snippet = _cut(pool[int(rng.integers(len(pool)))], length, rng, hop)
        if snippet.active.size > length:
            snippet = _Piece(
                samples=snippet.samples[: length * hop], active=snippet.active[:length]
            )
        frames = snippet.samples[: snippet.active.size * hop].reshape(-1, hop)[snippet.active]
        if frames.size and 10.0 * np.log10(np.mean(frames**2) + 1e-12) >= min_level_db:
            return snippet
    return None


def _backchannel(
    timeline: _Timeline,
    speaker: int,
    start: int,
    piece: _Piece,
    pool: list[_Utterance],
    level: float,
    config: CallConfig,
    rng: np.random.Generator,
    hop: int,
    events: list[Segment],
) -> None:
    """Maybe put a short snippet of the listener inside the speaker's turn."""
    if piece.active.size * HOP_S < 2.0 or rng.random() >= config.backchannel_prob:
        return
    length = round(rng.uniform(*config.backchannel_s) / HOP_S)
    snippet = _spoken_snippet(pool, length, config.backchannel_min_level_db, rng, hop)
    if snippet is None:
        return
    room = piece.active.size - snippet.active.size - round(0.8 / HOP_S)
    if room <= 0:
        return
    at = start + round(0.5 / HOP_S) + int(rng.integers(room))
    listener = 1 - speaker
    if at <= timeline.party_end[listener] + round(0.1 / HOP_S):
        return
    overlap, union = timeline.gains(listener, at, snippet)
    # The turn changes steer overlap onto the target, so a backchannel may run one snippet
    # ahead of the budget (the next turn changes pay it back by overlapping less); without
    # that slack none fitted, and calls had backchannels in 1-4 % of long turns, not 30 %.
    # A call asked for no overlap gets none.
    slack = snippet.active.size if config.overlap_ratio > 0 else 0
    if timeline.overlap + overlap > config.overlap_ratio * (timeline.union + union) + slack:
        return
    timeline.place(listener, at, snippet, level)
    events.append(
        Segment(start=at * HOP_S, end=(at + snippet.active.size) * HOP_S, label="backchannel")
    )


def _per_call_echo(config: CallConfig, rng: np.random.Generator) -> EchoConfig | None:
    echo = config.echo
    if echo is None:
        return None
    changes: dict[str, float] = {}
    if config.echo_erl_db is not None:
        changes["erl_db"] = float(rng.uniform(*config.echo_erl_db))
    if config.echo_delay_s is not None:
        changes["delay_s"] = float(rng.uniform(*config.echo_delay_s))
    return attrs.evolve(echo, **changes) if changes else echo


def _to_rate(x: FloatArray, rate: int, target: int) -> FloatArray:
    if rate == target:
        return x
    from math import gcd

    divisor = gcd(rate, target)
    out: FloatArray = signal.resample_poly(x, target // divisor, rate // divisor)
    return out


def _render(
    timeline: _Timeline,
    total_frames: int,
    hold_at: int | None,
    hold_frames: int,
    events: list[Segment],
    config: CallConfig,
    rng: np.random.Generator,
    *,
    seed: int,
    call_id: str,
    agent_speaker: str,
    customer_speaker: str,
    enrollment: Sequence[Audio],
) -> Call:
    rate = config.sample_rate
    hop = round(HOP_S * rate)
    total_frames = max(total_frames, (hold_at or 0) + hold_frames if hold_at is not None else 0)
    n = total_frames * hop
    sources = np.zeros((2, n))
    for party, start, piece, level in timeline.pieces:
        sources[party, start * hop : start * hop + piece.samples.size] += piece.samples * level
    other = np.zeros(n)
    if hold_at is not None:
        music = hold_music(hold_frames * HOP_S, rate, rng, level_dbfs=config.hold_level_dbfs)
        other[hold_at * hop : hold_at * hop + music.size] = music
    peak = float(np.max(np.abs(sources.sum(axis=0) + other))) if n else 0.0
    if peak > 0.7:  # headroom for echo and noise before the codec clips
        sources *= 0.7 / peak
        other *= 0.7 / peak
    echo_config = _per_call_echo(config, rng)
    out_rate = config.output_rate
    agent = _to_rate(sources[0], rate, out_rate)
    customer = _to_rate(sources[1], rate, out_rate)
    far_other = _to_rate(other, rate, out_rate)
    channel = config.channel
    if channel is not None and channel.band is not None:
        agent = band_limit(agent, out_rate, channel.band)
        customer = band_limit(customer, out_rate, channel.band)
        far_other = band_limit(far_other, out_rate, channel.band)
    echo = (
        apply_echo(customer + far_other, out_rate, echo_config, rng) if echo_config else 0.0 * agent
    )
    line_echo = (
        apply_echo(agent, out_rate, config.customer_echo, rng)
        if config.customer_echo
        else 0.0 * agent
    )
    agent_leg = agent + echo
    customer_leg = customer + far_other + line_echo
    if channel is None:
        mix, left, right = agent_leg + customer_leg, agent_leg, customer_leg
    else:
        mix = apply_channel(agent_leg + customer_leg, channel, rng, band_limited=True)
        left = apply_channel(agent_leg, channel, rng, band_limited=True)
        right = apply_channel(customer_leg, channel, rng, band_limited=True)
    segments = rttm.merge(
        rttm.from_activity(timeline.active[0, :total_frames], AGENT, hop_s=HOP_S)
        + rttm.from_activity(timeline.active[1, :total_frames], CUSTOMER, hop_s=HOP_S)
    )
    enrolled = _enrollment(enrollment, config, seed)

    def audio(x: FloatArray) -> Audio:
        return Audio(samples=x.astype(np.float32), sample_rate=out_rate)

    return Call(
        call_id=call_id,
        seed=seed,
        agent=audio(agent),
        customer=audio(customer),
        other=audio(far_other),
        mix=audio(mix),
        stereo=Audio(
            samples=np.stack([left, right], axis=1).astype(np.float32), sample_rate=out_rate
        ),
        segments=segments,
        events=tuple(sorted(events)),
        agent_speaker=agent_speaker,
        customer_speaker=customer_speaker,
        enrollment=enrolled,
        echo=echo_config,
        config=config,
    )


def _enrollment(utterances: Sequence[Audio], config: CallConfig, seed: int) -> tuple[Audio, ...]:
    """Held-out agent speech through the same line (own generator: the call's bytes do not
    depend on it)."""
    rng = np.random.default_rng([seed, 1])
    out_rate = config.output_rate
    enrolled = []
    for audio in utterances:
        x = _to_rate(audio.mono().astype(np.float64), audio.sample_rate, out_rate)
        if config.channel is not None:
            x = apply_channel(x, config.channel, rng)
        enrolled.append(Audio(samples=x.astype(np.float32), sample_rate=out_rate))
    return tuple(enrolled)


def make_call_at(
    corpus: SpeakerCorpus,
    index: int,
    config: CallConfig | None = None,
    seed: int = 0,
    *,
    enrollment_utts: int = 2,
    max_utterances: int = 12,
    id_width: int = 4,
) -> Call:
    """Call number *index* of the set :func:`make_calls` makes with *seed* (random access).

    The call's seed is ``SeedSequence([seed, index])``; two different speakers are drawn with
    it, and *enrollment_utts* of the agent's utterances (in a seeded order) are held out of
    the call and given in :attr:`Call.enrollment`. At most *max_utterances* random utterances
    of each party are loaded (large corpora stay cheap).

    :raises BenchError: the corpus has fewer than two speakers with enough utterances.
    """
    config = config or CallConfig()
    speakers = [s for s in corpus.speakers if len(corpus.utterances(s)) > enrollment_utts]
    if len(speakers) < 2:
        raise BenchError(
            f"make_calls: {corpus.root} has {len(speakers)} speaker(s) with more than "
            f"{enrollment_utts} utterances; two are needed"
        )
    call_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    rng = np.random.default_rng(call_seed)
    pick = rng.choice(len(speakers), size=2, replace=False)
    agent_id, customer_id = speakers[int(pick[0])], speakers[int(pick[1])]
    order = rng.permutation(len(corpus.utterances(agent_id)))
    held = corpus.load(agent_id, config.sample_rate, order[:enrollment_utts].tolist())
    agent_picks = order[enrollment_utts : enrollment_utts + max_utterances].tolist()
    customer_count = len(corpus.utterances(customer_id))
    customer_picks = rng.permutation(customer_count)[:max_utterances].tolist()
    return make_call(
        corpus.load(agent_id, config.sample_rate, agent_picks),
        corpus.load(customer_id, config.sample_rate, customer_picks),
        config,
        call_seed,
        call_id=f"call-{index:0{id_width}d}",
        agent_speaker=agent_id,
        customer_speaker=customer_id,
        enrollment=held,
    )


def make_calls(
    corpus: SpeakerCorpus,
    n: int,
    config: CallConfig | None = None,
    seed: int = 0,
    *,
    enrollment_utts: int = 2,
) -> Iterator[Call]:
    """Generate *n* calls from a speaker corpus, each between two different random speakers.

    Call ``i`` is :func:`make_call_at` ``(corpus, i, config, seed)``, so it is the same
    whatever *n*.

    :raises BenchError: the corpus has fewer than two speakers with enough utterances.
    """
    width = max(4, len(str(n - 1)))
    for index in range(n):
        yield make_call_at(
            corpus, index, config, seed, enrollment_utts=enrollment_utts, id_width=width
        )
