"""``voicepriv policy``: validate a policy file, explain the decision for a recording."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from voicepriv.errors import ModelError, PolicyError
from voicepriv.model import Recording, from_json


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``policy check`` and ``policy explain`` commands."""
    parser = subparsers.add_parser("policy", help="validate policies and explain decisions")
    commands = parser.add_subparsers(dest="policy_command", required=True)
    check = commands.add_parser("check", help="validate an organisation policy TOML file")
    check.add_argument("file", type=Path, help="the policy file")
    check.set_defaults(handler=run_check)
    explain = commands.add_parser(
        "explain", help="decide what of a recording may be kept, and print why"
    )
    explain.add_argument("recording", type=Path, help="recording metadata (JSON envelope)")
    explain.add_argument("--policy", type=Path, required=True, help="the policy file")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")
    explain.set_defaults(handler=run_explain)


def run_check(args: argparse.Namespace) -> int:
    """Validate the policy; print every problem with its line, or a summary and warnings."""
    from voicepriv.policy.config import load_policy

    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        for problem in str(exc).splitlines():
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK - {len(policy.purposes)} purposes, {len(policy.roles)} roles, "
        f"{len(policy.notices)} notices, {len(policy.ivr_prompts)} IVR prompts"
    )
    for warning in policy.warnings:
        print(f"warning: {warning}")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Print the decision for the recording under the policy (``--json`` for machines)."""
    from voicepriv.backends.jurisdictions import plugin_jurisdictions
    from voicepriv.policy.config import load_policy
    from voicepriv.policy.decision import decide, decision_to_dict

    try:
        policy = load_policy(args.policy)
        recording = from_json(Recording, Path(args.recording).read_bytes())
    except (PolicyError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {args.recording}: cannot read: {exc}", file=sys.stderr)
        return 1
    decision = decide(recording, policy, jurisdictions=plugin_jurisdictions())
    if args.json:
        print(json.dumps(decision_to_dict(decision), indent=2, ensure_ascii=False))
    else:
        print(decision.explain())
    return 0
