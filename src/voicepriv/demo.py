"""``voicepriv demo``: the main job end to end, on the embedded default, in under a minute.

:func:`run_demo` works in one local folder (``./voicepriv-demo`` by default):

1. writes a demo policy (a Danish contact center: quality assurance and training on consent,
   dispute resolution on legitimate interests, outbound calls agent-side only);
2. builds a two-party stereo call (agent on the left channel, customer on the right, a little
   of the agent's voice echoing into the customer channel and of the customer's into the
   agent's) from the real speech shipped in ``voicepriv/data`` (LibriSpeech, CC BY 4.0; see
   ``data/CREDITS.md``), and call records in the generic JSON layout: the same conversation
   as an inbound call where the caller presses 1 (quality assurance: yes) and 2 (training: no),
   as an outbound call, and as an inbound call where the caller refuses both;
3. creates a vault (local folder, SQLite catalog, local key file) and ingests the calls with
   :func:`voicepriv.batch.run_batch` + :class:`voicepriv.pipeline.IngestTask`, showing each
   decision with its reasons and what was kept and destroyed;
4. checks that no stored artifact correlates with the customer channel of the outbound call;
5. runs an erasure request for the caller's phone number (keyed-hash look-up, crypto-shred,
   replicas deleted) and records it in the audit log;
6. verifies the whole audit log (hash chain, signatures, signed head) and prints what to read
   next.

Every step uses the real library; nothing is simulated.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Final

import attrs
import numpy as np

from voicepriv import audio as audio_io
from voicepriv.audio import Audio
from voicepriv.audit import EventType, verify_log
from voicepriv.batch import Outcome, discover, run_batch
from voicepriv.errors import ConfigError
from voicepriv.model import SubjectRef
from voicepriv.pipeline import AUDIT_LOG_NAME, IngestTask, audit_log_for
from voicepriv.policy import consents_from_ivr, decide, load_policy
from voicepriv.vault import ArtifactKind, Vault

__all__ = ["CALLER_PHONE", "DEMO_POLICY", "DemoReport", "build_call", "run_demo"]

#: The demo caller's phone number (made up; a Danish number in E.164).
CALLER_PHONE: Final = "+4532123456"
#: Telephone sample rate of the demo call.
SAMPLE_RATE: Final = 8_000

#: The demo organisation's policy (written to ``policy.toml`` in the demo folder).
DEMO_POLICY: Final = """\
# voicepriv demo policy: a Danish contact center.
[organisation]
name = "Demo Contact Center ApS"
establishment = "DK"
employees_informed = true
employee_basis = "legitimate_interests"
employee_basis_reference = "Employee handbook 7.2; balancing test BT-DEMO-1"

[outbound]
agent_side_only = true

[purposes.quality_assurance]
label = "Quality assurance and coaching"
basis = "consent"
retention = "6 months"

[purposes.training]
label = "Training new employees"
basis = "consent"
retention = "6 months"

[purposes.dispute_resolution]
label = "Resolving disputes about what the agent said"
basis = "legitimate_interests"
balancing_test = "BT-DEMO-2 (disputes about agent statements)"
retention = "1 year"

[notices.welcome]
version = "2026-01"
text = "This call is recorded. Press 1 to let us use the recording for quality assurance, 2 if not."
purposes = ["quality_assurance", "dispute_resolution"]

[notices.training]
version = "2026-01"
text = "Press 1 to let us use the recording to train new employees, 2 if not."
purposes = ["training"]

[ivr.qa]
notice = "welcome"

[ivr.qa.digits]
"1" = { purpose = "quality_assurance", state = "granted" }
"2" = { purpose = "quality_assurance", state = "refused" }

[ivr.training]
notice = "training"

[ivr.training.digits]
"1" = { purpose = "training", state = "granted" }
"2" = { purpose = "training", state = "refused" }

[roles.team_lead]
purposes = ["quality_assurance", "training"]

[roles.complaints]
purposes = ["dispute_resolution"]
"""

_AGENT_CLIPS: Final = ("agent-3080-5032-0000.flac", "agent-3080-5032-0003.flac")
_CUSTOMER_CLIPS: Final = ("customer-1688-142285-0004.flac", "customer-1688-142285-0003.flac")
_GAP_S: Final = 0.3
#: Marks a folder as the demo's own: a re-run may replace what an earlier run made.
_MARKER: Final = ".voicepriv-demo"

READ_NEXT: Final = """\
What to read next:
  docs/getting-started.md   this demo, step by step, and how to run it on your own calls
  docs/intake.md            the call-record layout a dialer export follows (or write an adapter)
  docs/plugins.md           plugins: dialer adapters, storage, key providers, separators
  docs/deployment.md        from one machine to PostgreSQL + S3 + a Dask cluster
  docs/architecture.md      how the pieces fit: policy, isolation, vault, audit
