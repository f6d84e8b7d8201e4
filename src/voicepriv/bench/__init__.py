"""The separation bench: call mixer, telephone channel, dataset readers, metrics, runner, reports.

Importable by researchers and by ``benchmarks/``; never imported by the ingest path.

* :mod:`voicepriv.bench.speakers` – utterances grouped by speaker (LibriSpeech, VCTK, Common
  Voice, plain folders, ``../shared/data``).
* :mod:`voicepriv.bench.mixer` – :func:`make_call` / :func:`make_calls`: two-party calls with
  turn taking, controlled overlap, backchannels, hold music, levels, echo and a telephone line.
* :mod:`voicepriv.bench.telephone` – 8 kHz band limits, G.711, line noise, packet loss,
  :func:`echo_path` / :func:`apply_echo`.
* :mod:`voicepriv.bench.rttm` – RTTM and segment arithmetic.
* :mod:`voicepriv.bench.metrics` – SI-SDR(i), SDR, DER, JER, leakage, retention, cost.
"""

from __future__ import annotations

from voicepriv.bench.mixer import AGENT, CUSTOMER, Call, CallConfig, make_call, make_calls
from voicepriv.bench.speakers import SpeakerCorpus, scan
from voicepriv.bench.telephone import (
    ChannelConfig,
    Codec,
    EchoConfig,
    apply_channel,
    apply_echo,
    echo_path,
)

__all__ = [
    "AGENT",
    "CUSTOMER",
    "Call",
    "CallConfig",
    "ChannelConfig",
    "Codec",
    "EchoConfig",
    "SpeakerCorpus",
    "apply_channel",
    "apply_echo",
    "echo_path",
    "make_call",
    "make_calls",
    "scan",
]
