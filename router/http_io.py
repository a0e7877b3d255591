"""Small HTTP helpers shared by the endpoints: bounded body reading, JSON and SSE encoding, error bodies."""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import AuthenticationFailed, InvalidRequest, PayloadTooLarge, ThinkgateError
from .json_codec import MISS, dumps, fast_loads


def new_request_id() -> str:
    return "%032x" % random.getrandbits(128)  # uuid4 costs a syscall


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, headers=headers, media_type="application/json")


def error_response(exc: ThinkgateError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.to_openai(), exc.status, {**exc.headers(), **(headers or {})})


def sse(data: Any) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """Read at most `max_bytes` (413 beyond) and decode JSON (400 naming the position on failure)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    return decode_json(raw)


MAX_JSON_DEPTH = 64  # deeper than any chat request or tool schema; far below Python's recursion limit
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFinite(literal)
    return value


def _no_constant(literal: str) -> Any:
    raise _NonFinite(literal)


class _NonFinite(ValueError):
    pass


def decode_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity or overflowing numbers, integers of at most 4,300 digits, nesting at
    most `MAX_JSON_DEPTH`, no lone UTF-16 surrogates. Whatever passes can be re-encoded and forwarded.

    orjson reads the body first: it refuses NaN/Infinity, overflowing numbers, invalid UTF-8 and lone surrogates,
    and `fast_loads` checks the depth and passes on nothing it may have read differently (see json_codec). What it
    does not pass on (invalid bodies, and valid ones with integers beyond 64 bits) the stdlib reads below, which
    accepts them, or refuses them with the messages it always gave."""
    data = fast_loads(raw, MAX_JSON_DEPTH)
    if data is not MISS:
        return data
    try:  # decoded here: json.loads(bytes) lets UTF-8-encoded lone surrogates through ("surrogatepass")
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"invalid JSON in request body: {exc.msg} (line {exc.lineno}, column {exc.colno})") \
            from None
    except RecursionError:
        raise InvalidRequest(f"request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except _NonFinite as exc:
        raise InvalidRequest(f"request body has a number JSON cannot carry: {str(exc)[:40]}") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise InvalidRequest("request body has an integer with too many digits (the limit is 4300)") from None
    _check_structure(data, _ESCAPED_SURROGATE.search(raw) is not None)
    return data


def _check_structure(data: Any, may_have_surrogates: bool) -> None:
    """Depth of containers, and (only when the raw body escapes a surrogate) strings that cannot be encoded."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
            if may_have_surrogates:
                stack.extend((key, depth) for key in node)
        elif isinstance(node, list):
            children = node
        else:
            if may_have_surrogates and isinstance(node, str):
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidRequest("request body has a lone UTF-16 surrogate (\\ud800-\\udfff) in a "
                                         "string") from None
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(f"request body is nested more than {MAX_JSON_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children if may_have_surrogates or
                     isinstance(child, (dict, list)))


def check_api_key(request: Request, keys: frozenset[str]) -> None:
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in keys:
        raise AuthenticationFailed("missing or invalid API key: send 'Authorization: Bearer <key>'")
