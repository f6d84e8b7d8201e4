"""Built-in ``"channels"`` separator: agent-only audio from a dual-channel (stereo) call.

The agent channel is kept; the customer channel is used only as the *reference* of an echo
canceller and then dropped. Three stages run over streaming chunks with bounded state:

1. **Echo cancellation** (:class:`EchoCanceller`): a partitioned-block frequency-domain
   adaptive filter (multi-delay filter, MDF, as in speexdsp) with a two-path structure. A
   *background* filter adapts on every block (normalised step per frequency bin); the
   *foreground* filter, whose output is used, is replaced by the background one only when the
   background's error energy has been clearly lower for several blocks, and the background is
   reset to the foreground when it diverges. Near-end (agent) speech during double talk
   therefore cannot drag the foreground filter away, while a changed echo path (transfer,
   headset change) is re-learnt by the background and copied over within a second or two.
2. **Residual echo suppression**: a per-bin gain from the residual echo power, estimated as
   the echo estimate's power times a tracked residual ratio (minimum statistics of
   error-to-echo-estimate power, which double talk cannot lower).
3. **Fail-closed leakage detection**: for every short frame, the fraction of the remaining
   energy explained by the customer channel (estimated residual echo power over output power).
   Frames above a threshold are silenced (label ``"leakage"``); frames with customer speech
   before the canceller has converged, or while it does not reach the required attenuation,
   are silenced too (label ``"not_converged"``).

Only numpy and scipy are used; one block loop in Python, everything inside a block vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
from scipy import ndimage, signal

from voicepriv.audio import Audio
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import IsolationRequest, IsolationResult
from voicepriv.model import LayoutKind, Role, Segment
from voicepriv.plugins import hookimpl

__all__ = [
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


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            f"channels separator option {attribute.name!r}: expected a positive number, "
            f"got {value!r}"
        )


def _fraction(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigError(
            f"channels separator option {attribute.name!r}: expected a number in (0, 1], "
            f"got {value!r}"
        )


@attrs.frozen(kw_only=True)
class ChannelsOptions:
    """Settings of the ``"channels"`` separator (every one has a working default).

    :param filter_ms: echo path length the canceller models (>= the longest echo delay plus
        its decay); 200 ms covers telephone echo paths up to 128 ms with margin.
    :param block_ms: adaptive filter block length; larger is faster, smaller adapts sooner.
    :param step: normalised step size of the background filter (0-1).
    :param frame_ms: analysis frame of the suppressor and the leakage detector.
    :param leakage_threshold: a frame is silenced when more than this fraction of its
        remaining energy is explained by the customer channel.
    :param min_erle_db: the attenuation the canceller must reach on echo-only speech before
        customer-active frames are kept at all.
    :param warmup_s: seconds of customer speech dropped at the start while the filter learns.
    :param suppression_floor_db: lowest gain of the residual echo suppressor.
    :param chunk_s: streaming chunk length (bounded working memory).
    """

    filter_ms: float = attrs.field(default=200.0, validator=_positive)
    block_ms: float = attrs.field(default=32.0, validator=_positive)
    step: float = attrs.field(default=1.0, validator=_fraction)
    frame_ms: float = attrs.field(default=16.0, validator=_positive)
    leakage_threshold: float = attrs.field(default=0.15, validator=_fraction)
    min_erle_db: float = attrs.field(default=10.0, validator=_positive)
    warmup_s: float = attrs.field(default=2.0, validator=_positive)
    suppression_floor_db: float = attrs.field(default=40.0, validator=_positive)
    chunk_s: float = attrs.field(default=4.0, validator=_positive)

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
    microphone with the echo estimate removed) and the echo estimate, both as long as the
    chunk, after a delay of one block. State is bounded by the filter length.

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
        self._x_power = 0.7 * self._x_power + 0.3 * (spectrum.real**2 + spectrum.imag**2)

        both = np.stack([self._w_fore, self._w_back]) * self._x_spectra
        echoes = np.fft.irfft(both.sum(axis=1), axis=-1)[:, n:]
        e_fore = d - echoes[0]
        e_back = d - echoes[1]

        # Background adaptation: normalised per bin, gradient constrained to the filter length.
        e_spectrum = np.fft.rfft(np.concatenate([np.zeros(n), e_back]))
        norm = self.partitions * self._x_power
        norm += 1e-3 * float(norm.mean()) + _EPS
        gain = (self.step / norm) * e_spectrum
        self._w_back += np.conj(self._x_spectra) * gain
        taps = np.fft.irfft(self._w_back, axis=-1)
        taps[:, n:] = 0.0
        self._w_back = np.fft.rfft(taps, axis=-1)

        # Two-path control: copy background -> foreground when it is clearly better.
        energy_d = float(d @ d)
        self._energy_fore = 0.6 * self._energy_fore + 0.4 * float(e_fore @ e_fore)
        self._energy_back = 0.6 * self._energy_back + 0.4 * float(e_back @ e_back)
        far_active = float(x @ x) > 1e-7 * n
        if (
            far_active
            and self._energy_back < 0.7 * self._energy_fore
            and (float(e_back @ e_back) < energy_d)
        ):
            self._better_count += 1
            if self._better_count >= 2:
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


class _ResidualSuppressor:
    """Streaming STFT residual echo suppressor and frame-wise leakage detector."""

    def __init__(self, sample_rate: int, options: ChannelsOptions) -> None:
        self.frame = _power_of_two(2 * options.frame_ms * sample_rate / 1000.0)
        self.hop = self.frame // 2
        self.window: FloatArray = np.sqrt(signal.get_window("hann", self.frame, fftbins=True))
        self.options = options
        self.over_subtraction = 1.0
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
        self._y_floor = 0.0

    def _frames(self, tail: FloatArray, chunk: FloatArray) -> tuple[ComplexArray, FloatArray]:
        data = np.concatenate([tail, chunk])
        count = chunk.size // self.hop
        idx = np.arange(self.frame)[None, :] + self.hop * np.arange(count)[:, None]
        spectra = np.fft.rfft(data[idx] * self.window, axis=-1)
        return spectra, data[data.size - (self.frame - self.hop) :]

    def process(
        self, error: FloatArray, echo: FloatArray, microphone: FloatArray, reference: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """One chunk (a multiple of ``hop`` samples); returns the suppressed output (delayed
        by ``frame - hop`` samples) and per frame: residual echo power, output power, echo
        estimate power, microphone power and reference power."""
        e_spec, self._tail_e = self._frames(self._tail_e, error)
        y_spec, self._tail_y = self._frames(self._tail_y, echo)
        d_spec, self._tail_d = self._frames(self._tail_d, microphone)
        p_e = e_spec.real**2 + e_spec.imag**2
        p_y = y_spec.real**2 + y_spec.imag**2
        p_d = d_spec.real**2 + d_spec.imag**2
        x_frames = np.concatenate([self._tail_x, reference])
        self._tail_x = x_frames[x_frames.size - (self.frame - self.hop) :]
        p_x = (x_frames[: reference.size].reshape(-1, self.hop) ** 2).sum(axis=1) * 2.0

        # Residual ratio per bin: smoothed |E|^2/|Y|^2, then its minimum over ~1.5 s where the
        # echo estimate is active. Double talk raises the ratio, so the minimum ignores it.
        p_y_smooth = ndimage.uniform_filter1d(p_y, 5, axis=1, mode="nearest")
        p_e_smooth = ndimage.uniform_filter1d(p_e, 5, axis=1, mode="nearest")
        y_level = p_y_smooth.sum(axis=1)
        self._y_floor = max(self._y_floor * 0.999, 1e-9 * self.frame)
        active = y_level > max(1e-6 * float(y_level.max(initial=0.0)), 1e-9 * self.frame)
        raw = np.where(
            active[:, None] & (p_y_smooth > 1e-10), p_e_smooth / (p_y_smooth + _EPS), np.inf
        )
        raw = np.minimum(raw, 1.0)
        raw[~active] = np.inf
        smoothed, zi = signal.lfilter(
            [0.3],
            [1.0, -0.7],
            np.where(np.isfinite(raw), raw, 1.0),
            axis=0,
            zi=(0.7 * self._ratio_state)[None, :],
        )
        smoothed = np.where(np.isfinite(raw), smoothed, np.inf)
        self._ratio_state = zi[0] / 0.7
        stacked = np.concatenate([self._ratio_hist, smoothed])
        ratio = ndimage.minimum_filter1d(stacked, self._history, axis=0, origin=self._history // 2)
        ratio = ratio[self._history :]
        ratio = np.where(np.isfinite(ratio), ratio, 1.0)
        self._ratio_hist = stacked[-self._history :]

        residual = self.over_subtraction * ratio * p_y_smooth
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
        p_out = (p_e * gain**2).sum(axis=1)
        return (emitted, residual_out.sum(axis=1), p_out, p_y.sum(axis=1), p_d.sum(axis=1), p_x)


# --------------------------------------------------------------------------- segments


def frames_to_segments(
    mask: BoolArray, hop_s: float, label: str, duration: float
) -> tuple[Segment, ...]:
    """Runs of ``True`` in a frame *mask* as labelled :class:`Segment` values (clipped)."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return tuple(
        Segment(start=min(s * hop_s, duration), end=min(e * hop_s, duration), label=label)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        if min(s * hop_s, duration) < min(e * hop_s, duration)
    )


