"""Send one example to one arm's route of a running proxy over HTTP and turn the reply into a record."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from router.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from training.collect import Scorer, score
from training.records import Example

from .records import ABRecord


GUARD_HEADERS = ("x-thinkgate-guard", "x-thinkgate-guard-checks", "x-thinkgate-guard-attempts")
"""Response headers of the guard strategy, kept in a record's `extra` (calls per request, outcomes)."""


@dataclass(frozen=True)
class Request:
    """The generation settings every arm shares, so arms differ only in their route."""

    max_tokens: int = 384
    temperature: float = 0.0
    api_key: str | None = None


def _float(value: str | None) -> float | None:
    try:
        return None if value in (None, "none") else float(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def _error_message(payload: Any, status: int) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("message") or payload["error"])
    return f"HTTP {status}"


async def send(session: aiohttp.ClientSession, base_url: str, arm: str, route: str, example: Example,
               settings: Request, scorer: Scorer | None) -> ABRecord:
    """POST the example; raise the proxy's errors (transient ones are retried by the job runner)."""
    body = {"model": route, "messages": list(example.messages), "max_tokens": settings.max_tokens,
            "temperature": settings.temperature}
    headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    start = time.perf_counter()
    try:
        async with session.post(f"{base_url}/v1/chat/completions", json=body, headers=headers) as response:
            payload = await response.json(content_type=None)
            latency = time.perf_counter() - start
            if response.status != 200:
                raise UpstreamError(f"proxy answered {response.status}: {_error_message(payload, response.status)}",
                                    status=response.status)
            h = response.headers
    except aiohttp.ClientConnectionError as exc:
        raise UpstreamUnavailable(f"cannot reach the proxy at {base_url}: {exc}") from None
    except TimeoutError:
        raise UpstreamTimeout(f"no reply from the proxy within the client timeout ({route})") from None
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    answer = message.get("content") or ""
    scores = await score(scorer, example, answer)
    usage = payload.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return ABRecord(
        arm=arm, id=example.id, route=route, decision=h.get("x-thinkgate-decision"),
        score=_float(h.get("x-thinkgate-score")), decision_source=h.get("x-thinkgate-decision-source"),
        decision_ms=_float(h.get("x-thinkgate-decision-ms")), answer=answer,
        reasoning=message.get("reasoning_content"), scores=scores,
        latency_s=round(latency, 4), prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_tokens=int(details.get("reasoning_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
        extra={**{k: h[k] for k in GUARD_HEADERS if k in h},
               **{k: v for k, v in (("score_method", h.get("x-thinkgate-score-method")),
                                    ("decision_tokens", _int(h.get("x-thinkgate-decision-tokens")))) if v is not None}},
    )


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def failed_record(arm: str, route: str, example: Example, error: str) -> ABRecord:
    return ABRecord(arm=arm, id=example.id, route=route, decision=None, score=None, decision_source=None,
                    decision_ms=None, answer="", reasoning=None, scores={}, latency_s=0.0, prompt_tokens=0,
                    completion_tokens=0, reasoning_tokens=0, error=error)
