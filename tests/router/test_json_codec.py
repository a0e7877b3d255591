"""orjson on the request path (router/json_codec.py) reads and writes what the stdlib did.

Property tests: for arbitrary JSON-like values, and for arbitrary bytes made of JSON's pieces, the request-body
decoder gives the same value or the same error as its stdlib path alone, `loads` what `json.loads` gives, and
`dumps` what `json.dumps` wrote (the same bytes, up to how a float is spelled). Then one explicit case for each
way orjson differs from the stdlib.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import http_io
from router.backends.openai_compat import OpenAICompatBackend
from router.backends.shape import check_completion
from router.errors import InvalidRequest, UpstreamError
from router.http_io import MAX_JSON_DEPTH, decode_json, json_response, sse
from router.json_codec import MISS, UPSTREAM_DEPTH, NonFinite, dumps, fast_loads, loads

MANY = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types, with -0.0 told from 0.0 and NaN equal to NaN (iterative: any depth)."""
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if type(x) is not type(y) and not (isinstance(x, float) and isinstance(y, float)):
            return False
        if isinstance(x, float):
            if not ((math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))):
                return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y))
        elif isinstance(x, dict):
            if list(x) != list(y):
                return False
            pairs.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def stdlib_decode(raw: bytes) -> Any:
    """decode_json as it was: its stdlib path alone."""
    with mock.patch.object(http_io, "fast_loads", lambda raw, depth: MISS):
        return decode_json(raw)


def outcome(fn: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", fn(raw)
    except InvalidRequest as exc:
        return "400", exc.message
    except (ValueError, RecursionError) as exc:
        return "error", type(exc)


def assert_same_decoding(raw: bytes) -> None:
    new, old = outcome(decode_json, raw), outcome(stdlib_decode, raw)
    assert new[0] == old[0] and (same(new[1], old[1]) if new[0] == "value" else new[1] == old[1]), (raw[:200], new, old)
    new, old = outcome(loads, raw), outcome(json.loads, raw)
    assert new[0] == old[0] and (same(new[1], old[1]) if new[0] == "value" else new[1] == old[1]), (raw[:200], new, old)


def stdlib_dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# -- properties --------------------------------------------------------------------------------------------------

_ints = st.one_of(st.integers(), st.integers(-2**64, 2**64), st.integers(-10**40, 10**40),
                  st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**19, -10**19]))
_floats = st.one_of(st.floats(), st.sampled_from([1e16, 1e-7, 0.1, -0.0, 5e-324, 1.7976931348623157e308, 2.0**63,
                                                  -2.0**63, 2.0**64, 1e19, 123456789012345678.0]))
_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                        st.dictionaries(_text, inner, max_size=5)), max_leaves=30)


@MANY
@given(values, st.booleans(), st.booleans())
def test_decoding_any_value_as_the_stdlib_did(value: Any, ascii_only: bool, spaced: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    assert_same_decoding(text.encode("utf-8", "surrogatepass"))  # unescaped lone surrogates: invalid UTF-8


_pieces = st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b" ", b"\t", b"\n", b"\r", b"\\", b"u", b"d", b"8", b"0", b"1", b"9",
    b"-", b"+", b".", b"e", b"E", b"a", b"true", b"false", b"null", b"NaN", b"Infinity", b"\\u", b"\\ud83d",
    b"\\ude00", b"\\ud800", b"\\udfff", b"\x00", b"\x01", b"\x7f", "é".encode(), b"\xff", b"\xed\xa0\x80",
    b"\xef\xbb\xbf", b"\\/", b"\\n", b'\\"', b"\\\\", b"\\x", "\u2028".encode(), "😀".encode(), b"\x80",
    b"1234567890", b"18446744073709551616", b"9223372036854775808", b"1e400", b"1e19", b'"a":', b'{"a":'])


@MANY
@given(st.lists(_pieces, min_size=1, max_size=16), st.sampled_from([b"%s", b'{"a":[%s]}', b'"%s"', b"[%s]"]))
def test_decoding_any_bytes_as_the_stdlib_did(pieces: list[bytes], frame: bytes) -> None:
    assert_same_decoding(frame % b"".join(pieces))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    return [value]


