"""Built-in ``"speaker"`` separator: the agent's voice from a mono (mixed) call, by voiceprint.

No customer enrollment exists, so the customer is modelled from the call itself. The steps:

1. **Speech activity** with a VAD backend (default ``"silero"`` when the ``onnx`` extra is
   installed, else ``"energy"``), on a 10 ms frame grid.
2. **Window embeddings** with the embedder that made the voiceprint (looked up by the
   voiceprint's ``embedder`` name): short windows (``short_window_s``) every ``hop_s``, and
   long windows (``window_s``) as the normalised mean of consecutive short ones.
3. **Two models from the call.** The long windows with speech are split in two by cosine
   k-means seeded with the lowest- and highest-scoring window against the voiceprint; the
   cluster nearer the voiceprint is the agent's. If that cluster's centroid scores below
   ``min_cluster_score`` against the voiceprint, the agent is not in the call and nothing is
   kept (a wrong or absent agent keeps nothing); if the *other* cluster scores at least
   ``max_other_score`` (per embedder: onnx 0.78, others their ``min_cluster_score``), it
   could be the agent as well, and nothing is kept either. An agent cluster holding two
   voices (its halves less alike than ``same_speaker``, the farther half scoring under
   ``min_cluster_score``: hold music, a third voice) is split again and that half joins
   the customer model; halves that both score like the agent are the agent's own variety.
   If the windows modelled as the customer are under ``min_other_share`` of the speech, the
   customer was not found, and nothing is kept.
   The agent model is the voiceprint blended with the agent centroid (``adapt``); the other
   centroid models the customer.
4. **Window decisions.** A long window is *agent* when its cosine to the agent model leads
   the customer model by ``margin`` and its raw cosine to the enrolled voiceprint reaches
   ``min_score``. A short window is *overlap* when its customer score exceeds a per-call
   threshold (the ``overlap_quantile`` of agent windows' customer scores, capped at the
   customer windows' median) and the agent model does not lead its customer score by
   ``overlap_lead``. With the ``whisper`` extra installed (``overlap_detector="auto"``), a
   frame-level detector's overlap probability marks more frames as overlap
   (:mod:`voicepriv.backends.overlap`); the bands below then default to 0.3 s.
5. **Frame-level resegmentation.** A per-call frame classifier (full-covariance Gaussians on
   stacked cepstra, +-40 ms context) is trained on the confident agent frames against the
   customer frames *plus synthetic overlap*: agent and customer frames mixed in the power
   domain at -12..+6 dB. Its per-frame log-likelihood ratio drives a two-state Viterbi path
   (agent / other) over the 10 ms speech frames with a cost of ``switch_penalty`` per change
   (``resegment``), which places turn changes at frame precision instead of the 1.2 s
   windows' ~0.6 s. Inside agent regions a frame stays only if the path gives it to the
   agent and its smoothed ratio reaches ``llr_threshold`` (``frame_refine``).
   With ``frame_model="mixtures"`` a per-call classifier of customer audibility replaces
   this step and step 6's bands (:mod:`voicepriv.backends.audibility`): trained on synthetic
   mixtures of the call's own confident agent and customer speech, its smoothed log-odds
   (hysteresis between ``audibility_low`` and ``audibility_high``), with the overlap
   detector's flags, mark the customer; frames within ``audibility_before_s`` before or
   ``audibility_after_s`` after a mark, or farther than ``agent_reach_s`` from the agent's
   windows, are removed. It keeps more of the agent and leaks more of the customer.
6. **Fail-closed frame decisions.** Kept = agent region, not overlap, within ``speech_pad_s``
   of VAD speech, frame checks passed, and no speech the path gives to the other party and
   no overlap within ``turn_guard_s`` (plus, when ``guard_s`` > 0, no speech judged customer
   or overlap by the windows within ``guard_s``). Neither guard band nor the overlap
   context reaches across a pause of ``guard_pause_s`` or more. Kept spans shorter than
   ``min_keep_s`` are dropped; gaps shorter than ``min_gap_s`` between kept spans are
   bridged when no frame in them is judged customer or overlap: silence, and (unless
   ``bridge_speech`` is off) speech removed only because a frame check was unsure.
7. **Output.** Removed spans are silenced (10 ms ramps inside the kept spans, so no click),
   kept / removed segments are reported with a reason (``"customer"``, ``"overlap"``,
   ``"uncertain"``, ``"silence"``, ``"short"``), and the residual customer speech is estimated
   from per-frame customer posteriors (window score difference, temperature 0.05).
8. **Optional: separated overlaps** (``overlap_separator``, off by default). Each
   ``"overlap"`` span goes to a two-voice source separator; its agent estimate fills the
   span only when the rules of :mod:`voicepriv.backends.sepformer` hold (kept label
   ``"separated"``); any other span stays silent. The residual and confidence estimates of
   step 7 cover the frames kept as ``"agent"`` only.

Nothing is written anywhere; the customer's audio lives only in the input array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import pluggy
import scipy

from voicepriv.audio import Audio
from voicepriv.backends._frames import (
    FRAME_S,
    centroid,
    dilate_within,
    drop_short,
    label_runs,
    labelled_segments,
    silence_outside,
    speech_runs,
    spread,
)
from voicepriv.backends._options import check_options, number_option
from voicepriv.backends.audibility import audible, customer_log_odds
from voicepriv.backends.overlap import (
    WHISPER_OVERLAP,
    WhisperOverlapDetector,
    whisper_overlap_available,
)
from voicepriv.backends.pyannet import SEGMENTATION_OVERLAP, SegmentationOverlapDetector
from voicepriv.backends.sepformer import (
    KEPT_LABEL,
    SEPFORMER,
    CallVoices,
    RecoveryRules,
    SpanVerdict,
    build_source_separator,
    recover_overlaps,
    verdict_counts,
)
from voicepriv.errors import ConfigError, IsolationError, MissingExtraError
from voicepriv.interfaces import (
    Embedder,
    IsolationRequest,
    IsolationResult,
    SourceSeparator,
    VoiceActivityDetector,
    Voiceprint,
)
from voicepriv.plugins import backend, get_plugin_manager, hookimpl

__all__ = [
    "AUTO_OVERLAP",
    "AUTO_VAD",
    "DEFAULT_BANDS",
    "DEFAULT_MAX_CLUSTER_SIMILARITY",
    "DEFAULT_MAX_OTHER_SCORES",
    "DEFAULT_MIN_CLUSTER_SCORES",
    "DEFAULT_MIN_SCORES",
    "DEFAULT_SAME_SPEAKER",
    "DEFAULT_VAD_THRESHOLDS",
    "FRAME_MODELS",
    "GAUSSIAN",
    "MIXTURES",
    "NAME",
    "NO_OVERLAP_DETECTOR",
    "SpeakerOptions",
    "SpeakerSeparator",
    "voiceprint_embedder",
    "voicepriv_backend_names",
    "voicepriv_separator",
]

#: The backend name.
NAME: Final = "speaker"

#: Absolute cosine floor against the enrolled voiceprint, per embedder, set near the 95th
#: percentile of different-speaker utterance scores on the LibriSpeech speakers in
#: ``../shared/data`` (``speechbrain``: not measured here, a usual ECAPA verification
#: threshold). campplus: 1.2 s windows of other readers score 0.245 / 0.392 at the 95th
#: percentile (16 kHz / 8 kHz band), the agent's own windows 0.47 / 0.48 at the 5th.
#: An unknown embedder must be given ``min_score`` explicitly.
DEFAULT_MIN_SCORES: Final[Mapping[str, float]] = {
    "campplus": 0.35,
    "mfcc": 0.85,
    "onnx": 0.50,
    "resemblyzer": 0.60,
    "speechbrain": 0.30,
}

#: Cosine floor of the in-call agent cluster centroid against the voiceprint, per embedder.
#: Measured on ``../shared/data``: a 3-utterance enrollment against the speaker's other
#: utterances scores at least 0.935 (onnx) / 0.947 (resemblyzer), another speaker at most
#: 0.718 / 0.795; clusters of mixed-call windows score lower (resemblyzer: 0.85 for the agent,
#: 0.58 for an absent one in the tests). mfcc: 0.936 vs 0.942, it cannot tell some speakers
#: apart at all. speechbrain: not measured here. campplus: the centroid of a reader's 1.2 s
#: windows scores at least 0.808 / 0.863 (16 kHz / 8 kHz band) against a 3-utterance
#: enrollment, another reader's at most 0.368 / 0.572 (onnx: 0.890 / 0.938 vs 0.677 / 0.879).
#: In calls the other cluster holds some of the agent's windows and scores higher: on the 36
#: calls of the mono benchmark's seeds 7 and 13 it scored -0.07-0.26 at 16 kHz and
#: 0.37-0.73 at 8 kHz (no call's customer sat in the agent cluster; worst call 2.7 %
#: leakage, all of it overlap), the agent clusters 0.82-0.95. 0.75 is both the agent
#: cluster's floor and (``max_other_score``) the other cluster's ceiling; the clean-reader
#: bound 0.55 as that ceiling failed 6 of the 9 8 kHz calls of seed 13 closed.
DEFAULT_MIN_CLUSTER_SCORES: Final[Mapping[str, float]] = {
    "campplus": 0.75,
    "mfcc": 0.93,
    "onnx": 0.82,
    "resemblyzer": 0.75,
    "speechbrain": 0.45,
}

#: Cosine below which two centroids of call windows are taken for two different voices (the
#: agent cluster is then split again). Unknown embedders: 0 (no second split). campplus:
#: random halves of a reader's windows give centroids at least 0.965 alike, two readers' at
#: most 0.577.
DEFAULT_SAME_SPEAKER: Final[Mapping[str, float]] = {
    "campplus": 0.75,
    "mfcc": 0.90,
    "onnx": 0.80,
    "resemblyzer": 0.85,
    "speechbrain": 0.50,
}

#: Ceiling of the *other* cluster's score against the voiceprint per embedder (``None`` in
#: ``max_other_score``); embedders not listed use their ``min_cluster_score``. onnx 0.78:
#: on 8 kHz calls of speakers the defaults were not tuned on, two calls whose other cluster
#: scored 0.80 and 0.83 kept 26 % and 31 % of their customer's speech (the customer's voice
#: sat partly in the agent cluster); over 108 calls of 7 call sets no call with the other
#: cluster under 0.80 leaked more than 3.3 %.
DEFAULT_MAX_OTHER_SCORES: Final[Mapping[str, float]] = {"onnx": 0.78}

#: Cosine between the call's two cluster centroids above which they are not taken for two
#: voices at all (the call cannot be split into agent and customer; nothing is kept), per
#: embedder. resemblyzer: measured on 36 calls of the mono benchmark (seeds 7 and 13): the
#: calls above 0.89 kept nothing anyway except one that kept 9.7 % of its agent speech and
#: one that kept 9.9 % of its customer's (two close 8 kHz voices). Other embedders: 1.0 (no
#: such check; for onnx the centroids of good and bad calls overlap, 0.80-0.94 at 8 kHz).
DEFAULT_MAX_CLUSTER_SIMILARITY: Final[Mapping[str, float]] = {
    "campplus": 1.0,
    "mfcc": 1.0,
    "onnx": 1.0,
    "resemblyzer": 0.89,
    "speechbrain": 1.0,
}

#: The ``vad`` option's default: ``"silero"`` when it can be loaded, else ``"energy"``.
AUTO_VAD: Final = "auto"
#: ``overlap_detector`` value: ``"whisper"`` when the ``whisper`` extra is installed, else none.
AUTO_OVERLAP: Final = "auto"
#: ``overlap_detector`` value: no frame-level overlap detector.
NO_OVERLAP_DETECTOR: Final = "none"
#: ``overlap_separator`` value: overlapped spans are deleted, never separated (default).
NO_SEPARATION: Final = "none"
#: ``(turn_guard_s, overlap_context_s)`` when those options are not given, by whether a
#: frame-level overlap detector runs: it finds interruptions the windows miss, so the bands
#: that absorb late detection can be narrower (0.3 s with it: 2-5 points more retention than
#: 0.5 s without it, at about the same leakage; docs/mono-isolation.md).
DEFAULT_BANDS: Final[Mapping[bool, tuple[float, float]]] = {False: (0.5, 0.5), True: (0.3, 0.3)}

#: ``frame_model`` value: full-covariance Gaussians on stacked cepstra (step 5 of the module
#: docstring), a Viterbi path and guard bands: the privacy operating point (the default).
GAUSSIAN: Final = "gaussian"
#: ``frame_model`` value: a per-call classifier of customer audibility trained on synthetic
#: mixtures of the call's own voices (:mod:`voicepriv.backends.audibility`), hysteresis and
#: narrow guard bands: more of the agent kept, more customer leakage (measured in
#: ``docs/mono-isolation.md``).
MIXTURES: Final = "mixtures"
#: The frame models the ``frame_model`` option accepts.
FRAME_MODELS: Final = (GAUSSIAN, MIXTURES)

#: Speech probability threshold per VAD backend when ``vad_threshold`` is not given.
#: silero 0.2: chosen with the benchmark (0.3 left a word onset out often enough that an
#: 8 kHz call's two clusters came out wrong once, leaking 47 % of its customer speech).
DEFAULT_VAD_THRESHOLDS: Final[Mapping[str, float]] = {"energy": 0.3, "silero": 0.2}

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_FRAME_S: Final = FRAME_S
#: The ``"mixtures"`` classifier learns a voice from frames at least this far (s) from any
#: window of the other voice.
_TRAINING_DISTANCE_S: Final = 0.5
#: Frame offsets stacked into one feature vector of the frame-level agent model.
_CONTEXT_FRAMES: Final = (-4, -2, 0, 2, 4)


_positive = number_option("speaker separator", "a positive number", lambda v: v > 0)

_nonnegative = number_option("speaker separator", "a number >= 0", lambda v: v >= 0)

_optional_score = number_option(
    "speaker separator", "a cosine in [-1, 1]", lambda v: -1 <= v <= 1, optional=True
)

_optional_nonnegative = number_option(
    "speaker separator", "a number >= 0", lambda v: v >= 0, optional=True
)

_nonpositive = number_option("speaker separator", "a number <= 0 (dB)", lambda v: v <= 0)

_unit = number_option("speaker separator", "a number in [0, 1]", lambda v: 0 <= v <= 1)

_optional_unit = number_option(
    "speaker separator", "a number in [0, 1]", lambda v: 0 <= v <= 1, optional=True
)


def _name(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: expected a backend name, got {value!r}"
        )


def _detector_name(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    known = (AUTO_OVERLAP, WHISPER_OVERLAP, SEGMENTATION_OVERLAP, NO_OVERLAP_DETECTOR)
    if value not in known:
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: unknown overlap detector {value!r}; "
            f"expected one of {', '.join(map(repr, known))}"
        )


def _separator_name(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    known = (NO_SEPARATION, SEPFORMER)
    if value not in known:
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: unknown overlap separator {value!r}; "
            f"expected one of {', '.join(map(repr, known))}"
        )


def _count(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: expected an int >= 1, got {value!r}"
        )


def _flag(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: expected true or false, got {value!r}"
        )


def _frame_model(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in FRAME_MODELS:
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: unknown frame model {value!r}; "
            f"expected one of {', '.join(map(repr, FRAME_MODELS))}"
        )


def _mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"speaker separator option {attribute.name!r}: expected a mapping, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class SpeakerOptions:
    """Settings of the ``"speaker"`` separator; the defaults are the privacy operating point.

    :param window_s: window length for the agent / customer decision (an average of
        consecutive short windows).
    :param short_window_s: embedding window length; overlap is detected at this resolution.
    :param hop_s: embedding window step.
    :param margin: cosine lead of the agent model over the customer model a window needs.
    :param min_score: cosine floor against the enrolled voiceprint; ``None`` takes
        :data:`DEFAULT_MIN_SCORES` for the voiceprint's embedder.
    :param min_cluster_score: cosine floor of the call's agent cluster centroid against the
        enrolled voiceprint; below it the agent is not in the call and nothing is kept.
        ``None`` takes :data:`DEFAULT_MIN_CLUSTER_SCORES`.
    :param min_cluster_lead: the agent cluster must score this much higher against the
        voiceprint than the other cluster; otherwise which voice is the agent's is not known
        and nothing is kept.
    :param max_other_score: the other cluster's centroid must score below this against the
        enrolled voiceprint; a second voice that sounds like the enrolled agent means which
        voice is the agent's is not known, and nothing is kept. ``None`` takes
        :data:`DEFAULT_MAX_OTHER_SCORES`, or for embedders not listed there their
        ``min_cluster_score`` (the floor the agent's own cluster must reach).
    :param min_other_share: the windows modelled as the customer must be at least this share
        of the call's speech windows, otherwise the customer was not found (the second
        cluster is an outlier of the agent's voice and the customer sits in the agent's
        cluster) and nothing is kept. A call where only the agent speaks is
        indistinguishable from that and keeps nothing either.
    :param max_cluster_similarity: the call's two cluster centroids must be less alike than
        this (cosine), otherwise they are not two voices that can be told apart and nothing
        is kept; ``None`` takes :data:`DEFAULT_MAX_CLUSTER_SIMILARITY` (1.0 for embedders not
        listed there).
    :param same_speaker: two halves of the agent cluster whose centroids are less similar
        than this hold two voices; ``None`` takes :data:`DEFAULT_SAME_SPEAKER`.
    :param overlap_quantile: a short window is overlap when its customer score exceeds this
        quantile of the agent windows' customer scores (capped at the customer windows'
        median; 1.0 = the cap alone).
    :param overlap_lead: a short window is overlap only when the agent model does not lead
        its customer score by this much (``None``: no such check). Agent-alone windows of a
        voice close to the customer's otherwise pass the customer threshold and were taken
        for overlap; real overlap rarely lets the agent lead.
    :param llr_threshold: smoothed log-likelihood ratio a frame needs in the frame-level check.
    :param llr_frames: smoothing length (frames of 10 ms) of that ratio.
    :param frame_refine: run the frame-level model (check and resegmentation) at all.
    :param resegment: give every speech frame to the agent or the other party by a two-state
        Viterbi path over the frame log-likelihood ratios; frames given to the other party,
        and frames within ``turn_guard_s`` of them or of overlap, are removed.
    :param switch_penalty: cost (in summed log-likelihood ratio) of one change of party on
        that path: larger values ignore shorter dips of the ratio.
    :param frame_model: the frame-level stage: ``"gaussian"`` (default; the Gaussian frame
        model, Viterbi resegmentation, ``llr_threshold`` and the guard bands above) or
        ``"mixtures"`` (a per-call classifier of customer audibility trained on synthetic
        mixtures of the call's own voices, :mod:`voicepriv.backends.audibility`; the
        ``audibility_*`` options and ``agent_reach_s`` below). ``"mixtures"`` keeps more of
        the agent and leaks more of the customer (docs/mono-isolation.md).
    :param mixture_pieces: synthetic mixtures per call (``"mixtures"``).
    :param mixture_piece_s: length of each synthetic mixture (``"mixtures"``).
    :param audibility_smooth_s: moving-average length of the customer log-odds
        (``"mixtures"``).
    :param audibility_high: a run of frames is the customer when its smoothed log-odds reach
        this somewhere (``"mixtures"``) ...
    :param audibility_low: ... and the run extends while they stay above this.
    :param audibility_before_s: guard band before every customer frame (``"mixtures"``): a
        customer's quiet onset precedes what the classifier hears.
    :param audibility_after_s: guard band after every customer frame (``"mixtures"``).
    :param agent_reach_s: a kept frame must lie this close to speech the windows give to the
        agent (``"mixtures"``): a third voice or noise the classifier does not flag as the
        customer is not kept far from the agent's speech.
    :param turn_guard_s: no frame within this distance of speech the path gives to the other
        party, or of overlap, is kept; ``None`` takes :data:`DEFAULT_BANDS` (0.5 s without
        an overlap detector, 0.3 s with one).
    :param overlap_context_s: frames this close to overlap (a short window judged overlap, or
        a frame the overlap detector flags) are removed; ``None`` takes
        :data:`DEFAULT_BANDS` (0.5 s without a detector, 0.3 s with one).
    :param overlap_detector: frame-level overlapped-speech detector: ``"auto"`` (default:
        ``"whisper"`` when the ``whisper`` extra is installed, else none), ``"whisper"``
        (:class:`voicepriv.backends.overlap.WhisperOverlapDetector`), ``"segmentation"``
        (:class:`voicepriv.backends.pyannet.SegmentationOverlapDetector`: pyannote's network,
        core install; measured 3-8 points more retention than ``"whisper"`` and a worse
        worst call on two of three sets, docs/mono-isolation.md) or ``"none"``. Its flags
        only add overlap; with it the guard band and overlap context default to 0.3 s
        instead of 0.5 s (:data:`DEFAULT_BANDS`). Measured: on 30 s calls less leakage
        (worst call 7.8 -> 3.2 %) and 2-4 points more retention; on 60 s calls 2-5 points
        more retention at about the same leakage.
    :param overlap_detector_threshold: overlap probability (smoothed over
        ``overlap_detector_smooth_s``) from which a frame is overlap.
    :param overlap_detector_smooth_s: moving-average length of that probability.
    :param overlap_detector_options: options for the detector (whisper: ``model_dir``,
        ``threads``, ``probe``; segmentation: ``step_s``).
    :param context_s: a frame is kept only if every window centred this close is agent.
    :param guard_s: no frame within this distance of speech the windows judge customer or
        overlap is kept (0: off; the frame-level ``turn_guard_s`` places this band more
        precisely; 0.5 before 2026-11-24).
    :param guard_pause_s: the guard band and the overlap context do not reach across a
        pause (VAD silence) at least this long: a turn change after such a pause is not
        late-detected speech of the other party (0: they reach across everything).
    :param speech_pad_s: a kept frame must lie this close to speech the VAD heard (quiet
        word onsets and endings it misses, mostly at 8 kHz, are kept with their word).
    :param min_keep_s: kept spans shorter than this are dropped.
    :param min_gap_s: gaps shorter than this between kept spans are bridged, unless a frame
        in them is judged customer or overlap.
    :param bridge_speech: bridge gaps holding speech as well (frames a frame-level check
        removed without judging them customer or overlap; measured on 2026-12-07, campplus:
        +5 to +6 points of agent retention for +0.01 to +0.03 points of mean leakage);
        ``False`` bridges silence only.
    :param adapt: weight (0-1) of the in-call agent centroid blended into the voiceprint.
    :param vad: VAD backend name; ``vad_options`` are passed to it. ``"auto"`` (default) is
        ``"silero"`` when the ``onnx`` extra is installed, else ``"energy"``: the energy VAD
        takes hold music for speech, and a call whose second cluster is music hides the
        customer in the agent cluster (measured: up to 94 % of a call's customer speech kept).
    :param vad_threshold: speech probability threshold; ``None`` takes
        :data:`DEFAULT_VAD_THRESHOLDS` for the VAD in use (0.5 for others).
    :param embedder_options: options for the voiceprint's embedder backend.
    :param overlap_separator: ``"none"`` (default) or ``"sepformer"``: hand each overlapped
        span to a two-voice separator (:mod:`voicepriv.backends.sepformer`; SpeechBrain's
        SepFormer from ``overlap_separator_options={"source": DIR}``, extra ``speechbrain``)
        and keep its agent estimate where the rules of
        :class:`~voicepriv.backends.sepformer.RecoveryRules` all hold; else the span stays
        deleted. Off by default: the estimate's residual customer speech could not be
        measured here (no trained weights reachable).
    :param overlap_separator_options: options for that separator (sepformer: ``source``).
    :param separation_context_s: audio either side of a span given to the separator.
    :param separation_max_span_s: longer overlapped spans are not tried.
    :param separation_min_lead: score margin that puts a separated source with the agent
        (or the customer).
    :param separation_max_residual_db: the mixture energy the scaled sources may leave
        unexplained (dB relative to the mixture).
    """

    window_s: float = attrs.field(default=1.2, validator=_positive)
    hop_s: float = attrs.field(default=0.1, validator=_positive)
    margin: float = attrs.field(default=0.05, validator=_nonnegative)
    min_score: float | None = attrs.field(default=None, validator=_optional_score)
    min_cluster_score: float | None = attrs.field(default=None, validator=_optional_score)
    min_cluster_lead: float = attrs.field(default=0.1, validator=_nonnegative)
    same_speaker: float | None = attrs.field(default=None, validator=_optional_score)
    max_cluster_similarity: float | None = attrs.field(default=None, validator=_optional_score)
    max_other_score: float | None = attrs.field(default=None, validator=_optional_score)
    min_other_share: float = attrs.field(default=0.15, validator=_unit)
    short_window_s: float = attrs.field(default=0.8, validator=_positive)
    overlap_quantile: float = attrs.field(default=0.95, validator=_unit)
    overlap_lead: float | None = attrs.field(default=0.0, validator=_optional_score)
    overlap_context_s: float | None = attrs.field(default=None, validator=_optional_nonnegative)
    overlap_detector: str = attrs.field(default=AUTO_OVERLAP, validator=_detector_name)
    overlap_detector_threshold: float = attrs.field(default=0.6, validator=_unit)
    overlap_detector_smooth_s: float = attrs.field(default=0.2, validator=_nonnegative)
    overlap_detector_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_mapping)
    context_s: float = attrs.field(default=0.0, validator=_nonnegative)
    guard_s: float = attrs.field(default=0.0, validator=_nonnegative)
    guard_pause_s: float = attrs.field(default=0.5, validator=_nonnegative)
    speech_pad_s: float = attrs.field(default=0.2, validator=_nonnegative)
    min_keep_s: float = attrs.field(default=0.5, validator=_nonnegative)
    min_gap_s: float = attrs.field(default=0.3, validator=_nonnegative)
    bridge_speech: bool = attrs.field(default=True, validator=_flag)
    adapt: float = attrs.field(default=0.5, validator=_unit)
    frame_refine: bool = attrs.field(default=True, validator=_flag)
    llr_threshold: float = 2.0
    llr_frames: int = 25
    resegment: bool = attrs.field(default=True, validator=_flag)
    switch_penalty: float = attrs.field(default=50.0, validator=_nonnegative)
    frame_model: str = attrs.field(default=GAUSSIAN, validator=_frame_model)
    mixture_pieces: int = attrs.field(default=30, validator=_count)
    mixture_piece_s: float = attrs.field(default=2.0, validator=_positive)
    audibility_smooth_s: float = attrs.field(default=0.2, validator=_nonnegative)
    audibility_high: float = 2.0
    audibility_low: float = -3.0
    audibility_before_s: float = attrs.field(default=0.3, validator=_nonnegative)
    audibility_after_s: float = attrs.field(default=0.2, validator=_nonnegative)
    agent_reach_s: float = attrs.field(default=1.0, validator=_nonnegative)
    turn_guard_s: float | None = attrs.field(default=None, validator=_optional_nonnegative)
    vad: str = attrs.field(default=AUTO_VAD, validator=_name)
    vad_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_mapping)
    vad_threshold: float | None = attrs.field(default=None, validator=_optional_unit)
    embedder_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_mapping)
    overlap_separator: str = attrs.field(default=NO_SEPARATION, validator=_separator_name)
    overlap_separator_options: Mapping[str, Any] = attrs.field(factory=dict, validator=_mapping)
    separation_context_s: float = attrs.field(default=0.5, validator=_nonnegative)
    separation_max_span_s: float = attrs.field(default=4.0, validator=_positive)
    separation_min_lead: float = attrs.field(default=0.1, validator=_nonnegative)
    separation_max_residual_db: float = attrs.field(default=-10.0, validator=_nonpositive)

    def recovery_rules(self) -> RecoveryRules:
        """The ``separation_*`` options as :class:`~voicepriv.backends.sepformer.RecoveryRules`."""
        return RecoveryRules(
            context_s=self.separation_context_s,
            max_span_s=self.separation_max_span_s,
            min_lead=self.separation_min_lead,
            max_residual_db=float(self.separation_max_residual_db),
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SpeakerOptions:
        """Build from plugin options; unknown names raise :class:`ConfigError` (all at once)."""
        check_options("speaker separator", options, {field.name for field in attrs.fields(cls)})
        return cls(**dict(options))


def voiceprint_embedder(
    voiceprint: Voiceprint,
    given: Embedder | None,
    options: Mapping[str, Any],
    who: str,
    manager: pluggy.PluginManager | None = None,
) -> Embedder:
    """The embedder that made *voiceprint*: *given* when it is that one, else looked up by name.

    :param who: the separator's name, for messages.
    :param manager: where to look it up (the request's plugin manager; default a fresh one).
    :raises IsolationError: *given* is another embedder, or the plugin's answer is none.
    """
    if given is not None:
        if given.name != voiceprint.embedder:
            raise IsolationError(
                f"{who} separator: the voiceprint of agent {voiceprint.agent_id!r} was made "
                f"by embedder {voiceprint.embedder!r}, not {given.name!r}"
            )
        return given
    found = backend(manager or get_plugin_manager(), "embedder", voiceprint.embedder, options)
    if not isinstance(found, Embedder):
        raise IsolationError(f"embedder {voiceprint.embedder!r} is not an Embedder")
    return found


def _nearest(
    times: npt.NDArray[np.floating[Any]], centres: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.int64]:
    """Index of the centre nearest to each time (*centres* sorted, not empty)."""
    after = np.clip(np.searchsorted(centres, times), 0, centres.size - 1)
    before = np.clip(after - 1, 0, centres.size - 1)
    closer = np.abs(centres[before] - times) < np.abs(centres[after] - times)
    result: npt.NDArray[np.int64] = np.where(closer, before, after)
    return result


def _two_means(rows: FloatArray, scores: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Cosine 2-means of *rows*, seeded by the lowest- and highest-*scores* row."""
    centres = rows[[int(np.argmin(scores)), int(np.argmax(scores))]]
    assign = np.zeros(rows.shape[0], np.int64)
    for _ in range(10):
        assign = np.argmax(rows @ centres.T, axis=1)
        if (assign == 0).all() or (assign == 1).all():
            break
        centres = np.stack([centroid(rows[assign == k]) for k in (0, 1)])
    return centres, assign


def _two_state_path(llr: FloatArray, penalty: float) -> BoolArray:
    """Viterbi path of a two-state chain (agent / other): True where the agent state wins.

    The agent state earns *llr* per frame, the other state 0; each switch costs *penalty*.
    """
    n = llr.size
    from_switch = np.zeros((n, 2), bool)
    agent, other = 0.0, 0.0
    values = llr.tolist()
    for t in range(n):
        stay_a, switch_a = agent, other - penalty
        stay_o, switch_o = other, agent - penalty
        from_switch[t, 1] = switch_a > stay_a
        from_switch[t, 0] = switch_o > stay_o
        agent = max(stay_a, switch_a) + values[t]
        other = max(stay_o, switch_o)
    path = np.zeros(n, bool)
    state = 1 if agent >= other else 0
    for t in range(n - 1, -1, -1):
        path[t] = state == 1
        if from_switch[t, state]:
            state = 1 - state
    return path


def _sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))
    return result


