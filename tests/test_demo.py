"""``voicepriv demo`` end to end: real speech, three decisions, erasure, verified audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicepriv.audit import EventType, read_events
from voicepriv.batch import Outcome
from voicepriv.cli import main
from voicepriv.demo import build_call, run_demo
from voicepriv.errors import ConfigError
from voicepriv.vault import RecordingState, Vault


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_demo(tmp_path / "demo", say=lines.append)
    assert report.outcomes == {
        "demo-inbound": Outcome.KEPT,
        "demo-outbound": Outcome.AGENT_ONLY,
        "demo-refused": Outcome.DESTROYED,
    }
    assert report.customer_correlation < 0.02
    assert report.erased == ("demo-inbound", "demo-outbound")
    text = "\n".join(lines)
    assert "Purpose 'training': no valid consent (refused)" in text
    assert "kept on consent given by an act" in text
    assert "destroyed: the customer channel" in text
    assert "What to read next" in text and "docs/getting-started.md" in text
    with Vault.open(tmp_path / "demo" / "vault") as vault:
        for rid in report.erased:
            assert vault.catalog.recording(rid).state is RecordingState.DELETED
        assert list(vault.storages["local"].keys()) == []
    events = list(read_events(tmp_path / "demo" / "vault" / "audit.jsonl"))
    assert len(events) == report.audit_events
    assert events[-1].type is EventType.ERASURE
    decisions = [e.data["outcome"] for e in events if e.type is EventType.DECISION_MADE]
    assert sorted(decisions) == ["agent_only", "destroyed", "kept"]


def test_demo_reruns_but_never_replaces_foreign_files(tmp_path: Path) -> None:
    run_demo(tmp_path / "a", say=lambda _line: None)
    assert main(["demo", "--dir", str(tmp_path / "a")]) == 0  # its own earlier run: replaced
    foreign = tmp_path / "b"
    foreign.mkdir()
    (foreign / "policy.toml").write_text("# someone's real policy\n")
    with pytest.raises(ConfigError, match="no earlier demo"):
        run_demo(foreign, say=lambda _line: None)
    assert (foreign / "policy.toml").read_text() == "# someone's real policy\n"
    assert main(["demo", "--dir", str(foreign), "--overwrite"]) == 0


def test_demo_call_is_real_two_party_stereo() -> None:
    stereo, agent, customer = build_call()
    assert stereo.channels == 2 and stereo.sample_rate == 8000
    assert 12.0 < stereo.duration < 20.0
    # turns alternate: where the agent talks the customer source is silent and vice versa
    assert float((abs(agent.mono()) * abs(customer.mono())).max()) == 0.0
    assert float(abs(agent.mono()).max()) > 0.1 and float(abs(customer.mono()).max()) > 0.1
