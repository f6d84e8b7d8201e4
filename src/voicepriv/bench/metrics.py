"""Separation and isolation metrics.

Signal metrics (arrays in, float out, dB):

* :func:`si_sdr` – scale-invariant signal-to-distortion ratio (Le Roux et al., 2019);
  :func:`si_sdr_improvement` – SI-SDR of the estimate minus SI-SDR of the input mixture.
* :func:`sdr` – BSS Eval signal-to-distortion ratio with a 512-tap distortion filter
  (Vincent et al., 2006), single target: the same number as ``mir_eval.separation`` and
  ``fast_bss_eval.sdr`` for one source.

Segment metrics (``Segment`` sequences in, exact interval arithmetic, no frame rounding):

* :func:`der` – diarization error rate with an optimal (Hungarian) label mapping, a collar
  removed around reference boundaries and overlapped speech scored (or skipped), as in
  ``pyannote.metrics`` / NIST md-eval;
* :func:`jer` – Jaccard error rate (DIHARD II).

Agent-isolation metrics (:func:`isolation_scores`):

* **customer leakage** – seconds of customer-only speech the output still carries audibly
  (output frame level within ``threshold_db`` of the customer's average speech level), and the
  energy of the output over customer-only speech relative to the customer's clean energy;
* **agent retention** – share of agent-only speech frames the output keeps at a level within
  ``threshold_db`` of the agent's average speech level.

Where the agent went (:func:`retention_losses`): the agent-only speech a separator did not
keep, split by the reason it gave for each removed frame, and the part of it lying so close
to the customer's speech that a guard band of that width would remove it even with a perfect
detector.

Verification metric (:func:`equal_error_rate`): for speaker embedders, the rate at which a
threshold on same-speaker and different-speaker scores makes as many false rejections as
false acceptances.

Cost (:func:`measure`): wall time for the real-time factor and peak Python/numpy heap memory
(:mod:`tracemalloc`).
"""

from __future__ import annotations

import math
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import attrs
import numpy as np
import numpy.typing as npt
from scipy import linalg, optimize

from voicepriv.bench import rttm
from voicepriv.errors import BenchError
from voicepriv.model import Segment

__all__ = [
    "DEFAULT_THRESHOLD_DB",
    "Cost",
    "DiarizationScore",
    "IsolationScores",
    "RetentionLosses",
    "der",
    "equal_error_rate",
    "isolation_curve",
    "isolation_scores",
    "jer",
    "measure",
    "real_time_factor",
    "retention_losses",
    "sdr",
    "si_sdr",
    "si_sdr_improvement",
]

#: Default level (dB, relative to a party's average speech level) above which a frame of the
#: output counts as carrying that party's speech.
DEFAULT_THRESHOLD_DB: Final = -30.0

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_T = TypeVar("_T")
_EPS: Final = 1e-20


