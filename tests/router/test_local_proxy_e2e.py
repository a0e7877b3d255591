"""The whole product path with no upstream at all: the proxy's default route on the real embedded model.

Starts `create_app` with the default configuration (what `thinkgate serve` with no flags serves), over real
HTTP, driven by the openai SDK; short `max_tokens` keeps it to seconds of generation once the model loads.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from classifiers.artifact import load_artifact
from classifiers.bundled import bundled_artifact
from router.settings import DEFAULT_ARTIFACT
from support.clients import collect_stream, openai_client, reasoning_of
from support.servers import serve

MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def local_proxy(tmp_path_factory):
    from router.app import create_app
    from router.settings import parse_config

    log_path = tmp_path_factory.mktemp("log") / "decisions.sqlite3"
    config = parse_config({"decision_log": {"path": str(log_path)}, "server": {"ready_wait_s": 300}})
    with serve(create_app(config, environ={})) as server:
        yield server, log_path


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("reasoning", ["off", "on"])
def test_embedded_model_answers_with_and_without_thinking(local_proxy, stream, reasoning):
    server, _ = local_proxy
    client = openai_client(server, timeout=600)
    kwargs = dict(model="smollm2-135m", messages=MESSAGES, max_tokens=6,
                  extra_headers={"x-thinkgate-reasoning": reasoning, "x-thinkgate-think-budget": "6"})
    if stream:
        content, thinking, chunks = collect_stream(client.chat.completions.create(stream=True, **kwargs))
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    else:
        raw = client.chat.completions.with_raw_response.create(**kwargs)
        resp = raw.parse()
        content, thinking = resp.choices[0].message.content, reasoning_of(resp.choices[0].message) or ""
        assert raw.headers["x-thinkgate-decision"] == ("think" if reasoning == "on" else "direct")
        assert 0 < resp.usage.completion_tokens <= (12 if reasoning == "on" else 6)
        if reasoning == "on":
            assert resp.usage.completion_tokens_details.reasoning_tokens > 0
    assert content.strip()
    assert bool(thinking.strip()) == (reasoning == "on")


def test_ready_and_decision_log(local_proxy):
    server, log_path = local_proxy
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    raw = openai_client(server, timeout=600).chat.completions.with_raw_response.create(
        model="smollm2-135m", messages=MESSAGES, max_tokens=3)
    assert raw.headers["x-thinkgate-policy"] == "classifier"  # the default route's shipped decision model
    assert raw.headers["x-thinkgate-decision-source"] == "policy"
    # the shipped model's own score (a probability, or for a regression model a predicted gain) and threshold
    model = load_artifact(bundled_artifact(DEFAULT_ARTIFACT))
    expected = model.score(MESSAGES[-1]["content"])
    assert float(raw.headers["x-thinkgate-score"]) == pytest.approx(expected, abs=1e-4)
    assert raw.headers["x-thinkgate-decision"] == ("think" if expected >= model.threshold.value else "direct")
    metrics = httpx.get(server.url + "/metrics").text
    assert 'thinkgate_tokens_total{kind="completion",route="smollm2-135m"}' in metrics
    rows = sqlite3.connect(log_path).execute("select route, status from decisions").fetchall()
    assert ("smollm2-135m", 200) in rows
