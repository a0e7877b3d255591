"""The endpoint helpers, on starlette Requests built in-process (no socket)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request

from router.errors import AuthenticationFailed, InvalidRequest, PayloadTooLarge, UpstreamTimeout
from router.http_io import SSE_DONE, check_api_key, error_response, json_response, read_json_body, sse


def request(chunks: list[bytes], headers: dict[str, str] | None = None) -> Request:
    """A POST request whose body arrives in `chunks`, as an ASGI server would deliver it."""
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": raw_headers, "query_string": b""}
    return Request(scope, receive)


def read(chunks: list[bytes], max_bytes: int = 100, headers: dict[str, str] | None = None) -> Any:
    return asyncio.run(read_json_body(request(chunks, headers), max_bytes))


def test_reads_a_body_split_in_chunks() -> None:
    assert read([b'{"a": ', b'[1, 2]', b"}"]) == {"a": [1, 2]}


def test_declared_length_over_the_limit_is_rejected_before_reading() -> None:
    with pytest.raises(PayloadTooLarge, match="1000 bytes; the limit is 100"):
        read([b"{}"], headers={"content-length": "1000"})


def test_streamed_body_over_the_limit_is_rejected() -> None:
    with pytest.raises(PayloadTooLarge, match="limit of 10 bytes"):
        read([b'{"a": "', b"x" * 20, b'"}'], max_bytes=10)


@pytest.mark.parametrize("chunks,needle", [
    ([b""], "empty"),
    ([b"  \n "], "empty"),
    ([b'{"a": "\xff"}'], "UTF-8"),
    ([b'{"a": }'], "line 1, column 7"),
])
def test_bad_bodies_are_client_errors(chunks: list[bytes], needle: str) -> None:
    with pytest.raises(InvalidRequest, match=needle) as info:
        read(chunks)
    assert info.value.status == 400


def test_json_response_is_compact_utf8() -> None:
    response = json_response({"text": "héllo"}, 201, {"x-thinkgate": "1"})
    assert response.status_code == 201 and response.headers["x-thinkgate"] == "1"
    assert response.body == '{"text":"héllo"}'.encode()
    assert response.media_type == "application/json"


def test_error_response_uses_the_status_and_openai_body() -> None:
    response = error_response(UpstreamTimeout("upstream timed out"))
    assert response.status_code == 504
    assert json.loads(response.body) == UpstreamTimeout("upstream timed out").to_openai()


def test_sse_framing() -> None:
    assert sse({"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert SSE_DONE == b"data: [DONE]\n\n"


@pytest.mark.parametrize("header", ["Bearer k1", "bearer  k2 ", "BEARER k1"])
def test_api_key_accepted(header: str) -> None:
    check_api_key(request([], {"authorization": header}), frozenset({"k1", "k2"}))


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer nope"}, {"authorization": "Basic k1"},
                                     {"authorization": "k1"}])
def test_api_key_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        check_api_key(request([], headers), frozenset({"k1"}))
    assert info.value.status == 401


def test_no_keys_configured_means_open() -> None:
    check_api_key(request([]), frozenset())
