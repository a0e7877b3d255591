"""`thinkgate log ...`: work with the decision log from the command line.

    thinkgate log export [--db PATH] [--out FILE|-] [--since ISO8601|UNIX] [--route ALIAS]

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

from router.decision_log import export_jsonl
from router.errors import ConfigError
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
    export.add_argument("--db", default=None,
                        help=f"decision log database (default: ${ENV_DB} or ./{DEFAULT_DB})")
    export.add_argument("--out", default="-", help="output file, or - for stdout (default)")
    export.add_argument("--since", type=parse_since, default=None,
                        help="only records at or after this time: UNIX seconds or ISO 8601 (naive = UTC)")
    export.add_argument("--route", default=None, help="only records for this model alias")
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
    return _export(args)


def _export(args: argparse.Namespace) -> int:
    db = Path(args.db or os.environ.get(ENV_DB) or DEFAULT_DB)
    if not db.is_file():
        _error(f"decision log not found: {db} (pass --db or set {ENV_DB})")
        return 2
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
