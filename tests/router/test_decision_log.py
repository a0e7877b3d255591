"""Decision log: durability on shutdown, bounded queue accounting, prompt privacy, export, CLI.

Tests that take the `target` fixture run against SQLite and against a real PostgreSQL server (skipped
with the reason when $THINKGATE_TEST_POSTGRES_DSN is not set).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from router.decision_log import SCHEMA_VERSION, DecisionLog, DecisionRecord, export_jsonl
from router.errors import ConfigError
from router.log_cli import main, parse_since

FIELDS = {"id", "time", "request_id", "route", "upstream_model", "policy", "decision", "score",
          "decision_ms", "decision_source", "fallback_reason", "upstream_ms", "prompt_tokens",
          "completion_tokens", "reasoning_tokens", "status", "error", "stream", "prompt", "decision_tokens",
          "score_method", "guard", "instance"}


def make(i: int = 0, **overrides) -> DecisionRecord:
    values = dict(time=1_700_000_000.0 + i, request_id=f"req-{i}", route="fast", upstream_model="gpt-x",
                  policy="classifier", decision="think" if i % 2 else "direct", score=0.25,
                  decision_ms=0.05, decision_source="policy", status=200, stream=False,
                  prompt_tokens=10, completion_tokens=20, reasoning_tokens=None, prompt=f"prompt {i}")
    values.update(overrides)
    return DecisionRecord(**values)


def export(target: str | Path, **kw) -> list[dict]:
    buf = io.StringIO()
    n = export_jsonl(target, buf, **kw)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert n == len(rows)
    return rows


class BlockedLog(DecisionLog):
    """A log whose writer stops inside its first batch until `release` is set."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def _write(self, batch):
        self.entered.set()
        assert self.release.wait(10), "test never released the writer"
        return super()._write(batch)


def counts(log: DecisionLog) -> dict[str, int]:
    """stats() without the timing figure."""
    return {k: v for k, v in log.stats().items() if k != "max_lag_ms"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "decisions.sqlite3"


@pytest.fixture
def target(log_target: str) -> str:
    """A fresh decision-log target on each store (tests/router/conftest.py)."""
    return log_target


# -- writing ---------------------------------------------------------------------------------------


def test_records_are_written_and_exported_in_time_order(target: str) -> None:
    log = DecisionLog(target)
    log.start()
    assert log.record(make(2, stream=True, upstream_ms=812.5, reasoning_tokens=30))
    assert log.record(make(0, score=None, decision_source="fallback", fallback_reason="timeout",
                           status=502, error="upstream unavailable"))
    assert log.record(make(1))
    assert log.close()
    assert counts(log) == {"written": 3, "dropped": 0, "failed": 0, "queued": 0}

    rows = export(target)
    assert [r["request_id"] for r in rows] == ["req-0", "req-1", "req-2"]
    assert all(set(r) == FIELDS for r in rows)
    first, _, last = rows
    assert first["score"] is None and first["fallback_reason"] == "timeout" and first["status"] == 502
    assert first["error"] == "upstream unavailable" and first["stream"] is False
    assert last["stream"] is True and last["upstream_ms"] == 812.5 and last["reasoning_tokens"] == 30
    assert last["decision"] == "direct" and rows[1]["decision"] == "think"


def test_schema_is_versioned_indexed_and_in_wal_mode(db: Path) -> None:
    log = DecisionLog(db)
    log.start()
    log.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexed = {row[2] for name, in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='decisions'")
            for row in conn.execute(f"PRAGMA index_info({name})")}
        assert {"time", "route"} <= indexed
    finally:
        conn.close()
    # Reopening an existing log appends to it.
    again = DecisionLog(db)
    again.start()
    again.record(make(1))
    again.close()
    assert len(export(db)) == 1


def test_newer_schema_version_is_refused(db: Path) -> None:
    log = DecisionLog(db)
    log.start()
    log.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        DecisionLog(db).start()
    with pytest.raises(ConfigError, match="schema version 99"):
        export_jsonl(db, io.StringIO())


def test_unusable_path_fails_at_start_not_on_record(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "missing-dir" / "log.sqlite3")
    with pytest.raises(ConfigError, match="does not exist"):
        log.start()
    not_a_db = tmp_path / "junk.sqlite3"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError):
        DecisionLog(not_a_db).start()


