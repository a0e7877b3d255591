"""Request validation: what passes, which field a rejection names, and that unknown fields survive."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import InvalidRequest
from router.schemas import ChatCompletionRequest, validate_chat_request


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_minimal_request_gets_defaults() -> None:
    req = validate_chat_request(body())
    assert isinstance(req, ChatCompletionRequest)
    assert req.model == "m" and req.stream is False and req.stream_options is None and req.max_tokens is None
    assert req.messages[0].role == "user" and req.messages[0].content == "hi"


def test_unknown_fields_are_kept() -> None:
    req = validate_chat_request(body(tools=[{"type": "function"}], response_format={"type": "json_object"},
                                     messages=[{"role": "user", "content": "hi", "name": "ann"}]))
    dumped = req.model_dump()
    assert dumped["tools"] == [{"type": "function"}] and dumped["response_format"] == {"type": "json_object"}
    assert dumped["messages"][0]["name"] == "ann"


def test_content_parts_and_stream_options() -> None:
    req = validate_chat_request(body(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                     stream=True, stream_options={"include_usage": True}))
    assert req.stream and req.stream_options is not None and req.stream_options.include_usage


@pytest.mark.parametrize("raw", [[], "text", 3, None])
def test_non_object_body(raw: Any) -> None:
    with pytest.raises(InvalidRequest, match="JSON object") as info:
        validate_chat_request(raw)
    assert info.value.status == 400


@pytest.mark.parametrize("raw,param", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    (body(model=""), "model"),
    (body(messages=[]), "messages"),
    (body(messages=[{"role": "robot", "content": "hi"}]), "messages.0.role"),
    (body(max_tokens=0), "max_tokens"),
    (body(max_completion_tokens=-1), "max_completion_tokens"),
    (body(temperature=2.5), "temperature"),
    (body(top_p=0), "top_p"),
    (body(n=2), "n"),
    (body(stream="yes please"), "stream"),
])
def test_rejection_names_the_field(raw: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_chat_request(raw)
    assert info.value.param == param
    assert f"'{param}'" in info.value.message
    assert info.value.to_openai()["error"]["param"] == param
