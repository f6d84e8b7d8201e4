"""The isolation facade: channel roles, swapped channels, dispatch, and the ``isolate`` CLI.

Real speech from ``../shared/data``: agent and customer are two different LibriSpeech
speakers. Voiceprints are scored by a small cepstral embedder registered as an inline plugin
(and always unregistered), so these tests do not depend on any other embedder backend.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pluggy
import pytest
import soundfile as sf
from scipy import signal
from scipy.fft import dct

from voicepriv.audio import Audio
from voicepriv.errors import IsolationError, PluginError
from voicepriv.interfaces import (
    Embedder,
    IsolationRequest,
    IsolationResult,
    Separator,
    Voiceprint,
)
from voicepriv.isolation import isolate, resolve_agent_channel
from voicepriv.model import ChannelLayout, Role
from voicepriv.plugins import backend, backend_names, get_plugin_manager, hookimpl

Array = npt.NDArray[np.float64]
FloatArray = npt.NDArray[np.float32]

RATE = 8000
AGENT = "1688"
CUSTOMER = "2033"
BACKGROUND = ("3005", "367", "2414", "2609", "3080", "533")
EMBEDDER = "test-cepstral"
#: The test embedder has no calibrated floor; the agent's channel scores 0.89, the customer's 0.42.
CEPSTRAL_MIN = 0.7


def _utterances(root: Path, speaker: str, indices: Sequence[int]) -> Array:
    files = sorted((root / "librispeech-test-other" / speaker).glob("*.flac"))
    data = np.concatenate([sf.read(files[i], dtype="float64")[0] for i in indices])
    resampled: Array = signal.resample_poly(data, RATE, 16000)
    return resampled


def _cepstra(samples: Array, rate: int) -> Array:
    freqs, _, spec = signal.stft(
        samples, rate, nperseg=round(0.025 * rate), noverlap=round(0.015 * rate)
    )
    power = np.abs(spec) ** 2
    energy = power.sum(axis=0)
    speech = energy > 1e-3 * energy.max()
    edges = np.searchsorted(freqs, np.geomspace(100, min(3800, rate / 2 - 100), 25))
    bands = np.stack([power[a:b].sum(axis=0) for a, b in itertools.pairwise(edges)])
    cepstra = dct(np.log(bands[:, speech] + 1e-10), axis=0, norm="ortho")[1:13]
    vector = np.concatenate([cepstra.mean(axis=1), cepstra.std(axis=1)])
    unit: Array = vector / np.linalg.norm(vector)
    return unit


class CepstralEmbedder:
    """Mean and spread of 12 log-band cepstra, centred on a background of other speakers."""

    def __init__(self, background: Array) -> None:
        self.background = background

    @property
    def name(self) -> str:
        return EMBEDDER

    @property
    def dim(self) -> int:
        return int(self.background.size)

    def embed(self, audio: Audio) -> FloatArray:
        vector = _cepstra(audio.mono().astype(np.float64), audio.sample_rate) - self.background
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def embed_windows(
        self, audio: Audio, *, window_s: float, hop_s: float
    ) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError("not needed by channel-role resolution")


class EmbedderPlugin:
    """Inline plugin giving :class:`CepstralEmbedder` under the name ``test-cepstral``."""

    def __init__(self, embedder: CepstralEmbedder) -> None:
        self.embedder = embedder

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return [EMBEDDER] if kind == "embedder" else []

    @hookimpl
    def voicepriv_embedder(self, name: str, options: Mapping[str, Any]) -> Embedder | None:
        return self.embedder if name == EMBEDDER else None


@pytest.fixture(scope="module")
def embedder(shared_data: Path) -> CepstralEmbedder:
    background = np.mean(
        [_cepstra(_utterances(shared_data, s, [2, 3, 4]), RATE) for s in BACKGROUND], axis=0
    )
    return CepstralEmbedder(background)


@pytest.fixture
def manager(embedder: CepstralEmbedder) -> Iterator[pluggy.PluginManager]:
    plugins = get_plugin_manager(autoload=False)
    plugin = EmbedderPlugin(embedder)
    plugins.register(plugin, name="test-cepstral-embedder")
    try:
        yield plugins
    finally:
        plugins.unregister(plugin)


@pytest.fixture(scope="module")
def voiceprint(shared_data: Path, embedder: CepstralEmbedder) -> Voiceprint:
    enrollment = Audio(samples=_utterances(shared_data, AGENT, [5, 6, 7, 8, 9]), sample_rate=RATE)
    return Voiceprint(
        agent_id="agent-7",
        embedder=EMBEDDER,
        vector=embedder.embed(enrollment),
        seconds=enrollment.duration,
    )


def _builtin_voiceprint(shared_data: Path, name: str) -> Voiceprint:
    """The agent's voiceprint by the built-in embedder *name* (skipped when not installed)."""
    plugins = get_plugin_manager(autoload=False)
    if name not in backend_names(plugins, "embedder"):
        pytest.skip(f"the built-in {name!r} embedder is not installed")
    embedder = backend(plugins, "embedder", name, {})
    enrollment = Audio(samples=_utterances(shared_data, AGENT, [5, 6, 7, 8, 9]), sample_rate=RATE)
    return Voiceprint(
        agent_id="agent-7",
        embedder=name,
        vector=embedder.embed(enrollment),
        seconds=enrollment.duration,
    )


