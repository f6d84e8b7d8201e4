"""Per-call customer audibility: is the customer's voice in a 10 ms frame, even under the agent's?

The ``"speaker"`` separator's ``frame_model="mixtures"`` uses this. No model trained on many
voices can say that here (none reaches this machine), but the call itself holds both voices:
the stretches its windows already give confidently to the agent and to the customer. From
them this module builds, per call,

1. **synthetic mixtures**: pieces of the agent's speech with a piece of the customer's speech
   added over part of them at a random relative level (:data:`LEVELS_DB`), the way a
   backchannel or an interruption lies under the agent's voice; each 10 ms frame is labelled
   *customer audible* when the customer's part is within :data:`AUDIBLE_DB` of the agent's
   part (and not silent);
2. **frame features**: CAM++'s 2-D front end and TDNN layer
   (:meth:`voicepriv.backends.campplus.CamPlusPlusModel.frame_features`, 128 values every
   20 ms, each hearing about 70 ms either side), computed over the mixtures and over the
   call;
3. **a classifier**: L2-regularised logistic regression (:class:`LogisticModel`) on the
   mixtures' frames plus the call's own confident frames (agent alone: 0, customer: 1);
4. its **log-odds for every frame of the call** (:func:`customer_log_odds`), which the
   separator smooths, thresholds with hysteresis (:func:`audible`) and widens by guard bands.

The voices are the ones of this call, so the classifier is speaker-dependent, the easy case of
separation; it is trained on the separator's own window decisions, so it inherits their
errors, and it only says where the customer is audible (a customer 20 dB and more under the
agent is inaudible to it: the guard bands must cover that). Measured on the mono benchmark in
``docs/mono-isolation.md``.

Everything stays in memory; the customer's audio is read from the call and never written.
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt
import scipy

from voicepriv.audio import Audio
from voicepriv.backends._frames import FRAME_S, label_runs
from voicepriv.backends.campplus import CamPlusPlusModel, kaldi_fbank
from voicepriv.errors import IsolationError

__all__ = [
    "AUDIBLE_DB",
    "LEVELS_DB",
    "MIN_TRAINING_S",
    "LogisticModel",
    "audible",
    "customer_log_odds",
    "frame_features",
    "mixtures",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: A mixture frame is "customer audible" when the customer's part is at most this far (dB)
#: under the agent's part in that frame. 10 dB left calls whose customer speaks 10-15 dB
#: under the agent undetected (seed 11 of the benchmark: single calls leaked 13-17 %).
AUDIBLE_DB: Final = 20.0
#: Range (dB) of the customer piece's level relative to the agent piece in the mixtures.
LEVELS_DB: Final = (-25.0, 10.0)
#: Frames quieter than this (dBFS) are silence, never "customer audible".
SILENCE_DBFS: Final = -70.0
#: Each voice needs at least this much confident speech (seconds) to train on; with less,
#: :func:`customer_log_odds` gives ``None`` and the separator keeps nothing.
MIN_TRAINING_S: Final = 1.0
_RATE: Final = 16000
_HOP: Final = 160  # samples of 10 ms at 16 kHz


@attrs.frozen(kw_only=True, eq=False)
class LogisticModel:
    """L2-regularised logistic regression on standardised features.

    :param mean: per-feature mean of the training data.
    :param scale: per-feature standard deviation of the training data.
    :param weights: one weight per feature (on standardised values).
    :param bias: the intercept.
    """

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    bias: float

    @classmethod
    def fit(
        cls, features: npt.ArrayLike, labels: npt.ArrayLike, *, l2: float = 1.0, steps: int = 12
    ) -> LogisticModel:
        """Fit by Newton's method (iteratively reweighted least squares).

        :param features: ``(samples, dims)``.
        :param labels: ``(samples,)`` of 0 / 1 (or bools).
        :param l2: ridge penalty on the weights (not the intercept), in units of the
            standardised features.
        :param steps: Newton steps; a dozen converge on the problems here.
        :raises IsolationError: no samples, mismatched lengths, non-finite features, or only
            one class.
        """
        x = np.asarray(features, np.float64)
        y = np.asarray(labels, np.float64).ravel()
        if x.ndim != 2 or x.shape[0] != y.size or y.size == 0:
            raise IsolationError(
                f"audibility classifier: expected (samples, dims) features and as many labels, "
                f"got {x.shape} and {y.shape}"
            )
        if not np.isfinite(x).all():
            raise IsolationError("audibility classifier: the features hold NaN or infinity")
        if y.min() == y.max():
            raise IsolationError("audibility classifier: the training labels hold one class")
        mean = x.mean(axis=0)
        spread = x.std(axis=0)
        scale = np.where(spread > 1e-12, spread, 1.0)  # a constant feature stays as it is
        design = np.hstack([(x - mean) / scale, np.ones((y.size, 1))])
        penalty = np.eye(design.shape[1]) * l2
        penalty[-1, -1] = 0.0
        w = np.zeros(design.shape[1])
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30.0, 30.0)))
            gradient = design.T @ (p - y) + penalty @ w
            hessian = (design * (p * (1.0 - p))[:, np.newaxis]).T @ design + penalty
            w -= np.linalg.solve(hessian, gradient)
        return cls(mean=mean, scale=scale, weights=w[:-1], bias=float(w[-1]))

    def log_odds(self, features: npt.ArrayLike) -> FloatArray:
        """Log-odds of class 1 for every row of *features* ``(samples, dims)``."""
        x = np.asarray(features, np.float64)
        result: FloatArray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return result


def _samples16k(audio: Audio) -> npt.NDArray[np.float32]:
    if audio.channels != 1:
        raise IsolationError(f"audibility: expected mono audio, got {audio.channels} channels")
    return (audio if audio.sample_rate == _RATE else audio.resampled(_RATE)).samples[:, 0]


def _features16k(
    samples: npt.NDArray[np.float32], frames: int, model: CamPlusPlusModel
) -> FloatArray:
    """CAM++ frame features of 16 kHz *samples* on the 10 ms grid (*frames* rows).

    Kaldi frame ``i`` is centred 12.5 ms after ``10 i`` ms and the TDNN row ``k`` on Kaldi
    frame ``2 k``, so grid frame ``j`` takes row ``(j - 1) // 2``.
    """
    fbank = np.asarray(kaldi_fbank(samples), np.float64)
    if fbank.shape[0] < 2:
        fbank = np.resize(fbank, (2, fbank.shape[1])) if fbank.size else np.zeros((2, 80))
    rows = model.frame_features(fbank - fbank.mean(axis=0)).astype(np.float64)
    index = np.clip((np.arange(frames) - 1) // 2, 0, rows.shape[0] - 1)
    result: FloatArray = rows[index]
    return result


def frame_features(audio: Audio, frames: int, model: CamPlusPlusModel | None = None) -> FloatArray:
    """CAM++ frame features (128 values) of mono *audio* on the 10 ms grid: ``(frames, 128)``.

    8 kHz calls are resampled to 16 kHz (the network's rate); the input's mean filterbank is
    subtracted first, as for the embeddings.

    :param model: the CAM++ weights; default the bundled ones.
    :raises IsolationError: not mono.
    """
    network = model if model is not None else CamPlusPlusModel.bundled()
    return _features16k(_samples16k(audio), frames, network)


def _frame_db(x: npt.NDArray[np.float64], frames: int) -> FloatArray:
    padded = np.zeros(frames * _HOP)
    padded[: min(x.size, padded.size)] = x[: padded.size]
    energy = np.mean(padded.reshape(frames, _HOP) ** 2, axis=1)
    result: FloatArray = 10.0 * np.log10(energy + 1e-12)
    return result


def _stretch(samples: npt.NDArray[np.float32], mask: BoolArray) -> npt.NDArray[np.float64]:
    """The samples of every run of *mask* (10 ms frames at 16 kHz), joined."""
    parts = [samples[start * _HOP : end * _HOP] for start, end, value in label_runs(mask) if value]
    joined = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return joined.astype(np.float64)


def mixtures(
    audio: Audio,
    agent: BoolArray,
    customer: BoolArray,
    *,
    pieces: int,
    piece_s: float,
    rng: np.random.Generator,
    model: CamPlusPlusModel | None = None,
) -> tuple[FloatArray, BoolArray]:
    """Synthetic training frames from the call's own voices: ``(features, customer_audible)``.

    Each of *pieces* mixtures is a *piece_s* stretch of the agent's frames (*agent*, 10 ms
    grid) with a stretch of the customer's frames (*customer*) added over a random eighth to
    half of it, at a relative level drawn from :data:`LEVELS_DB`. A frame is labelled
    customer-audible when the added part is within :data:`AUDIBLE_DB` of the agent's part and
    above :data:`SILENCE_DBFS`.

    :raises IsolationError: not mono, or either voice has less than *piece_s* / 4 of audio.
    """
    network = model if model is not None else CamPlusPlusModel.bundled()
    samples = _samples16k(audio)
    voice_a = _stretch(samples, agent)
    voice_c = _stretch(samples, customer)
    length = round(piece_s * _RATE) // _HOP * _HOP
    if min(voice_a.size, voice_c.size) < length // 4 or length < 4 * _HOP:
        raise IsolationError(
            f"audibility: need at least {piece_s / 4:.2f} s of each voice to mix, got "
            f"{voice_a.size / _RATE:.2f} s of the agent and {voice_c.size / _RATE:.2f} s of "
            "the customer"
        )
    rows: list[FloatArray] = []
    labels: list[BoolArray] = []
    for _ in range(pieces):
        start_a = int(rng.integers(0, max(1, voice_a.size - length)))
        start_c = int(rng.integers(0, max(1, voice_c.size - length)))
        a = voice_a[start_a : start_a + length]
        c = voice_c[start_c : start_c + length]
        size = min(a.size, c.size) // _HOP * _HOP
        a, c = a[:size], c[:size]
        level = rng.uniform(*LEVELS_DB)
        gain = np.sqrt((np.mean(a**2) + 1e-12) / (np.mean(c**2) + 1e-12) * 10.0 ** (level / 10))
        span = np.zeros(size)
        first = int(rng.integers(0, max(1, size // 2)))
        span[first : first + int(rng.integers(max(1, size // 8), max(2, size // 2)))] = 1.0
        added = gain * c * span
        frames = size // _HOP
        agent_db, added_db = _frame_db(a, frames), _frame_db(added, frames)
        labels.append((added_db >= agent_db - AUDIBLE_DB) & (added_db > SILENCE_DBFS))
        rows.append(_features16k((a + added).astype(np.float32), frames, network))
    return np.vstack(rows), np.concatenate(labels)


def customer_log_odds(
    audio: Audio,
    agent: BoolArray,
    customer: BoolArray,
    *,
    pieces: int = 30,
    piece_s: float = 2.0,
    seed: int = 0,
    model: CamPlusPlusModel | None = None,
) -> FloatArray | None:
    """Log-odds that the customer is audible, for every 10 ms frame of mono *audio*.

    :param agent: frames (10 ms grid, the call's length) confidently the agent alone.
    :param customer: frames confidently the customer.
    :param pieces: synthetic mixtures (:func:`mixtures`) of *piece_s* each.
    :param seed: the mixtures' random generator (the result is deterministic).
    :param model: the CAM++ weights; default the bundled ones.
    :returns: ``(frames,)`` log-odds, or ``None`` when either voice has less than
        :data:`MIN_TRAINING_S` of confident speech (nothing to learn from: keep nothing).
    :raises IsolationError: not mono, or *agent* / *customer* not of the call's frame count.
    """
    frames = agent.size
    if customer.size != frames or abs(frames - audio.duration / FRAME_S) > 2:
        raise IsolationError(
            f"audibility: frame masks of {agent.size} and {customer.size} frames do not fit "
            f"a call of {audio.duration:.2f} s"
        )
    least = round(MIN_TRAINING_S / FRAME_S)
    if int(agent.sum()) < least or int(customer.sum()) < least:
        return None
    network = model if model is not None else CamPlusPlusModel.bundled()
    rng = np.random.default_rng(seed)
    mixed, mixed_labels = mixtures(
        audio, agent, customer, pieces=pieces, piece_s=piece_s, rng=rng, model=network
    )
    call = frame_features(audio, frames, network)
    own_a = call[agent][::2]
    own_c = call[customer][::2]
    classifier = LogisticModel.fit(
        np.vstack([mixed, own_a, own_c]),
        np.concatenate(
            [mixed_labels, np.zeros(own_a.shape[0], bool), np.ones(own_c.shape[0], bool)]
        ),
    )
    return classifier.log_odds(call)


def audible(log_odds: FloatArray, *, smooth: int, high: float, low: float) -> BoolArray:
    """Frames where the customer is audible: hysteresis on the smoothed log-odds.

    A run of frames whose moving average (*smooth* frames) exceeds *low* is flagged when it
    reaches *high* somewhere: a quiet stretch of a backchannel that was loud at its core is
    flagged whole, an isolated blip under *high* is not.
    """
    averaged = scipy.ndimage.uniform_filter1d(
        np.asarray(log_odds, np.float64), max(1, smooth), mode="nearest"
    )
    above = averaged > low
    labels, count = scipy.ndimage.label(above)
    if count == 0:
        return np.zeros(averaged.size, bool)
    reached = np.zeros(count + 1, bool)
    reached[np.unique(labels[averaged > high])] = True
    reached[0] = False
    result: BoolArray = reached[labels]
    return result
