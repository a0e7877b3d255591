"""`POST /v1/chat/completions`: validate → route → decide → apply profile → backend → split → respond → log.

Decision precedence (highest first), reported in `x-thinkgate-decision-source`:
1. `header`: `x-thinkgate-reasoning: on|off` (`auto`, or no header, falls through);
2. `client`: the request's own reasoning fields (`reasoning_effort`, `thinking`, `reasoning`,
   `chat_template_kwargs.enable_thinking`), when the route's `client_reasoning` is `respect`;
3. `policy`: the route's decider; `fallback` when it failed or timed out and the route default was used.
Whoever decides, the route's profile applies the decision; client reasoning fields are not forwarded
(except with the `none` profile, which forwards the request untouched).
"""

from __future__ import annotations

import logging
import time
import random
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .backends.base import aclose
from .conversation import client_reasoning_choice, decision_text, strip_client_reasoning, strip_history_reasoning
from .deciders import Decision, DecisionContext, decide_with_fallback
from .decision_log import DecisionRecord
from .errors import InvalidRequest, ModelNotFound, ThinkgateError
from .http_io import SSE_DONE, check_api_key, error_response, json_response, read_json_body, sse
from .routes import Route
from .schemas import validate_chat_request

log = logging.getLogger("thinkgate")

HEADER_REASONING = "x-thinkgate-reasoning"
HEADER_BUDGET = "x-thinkgate-think-budget"


@dataclass
class _Trace:
    """What one request did, filled in as it goes and logged at the end (off the hot path)."""

    request_id: str = field(default_factory=lambda: "%032x" % random.getrandbits(128))  # uuid4 costs a syscall
    started: float = field(default_factory=time.time)
    route: Route | None = None
    decision: Decision | None = None
    text: str = ""
    upstream_start: float | None = None
    upstream_ms: float | None = None
    usage: dict[str, Any] | None = None
    status: int = 200
    error: str | None = None
    stream: bool = False


def _forced_by_header(request: Request) -> bool | None:
    value = request.headers.get(HEADER_REASONING)
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("on", "off"):
        return value == "on"
    if value in ("auto", ""):
        return None
    raise InvalidRequest(f"header {HEADER_REASONING} must be on, off or auto (got {value!r})",
                         param=HEADER_REASONING)


def _budget(request: Request, default: int) -> int:
    value = request.headers.get(HEADER_BUDGET)
    if value is None:
        return default
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 32768:  # "²".isdigit() is true
        raise InvalidRequest(f"header {HEADER_BUDGET} must be an integer from 1 to 32768", param=HEADER_BUDGET)
    return int(value)


async def _decide(route: Route, body: dict[str, Any], text: str, forced: bool | None, timeout_s: float) -> Decision:
    policy = route.decider.name
    if forced is not None:
        return Decision(forced, policy, None, 0.0, "header")
    if route.config.client_reasoning == "respect":
        choice = client_reasoning_choice(body)
        if choice is not None:
            return Decision(choice, policy, None, 0.0, "client")
    ctx = DecisionContext(text=text, route=route.alias, body=body)
    return await decide_with_fallback(route.decider, ctx, timeout_s=timeout_s, default_think=route.default_think)


def decision_headers(decision: Decision, request_id: str) -> dict[str, str]:
    return {
        "x-thinkgate-decision": decision.label,
        "x-thinkgate-policy": decision.policy,
        "x-thinkgate-score": "none" if decision.score is None else f"{decision.score:.4f}",
        "x-thinkgate-decision-ms": f"{decision.ms:.3f}",
        "x-thinkgate-decision-source": decision.source,
        "x-request-id": request_id,
    }


