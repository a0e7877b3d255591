"""`thinkgate_inflight_requests`: chat requests from their first byte to their last (ASGI middleware).

Counted around the whole ASGI call, so a streamed answer counts until its last event is sent and a request
that fails in any way (an error, a client that leaves) is uncounted on the way out.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from .metrics import Metrics

CHAT_PATH = "/v1/chat/completions"


class TrackInflight:
    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics, path: str = CHAT_PATH) -> None:
        self.app = app
        self.metrics = metrics
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        self.metrics.inflight_inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.inflight_dec()