def _pair(estimate: npt.ArrayLike, reference: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    est = np.asarray(estimate, dtype=np.float64).reshape(-1)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if est.size != ref.size:
        raise BenchError(f"estimate has {est.size} samples but the reference has {ref.size}")
    if est.size == 0:
        raise BenchError("estimate and reference are empty")
    return est, ref


# --------------------------------------------------------------------------- signal metrics


def si_sdr(estimate: npt.ArrayLike, reference: npt.ArrayLike, *, zero_mean: bool = False) -> float:
    """Scale-invariant SDR in dB: ``10 log10(|a s|^2 / |a s - e|^2)`` with the optimal ``a``.

    :param zero_mean: subtract each signal's mean first (as asteroid does); the default
        matches ``fast_bss_eval.si_sdr``.
    A silent estimate scores ``-inf`` (nothing of the reference is there), never 0 dB.

    :raises BenchError: lengths differ, or the reference is silent.
    """
    est, ref = _pair(estimate, reference)
    if zero_mean:
        est, ref = est - est.mean(), ref - ref.mean()
    power = float(ref @ ref)
    if power <= _EPS:
        raise BenchError("si_sdr: the reference is silent")
    if float(est @ est) <= _EPS:
        return -math.inf
    target = (float(est @ ref) / power) * ref
    noise = est - target
    return float(10.0 * np.log10((target @ target + _EPS) / (noise @ noise + _EPS)))


def si_sdr_improvement(
    estimate: npt.ArrayLike,
    reference: npt.ArrayLike,
    mixture: npt.ArrayLike,
    *,
    zero_mean: bool = False,
) -> float:
    """SI-SDR of *estimate* minus SI-SDR of the unprocessed *mixture*, both against *reference*."""
    return si_sdr(estimate, reference, zero_mean=zero_mean) - si_sdr(
        mixture, reference, zero_mean=zero_mean
    )


def sdr(estimate: npt.ArrayLike, reference: npt.ArrayLike, *, filter_length: int = 512) -> float:
    """BSS Eval SDR in dB for one target: distortion allowed as a *filter_length*-tap filter.

    The estimate is projected (least squares) onto the reference and its delayed copies up to
    ``filter_length - 1`` samples; SDR is the projection's energy over the residual's. A
    silent estimate scores ``-inf``, never 0 dB.
    """
    est, ref = _pair(estimate, reference)
    if float(ref @ ref) <= _EPS:
        raise BenchError("sdr: the reference is silent")
    if float(est @ est) <= _EPS:
        return -math.inf
    if filter_length < 1:
        raise BenchError(f"sdr: filter_length must be positive, got {filter_length}")
    n_fft = 1 << int(np.ceil(np.log2(est.size + filter_length - 1)))
    ref_f = np.fft.rfft(ref, n_fft)
    est_f = np.fft.rfft(est, n_fft)
    autocorr = np.fft.irfft(np.abs(ref_f) ** 2, n_fft)[:filter_length]
    crosscorr = np.fft.irfft(np.conj(ref_f) * est_f, n_fft)[:filter_length]
    gram = linalg.toeplitz(autocorr)
    try:
        # a band-limited reference (8 kHz telephone speech) makes the Toeplitz system
        # near-singular: the projection is still defined, so take the least-squares one
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)
            coefficients = linalg.solve(gram, crosscorr, assume_a="pos")
    except (linalg.LinAlgError, linalg.LinAlgWarning):
        coefficients = linalg.lstsq(gram, crosscorr)[0]
    projected = float(coefficients @ crosscorr)
    residual = max(float(est @ est) - projected, _EPS)
    return float(10.0 * np.log10(max(projected, _EPS) / residual))


# --------------------------------------------------------------------------- diarization


@attrs.frozen(kw_only=True)
class DiarizationScore:
    """Components of the diarization error rate, in seconds.

    :param total: reference speech scored (overlapped speech counts once per speaker).
    :param missed: reference speech with too few hypothesis speakers.
    :param false_alarm: hypothesis speech beyond the reference speakers.
    :param confusion: speech attributed to the wrong (mapped) speaker.
    """

    total: float
    missed: float
    false_alarm: float
    confusion: float

    @property
    def rate(self) -> float:
        """``(missed + false_alarm + confusion) / total``; 0 when both are empty."""
        errors = self.missed + self.false_alarm + self.confusion
        if self.total <= 0:
            return 0.0 if errors <= 0 else float("inf")
        return errors / self.total


def _scored_intervals(
    reference: Sequence[Segment],
    hypothesis: Sequence[Segment],
    collar: float,
    skip_overlap: bool,
    uem: tuple[float, float] | None,
) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray, list[str], list[str]]:
    """Elementary intervals (start, duration), label activity matrices and the label lists."""
    ref = rttm.merge(reference)
    hyp = rttm.merge(hypothesis)
    if uem is None:
        times = [t for s in (*ref, *hyp) for t in (s.start, s.end)]
        uem = (min(times), max(times)) if times else (0.0, 0.0)
    if collar < 0:
        raise BenchError(f"collar must be non-negative, got {collar}")
    half = collar / 2.0
    edges = {uem[0], uem[1]}
    for s in (*ref, *hyp):
        edges.update((s.start, s.end))
    if collar > 0:
        for s in ref:
            edges.update((s.start - half, s.start + half, s.end - half, s.end + half))
    grid = np.array(sorted(edges))
    starts, ends = grid[:-1], grid[1:]
    middle = (starts + ends) / 2.0
    ref_labels = rttm.labels(ref)
    hyp_labels = rttm.labels(hyp)

    def matrix(segments: Sequence[Segment], names: list[str]) -> BoolArray:
        active = np.zeros((len(names), middle.size), dtype=bool)
        for s in segments:
            active[names.index(s.label)] |= (middle > s.start) & (middle < s.end)
        return active

    r = matrix(ref, ref_labels)
    h = matrix(hyp, hyp_labels)
    scored = (middle > uem[0]) & (middle < uem[1])
    if collar > 0:
        for s in ref:
            for t in (s.start, s.end):
                scored &= ~((middle > t - half) & (middle < t + half))
    if skip_overlap:
        scored &= r.sum(axis=0) < 2
    duration = (ends - starts) * scored
    return middle, duration, r, h, ref_labels, hyp_labels


