"""Each reasoning profile and policy through the real proxy over HTTP, driven by the official openai SDK."""

from __future__ import annotations

import pytest

from support.clients import collect_stream, openai_client, reasoning_of

USER = [{"role": "user", "content": "Write a haiku about rain. Do not use commas."}]


def _tagged(body):
    return "<think>The user wants a haiku; avoid commas.</think>\n\nSoft rain on the roof"


def test_never_forwards_the_request_unchanged(proxy, mock):
    with proxy({"policy": "never"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(
            model="mock-model", messages=USER, extra_body={"response_format": {"type": "text"}, "foo": 1})
    resp = raw.parse()
    assert resp.choices[0].message.content == "echo: " + USER[0]["content"]
    assert raw.headers["x-thinkgate-decision"] == "direct"
    assert raw.headers["x-thinkgate-policy"] == "never"
    assert float(raw.headers["x-thinkgate-decision-ms"]) >= 0
    sent = mock.requests[-1]
    assert sent["messages"] == USER and sent["model"] == "upstream-model"
    assert sent["foo"] == 1 and sent["response_format"] == {"type": "text"}  # unknown fields preserved


def test_prompt_cot_on_splits_reasoning_from_answer(proxy, mock):
    mock.reply = _tagged
    with proxy({"policy": "always", "profile": "prompt-cot"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    message = raw.parse().choices[0].message
    assert message.content == "Soft rain on the roof"
    assert reasoning_of(message) == "The user wants a haiku; avoid commas."
    assert raw.headers["x-thinkgate-decision"] == "think"
    assert raw.headers["x-thinkgate-score"] == "1.0000"
    system = mock.requests[-1]["messages"][0]
    assert system["role"] == "system" and "<think>" in system["content"]
    usage = raw.parse().usage
    assert usage.completion_tokens_details.reasoning_tokens > 0


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 64])
def test_prompt_cot_stream_split_survives_any_chunking(proxy, mock, chunk_size):
    mock.reply, mock.chunk_size = _tagged, chunk_size
    with proxy({"policy": "always", "profile": "prompt-cot"}) as server:
        stream = openai_client(server).chat.completions.create(model="mock-model", messages=USER, stream=True)
        content, reasoning, chunks = collect_stream(stream)
    assert content == "Soft rain on the roof"
    assert reasoning == "The user wants a haiku; avoid commas."
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_model_that_never_opens_the_tag_gives_all_answer(proxy, mock, stream):
    mock.reply = lambda body: "Just an answer, no tags."
    with proxy({"policy": "always", "profile": "prompt-cot"}) as server:
        client = openai_client(server)
        if stream:
            content, reasoning, _ = collect_stream(
                client.chat.completions.create(model="mock-model", messages=USER, stream=True))
        else:
            message = client.chat.completions.create(model="mock-model", messages=USER).choices[0].message
            content, reasoning = message.content, reasoning_of(message) or ""
    assert content == "Just an answer, no tags." and reasoning == ""


@pytest.mark.parametrize("stream", [False, True])
def test_model_that_never_closes_the_tag_gives_all_reasoning(proxy, mock, stream):
    mock.reply = lambda body: "<think>thinking forever and"
    with proxy({"policy": "always", "profile": "prompt-cot"}) as server:
        client = openai_client(server)
        if stream:
            content, reasoning, _ = collect_stream(
                client.chat.completions.create(model="mock-model", messages=USER, stream=True))
        else:
            message = client.chat.completions.create(model="mock-model", messages=USER).choices[0].message
            content, reasoning = message.content, reasoning_of(message)
    assert content == "" and reasoning == "thinking forever and"


def _prefill_reply(body):
    last = body["messages"][-1]
    if body.get("continue_final_message") and last["role"] == "assistant":
        if last["content"] == "<think>\n":
            return "Plan: three lines, no commas.</think>ignored"
        return "Soft rain on the roof"
    return "unexpected"


@pytest.mark.parametrize("stream", [False, True])
def test_forced_cot_by_prefill(proxy, mock, stream):
    mock.reply = _prefill_reply
    with proxy({"policy": "always", "profile": "forced-cot", "prefill": "vllm", "think_budget": 77}) as server:
        client = openai_client(server)
        if stream:
            content, reasoning, _ = collect_stream(
                client.chat.completions.create(model="mock-model", messages=USER, stream=True, max_tokens=50))
        else:
            resp = client.chat.completions.create(model="mock-model", messages=USER, max_tokens=50)
            content, reasoning = resp.choices[0].message.content, reasoning_of(resp.choices[0].message)
            assert resp.usage.completion_tokens_details.reasoning_tokens == 5
    assert content == "Soft rain on the roof"
    assert reasoning == "Plan: three lines, no commas."
    first, second = mock.requests[-2:]
    assert first["max_tokens"] == 77 and first["stop"] == ["</think>"] and first["continue_final_message"]
    assert second["max_tokens"] == 50
    assert second["messages"][-1]["content"] == "<think>\nPlan: three lines, no commas.\n</think>\n"


def test_think_budget_header_overrides_the_route(proxy, mock):
    mock.reply = _prefill_reply
    with proxy({"policy": "always", "profile": "forced-cot", "prefill": "vllm"}) as server:
        openai_client(server).chat.completions.create(
            model="mock-model", messages=USER, extra_headers={"x-thinkgate-think-budget": "12"})
    assert mock.requests[-2]["max_tokens"] == 12


def _two_call_reply(body):
    system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    if "Write only this reasoning" in system:
        return "No commas allowed."
    if "Your private reasoning" in system:
        return "Soft rain on the roof"
    return "unexpected"


@pytest.mark.parametrize("stream", [False, True])
def test_two_call_cot(proxy, mock, stream):
    mock.reply = _two_call_reply
    with proxy({"policy": "always", "profile": "two-call-cot"}) as server:
        client = openai_client(server)
        if stream:
            content, reasoning, _ = collect_stream(
                client.chat.completions.create(model="mock-model", messages=USER, stream=True))
        else:
            message = client.chat.completions.create(model="mock-model", messages=USER).choices[0].message
            content, reasoning = message.content, reasoning_of(message)
    assert (content, reasoning) == ("Soft rain on the roof", "No commas allowed.")
    assert "No commas allowed." in mock.requests[-1]["messages"][-1]["content"]
    assert "continue_final_message" not in mock.requests[-1]


def test_forced_cot_off_sends_the_request_unchanged(proxy, mock):
    with proxy({"policy": "never", "profile": "forced-cot", "prefill": "vllm"}) as server:
        openai_client(server).chat.completions.create(model="mock-model", messages=USER)
    assert len(mock.requests) == 1 and mock.requests[0]["messages"] == USER
    assert "continue_final_message" not in mock.requests[0]


@pytest.mark.parametrize("policy,effort", [("always", "medium"), ("never", "none")])
def test_reasoning_effort_profile(proxy, mock, policy, effort):
    with proxy({"policy": policy, "profile": "reasoning-effort"}) as server:
        openai_client(server).chat.completions.create(model="mock-model", messages=USER)
    assert mock.requests[-1]["reasoning_effort"] == effort


@pytest.mark.parametrize("policy,enabled", [("always", True), ("never", False)])
def test_qwen3_profile_switches_and_parses(proxy, mock, policy, enabled):
    mock.reply = lambda body: ("<think>\nhmm\n</think>\n\nanswer" if enabled else "<think>\n\n</think>\n\nanswer")
    with proxy({"policy": policy, "profile": "qwen3"}) as server:
        message = openai_client(server).chat.completions.create(model="mock-model", messages=USER).choices[0].message
    assert mock.requests[-1]["chat_template_kwargs"] == {"enable_thinking": enabled}
    assert message.content == "answer"
    assert (reasoning_of(message) or "").strip() == ("hmm" if enabled else "")


@pytest.mark.parametrize("policy,model", [("always", "r1-distill"), ("never", "base-instruct")])
def test_model_pair_profile(proxy, mock, policy, model):
    with proxy({"policy": policy, "profile": "model-pair",
                "profile_options": {"think_model": "r1-distill", "direct_model": "base-instruct"}}) as server:
        openai_client(server).chat.completions.create(model="mock-model", messages=USER)
    assert mock.requests[-1]["model"] == model


def test_litellm_backend_over_http(proxy, mock, upstream_url):
    mock.reply = _tagged
    routes = {"lite": {"backend": "litellm", "model": "openai/upstream-model", "base_url": upstream_url,
                       "api_key_env": "MOCK_KEY", "policy": "always", "profile": "prompt-cot"}}
    with proxy(routes=routes, environ={"MOCK_KEY": "sk-test"}) as server:
        client = openai_client(server)
        message = client.chat.completions.create(model="lite", messages=USER).choices[0].message
        content, reasoning, _ = collect_stream(client.chat.completions.create(model="lite", messages=USER, stream=True))
    assert message.content == content == "Soft rain on the roof"
    assert reasoning_of(message) == reasoning == "The user wants a haiku; avoid commas."


@pytest.mark.parametrize("header,expected", [("on", "think"), ("off", "direct"), ("auto", "direct")])
def test_header_forces_the_decision(proxy, mock, header, expected):
    with proxy({"policy": "never"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(
            model="mock-model", messages=USER, extra_headers={"x-thinkgate-reasoning": header})
    assert raw.headers["x-thinkgate-decision"] == expected
    assert raw.headers["x-thinkgate-decision-source"] == ("policy" if header == "auto" else "header")


@pytest.mark.parametrize("precedence,expected,source", [("respect", "think", "client"),
                                                        ("override", "direct", "policy")])
def test_client_reasoning_fields_precedence(proxy, mock, precedence, expected, source):
    with proxy({"policy": "never", "profile": "reasoning-effort", "client_reasoning": precedence}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(
            model="mock-model", messages=USER, reasoning_effort="high")
    assert raw.headers["x-thinkgate-decision"] == expected
    assert raw.headers["x-thinkgate-decision-source"] == source
    assert mock.requests[-1]["reasoning_effort"] == ("medium" if expected == "think" else "none")


@pytest.mark.parametrize("reply,think,source", [("YES", True, "policy"), ("**No.**", False, "policy"),
                                                ("I am not sure", False, "fallback")])
def test_self_select(proxy, mock, reply, think, source):
    def answer(body):
        if "YES or NO" in body["messages"][0]["content"]:
            return reply
        return "final"
    mock.reply = answer
    with proxy({"policy": "self-select", "profile": "reasoning-effort"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.parse().choices[0].message.content == "final"
    assert raw.headers["x-thinkgate-decision"] == ("think" if think else "direct")
    assert raw.headers["x-thinkgate-decision-source"] == source
    question = mock.requests[0]
    assert question["max_tokens"] == 4 and question["reasoning_effort"] == "none"  # the question itself: no thinking


def test_self_select_timeout_falls_back_to_default(proxy, mock):
    mock.delay_s = 1.0
    with proxy({"policy": "self-select", "policy_options": {"timeout_s": 0.1}, "default_decision": "think"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.headers["x-thinkgate-decision"] == "think"
    assert raw.headers["x-thinkgate-decision-source"] == "fallback"


@pytest.mark.parametrize("p,expected", [(1.0, "think"), (0.0, "direct")])
def test_random_policy(proxy, mock, p, expected):
    with proxy({"policy": "random", "policy_options": {"p": p, "seed": 1}}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.headers["x-thinkgate-decision"] == expected


def test_history_reasoning_is_stripped_and_tool_calls_untouched(proxy, mock):
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "<think>old plan</think>Hello!", "reasoning_content": "old plan"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "user", "content": "and now?"},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with proxy({"policy": "never"}) as server:
        openai_client(server).chat.completions.create(model="mock-model", messages=messages, tools=tools)
    sent = mock.requests[-1]
    assert sent["messages"][1] == {"role": "assistant", "content": "Hello!"}
    assert sent["messages"][2]["tool_calls"] == [tool_call] and sent["messages"][3] == messages[3]
    assert sent["tools"] == tools


def test_decision_sees_the_system_prompt(proxy, mock):
    def answer(body):
        if "YES or NO" in body["messages"][0]["content"]:
            return "YES" if "lowercase" in body["messages"][1]["content"] else "NO"
        return "ok"
    mock.reply = answer
    messages = [{"role": "system", "content": "Answer in lowercase only."}, {"role": "user", "content": "Hi"}]
    with proxy({"policy": "self-select"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=messages)
    assert raw.headers["x-thinkgate-decision"] == "think"
