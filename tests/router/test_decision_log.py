"""Decision log: durability on shutdown, bounded queue accounting, prompt privacy, export, CLI."""

from __future__ import annotations

import asyncio
import io
import json
import logging
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
          "completion_tokens", "reasoning_tokens", "status", "error", "stream", "prompt"}


def make(i: int = 0, **overrides) -> DecisionRecord:
    values = dict(time=1_700_000_000.0 + i, request_id=f"req-{i}", route="fast", upstream_model="gpt-x",
                  policy="classifier", decision="think" if i % 2 else "direct", score=0.25,
                  decision_ms=0.05, decision_source="policy", status=200, stream=False,
                  prompt_tokens=10, completion_tokens=20, reasoning_tokens=None, prompt=f"prompt {i}")
    values.update(overrides)
    return DecisionRecord(**values)


def export(path: Path, **kw) -> list[dict]:
    buf = io.StringIO()
    n = export_jsonl(path, buf, **kw)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert n == len(rows)
    return rows


class BlockedLog(DecisionLog):
    """A log whose writer stops inside its first batch until `release` is set."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def _write(self, conn, batch):
        self.entered.set()
        assert self.release.wait(10), "test never released the writer"
        super()._write(conn, batch)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "decisions.sqlite3"


# -- writing ---------------------------------------------------------------------------------------


def test_records_are_written_and_exported_in_time_order(db: Path) -> None:
    log = DecisionLog(db)
    log.start()
    assert log.record(make(2, stream=True, upstream_ms=812.5, reasoning_tokens=30))
    assert log.record(make(0, score=None, decision_source="fallback", fallback_reason="timeout",
                           status=502, error="upstream unavailable"))
    assert log.record(make(1))
    assert log.close()
    assert log.stats() == {"written": 3, "dropped": 0, "failed": 0, "queued": 0}

    rows = export(db)
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


def test_all_records_present_after_close_under_thread_load(db: Path) -> None:
    log = DecisionLog(db, batch_size=64)
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
    assert log.stats() == {"written": 5000, "dropped": 0, "failed": 0, "queued": 0}
    rows = export(db)
    assert len({r["request_id"] for r in rows}) == 5000
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_all_records_present_after_aclose_under_asyncio_load(db: Path) -> None:
    log = DecisionLog(db)
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
    assert len(export(db)) == 2000


def test_records_queued_before_start_are_written_by_close(db: Path) -> None:
    log = DecisionLog(db)
    assert log.record(make(0)) and log.record(make(1))
    assert log.close()
    assert [r["request_id"] for r in export(db)] == ["req-0", "req-1"]


def test_close_without_records_or_start_creates_nothing(db: Path) -> None:
    log = DecisionLog(db)
    assert log.close() and log.close()
    assert not db.exists()


# -- losses are counted, never silent --------------------------------------------------------------


def test_full_queue_drops_are_counted_reported_and_calls_on_drop(db: Path, caplog) -> None:
    drops: list[int] = []
    log = BlockedLog(db, queue_size=3, on_drop=lambda: drops.append(1))
    log.start()
    assert log.record(make(0))
    assert log.entered.wait(10)  # the writer holds record 0 and is stuck: the queue is now empty
    assert all(log.record(make(i)) for i in (1, 2, 3))  # fills the queue
    with caplog.at_level(logging.WARNING, logger="router.decision_log"):
        assert not any(log.record(make(i)) for i in range(4, 9))
    assert log.stats() == {"written": 0, "dropped": 5, "failed": 0, "queued": 3}
    assert len(drops) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped" in warnings[0].getMessage()  # rate-limited

    log.release.set()
    assert log.close()
    assert log.stats() == {"written": 4, "dropped": 5, "failed": 0, "queued": 0}
    assert [r["request_id"] for r in export(db)] == ["req-0", "req-1", "req-2", "req-3"]


def test_record_after_close_is_dropped_and_counted(db: Path) -> None:
    log = DecisionLog(db)
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


def test_a_bad_record_costs_one_row_not_the_writer(db: Path) -> None:
    log = DecisionLog(db)
    assert log.record(make(0))
    assert log.record(object())  # type: ignore[arg-type]  # a caller bug
    assert log.record(make(1, request_id=None))  # type: ignore[arg-type]  # violates NOT NULL
    assert log.record(make(2))
    log.start()
    assert log.close()
    assert log.stats() == {"written": 2, "dropped": 0, "failed": 2, "queued": 0}
    assert [r["request_id"] for r in export(db)] == ["req-0", "req-2"]


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


def test_export_filters_by_time_and_route(db: Path) -> None:
    log = DecisionLog(db)
    for i in range(6):
        log.record(make(i, route="fast" if i % 2 else "smart"))
    log.close()
    since = 1_700_000_000.0 + 2
    assert [r["request_id"] for r in export(db, since=since)] == ["req-2", "req-3", "req-4", "req-5"]
    assert [r["request_id"] for r in export(db, route="fast")] == ["req-1", "req-3", "req-5"]
    assert [r["request_id"] for r in export(db, since=since, route="smart")] == ["req-2", "req-4"]
    assert export(db, route="nope") == []


def test_export_reads_while_the_proxy_is_writing(db: Path) -> None:
    log = DecisionLog(db)
    log.start()
    for i in range(10):
        log.record(make(i))
    deadline = time.monotonic() + 10  # a safety net only; no timing is asserted
    while log.stats()["written"] < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(export(db)) == 10  # writer connection still open
    log.record(make(10))
    log.close()
    assert len(export(db)) == 11


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