def frame_bands(audio: Audio, frames: int) -> FloatArray:
    """Log mel band powers (20 bands, 100-3800 Hz, 25 ms frames) every 10 ms, at 8 kHz."""
    from voicepriv.backends.embedders import mel_filterbank

    narrow = audio.resampled(8000) if audio.sample_rate != 8000 else audio
    samples = narrow.samples[:, 0]
    hop, win = 80, 200
    padded = np.zeros(frames * hop + win, np.float32)
    padded[: min(samples.size, padded.size)] = samples[: padded.size]
    chunks = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:frames]
    power = np.abs(np.fft.rfft(chunks * np.hamming(win), n=256, axis=1)) ** 2
    bands: FloatArray = np.log(power @ mel_filterbank(8000, 256, 20, 100.0, 3800.0).T + 1e-10)
    return bands


def _cepstra(bands: FloatArray) -> FloatArray:
    k = np.arange(bands.shape[1])
    dct = np.cos(np.pi / k.size * (k[np.newaxis, :] + 0.5) * k[:, np.newaxis])[1:16]
    result: FloatArray = bands @ dct.T
    return result


def _agent_llr(bands: FloatArray, agent: BoolArray, customer: BoolArray) -> FloatArray:
    """Per-frame log-likelihood ratio: agent alone vs. customer alone or both at once.

    Two full-covariance Gaussians on cepstra. The "not agent alone" class holds the call's
    customer frames plus synthetic overlap frames: random agent and customer frames mixed in
    the power domain at -12..+6 dB (fixed seed), so that a backchannel under the agent's
    speech looks like what it is.
    """
    rng = np.random.default_rng(0)
    offsets = np.array(_CONTEXT_FRAMES)
    frames = bands.shape[0]
    cepstra = _cepstra(bands)
    cepstra -= cepstra.mean(axis=0)

    def stack(values: FloatArray, at: npt.NDArray[np.int64]) -> FloatArray:
        index = np.clip(at[:, np.newaxis] + offsets[np.newaxis, :], 0, frames - 1)
        result: FloatArray = values[index].reshape(at.size, -1)
        return result

    agent_at = np.flatnonzero(agent)
    customer_at = np.flatnonzero(customer)
    count = min(agent_at.size, customer_at.size, 4000)
    pick_a = agent_at[rng.integers(0, agent_at.size, count)]
    pick_c = customer_at[rng.integers(0, customer_at.size, count)]
    gain = rng.uniform(-12.0, 6.0, (count, 1, 1)) * np.log(10.0) / 10.0
    index_a = np.clip(pick_a[:, np.newaxis] + offsets, 0, frames - 1)
    index_c = np.clip(pick_c[:, np.newaxis] + offsets, 0, frames - 1)
    mixed = np.logaddexp(bands[index_a], bands[index_c] + gain)  # (count, context, bands)
    mixed_cepstra = _cepstra(mixed.reshape(-1, bands.shape[1])) - _cepstra(bands).mean(axis=0)
    features = stack(cepstra, np.arange(frames))
    return _gaussian_llr(
        features,
        features[agent],
        np.concatenate([features[customer], mixed_cepstra.reshape(count, -1)]),
    )


