"""The decision log: one row per proxied request, written off the hot path to SQLite or PostgreSQL.

Request handlers call `DecisionLog.record()`, which only appends the record to a bounded in-memory queue
(it never blocks, never raises and never wakes another thread). One background thread wakes every
`flush_interval_s`, takes everything queued and hands it to the store (`router.logstore`) in batches of
up to `batch_size` rows, one transaction per batch. Waking on a timer instead of on every record keeps
the writer from fighting the event loop for the GIL under load, and batches grow with the load.

Durability bound: a record is committed `flush_interval_s` (50 ms by default) plus one batch's write time
after `record()` returned, at most; `stats()["max_lag_ms"]` reports the worst seen. The stated bound is
**500 ms**: a kill -9 loses at most the records of the last half second, at up to ~4,200 records/s (the
proxy's top measured throughput; `thinkgate bench durability` measured a worst lag of 137-297 ms there,
with the writer competing for two CPU cores at load average ~20; one CI run, on a machine busy with other
work, saw 707 ms). SIGTERM (a graceful shutdown: `close()`) loses none. A kill -9 loses only a tail:
batches commit in the order records were queued. tests/router/test_decision_log_durability.py checks
SIGTERM and the tail exactly against a real proxy under load, and the tail's age against a CI allowance.

Loss accounting ("nothing silently lost"):

- queue full, or `record()` after `close()`  -> `dropped` (plus `on_drop()` and a rate-limited warning);
- a row the database refuses even after cleaning its text (lone surrogates, NUL bytes) -> `failed`;
- a database that stays busy or unreachable for `retry_s` -> the batch is `failed` (an error log line);
- `close()` writes every accepted record before it returns, unless its `timeout` runs out first.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, TextIO

from router.errors import ConfigError
from router.logstore import COLUMNS, SCHEMA_VERSION, DecisionStore, TransientStoreError, open_store

__all__ = ["SCHEMA_VERSION", "DecisionLog", "DecisionRecord", "export_jsonl", "migrate"]

logger = logging.getLogger(__name__)

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
    decision_tokens: int | None = None  # tokens the decision itself cost (self-select's question), not the answer's
    score_method: str | None = None  # how the score was read, where a policy has several ways (logprobs / text)
    guard: str | None = None  # JSON: the guard's outcome, attempts, verdicts and reasons (guarded routes only)


# Every stored column comes from the record, except `instance`, which the writing process fills in.
_RECORD_COLUMNS = tuple(c for c in COLUMNS if c != "instance")
assert set(_RECORD_COLUMNS) == {f.name for f in fields(DecisionRecord)}
assert COLUMNS[-1] == "instance"
_PROMPT_INDEX = COLUMNS.index("prompt")
_STREAM_INDEX = COLUMNS.index("stream")
_row_of: Callable[[DecisionRecord], tuple[Any, ...]] = attrgetter(*_RECORD_COLUMNS)


class DecisionLog:
    """Asynchronous, bounded, batched writer of `DecisionRecord`s to a `DecisionStore`.

    Lifecycle: `start()` (opens the store, creates or migrates the schema, raises `ConfigError` if it
    cannot), `record()` any number of times from any thread or event loop, then `close()` / `aclose()`.
    Records passed to `record()` before `start()` wait in the queue and are written once it starts.
    `target` is a SQLite path or a `postgresql://` DSN; `store` replaces the store built from it.
    """

    #: Seconds between two warnings of one kind; events in between are summed into the next one.
    warn_interval: float = 10.0

    def __init__(self, target: str | Path, *, queue_size: int = 10000, log_prompts: bool = False,
                 batch_size: int = 2000, flush_interval_s: float = 0.05, retry_s: float = 30.0,
                 on_drop: Callable[[], None] | None = None, store: DecisionStore | None = None) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be positive")
        self.store = store if store is not None else open_store(str(target))
        self.where = self.store.where
        self.queue_size = queue_size
        self.log_prompts = log_prompts
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_s = retry_s
        self._on_drop = on_drop
        # (monotonic time of record(), record). deque.append/popleft are atomic; the lock only makes
        # "not closed, not full -> append" one step, so nothing is appended after close() drained.
        self._pending: collections.deque[tuple[float, DecisionRecord]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._max_lag = 0.0
        self._dropped_warned = 0
        self._last_warn = float("-inf")
        self._instance = ""
        self._down_since: float | None = None  # writer thread only: when the store became unavailable
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, on_drop: Callable[[], None] | None = None) -> "DecisionLog":
        """From `Config.decision_log` (router.settings.DecisionLogSettings)."""
        return cls(settings.path, queue_size=settings.queue_size, log_prompts=settings.log_prompts,
                   flush_interval_s=settings.flush_interval_ms / 1000.0, on_drop=on_drop)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the store and start the writer thread. Idempotent. Call it in the serving process (after
        any fork): the row's `instance` column is this process's host:pid."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DecisionLog is closed")
            if self._thread is not None:
                return
            self._start_writer()

    def _start_writer(self) -> None:
        """With the lock held (or no other thread yet): open the store, start the thread."""
        self.store.open()
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._thread = threading.Thread(target=self._run, name="thinkgate-decision-log", daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting records, write every accepted one, close the store.

        Returns True once everything is written and the store is closed; False if `timeout` ran out
        first (the writer keeps going in the background; `stats()["queued"]` shows what is left).
        Idempotent and safe to call from any thread except the writer itself.
        """
        with self._lock:
            self._closed = True
            if self._thread is None:
                if not self._pending:
                    return True
                try:  # records were accepted before start(): write them rather than lose them
                    self._start_writer()
                except ConfigError as exc:
                    lost = len(self._pending)
                    self._pending.clear()
                    self._failed += lost
                    logger.error("decision log %s: %d queued record(s) lost: %s", self.where, lost, exc)
                    return False
            thread = self._thread
        self._stop.set()
        assert thread is not None
        thread.join(timeout)
        return not thread.is_alive()

    async def aclose(self, timeout: float | None = None) -> bool:
        """`close()` in a worker thread, so draining the queue never blocks the event loop."""
        return await asyncio.to_thread(self.close, timeout)

    # -- hot path ----------------------------------------------------------------------------------

    def record(self, rec: DecisionRecord) -> bool:
        """Queue `rec` for writing. Never blocks, never raises; False means it was dropped (and counted)."""
        try:
            with self._lock:
                if not self._closed and len(self._pending) < self.queue_size:
                    self._pending.append((time.monotonic(), rec))
                    return True
                self._dropped += 1
                warn = self._take_warning()
            if self._on_drop is not None:
                self._on_drop()
            if warn is not None:
                logger.warning("decision log %s: dropped %d record(s) (queue full or log closed); "
                               "%d dropped in total", self.where, warn[0], warn[1])
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

    def stats(self) -> dict[str, Any]:
        """`written`, `dropped` (never queued), `failed` (refused or not writable), `queued` (waiting),
        `max_lag_ms` (the longest a record waited between `record()` and its commit)."""
        with self._lock:
            return {"written": self._written, "dropped": self._dropped, "failed": self._failed,
                    "queued": len(self._pending), "max_lag_ms": round(self._max_lag * 1000.0, 3)}

    # -- writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                began = time.monotonic()
                stopping = self._stop.is_set()
                self._flush()
                if stopping and not self._pending:
                    return
                # Sleep out the rest of the interval (not at all if the flush took longer); close() wakes it.
                self._stop.wait(max(0.0, self.flush_interval_s - (time.monotonic() - began)))
        finally:
            try:
                self.store.close()
            except Exception:
                logger.exception("decision log %s: error while closing", self.where)

    def _flush(self) -> None:
        pending, take = self._pending, self._pending.popleft
        while pending:
            batch = [take() for _ in range(min(len(pending), self.batch_size))]
            written, failed = self._write(batch)
            lag = time.monotonic() - batch[0][0]
            with self._lock:
                self._written += written
                self._failed += failed
                if written and lag > self._max_lag:
                    self._max_lag = lag

    def _write(self, batch: list[tuple[float, DecisionRecord]]) -> tuple[int, int]:
        """Write one batch: (written, failed). Transient errors are retried for up to `retry_s`; a batch
        the database refuses is retried row by row, so one bad record costs one row."""
        rows = [self._row(rec) for _, rec in batch]
        delay = 0.05
        while True:
            try:
                self.store.write_batch(rows)
                self._down_since = None
                return len(rows), 0
            except TransientStoreError as exc:
                # `retry_s` bounds one outage, not each batch: once it is over, later batches fail fast
                # (one attempt each) until a write succeeds, so a shutdown never waits outage x batches.
                if self._down_since is None:
                    self._down_since = time.monotonic()
                if time.monotonic() + delay > self._down_since + self.retry_s:
                    logger.error("decision log %s: %d record(s) lost, the database stayed unavailable for "
                                 "%.0f s: %s", self.where, len(rows), self.retry_s, exc)
                    return 0, len(rows)
                logger.warning("decision log %s: retrying a batch of %d: %s", self.where, len(rows), exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except Exception:  # the writer thread must survive anything a batch can throw
                return self._write_one_by_one(rows)

    def _write_one_by_one(self, rows: list[list[Any]]) -> tuple[int, int]:
        written = failed = 0
        for row in rows:
            for attempt in (row, _cleaned(row)):
                try:
                    self.store.write_batch([attempt])
                    written += 1
                    break
                except Exception as exc:
                    error = exc
            else:
                failed += 1
                logger.error("decision log %s: could not write a record: %s", self.where, error)
        return written, failed

    def _row(self, rec: DecisionRecord) -> list[Any]:
        try:
            row = list(_row_of(rec))
        except AttributeError:
            return [None] * len(COLUMNS)  # not a DecisionRecord: fails NOT NULL, counted as failed
        row[_STREAM_INDEX] = int(bool(row[_STREAM_INDEX]))
        if not self.log_prompts:
            row[_PROMPT_INDEX] = None
        row.append(self._instance)
        return row


def _cleaned(row: Sequence[Any]) -> list[Any]:
    """`row` with text every database accepts: lone surrogates and NUL bytes become U+FFFD."""
    return [v.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\x00", "\ufffd")
            if isinstance(v, str) else v for v in row]


# -- export and migration ----------------------------------------------------------------------------


def export_jsonl(target: str | Path, out: TextIO, *, since: float | None = None,
                 route: str | None = None) -> int:
    """Write the log's rows as JSON lines (every column plus `id`), oldest first; return the row count.

    Reads one consistent snapshot, so it works while proxies are writing, and never creates anything.
    Raises FileNotFoundError if a SQLite `target` does not exist and ConfigError if it is not a thinkgate
    decision log at this schema version (or cannot be reached).
    """
    count = 0
    for obj in open_store(str(target)).read(since=since, route=route):
        out.write(json.dumps(obj) + "\n")
        count += 1
    return count


def migrate(target: str | Path) -> tuple[int | None, int]:
    """Bring an existing decision log to this thinkgate's schema: (version before, version after)."""
    return open_store(str(target)).migrate()
