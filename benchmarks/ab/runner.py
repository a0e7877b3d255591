"""Run the selected arms over the examples through a proxy, appending records (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import aiohttp

from training.jobs import JobSpec, Summary, prepare_table, run_jobs
from training.records import Example

from .arms import route_alias
from .client import Request, Scorer, failed_record, send
from .records import latest_ok, read_records

Job = tuple[str, Example]


def pending(arms: Sequence[str], examples: Sequence[Example], records_path: Path) -> list[Job]:
    """(arm, example) pairs without an error-free record yet, arm by arm (one arm's load at a time)."""
    done = latest_ok(read_records(records_path))
    return [(arm, ex) for arm in arms for ex in examples if (arm, ex.id) not in done]


async def run_arms(base_url: str, arms: Sequence[str], examples: Sequence[Example], *, records_path: str | Path,
                   settings: Request, scorer: Scorer | None, concurrency: int = 16, retries: int = 3,
                   timeout_s: float = 1800.0, progress: bool = True) -> Summary:
    """Send every pending (arm, example) to the arm's route with at most `concurrency` in flight.

    Arms run one after another (the queue is ordered by arm), so an arm's latencies are measured under
    its own load, not mixed with another arm's.
    """
    records_path = prepare_table(records_path)
    todo = pending(arms, examples, records_path)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async def run(job: Job) -> dict:
            arm, example = job
            record = await send(session, base_url, arm, route_alias(arm), example, settings, scorer)
            return record.to_json()

        spec: JobSpec[Job] = JobSpec(
            run=run,
            failed_record=lambda job, error: failed_record(job[0], route_alias(job[0]), job[1], error).to_json(),
            describe=lambda job: f"{job[1].id} [{job[0]}]",
        )
        summary = Summary(skipped=len(arms) * len(examples) - len(todo))
        for arm in arms:
            jobs = [job for job in todo if job[0] == arm]
            if not jobs:
                continue
            part = await run_jobs(jobs, spec, out_path=records_path, concurrency=concurrency, retries=retries,
                                  progress=progress, desc=f"arm {arm}")
            summary.done += part.done
            summary.failed += part.failed
            summary.seconds += part.seconds
            summary.errors += part.errors
    return summary