class ChatEndpoint:
    """The handler, bound to the app's runtime (routes, settings, observers)."""

    def __init__(self, runtime: Any) -> None:
        self.rt = runtime

    async def handle(self, request: Request) -> Response:
        trace = _Trace()
        try:
            return await self._handle(request, trace)
        except ThinkgateError as exc:
            trace.status, trace.error = exc.status, exc.message
            self._finish(trace)
            return error_response(exc, {"x-request-id": trace.request_id})
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            log.exception("internal error in request %s", trace.request_id)
            trace.status, trace.error = 500, "internal error"
            self._finish(trace)
            return error_response(ThinkgateError(f"internal error (request id {trace.request_id})"))

    async def _handle(self, request: Request, trace: _Trace) -> Response:
        rt = self.rt
        check_api_key(request, rt.api_keys)
        raw = await read_json_body(request, rt.config.server.max_body_bytes)
        validate_chat_request(raw)
        route = rt.routes.get(raw["model"])
        if route is None:
            raise ModelNotFound(f"model '{raw['model']}' is not served here; known models: "
                                f"{', '.join(sorted(rt.routes))}", param="model")
        trace.route = route
        trace.stream = bool(raw.get("stream"))
        forced = _forced_by_header(request)
        budget = _budget(request, route.config.think_budget)
        await route.ensure_ready(rt.config.server.ready_wait_s)

        messages = strip_history_reasoning(raw["messages"])
        trace.text = decision_text(messages)
        trace.decision = await _decide(route, raw, trace.text, forced, rt.config.server.decider_timeout_s)
        body = {**raw, "messages": messages, "model": route.config.model or raw["model"]}
        if route.profile.name != "none":
            body = strip_client_reasoning(body)
        headers = decision_headers(trace.decision, trace.request_id)
        trace.upstream_start = time.perf_counter()
        if trace.stream:
            return await self._stream(route, body, budget, trace, headers)
        response = await route.profile.complete(route.backend, body, think=trace.decision.think, budget=budget)
        trace.upstream_ms = (time.perf_counter() - trace.upstream_start) * 1000
        trace.usage = response.get("usage")
        self._finish(trace)
        return json_response(response, 200, headers)

    async def _stream(self, route: Route, body: dict[str, Any], budget: int, trace: _Trace,
                      headers: dict[str, str]) -> Response:
        client_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        body = {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
        chunks = route.profile.stream(route.backend, body, think=trace.decision.think, budget=budget)  # type: ignore[union-attr]
        try:
            first = await anext(chunks, None)  # upstream errors before the first chunk keep their status
        except BaseException:
            await aclose(chunks)
            raise

        async def events() -> AsyncIterator[bytes]:
            try:
                chunk = first
                while chunk is not None:
                    if chunk.get("usage"):
                        trace.usage = chunk["usage"]
                    visible = chunk if client_wants_usage else _without_usage(chunk)
                    if visible is not None:
                        yield sse(visible)
                    chunk = await anext(chunks, None)
                yield SSE_DONE
            except ThinkgateError as exc:
                trace.status, trace.error = exc.status, exc.message
                yield sse(exc.to_openai())
            except Exception:  # noqa: BLE001
                log.exception("internal error while streaming request %s", trace.request_id)
                trace.status, trace.error = 500, "internal error"
                yield sse(ThinkgateError(f"internal error (request id {trace.request_id})").to_openai())
            finally:  # also runs when the client disconnects: closing `chunks` cancels the upstream call
                await aclose(chunks)
                if trace.upstream_start is not None:
                    trace.upstream_ms = (time.perf_counter() - trace.upstream_start) * 1000
                self._finish(trace)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**headers, "cache-control": "no-cache"})

    def _finish(self, trace: _Trace) -> None:
        """Hand the trace to metrics and the decision log: both are non-blocking."""
        self.rt.observe(_record(trace, self.rt.log_prompts))


def _without_usage(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk as a client that did not ask for usage sees it (usage is always requested upstream, for the log)."""
    if not chunk.get("usage"):
        return chunk
    return {k: v for k, v in chunk.items() if k != "usage"} if chunk.get("choices") else None


def _record(trace: _Trace, log_prompts: bool) -> DecisionRecord | tuple[str, int]:
    route, decision = trace.route, trace.decision
    if route is None or decision is None:
        return (route.alias if route else "unknown", trace.status)
    usage = trace.usage or {}
    details = usage.get("completion_tokens_details") or {}
    return DecisionRecord(
        time=trace.started, request_id=trace.request_id, route=route.alias, upstream_model=route.config.model,
        policy=decision.policy, decision=decision.label, decision_ms=decision.ms,
        decision_source=decision.source, status=trace.status, stream=trace.stream, score=decision.score,
        fallback_reason=decision.fallback_reason, upstream_ms=trace.upstream_ms,
        prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens"), error=trace.error,
        prompt=trace.text if log_prompts else None,
    )
