"""The decision log under load and a signal, on a real proxy process (benchmarks/durability.py drives it).

The stated bound (router/decision_log.py): a kill -9 loses at most the records of the last 500 ms
(flush interval 50 ms plus one batch's commit, with room for a starved CPU); SIGTERM loses none. Every 200
answer is looked up in the log by its `x-request-id`.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.durability import DEFAULT_BOUND_MS, kill_run
from benchmarks.services import Service, Services, free_port
from support.postgres import fresh_database

pytest.importorskip("aiohttp")


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("mock") / "mock.log"
    with Services() as services:
        yield services.start(Service("mock", [sys.executable, "-m", "benchmarks.mock_upstream_server",
                                              "--port", str(port)], port, log)).url


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "decisions.sqlite3")
    else:
        with fresh_database() as dsn:
            yield dsn


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_rows_against_answers_after_a_signal_under_load(sig, target: str, mock_url: str, tmp_path: Path) -> None:
    result = kill_run(sig=sig, target=target, workdir=tmp_path, upstream=mock_url, kill_after_s=2.0,
                      processes=1, connections=16)
    assert result.answered_200 > 100, result  # there was load when the signal came
    if sig is signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal (exit -15)
        assert result.proxy_exit in (0, -signal.SIGTERM) and result.missing == 0, result
    else:
        assert result.proxy_exit == -signal.SIGKILL
        assert result.missing_beyond_bound == 0, (
            f"{result.missing} rows missing, the oldest answered {result.oldest_missing_ms_before_kill} ms "
            f"before the kill; the bound is {DEFAULT_BOUND_MS} ms")
