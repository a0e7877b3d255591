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
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .backends.base import aclose
from .conversation import client_reasoning_choice, decision_text, strip_client_reasoning, strip_history_reasoning
from .deciders import Decision, DecisionContext, decide_with_fallback
from .decision_log import DecisionRecord
from .disconnect import unless_disconnected
from .errors import ClientDisconnected, InvalidRequest, ModelNotFound, ThinkgateError
from .http_io import SSE_DONE, check_api_key, error_response, json_response, new_request_id, read_json_body, sse
from .redact import redacted_traceback
from .routes import Route
from .schemas import validate_chat_request

log = logging.getLogger("thinkgate")

HEADER_REASONING = "x-thinkgate-reasoning"
HEADER_BUDGET = "x-thinkgate-think-budget"


@dataclass
class _Trace:
    """What one request did, filled in as it goes and logged at the end (off the hot path)."""

    request_id: str = field(default_factory=new_request_id)
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
    finished: bool = False  # handed to metrics and the decision log (exactly once)


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


async def _decide(route: Route, body: dict[str, Any], text: str, forced: bool | None, timeout_s: float,
                  text_budget: int) -> Decision:
    policy = route.decider.name
    if forced is not None:
        return Decision(forced, policy, None, 0.0, "header")
    if route.config.client_reasoning == "respect":
        choice = client_reasoning_choice(body)
        if choice is not None:
            return Decision(choice, policy, None, 0.0, "client")
    ctx = DecisionContext(text=text, route=route.alias, body=body)
    return await decide_with_fallback(route.decider, ctx, timeout_s=timeout_s, default_think=route.default_think,
                                      text_budget=text_budget)


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
            exc.message = self.rt.redact(exc.message)
            trace.status, trace.error = exc.status, exc.message
            self._finish(trace)
            return error_response(exc, {"x-request-id": trace.request_id})
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
            log.error("internal error in request %s:\n%s", trace.request_id, redacted_traceback(exc, self.rt.redact))
            trace.status, trace.error = 500, "internal error"
            self._finish(trace)
            return error_response(ThinkgateError(f"internal error (request id {trace.request_id})"),
                                  {"x-request-id": trace.request_id})

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
        trace.stream = raw.get("stream") is True
        forced = _forced_by_header(request)
        budget = _budget(request, route.config.think_budget)
        # The body is read: from here on a client that leaves cancels the work (the upstream call included).
        return await unless_disconnected(request.receive, self._answer(route, raw, forced, budget, trace))

    async def _answer(self, route: Route, raw: dict[str, Any], forced: bool | None, budget: int,
                      trace: _Trace) -> Response:
        rt = self.rt
        await route.ensure_ready(rt.config.server.ready_wait_s)
        messages = strip_history_reasoning(raw["messages"])
        trace.text = decision_text(messages)
        trace.decision = await _decide(route, raw, trace.text, forced, rt.config.server.decider_timeout_s,
                                       rt.config.server.decision_text_chars)
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
            complete = False
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
                complete = True
            except ThinkgateError as exc:
                exc.message = self.rt.redact(exc.message)
                trace.status, trace.error = exc.status, exc.message
                yield sse(exc.to_openai())
            except Exception as exc:  # noqa: BLE001
                log.error("internal error while streaming request %s:\n%s", trace.request_id,
                          redacted_traceback(exc, self.rt.redact))
                trace.status, trace.error = 500, "internal error"
                yield sse(ThinkgateError(f"internal error (request id {trace.request_id})").to_openai())
            finally:  # also runs when the client disconnects: closing `chunks` cancels the upstream call
                if not complete and trace.status == 200:
                    trace.status, trace.error = ClientDisconnected.status, "client disconnected mid-stream"
                await aclose(chunks)
                if trace.upstream_start is not None:
                    trace.upstream_ms = (time.perf_counter() - trace.upstream_start) * 1000
                self._finish(trace)

        async def on_close(stream: AsyncIterator[bytes]) -> None:
            await aclose(stream)  # a stream cut short finishes its trace now, not when the collector gets to it
            if not trace.finished:  # never started: the client left before the response began
                trace.status, trace.error = ClientDisconnected.status, "client disconnected before the stream began"
                await aclose(chunks)
                self._finish(trace)

        return _ClosingStream(events(), on_close, media_type="text/event-stream",
                              headers={**headers, "cache-control": "no-cache"})

    def _finish(self, trace: _Trace) -> None:
        """Hand the trace to metrics and the decision log (once): both are non-blocking."""
        if trace.finished:
            return
        trace.finished = True
        self.rt.observe(_record(trace, self.rt.log_prompts))


class _ClosingStream(StreamingResponse):
    """A streaming response that always closes its body, and says so, however the response ends (finished,
    cut by a disconnect, or never started because the client was already gone)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[AsyncIterator[bytes]], Awaitable[None]],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._stream = content
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close(self._stream)


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