@pytest.fixture(scope="module")
def mfcc_voiceprint(shared_data: Path) -> Voiceprint:
    """The agent's voiceprint by the built-in ``mfcc`` embedder (it has a calibrated floor)."""
    return _builtin_voiceprint(shared_data, "mfcc")


@pytest.fixture(scope="module")
def campplus_voiceprint(shared_data: Path) -> Voiceprint:
    """The agent's voiceprint by ``campplus`` (CAM++, numpy, bundled weights)."""
    return _builtin_voiceprint(shared_data, "campplus")


class StereoCall:
    """Agent and customer turns (with double talk) on two channels; echo in the agent's."""

    def __init__(self, root: Path, *, seconds: float = 20.0, erl_db: float = 15.0) -> None:
        n = round(seconds * RATE)
        pattern = ("c", "a", "c", "dt", "a", "c", "a", "dt")
        section = n // len(pattern)
        gap = round(0.2 * RATE)
        agent_gate = np.zeros(n)
        customer_gate = np.zeros(n)
        for index, kind in enumerate(pattern):
            span = slice(index * section + gap, (index + 1) * section)
            agent_gate[span] = kind in {"a", "dt"}
            customer_gate[span] = kind in {"c", "dt"}
        agent = _utterances(root, AGENT, [0, 1])
        customer = _utterances(root, CUSTOMER, [0, 1, 2])
        self.agent = 0.05 * agent[:n] / np.sqrt(np.mean(agent[:n] ** 2)) * agent_gate
        self.customer = 0.05 * customer[:n] / np.sqrt(np.mean(customer[:n] ** 2)) * customer_gate
        delay = round(0.04 * RATE)
        tail = np.exp(-np.arange(round(0.06 * RATE)) / (0.012 * RATE))
        response = np.concatenate(
            [np.zeros(delay), np.random.default_rng(3).standard_normal(tail.size) * tail]
        )
        response *= 10 ** (-erl_db / 20) / np.sqrt(np.sum(response**2))
        echo = signal.fftconvolve(self.customer, response)[:n]
        self.mic = self.agent + echo + np.random.default_rng(4).standard_normal(n) * 2e-5
        self.agent_only = (agent_gate > 0) & (customer_gate == 0)

    def audio(self, *, agent_left: bool = True) -> Audio:
        pair = (self.mic, self.customer) if agent_left else (self.customer, self.mic)
        return Audio(samples=np.stack(pair, axis=1), sample_rate=RATE)


@pytest.fixture(scope="module")
def call(shared_data: Path) -> StereoCall:
    return StereoCall(shared_data)


def si_sdr_db(estimate: Array, reference: Array) -> float:
    scale = float(estimate @ reference) / float(reference @ reference)
    target = scale * reference
    return float(
        10 * np.log10(float(target @ target) / float((estimate - target) @ (estimate - target)))
    )


# --------------------------------------------------------------------------- channel roles


def test_layout_alone_decides(call: StereoCall) -> None:
    decision = resolve_agent_channel(call.audio(), ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT))
    assert decision.agent_channel == 1
    assert decision.source == "layout"
    assert not decision.swapped


def test_no_layout_and_no_voiceprint_refuses_to_guess(call: StereoCall) -> None:
    with pytest.raises(IsolationError, match="refusing to guess"):
        resolve_agent_channel(call.audio(), None)
    with pytest.raises(IsolationError, match="refusing to guess"):
        isolate(call.audio(), None)


def test_layout_that_contradicts_the_audio_is_refused(call: StereoCall) -> None:
    with pytest.raises(IsolationError, match="says mono"):
        isolate(call.audio(), ChannelLayout.mono())
    mono = Audio(samples=call.mic, sample_rate=RATE)
    with pytest.raises(IsolationError, match="says stereo"):
        isolate(mono, ChannelLayout.stereo())


@pytest.mark.parametrize("agent_left", [True, False])
def test_voiceprint_finds_the_agent_without_a_layout(
    call: StereoCall, voiceprint: Voiceprint, manager: pluggy.PluginManager, agent_left: bool
) -> None:
    decision = resolve_agent_channel(
        call.audio(agent_left=agent_left), None, voiceprint, plugins=manager, min_score=CEPSTRAL_MIN
    )
    assert decision.agent_channel == (0 if agent_left else 1)
    assert decision.source == "voiceprint"
    assert len(decision.scores) == 2


