"""thinkgate's exception tree and its mapping to OpenAI's error format.

    ThinkgateError                      base; carries an HTTP status and an OpenAI error `type`
    ├── ConfigError                     bad configuration, raised at start-up (never reaches a client)
    ├── InvalidRequest          400     malformed JSON or a schema violation (`param` names the field)
    │   ├── ModelNotFound       404     unknown model alias (message lists the known aliases)
    │   ├── PayloadTooLarge     413     request body over the configured limit
    │   ├── RequestTimeout      408     the request body did not arrive within the body deadline
    │   └── HeadersTooLarge     431     request headers over the size or count limit
    ├── ClientDisconnected      499     the client left before the answer was complete (logged, never sent)
    ├── AuthenticationFailed    401     missing or wrong client API key
    ├── ServiceNotReady         503     the route's backend is still loading
    ├── UpstreamBusy            503     every upstream connection stayed busy past the pool wait (Retry-After)
    └── UpstreamError           502     the upstream failed; `status` mirrors the upstream's 4xx/5xx
        ├── UpstreamTimeout     504     the upstream did not answer in time
        └── UpstreamUnavailable 502     the upstream could not be reached at all

Only `to_openai()` output (and `headers()`, e.g. Retry-After) ever reaches a client: no stack traces, no
internal reprs.
"""

from __future__ import annotations

from typing import Any


class ThinkgateError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(self, message: str, *, param: str | None = None, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        """Response headers that belong to this error."""
        return {} if self.retry_after_s is None else {"retry-after": str(self.retry_after_s)}

    def to_openai(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ConfigError(ThinkgateError):
    type = "configuration_error"


class InvalidRequest(ThinkgateError):
    status = 400
    type = "invalid_request_error"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class RequestTimeout(InvalidRequest):
    status = 408
    code = "request_timeout"

    def headers(self) -> dict[str, str]:
        return {"connection": "close"}  # the rest of the body may still be on its way: do not reuse the connection


class HeadersTooLarge(InvalidRequest):
    status = 431
    code = "headers_too_large"


class ClientDisconnected(ThinkgateError):
    """Not an answer (nobody is left to read one): the status and message the decision log and metrics keep."""

    status = 499
    type = "client_closed_request"
    code = "client_disconnected"


class AuthenticationFailed(ThinkgateError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ServiceNotReady(ThinkgateError):
    status = 503
    type = "service_unavailable"
    code = "not_ready"


class UpstreamBusy(ThinkgateError):
    """Load shedding: the route's upstream connections were all busy for longer than the pool wait."""

    status = 503
    type = "service_unavailable"
    code = "upstream_busy"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamError(ThinkgateError):
    status = 502
    type = "upstream_error"

    def __init__(self, message: str, *, status: int | None = None, param: str | None = None,
                 code: str | None = None, upstream_type: str | None = None) -> None:
        super().__init__(message, param=param, status=status, code=code)
        if upstream_type:
            self.type = upstream_type


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


def upstream_status(status: int) -> int:
    """Map an upstream HTTP status to the one the client sees.

    Client errors (4xx) pass through unchanged, except 401/403, which mean *thinkgate's* upstream key is
    wrong, not the client's: they become 502 so the client does not think its own key was rejected.
    5xx become 502 (bad gateway), except 503/504 which keep their meaning.
    """
    if status in (401, 403):
        return 502
    if 400 <= status < 500:
        return status
    if status in (503, 504):
        return status
    return 502
