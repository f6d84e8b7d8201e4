"""Tests of agent enrollment: voiceprints from clips and calls, bytes, and the vault helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from voicepriv.audio import Audio
from voicepriv.backends.embedders import MfccEmbedder
from voicepriv.enrollment import (
    ARTIFACT_KIND,
    delete_voiceprint,
    enroll,
    enroll_clips,
    enroll_from_calls,
    load_voiceprint,
    voiceprint_from_bytes,
    voiceprint_to_bytes,
)
from voicepriv.errors import AudioError, ModelError, NotFoundError
from voicepriv.interfaces import Voiceprint
from voicepriv.model import ChannelLayout, HoldScope, LegalHold, Role, utc_now


def _clips(shared_data: Path, speaker: str, count: int = 2) -> list[Audio]:
    files = sorted((shared_data / "librispeech-test-other" / speaker).glob("*.flac"))[:count]
    return [Audio(samples=sf.read(f, dtype="float32")[0], sample_rate=16000) for f in files]


def test_enroll_clips_makes_a_unit_vector_named_by_the_embedder(shared_data: Path) -> None:
    clips = _clips(shared_data, "1688")
    voiceprint = enroll_clips("agent-7", clips, MfccEmbedder())
    assert voiceprint.agent_id == "agent-7"
    assert voiceprint.embedder == "mfcc"
    assert voiceprint.vector.shape == (38,)
    assert np.linalg.norm(voiceprint.vector) == pytest.approx(1.0, abs=1e-5)
    assert voiceprint.seconds > 3.0


def test_enroll_clips_refuses_too_little_speech() -> None:
    silence = Audio(samples=np.zeros(16000 * 5, np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match=r"agent 'a1': 0\.0 s of speech"):
        enroll_clips("a1", [silence], MfccEmbedder())
    with pytest.raises(AudioError, match="at least"):
        enroll_clips("a1", [], MfccEmbedder())


def test_enroll_from_calls_reads_only_the_agent_channel(shared_data: Path) -> None:
    agent = _clips(shared_data, "1688", 1)[0].samples[:, 0]
    customer = _clips(shared_data, "3080", 1)[0].samples[:, 0]
    n = min(agent.size, customer.size)
    call = Audio(samples=np.stack([customer[:n], agent[:n]], axis=1), sample_rate=16000)
    layout = ChannelLayout.stereo(Role.CUSTOMER, Role.AGENT)
    embedder = MfccEmbedder()
    from_call = enroll_from_calls("a1", [(call, layout)], embedder)
    direct = enroll_clips("a1", [Audio(samples=agent[:n], sample_rate=16000)], embedder)
    assert float(from_call.vector @ direct.vector) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ModelError, match="mono layout"):
        enroll_from_calls("a1", [(call, ChannelLayout.mono())], embedder)
    with pytest.raises(AudioError, match="1 channel"):
        enroll_from_calls("a1", [(call.channel(0), layout)], embedder)


vectors = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32), min_size=1, max_size=64
).filter(lambda v: float(np.linalg.norm(np.asarray(v, np.float64))) > 1e-3)


@given(
    vector=vectors,
    seconds=st.floats(0, 1e5),
    agent=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True),
)
def test_bytes_round_trip(vector: list[float], seconds: float, agent: str) -> None:
    array = np.asarray(vector, np.float32)
    original = Voiceprint(
        agent_id=agent, embedder="onnx", vector=array / np.linalg.norm(array), seconds=seconds
    )
    back = voiceprint_from_bytes(voiceprint_to_bytes(original))
    assert back.agent_id == original.agent_id
    assert back.embedder == original.embedder
    assert back.seconds == pytest.approx(original.seconds)
    assert np.allclose(back.vector, original.vector, atol=1e-6)


def test_bad_bytes_name_every_problem() -> None:
    with pytest.raises(ModelError, match=r"vp\.json: not a voiceprint"):
        voiceprint_from_bytes(b"\xff", source="vp.json")
    bad = json.dumps({"agent_id": "", "embedder": 3, "vector": [0, 0], "seconds": -1}).encode()
    with pytest.raises(ModelError) as info:
        voiceprint_from_bytes(bad)
    message = str(info.value)
    for field in ("agent_id", "embedder", "seconds", "vector"):
        assert field in message
    mismatch = json.dumps({"agent_id": "a", "embedder": "e", "vector": [1, 2], "dim": 3}).encode()
    with pytest.raises(ModelError, match="dim"):
        voiceprint_from_bytes(mismatch)
    # the plain shape 'voicepriv isolate --agent-voiceprint' documents is accepted
    plain = json.dumps({"agent_id": "a", "embedder": "mfcc", "vector": [3, 4], "seconds": 2})
    assert voiceprint_from_bytes(plain.encode()).vector.tolist() == pytest.approx([0.6, 0.8])


def _voiceprint(agent: str = "agent-7", value: float = 1.0) -> Voiceprint:
    vector = np.full(8, value, np.float32)
    return Voiceprint(
        agent_id=agent, embedder="mfcc", vector=vector / np.linalg.norm(vector), seconds=12.5
    )


def test_vault_enroll_load_replace_and_delete(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        with pytest.raises(NotFoundError, match="agent-7"):
            load_voiceprint(vault, "agent-7")
        first = enroll(vault, _voiceprint(), keep_for=timedelta(days=30))
        assert first.stored.kind.value == ARTIFACT_KIND
        loaded = load_voiceprint(vault, "agent-7")
        assert np.allclose(loaded.vector, _voiceprint().vector)
        # re-enrollment replaces the old voiceprint (crypto-shredded)
        changed = _voiceprint(value=-1.0)
        enroll(vault, changed)
        assert np.allclose(load_voiceprint(vault, "agent-7").vector, changed.vector)
        other = enroll(vault, _voiceprint("agent-8"))
        receipts = delete_voiceprint(vault, "agent-7")
        assert len(receipts) == 1
        with pytest.raises(NotFoundError):
            load_voiceprint(vault, "agent-7")
        assert load_voiceprint(vault, "agent-8").agent_id == "agent-8"
        assert other.stored.kind.value == "voiceprint"
        # the stored bytes are encrypted: the vector is not in any object in clear
        clear = voiceprint_to_bytes(_voiceprint("agent-8"))
        for path in (tmp_path / "vault").rglob("*.vpv"):
            assert clear[:40] not in path.read_bytes()


def test_vault_voiceprint_expires_with_the_retention_sweep(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.model import utc_now

    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint(), keep_for=timedelta(days=1))
        vault.sweep(now=utc_now() + timedelta(days=2))
        with pytest.raises(NotFoundError):
            load_voiceprint(vault, "agent-7")


def test_bad_agent_ids_and_retention_are_refused(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        with pytest.raises(ModelError, match="agent id"):
            enroll(vault, _voiceprint(agent="../x"))
        with pytest.raises(ModelError, match="retention"):
            enroll(vault, _voiceprint(), keep_for=timedelta(0))


def test_cli_enroll_into_vault_and_file_then_delete(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main

    vault_module.Vault.create(tmp_path / "vault").close()
    files = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[:2]
    out = tmp_path / "vp.json"
    code = main(
        [
            "enroll",
            "agent-7",
            *map(str, files),
            "--vault",
            str(tmp_path / "vault"),
            "--embedder",
            "mfcc",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "agent agent-7: voiceprint from" in capsys.readouterr().out
    from_file = voiceprint_from_bytes(out.read_bytes())
    with vault_module.Vault.open(tmp_path / "vault") as vault:
        stored = load_voiceprint(vault, "agent-7")
    assert np.allclose(stored.vector, from_file.vector)
    assert main(["enroll", "agent-7", "--vault", str(tmp_path / "vault"), "--delete"]) == 0
    with vault_module.Vault.open(tmp_path / "vault") as vault, pytest.raises(NotFoundError):
        load_voiceprint(vault, "agent-7")


def test_cli_rights_reach_an_agents_voiceprint_and_re_enrolling_respects_them(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main
    from voicepriv.demo import DEMO_POLICY

    vault_module.Vault.create(tmp_path / "vault").close()
    policy = tmp_path / "policy.toml"
    policy.write_text(DEMO_POLICY, encoding="utf-8")
    clip = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[0]
    vault = ["--vault", str(tmp_path / "vault")]
    enroll_cmd = ["enroll", "agent-7", str(clip), *vault, "--embedder", "mfcc"]
    rights = [*vault, "--policy", str(policy), "--agent", "agent-7"]
    assert main(enroll_cmd) == 0
    assert main(["rights", "restrict", *rights]) == 0
    assert "restricted 1 recording(s): voiceprint.agent-7." in capsys.readouterr().out
    assert main(enroll_cmd) == 2
    assert "restricted (GDPR Art. 18); lift the restriction" in capsys.readouterr().err
    assert main(["rights", "restrict", *rights, "--lift"]) == 0
    assert main(enroll_cmd) == 0
    assert main(["rights", "object", *rights]) == 0
    said = capsys.readouterr().out
    assert "voiceprint no longer used" in said and "voiceprint.agent-7." in said
    assert "no recording of this subject" not in said
    assert main(enroll_cmd) == 2
    assert "objected" in capsys.readouterr().err
    assert main(["enroll", "agent-7", *vault, "--delete"]) == 0
    assert main(enroll_cmd) == 0
    with vault_module.Vault.open(tmp_path / "vault") as opened:
        assert load_voiceprint(opened, "agent-7").agent_id == "agent-7"
    assert main(["rights", "restrict", *vault, "--policy", str(policy), "--agent", "../x"]) == 2


def test_cli_enroll_defaults_to_the_campplus_embedder_of_the_core_install(
    shared_data: Path, tmp_path: Path
) -> None:
    from voicepriv.cli import main

    clip = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[0]
    out = tmp_path / "vp.json"
    assert main(["enroll", "agent-7", str(clip), "--out", str(out)]) == 0
    voiceprint = voiceprint_from_bytes(out.read_bytes())
    assert voiceprint.embedder == "campplus"
    assert voiceprint.vector.shape == (192,)


def test_cli_enroll_refuses_without_destination(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicepriv.cli import main

    clip = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[0]
    assert main(["enroll", "agent-7", str(clip), "--embedder", "mfcc"]) == 2
    assert "--vault DIR" in capsys.readouterr().err
    assert (
        main(
            [
                "enroll",
                "agent-7",
                str(clip),
                "--agent-side",
                "left",
                "--out",
                "x.json",
                "--embedder",
                "mfcc",
            ]
        )
        == 2
    )
    assert "--agent-side given, but the file has 1 channel" in capsys.readouterr().err


def _cli_enroll_args(shared_data: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A new vault, and ``voicepriv enroll`` arguments enrolling agent-7 into it (mfcc)."""
    from voicepriv.vault import Vault

    root = tmp_path / "vault"
    Vault.create(root).close()
    files = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[:2]
    return root, ["enroll", "agent-7", *map(str, files), "--vault", str(root), "--embedder", "mfcc"]