def _mapping(r: BoolArray, h: BoolArray, duration: FloatArray) -> dict[int, int]:
    """Hungarian mapping hypothesis index -> reference index by co-occurrence (seconds)."""
    if r.shape[0] == 0 or h.shape[0] == 0:
        return {}
    cooccurrence = (r[:, None, :] & h[None, :, :]).astype(np.float64) @ duration
    rows, cols = optimize.linear_sum_assignment(-cooccurrence)
    return {int(c): int(r_) for r_, c in zip(rows, cols, strict=True) if cooccurrence[r_, c] > 1e-6}


def der(
    reference: Sequence[Segment],
    hypothesis: Sequence[Segment],
    *,
    collar: float = 0.0,
    skip_overlap: bool = False,
    uem: tuple[float, float] | None = None,
) -> DiarizationScore:
    """Diarization error rate components of *hypothesis* against *reference*.

    Labels are matched one-to-one by the Hungarian algorithm on co-occurrence time (a
    hypothesis label named like a reference label gets no special treatment). A speaker's
    segments that touch or overlap are merged first: on such raw annotations the result
    differs from ``pyannote.metrics``, which puts a collar on the boundary between two
    abutting segments of one speaker and counts a speaker's overlapping segments twice; on
    annotations without them (every one the bench makes) it is the same.

    :param collar: seconds removed around every reference boundary (half on each side), as
        ``pyannote.metrics`` and NIST md-eval (md-eval's ``-c 0.25`` is ``collar=0.5``).
    :param skip_overlap: do not score regions where the reference has two or more speakers.
    :param uem: the scored span ``(start, end)``; default: the extent of both annotations.
    """
    _, duration, r, h, _, _ = _scored_intervals(reference, hypothesis, collar, skip_overlap, uem)
    mapping = _mapping(r, h, duration)
    n_ref = r.sum(axis=0)
    n_hyp = h.sum(axis=0)
    correct = np.zeros(duration.size)
    for hyp_index, ref_index in mapping.items():
        correct += r[ref_index] & h[hyp_index]
    total = float(n_ref @ duration)
    missed = float(np.maximum(n_ref - n_hyp, 0) @ duration)
    false_alarm = float(np.maximum(n_hyp - n_ref, 0) @ duration)
    confusion = float((np.minimum(n_ref, n_hyp) - correct) @ duration)
    return DiarizationScore(
        total=total, missed=missed, false_alarm=false_alarm, confusion=confusion
    )


def jer(
    reference: Sequence[Segment],
    hypothesis: Sequence[Segment],
    *,
    collar: float = 0.0,
    skip_overlap: bool = False,
    uem: tuple[float, float] | None = None,
) -> float:
    """Jaccard error rate (DIHARD II): mean over reference speakers of ``(FA + miss) / union``
    with the Hungarian-mapped hypothesis speaker; an unmapped reference speaker scores 1.

    Parameters as :func:`der`. With no reference speaker the result is 1 (as pyannote).
    """
    _, duration, r, h, ref_labels, _ = _scored_intervals(
        reference, hypothesis, collar, skip_overlap, uem
    )
    # speakers with no scored time (e.g. only inside collars) are not counted; like pyannote,
    # spans under a microsecond (floating-point slivers) count as nothing
    present = [i for i in range(len(ref_labels)) if float(r[i] @ duration) > 1e-6]
    if not present:
        return 1.0
    mapping = {ref_index: hyp_index for hyp_index, ref_index in _mapping(r, h, duration).items()}
    errors = []
    for ref_index in present:
        hyp_index = mapping.get(ref_index)
        if hyp_index is None:
            errors.append(1.0)
            continue
        ref_on, hyp_on = r[ref_index], h[hyp_index]
        union = float((ref_on | hyp_on) @ duration)
        wrong = float((ref_on ^ hyp_on) @ duration)
        errors.append(wrong / union if union > 0 else 0.0)
    return float(np.mean(errors))


# --------------------------------------------------------------------------- isolation