def _gaussian_llr(features: FloatArray, first: FloatArray, second: FloatArray) -> FloatArray:
    """Log-likelihood ratio per frame of two full-covariance Gaussians fit on two samples."""
    out = np.zeros(features.shape[0])
    for sign, data in ((1.0, first), (-1.0, second)):
        mean = data.mean(axis=0)
        cov = np.cov(data, rowvar=False) + 1e-3 * np.eye(features.shape[1])
        inverse = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        centred = features - mean
        out += sign * -0.5 * (np.einsum("ij,jk,ik->i", centred, inverse, centred) + logdet)
    return out


@attrs.frozen(kw_only=True)
class _Scores:
    """Per-window scores of one call."""

    centres: FloatArray
    enrolled: FloatArray
    agent: FloatArray
    customer: FloatArray
    speech: FloatArray
    short_centres: FloatArray
    short_overlap: BoolArray
    cluster_score: float
    customer_found: bool
    agent_found: bool = False
    agent_model: FloatArray | None = None
    customer_models: tuple[FloatArray, ...] = ()


class SpeakerSeparator:
    """Keeps only the frames that are confidently the enrolled agent and not overlapped.

    :param options: see :class:`SpeakerOptions`.
    :param embedder: use this embedder instead of looking the voiceprint's up by name.
    :param vad: use this detector instead of looking ``options.vad`` up by name.
    """

    def __init__(
        self,
        options: SpeakerOptions | None = None,
        *,
        embedder: Embedder | None = None,
        vad: VoiceActivityDetector | None = None,
        overlap_detector: VoiceActivityDetector | None = None,
        source_separator: SourceSeparator | None = None,
    ) -> None:
        """*embedder*, *vad*, *overlap_detector* and *source_separator* replace the backends
        the options name.

        *overlap_detector* has the shape of a VAD, but its ``detect`` returns the
        probability of overlapped speech per frame.
        """
        self.options = options or SpeakerOptions()
        self._embedder = embedder
        self._vad = vad
        self._overlap: list[VoiceActivityDetector | None] = (
            [overlap_detector] if overlap_detector is not None else []
        )
        self._sources: list[SourceSeparator | None] = (
            [source_separator] if source_separator is not None else []
        )
        # The plugin manager of the last request that named one (IsolationRequest.plugins).
        self._plugins: pluggy.PluginManager | None = None

    @property
    def name(self) -> str:
        """``"speaker"``."""
        return NAME

    # ------------------------------------------------------------------ backends

    def _embedder_for(self, voiceprint: Voiceprint) -> Embedder:
        self._embedder = voiceprint_embedder(
            voiceprint, self._embedder, self.options.embedder_options, NAME, self._plugins
        )
        return self._embedder

    def _vad_backend(self) -> VoiceActivityDetector:
        if self._vad is None:
            name = self.options.vad
            found: object = None
            manager = self._plugins or get_plugin_manager()
            if name == AUTO_VAD:
                try:
                    found = backend(manager, "vad", "silero", self.options.vad_options)
                except (MissingExtraError, ConfigError):
                    found = backend(manager, "vad", "energy", self.options.vad_options)
            else:
                found = backend(manager, "vad", name, self.options.vad_options)
            if not isinstance(found, VoiceActivityDetector):
                raise IsolationError(f"vad {name!r} is not a VoiceActivityDetector")
            self._vad = found
        return self._vad

    def _overlap_backend(self) -> VoiceActivityDetector | None:
        if not self._overlap:
            name = self.options.overlap_detector
            if name == AUTO_OVERLAP:
                name = WHISPER_OVERLAP if whisper_overlap_available() else NO_OVERLAP_DETECTOR
            if name == NO_OVERLAP_DETECTOR:
                self._overlap.append(None)
            elif name == SEGMENTATION_OVERLAP:
                detector_options = dict(self.options.overlap_detector_options)
                check_options("segmentation overlap detector", detector_options, {"step_s"})
                self._overlap.append(SegmentationOverlapDetector(**detector_options))
            else:  # WHISPER_OVERLAP (the option's validator admits nothing else)
                self._overlap.append(
                    WhisperOverlapDetector.from_options(self.options.overlap_detector_options)
                )
        return self._overlap[0]

    def _source_separator(self) -> SourceSeparator | None:
        if not self._sources:
            self._sources.append(
                build_source_separator(
                    self.options.overlap_separator, self.options.overlap_separator_options
                )
            )
        return self._sources[0]

    def recover(
        self,
        audio: Audio,
        labels: npt.NDArray[Any],
        scores: _Scores,
        voiceprint: Voiceprint,
        embedder: Embedder,
    ) -> tuple[npt.NDArray[Any], Audio | None, list[SpanVerdict]]:
        """Overlapped spans the source separator lets keep (``overlap_separator``).

        Nothing is tried when no separator is configured, when the call's agent or customer
        was not found, or when no frame is labelled ``"overlap"``.
        """
        separator = self._source_separator()
        if (
            separator is None
            or not scores.agent_found
            or scores.agent_model is None
            or not scores.customer_models
            or not (labels == "overlap").any()
        ):
            return labels, None, []
        reference = np.asarray(voiceprint.vector, np.float64).ravel()
        voices = CallVoices(
            agent=scores.agent_model,
            customers=scores.customer_models,
            voiceprint=reference / max(float(np.linalg.norm(reference)), 1e-12),
            min_score=self._min_score(voiceprint),
        )
        return recover_overlaps(
            audio, labels, separator, embedder, voices, self.options.recovery_rules()
        )

    def bands(self, detector: bool) -> tuple[float, float]:
        """``(turn_guard_s, overlap_context_s)`` in effect, with or without an overlap detector."""
        guard, context = DEFAULT_BANDS[detector]
        if self.options.turn_guard_s is not None:
            guard = float(self.options.turn_guard_s)
        if self.options.overlap_context_s is not None:
            context = float(self.options.overlap_context_s)
        return guard, context

    def detected_overlap(self, audio: Audio, frames: int) -> BoolArray | None:
        """Frames (10 ms grid) the overlap detector flags, or ``None`` when none runs."""
        detector = self._overlap_backend()
        if detector is None:
            return None
        activity = detector.detect(audio)
        probabilities = np.asarray(activity.probabilities, np.float64)
        if probabilities.size == 0:
            return np.zeros(frames, bool)
        times = (np.arange(frames) + 0.5) * _FRAME_S
        index = np.minimum((times / activity.hop_s).astype(np.int64), probabilities.size - 1)
        size = max(1, round(self.options.overlap_detector_smooth_s / _FRAME_S))
        smooth = scipy.ndimage.uniform_filter1d(probabilities[index], size, mode="nearest")
        flagged: BoolArray = smooth >= self.options.overlap_detector_threshold
        return flagged

    def _vad_threshold(self) -> float:
        if self.options.vad_threshold is not None:
            return float(self.options.vad_threshold)
        return DEFAULT_VAD_THRESHOLDS.get(self._vad_backend().name, 0.5)

    def _min_cluster_score(self, voiceprint: Voiceprint) -> float:
        if self.options.min_cluster_score is not None:
            return float(self.options.min_cluster_score)
        try:
            return DEFAULT_MIN_CLUSTER_SCORES[voiceprint.embedder]
        except KeyError:
            raise ConfigError(
                f"speaker separator: no default min_cluster_score for embedder "
                f"{voiceprint.embedder!r}; give the option min_cluster_score"
            ) from None

    def _max_cluster_similarity(self, voiceprint: Voiceprint) -> float:
        if self.options.max_cluster_similarity is not None:
            return float(self.options.max_cluster_similarity)
        return DEFAULT_MAX_CLUSTER_SIMILARITY.get(voiceprint.embedder, 1.0)

    def _max_other_score(self, voiceprint: Voiceprint) -> float:
        if self.options.max_other_score is not None:
            return float(self.options.max_other_score)
        if voiceprint.embedder in DEFAULT_MAX_OTHER_SCORES:
            return DEFAULT_MAX_OTHER_SCORES[voiceprint.embedder]
        return self._min_cluster_score(voiceprint)

    def _same_speaker(self, voiceprint: Voiceprint) -> float:
        if self.options.same_speaker is not None:
            return float(self.options.same_speaker)
        return DEFAULT_SAME_SPEAKER.get(voiceprint.embedder, 0.0)

    def _min_score(self, voiceprint: Voiceprint) -> float:
        if self.options.min_score is not None:
            return float(self.options.min_score)
        try:
            return DEFAULT_MIN_SCORES[voiceprint.embedder]
        except KeyError:
            raise ConfigError(
                f"speaker separator: no default min_score for embedder {voiceprint.embedder!r}; "
                "give the option min_score"
            ) from None

    # ------------------------------------------------------------------ stages

    def speech_frames(self, audio: Audio, frames: int) -> FloatArray:
        """Speech probability on the 10 ms grid (*frames* values)."""
        activity = self._vad_backend().detect(audio)
        probabilities = np.asarray(activity.probabilities, np.float64)
        if probabilities.size == 0:
            return np.zeros(frames)
        times = (np.arange(frames) + 0.5) * _FRAME_S
        index = np.minimum((times / activity.hop_s).astype(np.int64), probabilities.size - 1)
        result: FloatArray = probabilities[index]
        return result

    def score_windows(
        self, audio: Audio, voiceprint: Voiceprint, speech: BoolArray, embedder: Embedder
    ) -> _Scores:
        """Embed windows, build the in-call agent and customer models, score every window."""
        opts = self.options
        short_window = min(opts.short_window_s, opts.window_s)
        centres32, matrix32 = embedder.embed_windows(audio, window_s=short_window, hop_s=opts.hop_s)
        short_centres = np.asarray(centres32, np.float64)
        short = np.asarray(matrix32, np.float64)
        # long windows: the mean of consecutive short windows (normalised)
        span = max(1, min(round((opts.window_s - short_window) / opts.hop_s) + 1, len(short)))
        kernel = np.ones(span) / span
        if len(short):
            matrix = (
                np.stack(
                    [np.convolve(short[:, j], kernel, mode="valid") for j in range(short.shape[1])],
                    axis=1,
                )
                if span > 1
                else short
            )
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
            centres = np.convolve(short_centres, kernel, mode="valid")
        else:
            matrix, centres = short, short_centres
        reference = np.asarray(voiceprint.vector, np.float64).ravel()
        if matrix.ndim != 2 or matrix.shape[1] != reference.size:
            raise IsolationError(
                f"speaker separator: embedder {embedder.name!r} gives {matrix.shape[-1]}-dim "
                f"windows, but the voiceprint of agent {voiceprint.agent_id!r} has "
                f"{reference.size} dims"
            )
        norm = float(np.linalg.norm(reference))
        if norm == 0.0:
            raise IsolationError(
                f"speaker separator: voiceprint of agent {voiceprint.agent_id!r} is all zeros"
            )
        reference = reference / norm
        # speech fraction of each window
        half = opts.window_s / 2.0
        cumulative = np.concatenate([[0.0], np.cumsum(speech.astype(np.float64))])
        lo = np.clip(np.round((centres - half) / _FRAME_S).astype(np.int64), 0, speech.size)
        hi = np.clip(np.round((centres + half) / _FRAME_S).astype(np.int64), 0, speech.size)
        fraction = (cumulative[hi] - cumulative[lo]) / np.maximum(hi - lo, 1)
        enrolled = matrix @ reference
        active = fraction >= 0.5
        min_score = self._min_score(voiceprint)
        agent_model = reference
        customer_model = np.zeros_like(reference)
        customer_found = False
        agent_found = False
        cluster_score = -1.0
        extra_customer: FloatArray | None = None
        if active.sum() >= 4:
            # two clusters of the call's speech windows, seeded by the lowest- and the
            # highest-scoring window against the voiceprint (cosine k-means)
            rows = matrix[active]
            centres2, assign = _two_means(rows, enrolled[active])
            sizes = np.bincount(assign, minlength=2)
            lead = np.inf
            other_rows = 0  # windows given to the customer model
            if sizes.min() >= 2:
                cluster_scores = centres2 @ reference
                agent_k = int(np.argmax(cluster_scores))
                agent_model = centres2[agent_k]
                customer_model = centres2[1 - agent_k]
                customer_found = True
                lead = float(cluster_scores[agent_k] - cluster_scores[1 - agent_k])
                if float(centres2[0] @ centres2[1]) > self._max_cluster_similarity(voiceprint):
                    lead = -np.inf  # not two voices that can be told apart
                if float(cluster_scores[1 - agent_k]) >= self._max_other_score(voiceprint):
                    lead = -np.inf  # the other voice sounds like the enrolled agent too
                # two voices in the agent cluster (e.g. the other cluster is hold music):
                # split it again and treat the part farther from the voiceprint as customer,
                # unless that part is itself as close to the voiceprint as an agent cluster
                # must be (then the halves are the agent's own variety, not a second voice)
                inside = rows[assign == agent_k]
                if inside.shape[0] >= 8:
                    halves, parts = _two_means(inside, inside @ reference)
                    half_scores = halves @ reference
                    if (
                        np.bincount(parts, minlength=2).min() >= 2
                        and float(halves[0] @ halves[1]) < self._same_speaker(voiceprint)
                        and float(half_scores.min()) < self._min_cluster_score(voiceprint)
                    ):
                        best = int(np.argmax(half_scores))
                        agent_model = halves[best]
                        extra_customer = halves[1 - best]
                        lead = min(lead, float(half_scores[best] - half_scores[1 - best]))
                        other_rows += int((parts != best).sum())
                other_rows += int(sizes[1 - agent_k])
            else:
                agent_model = centroid(rows)
            if other_rows < opts.min_other_share * rows.shape[0]:
                lead = -np.inf  # no second voice of any weight: the customer was not found
            cluster_score = float(agent_model @ reference)
            # both voices close to the voiceprint: which one is the agent is not known
            agent_found = (
                cluster_score >= self._min_cluster_score(voiceprint)
                and lead >= opts.min_cluster_lead
            )
            blended = (1 - opts.adapt) * reference + opts.adapt * agent_model
            agent_model = blended / max(float(np.linalg.norm(blended)), 1e-12)
        to_agent = matrix @ agent_model
        to_customer = matrix @ customer_model if customer_found else np.full(len(matrix), -1.0)
        if extra_customer is not None:
            to_customer = np.maximum(to_customer, matrix @ extra_customer)
        if not agent_found:
            enrolled = np.minimum(enrolled, min_score - 1.0)  # nothing can pass the floor
        short_overlap = np.zeros(len(short), bool)
        if customer_found and len(short):
            short_customer = short @ customer_model
            if extra_customer is not None:
                short_customer = np.maximum(short_customer, short @ extra_customer)
            nearest = np.clip(np.searchsorted(centres, short_centres), 0, len(centres) - 1)
            long_agent = (enrolled >= min_score) & (to_agent - to_customer >= opts.margin)
            long_customer = active & (to_customer > to_agent)
            agent_rows = long_agent[nearest]
            customer_rows = long_customer[nearest]
            if agent_rows.any() and customer_rows.any():
                low = float(np.quantile(short_customer[agent_rows], opts.overlap_quantile))
                high = float(np.median(short_customer[customer_rows]))
                threshold = min(low, high)
                short_overlap = short_customer >= threshold
                if opts.overlap_lead is not None:
                    # a window the agent model clearly leads is the agent's alone
                    short_overlap &= short @ agent_model - short_customer < opts.overlap_lead
        return _Scores(
            centres=centres,
            enrolled=enrolled,
            agent=to_agent,
            customer=to_customer,
            speech=fraction,
            short_centres=short_centres,
            short_overlap=short_overlap,
            cluster_score=cluster_score,
            customer_found=customer_found,
            agent_found=agent_found,
            agent_model=agent_model,
            customer_models=tuple(
                m for m in (customer_model, extra_customer) if m is not None and customer_found
            ),
        )

    def decide(
        self,
        scores: _Scores,
        speech: BoolArray,
        voiceprint: Voiceprint,
        features: FloatArray | None = None,
        detected: BoolArray | None = None,
        customer_odds: FloatArray | None = None,
    ) -> npt.NDArray[Any]:
        """Frame labels on the 10 ms grid: ``"agent"``, ``"customer"``, ``"overlap"`` ...

        *features* are :func:`frame_bands` for the ``"gaussian"`` frame model (``None``: no
        frame-level check); *customer_odds* are :meth:`customer_odds` for ``"mixtures"``
        (``None`` there: nothing is kept). *detected* holds the frames a frame-level overlap
        detector flags (``None``: no detector ran; the guard bands then take their wider
        defaults).
        """
        opts = self.options
        turn_guard_s, overlap_context_s = self.bands(detected is not None)
        frames = speech.size
        if scores.centres.size == 0:
            return np.full(frames, "uncertain", dtype=object)
        agent, customer, overlap = self.window_frames(scores, speech, voiceprint)
        if opts.frame_model == MIXTURES:
            return self._decide_mixtures(speech, agent, customer, overlap, customer_odds, detected)
        runs = speech_runs(speech, opts.guard_pause_s)
        if detected is not None:
            flagged = np.zeros(frames, bool)
            flagged[: min(frames, detected.size)] = detected[:frames]
            overlap = overlap | (flagged & speech)
        overlap = dilate_within(overlap, round(overlap_context_s / _FRAME_S), runs)
        near_speech = scipy.ndimage.maximum_filter1d(
            speech.astype(np.uint8), size=2 * round(opts.speech_pad_s / _FRAME_S) + 1
        ).astype(bool)
        keep = agent & ~overlap & near_speech
        # guard band: no kept frame within guard_s of speech judged customer or overlap
        guard = round(opts.guard_s / _FRAME_S)
        if guard > 0:
            other = (customer | overlap) & speech
            keep &= ~dilate_within(other, guard, runs)
        if features is not None and opts.frame_refine:
            train_agent = keep & speech
            train_customer = (
                customer
                & speech
                & ~scipy.ndimage.maximum_filter1d(agent.astype(np.uint8), size=41).astype(bool)
            )
            if train_agent.sum() >= 200 and train_customer.sum() >= 200:
                llr = _agent_llr(features, train_agent, train_customer)
                if opts.resegment:
                    # frame-level turns: speech the two-state path gives to "other" is removed,
                    # and so is everything within turn_guard_s of it or of overlap
                    path = _two_state_path(np.where(speech, llr, 0.0), opts.switch_penalty)
                    other_frames = (~path | overlap) & speech
                    keep &= path | ~speech
                    keep &= ~dilate_within(other_frames, round(turn_guard_s / _FRAME_S), runs)
                smooth = scipy.ndimage.uniform_filter1d(llr, size=opts.llr_frames, mode="nearest")
                keep &= ~speech | (smooth >= opts.llr_threshold)
        return self._finish(keep, speech, customer, overlap)

    def window_frames(
        self, scores: _Scores, speech: BoolArray, voiceprint: Voiceprint
    ) -> tuple[BoolArray, BoolArray, BoolArray]:
        """The window decisions on the 10 ms grid: ``(agent, customer, overlap)`` frames.

        *agent*: the nearest long window is the agent's (and so is every window centred
        within ``context_s``); *customer*: the nearest long window scores nearer the
        customer model (speech only); *overlap*: the nearest short window is overlap.
        """
        opts = self.options
        frames = speech.size
        if scores.centres.size == 0:
            nothing = np.zeros(frames, bool)
            return nothing, nothing.copy(), nothing.copy()
        window_agent = (scores.enrolled >= self._min_score(voiceprint)) & (
            scores.agent - scores.customer >= opts.margin
        )
        window_customer = ~window_agent & (scores.customer > scores.agent)
        # windows -> frames: nearest window, then fail-closed pooling over +-context_s
        times = (np.arange(frames) + 0.5) * _FRAME_S
        index = _nearest(times, scores.centres)
        span = 2 * round(opts.context_s / _FRAME_S) + 1
        agent = scipy.ndimage.minimum_filter1d(
            window_agent[index].astype(np.uint8), size=span, mode="nearest"
        ).astype(bool)
        overlap = np.zeros(frames, bool)
        if scores.short_centres.size:
            overlap = scores.short_overlap[_nearest(times, scores.short_centres)]
        customer: BoolArray = window_customer[index] & speech
        return agent, customer, overlap

    def training_frames(
        self, agent: BoolArray, customer: BoolArray, overlap: BoolArray, speech: BoolArray
    ) -> tuple[BoolArray, BoolArray]:
        """Frames the ``"mixtures"`` classifier learns each voice from: ``(agent, customer)``.

        Speech the windows give to one voice, at least :data:`_TRAINING_DISTANCE_S` from
        any window of the other voice (and, for the agent, from overlap): where the 1.2 s
        windows are least likely to be wrong.
        """
        reach = 2 * round(_TRAINING_DISTANCE_S / _FRAME_S) + 1

        def near(mask: BoolArray) -> BoolArray:
            grown: BoolArray = scipy.ndimage.maximum_filter1d(
                mask.astype(np.uint8), size=reach
            ).astype(bool)
            return grown

        own_agent: BoolArray = agent & speech & ~near(customer | (overlap & speech))
        own_customer: BoolArray = customer & ~near(agent & speech)
        return own_agent, own_customer

    def customer_odds(
        self, audio: Audio, scores: _Scores, speech: BoolArray, voiceprint: Voiceprint
    ) -> FloatArray | None:
        """The ``"mixtures"`` classifier's customer log-odds per frame, or ``None`` when
        either voice has too little confident speech to learn from (nothing is then kept)."""
        agent, customer, overlap = self.window_frames(scores, speech, voiceprint)
        own_agent, own_customer = self.training_frames(agent, customer, overlap, speech)
        return customer_log_odds(
            audio,
            own_agent,
            own_customer,
            pieces=self.options.mixture_pieces,
            piece_s=self.options.mixture_piece_s,
        )

    def _decide_mixtures(
        self,
        speech: BoolArray,
        agent: BoolArray,
        customer: BoolArray,
        overlap: BoolArray,
        customer_odds: FloatArray | None,
        detected: BoolArray | None,
    ) -> npt.NDArray[Any]:
        """Keep frames near the agent's windows that no customer flag's band reaches."""
        opts = self.options
        frames = speech.size
        if customer_odds is None or not agent.any():
            return self._finish(np.zeros(frames, bool), speech, customer, overlap)
        heard: BoolArray = audible(
            customer_odds[:frames],
            smooth=2 * round(opts.audibility_smooth_s / 2 / _FRAME_S) + 1,
            high=opts.audibility_high,
            low=opts.audibility_low,
        )
        flagged = heard.copy()
        if detected is not None:
            flagged[: min(frames, detected.size)] |= detected[:frames] & speech[: detected.size]
        banned = spread(
            flagged,
            round(opts.audibility_before_s / _FRAME_S),
            round(opts.audibility_after_s / _FRAME_S),
        )
        reach = 2 * round(opts.agent_reach_s / _FRAME_S) + 1
        near_agent = scipy.ndimage.maximum_filter1d(
            (agent & speech).astype(np.uint8), size=reach
        ).astype(bool)
        keep = near_agent & ~banned
        customer = customer | (heard & ~agent)
        overlap = overlap | (flagged & agent)
        return self._finish(keep, speech, customer & ~keep, overlap & ~keep)

    def _finish(
        self, keep: BoolArray, speech: BoolArray, customer: BoolArray, overlap: BoolArray
    ) -> npt.NDArray[Any]:
        """Bridge short gaps (see ``bridge_speech``), drop short spans, label every frame."""
        opts = self.options
        frames = speech.size
        gap = round(opts.min_gap_s / _FRAME_S)
        bridged = keep.copy()
        for start, end, value in label_runs(keep):
            if (
                not value
                and start > 0
                and end < frames
                and end - start < gap
                and not (customer[start:end] | overlap[start:end]).any()
                and (opts.bridge_speech or not speech[start:end].any())
            ):
                bridged[start:end] = True
        kept = drop_short(bridged, round(opts.min_keep_s / _FRAME_S))
        labels = np.full(frames, "uncertain", dtype=object)
        labels[~speech] = "silence"
        labels[customer & speech] = "customer"
        labels[overlap & speech] = "overlap"
        labels[bridged & ~kept] = "short"
        labels[kept] = "agent"
        return labels

    # ------------------------------------------------------------------ entry point

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """Agent-only audio of a mono *audio* and the report.

        :raises IsolationError: no voiceprint, more than one channel, or a voiceprint that
            does not fit its embedder.
        """
        if request.plugins is not None:
            self._plugins = request.plugins
        voiceprint = request.voiceprint
        if voiceprint is None:
            raise IsolationError(
                "speaker separator: a mono call needs the agent's voiceprint (enroll the agent "
                "first); refusing to guess who the agent is"
            )
        if audio.channels != 1:
            raise IsolationError(
                f"speaker separator: expected a mono call, got {audio.channels} channels"
            )
        embedder = self._embedder_for(voiceprint)
        self._source_separator()  # a misconfigured separator fails before any work
        frames = int(np.ceil(audio.duration / _FRAME_S))
        probability = self.speech_frames(audio, frames)
        speech = probability >= self._vad_threshold()
        scores = self.score_windows(audio, voiceprint, speech, embedder)
        features = odds = None
        if self.options.frame_model == MIXTURES:
            odds = self.customer_odds(audio, scores, speech, voiceprint)
        elif self.options.frame_refine:
            features = frame_bands(audio, frames)
        detected = self.detected_overlap(audio, frames)
        labels = self.decide(scores, speech, voiceprint, features, detected, odds)
        labels, separated, verdicts = self.recover(audio, labels, scores, voiceprint, embedder)
        if request.progress is not None:
            request.progress(audio.duration, audio.duration)
        result = self._result(audio, labels, scores, speech, voiceprint)
        if separated is None:
            return result
        return _with_separated(result, labels, separated, verdicts)

    def _result(
        self,
        audio: Audio,
        labels: npt.NDArray[Any],
        scores: _Scores,
        speech: BoolArray,
        voiceprint: Voiceprint,
    ) -> IsolationResult:
        keep = labels == "agent"
        output = silence_outside(audio, keep)
        kept, removed = labelled_segments(labels, audio.duration, ("agent", KEPT_LABEL))
        # customer posterior per frame from the score difference (temperature 0.05 cosine)
        times = (np.arange(labels.size) + 0.5) * _FRAME_S
        if scores.centres.size:
            index = np.clip(np.searchsorted(scores.centres, times), 0, scores.centres.size - 1)
            posterior = _sigmoid((scores.customer[index] - scores.agent[index]) / 0.05)
        else:
            posterior = np.ones(labels.size)
        customer_mass = float((posterior * speech).sum())
        kept_mass = float((posterior * (speech & keep)).sum())
        residual = kept_mass / customer_mass if customer_mass > 0 else 0.0
        confidence = float(1.0 - posterior[keep & speech].max(initial=0.0)) if keep.any() else 1.0
        agent_s = float(keep.sum() * _FRAME_S)
        speech_s = float(speech.sum() * _FRAME_S)
        notes = [
            f"kept {agent_s:.1f} s of {speech_s:.1f} s of speech as agent {voiceprint.agent_id}"
        ]
        if not keep.any():
            notes.append("no span was confidently the enrolled agent; the output is silence")
        if not scores.customer_found:
            notes.append("no customer voice found in the call to contrast with")
        overlap_s = float((labels == "overlap").sum() * _FRAME_S)
        return IsolationResult(
            audio=output,
            kept=kept,
            removed=removed,
            residual_leakage=min(1.0, max(0.0, residual)),
            confidence=min(1.0, max(0.0, confidence)),
            agent_channel=None,
            notes=tuple(notes),
            metrics={
                "kept_s": agent_s,
                "speech_s": speech_s,
                "overlap_removed_s": overlap_s,
                "windows": float(scores.centres.size),
                "agent_cluster_score": scores.cluster_score,
            },
        )


