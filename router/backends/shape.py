"""What an upstream's answer must look like before the proxy relies on it (pure checks, no I/O).

An upstream that answers 200 with a body of the wrong shape (a list, `null`, `choices` as a string) is a broken
upstream: `UpstreamError` (502), never a 500 from code that indexed into it, and never a 200 that passes the
garbage on. `usage` is metadata: a malformed one is dropped, and token counts that are not integers from 0 to
`MAX_TOKENS` are removed, so that metrics and the decision log only see plausible numbers.
"""

from __future__ import annotations

from typing import Any

from ..errors import UpstreamError

MAX_TOKENS = 10**9  # far above any context window; larger counts are garbage, not usage


def _kind(value: Any) -> str:
    if isinstance(value, float):  # json_codec.NonFinite (a NaN the upstream sent) too
        return "float"
    return "null" if value is None else type(value).__name__.replace("dict", "object").replace("list", "array")


def _malformed(what: str) -> UpstreamError:
    return UpstreamError(f"upstream returned a malformed response: {what}", code="bad_upstream_response")


def _text_field(holder: dict[str, Any], name: str, where: str) -> None:
    value = holder.get(name)
    if value is not None and not isinstance(value, str):
        raise _malformed(f"{where}.{name} is {_kind(value)}, not a string")


def _index(choice: dict[str, Any], i: int) -> None:
    index = choice.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        raise _malformed(f"choices[{i}].index is {_kind(index)}, not an integer")


def _token_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= MAX_TOKENS else None


def clean_usage(usage: Any) -> dict[str, Any] | None:
    """`usage` with only plausible token counts (nested `*_details` objects too), or None if it is not an object."""
    if not isinstance(usage, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in usage.items():
        if key.endswith("_details"):
            details = clean_usage(value)
            if details is not None:
                out[key] = details
        elif key.endswith("tokens"):
            count = _token_count(value)
            if count is not None:
                out[key] = count
        else:
            out[key] = value
    return out


def _usage_in_place(obj: dict[str, Any]) -> None:
    if "usage" in obj:
        usage = clean_usage(obj["usage"])
        if usage is None:
            del obj["usage"]
        else:
            obj["usage"] = usage


def _error_inside(obj: dict[str, Any]) -> None:
    """Some servers answer 200 with `{"error": ...}`; that is an upstream error, not an answer."""
    if "error" in obj and "choices" not in obj:
        err = obj["error"]
        message = err.get("message") if isinstance(err, dict) else err
        raise UpstreamError(f"upstream error: {str(message)[:500]}")


def check_completion(obj: Any) -> dict[str, Any]:
    """A `chat.completion`: an object with a non-empty `choices` array of objects, each with a `message` object
    whose `content` and `reasoning_content` are strings or null. Returns it with `usage` cleaned."""
    if not isinstance(obj, dict):
        raise _malformed(f"the body is a JSON {_kind(obj)}, not an object")
    _error_inside(obj)
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _malformed(f"choices is {_kind(choices) if not isinstance(choices, list) else 'empty'}")
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise _malformed(f"choices[{i}] has no message object")
        _index(choice, i)
        for name in ("content", "reasoning_content"):
            _text_field(choice["message"], name, f"choices[{i}].message")
    _usage_in_place(obj)
    return obj


def check_chunk(obj: Any) -> dict[str, Any]:
    """A `chat.completion.chunk`: an object whose `choices`, if present, is an array of objects, each `delta` an
    object with string-or-null text fields. Returns it with `usage` cleaned."""
    if not isinstance(obj, dict):
        raise _malformed(f"a stream chunk is a JSON {_kind(obj)}, not an object")
    _error_inside(obj)
    choices = obj.get("choices")
    if choices is not None:
        if not isinstance(choices, list):
            raise _malformed(f"a stream chunk's choices is {_kind(choices)}")
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise _malformed(f"a stream chunk's choices[{i}] is {_kind(choice)}")
            _index(choice, i)
            delta = choice.get("delta")
            if delta is not None:
                if not isinstance(delta, dict):
                    raise _malformed(f"a stream chunk's choices[{i}].delta is {_kind(delta)}")
                for name in ("content", "reasoning_content"):
                    _text_field(delta, name, f"choices[{i}].delta")
    _usage_in_place(obj)
    return obj


def finished(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries a finish_reason (the stream's answer is complete)."""
    return any(isinstance(c, dict) and c.get("finish_reason") for c in chunk.get("choices") or ())
