"""``voicepriv isolate``: agent-only audio and a JSON report from a call recording.

Only two files are written: the agent-only audio (``--out``) and the report (``--report``).
The customer channel is read into memory, used as the echo canceller's reference and dropped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from voicepriv import audio as audio_io
from voicepriv._cli._options import parse_options
from voicepriv.errors import ConfigError, IsolationError
from voicepriv.interfaces import IsolationResult, Voiceprint
from voicepriv.isolation import isolate
from voicepriv.model import ChannelLayout, Role

_SIDES = {"left": 0, "right": 1, "0": 0, "1": 1}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``isolate`` command."""
    parser = subparsers.add_parser(
        "isolate",
        help="keep only the agent's voice of a call (the customer's audio is never written)",
        description=(
            "Write agent-only audio and a JSON report. Stereo calls: --layout names the agent "
            "side (or --agent-voiceprint decides it and catches swapped channels). Mono calls: "
            "--mono --agent AGENT_ID --vault DIR (the voiceprint stored by 'voicepriv enroll') "
            "or --mono --agent-voiceprint FILE."
        ),
    )
    parser.add_argument("call", type=Path, help="the call recording (WAV, FLAC ...)")
    parser.add_argument(
        "--layout",
        metavar="ROLE=SIDE",
        help="which side carries which role, e.g. agent=left or customer=right",
    )
    parser.add_argument("--mono", action="store_true", help="the call is one mixed channel")
    parser.add_argument(
        "--agent-voiceprint",
        type=Path,
        metavar="FILE",
        help='voiceprint JSON {"agent_id", "embedder", "vector": [...], "seconds"}',
    )
    parser.add_argument(
        "--agent",
        metavar="AGENT_ID",
        help="load this agent's enrolled voiceprint from --vault (see 'voicepriv enroll')",
    )
    parser.add_argument(
        "--vault", type=Path, metavar="DIR", help="the vault holding the agent's voiceprint"
    )
    parser.add_argument("--separator", help="separator backend name (default: by channel count)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="separator option (repeatable); numbers, true/false and JSON objects/lists are parsed",
    )
    parser.add_argument("--out", type=Path, required=True, help="agent-only audio (.flac/.wav)")
    parser.add_argument("--report", type=Path, help="JSON report of kept/removed spans")
    parser.set_defaults(handler=run)


def parse_layout(text: str) -> ChannelLayout:
    """``"agent=left"`` -> stereo layout with the agent on channel 0 and the customer on 1."""
    role_text, sep, side_text = text.partition("=")
    side = _SIDES.get(side_text.strip().lower())
    try:
        role = Role(role_text.strip().lower())
    except ValueError:
        role = None
    if not sep or side is None or role not in {Role.AGENT, Role.CUSTOMER}:
        raise ConfigError(
            f"--layout: expected agent=left, agent=right, customer=left or customer=right, "
            f"got {text!r}"
        )
    other = Role.CUSTOMER if role is Role.AGENT else Role.AGENT
    roles = [other, other]
    roles[side] = role
    return ChannelLayout.stereo(roles[0], roles[1])


def load_voiceprint(path: Path) -> Voiceprint:
    """Read a voiceprint JSON file (``agent_id``, ``embedder``, ``vector``, ``seconds``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        vector = np.asarray(data["vector"], dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0 or not np.isfinite(vector).all():
            raise ValueError("vector must be a non-empty list of finite numbers")
        return Voiceprint(
            agent_id=str(data["agent_id"]),
            embedder=str(data["embedder"]),
            vector=vector,
            seconds=float(data.get("seconds", 0.0)),
        )
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the voiceprint ({exc.strerror})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a voiceprint file ({exc})") from exc


def check_output_path(path: Path, flag: str) -> None:
    """Refuse an output *path* that cannot be written, before any work or change is done.

    :raises ConfigError: *path* is a folder, or its folder does not exist.
    """
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, expected a file name")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {parent} does not exist")


def write_file(path: Path, data: bytes, flag: str) -> None:
    """Write *data* to *path* whole or not at all (a temporary sibling, then renamed).

    :raises ConfigError: the file cannot be written; no partial file is left.
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from exc