def test_voiceprint_confirms_a_correct_layout(
    call: StereoCall, voiceprint: Voiceprint, manager: pluggy.PluginManager
) -> None:
    decision = resolve_agent_channel(
        call.audio(), ChannelLayout.stereo(), voiceprint, plugins=manager, min_score=CEPSTRAL_MIN
    )
    assert decision.agent_channel == 0
    assert not decision.swapped
    assert "confirms" in decision.notes[0]


def test_swapped_channels_are_detected_reported_and_corrected(
    call: StereoCall, mfcc_voiceprint: Voiceprint
) -> None:
    # The dialer says agent=left, but the agent is on the right.
    result = isolate(
        call.audio(agent_left=False),
        ChannelLayout.stereo(Role.AGENT, Role.CUSTOMER),
        voiceprint=mfcc_voiceprint,
        plugins=get_plugin_manager(autoload=False),
    )
    assert result.swapped
    assert result.agent_channel == 1
    assert any("swapped" in note for note in result.notes)
    output = result.audio.samples[:, 0].astype(np.float64)
    assert si_sdr_db(output[call.agent_only], call.agent[call.agent_only]) >= 20.0


@pytest.mark.parametrize("embedder_name", ["mfcc", "campplus"])
def test_swapped_channels_with_builtin_embedders_and_their_default_floor(
    call: StereoCall,
    mfcc_voiceprint: Voiceprint,
    campplus_voiceprint: Voiceprint,
    embedder_name: str,
) -> None:
    from voicepriv.isolation import default_min_score

    plugins = get_plugin_manager(autoload=False)
    enrolled = mfcc_voiceprint if embedder_name == "mfcc" else campplus_voiceprint
    right = resolve_agent_channel(
        call.audio(agent_left=True), ChannelLayout.stereo(), enrolled, plugins=plugins
    )
    swapped = resolve_agent_channel(
        call.audio(agent_left=False), ChannelLayout.stereo(), enrolled, plugins=plugins
    )
    assert (right.agent_channel, right.swapped) == (0, False)
    assert (swapped.agent_channel, swapped.swapped) == (1, True)
    floor = default_min_score(embedder_name)
    assert right.scores[0] >= floor > right.scores[1]
    assert swapped.scores[1] >= floor > swapped.scores[0]


def test_inconclusive_voiceprint_refuses_with_or_without_layout(
    call: StereoCall,
    embedder: CepstralEmbedder,
    voiceprint: Voiceprint,
    manager: pluggy.PluginManager,
) -> None:
    from voicepriv.isolation import _own_speech

    audio = call.audio()
    own = [
        embedder.embed(Audio(samples=audio.channel(i).mono()[mask], sample_rate=RATE))
        for i, mask in enumerate(_own_speech(audio))
    ]
    middle = own[0] + own[1]  # equally like both channels: no lead
    ambiguous = Voiceprint(
        agent_id="agent-7", embedder=EMBEDDER, vector=middle / np.linalg.norm(middle), seconds=9.0
    )
    with pytest.raises(IsolationError, match="singles out neither channel"):
        resolve_agent_channel(audio, None, ambiguous, plugins=manager, min_score=0.0)
    # Leading is not enough: the agent's channel must reach the floor.
    with pytest.raises(IsolationError, match=r"needs at least 0\.95"):
        resolve_agent_channel(audio, None, voiceprint, plugins=manager, min_score=0.95)
    # With a layout, scores that do not lean against it leave it standing (as without a
    # voiceprint) ...
    kept = resolve_agent_channel(
        audio, ChannelLayout.stereo(), ambiguous, plugins=manager, min_score=0.0
    )
    assert kept.agent_channel == 0 and "inconclusive" in kept.notes[0]
    # ... but scores leaning to the other channel without reaching the floor contradict it
    # without confirming a swap: nothing is decided.
    swapped = ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT)
    with pytest.raises(IsolationError, match="leans to channel 0, not the layout's 1"):
        resolve_agent_channel(audio, swapped, voiceprint, plugins=manager, min_score=0.95)
    # Neither channel leading and the layout's under the floor: nothing vouches for it.
    with pytest.raises(IsolationError, match=r"confirms neither channel .* refusing to keep"):
        resolve_agent_channel(
            audio, ChannelLayout.stereo(), ambiguous, plugins=manager, min_score=0.95
        )


