"""Call mixer: determinism, overlap control, RTTM against the sources, channels, real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from voicepriv.audio import Audio
from voicepriv.bench import rttm
from voicepriv.bench.mixer import HOP_S, CallConfig, make_call, make_calls
from voicepriv.bench.speakers import scan
from voicepriv.bench.telephone import ChannelConfig, EchoConfig
from voicepriv.errors import BenchError

Utts = tuple[list[Audio], list[Audio]]

FAST = CallConfig(duration_s=20.0, sample_rate=8000, channel=None, echo=None)


def test_same_seed_same_bytes_and_other_seed_differs(utterances: Utts) -> None:
    agent, customer = utterances
    config = CallConfig(duration_s=15.0, sample_rate=8000, hold_prob=1.0, backchannel_prob=1.0)
    first = make_call(agent, customer, config, seed=7)
    second = make_call(agent, customer, config, seed=7)
    for name in ("agent", "customer", "other", "mix", "stereo"):
        assert getattr(first, name).samples.tobytes() == getattr(second, name).samples.tobytes()
    assert first.rttm() == second.rttm()
    third = make_call(agent, customer, config, seed=8)
    assert third.mix.samples.tobytes() != first.mix.samples.tobytes()


@pytest.mark.parametrize("target", [0.0, 0.1, 0.25])
def test_overlap_ratio_within_one_point_over_100_calls(utterances: Utts, target: float) -> None:
    agent, customer = utterances
    config = CallConfig(
        duration_s=20.0, sample_rate=8000, channel=None, echo=None, overlap_ratio=target
    )
    overlap = speech = 0.0
    for seed in range(100):
        call = make_call(agent, customer, config, seed=seed)
        overlap += rttm.overlap_seconds(call.segments)
        speech += rttm.speech_seconds(call.segments)
    assert overlap / speech == pytest.approx(target, abs=0.01)


@pytest.mark.parametrize("target", [0.0, 0.1, 0.2])
def test_backchannels_happen_and_stay_short(utterances: Utts, target: float) -> None:
    # The overlap controller used to leave them no budget: 1-4 % of calls' long turns got one
    # (backchannel_prob 0.3), and only the shortest.
    agent, customer = utterances
    config = CallConfig(
        duration_s=30.0, sample_rate=8000, channel=None, echo=None, overlap_ratio=target
    )
    calls = [make_call(agent, customer, config, seed=seed) for seed in range(30)]
    backchannels = [
        event.end - event.start
        for call in calls
        for event in call.events
        if event.label == "backchannel"
    ]
    if target == 0.0:  # a call asked for no overlap gets none (a backchannel only in a pause)
        assert all(rttm.overlap_seconds(call.segments) == 0.0 for call in calls)
        return
    assert len(backchannels) >= 30  # about one call in two has two or more
    assert max(backchannels) > 0.5
    assert all(0.0 < length <= config.backchannel_s[1] + 1e-9 for length in backchannels)


def test_backchannels_are_spoken_not_breaths(shared_data: Path) -> None:
    # A short cut of real speech at an onset was often a breath or a soft word tail 10-40 dB
    # under the speech (a third of them 10 dB or more), inaudible under the other voice yet
    # counted as the listener's speech by the truth.
    config = CallConfig(
        duration_s=40.0, sample_rate=8000, channel=None, echo=None, overlap_ratio=0.2
    )
    hop = round(HOP_S * config.sample_rate)
    found = 0
    for call in make_calls(scan(shared_data), 16, config, seed=5):
        tracks = {"agent": call.agent.mono(), "customer": call.customer.mono()}
        for event in (e for e in call.events if e.label == "backchannel"):
            # the listener's reference segment is the snippet (unless it joins a turn)
            snippet = {
                s.label
                for s in call.segments
                if abs(s.start - event.start) < 0.015 and abs(s.end - event.end) < 0.015
            }
            if len(snippet) != 1:
                continue
            (listener,) = snippet
            own = [s for s in call.segments if s.label == listener]
            speech = np.concatenate(
                [tracks[listener][round(s.start * 8000) : round(s.end * 8000)] for s in own]
            )
            at, end = round(event.start / HOP_S) * hop, round(event.end / HOP_S) * hop
            level = 10 * np.log10(np.mean(tracks[listener][at:end] ** 2))
            assert level >= 10 * np.log10(np.mean(speech**2)) - 13.0, (call.call_id, event)
            found += 1
    assert found >= 10


def test_rttm_matches_the_sources_activity(utterances: Utts) -> None:
    agent, customer = utterances
    call = make_call(agent, customer, FAST, seed=3)
    parsed = rttm.read_rttm(call.rttm())[call.call_id]
    assert parsed == call.segments
    hop = round(HOP_S * call.sample_rate)
    frames = call.agent.frames // hop
    for label, source in (("agent", call.agent), ("customer", call.customer)):
        x = source.samples[: frames * hop, 0].astype(np.float64)
        energy = np.mean(x.reshape(frames, hop) ** 2, axis=1)
        active = rttm.activity(call.segments, label, hop_s=HOP_S, frames=frames)
        # no source energy outside its segments, and nearly every segment frame is sounding
        assert energy[~active].sum() <= 1e-6 * energy.sum()
        loud = energy > 1e-4 * energy[active].mean()
        assert loud[active].mean() > 0.9


def test_events_and_sources_add_up_without_a_channel(utterances: Utts) -> None:
    agent, customer = utterances
    config = CallConfig(duration_s=20.0, sample_rate=8000, channel=None, echo=None, hold_prob=1.0)
    call = make_call(agent, customer, config, seed=11)
    assert {"hold"} <= {e.label for e in call.events}
    expected = call.agent.samples + call.customer.samples + call.other.samples
    np.testing.assert_allclose(call.mix.samples, expected, atol=1e-6)
    hold = next(e for e in call.events if e.label == "hold")
    inside = call.other.slice(hold.start, hold.end).samples
    assert np.sqrt(np.mean(inside**2)) == pytest.approx(10 ** (-30 / 20), rel=0.3)
    assert not any(s.start < hold.end and s.end > hold.start for s in call.segments)


def test_stereo_agent_channel_carries_the_customer_echo(utterances: Utts) -> None:
    agent, customer = utterances
    config = CallConfig(
        duration_s=20.0,
        sample_rate=8000,
        overlap_ratio=0.0,
        backchannel_prob=0.0,
        hold_prob=0.0,
        echo=EchoConfig(delay_s=0.05, erl_db=20.0),
    )
    call = make_call(agent, customer, config, seed=5)
    assert call.stereo.channels == 2 and call.stereo.frames == call.mix.frames == call.agent.frames
    left = call.stereo.samples[:, 0].astype(np.float64)
    customer_only = [s for s in call.segments if s.label == "customer"]
    span = customer_only[0]
    a, b = round(span.start * 8000), round(span.end * 8000)
    ratio = 10 * np.log10(np.sum(left[a:b] ** 2) / np.sum(call.customer.samples[a:b, 0] ** 2))
    assert -30 < ratio < -10  # the echo, about ERL below the customer
    right = call.stereo.samples[:, 1].astype(np.float64)
    assert np.corrcoef(right, call.customer.samples[:, 0])[0, 1] > 0.95


def test_channel_output_is_8khz_band_limited(utterances: Utts) -> None:
    agent, customer = utterances
    call = make_call(agent, customer, CallConfig(duration_s=15.0), seed=2)
    assert call.sample_rate == 8000
    freqs, power = signal.welch(call.mix.samples[:, 0], fs=8000, nperseg=512)
    db = 10 * np.log10(power + 1e-20)
    assert db[np.argmin(np.abs(freqs - 60))] < db[(freqs > 300) & (freqs < 3400)].max() - 30


def test_line_echo_and_packet_loss(utterances: Utts) -> None:
    agent, customer = utterances
    config = CallConfig(
        duration_s=15.0,
        overlap_ratio=0.0,
        backchannel_prob=0.0,
        hold_prob=0.0,
        channel=ChannelConfig(packet_loss=0.2),  # line noise: silence is not exact zeros
        customer_echo=EchoConfig(delay_s=0.01, erl_db=10.0),
    )
    call = make_call(agent, customer, config, seed=4)
    # 20 ms packets lost: runs of exact zeros in every rendering
    zeros = call.mix.samples[:, 0] == 0
    assert 0.1 < zeros.mean() < 0.3
    # the customer channel carries an echo of the agent during agent-only speech
    span = next(s for s in call.segments if s.label == "agent" and s.duration > 1)
    right = call.stereo.slice(span.start, span.end).samples[:, 1]
    source = call.agent.slice(span.start, span.end).samples[:, 0]
    assert -25 < 10 * np.log10(np.sum(right**2) / np.sum(source**2)) < -3


def test_make_call_rejects_silence() -> None:
    silent = [Audio(samples=np.zeros(8000, dtype=np.float32), sample_rate=8000)]
    with pytest.raises(BenchError, match="agent"):
        make_call(silent, silent, FAST, seed=0)
    with pytest.raises(BenchError, match="overlap_ratio"):
        CallConfig(overlap_ratio=0.9)
    with pytest.raises(BenchError, match="backchannel_min_level_db"):
        CallConfig(backchannel_min_level_db=3.0)


def test_calls_from_real_speech(shared_data: Path) -> None:
    corpus = scan(shared_data)
    config = CallConfig(duration_s=20.0, overlap_ratio=0.15)
    calls = list(make_calls(corpus, 3, config, seed=1))
    again = next(iter(make_calls(corpus, 1, config, seed=1)))
    assert again.mix == calls[0].mix and again.stereo == calls[0].stereo
    for call in calls:
        assert call.agent_speaker != call.customer_speaker
        assert call.agent_speaker in corpus.speakers and call.enrollment
        assert call.overlap_ratio == pytest.approx(0.15, abs=0.05)  # short calls: few turns
        assert {s.label for s in call.segments} == {"agent", "customer"}
