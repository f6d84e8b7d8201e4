"""Run every separator and the baselines over a dataset; one :class:`Result` per item and system.

Systems (:func:`systems`):

* every separator plugin installed (``voicepriv.plugins.backend_names(manager, "separator")``),
  each run on every layout; a separator that refuses a layout (``IsolationError``) gets a
  ``"refused"`` result, never a silent skip;
* baselines, measured in the same run: ``oracle`` (keeps exactly the reference's agent-only
  frames), ``keep-all`` (the recording as it is, channels summed), ``vad-only`` (the recording
  with non-speech frames silenced by an energy VAD) and ``channel-pick`` (stereo: the agent
  channel as it is, echo included).

Scores per result (see :mod:`voicepriv.bench.metrics`): SI-SDR, SI-SDR improvement over the
unprocessed input (the mono mix, or the agent channel of a stereo call) and SDR against the
clean agent; agent-track DER and JER of the kept segments against the agent's reference
segments (collar 0.5 s, overlap scored); customer leakage and agent retention at the default
threshold and over a threshold sweep; real-time factor, and peak traced memory on the first
item of every system.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import pluggy

from voicepriv.audio import Audio
from voicepriv.bench import metrics, rttm
from voicepriv.bench.datasets import Dataset, Item
from voicepriv.bench.mixer import AGENT, CUSTOMER
from voicepriv.errors import BenchError, IsolationError, MissingExtraError, PluginError
from voicepriv.interfaces import IsolationRequest, IsolationResult, Separator, Voiceprint
from voicepriv.model import LayoutKind, Role, Segment
from voicepriv.plugins import backend, backend_names, get_plugin_manager

__all__ = [
    "BASELINES",
    "CURVE_THRESHOLDS_DB",
    "DER_COLLAR_S",
    "ChannelPick",
    "EnergyVadBaseline",
    "KeepAll",
    "OracleBaseline",
    "Result",
    "System",
    "enroll",
    "evaluate",
    "reference_enrollment",
    "run",
    "systems",
]

#: Baseline names, in leaderboard order.
BASELINES: Final = ("oracle", "keep-all", "vad-only", "channel-pick")
#: Thresholds (dB) of the leakage / retention curves.
CURVE_THRESHOLDS_DB: Final = (
    -60.0,
    -50.0,
    -40.0,
    -35.0,
    -30.0,
    -25.0,
    -20.0,
    -15.0,
    -10.0,
    -5.0,
    0.0,
)
#: Collar of the agent-track DER and JER (total; half on each side of a reference boundary).
DER_COLLAR_S: Final = 0.5
_HOP_S: Final = 0.01
_SI_SDR_CLAMP_DB: Final = 60.0

FloatArray = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- baselines


def _gate(audio: Audio, keep: npt.NDArray[np.bool_], hop_s: float = _HOP_S) -> Audio:
    """*audio* (mono) with frames outside *keep* silenced, 5 ms ramps at every edge."""
    rate = audio.sample_rate
    hop = round(hop_s * rate)
    gain = np.repeat(keep.astype(np.float64), hop)[: audio.frames]
    gain = np.pad(gain, (0, audio.frames - gain.size))
    ramp = max(1, round(0.005 * rate))
    padded = np.pad(gain, (ramp // 2, ramp - 1 - ramp // 2), mode="edge")
    gain = np.convolve(padded, np.ones(ramp) / ramp, mode="valid")
    return Audio(samples=(audio.mono() * gain).astype(np.float32), sample_rate=rate)


def _result(audio: Audio, keep: npt.NDArray[np.bool_], reason: str) -> IsolationResult:
    kept = rttm.from_activity(keep, AGENT, hop_s=_HOP_S)
    removed = rttm.from_activity(~keep, reason, hop_s=_HOP_S)
    return IsolationResult(
        audio=_gate(audio, keep),
        kept=kept,
        removed=removed,
        residual_leakage=0.0,
        confidence=0.0,
    )


def _downmix(audio: Audio) -> Audio:
    if audio.channels == 1:
        return audio
    summed = audio.samples.sum(axis=1, dtype=np.float32)
    return Audio(samples=summed, sample_rate=audio.sample_rate)


def _frames(audio: Audio) -> int:
    return math.ceil(audio.duration / _HOP_S)


@attrs.frozen(kw_only=True)
class OracleBaseline:
    """Keeps exactly the reference's agent-only frames (customer and overlap silenced).

    The input is the mono mix, or the agent channel of a stereo call. An upper bound for any
    gating separator, not a real system: it reads the answer.
    """

    segments: tuple[Segment, ...]
    name: str = "oracle"

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """Gate the input with the reference's agent-only frames."""
        frames = _frames(audio)
        agent = rttm.activity(self.segments, AGENT, hop_s=_HOP_S, frames=frames)
        customer = rttm.activity(self.segments, CUSTOMER, hop_s=_HOP_S, frames=frames)
        source = audio if audio.channels == 1 else audio.channel(0)
        return _result(source, agent & ~customer, "customer")


