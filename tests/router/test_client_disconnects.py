"""Clients that leave, the in-flight gauge, keyless endpoints and request ids on 500s (over real HTTP)."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import time

import httpx
from pathlib import Path
import pytest

from router.backends.base import Backend
from router.server_limits import ServerLimits, guarded_protocol
from support.faulty_upstream import FaultyUpstream, wait_until


@pytest.fixture(scope="module")
def faulty():
    upstream = FaultyUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture()
def held_proxy(proxy, faulty):
    faulty.release.clear()
    faulty.abandoned = 0
    routes = {"faulty": {"backend": "openai", "base_url": faulty.url, "model": "faulty", "timeout_s": 30}}
    yield lambda **config: proxy(routes=routes, **config)
    faulty.release.set()


# how the proxy hears that a client left: a watcher task on receive() (any ASGI server), or the signal that
# `thinkgate serve`'s protocol puts in the scope
PROTOCOLS = {"any-server": None, "thinkgate-serve": guarded_protocol(ServerLimits())}


def _send(port: int, content: str, stream: bool) -> socket.socket:
    body = json.dumps({"model": "faulty", "stream": stream, "messages": [{"role": "user", "content": content}]})
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n%s" % (len(body), body.encode()))
    return sock


def _rows(tmp_path) -> list[tuple[int, str | None]]:
    with sqlite3.connect(tmp_path / "decisions.sqlite3") as db:
        return db.execute("SELECT status, error FROM decisions ORDER BY id").fetchall()


def _inflight(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("thinkgate_inflight_requests ")))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("content,stream", [("fault:hold", False), ("fault:hold_before_first", True),
                                            ("fault:hold", True)], ids=["json", "before-first-chunk", "mid-stream"])
def test_a_client_that_leaves_cancels_the_upstream_and_is_logged_as_499(held_proxy, faulty, tmp_path, content,
                                                                        stream, protocol):
    with held_proxy(protocol=PROTOCOLS[protocol]) as server:
        sock = _send(server.port, content, stream)
        assert wait_until(lambda: faulty.open_streams == 1)
        if content == "fault:hold" and stream:
            sock.settimeout(5)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # the first chunk is through
        assert _inflight(server.url) == 1
        sock.close()
        assert wait_until(lambda: faulty.abandoned == 1), "the upstream call was not cancelled"
        assert wait_until(lambda: _inflight(server.url) == 0)
    (status, error), = _rows(tmp_path)
    assert status == 499 and "client disconnected" in error


def test_inflight_gauge_counts_open_requests(held_proxy, faulty):
    with held_proxy() as server:
        socks = [_send(server.port, "fault:hold", True) for _ in range(4)]
        assert wait_until(lambda: faulty.open_streams == 4)
        assert wait_until(lambda: _inflight(server.url) == 4)
        faulty.release.set()
        for sock in socks:
            sock.settimeout(10)
            data = b""
            while not data.endswith(b"0\r\n\r\n"):
                data += sock.recv(65536)
            sock.close()
        assert wait_until(lambda: _inflight(server.url) == 0)


def test_keyless_endpoints_with_client_keys(proxy, mock):
    keys = {"THINKGATE_API_KEYS": "k1"}
    with proxy(environ=keys) as server:
        assert httpx.get(server.url + "/metrics").status_code == 401
        assert httpx.get(server.url + "/metrics", headers={"authorization": "Bearer k1"}).status_code == 200
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    with proxy(environ=keys, server={"metrics_require_key": False}) as server:
        assert httpx.get(server.url + "/metrics").status_code == 200


class _Broken(Backend):
    async def complete(self, body, *, prefill=False):
        raise RuntimeError("bug holding sk-test-Zq8XWv3LbN5pR7tY2uK9mJ4hXYZ")

    async def stream(self, body, *, prefill=False):
        raise RuntimeError("bug")
        yield {}


def test_internal_errors_carry_a_request_id_and_no_secret(tmp_path, upstream_url, caplog):
    from router.app import create_app
    from router.settings import parse_config
    from support.servers import serve

    config = parse_config({"routes": {"m": {"backend": "openai", "base_url": upstream_url, "model": "m"}},
                           "decision_log": {"path": str(tmp_path / "d.sqlite3")}})
    with serve(create_app(config, backends={"m": _Broken()}, environ={})) as server:
        r = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        missing = httpx.get(server.url + "/nowhere")
    assert r.status_code == 500 and r.headers["x-request-id"] in r.json()["error"]["message"]
    assert "Traceback" not in r.text and "sk-test" not in r.text
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    assert "sk-test-Zq8XWv3LbN5pR7tY2uK9mJ4hXYZ" not in caplog.text and "[redacted]" in caplog.text


def test_sigterm_does_not_wait_for_requests_whose_clients_left(faulty, tmp_path):
    """20 non-streamed calls held by the upstream, their clients gone: SIGTERM exits well within the 30 s grace."""
    import signal
    import subprocess
    import sys

    from benchmarks.services import free_port

    faulty.release.clear()
    faulty.abandoned = 0
    config = tmp_path / "serve.toml"
    config.write_text(f'[routes.faulty]\nbackend = "openai"\nbase_url = "{faulty.url}"\nmodel = "faulty"\n'
                      f'timeout_s = 60\n[decision_log]\npath = "{tmp_path / "decisions.sqlite3"}"\n')
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "serve", "--config", str(config), "--port",
                             str(port)], cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _answers(port), 120), "thinkgate serve did not start"
        socks = [_send(port, "fault:hold", False) for _ in range(20)]
        assert wait_until(lambda: faulty.open_streams == 20, 30)
        for sock in socks:
            sock.close()
        assert wait_until(lambda: faulty.abandoned == 20, 30)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(25)
        assert time.monotonic() - start < 10
    finally:
        faulty.release.set()
        if proc.poll() is None:
            proc.kill()
    assert len(_rows(tmp_path)) == 20 and {s for s, _ in _rows(tmp_path)} == {499}


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