def test_all_records_present_after_close_under_thread_load(target: str) -> None:
    log = DecisionLog(target, batch_size=64)
    log.start()
    threads, per_thread = 8, 625
    barrier = threading.Barrier(threads)
    results: list[bool] = []

    def worker(t: int) -> None:
        barrier.wait()
        ok = [log.record(make(t * per_thread + i)) for i in range(per_thread)]
        results.extend(ok)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert log.close()

    assert all(results) and len(results) == 5000
    assert counts(log) == {"written": 5000, "dropped": 0, "failed": 0, "queued": 0}
    rows = export(target)
    assert len({r["request_id"] for r in rows}) == 5000
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_all_records_present_after_aclose_under_asyncio_load(target: str) -> None:
    log = DecisionLog(target)
    log.start()

    async def task(t: int) -> None:
        for i in range(20):
            assert log.record(make(t * 20 + i))
            await asyncio.sleep(0)

    async def scenario() -> bool:
        await asyncio.gather(*(task(t) for t in range(100)))
        return await log.aclose()

    assert asyncio.run(scenario())
    assert log.stats()["written"] == 2000
    assert len(export(target)) == 2000


def test_records_queued_before_start_are_written_by_close(target: str) -> None:
    log = DecisionLog(target)
    assert log.record(make(0)) and log.record(make(1))
    assert log.close()
    assert [r["request_id"] for r in export(target)] == ["req-0", "req-1"]


def test_close_without_records_or_start_creates_nothing(db: Path) -> None:
    log = DecisionLog(db)
    assert log.close() and log.close()
    assert not db.exists()


# -- losses are counted, never silent --------------------------------------------------------------


def test_full_queue_drops_are_counted_reported_and_calls_on_drop(target: str, caplog) -> None:
    drops: list[int] = []
    log = BlockedLog(target, queue_size=3, on_drop=lambda: drops.append(1))
    log.start()
    assert log.record(make(0))
    assert log.entered.wait(10)  # the writer holds record 0 and is stuck: the queue is now empty
    assert all(log.record(make(i)) for i in (1, 2, 3))  # fills the queue
    with caplog.at_level(logging.WARNING, logger="router.decision_log"):
        assert not any(log.record(make(i)) for i in range(4, 9))
    assert counts(log) == {"written": 0, "dropped": 5, "failed": 0, "queued": 3}
    assert len(drops) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped" in warnings[0].getMessage()  # rate-limited

    log.release.set()
    assert log.close()
    assert counts(log) == {"written": 4, "dropped": 5, "failed": 0, "queued": 0}
    assert [r["request_id"] for r in export(target)] == ["req-0", "req-1", "req-2", "req-3"]


def test_record_after_close_is_dropped_and_counted(target: str) -> None:
    log = DecisionLog(target)
    log.start()
    log.close()
    assert log.record(make(0)) is False
    assert log.stats()["dropped"] == 1


def test_failing_on_drop_callback_never_reaches_the_caller(db: Path) -> None:
    def boom() -> None:
        raise RuntimeError("metrics broke")

    log = DecisionLog(db, queue_size=1, on_drop=boom)
    assert log.record(make(0))
    assert log.record(make(1)) is False  # no start(): the queue stays full
    assert log.stats()["dropped"] == 1
    log.close()


def test_a_bad_record_costs_one_row_not_the_writer(target: str) -> None:
    log = DecisionLog(target)
    assert log.record(make(0))
    assert log.record(object())  # type: ignore[arg-type]  # a caller bug
    assert log.record(make(1, request_id=None))  # type: ignore[arg-type]  # violates NOT NULL
    assert log.record(make(2))
    log.start()
    assert log.close()
    assert counts(log) == {"written": 2, "dropped": 0, "failed": 2, "queued": 0}
    assert [r["request_id"] for r in export(target)] == ["req-0", "req-2"]