@attrs.frozen(kw_only=True)
class KeepAll:
    """Keeps the whole recording (a stereo call is summed to mono): the do-nothing baseline."""

    name: str = "keep-all"

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """The recording, downmixed."""
        return _result(_downmix(audio), np.ones(_frames(audio), dtype=bool), "none")


@attrs.frozen(kw_only=True)
class ChannelPick:
    """Stereo only: keeps the agent channel as it is (echo of the customer included)."""

    name: str = "channel-pick"

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """Channel 0 (the agent's by the layout).

        :raises IsolationError: a mono call.
        """
        if audio.channels != 2:
            raise IsolationError(
                f"channel-pick: needs a stereo call, got {audio.channels} channel(s)"
            )
        index = 0
        if request.layout is not None and request.layout.kind is LayoutKind.STEREO:
            index = request.layout.channel_of(Role.AGENT) or 0
        return _result(audio.channel(index), np.ones(_frames(audio), dtype=bool), "none")


@attrs.frozen(kw_only=True)
class EnergyVadBaseline:
    """Keeps the recording's speech frames (an energy VAD), silences the rest.

    Frame energy in 10 ms frames; a frame is speech when it is within *range_db* of the loud
    (95th percentile) frames and *margin_db* above the noise floor (10th percentile); speech
    is held for *hangover_s*.
    """

    range_db: float = 40.0
    margin_db: float = 9.0
    hangover_s: float = 0.15
    name: str = "vad-only"

    def speech(self, audio: Audio) -> npt.NDArray[np.bool_]:
        """Speech mask on the 10 ms grid."""
        x = _downmix(audio).mono().astype(np.float64)
        hop = round(_HOP_S * audio.sample_rate)
        frames = _frames(audio)
        x = np.pad(x, (0, frames * hop - x.size))
        level = 10 * np.log10(np.mean(x.reshape(frames, hop) ** 2, axis=1) + 1e-12)
        loud, floor = np.percentile(level, 95), np.percentile(level, 10)
        mask: npt.NDArray[np.bool_] = (level > loud - self.range_db) & (
            level > floor + self.margin_db
        )
        hold = max(1, round(self.hangover_s / _HOP_S))
        held = np.convolve(mask.astype(np.float64), np.ones(hold + 1), mode="full")[:frames] > 0
        return held

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """The recording, downmixed, with non-speech silenced."""
        return _result(_downmix(audio), self.speech(audio), "silence")


# --------------------------------------------------------------------------- systems


@attrs.frozen(kw_only=True)
class System:
    """A competitor: a name, whether it is a baseline, and how to get its separator per item."""

    name: str
    baseline: bool
    make: Callable[[Item], Separator] = attrs.field(eq=False, repr=False)
    layouts: tuple[str, ...] = ("mono", "stereo")


def systems(
    algorithms: Sequence[str] | str = "all",
    *,
    manager: pluggy.PluginManager | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    baselines: Sequence[str] = BASELINES,
) -> list[System]:
    """The baselines and the separator plugins to run.

    :param algorithms: ``"all"`` (every installed separator), ``"none"``, or names.
    :param options: per-separator options passed to the plugin unchanged.
    :param baselines: which baselines (default all of :data:`BASELINES`).
    :raises BenchError: an unknown baseline or separator name.
    """
    manager = manager or get_plugin_manager()
    installed = backend_names(manager, "separator")
    if algorithms == "all":
        chosen = list(installed)
    elif algorithms == "none":
        chosen = []
    else:
        chosen = [algorithms] if isinstance(algorithms, str) else list(algorithms)
        unknown = [a for a in chosen if a not in installed]
        if unknown:
            raise BenchError(
                f"separator(s) {', '.join(unknown)} not installed "
                f"(installed: {', '.join(installed) or 'none'})"
            )
    out: list[System] = []
    for name in baselines:
        if name == "oracle":
            out.append(
                System(
                    name=name,
                    baseline=True,
                    make=lambda item: OracleBaseline(segments=item.segments),
                )
            )
        elif name == "keep-all":
            out.append(System(name=name, baseline=True, make=lambda _item: KeepAll()))
        elif name == "vad-only":
            out.append(System(name=name, baseline=True, make=lambda _item: EnergyVadBaseline()))
        elif name == "channel-pick":
            out.append(
                System(
                    name=name, baseline=True, make=lambda _item: ChannelPick(), layouts=("stereo",)
                )
            )
        else:
            raise BenchError(
                f"baseline {name!r} is unknown; expected some of {', '.join(BASELINES)}"
            )
    for name in chosen:
        out.append(
            System(
                name=name,
                baseline=False,
                make=_plugin_factory(manager, name, (options or {}).get(name, {})),
            )
        )
    return out


