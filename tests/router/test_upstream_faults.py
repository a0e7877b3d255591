"""Every upstream fault of the fault-injecting upstream, streamed and not, over one keep-alive client connection.

For each fault: the status (or, once a stream has begun, an error event and no [DONE]) that `FAULTS` names,
OpenAI's error format, no 500, no stack trace, no upstream key; then a normal request on the *same* connection
answers 200; and the decision log has a row for each request with the key redacted from its error.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
from typing import Any, Iterator

import pytest

from support.faulty_upstream import FAULTS, SECRET_KEY, FaultyUpstream

# Only the trickle fault needs a deadline (bytes 0.05 s apart, for far longer than total_timeout_s); the rest
# leave room for a paused test process (full GC passes of ~0.5 s were measured here), so that a normal request
# is never turned into a 504 by a pause.
ROUTE_OPTIONS = {"timeout_s": 2.0, "backend_options": {"total_timeout_s": 3.0, "max_response_bytes": 1024 * 1024}}


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyUpstream]:
    upstream = FaultyUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture()
def fault_proxy(proxy, faulty):
    def start(backend_options: dict[str, Any] | None = None, timeout_s: float = ROUTE_OPTIONS["timeout_s"],
              **config: Any):
        route = {"backend": "openai", "base_url": faulty.url, "model": "faulty", "api_key_env": "UP_KEY",
                 **ROUTE_OPTIONS, "timeout_s": timeout_s}
        route["backend_options"] = {**route["backend_options"], **(backend_options or {})}
        return proxy(routes={"faulty": route}, environ={"UP_KEY": SECRET_KEY}, **config)

    return start


def post(conn: http.client.HTTPConnection, content: str, stream: bool) -> tuple[int, bytes, dict[str, str]]:
    body = json.dumps({"model": "faulty", "stream": stream, "messages": [{"role": "user", "content": content}]})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}


def sse_events(payload: bytes) -> list[Any]:
    out = []
    for block in payload.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_openai_error(payload: bytes | dict[str, Any]) -> dict[str, Any]:
    data = json.loads(payload) if isinstance(payload, bytes) else payload
    assert set(data["error"]) >= {"message", "type", "param", "code"}, data
    return data["error"]


def decision_rows(tmp_path) -> list[tuple[int, str | None]]:
    with sqlite3.connect(tmp_path / "decisions.sqlite3") as db:
        return db.execute("SELECT status, error FROM decisions ORDER BY id").fetchall()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_then_normal_request_on_the_same_connection(fault_proxy, faulty, tmp_path, fault, stream):
    expected = FAULTS[fault][1 if stream else 0]
    with fault_proxy() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, payload, headers = post(conn, f"fault:{fault}", stream)
        sock = conn.sock
        assert status != 500 and b"Traceback" not in payload and SECRET_KEY.encode() not in payload
        if expected == "event":
            assert status == 200, payload
            events = sse_events(payload)
            assert "[DONE]" not in events and "error" in events[-1], events[-3:]
            assert_openai_error(events[-1])
        elif expected == 200:
            assert status == 200, payload
            if stream:
                events = sse_events(payload)
                assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1] if isinstance(e, dict))
            else:
                assert isinstance(json.loads(payload)["choices"][0]["message"]["content"], str)
        else:
            assert status == expected, payload
            assert_openai_error(payload)
            assert headers.get("x-request-id")
        again, payload2, _ = post(conn, "hello", False)
        assert again == 200, payload2
        assert conn.sock is sock, "the proxy dropped the client's keep-alive connection"
        conn.close()
    rows = decision_rows(tmp_path)
    assert len(rows) == 2, rows
    assert rows[1] == (200, None)
    assert all(SECRET_KEY not in (error or "") for _, error in rows)
    if expected not in (200,):
        assert rows[0][1], rows  # the fault is logged with its error


def test_echoed_upstream_key_is_redacted(fault_proxy, faulty, tmp_path):
    with fault_proxy() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, payload, _ = post(conn, "fault:echo_key", False)
        conn.close()
    message = assert_openai_error(payload)["message"]
    assert status == 502 and "[redacted]" in message and SECRET_KEY not in message
    assert faulty.auth_headers[-1] == f"Bearer {SECRET_KEY}"  # the key was really sent, and really echoed back
    (_, error), = decision_rows(tmp_path)
    assert "[redacted]" in error and SECRET_KEY not in error


def test_malformed_usage_is_dropped_not_counted(fault_proxy, tmp_path):
    with fault_proxy() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, payload, _ = post(conn, "fault:usage_bad_counts", False)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.close()
    assert status == 200
    usage = json.loads(payload).get("usage") or {}
    assert "prompt_tokens" not in usage and "completion_tokens" not in usage
    assert "e+30" not in metrics and "thinkgate_tokens_total{" not in metrics


def _hold_streams(port: int, n: int, held: list[http.client.HTTPConnection]) -> None:
    """Open `n` streams that the faulty upstream holds until `release`; each one's first chunk is through."""
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        held.append(conn)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(
            {"model": "faulty", "stream": True, "messages": [{"role": "user", "content": "fault:hold"}]}))
        assert conn.getresponse().status == 200  # headers and the first chunk are through


