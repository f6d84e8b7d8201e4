"""Metrics: hand-computed cases, properties, and agreement with reference implementations."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.bench import datasets, metrics, speakers
from voicepriv.bench.mixer import CallConfig
from voicepriv.errors import BenchError
from voicepriv.model import Segment


def seg(start: float, end: float, label: str) -> Segment:
    return Segment(start=start, end=end, label=label)


# --------------------------------------------------------------------------- SI-SDR / SDR


def test_si_sdr_hand_computed() -> None:
    reference = np.array([1.0, 0.0, -1.0, 0.0])
    noise = np.array([0.0, 0.1, 0.0, 0.0])
    # estimate = 2 * reference + noise orthogonal to it: 10 log10(|2s|^2 / |n|^2)
    expected = 10 * np.log10(8.0 / 0.01)
    assert metrics.si_sdr(2 * reference + noise, reference) == pytest.approx(expected, abs=1e-9)


def test_a_silent_estimate_scores_minus_infinity_not_zero() -> None:
    # Both used to return 0 dB, ranking silence above a poor real output.
    reference = np.random.default_rng(3).standard_normal(4000)
    silent = np.zeros_like(reference)
    assert metrics.si_sdr(silent, reference) == -np.inf
    assert metrics.si_sdr(silent, reference, zero_mean=True) == -np.inf
    assert metrics.sdr(silent, reference) == -np.inf
    poor = reference + 3 * np.random.default_rng(4).standard_normal(4000)
    assert np.isfinite(metrics.si_sdr(poor, reference)) and metrics.si_sdr(poor, reference) < 0


def test_si_sdr_is_scale_invariant_and_improvement_subtracts_the_mixture() -> None:
    rng = np.random.default_rng(0)
    s, n = rng.standard_normal(1000), rng.standard_normal(1000)
    estimate = s + 0.1 * n
    assert metrics.si_sdr(3.0 * estimate, s) == pytest.approx(metrics.si_sdr(estimate, s))
    improvement = metrics.si_sdr_improvement(estimate, s, s + n)
    assert improvement == pytest.approx(metrics.si_sdr(estimate, s) - metrics.si_sdr(s + n, s))
    assert improvement > 15


def test_signal_metrics_reject_bad_input() -> None:
    with pytest.raises(BenchError, match="samples"):
        metrics.si_sdr(np.ones(3), np.ones(4))
    with pytest.raises(BenchError, match="silent"):
        metrics.si_sdr(np.ones(3), np.zeros(3))
    with pytest.raises(BenchError, match="silent"):
        metrics.sdr(np.ones(3), np.zeros(3))


def test_sdr_allows_a_short_filter_but_not_noise() -> None:
    rng = np.random.default_rng(1)
    s = rng.standard_normal(4000)
    filtered = np.convolve(s, [0.5, 0.3, -0.2])[: s.size]
    assert metrics.sdr(filtered, s) > 30  # a 3-tap filter is (almost) no distortion for BSS Eval
    assert metrics.si_sdr(filtered, s) < 10  # but it is for SI-SDR
    noisy = s + rng.standard_normal(s.size)
    # equal noise: the 512-tap projection also absorbs about 512/4000 of the noise energy
    expected = 10 * np.log10((1 + 512 / 4000) / (1 - 512 / 4000))
    assert metrics.sdr(noisy, s) == pytest.approx(expected, abs=0.5)


def test_sdr_of_a_telephone_reference_is_finite_and_quiet(shared_data: Path) -> None:
    # an agent track through the bench's telephone line has next to no energy near 0 Hz and
    # near Nyquist: the 512-tap Toeplitz system is near-singular (scipy warned, and warnings
    # are errors here); the projection is still defined
    corpus = speakers.scan(shared_data)
    config = CallConfig(duration_s=8.0, overlap_ratio=0.1)
    item = next(iter(datasets.generate(corpus, 1, config, seed=1, name="t").items()))
    assert item.agent is not None
    agent = item.agent.samples
    assert metrics.sdr(agent, agent) > 60
    mixture = item.audio.samples
    assert metrics.sdr(mixture, agent) < metrics.sdr(agent + 0.01 * mixture, agent)


@given(st.integers(0, 10_000), st.floats(0.05, 3.0))
def test_si_sdr_matches_fast_bss_eval(seed: int, noise: float) -> None:
    # the numpy backend directly: the package's dispatcher needs torch for si_sdr
    fast_bss_eval = pytest.importorskip("fast_bss_eval.numpy")
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(800)
    e = 0.7 * s + noise * rng.standard_normal(800)
    expected = float(fast_bss_eval.si_sdr(s[None], e[None])[0])
    assert metrics.si_sdr(e, s) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sdr_matches_fast_bss_eval_and_mir_eval(seed: int) -> None:
    fast_bss_eval = pytest.importorskip("fast_bss_eval.numpy")
    separation = pytest.importorskip("mir_eval.separation")
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(6000)
    e = np.convolve(s, rng.standard_normal(8) * 0.3)[: s.size] + 0.3 * rng.standard_normal(6000)
    ours = metrics.sdr(e, s)
    assert ours == pytest.approx(float(fast_bss_eval.sdr(s[None], e[None])[0]), abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr_mir = separation.bss_eval_sources(s[None], e[None], compute_permutation=False)[0]
    assert ours == pytest.approx(float(sdr_mir[0]), abs=1e-3)


# --------------------------------------------------------------------------- DER / JER


def test_der_hand_computed() -> None:
    reference = [seg(0, 10, "A"), seg(10, 20, "B")]
    # hypothesis: speaker 1 covers 0-12 (2 s confusion), speaker 2 covers 12-18 (2 s miss),
    # plus speaker 2 at 25-26 (1 s false alarm)
    hypothesis = [seg(0, 12, "1"), seg(12, 18, "2"), seg(25, 26, "2")]
    score = metrics.der(reference, hypothesis)
    assert (score.total, score.missed, score.false_alarm, score.confusion) == pytest.approx(
        (20.0, 2.0, 1.0, 2.0)
    )
    assert score.rate == pytest.approx(0.25)


def test_der_collar_and_overlap() -> None:
    reference = [seg(0, 10, "A"), seg(8, 12, "B")]
    hypothesis = [seg(0.2, 10, "x"), seg(8, 12, "y")]
    # collar 1 s removes [-0.5,0.5], [7.5,8.5], [9.5,10.5], [11.5,12.5]: the 0.2 s miss is inside
    assert metrics.der(reference, hypothesis, collar=1.0).rate == 0.0
    assert metrics.der(reference, hypothesis).missed == pytest.approx(0.2)
    # overlap 8-10 is scored twice by default, never when skipped
    assert metrics.der(reference, hypothesis).total == pytest.approx(14.0)
    assert metrics.der(reference, hypothesis, skip_overlap=True).total == pytest.approx(10.0)
    # a single hypothesis speaker over the overlap misses one of the two
    mono = metrics.der(reference, [seg(0, 12, "x")])
    assert (mono.missed, mono.confusion) == pytest.approx((2.0, 2.0))


def test_jer_hand_computed() -> None:
    reference = [seg(0, 10, "A"), seg(10, 20, "B"), seg(30, 31, "C")]
    hypothesis = [seg(0, 8, "1"), seg(10, 22, "2")]
    # A: 2/10, B: 2/12, C unmapped: 1
    assert metrics.jer(reference, hypothesis) == pytest.approx((0.2 + 2 / 12 + 1.0) / 3)


def _annotation(segments: list[Segment]):  # type: ignore[no-untyped-def]
    core = pytest.importorskip("pyannote.core")
    annotation = core.Annotation(uri="x")
    for s in segments:
        annotation[core.Segment(s.start, s.end), s.label] = s.label
    return annotation


labels = st.sampled_from(["a", "b", "c"])


@st.composite
def annotations(draw: st.DrawFn, names: st.SearchStrategy[str]) -> list[Segment]:
    from voicepriv.bench import rttm

    items = []
    for _ in range(draw(st.integers(1, 8))):
        start = draw(st.integers(0, 400)) / 10
        length = draw(st.integers(1, 80)) / 10
        items.append(seg(start, start + length, draw(names)))
    return list(rttm.merge(items))


@given(
    annotations(labels),
    annotations(st.sampled_from(["1", "2", "3", "4"])),
    st.sampled_from([0.0, 0.25, 0.5]),
    st.booleans(),
)
def test_der_and_jer_match_pyannote(
    reference: list[Segment], hypothesis: list[Segment], collar: float, skip: bool
) -> None:
    diarization = pytest.importorskip("pyannote.metrics.diarization")
    core = pytest.importorskip("pyannote.core")
    uem = (0.0, 60.0)
    timeline = core.Timeline([core.Segment(*uem)])
    ref, hyp = _annotation(reference), _annotation(hypothesis)
    expected = diarization.DiarizationErrorRate(collar=collar, skip_overlap=skip)(
        ref, hyp, uem=timeline, detailed=True
    )
    ours = metrics.der(reference, hypothesis, collar=collar, skip_overlap=skip, uem=uem)
    assert ours.total == pytest.approx(expected["total"], abs=1e-3)
    assert ours.missed == pytest.approx(expected["missed detection"], abs=1e-3)
    assert ours.false_alarm == pytest.approx(expected["false alarm"], abs=1e-3)
    assert ours.confusion == pytest.approx(expected["confusion"], abs=1e-3)
    if expected["total"] > 0:
        assert ours.rate == pytest.approx(expected["diarization error rate"], abs=1e-3)
    expected_jer = diarization.JaccardErrorRate(collar=collar, skip_overlap=skip)(
        ref, hyp, uem=timeline
    )
    assert metrics.jer(reference, hypothesis, collar=collar, skip_overlap=skip, uem=uem) == (
        pytest.approx(expected_jer, abs=1e-3)
    )


# --------------------------------------------------------------------------- isolation


def _two_party() -> tuple[np.ndarray, np.ndarray, list[Segment], int]:
    rate = 1000
    rng = np.random.default_rng(3)
    agent = np.zeros(10 * rate)
    customer = np.zeros(10 * rate)
    agent[0 : 4 * rate] = 0.1 * rng.standard_normal(4 * rate)
    customer[5 * rate : 9 * rate] = 0.1 * rng.standard_normal(4 * rate)
    segments = [seg(0, 4, "agent"), seg(5, 9, "customer")]
    return agent, customer, segments, rate


def test_isolation_scores_hand_computed() -> None:
    agent, customer, segments, rate = _two_party()
    keep_all = metrics.isolation_scores(agent + customer, agent, customer, segments, rate)
    assert keep_all.customer_s == pytest.approx(4.0)
    assert keep_all.leakage_s == pytest.approx(4.0)
    assert keep_all.leakage_energy_pct == pytest.approx(100.0)
    assert keep_all.retention_pct == pytest.approx(100.0)
    # keep the agent and the first second of the customer at -10 dB
    output = agent.copy()
    output[5 * rate : 6 * rate] = customer[5 * rate : 6 * rate] * np.sqrt(0.1)
    partial = metrics.isolation_scores(output, agent, customer, segments, rate)
    assert partial.leakage_s == pytest.approx(1.0)
    assert partial.leakage_pct == pytest.approx(25.0)
    assert partial.leakage_energy_pct == pytest.approx(2.5, rel=0.1)
    strict = metrics.isolation_scores(output, agent, customer, segments, rate, threshold_db=-5)
    assert strict.leakage_s == 0.0
    silence = metrics.isolation_scores(np.zeros_like(agent), agent, customer, segments, rate)
    assert (silence.leakage_s, silence.retention_pct) == (0.0, 0.0)


def _turns(seed: int) -> tuple[np.ndarray, np.ndarray, list[Segment], int]:
    """Alternating turns on a 10 ms grid (ends on 20 ms frame centres), each with a loud
    core and quiet onsets/tails 30-40 dB under it, as real speech has."""
    rate = 8000
    rng = np.random.default_rng(seed)
    agent, customer = np.zeros(12 * rate), np.zeros(12 * rate)
    segments, t, who = [], 0.2, "agent"
    while t < 11.0:
        length = round(float(rng.uniform(0.6, 1.6)), 2)
        start, end = round(t, 2), round(min(t + length, 11.5), 2)
        n = round((end - start) * rate)
        envelope = np.ones(n)
        edge = min(n // 4, round(0.15 * rate))
        envelope[:edge] = np.geomspace(10 ** (-38 / 20), 1, edge)  # a quiet onset
        envelope[n - edge :] = np.geomspace(1, 10 ** (-38 / 20), edge)  # and tail
        track = agent if who == "agent" else customer
        track[round(start * rate) : round(start * rate) + n] = (
            0.1 * envelope * rng.standard_normal(n)
        )
        segments.append(seg(start, end, who))
        t, who = (
            end + round(float(rng.uniform(0.0, 0.3)), 2),
            "customer" if who == "agent" else "agent",
        )
    return agent, customer, segments, rate


@given(seed=st.integers(0, 2**16))
def test_the_clean_agent_scores_perfectly_and_the_untouched_customer_fully_leaks(
    seed: int,
) -> None:
    # The clean agent used to retain ~90 % (frames 30-40 dB under its level were scored but
    # could never count as kept) and to "leak" where a 20 ms frame was half the agent's.
    agent, customer, segments, rate = _turns(seed)
    perfect = metrics.isolation_scores(agent, agent, customer, segments, rate)
    assert perfect.retention_pct == pytest.approx(100.0)
    assert perfect.leakage_s == 0.0
    untouched = metrics.isolation_scores(agent + customer, agent, customer, segments, rate)
    assert untouched.leakage_pct == pytest.approx(100.0)
    # Noise 45 dB under the agent's speech retains nothing (it used to "retain" the quiet
    # frames the clean agent could not).
    noise = 0.1 * 10 ** (-45 / 20) * np.random.default_rng(seed).standard_normal(agent.size)
    assert metrics.isolation_scores(noise, agent, customer, segments, rate).retention_pct == 0.0
    assert metrics.isolation_scores(agent + noise, agent, customer, segments, rate).leakage_s == 0


def test_isolation_curve_is_monotonic() -> None:
    agent, customer, segments, rate = _two_party()
    output = agent + 0.05 * customer
    curve = metrics.isolation_curve(output, agent, customer, segments, rate, [-60, -30, -20, 0])
    leaks = [c.leakage_s for c in curve]
    assert leaks == sorted(leaks, reverse=True)
    assert leaks[0] == pytest.approx(4.0) and leaks[-1] == 0.0


def test_measure_reports_time_and_memory() -> None:
    result, cost = metrics.measure(lambda: np.ones(1_000_000).sum())
    assert result == 1_000_000
    assert cost.peak_bytes is not None and cost.peak_bytes >= 8_000_000
    assert cost.seconds >= 0
    assert metrics.real_time_factor(2.0, 4.0) == 0.5


# --------------------------------------------------------------------------- verification


def test_equal_error_rate_hand_computed() -> None:
    assert metrics.equal_error_rate([1, 2, 3], [0, -1]) == 0.0
    assert metrics.equal_error_rate([0, -1], [1, 2, 3]) == 1.0
    assert metrics.equal_error_rate([1, 2], [1, 2]) == 0.5
    # at 0.5 one target of three is rejected and one non-target of three accepted
    assert metrics.equal_error_rate([0.9, 0.8, 0.3], [0.5, 0.1, 0.2]) == pytest.approx(1 / 3)
    # the curves cross between two thresholds: from 0.5 to 0.6 the rejections stay at 1/3
    # while the acceptances fall from 1/2 to 0; linear interpolation meets at 1/3
    assert metrics.equal_error_rate([0.2, 0.6, 0.7], [0.1, 0.5]) == pytest.approx(1 / 3)


def test_equal_error_rate_rejects_bad_input() -> None:
    with pytest.raises(BenchError, match="needs target and non-target"):
        metrics.equal_error_rate([], [0.1])
    with pytest.raises(BenchError, match="finite"):
        metrics.equal_error_rate([float("nan")], [0.1])


# scores on a 0.01 grid, so that the increasing map below keeps distinct scores distinct
_scores = st.lists(st.integers(-500, 500).map(lambda n: n / 100), min_size=1, max_size=30)


@given(target=_scores, nontarget=_scores)
def test_equal_error_rate_is_a_rate_invariant_to_increasing_maps(
    target: list[float], nontarget: list[float]
) -> None:
    rate = metrics.equal_error_rate(target, nontarget)
    assert 0.0 <= rate <= 1.0
    mapped = metrics.equal_error_rate(np.exp(target) * 3 + 1, np.exp(nontarget) * 3 + 1)
    assert mapped == pytest.approx(rate, abs=1e-9)
    # swapping the roles of the two sets (and the direction of the scores) changes nothing
    assert metrics.equal_error_rate(-np.array(nontarget), -np.array(target)) == pytest.approx(
        rate, abs=1e-9
    )


# --------------------------------------------------------------------------- retention losses


def test_retention_losses_hand_computed() -> None:
    agent = np.zeros(120, bool)
    agent[:100] = True
    customer = np.zeros(120, bool)
    customer[50:60] = customer[110:] = True
    labels = np.full(120, "agent", dtype=object)
    labels[30:45] = "uncertain"
    labels[45:65] = "overlap"
    labels[100:] = "silence"  # no agent-only speech there: not scored
    losses = metrics.retention_losses(agent, customer, labels, hop_s=0.01, near_s=0.05)
    # agent-only: frames 0-49 and 60-99 (90); kept 0-29 and 65-99
    assert losses.kept == pytest.approx(65 / 90)
    assert losses.by_reason == pytest.approx({"uncertain": 15 / 90, "overlap": 10 / 90})
    # within 5 frames of the customer's 50-59: the removed agent-only frames 45-49 and 60-64
    assert losses.near_customer == pytest.approx(10 / 90)
    assert losses.agent_only_s == pytest.approx(0.9)
    wider = metrics.retention_losses(agent, customer, labels, hop_s=0.01, near_s=0.2)
    assert wider.near_customer == pytest.approx(25 / 90)  # and the uncertain 30-44


def test_retention_losses_rejects_bad_input() -> None:
    with pytest.raises(BenchError, match="one value per frame, got 3, 3 and 2"):
        metrics.retention_losses([1, 1, 0], [0, 0, 1], ["agent", "x"], hop_s=0.01)
    with pytest.raises(BenchError, match="no agent-only frame"):
        metrics.retention_losses([1, 0], [1, 1], ["agent", "x"], hop_s=0.01)
    with pytest.raises(BenchError, match="hop_s must be positive"):
        metrics.retention_losses([1], [0], ["agent"], hop_s=0.0)
    with pytest.raises(BenchError, match="near_s must be >= 0"):
        metrics.retention_losses([1], [0], ["agent"], hop_s=0.01, near_s=-1.0)


_frame_labels = st.sampled_from(["agent", "agent", "overlap", "uncertain", "silence"])


@given(
    frames=st.lists(st.tuples(st.booleans(), st.booleans(), _frame_labels), min_size=1),
    near=st.integers(0, 30),
)
def test_retention_losses_account_for_every_agent_only_frame(
    frames: list[tuple[bool, bool, str]], near: int
) -> None:
    agent, customer, labels = (list(column) for column in zip(*frames, strict=True))
    solo = np.array(agent) & ~np.array(customer)
    if not solo.any():
        with pytest.raises(BenchError):
            metrics.retention_losses(agent, customer, labels, hop_s=0.01)
        return
    losses = metrics.retention_losses(agent, customer, labels, hop_s=0.01, near_s=near / 100)
    assert losses.kept + sum(losses.by_reason.values()) == pytest.approx(1.0)
    assert losses.kept == pytest.approx((solo & (np.array(labels) == "agent")).sum() / solo.sum())
    assert "agent" not in losses.by_reason
    assert 0.0 <= losses.near_customer <= 1.0 - losses.kept + 1e-12
    wider = metrics.retention_losses(agent, customer, labels, hop_s=0.01, near_s=near / 100 + 0.1)
    assert wider.near_customer >= losses.near_customer
