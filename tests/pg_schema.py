"""A fresh PostgreSQL schema per test, on the server named by ``VOICEPRIV_TEST_POSTGRES``.

``tests/scripts/start_postgres.sh`` starts such a server and prints its DSN. Tests using
:func:`postgres_url` skip when the variable is unset or psycopg is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

ENV = "VOICEPRIV_TEST_POSTGRES"


@contextmanager
def postgres_url() -> Iterator[str]:
    """A DSN whose ``search_path`` is a new, empty schema; the schema is dropped afterwards."""
    dsn = os.environ.get(ENV)
    if not dsn:
        pytest.skip(f"{ENV} is not set (run tests/scripts/start_postgres.sh)")
    psycopg = pytest.importorskip("psycopg")
    schema = f"vpv_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
