"""Slow and oversized request heads, slow bodies and malformed framing, over raw sockets (real HTTP)."""

from __future__ import annotations

import json
import socket
import time
from typing import Iterator

import pytest

from router.server_limits import BodyDeadline, ServerLimits, guarded_protocol
from support.servers import serve

LIMITS = ServerLimits(header_timeout_s=0.5, body_timeout_s=0.5, max_header_bytes=8192, max_headers=30)


@pytest.fixture()
def connect(guarded) -> Iterator:
    """`connect()` opens a socket to the guarded server; every one is closed after the test."""
    opened: list[socket.socket] = []

    def open_one() -> socket.socket:
        opened.append(socket.create_connection(guarded))
        return opened[-1]

    yield open_one
    for sock in opened:
        sock.close()


@pytest.fixture()
def guarded(tmp_path, upstream_url, mock) -> Iterator[tuple[str, int]]:
    from router.app import create_app
    from router.settings import parse_config

    config = parse_config({"routes": {"mock-model": {"backend": "openai", "base_url": upstream_url, "model": "m"}},
                           "decision_log": {"path": str(tmp_path / "d.sqlite3")}})
    app = BodyDeadline(create_app(config, environ={}), LIMITS.body_timeout_s)
    with serve(app, http=guarded_protocol(LIMITS)) as server:
        yield "127.0.0.1", server.port


def read_all(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection; silence for `timeout` is a failure (a
    safety net only, far longer than any deadline here, so that a busy machine cannot trip it)."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return out
        except socket.timeout:
            raise AssertionError(f"the server neither closed the connection nor sent more in {timeout:g} s; "
                                 f"got {out[:200]!r}") from None
        if not data:
            return out
        out += data


def status_and_error(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    error = json.loads(body)["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return status, error


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"])
def test_slow_or_silent_head_gets_408_and_the_connection_closes(connect, sent):
    start = time.monotonic()  # before the connection opens, so before the server can start the head's clock
    sock = connect()
    sock.sendall(sent)
    raw = read_all(sock)
    elapsed = time.monotonic() - start
    status, error = status_and_error(raw)
    assert status == 408 and error["code"] == "request_timeout"
    assert "headers did not arrive within 0.5 s" in error["message"] and elapsed >= LIMITS.header_timeout_s


def test_many_slow_clients_are_all_let_go(connect):
    socks = [connect() for _ in range(40)]
    for s in socks:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert all(read_all(s).startswith(b"HTTP/1.1 408") for s in socks)  # each one answered, then closed


@pytest.mark.parametrize("headers", [
    b"x-big: " + b"a" * 100_000 + b"\r\n",
    b"".join(b"x-h%d: v\r\n" % i for i in range(10_000)),
])
def test_oversized_heads_get_431(connect, headers):
    sock = connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    status, error = status_and_error(read_all(sock))
    assert status == 431 and error["code"] == "headers_too_large"


@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
                                           b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: x\r\n\r\n"])
def test_malformed_framing_gets_an_openai_400(connect, request_bytes):
    sock = connect()
    sock.sendall(request_bytes)
    status, error = status_and_error(read_all(sock))
    assert status == 400 and error["type"] == "invalid_request_error"


def test_slow_body_gets_408(connect):
    sock = connect()
    start = time.monotonic()  # before the request starts, so before the body's deadline does
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: 100\r\n\r\n{\"model\"")
    raw = read_all(sock)
    status, error = status_and_error(raw)
    assert status == 408 and "body did not arrive within 0.5 s" in error["message"]
    assert time.monotonic() - start >= LIMITS.body_timeout_s


def test_a_slow_body_after_a_whole_one_on_the_same_connection_gets_408(connect):
    """A body that arrived whole needs no timer; the next request on the connection still gets its deadline."""
    sock = connect()
    body = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
    sock.settimeout(30)
    first = b""
    while b"echo: hi" not in first:
        data = sock.recv(65536)
        assert data, f"connection closed after {first!r}"
        first += data
    assert first.startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: 100\r\n\r\n{\"model\"")
    status, error = status_and_error(read_all(sock))
    assert status == 408 and "body did not arrive within 0.5 s" in error["message"]
    assert time.monotonic() - start >= LIMITS.body_timeout_s


def test_normal_requests_pass_on_one_connection(guarded):
    import http.client

    conn = http.client.HTTPConnection(*guarded, timeout=5)
    body = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]})
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b'{"status":"ok"}'
    sock = conn.sock
    for _ in range(2):
        time.sleep(0.7)  # idle between requests longer than the head deadline: the timer restarts per request
        conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and b"echo: hi" in response.read()
    assert conn.sock is sock
    conn.close()
