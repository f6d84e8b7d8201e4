"""A telephone channel model: band limits, G.711, line noise, packet loss and echo paths.

Every function is pure numpy/scipy on 1-D arrays (``float`` samples in [-1, 1]) with an explicit
:class:`numpy.random.Generator` wherever randomness is involved, so a seed fixes the bytes.

Pieces, in the order a call passes through them (:func:`apply_channel` runs them all):

1. :func:`band_limit`: the 300-3400 Hz telephone band (Butterworth band-pass, causal).
2. :func:`line_noise`: analogue line noise (white noise plus optional mains hum) at a level in dBFS.
3. :func:`g711_encode` / :func:`g711_decode`: ITU-T G.711 mu-law or A-law, bit-exact
   (the segment tables of the reference implementation), through :func:`codec_roundtrip`.
4. :func:`packet_loss`: 20 ms packets lost at a rate, optionally in bursts (Gilbert model),
   replaced by silence (no concealment).

Echo (the agent's microphone picking up the customer's voice from the headset, or a hybrid
reflecting it) is modelled by :func:`echo_path` (an impulse response with a pure delay, an
exponentially decaying tail and a given echo return loss) and :func:`apply_echo`, which adds an
optional loudspeaker non-linearity and a mid-call echo path change (:class:`EchoConfig`).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt
from scipy import signal

from voicepriv.errors import BenchError

__all__ = [
    "TELEPHONE_BAND",
    "TELEPHONE_RATE",
    "ChannelConfig",
    "Codec",
    "EchoConfig",
    "apply_channel",
    "apply_echo",
    "band_limit",
    "codec_roundtrip",
    "echo_path",
    "echo_return_loss_db",
    "g711_decode",
    "g711_encode",
    "line_noise",
    "packet_loss",
]

#: Narrowband telephone sample rate (Hz).
TELEPHONE_RATE: Final = 8_000
#: The telephone pass band (Hz), ITU-T G.712.
TELEPHONE_BAND: Final = (300.0, 3400.0)

FloatArray = npt.NDArray[np.float64]
ByteArray = npt.NDArray[np.uint8]


class Codec(enum.Enum):
    """How samples are coded on the line."""

    LINEAR = "linear"
    MULAW = "mulaw"
    ALAW = "alaw"


def _codec(value: object) -> Codec:
    if isinstance(value, Codec):
        return value
    try:
        return Codec(value)
    except ValueError:
        choices = ", ".join(repr(c.value) for c in Codec)
        raise BenchError(f"codec: expected one of {choices}, got {value!r}") from None


def _as_1d(x: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1:
        raise BenchError(f"{name}: expected a 1-D array of samples, got shape {array.shape}")
    return array


# --------------------------------------------------------------------------- band limits


def band_limit(
    x: npt.ArrayLike,
    sample_rate: int,
    band: tuple[float, float] = TELEPHONE_BAND,
    *,
    order: int = 8,
) -> FloatArray:
    """Band-pass *x* to *band* (Hz) with a causal Butterworth filter of *order* (per edge).

    At 8 kHz the default filter attenuates 100 Hz and 3800 Hz by more than 40 dB relative to
    1 kHz. The upper edge is clipped below Nyquist.
    """
    samples = _as_1d(x, "band_limit")
    low, high = band
    nyquist = sample_rate / 2
    if not 0 < low < high:
        raise BenchError(f"band_limit: expected 0 < low < high, got band {band!r}")
    if low >= nyquist:
        raise BenchError(f"band_limit: low edge {low} Hz is above Nyquist ({nyquist} Hz)")
    high = min(high, 0.98 * nyquist)
    sos = signal.butter(order, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    out: FloatArray = signal.sosfilt(sos, samples)
    return out


# --------------------------------------------------------------------------- G.711

_SEG_AEND: Final = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_SEG_UEND: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159


def _to_pcm16(samples: FloatArray) -> npt.NDArray[np.int64]:
    scaled = np.clip(np.round(samples * 32768.0), -32768, 32767)
    return scaled.astype(np.int64)


def _alaw_encode(pcm: npt.NDArray[np.int64]) -> ByteArray:
    positive = pcm >= 0
    mask = np.where(positive, 0xD5, 0x55)
    value = np.abs(pcm) >> 3  # magnitude first, as libsndfile and G.191 do
    seg = np.searchsorted(_SEG_AEND, value, side="left")
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((value >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    out: ByteArray = (aval ^ mask).astype(np.uint8)
    return out


def _alaw_decode(code: ByteArray) -> npt.NDArray[np.int64]:
    a = code.astype(np.int64) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    out: npt.NDArray[np.int64] = np.where(a & 0x80, t, -t)
    return out


def _ulaw_encode(pcm: npt.NDArray[np.int64]) -> ByteArray:
    negative = pcm < 0
    mask = np.where(negative, 0x7F, 0xFF)
    value = np.minimum(np.abs(pcm) >> 2, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, value, side="left")
    uval = (np.minimum(seg, 7) << 4) | ((value >> (np.minimum(seg, 7) + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    out: ByteArray = (uval ^ mask).astype(np.uint8)
    return out


def _ulaw_decode(code: ByteArray) -> npt.NDArray[np.int64]:
    u = ~code.astype(np.int64) & 0xFF
    t = ((u & 0x0F) << 3) + _ULAW_BIAS
    t = t << ((u & 0x70) >> 4)
    out: npt.NDArray[np.int64] = np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS)
    return out


def g711_encode(x: npt.ArrayLike, codec: Codec | str) -> ByteArray:
    """Encode float samples in [-1, 1] to G.711 bytes (``"mulaw"`` or ``"alaw"``), bit-exact.

    Samples are first rounded to 16-bit PCM (values outside [-1, 1] clip).
    """
    kind = _codec(codec)
    pcm = _to_pcm16(_as_1d(x, "g711_encode"))
    if kind is Codec.MULAW:
        return _ulaw_encode(pcm)
    if kind is Codec.ALAW:
        return _alaw_encode(pcm)
    raise BenchError("g711_encode: codec 'linear' has no G.711 bytes; use 'mulaw' or 'alaw'")


def g711_decode(code: npt.ArrayLike, codec: Codec | str) -> FloatArray:
    """Decode G.711 bytes back to float samples in [-1, 1]."""
    kind = _codec(codec)
    data = np.asarray(code, dtype=np.uint8)
    if kind is Codec.MULAW:
        pcm = _ulaw_decode(data)
    elif kind is Codec.ALAW:
        pcm = _alaw_decode(data)
    else:
        raise BenchError("g711_decode: codec 'linear' has no G.711 bytes; use 'mulaw' or 'alaw'")
    out: FloatArray = pcm.astype(np.float64) / 32768.0
    return out


def codec_roundtrip(x: npt.ArrayLike, codec: Codec | str) -> FloatArray:
    """*x* after encoding and decoding with *codec* (``"linear"``: 16-bit PCM rounding)."""
    kind = _codec(codec)
    samples = _as_1d(x, "codec_roundtrip")
    if kind is Codec.LINEAR:
        out: FloatArray = _to_pcm16(samples).astype(np.float64) / 32768.0
        return out
    return g711_decode(g711_encode(samples, kind), kind)


# --------------------------------------------------------------------------- noise and loss


def line_noise(
    frames: int,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    level_dbfs: float = -60.0,
    hum_hz: float | None = None,
    hum_dbfs: float = -70.0,
) -> FloatArray:
    """Line noise: white Gaussian noise with RMS *level_dbfs*, plus mains hum when *hum_hz*.

    The hum has its fundamental and 2nd/3rd harmonics, random phase, total RMS *hum_dbfs*.
    """
    if frames < 0:
        raise BenchError(f"line_noise: expected a non-negative frame count, got {frames}")
    noise: FloatArray = rng.standard_normal(frames) * 10.0 ** (level_dbfs / 20.0)
    if hum_hz is not None:
        t = np.arange(frames) / sample_rate
        phases = rng.uniform(0, 2 * np.pi, 3)
        hum = sum((1.0 / k) * np.sin(2 * np.pi * hum_hz * k * t + phases[k - 1]) for k in (1, 2, 3))
        hum_array = np.asarray(hum, dtype=np.float64)
        rms = float(np.sqrt(np.mean(hum_array**2))) if frames else 1.0
        noise = noise + hum_array / max(rms, 1e-12) * 10.0 ** (hum_dbfs / 20.0)
    return noise


def packet_loss(
    x: npt.ArrayLike,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    loss_rate: float,
    packet_ms: float = 20.0,
    burst: float = 1.0,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Drop packets of *packet_ms* at average *loss_rate*; lost packets become silence.

    Losses follow a two-state Gilbert model whose mean burst length is *burst* packets
    (``1.0`` is independent losses). Returns the samples and the per-packet lost mask.
    """
    samples = _as_1d(x, "packet_loss").copy()
    if not 0.0 <= loss_rate < 1.0:
        raise BenchError(f"packet_loss: loss_rate must be in [0, 1), got {loss_rate}")
    if burst < 1.0:
        raise BenchError(f"packet_loss: burst must be at least 1 packet, got {burst}")
    size = max(1, round(sample_rate * packet_ms / 1000.0))
    packets = -(-samples.size // size)
    uniform = rng.random(packets)
    if loss_rate == 0.0 or packets == 0:
        return samples, np.zeros(packets, dtype=bool)
    if burst == 1.0:
        lost = uniform < loss_rate
    else:
        leave = 1.0 / burst  # P(bad -> good)
        enter = loss_rate * leave / (1.0 - loss_rate)  # stationary P(bad) = loss_rate
        lost = np.zeros(packets, dtype=bool)
        state = uniform[0] < loss_rate
        for i in range(packets):  # one step per 20 ms packet, not per sample
            lost[i] = state
            state = uniform[i] >= leave if state else uniform[i] < enter
    mask = np.repeat(lost, size)[: samples.size]
    samples[mask] = 0.0
    return samples, lost


# --------------------------------------------------------------------------- echo


def echo_path(
    sample_rate: int,
    rng: np.random.Generator,
    *,
    delay_s: float,
    erl_db: float,
    tail_s: float = 0.03,
) -> FloatArray:
    """An echo impulse response: a pure *delay_s*, then a decaying random tail of *tail_s*.

    The tail is Gaussian noise under an exponential envelope that falls 60 dB over *tail_s*.
    The response is scaled so that its energy is ``10**(-erl_db/10)``: white noise through it
    comes back *erl_db* dB quieter (the echo return loss, ITU-T G.168).
    """
    if delay_s < 0 or tail_s <= 0:
        raise BenchError(
            f"echo_path: expected delay_s >= 0 and tail_s > 0, got {delay_s} and {tail_s}"
        )
    delay = round(delay_s * sample_rate)
    taps = max(1, round(tail_s * sample_rate))
    envelope = 10.0 ** (-3.0 * np.arange(taps) / taps)
    tail = rng.standard_normal(taps) * envelope
    tail[0] = abs(tail[0]) + 1.0  # a dominant direct reflection
    tail *= np.sqrt(10.0 ** (-erl_db / 10.0) / np.sum(tail**2))
    response = np.zeros(delay + taps)
    response[delay:] = tail
    return response


def echo_return_loss_db(far_end: npt.ArrayLike, echo: npt.ArrayLike) -> float:
    """Measured echo return loss: far-end power over echo power, in dB."""
    far = _as_1d(far_end, "far_end")
    back = _as_1d(echo, "echo")
    return float(10.0 * np.log10(np.sum(far**2) / max(np.sum(back**2), 1e-30)))


@attrs.frozen(kw_only=True)
class EchoConfig:
    """An echo path, optionally changing mid-call.

    :param delay_s: bulk delay of the echo (s).
    :param erl_db: echo return loss (dB); larger is quieter echo.
    :param tail_s: length of the decaying tail (s).
    :param nonlinearity: loudspeaker overdrive; the far end goes through
        ``tanh(g*x)/g`` with ``g = nonlinearity`` before the path (``0`` is linear).
    :param change_at_s: when given, the path changes at this time (e.g. a headset change)
        to a new random response with *changed_delay_s* and *changed_erl_db* (10 ms cross-fade).
    :param changed_delay_s: delay after the change (``None``: same delay).
    :param changed_erl_db: echo return loss after the change (``None``: same ERL).
    """

    delay_s: float = 0.05
    erl_db: float = 20.0
    tail_s: float = 0.03
    nonlinearity: float = 0.0
    change_at_s: float | None = None
    changed_delay_s: float | None = None
    changed_erl_db: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.delay_s < 0 or self.tail_s <= 0 or self.nonlinearity < 0:
            raise BenchError(
                f"EchoConfig: expected delay_s >= 0, tail_s > 0 and nonlinearity >= 0, got {self}"
            )
        if self.change_at_s is not None and self.change_at_s < 0:
            raise BenchError(f"EchoConfig.change_at_s: expected >= 0, got {self.change_at_s}")


def apply_echo(
    far_end: npt.ArrayLike,
    sample_rate: int,
    config: EchoConfig,
    rng: np.random.Generator,
) -> FloatArray:
    """The echo of *far_end* through the path(s) of *config*, same length as *far_end*.

    Add the result to the near-end (agent) microphone signal.
    """
    far = _as_1d(far_end, "far_end")
    if config.nonlinearity > 0:
        g = config.nonlinearity
        far = np.tanh(g * far) / g
    first = echo_path(
        sample_rate, rng, delay_s=config.delay_s, erl_db=config.erl_db, tail_s=config.tail_s
    )
    echo: FloatArray = signal.oaconvolve(far, first)[: far.size]
    if config.change_at_s is None:
        return echo
    second = echo_path(
        sample_rate,
        rng,
        delay_s=config.delay_s if config.changed_delay_s is None else config.changed_delay_s,
        erl_db=config.erl_db if config.changed_erl_db is None else config.changed_erl_db,
        tail_s=config.tail_s,
    )
    after: FloatArray = signal.oaconvolve(far, second)[: far.size]
    change = round(config.change_at_s * sample_rate)
    fade = max(1, round(0.01 * sample_rate))
    weight = np.clip((np.arange(far.size) - change) / fade, 0.0, 1.0)
    mixed: FloatArray = (1.0 - weight) * echo + weight * after
    return mixed


# --------------------------------------------------------------------------- the whole channel


@attrs.frozen(kw_only=True)
class ChannelConfig:
    """A telephone line.

    :param sample_rate: rate of the line (8000 for narrowband).
    :param band: pass band in Hz, or ``None`` for none.
    :param codec: ``"mulaw"`` (North America, Japan), ``"alaw"`` (elsewhere) or ``"linear"``.
    :param noise_dbfs: line noise RMS in dBFS, or ``None`` for none.
    :param hum_hz: mains hum frequency (50 or 60), or ``None``.
    :param packet_loss: average packet loss rate in [0, 1).
    :param packet_ms: packet length in ms.
    :param loss_burst: mean burst length in packets (``1.0``: independent losses).
    """

    sample_rate: int = TELEPHONE_RATE
    band: tuple[float, float] | None = TELEPHONE_BAND
    codec: Codec = attrs.field(default=Codec.MULAW, converter=_codec)
    noise_dbfs: float | None = -60.0
    hum_hz: float | None = None
    packet_loss: float = 0.0
    packet_ms: float = 20.0
    loss_burst: float = 1.0


def apply_channel(
    x: npt.ArrayLike,
    config: ChannelConfig,
    rng: np.random.Generator,
    *,
    band_limited: bool = False,
) -> FloatArray:
    """Send *x* (already at ``config.sample_rate``) down the line: band, noise, codec, loss.

    :param band_limited: *x* was already passed through :func:`band_limit` (skip it).
    """
    samples = _as_1d(x, "apply_channel")
    if config.band is not None and not band_limited:
        samples = band_limit(samples, config.sample_rate, config.band)
    if config.noise_dbfs is not None:
        samples = samples + line_noise(
            samples.size,
            config.sample_rate,
            rng,
            level_dbfs=config.noise_dbfs,
            hum_hz=config.hum_hz,
        )
    samples = codec_roundtrip(samples, config.codec)
    if config.packet_loss > 0:
        samples, _lost = packet_loss(
            samples,
            config.sample_rate,
            rng,
            loss_rate=config.packet_loss,
            packet_ms=config.packet_ms,
            burst=config.loss_burst,
        )
    return samples