@attrs.frozen(kw_only=True)
class IsolationScores:
    """How much customer speech an agent-only output keeps, and how much agent speech.

    :param customer_s: seconds of customer-only speech in the reference.
    :param leakage_s: of those, seconds the output carries at an audible level.
    :param leakage_energy_pct: output energy over customer-only speech, as a percentage of the
        customer's clean energy there (100 = untouched, 0 = removed).
    :param agent_s: seconds of agent-only speech in the reference.
    :param retained_s: of those, seconds the output keeps at an audible level.
    :param threshold_db: the level (relative to each party's average speech level) used.
    """

    customer_s: float
    leakage_s: float
    leakage_energy_pct: float
    agent_s: float
    retained_s: float
    threshold_db: float

    @property
    def leakage_pct(self) -> float:
        """Leaked seconds as a percentage of customer-only seconds (0 when there are none)."""
        return 100.0 * self.leakage_s / self.customer_s if self.customer_s > 0 else 0.0

    @property
    def retention_pct(self) -> float:
        """Retained seconds as a percentage of agent-only seconds (100 when there are none)."""
        return 100.0 * self.retained_s / self.agent_s if self.agent_s > 0 else 100.0


def _frame_energy(x: FloatArray, hop: int, frames: int) -> FloatArray:
    out: FloatArray = np.mean(x[: frames * hop].reshape(frames, hop) ** 2, axis=1)
    return out


@attrs.frozen(kw_only=True)
class _Frames:
    hop_s: float
    output_db: FloatArray
    output_energy: FloatArray
    customer_energy: FloatArray
    agent_db: FloatArray
    customer_db: FloatArray
    agent_only: BoolArray
    customer_only: BoolArray
    agent_level_db: float
    customer_level_db: float


def _touched(segments: Sequence[Segment], label: str, hop_s: float, frames: int) -> BoolArray:
    """Frames that any part of a *label* segment falls in (not only those whose centre does):
    a frame half of which is the agent's is never scored as the customer's alone."""
    mask = np.zeros(frames, dtype=bool)
    for segment in segments:
        if segment.label == label and segment.end > segment.start:
            first = max(0, int(np.floor(segment.start / hop_s + 1e-9)))
            last = min(frames, int(np.ceil(segment.end / hop_s - 1e-9)))
            mask[first:last] = True
    return mask


def _frames(
    output: npt.ArrayLike,
    agent: npt.ArrayLike,
    customer: npt.ArrayLike,
    segments: Sequence[Segment],
    sample_rate: int,
    hop_s: float,
    agent_label: str,
    customer_label: str,
) -> _Frames:
    out = np.asarray(output, dtype=np.float64).reshape(-1)
    a = np.asarray(agent, dtype=np.float64).reshape(-1)
    c = np.asarray(customer, dtype=np.float64).reshape(-1)
    if not out.size == a.size == c.size:
        raise BenchError(
            f"isolation metrics: output, agent and customer lengths differ "
            f"({out.size}, {a.size}, {c.size})"
        )
    hop = max(1, round(hop_s * sample_rate))
    frames = out.size // hop
    out_e = _frame_energy(out, hop, frames)
    a_e = _frame_energy(a, hop, frames)
    c_e = _frame_energy(c, hop, frames)
    true_hop = hop / sample_rate
    a_on = rttm.activity(segments, agent_label, hop_s=true_hop, frames=frames)
    c_on = rttm.activity(segments, customer_label, hop_s=true_hop, frames=frames)
    a_level = 10 * np.log10(np.mean(a_e[a_on]) + _EPS) if a_on.any() else -200.0
    c_level = 10 * np.log10(np.mean(c_e[c_on]) + _EPS) if c_on.any() else -200.0
    a_db = 10 * np.log10(a_e + _EPS)
    c_db = 10 * np.log10(c_e + _EPS)
    # pauses inside a reference segment (source 40 dB under its speech level) are not scored
    a_speech = a_on & (a_db > a_level - 40)
    c_speech = c_on & (c_db > c_level - 40)
    return _Frames(
        hop_s=true_hop,
        output_db=10 * np.log10(out_e + _EPS),
        output_energy=out_e,
        customer_energy=c_e,
        agent_db=a_db,
        customer_db=c_db,
        agent_only=a_speech & ~_touched(segments, customer_label, true_hop, frames),
        customer_only=c_speech & ~_touched(segments, agent_label, true_hop, frames),
        agent_level_db=float(a_level),
        customer_level_db=float(c_level),
    )


