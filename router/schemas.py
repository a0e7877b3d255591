"""Request validation for the OpenAI chat-completions wire format.

The proxy validates with these models but forwards the client's original dict, so fields this schema does
not know (tools, response_format, provider extensions, ...) reach the upstream untouched. Because the dict is
forwarded as the client wrote it, the fields the schema knows are validated strictly (JSON types as OpenAI
documents them, no coercion): `"stream": "false"` is a 400, not a false that a truthiness test would read as
true, and `"max_tokens": "5"` is a 400 rather than a string sent upstream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InvalidRequest


class ContentPart(BaseModel):
    """One part of a list `content`; a text part must carry its text as a string."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: Any = None

    @model_validator(mode="after")
    def _text_is_a_string(self) -> "ContentPart":
        if self.type == "text" and not isinstance(self.text, str):
            raise ValueError("a text part needs 'text' as a string")
        return self


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    reasoning_effort: str | None = None


def validate_chat_request(raw: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body; raise `InvalidRequest` naming the first bad field."""
    if not isinstance(raw, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = max(errors, key=lambda e: len(e["loc"]))  # the most specific (for unions: the branch that got deepest)
        param = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part)) or None
        msg = first["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"invalid value for '{param}': {msg}", param=param) from None


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried in the error location ("list[ContentPart]"); clients know
    fields, not Python types."""
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool", "ContentPart"))