def test_cli_enroll_checks_out_before_touching_the_vault(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main

    root, args = _cli_enroll_args(shared_data, tmp_path)
    assert main(args) == 0
    with vault_module.Vault.open(root) as vault:
        first = load_voiceprint(vault, "agent-7")
        entries = sorted(vault.catalog.recording_ids())
    capsys.readouterr()
    for bad in (tmp_path / "nodir" / "vp.json", tmp_path):
        assert main([*args[:3], *args[4:], "--out", str(bad)]) == 2
        assert f"--out {bad}:" in capsys.readouterr().err
    # the voiceprint enrolled before is still there, and nothing was added
    with vault_module.Vault.open(root) as vault:
        assert sorted(vault.catalog.recording_ids()) == entries
        assert np.array_equal(load_voiceprint(vault, "agent-7").vector, first.vector)


# --------------------------------------------------------------------------- review fixes


def _entries(vault: Any, agent: str = "agent-7") -> list[str]:
    from voicepriv.enrollment import agent_subject
    from voicepriv.vault import RecordingState

    return sorted(
        r
        for r in vault.find_subject(agent_subject(agent))
        if vault.catalog.recording(r).state is RecordingState.ACTIVE
    )


def test_a_voiceprint_past_its_deadline_is_not_loaded_before_the_sweep(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    t0 = utc_now() - timedelta(days=400)
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint(), keep_for=timedelta(days=365), now=t0)
        with pytest.raises(NotFoundError, match=r"deadline .* has passed"):
            load_voiceprint(vault, "agent-7")
        # still within its retention at an earlier *now*
        assert load_voiceprint(vault, "agent-7", now=t0 + timedelta(days=1)).agent_id == "agent-7"
        with pytest.raises(NotFoundError):
            load_voiceprint(vault, "agent-7", now=t0 + timedelta(days=365))
        # the entry is still stored (the sweep removes it) and delete_voiceprint removes it too
        assert len(delete_voiceprint(vault, "agent-7")) == 1


def test_the_pipeline_does_not_use_an_expired_voiceprint(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.model import Party, Recording
    from voicepriv.pipeline import _enrolled_voiceprint

    call = Recording(
        id="call-1",
        started_at=utc_now(),
        duration=timedelta(seconds=5),
        direction="inbound",
        parties=(Party(role=Role.AGENT, id="agent-7"),),
    )
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint(), keep_for=timedelta(days=1), now=utc_now() - timedelta(days=2))
        assert _enrolled_voiceprint(vault, call) is None


@pytest.mark.parametrize("action", ["restrict", "object"])
def test_a_restricted_or_objected_voiceprint_is_not_loaded(tmp_path: Path, action: str) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.vault.catalog import RestrictionKind

    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint())
        (entry,) = _entries(vault)
        kind = RestrictionKind.RESTRICTION if action == "restrict" else RestrictionKind.OBJECTION
        vault.catalog.add_restriction(entry, "h", kind, at=utc_now(), detail=None)
        expected = r"restricted .*Art\. 18" if action == "restrict" else r"objected .*Art\. 21"
        with pytest.raises(NotFoundError, match=expected):
            load_voiceprint(vault, "agent-7")
        vault.catalog.lift_restrictions(entry, "h", kind, utc_now())
        assert load_voiceprint(vault, "agent-7").agent_id == "agent-7"