_keys = st.one_of(_text, _ints, st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none())
written = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=5), st.tuples(inner, inner),
                                                         st.dictionaries(_keys, inner, max_size=5)), max_leaves=30)


@MANY
@given(written.filter(lambda v: not any(isinstance(x, float) and not math.isfinite(x) for x in _leaves(v))))
def test_encoding_any_value_as_the_stdlib_did(value: Any) -> None:
    """Any value without a plain NaN or infinity (see test_a_plain_float_nan_is_written_as_null)."""
    try:
        expected: Any = stdlib_dumps(value)
    except Exception as exc:  # noqa: BLE001 - a lone surrogate: UnicodeEncodeError
        expected = type(exc)
    try:
        got: Any = dumps(value)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    if isinstance(expected, bytes) and isinstance(got, bytes):
        assert same(json.loads(got), json.loads(expected))
        if not any(isinstance(x, float) for x in _leaves(value)):
            assert got == expected  # only a float's spelling may differ
    else:
        assert got == expected


# -- request bodies: every rule of decode_json, on the fast path and off it ----------------------------------------

@pytest.mark.parametrize("raw,needle", [
    (b'{"seed": ' + b"9" * 4301 + b"}", "too many digits (the limit is 4300)"),
    (b'{"t": NaN}', "a number JSON cannot carry: NaN"),
    (b'{"t": -Infinity}', "a number JSON cannot carry: -Infinity"),
    (b'{"t": 1e999}', "a number JSON cannot carry: 1e999"),
    (b'{"a": "\xff"}', "not valid UTF-8"),
    ('{"a": "\ud800"}'.encode("utf-8", "surrogatepass"), "not valid UTF-8"),
    (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"a": "\\udfff x"}', "lone UTF-16 surrogate"),
    (b'{"a": "\\ud800\\u0041"}', "lone UTF-16 surrogate"),
    (b'{"a": "\\ude00\\ud83d"}', "lone UTF-16 surrogate"),
    (b'{"\\ud800": 1}', "lone UTF-16 surrogate"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), f"nested more than {MAX_JSON_DEPTH} levels"),
    (b"[" * 1025 + b"]" * 1025, "nested more than"),  # beyond orjson's own limit too
    (b"[" * 100_000, "nested more than"),
    (b'\xef\xbb\xbf{"a": 1}', "invalid JSON in request body: Unexpected UTF-8 BOM"),
    (b'{"a": 1,}', "invalid JSON in request body: Expecting property name enclosed in double quotes (line 1, "
                   "column 9)"),
    (b'{"a": }', "line 1, column 7"),
    (b'{"a": 1} 2', "Extra data (line 1, column 10)"),
    (b'{"a": "\x01"}', "Invalid control character"),
])
def test_every_rule_holds_with_the_messages_it_had(raw: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_json(raw)
    assert needle in info.value.message and info.value.status == 400
    assert info.value.message == outcome(stdlib_decode, raw)[1]


def test_nesting_up_to_the_limit_passes_on_the_fast_path() -> None:
    raw = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert fast_loads(raw, MAX_JSON_DEPTH) is not MISS
    assert fast_loads(b"[" + raw + b"]", MAX_JSON_DEPTH) is MISS
    assert decode_json(raw) == stdlib_decode(raw)


@pytest.mark.parametrize("number", [2**64, 2**64 + 1, -2**63 - 1, 10**30, -10**40, int("9" * 4300)])
def test_integers_beyond_64_bits_stay_exact_integers(number: int) -> None:
    """orjson would read them as floats; such a body takes the stdlib path instead, and is not refused."""
    raw = b'{"seed": %d, "logit_bias": {"50256": %d}}' % (number, number)
    assert fast_loads(raw, MAX_JSON_DEPTH) is MISS
    data = decode_json(raw)
    assert type(data["seed"]) is int and data["seed"] == number and data["logit_bias"]["50256"] == number
    assert json.loads(dumps(data)) == data  # and written as they were read (orjson refuses them: the stdlib writes)
    assert dumps(data) == stdlib_dumps(data)


@pytest.mark.parametrize("literal", [b"18446744073709551616", b"-9223372036854775809"])
def test_a_big_integer_is_caught_wherever_it_sits(literal: bytes) -> None:
    """The C prefilter looks at every 9th byte only: an integer of 19 digits is seen at any offset."""
    for pad in range(20):
        raw = b'{"pad": "%s", "n": [%s]}' % (b"x" * pad, literal)
        assert fast_loads(raw, MAX_JSON_DEPTH) is MISS and decode_json(raw)["n"] == [int(literal)]
        assert loads(raw)["n"] == [int(literal)]


def test_many_brackets_but_shallow_take_the_fast_path() -> None:
    raw = b'{"a": [%s], "s": "{{{{[[[["}' % b",".join([b"[{}]"] * 100)
    assert fast_loads(raw, MAX_JSON_DEPTH) is not MISS and decode_json(raw) == stdlib_decode(raw)


@pytest.mark.parametrize("number", [2**63 - 1, 2**63, 2**64 - 1, -2**63, 10**18])
def test_integers_within_64_bits_take_the_fast_path(number: int) -> None:
    raw = b'{"seed": %d}' % number
    data = fast_loads(raw, MAX_JSON_DEPTH)
    assert data == {"seed": number} and type(data["seed"]) is int


def test_a_huge_float_takes_the_stdlib_path_and_reads_the_same() -> None:
    raw = b'{"a": 1e19, "b": -9.3e18, "c": 1.7976931348623157e308, "d": 1.5}'
    assert fast_loads(raw, MAX_JSON_DEPTH) is MISS
    assert same(decode_json(raw), {"a": 1e19, "b": -9.3e18, "c": 1.7976931348623157e308, "d": 1.5})


def test_duplicate_keys_the_last_wins_as_before() -> None:
    raw = b'{"a": 1, "b": 2, "a": 3}'
    assert fast_loads(raw, MAX_JSON_DEPTH) is not MISS
    assert list(decode_json(raw).items()) == list(stdlib_decode(raw).items()) == [("a", 3), ("b", 2)]


def test_paired_surrogates_and_non_ascii_read_the_same() -> None:
    raw = '{"a": "smile \\ud83d\\ude00 é 😀 \u2028"}'.encode()
    assert fast_loads(raw, MAX_JSON_DEPTH) is not MISS
    assert decode_json(raw) == stdlib_decode(raw) == {"a": "smile 😀 é 😀 \u2028"}


@pytest.mark.parametrize("literal", [b"1e16", b"0.1", b"-0.0", b"-0", b"1e-7", b"5e-324", b"2e-400",
                                     b"1.1e18", b"0.30000000000000004", b"123456789.123456789"])
def test_floats_read_the_same(literal: bytes) -> None:
    raw = b'{"x": %s}' % literal
    assert fast_loads(raw, MAX_JSON_DEPTH) is not MISS
    assert same(decode_json(raw), stdlib_decode(raw))


# -- upstream answers --------------------------------------------------------------------------------------------

def test_an_upstream_nan_or_infinity_reaches_the_client_as_before() -> None:
    raw = b'{"x": NaN, "y": [Infinity, -Infinity, 1e999], "z": 1.5}'
    data = loads(raw)
    assert all(isinstance(v, NonFinite) for v in (data["x"], *data["y"])) and type(data["z"]) is float
    expected = stdlib_dumps(json.loads(raw))
    assert dumps(data) == expected == b'{"x":NaN,"y":[Infinity,-Infinity,Infinity],"z":1.5}'
    assert json_response(data).body == expected and sse(data) == b"data: " + expected + b"\n\n"


def test_a_plain_float_nan_is_written_as_null() -> None:
    """The one write that differs: a NaN the proxy itself computed (none does today) is `null`, valid JSON,
    where the stdlib wrote `NaN`, which most JSON parsers refuse. Upstream NaNs are `NonFinite`, see above."""
    assert dumps({"x": math.nan, "y": math.inf}) == b'{"x":null,"y":null}'


def test_an_upstream_big_integer_stays_exact() -> None:
    raw = b'{"choices": [{"index": 0, "message": {"content": "hi"}}], "seed": 18446744073709551616}'
    data = check_completion(loads(raw))
    assert data["seed"] == 2**64 and type(data["seed"]) is int
    assert dumps(data) == stdlib_dumps(json.loads(raw))


def test_an_upstream_big_index_is_an_integer_as_before() -> None:
    """orjson alone would read this index as a float, and the shape check would call the answer malformed."""
    raw = b'{"choices": [{"index": 18446744073709551616, "message": {"content": "hi"}}]}'
    assert check_completion(loads(raw))["choices"][0]["index"] == 2**64


def test_a_nan_where_a_string_belongs_is_named_a_float() -> None:
    with pytest.raises(UpstreamError, match="content is float, not a string"):
        check_completion(loads(b'{"choices": [{"message": {"content": NaN}}]}'))


@pytest.mark.parametrize("raw", [
    b'\xef\xbb\xbf{"a": 1}',  # json.loads(bytes) takes a UTF-8 BOM; orjson does not
    '{"a": "é"}'.encode("utf-16"),  # and UTF-16
    '{"a": "\ud800"}'.encode("utf-8", "surrogatepass"),  # and UTF-8-encoded surrogates ("surrogatepass")
    b'{"a": "\\ud800"}',
    b"[" * 200 + b"]" * 200,
    b"[" * (UPSTREAM_DEPTH + 1) + b"]" * (UPSTREAM_DEPTH + 1),  # left to the stdlib
])
def test_upstream_answers_orjson_refuses_are_read_as_before(raw: bytes) -> None:
    assert same(loads(raw), json.loads(raw))


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b"NaN1", b"\xff", b"[" * 100_000])
def test_invalid_upstream_answers_raise_as_before(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        loads(raw)
    assert outcome(loads, raw) == outcome(json.loads, raw)


# -- writing -----------------------------------------------------------------------------------------------------

class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [
    {"text": "héllo \u2028 😀 </script> \x00 \x1f \x7f \"q\" \\"},
    {1: "a", 2.5: "b", True: "c", None: "d"},  # non-str keys: orjson refuses, the stdlib writes them
    (1, [2, (3,)]),
    {"c": Colour.RED, "l": Level.HIGH},
    [2**64, -2**63 - 1, 2**63 - 1],
    [[[[]]]] * 3,
    json.loads("[" * 300 + "]" * 300),  # beyond orjson's 254 levels
    {"f": [1e16, 0.1, -0.0, 1e-7, 5e-324, 1e22]},
])
def test_writes_what_the_stdlib_wrote(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(stdlib_dumps(value))


def test_a_float_may_be_spelled_differently_only() -> None:
    assert dumps([1e-7, 1e16, 0.1, -0.0]) == b"[1e-7,1e+16,0.1,-0.0]"
    assert stdlib_dumps([1e-7, 1e16, 0.1, -0.0]) == b"[1e-07,1e+16,0.1,-0.0]"


@pytest.mark.parametrize("value,error", [
    ({"a": "\ud800"}, UnicodeEncodeError),
    ({"p": Point(1)}, TypeError),  # orjson would write dataclasses and datetimes; the stdlib refused them
    ({"t": datetime.datetime(2024, 1, 1)}, TypeError),
    ({"s": {1, 2}}, TypeError),
])
def test_refuses_what_the_stdlib_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        stdlib_dumps(value)
    with pytest.raises(error):
        dumps(value)


def test_a_cycle_is_refused_as_before() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(cyclic)


def test_the_upstream_payload_is_compact_utf8() -> None:
    backend = OpenAICompatBackend("http://127.0.0.1:1/v1")
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "seed": 2**70}
    assert backend._payload(body, prefill=False) == ('{"model":"m","messages":[{"role":"user","content":"héllo"}],'
                                                     '"seed":%d}' % 2**70).encode()

