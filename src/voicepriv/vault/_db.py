"""A small DB-API layer: one place for connection, parameter style, transactions, migrations.

SQL in the vault is written once, in standard SQL with ``?`` placeholders; :class:`Database`
rewrites the placeholders for drivers using another ``paramstyle`` (psycopg: ``%s``). A
PostgreSQL catalog only needs a :func:`connect` branch that returns a :class:`Database` with
dialect ``"postgresql"``; the schema and queries stay the same.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from voicepriv.errors import CatalogError, ConfigError

__all__ = ["Database", "Migration", "connect", "migrate"]

#: One schema step: (version, statements).
Migration = tuple[int, tuple[str, ...]]

Row = tuple[Any, ...]

_BUSY_TIMEOUT_S: Final = 120.0


class Database:
    """A DB-API connection with the vault's conventions.

    :param connection: an open DB-API 2 connection in autocommit mode.
    :param dialect: ``"sqlite"`` or ``"postgresql"``.
    :param paramstyle: the driver's ``paramstyle`` (``"qmark"`` or ``"format"``).
    :param where: how to name the database in error messages (never with credentials).
    """

    def __init__(self, connection: Any, *, dialect: str, paramstyle: str, where: str) -> None:
        self._connection = connection
        self.dialect = dialect
        self._paramstyle = paramstyle
        self.where = where
        self._lock = threading.RLock()
        self._depth = 0

    def __repr__(self) -> str:
        return f"Database(dialect={self.dialect!r}, where={self.where!r})"

    def _sql(self, sql: str) -> str:
        if self._paramstyle == "qmark":
            return sql
        if self._paramstyle == "format":
            return sql.replace("%", "%%").replace("?", "%s")
        raise ConfigError(f"{self.where}: unsupported paramstyle {self._paramstyle!r}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; return its rows (empty for statements without results)."""
        with self._lock:
            try:
                cursor = self._connection.cursor()
                cursor.execute(self._sql(sql), tuple(params))
                rows = cursor.fetchall() if cursor.description is not None else []
                cursor.close()
            except sqlite3.Error as exc:
                raise CatalogError(f"{self.where}: {exc}") from exc
            return [tuple(row) for row in rows]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""
        with self._lock:
            try:
                cursor = self._connection.cursor()
                cursor.executemany(self._sql(sql), [tuple(row) for row in rows])
                cursor.close()
            except sqlite3.Error as exc:
                raise CatalogError(f"{self.where}: {exc}") from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or ``None``."""
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction (nested calls join the outer one); rolled back on error.

        SQLite takes the write lock at ``BEGIN IMMEDIATE`` so concurrent writers queue up
        instead of failing on a lock upgrade.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"
            self.execute(begin)
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                with contextlib.suppress(Exception):
                    self._connection.execute("ROLLBACK")
                raise
            self._depth = 0
            self.execute("COMMIT")

    def truncate_wal(self, *, attempts: int = 5, delay_s: float = 0.05) -> bool:
        """Checkpoint the SQLite write-ahead log and truncate it to zero bytes, so rows just
        deleted do not linger in ``-wal`` frames; retried a few times while another
        connection's read transaction keeps it busy.

        :return: whether the WAL was truncated (always true for PostgreSQL, which keeps no
            WAL file of ours); ``False`` means a reader kept it busy every time, and the next
            checkpoint (the next deletion) truncates it.
        """
        if self.dialect != "sqlite":
            return True
        with self._lock:
            # TRUNCATE waits (busy handler) for readers on an older snapshot: wait briefly per
            # attempt instead of the long busy timeout writers use.
            self.execute(f"PRAGMA busy_timeout = {int(delay_s * 1000)}")
            try:
                for attempt in range(attempts):
                    row = self.one("PRAGMA wal_checkpoint(TRUNCATE)")
                    if row is None or int(row[0]) == 0:
                        return True
                    if attempt + 1 < attempts:
                        time.sleep(delay_s * (attempt + 1))
                return False
            finally:
                self.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()


def _sqlite_path(url: str, base: Path | None) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"", "sqlite"}:
        raise ConfigError(f"catalog url {url!r}: expected sqlite:///PATH or a file path")
    raw = unquote(parts.netloc + parts.path) if parts.scheme else url
    if raw == ":memory:":
        return raw
    path = Path(raw)
    if not path.is_absolute() and base is not None:
        path = base / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch the database to WAL mode, waiting out other openers doing the same.

    Entering WAL needs a moment of exclusive access, and SQLite answers "database is locked"
    at once (without its busy handler) when several connections switch a fresh file together:
    retry with a short backoff until the busy timeout has passed.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def connect(url: str, *, base: Path | None = None, synchronous: str = "NORMAL") -> Database:
    """Open the database at *url* (``sqlite:///abs/path.db``, ``sqlite:rel.db`` or a path).

    Relative paths are resolved against *base*. SQLite runs in WAL mode with a long busy
    timeout so several processes can write at once.
    """
    scheme = urlsplit(url).scheme
    if scheme in {"postgresql", "postgres"}:
        from voicepriv.vault import _postgres  # extra "postgres"; imported only when asked

        return _postgres.connect(url)
    path = _sqlite_path(url, base)
    try:
        connection = sqlite3.connect(
            path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        if path != ":memory:":
            _enable_wal(connection)
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise CatalogError(f"database {path}: cannot open ({exc})") from exc
    return Database(connection, dialect="sqlite", paramstyle="qmark", where=path)


def migrate(db: Database, migrations: Sequence[Migration], *, table: str) -> int:
    """Apply every migration newer than the stored version, in order; return the version.

    Runs inside one write transaction, so concurrent openers apply each step exactly once.

    :raises CatalogError: the database is newer than this voicepriv.
    """
    latest = max(version for version, _ in migrations)
    with db.transaction():
        if db.dialect == "postgresql":
            # PostgreSQL does not serialise concurrent CREATE TABLE IF NOT EXISTS: two workers
            # opening a fresh catalog would both create it. A transaction-scoped advisory lock
            # (keyed by the version table's name) makes them take turns. SQLite's BEGIN
            # IMMEDIATE already does.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (table,))
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        row = db.one(f"SELECT MAX(version) FROM {table}")
        current = int(row[0]) if row and row[0] is not None else 0
        if current > latest:
            raise CatalogError(
                f"{db.where}: schema version {current} is newer than this voicepriv ({latest})"
            )
        for version, statements in sorted(migrations):
            if version <= current:
                continue
            for statement in statements:
                db.execute(statement)
            db.execute(
                f"INSERT INTO {table} (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)",
                (version,),
            )
    return latest