@pytest.mark.parametrize("request_kind", ["restrict", "object"])
def test_an_agents_restriction_or_objection_through_rights_stops_the_voiceprint(
    tmp_path: Path, request_kind: str
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import AuditLog
    from voicepriv.demo import DEMO_POLICY
    from voicepriv.enrollment import agent_subject
    from voicepriv.policy import parse_policy
    from voicepriv.rights import Rights

    policy = parse_policy(DEMO_POLICY, source="demo-policy.toml")
    agent = [agent_subject("agent-7")]
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint())
        log = AuditLog(tmp_path / "audit.jsonl", signer=vault.provider)
        rights = Rights(vault, policy, log)
        if request_kind == "restrict":
            assert rights.restrict(agent).recordings == tuple(_entries(vault))
            with pytest.raises(NotFoundError, match="restricted"):
                load_voiceprint(vault, "agent-7")
            rights.restrict(agent, lift=True)
            assert load_voiceprint(vault, "agent-7").agent_id == "agent-7"
        else:
            rights.object(agent)
            with pytest.raises(NotFoundError, match=r"objected .*Art\. 21"):
                load_voiceprint(vault, "agent-7")
            (event,) = [e for e in log.events() if e.type.value == "objection"]
            assert event.data["voiceprints_stopped"] == 1