@pytest.mark.parametrize("agent_s", [1.0, 1.4])
def test_swapped_channels_with_a_brief_agent_are_refused_not_kept(
    shared_data: Path, campplus_voiceprint: Voiceprint, agent_s: float
) -> None:
    # The agent's channel had too little speech to be scored, so the (wrong) layout stood and
    # 94 % of the customer's speech was kept with confidence 0.999.
    agent = _utterances(shared_data, AGENT, [0])[: round(agent_s * RATE)]
    customer = _utterances(shared_data, CUSTOMER, [1, 2])
    gap = np.zeros(round(0.3 * RATE))
    agent_track = np.concatenate([agent, gap, np.zeros_like(customer)])
    customer_track = np.concatenate([np.zeros_like(agent), gap, customer])
    recorded = np.stack([customer_track, agent_track], axis=1)  # the agent ended up on the right
    audio = Audio(samples=recorded.astype(np.float32), sample_rate=RATE)
    with pytest.raises(IsolationError, match=r"layout's agent channel 0 scores .* swapped"):
        isolate(audio, ChannelLayout.stereo(), voiceprint=campplus_voiceprint)
    # Recorded as the metadata says, the brief agent is kept: their channel is too short to
    # be checked, and nothing argues against the layout.
    right = Audio(samples=recorded[:, ::-1].astype(np.float32), sample_rate=RATE)
    result = isolate(right, ChannelLayout.stereo(), voiceprint=campplus_voiceprint)
    assert result.agent_channel == 0 and not result.swapped


def _agent_channel_without_the_agent(
    root: Path, call: StereoCall, kind: str
) -> npt.NDArray[np.float64]:
    """The agent's channel of *call* when the enrolled agent does not speak in it."""
    n = call.mic.size
    noise = np.random.default_rng(5).standard_normal(n) * 1e-3  # -60 dBFS line noise
    if kind == "silence":
        return np.zeros(n)
    if kind == "noise":
        return noise
    if kind == "echo":  # agent muted: the customer's echo and line noise only
        echo: npt.NDArray[np.float64] = call.mic - call.agent + noise
        return echo
    # another voice (a colleague, the wrong agent) where the enrolled agent should be
    other = _utterances(root, BACKGROUND[0], [0, 1, 2, 3])[:n]
    voice: npt.NDArray[np.float64] = 0.05 * other / np.sqrt(np.mean(other**2)) + noise[: other.size]
    return np.pad(voice, (0, n - voice.size))


@pytest.mark.parametrize("kind", ["silence", "noise", "echo", "other voice"])
@pytest.mark.parametrize("embedder_name", ["campplus", "mfcc"])
def test_an_agent_channel_without_the_agent_never_hands_over_the_customer_channel(
    shared_data: Path,
    call: StereoCall,
    mfcc_voiceprint: Voiceprint,
    campplus_voiceprint: Voiceprint,
    kind: str,
    embedder_name: str,
) -> None:
    # The customer channel holds real speech of another LibriSpeech reader; the agent's
    # channel holds no speech of the enrolled agent. With the old floor (cosine 0) the
    # customer channel "led" and was isolated as the agent's (confidence 1.0).
    enrolled = campplus_voiceprint if embedder_name == "campplus" else mfcc_voiceprint
    plugins = get_plugin_manager(autoload=False)
    left = _agent_channel_without_the_agent(shared_data, call, kind)
    audio = Audio(samples=np.stack([left, call.customer], axis=1), sample_rate=RATE)
    refused = "too little speech|singles out neither channel"
    with pytest.raises(IsolationError, match=refused):
        resolve_agent_channel(audio, None, enrolled, plugins=plugins)
    # with a layout the voiceprint may refuse or leave the layout; it never swaps to the
    # customer's channel
    layout = ChannelLayout.stereo(Role.AGENT, Role.CUSTOMER)
    try:
        decision = resolve_agent_channel(audio, layout, enrolled, plugins=plugins)
    except IsolationError as exc:
        assert re.search(refused + "|leans to channel", str(exc))
    else:
        assert decision.agent_channel == 0


def test_a_silent_channel_is_named_in_the_refusal(
    call: StereoCall, mfcc_voiceprint: Voiceprint
) -> None:
    audio = Audio(samples=np.stack([np.zeros_like(call.mic), call.customer], 1), sample_rate=RATE)
    with pytest.raises(IsolationError, match=r"channel 0: 0\.0 s") as caught:
        resolve_agent_channel(audio, None, mfcc_voiceprint, plugins=get_plugin_manager())
    assert "agent-7" in str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    # with a layout it stands, and the note says why the voiceprint could not check it
    decision = resolve_agent_channel(
        audio, ChannelLayout.stereo(), mfcc_voiceprint, plugins=get_plugin_manager()
    )
    assert decision.agent_channel == 0 and "channel 0: 0.0 s" in decision.notes[0]