# --------------------------------------------------------------------------- separator


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
        chunk = max(canceller.block, round(opts.chunk_s * rate / canceller.block) * canceller.block)
        total = audio.frames
        delay = suppressor.frame - suppressor.hop
        mic_all = audio.samples[:, agent]
        ref_all = audio.samples[:, 1 - agent]

        outputs: list[FloatArray] = []
        stats: list[tuple[FloatArray, ...]] = []
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
            out, *frame_stats = suppressor.process(
                errors_pending[:usable],
                echoes_pending[:usable],
                mic_pending[:usable],
                ref_pending[:usable],
            )
            outputs.append(out)
            stats.append(tuple(frame_stats))
            errors_pending = errors_pending[usable:]
            echoes_pending = echoes_pending[usable:]
            mic_pending = mic_pending[usable:]
            ref_pending = ref_pending[usable:]
            if request.progress is not None:
                request.progress(min(position, total) / rate, total / rate)
            if final:
                break
        del ref_all, errors_pending, echoes_pending, mic_pending, ref_pending

        signal_out = np.concatenate(outputs)[delay : delay + total]
        residual, p_out, p_y, p_d, p_x = (
            np.concatenate(column) for column in zip(*stats, strict=True)
        )
        frames = residual.size
        # Frame i of the suppressor covers output samples [(i-1)*hop, (i+1)*hop) after the
        # delay compensation, so it is centred at i*hop - delay + frame/2 = i*hop.
        leakage = residual / (p_out + _EPS)
        # The customer is "active" at a frame when the reference had energy within the
        # modelled echo path length before it (echo arrives up to filter_ms later).
        reach = max(1, math.ceil(opts.filter_ms / 1000.0 * rate / hop))
        x_level = ndimage.maximum_filter1d(p_x, 2 * reach + 1, origin=reach)
        far_active = x_level > max(1e-4 * float(np.percentile(p_x, 99)), 1e-8 * hop)
        audible = p_out > 1e-7 * hop
        leak_mask = far_active & audible & (leakage > opts.leakage_threshold)

        # Convergence. The first warmup_s of customer activity are dropped while the filter
        # learns. After that, frames where the echo estimate explains much of the microphone
        # but the attenuation stays under min_erle_db over a second (non-linear echo, a
        # diverged or lagging filter) are dropped too.
        warmup_frames = round(opts.warmup_s * rate / hop)
        warming = far_active & (np.cumsum(far_active) <= warmup_frames)
        echo_only = far_active & (p_y > 0.9 * p_d)
        attenuation = p_d / (p_out + _EPS)
        required = 10.0 ** (opts.min_erle_db / 10.0)
        failing = echo_only & (attenuation < required)
        passing = echo_only & (attenuation >= required)
        window = max(1, round(2.0 * rate / hop))
        recent_fail = ndimage.uniform_filter1d(failing.astype(float), window, mode="nearest")
        recent_ok = ndimage.uniform_filter1d(passing.astype(float), window, mode="nearest")
        echoing = far_active & (p_y > 0.1 * p_d)
        evidence = recent_fail * window >= 3.0
        not_converged = warming | (echoing & evidence & (recent_fail > recent_ok))
        not_converged = ndimage.binary_dilation(not_converged, iterations=2) & audible
        not_converged &= far_active
        leak_mask = ndimage.binary_dilation(leak_mask, iterations=2) & ~not_converged & audible

        hop_s = hop / rate
        silence = leak_mask | not_converged
        # Frame i covers output samples [(i-1)*hop, (i+1)*hop): a block of hop samples is
        # silenced when either frame covering it is.
        blocks = silence | np.concatenate([silence[1:], [False]])
        sample_mask = np.repeat(blocks, hop)[:total]
        if sample_mask.size < total:
            sample_mask = np.concatenate([sample_mask, np.zeros(total - sample_mask.size, bool)])
        cleaned = np.where(sample_mask, 0.0, signal_out).astype(np.float32)

        duration = audio.duration
        removed = tuple(
            sorted(
                frames_to_segments(leak_mask, hop_s, "leakage", duration)
                + frames_to_segments(not_converged, hop_s, "not_converged", duration)
            )
        )
        kept_mask = audible & ~silence
        kept = frames_to_segments(kept_mask, hop_s, "agent", duration)

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
