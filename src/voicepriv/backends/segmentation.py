"""Built-in ``"segmentation"`` separator: the agent's voice from a mono call, by neural turns.

The ``"speaker"`` separator finds turns and overlap from 0.8 s embeddings and a per-call
frame model; this one lets a network trained on real overlapped conversations say who
speaks when (:mod:`voicepriv.backends.pyannet`, pyannote segmentation-3.0, numpy only), and
uses the agent's voiceprint only to tell which of its voices is the agent. The steps:

1. **Local speakers.** The network hears 10 s chunks every ``step_s`` seconds and gives, per
   17 ms frame, the probability of each combination of up to three local speakers (nobody,
   one alone, or two at once).
2. **One embedding per chunk and local speaker**, from the embedder that made the voiceprint:
   the mean of the call's ``window_s`` windows (every ``hop_s``) that the chunk gives to that
   speaker alone for at least ``window_cover`` of their length; a local speaker needs
   ``min_speaker_s`` of speech alone and ``min_windows`` such windows, otherwise it stays
   unidentified (and is never kept).
3. **Agent and customer models.** Those embeddings are split in two by cosine k-means
   (weighted by seconds), seeded with the lowest- and highest-scoring against the voiceprint;
   the cluster nearer the voiceprint is the agent's. Nothing is kept when the agent cluster
   scores under ``min_cluster_score``, leads the other by less than ``min_cluster_lead``, the
   other cluster scores ``max_other_score`` or more, the centroids are more alike than
   ``max_cluster_similarity``, or the other cluster holds under ``min_other_share`` of the
   embedded speech (the customer was not found). The thresholds are the ``"speaker"``
   separator's per-embedder defaults.
4. **Which local speaker is the agent**, per chunk: one whose embedding is in the agent
   cluster, leads the customer centroid by ``margin`` and scores at least ``min_score``
   against the voiceprint. A chunk without one vouches for nothing.
5. **Frames, fail-closed.** On a 10 ms grid, a frame is kept when every chunk hearing it
   gives the agent alone a probability of at least ``keep_threshold`` (``keep_vote``
   ``"min"``; ``"mean"`` averages them), and no chunk gives any other local speaker, or an
   unidentified one, ``other_threshold`` or more within ``guard_s`` of it (the band stops at
   pauses of ``guard_pause_s``). Kept spans shorter than ``min_keep_s`` are dropped.
6. **Output** as the ``"speaker"`` separator's: removed spans silenced, kept / removed
   segments with a reason, a residual-leakage estimate (the other voices' probability mass
   kept / their mass in the call) and a confidence (mean probability that a kept frame is
   the agent alone).

Nothing is written anywhere; the customer's audio lives only in the input array.
Measured on the mono benchmark: docs/mono-isolation.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.backends._frames import (
    FRAME_S,
    centroid,
    dilate_within,
    drop_short,
    labelled_segments,
    silence_outside,
    speech_runs,
)
from voicepriv.backends._options import check_options, number_option
from voicepriv.backends.pyannet import POWERSET, Segmentation, SegmentationModel, segment
from voicepriv.backends.speaker import (
    DEFAULT_MAX_CLUSTER_SIMILARITY,
    DEFAULT_MAX_OTHER_SCORES,
    DEFAULT_MIN_CLUSTER_SCORES,
    DEFAULT_MIN_SCORES,
    voiceprint_embedder,
)
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import Embedder, IsolationRequest, IsolationResult, Voiceprint
from voicepriv.plugins import hookimpl

__all__ = [
    "KEEP_VOTES",
    "NAME",
    "UNSUPPORTED_BY_DEFAULT",
    "Identification",
    "SegmentationOptions",
    "SegmentationSeparator",
    "Windows",
    "voicepriv_backend_names",
    "voicepriv_separator",
]

#: The backend name.
NAME: Final = "segmentation"
#: How the chunks hearing a frame are combined: the least sure one, or their mean.
KEEP_VOTES: Final = ("min", "mean")

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_WHO: Final = "segmentation separator"
#: Embedders with default thresholds here: the ``"speaker"`` separator's, without ``mfcc``.
#: The MFCC baseline cannot tell many voices apart; measured on the mono benchmark (seed 13)
#: it put customers in the agent's cluster and one call kept 56 % of its customer's speech.
#: It needs ``min_score`` and ``min_cluster_score`` given explicitly.
UNSUPPORTED_BY_DEFAULT: Final = frozenset({"mfcc"})
_MIN_SCORES: Final = {
    k: v for k, v in DEFAULT_MIN_SCORES.items() if k not in UNSUPPORTED_BY_DEFAULT
}
_MIN_CLUSTER_SCORES: Final = {
    k: v for k, v in DEFAULT_MIN_CLUSTER_SCORES.items() if k not in UNSUPPORTED_BY_DEFAULT
}
_SINGLE: Final = tuple(POWERSET.index((k,)) for k in range(3))
_PAIRS: Final = tuple(i for i, combo in enumerate(POWERSET) if len(combo) == 2)
_SILENT: Final = POWERSET.index(())

_positive = number_option(_WHO, "a positive number", lambda v: v > 0)
_nonnegative = number_option(_WHO, "a number >= 0", lambda v: v >= 0)
_unit = number_option(_WHO, "a number in [0, 1]", lambda v: 0 <= v <= 1)
_optional_score = number_option(_WHO, "a cosine in [-1, 1]", lambda v: -1 <= v <= 1, optional=True)
_step = number_option(_WHO, "a number of seconds in (0, 10]", lambda v: 0 < v <= 10)
_count = number_option(_WHO, "a whole number >= 1", lambda v: v >= 1 and float(v).is_integer())


def _vote(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in KEEP_VOTES:
        raise ConfigError(
            f"{_WHO} option {attribute.name!r}: expected one of "
            f"{', '.join(map(repr, KEEP_VOTES))}, got {value!r}"
        )


def _model_path(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str | Path):
        raise ConfigError(
            f"{_WHO} option {attribute.name!r}: expected a path to the model weights, got {value!r}"
        )


def _mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_WHO} option {attribute.name!r}: expected a mapping, got {value!r}")


@attrs.frozen(kw_only=True)
class SegmentationOptions:
    """Settings of the ``"segmentation"`` separator; the defaults are the privacy operating point.

    :param model: weights of the segmentation network: a ``.npz`` as shipped, pyannote's
        ``pytorch_model.bin`` or a directory holding one; ``None`` takes the bundled weights.
    :param step_s: step between the network's 10 s chunks (smaller: every frame is judged
        by more chunks, slower).
    :param window_s: embedding window length.
    :param hop_s: embedding window step.
    :param window_cover: share of a window a chunk must give to one speaker alone for the
        window to count towards that speaker's embedding.
    :param min_speaker_s: speech alone a local speaker needs in a chunk to be embedded.
    :param min_windows: windows a local speaker needs in a chunk to be embedded.
    :param margin: cosine lead over the customer centroid a local speaker's embedding needs
        to be taken for the agent.
    :param min_score: cosine floor of that embedding against the voiceprint; ``None`` takes
        the ``"speaker"`` separator's :data:`~voicepriv.backends.speaker.DEFAULT_MIN_SCORES`.
    :param min_cluster_score: floor of the agent cluster's centroid against the voiceprint;
        ``None``: :data:`~voicepriv.backends.speaker.DEFAULT_MIN_CLUSTER_SCORES`.
    :param min_cluster_lead: the agent cluster must score this much above the other one.
    :param max_other_score: the other cluster must score below this against the voiceprint;
        ``None``: :data:`~voicepriv.backends.speaker.DEFAULT_MAX_OTHER_SCORES`, or the
        embedder's ``min_cluster_score`` when it is not listed there.
    :param max_cluster_similarity: the two centroids must be less alike than this; ``None``:
        :data:`~voicepriv.backends.speaker.DEFAULT_MAX_CLUSTER_SIMILARITY` (1.0 if unlisted).
    :param min_other_share: share of the embedded speech (seconds) the customer cluster
        must hold; below it the customer was not found and nothing is kept.
    :param keep_threshold: probability of the agent alone a frame needs.
    :param keep_vote: ``"min"`` (every chunk hearing the frame must reach
        ``keep_threshold``) or ``"mean"`` (their mean must).
    :param other_threshold: probability of another (or unidentified) local speaker from
        which a frame, and everything within ``guard_s`` of it, is removed.
    :param guard_s: width of that band each way.
    :param guard_pause_s: the band does not reach across a pause (the network hears nobody)
        at least this long (0: it reaches across everything).
    :param min_keep_s: kept spans shorter than this are dropped.
    :param window_margin: a kept frame's nearest embedding window must score at least this
        much closer to the agent centroid than to the customer centroid (``None``: no such
        check). A second opinion independent of the network: where it merged two voices into
        one local speaker, the windows still hear the customer.
    :param consistency: a local speaker taken for the agent in one chunk must not be, by
        the activity the two chunks share, a voice the neighbouring chunk took for someone
        else; a chunk that contradicts its neighbour vouches for nothing.
    :param embedder_options: options for the voiceprint's embedder backend.
    """

    model: str | Path | None = attrs.field(default=None, validator=_model_path)
    step_s: float = attrs.field(default=5.0, validator=_step)
    window_s: float = attrs.field(default=0.8, validator=_positive)
    hop_s: float = attrs.field(default=0.2, validator=_positive)
    window_cover: float = attrs.field(default=0.9, validator=_unit)
    min_speaker_s: float = attrs.field(default=1.0, validator=_nonnegative)
    min_windows: int = attrs.field(default=3, validator=_count)
    margin: float = attrs.field(default=0.05, validator=_nonnegative)
    min_score: float | None = attrs.field(default=None, validator=_optional_score)
    min_cluster_score: float | None = attrs.field(default=None, validator=_optional_score)
    min_cluster_lead: float = attrs.field(default=0.1, validator=_nonnegative)
    max_other_score: float | None = attrs.field(default=None, validator=_optional_score)
    max_cluster_similarity: float | None = attrs.field(default=None, validator=_optional_score)
    min_other_share: float = attrs.field(default=0.05, validator=_unit)
    keep_threshold: float = attrs.field(default=0.5, validator=_unit)
    keep_vote: str = attrs.field(default="min", validator=_vote)
    other_threshold: float = attrs.field(default=0.5, validator=_unit)
    guard_s: float = attrs.field(default=0.5, validator=_nonnegative)
    guard_pause_s: float = attrs.field(default=0.0, validator=_nonnegative)
    min_keep_s: float = attrs.field(default=0.0, validator=_nonnegative)
    window_margin: float | None = attrs.field(default=0.1, validator=_optional_score)
    consistency: bool = True
    embedder_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_mapping)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SegmentationOptions:
        """Build from plugin options; unknown names raise :class:`ConfigError` (all at once)."""
        check_options(_WHO, options, {field.name for field in attrs.fields(cls)})
        return cls(**dict(options))


@attrs.frozen(kw_only=True)
class Windows:
    """The call's embedding windows.

    :param centres: window centres (s), ascending.
    :param vectors: (windows, dim) L2-normalised embeddings.
    """

    centres: FloatArray = attrs.field(eq=False, repr=False)
    vectors: FloatArray = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class _Voice:
    """One local speaker of one chunk, embedded."""

    chunk: int
    speaker: int
    vector: FloatArray = attrs.field(eq=False, repr=False)
    seconds: float


@attrs.frozen(kw_only=True)
class Identification:
    """Which local speaker of each chunk is the agent, and the call-level evidence.

    :param agents: per chunk, the local speakers (0-2) taken for the agent.
    :param agent_score: the agent cluster centroid's cosine to the voiceprint (-1: none).
    :param other_score: the other cluster centroid's cosine to the voiceprint (-1: none).
    :param found: the call-level checks passed (agent and customer told apart).
    :param reason: why nothing can be kept, when ``found`` is false.
    :param voices: local speakers that could be embedded.
    :param agent_centre: the agent cluster's centroid (``None`` when not found).
    :param customer_centre: the other cluster's centroid (``None`` when not found).
    """

    agents: tuple[frozenset[int], ...]
    agent_score: float
    other_score: float
    found: bool
    reason: str
    voices: int
    agent_centre: FloatArray | None = attrs.field(default=None, eq=False, repr=False)
    customer_centre: FloatArray | None = attrs.field(default=None, eq=False, repr=False)


def _weighted_two_means(
    rows: FloatArray, scores: FloatArray, weights: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Cosine 2-means of *rows* weighted by *weights*, seeded by the lowest/highest *scores*."""
    centres = rows[[int(np.argmin(scores)), int(np.argmax(scores))]]
    assign = np.zeros(rows.shape[0], np.int64)
    for _ in range(20):
        assign = np.argmax(rows @ centres.T, axis=1)
        if (assign == 0).all() or (assign == 1).all():
            break
        centres = np.stack(
            [centroid(rows[assign == k] * weights[assign == k, None]) for k in (0, 1)]
        )
    return centres, assign


