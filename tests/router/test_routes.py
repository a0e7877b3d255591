"""The request path in process: the app factory over a scripted backend, through starlette's TestClient.

No socket, no thread, no SDK: these check what the endpoint and the route do (validate, decide, answer,
respond, record). The socket + SDK tests (`test_proxy_*.py`) stay the wire-compatibility layer.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from router.app import create_app
from router.decision_log import export_jsonl
from router.errors import UpstreamError
from router.settings import parse_config
from router.strategies import Attempt
from support.scripted import Reply, ScriptedBackend

USER = [{"role": "user", "content": "Name a colour. Answer in lowercase."}]


def _app(backend: ScriptedBackend, log_path: Path | None = None, **route: Any):
    cfg = {"backend": "openai", "base_url": "http://unused.invalid/v1", "model": "upstream-model",
           "policy": "never", **route}
    log = {"path": str(log_path)} if log_path else {"enabled": False}
    return create_app(parse_config({"routes": {"m": cfg}, "decision_log": log}), backends={"m": backend},
                      environ={})


def _post(client: TestClient, headers: dict[str, str] | None = None, **body: Any):
    return client.post("/v1/chat/completions", json={"model": "m", "messages": USER, **body}, headers=headers or {})


def _sse(text: str) -> list[dict[str, Any]]:
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_direct_decision_sends_the_request_unchanged_but_for_the_upstream_model():
    backend = ScriptedBackend("blue")
    with TestClient(_app(backend)) as client:
        response = _post(client, temperature=0.3)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "blue"
    assert response.headers["x-thinkgate-decision"] == "direct"
    assert response.headers["x-thinkgate-decision-source"] == "policy"
    (call,) = backend.calls
    assert call.body == {"model": "upstream-model", "messages": USER, "temperature": 0.3}


def test_header_turns_thinking_on_and_the_switch_splits_the_reasoning_out():
    backend = ScriptedBackend("<think>lowercase only</think>blue")
    with TestClient(_app(backend, profile="prompt-cot")) as client:
        response = _post(client, {"x-thinkgate-reasoning": "on"})
    message = response.json()["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("blue", "lowercase only")
    assert response.headers["x-thinkgate-decision-source"] == "header"
    assert backend.bodies[0]["messages"][0]["role"] == "system"


def test_client_reasoning_fields_decide_and_are_not_forwarded_except_by_the_none_switch():
    for profile, forwarded in (("prompt-cot", False), ("none", True)):
        backend = ScriptedBackend("blue")
        with TestClient(_app(backend, profile=profile)) as client:
            response = _post(client, reasoning_effort="high")
        assert response.headers["x-thinkgate-decision-source"] == "client"
        assert ("reasoning_effort" in backend.bodies[0]) == forwarded


def test_stream_hides_usage_unless_asked_and_the_record_still_has_it(tmp_path):
    log_path = tmp_path / "log.sqlite3"
    backend = ScriptedBackend(Reply("light blue", usage=(7, 2)), Reply("red", usage=(7, 1)))
    with TestClient(_app(backend, log_path)) as client:
        hidden = _sse(_post(client, stream=True).text)
        shown = _sse(_post(client, stream=True, stream_options={"include_usage": True}).text)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in hidden if c["choices"]) == "light blue"
    assert not any("usage" in c for c in hidden)
    assert shown[-1]["usage"]["completion_tokens"] == 1
    assert all(call.body["stream_options"] == {"include_usage": True} for call in backend.calls)
    out = io.StringIO()
    export_jsonl(log_path, out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["stream"], r["prompt_tokens"], r["completion_tokens"]) for r in records] == [(1, 7, 2), (1, 7, 1)]


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_keeps_its_status_in_openai_format(stream):
    backend = ScriptedBackend(UpstreamError("rate limited upstream", status=429))
    with TestClient(_app(backend)) as client:
        response = _post(client, stream=stream)
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "rate limited upstream"
    assert "x-request-id" in response.headers


def test_unknown_model_is_404_and_counted_without_a_decision():
    backend = ScriptedBackend()
    with TestClient(_app(backend)) as client:
        response = client.post("/v1/chat/completions", json={"model": "nope", "messages": USER})
        metrics = client.get("/metrics").text
    assert response.status_code == 404 and "known models: m" in response.json()["error"]["message"]
    assert backend.calls == []
    assert 'thinkgate_requests_total{route="other",status="404"} 1.0' in metrics


def test_a_route_can_be_asked_again_for_an_attempt_with_thinking_on():
    """The seam a guard uses: the same route, thinking on, one `Attempt` back."""
    backend = ScriptedBackend("blue", Reply("<think>check the case</think>blue", usage=(5, 4)))
    app = _app(backend, profile="prompt-cot")
    route = app.state.runtime.routes["m"]
    body = {"model": "upstream-model", "messages": USER}

    async def both() -> tuple[Attempt, Attempt]:
        return (await route.attempt(body, think=False, budget=16), await route.attempt(body, think=True, budget=16))

    off, on = asyncio.run(both())
    assert (off.content, off.reasoning) == ("blue", None)
    assert (on.content, on.reasoning, on.finish_reason) == ("blue", "check the case", "stop")
    assert (on.usage.completion_tokens, on.usage.reasoning_tokens) == (4, 3)  # 14 of 18 characters reasoned


def test_self_reflect_over_reasoning_effort_is_configurable():
    backend = ScriptedBackend(Reply("Blue", reasoning="they asked for lowercase", usage=(10, 6)),
                              Reply("blue", usage=(20, 1)))
    with TestClient(_app(backend, profile="reasoning-effort", strategy="self-reflect", policy="always")) as client:
        response = _post(client)
    body = response.json()
    message = body["choices"][0]["message"]
    assert message["content"] == "blue"
    assert message["reasoning_content"] == "they asked for lowercase\n\nDraft answer:\nBlue"
    assert body["usage"] == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37,
                             "completion_tokens_details": {"reasoning_tokens": 6}}
    first, review = backend.bodies
    assert (first["reasoning_effort"], review["reasoning_effort"]) == ("medium", "none")
    assert review["messages"][-1]["role"] == "user" and "Draft answer:\nBlue" in review["messages"][-1]["content"]
