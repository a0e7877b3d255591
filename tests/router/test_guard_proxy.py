"""The `guard` strategy through the real proxy over HTTP (openai SDK and httpx), against the loopback mock upstream.

The mock plays a direct answer, a thinking answer (`prompt-cot`'s system instruction, `<think>` tags) and a
repair answer (the repair message), each chosen per test, so every outcome (pass, escalated, repaired, failed,
unverified, off) is reached with and without streaming.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from router.guard import REPAIR_INSTRUCTION
from support.clients import collect_stream, openai_client, reasoning_of

PROMPT = "Describe tea in all lowercase letters and do not use any commas."
PLAIN = "Tell me about tea."
REPAIR_MARK = REPAIR_INSTRUCTION.split("\n")[0]
GUARD = {"policy": "never", "profile": "prompt-cot", "strategy": "guard"}


def _kind(body: dict[str, Any]) -> str:
    last = body["messages"][-1]
    if last["role"] == "user" and last["content"].startswith(REPAIR_MARK):
        return "repair"
    if any(m["role"] == "system" and "<think>" in m["content"] for m in body["messages"]):
        return "think"
    return "direct"


def _script(direct: str, think: str = "Tea, still.", repair: str = "tea is fixed"):
    answers = {"direct": direct, "think": f"<think>plan it</think>{think}", "repair": repair}
    return lambda body: answers[_kind(body)]


def _ask(server, stream: bool, prompt: str = PROMPT, headers: dict[str, str] | None = None):
    """(content, reasoning, usage, response headers) of one request."""
    client = openai_client(server)
    messages = [{"role": "user", "content": prompt}]
    if stream:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-model", messages=messages, stream=True, stream_options={"include_usage": True},
            extra_headers=headers or {})
        content, reasoning, chunks = collect_stream(raw.parse())
        usage = [c.usage for c in chunks if c.usage]
        assert len(usage) == 1 and chunks[-1].usage
        return content, reasoning, usage[0].model_dump(), raw.headers
    raw = client.chat.completions.with_raw_response.create(model="mock-model", messages=messages,
                                                           extra_headers=headers or {})
    completion = raw.parse()
    message = completion.choices[0].message
    return message.content, reasoning_of(message) or "", completion.usage.model_dump(), raw.headers


def _billed(mock) -> tuple[int, int]:
    per_call = [mock.usage(body, mock._text(body)) for body in mock.requests]
    return sum(u["prompt_tokens"] for u in per_call), sum(u["completion_tokens"] for u in per_call)


@pytest.mark.parametrize("stream", [False, True])
def test_pass_makes_one_call(proxy, mock, stream):
    mock.reply = _script("tea is calm and warm")
    with proxy(GUARD) as server:
        content, _, _, headers = _ask(server, stream)
    assert content == "tea is calm and warm" and len(mock.requests) == 1
    assert (headers["x-thinkgate-guard"], headers["x-thinkgate-guard-checks"]) == ("pass", "2/2")


@pytest.mark.parametrize("stream", [False, True])
def test_escalated_keeps_the_thinking_answer_and_bills_both_calls(proxy, mock, stream):
    mock.reply = _script("Tea, hot.", think="tea is hot")
    with proxy(GUARD) as server:
        content, reasoning, usage, headers = _ask(server, stream)
    assert (content, reasoning) == ("tea is hot", "plan it")
    assert [_kind(b) for b in mock.requests] == ["direct", "think"]
    assert not any(b.get("stream") or "stream_options" in b for b in mock.requests)  # whole answers, even for streams
    assert headers["x-thinkgate-guard"] == "escalated" and headers["x-thinkgate-guard-attempts"] == "2"
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == _billed(mock)


@pytest.mark.parametrize("stream", [False, True])
def test_repaired_lists_the_failed_checks(proxy, mock, stream):
    mock.reply = _script("Tea, hot.", think="Tea, still.", repair="tea is fixed")
    with proxy({**GUARD, "strategy_options": {"repair": True}}) as server:
        content, _, usage, headers = _ask(server, stream)
    assert content == "tea is fixed" and headers["x-thinkgate-guard"] == "repaired"
    direct, think, repair = mock.requests
    assert [_kind(b) for b in mock.requests] == ["direct", "think", "repair"]
    assert repair["messages"][-2] == {"role": "assistant", "content": "Tea, hot."}  # the best so far (tie: first)
    assert "no comma: 1 commas" in repair["messages"][-1]["content"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == _billed(mock)


@pytest.mark.parametrize("stream", [False, True])
def test_failed_keeps_the_answer_passing_most_checks(proxy, mock, stream):
    mock.reply = _script("Tea, hot.", think="Tea hot", repair="Still, Bad.")
    with proxy({**GUARD, "strategy_options": {"repair": True}}) as server:
        content, _, _, headers = _ask(server, stream)
    assert content == "Tea hot" and len(mock.requests) == 3
    assert (headers["x-thinkgate-guard"], headers["x-thinkgate-guard-checks"]) == ("failed", "1/2")


@pytest.mark.parametrize("stream", [False, True])
def test_unverified_prompt_is_answered_as_without_the_guard(proxy, mock, stream):
    mock.reply = _script("Tea, Sir, is a drink.")
    with proxy(GUARD) as server:
        guarded = _ask(server, stream, PLAIN)
    guarded_requests = list(mock.requests)
    mock.requests.clear()
    with proxy({**GUARD, "strategy": "single"}) as server:
        plain = _ask(server, stream, PLAIN)
    assert guarded[:3] == plain[:3] and guarded_requests == mock.requests  # same answer, same single call
    assert guarded[3]["x-thinkgate-guard"] == "unverified" and "x-thinkgate-guard" not in plain[3]


def test_unverified_stream_is_streamed_live(proxy, mock):
    mock.reply = _script("tea is a drink that many people like")
    mock.chunk_size = 4
    with proxy(GUARD) as server:
        stream = openai_client(server).chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": PLAIN}], stream=True)
        _, _, chunks = collect_stream(stream)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 5


@pytest.mark.parametrize("stream", [False, True])
def test_request_header_turns_the_guard_off(proxy, mock, stream):
    mock.reply = _script("Tea, hot.", think="tea is hot")
    with proxy(GUARD) as server:
        content, _, _, headers = _ask(server, stream, headers={"x-thinkgate-guard-enable": "off"})
    assert content == "Tea, hot." and len(mock.requests) == 1 and headers["x-thinkgate-guard"] == "off"


def test_route_option_turns_the_guard_off_and_a_bad_header_is_a_400(proxy, mock):
    mock.reply = _script("Tea, hot.", think="tea is hot")
    with proxy({**GUARD, "strategy_options": {"enabled": False}}) as server:
        content, _, _, headers = _ask(server, False)
        assert content == "Tea, hot." and headers["x-thinkgate-guard"] == "off"
        r = httpx.post(server.url + "/v1/chat/completions", headers={"x-thinkgate-guard-enable": "maybe"},
                       json={"model": "mock-model", "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 400 and "x-thinkgate-guard-enable" in r.json()["error"]["message"]


def test_a_think_decision_has_no_higher_rung_on_cot_switches(proxy, mock):
    mock.reply = _script("unused", think="Tea, hot.", repair="tea is fixed")
    with proxy({**GUARD, "policy": "always"}) as server:
        _, _, _, headers = _ask(server, False)
    assert headers["x-thinkgate-guard"] == "failed" and [_kind(b) for b in mock.requests] == ["think"]


def test_model_pair_escalates_to_the_reasoning_model(proxy, mock):
    mock.reply = lambda body: "Tea, hot." if body["model"] == "small" else "<think>hm</think>tea is hot"
    pair = {"policy": "never", "profile": "model-pair", "strategy": "guard",
            "profile_options": {"direct_model": "small", "think_model": "reasoner"}}
    with proxy(pair) as server:
        content, reasoning, _, headers = _ask(server, False)
    assert (content, reasoning, headers["x-thinkgate-guard"]) == ("tea is hot", "hm", "escalated")
    assert [b["model"] for b in mock.requests] == ["small", "reasoner"]


def test_reasoning_effort_climbs_to_higher_efforts(proxy, mock):
    mock.reply = lambda body: "tea is hot" if body.get("reasoning_effort") == "high" else "Tea, hot."
    route = {"policy": "never", "profile": "reasoning-effort", "strategy": "guard",
             "profile_options": {"on_effort": "medium", "off_effort": "low"}}
    with proxy(route) as server:
        content, _, _, headers = _ask(server, False)
    assert [b.get("reasoning_effort") for b in mock.requests] == ["low", "medium", "high"]
    assert content == "tea is hot" and headers["x-thinkgate-guard"] == "escalated"


def test_a_failing_escalation_keeps_the_first_answer(proxy, mock):
    def reply(body):
        if _kind(body) == "think":
            raise RuntimeError("the upstream breaks on the second call")
        return "Tea, hot."

    mock.reply = reply
    with proxy(GUARD) as server:
        r = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "mock-model", "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Tea, hot."
    assert r.headers["x-thinkgate-guard"] == "failed" and len(mock.requests) == 2


def test_attempts_bound(proxy, mock):
    mock.reply = _script("Tea, hot.", think="Tea, still.")
    with proxy({**GUARD, "strategy_options": {"repair": True, "max_attempts": 2}}) as server:
        _, _, _, headers = _ask(server, False)
    assert len(mock.requests) == 2 and headers["x-thinkgate-guard-attempts"] == "2"


def test_bad_guard_options_are_a_config_error(proxy):
    from router.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy 'guard'"):
        with proxy({**GUARD, "strategy_options": {"act_on": ["punctuation:no_commas"]}}):
            pass
    with pytest.raises(ConfigError, match="max_attempts"):
        with proxy({**GUARD, "strategy_options": {"max_attempts": 0}}):
            pass


def _logged(tmp_path) -> list[dict[str, Any]]:
    import io
    import json

    from router.decision_log import export_jsonl

    out = io.StringIO()
    export_jsonl(tmp_path / "decisions.sqlite3", out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_decision_log_keeps_the_guards_attempts_and_reasons(proxy, mock, tmp_path):
    mock.reply = _script("Tea, hot and strong.", think="tea is calm")  # direct breaks both checks; think passes
    with proxy(GUARD) as server:
        _ask(server, stream=False)
        _ask(server, stream=False, prompt=PLAIN)
    guarded, plain = _logged(tmp_path)  # the server has stopped: the log is drained
    record = json.loads(guarded["guard"])
    assert record["outcome"] == "escalated"
    assert "comma" in json.dumps(record).lower()  # the failed check's reason is kept
    assert json.loads(plain["guard"])["outcome"] == "unverified"