class SegmentationSeparator:
    """Keeps the frames the segmentation network gives to the enrolled agent alone.

    :param options: see :class:`SegmentationOptions`.
    :param embedder: use this embedder instead of looking the voiceprint's up by name.
    :param model: use this network instead of the one ``options.model`` names.
    """

    def __init__(
        self,
        options: SegmentationOptions | None = None,
        *,
        embedder: Embedder | None = None,
        model: SegmentationModel | None = None,
    ) -> None:
        """See the class docstring."""
        self.options = options or SegmentationOptions()
        self._embedder = embedder
        self._model = model

    @property
    def name(self) -> str:
        """``"segmentation"``."""
        return NAME

    def model(self) -> SegmentationModel:
        """The segmentation network (loaded on first use)."""
        if self._model is None:
            path = self.options.model
            self._model = (
                SegmentationModel.bundled() if path is None else SegmentationModel.from_path(path)
            )
        return self._model

    # ------------------------------------------------------------------ thresholds

    def _per_embedder(
        self, given: float | None, table: Mapping[str, float], voiceprint: Voiceprint, name: str
    ) -> float:
        if given is not None:
            return float(given)
        try:
            return table[voiceprint.embedder]
        except KeyError:
            why = (
                " (it cannot tell voices apart reliably enough)"
                if voiceprint.embedder in UNSUPPORTED_BY_DEFAULT
                else ""
            )
            raise ConfigError(
                f"{_WHO}: no default {name} for embedder {voiceprint.embedder!r}{why}; "
                f"give the option {name}"
            ) from None

    def thresholds(self, voiceprint: Voiceprint) -> dict[str, float]:
        """The score thresholds in effect for *voiceprint*'s embedder.

        :raises ConfigError: the embedder has no defaults here (``mfcc`` among them) and the
            options do not give ``min_score`` and ``min_cluster_score``.
        """
        opts = self.options
        cluster = self._per_embedder(
            opts.min_cluster_score, _MIN_CLUSTER_SCORES, voiceprint, "min_cluster_score"
        )
        other = opts.max_other_score
        if other is None:
            other = DEFAULT_MAX_OTHER_SCORES.get(voiceprint.embedder, cluster)
        similarity = opts.max_cluster_similarity
        if similarity is None:
            similarity = DEFAULT_MAX_CLUSTER_SIMILARITY.get(voiceprint.embedder, 1.0)
        return {
            "min_score": self._per_embedder(opts.min_score, _MIN_SCORES, voiceprint, "min_score"),
            "min_cluster_score": cluster,
            "max_other_score": float(other),
            "max_cluster_similarity": float(similarity),
        }

    # ------------------------------------------------------------------ stages

    def windows(self, audio: Audio, embedder: Embedder) -> Windows:
        """Embeddings of ``window_s`` windows every ``hop_s`` over the call."""
        opts = self.options
        centres, matrix = embedder.embed_windows(audio, window_s=opts.window_s, hop_s=opts.hop_s)
        return Windows(
            centres=np.asarray(centres, np.float64), vectors=np.asarray(matrix, np.float64)
        )

    def voices(self, segmentation: Segmentation, windows: Windows, frames: int) -> list[_Voice]:
        """Embed every local speaker of every chunk that speaks alone long enough."""
        opts = self.options
        centres, vectors = windows.centres, windows.vectors
        half = opts.window_s / 2
        lo = np.clip(np.round((centres - half) / FRAME_S).astype(np.int64), 0, frames)
        hi = np.clip(np.round((centres + half) / FRAME_S).astype(np.int64), 0, frames)
        found: list[_Voice] = []
        for chunk in range(segmentation.starts.size):
            covered, values = segmentation.on_grid(chunk, frames, FRAME_S)
            hard = np.full(frames, -1, np.int64)
            hard[covered] = values.argmax(axis=1)
            for speaker in range(3):
                alone = hard == _SINGLE[speaker]
                seconds = float(alone.sum()) * FRAME_S
                if seconds < opts.min_speaker_s:
                    continue
                cumulative = np.concatenate([[0], np.cumsum(alone)])
                cover = (cumulative[hi] - cumulative[lo]) / np.maximum(hi - lo, 1)
                chosen = cover >= opts.window_cover
                if int(chosen.sum()) < opts.min_windows:
                    continue
                found.append(
                    _Voice(
                        chunk=chunk,
                        speaker=speaker,
                        vector=centroid(vectors[chosen]),
                        seconds=seconds,
                    )
                )
        return found

    def identify(
        self, voices: Sequence[_Voice], chunks: int, voiceprint: Voiceprint
    ) -> Identification:
        """Split the embedded voices into agent and customer; name each chunk's agent."""
        opts = self.options
        limits = self.thresholds(voiceprint)
        nobody = tuple(frozenset[int]() for _ in range(chunks))
        reference = np.asarray(voiceprint.vector, np.float64)
        reference = reference / max(float(np.linalg.norm(reference)), 1e-12)

        def refuse(reason: str, agent: float = -1.0, other: float = -1.0) -> Identification:
            return Identification(
                agents=nobody,
                agent_score=agent,
                other_score=other,
                found=False,
                reason=reason,
                voices=len(voices),
            )

        if len(voices) < 2:
            return refuse("fewer than two voices could be embedded")
        rows = np.stack([v.vector for v in voices])
        weights = np.array([v.seconds for v in voices])
        scores = rows @ reference
        centres, assign = _weighted_two_means(rows, scores, weights)
        if (assign == assign[0]).all():
            return refuse("the embedded voices form a single cluster")
        cluster_scores = centres @ reference
        agent_k = int(np.argmax(cluster_scores))
        agent_score = float(cluster_scores[agent_k])
        other_score = float(cluster_scores[1 - agent_k])
        other_share = float(weights[assign != agent_k].sum() / weights.sum())
        checks = (
            (agent_score < limits["min_cluster_score"], "the agent's voice is not in the call"),
            (
                agent_score - other_score < opts.min_cluster_lead,
                "the two voices score too alike against the voiceprint",
            ),
            (
                other_score >= limits["max_other_score"],
                "the other voice sounds like the enrolled agent too",
            ),
            (
                float(centres[0] @ centres[1]) > limits["max_cluster_similarity"],
                "the two voices cannot be told apart",
            ),
            (other_share < opts.min_other_share, "no customer voice found to contrast with"),
        )
        for failed, reason in checks:
            if failed:
                return refuse(reason, agent_score, other_score)
        agent_centre, customer_centre = centres[agent_k], centres[1 - agent_k]
        agents: list[set[int]] = [set() for _ in range(chunks)]
        for voice, label, score in zip(voices, assign.tolist(), scores.tolist(), strict=True):
            lead = float(voice.vector @ agent_centre - voice.vector @ customer_centre)
            if label == agent_k and lead >= opts.margin and score >= limits["min_score"]:
                agents[voice.chunk].add(voice.speaker)
        return Identification(
            agents=tuple(frozenset(a) for a in agents),
            agent_score=agent_score,
            other_score=other_score,
            found=True,
            reason="",
            voices=len(voices),
            agent_centre=agent_centre,
            customer_centre=customer_centre,
        )

    def consistent(
        self, segmentation: Segmentation, identification: Identification, frames: int
    ) -> Identification:
        """*identification* without the agents a neighbouring chunk contradicts.

        Two chunks share 10 s - ``step_s`` of the call; in that stretch each local speaker
        of one chunk is matched with the local speaker of the other whose activity it
        shares most (at least 0.5 s). An agent matched with a voice that the neighbour
        identified but not as its agent is dropped (when the neighbour named an agent).
        """
        if not (self.options.consistency and identification.found):
            return identification
        count = segmentation.starts.size
        marginals: list[tuple[slice, FloatArray]] = []
        for chunk in range(count):
            covered, values = segmentation.on_grid(chunk, frames, FRAME_S)
            member = np.array([[k in combo for k in range(3)] for combo in POWERSET], float)
            marginals.append((covered, values.astype(np.float64) @ member))
        agents = [set(a) for a in identification.agents]
        for chunk in range(count):
            for neighbour in (chunk - 1, chunk + 1):
                if not 0 <= neighbour < count or not identification.agents[neighbour]:
                    continue
                (mine, own), (theirs, other) = marginals[chunk], marginals[neighbour]
                first, last = max(mine.start, theirs.start), min(mine.stop, theirs.stop)
                if last <= first:
                    continue
                shared = (
                    own[first - mine.start : last - mine.start].T
                    @ other[first - theirs.start : last - theirs.start]
                )
                for speaker in list(agents[chunk]):
                    match = int(np.argmax(shared[speaker]))
                    if shared[speaker, match] * FRAME_S < 0.5:
                        continue
                    if match not in identification.agents[neighbour]:
                        agents[chunk].discard(speaker)
        return attrs.evolve(identification, agents=tuple(frozenset(a) for a in agents))

    def window_lead(
        self, windows: Windows, identification: Identification, frames: int
    ) -> FloatArray:
        """Per frame: the nearest window's cosine to the agent centroid minus the customer's."""
        if (
            identification.agent_centre is None
            or identification.customer_centre is None
            or windows.centres.size == 0
        ):
            return np.full(frames, -2.0)
        lead = windows.vectors @ (identification.agent_centre - identification.customer_centre)
        times = (np.arange(frames) + 0.5) * FRAME_S
        after = np.clip(np.searchsorted(windows.centres, times), 0, windows.centres.size - 1)
        before = np.clip(after - 1, 0, windows.centres.size - 1)
        closer = np.abs(windows.centres[before] - times) < np.abs(windows.centres[after] - times)
        result: FloatArray = lead[np.where(closer, before, after)]
        return result

    def frame_votes(
        self, segmentation: Segmentation, identification: Identification, frames: int
    ) -> dict[str, FloatArray]:
        """Per 10 ms frame: the agent-alone vote, the strongest other voice, overlap, speech."""
        opts = self.options
        agent_min = np.full(frames, np.inf)
        agent_sum = np.zeros(frames)
        hearing = np.zeros(frames)
        other = np.zeros(frames)
        overlap = np.zeros(frames)
        speech = np.zeros(frames)
        for chunk in range(segmentation.starts.size):
            covered, values = segmentation.on_grid(chunk, frames, FRAME_S)
            probabilities = values.astype(np.float64)
            agents = identification.agents[chunk]
            alone = probabilities[:, [_SINGLE[k] for k in sorted(agents)]].sum(axis=1)
            others = [k for k in range(3) if k not in agents]
            marginal = np.stack(
                [np.zeros(len(probabilities))]
                + [
                    probabilities[:, [i for i, combo in enumerate(POWERSET) if k in combo]].sum(1)
                    for k in others
                ]
            )
            agent_min[covered] = np.minimum(agent_min[covered], alone)
            agent_sum[covered] += alone
            hearing[covered] += 1
            other[covered] = np.maximum(other[covered], marginal.max(axis=0))
            overlap[covered] = np.maximum(
                overlap[covered], probabilities[:, list(_PAIRS)].sum(axis=1)
            )
            speech[covered] = np.maximum(speech[covered], 1.0 - probabilities[:, _SILENT])
        heard = hearing > 0
        vote = np.zeros(frames)
        if opts.keep_vote == "min":
            vote[heard] = agent_min[heard]
        else:
            vote[heard] = agent_sum[heard] / hearing[heard]
        other[~heard] = 1.0
        return {"agent": vote, "other": other, "overlap": overlap, "speech": speech}

    def decide(self, votes: Mapping[str, FloatArray]) -> npt.NDArray[Any]:
        """Frame labels on the 10 ms grid: ``"agent"`` (kept), ``"customer"``, ``"overlap"`` ..."""
        opts = self.options
        speech = votes["speech"] >= 0.5
        others = votes["other"] >= opts.other_threshold
        runs = speech_runs(speech | others, opts.guard_pause_s)
        banned = dilate_within(others, round(opts.guard_s / FRAME_S), runs)
        keep = (votes["agent"] >= opts.keep_threshold) & ~banned
        if opts.window_margin is not None and "window_lead" in votes:
            keep &= votes["window_lead"] >= opts.window_margin
        kept = drop_short(keep, round(opts.min_keep_s / FRAME_S))
        labels = np.full(speech.size, "uncertain", dtype=object)
        labels[~speech & ~others] = "silence"
        labels[others] = "customer"
        labels[(votes["overlap"] >= 0.5) & others] = "overlap"
        labels[keep & ~kept] = "short"
        labels[kept] = "agent"
        return labels

    # ------------------------------------------------------------------ entry point

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """Agent-only audio of a mono *audio* and the report.

        :raises IsolationError: no voiceprint, more than one channel, or a voiceprint that
            does not fit its embedder.
        :raises ConfigError: the voiceprint's embedder has no default thresholds here
            (:data:`UNSUPPORTED_BY_DEFAULT`) and the options give none.
        """
        voiceprint = request.voiceprint
        if voiceprint is None:
            raise IsolationError(
                f"{_WHO}: a mono call needs the agent's voiceprint (enroll the agent first); "
                "refusing to guess who the agent is"
            )
        if audio.channels != 1:
            raise IsolationError(f"{_WHO}: expected a mono call, got {audio.channels} channels")
        self.thresholds(voiceprint)  # an embedder without defaults fails before any work
        embedder = voiceprint_embedder(
            voiceprint, self._embedder, self.options.embedder_options, NAME, request.plugins
        )
        self._embedder = embedder
        frames = int(np.ceil(audio.duration / FRAME_S))
        segmentation = segment(
            audio, step_s=self.options.step_s, model=self.model(), progress=request.progress
        )
        windows = self.windows(audio, embedder)
        dims = np.asarray(voiceprint.vector).size
        if windows.vectors.ndim != 2 or windows.vectors.shape[1] != dims:
            raise IsolationError(
                f"{_WHO}: embedder {embedder.name!r} gives {windows.vectors.shape[-1]}-dim "
                f"windows, but the voiceprint of agent {voiceprint.agent_id!r} has {dims} dims"
            )
        voices = self.voices(segmentation, windows, frames)
        identification = self.identify(voices, segmentation.starts.size, voiceprint)
        identification = self.consistent(segmentation, identification, frames)
        votes = self.frame_votes(segmentation, identification, frames)
        votes["window_lead"] = self.window_lead(windows, identification, frames)
        labels = self.decide(votes)
        return self._result(audio, labels, votes, identification, voiceprint)

    def _result(
        self,
        audio: Audio,
        labels: npt.NDArray[Any],
        votes: Mapping[str, FloatArray],
        identification: Identification,
        voiceprint: Voiceprint,
    ) -> IsolationResult:
        keep = labels == "agent"
        kept, removed = labelled_segments(labels, audio.duration)
        other = votes["other"] * (votes["speech"] >= 0.5)
        total = float(other.sum())
        residual = float(other[keep].sum()) / total if total > 0 else 0.0
        confidence = (
            float(np.mean(votes["agent"][keep] * (1.0 - votes["other"][keep])))
            if keep.any()
            else 1.0
        )
        agent_s = float(keep.sum()) * FRAME_S
        speech_s = float((votes["speech"] >= 0.5).sum()) * FRAME_S
        notes = [
            f"kept {agent_s:.1f} s of {speech_s:.1f} s of speech as agent {voiceprint.agent_id}"
        ]
        if not identification.found:
            notes.append(f"nothing kept: {identification.reason}")
        elif not keep.any():
            notes.append("no span was confidently the enrolled agent alone; the output is silence")
        return IsolationResult(
            audio=silence_outside(audio, keep),
            kept=kept,
            removed=removed,
            residual_leakage=min(1.0, max(0.0, residual)),
            confidence=min(1.0, max(0.0, confidence)),
            agent_channel=None,
            notes=tuple(notes),
            metrics={
                "kept_s": agent_s,
                "speech_s": speech_s,
                "overlap_removed_s": float((labels == "overlap").sum()) * FRAME_S,
                "chunks": float(len(identification.agents)),
                "voices": float(identification.voices),
                "agent_cluster_score": identification.agent_score,
                "other_cluster_score": identification.other_score,
            },
        )


# --------------------------------------------------------------------------- hooks


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["segmentation"]`` for kind ``"separator"``, nothing otherwise."""
    return [NAME] if kind == "separator" else []


@hookimpl
def voicepriv_separator(name: str, options: Mapping[str, Any]) -> SegmentationSeparator | None:
    """The ``"segmentation"`` separator with *options* (see :class:`SegmentationOptions`).

    ``None`` for any other name.
    """
    if name != NAME:
        return None
    return SegmentationSeparator(SegmentationOptions.from_mapping(options))