Try:  voicepriv ingest {calls} --policy {policy} --vault {vault}   (re-running skips done calls)
      voicepriv audit verify {log} --key-provider local --key-option path={key}"""


@attrs.frozen(kw_only=True)
class DemoReport:
    """What the demo did, for tests and for the summary.

    :param folder: the demo folder.
    :param outcomes: call id -> outcome.
    :param customer_correlation: largest |correlation| of a stored agent-only artifact with
        the outbound call's customer channel.
    :param erased: recordings erased for the caller.
    :param audit_events: events in the verified audit log.
    """

    folder: Path
    outcomes: dict[str, Outcome]
    customer_correlation: float
    erased: tuple[str, ...]
    audit_events: int


def _clip(name: str) -> Audio:
    with resources.as_file(resources.files("voicepriv") / "data" / name) as path:
        return audio_io.load(path, sample_rate=SAMPLE_RATE)


def build_call() -> tuple[Audio, Audio, Audio]:
    """The demo conversation: (stereo call, clean agent channel, clean customer channel).

    Turns alternate agent, customer, agent, customer with 0.3 s gaps. Channel 0 carries the
    agent plus a faint, delayed echo of the customer (headset bleed); channel 1 the customer
    plus a faint echo of the agent (line echo). All at 8 kHz.
    """
    agent_clips = [_clip(name).mono() for name in _AGENT_CLIPS]
    customer_clips = [_clip(name).mono() for name in _CUSTOMER_CLIPS]
    gap = np.zeros(int(_GAP_S * SAMPLE_RATE), np.float32)
    agent_parts: list[np.ndarray] = []
    customer_parts: list[np.ndarray] = []
    for mine, theirs in zip(agent_clips, customer_clips, strict=True):
        agent_parts += [mine, gap, np.zeros_like(theirs), gap]
        customer_parts += [np.zeros_like(mine), gap, theirs, gap]
    agent = np.concatenate(agent_parts)
    customer = np.concatenate(customer_parts)
    path = np.zeros(96, np.float32)
    path[[40, 64, 95]] = [0.06, -0.03, 0.015]
    bleed_into_agent = np.convolve(customer, path)[: len(customer)]
    echo_into_customer = np.convolve(agent, path)[: len(agent)]
    stereo = np.stack([agent + bleed_into_agent, customer + echo_into_customer], axis=1)
    return (
        Audio(samples=stereo, sample_rate=SAMPLE_RATE),
        Audio(samples=agent, sample_rate=SAMPLE_RATE),
        Audio(samples=customer, sample_rate=SAMPLE_RATE),
    )


def _record(
    call_id: str, direction: str, ivr: list[tuple[str, str, float]], seconds: float
) -> dict[str, object]:
    return {
        "call_id": call_id,
        "started_at": "2026-03-02T09:15:00+01:00",
        "duration_s": round(seconds, 3),
        "direction": direction,
        "channels": ["agent", "customer"],
        "sample_rate": SAMPLE_RATE,
        "audio": "demo-call.wav",
        "parties": [
            {"role": "agent", "id": "agent-7", "jurisdiction": "DK"},
            {"role": "customer", "jurisdiction": "DK", "phone": CALLER_PHONE},
        ],
        "ivr": [{"prompt": p, "digit": d, "offset_s": t} for p, d, t in ivr],
    }


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 0.0 if denominator == 0 else float(abs(a @ b) / denominator)


def run_demo(
    folder: str | Path = "voicepriv-demo",
    *,
    overwrite: bool = False,
    say: Callable[[str], None] = print,
) -> DemoReport:
    """Run the demo in *folder*; *say* prints each line.

    :param overwrite: replace ``policy.toml``, ``calls/`` and ``vault/`` in *folder* even when no
        earlier demo made them (a folder an earlier demo made is always replaced).
    :raises ConfigError: *folder* holds such files from something else and *overwrite* is
        false.
    """
    root = Path(folder).resolve()
    made = [root / n for n in ("policy.toml", "calls", "vault", _MARKER)]
    if any(p.exists() for p in made):
        if not (overwrite or (root / _MARKER).exists()):
            raise ConfigError(
                f"{root}: holds files the demo would replace (policy.toml, calls/, vault/) "
                "but no earlier demo; pass --overwrite or choose another --dir"
            )
        for path in made:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("made by voicepriv demo; re-running replaces this folder's demo\n")

    say(f"voicepriv demo in {root}")
    say("")
    say("1. Policy: a Danish contact center (policy.toml)")
    policy_path = root / "policy.toml"
    policy_path.write_text(DEMO_POLICY, encoding="utf-8")
    policy = load_policy(policy_path)
    say("   quality assurance and training need the caller's consent (IVR keypress);")
    say("   outbound calls are kept agent-side only.")

    say("2. Call: two readers of LibriSpeech (CC BY 4.0) as agent and caller, stereo, 8 kHz")
    stereo, _agent, customer = build_call()
    calls = root / "calls"
    calls.mkdir()
    audio_io.save(stereo, calls / "demo-call.wav")
    seconds = stereo.duration
    records = [
        _record("demo-inbound", "inbound", [("qa", "1", 0.2), ("training", "2", 0.4)], seconds),
        _record("demo-outbound", "outbound", [], seconds),
        _record("demo-refused", "inbound", [("qa", "2", 0.2), ("training", "2", 0.4)], seconds),
    ]
    (calls / "calls.json").write_text(
        json.dumps({"format": "voicepriv-generic/1", "calls": records}, indent=2), encoding="utf-8"
    )
    say(f"   {seconds:.1f} s; calls/calls.json describes it three ways:")
    say("   demo-inbound  caller pressed 1 (quality assurance: yes) and 2 (training: no)")
    say("   demo-outbound the center called out (agent side only)")
    say("   demo-refused  caller pressed 2 and 2")

    say("3. Vault: local folder, SQLite catalog, local key file (vault/)")
    vault_path = root / "vault"
    Vault.create(vault_path).close()

    say("4. Ingest (decide -> isolate -> store encrypted -> index -> audit)")
    intake = discover(calls)
    report = run_batch(IngestTask(policy=str(policy_path), vault=str(vault_path)), intake)
    outcomes = {o.call_id: o.outcome for o in report.outcomes}
    failed = [o for o in report.outcomes if o.outcome is Outcome.FAILED]
    if failed:
        raise ConfigError(f"demo: ingest failed: {failed[0].call_id}: {failed[0].reason}")
    with Vault.open(vault_path) as vault:
        for record in intake:
            rec = record.recording
            merged = attrs.evolve(
                rec, consents=rec.consents + consents_from_ivr(policy, record.ivr)
            )
            decision = decide(merged, policy)
            say("")
            say(f"   --- {rec.id}: {outcomes[rec.id].value.replace('_', '-')}")
            for line in decision.explain().splitlines()[1:]:
                say(f"   {line}")
            live = vault.catalog.recording_ids()
            if rec.id in live:
                for artifact in vault.catalog.artifacts(rec.id):
                    say(
                        f"   stored: {artifact.kind.value}, {artifact.size} bytes, "
                        f"encrypted ({artifact.id})"
                    )
            else:
                say("   stored: nothing (the audio was never read)")
            if outcomes[rec.id] is Outcome.AGENT_ONLY:
                say("   destroyed: the customer channel (never written anywhere)")
        say("")
        say(report.table().replace("\n", "\n   ").join(["   ", ""]))

        say("")
        say("5. Check: does any stored agent-only audio contain the caller's voice?")
        worst = 0.0
        for artifact in vault.catalog.artifacts("demo-outbound"):
            if artifact.kind is ArtifactKind.AGENT_AUDIO:
                kept = vault.read_audio(artifact.id).mono()
                worst = max(worst, _correlation(kept, customer.mono()))
        say(f"   correlation with the caller's channel: {worst:.4f} (0 = none of it)")

        say(f"6. Erasure request for the caller ({CALLER_PHONE[:4]}...)")
        subject = SubjectRef(kind="phone", value=CALLER_PHONE)
        found = vault.find_subject(subject)
        log = audit_log_for(vault)
        request = f"erasure-{uuid.uuid4().hex[:12]}"
        erased: list[str] = []
        for recording_id in found:
            receipt = vault.delete(recording_id, "erasure_request")
            erased.append(recording_id)
            log.append(
                EventType.DELETION,
                {
                    "recording_id": recording_id,
                    "reason": "erasure_request",
                    "request": request,
                    "artifacts": list(receipt.artifacts),
                    "key_destroyed": receipt.key_destroyed,
                },
            )
            say(
                f"   {recording_id}: key destroyed, {len(receipt.replicas)} replica(s) "
                "deleted and verified absent"
            )
        log.append(
            EventType.ERASURE,
            {
                "request": request,
                "subjects": [vault.subject_hash(subject)],
                "erased": erased,
                "at": datetime.now(UTC),
            },
        )
        remaining = vault.find_subject(subject)
        say(f"   recordings still indexed for the caller: {len(remaining)}")

        say("7. Audit log: verify hash chain, signatures and signed head")
        verified = verify_log(root / "vault" / AUDIT_LOG_NAME, vault.provider.verify_key())
        say(
            f"   {verified.count} events verified, head {verified.head[:16]}..., "
            f"anchored: {verified.anchored}"
        )
        key = Path(vault.config.resolve("master.key"))

    say("")
    say(
        READ_NEXT.format(
            calls=calls,
            policy=policy_path,
            vault=vault_path,
            log=vault_path / AUDIT_LOG_NAME,
            key=key,
        )
    )
    return DemoReport(
        folder=root,
        outcomes=outcomes,
        customer_correlation=worst,
        erased=tuple(erased),
        audit_events=verified.count,
    )