def _scores(frames: _Frames, threshold_db: float) -> IsolationScores:
    # A frame is scored at a threshold only where the clean party itself reaches it: the
    # output can then carry (leak) or keep (retain) it, and the clean agent retains 100 %.
    customer = frames.customer_only & (
        frames.customer_db >= frames.customer_level_db + threshold_db
    )
    agent = frames.agent_only & (frames.agent_db >= frames.agent_level_db + threshold_db)
    leaked = customer & (frames.output_db >= frames.customer_level_db + threshold_db)
    kept = agent & (frames.output_db >= frames.agent_level_db + threshold_db)
    clean = float(frames.customer_energy[frames.customer_only].sum())
    left = float(frames.output_energy[frames.customer_only].sum())
    return IsolationScores(
        customer_s=float(customer.sum() * frames.hop_s),
        leakage_s=float(leaked.sum() * frames.hop_s),
        leakage_energy_pct=100.0 * left / clean if clean > 0 else 0.0,
        agent_s=float(agent.sum() * frames.hop_s),
        retained_s=float(kept.sum() * frames.hop_s),
        threshold_db=threshold_db,
    )


def isolation_scores(
    output: npt.ArrayLike,
    agent: npt.ArrayLike,
    customer: npt.ArrayLike,
    segments: Sequence[Segment],
    sample_rate: int,
    *,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    hop_s: float = 0.02,
    agent_label: str = "agent",
    customer_label: str = "customer",
) -> IsolationScores:
    """Customer leakage and agent retention of an agent-only *output*.

    Frames of *hop_s*: customer-only frames are those where the reference *segments* say the
    customer speaks and no part of the frame is the agent's, and where the clean customer
    signal reaches ``level + threshold_db`` (``level``: the clean customer's average speech
    level; never lower than 40 dB under it, so pauses inside a segment are not scored);
    agent-only frames likewise. A frame of the output counts as carrying speech when its level
    is at least ``level + threshold_db`` of that party. So the clean agent retains 100 % and
    leaks nothing, the untouched customer leaks 100 %, and noise in the output cannot raise
    retention. ``leakage_energy_pct`` covers every customer-only frame within 40 dB.

    :param output: the separator's mono output, same length and rate as the sources.
    :param agent: the clean agent source.
    :param customer: the clean customer source.
    """
    frames = _frames(
        output, agent, customer, segments, sample_rate, hop_s, agent_label, customer_label
    )
    return _scores(frames, threshold_db)


def isolation_curve(
    output: npt.ArrayLike,
    agent: npt.ArrayLike,
    customer: npt.ArrayLike,
    segments: Sequence[Segment],
    sample_rate: int,
    thresholds_db: Sequence[float],
    *,
    hop_s: float = 0.02,
) -> list[IsolationScores]:
    """:func:`isolation_scores` at every threshold (one frame analysis): a leakage vs
    retention curve."""
    frames = _frames(output, agent, customer, segments, sample_rate, hop_s, "agent", "customer")
    return [_scores(frames, float(t)) for t in thresholds_db]


# --------------------------------------------------------------------------- cost


@attrs.frozen(kw_only=True)
class Cost:
    """What one call of a function cost: wall seconds and peak traced heap bytes."""

    seconds: float
    peak_bytes: int | None

    @property
    def peak_mib(self) -> float | None:
        """Peak heap in MiB, or ``None`` when memory was not traced."""
        return None if self.peak_bytes is None else self.peak_bytes / 2**20


def measure(function: Callable[[], _T], *, memory: bool = True) -> tuple[_T, Cost]:
    """Run *function* once; return its result and its :class:`Cost`.

    With *memory*, :mod:`tracemalloc` traces Python and numpy allocations (not memory held by
    native libraries such as torch or onnxruntime) and slows allocation-heavy code, so time
    and memory are best measured in separate calls.
    """
    tracing = memory and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
        tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        result = function()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if memory else None
    finally:
        if tracing:
            tracemalloc.stop()
    return result, Cost(seconds=seconds, peak_bytes=peak)


