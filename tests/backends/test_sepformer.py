"""Tests of overlapped-span recovery (``voicepriv.backends.sepformer``).

The rules are tested with separators whose output is known: a frequency split that really
separates two tones, a separator that returns the mixture twice, one that returns noise, and
(on real speech) an oracle that returns the true tracks. SepFormer itself is loaded from a
small randomly initialised model in SpeechBrain's layout (``speechbrain`` marker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from mono_report import isolate_mono
from voicepriv.audio import Audio
from voicepriv.backends.sepformer import (
    KEPT_LABEL,
    CallVoices,
    RecoveryRules,
    build_source_separator,
    recover_overlaps,
    verdict_counts,
)
from voicepriv.backends.speaker import SpeakerOptions, SpeakerSeparator
from voicepriv.enrollment import enroll_clips
from voicepriv.errors import ConfigError
from voicepriv.interfaces import Embedder, SourceSeparator, SpeechActivity
from voicepriv.plugins import backend, get_plugin_manager

RATE = 8000
HOP = RATE // 100


def _tone(hz: float, seconds: float, level: float = 0.1) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _tone_call(customer_from: float = 4.0, customer_to: float = 5.0) -> tuple[Audio, np.ndarray]:
    """10 s: the "agent" (200 Hz) throughout, the "customer" (1 kHz) over part of it."""
    agent = _tone(200.0, 10.0)
    customer = np.zeros_like(agent)
    lo, hi = round(customer_from * RATE), round(customer_to * RATE)
    customer[lo:hi] = _tone(1000.0, customer_to - customer_from)
    return Audio(samples=agent + customer, sample_rate=RATE), agent


def _labels(overlap: tuple[float, float] = (3.7, 5.3)) -> np.ndarray:
    labels = np.full(1000, "agent", dtype=object)
    labels[round(overlap[0] * 100) : round(overlap[1] * 100)] = "overlap"
    return labels


class _BandSplit:
    """A real separator for tone calls: below and above 600 Hz (FFT masks)."""

    name = "band-split"

    def separate(self, audio: Audio) -> np.ndarray:
        spectrum = np.fft.rfft(audio.samples[:, 0])
        freqs = np.fft.rfftfreq(audio.frames, 1.0 / audio.sample_rate)
        low = np.fft.irfft(np.where(freqs < 600, spectrum, 0), audio.frames)
        high = np.fft.irfft(np.where(freqs >= 600, spectrum, 0), audio.frames)
        return np.stack([high, low]).astype(np.float32)  # order says nothing


class _Twice:
    """Returns the mixture as both sources (a separator that separates nothing)."""

    name = "twice"

    def separate(self, audio: Audio) -> np.ndarray:
        return np.stack([audio.samples[:, 0]] * 2)


class _Noise:
    """Returns noise: sources that explain nothing of the mixture."""

    name = "noise"

    def separate(self, audio: Audio) -> np.ndarray:
        return np.random.default_rng(0).normal(0, 0.1, (2, audio.frames)).astype(np.float32)


class _Leaky(_BandSplit):
    """Splits the tones but leaves a third of the 1 kHz tone in the 200 Hz source."""

    name = "leaky"

    def separate(self, audio: Audio) -> np.ndarray:
        high, low = super().separate(audio)
        return np.stack([high * 2 / 3, low + high / 3])


class _Three(_BandSplit):
    name = "three"

    def separate(self, audio: Audio) -> np.ndarray:
        two = super().separate(audio)
        return np.concatenate([two, two[:1] * 0])


class _BandEmbedder:
    """Embeds a tone call by its energy below and above 600 Hz (unit 2-vector)."""

    name = "band"
    dim = 2

    def embed(self, audio: Audio) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(audio.samples[:, 0])) ** 2
        freqs = np.fft.rfftfreq(audio.frames, 1.0 / audio.sample_rate)
        vector = np.array([spectrum[freqs < 600].sum(), spectrum[freqs >= 600].sum()])
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # the rules only embed whole pieces


AGENT = np.array([1.0, 0.0])
CUSTOMER = np.array([0.0, 1.0])


def _voices(voiceprint: np.ndarray = AGENT, min_score: float = 0.8) -> CallVoices:
    return CallVoices(
        agent=AGENT, customers=(CUSTOMER,), voiceprint=voiceprint, min_score=min_score
    )


def test_a_real_split_keeps_the_agent_estimate_and_nothing_of_the_customer() -> None:
    audio, agent = _tone_call()
    labels = _labels()
    out, separated, verdicts = recover_overlaps(
        audio, labels, _BandSplit(), _BandEmbedder(), _voices()
    )
    assert [v.reason for v in verdicts] == ["kept"]
    assert (
        verdicts[0].residual_db < -60 and verdicts[0].leads[1] > 0.9 > -0.9 > verdicts[0].leads[0]
    )
    assert (out[370:530] == KEPT_LABEL).all()
    assert (out[:370] == "agent").all() and (out[530:] == "agent").all()
    patch = separated.samples[:, 0]
    inside = slice(370 * HOP, 530 * HOP)
    # the kept audio is the agent's tone, not the mixture: the 1 kHz tone is gone
    error = patch[inside] - agent[inside]
    assert 10 * np.log10(np.sum(error**2) / np.sum(agent[inside] ** 2)) < -30
    assert not patch[: 370 * HOP].any() and not patch[530 * HOP :].any()


@pytest.mark.parametrize(
    ("separator", "reason"),
    [
        (_Twice(), "entangled"),
        (_Noise(), "unexplained"),
        (_Three(), "not_two_sources"),
        (_Leaky(), "entangled"),
    ],
)
def test_a_separator_that_does_not_separate_keeps_nothing(
    separator: SourceSeparator, reason: str
) -> None:
    audio, _ = _tone_call()
    labels = _labels()
    out, separated, verdicts = recover_overlaps(
        audio, labels, separator, _BandEmbedder(), _voices()
    )
    assert [v.reason for v in verdicts] == [reason]
    assert (out == labels).all() and not separated.samples.any()


def test_a_flag_without_a_second_voice_keeps_nothing() -> None:
    audio, _ = _tone_call(customer_from=8.0, customer_to=9.0)  # flagged 3.7-5.3 s: agent alone
    out, _, verdicts = recover_overlaps(audio, _labels(), _BandSplit(), _BandEmbedder(), _voices())
    assert [v.reason for v in verdicts] == ["one_voice"]
    assert not (out == KEPT_LABEL).any()


def test_a_source_unlike_the_voiceprint_or_a_long_span_keeps_nothing() -> None:
    audio, _ = _tone_call()
    elsewhere = np.array([0.6, 0.8])  # the call's agent model, but not the enrolled voice
    _, _, verdicts = recover_overlaps(
        audio, _labels(), _BandSplit(), _BandEmbedder(), _voices(voiceprint=elsewhere)
    )
    assert [v.reason for v in verdicts] == ["unsure"]
    rules = RecoveryRules(max_span_s=1.0)
    _, _, verdicts = recover_overlaps(
        audio, _labels(), _BandSplit(), _BandEmbedder(), _voices(), rules
    )
    assert [v.reason for v in verdicts] == ["too_long"]
    assert verdict_counts(verdicts) == {"too_long": 1}


@settings(max_examples=25, deadline=None)
@given(
    runs=st.lists(
        st.tuples(
            st.integers(0, 990), st.integers(1, 300), st.sampled_from(["overlap", "customer"])
        ),
        max_size=5,
    ),
    noise=st.booleans(),
)
def test_recovery_only_ever_relabels_overlap_frames(
    runs: list[tuple[int, int, str]], noise: bool
) -> None:
    audio, _ = _tone_call()
    labels = np.full(1000, "agent", dtype=object)
    for start, length, label in runs:
        labels[start : start + length] = label
    separator: SourceSeparator = _Noise() if noise else _BandSplit()
    out, separated, verdicts = recover_overlaps(
        audio, labels, separator, _BandEmbedder(), _voices()
    )
    changed = out != labels
    assert (labels[changed] == "overlap").all() and (out[changed] == KEPT_LABEL).all()
    gain = np.repeat(out == KEPT_LABEL, HOP)
    assert not separated.samples[~gain, 0].any()
    starts = np.flatnonzero(np.diff(np.concatenate([[0], changed.astype(np.int8)])) == 1)
    assert sum(v.kept for v in verdicts) == starts.size  # one kept verdict per relabelled run
    if noise:
        assert not changed.any()


# --------------------------------------------------------------------------- options


def test_separator_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown overlap separator 'bogus'"):
        SpeakerOptions(overlap_separator="bogus")
    assert build_source_separator("none", {}) is None
    with pytest.raises(ConfigError, match="'source'"):
        build_source_separator("sepformer", {})
    with pytest.raises(ConfigError, match="unknown option"):
        build_source_separator("sepformer", {"source": str(tmp_path), "device": "cuda"})
    with pytest.raises(ConfigError, match=r"hyperparams\.yaml"):
        build_source_separator("sepformer", {"source": str(tmp_path)})
    options = SpeakerOptions.from_mapping(
        {"overlap_separator": "sepformer", "separation_min_lead": 0.2}
    )
    assert options.recovery_rules() == RecoveryRules(min_lead=0.2)
    with pytest.raises(ConfigError, match="separation_max_span_s"):
        SpeakerOptions(separation_max_span_s=0)
    with pytest.raises(ConfigError, match="separation_max_residual_db"):
        SpeakerOptions(separation_max_residual_db=3)  # sources explaining less than nothing


# --------------------------------------------------------------------------- real speech


def _readers(shared_data: Path, speaker: str) -> list[np.ndarray]:
    files = sorted((shared_data / "librispeech-test-other" / speaker).glob("*.flac"))
    return [np.asarray(sf.read(f, dtype="float32")[0], np.float32) for f in files]


class _Oracle:
    """Returns the true agent and customer tracks of any piece of the call it was built on."""

    name = "oracle"

    def __init__(self, mix: np.ndarray, agent: np.ndarray, customer: np.ndarray) -> None:
        self.mix, self.agent, self.customer = mix, agent, customer
        self.calls = 0

    def separate(self, audio: Audio) -> np.ndarray:
        piece = audio.samples[:, 0]
        first = int(np.flatnonzero(piece)[0])
        for at in np.flatnonzero(self.mix == piece[first]) - first:
            if at >= 0 and np.array_equal(self.mix[at : at + piece.size], piece):
                self.calls += 1
                span = slice(int(at), int(at) + piece.size)
                return np.stack([self.customer[span], self.agent[span]])
        raise AssertionError("the piece is not part of the call")


class _Flags:
    """An overlap-detector double flagging the given spans (20 ms frames)."""

    name = "flags"

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        self.spans = spans

    def detect(self, audio: Audio) -> SpeechActivity:
        probability = np.zeros(int(np.ceil(audio.duration / 0.02)), np.float32)
        for start, end in self.spans:
            probability[round(start / 0.02) : round(end / 0.02)] = 1.0
        return SpeechActivity(hop_s=0.02, probabilities=probability)


def _interrupted_call(shared_data: Path) -> tuple[Audio, np.ndarray, np.ndarray, list[Any], Any]:
    """Turns of two readers at 16 kHz, the customer talking over the agent's turns twice."""
    agent_utts = _readers(shared_data, "1688")
    customer_utts = _readers(shared_data, "3080")
    rate = 16000
    agent = np.zeros(43 * rate, np.float32)
    customer = np.zeros(43 * rate, np.float32)
    stream_a = np.concatenate(agent_utts[3:])
    stream_c = np.concatenate(customer_utts)
    t, ia, ic = rate // 2, 0, 0
    overlaps: list[tuple[float, float]] = []
    for turn in range(6):
        length = 4 * rate
        agent[t : t + length] = stream_a[ia : ia + length]
        ia += length
        if turn % 3 == 1:  # the customer talks over the middle of this turn for 1 s
            at = t + int(1.5 * rate)
            customer[at : at + rate] = stream_c[ic : ic + rate]
            ic += rate
            overlaps.append((at / rate, at / rate + 1.0))
        t += length + rate // 2
        customer[t : t + 2 * rate] = stream_c[ic : ic + 2 * rate]
        ic += 2 * rate
        t += 2 * rate + rate // 2
    clips = [Audio(samples=x, sample_rate=rate) for x in agent_utts[:3]]
    return Audio(samples=agent + customer, sample_rate=rate), agent, customer, overlaps, clips


