"""The floor: a bare forwarder with no logic at all, written for the overhead benchmark.

    python -m benchmarks.overhead.floor_server --host 127.0.0.1 --port 8001 \
        --upstream http://127.0.0.1:8000 [--workers N]

An aiohttp web server (uvloop when it is importable) that passes `POST /v1/chat/completions` (and
`/chat/completions`) to the upstream through one pooled `aiohttp.ClientSession` per process: the request
body bytes and content-type go up unchanged, and the answer comes back as it arrives (status,
content-type, the body chunk by chunk; a Content-Length answer keeps its length, anything else is sent
chunked). No parsing, no decision, no metrics, no logging, no access log. `GET /healthz` (and `/readyz`)
answers 200 once every worker accepts.

What thinkgate adds over this is the cost of its logic; what this adds over the mock is the cost of any
Python HTTP hop (server parse, client round trip, streaming back).

`--workers N` (N > 1): the parent binds the socket once and forks N processes that accept on it, the
same model as uvicorn's `--workers` that `thinkgate serve --workers N` uses; the parent only waits and
stops them on SIGTERM/SIGINT. Only loopback use is intended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any, Callable

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
SESSION: web.AppKey[ClientSession] = web.AppKey("session", ClientSession)


def make_app(upstream: str, ready: Callable[[], bool] = lambda: True) -> web.Application:
    """The forwarder's app; `ready()` decides what /healthz says (all workers up)."""
    upstream = upstream.rstrip("/")

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        session = request.app[SESSION]
        async with session.post(upstream + request.path, data=body, headers=headers) as up:
            response = web.StreamResponse(status=up.status, reason=up.reason)
            content_type = up.headers.get("Content-Type")
            if content_type is not None:
                response.headers["Content-Type"] = content_type
            length = up.headers.get("Content-Length")
            if length is not None:
                response.content_length = int(length)
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"} if ready() else {"status": "starting"},
                                 status=200 if ready() else 503)

    async def session_ctx(app: web.Application) -> Any:
        # one pooled client per process; keep-alive to the upstream, no per-host limit below the load's
        connector = TCPConnector(limit=1024, limit_per_host=1024, keepalive_timeout=60, ttl_dns_cache=None)
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=60), auto_decompress=False,
                                 skip_auto_headers=("User-Agent",)) as session:
            app[SESSION] = session
            yield

    app = web.Application(client_max_size=16 * 1024 * 1024)
    for path in CHAT_PATHS:
        app.router.add_post(path, forward)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    app.cleanup_ctx.append(session_ctx)
    return app


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return None


def loop_name() -> str:
    return "uvloop" if _loop_factory() is not None else "asyncio"


async def _serve(app: web.Application, *, sock: socket.socket | None = None, host: str = "127.0.0.1",
                 port: int = 0, on_started: Callable[[int], None] = lambda port: None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site: web.BaseSite = (web.SockSite(runner, sock) if sock is not None else
                          web.TCPSite(runner, host, port, backlog=1024, reuse_address=True))
    await site.start()
    bound = runner.addresses[0][1]
    on_started(bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(coro_fn: Callable[[], Any]) -> None:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(coro_fn())


def _worker(sock: socket.socket, upstream: str, started: Any, workers: int) -> None:
    def ready() -> bool:
        return bool(started.value >= workers)

    def on_started(port: int) -> None:
        with started.get_lock():
            started.value += 1

    run(lambda: _serve(make_app(upstream, ready), sock=sock, on_started=on_started))


def serve_workers(host: str, port: int, upstream: str, workers: int) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("fork")
    started = ctx.Value("i", 0)
    procs = [ctx.Process(target=_worker, args=(sock, upstream, started, workers), daemon=True)
             for _ in range(workers)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for p in procs:
        p.start()
    print(f"floor: listening on http://{host}:{sock.getsockname()[1]} with {workers} workers "
          f"({loop_name()})", flush=True)
    code = 0
    try:
        while not stopping:
            if any(p.exitcode is not None for p in procs):
                print("floor: a worker exited; stopping", file=sys.stderr, flush=True)
                code = 1
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.exitcode is None and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(10)
            if p.exitcode is None:
                p.kill()
                p.join(5)
        sock.close()
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead.floor_server",
                                description="A bare forwarder (aiohttp server + pooled aiohttp client, uvloop): "
                                "the overhead benchmark's floor.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (0: pick a free one and print it)")
    p.add_argument("--upstream", required=True, help="upstream base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--workers", type=int, default=1, help="processes accepting on the port (default 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print("--workers must be >= 1", file=sys.stderr)
        return 2
    try:
        if args.workers > 1:
            return serve_workers(args.host, args.port, args.upstream, args.workers)

        def on_started(port: int) -> None:
            print(f"floor: listening on http://{args.host}:{port} ({loop_name()})", flush=True)

        run(lambda: _serve(make_app(args.upstream), host=args.host, port=args.port, on_started=on_started))
    except OSError as exc:
        print(f"floor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
