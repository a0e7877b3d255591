"""A fresh PostgreSQL database per test, on the server named by $THINKGATE_TEST_POSTGRES_DSN.

`.ci/run` installs and starts a server and exports the variable; elsewhere the tests that need it skip.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DSN_ENV = "THINKGATE_TEST_POSTGRES_DSN"


def server_dsn() -> str:
    """The server's DSN, or skip the test with the reason."""
    dsn = os.environ.get(DSN_ENV, "")
    if not dsn:
        pytest.skip(f"${DSN_ENV} is not set, so there is no PostgreSQL server to test against "
                    "(.ci/run installs and starts one)")
    if not dsn.startswith(("postgresql://", "postgres://")):
        pytest.fail(f"${DSN_ENV} must be a postgresql:// URL, got {dsn!r}")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")
    return dsn


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its DSN, drop it afterwards."""
    import psycopg

    dsn = server_dsn()
    name = "thinkgate_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]  # name is ours
    parts = urlsplit(dsn)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
