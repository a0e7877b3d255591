"""Where decision-log rows are stored: a small protocol and its SQLite and PostgreSQL implementations.

The writer in `router.decision_log` owns the queue, the batching and the loss accounting; a store only
knows how to open a database (creating or migrating its schema), write one batch of rows in one
transaction, read rows back for export, and close. `open_store(target)` picks the implementation:
`postgresql://...` (or `postgres://...`) is a PostgreSQL DSN, anything else a SQLite file path.

Errors a store raises while writing:
- `TransientStoreError`: the database is busy or unreachable; the same batch may succeed later.
- anything else: this batch cannot be written as it is (e.g. a value the database refuses).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Protocol, Sequence

from router.errors import ConfigError

from .schema import COLUMNS, SCHEMA_VERSION

__all__ = ["COLUMNS", "SCHEMA_VERSION", "DecisionStore", "TransientStoreError", "is_postgres", "open_store",
           "redact"]

Row = Sequence[Any]


class TransientStoreError(Exception):
    """The database is busy or unreachable; retrying the same batch later may succeed."""


class DecisionStore(Protocol):
    #: Where the rows go, safe to print (no password).
    where: str

    def open(self) -> None:
        """Connect for writing and bring the schema to `SCHEMA_VERSION`. Raises ConfigError if it cannot."""

    def migrate(self) -> tuple[int | None, int]:
        """Apply missing migrations (idempotent, safe with concurrent callers): (version before, after)."""

    def write_batch(self, rows: Sequence[Row]) -> None:
        """Insert `rows` (values in `COLUMNS` order) in one transaction: all of them or none."""

    def read(self, *, since: float | None = None, route: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows as dicts (`id` and every column), oldest first, from one consistent snapshot.

        Raises FileNotFoundError if the database does not exist and ConfigError if it is not a thinkgate
        decision log at this schema version. Never creates anything.
        """

    def close(self) -> None:
        """Release connections. Idempotent."""


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def redact(target: str) -> str:
    """`target` with any password replaced by `***` (for messages and logs)."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", target)


def open_store(target: str) -> DecisionStore:
    """The store for `target` (not yet opened). Importing the PostgreSQL driver happens only for a DSN."""
    if is_postgres(target):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(f"decision log {redact(target)} needs the PostgreSQL driver ({exc.name} is not "
                              "installed): pip install 'thinkgate[postgres]'") from None
        return PostgresStore(target)
    from .sqlite import SqliteStore

    return SqliteStore(target)


def select_sql(since: float | None, route: str | None, placeholder: str) -> tuple[str, list[Any]]:
    """The export's query and its parameters, shared by both stores (`placeholder`: `?` or `%s`)."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append(f"time >= {placeholder}")
        params.append(since)
    if route is not None:
        where.append(f"route = {placeholder}")
        params.append(route)
    filters = " WHERE " + " AND ".join(where) if where else ""
    return f"SELECT id, {', '.join(COLUMNS)} FROM decisions{filters} ORDER BY time, id", params


def as_dict(row: Sequence[Any]) -> dict[str, Any]:
    obj = dict(zip(("id", *COLUMNS), row))
    obj["stream"] = bool(obj["stream"])
    return obj