def _plugin_factory(
    manager: pluggy.PluginManager, name: str, options: Mapping[str, Any]
) -> Callable[[Item], Separator]:
    cache: dict[str, Separator] = {}

    def make(_item: Item) -> Separator:
        if "separator" not in cache:
            cache["separator"] = backend(manager, "separator", name, options)
        return cache["separator"]

    return make


# --------------------------------------------------------------------------- results


@attrs.frozen(kw_only=True)
class Result:
    """One system on one item. Metrics are ``None`` when they cannot be computed (no clean
    sources, a refused layout ...); ``status`` is ``"ok"``, ``"refused"`` (the separator raised
    ``IsolationError``) or ``"error"`` (anything else, with the message)."""

    dataset: str
    item_id: str
    call_id: str
    layout: str
    system: str
    baseline: bool
    status: str
    message: str = ""
    duration_s: float = 0.0
    overlap_pct: float = 0.0
    si_sdr_db: float | None = None
    si_sdri_db: float | None = None
    sdr_db: float | None = None
    der_pct: float | None = None
    jer_pct: float | None = None
    leakage_s: float | None = None
    leakage_pct: float | None = None
    leakage_energy_pct: float | None = None
    retention_pct: float | None = None
    rtf: float | None = None
    peak_mib: float | None = None
    curve: tuple[tuple[float, float, float], ...] = ()


def reference_enrollment(item: Item, *, seconds: float = 20.0) -> tuple[Audio, ...]:
    """Agent-only stretches of the item's own input (from the reference), up to *seconds*.

    Oracle enrollment for datasets without held-out agent speech (LibriMix, RTTM recordings):
    optimistic, since the voiceprint comes from the very call it is scored on.
    """
    source = item.mixture
    frames = _frames(source)
    agent = rttm.activity(item.segments, AGENT, hop_s=_HOP_S, frames=frames)
    customer = rttm.activity(item.segments, CUSTOMER, hop_s=_HOP_S, frames=frames)
    pieces, total = [], 0.0
    for span in rttm.from_activity(agent & ~customer, AGENT, hop_s=_HOP_S):
        if span.duration < 0.5:
            continue
        pieces.append(source.slice(span.start, span.end))
        total += span.duration
        if total >= seconds:
            break
    return tuple(pieces)


def enroll(item: Item, embedder_name: str, manager: pluggy.PluginManager) -> Voiceprint | None:
    """A voiceprint of the item's held-out agent speech with *embedder_name*, or ``None``
    when the item has no enrollment audio or the embedder's extra is missing."""
    if not item.enrollment:
        return None
    try:
        embedder = backend(manager, "embedder", embedder_name)
    except (MissingExtraError, PluginError):
        return None
    rate = item.enrollment[0].sample_rate
    speech = np.concatenate([a.resampled(rate).mono() for a in item.enrollment])
    audio = Audio(samples=speech, sample_rate=rate)
    vector = np.asarray(embedder.embed(audio), dtype=np.float32)
    return Voiceprint(
        agent_id=item.agent_speaker or "agent",
        embedder=embedder_name,
        vector=vector,
        seconds=audio.duration,
    )


def _fit(audio: Audio, frames: int, rate: int) -> FloatArray:
    """The output as mono at *rate*, cut or zero-padded to *frames*."""
    if audio.sample_rate != rate:
        audio = audio.resampled(rate)
    x = audio.mono()
    if x.size >= frames:
        return x[:frames]
    return np.pad(x, (0, frames - x.size))


def _clamp(value: float) -> float:
    return float(np.clip(value, -_SI_SDR_CLAMP_DB, _SI_SDR_CLAMP_DB))


