"""Crashed puts: a process killed mid-write leaves temporary objects and unfinished artifacts;
the sweep's cleanup removes them on every replica after the grace period."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from voicepriv.model import Recording, utc_now
from voicepriv.vault.catalog import ReplicaState
from voicepriv.vault.vault import ReplicaConfig, Vault

# Runs in a child process, which dies (os._exit) at the point named by argv[2].
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from datetime import datetime, UTC
    from voicepriv.model import Recording
    from voicepriv.vault.vault import Vault

    vault = Vault.open(sys.argv[1])
    where = sys.argv[2]
    rid = "call-" + where
    vault.add_recording(
        Recording(
            id=rid,
            started_at=datetime(2026, 3, 2, tzinfo=UTC),
            duration=60,
            direction="inbound",
            parties=[{"role": "agent", "id": "agent-7"}],
        ),
        delete_after=None,
        deadlines={"qa": datetime(2030, 1, 1, tzinfo=UTC)},
    )

    def blocks():
        for _ in range(8):
            yield b"s" * 65536
        if where == "mid_write":
            time.sleep(1.0)  # every replica writer has its temporary object open
            os._exit(3)

    if where == "before_size":
        def crash(*args, **kwargs):
            os._exit(4)
        vault.catalog.set_artifact_size = crash
    vault.put_artifact(rid, "agent_audio", blocks())
    os._exit(5)
    """
)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_sweep_cleans_what_crashed_puts_left_on_every_replica(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    Vault.create(
        root,
        replicas=[
            ReplicaConfig(name="a", url="objects-a"),
            ReplicaConfig(name="b", url="objects-b"),
        ],
    ).close()
    for where, code in (("mid_write", 3), ("before_size", 4)):
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), where],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == code, child.stderr
    replicas = {name: root / f"objects-{name}" for name in ("a", "b")}
    with Vault.open(root) as vault:
        stale = vault.catalog.incomplete_artifacts(utc_now() + timedelta(seconds=1))
        assert len(stale) == 2 and all(a.size == -1 for a in stale)
        for folder in replicas.values():
            names = [Path(f).name for f in _files(folder)]
            # the killed write's temporary object, the other artifact's final object
            assert sum(".voicepriv-tmp-" in n for n in names) == 1, names
            assert sum(n.endswith(".vpv") for n in names) == 1, names
        # Within the grace period nothing is touched (the writes might still be running).
        fresh = vault.sweep(cleanup_grace=timedelta(hours=1))
        assert fresh.cleanup is not None
        assert fresh.cleanup.artifacts == () and dict(fresh.cleanup.temporaries) == {}
        assert all(len(_files(folder)) == 2 for folder in replicas.values())
        # A dry run names the artifacts and removes nothing.
        plan = vault.sweep(dry_run=True, cleanup_grace=timedelta(0))
        assert plan.cleanup is not None and set(plan.cleanup.artifacts) == {a.id for a in stale}
        assert all(len(_files(folder)) == 2 for folder in replicas.values())
        report = vault.sweep(cleanup_grace=timedelta(0))
        assert report.cleanup is not None
        assert set(report.cleanup.artifacts) == {a.id for a in stale}
        assert sorted(report.cleanup.temporaries) == ["a", "b"]
        assert dict(report.cleanup.skipped) == {}
        for folder in replicas.values():
            assert _files(folder) == []
        for artifact in stale:
            assert vault.catalog.artifact(artifact.id).deleted_at is not None
            states = {r.state for r in vault.catalog.replicas(artifact.id)}
            assert states == {ReplicaState.DELETED}
        assert vault.catalog.incomplete_artifacts(utc_now() + timedelta(seconds=1)) == []
        assert vault.catalog.replicas_needing_repair() == []
        assert vault.verify().ok
        # The recordings stay; a new put works as before.
        result = vault.put_artifact("call-mid_write", "agent_audio", b"again")
        assert vault.read(result.artifact_id) == b"again"
        assert vault.sweep(cleanup_grace=timedelta(0)).cleanup.artifacts == ()  # type: ignore[union-attr]


def test_memory_replica_temporaries_removed_only_after_the_grace(tmp_path: Path) -> None:
    with Vault.create(
        tmp_path / "vault",
        replicas=[ReplicaConfig(name="mem", url=f"memory://cleanup-{tmp_path.name}")],
    ) as vault:
        storage = vault.storages["mem"]
        result = vault.put(_recording(), {"agent_audio": b"kept"}, delete_after=None)[0]
        fs = storage._fs  # type: ignore[attr-defined]
        root = storage._root  # type: ignore[attr-defined]
        fs.pipe(f"{root}/objects/zz/.a-dead.vpv.voicepriv-tmp-0011", b"partial")
        report = vault.cleanup(utc_now() - timedelta(hours=1))
        assert dict(report.temporaries) == {}
        report = vault.cleanup(utc_now() + timedelta(seconds=1))
        assert dict(report.temporaries) == {"mem": ("objects/zz/.a-dead.vpv.voicepriv-tmp-0011",)}
        assert not fs.exists(f"{root}/objects/zz/.a-dead.vpv.voicepriv-tmp-0011")
        assert vault.read(result.artifact_id) == b"kept"


def _recording() -> Recording:
    return Recording(
        id="call-1",
        started_at=utc_now(),
        duration=60,
        direction="inbound",
        parties=[{"role": "agent", "id": "agent-7"}],
    )