def _inflight(port: int) -> float:
    """The proxy's `thinkgate_inflight_requests` gauge."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
    finally:
        conn.close()
    match = re.search(r"^thinkgate_inflight_requests (\S+)$", metrics, re.MULTILINE)
    assert match, metrics
    return float(match.group(1))


def test_pool_exhaustion_sheds_load_with_503_and_retry_after(fault_proxy, faulty):
    """More streams than upstream connections: the next request waits `pool_wait_s`, then gets a 503."""
    import time

    from support.faulty_upstream import wait_until

    faulty.release.clear()
    held: list[http.client.HTTPConnection] = []
    with fault_proxy({"max_connections": 3, "pool_wait_s": 0.5, "total_timeout_s": 30}, timeout_s=30) as server:
        try:
            _hold_streams(server.port, 3, held)
            assert wait_until(lambda: faulty.open_streams == 3)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            held.append(conn)
            start = time.monotonic()
            status, payload, headers = post(conn, "hello", False)
            waited = time.monotonic() - start
            assert status == 503, payload
            error = assert_openai_error(payload)
            assert error["code"] == "upstream_busy" and "busy for 0.5 s" in error["message"]
            # The wait starts after the request is sent, so it cannot end sooner; the upper bound is loose.
            assert headers["retry-after"] == "1" and 0.5 <= waited < 5
        finally:
            faulty.release.set()  # the held streams end before the proxy shuts down
            for conn in held:
                conn.close()


def test_a_request_waiting_for_the_pool_is_served_when_a_slot_frees(fault_proxy, faulty):
    """A request that finds the pool full but gets a slot within `pool_wait_s` is served. The slot is freed once
    the request is parked in the proxy (in flight there, not upstream), not after a fixed delay that a busy
    machine can outlast; `pool_wait_s` is far longer than any such pause."""
    from support.faulty_upstream import wait_until

    faulty.release.clear()
    held: list[http.client.HTTPConnection] = []
    with fault_proxy({"max_connections": 3, "pool_wait_s": 60, "total_timeout_s": 90}, timeout_s=90) as server:
        try:
            _hold_streams(server.port, 3, held)
            assert wait_until(lambda: faulty.open_streams == 3, 30)
            upstream_requests = len(faulty.requests)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=90)
            held.append(conn)
            conn.request("POST", "/v1/chat/completions", headers={"content-type": "application/json"},
                         body=json.dumps({"model": "faulty", "messages": [{"role": "user", "content": "hello"}]}))
            assert wait_until(lambda: _inflight(server.port) == 4, 30)  # the 3 held streams and this request
            assert len(faulty.requests) == upstream_requests  # parked in the proxy: no slot for it yet
            faulty.release.set()
            response = conn.getresponse()
            payload = response.read()
            assert response.status == 200, payload
            assert json.loads(payload)["choices"][0]["message"]["content"] == "fine"
            assert len(faulty.requests) == upstream_requests + 1
        finally:
            faulty.release.set()
            for conn in held:
                conn.close()


def test_litellm_route_redacts_an_echoed_key(proxy, faulty, tmp_path):
    routes = {"lite": {"backend": "litellm", "model": "openai/faulty", "base_url": faulty.url,
                       "api_key_env": "UP_KEY", "timeout_s": 5}}
    with proxy(routes=routes, environ={"UP_KEY": SECRET_KEY}) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        body = json.dumps({"model": "lite", "messages": [{"role": "user", "content": "fault:echo_key"}]})
        conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        conn.close()
    assert response.status == 502 and SECRET_KEY not in payload.decode()
    assert "[redacted]" in assert_openai_error(payload)["message"]
    assert all(SECRET_KEY not in (error or "") for _, error in decision_rows(tmp_path))
