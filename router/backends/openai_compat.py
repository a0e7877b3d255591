"""Direct pass-through to an OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp, ...).

A raw pooled httpx client: about 0.6 ms a round trip here, against about 4 ms of CPU for litellm's client,
which is why this path exists. Unknown request fields are forwarded untouched.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Literal

import httpx

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
                 prefill_style: PrefillStyle = "none", transport: httpx.AsyncBaseTransport | None = None,
                 extra_headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": "application/json", **(extra_headers or {})}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )
        self.prefill_style = prefill_style
        self.supports_prefill = prefill_style != "none"

    def _payload(self, body: Body, prefill: bool) -> bytes:
        if prefill:
            if self.prefill_style != "vllm":
                raise UpstreamError("this upstream cannot continue an assistant message (prefill)", status=500)
            body = {**body, "continue_final_message": True, "add_generation_prompt": False}
        return json.dumps(body, ensure_ascii=False).encode()

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        payload = self._payload({**body, "stream": False}, prefill)
        try:
            response = await self._client.post("/chat/completions", content=payload)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            message, kind = _error_message(response.content, response.status_code)
            raise UpstreamError(message, status=upstream_status(response.status_code), upstream_type=kind)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError("upstream returned invalid JSON") from exc

    async def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        payload = self._payload({**body, "stream": True}, prefill)
        try:
            async with self._client.stream("POST", "/chat/completions", content=payload) as response:
                if response.status_code >= 400:
                    content = await response.aread()
                    message, kind = _error_message(content, response.status_code)
                    raise UpstreamError(message, status=upstream_status(response.status_code), upstream_type=kind)
                async for line in response.aiter_lines():
                    chunk = _parse_sse_line(line)
                    if chunk is _DONE:
                        return
                    if chunk is not None:
                        yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("upstream timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


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