def test_an_embedder_without_a_calibrated_floor_needs_min_score(
    call: StereoCall, voiceprint: Voiceprint, manager: pluggy.PluginManager
) -> None:
    from voicepriv.backends.speaker import DEFAULT_MIN_CLUSTER_SCORES
    from voicepriv.isolation import default_min_score

    assert default_min_score("campplus") == DEFAULT_MIN_CLUSTER_SCORES["campplus"]
    with pytest.raises(IsolationError, match="'test-cepstral' has no calibrated minimum score"):
        resolve_agent_channel(call.audio(), ChannelLayout.stereo(), voiceprint, plugins=manager)
    with pytest.raises(IsolationError, match="'test-cepstral' has no calibrated minimum score"):
        isolate(call.audio(), ChannelLayout.stereo(), voiceprint=voiceprint, plugins=manager)
    result = isolate(
        call.audio(),
        ChannelLayout.stereo(),
        voiceprint=voiceprint,
        plugins=manager,
        voiceprint_min_score=CEPSTRAL_MIN,
    )
    assert result.agent_channel == 0 and not result.swapped


def test_voiceprint_of_another_dimension_or_embedder_is_refused(
    call: StereoCall, manager: pluggy.PluginManager
) -> None:
    short = Voiceprint(agent_id="a", embedder=EMBEDDER, vector=np.ones(5, np.float32), seconds=1.0)
    with pytest.raises(IsolationError, match="5"):
        resolve_agent_channel(call.audio(), None, short, plugins=manager, min_score=CEPSTRAL_MIN)
    unknown = Voiceprint(agent_id="a", embedder="nope", vector=np.ones(5, np.float32), seconds=1.0)
    with pytest.raises(PluginError, match="nope"):
        resolve_agent_channel(call.audio(), None, unknown, plugins=manager)


# --------------------------------------------------------------------------- dispatch


class RecordingSeparator:
    """A separator that records what it was asked and returns silence."""

    def __init__(self, name: str) -> None:
        self.label = name
        self.requests: list[IsolationRequest] = []

    @property
    def name(self) -> str:
        return self.label

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        self.requests.append(request)
        silent = Audio(samples=np.zeros(audio.frames, np.float32), sample_rate=audio.sample_rate)
        return IsolationResult(
            audio=silent, kept=(), removed=(), residual_leakage=0.0, confidence=1.0
        )


class SeparatorPlugin:
    def __init__(self, separator: RecordingSeparator) -> None:
        self.separator = separator

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return [self.separator.name] if kind == "separator" else []

    @hookimpl
    def voicepriv_separator(self, name: str, options: Mapping[str, Any]) -> Separator | None:
        return self.separator if name == self.separator.name else None


def test_mono_calls_go_to_the_speaker_separator_by_name(voiceprint: Voiceprint) -> None:
    plugins = get_plugin_manager(autoload=False)
    fake = RecordingSeparator("speaker")
    plugin = SeparatorPlugin(fake)
    plugins.register(plugin, name="test-speaker")
    try:
        mono = Audio(samples=np.zeros(RATE, np.float32), sample_rate=RATE)
        isolate(mono, None, voiceprint=voiceprint, plugins=plugins)
    finally:
        plugins.unregister(plugin)
    (request,) = fake.requests
    assert request.layout == ChannelLayout.mono()
    assert request.voiceprint is voiceprint


def test_stereo_calls_get_the_resolved_layout(call: StereoCall) -> None:
    fake = RecordingSeparator("custom")
    result = isolate(
        call.audio(agent_left=False),
        ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT),
        separator=fake,
    )
    (request,) = fake.requests
    assert request.layout == ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT)
    assert result.agent_channel == 1


