"""Connection-level guards that uvicorn does not have: slow or oversized request heads, slow bodies, and
OpenAI-format errors for requests the HTTP parser rejects.

- `guarded_protocol(limits)` is a uvicorn HTTP protocol class (httptools, uvicorn's default when installed):
  a request's head (request line and headers) must arrive within `header_timeout_s` of the connection opening
  or of its first byte (a slow-loris client gets a 408 and the connection is closed, instead of holding a file
  descriptor for ever); it may have at most `max_headers` headers and `max_header_bytes` bytes of URL, names and
  values (431 beyond); and framing the parser cannot read gets a 400 in OpenAI's error format instead of
  uvicorn's plain text. All of these close the connection: after a broken head nothing on it can be trusted.
  It also tells the app, through the scope's extensions, when a request's body has arrived whole
  (`BodyArrival`: no body timer is needed then) and when its client leaves (`disconnect.ClientGone`: no
  watcher task is needed).
- `BodyDeadline` is ASGI middleware: a request body must arrive whole within `body_timeout_s` of the request's
  start, or reading it raises `RequestTimeout` (408, answered by the endpoint like any client error).

What is not achievable here: a client that sends a valid head and then never reads the response is bounded by
the kernel's socket buffers and the upstream deadlines, not by a timer of ours.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .disconnect import CLIENT_GONE, ClientGone, client_gone_of
from .errors import HeadersTooLarge, InvalidRequest, RequestTimeout, ThinkgateError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServerLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100


def limits_of(server: Any) -> ServerLimits:
    """The limits in a `ServerSettings`."""
    return ServerLimits(header_timeout_s=server.header_timeout_s, body_timeout_s=server.body_timeout_s,
                        max_header_bytes=server.max_header_bytes, max_headers=server.max_headers)


def _raw_error_response(exc: ThinkgateError) -> bytes:
    body = json.dumps(exc.to_openai(), separators=(",", ":")).encode()
    reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (exc.status, reason.get(exc.status, b"Error"), len(body)) + body)


BODY_ARRIVAL = "thinkgate.body_arrival"  # the scope extension holding a request's BodyArrival


class BodyArrival:
    """Set by `guarded_protocol` once a request's body has arrived whole (the HTTP parser's message end)."""

    __slots__ = ("complete",)

    def __init__(self) -> None:
        self.complete = False


def guarded_protocol(limits: ServerLimits) -> type[asyncio.Protocol]:
    """A uvicorn protocol class (pass as `uvicorn.Config(http=...)`) that enforces `limits` on request heads."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _head_count = 0
        _rejection: ThinkgateError | None = None
        _arrival: BodyArrival

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            cycle = self.cycle
            super().connection_lost(exc)
            if cycle is not None and not cycle.response_complete:
                signal = client_gone_of(cycle.scope)
                if signal is not None:
                    signal()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(limits.header_timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self._reject(RequestTimeout(f"request headers did not arrive within {limits.header_timeout_s:g} s"))

        def _reject(self, exc: ThinkgateError) -> None:
            self.transport.write(_raw_error_response(exc))
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            extensions: Any = self.scope.setdefault("extensions", {})
            extensions[CLIENT_GONE] = ClientGone()
            extensions[BODY_ARRIVAL] = self._arrival = BodyArrival()
            self._head_bytes = self._head_count = 0
            self._arm()

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self._count(len(url), 0)

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._count(len(name) + len(value), 1)

        def _count(self, size: int, headers: int) -> None:
            self._head_bytes += size
            self._head_count += headers
            if self._head_bytes > limits.max_header_bytes or self._head_count > limits.max_headers:
                self._rejection = HeadersTooLarge(
                    f"request head exceeds the limits ({limits.max_headers} headers, "
                    f"{limits.max_header_bytes} bytes of URL and headers)")
                raise ValueError("head too large")  # httptools turns this into a parser error

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._arrival.complete = True

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            rejection, self._rejection = self._rejection, None
            self._disarm()
            self._reject(rejection or InvalidRequest(f"malformed HTTP request: {msg.rstrip('.')}"))

    return GuardedHttpToolsProtocol


class BodyDeadline:
    """ASGI middleware: the request body must arrive whole within `body_timeout_s` of the request's start.

    Under `guarded_protocol` a body that had arrived whole before the app started (a small request usually
    comes in one packet with its head) needs no deadline, and gets no timer."""

    def __init__(self, app: Callable[..., Awaitable[None]], body_timeout_s: float) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _arrived(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: disconnect detection, no deadline
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"request body did not arrive within {self.body_timeout_s:g} s") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, bounded_receive, send)


def _arrived(scope: Scope) -> bool:
    extensions = scope.get("extensions")
    arrival = extensions.get(BODY_ARRIVAL) if extensions else None
    return isinstance(arrival, BodyArrival) and arrival.complete
