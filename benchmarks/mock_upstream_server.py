"""A minimal, fast OpenAI-compatible upstream for overhead benchmarks, runnable as its own process.

    python -m benchmarks.mock_upstream_server --port 0        # prints "mock-upstream: listening on URL"

It answers `POST /v1/chat/completions` with a fixed short reply and fixed usage, non-streaming or streamed
as server-sent events (chunked transfer encoding, one HTTP chunk per event), plus `GET /readyz`,
`GET /healthz` and `GET /v1/models`. It is a raw `asyncio.Protocol` speaking just enough HTTP/1.1
(keep-alive, pipelining, Content-Length or chunked request bodies) so that the mock itself costs far less
than the proxy it is used to measure: no framework, no per-request task, cached response bodies.

Only loopback use is intended; it binds 127.0.0.1 unless told otherwise.

The OpenAI wire shapes (`completion_body`, `chunk_body`, `usage_chunk_body`) are shared with the tests'
scripted upstream (tests/support/mock_upstream.py), so both mocks speak exactly the same format.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

DEFAULT_REPLY = "Hello! This is a short, fixed reply from the benchmark mock."
USAGE = {"prompt_tokens": 24, "completion_tokens": 12, "total_tokens": 36}
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 431: "Request Header Fields Too Large"}


def completion_body(model: str, text: str, usage: dict[str, int], created: int) -> dict[str, Any]:
    """A non-streamed chat completion with one choice."""
    return {"id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage}


def chunk_body(model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One streamed chunk with one choice."""
    return {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk_body(model: str, created: int, usage: dict[str, int]) -> dict[str, Any]:
    """The final streamed chunk that `stream_options.include_usage` asks for: no choices, only usage."""
    return {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage}


class MockConfig:
    """What the mock answers with; shared by every connection."""

    def __init__(self, reply: str = DEFAULT_REPLY, chunk_words: int = 2, chunk_delay_s: float = 0.0) -> None:
        self.reply = reply
        self.chunk_delay_s = chunk_delay_s
        words = reply.split(" ")
        step = max(1, chunk_words)
        pieces = [" ".join(words[i:i + step]) for i in range(0, len(words), step)]
        self.pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
        self.created = int(time.time())
        self._completion_cache: dict[str, bytes] = {}
        self._stream_cache: dict[tuple[str, bool], list[bytes]] = {}

    def completion(self, model: str) -> bytes:
        body = self._completion_cache.get(model)
        if body is None:
            body = _dumps(completion_body(model, self.reply, USAGE, self.created))
            if len(self._completion_cache) < 64:
                self._completion_cache[model] = body
        return body

    def stream_events(self, model: str, include_usage: bool) -> list[bytes]:
        """The SSE events of one streamed reply, each already framed as an HTTP/1.1 chunk."""
        key = (model, include_usage)
        events = self._stream_cache.get(key)
        if events is None:
            datas = [chunk_body(model, self.created, {"role": "assistant", "content": ""})]
            datas += [chunk_body(model, self.created, {"content": piece}) for piece in self.pieces]
            datas.append(chunk_body(model, self.created, {}, "stop"))
            if include_usage:
                datas.append(usage_chunk_body(model, self.created, USAGE))
            raw = [b"data: " + _dumps(d) + b"\n\n" for d in datas] + [b"data: [DONE]\n\n"]
            events = [b"%x\r\n%s\r\n" % (len(e), e) for e in raw]
            if len(self._stream_cache) < 64:
                self._stream_cache[key] = events
        return events


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed stream is being written; later pipelined requests wait for it
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    # -- parsing -----------------------------------------------------------------------------------

    def _process(self) -> None:
        while not self.busy and not self.closed:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    self._send_json(431, {"error": {"message": "headers too large"}}, keep_alive=False)
                return
            try:
                lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._send_json(400, {"error": {"message": "bad request line"}}, keep_alive=False)
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            start = end + 4
            if "chunked" in headers.get("transfer-encoding", "").lower():
                parsed = _parse_chunked(self.buf, start)
                if parsed is None:
                    return  # incomplete
                body, consumed = parsed
            else:
                try:
                    length = int(headers.get("content-length", "0") or 0)
                except ValueError:
                    self._send_json(400, {"error": {"message": "bad content-length"}}, keep_alive=False)
                    return
                if length > MAX_BODY_BYTES:
                    self._send_json(413, {"error": {"message": "body too large"}}, keep_alive=False)
                    return
                if len(self.buf) < start + length:
                    return  # incomplete
                body, consumed = bytes(self.buf[start:start + length]), start + length
            del self.buf[:consumed]
            conn = headers.get("connection", "").lower()
            keep_alive = (version == "HTTP/1.1" and conn != "close") or (version == "HTTP/1.0" and conn == "keep-alive")
            self._handle(method, target.split("?", 1)[0], body, keep_alive)
            if not keep_alive:
                return

    # -- handling ----------------------------------------------------------------------------------

    def _handle(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        if path in ("/v1/chat/completions", "/chat/completions"):
            if method != "POST":
                self._send_json(405, {"error": {"message": "use POST"}}, keep_alive)
                return
            try:
                request = json.loads(body)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError:
                self._send_json(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}},
                                keep_alive)
                return
            model = str(request.get("model") or "mock-model")
            if request.get("stream"):
                include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
                self._send_stream(self.config.stream_events(model, include_usage), keep_alive)
            else:
                self._send(200, self.config.completion(model), keep_alive)
        elif path in ("/readyz", "/healthz", "/health"):
            self._send_json(200, {"status": "ready"}, keep_alive)
        elif path in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]}, keep_alive)
        else:
            self._send_json(404, {"error": {"message": f"no route {method} {path}"}}, keep_alive)

    def _send_json(self, status: int, data: Any, keep_alive: bool) -> None:
        self._send(status, _dumps(data), keep_alive)

    def _send(self, status: int, body: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        head = _head(status, [("content-type", "application/json"), ("content-length", str(len(body)))],
                     keep_alive)
        self.transport.write(head + body)
        if not keep_alive:
            self.transport.close()
            self.closed = True

    def _send_stream(self, events: list[bytes], keep_alive: bool) -> None:
        assert self.transport is not None
        head = _head(200, [("content-type", "text/event-stream"), ("cache-control", "no-cache"),
                           ("transfer-encoding", "chunked")], keep_alive)
        if not self.config.chunk_delay_s:
            self.transport.write(head + events[0])
            for event in events[1:]:
                self.transport.write(event)
            self._end_stream(keep_alive)
            return
        self.busy = True
        self.transport.write(head + events[0])
        asyncio.get_running_loop().create_task(self._slow_stream(events[1:], keep_alive))

    async def _slow_stream(self, events: list[bytes], keep_alive: bool) -> None:
        assert self.transport is not None
        for event in events:
            await asyncio.sleep(self.config.chunk_delay_s)
            if self.closed:
                return
            self.transport.write(event)
        self._end_stream(keep_alive)
        self.busy = False
        if keep_alive and not self.closed:
            self._process()

    def _end_stream(self, keep_alive: bool) -> None:
        assert self.transport is not None
        self.transport.write(b"0\r\n\r\n")
        if not keep_alive:
            self.transport.close()
            self.closed = True


def _parse_chunked(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`; None if it is not complete yet."""
    out = bytearray()
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end >= 0 and trailer_end != pos:  # skip trailers
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(out), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos:pos + size]
        pos += size + 2


async def serve(host: str = "127.0.0.1", port: int = 0, *, config: MockConfig | None = None,
                started: "asyncio.Future[int] | None" = None, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or forever); `started` receives the bound port."""
    config = config or MockConfig()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(config), host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    if started is not None and not started.done():
        started.set_result(bound)
    stop = stop or asyncio.Event()
    async with server:
        await stop.wait()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mock_upstream_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (0: pick a free one and print it)")
    p.add_argument("--reply", default=DEFAULT_REPLY, help="the fixed reply text")
    p.add_argument("--chunk-words", type=int, default=2, help="words per streamed content delta")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between streamed events")
    p.add_argument("--uvloop", action="store_true", help="use uvloop if it is installed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = MockConfig(args.reply, args.chunk_words, args.chunk_delay_ms / 1000.0)
    if args.uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]

            uvloop.install()
        except ImportError:
            print("mock-upstream: uvloop is not installed; using asyncio's loop", file=sys.stderr)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        started: asyncio.Future[int] = loop.create_future()
        task = asyncio.ensure_future(serve(args.host, args.port, config=config, started=started, stop=stop))
        done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            print(f"mock-upstream: listening on http://{args.host}:{started.result()}", flush=True)
        await task

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"mock-upstream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
