"""Hostile request bodies get a 400 in OpenAI's error format, never a 500 (over real HTTP)."""

from __future__ import annotations

import httpx
import pytest

from router.redact import REDACTED, Redactor, RedactingFilter

MSG = '"messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize("raw,fragment", [
    ('{"model": "mock-model", ' + MSG + ', "seed": ' + "9" * 4301 + "}", "too many digits"),
    ('{"model": "mock-model", ' + MSG + ', "x": ' + "[" * 1000 + "]" * 1000 + "}", "nested"),
    ('{"model": "mock-model", ' + MSG + ', "x": ' + "[" * 100_000 + "}", "nested"),
    ('{"model": "mock-model", "messages": [{"role": "user", "content": "\\ud800"}]}', "surrogate"),
    ('{"model": "mock-model", ' + MSG + ', "user": "\\udfff x"}', "surrogate"),
    ('{"model": "mock-model", ' + MSG + ', "temperature": NaN}', "number"),
    ('{"model": "mock-model", ' + MSG + ', "x": 1e999}', "number"),
    ('{"model": "mock-model", "messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}',
     "text part"),
    ('{"model": "mock-model", ' + MSG + ', "stream": "false"}', "boolean"),
    ('{"model": "mock-model", ' + MSG + ', "stream": 0}', "boolean"),
    ('{"model": "mock-model", ' + MSG + ', "max_tokens": "5"}', "integer"),
    ('{"model": "mock-model", ' + MSG + ', "stream": true, "stream_options": {"include_usage": "yes"}}',
     "boolean"),
])
def test_hostile_bodies_are_400(proxy, mock, raw, fragment):
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", content=raw.encode(),
                       headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"
    assert not mock.requests


def test_paired_surrogates_and_image_parts_pass(proxy, mock):
    raw = ('{"model": "mock-model", "messages": [{"role": "user", "content": [{"type": "text", "text": '
           '"smile \\ud83d\\ude00"}, {"type": "image_url", "image_url": {"url": "data:,"}}]}]}')
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", content=raw.encode(),
                       headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_redactor_covers_keys_and_credentials():
    redact = Redactor(["my-upstream-key-123"])
    text = ('bad key my-upstream-key-123; Authorization: Bearer abc.def-ghi; {"api_key": "zzzz9999"}; '
            "x-api-key=qwerty12 sk-proj-ABCDEFGHIJKLMNOPQRSTUV")
    out = redact(text)
    for secret in ("my-upstream-key-123", "abc.def-ghi", "zzzz9999", "qwerty12", "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"):
        assert secret not in out, out
    assert out.count(REDACTED) == 5
    assert redact("no secrets in 12 words here") == "no secrets in 12 words here"


def test_redacting_filter_cleans_messages_and_tracebacks():
    import logging

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("thinkgate.test-redact")
    handler = Keep()
    handler.addFilter(RedactingFilter(Redactor(["topsecret-value"])))
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("upstream said topsecret-value")
        except ValueError:
            logger.exception("failed with %s", "Bearer topsecret-value")
    finally:
        logger.removeHandler(handler)
    assert records and all("topsecret-value" not in r for r in records)
    assert "ValueError" in records[0]


@pytest.mark.parametrize("value", ["²".encode("latin-1"), "١٢".encode("utf-8"), b"0", b"32769", b"-1", b"1e3"])
def test_budget_header_takes_only_ascii_digits_in_range(proxy, mock, value):
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", headers={"x-thinkgate-think-budget": value},
                       json={"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "x-thinkgate-think-budget"


def test_utf8_encoded_lone_surrogate_is_400(proxy, mock):
    raw = '{"model": "mock-model", "messages": [{"role": "user", "content": "\ud800"}]}'.encode("utf-8", "surrogatepass")
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]
