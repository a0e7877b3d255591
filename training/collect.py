"""Outcome collection: run each example through a model in both modes and append scored outcomes.

Each (example, mode) goes through exactly the proxy's strategy, reasoning switch and answer/reasoning split, so an
offline outcome means what a production decision means. The table is append-only JSONL, flushed per
record: an interrupted run resumes where it stopped (finished pairs are skipped, failed ones retried).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from router.backends.base import Backend
from router.strategies import Strategy

from .jobs import JobSpec, Summary, prepare_table, run_jobs
from .outcomes import read_outcomes
from .records import Example, Mode, Outcome

Scorer = Callable[[Example, str], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """What to run against: a backend, the route's strategy (over its reasoning switch) and generation settings."""

    backend: Backend
    strategy: Strategy[Any]
    model: str
    think_budget: int = 160
    max_tokens: int = 384
    temperature: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


async def run_one(target: Target, example: Example, mode: Mode) -> tuple[dict[str, Any], float]:
    body = {"model": target.model, "messages": list(example.messages), "max_tokens": target.max_tokens,
            "temperature": target.temperature, **target.extra}
    start = time.perf_counter()
    response = await target.strategy.complete(target.backend, body, think=mode == "think",
                                             budget=target.think_budget)
    return response, time.perf_counter() - start


def _outcome(target: Target, example: Example, mode: Mode, response: dict[str, Any], latency: float,
             scorer: Scorer | None, version: str, profile_name: str) -> Outcome:
    message = (response.get("choices") or [{}])[0].get("message") or {}
    answer = message.get("content") or ""
    usage = response.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return Outcome(
        id=example.id, mode=mode, model=target.model, profile=profile_name, answer=answer,
        reasoning=message.get("reasoning_content"), scores=scorer(example, answer) if scorer else {},
        prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_tokens=int(details.get("reasoning_tokens") or 0), latency_s=round(latency, 4),
        dataset_version=version,
    )


def pending(examples: Sequence[Example], modes: Sequence[Mode], out_path: Path) -> list[tuple[Example, Mode]]:
    done = {(o.id, o.mode) for o in read_outcomes(out_path) if o.error is None}
    return [(ex, mode) for ex in examples for mode in modes if (ex.id, mode) not in done]


async def collect(examples: Sequence[Example], target: Target, *, modes: Sequence[Mode], out_path: str | Path,
                  scorer: Scorer | None, dataset_version: str, concurrency: int = 16, retries: int = 3,
                  backoff_s: float = 1.0, progress: bool = True) -> Summary:
    out_path = prepare_table(out_path)
    todo = pending(examples, modes, out_path)
    profile_name = target.strategy.label

    async def run(job: tuple[Example, Mode]) -> dict[str, Any]:
        example, mode = job
        response, latency = await run_one(target, example, mode)
        return _outcome(target, example, mode, response, latency, scorer, dataset_version, profile_name).to_json()

    def failed(job: tuple[Example, Mode], error: str) -> dict[str, Any]:
        example, mode = job
        return Outcome(id=example.id, mode=mode, model=target.model, profile=profile_name, answer="",
                       reasoning=None, scores={}, prompt_tokens=0, completion_tokens=0, reasoning_tokens=0,
                       latency_s=0.0, dataset_version=dataset_version, error=error).to_json()

    spec = JobSpec(run=run, failed_record=failed, describe=lambda job: f"{job[0].id} [{job[1]}]")
    return await run_jobs(todo, spec, out_path=out_path, concurrency=concurrency, retries=retries,
                          backoff_s=backoff_s, progress=progress, desc="collect",
                          skipped=len(examples) * len(modes) - len(todo))