@pytest.mark.parametrize("action", ["restrict", "object"])
def test_re_enrolling_never_resumes_a_stopped_voiceprint(tmp_path: Path, action: str) -> None:
    # Re-enrolling used to store a fresh, unrestricted voiceprint and delete the stopped one
    # with its restriction: the agent's Art. 18 / Art. 21 request silently undone.
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import AuditLog
    from voicepriv.errors import AccessDenied
    from voicepriv.vault.catalog import RestrictionKind

    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint(value=1.0))
        (entry,) = _entries(vault)
        kind = RestrictionKind.RESTRICTION if action == "restrict" else RestrictionKind.OBJECTION
        vault.catalog.add_restriction(entry, "h", kind, at=utc_now(), detail=None)
        log = AuditLog(tmp_path / "audit.jsonl", signer=vault.provider, sinks=[])
        expected = r"restricted \(GDPR Art\. 18\)" if action == "restrict" else r"Art\. 21"
        with pytest.raises(AccessDenied, match=expected):
            enroll(vault, _voiceprint(value=2.0), audit=log)
        assert _entries(vault) == [entry]  # nothing stored, nothing deleted, nothing logged
        assert not log.path.exists()
        if action == "restrict":
            vault.catalog.lift_restrictions(entry, "h", kind, utc_now())
        else:
            delete_voiceprint(vault, "agent-7")
        enroll(vault, _voiceprint(value=2.0))
        (new,) = _entries(vault)
        assert new != entry and load_voiceprint(vault, "agent-7").agent_id == "agent-7"


