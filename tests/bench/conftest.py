"""Fixtures for the bench tests: synthetic speech-like utterances (fast, no data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from voicepriv.audio import Audio


def fake_utterance(rng: np.random.Generator, seconds: float, f0: float, rate: int = 8000) -> Audio:
    """Harmonic 'syllables' of 0.15-0.4 s with short pauses between 'words'."""
    n = round(seconds * rate)
    x = np.zeros(n)
    position = 0
    while position < n:
        length = min(n - position, round(rng.uniform(0.15, 0.4) * rate))
        t = np.arange(length) / rate
        pitch = f0 * rng.uniform(0.9, 1.1)
        tone = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 8))
        envelope = np.sin(np.pi * np.arange(length) / length)
        x[position : position + length] = 0.1 * np.asarray(tone) * envelope
        position += length + round(rng.choice([0.03, 0.05, 0.3]) * rate)
    return Audio(samples=x.astype(np.float32), sample_rate=rate)


@pytest.fixture(scope="session")
def utterances() -> tuple[list[Audio], list[Audio]]:
    """(agent utterances, customer utterances): 6 each, 2-7 s, different pitch."""
    rng = np.random.default_rng(42)
    agent = [fake_utterance(rng, rng.uniform(2, 7), 120) for _ in range(6)]
    customer = [fake_utterance(rng, rng.uniform(2, 7), 210) for _ in range(6)]
    return agent, customer
