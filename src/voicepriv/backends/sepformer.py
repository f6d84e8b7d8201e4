"""Keeping the agent's words inside overlapped speech: a two-voice separator and when to trust it.

The ``"speaker"`` separator deletes every span where the customer speaks over the agent
(frames labelled ``"overlap"``). With ``SpeakerOptions(overlap_separator="sepformer")`` it
hands each such span, with :attr:`RecoveryRules.context_s` of audio either side, to a blind
source separator (:class:`~voicepriv.interfaces.SourceSeparator`): here SpeechBrain's
SepFormer (:class:`SepformerSeparator`), loaded from a local directory in SpeechBrain's
pretrained layout (e.g. the files of ``speechbrain/sepformer-wsj02mix``; nothing is
downloaded). :func:`recover_overlaps` keeps the separator's estimate of the agent for a span
only when every rule holds; otherwise the span stays deleted, and the report says why:

1. the span is at most :attr:`~RecoveryRules.max_span_s` long (``"too_long"``);
2. the separator gives two sources (``"not_two_sources"``), and the two, each scaled by a
   least-squares gain, explain the mixture to within :attr:`~RecoveryRules.max_residual_db`
   (``"unexplained"``: a separator that returns noise, or the mixture twice, fails here);
3. both sources carry at least :attr:`~RecoveryRules.min_source_db` of the span's energy:
   two voices are really there (``"one_voice"``);
4. the two sources are not entangled: their correlation over the span, squared, stays under
   :attr:`~RecoveryRules.max_crosstalk_db` (``"entangled"``). Two voices are nearly
   uncorrelated; an agent estimate that still holds part of the customer correlates with the
   customer estimate (a third of the customer left in it gives about -10 dB);
5. the embedder puts one source with the agent and the other with the customer: each
   source's score against the call's agent model minus its best score against the call's
   customer model(s) is at least :attr:`~RecoveryRules.min_lead` for one and at most
   ``-min_lead`` for the other, and the agent source scores at least the separator's
   ``min_score`` against the voiceprint (``"unsure"``).

What is kept of a span is the scaled agent source, never the mixture. How much of the
customer survives in that estimate depends on the separator's quality on the call's audio,
which the rules cannot see; the option is off by default, and docs/mono-isolation.md says
what could and could not be measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.backends._frames import FRAME_S, label_runs
from voicepriv.backends._options import check_options
from voicepriv.backends._speechbrain import load_pretrained
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import Embedder, SourceSeparator

__all__ = [
    "KEPT_LABEL",
    "SEPFORMER",
    "CallVoices",
    "RecoveryRules",
    "SepformerSeparator",
    "SpanVerdict",
    "build_source_separator",
    "recover_overlaps",
    "verdict_counts",
]

#: Backend name of :class:`SepformerSeparator`.
SEPFORMER: Final = "sepformer"
#: Frame label of spans kept from the separator's agent estimate.
KEPT_LABEL: Final = "separated"

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- the separator


class SepformerSeparator:
    """SpeechBrain's SepFormer (or any ``SepformerSeparation`` model) from a local directory.

    :param source: directory in SpeechBrain's pretrained layout (``hyperparams.yaml`` and the
        checkpoints it names: ``encoder.ckpt``, ``masknet.ckpt``, ``decoder.ckpt``).
    :raises ConfigError: *source* has no ``hyperparams.yaml``.
    :raises MissingExtraError: the ``speechbrain`` extra is not installed.
    """

    def __init__(self, *, source: str | Path) -> None:
        """See the class docstring."""
        self._torch, self._model, self.source = load_pretrained(
            source, "sepformer separator", "separation.SepformerSeparation"
        )
        self.sample_rate = int(getattr(self._model.hparams, "sample_rate", 8000))

    @property
    def name(self) -> str:
        """``"sepformer"``."""
        return SEPFORMER

    def separate(self, audio: Audio) -> npt.NDArray[np.float32]:
        """Sources of a mono *audio* at its own rate and length: ``(sources, frames)``.

        The audio is resampled to the model's rate (``sample_rate`` in its hyperparams,
        8 kHz for the WSJ0-2mix models) and the sources back to the call's.
        """
        if audio.channels != 1:
            raise IsolationError(
                f"sepformer separator: expected mono audio, got {audio.channels} channels"
            )
        own = audio if audio.sample_rate == self.sample_rate else audio.resampled(self.sample_rate)
        torch = self._torch
        with torch.no_grad():
            mix = torch.from_numpy(np.array(own.samples[:, 0], np.float32))[None]  # a copy
            estimates = self._model.separate_batch(mix)[0].numpy()  # (frames, sources)
        sources = []
        for column in np.asarray(estimates, np.float32).T:
            track = Audio(samples=np.ascontiguousarray(column), sample_rate=self.sample_rate)
            if track.sample_rate != audio.sample_rate:
                track = track.resampled(audio.sample_rate)
            samples = track.samples[:, 0][: audio.frames]
            sources.append(np.pad(samples, (0, audio.frames - samples.size)))
        return np.stack(sources).astype(np.float32)


def build_source_separator(name: str, options: Mapping[str, Any]) -> SourceSeparator | None:
    """The separator an ``overlap_separator`` option names: ``"none"`` or ``"sepformer"``.

    :raises ConfigError: an unknown name, an unknown option, or no ``source`` for SepFormer.
    """
    if name == "none":
        return None
    if name != SEPFORMER:
        raise ConfigError(f"overlap_separator: expected 'none' or 'sepformer', got {name!r}")
    check_options("sepformer separator", options, {"source"})
    if "source" not in options:
        raise ConfigError(
            "sepformer separator: option 'source' (a local model directory) is required; "
            "model hubs are not used"
        )
    return SepformerSeparator(source=options["source"])


# --------------------------------------------------------------------------- the rules


@attrs.frozen(kw_only=True)
class RecoveryRules:
    """When a separated agent estimate may replace the silence of an overlapped span.

    :param context_s: audio either side of the span given to the separator and the embedder.
    :param max_span_s: longer overlapped spans are left deleted.
    :param min_lead: score margin that puts a source with the agent (or the customer).
    :param max_residual_db: the part of the mixture the scaled sources leave unexplained,
        relative to the mixture's energy.
    :param min_source_db: the least energy each source must carry, relative to the span's.
    :param max_crosstalk_db: the most the two sources may correlate over the span
        (``10 log10(r**2)``; -20 dB is ``|r| = 0.1``).
    """

    context_s: float = 0.5
    max_span_s: float = 4.0
    min_lead: float = 0.1
    max_residual_db: float = -10.0
    min_source_db: float = -25.0
    max_crosstalk_db: float = -20.0


@attrs.frozen(kw_only=True)
class CallVoices:
    """What the separator learned about the call's voices (unit vectors of one embedder).

    :param agent: the call's agent model.
    :param customers: the call's customer model(s).
    :param voiceprint: the enrolled agent.
    :param min_score: the least score against *voiceprint* of anything kept as the agent.
    """

    agent: FloatArray
    customers: tuple[FloatArray, ...]
    voiceprint: FloatArray
    min_score: float


@attrs.frozen(kw_only=True)
class SpanVerdict:
    """The decision on one overlapped span (frames ``[start, end)`` of the 10 ms grid).

    :param reason: ``"kept"``, or why not (the module docstring lists the reasons).
    :param residual_db: unexplained mixture energy (dB); ``nan`` when not reached.
    :param leads: each source's agent-minus-customer score; empty when not reached.
    """

    start: int
    end: int
    reason: str
    residual_db: float = float("nan")
    leads: tuple[float, ...] = ()

    @property
    def kept(self) -> bool:
        """Whether the span keeps the separated agent estimate."""
        return self.reason == "kept"


def _db(energy: float, reference: float) -> float:
    return float(10.0 * np.log10(max(energy, 1e-20) / max(reference, 1e-20)))


def _judge_span(
    samples: npt.NDArray[np.float32],
    rate: int,
    span: tuple[int, int],
    piece: tuple[int, int],
    separator: SourceSeparator,
    embedder: Embedder,
    voices: CallVoices,
    rules: RecoveryRules,
) -> tuple[SpanVerdict, npt.NDArray[np.float32] | None]:
    """One span's verdict, and the scaled agent source over *piece* when it is kept."""
    start, end = span
    lo, hi = piece
    hop = round(FRAME_S * rate)
    mix = samples[lo:hi].astype(np.float64)
    sources = np.asarray(separator.separate(Audio(samples=samples[lo:hi], sample_rate=rate)))
    if sources.ndim != 2 or sources.shape[0] != 2 or sources.shape[1] != mix.size:
        return SpanVerdict(start=start, end=end, reason="not_two_sources"), None
    basis = sources.astype(np.float64)
    if not np.isfinite(basis).all():
        return SpanVerdict(start=start, end=end, reason="unexplained"), None
    gains = np.linalg.lstsq(basis.T, mix, rcond=None)[0]
    scaled = basis * gains[:, None]
    residual = _db(float(np.sum((mix - scaled.sum(axis=0)) ** 2)), float(np.sum(mix**2)))
    if residual > rules.max_residual_db:
        return SpanVerdict(start=start, end=end, reason="unexplained", residual_db=residual), None
    inside = slice(start * hop - lo, end * hop - lo)
    energy = float(np.sum(mix[inside] ** 2))
    if min(_db(float(np.sum(s[inside] ** 2)), energy) for s in scaled) < rules.min_source_db:
        return SpanVerdict(start=start, end=end, reason="one_voice", residual_db=residual), None
    first, second = scaled[0][inside], scaled[1][inside]
    product = float(first @ second) ** 2
    if _db(product, float(first @ first) * float(second @ second)) > rules.max_crosstalk_db:
        return SpanVerdict(start=start, end=end, reason="entangled", residual_db=residual), None
    vectors = [
        np.asarray(embedder.embed(Audio(samples=s.astype(np.float32), sample_rate=rate)))
        for s in scaled
    ]
    vectors = [v / max(float(np.linalg.norm(v)), 1e-12) for v in vectors]
    leads = tuple(
        float(v @ voices.agent) - max(float(v @ c) for c in voices.customers) for v in vectors
    )
    agent = int(np.argmax(leads))
    other = 1 - agent
    keep = (
        leads[agent] >= rules.min_lead
        and leads[other] <= -rules.min_lead
        and float(vectors[agent] @ voices.voiceprint) >= voices.min_score
    )
    verdict = SpanVerdict(
        start=start, end=end, reason="kept" if keep else "unsure", residual_db=residual, leads=leads
    )
    return verdict, scaled[agent].astype(np.float32) if keep else None