@pytest.fixture(scope="module")
def campplus() -> Embedder:
    embedder = backend(get_plugin_manager(), "embedder", "campplus", {})
    assert isinstance(embedder, Embedder)
    return embedder


def test_separated_agent_speech_in_overlaps_is_kept_and_the_customer_is_not(
    shared_data: Path, campplus: Embedder
) -> None:
    audio, agent, customer, overlaps, clips = _interrupted_call(shared_data)
    voiceprint = enroll_clips("1688", clips, campplus)
    options = SpeakerOptions(overlap_separator="sepformer", vad="energy")
    oracle = _Oracle(audio.samples[:, 0], agent, customer)
    separator = SpeakerSeparator(
        options, embedder=campplus, overlap_detector=_Flags(overlaps), source_separator=oracle
    )
    result = isolate_mono(separator, audio, voiceprint)
    assert oracle.calls >= len(overlaps)
    kept = [s for s in result.kept if s.label == KEPT_LABEL]
    assert result.metrics["separated_s"] > 1.0 and kept
    for start, _ in overlaps:
        assert any(s.start <= start + 0.5 < s.end for s in kept)
    out = result.audio.samples[:, 0]
    for segment in kept:
        # inside a kept overlap the output is the agent's track, not the mixture (the
        # 10 ms fades at the span's edges reach 20 ms in)
        span = slice(round(segment.start * 16000) + 330, round(segment.end * 16000) - 330)
        assert np.allclose(out[span], agent[span], atol=1e-4)
    # without the separator the same call keeps nothing of those overlaps
    plain = SpeakerSeparator(
        SpeakerOptions(vad="energy"), embedder=campplus, overlap_detector=_Flags(overlaps)
    )
    baseline = isolate_mono(plain, audio, voiceprint)
    assert not any(s.label == KEPT_LABEL for s in baseline.kept)
    assert "separated_s" not in baseline.metrics
    # a separator that separates nothing changes nothing
    unchanged = SpeakerSeparator(
        options, embedder=campplus, overlap_detector=_Flags(overlaps), source_separator=_Twice()
    )
    same = isolate_mono(unchanged, audio, voiceprint)
    assert same.kept == baseline.kept
    assert np.array_equal(same.audio.samples, baseline.audio.samples)
    assert same.metrics["separation_spans_kept"] == 0


