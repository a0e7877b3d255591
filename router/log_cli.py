"""`thinkgate log ...`: work with the decision log from the command line.

    thinkgate log export [--db PATH|DSN] [--out FILE|-] [--since ISO8601|UNIX] [--route ALIAS]
    thinkgate log migrate [--db PATH|DSN]

`--db` is a SQLite file or a PostgreSQL DSN (postgresql://user:pass@host/db); both hold the same schema.

Exit codes: 0 success; 1 the output could not be written; 2 usage error, or a missing, unreadable or
non-thinkgate database.
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from router.decision_log import export_jsonl, migrate
from router.errors import ConfigError
from router.logstore import is_postgres, redact
from router.settings import ENV_PREFIX, DecisionLogSettings

__all__ = ["DEFAULT_DB", "ENV_DB", "main", "parse_since"]

ENV_DB = ENV_PREFIX + "DECISION_LOG"  # the variable `router.settings` reads for `decision_log.path`
DEFAULT_DB = DecisionLogSettings().path
PROG = "thinkgate log"


def parse_since(value: str) -> float:
    """A UNIX timestamp or an ISO 8601 date/time (naive values are taken as UTC) -> UNIX seconds."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a UNIX timestamp or ISO 8601 time: {value!r} (e.g. 1735689600 or 2025-01-01T00:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Inspect thinkgate's decision log.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    export = sub.add_parser("export", help="write the log as JSON lines, oldest first",
                            description="Write the decision log as JSON lines (one object per request, "
                                        "oldest first). Safe to run while the proxy is writing.")
    export.add_argument("--out", default="-", help="output file, or - for stdout (default)")
    export.add_argument("--since", type=parse_since, default=None,
                        help="only records at or after this time: UNIX seconds or ISO 8601 (naive = UTC)")
    export.add_argument("--route", default=None, help="only records for this model alias")
    upgrade = sub.add_parser("migrate", help="bring a decision log to this thinkgate's schema version",
                             description="Apply the schema migrations a decision log still needs (the "
                                         "proxy also does this when it starts). Safe to run twice.")
    for command in (export, upgrade):
        command.add_argument("--db", default=None,
                             help=f"SQLite file or postgresql:// DSN (default: ${ENV_DB} or ./{DEFAULT_DB})")
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    db = args.db or os.environ.get(ENV_DB) or DEFAULT_DB
    if not is_postgres(db) and not Path(db).is_file():
        _error(f"decision log not found: {db} (pass --db or set {ENV_DB})")
        return 2
    return _migrate(db) if args.command == "migrate" else _export(db, args)


def _migrate(db: str) -> int:
    try:
        before, after = migrate(db)
    except (FileNotFoundError, ConfigError) as exc:
        _error(getattr(exc, "message", None) or str(exc))
        return 2
    change = "already at" if before == after else f"migrated from {before} to"
    print(f"decision log {redact(db)}: {change} schema version {after}", file=sys.stderr)
    return 0


def _export(db: str, args: argparse.Namespace) -> int:
    out: TextIO
    to_stdout = args.out == "-"
    try:
        out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")
    except OSError as exc:
        _error(f"cannot write {args.out}: {exc.strerror or exc}")
        return 2
    try:
        count = export_jsonl(db, out, since=args.since, route=args.route)
        out.flush()
    except FileNotFoundError as exc:  # removed between the check and the open
        _error(str(exc))
        return 2
    except ConfigError as exc:
        _error(exc.message)
        return 2
    except BrokenPipeError:
        # `thinkgate log export | head`: the reader went away, which is not an error. Point stdout at
        # devnull so the interpreter's final flush does not complain.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except OSError as exc:
        _error(f"export failed: {exc}")
        return 1
    finally:
        if not to_stdout:
            out.close()
    print(f"exported {count} record(s)", file=sys.stderr)
    return 0
