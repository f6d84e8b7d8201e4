"""Built-in ``"channels"`` separator: agent-only audio from a dual-channel (stereo) call.

The agent channel is kept; the customer channel is used only as the *reference* of an echo
canceller and then dropped. The agent's own line echo is first taken out of that reference
(:func:`_without_agent_echo`), and a customer channel that never rises above its noise floor
is refused (the layout cannot be verified). Three stages run over streaming chunks with
bounded state:

1. **Echo cancellation** (:class:`EchoCanceller`): a partitioned-block frequency-domain
   adaptive filter (multi-delay filter, MDF, as in speexdsp) with a two-path structure. A
   *background* filter adapts on every block (normalised step per frequency bin); the
   *foreground* filter, whose output is used, is replaced by the background one only when the
   background's error energy has been clearly lower for several blocks, and the background is
   reset to the foreground when it diverges. Near-end (agent) speech during double talk
   therefore cannot drag the foreground filter away, while a changed echo path (transfer,
   headset change) is re-learnt by the background and copied over once it is better. The
   whole call is at hand, so the filter first learns on the call's opening seconds in a
   separate pass (``prime_s``) and the output pass starts converged.
2. **Residual echo suppression**: a per-bin gain from the residual echo power, estimated as
   the echo estimate's power times a tracked residual ratio (minimum statistics of
   error-to-echo-estimate power, which double talk cannot lower).
3. **Fail-closed gate**, frame by frame. ``"leakage"``: the share of the remaining energy
   explained by the customer (estimated residual echo over output power) is above a threshold,
   or the output's band envelopes follow the customer's (which needs no converged filter and
   also catches echo a linear filter cannot model). ``"not_converged"``: customer-active frames
   before the canceller has proven the required attenuation on echo-only speech, and frames
   where echo-only speech keeps failing it (non-linear distortion, a lagging filter).
   Such frames are silenced and reported; nothing uncertain is kept.

Only numpy and scipy are used; one block loop in Python, everything inside a block vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import scipy

from voicepriv.audio import Audio
from voicepriv.backends._options import number_option
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import IsolationRequest, IsolationResult
from voicepriv.model import LayoutKind, Role, Segment
from voicepriv.plugins import hookimpl

__all__ = [
    "MIN_FILTER_MS",
    "NAME",
    "ChannelsOptions",
    "ChannelsSeparator",
    "EchoCanceller",
    "frames_to_segments",
    "voicepriv_backend_names",
    "voicepriv_separator",
]

#: The backend name.
NAME: Final = "channels"

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
BoolArray = npt.NDArray[np.bool_]

_EPS: Final = 1e-12


_positive = number_option("channels separator", "a positive number", lambda v: v > 0)

_non_negative = number_option("channels separator", "a number >= 0", lambda v: v >= 0)

_negative = number_option("channels separator", "a level < 0 dBFS", lambda v: v < 0)

_fraction = number_option("channels separator", "a number in (0, 1]", lambda v: 0 < v <= 1)

#: Shortest echo path the canceller models: at least one tap at any sample rate >= 1 kHz.
MIN_FILTER_MS: Final = 1.0

#: The agent channel's noise floor may be at most this much (dB) above its floor over
#: :data:`RUMBLE_CUTOFF_HZ`: more means a DC offset, rumble or hum sets the floor. The
#: canceller's two-path control and its convergence checks then work on that floor, not on the
#: crosstalk (a DC offset of 0.03-0.05 kept 21-28 % of the customer's crosstalk, rumble at
#: -30 / -24 dBFS 7-27 %, all with confidence 1.0); such a call is refused.
MAX_RUMBLE_DB: Final = 6.0
#: Cut-off (Hz) of the high-pass the rumble check compares the floor with.
RUMBLE_CUTOFF_HZ: Final = 150.0
#: A floor under this (dBFS) is too quiet to hide crosstalk, whatever sets it (the room noise
#: of a quiet studio recording is mostly low-frequency too).
RUMBLE_MIN_FLOOR_DBFS: Final = -60.0

_path_length = number_option(
    "channels separator",
    f"a number >= {MIN_FILTER_MS:g} (milliseconds)",
    lambda v: v >= MIN_FILTER_MS,
)


@attrs.frozen(kw_only=True)
class ChannelsOptions:
    """Settings of the ``"channels"`` separator (every one has a working default).

    :param filter_ms: echo path length the canceller models (>= the longest echo delay plus
        its decay); 200 ms covers telephone echo paths up to 128 ms with margin. At least
        :data:`MIN_FILTER_MS`.
    :param block_ms: adaptive filter block length; larger is faster, smaller adapts sooner.
    :param step: normalised step size of the background filter (0-1).
    :param frame_ms: analysis frame of the suppressor and the leakage detector.
    :param leakage_threshold: a frame is silenced when more than this fraction of its
        remaining energy is explained by the customer channel.
    :param follow_threshold: a frame is silenced when the output's band envelopes correlate
        more than this with the customer's (over half a second around it).
    :param min_erle_db: the attenuation the canceller must reach on echo-only speech before
        customer-active frames are kept at all.
    :param proof_s: seconds of echo-only speech on which the canceller must reach
        *min_erle_db* before any customer-active frame is kept (fail closed at the start).
    :param suppression_floor_db: lowest gain of the residual echo suppressor.
    :param masking_db: residual echo at least this many dB under the agent channel's line
        noise floor counts as inaudible: an echo that quiet proves nothing about the filter
        but needs no cancelling, and the leakage detector ignores it.
    :param audible_dbfs: residual echo under this absolute level (mean square, dBFS) counts
        as inaudible whatever the noise floor (a nearly noiseless line).
    :param chunk_s: streaming chunk length (bounded working memory).
    :param prime_s: seconds at the start of the call the canceller first learns on, in a
        separate pass, before the pass that produces the output (0 turns this off).
    :param coherence_ms: window of the final coherence check on the output (see
        :func:`_coherent_residue`).
    :param coherence_threshold: that check silences a window when the customer-coherent
        part of the output is above the masked noise floor and more than this share of it.
    """

    filter_ms: float = attrs.field(default=200.0, validator=_path_length)
    block_ms: float = attrs.field(default=32.0, validator=_positive)
    step: float = attrs.field(default=1.0, validator=_fraction)
    frame_ms: float = attrs.field(default=16.0, validator=_positive)
    leakage_threshold: float = attrs.field(default=0.07, validator=_fraction)
    follow_threshold: float = attrs.field(default=0.7, validator=_fraction)
    min_erle_db: float = attrs.field(default=10.0, validator=_positive)
    proof_s: float = attrs.field(default=0.25, validator=_positive)
    suppression_floor_db: float = attrs.field(default=40.0, validator=_positive)
    masking_db: float = attrs.field(default=3.0, validator=_non_negative)
    audible_dbfs: float = attrs.field(default=-80.0, validator=_negative)
    chunk_s: float = attrs.field(default=4.0, validator=_positive)
    prime_s: float = attrs.field(default=20.0, validator=_non_negative)
    coherence_ms: float = attrs.field(default=64.0, validator=_positive)
    coherence_threshold: float = attrs.field(default=0.1, validator=_fraction)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> ChannelsOptions:
        """Build from plugin options; unknown names raise :class:`ConfigError` (all at once)."""
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"channels separator: unknown option(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**dict(options))


# --------------------------------------------------------------------------- echo canceller


def _power_of_two(value: float) -> int:
    return 1 << max(4, round(math.log2(max(value, 16.0))))


class EchoCanceller:
    """Streaming two-path partitioned-block frequency-domain adaptive filter (MDF).

    Feed equal-length chunks of reference (far end, the customer channel) and microphone (near
    end, the agent channel) with :meth:`process`; each call returns the error signal (the
    microphone with the echo estimate removed) and the echo estimate for every whole block
    received so far, sample-aligned with the input (no added delay). State is bounded by the
    filter length, whatever the call's length.

    Per block: one FFT of the newest reference block, the echo estimates of both filters from
    the partition history, and a normalised, gradient-constrained update of the background
    filter (step divided by the per-bin far-end power, floored by the power held in all
    partitions so a speech offset cannot blow the step up). The foreground follows the
    background only when the background's error energy has been below ``copy_ratio`` times
    the foreground's for ``copy_blocks`` blocks (and below the microphone's energy); a
    background whose error grows past eight times the foreground's is reset to it.

    :param sample_rate: Hz.
    :param filter_ms: modelled echo path length.
    :param block_ms: block length (rounded to a power of two samples).
    :param step: background normalised step size.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        filter_ms: float = 200.0,
        block_ms: float = 32.0,
        step: float = 1.0,
    ) -> None:
        self.block = _power_of_two(block_ms * sample_rate / 1000.0)
        self.partitions = max(1, math.ceil(filter_ms * sample_rate / 1000.0 / self.block))
        self.step = step
        #: The background replaces the foreground when its smoothed error energy is below
        #: ``copy_ratio`` times the foreground's for ``copy_blocks`` blocks in a row.
        self.copy_ratio = 0.7
        self.copy_blocks = 3
        #: Added to every bin's normaliser, as a fraction of the mean far-end power.
        self.regularisation = 1e-2
        #: The far-end power estimate never falls below this fraction of the current block's.
        self.attack = 0.5
        #: Per-block memory of the smoothed error energies compared by the two-path control.
        self.energy_memory = 0.8
        bins = self.block + 1
        self._x_spectra: ComplexArray = np.zeros((self.partitions, bins), np.complex128)
        self._w_back: ComplexArray = np.zeros((self.partitions, bins), np.complex128)
        self._w_fore: ComplexArray = np.zeros((self.partitions, bins), np.complex128)
        self._x_power: FloatArray = np.zeros(bins)
        self._x_prev: FloatArray = np.zeros(self.block)
        self._pending_x: FloatArray = np.zeros(0)
        self._pending_d: FloatArray = np.zeros(0)
        self._energy_fore = 0.0
        self._energy_back = 0.0
        self._better_count = 0
        #: Blocks after which the foreground was replaced by the background (diagnostics).
        self.copies = 0
        #: Blocks at which the background diverged and was reset (diagnostics).
        self.resets = 0
        self.blocks_done = 0

    def process(
        self, reference: npt.ArrayLike, microphone: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Cancel the echo of *reference* in *microphone*; return (error, echo estimate).

        Input lengths may be anything; the output covers every whole block received so far
        (leftover samples are kept for the next call; :meth:`flush` pads the last block).
        """
        x = np.concatenate([self._pending_x, np.asarray(reference, np.float64)])
        d = np.concatenate([self._pending_d, np.asarray(microphone, np.float64)])
        if x.shape != d.shape:
            raise IsolationError(
                f"echo canceller: reference has {x.size} samples but microphone {d.size}"
            )
        n = self.block
        whole = (x.size // n) * n
        self._pending_x, self._pending_d = x[whole:], d[whole:]
        errors = np.empty(whole)
        echoes = np.empty(whole)
        for start in range(0, whole, n):
            e, y = self._block(x[start : start + n], d[start : start + n])
            errors[start : start + n] = e
            echoes[start : start + n] = y
        return errors, echoes

    def prime(self, other: EchoCanceller) -> None:
        """Start from *other*'s filters (same sizes), e.g. learnt in a first pass over the call."""
        if other._w_fore.shape != self._w_fore.shape:
            raise IsolationError(
                f"echo canceller: cannot prime a {self._w_fore.shape} filter from "
                f"a {other._w_fore.shape} one"
            )
        self._w_fore = other._w_fore.copy()
        self._w_back = other._w_fore.copy()

    def flush(self) -> tuple[FloatArray, FloatArray]:
        """Process the leftover samples (zero-padded) and return their error and echo estimate."""
        left = self._pending_x.size
        if left == 0:
            return np.zeros(0), np.zeros(0)
        pad = self.block - left
        e, y = self.process(np.zeros(pad), np.zeros(pad))
        return e[:left], y[:left]

    def _block(self, x: FloatArray, d: FloatArray) -> tuple[FloatArray, FloatArray]:
        n = self.block
        spectrum = np.fft.rfft(np.concatenate([self._x_prev, x]))
        self._x_prev = x
        self._x_spectra[1:] = self._x_spectra[:-1]
        self._x_spectra[0] = spectrum
        current = spectrum.real**2 + spectrum.imag**2
        # Fast attack, slow release: a speech onset never meets an under-estimated power.
        self._x_power = np.maximum(0.7 * self._x_power + 0.3 * current, self.attack * current)

        both = np.stack([self._w_fore, self._w_back]) * self._x_spectra
        echoes = np.fft.irfft(both.sum(axis=1), axis=-1)[:, n:]
        e_fore = d - echoes[0]
        e_back = d - echoes[1]

        # Background adaptation: normalised per bin, gradient constrained to the filter length.
        e_spectrum = np.fft.rfft(np.concatenate([np.zeros(n), e_back]))
        norm = np.maximum(
            self.partitions * self._x_power,
            (self._x_spectra.real**2 + self._x_spectra.imag**2).sum(axis=0),
        )
        norm += self.regularisation * float(norm.mean()) + _EPS
        gain = (self.step / norm) * e_spectrum
        self._w_back += np.conj(self._x_spectra) * gain
        taps = np.fft.irfft(self._w_back, axis=-1)
        taps[:, n:] = 0.0
        self._w_back = np.fft.rfft(taps, axis=-1)

        # Two-path control: copy background -> foreground when it is clearly better.
        energy_d = float(d @ d)
        keep = self.energy_memory
        self._energy_fore = keep * self._energy_fore + (1 - keep) * float(e_fore @ e_fore)
        self._energy_back = keep * self._energy_back + (1 - keep) * float(e_back @ e_back)
        far_active = float(x @ x) > 1e-7 * n
        if (
            far_active
            and self._energy_back < self.copy_ratio * self._energy_fore
            and (float(e_back @ e_back) < energy_d)
        ):
            self._better_count += 1
            if self._better_count >= self.copy_blocks:
                self._w_fore = self._w_back.copy()
                self._energy_fore = self._energy_back
                self.copies += 1
        else:
            self._better_count = 0
        if self._energy_back > 8.0 * self._energy_fore + _EPS * n:
            self._w_back = self._w_fore.copy()
            self._energy_back = self._energy_fore
            self.resets += 1
        self.blocks_done += 1
        return e_fore, echoes[0]


# --------------------------------------------------------------------------- suppression


_BANDS: Final = 8


@attrs.frozen(kw_only=True)
class FrameStats:
    """Per-frame powers from the suppressor (frames x ...), concatenable across chunks."""

    residual: FloatArray
    output: FloatArray
    echo: FloatArray
    microphone: FloatArray
    reference: FloatArray
    output_bands: FloatArray
    reference_bands: FloatArray

    @classmethod
    def concatenate(cls, parts: Sequence[FrameStats]) -> FrameStats:
        """Join the statistics of consecutive chunks."""
        return cls(
            **{
                field.name: np.concatenate([getattr(part, field.name) for part in parts])
                for field in attrs.fields(cls)
            }
        )


class _ResidualSuppressor:
    """Streaming STFT residual echo suppressor and frame-wise leakage detector."""

    def __init__(self, sample_rate: int, options: ChannelsOptions) -> None:
        self.frame = _power_of_two(2 * options.frame_ms * sample_rate / 1000.0)
        self.hop = self.frame // 2
        self.window: FloatArray = np.sqrt(scipy.signal.get_window("hann", self.frame, fftbins=True))
        #: A frame power (sum over the one-sided spectrum) of white noise whose mean square is 1.
        self.power_scale = float(self.window @ self.window) * (self.frame // 2 + 1)
        self.options = options
        # Speech bands (200 Hz to 3.8 kHz or Nyquist) for the envelope-following detector.
        low = max(1, round(200.0 * self.frame / sample_rate))
        high = min(
            self.frame // 2, round(min(3800.0, sample_rate / 2 - 200.0) * self.frame / sample_rate)
        )
        self.band_edges = np.unique(np.linspace(low, high, _BANDS + 1).round().astype(int))
        bins = self.frame // 2 + 1
        self._tail_e: FloatArray = np.zeros(self.frame - self.hop)
        self._tail_y: FloatArray = np.zeros(self.frame - self.hop)
        self._tail_d: FloatArray = np.zeros(self.frame - self.hop)
        self._tail_x: FloatArray = np.zeros(self.frame - self.hop)
        self._ola: FloatArray = np.zeros(self.frame - self.hop)
        history = 2 * max(1, round(0.75 * sample_rate / self.hop)) + 1
        self._history = history
        self._ratio_hist: FloatArray = np.full((history, bins), 1.0)
        self._ratio_state: FloatArray = np.full(bins, 1.0)

    def _frames(self, tail: FloatArray, chunk: FloatArray) -> tuple[ComplexArray, FloatArray]:
        data = np.concatenate([tail, chunk])
        count = chunk.size // self.hop
        idx = np.arange(self.frame)[None, :] + self.hop * np.arange(count)[:, None]
        spectra = np.fft.rfft(data[idx] * self.window, axis=-1)
        return spectra, data[data.size - (self.frame - self.hop) :]

    def process(
        self, error: FloatArray, echo: FloatArray, microphone: FloatArray, reference: FloatArray
    ) -> tuple[FrameStats, FloatArray]:
        """One chunk (a multiple of ``hop`` samples): per-frame statistics, and the suppressed
        output (delayed by ``frame - hop`` samples)."""
        e_spec, self._tail_e = self._frames(self._tail_e, error)
        y_spec, self._tail_y = self._frames(self._tail_y, echo)
        d_spec, self._tail_d = self._frames(self._tail_d, microphone)
        p_e = e_spec.real**2 + e_spec.imag**2
        p_y = y_spec.real**2 + y_spec.imag**2
        p_d = d_spec.real**2 + d_spec.imag**2
        x_spec, self._tail_x = self._frames(self._tail_x, reference)
        p_x = x_spec.real**2 + x_spec.imag**2

        # Residual ratio per bin: smoothed |E|^2/|Y|^2, then its minimum over ~1.5 s where the
        # echo estimate is active. Double talk raises the ratio, so the minimum ignores it.
        p_y_smooth = scipy.ndimage.uniform_filter1d(p_y, 5, axis=1, mode="nearest")
        p_e_smooth = scipy.ndimage.uniform_filter1d(p_e, 5, axis=1, mode="nearest")
        y_level = p_y_smooth.sum(axis=1)
        active = y_level > max(1e-6 * float(y_level.max(initial=0.0)), 1e-9 * self.frame)
        raw = np.where(
            active[:, None] & (p_y_smooth > 1e-10), p_e_smooth / (p_y_smooth + _EPS), np.inf
        )
        raw = np.minimum(raw, 1.0)
        raw[~active] = np.inf
        smoothed, zi = scipy.signal.lfilter(
            [0.3],
            [1.0, -0.7],
            np.where(np.isfinite(raw), raw, 1.0),
            axis=0,
            zi=(0.7 * self._ratio_state)[None, :],
        )
        smoothed = np.where(np.isfinite(raw), smoothed, np.inf)
        self._ratio_state = zi[0] / 0.7
        stacked = np.concatenate([self._ratio_hist, smoothed])
        ratio = scipy.ndimage.minimum_filter1d(
            stacked, self._history, axis=0, origin=self._history // 2
        )
        ratio = ratio[self._history :]
        ratio = np.where(np.isfinite(ratio), ratio, 1.0)
        self._ratio_hist = stacked[-self._history :]

        residual = ratio * p_y_smooth
        floor = 10.0 ** (-self.options.suppression_floor_db / 20.0)
        gain = np.clip(1.0 - residual / (p_e_smooth + _EPS), floor, 1.0)
        out_spec = e_spec * gain
        residual_out = np.minimum(residual * gain**2, p_e * gain**2)

        frames = np.fft.irfft(out_spec, n=self.frame, axis=-1) * self.window
        out = np.zeros(self._ola.size + frames.shape[0] * self.hop)
        out[: self._ola.size] = self._ola
        for shift in range(self.frame // self.hop):
            part = frames[:, shift * self.hop : (shift + 1) * self.hop].reshape(-1)
            out[shift * self.hop : shift * self.hop + part.size] += part
        emitted = out[: frames.shape[0] * self.hop]
        self._ola = out[frames.shape[0] * self.hop :].copy()
        p_kept = p_e * gain**2
        return FrameStats(
            residual=residual_out.sum(axis=1),
            output=p_kept.sum(axis=1),
            echo=p_y.sum(axis=1),
            microphone=p_d.sum(axis=1),
            reference=p_x.sum(axis=1),
            output_bands=np.add.reduceat(p_kept, self.band_edges, axis=1)[:, :-1],
            reference_bands=np.add.reduceat(p_x, self.band_edges, axis=1)[:, :-1],
        ), emitted


def _envelope_following(stats: FrameStats, reach: int, window: int) -> FloatArray:
    """Per frame, the correlation of the output's band envelopes with the customer's.

    The reference band energies are spread over the echo path length (a maximum over the
    ``reach`` frames before) and both are taken in dB; the Pearson correlation over a
    ``window`` of frames centred on each frame, per band and pooled over bands, is returned.
    Leaked customer speech, linear or not, follows the customer's envelope; agent speech does
    not. This needs no converged
    filter, so it also catches a filter that never converged.
    """
    floor = 1e-10 + 1e-6 * float(np.percentile(stats.reference_bands, 99))
    size = 2 * reach + 1
    spread = scipy.ndimage.maximum_filter1d(stats.reference_bands, size, axis=0, origin=reach)
    x_db = 10.0 * np.log10(spread + floor)
    o_db = 10.0 * np.log10(stats.output_bands + floor)

    def mean(values: FloatArray) -> FloatArray:
        smoothed: FloatArray = scipy.ndimage.uniform_filter1d(
            values, window, axis=0, mode="nearest"
        )
        return smoothed

    # Per band over time (so the spectral tilt every voice shares adds nothing), then pooled.
    mx, mo = mean(x_db), mean(o_db)
    cov = (mean(x_db * o_db) - mx * mo).sum(axis=1)
    var_x = np.maximum(mean(x_db**2) - mx**2, 0.0).sum(axis=1)
    var_o = np.maximum(mean(o_db**2) - mo**2, 0.0).sum(axis=1)
    result: FloatArray = cov / np.sqrt(var_x * var_o + 1e-12)
    return result


def _noise_floor(power: FloatArray, usable: BoolArray) -> float:
    """A channel's line noise power per frame, from the frames marked *usable*.

    Minimum statistics over the whole call: the 1st percentile of the power smoothed over five
    frames among the *usable* ones (those that cannot hold the far end's echo), leaving out
    the padded first and last frames and digital silence; zero when there is none (then
    nothing is masked). A minimum can only under-estimate the floor, so
    the estimate errs towards silencing; a floor that rises during the call is not followed.
    """
    smoothed = scipy.ndimage.uniform_filter1d(power, 5, mode="nearest")
    # The first and last frames are partly zero padding; digital silence masks nothing.
    interior = np.zeros(power.size, bool)
    interior[4:-4] = True
    values = smoothed[usable & interior & (smoothed > 0)]
    return float(np.percentile(values, 1)) if values.size else 0.0


# --------------------------------------------------------------------------- segments


def _long_term_echo(reference: FloatArray, microphone: FloatArray, taps: int) -> FloatArray:
    """The echo of *reference* in *microphone* predicted by one per-call echo path.

    The path is the least-squares (Wiener) estimate from the whole call's averaged cross- and
    auto-spectra (Welch, segments four times the path long, so bulk delays are not lost):
    near-end speech and line noise are uncorrelated with the customer and average out, and
    nothing depends on the adaptive filter having converged. Truncated to *taps* causal taps.
    """
    size = reference.size
    nperseg = 1 << max(8, math.ceil(math.log2(4 * taps)))
    if size < 2 * taps or not np.any(reference):
        return np.zeros(size)
    nperseg = min(nperseg, 1 << int(math.log2(size)))
    _, s_xx = scipy.signal.welch(reference, nperseg=nperseg, detrend=False)
    _, s_xd = scipy.signal.csd(reference, microphone, nperseg=nperseg, detrend=False)
    transfer = s_xd / (s_xx + 1e-3 * float(s_xx.mean()) + 1e-30)
    response = np.fft.irfft(transfer, n=nperseg)[: min(taps, nperseg)]
    predicted: FloatArray = scipy.signal.oaconvolve(reference, response)[:size]
    return predicted


#: The reverse fit (agent channel -> customer channel) needs this many agent-dominated
#: segments (each four echo paths long) before it is trusted (fewer: no correction).
_MIN_AGENT_SEGMENTS: Final = 6
#: ... and a frequency bin is used only where the agent channel explains at least this share
#: of the customer channel's power (magnitude-squared coherence over those segments) ...
_MIN_COHERENCE: Final = 0.5
#: ... and the correction must remove at least this much of the customer channel's energy on
#: those segments (dB), i.e. the customer channel there is mostly the agent's echo.
_MIN_AGENT_ECHO_DB: Final = 6.0
#: "Agent-dominated": the agent channel at least this much (power ratio, 6 dB) louder than the
#: customer channel, as on agent-only speech with a line echo of ERL >= 6 dB (double talk at
#: similar levels is left out: the customer's speech there would hide the agent's echo).
_AGENT_DOMINANCE: Final = 4.0


def _without_agent_echo(
    reference: FloatArray, microphone: FloatArray, taps: int
) -> tuple[FloatArray, float]:
    """The customer channel (*reference*) with the agent's own echo in it removed.

    Line echo at the customer's end (the far hybrid) puts the agent's voice into the customer
    channel. Left there, it makes every agent turn look like customer speech (the gate then
    wants a proof of convergence that agent turns cannot give) and the echo canceller learns
    to predict the agent from it (the inverse path, an echo estimate far louder than the
    microphone on customer turns). One echo path agent -> customer per call is estimated like
    :func:`_long_term_echo`, but only from *agent-dominated* segments (the agent channel
    louder than the customer channel by :data:`_AGENT_DOMINANCE`), refitted on those the first
    fit explains: on customer turns the agent channel holds the customer's echo, and a fit
    there would learn the inverse of that path and predict the customer. Every bin's gain
    is capped at 1 (an echo is not louder than its source) and bins whose coherence is under
    :data:`_MIN_COHERENCE` are left out, so what is subtracted is a filtered copy of the agent
    channel, never more.

    Fail closed: the reference is returned unchanged (and 0 dB) unless there are
    :data:`_MIN_AGENT_SEGMENTS` such segments and the fit removes at least
    :data:`_MIN_AGENT_ECHO_DB` of the customer channel's energy on them. Customer speech is
    not explained by the agent channel (its echo there comes *after* it, and the fit is
    causal), so it is left in full: double talk is still seen as customer activity.

    :returns: the corrected reference and the energy removed on agent-dominated segments (dB).
    """
    size = reference.size
    nperseg = 1 << max(8, math.ceil(math.log2(4 * taps)))
    if size < 2 * taps or not np.any(microphone) or not np.any(reference):
        return reference, 0.0
    nperseg = min(nperseg, 1 << int(math.log2(size)))
    hop = nperseg // 2
    window = scipy.signal.get_window("hann", nperseg)
    starts = np.arange(0, size - nperseg + 1, hop)
    # Segment energies from running sums (no copy of the call).
    mic_energy = np.concatenate([[0.0], np.cumsum(microphone**2)])
    ref_energy = np.concatenate([[0.0], np.cumsum(reference**2)])
    e_mic = mic_energy[starts + nperseg] - mic_energy[starts]
    e_ref = ref_energy[starts + nperseg] - ref_energy[starts]
    chosen = starts[(e_mic > _AGENT_DOMINANCE * e_ref) & (e_ref > 0)]
    if chosen.size < _MIN_AGENT_SEGMENTS:
        return reference, 0.0
    bins = nperseg // 2 + 1

    def fit(segments: npt.NDArray[np.int64]) -> FloatArray | None:
        s_mm = np.zeros(bins)
        s_rr = np.zeros(bins)
        s_mr = np.zeros(bins, np.complex128)
        for batch in np.array_split(segments, max(1, segments.size // 64)):
            index = batch[:, None] + np.arange(nperseg)[None, :]
            f_m = np.fft.rfft(microphone[index] * window, axis=-1)
            f_r = np.fft.rfft(reference[index] * window, axis=-1)
            s_mm += (f_m.real**2 + f_m.imag**2).sum(axis=0)
            s_rr += (f_r.real**2 + f_r.imag**2).sum(axis=0)
            s_mr += (np.conj(f_m) * f_r).sum(axis=0)
        coherence = (s_mr.real**2 + s_mr.imag**2) / (s_mm * s_rr + 1e-30)
        transfer = s_mr / (s_mm + 1e-3 * float(s_mm.mean()) + 1e-30)
        magnitude = np.abs(transfer)
        transfer = np.where(magnitude > 1.0, transfer / (magnitude + 1e-30), transfer)
        transfer[coherence < _MIN_COHERENCE] = 0.0
        if not np.any(transfer):
            return None
        response: FloatArray = np.fft.irfft(transfer, n=nperseg)[: min(taps, nperseg)]
        left: FloatArray = reference - scipy.signal.oaconvolve(microphone, response)[:size]
        return left

    corrected = fit(chosen)
    if corrected is None:
        return reference, 0.0
    # Second pass on the segments the first fit explains (>= 6 dB): a segment that also holds
    # the start of a customer turn only blurs the fit.
    left_energy = np.concatenate([[0.0], np.cumsum(corrected**2)])
    explained = _AGENT_DOMINANCE * (left_energy[chosen + nperseg] - left_energy[chosen])
    refined = chosen[explained <= ref_energy[chosen + nperseg] - ref_energy[chosen]]
    if refined.size >= _MIN_AGENT_SEGMENTS and refined.size < chosen.size:
        corrected = fit(refined)
        if corrected is None:
            return reference, 0.0
    # How much of the customer channel the correction removes where the agent dominates:
    # the median over short frames (a segment may still hold the start of a customer turn).
    frame = max(32, nperseg // 32)
    count = size // frame

    def frame_energy(values: FloatArray) -> FloatArray:
        energy: FloatArray = (values[: count * frame].reshape(count, frame) ** 2).sum(axis=1)
        return energy

    f_mic, f_ref, f_left = (frame_energy(v) for v in (microphone, reference, corrected))
    dominated = (f_mic > _AGENT_DOMINANCE * f_ref) & (f_ref > 0)
    if not dominated.any():
        return reference, 0.0
    removed_db = float(
        np.median(
            10.0
            * np.log10(f_ref[dominated] / np.maximum(f_left[dominated], 1e-12 * f_ref[dominated]))
        )
    )
    if removed_db < _MIN_AGENT_ECHO_DB:
        return reference, 0.0
    return corrected, removed_db


def _coherent_residue(
    output: FloatArray,
    predicted: FloatArray,
    hop: int,
    window: int,
    floor: float,
    threshold: float,
) -> BoolArray:
    """Blocks of *hop* samples of *output* holding audible customer-coherent residue.

    Over sliding windows of *window* blocks, the output is projected on the long-term echo
    prediction: the projected power (per sample) is the residue the customer explains. A
    window is flagged when that power is above *floor* (the masked line noise level) and is
    more than *threshold* of the output's power (agent speech by chance correlates less),
    with a projection coefficient of at most 3 (a residue is not louder than its echo).
    Every block of a flagged window is returned (fail closed at the window's edges).
    """
    blocks = output.size // hop
    if blocks == 0:
        return np.zeros(0, bool)
    o = output[: blocks * hop].reshape(blocks, hop)
    y = predicted[: blocks * hop].reshape(blocks, hop)

    def summed(values: FloatArray) -> FloatArray:
        total: FloatArray = scipy.ndimage.uniform_filter1d(values, window, mode="constant") * window
        return total

    oy = summed((o * y).sum(axis=1))
    yy = summed((y * y).sum(axis=1))
    oo = summed((o * o).sum(axis=1))
    projected = oy**2 / (yy + _EPS)
    share = projected / (oo + _EPS)
    # The residue of an echo is at most a few times the predicted echo itself: a projection
    # coefficient far above that is chance correlation with a (near) zero prediction.
    plausible = np.abs(oy) <= 3.0 * yy
    flagged = (projected > floor * window * hop) & (share > threshold) & plausible
    spread: BoolArray = scipy.ndimage.maximum_filter1d(flagged, window) > 0
    return spread


def _runs(mask: BoolArray) -> list[tuple[int, int]]:
    """``(start, end)`` index pairs of the runs of ``True`` in *mask* (end exclusive)."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def frames_to_segments(
    mask: BoolArray, hop_s: float, label: str, duration: float
) -> tuple[Segment, ...]:
    """Runs of ``True`` in a frame *mask* as labelled :class:`Segment` values (clipped)."""
    return tuple(
        Segment(
            start=round(min(s * hop_s, duration), 6),
            end=round(min(e * hop_s, duration), 6),
            label=label,
        )
        for s, e in _runs(mask)
        if round(min(s * hop_s, duration), 6) < round(min(e * hop_s, duration), 6)
    )


# --------------------------------------------------------------------------- separator


def _floor_db(samples: FloatArray, rate: int) -> float:
    """The 1st percentile of 20 ms frame power, in dBFS (a channel's noise floor)."""
    hop = max(1, round(0.02 * rate))
    frames = samples.size // hop
    if frames == 0:
        return -200.0
    power = np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1)
    return float(10 * np.log10(np.percentile(power, 1) + _EPS))


def _refuse_low_rumble(mic: FloatArray, rate: int) -> None:
    """Refuse an agent channel whose noise floor is set by a DC offset, rumble or hum under
    :data:`RUMBLE_CUTOFF_HZ` (see :data:`MAX_RUMBLE_DB`).

    :raises IsolationError: naming both floors.
    """
    if rate <= 2 * RUMBLE_CUTOFF_HZ:
        return
    sos = scipy.signal.butter(4, RUMBLE_CUTOFF_HZ, btype="high", fs=rate, output="sos")
    floor = _floor_db(mic, rate)
    above = _floor_db(scipy.signal.sosfilt(sos, mic), rate)
    if floor > RUMBLE_MIN_FLOOR_DBFS and floor - above > MAX_RUMBLE_DB:
        raise IsolationError(
            f"channels separator: the agent channel's noise floor ({floor:.0f} dBFS) is set by "
            f"a DC offset, rumble or hum under {RUMBLE_CUTOFF_HZ:.0f} Hz (it is {above:.0f} dBFS "
            "above it); under it the echo canceller cannot prove the customer's crosstalk "
            "gone, refusing (remove the offset or high-pass the recording, or fix the line)"
        )


@attrs.frozen(kw_only=True)
class ChannelsSeparator:
    """The ``"channels"`` separator (see the module docstring for the method)."""

    options: ChannelsOptions = attrs.field(factory=ChannelsOptions)

    @property
    def name(self) -> str:
        """Backend name, ``"channels"``."""
        return NAME

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        """Agent-only mono audio from a stereo call whose roles *request.layout* gives.

        :raises IsolationError: not two channels, or no stereo layout naming the agent and
            the customer channel (roles are resolved by :func:`voicepriv.isolation.isolate`).
        """
        layout = request.layout
        if audio.channels != 2:
            raise IsolationError(
                f"channels separator: expected a 2-channel call, got {audio.channels} channel(s)"
            )
        if layout is None or layout.kind is not LayoutKind.STEREO:
            raise IsolationError(
                "channels separator: the channel layout is unknown; resolve the agent channel "
                "(layout or voiceprint) before calling the separator"
            )
        agent = layout.channel_of(Role.AGENT)
        if agent is None:
            raise IsolationError(f"channels separator: layout {layout.roles!r} has no agent")
        return self._run(audio, agent, request)

    def _run(self, audio: Audio, agent: int, request: IsolationRequest) -> IsolationResult:
        rate = audio.sample_rate
        opts = self.options
        canceller = EchoCanceller(
            rate, filter_ms=opts.filter_ms, block_ms=opts.block_ms, step=opts.step
        )
        suppressor = _ResidualSuppressor(rate, opts)
        hop = suppressor.hop
        mic_all = audio.samples[:, agent]
        _refuse_low_rumble(np.asarray(mic_all, np.float64), rate)
        taps = max(1, round(opts.filter_ms * rate / 1000.0))
        # The customer channel without the agent's own (line) echo in it: the reference of
        # everything below (see _without_agent_echo).
        ref_all, agent_echo_db = _without_agent_echo(
            np.asarray(audio.samples[:, 1 - agent], np.float64),
            np.asarray(mic_all, np.float64),
            taps,
        )
        primed_s = 0.0
        if opts.prime_s > 0:
            # Offline warm start: learn the echo path on the call's opening seconds first, so
            # the pass that produces the output starts converged (the call is in memory anyway).
            primer = EchoCanceller(
                rate, filter_ms=opts.filter_ms, block_ms=opts.block_ms, step=opts.step
            )
            limit = min(audio.frames, round(opts.prime_s * rate))
            step = max(primer.block, round(opts.chunk_s * rate))
            for start in range(0, limit, step):
                primer.process(
                    ref_all[start : min(limit, start + step)],
                    mic_all[start : min(limit, start + step)],
                )
            canceller.prime(primer)
            primed_s = limit / rate
        chunk = max(canceller.block, round(opts.chunk_s * rate / canceller.block) * canceller.block)
        total = audio.frames
        delay = suppressor.frame - suppressor.hop

        # The output is written in place as chunks come out (synthesis delay removed), so
        # working memory beyond the result stays at one chunk.
        cleaned: npt.NDArray[np.float32] = np.zeros(total, np.float32)
        produced = 0
        stats: list[FrameStats] = []
        errors_pending = np.zeros(0)
        echoes_pending = np.zeros(0)
        mic_pending = np.zeros(0)
        ref_pending = np.zeros(0)
        position = 0
        emitted = 0
        while True:
            end = min(total, position + chunk)
            e, y = canceller.process(ref_all[position:end], mic_all[position:end])
            position = end
            final = position >= total
            if final:
                e_last, y_last = canceller.flush()
                e, y = np.concatenate([e, e_last]), np.concatenate([y, y_last])
            d = np.asarray(mic_all[emitted : emitted + e.size], np.float64)
            r = np.asarray(ref_all[emitted : emitted + e.size], np.float64)
            emitted += e.size
            errors_pending = np.concatenate([errors_pending, e])
            echoes_pending = np.concatenate([echoes_pending, y])
            mic_pending = np.concatenate([mic_pending, d])
            ref_pending = np.concatenate([ref_pending, r])
            if final:
                pad = (-errors_pending.size) % hop + delay
                errors_pending = np.concatenate([errors_pending, np.zeros(pad)])
                echoes_pending = np.concatenate([echoes_pending, np.zeros(pad)])
                mic_pending = np.concatenate([mic_pending, np.zeros(pad)])
                ref_pending = np.concatenate([ref_pending, np.zeros(pad)])
            usable = (errors_pending.size // hop) * hop
            frame_stats, out = suppressor.process(
                errors_pending[:usable],
                echoes_pending[:usable],
                mic_pending[:usable],
                ref_pending[:usable],
            )
            first = produced - delay
            lo, hi = max(0, first), min(total, first + out.size)
            if hi > lo:
                cleaned[lo:hi] = out[lo - first : hi - first]
            produced += out.size
            stats.append(frame_stats)
            errors_pending = errors_pending[usable:]
            echoes_pending = echoes_pending[usable:]
            mic_pending = mic_pending[usable:]
            ref_pending = ref_pending[usable:]
            if request.progress is not None:
                request.progress(min(position, total) / rate, total / rate)
            if final:
                break
        # The per-call echo prediction for the coherence detector (independent of the
        # adaptive filter; see _long_term_echo).
        predicted = _long_term_echo(
            np.asarray(ref_all, np.float64), np.asarray(mic_all, np.float64), taps
        )
        del ref_all, errors_pending, echoes_pending, mic_pending, ref_pending

        joined = FrameStats.concatenate(stats)
        residual, p_out, p_y, p_d, p_x = (
            joined.residual,
            joined.output,
            joined.echo,
            joined.microphone,
            joined.reference,
        )
        frames = residual.size
        # Frame i of the suppressor covers output samples [(i-1)*hop, (i+1)*hop) once the
        # synthesis delay is removed.
        leakage = residual / (p_out + _EPS)
        # The customer is "active" at a frame when the reference had energy within the
        # modelled echo path length before it (echo arrives up to filter_ms later).
        reach = max(1, math.ceil(opts.filter_ms / 1000.0 * rate / hop))
        size = reach + 1 + reach % 2
        x_level = scipy.ndimage.maximum_filter1d(p_x, size, origin=size // 2)
        # Active means above the customer channel's own line noise too (its minimum
        # statistics; under-estimating it only widens what counts as active).
        x_noise = _noise_floor(p_x, np.ones(p_x.size, bool))
        x_floor = max(1e-6 * float(np.percentile(p_x, 99)), 1e-9 * hop, 2.0 * x_noise)
        far_active = x_level > x_floor
        proof = round(opts.proof_s * rate / hop)
        # A customer channel that never rises above its own noise floor (digital silence, line
        # noise, or only the agent's echo) cannot show that the layout is right: the agent
        # channel may hold both voices (a mono mix in a stereo container) and nothing here
        # could tell. Refuse rather than keep it as agent audio.
        if int(np.count_nonzero(p_x > x_floor)) < max(1, proof):
            level = 10.0 * math.log10(x_floor / suppressor.power_scale + 1e-30)
            raise IsolationError(
                f"channels separator: the customer channel (channel {1 - agent}) never rises "
                f"above its noise floor ({level:.0f} dBFS) in {audio.duration:.1f} s; the "
                "layout cannot be verified (a mono mix of both voices in a stereo container "
                "looks like this), so nothing is kept; identify the agent by voiceprint instead"
            )
        audible = p_out > 1e-7 * hop
        # What is measurable. The agent channel's line noise floor comes from frames with no
        # echo (the customer silent over the whole echo path); echo residue masked_share
        # below it, or under the absolute audibility level, cannot be heard or transcribed.
        masked_share = 10.0 ** (-opts.masking_db / 10.0)
        noise = _noise_floor(p_d, ~far_active)
        inaudible = np.maximum(
            masked_share * noise, suppressor.power_scale * 10.0 ** (opts.audible_dbfs / 10.0)
        )
        # Output at or below this holds at most an inaudible residue over the noise.
        at_floor = np.maximum(noise + masked_share * noise, inaudible)
        following = _envelope_following(joined, reach, max(3, round(0.5 * rate / hop)))

        # Convergence. Customer-active frames are dropped until the canceller has shown, on
        # echo-only frames, that it reaches min_erle_db (or that there is no echo at all: the
        # microphone stays 40 dB under the customer). After that, frames where the echo
        # estimate explains much of the microphone but the attenuation stays under
        # min_erle_db over two seconds (non-linear echo, a diverged or lagging filter, a
        # changed path) are dropped too.
        # "Echo only": the microphone carries echo-level sound (within 30 dB of the customer)
        # and the echo estimate explains it so fully that whatever near-end sound is left
        # could not by itself fail the attenuation test; frames where the estimate is far
        # above the microphone (filter noise after the customer stops) are not judged.
        # With line noise, "explains" means the echo estimate plus the noise floor, and a
        # frame passes when the attenuation is reached or the output is down at the noise
        # floor (what is left of the echo is masked: attenuation beyond that cannot be
        # measured and is not needed).
        required = 10.0 ** (opts.min_erle_db / 10.0)
        explained = (p_y > (1.0 - 0.5 / required) * p_d) | (
            (p_d > at_floor) & (p_y + noise > (1.0 - 0.5 / required) * p_d)
        )
        echo_only = far_active & (p_d > 1e-3 * x_level) & explained & (p_y < 2.0 * p_d)
        attenuation = p_d / (p_out + _EPS)
        reached = (attenuation >= required) | (p_out <= at_floor)
        failing = echo_only & ~reached
        passing = echo_only & reached
        # No echo at all: on most customer-active frames so far (all but double talk), the
        # microphone stays 40 dB under the customer.
        absent = far_active & (p_d < 1e-4 * x_level)
        absent_count = np.cumsum(absent)
        no_echo = (absent_count >= 4 * proof) & (absent_count >= 0.5 * np.cumsum(far_active))
        # No audible echo: while the customer has been speaking over the whole echo path
        # (so any echo path within filter_ms would be carrying it now), the agent channel
        # stays at its noise floor, and so does the output. Pauses inside the customer's
        # speech do not count (the minimum over the path, not the maximum), nor do frames
        # with agent speech (above the floor).
        x_sustained = scipy.ndimage.minimum_filter1d(p_x, size, origin=size // 2)
        sustained = x_sustained > 1e-3 * float(np.percentile(p_x, 99))
        buried = far_active & sustained & (p_d <= at_floor) & (p_out <= at_floor)
        buried_count = np.cumsum(buried)
        no_audible_echo = (buried_count >= 2 * proof) & (buried_count >= 4 * np.cumsum(failing) + 1)
        ready = np.maximum.accumulate((np.cumsum(passing) >= proof) | no_echo | no_audible_echo)
        window = max(1, round(2.0 * rate / hop))
        recent_fail = scipy.ndimage.uniform_filter1d(failing.astype(float), window, mode="nearest")
        recent_ok = scipy.ndimage.uniform_filter1d(passing.astype(float), window, mode="nearest")
        echoing = far_active & (p_y > 0.1 * p_d)
        evidence = recent_fail * window >= 3.0
        not_converged = (far_active & ~ready) | (echoing & evidence & (recent_fail > recent_ok))
        # Envelope following must last at least three frames (chance alignments are short);
        # once the canceller is proven, a frame ten times louder than its echo estimate is
        # near-end speech, whatever the envelopes do (two talkers may start together).
        follows = scipy.ndimage.binary_opening(following > opts.follow_threshold, iterations=1)
        follows &= ~(ready & (p_out > 10.0 * p_y))
        # A frame whose whole output is down at the noise floor holds at most a masked (or
        # inaudible) customer residue: not leakage. The residual estimate itself is not
        # trusted for this; the output power bounds it from above.
        # Single frames at the floor inside leaking speech are closed over (no 16 ms holes).
        leaking = (leakage > opts.leakage_threshold) & (p_out > at_floor)
        leaking |= scipy.ndimage.binary_closing(leaking, iterations=2) & (
            leakage > opts.leakage_threshold
        )
        # An echo-only frame holds no agent speech worth keeping (the echo estimate explains
        # the microphone to within min_erle_db): whatever of it is audible above the floor is
        # residual echo, however small a share the residual estimate gives it.
        residual_only = echo_only & (p_out > at_floor)
        # The canceller's own artefact: where its echo estimate is well above the microphone
        # (a customer onset before the echo arrives, a filter that has not yet shed a changed
        # path, one that learnt a distorted path and now amplifies the customer's quiet
        # stretches), an output louder than the microphone is mostly that estimate, i.e. the
        # customer's speech filtered, not anything the agent said. This holds whether or not
        # the customer counts as active (the estimate is made from the customer channel).
        overshoot = (p_y > 2.0 * p_d) & (p_out > p_d) & (p_out > at_floor)
        leak_mask = audible & ((far_active & (leaking | follows | residual_only)) | overshoot)
        not_converged = scipy.ndimage.binary_dilation(not_converged, iterations=2) & audible
        not_converged &= far_active
        leak_mask = (
            scipy.ndimage.binary_dilation(leak_mask, iterations=2) & ~not_converged & audible
        )

        hop_s = hop / rate
        silence = leak_mask | not_converged

        def blocks_of(mask: BoolArray) -> BoolArray:
            # Frame i covers output samples [(i-1)*hop, (i+1)*hop): block j (samples
            # [j*hop, (j+1)*hop)) is affected when frame j or frame j+1 is.
            padded = np.concatenate([mask, [False]])
            result: BoolArray = padded[:-1] | padded[1:]
            return result

        silent_blocks = blocks_of(silence)
        converge_blocks = blocks_of(not_converged)
        leak_blocks = blocks_of(leak_mask) & ~converge_blocks
        # Gate: while the customer is active, frames whose output holds nothing above the
        # agent channel's noise floor carry no agent speech, only line noise and whatever
        # masked echo residue is under it; they are zeroed too (not reported as removed:
        # nothing audible was there). A block is gated when both frames covering it are.
        # An echo the filter could not learn because it sits at the noise floor (too weak to
        # adapt on) lifts the output a few dB above the floor: the gate also takes frames
        # within the echo path's reach of it, estimated as the median mic-over-customer
        # power gain on sustained customer speech (agent speech only raises the ratio), at
        # most 6 dB above the floor so that agent speech is never gated.
        ratios = np.maximum(p_d - noise, 0.0) / (x_level + _EPS)
        sustained_far = far_active & sustained
        echo_gain = float(np.median(ratios[sustained_far])) if sustained_far.any() else 0.0
        echo_reach = np.minimum(4.0 * echo_gain * x_level, 3.0 * noise)
        gated = far_active & ~silence & (p_out <= at_floor + echo_reach)
        gated_padded = np.concatenate([gated, [False]])
        gated_blocks = gated_padded[:-1] & gated_padded[1:] & ~silent_blocks
        for start_block, end_block in _runs(silent_blocks | gated_blocks):
            cleaned[start_block * hop : min(total, end_block * hop)] = 0.0
        # Last check, on the output itself: residue coherent with the customer (projected on
        # the per-call echo prediction) above the masked noise floor is silenced as leakage,
        # whether or not the canceller and the estimates above noticed it (an echo a few dB
        # over the line noise that the filter never learnt).
        coherent = np.zeros(silent_blocks.size, bool)
        found = _coherent_residue(
            np.asarray(cleaned, np.float64),
            predicted,
            hop,
            max(1, round(opts.coherence_ms / 1000.0 * rate / hop)),
            masked_share * noise / suppressor.power_scale,
            opts.coherence_threshold,
        )
        span = min(found.size, coherent.size)
        coherent[:span] = found[:span] & ~silent_blocks[:span] & ~gated_blocks[:span]
        for start_block, end_block in _runs(coherent):
            cleaned[start_block * hop : min(total, end_block * hop)] = 0.0
        leak_blocks = leak_blocks | coherent
        silent_blocks = silent_blocks | coherent

        duration = audio.duration
        removed = tuple(
            sorted(
                frames_to_segments(leak_blocks, hop_s, "leakage", duration)
                + frames_to_segments(converge_blocks, hop_s, "not_converged", duration)
            )
        )
        kept_mask = audible & ~silence
        kept = frames_to_segments(
            blocks_of(kept_mask) & ~silent_blocks & ~gated_blocks, hop_s, "agent", duration
        )

        kept_residual = float(np.where(silence, 0.0, residual).sum())
        echo_energy = float(np.where(far_active, p_d, 0.0)[echo_only].sum()) + _EPS
        residual_leakage = float(min(1.0, kept_residual / max(echo_energy, float(p_y.sum()), _EPS)))
        kept_frames = max(1, int(kept_mask.sum()))
        mean_leak_kept = float(np.where(kept_mask, leakage, 0.0).sum() / kept_frames)
        confidence = float(np.clip(1.0 - residual_leakage - 0.5 * mean_leak_kept, 0.0, 1.0))

        aec_mic = float(p_d[echo_only].sum())
        aec_err = float((p_out * ~silence)[echo_only].sum())
        erle_db = 10.0 * math.log10((aec_mic + _EPS) / (aec_err + _EPS)) if echo_only.any() else 0.0
        metrics = {
            "erle_db": min(erle_db, 120.0),
            "echo_only_s": float(echo_only.sum() * hop_s),
            "silenced_s": float(silence.sum() * hop_s),
            "leakage_silenced_s": float(leak_mask.sum() * hop_s),
            "not_converged_s": float(not_converged.sum() * hop_s),
            "filter_copies": float(canceller.copies),
            "filter_resets": float(canceller.resets),
            "frames": float(frames),
            "primed_s": primed_s,
            "noise_floor_dbfs": 10.0 * math.log10(noise / suppressor.power_scale + 1e-30),
            "gated_s": float(gated_blocks.sum() * hop_s),
            "echo_gain_db": 10.0 * math.log10(echo_gain + 1e-30),
            "coherent_silenced_s": float(coherent.sum() * hop_s),
            "agent_echo_removed_db": agent_echo_db,
        }
        notes = []
        if not_converged.any():
            notes.append(
                f"{metrics['not_converged_s']:.1f} s silenced where the echo canceller had not "
                "converged"
            )
        if leak_mask.any():
            notes.append(f"{metrics['leakage_silenced_s']:.1f} s silenced as customer leakage")
        return IsolationResult(
            audio=Audio(samples=cleaned, sample_rate=rate),
            kept=kept,
            removed=removed,
            residual_leakage=residual_leakage,
            confidence=confidence,
            agent_channel=agent,
            notes=tuple(notes),
            metrics=metrics,
        )


# --------------------------------------------------------------------------- hooks


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["channels"]`` for kind ``"separator"``, nothing otherwise."""
    return [NAME] if kind == "separator" else []


@hookimpl
def voicepriv_separator(name: str, options: Mapping[str, Any]) -> ChannelsSeparator | None:
    """The ``"channels"`` separator with *options* (see :class:`ChannelsOptions`), else ``None``."""
    if name != NAME:
        return None
    return ChannelsSeparator(options=ChannelsOptions.from_mapping(options))
