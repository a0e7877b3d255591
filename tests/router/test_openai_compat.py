"""The pass-through backend against the shared loopback mock upstream (a real HTTP server)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import pytest
from support.mock_upstream import MockUpstream

from router.backends.openai_compat import OpenAICompatBackend
from router.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable

T = TypeVar("T")
BODY = {"model": "upstream-model", "messages": [{"role": "user", "content": "hello there"}]}


def run(url: str, use: Callable[[OpenAICompatBackend], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        backend = OpenAICompatBackend(url, **kwargs)
        try:
            return await use(backend)
        finally:
            await backend.aclose()

    return asyncio.run(main())


async def collect(chunks: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in chunks]


def test_complete_forwards_the_body_and_returns_the_json(mock: MockUpstream, upstream_url: str) -> None:
    result = run(upstream_url, lambda b: b.complete({**BODY, "tools": [{"type": "function"}], "stream": True}))
    assert result["choices"][0]["message"]["content"] == "echo: hello there"
    sent = mock.requests[-1]
    assert sent["stream"] is False and sent["tools"] == [{"type": "function"}] and sent["model"] == "upstream-model"


def test_stream_yields_parsed_chunks_until_done(mock: MockUpstream, upstream_url: str) -> None:
    chunks = run(upstream_url, lambda b: collect(b.stream({**BODY, "stream_options": {"include_usage": True}})))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echo: hello there"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert mock.requests[-1]["stream"] is True


@pytest.mark.parametrize("sent,client", [(400, 400), (429, 429), (401, 502), (500, 502), (503, 503)])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_keep_the_message_and_map_the_status(mock: MockUpstream, upstream_url: str,
                                                              sent: int, client: int, stream: bool) -> None:
    mock.fail = (sent, "quota exhausted")

    async def call(b: OpenAICompatBackend) -> Any:
        return await (collect(b.stream(BODY)) if stream else b.complete(BODY))

    with pytest.raises(UpstreamError) as info:
        run(upstream_url, call)
    assert info.value.status == client
    assert info.value.message == "upstream error: quota exhausted" and info.value.type == "mock_error"


def test_api_key_and_extra_headers_reach_the_upstream(mock: MockUpstream, upstream_url: str) -> None:
    run(upstream_url, lambda b: b.complete(BODY), api_key="sk-upstream", extra_headers={"x-team": "a"})
    headers = mock.headers[-1]
    assert headers["authorization"] == "Bearer sk-upstream" and headers["x-team"] == "a"
    run(upstream_url, lambda b: b.complete(BODY))
    assert "authorization" not in mock.headers[-1]


def test_prefill_needs_a_vllm_style_upstream(mock: MockUpstream, upstream_url: str) -> None:
    with pytest.raises(UpstreamError, match="prefill"):
        run(upstream_url, lambda b: b.complete(BODY, prefill=True))
    assert not mock.requests
    run(upstream_url, lambda b: b.complete(BODY, prefill=True), prefill_style="vllm")
    sent = mock.requests[-1]
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False


def test_slow_upstream_times_out(mock: MockUpstream, upstream_url: str) -> None:
    mock.delay_s = 1.0
    with pytest.raises(UpstreamTimeout) as info:
        run(upstream_url, lambda b: b.complete(BODY), timeout_s=0.1)
    assert info.value.status == 504


def test_unreachable_upstream() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for use in (lambda b: b.complete(BODY), lambda b: collect(b.stream(BODY))):
        with pytest.raises(UpstreamUnavailable) as info:
            run(f"http://127.0.0.1:{port}/v1", use)
        assert info.value.status == 502 and "unreachable" in info.value.message