@pytest.mark.parametrize("bad", [None, 7], ids=["all-good", "bad-row-in-a-later-chunk"])
def test_a_batch_of_several_insert_chunks_is_one_transaction(db: Path, monkeypatch, bad: int | None) -> None:
    """A batch up to one chunk is a single autocommit INSERT; a longer one is BEGIN IMMEDIATE, one INSERT per
    chunk, COMMIT. A bad row in any chunk rolls back the whole batch, then the rows go one by one."""
    import router.logstore.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHUNK_ROWS", 3)
    log = DecisionLog(db, batch_size=10)
    for i in range(10):
        assert log.record(make(i, request_id=None) if i == bad else make(i))  # type: ignore[arg-type]
    log.start()
    assert log.close()
    assert log.store._chunk == 3  # type: ignore[attr-defined]
    expected = [f"req-{i}" for i in range(10) if i != bad]
    assert counts(log) == {"written": len(expected), "dropped": 0, "failed": 10 - len(expected), "queued": 0}
    assert [r["request_id"] for r in export(db)] == expected


# -- prompts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_prompts", [False, True])
def test_prompt_is_stored_only_when_configured(db: Path, log_prompts: bool) -> None:
    log = DecisionLog(db, log_prompts=log_prompts)
    log.start()
    log.record(make(0, prompt="my secret"))
    log.close()
    (row,) = export(db)
    assert row["prompt"] == ("my secret" if log_prompts else None)
    if not log_prompts:  # not hidden somewhere else in the file either
        assert b"my secret" not in db.read_bytes()


# -- export ----------------------------------------------------------------------------------------


def test_export_filters_by_time_and_route(target: str) -> None:
    log = DecisionLog(target)
    for i in range(6):
        log.record(make(i, route="fast" if i % 2 else "smart"))
    log.close()
    since = 1_700_000_000.0 + 2
    assert [r["request_id"] for r in export(target, since=since)] == ["req-2", "req-3", "req-4", "req-5"]
    assert [r["request_id"] for r in export(target, route="fast")] == ["req-1", "req-3", "req-5"]
    assert [r["request_id"] for r in export(target, since=since, route="smart")] == ["req-2", "req-4"]
    assert export(target, route="nope") == []


def test_export_reads_while_the_proxy_is_writing(target: str) -> None:
    log = DecisionLog(target)
    log.start()
    for i in range(10):
        log.record(make(i))
    deadline = time.monotonic() + 10  # a safety net only; no timing is asserted
    while log.stats()["written"] < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(export(target)) == 10  # writer connection still open
    log.record(make(10))
    log.close()
    assert len(export(target)) == 11


def test_export_of_missing_or_foreign_db(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        export_jsonl(tmp_path / "nope.sqlite3", io.StringIO())
    assert not (tmp_path / "nope.sqlite3").exists()
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ConfigError, match="not a thinkgate decision log"):
        export_jsonl(other, io.StringIO())


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def filled_db(db: Path) -> Path:
    log = DecisionLog(db)
    for i in range(4):
        log.record(make(i, route="fast" if i % 2 else "smart"))
    log.close()
    return db


