"""Tests of the per-call customer-audibility classifier (``frame_model="mixtures"``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from voicepriv.audio import Audio
from voicepriv.backends.audibility import (
    MIN_TRAINING_S,
    LogisticModel,
    audible,
    customer_log_odds,
    frame_features,
    mixtures,
)
from voicepriv.errors import IsolationError

FRAME = 0.01


def _speech(shared_data: Path, speaker: str, count: int = 4) -> np.ndarray:
    files = sorted((shared_data / "librispeech-test-other" / speaker).glob("*.flac"))[:count]
    return np.concatenate([np.asarray(sf.read(f, dtype="float32")[0]) for f in files])


def _frame_db(x: np.ndarray, frames: int) -> np.ndarray:
    hop = 160
    padded = np.zeros(frames * hop)
    padded[: min(x.size, padded.size)] = x[: padded.size]
    return 10 * np.log10(np.mean(padded.reshape(frames, hop) ** 2, axis=1) + 1e-12)


# ------------------------------------------------------------------------ logistic regression


def test_logistic_model_separates_two_clouds() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(-1, 1, (300, 5)), rng.normal(1, 1, (300, 5))])
    y = np.r_[np.zeros(300), np.ones(300)]
    model = LogisticModel.fit(x, y)
    odds = model.log_odds(x)
    assert ((odds > 0) == (y == 1)).mean() > 0.95
    assert odds[y == 1].mean() > 2 > -2 > odds[y == 0].mean()


@settings(max_examples=25, deadline=None)
@given(
    scale=st.lists(st.floats(0.01, 100), min_size=3, max_size=3),
    shift=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
)
def test_logistic_model_ignores_the_units_of_its_features(
    scale: list[float], shift: list[float]
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (200, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 1, 200)) > 0
    plain = LogisticModel.fit(x, y).log_odds(x)
    moved = x * np.array(scale) + np.array(shift)
    assert np.allclose(LogisticModel.fit(moved, y).log_odds(moved), plain, atol=1e-5)


@pytest.mark.parametrize(
    ("features", "labels", "problem"),
    [
        (np.ones((4, 2)), np.array([0, 1, 0]), "as many labels"),
        (np.ones((0, 2)), np.zeros(0), "as many labels"),
        (np.full((3, 2), np.nan), np.array([0, 1, 0]), "NaN"),
        (np.ones((3, 2)), np.ones(3), "one class"),
    ],
)
def test_logistic_model_refuses_what_it_cannot_learn(
    features: np.ndarray, labels: np.ndarray, problem: str
) -> None:
    with pytest.raises(IsolationError, match=problem):
        LogisticModel.fit(features, labels)


# ------------------------------------------------------------------------ hysteresis


@settings(max_examples=60, deadline=None)
@given(
    odds=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=200),
    smooth=st.integers(1, 9),
    high=st.floats(-3, 5),
    gap=st.floats(0, 5),
)
def test_hysteresis_flags_whole_runs_that_reach_high(
    odds: list[float], smooth: int, high: float, gap: float
) -> None:
    values = np.array(odds)
    low = high - gap
    flagged = audible(values, smooth=smooth, high=high, low=low)
    averaged = ndimage.uniform_filter1d(values, smooth, mode="nearest")
    assert flagged.shape == values.shape
    assert not (flagged & (averaged <= low)).any()
    labels, count = ndimage.label(averaged > low)
    for run in range(1, count + 1):
        inside = labels == run
        assert flagged[inside].all() == bool((averaged[inside] > high).any())
        assert flagged[inside].all() or not flagged[inside].any()
    # a higher bar never flags more, a lower floor never flags less
    assert not (audible(values, smooth=smooth, high=high + 1, low=low) & ~flagged).any()
    assert not (flagged & ~audible(values, smooth=smooth, high=high, low=low - 1)).any()


# ------------------------------------------------------------------------ features and mixtures


@pytest.mark.parametrize("rate", [8000, 16000])
def test_frame_features_lie_on_the_10_ms_grid(rate: int) -> None:
    rng = np.random.default_rng(2)
    audio = Audio(samples=rng.normal(0, 0.05, rate * 2).astype(np.float32), sample_rate=rate)
    features = frame_features(audio, 200)
    assert features.shape == (200, 128)
    assert np.isfinite(features).all()
    assert np.array_equal(features, frame_features(audio, 200))
    # a 100 ms tone at 1.0 s changes the features most in frames 100-110 (the whole-call
    # mean subtraction moves every frame a little)
    samples = audio.samples[:, 0].copy()
    samples[rate : rate + rate // 10] += 0.5 * np.sin(np.arange(rate // 10) * 0.3)
    changed = np.abs(frame_features(Audio(samples=samples, sample_rate=rate), 200) - features)
    strongest = changed.max(axis=1)
    assert 95 <= int(np.argmax(strongest)) <= 115
    assert strongest[100:110].min() > 3 * np.median(strongest)


def test_frame_features_refuse_stereo() -> None:
    stereo = Audio(samples=np.zeros((16000, 2), np.float32), sample_rate=16000)
    with pytest.raises(IsolationError, match="mono"):
        frame_features(stereo, 100)


def test_mixture_labels_follow_the_added_voice(shared_data: Path) -> None:
    agent = _speech(shared_data, "1688", 2)
    customer = _speech(shared_data, "3080", 2)
    frames_a, frames_c = agent.size // 160, customer.size // 160
    own_a = np.r_[np.ones(frames_a, bool), np.zeros(frames_c, bool)]

    def labels_of(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        call = Audio(samples=np.concatenate([first, second]), sample_rate=16000)
        features, labels = mixtures(
            call, own_a, ~own_a, pieces=6, piece_s=2.0, rng=np.random.default_rng(3)
        )
        assert features.shape == (labels.size, 128) and labels.size == 6 * 200
        return labels

    both = labels_of(agent, customer)
    assert 0.05 < both.mean() < 0.5  # the customer covers an eighth to half of each piece
    # a silent customer is never audible
    assert not labels_of(agent, np.zeros_like(customer)).any()


def test_mixtures_need_some_of_each_voice() -> None:
    call = Audio(samples=np.zeros(16000 * 4, np.float32), sample_rate=16000)
    agent = np.zeros(400, bool)
    agent[:300] = True
    customer = np.zeros(400, bool)
    customer[300:310] = True
    with pytest.raises(IsolationError, match="of the customer"):
        mixtures(call, agent, customer, pieces=2, piece_s=2.0, rng=np.random.default_rng(0))


def test_log_odds_are_none_without_enough_of_either_voice() -> None:
    call = Audio(samples=np.zeros(16000 * 3, np.float32), sample_rate=16000)
    agent = np.zeros(300, bool)
    agent[:200] = True
    customer = np.zeros(300, bool)
    customer[200 : 200 + round(MIN_TRAINING_S / FRAME) - 1] = True
    assert customer_log_odds(call, agent, customer) is None
    with pytest.raises(IsolationError, match="do not fit"):
        customer_log_odds(call, agent[:100], customer[:100])


@pytest.mark.slow
@pytest.mark.parametrize("rate", [16000, 8000])
def test_log_odds_hear_the_customer_under_the_agent(shared_data: Path, rate: int) -> None:
    """A call built by hand: agent turn, customer turn, then the agent with three customer
    backchannels 0-12 dB under it. The classifier learns from the two clean turns only and
    must rank the backchannel frames above the agent-alone frames (measured: AUC 0.876 at
    16 kHz, 0.837 at 8 kHz; a classifier that hears nothing gives 0.5)."""
    agent = _speech(shared_data, "2414", 6)
    customer = _speech(shared_data, "367", 6)
    seconds = 12
    turn = seconds * 16000
    agent_turn, customer_turn, later = agent[:turn], customer[:turn], agent[turn : 2 * turn]
    under = np.zeros(turn, np.float32)
    truth_under = np.zeros(turn // 160, bool)
    for index, level_db in enumerate((0.0, -6.0, -12.0)):
        at = (2 + 3 * index) * 16000
        piece = customer[2 * turn + index * 8000 : 2 * turn + index * 8000 + 8000]
        gain = 10 ** (level_db / 20) * np.sqrt(
            np.mean(later[at : at + 8000] ** 2) / np.mean(piece**2)
        )
        under[at : at + 8000] = gain * piece
        truth_under[at // 160 : (at + 8000) // 160] = True
    samples = np.concatenate([agent_turn, customer_turn, later + under])
    call = Audio(samples=samples, sample_rate=16000).resampled(rate)
    frames = samples.size // 160
    own_agent = np.zeros(frames, bool)
    own_agent[: turn // 160] = True
    own_customer = np.zeros(frames, bool)
    own_customer[turn // 160 : 2 * turn // 160] = True
    odds = customer_log_odds(call, own_agent, own_customer)
    assert odds is not None and odds.shape == (frames,)
    tail = odds[2 * turn // 160 :]
    level = _frame_db(later, turn // 160)
    speaking = level > level.max() - 30
    positive = tail[truth_under & speaking]
    negative = tail[~ndimage.binary_dilation(truth_under, iterations=30) & speaking]
    ranks = np.argsort(np.argsort(np.r_[positive, negative]))
    auc = (ranks[: positive.size].sum() - positive.size * (positive.size - 1) / 2) / (
        positive.size * negative.size
    )
    print(f"{rate} Hz: AUC {auc:.3f}")
    assert auc > 0.8
    assert np.median(odds[turn // 160 : 2 * turn // 160]) > 0 > np.median(negative)
