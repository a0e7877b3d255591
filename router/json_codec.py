"""JSON on the request path: orjson wherever it yields exactly what the stdlib would, the stdlib elsewhere.

orjson parses a chat body or an upstream answer about 3x faster than `json` and writes one several times
faster, but it does not read or write quite the same JSON. Where it differs, these helpers use the stdlib, so
every value read and every byte written means what it meant before:

- reading, orjson turns an integer outside the 64-bit range (19 digits or more) into a float (2**64 comes back
  as 1.8446744073709552e19), silently. In a text with 19 digits in a row, any float that large in orjson's
  result (magnitude >= 2**60: no sampling parameter comes near) sends the text through the stdlib instead,
  which keeps such integers exact;
- reading, orjson refuses what `json.loads` accepts: NaN and Infinity, numbers beyond a double, lone UTF-16
  surrogates, a UTF-8 BOM, UTF-16/32 input, nesting beyond 1,024. Its refusal sends the text through the stdlib
  too, which accepts or refuses it (with its own error message) as before. So does an answer nested beyond
  `UPSTREAM_DEPTH`: the stdlib's own recursion limit then decides, as before;
- writing, orjson refuses integers beyond 64 bits, keys that are not strings, float subclasses and nesting
  beyond 254 (the stdlib writes them: then it is used) and writes a float NaN or Infinity as `null` where the
  stdlib writes `NaN`/`Infinity`. A NaN or Infinity can only come from an upstream's answer (a request body
  with one is refused, see `http_io.decode_json`); `loads` reads it as `NonFinite`, a float subclass, so that
  writing the answer on to the client falls back to the stdlib and the client gets `NaN` as before.

What remains different is insignificant: orjson writes no spaces after separators (the upstream payload had
them), an exponent without a leading zero (`1e-7`, not `1e-07`), and it accepts only UTF-8 input, which
the stdlib path still handles.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

UPSTREAM_DEPTH = 500  # an answer nested deeper is left to the stdlib (which reads about 950 levels, orjson 1,024)
_BIG = 2.0**60  # orjson reads an integer beyond 64 bits as a float of magnitude >= 2**63: such floats are redone
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digits to "0", other bytes to " "
_WRITE = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME  # both refused, as by the stdlib
MISS: Any = object()


class NonFinite(float):
    """A NaN or an infinity read from an upstream's answer: orjson refuses to write a float subclass, so `dumps`
    writes it with the stdlib, as `NaN`, `Infinity` or `-Infinity`, rather than as orjson's `null`."""

    __slots__ = ()


def fast_loads(raw: bytes, max_depth: int) -> Any:
    """orjson's reading of `raw` when it is exactly the stdlib's and nests at most `max_depth` containers deep;
    else `MISS` (orjson refused it, or it may hold an integer orjson read as a float). Never raises."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return MISS
    # Two tests in C spare the walk below for nearly every text: nesting deeper than `max_depth` takes more
    # than 2 * max_depth bytes and more than max_depth opening brackets; and an integer orjson reads as a
    # float has 19 digits or more, and every run of 19 digits has two of its bytes side by side in raw[::9].
    deep = len(raw) > 2 * max_depth and raw.count(b"[") + raw.count(b"{") > max_depth
    if not deep and b"00" not in raw[::9].translate(_DIGITS):
        return data
    stack: list[tuple[Any, int]] = [([data], 0)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= max_depth:
                    return MISS
                stack.append((child, depth + 1))
            elif kind is float and not -_BIG < child < _BIG:
                return MISS
    return data


def _finite_or_marked(literal: str) -> float:
    value = float(literal)
    return value if math.isfinite(value) else NonFinite(value)


def loads(raw: bytes) -> Any:
    """What `json.loads(raw)` returns (raising what it raises: ValueError, RecursionError), except that NaN and
    infinities come back as `NonFinite`."""
    data = fast_loads(raw, UPSTREAM_DEPTH)
    if data is not MISS:
        return data
    return json.loads(raw, parse_constant=NonFinite, parse_float=_finite_or_marked)


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON: `json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()`, and what that
    raises (TypeError, ValueError, UnicodeEncodeError), up to how orjson spells a float (the same value)."""
    try:
        return orjson.dumps(data, option=_WRITE)
    except TypeError:  # orjson.JSONEncodeError: see the module docstring for what it refuses
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
