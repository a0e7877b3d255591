"""The decision log: one SQLite row per proxied request, written off the hot path.

Request handlers call `DecisionLog.record()`, which only puts the record on a bounded in-memory queue (it
never blocks and never raises). One background thread owns the SQLite connection and writes records in
batches, one transaction per batch. SQLite runs in WAL mode, so `export_jsonl` (and any other reader) can
read a consistent snapshot while the proxy keeps writing.

Loss accounting ("nothing silently lost"):

- queue full, or `record()` after `close()`  -> `dropped` (plus `on_drop()` and a rate-limited warning);
- a row SQLite refuses (e.g. a value it cannot bind) -> `failed` (plus an error log line);
- `close()` drains every accepted record before it returns, unless its `timeout` runs out first.

Only this module and `export_jsonl` know the table layout; the schema version lives in the `meta` table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Literal, TextIO

from router.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "DecisionLog", "DecisionRecord", "export_jsonl"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

Decision = Literal["think", "direct"]
DecisionSource = Literal["policy", "header", "client", "fallback"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionRecord:
    """What happened to one request. Times are seconds since the epoch; durations are milliseconds."""

    time: float
    request_id: str
    route: str
    upstream_model: str
    policy: str
    decision: Decision
    decision_ms: float
    decision_source: DecisionSource
    status: int
    stream: bool
    score: float | None = None
    fallback_reason: str | None = None
    upstream_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    error: str | None = None
    # Stored only when the log was built with log_prompts=True.
    prompt: str | None = None


# Column order of the `decisions` table (after `id`), in the order the spec lists the fields.
COLUMNS: tuple[str, ...] = (
    "time", "request_id", "route", "upstream_model", "policy", "decision", "score", "decision_ms",
    "decision_source", "fallback_reason", "upstream_ms", "prompt_tokens", "completion_tokens",
    "reasoning_tokens", "status", "error", "stream", "prompt",
)
assert set(COLUMNS) == {f.name for f in fields(DecisionRecord)}

_SQL_TYPES = {
    "time": "REAL NOT NULL", "request_id": "TEXT NOT NULL", "route": "TEXT NOT NULL",
    "upstream_model": "TEXT NOT NULL", "policy": "TEXT NOT NULL", "decision": "TEXT NOT NULL",
    "score": "REAL", "decision_ms": "REAL NOT NULL", "decision_source": "TEXT NOT NULL",
    "fallback_reason": "TEXT", "upstream_ms": "REAL", "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER", "reasoning_tokens": "INTEGER", "status": "INTEGER NOT NULL",
    "error": "TEXT", "stream": "INTEGER NOT NULL", "prompt": "TEXT",
}

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY, "
    + ", ".join(f"{c} {_SQL_TYPES[c]}" for c in COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time)",
    "CREATE INDEX IF NOT EXISTS decisions_route_time ON decisions (route, time)",
]
_INSERT = f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_PROMPT_INDEX = COLUMNS.index("prompt")
_STREAM_INDEX = COLUMNS.index("stream")
_row_of: Callable[[DecisionRecord], tuple[Any, ...]] = attrgetter(*COLUMNS)

_STOP = object()  # queue sentinel: everything queued before it has been accepted and must be written


class DecisionLog:
    """Asynchronous, bounded, batched SQLite writer for `DecisionRecord`s.

    Lifecycle: `start()` (opens the file, creates or checks the schema, raises `ConfigError` if it cannot),
    `record()` any number of times from any thread or event loop, then `close()` / `aclose()`.
    Records passed to `record()` before `start()` wait in the queue and are written once it starts.
    """

    #: Seconds between two "records dropped" warnings; drops in between are summed into the next one.
    warn_interval: float = 10.0

    def __init__(self, path: str | Path, *, queue_size: int = 10000, log_prompts: bool = False,
                 batch_size: int = 256, on_drop: Callable[[], None] | None = None) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self.path = Path(path)
        self.log_prompts = log_prompts
        self.batch_size = batch_size
        self._on_drop = on_drop
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        # Guards the counters and `_closed`; `record()` holds it only for a put_nowait and an increment.
        self._lock = threading.Lock()
        self._closed = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._dropped_warned = 0
        self._last_warn = float("-inf")
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open (creating if needed) the database and start the writer thread. Idempotent."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DecisionLog is closed")
            if self._thread is not None:
                return
            self._conn = _open_for_writing(self.path)
            self._thread = threading.Thread(target=self._run, name="thinkgate-decision-log", daemon=True)
            self._thread.start()

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting records, write every accepted one, close the database.

        Returns True once everything is written and the connection is closed; False if `timeout` ran out
        first (the writer keeps going in the background; `stats()["queued"]` shows what is left).
        Idempotent and safe to call from any thread except the writer itself.
        """
        with self._lock:
            already_closed, self._closed = self._closed, True
            thread = self._thread
        if thread is None:
            if self._queue.empty():
                return True
            # Records were accepted before start(): write them rather than lose them.
            try:
                conn = _open_for_writing(self.path)
            except ConfigError as exc:
                lost = 0
                while True:
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        break
                    lost += 1
                with self._lock:
                    self._failed += lost
                logger.error("decision log: %d queued record(s) lost: %s", lost, exc)
                return False
            with self._lock:
                self._conn = conn
                thread = self._thread = threading.Thread(target=self._run, name="thinkgate-decision-log",
                                                         daemon=True)
            thread.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not already_closed:
            # No record() can enqueue after _closed was set, so the sentinel is the last item. The put may
            # wait for room, which the running writer makes.
            try:
                self._queue.put(_STOP, timeout=_remaining(deadline))
            except queue.Full:
                return False
        thread.join(_remaining(deadline))
        return not thread.is_alive()

    async def aclose(self, timeout: float | None = None) -> bool:
        """`close()` in a worker thread, so draining the queue never blocks the event loop."""
        return await asyncio.to_thread(self.close, timeout)

    # -- hot path ----------------------------------------------------------------------------------

    def record(self, rec: DecisionRecord) -> bool:
        """Queue `rec` for writing. Never blocks, never raises; False means it was dropped (and counted)."""
        try:
            with self._lock:
                if not self._closed:
                    try:
                        self._queue.put_nowait(rec)
                        return True
                    except queue.Full:
                        pass
                self._dropped += 1
                warn = self._take_warning()
            if self._on_drop is not None:
                self._on_drop()
            if warn is not None:
                logger.warning("decision log %s: dropped %d record(s) (queue full or log closed); "
                               "%d dropped in total", self.path, warn[0], warn[1])
        except Exception:  # a faulty on_drop callback or logging handler must not fail a request
            logger.debug("decision log: error while counting a dropped record", exc_info=True)
        return False

    def _take_warning(self) -> tuple[int, int] | None:
        """With the lock held: (drops since the last warning, total drops) if a warning is due."""
        now = time.monotonic()
        if now - self._last_warn < self.warn_interval:
            return None
        self._last_warn = now
        since, self._dropped_warned = self._dropped - self._dropped_warned, self._dropped
        return since, self._dropped

    def stats(self) -> dict[str, int]:
        """Counters: `written`, `dropped` (never queued), `failed` (rejected by SQLite), `queued` (waiting)."""
        with self._lock:
            return {"written": self._written, "dropped": self._dropped, "failed": self._failed,
                    "queued": self._queue.qsize()}

    # -- writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        get, get_nowait = self._queue.get, self._queue.get_nowait
        try:
            stop = False
            while not stop:
                batch: list[DecisionRecord] = []
                item = get()  # block for the first record, then take what is already there
                while True:
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        break
                    try:
                        item = get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._write(conn, batch)
        finally:
            try:
                conn.close()
            except sqlite3.Error:
                logger.exception("decision log %s: error while closing", self.path)

    def _write(self, conn: sqlite3.Connection, batch: list[DecisionRecord]) -> None:
        """Insert `batch` in one transaction; if that fails, retry row by row so one bad record costs one row."""
        rows = [self._row(rec) for rec in batch]
        try:
            with conn:
                conn.executemany(_INSERT, rows)
            written, failed = len(rows), 0
        except Exception:  # the writer thread must survive anything a batch can throw
            written = failed = 0
            for row in rows:
                try:
                    with conn:
                        conn.execute(_INSERT, row)
                    written += 1
                except Exception:
                    failed += 1
                    logger.exception("decision log %s: could not write a record", self.path)
        with self._lock:
            self._written += written
            self._failed += failed

    def _row(self, rec: DecisionRecord) -> list[Any]:
        try:
            row = list(_row_of(rec))
        except AttributeError:
            return [None] * len(COLUMNS)  # not a DecisionRecord: fails NOT NULL, counted as failed
        row[_STREAM_INDEX] = bool(row[_STREAM_INDEX])
        if not self.log_prompts:
            row[_PROMPT_INDEX] = None
        return row


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _open_for_writing(path: Path) -> sqlite3.Connection:
    """Connect in WAL mode and create or check the schema. Raises ConfigError with a readable message."""
    try:
        if path.parent and not path.parent.exists():
            raise ConfigError(f"decision log directory does not exist: {path.parent}")
        # The connection is created here and then used only by the writer thread.
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power cut may lose the
            # last few transactions, which is fine for a log and much faster than FULL.
            conn.execute("PRAGMA synchronous=NORMAL")
            _ensure_schema(conn, path)
            conn.isolation_level = ""  # from here on, `with conn:` brackets each batch in a transaction
        except BaseException:
            conn.close()
            raise
        return conn
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open decision log {path}: {exc}") from exc


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # two processes starting on one file must not both create it
    try:
        for stmt in _SCHEMA[:1]:
            conn.execute(stmt)
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if found is None:
            for stmt in _SCHEMA[1:]:
                conn.execute(stmt)
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif found[0] != str(SCHEMA_VERSION):
            raise ConfigError(f"decision log {path} has schema version {found[0]}; this thinkgate "
                              f"reads and writes version {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# -- export ------------------------------------------------------------------------------------------


def export_jsonl(db_path: str | Path, out: TextIO, *, since: float | None = None,
                 route: str | None = None) -> int:
    """Write the log's rows as JSON lines (every column plus `id`), oldest first; return the row count.

    Opens the database read-only, so it works while a proxy is writing and never creates a file.
    Raises FileNotFoundError if `db_path` does not exist and ConfigError if it is not a thinkgate
    decision log (or one with another schema version).
    """
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"decision log not found: {path}")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open decision log {path}: {exc}") from exc
    try:
        _check_readable(conn, path)
        where, params = [], []
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        if route is not None:
            where.append("route = ?")
            params.append(route)
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time, id"
        names = ("id", *COLUMNS)
        stream = names.index("stream")
        count = 0
        for row in conn.execute(sql, params):  # one SELECT = one consistent WAL snapshot
            obj = dict(zip(names, row))
            obj["stream"] = bool(row[stream])
            out.write(json.dumps(obj) + "\n")
            count += 1
        return count
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read decision log {path}: {exc}") from exc
    finally:
        conn.close()


def _check_readable(conn: sqlite3.Connection, path: Path) -> None:
    try:
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:  # not SQLite at all, or no meta table
        raise ConfigError(f"{path} is not a thinkgate decision log ({exc})") from exc
    if found is None:
        raise ConfigError(f"{path} is not a thinkgate decision log (no schema version)")
    if found[0] != str(SCHEMA_VERSION):
        raise ConfigError(f"decision log {path} has schema version {found[0]}; this thinkgate "
                          f"reads version {SCHEMA_VERSION}")
