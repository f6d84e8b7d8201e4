"""The built-in ``"channels"`` separator on real speech with simulated telephone echo."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from voicepriv.audio import Audio
from voicepriv.backends import channels
from voicepriv.backends.channels import (
    ChannelsOptions,
    ChannelsSeparator,
    EchoCanceller,
    frames_to_segments,
)
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import IsolationRequest, Separator
from voicepriv.model import ChannelLayout, Role
from voicepriv.plugins import backend, backend_names, get_plugin_manager

Array = npt.NDArray[np.float64]

AGENT_SPEAKER = "1688"
CUSTOMER_SPEAKER = "2033"
#: Who talks in each 2.5 s section: customer only, agent only or both (double talk).
PATTERN = ("c", "a", "c", "dt", "a", "c", "dt", "c", "a", "dt", "c", "a")
SECTION_S = 2.5
TURN_GAP_S = 0.2


@functools.cache
def _speech(root: str, speaker: str, rate: int, seconds: float) -> Array:
    parts: list[Array] = []
    need = round(seconds * rate)
    for path in sorted((Path(root) / "librispeech-test-other" / speaker).glob("*.flac")):
        data, file_rate = sf.read(path, dtype="float64")
        if file_rate != rate:
            data = signal.resample_poly(data, rate, file_rate)
        parts.append(data)
        if sum(p.size for p in parts) >= need:
            break
    out = np.concatenate(parts)[:need]
    return 0.05 * out / np.sqrt(np.mean(out**2))


def _echo_path(rate: int, delay_ms: float, seed: int, decay_ms: float = 15.0) -> Array:
    """A decaying random impulse response after a bulk delay, unit energy."""
    rng = np.random.default_rng(seed)
    delay = round(delay_ms * rate / 1000)
    tail = round(4 * decay_ms * rate / 1000)
    response = np.zeros(delay + tail)
    response[delay:] = rng.standard_normal(tail) * np.exp(
        -np.arange(tail) / (decay_ms * rate / 1000)
    )
    return response / np.sqrt(np.sum(response**2))


class Call:
    """A simulated dual-channel call: agent channel = agent + echo of the customer + noise."""

    def __init__(
        self,
        root: Path,
        *,
        rate: int = 8000,
        delay_ms: float = 60.0,
        erl_db: float | None = 12.0,
        pattern: tuple[str, ...] = PATTERN,
        distortion: str | None = None,
        path_change: bool = False,
        noise_dbfs: float | None = None,
        agent_echo_db: float | None = None,
    ) -> None:
        n = round(len(pattern) * SECTION_S * rate)
        section = n // len(pattern)
        agent_gate = np.zeros(n)
        customer_gate = np.zeros(n)
        gap = round(TURN_GAP_S * rate)
        for index, kind in enumerate(pattern):
            # Each section starts with a short turn-taking gap in which nobody speaks.
            span = slice(index * section + gap, (index + 1) * section)
            customer_gate[span] = kind in {"c", "dt"}
            agent_gate[span] = kind in {"a", "dt"}
        self.rate = rate
        self.agent = _speech(str(root), AGENT_SPEAKER, rate, n / rate) * agent_gate
        self.customer = _speech(str(root), CUSTOMER_SPEAKER, rate, n / rate) * customer_gate
        source = self.customer
        if distortion == "clip":
            # An overdriven converter: clipped at 5 % of the peak, far beyond a linear model.
            limit = 0.05 * np.max(np.abs(source))
            source = np.clip(source, -limit, limit) * 10.0
        echo = signal.fftconvolve(source, _echo_path(rate, delay_ms, seed=1))[:n]
        if path_change:
            other = signal.fftconvolve(source, _echo_path(rate, delay_ms / 2 + 10, seed=2))[:n]
            echo[n // 2 :] = other[n // 2 :]
        self.echo = echo * (0.0 if erl_db is None else 10 ** (-erl_db / 20))
        # Line noise on both legs (white, at noise_dbfs RMS), or a nearly noiseless line.
        level = 2e-5 if noise_dbfs is None else 10 ** (noise_dbfs / 20)
        self.noise_power = level**2
        noise = np.random.default_rng(0).standard_normal(n) * level
        self.mic = self.agent + self.echo + noise
        self.reference = self.customer + (
            0.0 if noise_dbfs is None else np.random.default_rng(7).standard_normal(n) * level
        )
        # The agent's own line echo in the customer channel (the far hybrid), 30 ms delay.
        if agent_echo_db is not None:
            agent_echo = signal.fftconvolve(self.agent, _echo_path(rate, 30.0, seed=3))[:n]
            self.reference = self.reference + agent_echo * 10 ** (-agent_echo_db / 20)
        self.customer_only = (customer_gate > 0) & (agent_gate == 0)
        self.agent_only = (agent_gate > 0) & (customer_gate == 0)
        self.double_talk = (customer_gate > 0) & (agent_gate > 0)

    def audio(self, *, agent_left: bool = True) -> Audio:
        pair = (self.mic, self.reference) if agent_left else (self.reference, self.mic)
        return Audio(samples=np.stack(pair, axis=1), sample_rate=self.rate)


def erle_db(call: Call, output: Array, mask: npt.NDArray[np.bool_] | None = None) -> float:
    span = call.customer_only if mask is None else mask
    return float(10 * np.log10(np.sum(call.echo[span] ** 2) / (np.sum(output[span] ** 2) + 1e-20)))


def si_sdr_db(estimate: Array, reference: Array) -> float:
    scale = float(estimate @ reference) / float(reference @ reference)
    target = scale * reference
    noise = estimate - target
    return float(10 * np.log10(float(target @ target) / (float(noise @ noise) + 1e-20)))


def run(call: Call, **options: float) -> tuple[Array, channels.IsolationResult]:
    result = ChannelsSeparator(options=ChannelsOptions(**options)).isolate(
        call.audio(), IsolationRequest(layout=ChannelLayout.stereo())
    )
    return result.audio.samples[:, 0].astype(np.float64), result


# --------------------------------------------------------------------------- plugin


def test_plugin_gives_channels_separator_and_nothing_else() -> None:
    manager = get_plugin_manager(autoload=False)
    assert "channels" in backend_names(manager, "separator")
    separator = backend(manager, "separator", "channels", {"filter_ms": 150.0})
    assert isinstance(separator, Separator)
    assert separator.name == "channels"
    assert channels.voicepriv_separator(name="speaker", options={}) is None
    assert channels.voicepriv_backend_names(kind="embedder") == []


def test_unknown_and_invalid_options_are_rejected() -> None:
    with pytest.raises(ConfigError, match="'filter_len'"):
        ChannelsOptions.from_mapping({"filter_len": 3})
    with pytest.raises(ConfigError, match="'step'"):
        ChannelsOptions.from_mapping({"step": 1.5})


def test_filter_ms_too_short_for_one_tap_is_a_config_error() -> None:
    # 0.01 ms rounds to zero taps at any telephone rate; it used to crash deep inside.
    with pytest.raises(ConfigError, match=r"'filter_ms'.*>= 1 \(milliseconds\).*0\.01"):
        ChannelsOptions.from_mapping({"filter_ms": 0.01})
    with pytest.raises(ConfigError, match="filter_ms"):
        backend(get_plugin_manager(autoload=False), "separator", "channels", {"filter_ms": 0.5})
    assert ChannelsOptions(filter_ms=1.0).filter_ms == 1.0


def test_refuses_mono_audio_and_missing_layout() -> None:
    mono = Audio(samples=np.zeros(8000, np.float32), sample_rate=8000)
    stereo = Audio(samples=np.zeros((8000, 2), np.float32), sample_rate=8000)
    separator = ChannelsSeparator()
    with pytest.raises(IsolationError, match="2-channel"):
        separator.isolate(mono, IsolationRequest(layout=ChannelLayout.stereo()))
    with pytest.raises(IsolationError, match="layout is unknown"):
        separator.isolate(stereo, IsolationRequest(layout=None))


@given(st.lists(st.booleans(), max_size=60), st.sampled_from([0.01, 0.016, 0.032]))
def test_frames_to_segments_covers_exactly_the_true_frames(mask: list[bool], hop: float) -> None:
    duration = len(mask) * hop
    segments = frames_to_segments(np.array(mask, bool), hop, "x", duration)
    assert sum(s.duration for s in segments) == pytest.approx(sum(mask) * hop)
    assert all(a.end < b.start for a, b in itertools.pairwise(segments))
    for segment in segments:
        first = round(segment.start / hop)
        last = round(segment.end / hop)
        assert all(mask[first:last])


# --------------------------------------------------------------------------- cancelling


@pytest.mark.parametrize(
    ("rate", "delay_ms", "erl_db"),
    [(8000, 60.0, 12.0), (8000, 120.0, 6.0), (16000, 20.0, 20.0)],
)
def test_erle_on_customer_only_speech(
    shared_data: Path, rate: int, delay_ms: float, erl_db: float
) -> None:
    call = Call(shared_data, rate=rate, delay_ms=delay_ms, erl_db=erl_db)
    output, result = run(call)
    assert erle_db(call, output) >= 25.0
    assert result.agent_channel == 0
    assert 0.0 <= result.residual_leakage <= 1.0
    assert 0.0 <= result.confidence <= 1.0
    # The agent is kept: most agent-only speech survives untouched.
    assert si_sdr_db(output[call.agent_only], call.agent[call.agent_only]) >= 20.0


def test_agent_speech_passes_when_there_is_no_echo(shared_data: Path) -> None:
    call = Call(shared_data, erl_db=None)
    output, result = run(call)
    assert si_sdr_db(output, call.agent) >= 20.0
    assert si_sdr_db(output[call.agent_only], call.agent[call.agent_only]) >= 30.0
    assert sum(s.duration for s in result.kept) > 0.5 * call.agent_only.sum() / call.rate


@pytest.mark.parametrize("added", ["dc", "rumble", "hum"])
def test_an_agent_channel_floored_by_dc_rumble_or_hum_is_refused(
    shared_data: Path, added: str
) -> None:
    # Under a DC offset the canceller never adapted and 21-28 % of the customer's crosstalk was
    # kept with confidence 1.0; rumble kept 7-27 %. Such a call is refused now.
    call = Call(shared_data, rate=16000, delay_ms=0.0, erl_db=12.0)
    n = call.mic.size
    if added == "dc":
        extra = np.full(n, 0.04)
    elif added == "rumble":
        low = signal.butter(4, 120, fs=call.rate, output="sos")
        rumble = signal.sosfilt(low, np.random.default_rng(0).standard_normal(n))
        extra = rumble / np.sqrt(np.mean(rumble**2)) * 10 ** (-30 / 20)
    else:
        extra = 0.02 * np.sin(2 * np.pi * 50 * np.arange(n) / call.rate)
    stereo = np.stack([call.mic + extra, call.reference], axis=1)
    with pytest.raises(IsolationError, match=r"noise floor \(-\d+ dBFS\) is set by a DC offset"):
        ChannelsSeparator().isolate(
            Audio(samples=stereo, sample_rate=call.rate),
            IsolationRequest(layout=ChannelLayout.stereo()),
        )
    # The same call without it is isolated (a quiet floor is never refused, whatever sets it).
    output, _ = run(call)
    assert np.any(output)


def test_double_talk_does_not_make_the_filter_diverge(shared_data: Path) -> None:
    # Long double talk with a loud agent, framed by customer-only speech.
    pattern = ("c", "c", "c", "dt", "dt", "dt", "dt", "c", "c")
    call = Call(shared_data, pattern=pattern, erl_db=20.0)
    canceller = EchoCanceller(call.rate)
    error, _ = canceller.process(call.customer, call.mic)
    section = round(SECTION_S * call.rate)
    before = slice(2 * section, 3 * section)
    after = slice(7 * section, 8 * section)
    linear = error - call.agent[: error.size]

    def attenuation(span: slice) -> float:
        return float(10 * np.log10(np.sum(call.echo[span] ** 2) / np.sum(linear[span] ** 2)))

    assert attenuation(before) >= 15.0
    # Ten seconds of double talk leave the foreground filter as good as before (within 3 dB).
    assert attenuation(after) >= attenuation(before) - 3.0
    # Agent speech during double talk comes through the canceller nearly intact.
    talk = slice(3 * section, 7 * section)
    assert si_sdr_db(error[talk], call.agent[talk]) >= 20.0


def test_echo_path_change_is_relearnt(shared_data: Path) -> None:
    call = Call(shared_data, path_change=True, pattern=("c",) * 12, erl_db=10.0)
    canceller = EchoCanceller(call.rate)
    error, _ = canceller.process(call.customer, call.mic)
    n = error.size
    last = slice(n - 5 * call.rate, n)
    residual = error[last]
    assert 10 * np.log10(np.sum(call.echo[last] ** 2) / np.sum(residual**2)) >= 20.0
    assert canceller.copies > 2


def test_non_converging_echo_is_silenced_not_kept(shared_data: Path) -> None:
    call = Call(shared_data, distortion="clip", erl_db=6.0)
    output, result = run(call)
    labels = {segment.label for segment in result.removed}
    assert "not_converged" in labels
    assert erle_db(call, output) >= 25.0
    assert any("converged" in note for note in result.notes)


def test_streaming_chunk_size_does_not_change_the_output(shared_data: Path) -> None:
    call = Call(shared_data, pattern=("c", "dt", "a", "c"))
    small, _ = run(call, chunk_s=0.5)
    large, _ = run(call, chunk_s=60.0)
    np.testing.assert_allclose(small, large, atol=1e-4)


def test_agent_on_the_right_channel(shared_data: Path) -> None:
    call = Call(shared_data, pattern=("c", "a", "c", "dt"))
    result = ChannelsSeparator().isolate(
        call.audio(agent_left=False),
        IsolationRequest(layout=ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT)),
    )
    assert result.agent_channel == 1
    output = result.audio.samples[:, 0].astype(np.float64)
    assert si_sdr_db(output[call.agent_only], call.agent[call.agent_only]) >= 20.0


def test_progress_is_reported(shared_data: Path) -> None:
    call = Call(shared_data, pattern=("c", "a"))
    seen: list[tuple[float, float]] = []
    ChannelsSeparator(options=ChannelsOptions(chunk_s=1.0)).isolate(
        call.audio(),
        IsolationRequest(layout=ChannelLayout.stereo(), progress=lambda d, t: seen.append((d, t))),
    )
    assert len(seen) >= 4
    assert seen[-1][0] == pytest.approx(seen[-1][1])


def test_report_spans_match_the_silenced_audio(shared_data: Path) -> None:
    call = Call(shared_data, erl_db=8.0)
    output, result = run(call)
    rate = call.rate
    silenced = np.zeros(output.size, bool)
    for segment in result.removed:
        assert segment.label in {"leakage", "not_converged"}
        span = slice(round(segment.start * rate), round(segment.end * rate))
        assert not np.any(output[span]), segment
        silenced[span] = True
    # Removed spans do not overlap, and kept spans never fall inside them.
    assert sum(s.duration for s in result.removed) == pytest.approx(silenced.sum() / rate)
    for segment in result.kept:
        span = slice(round(segment.start * rate), round(segment.end * rate))
        assert not silenced[span].any(), segment
    assert result.metrics["silenced_s"] > 0


@settings(max_examples=8, deadline=None)
@given(
    delay_ms=st.floats(0.0, 128.0),
    rate=st.sampled_from([8000, 16000]),
    seed=st.integers(0, 2**16),
)
def test_canceller_models_any_echo_path_up_to_128_ms(delay_ms: float, rate: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(4 * rate) * 0.05
    echo = signal.fftconvolve(reference, _echo_path(rate, delay_ms, seed, decay_ms=12.0))
    echo = 0.3 * echo[: reference.size]
    error, _ = EchoCanceller(rate).process(reference, echo)
    last = slice(error.size - rate, error.size)
    assert 10 * np.log10(np.sum(echo[last] ** 2) / np.sum(error[last] ** 2)) >= 30.0


@pytest.mark.parametrize(("delay_ms", "erl_db"), [(60.0, 12.0), (120.0, 6.0)])
def test_agent_speech_survives_double_talk(
    shared_data: Path, delay_ms: float, erl_db: float
) -> None:
    # Failing closed must not mean dropping the agent whenever the customer talks too.
    call = Call(shared_data, delay_ms=delay_ms, erl_db=erl_db)
    output, _ = run(call)
    talk = call.double_talk
    assert si_sdr_db(output[talk], call.agent[talk]) >= 12.0


# --------------------------------------------------------------------------- line noise


def coherent_power(output: Array, reference: Array, mask: npt.NDArray[np.bool_]) -> float:
    """Mean power of the part of *output* (on *mask*) that is linearly explained by
    *reference* (any filter up to ~250 ms): the integral of |S_ro|^2 / S_rr (Welch)."""
    nperseg = 4096
    _, s_rr = signal.welch(reference * mask, nperseg=nperseg)
    _, s_ro = signal.csd(reference * mask, output * mask, nperseg=nperseg)
    coherent = np.abs(s_ro) ** 2 / (s_rr + 1e-30)
    # welch/csd give one-sided densities over [0, 0.5] cycles/sample: integrate, then
    # rescale from the whole signal to the masked share of it.
    return float(np.sum(coherent) * 0.5 / (coherent.size - 1) / mask.mean())


def agent_retention(call: Call, output: Array) -> float:
    """Share of 20 ms agent-only speech frames the output keeps (at least half the energy)."""
    hop = round(0.02 * call.rate)
    frames = call.agent.size // hop

    def energy(x: Array) -> Array:
        framed: Array = (x[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
        return framed

    agent = energy(call.agent)
    only = call.agent_only[: frames * hop].reshape(frames, hop).all(axis=1)
    speech = only & (agent > 1e-3 * agent[only].mean())
    return float(np.mean(energy(output)[speech] >= 0.5 * agent[speech]))


def db(power: float) -> float:
    return float(10 * np.log10(power + 1e-30))


@pytest.mark.parametrize(
    ("noise_dbfs", "erl_db"), [(-60.0, 25.0), (-60.0, 35.0), (-50.0, 25.0), (-50.0, 35.0)]
)
def test_low_level_echo_under_line_noise_keeps_the_agent(
    shared_data: Path, noise_dbfs: float, erl_db: float
) -> None:
    # Echo 25-35 dB under a -26 dBFS customer: -51 to -61 dBFS, around the line noise.
    call = Call(shared_data, erl_db=erl_db, noise_dbfs=noise_dbfs)
    output, result = run(call)
    assert agent_retention(call, output) >= 0.9
    # No residual customer speech: what is left over customer-only speech is at most line
    # noise, and its customer-coherent part is under the noise floor and under -60 dBFS.
    only = call.customer_only
    assert db(float(np.mean(output[only] ** 2))) <= db(call.noise_power) + 1.0
    residue = coherent_power(output, call.customer, only)
    assert db(residue) <= min(db(call.noise_power) - 3.0, -60.0)
    assert result.metrics["noise_floor_dbfs"] == pytest.approx(noise_dbfs, abs=2.0)


@pytest.mark.parametrize("distortion", [None, "clip"])
def test_loud_echo_under_line_noise_is_still_cancelled_or_silenced(
    shared_data: Path, distortion: str | None
) -> None:
    # A loud echo (ERL 6 dB: -32 dBFS) on a -50 dBFS line: the noise floor must not excuse it.
    call = Call(shared_data, erl_db=6.0, noise_dbfs=-50.0, distortion=distortion)
    output, result = run(call)
    only = call.customer_only
    echo = db(float(np.mean(call.echo[only] ** 2)))
    residue = db(coherent_power(output, call.customer, only))
    assert residue <= min(echo - 25.0, db(call.noise_power) - 3.0)
    if distortion is not None:
        assert "not_converged" in {segment.label for segment in result.removed}
    else:
        assert agent_retention(call, output) >= 0.9


def test_coherent_power_measures_an_echo_and_ignores_noise(shared_data: Path) -> None:
    # The measure used above: finds a -51 dBFS echo, and reads independent noise as far less.
    call = Call(shared_data, erl_db=25.0, noise_dbfs=-60.0)
    only = call.customer_only
    echo = db(float(np.mean(call.echo[only] ** 2)))
    assert coherent_power(call.echo, call.customer, only) == pytest.approx(
        10 ** (echo / 10), rel=0.25
    )
    noise = call.mic - call.agent - call.echo
    assert db(coherent_power(noise, call.customer, only)) <= db(call.noise_power) - 10.0


@pytest.mark.parametrize("coherence_check", [True, False])
def test_generated_call_with_quiet_echo_under_line_noise_keeps_no_customer_residue(
    shared_data: Path, coherence_check: bool
) -> None:
    # Call 1 of `voicepriv bench make-calls --n 10 --seed 4` (the bench's default 8 kHz mu-law
    # line at -60 dBFS, echo 15-35 dB down): the adaptive filter alone leaves customer echo
    # coherent at -62 dB, above the line noise. (Until the mixer's backchannels changed the
    # calls, call 4 of seed 1 was this call.) The final coherence check must find it; with
    # the check turned off (threshold 1) the residue is expected to survive.
    from voicepriv.bench import mixer, speakers
    from voicepriv.bench.telephone import ChannelConfig

    config = mixer.CallConfig(
        duration_s=30.0,
        overlap_ratio=0.1,
        channel=ChannelConfig(codec="mulaw", noise_dbfs=-60.0),
        echo_erl_db=(15.0, 35.0),
        echo_delay_s=(0.02, 0.12),
    )
    call = mixer.make_call_at(speakers.scan(shared_data), 1, config, seed=4)
    options = {} if coherence_check else {"coherence_threshold": 1.0}
    result = ChannelsSeparator(options=ChannelsOptions(**options)).isolate(
        call.stereo, IsolationRequest(layout=ChannelLayout.stereo())
    )
    output = result.audio.samples[:, 0].astype(np.float64)
    customer = call.customer.samples[:, 0].astype(np.float64)
    agent = call.agent.samples[:, 0].astype(np.float64)
    size = min(output.size, customer.size, agent.size)
    hop = call.sample_rate // 50

    def active(x: Array) -> npt.NDArray[np.bool_]:
        frames = (x[: size // hop * hop].reshape(-1, hop) ** 2).mean(axis=1)
        mask: npt.NDArray[np.bool_] = np.repeat(frames > 1e-5, hop)
        return np.concatenate([mask, np.zeros(size - mask.size, bool)])

    only = active(customer) & ~active(agent)
    residue = db(coherent_power(output[:size], customer[:size], only))
    if coherence_check:
        assert residue <= -70.0, residue  # 10 dB under the -60 dBFS line noise
        kept = active(agent) & ~active(customer)
        agent_kept = float(np.sum(output[:size][kept] ** 2) / np.sum(agent[:size][kept] ** 2))
        assert agent_kept >= 0.85, agent_kept
    else:
        # Guards the scenario itself: if the canceller alone ever gets this call clean, this
        # test no longer exercises the coherence check and needs a harder call.
        assert residue > -70.0, "the scenario no longer needs the coherence check"


@pytest.mark.parametrize(
    ("rate", "delay_ms", "erl_db", "path_change"),
    [
        (8000, 60.0, 12.0, False),
        (8000, 120.0, 6.0, False),
        (16000, 20.0, 20.0, False),
        (8000, 80.0, 12.0, True),
    ],
)
def test_no_customer_only_frame_is_detectable_on_a_quiet_line(
    shared_data: Path, rate: int, delay_ms: float, erl_db: float, path_change: bool
) -> None:
    # "Residual customer speech that an energy detector could pick up: none." On a nearly
    # noiseless line, no 20 ms frame of customer-only speech may stay above -60 dBFS.
    call = Call(shared_data, rate=rate, delay_ms=delay_ms, erl_db=erl_db, path_change=path_change)
    output, _ = run(call)
    hop = rate // 50
    frames = output.size // hop
    levels = (output[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    only = call.customer_only[: frames * hop].reshape(frames, hop).all(axis=1)
    loud = np.flatnonzero(only & (levels > 1e-6)) * 0.02
    assert loud.size == 0, f"customer-only frames above -60 dBFS at {loud.tolist()} s"


@pytest.mark.parametrize(
    ("delay_ms", "erl_db", "path_change", "distortion"),
    [(40.0, 10.0, False, "clip"), (80.0, 12.0, True, None), (120.0, 6.0, False, None)],
)
def test_output_is_never_louder_than_the_microphone_over_customer_only_speech(
    shared_data: Path, delay_ms: float, erl_db: float, path_change: bool, distortion: str | None
) -> None:
    # Where only the customer speaks, an audible output frame louder than the agent channel
    # itself can only be the canceller's estimate: the customer's speech, filtered.
    call = Call(
        shared_data,
        delay_ms=delay_ms,
        erl_db=erl_db,
        path_change=path_change,
        distortion=distortion,
    )
    output, _ = run(call)
    hop = call.rate // 50
    frames = output.size // hop

    def levels(x: Array) -> Array:
        framed: Array = (x[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
        return framed

    only = call.customer_only[: frames * hop].reshape(frames, hop).all(axis=1)
    out, mic = levels(output), levels(call.mic)
    louder = np.flatnonzero(only & (out > 1e-8) & (out > mic)) * 0.02
    assert louder.size == 0, f"output louder than the microphone at {louder.tolist()} s"


# --------------------------------------------------------------------------- agent echo


def test_agent_echo_in_the_customer_channel_keeps_the_agent(shared_data: Path) -> None:
    # The agent's own line echo in the customer channel (ERL 12 dB) used to count as customer
    # speech: agent turns were removed as "not_converged" (55 % of agent frames kept).
    pattern = ("c", "a", "dt", "a", "dt", "c", "dt", "a")
    call = Call(shared_data, pattern=pattern, erl_db=6.0, agent_echo_db=12.0)
    output, result = run(call)
    assert agent_retention(call, output) >= 0.9
    assert result.metrics["agent_echo_removed_db"] >= 10.0
    # Removing the agent's echo from the reference leaves the customer's speech in it: the
    # customer's echo is still removed over customer-only speech and while both talk
    # (measured: 93 dB and 18 dB under the echo; 22 dB in double talk without agent echo).
    only = call.customer_only
    echo_only = db(float(np.mean(call.echo[only] ** 2)))
    assert db(coherent_power(output, call.customer, only)) <= echo_only - 25.0
    talk = call.double_talk
    echo_talk = db(float(np.mean(call.echo[talk] ** 2)))
    assert db(coherent_power(output, call.customer, talk)) <= echo_talk - 15.0
    hop = call.rate // 50
    frames = output.size // hop
    levels = (output[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    only_frames = only[: frames * hop].reshape(frames, hop).all(axis=1)
    assert not np.any(only_frames & (levels > 1e-6))


def test_no_agent_echo_means_no_correction(shared_data: Path) -> None:
    _, result = run(Call(shared_data, erl_db=12.0))
    assert result.metrics["agent_echo_removed_db"] == 0.0


def test_demo_call_keeps_the_agent() -> None:
    # `voicepriv demo`: the agent's echo in the customer channel made the stored agent track
    # keep 0.0 % of the agent's energy. Measured after the fix: 100 %.
    from voicepriv.demo import build_call

    stereo, agent, customer = build_call()
    result = ChannelsSeparator().isolate(
        stereo, IsolationRequest(layout=ChannelLayout.stereo(Role.AGENT, Role.CUSTOMER))
    )
    output = result.audio.samples[:, 0].astype(np.float64)
    clean = agent.mono().astype(np.float64)
    theirs = customer.mono().astype(np.float64)
    assert float(output @ output) >= 0.8 * float(clean @ clean)
    customer_only = (np.abs(clean) < 1e-4) & (np.abs(theirs) > 1e-3)
    kept = float(np.sum(output[customer_only] ** 2))
    assert kept <= 1e-4 * float(np.sum(theirs[customer_only] ** 2))
    assert result.metrics["not_converged_s"] < 2.0


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize("line_noise", [0.0, 1e-4])
def test_customer_channel_that_never_rises_above_its_floor_is_refused(line_noise: float) -> None:
    # A mono mix of both voices on the agent channel of a stereo container, the customer
    # channel digital silence or line noise only: the layout cannot be right, and keeping
    # the agent channel would keep all of the customer.
    from voicepriv.demo import build_call

    _, agent, customer = build_call()
    mix = agent.mono().astype(np.float64) + customer.mono().astype(np.float64)
    other = np.random.default_rng(0).standard_normal(mix.size) * line_noise
    audio = Audio(samples=np.stack([mix, other], axis=1), sample_rate=agent.sample_rate)
    with pytest.raises(IsolationError, match=r"channel 1\) never rises above its noise floor"):
        ChannelsSeparator().isolate(audio, IsolationRequest(layout=ChannelLayout.stereo()))