class BrokenSeparator:
    """A third-party separator that breaks its contract in one way."""

    name = "broken"

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def isolate(self, audio: Audio, request: IsolationRequest) -> Any:
        samples = audio.samples[:, :1]
        rate, confidence = audio.sample_rate, 1.0
        if self.fault == "none":
            return None
        if self.fault == "passthrough":  # the whole call, customer channel included
            samples = audio.samples
        elif self.fault == "short":
            samples = samples[: len(samples) // 2]
        elif self.fault == "upsampled":
            samples, rate = np.repeat(samples, 2, axis=0), 2 * rate
        elif self.fault == "confidence":
            confidence = 2.0
        elif self.fault == "numpy-scalars":  # not a fault: numpy numbers are numbers
            confidence = np.float32(0.5)  # type: ignore[assignment]
        out = Audio(samples=samples.astype(np.float32), sample_rate=rate)
        return IsolationResult(
            audio=out, kept=(), removed=(), residual_leakage=0.0, confidence=confidence
        )


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("none", "expected an IsolationResult, got NoneType"),
        ("passthrough", "2 channels"),
        ("short", "frames"),
        ("upsampled", f"{2 * RATE} Hz"),
        ("confidence", "confidence 2.0"),
        ("numpy-scalars", ""),
    ],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_a_separator_breaking_its_contract_is_refused(
    call: StereoCall, voiceprint: Voiceprint, fault: str, problem: str, channels: int
) -> None:
    # Its output used to be stored unchecked: a pass-through separator on an outbound call
    # stored the customer's channel as "agent-only" audio.
    stereo = call.audio(agent_left=True)
    audio = stereo if channels == 2 else Audio(samples=stereo.mono(), sample_rate=RATE)
    layout = ChannelLayout.stereo() if channels == 2 else None
    if fault == "passthrough" and channels == 1:
        pytest.skip("a mono call passed through has the right shape (only voices tell)")
    if fault == "numpy-scalars":
        kept = isolate(
            audio,
            layout,
            separator=BrokenSeparator(fault),
            voiceprint=None if channels == 2 else voiceprint,
        )
        assert kept.confidence == 0.5
        return
    with pytest.raises(IsolationError, match=rf"separator 'broken'.*{re.escape(problem)}"):
        isolate(
            audio,
            layout,
            separator=BrokenSeparator(fault),
            voiceprint=None if channels == 2 else voiceprint,  # the layout decides stereo
        )


