"""Fixtures for the decision-log and worker tests: a decision-log target on each store, and the benchmark's
fast mock upstream as its own process (for tests that load a real proxy process)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.services import Service, Services, free_port
from support.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def log_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh decision-log target: a SQLite path, or a new database on the test PostgreSQL server
    (skipped with the reason when $THINKGATE_TEST_POSTGRES_DSN is not set)."""
    if request.param == "sqlite":
        yield str(tmp_path / "decisions.sqlite3")
    else:
        with fresh_database() as dsn:
            yield dsn


@pytest.fixture(scope="session")
def mock_process_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`benchmarks.mock_upstream_server` on a loopback port, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("mock") / "mock.log"
    with Services() as services:
        yield services.start(Service("mock", [sys.executable, "-m", "benchmarks.mock_upstream_server",
                                              "--port", str(port)], port, log)).url
