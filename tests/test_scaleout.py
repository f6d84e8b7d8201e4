"""The scale-out path end to end: PostgreSQL catalog and key store, S3 + local replicas, Dask.

The same batch job as on one machine, with ``vault.toml`` pointing the catalog and the key store
at PostgreSQL (separate schemas) and a second replica at an S3-compatible server, run by a real
two-worker ``dask.distributed`` cluster. Skips unless PostgreSQL (``VOICEPRIV_TEST_POSTGRES``),
moto's server, s3fs and distributed are all available.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from pg_schema import postgres_url
from s3_server import new_bucket, s3_options, s3_server
from voicepriv import audio as audio_io
from voicepriv.batch import Outcome, discover, run_batch
from voicepriv.demo import CALLER_PHONE, DEMO_POLICY, build_call
from voicepriv.model import SubjectRef
from voicepriv.pipeline import IngestTask
from voicepriv.vault import ReplicaConfig, ReplicaState, Vault, VaultConfig

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.dask, pytest.mark.slow]


def test_batch_on_dask_with_postgres_catalog_and_s3_replica(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    stereo, _, _ = build_call()
    calls = tmp_path / "calls"
    calls.mkdir()
    audio_io.save(stereo, calls / "call.wav")
    records = [
        {
            "call_id": f"scale-{i}",
            "started_at": "2026-03-02T09:15:00+01:00",
            "duration_s": stereo.duration,
            "direction": "outbound" if i % 2 else "inbound",
            "channels": ["agent", "customer"],
            "audio": "call.wav",
            "parties": [
                {"role": "agent", "id": "agent-7", "jurisdiction": "DK"},
                {"role": "customer", "jurisdiction": "DK", "phone": CALLER_PHONE},
            ],
            "ivr": [{"prompt": "qa", "digit": "1" if i < 4 else "2", "offset_s": 0.1}],
        }
        for i in range(6)
    ]
    (calls / "calls.json").write_text(json.dumps(records))
    (tmp_path / "policy.toml").write_text(DEMO_POLICY)

    with postgres_url() as catalog_url, postgres_url() as keys_url, s3_server() as endpoint:
        bucket = new_bucket(endpoint)
        root = tmp_path / "vault"
        Vault.create(
            root,
            replicas=[
                ReplicaConfig(name="local", url="objects"),
                ReplicaConfig(
                    name="s3", url=f"s3://{bucket}/vault", storage_options=s3_options(endpoint)
                ),
            ],
        ).close()
        config = attrs.evolve(
            VaultConfig.load(root), catalog_url=catalog_url, key_store_url=keys_url
        )
        (root / "vault.toml").write_text(config.dump())

        task = IngestTask(policy=str(tmp_path / "policy.toml"), vault=str(root))
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            ) as cluster,
        ):
            report = run_batch(
                task,
                discover(calls),
                journal=root / "journal.jsonl",
                engine="dask",
                scheduler=cluster.scheduler_address,
            )
        assert report.failed == ()
        outcomes = {o.call_id: o.outcome for o in report.outcomes}
        assert outcomes == {
            "scale-0": Outcome.KEPT,
            "scale-1": Outcome.AGENT_ONLY,
            "scale-2": Outcome.KEPT,
            "scale-3": Outcome.AGENT_ONLY,
            "scale-4": Outcome.DESTROYED,
            "scale-5": Outcome.AGENT_ONLY,
        }
        with Vault.open(root) as vault:
            assert vault.catalog.db.dialect == "postgresql"
            assert vault.keys.store.db.dialect == "postgresql"
            stored = vault.catalog.recording_ids()
            assert stored == ["scale-0", "scale-1", "scale-2", "scale-3", "scale-5"]
            for rid in stored:
                (artifact,) = vault.catalog.artifacts(rid)
                replicas = vault.catalog.replicas(artifact.id)
                assert {(r.location, r.state) for r in replicas} == {
                    ("local", ReplicaState.OK),
                    ("s3", ReplicaState.OK),
                }
            assert vault.verify().ok
            assert vault.find_subject(SubjectRef(kind="phone", value=CALLER_PHONE)) == stored
            receipt = vault.delete("scale-1", "erasure_request")
            assert {r.location for r in receipt.replicas} == {"local", "s3"}
            assert list(vault.storages["s3"].keys()) != []  # the other recordings remain