def test_cli_export_to_stdout(filled_db: Path, capsys) -> None:
    assert main(["export", "--db", str(filled_db)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == [f"req-{i}" for i in range(4)]
    assert "exported 4 record(s)" in err


def test_cli_export_to_file_with_filters(filled_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    # 1_700_000_002 == 2023-11-14T22:13:22Z
    code = main(["export", "--db", str(filled_db), "--out", str(out), "--route", "smart",
                 "--since", "2023-11-14T22:13:22Z"])
    assert code == 0
    assert [json.loads(line)["request_id"] for line in out.read_text().splitlines()] == ["req-2"]


def test_cli_default_db_from_env_then_cwd(filled_db: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("THINKGATE_DECISION_LOG", str(filled_db))
    assert main(["export", "--route", "fast"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    monkeypatch.delenv("THINKGATE_DECISION_LOG")
    monkeypatch.chdir(tmp_path)
    assert main(["export"]) == 2  # ./thinkgate-decisions.sqlite3 does not exist
    assert "thinkgate-decisions.sqlite3" in capsys.readouterr().err
    filled_db.rename(tmp_path / "thinkgate-decisions.sqlite3")
    assert main(["export"]) == 0


def test_cli_errors_are_messages_with_exit_2(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.sqlite3"
    assert main(["export", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "decision log not found" in err and "Traceback" not in err

    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 200)
    assert main(["export", "--db", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "not a thinkgate decision log" in err and "Traceback" not in err

    assert main(["export", "--db", str(junk), "--since", "yesterday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["export", "--help"]) == 0


def test_parse_since_accepts_unix_and_iso() -> None:
    assert parse_since("1700000000") == 1_700_000_000.0
    assert parse_since("1700000000.5") == 1_700_000_000.5
    assert parse_since("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert parse_since("2023-11-14T22:13:20") == 1_700_000_000.0  # naive = UTC
    assert parse_since("2023-11-14T23:13:20+01:00") == 1_700_000_000.0
    assert parse_since("2023-11-14") == 1_699_920_000.0


# -- stores: migrations, several writers, hostile text, unavailable databases -------------------------


def _make_v1(target: str) -> None:
    """A decision log as thinkgate wrote it before schema version 2 (one row, no `instance` column)."""
    from router.logstore import schema

    v1 = schema.MIGRATIONS[0]
    row = ("1700000000.0", "'old-1'", "'fast'", "'m'", "'never'", "'direct'", "0.5", "'policy'", "200", "0")
    insert = ("INSERT INTO decisions (time, request_id, route, upstream_model, policy, decision, "
              f"decision_ms, decision_source, status, stream) VALUES ({', '.join(row)})")
    statements = [schema.META_DDL, *v1.statements("postgresql" if target.startswith("postgres") else "sqlite"),
                  insert, "INSERT INTO meta (key, value) VALUES ('schema_version', '1')"]
    if target.startswith("postgres"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)
    else:
        conn = sqlite3.connect(target)
        with conn:
            for stmt in statements:
                conn.execute(stmt)
        conn.close()


def test_an_old_log_is_migrated_once_keeping_its_rows(target: str, capsys) -> None:
    _make_v1(target)
    with pytest.raises(ConfigError, match="thinkgate log migrate"):
        export(target)  # a reader never changes the schema; it says what to do
    assert main(["migrate", "--db", target]) == 0
    assert f"migrated from 1 to schema version {SCHEMA_VERSION}" in capsys.readouterr().err
    assert main(["migrate", "--db", target]) == 0  # idempotent
    assert f"already at schema version {SCHEMA_VERSION}" in capsys.readouterr().err

    log = DecisionLog(target)
    log.start()  # the proxy's start migrates too (here: nothing left to do)
    log.record(make(5))
    assert log.close()
    old, new = export(target)
    assert old["request_id"] == "old-1" and old["instance"] is None
    assert new["request_id"] == "req-5" and new["instance"].endswith(f":{os.getpid()}")


def test_concurrent_starts_migrate_a_fresh_log_once(target: str) -> None:
    from router.logstore import open_store

    stores = [open_store(target) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store) -> None:
        barrier.wait()
        try:
            store.open()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for store in stores:
        store.close()
    assert errors == []
    assert export(target) == []


def test_hostile_text_is_cleaned_not_lost(target: str) -> None:
    log = DecisionLog(target, log_prompts=True)
    log.start()
    log.record(make(0, prompt="nul \x00 byte", error="lone \ud800 surrogate"))
    log.record(make(1))
    assert log.close()
    assert counts(log)["written"] == 2 and counts(log)["failed"] == 0
    first, _ = export(target)
    assert first["prompt"] == "nul \ufffd byte" and first["error"].startswith("lone ")


def test_a_busy_database_is_retried_not_dropped(db: Path) -> None:
    from router.logstore import TransientStoreError, open_store

    class Flaky:
        """The real SQLite store, busy for its first two batches."""

        def __init__(self) -> None:
            self.real = open_store(str(db))
            self.where = self.real.where
            self.failures = 2

        def write_batch(self, rows):
            if self.failures:
                self.failures -= 1
                raise TransientStoreError("database is locked")
            self.real.write_batch(rows)

        def __getattr__(self, name):
            return getattr(self.real, name)

    log = DecisionLog(db, store=Flaky())  # type: ignore[arg-type]
    log.start()
    for i in range(3):
        log.record(make(i))
    assert log.close()
    assert counts(log) == {"written": 3, "dropped": 0, "failed": 0, "queued": 0}
    assert len(export(db)) == 3


def test_a_database_that_stays_down_costs_counted_rows(db: Path, caplog) -> None:
    from router.logstore import TransientStoreError, open_store

    class Down:
        def __init__(self) -> None:
            self.real = open_store(str(db))
            self.where = self.real.where

        def write_batch(self, rows):
            raise TransientStoreError("connection refused")

        def __getattr__(self, name):
            return getattr(self.real, name)

    log = DecisionLog(db, store=Down(), retry_s=1.0, batch_size=1)  # type: ignore[arg-type]
    log.start()
    for i in range(5):
        log.record(make(i))
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="router.decision_log"):
        assert log.close()
    assert time.monotonic() - began < 4.0  # one outage of retry_s, not retry_s per batch of one
    assert counts(log) == {"written": 0, "dropped": 0, "failed": 5, "queued": 0}
    assert any("stayed unavailable" in r.getMessage() for r in caplog.records)


def test_postgres_connections_killed_by_the_server_cost_no_rows(log_target: str) -> None:
    """What a server restart or an idle-connection reaper does to the writer's pooled connections: they are
    dead when the next batch comes. The batch is retried on a new connection; nothing is lost or failed."""
    if not log_target.startswith("postgres"):
        pytest.skip("PostgreSQL only")
    import psycopg

    from support.faulty_upstream import wait_until

    log = DecisionLog(log_target, flush_interval_s=0.02)
    log.start()
    try:
        assert log.record(make(0))
        assert wait_until(lambda: log.stats()["written"] == 1)
        with psycopg.connect(log_target, autocommit=True) as admin:
            killed = admin.execute("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()) t").fetchone()
        assert killed and killed[0] >= 1  # the pool's connection(s)
        for i in range(1, 4):
            assert log.record(make(i))
            time.sleep(0.05)
    finally:
        assert log.close(30)
    assert counts(log) == {"written": 4, "dropped": 0, "failed": 0, "queued": 0}
    assert [r["request_id"] for r in export(log_target)] == [f"req-{i}" for i in range(4)]


def test_unreachable_postgres_fails_at_start_with_a_readable_error(capsys) -> None:
    pytest.importorskip("psycopg")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"postgresql://thinkgate:s3cret@127.0.0.1:{port}/nope"
    log = DecisionLog(dsn)
    with pytest.raises(ConfigError, match="cannot connect to decision log") as info:
        log.start()
    assert "s3cret" not in info.value.message and "***" in info.value.message
    assert main(["export", "--db", dsn]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and "s3cret" not in err and "Traceback" not in err


def _write_from_a_process(target: str, worker: int, n: int) -> None:
    log = DecisionLog(target, flush_interval_s=0.005, batch_size=50)
    log.start()
    for i in range(n):
        log.record(make(worker * n + i, request_id=f"w{worker}-{i}"))
        if i % 100 == 0:
            time.sleep(0.002)  # interleave the two processes' transactions
    assert log.close()


def test_two_writer_processes_share_one_log(target: str) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    n = 1500
    procs = [ctx.Process(target=_write_from_a_process, args=(target, w, n)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    rows = export(target)
    assert len(rows) == 2 * n and len({r["request_id"] for r in rows}) == 2 * n
    assert len({r["instance"] for r in rows}) == 2


def test_settings_accept_a_dsn_as_shorthand_and_from_the_environment() -> None:
    from router.settings import apply_env, parse_config

    dsn = "postgresql://tg@db.internal/thinkgate"
    assert parse_config({"decision_log": dsn}).decision_log.path == dsn
    overlaid = parse_config(apply_env({"decision_log": dsn}, {"THINKGATE_LOG_PROMPTS": "true"})).decision_log
    assert overlaid.path == dsn and overlaid.log_prompts
    cfg = parse_config(apply_env({}, {"THINKGATE_DECISION_LOG": dsn}))
    assert cfg.decision_log.path == dsn and cfg.decision_log.enabled
    assert parse_config({"decision_log": {"path": "x.sqlite3", "flush_interval_ms": 20}}).decision_log.flush_interval_ms == 20
    with pytest.raises(ConfigError, match="flush_interval_ms"):
        parse_config({"decision_log": {"flush_interval_ms": 0}})


def test_cli_exports_either_store(target: str, capsys) -> None:
    log = DecisionLog(target)
    for i in range(3):
        log.record(make(i))
    log.close()
    assert main(["export", "--db", target, "--since", "1700000001"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["req-1", "req-2"]
    assert "exported 2 record(s)" in err