def report_of(result: IsolationResult, *, source: str, separator: str) -> dict[str, Any]:
    """The JSON-ready report of an isolation (no audio, no customer data)."""
    return {
        "source": source,
        "separator": separator,
        "sample_rate": result.audio.sample_rate,
        "duration_s": result.audio.duration,
        "agent_channel": result.agent_channel,
        "swapped": result.swapped,
        "residual_leakage": result.residual_leakage,
        "confidence": result.confidence,
        "kept": [{"start": s.start, "end": s.end, "label": s.label} for s in result.kept],
        "removed": [{"start": s.start, "end": s.end, "label": s.label} for s in result.removed],
        "notes": list(result.notes),
        "metrics": dict(result.metrics),
    }


def _voiceprint_of(args: argparse.Namespace) -> Voiceprint | None:
    """The voiceprint the arguments name: ``--agent-voiceprint FILE`` or ``--agent`` + ``--vault``.

    :raises ConfigError: both sources, or only half of ``--agent`` / ``--vault``.
    :raises NotFoundError: the vault has no live voiceprint of that agent.
    """
    if args.agent_voiceprint is not None and (args.agent is not None or args.vault is not None):
        raise ConfigError("--agent-voiceprint and --agent/--vault exclude each other")
    if args.agent_voiceprint is not None:
        return load_voiceprint(args.agent_voiceprint)
    if args.agent is None and args.vault is None:
        return None
    if args.agent is None or args.vault is None:
        given, missing = (
            ("--agent", "--vault DIR") if args.vault is None else ("--vault", "--agent")
        )
        raise ConfigError(
            f"{given} needs {missing} (the agent's voiceprint is read from the vault)"
        )
    from voicepriv.enrollment import load_voiceprint as load_enrolled
    from voicepriv.vault import Vault

    with Vault.open(args.vault) as vault:
        return load_enrolled(vault, args.agent)


def run(args: argparse.Namespace) -> int:
    """Isolate the agent of ``args.call``; write ``--out`` and ``--report``."""
    if args.mono and args.layout:
        raise ConfigError("--mono and --layout exclude each other")
    options = parse_options(args.option, flag="--option")
    suffix = args.out.suffix.lstrip(".").lower()
    if suffix not in {"wav", "flac"}:
        raise ConfigError(f"--out {args.out}: expected a .wav or .flac file name")
    check_output_path(args.out, "--out")
    if args.report is not None:
        check_output_path(args.report, "--report")
    voiceprint = _voiceprint_of(args)
    layout = ChannelLayout.mono() if args.mono else None
    if args.layout:
        layout = parse_layout(args.layout)
    call = audio_io.load(args.call, max_channels=1 if args.mono else 2)
    if args.mono and call.channels != 1:
        raise IsolationError(
            f"{args.call}: --mono given, but the file has {call.channels} channels"
        )
    result = isolate(
        call,
        layout,
        separator=args.separator,
        voiceprint=voiceprint,
        options=options or None,
    )
    del call
    separator = args.separator or ("speaker" if result.agent_channel is None else "channels")
    write_file(args.out, audio_io.to_bytes(result.audio, format=suffix), "--out")
    if args.report is not None:
        report = report_of(result, source=str(args.call), separator=separator)
        write_file(args.report, (json.dumps(report, indent=2) + "\n").encode(), "--report")
    kept = sum(s.duration for s in result.kept)
    removed = sum(s.duration for s in result.removed)
    print(
        f"{args.out}: agent channel {result.agent_channel}, kept {kept:.1f} s, "
        f"silenced {removed:.1f} s, confidence {result.confidence:.2f}"
        + (" (channels were swapped)" if result.swapped else "")
    )
    return 0
