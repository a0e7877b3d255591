"""Direct pass-through to an OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp, ...).

A raw pooled HTTP client, because litellm's client costs about 4 ms of CPU a call here. The client is
aiohttp's rather than httpx's: under 32 concurrent requests httpcore's pool scans every pooled connection
(with two syscalls each) at every request start and finish, which capped one proxy worker at about 250
requests/s; aiohttp's connector measured 4.4x that in the same run (benchmarks/reports/overhead-profile.md).
Unknown request fields are forwarded untouched.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Literal

import aiohttp

from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable, upstream_status
from .base import Backend, Body, Chunk

PrefillStyle = Literal["none", "vllm"]


def _error_message(response_body: bytes, status: int) -> tuple[str, str | None]:
    """Pull the message (and type) out of an upstream error body, whatever its shape."""
    try:
        data = json.loads(response_body)
    except ValueError:
        text = response_body.decode("utf-8", "replace").strip()
        return (text[:500] or f"upstream returned HTTP {status}"), None
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or json.dumps(err)[:500]
        return f"upstream error: {message}", err.get("type") if isinstance(err.get("type"), str) else None
    return f"upstream error: {str(err)[:500]}", None


class OpenAICompatBackend(Backend):
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout_s: float = 120.0,
                 connect_timeout_s: float = 5.0, max_connections: int = 256,
                 prefill_style: PrefillStyle = "none", extra_headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": "application/json", **(extra_headers or {})}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = headers
        # `sock_read` bounds the wait for each piece of the response (not the whole stream, which may be long).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=timeout_s)
        self._max_connections = max_connections
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

    def _payload(self, body: Body, prefill: bool) -> bytes:
        if prefill:
            if self.prefill_style != "vllm":
                raise UpstreamError("this upstream cannot continue an assistant message (prefill)", status=500)
            body = {**body, "continue_final_message": True, "add_generation_prompt": False}
        return json.dumps(body, ensure_ascii=False).encode()

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        payload = self._payload({**body, "stream": False}, prefill)
        try:
            async with self._client().post(self._url, data=payload) as response:
                content = await response.read()
                status = response.status
        except asyncio.TimeoutError as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc
        if status >= 400:
            message, kind = _error_message(content, status)
            raise UpstreamError(message, status=upstream_status(status), upstream_type=kind)
        try:
            return json.loads(content)
        except ValueError as exc:
            raise UpstreamError("upstream returned invalid JSON") from exc

    async def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        payload = self._payload({**body, "stream": True}, prefill)
        try:
            async with self._client().post(self._url, data=payload) as response:
                if response.status >= 400:
                    content = await response.read()
                    message, kind = _error_message(content, response.status)
                    raise UpstreamError(message, status=upstream_status(response.status), upstream_type=kind)
                async for raw in response.content:
                    chunk = _parse_sse_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    if chunk is _DONE:
                        return
                    if chunk is not None:
                        yield chunk
        except asyncio.TimeoutError as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


_DONE: Any = object()


def _parse_sse_line(line: str) -> Chunk | None | Any:
    if not line.startswith("data:"):
        return None  # comments, `event:` lines, blank separators
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    if not data:
        return None
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise UpstreamError("upstream sent an invalid stream chunk") from exc
    if isinstance(chunk, dict) and "error" in chunk:
        message, kind = _error_message(data.encode(), 502)
        raise UpstreamError(message, upstream_type=kind)
    return chunk
