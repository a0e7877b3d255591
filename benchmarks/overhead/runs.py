"""What the overhead family's commands (`overhead`, `instructions`, `pairs`) share: options, the offline environment,
the progress log, the request bodies, SIGTERM handling, the run's command line and times, and closing the run."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..services import REPO_ROOT
from .bodies import Bodies, load_bodies
from .machine import load_average
from .report import RunInfo, write_report

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"


def add_common_args(p: argparse.ArgumentParser, default_out: Path) -> None:
    """--data, --bodies, --out, --no-report, --python, --quiet."""
    p.add_argument("--data", default=str(DEFAULT_DATA), help="IFEval input_data.jsonl for --bodies ifeval")
    p.add_argument("--bodies", choices=("fixed", "ifeval"),
                   help="what wrk sends: 'ifeval' cycles through the IFEval prompts with a unique suffix per request "
                   "(no score-cache hits); 'fixed' one body every time (default: ifeval when --data exists)")
    p.add_argument("--out", default=str(default_out), help="markdown report path (a .json is written next to it)")
    p.add_argument("--no-report", dest="report", action="store_false", help="print only; write no files")
    p.add_argument("--python", default=sys.executable, help="interpreter for the servers (default: this one)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def offline_environment() -> None:
    """No network for litellm's cost map or the model hub, in this process and the servers it starts."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Terminated(Exception):
    """SIGTERM arrived (see `sigterm_raises`)."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` so `finally` blocks stop the servers."""
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def progress_log(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))


def bodies_of(args: argparse.Namespace) -> Bodies | None:
    """The run's bodies from --bodies and --data (relative to the repository); None after printing why not."""
    data = Path(args.data) if Path(args.data).is_absolute() else (REPO_ROOT / args.data).resolve()
    try:
        return load_bodies(args.bodies, data)
    except (OSError, ValueError) as exc:
        print(f"--bodies: {exc}", file=sys.stderr)
        return None


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """`python -m MODULE ARGS` as the run was started (for the report)."""
    shown = shlex.join(sys.argv[1:] if argv is None else argv)
    return f"python -m {module} {shown}".strip()


def now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def close_run(run: RunInfo, args: argparse.Namespace, text: Callable[[Any], str],
              markdown: Callable[[Any], str], data: Callable[[Any], dict[str, Any]]) -> None:
    """Stamp the run's end (time, load average), print its text table, write its report unless --no-report."""
    run.finished = now()
    run.machine["load average at end"] = load_average()
    print(text(run))
    if args.report:
        write_report(Path(args.out), markdown(run), data(run))
