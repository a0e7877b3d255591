"""The decision log in one SQLite file: the default for one machine, correct with several writer processes.

WAL mode lets readers (`thinkgate log export`) work while processes write. Writers from several processes
(workers) serialize on SQLite's write lock: every write transaction starts with `BEGIN IMMEDIATE`, so it
waits in SQLite's busy handler (`busy_timeout`) for the lock instead of failing half-way; if the lock is
still taken after that, the batch is reported as transient and the writer retries it.
`synchronous=NORMAL` in WAL mode loses nothing when a process dies (kill -9 included): a committed
transaction is in the WAL file, which the OS keeps; only a power cut may lose the last commits.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from itertools import chain
from pathlib import Path
from typing import Any, Iterator, Sequence

from router.errors import ConfigError

from . import TransientStoreError, as_dict, select_sql
from .schema import COLUMNS, META_DDL, SCHEMA_VERSION, pending, too_new, unreadable

BUSY_TIMEOUT_S = 10.0
# Rows per INSERT statement. One multi-row INSERT is one sqlite3_step, so the writer thread gives up the GIL
# (and waits to get it back from a busy event loop) once per chunk instead of once per row. A batch of at most
# one chunk is that one statement alone (autocommit: atomic, and it takes the write lock through the busy
# handler just as BEGIN IMMEDIATE does), which saves the BEGIN and COMMIT round trips through the GIL: under
# load each costs the writer many futile wake-ups while the event loop holds the GIL (the writer thread's CPU
# and context switches, read from /proc around wrk runs, fell by about a third and a half).
CHUNK_ROWS = 256


@functools.lru_cache(maxsize=CHUNK_ROWS)
def _insert_sql(rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES " + ", ".join([one] * rows)


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._conn: sqlite3.Connection | None = None
        self._chunk = CHUNK_ROWS

    def open(self) -> None:
        if self._conn is not None:
            return
        if self.path.parent and not self.path.parent.exists():
            raise ConfigError(f"decision log directory does not exist: {self.path.parent}")
        try:
            # Created here, then used only by the writer thread.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
            try:
                _set_up(conn, self.where)
                limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # 999 before SQLite 3.32
                self._chunk = max(1, min(CHUNK_ROWS, limit // len(COLUMNS)))
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open decision log {self.where}: {exc}") from exc
        self._conn = conn

    def migrate(self) -> tuple[int | None, int]:
        if not self.path.is_file():
            raise FileNotFoundError(f"decision log not found: {self.path}")
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open decision log {self.where}: {exc}") from exc
        try:
            return _migrate(conn, self.where)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot migrate decision log {self.where}: {exc}") from exc
        finally:
            conn.close()

    def write_batch(self, rows: Sequence[Sequence[Any]]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("SqliteStore.write_batch before open()")
        try:
            if len(rows) <= self._chunk:
                conn.execute(_insert_sql(len(rows)), list(chain.from_iterable(rows)))
                return
            conn.execute("BEGIN IMMEDIATE")  # take the write lock first: waits in the busy handler
            try:
                for start in range(0, len(rows), self._chunk):
                    chunk = rows[start:start + self._chunk]
                    conn.execute(_insert_sql(len(chunk)), list(chain.from_iterable(chunk)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise TransientStoreError(f"{self.where}: {exc}") from exc
            raise

    def read(self, *, since: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            raise FileNotFoundError(f"decision log not found: {self.path}")
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open decision log {self.where}: {exc}") from exc
        try:
            _check_version(conn, self.where)
            sql, params = select_sql(since, route, "?")
            for row in conn.execute(sql, params):  # one SELECT = one consistent WAL snapshot
                yield as_dict(row)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot read decision log {self.where}: {exc}") from exc
        finally:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _set_up(conn: sqlite3.Connection, where: str) -> None:
    """WAL mode and the schema, retried while another process does the same on a fresh file.

    Switching a new file to WAL takes an exclusive lock for which SQLite does not always call the busy
    handler, so several workers starting at once can see "database is locked" here; retrying for up to the
    busy timeout makes a simultaneous start of N workers safe.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _migrate(conn, where)
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        time.sleep(delay)
        delay = min(0.2, delay * 2)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _version(conn: sqlite3.Connection) -> int | None:
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if found is None else int(found[0])


def _migrate(conn: sqlite3.Connection, where: str) -> tuple[int | None, int]:
    """Apply the missing migrations in one transaction under SQLite's write lock (so two processes
    starting on one file migrate it once)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(META_DDL)
        before = _version(conn)
        if before is not None and before > SCHEMA_VERSION:
            raise ConfigError(too_new(before, where))
        for migration in pending(before):
            for stmt in migration.statements("sqlite"):
                conn.execute(stmt)
        if before != SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before, SCHEMA_VERSION


def _check_version(conn: sqlite3.Connection, where: str) -> None:
    try:
        found = _version(conn)
    except (sqlite3.DatabaseError, ValueError) as exc:  # not SQLite at all, no meta table, junk version
        raise ConfigError(f"{where} is not a thinkgate decision log ({exc})") from exc
    problem = unreadable(found, where)
    if problem:
        raise ConfigError(problem)
