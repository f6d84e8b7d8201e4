"""Telephone channel: band limits in the spectrum, bit-exact G.711, noise, loss, echo."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st
from scipy import signal

from voicepriv.bench import telephone
from voicepriv.bench.telephone import ChannelConfig, Codec, EchoConfig
from voicepriv.errors import BenchError


def _band_db(x: np.ndarray, rate: int, frequency: float) -> float:
    freqs, power = signal.welch(x, fs=rate, nperseg=1024)
    return float(10 * np.log10(power[np.argmin(np.abs(freqs - frequency))]))


def test_channel_band_limits_are_visible_in_the_spectrum() -> None:
    rng = np.random.default_rng(0)
    white = 0.1 * rng.standard_normal(8000 * 10)
    config = ChannelConfig(codec=Codec.LINEAR, noise_dbfs=None)
    out = telephone.apply_channel(white, config, rng)
    passband = _band_db(out, 8000, 1000)
    assert _band_db(out, 8000, 100) < passband - 40
    assert _band_db(out, 8000, 3850) < passband - 40
    assert abs(_band_db(out, 8000, 500) - passband) < 1.0
    assert abs(_band_db(out, 8000, 3000) - passband) < 1.0


@pytest.mark.parametrize(("codec", "subtype"), [("mulaw", "ULAW"), ("alaw", "ALAW")])
def test_g711_is_bit_exact_with_libsndfile(codec: str, subtype: str) -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, 8000, subtype=subtype, format="WAV")
    raw = buffer.getvalue()
    data = np.frombuffer(raw[raw.find(b"data") + 8 :], dtype=np.uint8)
    codes = telephone.g711_encode(pcm / 32768.0, codec)
    assert np.array_equal(codes, data)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="int16")
    assert np.array_equal(np.round(telephone.g711_decode(codes, codec) * 32768), decoded)


@given(st.sampled_from(["mulaw", "alaw"]), st.floats(-0.99, 0.99))
def test_g711_error_is_within_half_a_step_of_the_segment(codec: str, value: float) -> None:
    out = telephone.codec_roundtrip(np.array([value]), codec)[0]
    # the widest G.711 quantisation step (top segment) is 1024/32768 for both laws
    assert abs(out - value) <= 1024 / 32768 / 2 + 1 / 32768  # plus the 16-bit rounding
    assert abs(out - value) <= 0.04 * abs(value) + 2 * 16 / 32768


def test_codec_names_are_checked() -> None:
    with pytest.raises(BenchError, match="codec"):
        telephone.codec_roundtrip(np.zeros(3), "gsm")
    with pytest.raises(BenchError, match="linear"):
        telephone.g711_encode(np.zeros(3), "linear")


def test_line_noise_level_and_hum() -> None:
    rng = np.random.default_rng(1)
    noise = telephone.line_noise(80_000, 8000, rng, level_dbfs=-40)
    assert 10 * np.log10(np.mean(noise**2)) == pytest.approx(-40, abs=0.2)
    hum = telephone.line_noise(80_000, 8000, rng, level_dbfs=-90, hum_hz=50, hum_dbfs=-40)
    assert _band_db(hum, 8000, 50) > _band_db(hum, 8000, 1000) + 30


@pytest.mark.parametrize("burst", [1.0, 4.0])
def test_packet_loss_rate_and_silence(burst: float) -> None:
    rng = np.random.default_rng(2)
    x = np.ones(8000 * 200)
    out, lost = telephone.packet_loss(x, 8000, rng, loss_rate=0.1, burst=burst)
    assert lost.mean() == pytest.approx(0.1, abs=0.02)
    assert np.mean(out == 0) == pytest.approx(lost.mean(), abs=1e-3)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], lost, [0]]).astype(int))))[::2]
    assert runs.mean() == pytest.approx(burst, rel=0.3)


def test_echo_path_delay_and_return_loss() -> None:
    rng = np.random.default_rng(3)
    far = rng.standard_normal(8000 * 20)
    config = EchoConfig(delay_s=0.1, erl_db=25.0)
    echo = telephone.apply_echo(far, 8000, config, rng)
    assert telephone.echo_return_loss_db(far, echo) == pytest.approx(25.0, abs=0.5)
    correlation = signal.correlate(echo, far, mode="full", method="fft")[far.size - 1 :]
    assert int(np.argmax(np.abs(correlation))) == 800


def test_echo_path_changes_mid_call() -> None:
    rng = np.random.default_rng(4)
    far = rng.standard_normal(8000 * 20)
    config = EchoConfig(
        delay_s=0.05, erl_db=30.0, change_at_s=10.0, changed_delay_s=0.2, changed_erl_db=10.0
    )
    echo = telephone.apply_echo(far, 8000, config, rng)
    before, after = slice(0, 8000 * 9), slice(8000 * 11, None)
    assert telephone.echo_return_loss_db(far[before], echo[before]) == pytest.approx(30, abs=1)
    assert telephone.echo_return_loss_db(far[after], echo[after]) == pytest.approx(10, abs=1)
    late = signal.correlate(echo[after], far[after], mode="full", method="fft")[
        far[after].size - 1 :
    ]
    assert int(np.argmax(np.abs(late))) == 1600


def test_echo_nonlinearity_creates_harmonics() -> None:
    t = np.arange(8000 * 4) / 8000
    tone = 0.9 * np.sin(2 * np.pi * 500 * t)
    linear = telephone.apply_echo(tone, 8000, EchoConfig(erl_db=10), np.random.default_rng(6))
    clipped = telephone.apply_echo(
        tone, 8000, EchoConfig(erl_db=10, nonlinearity=3.0), np.random.default_rng(6)
    )
    assert _band_db(clipped, 8000, 1500) > _band_db(linear, 8000, 1500) + 20


def test_invalid_echo_config() -> None:
    with pytest.raises(BenchError, match="delay_s"):
        EchoConfig(delay_s=-1)