class CountingVadPlugin:
    """An inline plugin giving the energy VAD under another name, counting its uses."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return ["counting-vad"] if kind == "vad" else []

    @hookimpl
    def voicepriv_vad(self, name: str, options: Mapping[str, Any]) -> object | None:
        if name != "counting-vad":
            return None
        from voicepriv.backends.vad import EnergyVad

        self.calls += 1
        return EnergyVad()


def test_backends_registered_in_code_reach_the_mono_separator(
    call: StereoCall, mfcc_voiceprint: Voiceprint
) -> None:
    # The speaker separator looked its VAD and embedder up in a fresh plugin manager, so a
    # VAD registered in code on the caller's manager was "not installed".
    plugins = get_plugin_manager(autoload=False)
    plugin = CountingVadPlugin()
    plugins.register(plugin, name="counting-vad")
    mono = Audio(samples=call.audio(agent_left=True).mono()[: 8 * RATE], sample_rate=RATE)
    try:
        result = isolate(
            mono,
            None,
            voiceprint=mfcc_voiceprint,
            options={"vad": "counting-vad", "overlap_detector": "none"},
            plugins=plugins,
        )
    finally:
        plugins.unregister(plugin)
    assert plugin.calls == 1
    assert result.audio.frames == mono.frames


def test_separator_by_name_with_options(call: StereoCall) -> None:
    result = isolate(
        call.audio(), ChannelLayout.stereo(), separator="channels", options={"filter_ms": 150.0}
    )
    assert result.agent_channel == 0
    assert result.audio.channels == 1
    assert result.audio.frames == call.audio().frames
    with pytest.raises(PluginError, match="no separator backend called 'missing'"):
        isolate(call.audio(), ChannelLayout.stereo(), separator="missing")


# --------------------------------------------------------------------------- CLI


def _max_correlation(samples: Array, customer: Array) -> float:
    """Largest normalised cross-correlation of *samples* with *customer* over all lags."""
    a = samples - samples.mean()
    b = customer - customer.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0:
        return 0.0
    return float(np.max(np.abs(signal.fftconvolve(a, b[::-1], mode="full"))) / norm)


def _decodings(path: Path) -> list[Array]:
    """Every way the file could hold samples: as audio, or as raw int16 / float32."""
    found: list[Array] = []
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    else:
        for column in data.T:
            found.append(column if rate == RATE else signal.resample_poly(column, RATE, rate))
    raw = path.read_bytes()
    for dtype in (np.int16, np.float32):
        usable = len(raw) // np.dtype(dtype).itemsize * np.dtype(dtype).itemsize
        with np.errstate(all="ignore"):
            values = np.frombuffer(raw[:usable], dtype=dtype).astype(np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        if dtype is np.float32:
            values[np.abs(values) > 10.0] = 0.0  # not audio-range floats: bytes of something else
        if values.size > 100:
            found.append(values)
    return found


def _customer_correlation(path: Path, customer: Array) -> float:
    return max((_max_correlation(d, customer) for d in _decodings(path)), default=0.0)


def _snapshot(root: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def test_cli_writes_agent_audio_and_report_and_no_customer_samples_anywhere(
    tmp_path: Path, call: StereoCall
) -> None:
    inbox = tmp_path / "inbox"
    work = tmp_path / "work"
    temp = tmp_path / "tmp"
    home = tmp_path / "home"
    for folder in (inbox, work, temp, home):
        folder.mkdir()
    source = inbox / "call.wav"
    sf.write(source, np.stack([call.mic, call.customer], axis=1), RATE, subtype="FLOAT")
    before = _snapshot(tmp_path)
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "TEMP": str(temp),
        "TMP": str(temp),
        "HOME": str(home),
        "VOICEPRIV_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    completed = subprocess.run(
        [
            sys.executable, "-m", "voicepriv.cli", "isolate", str(source),
            "--layout", "agent=left", "--out", "agent.flac", "--report", "report.json",
        ],
        cwd=work, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    after = _snapshot(tmp_path)
    written = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    assert set(written) >= {work / "agent.flac", work / "report.json"}

    # The detector sees the customer where it is (the input file), so it can fail ...
    assert _customer_correlation(source, call.customer) > 0.9
    # ... and finds no significant trace of the customer in anything the process wrote.
    for path in written:
        assert _customer_correlation(path, call.customer) < 0.1, path
    # Logs: one summary line, nothing that could carry samples.
    assert len(completed.stdout.splitlines()) == 1
    assert completed.stderr == ""

    agent, rate = sf.read(work / "agent.flac", dtype="float64")
    assert rate == RATE and agent.ndim == 1 and agent.size == call.mic.size
    assert si_sdr_db(agent[call.agent_only], call.agent[call.agent_only]) >= 20.0
    report = json.loads((work / "report.json").read_text())
    assert report["agent_channel"] == 0
    assert report["swapped"] is False
    assert {"start", "end", "label"} <= set(report["removed"][0])
    assert "erle_db" in report["metrics"]


def test_cli_rejects_a_bad_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voicepriv.cli import main

    source = tmp_path / "call.wav"
    sf.write(source, np.zeros((800, 2)), RATE)
    assert (
        main(
            ["isolate", str(source), "--layout", "agent=middle", "--out", str(tmp_path / "a.flac")]
        )
        == 2
    )
    assert "--layout" in capsys.readouterr().err
    assert not (tmp_path / "a.flac").exists()


def test_cli_without_layout_or_voiceprint_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.cli import main

    source = tmp_path / "call.wav"
    sf.write(source, np.zeros((800, 2)), RATE)
    assert main(["isolate", str(source), "--out", str(tmp_path / "a.flac")]) == 2
    assert "refusing to guess" in capsys.readouterr().err
    assert not (tmp_path / "a.flac").exists()


def test_cli_voiceprint_file_detects_swapped_channels(
    tmp_path: Path,
    call: StereoCall,
    mfcc_voiceprint: Voiceprint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from voicepriv.cli import main

    voiceprint = mfcc_voiceprint
    source = tmp_path / "call.wav"
    sf.write(source, np.stack([call.customer, call.mic], axis=1), RATE, subtype="FLOAT")
    print_file = tmp_path / "agent.json"
    print_file.write_text(
        json.dumps(
            {
                "agent_id": voiceprint.agent_id,
                "embedder": voiceprint.embedder,
                "vector": voiceprint.vector.tolist(),
                "seconds": voiceprint.seconds,
            }
        )
    )
    out = tmp_path / "agent.flac"
    report = tmp_path / "report.json"
    code = main(
        [
            "isolate", str(source), "--layout", "agent=left", "--agent-voiceprint",
            str(print_file), "--out", str(out), "--report", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    assert "swapped" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["swapped"] is True
    assert data["agent_channel"] == 1


def test_cli_mono_dispatches_to_the_mono_separator(
    tmp_path: Path, voiceprint: Voiceprint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicepriv import isolation
    from voicepriv.cli import main

    plugins = get_plugin_manager(autoload=False)
    fake = RecordingSeparator("speaker")
    plugins.register(SeparatorPlugin(fake), name="test-speaker")
    monkeypatch.setattr(isolation, "get_plugin_manager", lambda: plugins)
    source = tmp_path / "mono.wav"
    sf.write(source, np.zeros(RATE), RATE)
    print_file = tmp_path / "agent.json"
    print_file.write_text(
        json.dumps(
            {"agent_id": "agent-7", "embedder": EMBEDDER, "vector": voiceprint.vector.tolist()}
        )
    )
    out = tmp_path / "agent.flac"
    args = ["isolate", str(source), "--mono", "--agent-voiceprint", str(print_file)]
    assert main([*args, "--out", str(out)]) == 0
    (request,) = fake.requests
    assert request.layout == ChannelLayout.mono()
    assert request.voiceprint is not None and request.voiceprint.agent_id == "agent-7"
    assert out.exists()


def _enroll_into_vault(shared_data: Path, root: Path) -> Voiceprint:
    """``voicepriv enroll agent-7 ... --vault ROOT --embedder mfcc``; the stored voiceprint."""
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main
    from voicepriv.enrollment import load_voiceprint

    if "mfcc" not in backend_names(get_plugin_manager(autoload=False), "embedder"):
        pytest.skip("the built-in 'mfcc' embedder is not installed")
    vault_module.Vault.create(root).close()
    files = sorted((shared_data / "librispeech-test-other" / AGENT).glob("*.flac"))[5:8]
    args = ["enroll", "agent-7", *map(str, files), "--vault", str(root), "--embedder", "mfcc"]
    assert main(args) == 0
    with vault_module.Vault.open(root) as vault:
        return load_voiceprint(vault, "agent-7")


def test_cli_mono_reads_the_agent_voiceprint_from_the_vault(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicepriv import isolation
    from voicepriv.cli import main

    stored = _enroll_into_vault(shared_data, tmp_path / "vault")
    plugins = get_plugin_manager(autoload=False)
    fake = RecordingSeparator("speaker")
    plugins.register(SeparatorPlugin(fake), name="test-speaker")
    monkeypatch.setattr(isolation, "get_plugin_manager", lambda: plugins)
    source = tmp_path / "mono.wav"
    sf.write(source, np.zeros(RATE), RATE)
    out = tmp_path / "agent.flac"
    args = [
        "isolate",
        str(source),
        "--mono",
        "--agent",
        "agent-7",
        "--vault",
        str(tmp_path / "vault"),
    ]
    assert main([*args, "--out", str(out)]) == 0
    (request,) = fake.requests
    assert request.layout == ChannelLayout.mono()
    assert request.voiceprint is not None
    assert (request.voiceprint.agent_id, request.voiceprint.embedder) == ("agent-7", "mfcc")
    assert np.allclose(request.voiceprint.vector, stored.vector)


def test_cli_mono_with_a_vault_voiceprint_runs_the_speaker_separator(
    shared_data: Path, tmp_path: Path, call: StereoCall
) -> None:
    from voicepriv.cli import main

    _enroll_into_vault(shared_data, tmp_path / "vault")
    source = tmp_path / "mono.wav"
    sf.write(source, call.agent + call.customer, RATE)
    out, report = tmp_path / "agent.flac", tmp_path / "report.json"
    args = [
        "isolate",
        str(source),
        "--mono",
        "--agent",
        "agent-7",
        "--vault",
        str(tmp_path / "vault"),
    ]
    assert main([*args, "--out", str(out), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["separator"] == "speaker"
    assert sf.info(out).frames == call.agent.size
    spans = data["kept"] + data["removed"]
    assert spans and {s["label"] for s in data["kept"]} <= {"agent"}
    assert sum(s["end"] - s["start"] for s in spans) == pytest.approx(call.agent.size / RATE)


def test_cli_agent_from_the_vault_is_checked(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.cli import main

    root = tmp_path / "vault"
    _enroll_into_vault(shared_data, root)
    source = tmp_path / "mono.wav"
    sf.write(source, np.zeros(RATE), RATE)
    base = ["isolate", str(source), "--mono", "--out", str(tmp_path / "a.flac")]
    assert main([*base, "--agent", "agent-7"]) == 2
    assert "--agent needs --vault DIR" in capsys.readouterr().err
    assert main([*base, "--vault", str(root)]) == 2
    assert "--vault needs --agent" in capsys.readouterr().err
    assert main([*base, "--agent", "agent-9", "--vault", str(root)]) == 2
    assert "agent 'agent-9' has no voiceprint" in capsys.readouterr().err
    print_file = tmp_path / "vp.json"
    print_file.write_text("{}")
    both = ["--agent", "agent-7", "--vault", str(root), "--agent-voiceprint", str(print_file)]
    assert main([*base, *both]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "a.flac").exists()


def test_cli_options_take_json_and_a_misconfigured_overlap_separator_fails_early(
    shared_data: Path, tmp_path: Path, call: StereoCall, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.cli import main

    _enroll_into_vault(shared_data, tmp_path / "vault")
    source = tmp_path / "mono.wav"
    sf.write(source, call.agent + call.customer, RATE)
    out = tmp_path / "agent.flac"
    args = ["isolate", str(source), "--mono", "--agent", "agent-7", "--vault"]
    args += [str(tmp_path / "vault"), "--out", str(out), "--option", "overlap_separator=sepformer"]
    assert main([*args, "--option", 'overlap_separator_options={"source":']) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    empty = tmp_path / "no-model"
    empty.mkdir()
    option = json.dumps({"source": str(empty)})
    assert main([*args, "--option", f"overlap_separator_options={option}"]) == 2
    assert "has no hyperparams.yaml" in capsys.readouterr().err
    assert not out.exists()
