"""Every error path of the proxy over real HTTP: OpenAI-format bodies, sensible statuses, no stack traces."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import openai
import pytest

from support.clients import openai_client

USER = [{"role": "user", "content": "hello"}]


def _assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert "Traceback" not in response.text
    return error


def test_invalid_json_is_400(proxy, mock):
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert "invalid JSON" in _assert_openai_error(r, 400)["message"]


@pytest.mark.parametrize("body,param", [
    ({"model": "mock-model"}, "messages"),
    ({"model": "mock-model", "messages": []}, "messages"),
    ({"model": "mock-model", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"model": "mock-model", "messages": USER, "temperature": 9}, "temperature"),
    ([1, 2], None),
])
def test_schema_errors_name_the_field(proxy, mock, body, param):
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", json=body)
    error = _assert_openai_error(r, 400)
    assert error["param"] == param
    assert not mock.requests


def test_unknown_model_is_404_listing_aliases(proxy, mock):
    with proxy() as server, pytest.raises(openai.NotFoundError) as info:
        openai_client(server).chat.completions.create(model="gpt-9", messages=USER)
    assert "mock-model" in str(info.value)


def test_oversized_body_is_413(proxy, mock):
    with proxy(server={"max_body_bytes": 2048}) as server:
        r = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "mock-model", "messages": [{"role": "user", "content": "x" * 5000}]})
    _assert_openai_error(r, 413)


def test_client_api_keys(proxy, mock):
    with proxy(environ={"THINKGATE_API_KEYS": "k1,k2"}) as server:
        with pytest.raises(openai.AuthenticationError):
            openai_client(server, api_key="wrong").chat.completions.create(model="mock-model", messages=USER)
        ok = openai_client(server, api_key="k2").chat.completions.create(model="mock-model", messages=USER)
        assert ok.choices[0].message.content == "echo: hello"
        assert httpx.get(server.url + "/v1/models").status_code == 401
        assert httpx.get(server.url + "/healthz").status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_timeout_is_504(proxy, mock, stream):
    mock.delay_s = 2.0
    with proxy({"timeout_s": 0.2}) as server:
        r = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "mock-model", "messages": USER, "stream": stream})
    _assert_openai_error(r, 504)


@pytest.mark.parametrize("upstream_status,client_status", [(429, 429), (400, 400), (500, 502), (503, 503),
                                                           (401, 502)])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_are_mapped_with_their_message(proxy, mock, upstream_status, client_status, stream):
    mock.fail = (upstream_status, "quota exceeded for this key")
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "mock-model", "messages": USER, "stream": stream})
    error = _assert_openai_error(r, client_status)
    assert "quota exceeded for this key" in error["message"]


def test_unreachable_upstream_is_502(proxy, mock):
    routes = {"dead": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x"}}
    with proxy(routes=routes) as server:
        r = httpx.post(server.url + "/v1/chat/completions", json={"model": "dead", "messages": USER})
    assert "unreachable" in _assert_openai_error(r, 502)["message"]


@pytest.mark.parametrize("header", ["x-thinkgate-reasoning: maybe", "x-thinkgate-think-budget: lots"])
def test_bad_thinkgate_headers_are_400(proxy, mock, header):
    name, value = header.split(": ")
    with proxy() as server:
        r = httpx.post(server.url + "/v1/chat/completions", json={"model": "mock-model", "messages": USER},
                       headers={name: value})
    assert _assert_openai_error(r, 400)["param"] == name


def test_unknown_path_and_method_use_openai_errors(proxy, mock):
    with proxy() as server:
        _assert_openai_error(httpx.get(server.url + "/v1/nothing"), 404)
        _assert_openai_error(httpx.get(server.url + "/v1/chat/completions"), 405)


def test_client_disconnect_cancels_the_upstream_stream(proxy, mock):
    mock.reply = lambda body: "word " * 400
    mock.chunk_size, mock.chunk_delay_s = 5, 0.02
    with proxy() as server:
        with httpx.stream("POST", server.url + "/v1/chat/completions",
                          json={"model": "mock-model", "messages": USER, "stream": True}) as r:
            lines = r.iter_lines()
            for _ in range(6):
                next(lines)
        deadline = time.monotonic() + 5
        while mock.cancelled_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert mock.cancelled_streams == 1


def test_classifier_without_artifact_fails_at_start_up(upstream_url):
    from router.app import create_app
    from router.errors import ConfigError
    from router.settings import parse_config

    config = parse_config({"routes": {"m": {"backend": "openai", "base_url": upstream_url, "policy": "classifier"}}})
    with pytest.raises(ConfigError, match="needs a trained decision model"):
        create_app(config, environ={})


def test_bad_config_names_the_key():
    from router.errors import ConfigError
    from router.settings import parse_config

    with pytest.raises(ConfigError, match=r"routes\.m\.polcy"):
        parse_config({"routes": {"m": {"backend": "openai", "base_url": "http://x", "polcy": "never"}}})
    with pytest.raises(ConfigError, match="unknown policy 'nevr'.*did you mean 'never'"):
        from router.routes import build_routes
        build_routes(parse_config({"routes": {"m": {"backend": "openai", "base_url": "http://x", "policy": "nevr"}}}),
                     environ={})


def test_endpoints_models_health_ready_metrics(proxy, mock):
    with proxy() as server:
        models = openai_client(server).models.list()
        assert [m.id for m in models.data] == ["mock-model"]
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}

        def count() -> float:
            text = httpx.get(server.url + "/metrics").text
            for line in text.splitlines():
                if line.startswith('thinkgate_requests_total{route="mock-model",status="200"}'):
                    return float(line.split()[-1])
            return 0.0

        before = count()
        openai_client(server).chat.completions.create(model="mock-model", messages=USER)
        assert count() == before + 1


def test_decision_log_is_complete_after_graceful_shutdown(proxy, mock, tmp_path):
    n_threads, per_thread = 8, 10
    with proxy({"policy": "always", "profile": "reasoning-effort"}, decision_log={
            "path": str(tmp_path / "log.sqlite3"), "log_prompts": True}) as server:
        def worker() -> None:
            client = openai_client(server)
            for i in range(per_thread):
                client.chat.completions.create(model="mock-model", messages=USER, stream=bool(i % 2))
        threads = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    rows = sqlite3.connect(tmp_path / "log.sqlite3").execute(
        "select route, decision, policy, status, prompt, completion_tokens from decisions").fetchall()
    assert len(rows) == n_threads * per_thread
    assert {r[:5] for r in rows} == {("mock-model", "think", "always", 200, "hello")}
    assert all(r[5] for r in rows)  # token counts recorded for streamed requests too
