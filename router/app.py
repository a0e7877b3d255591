"""The app factory: everything the proxy needs comes in as arguments; nothing happens at import time."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from .backends.base import Backend
from .chat import ChatEndpoint
from .decision_log import DecisionLog
from .errors import InvalidRequest, ThinkgateError
from .gc_tuning import tune_collector
from .http_io import check_api_key, error_response, json_response, new_request_id
from .hot_path import ProxyApp
from .inflight import CHAT_PATH, TrackInflight
from .metrics import Metrics
from .redact import redacted_traceback
from .routes import build_routes, unique_backends
from .runtime import Runtime
from .server_limits import BodyDeadline
from .settings import Config

log = logging.getLogger("thinkgate")


def create_app(config: Config, *, backends: Mapping[str, Backend] | None = None,
               environ: Mapping[str, str] | None = None, owns_process: bool = False) -> Starlette:
    """Build the proxy. `backends` replaces the backend of the named routes (the seam for embedding and
    tests); `environ` replaces `os.environ` (API keys). `owns_process`: the app is all this process serves
    (`thinkgate serve`), so start-up may tune process-wide state, the garbage collector's (router/gc_tuning.py);
    an app embedded in someone else's process leaves it alone."""
    environ = os.environ if environ is None else environ
    routes = build_routes(config, backends=backends, environ=environ)
    metrics = Metrics(routes=routes)
    decision_log = None
    if config.decision_log.enabled:
        decision_log = DecisionLog.from_settings(config.decision_log, on_drop=metrics.on_decision_log_drop)
    runtime = Runtime.build(config, routes, metrics=metrics, decision_log=decision_log, environ=environ)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if decision_log is not None:
            decision_log.start()
        for backend in unique_backends(routes):
            await backend.start()
        if owns_process:
            tune_collector(config.server.gc_young_threshold, freeze=config.server.gc_freeze)
        try:
            yield
        finally:
            for backend in unique_backends(routes):
                with contextlib.suppress(Exception):
                    await backend.aclose()
            for route in routes.values():
                with contextlib.suppress(Exception):
                    await route.decider.aclose()
            if decision_log is not None:
                await decision_log.aclose()

    async def list_models(request: Request) -> Response:
        try:
            check_api_key(request, runtime.api_keys)
        except ThinkgateError as exc:
            return error_response(exc)
        data = [{"id": alias, "object": "model", "created": 0, "owned_by": "thinkgate"} for alias in routes]
        return json_response({"object": "list", "data": data})

    def has_key(request: Request) -> bool:
        try:
            check_api_key(request, runtime.api_keys)
        except ThinkgateError:
            return False
        return True

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Always open (probes carry no keys); with client keys, route names only for a caller with one."""
        loading = [alias for alias, route in routes.items() if not route.backend.is_ready()]
        if loading:
            shown = {"not_ready": loading} if not runtime.api_keys or has_key(request) else {}
            return json_response({"status": "loading", **shown}, 503)
        return json_response({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        if config.server.metrics_require_key:
            try:
                check_api_key(request, runtime.api_keys)
            except ThinkgateError as exc:
                return error_response(exc)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = InvalidRequest(f"{request.method} {request.url.path}: {exc.detail}", status=exc.status_code)
        return error_response(error, {"x-request-id": new_request_id()})

    async def server_error(request: Request, exc: Exception) -> Response:
        request_id = new_request_id()
        log.error("unhandled error on %s (request id %s):\n%s", request.url.path, request_id,
                  redacted_traceback(exc, runtime.redact))
        return error_response(ThinkgateError(f"internal error (request id {request_id})"),
                              {"x-request-id": request_id})

    chat = ChatEndpoint(runtime).handle
    middleware = [Middleware(TrackInflight, metrics), Middleware(BodyDeadline, config.server.body_timeout_s)]
    app = ProxyApp(
        routes=[
            HttpRoute(CHAT_PATH, chat, methods=["POST"]),
            HttpRoute("/v1/models", list_models, methods=["GET"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/readyz", readyz, methods=["GET"]),
            HttpRoute("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        middleware=middleware,
        lifespan=lifespan,
    )
    app.serve_directly(CHAT_PATH, chat, middleware=middleware, error_handler=server_error)
    app.state.runtime = runtime
    return app