def test_re_enrolling_under_a_hold_deletes_the_unheld_and_keeps_the_held(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    t0 = utc_now() - timedelta(days=3)
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        enroll(vault, _voiceprint(value=1.0), now=t0)
        (held,) = _entries(vault)
        vault.place_hold(
            LegalHold(
                id="hold-1", scope=HoldScope(recordings=(held,)), reason="dispute", placed_at=t0
            )
        )
        # the new voiceprint is stored and nothing is raised; the held one is reported
        first = enroll(vault, _voiceprint(value=-1.0), now=t0 + timedelta(days=1))
        assert first.held == (held,)
        assert first.replaced == ()
        assert any("hold-1" in note for note in first.notes)
        # a retry (or a later re-enrollment) goes past the held one and removes the unheld
        # copy: copies never pile up
        newest = _voiceprint(value=0.5)
        second = enroll(vault, newest)
        assert second.held == (held,)
        assert [r.recording_id for r in second.replaced] == [first.stored.recording_id]
        assert _entries(vault) == sorted([held, second.stored.recording_id])
        # the newest is the one used; the held one is never handed out
        assert np.allclose(load_voiceprint(vault, "agent-7").vector, newest.vector)


def _unread_clips() -> Iterator[Any]:
    raise AssertionError("a clip was read before the agent id was checked")
    yield  # a generator: fails only when iterated


@pytest.mark.parametrize("agent", ["jane@corp.com", "jane doe", "", "../x", "tel:4512345678"])
def test_enroll_refuses_a_bad_agent_id_before_reading_a_clip(agent: str) -> None:
    with pytest.raises(ModelError, match="agent id"):
        enroll_clips(agent, _unread_clips(), MfccEmbedder())
    with pytest.raises(ModelError, match="agent id"):
        enroll_from_calls(agent, _unread_clips(), MfccEmbedder())


def test_cli_enroll_with_a_refused_agent_id_writes_no_file(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main

    root = tmp_path / "vault"
    vault_module.Vault.create(root).close()
    clip = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[0]
    out = tmp_path / "jane.json"
    for agent in ("jane@corp.com", "tel:4512345678"):
        args = ["enroll", agent, str(clip), "--embedder", "mfcc", "--out", str(out)]
        assert main([*args, "--vault", str(root)]) == 2
        assert "agent id" in capsys.readouterr().err
        assert main(args) == 2  # --out alone: the id is refused all the same
        assert not out.exists()
    with vault_module.Vault.open(root) as vault:
        assert vault.catalog.recording_ids() == []


def test_enroll_and_delete_write_audit_events_with_ids_only(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import AuditLog, EventType, read_events, verify_log

    path = tmp_path / "audit.jsonl"
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        log = AuditLog(path, signer=vault.provider)
        first = enroll(vault, _voiceprint(), audit=log)
        second = enroll(vault, _voiceprint(value=-1.0), audit=log)
        receipts = delete_voiceprint(vault, "agent-7", audit=log)
        events = list(read_events(path))
        verify_log(path, log.verify_key())
    assert [e.type for e in events] == [
        EventType.ARTIFACT_STORED,
        EventType.ARTIFACT_STORED,
        EventType.DELETION,
        EventType.DELETION,
    ]
    stored = events[0].data
    assert stored["recording_id"] == first.stored.recording_id
    assert stored["artifact_id"] == first.stored.artifact_id
    assert stored["kind"] == "voiceprint"
    assert events[1].data["deleted"] == [first.stored.recording_id]
    assert events[2].data["recording_id"] == first.stored.recording_id
    assert events[2].data["reason"] == "re_enrollment"
    assert events[3].data["recording_id"] == second.stored.recording_id == receipts[0].recording_id
    assert events[3].data["reason"] == "agent_left"
    for event in events:  # the agent id appears only inside the voiceprint's catalog ids
        assert "agent_id" not in event.data
        assert "agent-7" not in {str(v) for v in event.data.values()}


def test_enroll_checks_the_audit_log_before_storing(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import AuditLog
    from voicepriv.errors import AuditError

    (tmp_path / "audit-dir").mkdir()
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        log = AuditLog(tmp_path / "audit-dir", signer=vault.provider)
        with pytest.raises(AuditError):
            enroll(vault, _voiceprint(), audit=log)
        assert vault.catalog.recording_ids() == []


def test_cli_enroll_and_delete_are_audited(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import EventType, read_events
    from voicepriv.cli import main

    root, args = _cli_enroll_args(shared_data, tmp_path)
    assert main(args) == 0
    assert main([*args, "--audit", str(tmp_path / "other.jsonl")]) == 0
    assert "replaced 1 older voiceprint(s)" in capsys.readouterr().out
    assert main(["enroll", "agent-7", "--vault", str(root), "--delete"]) == 0
    default = [e.type for e in read_events(root / "audit.jsonl")]
    assert default == [EventType.ARTIFACT_STORED, EventType.DELETION]
    other = [e.type for e in read_events(tmp_path / "other.jsonl")]
    assert other == [EventType.ARTIFACT_STORED, EventType.DELETION]
    # --audit without --vault is refused; an unwritable log stops enroll before any file
    out = tmp_path / "vp.json"
    assert main([*args[:4], "--embedder", "mfcc", "--audit", str(tmp_path / "a.jsonl")]) == 2
    assert "--audit needs --vault" in capsys.readouterr().err
    (tmp_path / "audit-dir").mkdir()
    bad = [*args, "--out", str(out), "--audit", str(tmp_path / "audit-dir")]
    assert main(bad) == 2
    assert not out.exists()
    with vault_module.Vault.open(root) as vault, pytest.raises(NotFoundError):
        load_voiceprint(vault, "agent-7")


def test_cli_enroll_reports_a_held_older_voiceprint(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.cli import main

    root = tmp_path / "vault"
    files = sorted((shared_data / "librispeech-test-other" / "1688").glob("*.flac"))[:2]
    with vault_module.Vault.create(root) as vault:
        enroll(vault, _voiceprint())
        (held,) = _entries(vault)
        vault.place_hold(
            LegalHold(
                id="hold-9",
                scope=HoldScope(recordings=(held,)),
                reason="dispute",
                placed_at=utc_now() - timedelta(hours=1),
            )
        )
    args = ["enroll", "agent-7", *map(str, files), "--vault", str(root), "--embedder", "mfcc"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"note: older voiceprint kept: recording {held}: under legal hold hold-9" in out
    with vault_module.Vault.open(root) as vault:
        assert held in _entries(vault) and len(_entries(vault)) == 2


def test_an_agent_id_the_audit_log_refuses_stores_nothing(tmp_path: Path) -> None:
    vault_module = pytest.importorskip("voicepriv.vault")
    from voicepriv.audit import AuditLog, read_events
    from voicepriv.errors import ConfigError

    path = tmp_path / "audit.jsonl"
    with vault_module.Vault.create(tmp_path / "vault") as vault:
        log = AuditLog(path, signer=vault.provider)
        with pytest.raises(ModelError, match="audit log refuses"):
            enroll(vault, _voiceprint(agent="tel:4512345678"), audit=log)
        assert vault.catalog.recording_ids() == []
        enroll(vault, _voiceprint())
        with pytest.raises(ConfigError, match="reason"):
            delete_voiceprint(vault, "agent-7", reason="left on 1 May", audit=log)
        load_voiceprint(vault, "agent-7")  # nothing deleted
    assert list(read_events(path)) == []