def evaluate(
    item: Item,
    output: IsolationResult,
    *,
    dataset: str,
    system: System,
    seconds: float,
    peak_mib: float | None,
) -> Result:
    """Score one separator output against the item's references."""
    rate = item.audio.sample_rate
    frames = item.audio.frames
    out = _fit(output.audio, frames, rate)
    scores: dict[str, Any] = {}
    if item.agent is not None and item.customer is not None:
        agent, customer = item.agent.mono()[:frames], item.customer.mono()[:frames]
        mixture = item.mixture.mono()
        if float(np.dot(agent, agent)) > 0:
            scores["si_sdr_db"] = (
                _clamp(metrics.si_sdr(out, agent)) if np.any(out) else -_SI_SDR_CLAMP_DB
            )
            scores["si_sdri_db"] = scores["si_sdr_db"] - _clamp(metrics.si_sdr(mixture, agent))
            scores["sdr_db"] = _clamp(metrics.sdr(out, agent)) if np.any(out) else -_SI_SDR_CLAMP_DB
    else:  # no clean sources: the recording stands in for both parties in their solo frames
        agent = customer = item.mixture.mono()
    curve = metrics.isolation_curve(out, agent, customer, item.segments, rate, CURVE_THRESHOLDS_DB)
    default = metrics.isolation_scores(out, agent, customer, item.segments, rate)
    reference = [s for s in item.segments if s.label == AGENT]
    hypothesis = [Segment(start=s.start, end=s.end, label=AGENT) for s in output.kept]
    uem = (0.0, item.audio.duration)
    if reference:
        scores["der_pct"] = (
            100.0 * metrics.der(reference, hypothesis, collar=DER_COLLAR_S, uem=uem).rate
        )
        scores["jer_pct"] = 100.0 * metrics.jer(reference, hypothesis, collar=DER_COLLAR_S, uem=uem)
    return Result(
        dataset=dataset,
        item_id=item.item_id,
        call_id=item.call_id,
        layout=item.layout.kind.value,
        system=system.name,
        baseline=system.baseline,
        status="ok",
        duration_s=item.audio.duration,
        overlap_pct=100.0 * item.overlap_ratio,
        leakage_s=default.leakage_s,
        leakage_pct=default.leakage_pct,
        leakage_energy_pct=default.leakage_energy_pct,
        retention_pct=default.retention_pct,
        rtf=metrics.real_time_factor(seconds, item.audio.duration),
        peak_mib=peak_mib,
        curve=tuple((c.threshold_db, c.leakage_pct, c.retention_pct) for c in curve),
        **scores,
    )


def run(
    dataset: Dataset,
    competitors: Iterable[System],
    *,
    layouts: Sequence[str] | None = None,
    embedder: str = "campplus",
    limit: int | None = None,
    manager: pluggy.PluginManager | None = None,
    progress: Callable[[Result], None] | None = None,
    oracle_enrollment: bool = False,
) -> Iterator[Result]:
    """Run every system on every item of *dataset*; yield results as they are made.

    :param layouts: restrict to these layouts (default: the dataset's).
    :param embedder: embedder for the voiceprint given to separators (from held-out agent
        speech; items without enrollment get no voiceprint). The default, ``campplus``, is
        the core install's recommended embedder; ``mfcc`` is a weak baseline that the
        ``segmentation`` separator refuses and that keeps little in ``speaker``.
    :param limit: at most this many recordings.
    :param progress: called with every result.
    :param oracle_enrollment: items without held-out agent speech are enrolled from their
        own agent-only reference stretches (:func:`reference_enrollment`; optimistic).
    """
    manager = manager or get_plugin_manager()
    chosen = list(competitors)
    wanted = set(layouts or dataset.layouts)
    traced: set[tuple[str, str]] = set()
    for item in dataset.items(limit):
        layout = item.layout.kind.value
        if layout not in wanted:
            continue
        if oracle_enrollment and not item.enrollment:
            item = attrs.evolve(item, enrollment=reference_enrollment(item))
        voiceprint = enroll(item, embedder, manager)
        request = IsolationRequest(layout=item.layout, voiceprint=voiceprint)
        for system in chosen:
            if layout not in system.layouts:
                continue
            result = _run_one(item, system, request, dataset.name, traced)
            if progress is not None:
                progress(result)
            yield result


def _run_one(
    item: Item,
    system: System,
    request: IsolationRequest,
    dataset: str,
    traced: set[tuple[str, str]],
) -> Result:
    base: dict[str, Any] = {
        "dataset": dataset,
        "item_id": item.item_id,
        "call_id": item.call_id,
        "layout": item.layout.kind.value,
        "system": system.name,
        "baseline": system.baseline,
        "duration_s": item.audio.duration,
        "overlap_pct": 100.0 * item.overlap_ratio,
    }
    try:
        separator = system.make(item)
        output, cost = metrics.measure(lambda: separator.isolate(item.audio, request), memory=False)
        peak: float | None = None
        key = (system.name, item.layout.kind.value)
        if key not in traced:  # memory once per system and layout: tracing slows the run
            traced.add(key)
            _, traced_cost = metrics.measure(lambda: separator.isolate(item.audio, request))
            peak = traced_cost.peak_mib
    except IsolationError as exc:
        return Result(status="refused", message=str(exc), **base)
    except MissingExtraError as exc:
        return Result(status="error", message=str(exc), **base)
    except Exception as exc:  # a plugin's bug is reported in the results, not fatal to the run
        return Result(status="error", message=f"{type(exc).__name__}: {exc}", **base)
    return evaluate(
        item, output, dataset=dataset, system=system, seconds=cost.seconds, peak_mib=peak
    )
