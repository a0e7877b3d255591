"""ProxyApp: POST on the direct path skips the router, everything else takes Starlette's ordinary way."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from router.hot_path import ProxyApp

PATH = "/v1/chat/completions"


class Tag:
    """Middleware that appends its name to the scope's 'tags' list, to see which layers a request crossed."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {}).setdefault("tags", []).append(self.name)
        await self.app(scope, receive, send)


def make_app(direct: Any, *, routed: Any = None, error_handler: Any = None) -> ProxyApp:
    async def routed_default(request: Request) -> Response:
        return PlainTextResponse("routed:" + ",".join(request.state.tags))

    middleware = [Middleware(Tag, "outer"), Middleware(Tag, "inner")]
    app = ProxyApp(routes=[Route(PATH, routed or routed_default, methods=["POST"])], middleware=middleware,
                   exception_handlers={Exception: error_handler} if error_handler else {})
    app.serve_directly(PATH, direct, middleware=middleware, error_handler=error_handler)
    return app


async def direct_handler(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"direct:{','.join(request.state.tags)}:{body.decode()}:{request.app is not None}")


def test_post_on_the_path_goes_to_the_direct_handler_through_the_middleware_in_order() -> None:
    with TestClient(make_app(direct_handler)) as client:
        r = client.post(PATH, content=b"hello")
    assert r.status_code == 200
    assert r.text == "direct:outer,inner:hello:True"


def test_everything_else_takes_the_ordinary_way() -> None:
    with TestClient(make_app(direct_handler)) as client:
        assert client.get(PATH).status_code == 405  # the router's answer for a known path, wrong method
        assert client.post("/nowhere").status_code == 404
        slash = client.post(PATH + "/", follow_redirects=False)  # Starlette's slash redirect, unchanged
        assert slash.status_code == 307 and slash.headers["location"].endswith(PATH)
    # under a root_path the ordinary router matches the route (it strips the root path itself)
    with TestClient(make_app(direct_handler), root_path="/proxy") as client:
        r = client.post(PATH, content=b"x")
    assert r.status_code == 200 and r.text == "routed:outer,inner"


def test_an_escaped_exception_gets_the_apps_500_handler() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    async def on_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"handled {type(exc).__name__}", status_code=500)

    with TestClient(make_app(broken, error_handler=on_error), raise_server_exceptions=False) as client:
        r = client.post(PATH, content=b"{}")
    assert r.status_code == 500 and r.text == "handled RuntimeError"


def test_without_serve_directly_it_is_a_plain_starlette_app() -> None:
    async def routed(request: Request) -> Response:
        return PlainTextResponse("routed")

    app = ProxyApp(routes=[Route(PATH, routed, methods=["POST"])])
    with TestClient(app) as client:
        assert client.post(PATH).text == "routed"


def test_the_proxy_serves_chat_directly_and_answers_like_before() -> None:
    """The real app: the direct path is set up for the chat route, and its answers keep their shape."""
    from router.app import create_app
    from router.settings import parse_config

    config = parse_config({"routes": {"m": {"model": "mock", "base_url": "http://127.0.0.1:9/v1"}},
                           "decision_log": {"enabled": False}})
    app = create_app(config, environ={})
    assert isinstance(app, ProxyApp) and app._direct_path == PATH
    with TestClient(app) as client:
        bad = client.post(PATH, content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        assert "x-request-id" in bad.headers
        assert client.get(PATH).status_code == 405
