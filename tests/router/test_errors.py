"""The exception tree: statuses, OpenAI error bodies, and the upstream-status mapping."""

from __future__ import annotations

import pytest

from router.errors import (AuthenticationFailed, ConfigError, InvalidRequest, ModelNotFound, PayloadTooLarge,
                           ServiceNotReady, ThinkgateError, UpstreamError, UpstreamTimeout, UpstreamUnavailable,
                           upstream_status)


@pytest.mark.parametrize("cls,status,type_,code", [
    (InvalidRequest, 400, "invalid_request_error", None),
    (ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (AuthenticationFailed, 401, "authentication_error", "invalid_api_key"),
    (ServiceNotReady, 503, "service_unavailable", "not_ready"),
    (UpstreamError, 502, "upstream_error", None),
    (UpstreamTimeout, 504, "timeout", "upstream_timeout"),
    (UpstreamUnavailable, 502, "upstream_error", "upstream_unavailable"),
])
def test_each_error_has_its_status_and_openai_body(cls: type[ThinkgateError], status: int, type_: str,
                                                   code: str | None) -> None:
    exc = cls("something went wrong", param="messages")
    assert exc.status == status
    assert exc.to_openai() == {"error": {"message": "something went wrong", "type": type_, "param": "messages",
                                         "code": code}}


def test_hierarchy_matches_the_drawn_tree() -> None:
    assert issubclass(ModelNotFound, InvalidRequest) and issubclass(PayloadTooLarge, InvalidRequest)
    assert issubclass(UpstreamTimeout, UpstreamError) and issubclass(UpstreamUnavailable, UpstreamError)
    for cls in (ConfigError, InvalidRequest, AuthenticationFailed, ServiceNotReady, UpstreamError):
        assert issubclass(cls, ThinkgateError)


def test_per_instance_overrides_leave_the_class_alone() -> None:
    exc = UpstreamError("bad", status=429, code="rate_limited", upstream_type="rate_limit_error")
    assert (exc.status, exc.code, exc.type) == (429, "rate_limited", "rate_limit_error")
    plain = UpstreamError("bad")
    assert (plain.status, plain.code, plain.type) == (502, None, "upstream_error")


def test_body_carries_only_the_message() -> None:
    exc = InvalidRequest("bad field")
    body = exc.to_openai()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] is None


@pytest.mark.parametrize("upstream,client", [
    (400, 400), (404, 404), (422, 422), (429, 429),
    (401, 502), (403, 502),  # thinkgate's own upstream key, not the client's
    (500, 502), (502, 502), (503, 503), (504, 504), (599, 502),
])
def test_upstream_status(upstream: int, client: int) -> None:
    assert upstream_status(upstream) == client
