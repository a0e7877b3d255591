"""The stack floor: a bare forwarder on thinkgate's own server stack, written for the overhead benchmark.

    python -m benchmarks.overhead.stack_floor_server --host 127.0.0.1 --port 8002 \
        --upstream http://127.0.0.1:8000

The same job as `floor_server.py` (request bytes up unchanged through one pooled `aiohttp.ClientSession`,
the answer back as it arrives, no parsing, decision, metrics or logging), served the way `thinkgate serve`
serves: uvicorn with httptools and uvloop, a Starlette app with one `Route`, a `StreamingResponse`. The
client session is configured as thinkgate's upstream client is (`router/backends/openai_compat.py`):
per-read and connect timeouts, decompression on, a 1 MiB read buffer.

Against `floor_server.py` (aiohttp's server) it separates two costs: what the chosen server stack costs
over the lightest Python forwarder, and what thinkgate's own logic costs over that stack. An answer that is
not an event stream is read whole and sent as one `Response`, as thinkgate answers a non-streamed request
(Starlette's `StreamingResponse` runs a task group per response: under callgrind a forwarder streaming every
answer back cost 0.96 M instructions per request against 0.61 M for this one, and the bare forwarder 0.57 M);
an event stream is passed on as it arrives, in a `StreamingResponse`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .floor_server import CHAT_PATHS


def make_app(upstream: str) -> Starlette:
    upstream = upstream.rstrip("/")
    session: aiohttp.ClientSession | None = None

    async def forward(request: Request) -> Response:
        assert session is not None
        body = await request.body()
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        up = await session.post(upstream + request.url.path, data=body, headers=headers)
        media_type = up.headers.get("Content-Type")
        if not (media_type or "").startswith("text/event-stream"):
            try:
                data = await up.read()
            finally:
                up.release()
            return Response(data, status_code=up.status, media_type=media_type)
        out_headers = {}
        length = up.headers.get("Content-Length")
        if length is not None:
            out_headers["content-length"] = length

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in up.content.iter_any():
                    yield chunk
            finally:
                up.release()

        return StreamingResponse(chunks(), status_code=up.status, headers=out_headers, media_type=media_type)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=1024, limit_per_host=1024)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=120.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=1 << 20) as s:
            session = s
            yield

    routes = [Route(path, forward, methods=["POST"]) for path in CHAT_PATHS]
    routes += [Route("/healthz", healthz), Route("/readyz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead.stack_floor_server",
                                description="A bare forwarder on uvicorn + Starlette (thinkgate's server stack).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="upstream base URL, e.g. http://127.0.0.1:8000")
    args = p.parse_args(argv)
    try:
        uvicorn.run(make_app(args.upstream), host=args.host, port=args.port, loop="uvloop", http="httptools",
                    log_level="warning", access_log=False)
    except OSError as exc:
        print(f"stack floor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