# --------------------------------------------------------------------------- SepFormer


def _random_sepformer(folder: Path) -> Path:
    """A small randomly initialised SepFormer saved in SpeechBrain's pretrained layout."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("speechbrain")
    from hyperpyyaml import load_hyperpyyaml

    block = """!new:speechbrain.lobes.models.dual_path.SBTransformerBlock
    num_layers: 1
    d_model: 32
    nhead: 2
    d_ffn: 64
    dropout: 0
    use_positional_encoding: True
    norm_before: True
"""
    text = f"""\
sample_rate: 8000
num_spks: 2
Encoder: !new:speechbrain.lobes.models.dual_path.Encoder
    kernel_size: 16
    out_channels: 32
SBtfintra: {block}SBtfinter: {block}MaskNet: !new:speechbrain.lobes.models.dual_path.Dual_Path_Model
    num_spks: !ref <num_spks>
    in_channels: 32
    out_channels: 32
    num_layers: 1
    K: 50
    intra_model: !ref <SBtfintra>
    inter_model: !ref <SBtfinter>
    norm: ln
    linear_layer_after_inter_intra: False
    skip_around_intra: True
Decoder: !new:speechbrain.lobes.models.dual_path.Decoder
    in_channels: 32
    out_channels: 1
    kernel_size: 16
    stride: 8
    bias: False
