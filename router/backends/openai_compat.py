"""Direct pass-through to an OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp, ...).

A raw pooled HTTP client, because litellm's client costs about 4 ms of CPU a call here. The client is
aiohttp's rather than httpx's: under 32 concurrent requests httpcore's pool scans every pooled connection
(with two syscalls each) at every request start and finish, which capped one proxy worker at about 250
requests/s; aiohttp's connector measured 4.4x that in the same run (benchmarks/reports/overhead-profile.md).
Unknown request fields are forwarded untouched.

What an upstream cannot do to the proxy (each a `backend_options` key with its default):

- hold it forever: `timeout_s` bounds each wait for bytes, `total_timeout_s` (600) the whole exchange, stream or
  not, so an upstream that trickles bytes gets a 504 (a stream's bound is checked as each piece arrives);
- queue requests without end: at most `max_connections` (256) exchanges run at once, and a request waits at most
  `pool_wait_s` (5) for a free one, then gets 503 `upstream_busy` with `Retry-After` (load shedding);
- exhaust memory: a body over `max_response_bytes` (64 MiB, counted after decompression, for a stream the sum
  of its bytes) or a stream line over `max_line_bytes` (1 MiB) is a 502;
- pass garbage on: a body of the wrong shape (see `shape.py`), a streamed 200 that is not an event stream, or a
  stream that ends before `[DONE]` without any finish_reason is a 502 (an error event once streaming began);
- leak the upstream key: error messages are redacted (`router.redact`) before they leave the backend.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
from typing import Any, AsyncIterator, Literal

import aiohttp

from ..errors import UpstreamBusy, UpstreamError, UpstreamTimeout, UpstreamUnavailable, upstream_status
from ..json_codec import dumps, loads
from ..redact import Redactor
from .base import Backend, Body, Chunk
from .shape import check_chunk, check_completion, finished

PrefillStyle = Literal["none", "vllm"]

MAX_ERROR_BODY = 64 * 1024
LARGE_BODY = 512 * 1024  # an upstream error body is read up to this much; its message is cut to 500 chars


def _error_message(response_body: bytes, status: int) -> tuple[str, str | None]:
    """Pull the message (and type) out of an upstream error body, whatever its shape."""
    try:
        data = json.loads(response_body)
    except (ValueError, RecursionError):
        text = response_body.decode("utf-8", "replace").strip()
        return (text[:500] or f"upstream returned HTTP {status}"), None
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or json.dumps(err)[:500]
        return f"upstream error: {str(message)[:500]}", err.get("type") if isinstance(err.get("type"), str) else None
    return f"upstream error: {str(err)[:500]}", None


class _Slots:
    """At most `limit` upstream exchanges at once; a request waits at most `wait_s` for one, then is shed."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit, self.wait_s = limit, wait_s
        self._sem: asyncio.Semaphore | None = None

    async def acquire(self) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        if not self._sem.locked():
            await self._sem.acquire()  # a free slot: no task, no timer
            return
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait_s)
        except TimeoutError:
            raise UpstreamBusy(f"all {self.limit} upstream connections stayed busy for {self.wait_s:g} s; "
                               "retry shortly", retry_after_s=max(1, math.ceil(self.wait_s))) from None

    def release(self) -> None:
        assert self._sem is not None
        self._sem.release()


