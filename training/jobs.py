"""Resumable, bounded-concurrency job runs that append one JSON record per finished job.

Shared by outcome collection and the A/B benchmark: each job's record is flushed as soon as it is done,
so an interrupted run loses at most the jobs in flight; the caller decides which jobs are still pending
(typically: every job without an error-free record). Transient failures are retried with jittered back-off.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Generic, Sequence, TypeVar

from router.errors import ServiceNotReady, UpstreamError, UpstreamTimeout, UpstreamUnavailable

Job = TypeVar("Job")
Record = TypeVar("Record")
TRANSIENT_STATUSES = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JobSpec(Generic[Job]):
    """How to run one job and turn its result or failure into the record that gets appended."""

    run: Callable[[Job], Awaitable[dict[str, Any]]]
    failed_record: Callable[[Job, str], dict[str, Any]]
    describe: Callable[[Job], str]


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (UpstreamTimeout, UpstreamUnavailable, ServiceNotReady)):
        return True
    return isinstance(exc, UpstreamError) and exc.status in TRANSIENT_STATUSES


def drop_torn_tail(path: Path) -> None:
    """Cut an incomplete last line (a write interrupted mid-record) so appending starts on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        f.truncate(data.rfind(b"\n") + 1)


class TableError(ValueError):
    """A line of a table that is not a record (and not a torn last line)."""


def read_table(path: str | Path, parse: Callable[[dict[str, Any]], Record], what: str) -> list[Record]:
    """Every record of an append-only table, in order; a torn last line (an interrupted write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records: list[Record] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(parse(json.loads(line)))
            except (ValueError, TypeError) as exc:
                if lineno > 1 and not line.endswith("\n"):
                    continue  # torn: the next run cuts it and redoes the job
                raise TableError(f"{path}:{lineno}: not {what} ({exc})") from None
    return records


def prepare_table(path: str | Path) -> Path:
    """Make the table's folder and repair a torn last line; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(path)
    return path


async def run_jobs(todo: Sequence[Job], spec: JobSpec[Job], *, out_path: str | Path, concurrency: int = 16,
                   retries: int = 3, backoff_s: float = 1.0, progress: bool = True, desc: str = "run",
                   skipped: int = 0) -> Summary:
    """Run `todo` with at most `concurrency` in flight, appending each job's record to `out_path`."""
    out_path = prepare_table(out_path)
    summary = Summary(skipped=skipped)
    started = time.perf_counter()
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    bar = progress_bar(len(todo), progress, desc)

    with out_path.open("a", encoding="utf-8") as out:
        async def worker() -> None:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                record, error = await _attempt(spec, job, retries, backoff_s)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                if error:
                    summary.failed += 1
                    summary.errors.append(f"{spec.describe(job)}: {error}")
                else:
                    summary.done += 1
                bar.update(1)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _attempt(spec: JobSpec[Job], job: Job, retries: int, backoff_s: float) -> tuple[dict[str, Any], str | None]:
    error = "not attempted"
    for attempt in range(retries + 1):
        try:
            return await spec.run(job), None
        except Exception as exc:  # noqa: BLE001 - recorded, never lost
            error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
            if not is_transient(exc) or attempt == retries:
                break
            await asyncio.sleep(backoff_s * 2 ** attempt * (0.5 + random.random()))
    return spec.failed_record(job, error), error


class _NoBar:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="req", desc=desc, dynamic_ncols=True)