def equal_error_rate(target: npt.ArrayLike, nontarget: npt.ArrayLike) -> float:
    """Equal error rate (0-1) of scores where higher means "same speaker".

    At a threshold ``t`` a target score below ``t`` is a false rejection and a non-target
    score at or above ``t`` a false acceptance. Both rates are taken at every distinct score;
    the EER is where the two piecewise-linear curves cross (linear interpolation between the
    two thresholds around the crossing). 0 when every target scores above every non-target,
    1 when every target scores below every non-target; unchanged by any increasing
    transformation of the scores.

    :raises BenchError: either set empty, or a score not finite.
    """
    targets = np.sort(np.asarray(target, dtype=np.float64).ravel())
    others = np.sort(np.asarray(nontarget, dtype=np.float64).ravel())
    if targets.size == 0 or others.size == 0:
        raise BenchError(
            f"equal_error_rate: needs target and non-target scores, got {targets.size} and "
            f"{others.size}"
        )
    if not (np.isfinite(targets).all() and np.isfinite(others).all()):
        raise BenchError("equal_error_rate: scores must be finite")
    thresholds = np.unique(np.concatenate([targets, others, [np.inf]]))
    rejected = np.searchsorted(targets, thresholds, side="left") / targets.size
    accepted = 1.0 - np.searchsorted(others, thresholds, side="left") / others.size
    gap = rejected - accepted  # rises from -1 (the lowest score) to 1 (infinity)
    index = int(np.argmax(gap >= 0.0))  # >= 1
    low, high = gap[index - 1], gap[index]
    weight = -low / (high - low)
    return float(rejected[index - 1] + weight * (rejected[index] - rejected[index - 1]))


def real_time_factor(processing_s: float, audio_s: float) -> float:
    """Processing time over audio duration (below 1 is faster than real time)."""
    if audio_s <= 0:
        raise BenchError(f"real_time_factor: audio duration must be positive, got {audio_s}")
    return processing_s / audio_s


# --------------------------------------------------------------------------- retention losses


@attrs.frozen(kw_only=True)
class RetentionLosses:
    """Where a separator's agent-only speech went, as shares (0-1) of the agent-only time.

    :param kept: share kept (agent retention).
    :param by_reason: share removed under each reason the separator gave (its labels of
        removed frames: ``"overlap"``, ``"uncertain"``, ...); ``kept`` plus these sum to 1.
    :param near_customer: share removed (any reason) within ``near_s`` of customer speech:
        what a guard band of ``near_s`` around a perfect detector of the customer would
        remove too. The rest of the removed share is what better decisions could win back.
    :param agent_only_s: agent-only seconds scored.
    """

    kept: float
    by_reason: dict[str, float]
    near_customer: float
    agent_only_s: float


def retention_losses(
    agent: npt.ArrayLike,
    customer: npt.ArrayLike,
    labels: Sequence[str] | npt.NDArray[np.object_],
    *,
    hop_s: float,
    kept_label: str = "agent",
    near_s: float = 0.3,
) -> RetentionLosses:
    """Split the agent-only speech a separator removed by its reasons (frame grid of *hop_s*).

    :param agent: truth: frames where the agent speaks.
    :param customer: truth: frames where the customer speaks.
    :param labels: the separator's label of each frame: *kept_label* for kept frames, the
        reason for removed ones (e.g. the labels of ``IsolationResult.removed`` spans).
    :param near_s: distance (s) from customer speech within which a removed frame counts as
        :attr:`RetentionLosses.near_customer`.
    :raises BenchError: the three arrays differ in length, *hop_s* is not positive, *near_s*
        is negative, or the truth has no agent-only frame.
    """
    spoken = np.asarray(agent, dtype=bool).reshape(-1)
    other = np.asarray(customer, dtype=bool).reshape(-1)
    names = np.asarray(labels, dtype=object).reshape(-1)
    if not spoken.size == other.size == names.size:
        raise BenchError(
            f"retention_losses: agent, customer and labels must have one value per frame, "
            f"got {spoken.size}, {other.size} and {names.size}"
        )
    if not hop_s > 0:
        raise BenchError(f"retention_losses: hop_s must be positive, got {hop_s!r}")
    if not near_s >= 0:
        raise BenchError(f"retention_losses: near_s must be >= 0, got {near_s!r}")
    solo = spoken & ~other
    total = int(solo.sum())
    if total == 0:
        raise BenchError("retention_losses: the truth has no agent-only frame to score")
    kept = solo & (names == kept_label)
    removed = solo & ~kept
    by_reason = {
        str(reason): float((removed & (names == reason)).sum()) / total
        for reason in sorted({str(n) for n in names[removed]})
    }
    reach = round(near_s / hop_s)
    near = np.zeros(other.size, dtype=bool)
    for start, end in zip(*_edges(other), strict=True):
        near[max(0, start - reach) : end + reach] = True
    return RetentionLosses(
        kept=float(kept.sum()) / total,
        by_reason=by_reason,
        near_customer=float((removed & near).sum()) / total,
        agent_only_s=total * hop_s,
    )


def _edges(mask: BoolArray) -> tuple[list[int], list[int]]:
    padded = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(padded == 1).tolist(), np.flatnonzero(padded == -1).tolist()