def _with_separated(
    result: IsolationResult,
    labels: npt.NDArray[Any],
    separated: Audio,
    verdicts: Sequence[SpanVerdict],
) -> IsolationResult:
    """*result* with the separated agent estimates added inside their spans, and reported."""
    inside = labels == KEPT_LABEL
    patch = silence_outside(separated, inside)
    audio = Audio(
        samples=(result.audio.samples[:, 0] + patch.samples[:, 0]).astype(np.float32),
        sample_rate=result.audio.sample_rate,
    )
    counts = verdict_counts(verdicts)
    separated_s = float(inside.sum() * _FRAME_S)
    tried = ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
    notes = (
        *result.notes,
        f"overlapped spans tried with the source separator: {tried}; kept {separated_s:.1f} s "
        "of its agent estimate (not covered by the residual and confidence estimates)",
    )
    metrics = {
        **result.metrics,
        "separated_s": separated_s,
        "separation_spans": float(len(verdicts)),
        "separation_spans_kept": float(counts.get("kept", 0)),
    }
    return attrs.evolve(result, audio=audio, notes=notes, metrics=metrics)


# --------------------------------------------------------------------------- hooks


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["speaker"]`` for kind ``"separator"``, nothing otherwise."""
    return [NAME] if kind == "separator" else []


@hookimpl
def voicepriv_separator(name: str, options: Mapping[str, Any]) -> SpeakerSeparator | None:
    """The ``"speaker"`` separator with *options* (see :class:`SpeakerOptions`), else ``None``."""
    if name != NAME:
        return None
    return SpeakerSeparator(SpeakerOptions.from_mapping(options))