def recover_overlaps(
    audio: Audio,
    labels: npt.NDArray[Any],
    separator: SourceSeparator,
    embedder: Embedder,
    voices: CallVoices,
    rules: RecoveryRules | None = None,
    *,
    overlap_label: str = "overlap",
) -> tuple[npt.NDArray[Any], Audio, list[SpanVerdict]]:
    """Try every run of *overlap_label* frames; ``(labels, separated audio, verdicts)``.

    Kept runs are relabelled :data:`KEPT_LABEL`; the separated audio holds the scaled agent
    source inside kept runs and zeros everywhere else. No other frame's label changes.

    :param labels: frame labels of the call on the 10 ms grid.
    :raises IsolationError: *audio* is not mono.
    """
    if audio.channels != 1:
        raise IsolationError(f"overlap recovery: expected mono audio, got {audio.channels}")
    rules = rules or RecoveryRules()
    rate = audio.sample_rate
    hop = round(FRAME_S * rate)
    samples = audio.samples[:, 0]
    context = round(rules.context_s * rate)
    out = labels.copy()
    patch = np.zeros(audio.frames, np.float32)
    verdicts: list[SpanVerdict] = []
    for start, end, label in label_runs(labels):
        if label != overlap_label:
            continue
        if (end - start) * FRAME_S > rules.max_span_s + 1e-9:
            verdicts.append(SpanVerdict(start=start, end=end, reason="too_long"))
            continue
        lo = max(0, start * hop - context)
        hi = min(audio.frames, end * hop + context)
        if end * hop > audio.frames:
            end = audio.frames // hop  # the last partial frame stays deleted
        if end <= start:
            continue
        verdict, agent = _judge_span(
            samples, rate, (start, end), (lo, hi), separator, embedder, voices, rules
        )
        verdicts.append(verdict)
        if agent is not None:
            patch[start * hop : end * hop] = agent[start * hop - lo : end * hop - lo]
            out[start:end] = KEPT_LABEL
    return out, Audio(samples=patch, sample_rate=rate), verdicts


def verdict_counts(verdicts: Sequence[SpanVerdict]) -> dict[str, int]:
    """How many spans ended with each reason."""
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.reason] = counts.get(verdict.reason, 0) + 1
    return counts
