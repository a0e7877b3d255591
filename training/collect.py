"""Outcome collection: run each example through a model in both modes and append scored outcomes.

Each (example, mode) goes through exactly the proxy's reasoning profile and answer/reasoning split, so an
offline outcome means what a production decision means. The table is append-only JSONL, flushed per
record: an interrupted run resumes where it stopped (finished pairs are skipped, failed ones retried).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from router.backends.base import Backend
from router.errors import ServiceNotReady, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from router.profiles import ReasoningProfile

from .outcomes import read_outcomes
from .records import Example, Mode, Outcome

Scorer = Callable[[Example, str], dict[str, Any]]
TRANSIENT_STATUSES = {408, 409, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Target:
    """What to run against: a backend, the route's reasoning profile and generation settings."""

    backend: Backend
    profile: ReasoningProfile
    model: str
    think_budget: int = 160
    max_tokens: int = 384
    temperature: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, (UpstreamTimeout, UpstreamUnavailable, ServiceNotReady)):
        return True
    return isinstance(exc, UpstreamError) and exc.status in TRANSIENT_STATUSES


async def run_one(target: Target, example: Example, mode: Mode) -> tuple[dict[str, Any], float]:
    body = {"model": target.model, "messages": list(example.messages), "max_tokens": target.max_tokens,
            "temperature": target.temperature, **target.extra}
    start = time.perf_counter()
    response = await target.profile.complete(target.backend, body, think=mode == "think",
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


def pending(examples: Sequence[Example], modes: Sequence[Mode], out_path: Path) -> list[tuple[Example, Mode]]:
    done = {(o.id, o.mode) for o in read_outcomes(out_path) if o.error is None}
    return [(ex, mode) for ex in examples for mode in modes if (ex.id, mode) not in done]


async def collect(examples: Sequence[Example], target: Target, *, modes: Sequence[Mode], out_path: str | Path,
                  scorer: Scorer | None, dataset_version: str, concurrency: int = 16, retries: int = 3,
                  backoff_s: float = 1.0, progress: bool = True) -> Summary:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(out_path)
    todo = pending(examples, modes, out_path)
    summary = Summary(skipped=len(examples) * len(modes) - len(todo))
    profile_name = target.profile.name
    started = time.perf_counter()
    queue: asyncio.Queue[tuple[Example, Mode]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    bar = _progress_bar(len(todo), progress)

    with out_path.open("a", encoding="utf-8") as out:
        def write(outcome: Outcome) -> None:
            out.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
            out.flush()

        async def worker() -> None:
            while True:
                try:
                    example, mode = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcome = await _attempt(target, example, mode, scorer, dataset_version, profile_name,
                                         retries, backoff_s)
                write(outcome)
                if outcome.error:
                    summary.failed += 1
                    summary.errors.append(f"{example.id} [{mode}]: {outcome.error}")
                else:
                    summary.done += 1
                bar.update(1)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _attempt(target: Target, example: Example, mode: Mode, scorer: Scorer | None, version: str,
                   profile_name: str, retries: int, backoff_s: float) -> Outcome:
    error = "not attempted"
    for attempt in range(retries + 1):
        try:
            response, latency = await run_one(target, example, mode)
            return _outcome(target, example, mode, response, latency, scorer, version, profile_name)
        except Exception as exc:  # noqa: BLE001 - recorded, never lost
            error = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
            if not _is_transient(exc) or attempt == retries:
                break
            await asyncio.sleep(backoff_s * 2 ** attempt * (0.5 + random.random()))
    return Outcome(id=example.id, mode=mode, model=target.model, profile=profile_name, answer="", reasoning=None,
                   scores={}, prompt_tokens=0, completion_tokens=0, reasoning_tokens=0, latency_s=0.0,
                   dataset_version=version, error=error)


class _NoBar:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="gen", desc="collect", dynamic_ncols=True)