class OpenAICompatBackend(Backend):
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout_s: float = 120.0,
                 connect_timeout_s: float = 5.0, max_connections: int = 256, pool_wait_s: float = 5.0,
                 total_timeout_s: float = 600.0, max_response_bytes: int = 64 * 1024 * 1024,
                 max_line_bytes: int = 1024 * 1024, prefill_style: PrefillStyle = "none",
                 extra_headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": "application/json", **(extra_headers or {})}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = headers
        # `sock_read` bounds the wait for each piece of the response; `total_timeout_s` the whole exchange.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=timeout_s)
        self._total_s = total_timeout_s
        self._max_connections = max_connections
        self._slots = _Slots(max_connections, pool_wait_s)
        self._max_bytes = max_response_bytes
        self._max_line = max_line_bytes
        self._redact = Redactor([api_key, *(extra_headers or {}).values()])
        self._session: aiohttp.ClientSession | None = None
        self.prefill_style = prefill_style
        self.supports_prefill = prefill_style != "none"

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, created on first use (it must be created inside the running event loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, timeout=self._timeout,
                                                  auto_decompress=True, read_bufsize=1 << 20)
        return self._session

    def _payload(self, body: Body, prefill: bool) -> bytes | io.BytesIO:
        if prefill:
            if self.prefill_style != "vllm":
                raise UpstreamError("this upstream cannot continue an assistant message (prefill)", status=500)
            body = {**body, "continue_final_message": True, "add_generation_prompt": False}
        data = dumps(body)
        # aiohttp writes bytes in one go and warns above 1 MiB; a stream object it writes in pieces.
        return io.BytesIO(data) if len(data) > LARGE_BODY else data

    def _upstream_error(self, content: bytes, status: int) -> UpstreamError:
        message, kind = _error_message(content, status)
        return UpstreamError(self._redact(message), status=upstream_status(status), upstream_type=kind)

    async def _read(self, response: aiohttp.ClientResponse, limit: int, *, cut: bool = False) -> bytes:
        """The body, at most `limit` bytes: beyond that a 502, or with `cut` just the first `limit` bytes."""
        if not cut and (response.content_length or 0) > limit:
            raise self._too_large()
        buf = bytearray()
        async for data in response.content.iter_any():
            buf.extend(data)
            if len(buf) > limit:
                if cut:
                    return bytes(buf[:limit])
                raise self._too_large()
        return bytes(buf)

    def _too_large(self) -> UpstreamError:
        return UpstreamError(f"upstream response exceeds max_response_bytes ({self._max_bytes} bytes)",
                             code="upstream_response_too_large")

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        payload = self._payload({**body, "stream": False}, prefill)
        await self._slots.acquire()
        try:
            async with asyncio.timeout(self._total_s):
                async with self._client().post(self._url, data=payload) as response:
                    status = response.status
                    content = await self._read(response, MAX_ERROR_BODY if status >= 400 else self._max_bytes,
                                               cut=status >= 400)
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamError("upstream connection broke mid-response", code="upstream_stream_broken") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc
        finally:
            self._slots.release()
        if status >= 400:
            raise self._upstream_error(content, status)
        try:
            data = loads(content)
        except (ValueError, RecursionError) as exc:
            raise UpstreamError("upstream returned invalid JSON", code="bad_upstream_response") from exc
        return check_completion(data)

    async def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        payload = self._payload({**body, "stream": True}, prefill)
        await self._slots.acquire()
        response: aiohttp.ClientResponse | None = None
        clean = False
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._total_s
            async with asyncio.timeout(self._total_s):  # until the headers: nothing is yielded inside
                response = await self._client().post(self._url, data=payload)
                if response.status >= 400:
                    raise self._upstream_error(await self._read(response, MAX_ERROR_BODY, cut=True), response.status)
                if response.content_type == "application/json":
                    raise self._not_a_stream(await self._read(response, MAX_ERROR_BODY, cut=True))
            done = False
            async for line in self._lines(response, deadline):
                chunk = self._parse_sse_line(line)
                if chunk is _DONE:
                    clean = True
                    return
                if chunk is not None:
                    done = done or finished(chunk)
                    yield chunk
            if not done:
                raise UpstreamError("upstream closed the stream before it finished (no [DONE], no finish_reason)",
                                    code="upstream_stream_broken")
            clean = True
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamError("upstream connection broke mid-stream", code="upstream_stream_broken") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc
        finally:
            if response is not None:
                if clean:
                    response.release()  # read to the end: the connection goes back to the pool
                else:
                    response.close()  # cut short (error, client gone): the connection cannot be reused
            self._slots.release()

    def _not_a_stream(self, content: bytes) -> UpstreamError:
        message, kind = _error_message(content, 502)
        if message.startswith("upstream error:") and b'"error"' in content:
            return UpstreamError(self._redact(message), upstream_type=kind)
        return UpstreamError("upstream answered a streaming request with application/json, not an event stream",
                             code="upstream_stream_broken")

    async def _lines(self, response: aiohttp.ClientResponse, deadline: float) -> AsyncIterator[bytes]:
        """The body's lines, each at most `max_line_bytes`; the stream as a whole within `max_response_bytes`
        and the total deadline (checked as each piece arrives; `timeout_s` bounds the wait for a piece)."""
        loop = asyncio.get_running_loop()
        buf = bytearray()
        total = 0
        async for data in response.content.iter_any():
            total += len(data)
            if total > self._max_bytes:
                raise self._too_large()
            if loop.time() > deadline:
                raise UpstreamTimeout(f"upstream stream exceeded total_timeout_s ({self._total_s:g} s)")
            buf.extend(data)
            start = 0
            while (end := buf.find(b"\n", start)) != -1:
                yield bytes(buf[start:end])
                start = end + 1
            del buf[:start]
            if len(buf) > self._max_line:
                raise UpstreamError(f"upstream stream line exceeds max_line_bytes ({self._max_line} bytes)",
                                    code="upstream_stream_broken")
        if buf:
            yield bytes(buf)

    def _parse_sse_line(self, raw: bytes) -> Chunk | None | Any:
        if not raw.startswith(b"data:"):
            return None  # comments, `event:` lines, blank separators
        data = raw[5:].strip()
        if data == b"[DONE]":
            return _DONE
        if not data:
            return None
        try:
            chunk = loads(data)
        except (ValueError, RecursionError) as exc:
            raise UpstreamError("upstream sent an invalid stream chunk", code="bad_upstream_response") from exc
        if isinstance(chunk, dict) and "error" in chunk:
            message, kind = _error_message(data, 502)
            raise UpstreamError(self._redact(message), upstream_type=kind)
        return check_chunk(chunk)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


_DONE: Any = object()
