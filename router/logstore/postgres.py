"""The decision log in PostgreSQL: one database for a fleet of instances (and their workers).

Driver: psycopg 3 with psycopg_pool. The writer is a plain thread (the queue and batching in
`router.decision_log` are synchronous by design, so that the request path never awaits the log), and
psycopg's synchronous API fits it directly; asyncpg would need an event loop inside that thread. psycopg
also gives COPY (the fastest bulk insert PostgreSQL has) and a maintained pool that replaces a broken
connection.

A batch is one `COPY ... FROM STDIN` on an autocommit connection, so the statement is its own transaction:
two round trips per batch (start, end), with no COMMIT and no per-checkout health check. Every round trip
makes the writer thread take the GIL back from a busy event loop; with those two gone, `thinkgate bench
durability` measured a worst commit lag of 82-86 ms up to 20,000 records/s (109-154 ms before; see
benchmarks/README.md). A connection the server killed (a restart, an idle reaper) fails its batch with a
connection error, which is transient like every connection problem (server down, pool exhausted): the
writer keeps the batch and retries it on a new connection (tests/router/test_decision_log.py). Migrations
run under an advisory lock, so many instances starting at once migrate the database once.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from router.errors import ConfigError

from . import TransientStoreError, as_dict, redact, select_sql
from .schema import COLUMNS, META_DDL, SCHEMA_VERSION, pending, too_new, unreadable

_COPY = f"COPY decisions ({', '.join(COLUMNS)}) FROM STDIN"
# pg_advisory_xact_lock key for migrations: any constant shared by every thinkgate ("tgate" in ASCII).
_MIGRATION_LOCK = 0x7467617465
CONNECT_TIMEOUT_S = 5
CHECKOUT_TIMEOUT_S = 5.0


class PostgresStore:
    def __init__(self, dsn: str, *, max_connections: int = 2) -> None:
        self.dsn = dsn
        self.where = redact(dsn)
        self.max_connections = max_connections
        self._pool: ConnectionPool | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to decision log {self.where}: {_first_line(exc)}") from exc

    def open(self) -> None:
        if self._pool is not None:
            return
        with self._connect() as conn:  # a direct connection first: its error names the real problem
            self._migrate_on(conn)
        pool = ConnectionPool(self.dsn, min_size=1, max_size=self.max_connections, open=False,
                              name="thinkgate-decision-log",
                              kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True})
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        except PoolTimeout as exc:
            pool.close()
            raise ConfigError(f"cannot open a connection pool to decision log {self.where}") from exc
        self._pool = pool

    def migrate(self) -> tuple[int | None, int]:
        with self._connect() as conn:
            return self._migrate_on(conn)

    def _migrate_on(self, conn: psycopg.Connection[Any]) -> tuple[int | None, int]:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(META_DDL)
                before = _version(conn)
                if before is not None and before > SCHEMA_VERSION:
                    raise ConfigError(too_new(before, self.where))
                for migration in pending(before):
                    for stmt in migration.statements("postgresql"):
                        conn.execute(stmt)
                if before != SCHEMA_VERSION:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))
        except psycopg.Error as exc:
            raise ConfigError(f"cannot migrate decision log {self.where}: {_first_line(exc)}") from exc
        return before, SCHEMA_VERSION

    def write_batch(self, rows: Sequence[Sequence[Any]]) -> None:
        pool = self._pool
        if pool is None:
            raise RuntimeError("PostgresStore.write_batch before open()")
        try:
            with pool.connection(timeout=CHECKOUT_TIMEOUT_S) as conn:  # autocommit: the COPY commits itself
                with conn.cursor() as cur, cur.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise TransientStoreError(f"{self.where}: {_first_line(exc)}") from exc

    def read(self, *, since: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        conn = self._connect()
        try:
            try:
                found = _version(conn)
            except psycopg.errors.UndefinedTable as exc:
                raise ConfigError(f"{self.where} is not a thinkgate decision log (no meta table)") from exc
            problem = unreadable(found, self.where)
            if problem:
                raise ConfigError(problem)
            conn.rollback()
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one consistent snapshot
            conn.read_only = True
            sql, params = select_sql(since, route, "%s")
            with conn.cursor(name="thinkgate_export") as cur:  # server-side: streams, never all in memory
                cur.itersize = 2000
                cur.execute(sql, params)
                for row in cur:
                    yield as_dict(row)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot read decision log {self.where}: {_first_line(exc)}") from exc
        finally:
            conn.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _version(conn: psycopg.Connection[Any]) -> int | None:
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if found is None else int(found[0])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
