"""`POST /v1/chat/completions`: validate → decide → the route answers → respond → record.

The route owns everything between the decision and the answer (strategy, switch, backend, reasoning split,
usage on streams: `router.routes.Route`); the trace turns itself into the decision record.

Decision precedence (highest first), reported in `x-thinkgate-decision-source`:
1. `header`: `x-thinkgate-reasoning: on|off` (`auto`, or no header, falls through);
2. `client`: the request's own reasoning fields (`reasoning_effort`, `thinking`, `reasoning`,
   `chat_template_kwargs.enable_thinking`), when the route's `client_reasoning` is `respect`;
3. `policy`: the route's decider; `fallback` when it failed or timed out and the route default was used.
Whoever decides, the route's switch applies the decision; client reasoning fields are not forwarded
(except with the `none` profile, which forwards the request untouched).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .conversation import client_reasoning_choice, decision_text, strip_history_reasoning
from .deciders import Decision, DecisionContext, decide_with_fallback
from .disconnect import unless_disconnected
from .errors import ClientDisconnected, InvalidRequest, ModelNotFound, ThinkgateError
from .guard import HEADER_GUARD_SWITCH, guard_switch
from .guard_run import GuardReport
from .http_io import SSE_DONE, check_api_key, error_response, json_response, read_json_body, sse
from .redact import redacted_traceback
from .routes import Route, RouteStream
from .runtime import Runtime
from .schemas import validate_chat_request
from .trace import RequestTrace

log = logging.getLogger("thinkgate")

HEADER_REASONING = "x-thinkgate-reasoning"
HEADER_BUDGET = "x-thinkgate-think-budget"


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


def _guard(request: Request) -> GuardReport:
    """This request's guard: off with `x-thinkgate-guard-enable: off`, else as the route says."""
    try:
        return GuardReport(enabled=guard_switch(request.headers.get(HEADER_GUARD_SWITCH)) is not False)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=HEADER_GUARD_SWITCH) from None


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
    headers = {
        "x-thinkgate-decision": decision.label,
        "x-thinkgate-policy": decision.policy,
        "x-thinkgate-score": "none" if decision.score is None else f"{decision.score:.4f}",
        "x-thinkgate-decision-ms": f"{decision.ms:.3f}",
        "x-thinkgate-decision-source": decision.source,
        "x-request-id": request_id,
    }
    if decision.method is not None:
        headers["x-thinkgate-score-method"] = decision.method
    if decision.tokens:
        headers["x-thinkgate-decision-tokens"] = str(decision.tokens)
    return headers


class ChatEndpoint:
    """The handler, bound to the app's runtime (routes, settings, observers)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def handle(self, request: Request) -> Response:
        trace = RequestTrace()
        try:
            return await self._handle(request, trace)
        except ThinkgateError as exc:
            exc.message = self.rt.redact(exc.message)
            trace.failed(exc.status, exc.message)
            self.rt.observe(trace)
            return error_response(exc, {"x-request-id": trace.request_id})
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
            log.error("internal error in request %s:\n%s", trace.request_id, redacted_traceback(exc, self.rt.redact))
            trace.failed(500, "internal error")
            self.rt.observe(trace)
            return error_response(ThinkgateError(f"internal error (request id {trace.request_id})"),
                                  {"x-request-id": trace.request_id})

    async def _handle(self, request: Request, trace: RequestTrace) -> Response:
        rt, server = self.rt, self.rt.config.server
        # validate
        check_api_key(request, rt.api_keys)
        raw = await read_json_body(request, server.max_body_bytes)
        validate_chat_request(raw)
        route = rt.routes.get(raw["model"])
        if route is None:
            raise ModelNotFound(f"model '{raw['model']}' is not served here; known models: "
                                f"{', '.join(sorted(rt.routes))}", param="model")
        trace.route, trace.stream = route, raw.get("stream") is True  # the schema took only a JSON boolean
        forced = _forced_by_header(request)
        budget = _budget(request, route.config.think_budget)
        guard = trace.guard = _guard(request)
        # The body is read: from here on a client that leaves cancels the work (the upstream call included).
        return await unless_disconnected(request.receive, self._answer(route, raw, forced, budget, guard, trace),
                                         request.scope)

    async def _answer(self, route: Route, raw: dict[str, Any], forced: bool | None, budget: int,
                      guard: GuardReport, trace: RequestTrace) -> Response:
        server = self.rt.config.server
        await route.ensure_ready(server.ready_wait_s)
        # decide
        messages = strip_history_reasoning(raw["messages"])
        trace.text = decision_text(messages)
        decision = trace.decision = await _decide(route, raw, trace.text, forced, server.decider_timeout_s,
                                                  server.decision_text_chars)
        headers = decision_headers(decision, trace.request_id)
        # the route answers; respond; record
        body = route.upstream_body(raw, messages)
        trace.upstream_started()
        if trace.stream:
            chunks = route.stream(body, think=decision.think, budget=budget, guard=guard)
            return await self._stream(chunks, trace, headers)
        response = await route.complete(body, think=decision.think, budget=budget, guard=guard)
        trace.upstream_done(response.get("usage"))
        self.rt.observe(trace)
        return json_response(response, 200, {**headers, **guard.headers()})

    async def _stream(self, chunks: RouteStream, trace: RequestTrace, headers: dict[str, str]) -> Response:
        try:
            first = await anext(chunks, None)  # upstream errors before the first chunk keep their status
        except BaseException:
            await chunks.aclose()
            raise

        async def events() -> AsyncIterator[bytes]:
            complete = False
            try:
                chunk = first
                while chunk is not None:
                    yield sse(chunk)
                    chunk = await anext(chunks, None)
                yield SSE_DONE
                complete = True
            except ThinkgateError as exc:
                exc.message = self.rt.redact(exc.message)
                trace.failed(exc.status, exc.message)
                yield sse(exc.to_openai())
            except Exception as exc:  # noqa: BLE001
                log.error("internal error while streaming request %s:\n%s", trace.request_id,
                          redacted_traceback(exc, self.rt.redact))
                trace.failed(500, "internal error")
                yield sse(ThinkgateError(f"internal error (request id {trace.request_id})").to_openai())
            finally:  # also runs when the client disconnects: closing `chunks` cancels the upstream call
                if not complete and trace.status == 200:
                    trace.failed(ClientDisconnected.status, "client disconnected mid-stream")
                await chunks.aclose()
                trace.upstream_done(chunks.usage)
                self.rt.observe(trace)

        async def on_close(stream: AsyncIterator[bytes]) -> None:
            await stream.aclose()  # type: ignore[attr-defined]  # a cut stream finishes its trace now
            if not trace.finished:  # never started: the client left before the response began
                trace.failed(ClientDisconnected.status, "client disconnected before the stream began")
                await chunks.aclose()
                trace.upstream_done(chunks.usage)
                self.rt.observe(trace)

        guard = trace.guard.headers() if trace.guard else {}  # known once the first chunk is: the guard answers first
        return _ClosingStream(events(), on_close, media_type="text/event-stream",
                              headers={**headers, **guard, "cache-control": "no-cache"})


class _ClosingStream(StreamingResponse):
    """A streaming response that always closes its body, however the response ends (finished, cut by a
    disconnect, or never started because the client was already gone), so every request is recorded once."""

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
