"""Forgetting a rolled-back recording, and refusing to forget anything else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.vault.test_catalog import T0, _entry

from voicepriv.errors import CatalogError, NotFoundError
from voicepriv.vault.catalog import Catalog


def test_only_a_finished_deletion_for_the_reason_is_forgotten(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.add_recording(_entry("r1", due=T0 + timedelta(days=1)))
    catalog.add_recording(_entry("r2", due=T0 + timedelta(days=1)))
    with pytest.raises(CatalogError, match="refusing to forget"):
        catalog.forget("r1", reason="ingest_rollback")  # still active
    catalog.begin_deletion("r1", "ingest_rollback", T0)
    with pytest.raises(CatalogError, match="refusing to forget"):
        catalog.forget("r1", reason="ingest_rollback")  # not finished
    catalog.finish_deletion("r1", "{}", T0)
    catalog.begin_deletion("r2", "erasure", T0)
    catalog.finish_deletion("r2", "{}", T0)
    with pytest.raises(CatalogError, match="refusing to forget"):
        catalog.forget("r2", reason="ingest_rollback")  # an erasure's tombstone stays
    catalog.forget("r1", reason="ingest_rollback")
    with pytest.raises(NotFoundError):
        catalog.recording("r1")
    assert catalog.deletion("r1") is None
    catalog.add_recording(_entry("r1", due=T0 + timedelta(days=1)))  # ingestible again
    assert catalog.recording("r2").state.value == "deleted"