modules:
    encoder: !ref <Encoder>
    decoder: !ref <Decoder>
    masknet: !ref <MaskNet>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <Encoder>
        masknet: !ref <MaskNet>
        decoder: !ref <Decoder>
    paths:
        encoder: encoder.ckpt
        masknet: masknet.ckpt
        decoder: decoder.ckpt
"""
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(text)
    for name in ("encoder", "masknet", "decoder"):
        torch.save(hparams["modules"][name].state_dict(), folder / f"{name}.ckpt")
    (folder / "hyperparams.yaml").write_text(text)
    return folder


@pytest.mark.speechbrain
def test_sepformer_loads_a_local_model_and_separates(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    folder = _random_sepformer(tmp_path)
    separator = build_source_separator("sepformer", {"source": str(folder)})
    assert isinstance(separator, SourceSeparator) and separator.name == "sepformer"
    # the weights really came from the checkpoint
    saved = torch.load(folder / "masknet.ckpt")
    first = next(iter(saved))
    model = separator._model  # type: ignore[attr-defined]
    assert torch.equal(model.mods.masknet.state_dict()[first], saved[first])
    audio, _ = _tone_call()
    wide = audio.resampled(16000)
    sources = separator.separate(wide)
    assert sources.shape == (2, wide.frames) and sources.dtype == np.float32
    assert np.isfinite(sources).all() and sources.any()
    # an untrained model does not pass the rules: nothing is kept
    out, separated, verdicts = recover_overlaps(
        audio, _labels(), separator, _BandEmbedder(), _voices()
    )
    assert verdicts and not any(v.kept for v in verdicts)
    assert not (out == KEPT_LABEL).any() and not separated.samples.any()
